"""Boundary-aware task-decoupled head (tal_lab's own design), ``head_type: decoupled``.

The paper's future work, built from Trident's parts (design and options: ``docs/heads.md``):

* **task decoupling**: classification and localisation read the neck features through separate
  towers that share no layers (``cls_head`` and ``loc_head``); inside the localisation tower the
  start, end and centre-offset outputs share the tower (they are one task) but have their own
  output convs;
* **relative boundary modelling**: each boundary is a distribution over ``num_bins + 1``
  relative bins, softmax(boundary logits of the neighbouring steps + centre-offset logits), as
  in Trident (:mod:`tal_lab.ops.boundary`). By default the boundaries are class-agnostic (one
  distribution per point, not one per class: THUMOS14 classes rarely overlap at a point);
* **uncertainty**: the spread (or entropy) of each boundary distribution gives a confidence in
  [0, 1]; at inference a detection's score is sigmoid(cls logit) x (conf_start x
  conf_end) ** (power / 2), so sharply localised detections rank first. A distribution focal
  loss (``dfl_weight``) trains the distributions to be sharp around their targets, which is what
  makes the spread mean "uncertain" rather than "any shape with the right mean".

Training: TriDet's IoU-weighted focal loss, DIoU on the expected offsets, + the DFL term.

State dict: ``cls_head.*`` (ActionFormer's classification head), ``loc_head.{head, norm}.*``
(tower), ``loc_head.scale.{l}``, ``loc_head.offset_head`` (centre-offset logits, TriDet's
channel layout), ``loc_head.start_conv`` / ``loc_head.end_conv`` (boundary logits).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from tal_lab.config import DEFAULTS, LossWeight
from tal_lab.core.registry import register_head
from tal_lab.ops.boundary import expected_offsets
from tal_lab.models.layers.masked import MaskedConv1D
from tal_lab.models.heads.actionformer import ClsHead
from tal_lab.models.heads.trident import BinRegHead, BoundaryHead, boundary_head_options

__all__ = [
    "UNCERTAINTY_KINDS",
    "boundary_confidence",
    "rescore_factors",
    "LocHead",
    "DecoupledHead",
    "build_decoupled_head",
]

UNCERTAINTY_KINDS = ("std", "entropy", "none")
# The model.decoupled_* defaults live in the config; the head's own defaults are those.
_MODEL_DEFAULTS = DEFAULTS["model"]


@torch.no_grad()
def boundary_confidence(log_probs: Tensor, kind: str = "std") -> Tensor:
    """Confidence in [0, 1] of each boundary distribution (1 = all mass on one bin).

    * ``std``: 1 - std / (num_bins / 2); num_bins / 2 is the largest standard deviation a
      distribution on [0, num_bins] can have (half its mass at each end). A uniform distribution
      scores about 0.42.
    * ``entropy``: 1 - H / log(num_bins + 1) (the uniform distribution scores 0).
    * ``none``: 1 everywhere (re-scoring off).

    Shapes:
        log_probs: (..., num_bins + 1) -> (...).
    """
    if kind not in UNCERTAINTY_KINDS:
        raise ValueError(f"model.decoupled_uncertainty must be one of {UNCERTAINTY_KINDS}, got {kind!r}")
    num_bins = log_probs.shape[-1] - 1
    if kind == "none" or num_bins == 0:
        return torch.ones_like(log_probs[..., 0])
    probs = log_probs.exp()
    if kind == "entropy":
        entropy = -(probs * log_probs).sum(-1)
        return (1.0 - entropy / math.log(num_bins + 1)).clamp(0.0, 1.0)
    bins = torch.arange(num_bins + 1, device=log_probs.device, dtype=log_probs.dtype)
    mean = (probs * bins).sum(-1, keepdim=True)
    std = ((probs * (bins - mean) ** 2).sum(-1)).clamp(min=0.0).sqrt()
    return (1.0 - std / (num_bins / 2)).clamp(0.0, 1.0)


def rescore_factors(confidence: Tensor, power: float) -> Tensor:
    """Score multipliers (conf_start * conf_end) ** (power / 2), in [0, 1].

    power 0 turns re-scoring off; 1 is the geometric mean of the two confidences.

    Shapes:
        confidence: (..., 2) -> (...).
    """
    if power < 0:
        raise ValueError(f"model.decoupled_uncertainty_power must be >= 0, got {power}")
    return (confidence[..., 0] * confidence[..., 1]) ** (power / 2)


class LocHead(BinRegHead):
    """The localisation tower: centre-offset logits and start / end boundary logits.

    Unlike TriDet's centre-offset head the logits are not passed through a ReLU (they are
    logits; s_l per level acts as a temperature). Boundary convs start at bias 0, so at
    initialisation the steps inside and outside the level (zero-padded) weigh the same.

    Shapes:
        feats[l]: (B, C, T_l) -> per level (centre (B, 2 * (num_bins + 1), T_l), start (B, K, T_l),
        end (B, K, T_l)), 0 at invalid steps.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_levels: int, num_bins: int, num_boundary_classes: int,
                 num_layers: int = 3, kernel_size: int = 3, boundary_kernel_size: int = 3,
                 with_ln: bool = False) -> None:
        super().__init__(input_dim, feat_dim, num_levels, num_bins, num_layers, kernel_size, with_ln)
        self.start_conv = MaskedConv1D(feat_dim, num_boundary_classes, boundary_kernel_size, float32_output=True)
        self.end_conv = MaskedConv1D(feat_dim, num_boundary_classes, boundary_kernel_size, float32_output=True)

    def forward(  # type: ignore[override]
        self, feats: Sequence[Tensor], masks: Sequence[Tensor]
    ) -> list[tuple[Tensor, Tensor, Tensor]]:
        if len(feats) != len(self.scale):
            raise ValueError(f"localisation head built for {len(self.scale)} levels, got {len(feats)}")
        outs = []
        for scale, x, m in zip(self.scale, feats, masks):
            x = self.tower(x, m)
            outs.append((scale(self.offset_head(x, m)[0]), self.start_conv(x, m)[0], self.end_conv(x, m)[0]))
        return outs


