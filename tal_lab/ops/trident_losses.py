"""TriDet's training losses (CVPR 2023) on boundary distributions (:mod:`tal_lab.ops.boundary`).

:func:`trident_losses` is TriDet's ``losses``: focal classification whose positive entries are
weighted by IoU ** iou_weight_power (the IoU of the decoded segment, not detached, as TriDet),
DIoU regression on the decoded offsets, and optionally a distribution focal loss (Li et al., GFL
2020) that pulls each distribution onto the two bins around its target.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tal_lab.config import LossWeight
from tal_lab.ops.losses import (
    DIOU_EPS,
    LossNormalizer,
    check_batch_shapes,
    check_label_smoothing,
    combine_losses,
    count_positives,
    diou_loss_1d,
    sigmoid_focal_loss,
    smooth_labels,
)

__all__ = ["IOU_WEIGHT_MIN", "offsets_iou", "distribution_focal_loss", "trident_losses"]

# The IoU is raised to iou_weight_power < 1 (0.2): its gradient 0.2 * iou ** -0.8 is infinite at
# iou = 0. Decoded offsets are expectations with every bin's probability > 0, so the IoU is > 0
# in exact arithmetic; this floor only guards float underflow.
IOU_WEIGHT_MIN = 1e-6


def offsets_iou(pred_offsets: Tensor, target_offsets: Tensor) -> Tensor:
    """IoU of segments sharing their anchor point, given as (left, right) distances (float32).

    TriDet's ``ctr_giou_loss_1d`` is 1 - this (GIoU equals IoU when both segments contain the
    anchor).

    Shapes:
        pred_offsets, target_offsets: (N, 2) non-negative; returns (N,).
    """
    pred, target = pred_offsets.float(), target_offsets.float()
    inter = torch.minimum(pred[:, 0], target[:, 0]) + torch.minimum(pred[:, 1], target[:, 1])
    union = pred.sum(-1) + target.sum(-1) - inter
    return inter / union.clamp(min=DIOU_EPS)


def distribution_focal_loss(log_probs: Tensor, target_offsets: Tensor) -> Tensor:
    """Distribution focal loss (GFL): cross-entropy to the two bins around each target distance.

    A target y (clipped to [0, num_bins]) between bins i = floor(y) and i + 1 gives
    -((i + 1 - y) * log p(i) + (y - i) * log p(i + 1)), summed over both sides: the loss is
    minimal for a distribution concentrated on those two bins with mean y, so the spread of a
    trained distribution reflects how sure the model is of that boundary.

    Shapes:
        log_probs: (N, 2, num_bins + 1); target_offsets: (N, 2) in strides; returns (N,).
    """
    num_bins = log_probs.shape[-1] - 1
    target = target_offsets.to(log_probs.dtype).clamp(0, num_bins)
    low = target.floor().clamp(max=max(num_bins - 1, 0)).long()  # (N, 2)
    high = (low + 1).clamp(max=num_bins)
    w_high = target - low.to(target.dtype)
    lp_low = log_probs.gather(-1, low[..., None]).squeeze(-1)
    lp_high = log_probs.gather(-1, high[..., None]).squeeze(-1)
    return -((1 - w_high) * lp_low + w_high * lp_high).float().sum(-1)


def _pair_mask(cls_targets: Tensor, positives: Tensor, num_boundary_classes: int) -> Tensor:
    """Which (point, boundary class) entries are regressed: class-aware -> every positive class
    of a positive point (TriDet); class-agnostic (K = 1) -> every positive point once.

    Shapes:
        cls_targets: (B, P, C); positives: (B, P) -> (B, P, K) bool.
    """
    if num_boundary_classes == 1:
        return positives[..., None]
    if num_boundary_classes != cls_targets.shape[-1]:
        raise ValueError(f"boundary distributions exist for {num_boundary_classes} classes; expected 1 or "
                         f"num_classes = {cls_targets.shape[-1]}")
    return (cls_targets > 0) & positives[..., None]


def trident_losses(
    cls_logits: Tensor,
    offsets: Tensor,
    valid: Tensor,
    cls_targets: Tensor,
    reg_targets: Tensor,
    normalizer: LossNormalizer,
    loss_weight: LossWeight,
    label_smoothing: float,
    iou_weight_power: float,
    log_probs: Tensor | None = None,
    dfl_weight: float = 0.0,
) -> dict[str, Tensor | int]:
    """TriDet's training losses for one batch (updates ``normalizer`` once with the positives).

    * positives: valid points with a non-zero class target; regressed entries as
      :func:`_pair_mask` (class-aware: one per positive (point, class), as TriDet);
    * cls_loss: focal loss over valid points x classes (targets smoothed as ActionFormer), the
      entries of positive classes multiplied by IoU(decoded, target) ** iou_weight_power
      (not detached: TriDet lets this term train the boundaries too), / normaliser;
    * reg_loss: DIoU over the regressed entries / normaliser;
    * dfl_loss (when ``dfl_weight`` > 0): :func:`distribution_focal_loss` / normaliser;
    * final_loss = cls_loss + w * reg_loss + dfl_weight * dfl_loss (w = loss_weight, or
      ActionFormer's adaptive weight for 'adaptive').

    Returns:
        ``cls_loss``, ``reg_loss``, ``final_loss`` (and ``dfl_loss``) 0-d float32 tensors,
        ``num_pos`` (python int).

    Shapes:
        cls_logits: (B, P, C); offsets: (B, P, K, 2) in strides, K = C or 1; valid: (B, P)
        bool; cls_targets: (B, P, C); reg_targets: (B, P, 2); log_probs: (B, P, K, 2, bins).
    """
    batch, num_points, num_classes = cls_logits.shape
    if offsets.dim() != 4 or offsets.shape[:2] != (batch, num_points) or offsets.shape[-1] != 2:
        raise ValueError(f"offsets must be (B, P, K, 2) = ({batch}, {num_points}, K, 2), got {tuple(offsets.shape)}")
    check_batch_shapes({"valid": (valid, (batch, num_points)),
                        "cls_targets": (cls_targets, (batch, num_points, num_classes)),
                        "reg_targets": (reg_targets, (batch, num_points, 2))})
    if dfl_weight > 0 and log_probs is None:
        raise ValueError("dfl_weight > 0 needs the boundary log_probs")
    check_label_smoothing(label_smoothing)

    positives, num_pos, norm = count_positives(cls_targets, valid, normalizer)  # positives: (B, P)
    pairs = _pair_mask(cls_targets, positives, offsets.shape[2])  # (B, P, K)
    pred = offsets[pairs]  # (N, 2)
    target = reg_targets[:, :, None, :].expand(-1, -1, pairs.shape[2], -1)[pairs]  # (N, 2)

    # IoU weight of every positive (point, class) entry of the classification loss
    iou_weight = torch.ones(pairs.shape, dtype=torch.float32, device=cls_logits.device)
    if pred.shape[0] > 0 and iou_weight_power != 0:
        iou_weight[pairs] = offsets_iou(pred, target).clamp(min=IOU_WEIGHT_MIN) ** iou_weight_power
    rated = cls_targets > 0
    weight = torch.where(rated, iou_weight.expand(-1, -1, num_classes), torch.ones_like(iou_weight[..., :1]))

    targets = smooth_labels(cls_targets, label_smoothing)
    focal = sigmoid_focal_loss(cls_logits, targets, reduction="none")  # (B, P, C) float32
    cls_loss = (focal * weight)[valid].sum() / norm

    if pred.shape[0] == 0:
        reg_loss = 0.0 * offsets.float().sum()
    else:
        reg_loss = diou_loss_1d(pred, target, reduction="sum") / norm
    final_loss = combine_losses(cls_loss, reg_loss, loss_weight)
    out: dict[str, Tensor | int] = {"cls_loss": cls_loss, "reg_loss": reg_loss}
    if dfl_weight > 0:
        assert log_probs is not None
        dist = log_probs[pairs]  # (N, 2, bins)
        dfl_loss = (distribution_focal_loss(dist, target).sum() if dist.shape[0] > 0
                    else 0.0 * log_probs.float().sum()) / norm
        final_loss = final_loss + dfl_weight * dfl_loss
        out["dfl_loss"] = dfl_loss
    out["final_loss"] = final_loss
    out["num_pos"] = num_pos
    return out
