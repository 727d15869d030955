"""Trident regression (TriDet, CVPR 2023): boundary distributions, their losses and decoding.

A Trident head predicts each boundary as a distribution over ``num_bins + 1`` relative bins:
the distance, in strides of the point's level, from the point to its segment's start (or end)
is d in {0, ..., num_bins}. The logit of bin d combines

* the **boundary** logit of the step at that distance (start side: step t - d, end side: step
  t + d; steps outside the level count as logit 0, TriDet's zero padding), and
* the **centre-offset** logit of bin d predicted at the point itself.

softmax over d gives the distribution; its expectation is the regressed distance. Everything here
is index-by-distance (bin d = distance d on both sides). TriDet's centre-offset channels are laid
out differently: its first ``num_bins + 1`` channels are the start side with channel j meaning
distance ``num_bins - j``, the next ``num_bins + 1`` the end side with channel j meaning distance
j. :func:`center_logits_by_distance` converts, so TriDet's weights decode to the same numbers.

Losses (:func:`trident_losses`, TriDet's ``losses``): focal classification whose positive
entries are weighted by IoU ** iou_weight_power (the IoU of the decoded segment, not detached,
as TriDet), DIoU regression on the decoded offsets, and optionally a distribution focal loss
(Li et al., GFL 2020) that pulls each distribution onto the two bins around its target.

Decoding (:func:`postprocess_boundary_video`): candidates per (point, class) with class-specific
(or shared) offsets and optional per-point score factors, then :mod:`tal_lab.ops.decode`'s NMS.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

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
from tal_lab.ops.decode import check_nms_method, clamped_seconds, decode_level, nms_from_config

__all__ = [
    "IOU_WEIGHT_MIN",
    "boundary_neighbours",
    "center_logits_by_distance",
    "boundary_log_probs",
    "expected_offsets",
    "offsets_iou",
    "distribution_focal_loss",
    "trident_losses",
    "decode_boundary_candidates",
    "postprocess_boundary_video",
]

# The IoU is raised to iou_weight_power < 1 (0.2): its gradient 0.2 * iou ** -0.8 is infinite at
# iou = 0. Decoded offsets are expectations with every bin's probability > 0, so the IoU is > 0
# in exact arithmetic; this floor only guards float underflow.
IOU_WEIGHT_MIN = 1e-6
SIDES = ("start", "end")


def boundary_neighbours(logits: Tensor, num_bins: int, side: str) -> Tensor:
    """Boundary logits of the steps at distance 0..num_bins from every step, by distance.

    Start side: entry d of step t is ``logits[t - d]``; end side: ``logits[t + d]``; steps
    outside [0, T) give 0 (TriDet pads each level with zeros).

    Shapes:
        logits: (B, T, K) -> (B, T, K, num_bins + 1).
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    x = logits.transpose(1, 2)  # (B, K, T)
    if side == "start":
        windows = F.pad(x, (num_bins, 0)).unfold(-1, num_bins + 1, 1)  # [..., t, j] = logits[t - nb + j]
        windows = windows.flip(-1)  # [..., t, d] = logits[t - d]
    else:
        windows = F.pad(x, (0, num_bins)).unfold(-1, num_bins + 1, 1)  # [..., t, d] = logits[t + d]
    return windows.permute(0, 2, 1, 3)  # (B, T, K, nb + 1)


def center_logits_by_distance(center: Tensor, num_bins: int) -> Tensor:
    """TriDet's centre-offset channels -> (start, end) logits indexed by distance.

    Shapes:
        center: (B, T, 2 * (num_bins + 1)) -> (B, T, 2, num_bins + 1).
    """
    if center.shape[-1] != 2 * (num_bins + 1):
        raise ValueError(f"centre-offset logits need 2 * (num_bins + 1) = {2 * (num_bins + 1)} channels, "
                         f"got {center.shape[-1]}")
    sides = center.reshape(*center.shape[:-1], 2, num_bins + 1)  # (B, T, 2, nb + 1)
    # TriDet's start channel j is distance nb - j; its end channel j is distance j
    return torch.stack((sides[..., 0, :].flip(-1), sides[..., 1, :]), dim=-2)


def boundary_log_probs(start_logits: Tensor, end_logits: Tensor, center: Tensor, num_bins: int) -> Tensor:
    """Log-probabilities of the start / end distance of every point, per boundary class.

    log p(d) = log_softmax_d(boundary logit at distance d + centre-offset logit of bin d).

    Args:
        start_logits, end_logits: boundary logits per step; K = num_classes (Trident: one
            distribution per class) or 1 (class-agnostic boundaries).
        center: centre-offset logits in TriDet's channel layout (see the module docstring).

    Shapes:
        start_logits, end_logits: (B, T, K); center: (B, T, 2 * (num_bins + 1));
        returns (B, T, K, 2, num_bins + 1), side 0 = start, 1 = end.
    """
    by_distance = center_logits_by_distance(center, num_bins)  # (B, T, 2, nb + 1)
    start = boundary_neighbours(start_logits, num_bins, "start") + by_distance[:, :, None, 0, :]
    end = boundary_neighbours(end_logits, num_bins, "end") + by_distance[:, :, None, 1, :]
    return torch.stack((start, end), dim=-2).log_softmax(dim=-1)


