"""TriDet's Trident head (Shi et al., CVPR 2023), ``head_type: trident``.

Three branches predict each segment: a start-boundary branch and an end-boundary branch give,
per class and step, a logit that the step is a start (end); a centre-offset branch gives, per
step, logits over ``num_bins + 1`` relative bins for each side. A point's start distance is the
expectation of softmax(boundary logits of its neighbours + its centre-offset logits) (see
:mod:`tal_lab.ops.boundary`), so boundaries are class-specific distributions.

State dict (TriDet's layout, checkpoints load unchanged): ``cls_head.*`` (ActionFormer's
classification head), ``start_head.*`` / ``end_head.*`` (the same head type with
``num_classes`` outputs and kernel ``boudary_kernel_size``, reading *detached* features as
TriDet does: they learn only from the regression terms), ``reg_head.*`` (ActionFormer's
regression head with ``2 * (num_bins + 1)`` outputs: ``head``, ``norm``, ``scale.{l}``,
``offset_head``). For TriDet's THUMOS14 model (SGP backbone, identity neck) this gives
15,989,604 parameters, 6,444,132 of them in the heads.

Not here: TriDet's ``input_noise`` (Gaussian noise on the padded input batch in training) belongs
to the detector's preprocessing.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from tal_lab.config import LossWeight
from tal_lab.core.registry import register_head
from tal_lab.ops.losses import LossNormalizer
from tal_lab.ops.boundary import boundary_log_probs, expected_offsets
from tal_lab.ops.decode import decode_video, level_scores, level_segments
from tal_lab.ops.trident_losses import trident_losses
from tal_lab.models.layers.masked import MaskedConv1D
from tal_lab.models.heads.actionformer import CenterSamplingHead, ClsHead, RegHead, head_options

__all__ = ["BinRegHead", "BoundaryHead", "TridentHead", "boundary_head_options", "build_trident_head"]


class BinRegHead(RegHead):
    """TriDet's centre-offset head: ActionFormer's regression head with ``2 * (num_bins + 1)``
    outputs, relu(s_l * conv) per level (keys ``head``, ``norm``, ``scale.{l}``, ``offset_head``).

    Shapes:
        feats[l]: (B, C, T_l) -> logits[l]: (B, 2 * (num_bins + 1), T_l) in TriDet's channel
        layout, 0 at invalid steps.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_levels: int, num_bins: int, num_layers: int = 3,
                 kernel_size: int = 3, with_ln: bool = False) -> None:
        super().__init__(input_dim, feat_dim, num_levels, num_layers, kernel_size, with_ln)
        if num_bins < 1:
            raise ValueError(f"model.num_bins must be a positive integer, got {num_bins}")
        self.num_bins = num_bins
        # replaces the parent's 2-channel offset conv (same key, same position in the state dict)
        self.offset_head = MaskedConv1D(feat_dim, 2 * (num_bins + 1), kernel_size, float32_output=True)


class BoundaryHead(CenterSamplingHead):
    """Base of the heads whose boundaries are distributions over relative bins (Trident, decoupled).

    Supplies what they share: the per-level distributions (:meth:`boundary_distributions`),
    TriDet's losses (:meth:`losses`, extended by :meth:`loss_extras`) and the decoding of
    per-class offsets (:meth:`predict`, re-scored by :meth:`score_factors`). Subclasses build
    their towers and ``forward``, whose outputs hold at least ``cls_logits[l]`` (B, T_l, C) and
    ``reg_offsets[l]`` (B, T_l, K, 2).

    Args:
        num_bins: bins per side beyond 0 (distances 0..num_bins strides).
        iou_weight_power: exponent of the IoU weight on positive classification entries.
        Others: as :class:`~tal_lab.models.heads.CenterSamplingHead`.
    """

    def __init__(self, num_classes: int, num_bins: int = 16, iou_weight_power: float = 0.2,
                 center_sample: str = "radius", center_sample_radius: float = 1.5,
                 loss_weight: LossWeight = 1.0, label_smoothing: float = 0.0) -> None:
        super().__init__(num_classes, center_sample, center_sample_radius, loss_weight, label_smoothing)
        self.num_bins = num_bins
        self.iou_weight_power = iou_weight_power

    def boundary_distributions(self, start: Tensor, end: Tensor, center: Tensor,
                               mask: Tensor) -> tuple[Tensor, Tensor]:
        """One level's boundary log-probabilities, and its validity as a weight.

        Shapes:
            start, end: (B, K, T_l) boundary logits; center: (B, 2 * (num_bins + 1), T_l);
            mask: (B, 1, T_l) bool -> log_probs (B, T_l, K, 2, num_bins + 1), valid (B, T_l, 1, 1)
            in log_probs' dtype.
        """
        # heads compute (B, ch, T_l); decoding reads (B, T_l, ch)
        log_probs = boundary_log_probs(start.transpose(1, 2), end.transpose(1, 2), center.transpose(1, 2),
                                       self.num_bins)
        return log_probs, mask[:, 0, :, None, None].to(log_probs.dtype)

    def loss_extras(self, outputs: Mapping[str, list[Tensor]]) -> dict[str, Any]:
        """Extra keyword arguments of :func:`~tal_lab.ops.trident_losses.trident_losses` (none here)."""
        return {}

    def score_factors(self, outputs: Mapping[str, list[Tensor]], index: int) -> list[Tensor] | None:
        """Per-level score multipliers of video ``index`` at decoding (None: no re-scoring)."""
        return None

    def losses(self, outputs: Mapping[str, list[Tensor]], points: Sequence[Tensor], valid: Sequence[Tensor],
               gt_segments: Sequence[Tensor], gt_labels: Sequence[Tensor],
               normalizer: LossNormalizer) -> dict[str, Tensor]:
        cls_targets, reg_targets = self.assign(points, gt_segments, gt_labels)
        losses = trident_losses(
            torch.cat(outputs["cls_logits"], 1), torch.cat(outputs["reg_offsets"], 1), torch.cat(list(valid), 1),
            cls_targets, reg_targets, normalizer, self.loss_weight, self.label_smoothing, self.iou_weight_power,
            **self.loss_extras(outputs),
        )
        return {key: value for key, value in losses.items() if key != "num_pos"}  # type: ignore[misc]

    def predict(self, outputs: Mapping[str, list[Tensor]], points: Sequence[Tensor], valid: Sequence[Tensor],
                index: int, video: Mapping[str, Any], test_cfg: Mapping[str, Any]) -> dict[str, Tensor]:
        factors = self.score_factors(outputs, index)
        level_factors: Sequence[Tensor | None] = [None] * len(points) if factors is None else factors
        scores = [level_scores(x[index], m[index], f)
                  for x, m, f in zip(outputs["cls_logits"], valid, level_factors, strict=True)]
        segments = [level_segments(x[index], p) for x, p in zip(outputs["reg_offsets"], points, strict=True)]
        return decode_video(scores, segments, test_cfg, video)


