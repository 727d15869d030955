"""Label assignment: which pyramid points are positives for which ground-truth segment.

ActionFormer's rule (reproduced exactly, quirks included), for every point (t, lo, hi, stride)
of the concatenated pyramid and every ground-truth segment [s, e] (all in level-0 grid units):

* **centre sampling**: the point must lie strictly inside the centre region
  [c - radius * stride, c + radius * stride] (c the segment centre) clipped to [s, e];
  with ``center_sample="none"`` it must lie strictly inside [s, e];
* **regression range**: max(t - s, e - t) must lie in [lo, hi], inclusive at both ends;
* **shortest segment wins**: among the segments a point may take, the shortest is chosen; every
  segment within :data:`SAME_LENGTH_TOL_GRID` of that length adds its class to a multi-hot
  classification target (THUMOS14 has identical segments with two labels, e.g.
  CliffDiving/Diving), while the regression target comes from the *first* shortest segment;
* regression targets are (t - s, e - t) divided by the point's stride.

Reference quirk kept on purpose: a point that is a positive for no segment still gets the
regression target of the video's segment 0 (the reference gathers at ``argmin`` of an all-inf
row). Those rows are never used by the loss (it reads regression targets of positives only), but
the golden fixtures store them, so they are reproduced. Videos without ground truth get all-zero
targets.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = ["SAME_LENGTH_TOL_GRID", "assign_labels", "positive_mask"]

# ActionFormer: "multiple actions with very similar durations (e.g., THUMOS14)" share a point's
# class target when their lengths differ by at most this many grid steps.
SAME_LENGTH_TOL_GRID = 1e-3


def _pad_ground_truth(
    gt_segments: Sequence[Tensor], gt_labels: Sequence[Tensor], dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    """Stack per-video ground truth into padded tensors.

    Shapes:
        returns segments (B, N_max, 2) in ``dtype``, labels (B, N_max) long, valid (B, N_max) bool.
    """
    batch = len(gt_segments)
    n_max = max([int(seg.shape[0]) for seg in gt_segments] + [1])
    segments = torch.zeros(batch, n_max, 2, dtype=dtype, device=device)
    labels = torch.zeros(batch, n_max, dtype=torch.long, device=device)
    valid = torch.zeros(batch, n_max, dtype=torch.bool, device=device)
    for b, (seg, lab) in enumerate(zip(gt_segments, gt_labels)):
        n = int(seg.shape[0])
        segments[b, :n] = seg.to(device=device, dtype=dtype)
        labels[b, :n] = lab.to(device=device, dtype=torch.long)
        valid[b, :n] = True
    return segments, labels, valid


def _check_inputs(
    points: Tensor, gt_segments: Sequence[Tensor], gt_labels: Sequence[Tensor], num_classes: int
) -> None:
    if points.dim() != 2 or points.shape[1] != 4:
        raise ValueError(f"points must be (sum T_l, 4) [t, reg_lo, reg_hi, stride], got {tuple(points.shape)}")
    if len(gt_segments) != len(gt_labels):
        raise ValueError(f"{len(gt_segments)} gt_segments tensors but {len(gt_labels)} gt_labels tensors")
    if len(gt_segments) == 0:
        raise ValueError("assign_labels needs at least one video (got empty gt lists)")
    for b, (seg, lab) in enumerate(zip(gt_segments, gt_labels)):
        if seg.dim() != 2 or seg.shape[1] != 2:
            raise ValueError(f"video {b}: gt_segments must be (N, 2), got {tuple(seg.shape)}")
        if lab.dim() != 1 or lab.shape[0] != seg.shape[0]:
            raise ValueError(f"video {b}: gt_labels must be ({seg.shape[0]},), got {tuple(lab.shape)}")
        if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= num_classes):
            raise ValueError(f"video {b}: gt label outside [0, {num_classes}): {lab.tolist()}")


@torch.no_grad()
def assign_labels(
    points: Tensor,
    gt_segments: Sequence[Tensor],
    gt_labels: Sequence[Tensor],
    num_classes: int,
    center_sample_radius: float,
    center_sample: str = "radius",
) -> tuple[Tensor, Tensor]:
    """Classification and regression targets for every point of the pyramid, for a batch.

    Vectorised over videos, points and segments (ground truth is padded to the longest list).
    Computed in the promoted dtype of ``points`` and ``gt_segments`` (float64 in, float64 out).

    Args:
        points: the concatenated pyramid points, columns (t, reg_range_lo, reg_range_hi, stride);
            t and the ranges in level-0 grid units.
        gt_segments: per video, segments [start, end] in level-0 grid units.
        gt_labels: per video, class ids in [0, num_classes).
        num_classes: C.
        center_sample_radius: half-width of the centre region, in strides (1.5 in ActionFormer).
        center_sample: ``"radius"`` (ActionFormer's default) or ``"none"`` (any point strictly
            inside the segment).

    Returns:
        cls_targets: multi-hot, 0/1 (all zero for negatives).
        reg_targets: (left, right) distances divided by the point's stride.

    Shapes:
        points: (P, 4) with P = sum_l T_l; gt_segments[b]: (N_b, 2); gt_labels[b]: (N_b,).
        returns cls_targets (B, P, C) and reg_targets (B, P, 2).
    """
    _check_inputs(points, gt_segments, gt_labels, num_classes)
    if center_sample not in ("radius", "none"):
        raise ValueError(f"center_sample must be 'radius' or 'none', got {center_sample!r}")
    dtype = torch.promote_types(points.dtype, gt_segments[0].dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    device = points.device
    pts = points.to(dtype)
    segs, labels, gt_valid = _pad_ground_truth(gt_segments, gt_labels, dtype, device)

    t = pts[None, :, 0, None]  # (1, P, 1)
    reg_lo, reg_hi, stride = pts[None, :, 1, None], pts[None, :, 2, None], pts[None, :, 3, None]
    start, end = segs[:, None, :, 0], segs[:, None, :, 1]  # (B, 1, N)

    left = t - start  # (B, P, N)
    right = end - t
    if center_sample == "radius":
        center = 0.5 * (start + end)
        region_lo = torch.maximum(center - stride * center_sample_radius, start)
        region_hi = torch.minimum(center + stride * center_sample_radius, end)
        inside = torch.minimum(t - region_lo, region_hi - t) > 0
    else:
        inside = torch.minimum(left, right) > 0
    max_dist = torch.maximum(left, right)
    in_range = (max_dist >= reg_lo) & (max_dist <= reg_hi)

    lengths = (end - start).expand_as(left)  # (B, P, N)
    candidate = inside & in_range & gt_valid[:, None, :]
    lengths = torch.where(candidate, lengths, torch.full_like(lengths, float("inf")))
    min_len, first_shortest = lengths.min(dim=2)  # (B, P); first index on ties (index 0 if none)

    same_length = (lengths <= min_len[..., None] + SAME_LENGTH_TOL_GRID) & torch.isfinite(lengths)
    one_hot = torch.nn.functional.one_hot(labels, num_classes).to(dtype)  # (B, N, C)
    one_hot = one_hot * gt_valid[..., None]
    cls_targets = torch.bmm(same_length.to(dtype), one_hot).clamp_(0.0, 1.0)  # (B, P, C)

    reg_all = torch.stack((left, right), dim=-1)  # (B, P, N, 2)
    index = first_shortest[..., None, None].expand(-1, -1, 1, 2)
    reg_targets = reg_all.gather(2, index).squeeze(2) / pts[None, :, 3, None]  # (B, P, 2)

    has_gt = gt_valid.any(dim=1)  # (B,): videos without ground truth get zero targets
    reg_targets = reg_targets * has_gt[:, None, None]
    return cls_targets, reg_targets


def positive_mask(cls_targets: Tensor, valid: Tensor) -> Tensor:
    """Points that are positives for at least one class and valid (not padding).

    Shapes:
        cls_targets: (B, P, C); valid: (B, P) bool; returns (B, P) bool.
    """
    return (cls_targets.sum(-1) > 0) & valid