def expected_offsets(log_probs: Tensor) -> Tensor:
    """Expected (start, end) distances in strides: sum_d p(d) * d.

    Shapes:
        log_probs: (..., 2, num_bins + 1) -> (..., 2).
    """
    bins = torch.arange(log_probs.shape[-1], device=log_probs.device, dtype=log_probs.dtype)
    return (log_probs.exp() * bins).sum(-1)


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
    loss_weight: float,
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
    * final_loss = cls_loss + w * reg_loss + dfl_weight * dfl_loss (w = loss_weight if > 0,
      else ActionFormer's adaptive weight).

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


def decode_boundary_candidates(
    cls_logits: Sequence[Tensor],
    offsets: Sequence[Tensor],
    points: Sequence[Tensor],
    valid: Sequence[Tensor],
    pre_nms_thresh: float,
    pre_nms_topk: int,
    duration_thresh: float,
    score_factors: Sequence[Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One video's scored candidates (before NMS) from per-(point, class) offsets.

    As :func:`tal_lab.ops.decode.decode_candidates` (per level: scores = sigmoid(logits) x
    validity, then :func:`tal_lab.ops.decode.decode_level`), except that offsets are per class
    (TriDet's ``decoded_offsets[cls, pt]``) or shared (K = 1), and scores are first multiplied by
    ``score_factors`` (uncertainty re-scoring).

    Returns:
        segments (N, 2) in level-0 grid units, scores (N,), labels (N,) long.

    Shapes:
        cls_logits[l]: (T_l, C); offsets[l]: (T_l, K, 2) in strides, K = C or 1; points[l]:
        (T_l, 4); valid[l]: (T_l,) bool; score_factors[l]: (T_l, K) in [0, 1].
    """
    if not len(cls_logits) == len(offsets) == len(points) == len(valid):
        raise ValueError(f"levels differ: {len(cls_logits)} cls_logits, {len(offsets)} offsets, "
                         f"{len(points)} points, {len(valid)} valid")
    factors = [None] * len(cls_logits) if score_factors is None else list(score_factors)
    segs_all, scores_all, labels_all = [], [], []
    for level, (logits, off, pts, mask, factor) in enumerate(zip(cls_logits, offsets, points, valid, factors)):
        steps, num_classes = logits.shape
        if off.dim() != 3 or off.shape[0] != steps or off.shape[1] not in (1, num_classes) or off.shape[2] != 2:
            raise ValueError(f"level {level}: offsets must be ({steps}, 1 or {num_classes}, 2), got {tuple(off.shape)}")
        dtype = torch.promote_types(logits.dtype, torch.float32)
        prob = logits.to(dtype).sigmoid() * mask[:, None]  # (T_l, C)
        if factor is not None:
            prob = prob * factor.to(dtype).expand(steps, num_classes)
        segs, scores, labels = decode_level(prob, off.to(dtype), pts.to(dtype), pre_nms_thresh, pre_nms_topk,
                                            duration_thresh)
        segs_all.append(segs)
        scores_all.append(scores)
        labels_all.append(labels)
    return torch.cat(segs_all), torch.cat(scores_all), torch.cat(labels_all)


def postprocess_boundary_video(
    cls_logits: Sequence[Tensor],
    offsets: Sequence[Tensor],
    points: Sequence[Tensor],
    valid: Sequence[Tensor],
    test_cfg: Mapping[str, Any],
    video: Mapping[str, Any],
    score_factors: Sequence[Tensor] | None = None,
) -> dict[str, Tensor]:
    """One video's detections in seconds: :func:`decode_boundary_candidates`, NMS as
    ``test_cfg`` says (:func:`tal_lab.ops.decode.nms_from_config`; with 'none', sorted by score),
    grid -> seconds clamped to [0, duration] (:func:`tal_lab.ops.decode.clamped_seconds`).

    Args:
        video: the video's metadata: ``fps``, ``duration`` (s), ``feat_stride``, ``feat_num_frames``.

    Returns:
        ``segments_sec`` (N, 2), ``scores`` (N,) sorted decreasing, ``labels`` (N,) long,
        ``segments_grid`` (N, 2).

    Shapes:
        as :func:`decode_boundary_candidates`.
    """
    method = check_nms_method(test_cfg)
    segments, scores, labels = decode_boundary_candidates(
        cls_logits, offsets, points, valid, pre_nms_thresh=test_cfg["pre_nms_thresh"],
        pre_nms_topk=test_cfg["pre_nms_topk"], duration_thresh=test_cfg["duration_thresh"],
        score_factors=score_factors,
    )
    if method != "none":
        segments, scores, labels = nms_from_config(segments, scores, labels, test_cfg)
    else:
        order = scores.sort(descending=True).indices
        segments, scores, labels = segments[order], scores[order], labels[order]
    segments_sec = clamped_seconds(segments, fps=float(video["fps"]), duration=float(video["duration"]),
                                   feat_stride=float(video["feat_stride"]), num_frames=float(video["feat_num_frames"]))
    return {"segments_sec": segments_sec, "scores": scores, "labels": labels, "segments_grid": segments}