class TridentHead(BoundaryHead):
    """TriDet's cls / start / end / centre-offset heads with its losses and decoding.

    Outputs (levels in order, 0 at invalid steps): ``cls_logits[l]`` (B, T_l, C) raw logits;
    ``reg_offsets[l]`` (B, T_l, C, 2): the decoded (start, end) distances in strides, per class.

    Args:
        boundary_kernel_size: conv kernel of the start / end heads (TriDet's boudary_kernel_size).
        Others: as :class:`BoundaryHead` and :class:`~tal_lab.models.heads.ActionFormerHead`.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_classes: int, num_levels: int,
                 num_bins: int = 16, iou_weight_power: float = 0.2, num_layers: int = 3,
                 kernel_size: int = 3, boundary_kernel_size: int = 3, with_ln: bool = True,
                 prior_prob: float = 0.01, empty_cls: Sequence[int] = (),
                 center_sample: str = "radius", center_sample_radius: float = 1.5,
                 loss_weight: LossWeight = 1.0, label_smoothing: float = 0.0) -> None:
        super().__init__(num_classes, num_bins, iou_weight_power, center_sample, center_sample_radius,
                         loss_weight, label_smoothing)
        # registration order = TriDet's state-dict order
        self.cls_head = ClsHead(input_dim, feat_dim, num_classes, prior_prob, num_layers, kernel_size,
                                with_ln, empty_cls)
        self.start_head = ClsHead(input_dim, feat_dim, num_classes, prior_prob, num_layers,
                                  boundary_kernel_size, with_ln, empty_cls)
        self.end_head = ClsHead(input_dim, feat_dim, num_classes, prior_prob, num_layers,
                                boundary_kernel_size, with_ln, empty_cls)
        self.reg_head = BinRegHead(input_dim, feat_dim, num_levels, num_bins, num_layers, kernel_size, with_ln)

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> dict[str, list[Tensor]]:
        # the boundary heads read detached features: TriDet keeps their gradients out of the neck
        detached = [x.detach() for x in feats]
        cls = self.cls_head(feats, masks)
        starts = self.start_head(detached, masks)
        ends = self.end_head(detached, masks)
        centers = self.reg_head(feats, masks)
        logits, offsets = [], []
        for c, s, e, o, m in zip(cls, starts, ends, centers, masks):
            log_probs, valid = self.boundary_distributions(s, e, o, m)
            logits.append(c.transpose(1, 2))
            offsets.append(expected_offsets(log_probs) * valid)  # (B, T_l, C, 2)
        return {"cls_logits": logits, "reg_offsets": offsets}


def boundary_head_options(model: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`~tal_lab.models.heads.head_options` plus the boundary options of ``cfg['model']``
    (num_bins, iou_weight_power, TriDet's boudary_kernel_size)."""
    return {**head_options(model), "num_bins": model["num_bins"], "iou_weight_power": model["iou_weight_power"],
            "boundary_kernel_size": model["boudary_kernel_size"]}


@register_head("trident")
def build_trident_head(model: Mapping[str, Any], in_channels: int, num_levels: int) -> TridentHead:
    """TriDet's Trident head from ``cfg['model']`` (num_bins, iou_weight_power, boudary_kernel_size)."""
    return TridentHead(in_channels, model["head_dim"], model["num_classes"], num_levels,
                       **boundary_head_options(model))
