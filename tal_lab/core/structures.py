"""Shared structures: time-unit conversions, temporal IoU and batch padding.

Two time units appear in TAL code and mixing them is the classic silent bug:

* seconds (``*_sec``): what annotations and reported detections use;
* feature-grid steps (``*_grid``): index of a feature vector at the input resolution (level 0).
  Feature ``i`` covers frames ``[i * feat_stride, i * feat_stride + num_frames)``, so its centre
  sits at frame ``i * feat_stride + num_frames / 2`` (the half-window offset).

:func:`sec_to_grid` and :func:`grid_to_sec` are the one pair of conversions; every module uses
them and a round-trip test ties them together.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = ["sec_to_grid", "grid_to_sec", "segment_tiou", "padded_length", "pad_batch"]


def sec_to_grid(segments_sec: Tensor, fps: float, feat_stride: float, num_frames: float) -> Tensor:
    """Convert segments from seconds to feature-grid steps (ActionFormer's dataset conversion).

    grid = (sec * fps - 0.5 * num_frames) / feat_stride

    Shapes:
        segments_sec: (..., 2) or any shape; returned with the same shape.
    """
    return (segments_sec * fps - 0.5 * num_frames) / feat_stride


def grid_to_sec(segments_grid: Tensor, fps: float, feat_stride: float, num_frames: float) -> Tensor:
    """Convert segments from feature-grid steps to seconds (ActionFormer's post-processing).

    sec = (grid * feat_stride + 0.5 * num_frames) / fps. No clamping: callers clamp to
    [0, duration] where the reference does.

    Shapes:
        segments_grid: any shape; returned with the same shape.
    """
    return (segments_grid * feat_stride + 0.5 * num_frames) / fps


def segment_tiou(segments_a: Tensor, segments_b: Tensor) -> Tensor:
    """Pairwise temporal IoU between two sets of segments.

    Segments of zero length that do not overlap anything give 0 (not NaN).

    Shapes:
        segments_a: (N, 2) [start, end]; segments_b: (M, 2); returns (N, M).
    """
    start = torch.maximum(segments_a[:, None, 0], segments_b[None, :, 0])
    end = torch.minimum(segments_a[:, None, 1], segments_b[None, :, 1])
    inter = (end - start).clamp(min=0)
    len_a = (segments_a[:, 1] - segments_a[:, 0]).clamp(min=0)
    len_b = (segments_b[:, 1] - segments_b[:, 0]).clamp(min=0)
    union = len_a[:, None] + len_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(inter))


def padded_length(
    lengths: Sequence[int],
    max_seq_len: int,
    max_div_factor: int,
    training: bool,
    pad_to_max_seq_len: bool = True,
) -> int:
    """The length a batch is padded to, as ActionFormer's preprocessing chooses it.

    Training pads to ``max_seq_len`` (longer inputs are an error). Inference pads to
    ``max_seq_len`` when the longest input fits (the reference's behaviour; set
    ``pad_to_max_seq_len=False`` to pad only to the next multiple of ``max_div_factor``), and
    otherwise to the next multiple of ``max_div_factor``.

    Raises:
        ValueError: in training, an input longer than ``max_seq_len``.
    """
    if len(lengths) == 0:
        raise ValueError("cannot pad an empty batch")
    longest = int(max(lengths))
    if training:
        if longest > max_seq_len:
            raise ValueError(
                f"a training input has {longest} feature steps, more than max_seq_len={max_seq_len}; "
                "the data pipeline truncates training videos to max_seq_len"
            )
        return max_seq_len
    if longest <= max_seq_len and pad_to_max_seq_len:
        return max_seq_len
    return (longest + max_div_factor - 1) // max_div_factor * max_div_factor


def pad_batch(feats: Sequence[Tensor], length: int, padding_value: float = 0.0) -> tuple[Tensor, Tensor]:
    """Stack variable-length features into one zero-padded batch with its validity mask.

    Shapes:
        feats: B tensors of shape (C, T_b) with T_b <= length.
        returns: features (B, C, length) and mask (B, 1, length), bool, True at valid steps.
    """
    if len(feats) == 0:
        raise ValueError("cannot pad an empty batch")
    channels = feats[0].shape[0]
    for i, feat in enumerate(feats):
        if feat.dim() != 2:
            raise ValueError(f"batch item {i}: features must be (C, T), got shape {tuple(feat.shape)}")
        if feat.shape[0] != channels:
            raise ValueError(f"batch item {i}: {feat.shape[0]} channels, item 0 has {channels}")
        if feat.shape[1] > length:
            raise ValueError(f"batch item {i}: {feat.shape[1]} steps do not fit in padded length {length}")
    batch = feats[0].new_full((len(feats), channels, length), padding_value)
    for row, feat in zip(batch, feats):
        row[:, : feat.shape[1]].copy_(feat)
    lengths = torch.as_tensor([feat.shape[1] for feat in feats], device=batch.device)
    mask = torch.arange(length, device=batch.device)[None, :] < lengths[:, None]
    return batch, mask.unsqueeze(1)  # (B, 1, length)
