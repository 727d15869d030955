"""Chance-level detections: what a detector could score without looking at the features.

A detector trained on features that carry no signal can still learn from the training labels
alone: how often each class occurs, how long each class's actions last, where in a video
actions sit, which lengths random placement matches most often. Its mAP then sits above naive
random predictions without any leak from labels into features. The fair null comparison is
therefore a *prior-matched* random baseline, which knows all of that and nothing about the
video's content:

* :class:`LabelPrior` collects, from the training ground truth, the class frequencies (instances
  per class) and each class's action durations; given the training videos' lengths, also where
  actions sit (centres as a fraction of the video's length), per class the *tuned length*, the
  one length whose uniformly placed segments match the most training instances (see
  :func:`expected_matches`), and *tuned label probabilities*, proportional to how many
  training instances one such segment matches (classes with long or many actions are hit by
  chance more often: a detector that cannot see anything learns to predict them);
* :func:`prior_matched_predictions` draws, per test video, a given number of detections (the
  detector's own count): labels from the class frequencies (or the tuned probabilities), each
  duration from that class's training durations (or its tuned length), positions uniform in
  the video (or centres from the training centres, or *spread*: see below), uniform random
  scores;
* :func:`uniform_random_predictions` is the naive baseline: uniform labels and centres, lengths
  from all training actions;
* :func:`relocated_predictions` keeps a detector's own labels and lengths and draws new
  positions and scores: what it would score if its features told it nothing about *where*
  actions are (whatever label statistics it learnt, it keeps).

``position='spread'`` stratifies the starts of each video's detections of one label over the
video (one per n-th of the places where they fit, in random order): a detector's output after
NMS rarely stacks same-class segments, so it wastes fewer detections on one instance than
independent uniform draws do. That needs no features either.

Frames are the evaluation's prediction frames (``video-id, t-start, t-end, label,
score``, seconds), so all are scored by :func:`tal_lab.evaluation.mean_ap.mean_average_precision`
exactly as a detector's detections are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from tal_lab.evaluation.matching import THUMOS14_TIOU_THRESHOLDS

__all__ = ["LabelPrior", "expected_matches", "prior_matched_predictions", "uniform_random_predictions",
           "relocated_predictions", "detection_counts"]

Position = Literal["uniform", "prior", "spread"]
Duration = Literal["prior", "tuned"]
LabelRule = Literal["frequency", "tuned"]
# Candidate lengths for the tuned length: this many, log-spaced over the training durations.
NUM_CANDIDATE_LENGTHS = 64


def expected_matches(
    lengths_sec: np.ndarray, gt_lengths_sec: np.ndarray, gt_video_sec: np.ndarray, num_videos: int,
    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS,
) -> np.ndarray:
    """Expected GT instances one segment matches when placed uniformly at random in a random video.

    A segment of length L whose centre is uniform in a video of length D reaches tIoU >= t with
    an instance of length g on a stretch of centres of length (L + g)(1 - t)/(1 + t) when
    t max(L, g) <= min(L, g), else never (the overlap, a trapezoid in the centre offset, must
    reach t (L + g) / (1 + t)). Summed over the instances of each video (divided by D), averaged
    over the ``num_videos`` videos and the thresholds; video edges are ignored.

    Shapes:
        lengths_sec (L,), gt_lengths_sec (N,), gt_video_sec (N,) -> (L,)
    """
    lengths = np.asarray(lengths_sec, dtype=np.float64)[:, None, None]  # (L, 1, 1)
    gt = np.asarray(gt_lengths_sec, dtype=np.float64)[None, :, None]  # (1, N, 1)
    t = np.asarray(tiou_thresholds, dtype=np.float64)[None, None, :]  # (1, 1, T)
    reachable = t * np.maximum(lengths, gt) <= np.minimum(lengths, gt)
    stretch = np.where(reachable, (lengths + gt) * (1 - t) / (1 + t), 0.0)  # (L, N, T)
    per_video = stretch / np.asarray(gt_video_sec, dtype=np.float64)[None, :, None]
    return per_video.sum(axis=1).mean(axis=1) / num_videos


@dataclass(frozen=True)
class LabelPrior:
    """What the training labels teach without features.

    Attributes:
        labels: (K,) label ids with at least one training instance, sorted.
        class_probs: (K,) fraction of training instances of each label.
        durations_sec: K arrays, the training durations (s) of each label's instances.
        relative_centres: centres of the training instances divided by their video's length,
            in [0, 1]; None when the video lengths were not given.
        tuned_lengths_sec: (K,) per label, the candidate length with the most
            :func:`expected_matches` on the training instances; None without video lengths.
        tuned_class_probs: (K,) proportional to those expected matches (per training video);
            None without video lengths.
    """

    labels: np.ndarray
    class_probs: np.ndarray
    durations_sec: tuple[np.ndarray, ...]
    relative_centres: np.ndarray | None = None
    tuned_lengths_sec: np.ndarray | None = None
    tuned_class_probs: np.ndarray | None = None

    @classmethod
    def from_ground_truth(
        cls,
        ground_truth: pd.DataFrame,
        video_durations_sec: Mapping[str, float] | None = None,
        tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS,
        candidate_lengths_sec: np.ndarray | None = None,
    ) -> "LabelPrior":
        """The prior of a training GT frame (``video-id, t-start, t-end, label``, seconds).

        Args:
            ground_truth: the training split's instances (e.g. ``read_ground_truth_json(json,
                subset='Validation')``).
            video_durations_sec: video id -> length (s) of the training videos (every video of
                the split, also those without instances); gives ``relative_centres`` and
                ``tuned_lengths_sec``.
            tiou_thresholds: those of the evaluation, for the tuned lengths.
            candidate_lengths_sec: lengths the tuned length is chosen from; default
                NUM_CANDIDATE_LENGTHS log-spaced between the shortest and the longest training
                instance.

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
        prior = cls(labels, counts / counts.sum(), durations)
        if video_durations_sec is None:
            return prior
        videos = ground_truth["video-id"].to_numpy()
        missing = sorted({v for v in videos if not video_durations_sec.get(v, 0) > 0})
        if missing:
            raise ValueError(f"LabelPrior: no positive duration for videos {missing[:5]} "
                             f"({len(missing)} in all) in video_durations_sec")
        video_sec = np.asarray([video_durations_sec[v] for v in videos], dtype=np.float64)
        centres = np.clip(0.5 * (start + end) / video_sec, 0.0, 1.0)
        if candidate_lengths_sec is None:
            shortest = max(float((end - start).min()), 1e-3)
            candidate_lengths_sec = np.geomspace(shortest, max(float((end - start).max()), shortest),
                                                 NUM_CANDIDATE_LENGTHS)
        candidates = np.asarray(candidate_lengths_sec, dtype=np.float64)
        num_videos = len(video_durations_sec)
        matches = np.stack([expected_matches(candidates, end[mine] - start[mine], video_sec[mine], num_videos,
                                             tiou_thresholds) for mine in (label_column == label for label in labels)])
        best = matches.argmax(axis=1)  # (K,) over the candidates
        best_matches = matches[np.arange(len(labels)), best]
        if not best_matches.sum() > 0:
            raise ValueError(f"LabelPrior: no candidate length in {candidates.min()}..{candidates.max()} s "
                             "can match any training instance")
        return cls(labels, prior.class_probs, durations, centres, candidates[best], best_matches / best_matches.sum())


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


