"""Calibration of the combined seed-and-video test on synthetic runs with known noise.

A generative model of a detector's output: GT segments on a fixed test set; a run finds every
GT instance with a localisation jitter and a score ``skill + N(0, 1)`` against false positives
scored ``N(0, 1)``, where ``skill = quality + seed offset + per-video noise``. The seed offset
(one draw per run, shifting the scores and scaling the jitter) is the training noise; the
per-video noise is the run-to-video interaction that the video bootstrap sees. Two "rows" of
the same ``quality`` differ only in their seeds: a null comparison. Every run is matched and
scored by the real evaluator (:func:`tal_lab.evaluation.significance.seed_video_test`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tal_lab.evaluation.significance import SeedVideoResult, seed_video_test

NUM_VIDEOS, GT_PER_VIDEO, NUM_CLASSES, FP_PER_VIDEO = 40, 3, 2, 4
QUALITY = 1.0  # mean skill: an average mAP of about 0.6 at THUMOS14's thresholds
SEED_SD, VIDEO_SD, JITTER = 0.15, 0.3, 0.12  # training noise; run x video noise; centre jitter / length
RESAMPLES = 200  # the video bootstrap's; enough for its variance, which is all the test uses
SEEDS_PER_SIDE = 3
NULL_COMPARISONS = 300
LEVEL = 0.95
# The mark may fire in at most about 5% of null comparisons. With 300 independent comparisons,
# a test whose true rate were exactly 5% marks more than 28 of them with probability < 0.001
# (binomial tail: P(X >= 29 | n 300, p 0.05) = 0.0006), so 28 (9.3%) is the tolerance this
# sample size justifies; a rate of 15% would exceed it with probability > 0.999.
NULL_TOLERANCE = 28


def _ground_truth(rng: np.random.Generator) -> pd.DataFrame:
    video = np.repeat(np.arange(NUM_VIDEOS), GT_PER_VIDEO)
    start = np.tile(np.arange(GT_PER_VIDEO) * 30.0, NUM_VIDEOS) + rng.uniform(0, 10, len(video))
    return pd.DataFrame({"video-id": [f"v{v}" for v in video], "t-start": start,
                         "t-end": start + rng.uniform(4, 12, len(video)),
                         "label": rng.integers(0, NUM_CLASSES, len(video))})


def _run(gt: pd.DataFrame, quality: float, rng: np.random.Generator) -> pd.DataFrame:
    """One training seed's detections: a seed offset on scores and jitter, and per-video noise."""
    offset = rng.normal(0, SEED_SD)
    skill = quality + offset + rng.normal(0, VIDEO_SD, NUM_VIDEOS)
    video = gt["video-id"].str[1:].astype(int).to_numpy()
    start, end = gt["t-start"].to_numpy(), gt["t-end"].to_numpy()
    length, jitter = end - start, JITTER * math.exp(-offset)  # a better seed localises better too
    centre = (start + end) / 2 + rng.normal(0, jitter, len(gt)) * length
    width = length * np.exp(rng.normal(0, jitter, len(gt)))
    found = pd.DataFrame({"video-id": gt["video-id"], "t-start": centre - width / 2, "t-end": centre + width / 2,
                          "label": gt["label"], "score": skill[video] + rng.normal(0, 1, len(gt))})
    fp_video = np.repeat(np.arange(NUM_VIDEOS), FP_PER_VIDEO)
    fp_start = rng.uniform(0, 100, len(fp_video))
    false = pd.DataFrame({"video-id": [f"v{v}" for v in fp_video], "t-start": fp_start,
                          "t-end": fp_start + rng.uniform(4, 12, len(fp_video)),
                          "label": rng.integers(0, NUM_CLASSES, len(fp_video)),
                          "score": rng.normal(0, 1, len(fp_video))})
    return pd.concat([found, false], ignore_index=True)


def _comparisons(count: int, gain: float, seed: int, seeds_a: int = SEEDS_PER_SIDE) -> list[SeedVideoResult]:
    """``count`` independent comparisons of a row of quality QUALITY + gain against QUALITY."""
    rng = np.random.default_rng(seed)
    gt = _ground_truth(rng)
    results = []
    for k in range(count):
        row_a = [_run(gt, QUALITY + gain, rng) for _ in range(seeds_a)]
        row_b = [_run(gt, QUALITY, rng) for _ in range(SEEDS_PER_SIDE)]
        results.append(seed_video_test(gt, row_a, row_b, num_resamples=RESAMPLES, seed=k, level=LEVEL))
    return results


def test_null_comparisons_are_marked_at_most_about_five_percent() -> None:
    results = _comparisons(NULL_COMPARISONS, gain=0.0, seed=0)
    marks = sum(r.significant is True for r in results)
    assert all(r.significant is not None for r in results)
    assert marks <= NULL_TOLERANCE, f"{marks} of {NULL_COMPARISONS} null comparisons marked"
    # The model's training noise is real and larger than the videos' part: a test on video
    # resampling alone (|D| > 1.96 s.e. of the paired video bootstrap) marks far more than 5%,
    # which this calibration would catch.
    video_only = sum(abs(r.diff) > 1.96 * r.se_video for r in results)
    assert video_only > 2 * NULL_TOLERANCE, f"video resampling alone marked only {video_only}"
    assert np.mean([r.se_seed for r in results]) > np.mean([r.se_video for r in results])


def test_a_planted_difference_is_found() -> None:
    # gain 1.5 raises the average mAP by about 20 points, about 4 combined standard errors; over
    # 300 other comparisons (seed 11) the test marked 86% of them. 28 of 40 allows for chance:
    # P(X < 28 | n 40, p 0.86) = 0.002.
    results = _comparisons(40, gain=1.5, seed=1)
    assert sum(r.significant is True for r in results) >= 28
    assert all(r.diff > 0 for r in results)


def test_one_seed_on_a_side_gives_no_mark_even_for_a_planted_difference() -> None:
    results = _comparisons(5, gain=1.5, seed=2, seeds_a=1)
    assert all(r.significant is None and r.n_a == 1 for r in results)
    assert all(abs(r.diff) > 1.96 * r.se_video for r in results)  # the video bootstrap alone would mark them
