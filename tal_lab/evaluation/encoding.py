"""Validating the ground-truth and prediction frames, and encoding them as integer codes.

Frames have columns ``video-id, t-start, t-end, label`` (+ ``score`` for predictions), times in
seconds, labels either ids (ints) or names (str) on both sides. Rules that ActionFormer's
evaluator leaves to chance or gets wrong are fixed here (docs/evaluation.md):

* a prediction label outside the label space is a ``ValueError`` (the reference silently
  re-indexes or drops it); classes of the label space without GT are kept (their AP is NaN);
* predictions for videos absent from the GT are false positives (as in the reference), unless
  ``unknown_videos`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd

from tal_lab.evaluation.io import GT_COLUMNS, PRED_COLUMNS

__all__ = ["UNKNOWN_VIDEOS", "UnknownVideos", "Segments", "encode_inputs"]

UnknownVideos = Literal["false_positive", "ignore", "error"]
UNKNOWN_VIDEOS: tuple[str, ...] = ("false_positive", "ignore", "error")


@dataclass(frozen=True)
class Segments:
    """Encoded segments: integer video / label codes and float64 times, one entry per row kept."""

    video: np.ndarray  # (N,) int64 codes into Matching.video_ids
    label: np.ndarray  # (N,) int64 codes into the label space
    start_sec: np.ndarray  # (N,) float64
    end_sec: np.ndarray  # (N,) float64
    row: np.ndarray  # (N,) positions in the input frame
    score: np.ndarray | None = None  # (N,) float64, predictions only

    def __len__(self) -> int:
        return len(self.row)


def _check_frame(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; have {list(frame.columns)}")
    numeric = ("t-start", "t-end", "score") if "score" in columns else ("t-start", "t-end")
    for col in numeric:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            bad = frame.index[~np.isfinite(values)][:5].tolist()
            raise ValueError(f"{what}: column '{col}' has missing or non-finite values (rows {bad})")
    if frame["label"].isna().any():
        raise ValueError(f"{what}: column 'label' has missing values")


def _label_kind(values: pd.Series, what: str) -> str:
    if pd.api.types.is_bool_dtype(values):
        raise ValueError(f"{what}: labels must be ids (int) or names (str), got bool")
    if pd.api.types.is_integer_dtype(values):
        return "id"
    if pd.api.types.is_float_dtype(values):
        if (values % 1 == 0).all():
            return "id"
        raise ValueError(f"{what}: label ids must be integers, got non-integral floats")
    if all(isinstance(v, str) for v in values):
        return "name"
    if all(isinstance(v, (int, np.integer)) for v in values):
        return "id"
    raise ValueError(f"{what}: labels must be all ids (int) or all names (str)")


def _normalise_labels(values: pd.Series, kind: str) -> np.ndarray:
    return values.to_numpy(dtype=np.int64) if kind == "id" else values.to_numpy(dtype=object)


def _label_space(gt_labels: np.ndarray, gt_kind: str, labels: Sequence[Any] | None) -> tuple[Any, ...]:
    """``labels`` checked against the GT's label kind, or the sorted GT labels (the reference's)."""
    if labels is None:
        return tuple(sorted(pd.unique(gt_labels).tolist()))
    space = tuple(labels)
    if len(set(space)) != len(space):
        raise ValueError("labels: the label space has duplicates")
    space_kind = _label_kind(pd.Series(list(space)), "labels")
    if space_kind != gt_kind:
        raise ValueError(f"labels are {space_kind}s but ground-truth labels are {gt_kind}s")
    return space


def _prediction_label_codes(predictions: pd.DataFrame, space: tuple[Any, ...], gt_kind: str) -> np.ndarray:
    """Codes of the prediction labels in the label space; every label must be in it."""
    if not len(predictions):
        return np.zeros(0, dtype=np.int64)
    pred_kind = _label_kind(predictions["label"], "predictions")
    if pred_kind != gt_kind:
        raise ValueError(
            f"label spaces differ: prediction labels are {pred_kind}s, ground-truth labels are "
            f"{gt_kind}s; map one onto the other (read_class_names gives id -> name)"
        )
    pred_labels = _normalise_labels(predictions["label"], pred_kind)
    pred_code = pd.Index(space).get_indexer(pred_labels)
    if (pred_code < 0).any():
        unknown = sorted(set(pred_labels[pred_code < 0].tolist()))
        raise ValueError(
            f"prediction labels {unknown[:10]} are not in the label space {list(space)[:25]}"
            " (pass labels=... to declare classes without ground truth)"
        )
    return pred_code


def _label_codes(
    ground_truth: pd.DataFrame, predictions: pd.DataFrame, labels: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray, tuple[Any, ...]]:
    """GT and prediction label codes, and the label space they index."""
    gt_kind = _label_kind(ground_truth["label"], "ground truth")
    gt_labels = _normalise_labels(ground_truth["label"], gt_kind)
    space = _label_space(gt_labels, gt_kind, labels)
    gt_code = pd.Index(space).get_indexer(gt_labels)
    if (gt_code < 0).any():
        raise ValueError(f"ground-truth labels {sorted(set(gt_labels[gt_code < 0].tolist()))[:10]} not in labels")
    return gt_code, _prediction_label_codes(predictions, space, gt_kind), space


def _checked_times(frame: pd.DataFrame, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(t-start, t-end) in float64; GT segments must be longer than 0, predictions not negative."""
    start = frame["t-start"].to_numpy(dtype=np.float64)
    end = frame["t-end"].to_numpy(dtype=np.float64)
    if what == "ground truth" and (end <= start).any():
        row = int(np.flatnonzero(end <= start)[0])
        raise ValueError(
            f"ground truth row {row}: segment [{start[row]}, {end[row]}] is not longer than 0 "
            "(the reference's JSON loader drops such instances; read_ground_truth_json does too)"
        )
    if what == "prediction" and (end < start).any():
        row = int(np.flatnonzero(end < start)[0])
        raise ValueError(f"prediction row {row}: t-end {end[row]} < t-start {start[row]}")
    return start, end


