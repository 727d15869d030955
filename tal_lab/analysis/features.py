"""Feature-diversity probe: how varied a model's features are over time, per level and per layer.

The study claims that SGP resists the *representation collapse* of deep self-attention (all
time steps drifting towards one vector, Dong et al. 2021; TriDet's "rank loss"). This module
measures it on a trained detector without retraining: forward hooks capture the backbone's
per-level outputs, the neck's per-level outputs and every backbone block's output, and three
metrics are computed on the **valid** (unpadded) steps of each (C, T) map. With X the
(n, C) matrix of the n valid steps (one row per time step):

* ``mean_cosine``: mean cosine similarity over all pairs of distinct steps (1 = every step
  points the same way). Steps with a zero vector count as cosine 0 with everything.
* ``effective_rank`` (Roy & Vetterli 2007): exp of the Shannon entropy of the normalised
  singular values p_i = s_i / sum(s) of X; 1 when all steps are parallel, min(n, C) when the
  singular values are all equal (e.g. n orthogonal steps of equal norm).
  ``effective_rank_ratio`` divides it by min(n, C) so levels of different length compare.
* ``collapse_ratio``: relative residual ||X - 1 mu^T||_F / ||X||_F with mu the mean step.
  Dong et al. measure the distance to the closest rank-1 matrix of the form 1 x^T (in a
  composite l1/l-inf norm); in the Frobenius norm that closest matrix is exactly 1 mu^T, so
  0 = fully collapsed (all steps equal) and 1 = the steps average to zero.
* ``cos_to_mean`` (per step): cosine between each step and the map's temporal mean mu, whose
  distribution per pyramid level is the figure TriDet's paper shows (self-attention features
  crowd near 1; SGP features spread out). Its mean is ``mean_cos_to_mean`` in the summary.

Padded steps never enter a metric: they are zeroed (zero rows do not change singular values)
and the counts use the mask. Plots live in :mod:`tal_lab.analysis.feature_plots`.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from tal_lab.core.structures import pad_batch
from tal_lab.models.padding import PaddingPolicy

__all__ = [
    "FeatureMap",
    "ForwardCapture",
    "CapturedFeatures",
    "find_backbone_blocks",
    "capture_features",
    "extract_features",
    "mean_pairwise_cosine",
    "effective_rank",
    "rank_collapse_ratio",
    "cosine_to_mean",
    "diversity_metrics",
    "DiversityResult",
    "as_video_features",
    "probe_diversity",
    "SUMMARY_METRICS",
]

# Summary metrics, in the order tables and plots show them.
SUMMARY_METRICS: tuple[str, ...] = (
    "mean_cosine", "effective_rank", "effective_rank_ratio", "collapse_ratio", "mean_cos_to_mean")

# ModuleList names that hold the backbone's blocks in ActionFormer / TriDet (stem = level-0
# blocks, branch = one downsampling block per further level).
DEFAULT_BLOCK_CONTAINERS: tuple[str, ...] = ("stem", "branch")


@dataclass
class FeatureMap:
    """One captured feature map with its validity mask.

    Shapes:
        feats: (B, C, T); mask: (B, 1, T) bool, True at valid steps.
    """

    feats: Tensor
    mask: Tensor


@dataclass
class ForwardCapture:
    """Everything captured during one forward call of the backbone (and neck)."""

    backbone: list[FeatureMap] = field(default_factory=list)  # one per pyramid level
    neck: list[FeatureMap] = field(default_factory=list)  # one per pyramid level
    layers: dict[str, FeatureMap] = field(default_factory=dict)  # block name -> output, in order

    def layer_levels(self) -> dict[str, int]:
        """Pyramid level of each captured layer, found by matching its length to the levels."""
        lengths = [fm.feats.shape[-1] for fm in self.backbone]
        return {name: (lengths.index(fm.feats.shape[-1]) if fm.feats.shape[-1] in lengths else -1)
                for name, fm in self.layers.items()}

    def maps(self) -> Iterator[tuple[str, int, str, FeatureMap]]:
        """Yield (stage, level, layer name, map) for every captured map; stage in
        'backbone' | 'neck' | 'layer'; level -1 when a layer matches no level's length."""
        for stage, levels in (("backbone", self.backbone), ("neck", self.neck)):
            for level, fm in enumerate(levels):
                yield stage, level, f"{stage}.{level}", fm
        layer_levels = self.layer_levels()
        for name, fm in self.layers.items():
            yield "layer", layer_levels[name], name, fm


