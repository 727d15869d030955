"""Decoding: the one tail that turns every head's per-level scores and segments into detections.

A head supplies only how its raw outputs become dense candidates, per pyramid level: scores
(T_l, C) and segments (T_l, K, 2) in level-0 grid units, with K = C (class-specific boundaries,
TriDet's Trident) or K = 1 (shared by the classes, ActionFormer). :func:`level_scores` and
:func:`level_segments` are the conversions the heads share (sigmoid x validity x optional
re-scoring; point +- offsets x stride). Everything after is :func:`decode_video`, for every head:

1. candidate selection per level (:func:`select_candidates`): scores > ``pre_nms_thresh``, the
   ``pre_nms_topk`` highest, segments longer than ``duration_thresh``; levels concatenated;
2. suppression (:func:`suppress`): ActionFormer's ``batched_nms`` (:mod:`tal_lab.ops.nms`) per
   ``nms_method`` 'soft' / 'hard', capped at ``max_seg_num``; 'none' keeps the candidates as
   selected (level order, uncapped), as ActionFormer and TriDet both do;
3. grid -> seconds, truncated to [0, duration] (:func:`clamped_seconds`).

This reproduces ActionFormer's ``inference_single_video`` + ``postprocessing`` (and TriDet's, which
differs only in the per-class offsets): same candidates, order and labels, bit-identical scores
on the golden fixtures. The reference behaviours kept, and why: ``docs/objective.md``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from tal_lab.core.structures import grid_to_sec
from tal_lab.core.threads import single_threaded_on_cpu
from tal_lab.ops.nms import batched_nms

__all__ = [
    "NMS_METHODS",
    "check_nms_method",
    "clamped_seconds",
    "decode_video",
    "level_scores",
    "level_segments",
    "select_candidates",
    "suppress",
]

# test_cfg.nms_method: soft-NMS, hard NMS, or no suppression at all.
NMS_METHODS = ("soft", "hard", "none")


@single_threaded_on_cpu
def level_scores(cls_logits: Tensor, valid: Tensor, score_factors: Tensor | None = None) -> Tensor:
    """One level's candidate scores: sigmoid(logits) x validity (x ``score_factors``).

    Computed in float32 at least: half / bfloat16 (AMP) outputs are decoded in float32, as the
    reference does.

    Shapes:
        cls_logits: (T_l, C); valid: (T_l,) bool; score_factors: (T_l, K) with K = 1 or C, in
        [0, 1]; returns (T_l, C), 0 at invalid steps.
    """
    steps, num_classes = cls_logits.shape
    if valid.shape != (steps,):
        raise ValueError(f"valid must be ({steps},), got {tuple(valid.shape)}")
    dtype = torch.promote_types(cls_logits.dtype, torch.float32)
    prob = cls_logits.to(dtype).sigmoid() * valid[:, None]  # (T_l, C)
    if score_factors is not None:
        shape = tuple(score_factors.shape)
        if len(shape) != 2 or shape[0] != steps or shape[1] not in (1, num_classes):
            raise ValueError(f"score_factors must be ({steps}, 1 or {num_classes}), got {shape}")
        prob = prob * score_factors.to(dtype).expand(steps, num_classes)
    return prob


@single_threaded_on_cpu
def level_segments(offsets: Tensor, points: Tensor) -> Tensor:
    """One level's candidate segments [t - left * stride, t + right * stride] in level-0 grid units.

    Shapes:
        offsets: (T_l, K, 2) (left, right) in strides, K = C or 1; points: (T_l, 4)
        (t, reg_lo, reg_hi, stride); returns (T_l, K, 2).
    """
    steps = points.shape[0]
    if points.shape != (steps, 4) or offsets.dim() != 3 or offsets.shape[0] != steps or offsets.shape[2] != 2:
        raise ValueError(f"expected offsets ({steps}, K, 2) and points ({steps}, 4); "
                         f"got {tuple(offsets.shape)} and {tuple(points.shape)}")
    dtype = torch.promote_types(torch.promote_types(offsets.dtype, points.dtype), torch.float32)
    offsets, points = offsets.to(dtype), points.to(dtype)
    t, stride = points[:, None, 0], points[:, None, 3]  # (T_l, 1)
    return torch.stack((t - offsets[..., 0] * stride, t + offsets[..., 1] * stride), -1)  # (T_l, K, 2)


def _select_level(
    scores: Tensor, segments: Tensor, pre_nms_thresh: float, pre_nms_topk: int, duration_thresh: float
) -> tuple[Tensor, Tensor, Tensor]:
    """One level's candidates: flattened point-major (index = point * C + class), scores >
    pre_nms_thresh, the pre_nms_topk highest, segments longer than duration_thresh grid units.

    Shapes:
        scores: (T_l, C); segments: (T_l, K, 2), K = C or 1. Returns segments (N, 2), scores
        (N,) in decreasing order, labels (N,) long.
    """
    num_classes = scores.shape[1]
    prob = scores.flatten()  # (T_l * C,) point-major
    above = prob > pre_nms_thresh
    flat_idx = torch.nonzero(above).squeeze(1)
    num_topk = min(pre_nms_topk, flat_idx.numel())
    # a full sort like the reference (not topk), so that equal scores keep its order
    prob, order = prob[above].sort(descending=True)
    prob, flat_idx = prob[:num_topk], flat_idx[order[:num_topk]]
    point_idx = torch.div(flat_idx, num_classes, rounding_mode="floor")
    class_idx = torch.fmod(flat_idx, num_classes)
    chosen = segments[point_idx, class_idx if segments.shape[1] > 1 else 0]  # (N, 2)
    long_enough = (chosen[:, 1] - chosen[:, 0]) > duration_thresh
    return chosen[long_enough], prob[long_enough], class_idx[long_enough]


def select_candidates(
    scores: Sequence[Tensor], segments: Sequence[Tensor], pre_nms_thresh: float, pre_nms_topk: int,
    duration_thresh: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """One video's candidates before suppression, level by level (:func:`_select_level`), levels
    concatenated in order.

    Returns:
        segments (N, 2) in level-0 grid units, scores (N,), labels (N,) long.

    Shapes:
        scores[l]: (T_l, C) from :func:`level_scores`; segments[l]: (T_l, K, 2) from
        :func:`level_segments`, K = C or 1.
    """
    if len(scores) != len(segments):
        raise ValueError(f"levels differ: {len(scores)} score levels, {len(segments)} segment levels")
    parts = []
    for level, (level_prob, level_segs) in enumerate(zip(scores, segments)):
        steps, num_classes = level_prob.shape
        shape = tuple(level_segs.shape)
        if len(shape) != 3 or shape[0] != steps or shape[1] not in (1, num_classes) or shape[2] != 2:
            raise ValueError(f"level {level}: segments must be ({steps}, 1 or {num_classes}, 2), got {shape}")
        parts.append(_select_level(level_prob, level_segs, pre_nms_thresh, pre_nms_topk, duration_thresh))
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])


def check_nms_method(test_cfg: Mapping[str, Any]) -> str:
    """``test_cfg['nms_method']``, checked to be one of :data:`NMS_METHODS`."""
    method = test_cfg["nms_method"]
    if method not in NMS_METHODS:
        raise ValueError(f"test_cfg.nms_method must be 'soft', 'hard' or 'none', got {method!r}")
    return method


def suppress(
    segments: Tensor, scores: Tensor, labels: Tensor, test_cfg: Mapping[str, Any]
) -> tuple[Tensor, Tensor, Tensor]:
    """Suppression as ``test_cfg`` says: :func:`~tal_lab.ops.nms.batched_nms` with ActionFormer's
    options (nms_method 'soft' or 'hard', iou_threshold, min_score, max_seg_num, multiclass_nms,
    nms_sigma, voting_thresh) and ``voting_weights`` (the recipe option), sorted by decreasing
    score; with 'none', the candidates as they are (level order, not capped), as ActionFormer's
    and TriDet's ``postprocessing`` leave them.

    Shapes:
        as :func:`~tal_lab.ops.nms.batched_nms`.
    """
    method = check_nms_method(test_cfg)
    if method == "none":
        return segments, scores, labels
    return batched_nms(
        segments, scores, labels, iou_threshold=test_cfg["iou_threshold"], min_score=test_cfg["min_score"],
        max_seg_num=test_cfg["max_seg_num"], use_soft_nms=method == "soft", multiclass=test_cfg["multiclass_nms"],
        sigma=test_cfg["nms_sigma"], voting_thresh=test_cfg["voting_thresh"],
        # a test_cfg of the reference itself (golden fixtures) has no such key: ActionFormer's weights
        voting_weights=test_cfg.get("voting_weights", "score_iou"),
    )


def clamped_seconds(segments_grid: Tensor, fps: float, duration: float, feat_stride: float,
                    num_frames: float) -> Tensor:
    """Segments in level-0 grid units -> seconds, truncated to [0, duration] as the reference does.

    Shapes:
        segments_grid: (N, 2) -> (N, 2).
    """
    segments_sec = grid_to_sec(segments_grid, fps=fps, feat_stride=feat_stride, num_frames=num_frames)
    # the reference's truncation: <= 0 -> 0 and >= duration -> duration
    segments_sec = torch.where(segments_sec <= 0.0, torch.zeros_like(segments_sec), segments_sec)
    return torch.where(segments_sec >= duration, torch.full_like(segments_sec, duration), segments_sec)


@single_threaded_on_cpu
def decode_video(
    scores: Sequence[Tensor], segments: Sequence[Tensor], test_cfg: Mapping[str, Any], video: Mapping[str, Any]
) -> dict[str, Tensor]:
    """One video's detections in seconds, from any head's per-level candidates.

    Args:
        scores, segments: per level, from the head (:func:`level_scores`, :func:`level_segments`).
        test_cfg: ActionFormer's ``test_cfg`` (pre_nms_thresh, pre_nms_topk, duration_thresh,
            nms_method 'soft' / 'hard' / 'none', iou_threshold, min_score, max_seg_num,
            multiclass_nms, nms_sigma, voting_thresh) and tal_lab's ``voting_weights``.
        video: the video's metadata: ``fps``, ``duration`` (s), ``feat_stride`` (frames per
            feature step), ``feat_num_frames`` (frames per feature window).

    Returns:
        ``segments_sec`` (N, 2) clamped to [0, duration], ``scores`` (N,), ``labels`` (N,) long,
        ``segments_grid`` (N, 2) the same segments in level-0 grid units (before conversion).

    Shapes:
        as :func:`select_candidates`.
    """
    candidates = select_candidates(scores, segments, pre_nms_thresh=test_cfg["pre_nms_thresh"],
                                   pre_nms_topk=test_cfg["pre_nms_topk"], duration_thresh=test_cfg["duration_thresh"])
    segs, kept_scores, labels = suppress(*candidates, test_cfg)
    segments_sec = clamped_seconds(segs, fps=float(video["fps"]), duration=float(video["duration"]),
                                   feat_stride=float(video["feat_stride"]), num_frames=float(video["feat_num_frames"]))
    return {"segments_sec": segments_sec, "scores": kept_scores, "labels": labels, "segments_grid": segs}