def _video_codes(
    ground_truth: pd.DataFrame, predictions: pd.DataFrame, unknown_videos: UnknownVideos
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Video codes of GT and predictions, which predictions are kept, and the video ids by code.

    Codes ``0..V_gt-1`` are the GT videos in order of appearance; videos found only in the
    predictions follow, or are dropped (``'ignore'``) or rejected (``'error'``).
    """
    gt_vid = ground_truth["video-id"].to_numpy(dtype=object)
    pred_vid = predictions["video-id"].to_numpy(dtype=object)
    codes, video_ids = pd.factorize(np.concatenate([gt_vid, pred_vid]))
    n_gt_videos = int(codes[: len(gt_vid)].max()) + 1  # factorize numbers in order of appearance
    pred_video = codes[len(gt_vid):].astype(np.int64)
    keep = np.ones(len(predictions), dtype=bool)
    if (pred_video >= n_gt_videos).any():
        if unknown_videos == "error":
            extra = sorted(set(video_ids[n_gt_videos:].tolist()))
            raise ValueError(f"predictions for videos absent from the ground truth: {extra[:10]}")
        if unknown_videos == "ignore":
            keep = pred_video < n_gt_videos
            video_ids = video_ids[:n_gt_videos]
    return codes[: len(gt_vid)].astype(np.int64), pred_video, keep, np.asarray(video_ids, dtype=object)


def encode_inputs(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    labels: Sequence[Any] | None = None,
    unknown_videos: UnknownVideos = "false_positive",
) -> tuple[Segments, Segments, tuple[Any, ...], np.ndarray]:
    """Validate both frames and encode videos and labels as integer codes.

    The label space is ``labels`` when given, else the sorted GT labels (the reference's).
    Video codes ``0..V_gt-1`` are the GT videos in order of appearance; videos found only in
    predictions follow (kept as false positives), or are dropped / rejected per
    ``unknown_videos``.

    Returns:
        (gt, predictions, label space, video ids indexed by code).

    Raises:
        ValueError: a missing column, non-finite time or score, a GT segment that is not longer
            than zero, a prediction ending before it starts, labels of different kinds, or a
            label outside the label space.
    """
    if unknown_videos not in UNKNOWN_VIDEOS:
        raise ValueError(f"unknown_videos must be 'false_positive', 'ignore' or 'error', got {unknown_videos!r}")
    _check_frame(ground_truth, GT_COLUMNS, "ground truth")
    _check_frame(predictions, PRED_COLUMNS, "predictions")
    if len(ground_truth) == 0:
        raise ValueError("ground truth is empty: AP is undefined without GT instances")
    gt_code, pred_code, space = _label_codes(ground_truth, predictions, labels)
    gt_start, gt_end = _checked_times(ground_truth, "ground truth")
    p_start, p_end = _checked_times(predictions, "prediction")
    gt_video, pred_video, keep, video_ids = _video_codes(ground_truth, predictions, unknown_videos)
    gt = Segments(gt_video, gt_code.astype(np.int64), gt_start, gt_end, np.arange(len(ground_truth)))
    score = predictions["score"].to_numpy(dtype=np.float64)
    rows = np.flatnonzero(keep)
    pred = Segments(pred_video[rows], pred_code[rows].astype(np.int64), p_start[rows], p_end[rows], rows, score[rows])
    return gt, pred, space, video_ids
