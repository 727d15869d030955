"""Inference post-processing: decode candidates, 1-D (soft-)NMS, grid -> seconds.

Pure PyTorch on the device of its inputs (CPU or GPU), reproducing ActionFormer's
``inference_single_video`` + ``batched_nms`` with its C++ ``nms_1d_cpu`` extension: same
candidates, order and labels, bit-identical scores on the golden fixtures, and the extension's
tie order. The NMS routines live in :mod:`tal_lab.ops.nms` (re-exported here); this module decodes
head outputs into candidates (:func:`decode_candidates`, one level at a time by
:func:`decode_level`), and runs the whole per-video post-processing (:func:`postprocess_video`).
The reference behaviours kept, and why, are listed in ``docs/objective.md``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from tal_lab.core.structures import grid_to_sec

from tal_lab.core.threads import single_threaded_on_cpu
from tal_lab.ops.nms import (
    NMS_LENGTH_EPS,
    SOFT_NMS_METHODS,
    batched_nms,
    float32_at_least,
    hard_nms,
    nms_iou,
    segment_voting,
    soft_nms,
)

__all__ = [
    "NMS_LENGTH_EPS",
    "NMS_METHODS",
    "SOFT_NMS_METHODS",
    "batched_nms",
    "check_nms_method",
    "clamped_seconds",
    "decode_candidates",
    "decode_level",
    "hard_nms",
    "nms_from_config",
    "nms_iou",
    "postprocess_video",
    "segment_voting",
    "soft_nms",
]

# test_cfg.nms_method: soft-NMS, hard NMS, or no suppression at all.
NMS_METHODS = ("soft", "hard", "none")


def decode_level(
    prob: Tensor, offsets: Tensor, points: Tensor, pre_nms_thresh: float, pre_nms_topk: int,
    duration_thresh: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """One level's scored candidates from its scores and offsets.

    Flattens ``prob`` point-major (index = point * C + class); keeps scores > pre_nms_thresh;
    keeps the pre_nms_topk highest; segment = [t - left * stride, t + right * stride] with the
    (left, right) offsets of the candidate's class (K = C) or of its point (K = 1); drops
    segments not longer than duration_thresh grid units.

    Returns:
        segments (N, 2) in level-0 grid units, scores (N,), labels (N,) long.

    Shapes:
        prob: (T_l, C) scores, 0 at invalid steps; offsets: (T_l, K, 2) in strides, K = C or 1;
        points: (T_l, 4) (t, reg_lo, reg_hi, stride).
    """
    num_classes = prob.shape[1]
    prob = prob.flatten()  # (T_l * C,) point-major
    above = prob > pre_nms_thresh
    flat_idx = torch.nonzero(above).squeeze(1)
    num_topk = min(pre_nms_topk, flat_idx.numel())
    # a full sort like the reference (not topk), so that equal scores keep its order
    prob, order = prob[above].sort(descending=True)
    prob, flat_idx = prob[:num_topk], flat_idx[order[:num_topk]]
    point_idx = torch.div(flat_idx, num_classes, rounding_mode="floor")
    class_idx = torch.fmod(flat_idx, num_classes)
    chosen = offsets[point_idx, class_idx if offsets.shape[1] > 1 else 0]  # (N, 2)
    pt = points[point_idx]
    seg_start = pt[:, 0] - chosen[:, 0] * pt[:, 3]
    seg_end = pt[:, 0] + chosen[:, 1] * pt[:, 3]
    long_enough = (seg_end - seg_start) > duration_thresh
    return torch.stack((seg_start, seg_end), -1)[long_enough], prob[long_enough], class_idx[long_enough]


@single_threaded_on_cpu
def decode_candidates(
    cls_logits: Sequence[Tensor], reg_offsets: Sequence[Tensor], points: Sequence[Tensor],
    valid: Sequence[Tensor], pre_nms_thresh: float, pre_nms_topk: int, duration_thresh: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Turn one video's head outputs into scored candidate segments (before NMS).

    Per level: scores = sigmoid(logits) x validity, then :func:`decode_level` (flattened
    point-major (index = point * C + class); keep scores > pre_nms_thresh; keep the
    pre_nms_topk highest; segment = [t - left * stride, t + right * stride]; drop segments not
    longer than duration_thresh grid units). Levels are concatenated in order.

    Returns:
        segments (N, 2) in level-0 grid units, scores (N,), labels (N,) long.

    Shapes:
        cls_logits[l]: (T_l, C); reg_offsets[l]: (T_l, 2) in strides; points[l]: (T_l, 4)
        (t, reg_lo, reg_hi, stride); valid[l]: (T_l,) bool.
    """
    if not len(cls_logits) == len(reg_offsets) == len(points) == len(valid):
        raise ValueError(
            f"levels differ: {len(cls_logits)} cls_logits, {len(reg_offsets)} reg_offsets, "
            f"{len(points)} points, {len(valid)} valid"
        )
    segs_all, scores_all, labels_all = [], [], []
    for level, (logits, offsets, pts, mask) in enumerate(zip(cls_logits, reg_offsets, points, valid)):
        steps, _ = logits.shape  # (T_l, C)
        if offsets.shape != (steps, 2) or pts.shape != (steps, 4) or mask.shape != (steps,):
            raise ValueError(
                f"level {level}: expected reg_offsets ({steps}, 2), points ({steps}, 4), valid ({steps},); "
                f"got {tuple(offsets.shape)}, {tuple(pts.shape)}, {tuple(mask.shape)}"
            )
        logits, offsets, pts = float32_at_least(logits), float32_at_least(offsets), float32_at_least(pts)
        prob = logits.sigmoid() * mask[:, None]  # (T_l, C)
        segs, scores, labels = decode_level(prob, offsets[:, None, :], pts, pre_nms_thresh, pre_nms_topk,
                                            duration_thresh)
        segs_all.append(segs)
        scores_all.append(scores)
        labels_all.append(labels)
    return torch.cat(segs_all), torch.cat(scores_all), torch.cat(labels_all)


