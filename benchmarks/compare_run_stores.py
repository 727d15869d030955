"""Compare the runs of two run stores cell by cell: did a code change move any result?

For every run name present in both stores (e.g. a study before and after a speed-up, same seeds
and data), prints each side's average mAP, the difference, the paired video-bootstrap 95%
interval of the difference (both runs scored on the same resampled test videos:
:func:`tal_lab.evaluation.bootstrap.paired_bootstrap`), and how the difference compares with a
seed-to-seed standard deviation given on the command line (the noise a new training seed
brings, which one seed per side cannot measure: the README's 3-seed figure for the original is
2.02 points). A change "moved" a cell when the difference exceeds twice the std of a
difference of two single-seed runs, sqrt(2) x seed std.

With ``--across-seeds`` the runs that differ only in their training seed (names ending in
``-s<seed>``) form one row per side, and each row pair gets the study's combined seed-and-video
test (:func:`tal_lab.evaluation.significance.seed_video_test`: its difference, 95% interval and
p-value), which needs 2+ seeds per side; the seeds need not be the same on both sides.

Usage::

    python benchmarks/compare_run_stores.py BEFORE/runs AFTER/runs --annotations DATA/annotations.json \\
        [--seed-std 2.02] [--resamples 1000] [--across-seeds]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import pandas as pd

from tal_lab.evaluation.bootstrap import paired_bootstrap
from tal_lab.evaluation.io import read_ground_truth_json, read_predictions
from tal_lab.evaluation.significance import seed_video_test
from tal_lab.runs import load_run, run_status


def finished_runs(store: Path) -> dict[str, Path]:
    """Run name -> folder of every finished run in the store."""
    return {p.name: p for p in sorted(store.iterdir()) if p.is_dir() and run_status(p) == "finished"}


def compare(before: Path, after: Path, annotations: Path, seed_std: float, resamples: int) -> pd.DataFrame:
    ground_truth = read_ground_truth_json(annotations, subset="test")
    runs_a, runs_b = finished_runs(before), finished_runs(after)
    rows = []
    for name in sorted(set(runs_a) & set(runs_b)):
        map_a = json.loads((runs_a[name] / "results.json").read_text())["average_mAP"] * 100
        map_b = json.loads((runs_b[name] / "results.json").read_text())["average_mAP"] * 100
        classes = int(load_run(runs_a[name]).config["dataset"]["num_classes"])
        boot = paired_bootstrap(ground_truth, read_predictions(runs_b[name] / "detections.csv"),
                                read_predictions(runs_a[name] / "detections.csv"), num_resamples=resamples, seed=0,
                                labels=list(range(classes)))
        diff = map_b - map_a
        rows.append({"run": name, "before": map_a, "after": map_b, "diff": diff, "ci_low": boot.ci_low * 100,
                     "ci_high": boot.ci_high * 100,
                     "moved": abs(diff) > 2 * math.sqrt(2) * seed_std})
    return pd.DataFrame(rows)


def seed_groups(runs: dict[str, Path]) -> dict[str, list[Path]]:
    """Run folders grouped by their name without the ``-s<seed>`` suffix."""
    groups: dict[str, list[Path]] = {}
    for name, path in runs.items():
        groups.setdefault(re.sub(r"-s\d+$", "", name), []).append(path)
    return groups


def compare_across_seeds(before: Path, after: Path, annotations: Path, resamples: int) -> pd.DataFrame:
    ground_truth = read_ground_truth_json(annotations, subset="test")
    groups_a, groups_b = seed_groups(finished_runs(before)), seed_groups(finished_runs(after))
    rows = []
    for key in sorted(set(groups_a) & set(groups_b)):
        result = seed_video_test(ground_truth, [read_predictions(p / "detections.csv") for p in groups_b[key]],
                                 [read_predictions(p / "detections.csv") for p in groups_a[key]],
                                 num_resamples=resamples, seed=0)
        rows.append({"configuration": key, "n_before": result.n_b, "n_after": result.n_a,
                     "diff": result.diff * 100, "ci_low": result.ci_low * 100, "ci_high": result.ci_high * 100,
                     "p_value": result.p_value, "significant": result.significant})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--annotations", type=Path, required=True, help="the annotation JSON of the test videos")
    parser.add_argument("--seed-std", type=float, default=2.02, help="seed-to-seed std of one cell (points)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--across-seeds", action="store_true",
                        help="one row per configuration over its seeds, with the combined seed-and-video test")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    if args.across_seeds:
        frame = compare_across_seeds(args.before, args.after, args.annotations, args.resamples)
        if frame.empty:
            raise SystemExit(f"no configuration has finished runs in both {args.before} and {args.after}")
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print("\ndiff = after - before (average mAP points, mean over seeds); significant: p < 0.05 in the "
              "combined seed-and-video test (None: fewer than 2 seeds on a side)")
        return
    frame = compare(args.before, args.after, args.annotations, args.seed_std, args.resamples)
    if frame.empty:
        raise SystemExit(f"no finished run is in both {args.before} and {args.after}")
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\n{int(frame['moved'].sum())} of {len(frame)} cells moved by more than 2 x sqrt(2) x seed std "
          f"({2 * math.sqrt(2) * args.seed_std:.2f} points); differences: median |diff| "
          f"{frame['diff'].abs().median():.2f}, largest {frame['diff'].abs().max():.2f}")


if __name__ == "__main__":
    main()