@dataclass
class CapturedFeatures:
    """What :func:`capture_features` collected: one :class:`ForwardCapture` per backbone call."""

    calls: list[ForwardCapture] = field(default_factory=list)

    @property
    def last(self) -> ForwardCapture:
        if not self.calls:
            raise ValueError("no forward pass ran inside capture_features(); call the detector first")
        return self.calls[-1]


def find_backbone_blocks(backbone: nn.Module,
                         containers: Sequence[str] = DEFAULT_BLOCK_CONTAINERS) -> list[tuple[str, nn.Module]]:
    """The backbone's per-layer blocks: the children of its ModuleLists named in ``containers``.

    Falls back to the children of every ModuleList when none of those names exists (a backbone
    of another design), so the probe still sees per-layer outputs.

    Returns:
        (dotted name relative to the backbone, block) pairs in forward order of the containers.
    """
    lists = {name: mod for name, mod in backbone.named_modules() if isinstance(mod, nn.ModuleList)}
    chosen = [name for want in containers for name in lists if name.split(".")[-1] == want]
    if not chosen:
        chosen = list(lists)
    return [(f"{name}.{idx}", block) for name in chosen for idx, block in enumerate(lists[name])]


def _split_output(output: Any, inputs: tuple[Any, ...]) -> FeatureMap | None:
    """A block's output as a FeatureMap: (feats, mask) tuples, or a bare tensor whose mask is
    taken from a bool input of the same length (or all valid)."""
    if isinstance(output, (tuple, list)) and len(output) >= 1 and isinstance(output[0], Tensor):
        feats = output[0]
        mask = output[1] if len(output) > 1 and isinstance(output[1], Tensor) else None
    elif isinstance(output, Tensor):
        feats, mask = output, None
    else:
        return None
    if feats.dim() != 3:
        return None
    if mask is None or mask.dtype != torch.bool:
        mask = next((a for a in inputs if isinstance(a, Tensor) and a.dtype == torch.bool
                     and a.shape[-1] == feats.shape[-1]), None)
    if mask is None:
        mask = torch.ones(feats.shape[0], 1, feats.shape[-1], dtype=torch.bool, device=feats.device)
    return FeatureMap(feats.detach().to("cpu", copy=True), mask.detach().reshape(feats.shape[0], 1, -1).cpu())


def _level_maps(output: Any, stage: str) -> list[FeatureMap]:
    if not (isinstance(output, (tuple, list)) and len(output) == 2):
        raise ValueError(f"the detector's {stage} must return (list of feats, list of masks), "
                         f"got {type(output).__name__}")
    feats, masks = output
    return [FeatureMap(f.detach().to("cpu", copy=True), m.detach().reshape(f.shape[0], 1, -1).cpu())
            for f, m in zip(feats, masks)]