def _repeat_videos(videos_sec: Mapping[str, float], counts: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Each video id of ``counts`` repeated ``counts[v]`` times, and its length (s) beside it."""
    _check_counts(videos_sec, counts)
    ids = list(counts)
    repeats = np.asarray([counts[v] for v in ids], dtype=np.int64)
    videos = np.repeat(np.asarray(ids, dtype=object), repeats)
    return videos, np.repeat(np.asarray([videos_sec[v] for v in ids], dtype=np.float64), repeats)


def _check_position(position: str, allowed: tuple[str, ...] = ("uniform", "spread", "prior")) -> None:
    if position not in allowed:
        raise ValueError(f"position must be one of {allowed}, not {position!r}")


def _place_fractions(videos: np.ndarray, labels: np.ndarray, position: str, rng: np.random.Generator) -> np.ndarray:
    """Where each segment starts, as a fraction in [0, 1) of the places where it fits.

    'uniform': independent uniform draws. 'spread': within each (video, label) group of n
    segments, one fraction in each of [i/n, (i+1)/n), assigned in random order.

    Shapes:
        videos (N,), labels (N,) -> (N,)
    """
    if position == "uniform":
        return rng.uniform(size=len(videos))
    group = pd.MultiIndex.from_arrays([videos, labels]).factorize()[0] if len(videos) else np.zeros(0, np.int64)
    order = np.lexsort((rng.uniform(size=len(videos)), group))  # random order inside each group
    sizes = np.bincount(group)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(len(videos), dtype=np.int64)
    rank[order] = np.arange(len(videos)) - first[group[order]]
    return (rank + rng.uniform(size=len(videos))) / sizes[group]


def prior_matched_predictions(
    prior: LabelPrior,
    videos_sec: Mapping[str, float],
    counts: Mapping[str, int],
    rng: np.random.Generator,
    position: Position = "uniform",
    duration: Duration = "prior",
    labels: LabelRule = "frequency",
) -> pd.DataFrame:
    """Random detections that know the training labels' statistics and nothing else.

    Per video ``v`` of ``counts``: ``counts[v]`` detections; labels drawn from
    ``prior.class_probs`` (``labels='frequency'``) or ``prior.tuned_class_probs``
    (``labels='tuned'``); each duration drawn from its label's training durations
    (``duration='prior'``) or its label's tuned length (``duration='tuned'``), capped at the
    video's length; segments inside the video, the start uniform over the places where the
    segment fits (``position='uniform'``), or stratified over those places per label
    (``position='spread'``), or the centre drawn from the training instances' relative
    centres and the segment shifted inside the video (``position='prior'``); scores
    uniform in [0, 1).

    Args:
        prior: from the training split (:meth:`LabelPrior.from_ground_truth`).
        videos_sec: video id -> length (s) of the evaluated videos.
        counts: video id -> number of detections (e.g. :func:`detection_counts` of a detector's
            detections, so both are compared at the same budget).
        rng: the random stream (one draw per call).
        position: 'uniform', 'spread' or 'prior' (needs ``prior.relative_centres``).
        duration: 'prior' or 'tuned' (needs ``prior.tuned_lengths_sec``).
        labels: 'frequency' or 'tuned' (needs ``prior.tuned_class_probs``).

    Returns:
        Frame ``video-id, t-start, t-end, label, score`` (seconds, label ids), videos in the
        order of ``counts``.

    Raises:
        ValueError: a video of ``counts`` without a length, a negative count, an unknown
            ``position``, ``duration`` or ``labels``, or a prior without what they need.
    """
    _check_position(position)
    if position == "prior" and prior.relative_centres is None:
        raise ValueError("position='prior' needs a LabelPrior built with video_durations_sec")
    if duration not in ("prior", "tuned"):
        raise ValueError(f"duration must be 'prior' or 'tuned', not {duration!r}")
    if duration == "tuned" and prior.tuned_lengths_sec is None:
        raise ValueError("duration='tuned' needs a LabelPrior built with video_durations_sec")
    if labels not in ("frequency", "tuned"):
        raise ValueError(f"labels must be 'frequency' or 'tuned', not {labels!r}")
    if labels == "tuned" and prior.tuned_class_probs is None:
        raise ValueError("labels='tuned' needs a LabelPrior built with video_durations_sec")
    class_probs = prior.class_probs if labels == "frequency" else prior.tuned_class_probs
    videos, video_sec = _repeat_videos(videos_sec, counts)
    total = len(videos)
    which = rng.choice(len(prior.labels), size=total, p=class_probs)
    if duration == "tuned":
        durations = prior.tuned_lengths_sec[which]  # type: ignore[index]
    else:
        # one of the label's training durations, each equally likely (a ragged gather)
        sizes = np.asarray([len(d) for d in prior.durations_sec])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        picks = offsets[which] + (rng.uniform(size=total) * sizes[which]).astype(np.int64)
        durations = np.concatenate(prior.durations_sec)[picks]
    durations = np.minimum(durations, video_sec)
    if position != "prior":
        start = _place_fractions(videos, prior.labels[which], position, rng) * (video_sec - durations)
    else:
        centre = rng.choice(prior.relative_centres, size=total) * video_sec  # type: ignore[arg-type]
        start = np.clip(centre - 0.5 * durations, 0.0, video_sec - durations)
    return pd.DataFrame({"video-id": videos, "t-start": start, "t-end": start + durations,
                         "label": prior.labels[which], "score": rng.uniform(size=total)})


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
    if len(lengths_sec) == 0:
        raise ValueError("uniform_random_predictions: lengths_sec is empty")
    videos, video_sec = _repeat_videos(videos_sec, counts)
    total = len(videos)
    centre = rng.uniform(size=total) * video_sec
    half = 0.5 * rng.choice(lengths_sec, total)
    return pd.DataFrame({"video-id": videos, "t-start": np.clip(centre - half, 0, None),
                         "t-end": np.minimum(centre + half, video_sec),
                         "label": rng.integers(num_classes, size=total), "score": rng.uniform(size=total)})


def relocated_predictions(
    detections: pd.DataFrame, videos_sec: Mapping[str, float], rng: np.random.Generator,
    position: Position = "uniform",
) -> pd.DataFrame:
    """A detector's detections moved to random places: labels and lengths kept, positions and
    scores redrawn (start uniform where the segment fits in its video, or ``position='spread'``
    per video and label; score uniform in [0, 1)).

    Raises:
        ValueError: a detection of a video without a length or ending before it starts; a
            ``position`` other than 'uniform' or 'spread'.
    """
    _check_position(position, ("uniform", "spread"))
    videos = detections["video-id"].to_numpy()
    unknown = sorted(set(videos) - set(videos_sec))
    if unknown:
        raise ValueError(f"detections name videos without a duration: {unknown[:5]} ({len(unknown)} in all)")
    lengths = (detections["t-end"] - detections["t-start"]).to_numpy(np.float64)
    if (lengths < 0).any():
        row = int(np.flatnonzero(lengths < 0)[0])
        raise ValueError(f"detection {row} of video {videos[row]!r} ends before it starts")
    video_sec = np.asarray([videos_sec[v] for v in videos], dtype=np.float64)
    lengths = np.minimum(lengths, video_sec)
    labels = detections["label"].to_numpy()
    start = _place_fractions(videos, labels, position, rng) * (video_sec - lengths)
    return pd.DataFrame({"video-id": videos, "t-start": start, "t-end": start + lengths,
                         "label": labels, "score": rng.uniform(size=len(lengths))})
