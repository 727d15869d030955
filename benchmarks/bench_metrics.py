"""Benchmark: tal_lab.evaluation's mAP against the official ActionFormer evaluator's stored timings.

Prints the median wall time of :func:`tal_lab.evaluation.mean_average_precision` (AP + Recall@1x/5x,
what the official ``ANETdetection.evaluate`` computes) on the THUMOS14 test ground truth with

* the realistic prediction set of ``../shared/reference/eval`` (4,990 rows), side by side with
  the official evaluator's stored median on this kind of machine (``eval_reference.json``; the
  official code cannot run here: it needs numpy <= 1.23);
* a synthetic set of the size the detector produces (200 predictions per video, 42,400 rows);

and the cost of the diagnostics (bootstrap, DETAD analyses). Without ``../shared`` the GT and
predictions are synthetic and no ratio is printed.

Usage: ``python benchmarks/bench_metrics.py [--repeats 20] [--resamples 1000]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from tal_lab.evaluation.bootstrap import bootstrap_map
from tal_lab.analysis.errors import false_negative_analysis, false_positive_analysis, sensitivity_analysis
from tal_lab.evaluation import mean_average_precision, read_predictions
from timing import median_seconds  # benchmarks/timing.py, beside this script

SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "reference" / "eval"
PREDICTIONS_PER_VIDEO = 200  # ActionFormer keeps at most 200 detections per video
OFFICIAL_42K_SEC = 14.4  # ../shared/reference/PERFORMANCE.md: official evaluator, 42,400 predictions




def synthetic_ground_truth(seed: int = 0, num_videos: int = 212, num_classes: int = 20) -> pd.DataFrame:
    """THUMOS14-like GT: ~16 instances of one or two classes per video."""
    rng = np.random.default_rng(seed)
    rows = []
    for v in range(num_videos):
        classes = rng.choice(num_classes, size=rng.integers(1, 3), replace=False)
        for _ in range(rng.integers(4, 30)):
            start = rng.uniform(0, 300)
            rows.append((f"video_test_{v:07d}", start, start + rng.uniform(1, 15), int(rng.choice(classes))))
    return pd.DataFrame(rows, columns=["video-id", "t-start", "t-end", "label"])


def synthetic_predictions(gt: pd.DataFrame, per_video: int, seed: int = 0, num_classes: int = 20) -> pd.DataFrame:
    """Detector-like output: jittered GT copies (some relabelled) and random segments, per video."""
    rng = np.random.default_rng(seed)
    parts = []
    for video, own in gt.groupby("video-id", sort=False):
        pick = rng.integers(0, len(own), per_video)
        start, end = own["t-start"].to_numpy()[pick], own["t-end"].to_numpy()[pick]
        length = (end - start) * np.exp(rng.normal(0, 0.3, per_video))
        centre = (start + end) / 2 + rng.normal(0, 0.3, per_video) * (end - start)
        random = rng.random(per_video) < 0.3
        centre[random] = rng.uniform(0, 300, random.sum())
        relabel = rng.random(per_video) >= 0.8
        label = np.where(relabel, rng.integers(0, num_classes, per_video), own["label"].to_numpy()[pick])
        parts.append(pd.DataFrame({"video-id": video, "t-start": centre - length / 2, "t-end": centre + length / 2,
                                   "label": label, "score": rng.random(per_video)}))
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per measurement (median reported)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args()

    reference = None
    if (SHARED_EVAL / "eval_reference.json").is_file():
        reference = json.loads((SHARED_EVAL / "eval_reference.json").read_text())["sets"]["pred_realistic"]
        gt = read_predictions(SHARED_EVAL / "gt_test_reference.csv")
        realistic = read_predictions(SHARED_EVAL / "pred_realistic.csv")
        print(f"ground truth: THUMOS14 test from ../shared ({len(gt)} instances, {gt['video-id'].nunique()} videos)")
    else:
        gt = synthetic_ground_truth()
        realistic = synthetic_predictions(gt, per_video=24)
        print(f"../shared not found: synthetic GT ({len(gt)} instances) and predictions")
    full = synthetic_predictions(gt, PREDICTIONS_PER_VIDEO)

    for name, preds in (("realistic set", realistic), (f"{PREDICTIONS_PER_VIDEO} per video", full)):
        sec = median_seconds(lambda: mean_average_precision(gt, preds), args.repeats)
        print(f"mean_average_precision, {name} ({len(preds)} predictions): median {sec * 1e3:.1f} ms "
              f"over {args.repeats} runs")
        if name == "realistic set" and reference is not None:
            timing = reference["timing_s"]
            for workers, key in (("8 workers (default)", "num_workers_default_8"), ("1 worker", "num_workers_1")):
                official = timing[key]["median_evaluate_s"]
                print(f"  official evaluate(), {workers}: {official:.1f} s (stored) -> {official / sec:.0f}x faster")
        elif name != "realistic set":
            print(f"  official evaluator on 42,400 predictions: {OFFICIAL_42K_SEC} s (PERFORMANCE.md) -> "
                  f"{OFFICIAL_42K_SEC / sec:.0f}x faster")

    repeats = max(1, args.repeats // 5)
    for name, fn in (
        (f"bootstrap_map, {args.resamples} resamples, realistic set",
         lambda: bootstrap_map(gt, realistic, num_resamples=args.resamples)),
        (f"bootstrap_map, {args.resamples} resamples, {len(full)} predictions",
         lambda: bootstrap_map(gt, full, num_resamples=args.resamples)),
        ("false_positive_analysis, realistic set", lambda: false_positive_analysis(gt, realistic)),
        ("sensitivity_analysis, realistic set", lambda: sensitivity_analysis(gt, realistic)),
        ("false_negative_analysis, realistic set", lambda: false_negative_analysis(gt, realistic)),
    ):
        print(f"{name}: median {median_seconds(fn, repeats) * 1e3:.0f} ms over {repeats} runs")


if __name__ == "__main__":
    main()