def check_nms_method(test_cfg: Mapping[str, Any]) -> str:
    """``test_cfg['nms_method']``, checked to be one of :data:`NMS_METHODS`."""
    method = test_cfg["nms_method"]
    if method not in NMS_METHODS:
        raise ValueError(f"test_cfg.nms_method must be 'soft', 'hard' or 'none', got {method!r}")
    return method


def nms_from_config(
    segments: Tensor, scores: Tensor, labels: Tensor, test_cfg: Mapping[str, Any]
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`~tal_lab.ops.nms.batched_nms` with the options of ActionFormer's ``test_cfg``
    (nms_method 'soft' or 'hard', iou_threshold, min_score, max_seg_num, multiclass_nms,
    nms_sigma, voting_thresh).

    Shapes:
        as :func:`~tal_lab.ops.nms.batched_nms`.
    """
    return batched_nms(
        segments, scores, labels, iou_threshold=test_cfg["iou_threshold"], min_score=test_cfg["min_score"],
        max_seg_num=test_cfg["max_seg_num"], use_soft_nms=check_nms_method(test_cfg) == "soft",
        multiclass=test_cfg["multiclass_nms"], sigma=test_cfg["nms_sigma"],
        voting_thresh=test_cfg["voting_thresh"],
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
def postprocess_video(
    cls_logits: Sequence[Tensor], reg_offsets: Sequence[Tensor], points: Sequence[Tensor],
    valid: Sequence[Tensor], test_cfg: Mapping[str, Any], fps: float, duration: float,
    feat_stride: float, num_frames: float,
) -> dict[str, Tensor]:
    """One video's detections in seconds: decode, NMS as ``test_cfg`` says, grid -> seconds.

    Args:
        test_cfg: ActionFormer's ``test_cfg`` (pre_nms_thresh, pre_nms_topk, duration_thresh,
            nms_method 'soft' / 'hard' / 'none', iou_threshold, min_score, max_seg_num,
            multiclass_nms, nms_sigma, voting_thresh).
        fps, duration (seconds), feat_stride (frames per feature step), num_frames (frames per
            feature window): the video's metadata.

    Returns:
        ``segments_sec`` (N, 2) clamped to [0, duration], ``scores`` (N,), ``labels`` (N,) long,
        ``segments_grid`` (N, 2) the same segments in level-0 grid units (before conversion).

    Shapes:
        as :func:`decode_candidates`.
    """
    method = check_nms_method(test_cfg)
    segments, scores, labels = decode_candidates(
        cls_logits, reg_offsets, points, valid, pre_nms_thresh=test_cfg["pre_nms_thresh"],
        pre_nms_topk=test_cfg["pre_nms_topk"], duration_thresh=test_cfg["duration_thresh"],
    )
    if method != "none":
        segments, scores, labels = nms_from_config(segments, scores, labels, test_cfg)
    segments_sec = clamped_seconds(segments, fps=fps, duration=duration, feat_stride=feat_stride,
                                   num_frames=num_frames)
    return {"segments_sec": segments_sec, "scores": scores, "labels": labels, "segments_grid": segments}
