"""Where things happen in a synthetic video: actions, distractors and context cues (seconds).

Each video takes one row of THUMOS14's statistics (length, number of actions, number of
classes). Its classes follow THUMOS14's class frequencies (videos per class) and
co-occurrences; each action's class follows the classes' instance densities and its length
the class's duration quantiles. Actions do not overlap; the background between them is split
at random (a flat Dirichlet). Context cues go into the background as far from actions as the
video allows; distractors go into what background remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from tal_lab.data.synthetic_spec import SyntheticKnobs

__all__ = ["Event", "VideoLayout", "sample_video_rows", "sample_layout", "ANNOTATION_RESOLUTION_SEC"]

# THUMOS14 annotations are given to 0.1 s.
ANNOTATION_RESOLUTION_SEC = 0.1
# THUMOS14's shortest action lasts 0.2 s.
MIN_ACTION_SEC = 0.2
# Actions fill at most this fraction of a video (THUMOS14's 95th percentile is about 0.8).
MAX_ACTION_COVERAGE = 0.8
# Distractors keep this distance from actions and cues, so they never touch a labelled edge.
DISTRACTOR_MARGIN_SEC = 0.5
# Videos longer than a preset's max_duration_sec are cut to between this fraction and 1 of it.
CUT_LOW_FRACTION = 0.6
# One context cue per this many seconds of video (at least one).
SEC_PER_CUE = 120.0
# Candidate cue positions are tried on this grid.
CUE_GRID_SEC = 0.5


@dataclass(frozen=True)
class Event:
    """Something visible in the features between ``start_sec`` and ``end_sec``.

    ``label`` is the annotated class (actions), the imitated class (distractors) or -1 (cues).
    """

    start_sec: float
    end_sec: float
    label: int
    blur_sec: float


@dataclass(frozen=True)
class VideoLayout:
    """One synthetic video: its length and events; only ``actions`` are annotated."""

    video_id: str
    subset: str
    duration_sec: float
    classes: tuple[int, ...]
    actions: tuple[Event, ...]
    distractors: tuple[Event, ...]
    cues: tuple[Event, ...]


def sample_video_rows(
    rows: list[list[float]], num_videos: int | None, max_duration_sec: float | None, rng: np.random.Generator
) -> list[tuple[float, int, int]]:
    """Pick ``num_videos`` rows ``(duration_sec, num_actions, num_classes)`` of a split.

    None takes every row once (in a random order); fewer are drawn without replacement, more
    with replacement. Rows longer than ``max_duration_sec`` are cut to a random length between
    CUT_LOW_FRACTION and 1 times it (so cut videos do not all share one length), with
    proportionally fewer actions (at least one).
    """
    if num_videos is None:
        picked = rng.permutation(len(rows))
    else:
        picked = rng.choice(len(rows), size=num_videos, replace=num_videos > len(rows))
    out = []
    for index in picked:
        duration, num_actions, num_classes = float(rows[index][0]), int(rows[index][1]), int(rows[index][2])
        if max_duration_sec is not None and duration > max_duration_sec:
            cut = round(max_duration_sec * float(rng.uniform(CUT_LOW_FRACTION, 1.0)), 2)
            num_actions = max(1, round(num_actions * cut / duration))
            duration = cut
        out.append((duration, num_actions, min(num_classes, num_actions)))
    return out


def _inverse_cdf(quantiles: list[float], levels: list[float], u: float) -> float:
    return float(np.interp(u, levels, quantiles))


def _pick_classes(num_classes: int, stats: Mapping[str, Any], rng: np.random.Generator) -> list[int]:
    classes = stats["classes"]
    video_freq = np.asarray([c["num_videos"] for c in classes], dtype=np.float64)
    chosen = [int(rng.choice(len(classes), p=video_freq / video_freq.sum()))]
    pair_counts = {(a, b): n for a, b, n in stats["cooccurring_pairs"]}
    while len(chosen) < num_classes:
        weights = np.zeros(len(classes))
        for (a, b), n in pair_counts.items():
            for mine, other in ((a, b), (b, a)):
                if mine in chosen and other not in chosen:
                    weights[other] += n
        if weights.sum() == 0:
            weights = video_freq.copy()
            weights[chosen] = 0
        chosen.append(int(rng.choice(len(classes), p=weights / weights.sum())))
    return chosen


def _free_intervals(duration: float, taken: list[tuple[float, float]], margin: float) -> list[tuple[float, float]]:
    free, cursor = [], 0.0
    for start, end in sorted(taken):
        if start - margin > cursor:
            free.append((cursor, start - margin))
        cursor = max(cursor, end + margin)
    if duration > cursor:
        free.append((cursor, duration))
    return free


def _place_cues(duration: float, actions: list[Event], knobs: SyntheticKnobs, rng: np.random.Generator) -> list[Event]:
    length = knobs.context_cue_sec
    count = max(1, round(duration / SEC_PER_CUE))
    starts = np.arange(0.0, duration - length + 1e-9, CUE_GRID_SEC)
    if len(starts) == 0 or knobs.context == 0:
        return []
    spans = np.asarray([(a.start_sec, a.end_sec) for a in actions]).reshape(-1, 2)
    cues: list[Event] = []
    for _ in range(count):
        taken = np.concatenate([spans, np.asarray([(c.start_sec, c.end_sec) for c in cues]).reshape(-1, 2)])
        overlaps = (starts[:, None] < taken[None, :, 1]) & (starts[:, None] + length > taken[None, :, 0])
        ok = ~overlaps.any(axis=1)
        if not ok.any():
            break
        # Distance from the cue to the nearest action (0 when there are no actions: any place).
        gaps = np.maximum(spans[None, :, 0] - (starts[:, None] + length), starts[:, None] - spans[None, :, 1])
        distance = gaps.min(axis=1) if len(spans) else np.full(len(starts), np.inf)
        far = ok & (distance >= knobs.context_min_gap_sec)
        if far.any():
            index = int(rng.choice(np.flatnonzero(far)))
        else:
            best = np.flatnonzero(ok & (distance == distance[ok].max()))
            index = int(rng.choice(best))
        cues.append(Event(float(starts[index]), float(starts[index] + length), -1, 0.0))
    return cues


def _place_distractors(
    duration: float, occupied: list[tuple[float, float]], video_classes: list[int],
    stats: Mapping[str, Any], knobs: SyntheticKnobs, rng: np.random.Generator,
) -> list[Event]:
    count = int(rng.poisson(knobs.distractor_rate_per_min * duration / 60.0))
    num_classes = len(stats["classes"])
    taken = list(occupied)
    out: list[Event] = []
    for _ in range(count):
        label = int(rng.choice(video_classes)) if rng.random() < 0.5 else int(rng.integers(num_classes))
        length = max(MIN_ACTION_SEC, _inverse_cdf(stats["classes"][label]["duration_sec_quantiles"],
                                                  stats["quantile_levels"], float(rng.random())))
        free = [(a, b) for a, b in _free_intervals(duration, taken, DISTRACTOR_MARGIN_SEC) if b - a >= length]
        if not free:
            continue
        sizes = np.asarray([b - a - length for a, b in free]) + 1e-6
        lo, hi = free[int(rng.choice(len(free), p=sizes / sizes.sum()))]
        start = float(lo + rng.random() * (hi - lo - length))
        blur = knobs.boundary_blur_sec * float(rng.uniform(0.5, 1.5))
        out.append(Event(start, start + length, label, blur))
        taken.append((start, start + length))
    return sorted(out, key=lambda e: e.start_sec)


def sample_layout(
    video_id: str, subset: str, row: tuple[float, int, int], stats: Mapping[str, Any],
    knobs: SyntheticKnobs, rng: np.random.Generator,
) -> VideoLayout:
    """Draw one video's classes, actions, cues and distractors."""
    duration, num_actions, num_classes = row
    classes = _pick_classes(max(1, num_classes), stats, rng)
    density = np.asarray([c["num_instances"] / c["num_videos"] for c in stats["classes"]])[classes]
    labels = list(classes[:num_actions]) + [
        int(classes[i]) for i in rng.choice(len(classes), size=max(0, num_actions - len(classes)),
                                             p=density / density.sum())]
    labels = [labels[i] for i in rng.permutation(len(labels))]
    levels = stats["quantile_levels"]
    lengths = np.asarray([_inverse_cdf(stats["classes"][k]["duration_sec_quantiles"], levels, float(rng.random()))
                          for k in labels])
    budget = duration * MAX_ACTION_COVERAGE
    if lengths.sum() > budget:
        lengths *= budget / lengths.sum()
    lengths = np.maximum(lengths, MIN_ACTION_SEC)
    gaps = rng.dirichlet(np.ones(len(labels) + 1)) * max(0.0, duration - lengths.sum())
    actions, cursor = [], 0.0
    for label, length, gap in zip(labels, lengths, gaps[:-1]):
        start = _round(cursor + gap)
        end = min(_round(cursor + gap + length), _round_down(duration))
        cursor += gap + length
        if end - start < MIN_ACTION_SEC - 1e-9:
            continue  # no room left at the very end of a crowded video
        blur = knobs.boundary_blur_sec * float(rng.uniform(0.5, 1.5))
        actions.append(Event(start, end, int(label), blur))
    cues = _place_cues(duration, actions, knobs, rng)
    occupied = [(a.start_sec, a.end_sec) for a in actions] + [(c.start_sec, c.end_sec) for c in cues]
    distractors = _place_distractors(duration, occupied, classes, stats, knobs, rng)
    return VideoLayout(video_id, subset, duration, tuple(sorted(set(classes))), tuple(actions),
                       tuple(distractors), tuple(cues))


def _round(value: float) -> float:
    return round(round(value / ANNOTATION_RESOLUTION_SEC) * ANNOTATION_RESOLUTION_SEC, 6)


def _round_down(value: float) -> float:
    return round(np.floor(value / ANNOTATION_RESOLUTION_SEC + 1e-9) * ANNOTATION_RESOLUTION_SEC, 6)
