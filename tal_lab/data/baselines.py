"""Chance-level detections: what a detector could score without looking at the features.

A detector trained on features that carry no signal can still learn from the training labels
alone: how often each class occurs, how long each class's actions last, where in a video
actions sit. Its mAP then sits above naive random predictions without any leak from labels into
features. The fair null comparison is therefore a *prior-matched* random baseline, which knows
all of that and nothing about the video's content:

* :class:`LabelPrior` collects, from the training ground truth, the class frequencies (instances
  per class), each class's action durations and, when the video lengths are given, where
  actions sit relative to the video (their centres as a fraction of the video's length);
* :func:`prior_matched_predictions` draws, per test video, a given number of detections (the
  detector's own count): labels from the class frequencies, each duration from that class's
  training durations, positions uniform in the video (or, with ``position='prior'``, centres
  from the training centres), uniform random scores;
* :func:`uniform_random_predictions` is the naive baseline: uniform labels and centres, lengths
  from all training actions.

Frames are :mod:`tal_lab.metrics`' prediction frames (``video-id, t-start, t-end, label,
score``, seconds), so both are scored by :func:`tal_lab.metrics.mean_average_precision`
exactly as a detector's detections are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np
import pandas as pd

from tal_lab.metrics_io import PRED_COLUMNS

__all__ = ["LabelPrior", "prior_matched_predictions", "uniform_random_predictions", "detection_counts"]

Position = Literal["uniform", "prior"]


@dataclass(frozen=True)
class LabelPrior:
    """What the training labels teach without features.

    Attributes:
        labels: (K,) label ids with at least one training instance, sorted.
        class_probs: (K,) fraction of training instances of each label.
        durations_sec: K arrays, the training durations (s) of each label's instances.
        relative_centres: centres of the training instances divided by their video's length,
            in [0, 1]; None when the video lengths were not given.
    """

    labels: np.ndarray
    class_probs: np.ndarray
    durations_sec: tuple[np.ndarray, ...]
    relative_centres: np.ndarray | None = None

    @classmethod
    def from_ground_truth(
        cls, ground_truth: pd.DataFrame, video_durations_sec: Mapping[str, float] | None = None
    ) -> "LabelPrior":
        """The prior of a training GT frame (``video-id, t-start, t-end, label``, seconds).

        Args:
            ground_truth: the training split's instances (e.g. ``read_ground_truth_json(json,
                subset='Validation')``).
            video_durations_sec: video id -> length (s); gives ``relative_centres``.

        Raises:
            ValueError: an empty frame, an instance ending before it starts, or a video of the
                frame without a positive length in ``video_durations_sec``.
        """
        if len(ground_truth) == 0:
            raise ValueError("LabelPrior: the training ground truth has no instances")
        start = ground_truth["t-start"].to_numpy(np.float64)
        end = ground_truth["t-end"].to_numpy(np.float64)
        if (end < start).any():
            row = int(np.flatnonzero(end < start)[0])
            raise ValueError(f"LabelPrior: instance {row} of video {ground_truth['video-id'].iloc[row]!r} "
                             f"ends ({end[row]}) before it starts ({start[row]})")
        label_column = ground_truth["label"].to_numpy()
        labels, counts = np.unique(label_column, return_counts=True)
        durations = tuple(np.sort(end[label_column == label] - start[label_column == label]) for label in labels)
        centres = None
        if video_durations_sec is not None:
            videos = ground_truth["video-id"].to_numpy()
            missing = sorted({v for v in videos if not video_durations_sec.get(v, 0) > 0})
            if missing:
                raise ValueError(f"LabelPrior: no positive duration for videos {missing[:5]} "
                                 f"({len(missing)} in all) in video_durations_sec")
            lengths = np.asarray([video_durations_sec[v] for v in videos], dtype=np.float64)
            centres = np.clip(0.5 * (start + end) / lengths, 0.0, 1.0)
        return cls(labels, counts / counts.sum(), durations, centres)


def detection_counts(detections: pd.DataFrame, video_ids: list[str]) -> dict[str, int]:
    """Detections per video of ``video_ids`` (0 for a video without any)."""
    sizes = detections.groupby("video-id").size()
    return {video: int(sizes.get(video, 0)) for video in video_ids}


def _check_counts(videos_sec: Mapping[str, float], counts: Mapping[str, int]) -> None:
    unknown = sorted(set(counts) - set(videos_sec))
    if unknown:
        raise ValueError(f"counts name videos without a duration: {unknown[:5]} ({len(unknown)} in all)")
    negative = sorted(v for v, n in counts.items() if n < 0)
    if negative:
        raise ValueError(f"negative detection counts for videos {negative[:5]}")


def _frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in PRED_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def prior_matched_predictions(
    prior: LabelPrior,
    videos_sec: Mapping[str, float],
    counts: Mapping[str, int],
    rng: np.random.Generator,
    position: Position = "uniform",
) -> pd.DataFrame:
    """Random detections that know the training labels' statistics and nothing else.

    Per video ``v`` of ``counts``: ``counts[v]`` detections; labels drawn from
    ``prior.class_probs``; each duration drawn from its label's training durations (capped at
    the video's length); segments inside the video, the start uniform over the places where the
    segment fits (``position='uniform'``), or the centre drawn from the training instances'
    relative centres and the segment shifted inside the video (``position='prior'``); scores
    uniform in [0, 1).

    Args:
        prior: from the training split (:meth:`LabelPrior.from_ground_truth`).
        videos_sec: video id -> length (s) of the evaluated videos.
        counts: video id -> number of detections (e.g. :func:`detection_counts` of a detector's
            detections, so both are compared at the same budget).
        rng: the random stream (one draw per call).
        position: 'uniform' or 'prior' (needs ``prior.relative_centres``).

    Returns:
        Frame ``video-id, t-start, t-end, label, score`` (seconds, label ids), videos in the
        order of ``counts``.

    Raises:
        ValueError: a video of ``counts`` without a length, a negative count, an unknown
            ``position``, or ``position='prior'`` without relative centres.
    """
    _check_counts(videos_sec, counts)
    if position not in ("uniform", "prior"):
        raise ValueError(f"position must be 'uniform' or 'prior', not {position!r}")
    if position == "prior" and prior.relative_centres is None:
        raise ValueError("position='prior' needs a LabelPrior built with video_durations_sec")
    parts = []
    for video, count in counts.items():
        if count == 0:
            continue
        length_sec = float(videos_sec[video])
        which = rng.choice(len(prior.labels), size=count, p=prior.class_probs)
        durations = np.asarray([prior.durations_sec[k][rng.integers(len(prior.durations_sec[k]))] for k in which])
        durations = np.minimum(durations, length_sec)
        if position == "uniform":
            start = rng.uniform(size=count) * (length_sec - durations)
        else:
            centre = rng.choice(prior.relative_centres, size=count) * length_sec
            start = np.clip(centre - 0.5 * durations, 0.0, length_sec - durations)
        parts.append(pd.DataFrame({"video-id": video, "t-start": start, "t-end": start + durations,
                                   "label": prior.labels[which], "score": rng.uniform(size=count)}))
    return _frame(parts)


def uniform_random_predictions(
    videos_sec: Mapping[str, float],
    counts: Mapping[str, int],
    num_classes: int,
    lengths_sec: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Naive random detections: uniform labels in ``0..num_classes-1``, uniform centres.

    Per video ``v``: ``counts[v]`` segments with centres uniform in the video, lengths drawn from
    ``lengths_sec`` (e.g. all training actions), clipped to the video; uniform scores.

    Raises:
        ValueError: as :func:`prior_matched_predictions`, or no lengths to draw from.
    """
    _check_counts(videos_sec, counts)
    if len(lengths_sec) == 0:
        raise ValueError("uniform_random_predictions: lengths_sec is empty")
    parts = []
    for video, count in counts.items():
        if count == 0:
            continue
        length_sec = float(videos_sec[video])
        centre = rng.uniform(0, length_sec, count)
        half = 0.5 * rng.choice(lengths_sec, count)
        parts.append(pd.DataFrame({"video-id": video, "t-start": np.clip(centre - half, 0, None),
                                   "t-end": np.minimum(centre + half, length_sec),
                                   "label": rng.integers(num_classes, size=count),
                                   "score": rng.uniform(size=count)}))
    return _frame(parts)