class DecoupledHead(BoundaryHead):
    """Classification tower + localisation tower with boundary distributions and uncertainty.

    Outputs (levels in order): ``cls_logits[l]`` (B, T_l, C); ``log_probs[l]`` (B, T_l, K, 2,
    num_bins + 1) boundary distributions (not meaningful at invalid steps); ``reg_offsets[l]``
    (B, T_l, K, 2) their expectations in strides; ``confidence[l]`` (B, T_l, K, 2) per boundary.
    All but ``log_probs`` are 0 at invalid steps.
    K = C with ``class_aware`` boundaries, else 1.

    Args:
        uncertainty: 'std', 'entropy' or 'none' (:func:`boundary_confidence`).
        uncertainty_power: exponent of the re-scoring (:func:`rescore_factors`).
        dfl_weight: weight of the distribution focal loss (0 turns it off; the default is GFL's 0.25).
        class_aware: one boundary distribution per class (as Trident) instead of one per point.
        Others: as :class:`~tal_lab.models.heads.trident.TridentHead`.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_classes: int, num_levels: int,
                 num_bins: int = 16, iou_weight_power: float = 0.2, num_layers: int = 3,
                 kernel_size: int = 3, boundary_kernel_size: int = 3, with_ln: bool = True,
                 prior_prob: float = 0.01, empty_cls: Sequence[int] = (),
                 center_sample: str = "radius", center_sample_radius: float = 1.5,
                 loss_weight: LossWeight = 1.0, label_smoothing: float = 0.0,
                 uncertainty: str = _MODEL_DEFAULTS["decoupled_uncertainty"],
                 uncertainty_power: float = _MODEL_DEFAULTS["decoupled_uncertainty_power"],
                 dfl_weight: float = _MODEL_DEFAULTS["decoupled_dfl_weight"],
                 class_aware: bool = _MODEL_DEFAULTS["decoupled_class_aware"]) -> None:
        if uncertainty not in UNCERTAINTY_KINDS:
            raise ValueError(f"model.decoupled_uncertainty must be one of {UNCERTAINTY_KINDS}, got {uncertainty!r}")
        if uncertainty_power < 0:
            raise ValueError(f"model.decoupled_uncertainty_power must be >= 0, got {uncertainty_power}")
        if dfl_weight < 0:
            raise ValueError(f"model.decoupled_dfl_weight must be >= 0, got {dfl_weight}")
        super().__init__(num_classes, num_bins, iou_weight_power, center_sample, center_sample_radius,
                         loss_weight, label_smoothing)
        self.uncertainty = uncertainty
        self.uncertainty_power = uncertainty_power
        self.dfl_weight = dfl_weight
        self.class_aware = class_aware
        self.cls_head = ClsHead(input_dim, feat_dim, num_classes, prior_prob, num_layers, kernel_size,
                                with_ln, empty_cls)
        self.loc_head = LocHead(input_dim, feat_dim, num_levels, num_bins, num_classes if class_aware else 1,
                                num_layers, kernel_size, boundary_kernel_size, with_ln)

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> dict[str, list[Tensor]]:
        out: dict[str, list[Tensor]] = {"cls_logits": [], "log_probs": [], "reg_offsets": [], "confidence": []}
        for logits, (center, start, end), m in zip(self.cls_head(feats, masks), self.loc_head(feats, masks), masks):
            log_probs, valid = self.boundary_distributions(start, end, center, m)  # (B, T_l, K, 2, nb + 1)
            out["cls_logits"].append(logits.transpose(1, 2))
            out["log_probs"].append(log_probs)  # not read at invalid steps
            out["reg_offsets"].append(expected_offsets(log_probs) * valid)
            out["confidence"].append(boundary_confidence(log_probs, self.uncertainty) * valid)
        return out

    def loss_extras(self, outputs: Mapping[str, list[Tensor]]) -> dict[str, Any]:
        # the distribution focal loss reads the distributions themselves
        return {"log_probs": torch.cat(outputs["log_probs"], 1), "dfl_weight": self.dfl_weight}

    def score_factors(self, outputs: Mapping[str, list[Tensor]], index: int) -> list[Tensor] | None:
        return [rescore_factors(c[index], self.uncertainty_power) for c in outputs["confidence"]]


@register_head("decoupled")
def build_decoupled_head(model: Mapping[str, Any], in_channels: int, num_levels: int) -> DecoupledHead:
    """The decoupled head from a resolved config's ``model`` section: Trident's keys (num_bins,
    iou_weight_power, boudary_kernel_size) plus the ``decoupled_*`` options (docs/heads.md)."""
    return DecoupledHead(
        in_channels, model["head_dim"], model["num_classes"], num_levels, **boundary_head_options(model),
        uncertainty=model["decoupled_uncertainty"], uncertainty_power=float(model["decoupled_uncertainty_power"]),
        dfl_weight=float(model["decoupled_dfl_weight"]), class_aware=bool(model["decoupled_class_aware"]),
    )
