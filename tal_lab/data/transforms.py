"""Training-time transforms of a video dict: random truncation, and ActivityNet's resize.

Facts from ActionFormer's ``libs/datasets`` (the release this project follows):

* ``truncate_video``: a video longer than ``max_seq_len`` is cut to a random window of
  ``max_seq_len`` steps; with ``crop_ratio`` = (lo, hi) a shorter video is cut to a random
  length in ``[round(lo * T), round(hi * T)]``. Up to 200 windows are tried until one keeps at
  least one action whose overlap with the window (widened by the half-window offset on both
  sides) is at least ``trunc_thresh`` of its length; kept segments are clipped to the widened
  window and shifted by the window start. Random draws use ``rng.randint`` (both ends
  inclusive), as the reference uses python's ``random``. TriDet's copy uses the window itself,
  not widened: ``trunc_window='clipped'`` (the recipe option ``dataset.trunc_window``).
* ``resize_features``: linear interpolation of (C, T) features to a fixed length
  (``align_corners=False``), ActivityNet's ``force_upsampling``.
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from tal_lab.config.dialects import TRUNC_WINDOWS

__all__ = ["truncate_video", "resize_features", "drop_segments_past_features", "clip_segments_to_features",
           "MAX_TRUNCATION_TRIALS"]

# ActionFormer's truncate_feats tries this many windows before keeping the last one.
MAX_TRUNCATION_TRIALS = 200


def truncate_video(
    video: dict[str, Any],
    max_seq_len: int,
    trunc_thresh: float,
    offset_grid: float,
    crop_ratio: tuple[float, float] | list[float] | None,
    rng: random.Random,
    max_num_trials: int = MAX_TRUNCATION_TRIALS,
    trunc_window: str = "widened",
) -> dict[str, Any]:
    """Randomly truncate a training video dict (features, segments, labels); returns a new dict.

    Args:
        video: the dataset's video dict; ``segments`` in grid units.
        offset_grid: the half-window offset in grid steps (0.5 * num_frames / feat_stride);
            a feature at the window's edge still sees this far past it.
        rng: the dataset's random generator (seeded per DataLoader worker).
        trunc_window: 'widened' (ActionFormer): overlaps and kept segments use the window
            widened by ``offset_grid`` on both sides; 'clipped' (TriDet): the window itself.

    Shapes:
        video['feats']: (C, T) -> (C, T') with T' <= max(max_seq_len, T).
        video['segments']: (N, 2) -> (N', 2); video['labels']: (N,) -> (N',).
    """
    if trunc_window not in TRUNC_WINDOWS:
        raise ValueError(f"dataset.trunc_window must be one of {TRUNC_WINDOWS}, got {trunc_window!r}")
    widening = offset_grid if trunc_window == "widened" else 0.0
    feats: Tensor = video["feats"]
    feat_len = feats.shape[1]
    target_len = max_seq_len
    if feat_len <= max_seq_len:
        if crop_ratio is None:
            return video
        target_len = rng.randint(max(round(crop_ratio[0] * feat_len), 1),
                                 min(round(crop_ratio[1] * feat_len), feat_len))
        if target_len == feat_len:
            return video
    segments: Tensor = video["segments"]
    seg_len = (segments[:, 1] - segments[:, 0]).abs()
    for _ in range(max_num_trials):
        start = rng.randint(0, feat_len - target_len)
        window = torch.as_tensor([start, start + target_len], dtype=torch.float32)
        left = torch.maximum(window[0] - widening, segments[:, 0])
        right = torch.minimum(window[1] + widening, segments[:, 1])
        inter_ratio = (right - left).clamp(min=0) / seg_len
        keep = inter_ratio >= trunc_thresh
        if bool(keep.any()):
            break
    out = dict(video)
    out["feats"] = feats[:, start:start + target_len].clone()
    out["segments"] = torch.stack((left[keep], right[keep]), dim=1) - start
    out["labels"] = video["labels"][keep].clone()
    return out


def resize_features(feats: Tensor, length: int) -> Tensor:
    """Linearly resample (C, T) features to (C, length), ActivityNet's force_upsampling.

    Shapes:
        feats: (C, T) -> (C, length).
    """
    if feats.shape[-1] == length:
        return feats
    return F.interpolate(feats[None], size=length, mode="linear", align_corners=False)[0]


def drop_segments_past_features(
    segments: Tensor, labels: Tensor, feat_len: int, offset_grid: float, trunc_thresh: float
) -> tuple[Tensor, Tensor]:
    """ActivityNet training fix-up: drop actions mostly past the features, clip the rest.

    A few ActivityNet videos miss frames, so annotations run past their features. Segments
    starting at or after ``feat_len + offset_grid`` are dropped; others are kept when at least
    ``trunc_thresh`` of their length lies before that point, and are clipped to it.

    Shapes:
        segments: (N, 2) grid units; labels: (N,) -> (N', 2), (N',).
    """
    video_len = feat_len + offset_grid
    starts, ends = segments[:, 0].double(), segments[:, 1].double()
    inside = (torch.clamp(ends, max=video_len) - starts) / (ends - starts)
    keep = (starts < video_len) & (inside >= trunc_thresh)
    return segments[keep].clamp(max=video_len), labels[keep]


def clip_segments_to_features(segments: Tensor, labels: Tensor, feat_len: int) -> tuple[Tensor, Tensor]:
    """TriDet's HACS training fix-up: drop actions starting at or after the last feature step
    (``feat_len``), clip the others to it (no half-window offset, no overlap threshold).

    Shapes:
        segments: (N, 2) grid units; labels: (N,) -> (N', 2), (N',).
    """
    keep = segments[:, 0] < feat_len
    return segments[keep].clamp(max=feat_len), labels[keep]
