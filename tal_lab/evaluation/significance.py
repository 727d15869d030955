"""Seed-aware tables: is a configuration's difference from the original outside the noise?

:func:`paired_significance` builds the ``significance`` hook of
:func:`tal_lab.study.tables.table_configurations` / ``table_heads``. For every row it pairs
each of its runs with the reference row's run of the **same seed**, and runs the paired
bootstrap of :mod:`tal_lab.evaluation.bootstrap` (resampling videos; both runs scored on the
same resamples) on their saved detections. With several seed pairs, the per-pair bootstrap
samples of the difference (same resampling seed, hence the same video draws when the runs
cover the same videos) are averaged, giving the distribution of the seed-averaged difference
under video resampling; its percentile interval is reported. A row is ``significant`` when
that interval excludes 0. Seed-to-seed spread is shown separately in the tables (± std).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from tal_lab.evaluation.bootstrap import paired_bootstrap
from tal_lab.evaluation.matching import THUMOS14_TIOU_THRESHOLDS

__all__ = ["paired_significance", "run_seed", "run_detections"]


def run_seed(path: str | Path) -> Any:
    """The training seed recorded in a run folder's run.json (None if unreadable)."""
    try:
        return json.loads((Path(path) / "run.json").read_text()).get("seed")
    except (OSError, ValueError):
        return None


def run_detections(path: str | Path) -> pd.DataFrame | None:
    """A run's saved detections (detections.csv), or None when the run has none."""
    file = Path(path) / "detections.csv"
    return pd.read_csv(file) if file.is_file() else None


def paired_significance(ground_truth: pd.DataFrame, *, reference: str = "original",
                        tiou_thresholds: Sequence[float] | None = None, num_resamples: int = 1000,
                        seed: int = 0, ci: float = 0.95) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The tables' significance hook: paired bootstrap of each row against row ``reference``.

    Args:
        ground_truth: the evaluation split's ground truth (video-id, t-start, t-end, label),
            with labels of the same kind as the runs' detections.
        reference: the ``key`` of the reference row ('original' in Table I, 'actionformer'
            in the head table).
        tiou_thresholds: default THUMOS14's 0.3:0.1:0.7.

    Returns:
        A function taking the table's numeric frame (with ``key`` and ``_paths``) and returning
        it with ``diff_vs_ref`` (percentage points), ``ci_low``, ``ci_high``, ``n_pairs`` and
        ``significant`` (True / False; None where no seed pair with detections exists).
    """
    thresholds = THUMOS14_TIOU_THRESHOLDS if tiou_thresholds is None else tiou_thresholds

    def apply(frame: pd.DataFrame) -> pd.DataFrame:
        if "_paths" not in frame.columns or "key" not in frame.columns:
            raise ValueError("paired_significance needs the table frame with 'key' and '_paths' columns")
        out = frame.copy()
        ref_rows = out[out["key"] == reference]
        ref_paths = ref_rows["_paths"].iloc[0] if len(ref_rows) else []
        ref_by_seed = {run_seed(p): p for p in ref_paths}
        cache: dict[str, pd.DataFrame | None] = {}

        def dets(path: str) -> pd.DataFrame | None:
            if path not in cache:
                cache[path] = run_detections(path)
            return cache[path]

        results: list[dict[str, Any]] = []
        for key, paths in zip(out["key"], out["_paths"]):
            empty = {"diff_vs_ref": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n_pairs": 0,
                     "significant": None}
            if key == reference:
                results.append(empty)
                continue
            samples, observed = [], []
            for path in paths:
                ref_path = ref_by_seed.get(run_seed(path))
                a, b = dets(path), (dets(ref_path) if ref_path else None)
                if a is None or b is None:
                    continue
                # classes a run predicts but the GT lacks join the label space; AP means only
                # count classes with GT, so they change nothing but the validation
                space = sorted(set(ground_truth["label"]) | set(a["label"]) | set(b["label"]))
                res = paired_bootstrap(ground_truth, a, b, thresholds, num_resamples=num_resamples,
                                       seed=seed, ci=ci, labels=space)
                samples.append(res.samples)
                observed.append(res.observed_diff)
            if not samples:
                results.append(empty)
                continue
            mean_samples = np.mean(np.stack(samples), axis=0) * 100.0
            low, high = np.nanquantile(mean_samples, [(1 - ci) / 2, 1 - (1 - ci) / 2])
            results.append({"diff_vs_ref": float(np.mean(observed)) * 100.0, "ci_low": float(low),
                            "ci_high": float(high), "n_pairs": len(samples),
                            "significant": bool(low > 0 or high < 0)})
        for column in ("diff_vs_ref", "ci_low", "ci_high", "n_pairs", "significant"):
            out[column] = [r[column] for r in results]
        return out

    return apply
