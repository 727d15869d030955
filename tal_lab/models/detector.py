"""The detector: owns the flow, delegates the method-specific steps (detectron2 style).

    videos -> pad + mask -> backbone -> neck -> points -> head
           -> training: head.losses (assignment + losses)   -> {cls_loss, reg_loss, final_loss}
           -> inference: head.predict per video (decoding + NMS) -> [{video_id, segments, ...}]

Video dicts are ActionFormer's: ``video_id``, ``feats`` (C, T) tensor, ``segments`` (N, 2) in
feature-grid units, ``labels`` (N,), ``fps``, ``duration`` (s), ``feat_stride``,
``feat_num_frames``. The state dict uses ActionFormer's keys (``backbone.*``, ``neck.*``,
``cls_head.*``, ``reg_head.*``): the head's sub-modules are mounted directly on the detector.
The loss normaliser (an EMA of the positive count) is training state outside the state dict:
``detector.loss_normalizer`` has its own ``state_dict()`` for the engine's checkpoints.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from tal_lab.config import load_config, max_div_factor
from tal_lab.core.registry import BACKBONES, HEADS, NECKS
from tal_lab.core.structures import pad_batch
from tal_lab.models.heads.actionformer import DenseHead
from tal_lab.models.padding import PaddingPolicy
from tal_lab.models.points import PointGenerator
from tal_lab.ops.losses import LossNormalizer

__all__ = ["Detector", "build_detector", "LOSS_NORMALIZER_MOMENTUM"]

# ActionFormer's loss_normalizer_momentum (hard-coded in the reference).
LOSS_NORMALIZER_MOMENTUM = 0.9


class Detector(nn.Module):
    """Single-stage temporal action detector assembled from registered parts.

    Args:
        backbone: a :class:`~tal_lab.models.backbones.PyramidBackbone`.
        neck: maps the pyramid to the heads' features.
        head: a :class:`~tal_lab.models.heads.DenseHead`; its sub-modules become the detector's.
        regression_range: one [low, high] per neck level (grid units).
        max_seq_len: training inputs are padded to this length; longer ones are an error.
        max_div_factor: the reference's padding divisor for over-length inference inputs.
        test_cfg: ActionFormer's ``test_cfg`` for inference.
        init_loss_norm: start value of the loss normaliser.
        eval_padding: 'auto' (the default): 'minimal' where that is exact, else 'reference'.
            'reference' pads every inference video as ActionFormer does (to max_seq_len, or to
            a multiple of max_div_factor when longer; videos are batched by padded length), so
            results equal the reference's. 'minimal' pads short videos only as far as needed
            to keep one padded step at every pyramid level
            (:class:`~tal_lab.models.padding.PaddingPolicy`): faster, and the same results for
            backbones whose valid outputs do not depend on the amount of padding
            (``backbone.padding_invariant``: convTransformer, conv, maxpool; up to attention
            logits of masked keys getting -inf instead of -1e4, both weighing exactly 0 after
            the softmax); refused for SGP.
        train_padding: 'auto', 'reference' (pad training batches to max_seq_len) or 'minimal'
            (pad them as 'minimal' inference does: same losses and gradients for
            padding-invariant backbones; only the random dropout masks differ, being drawn for
            other shapes).
        input_noise: TriDet's training trick: Gaussian noise of this std added to the whole
            padded training batch (0: off, ActionFormer).
    """

    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        head: DenseHead,
        regression_range: Sequence[Sequence[float]],
        max_seq_len: int,
        max_div_factor: int,
        test_cfg: Mapping[str, Any],
        init_loss_norm: float,
        *,
        eval_padding: str,
        input_noise: float,
        train_padding: str,
    ) -> None:
        super().__init__()
        # raises on an unknown padding mode before anything is mounted
        PaddingPolicy(int(max_seq_len), int(max_div_factor), backbone.strides[-1], eval_padding, train_padding)
        for key, value in (("eval_padding", eval_padding), ("train_padding", train_padding)):
            if value == "minimal" and not getattr(backbone, "padding_invariant", False):
                raise ValueError(
                    f"model.{key} 'minimal' is not exact for {type(backbone).__name__}: its outputs at "
                    "valid steps depend on the amount of padding; use 'reference'")
        if any(True for _ in head.parameters(recurse=False)) or any(True for _ in head.buffers(recurse=False)):
            raise ValueError(f"{type(head).__name__} must keep its parameters in sub-modules")
        self.backbone = backbone
        self.neck = neck
        # mount the head's modules at top level so that keys are 'cls_head.*', not 'head.cls_head.*'
        for name, module in head.named_children():
            self.add_module(name, module)
        object.__setattr__(self, "head", head)  # a reference, not a registered sub-module
        strides = backbone.strides[len(backbone.strides) - neck.num_levels:]
        self.point_generator = PointGenerator(strides, regression_range)
        self.max_seq_len = int(max_seq_len)
        self.max_div_factor = int(max_div_factor)
        self.test_cfg = copy.deepcopy(dict(test_cfg))
        self.eval_padding = eval_padding
        self.train_padding = train_padding
        self.input_noise = float(input_noise)
        self.loss_normalizer = LossNormalizer(init_loss_norm, LOSS_NORMALIZER_MOMENTUM)

    def train(self, mode: bool = True) -> "Detector":
        super().train(mode)
        self.head.train(mode)  # the head object itself is not a registered child
        return self

    @property
    def param_dtype(self) -> torch.dtype:
        """Dtype of the weights (inputs are cast to it)."""
        return next(self.backbone.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """Device of the weights (inputs are moved to it)."""
        return next(self.backbone.parameters()).device

    # ---------------------------------------------------------------- preprocessing
    def _check_videos(self, videos: Sequence[Mapping[str, Any]], training: bool) -> None:
        if not isinstance(videos, (list, tuple)) or len(videos) == 0:
            raise ValueError("the detector takes a non-empty list of video dicts")
        in_dim = self.backbone.n_in
        for i, video in enumerate(videos):
            name = video.get("video_id", f"#{i}") if isinstance(video, Mapping) else f"#{i}"
            if not isinstance(video, Mapping) or "feats" not in video:
                raise ValueError(f"video {name}: expected a dict with 'feats' (C, T)")
            feats = video["feats"]
            if not torch.is_tensor(feats) or feats.dim() != 2:
                raise ValueError(f"video {name}: 'feats' must be a (C, T) tensor, got "
                                 f"{tuple(feats.shape) if torch.is_tensor(feats) else type(feats).__name__}")
            if feats.shape[0] != in_dim:
                raise ValueError(f"video {name}: feats have {feats.shape[0]} channels, the model expects "
                                 f"model.input_dim = {in_dim} (feats must be (C, T))")
            if feats.shape[1] == 0:
                raise ValueError(f"video {name}: feats have no time steps")
            if training:
                if feats.shape[1] > self.max_seq_len:
                    raise ValueError(f"video {name}: {feats.shape[1]} feature steps exceed max_seq_len "
                                     f"{self.max_seq_len} in training (crop or truncate training videos)")
                segs, labels = video.get("segments"), video.get("labels")
                if not torch.is_tensor(segs) or segs.dim() != 2 or segs.shape[1] != 2:
                    raise ValueError(f"video {name}: training needs 'segments' as an (N, 2) tensor")
                if not torch.is_tensor(labels) or labels.shape != (segs.shape[0],):
                    raise ValueError(f"video {name}: training needs 'labels' as an (N,) tensor matching segments")
            else:
                for key in ("fps", "duration", "feat_stride", "feat_num_frames"):
                    if video.get(key) is None:
                        raise ValueError(f"video {name}: inference needs '{key}' to convert to seconds")

    def _batch(self, videos: Sequence[Mapping[str, Any]], length: int) -> tuple[Tensor, Tensor]:
        feats = [v["feats"].to(device=self.device, dtype=self.param_dtype) for v in videos]
        return pad_batch(feats, length)  # (B, C, length), (B, 1, length)

    @property
    def padding(self) -> PaddingPolicy:
        """The padding policy of this detector's current settings (every padded length comes
        from it; :meth:`PaddingPolicy.from_config` gives the same one from its config)."""
        return PaddingPolicy(self.max_seq_len, self.max_div_factor, self.backbone.strides[-1], self.eval_padding,
                             self.train_padding, bool(getattr(self.backbone, "padding_invariant", False)))

    def eval_groups(self, lengths: Sequence[int]) -> list[tuple[int, list[int]]]:
        """How inference batches videos: :meth:`PaddingPolicy.eval_groups` of :attr:`padding`."""
        return self.padding.eval_groups(lengths)

    def minimal_length(self, lengths: Sequence[int]) -> int:
        """:meth:`PaddingPolicy.minimal_length` of :attr:`padding`."""
        return self.padding.minimal_length(lengths)

    # ---------------------------------------------------------------- flow
    def forward_features(
        self, feats: Tensor, mask: Tensor
    ) -> tuple[dict[str, list[Tensor]], list[Tensor], list[Tensor]]:
        """Backbone -> neck -> points -> head on a padded batch.

        Returns:
            head outputs, points per level (T_l, 4), validity per level (B, T_l) bool.

        Shapes:
            feats: (B, C_in, T); mask: (B, 1, T) bool.
        """
        feats_l, masks_l = self.backbone(feats, mask)
        feats_l, masks_l = self.neck(feats_l, masks_l)
        point_dtype = torch.promote_types(feats_l[0].dtype, torch.float32)
        points = self.point_generator([x.shape[-1] for x in feats_l], feats_l[0].device, point_dtype)
        outputs = self.head(feats_l, masks_l)
        return outputs, points, [m[:, 0] for m in masks_l]

    def forward(self, videos: Sequence[Mapping[str, Any]]) -> dict[str, Tensor] | list[dict[str, Any]]:
        """Training: dict of losses. Inference: one detection dict per video, in input order."""
        self._check_videos(videos, self.training)
        if self.training:
            return self.forward_train(videos)
        return self.forward_inference(videos)

    def forward_train(self, videos: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        feats, mask = self._batch(videos, self.padding.train_length([v["feats"].shape[1] for v in videos]))
        if self.input_noise > 0:
            feats = feats + torch.randn_like(feats) * self.input_noise
        outputs, points, valid = self.forward_features(feats, mask)
        gt_dtype = points[0].dtype
        gt_segments = [v["segments"].to(self.device, gt_dtype) for v in videos]
        gt_labels = [v["labels"].to(self.device, torch.long) for v in videos]
        return self.head.losses(outputs, points, valid, gt_segments, gt_labels, self.loss_normalizer)

    @torch.no_grad()
    def forward_inference(self, videos: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(videos)
        for length, indices in self.padding.eval_groups([v["feats"].shape[1] for v in videos]):
            feats, mask = self._batch([videos[i] for i in indices], length)
            outputs, points, valid = self.forward_features(feats, mask)
            for row, i in enumerate(indices):
                det = self.head.predict(outputs, points, valid, row, videos[i], self.test_cfg)
                results[i] = {"video_id": videos[i].get("video_id"), "segments": det["segments_sec"],
                              "scores": det["scores"], "labels": det["labels"]}
        return results  # type: ignore[return-value]


def build_detector(cfg: Mapping[str, Any], eval_padding: str | None = None) -> Detector:
    """Build the detector a config describes.

    Args:
        cfg: a config in ActionFormer's schema, resolved here by :func:`tal_lab.config.load_config`
            (a loaded config, or a partial one completed by the defaults); reads ``cfg['model']``
            including its ``train_cfg`` / ``test_cfg``.
        eval_padding: overrides ``model.eval_padding``.

    Raises:
        ConfigError: an invalid config (naming the key).
        ValueError: unknown backbone / neck / head names, or parts that do not fit together.
    """
    model = load_config(cfg, {"model": {"eval_padding": eval_padding}} if eval_padding else None)["model"]
    backbone = BACKBONES.get(model["backbone_type"])(model)
    neck = NECKS.get(model["fpn_type"])(model, backbone.out_channels)
    if len(set(neck.out_channels)) != 1:
        raise ValueError(f"the heads are shared over levels: the neck must give one width, got {neck.out_channels}")
    head = HEADS.get(model["head_type"])(model, neck.out_channels[0], neck.num_levels)
    ranges = model["regression_range"][model["fpn_start_level"]:]
    if len(ranges) != neck.num_levels:
        raise ValueError(f"model.regression_range has {len(model['regression_range'])} entries for "
                         f"{backbone.num_levels} levels (fpn_start_level {model['fpn_start_level']})")
    return Detector(
        backbone, neck, head, ranges,
        max_seq_len=model["max_seq_len"], max_div_factor=max_div_factor(model),
        test_cfg=model["test_cfg"], init_loss_norm=model["train_cfg"]["init_loss_norm"],
        eval_padding=model["eval_padding"], input_noise=model["input_noise"], train_padding=model["train_padding"],
    )