@contextlib.contextmanager
def capture_features(detector: nn.Module, *, layers: bool = True,
                     containers: Sequence[str] = DEFAULT_BLOCK_CONTAINERS) -> Iterator[CapturedFeatures]:
    """Record backbone / neck level outputs and backbone block outputs of every forward call.

    Works on any detector with ``.backbone`` and ``.neck`` (a checkpoint loaded into it
    included): run it in any way inside the ``with`` block (the full detector, or backbone and
    neck directly). Captured tensors are detached CPU copies; the hooks are removed on exit.

    Shapes:
        each FeatureMap: feats (B, C, T_l), mask (B, 1, T_l) bool.
    """
    for part in ("backbone", "neck"):
        if not isinstance(getattr(detector, part, None), nn.Module):
            raise ValueError(f"capture_features needs a detector with a '.{part}' module, "
                             f"got {type(detector).__name__}")
    captured = CapturedFeatures()
    current: list[ForwardCapture] = []

    def on_backbone_pre(_module: nn.Module, _inputs: tuple[Any, ...]) -> None:
        current.clear()
        current.append(ForwardCapture())
        captured.calls.append(current[0])

    def on_backbone(_module: nn.Module, _inputs: tuple[Any, ...], output: Any) -> None:
        current[0].backbone = _level_maps(output, "backbone")

    def on_neck(_module: nn.Module, _inputs: tuple[Any, ...], output: Any) -> None:
        if not current:  # neck called on its own: give it a record of its own
            on_backbone_pre(_module, _inputs)
        current[0].neck = _level_maps(output, "neck")

    def on_block(name: str):
        def hook(_module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            fm = _split_output(output, inputs)
            if fm is not None and current:
                current[0].layers[name] = fm
        return hook

    handles = [detector.backbone.register_forward_pre_hook(on_backbone_pre),
               detector.backbone.register_forward_hook(on_backbone),
               detector.neck.register_forward_hook(on_neck)]
    if layers:
        handles += [block.register_forward_hook(on_block(name))
                    for name, block in find_backbone_blocks(detector.backbone, containers)]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _padding_groups(detector: nn.Module, lengths: Sequence[int], padded_len: int | None,
                    cfg: Mapping[str, Any] | None) -> list[tuple[int, list[int]]]:
    """(padded length, video indices) batches, padded as the detector pads at inference.

    Padding matters: SGP's GroupNorm statistics include padded steps.
    """
    if padded_len is not None:
        return [(int(padded_len), list(range(len(lengths))))]
    policy = getattr(detector, "padding", None)  # tal_lab's Detector carries its PaddingPolicy
    if not isinstance(policy, PaddingPolicy) and cfg is not None:
        policy = PaddingPolicy.from_config(cfg["model"])
    if isinstance(policy, PaddingPolicy):
        return policy.eval_groups(lengths)
    return [(max(lengths), list(range(len(lengths))))]


@torch.no_grad()
def extract_features(detector: nn.Module, feats: Sequence[Tensor], *, padded_len: int | None = None,
                     cfg: Mapping[str, Any] | None = None,
                     layers: bool = True) -> list[tuple[list[int], ForwardCapture]]:
    """Run backbone and neck on videos (eval mode), padded as at inference, and capture features.

    Videos are batched by padded length: ``padded_len`` if given, else as the detector batches
    them at inference (its :class:`~tal_lab.models.padding.PaddingPolicy`; for a detector without
    one, the policy of ``cfg``), else all in one batch at the longest video's length.

    Args:
        feats: one (C, T_b) feature tensor per video.

    Returns:
        (indices into ``feats``, capture of that batch) per padded-length group.

    Shapes:
        each capture's FeatureMaps: feats (B_group, C, T_l), masks (B_group, 1, T_l).
    """
    if len(feats) == 0:
        raise ValueError("extract_features needs at least one video")
    lengths = [int(f.shape[-1]) for f in feats]
    device = next((p.device for p in detector.parameters()), torch.device("cpu"))
    dtype = next((p.dtype for p in detector.parameters() if p.is_floating_point()), torch.float32)
    was_training = detector.training
    detector.eval()
    out = []
    try:
        for length, indices in _padding_groups(detector, lengths, padded_len, cfg):
            batch, mask = pad_batch([feats[i].to(device=device, dtype=dtype) for i in indices], length)
            with capture_features(detector, layers=layers) as captured:
                level_feats, level_masks = detector.backbone(batch, mask)
                detector.neck(level_feats, level_masks)
            out.append((indices, captured.last))
    finally:
        detector.train(was_training)
    return out


def _valid_rows(feats: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """(B, C, T) features -> float64 (B, T, C) rows with padded rows zeroed, and the valid mask."""
    if feats.dim() == 2:
        feats = feats.unsqueeze(0)
        mask = None if mask is None else mask.reshape(1, 1, -1)
    if feats.dim() != 3:
        raise ValueError(f"features must be (B, C, T) or (C, T), got shape {tuple(feats.shape)}")
    batch, _, steps = feats.shape
    if mask is None:
        valid = torch.ones(batch, steps, dtype=torch.bool, device=feats.device)
    else:
        if mask.numel() != batch * steps:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match features {tuple(feats.shape)}")
        valid = mask.reshape(batch, steps).bool()
    rows = feats.transpose(1, 2).to(torch.float64) * valid.unsqueeze(-1)  # (B, T, C)
    return rows, valid


def _unit_rows(rows: Tensor) -> Tensor:
    norms = rows.norm(dim=-1, keepdim=True)
    return torch.where(norms > 0, rows / norms.clamp(min=torch.finfo(rows.dtype).tiny), torch.zeros_like(rows))


def _pairwise_cosine_rows(rows: Tensor, valid: Tensor) -> Tensor:
    unit = _unit_rows(rows)
    count = valid.sum(dim=1).to(torch.float64)
    total = unit.sum(dim=1).pow(2).sum(dim=-1) - unit.pow(2).sum(dim=(1, 2))
    pairs = count * (count - 1)
    return torch.where(pairs > 0, total / pairs.clamp(min=1), torch.full_like(total, math.nan))


def _effective_rank_rows(rows: Tensor) -> Tensor:
    sing = torch.linalg.svdvals(rows)  # (B, min(T, C)); zeroed rows add only zeros
    total = sing.sum(dim=-1, keepdim=True)
    p = sing / total.clamp(min=torch.finfo(sing.dtype).tiny)
    plogp = torch.where(p > 0, p * p.clamp(min=torch.finfo(p.dtype).tiny).log(), torch.zeros_like(p))
    entropy = -plogp.sum(-1)
    return torch.where(total.squeeze(-1) > 0, entropy.exp(), torch.full_like(entropy, math.nan))


def _collapse_ratio_rows(rows: Tensor, valid: Tensor) -> Tensor:
    count = valid.sum(dim=1).to(torch.float64)
    energy = rows.pow(2).sum(dim=(1, 2))
    mean = rows.sum(dim=1) / count.clamp(min=1).unsqueeze(-1)  # (B, C)
    residual = (energy - count * mean.pow(2).sum(-1)).clamp(min=0)  # ||X||^2 - n |mu|^2
    return torch.where(energy > 0, (residual / energy.clamp(min=torch.finfo(energy.dtype).tiny)).sqrt(),
                       torch.full_like(energy, math.nan))


def _cosine_to_mean_rows(rows: Tensor, valid: Tensor) -> Tensor:
    mean = rows.sum(dim=1) / valid.sum(dim=1).clamp(min=1).unsqueeze(-1)  # (B, C)
    cos = (_unit_rows(rows) * _unit_rows(mean.unsqueeze(1))).sum(-1)  # (B, T)
    return torch.where(valid, cos, torch.full_like(cos, math.nan))


def mean_pairwise_cosine(feats: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean cosine similarity over all pairs of distinct valid steps; NaN with < 2 valid steps.

    Uses sum_{i != j} u_i.u_j = |sum u_i|^2 - sum |u_i|^2 (u = unit rows), so it costs O(T C).

    Shapes:
        feats: (B, C, T) or (C, T); mask: (B, 1, T) bool or None; returns (B,) float64.
    """
    return _pairwise_cosine_rows(*_valid_rows(feats, mask))


def effective_rank(feats: Tensor, mask: Tensor | None = None) -> Tensor:
    """Effective rank exp(H(p)), p = normalised singular values of the valid (T, C) rows.

    Roy & Vetterli (2007). NaN for an all-zero map.

    Shapes:
        feats: (B, C, T) or (C, T); mask: (B, 1, T) bool or None; returns (B,) float64.
    """
    return _effective_rank_rows(_valid_rows(feats, mask)[0])


def rank_collapse_ratio(feats: Tensor, mask: Tensor | None = None) -> Tensor:
    """Relative residual ||X - 1 mu^T||_F / ||X||_F over valid steps (0 = collapsed to one vector).

    Shapes:
        feats: (B, C, T) or (C, T); mask: (B, 1, T) bool or None; returns (B,) float64.
    """
    return _collapse_ratio_rows(*_valid_rows(feats, mask))


def cosine_to_mean(feats: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cosine between each valid step and the temporal mean of the valid steps; NaN at padding.

    Shapes:
        feats: (B, C, T) or (C, T); mask: (B, 1, T) bool or None; returns (B, T) float64.
    """
    return _cosine_to_mean_rows(*_valid_rows(feats, mask))


def diversity_metrics(feats: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
    """All summary metrics of a batch of maps (see the module docstring), plus the valid counts
    and the per-step ``cos_to_mean`` (B, T).

    Shapes:
        feats: (B, C, T); mask: (B, 1, T) bool; every returned value is (B,) except
        ``cos_to_mean`` (B, T), NaN at padded steps.
    """
    rows, valid = _valid_rows(feats, mask)
    steps = valid.sum(dim=1)
    channels = rows.shape[-1]
    erank = _effective_rank_rows(rows)
    cos_mean = _cosine_to_mean_rows(rows, valid)
    return {
        "steps": steps,
        "mean_cosine": _pairwise_cosine_rows(rows, valid),
        "effective_rank": erank,
        "effective_rank_ratio": erank / steps.clamp(max=channels).clamp(min=1).to(torch.float64),
        "collapse_ratio": _collapse_ratio_rows(rows, valid),
        "mean_cos_to_mean": cos_mean.nanmean(dim=1),
        "cos_to_mean": cos_mean,
    }


@dataclass
class DiversityResult:
    """Tidy results of :func:`probe_diversity`.

    ``summary``: one row per (video, stage, level / layer) with the labels' columns, video_id,
    stage, level, layer, order (position in forward order), steps, channels and :data:`SUMMARY_METRICS`.
    ``steps``: one row per valid time step of the chosen stages: labels, video_id, stage,
    level, layer, step, cos_to_mean.
    """

    summary: pd.DataFrame
    steps: pd.DataFrame

    @staticmethod
    def concat(results: Sequence["DiversityResult"]) -> "DiversityResult":
        """Stack the results of several probes (runs, epochs, backbones)."""
        if not results:
            raise ValueError("no diversity results to concatenate")
        return DiversityResult(pd.concat([r.summary for r in results], ignore_index=True),
                               pd.concat([r.steps for r in results], ignore_index=True))


def _add_rows(capture: ForwardCapture, chunk: Sequence[str], labels: Mapping[str, Any],
              step_stages: Sequence[str], summary_rows: list[dict[str, Any]],
              step_frames: list[pd.DataFrame]) -> None:
    """Append the metrics of one captured batch (videos ``chunk``) to the result rows."""
    for order, (stage, level, layer, fm) in enumerate(capture.maps()):
        metrics = diversity_metrics(fm.feats, fm.mask)
        cos = metrics.pop("cos_to_mean")
        metrics = {k: v.tolist() for k, v in metrics.items()}
        for b, video_id in enumerate(chunk):
            row = {**labels, "video_id": video_id, "stage": stage, "level": level, "layer": layer,
                   "order": order, "channels": int(fm.feats.shape[1])}
            row.update({k: metrics[k][b] for k in metrics})
            summary_rows.append(row)
        if stage in step_stages:
            for b, video_id in enumerate(chunk):
                valid = fm.mask[b, 0]
                frame = pd.DataFrame({"step": torch.nonzero(valid).flatten().numpy(),
                                      "cos_to_mean": cos[b][valid].numpy()})
                for key, value in {**labels, "video_id": video_id, "stage": stage,
                                   "level": level, "layer": layer}.items():
                    frame.insert(len(frame.columns) - 2, key, value)
                step_frames.append(frame)


def as_video_features(videos: Any, limit: int | None = None) -> dict[str, Tensor]:
    """Video id -> (C, T) features from a mapping, a list of ActionFormer video dicts
    (``video_id``, ``feats``) or a dataset of them; the first ``limit`` videos if given."""
    if isinstance(videos, Mapping):
        items = list(videos.items())[:limit]
        return {str(k): v for k, v in items}
    out: dict[str, Tensor] = {}
    for i in range(len(videos) if limit is None else min(limit, len(videos))):
        video = videos[i]
        if not isinstance(video, Mapping) or "feats" not in video:
            raise ValueError(f"video #{i}: expected a dict with 'video_id' and 'feats' (C, T)")
        out[str(video.get("video_id", i))] = torch.as_tensor(video["feats"])
    return out


def probe_diversity(detector: nn.Module, videos: Any, *,
                    labels: Mapping[str, Any] | None = None, cfg: Mapping[str, Any] | None = None,
                    padded_len: int | None = None, batch_size: int = 4, layers: bool = True,
                    step_stages: Sequence[str] = ("backbone", "neck")) -> DiversityResult:
    """Capture features of ``videos`` and measure their diversity; nothing is retrained.

    Args:
        videos: video id -> (C, T) input features, or video dicts / a dataset
            (:func:`as_video_features`).
        labels: constant columns added to every row (e.g. run, backbone, neck, epoch).
        cfg: the detector's config, for the evaluation padding of a detector that does not carry
            its own (see :func:`extract_features`).
        step_stages: stages whose per-step cos_to_mean rows go into ``steps``.
    """
    videos = as_video_features(videos)
    if not videos:
        raise ValueError("probe_diversity needs at least one video")
    labels = dict(labels or {})
    summary_rows: list[dict[str, Any]] = []
    step_frames: list[pd.DataFrame] = []
    ids = list(videos)
    for start in range(0, len(ids), batch_size):
        for indices, capture in extract_features(detector, [videos[v] for v in ids[start:start + batch_size]],
                                                 padded_len=padded_len, cfg=cfg, layers=layers):
            chunk = [ids[start + i] for i in indices]
            _add_rows(capture, chunk, labels, step_stages, summary_rows, step_frames)
    summary = pd.DataFrame(summary_rows)
    summary["steps"] = summary["steps"].astype(int)
    steps = (pd.concat(step_frames, ignore_index=True) if step_frames else
             pd.DataFrame(columns=[*labels, "video_id", "stage", "level", "layer", "step", "cos_to_mean"]))
    return DiversityResult(summary, steps)
