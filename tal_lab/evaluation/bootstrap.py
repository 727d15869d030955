"""How sure is an mAP? Bootstrap over videos, and a paired bootstrap for two runs.

Videos are the unit of resampling (instances of one video are not independent). Matching never
crosses videos, so each prediction's TP / FP flag is the same in every resample that contains
its video: matching runs once (:func:`tal_lab.evaluation.matching.match_predictions`), and a resample is
just a vector of video multiplicities. A video drawn m times contributes its GT m times to the
class's positives and its predictions m times, tied, to the ranked list; with weights w the
interpolated AP becomes

    AP = sum over TPs i of (w_i / npos) * max_{TP j >= i} (TPw_j / ALLw_j)

(TPw, ALLw: weighted cumulative TP and prediction counts; the precision envelope only peaks at
TPs), which equals the reference AP for w = 1 and for the explicitly resampled data set.
Everything is vectorised over resamples. Classes without GT in a resample are left out of its
mean, as the evaluator leaves out classes without GT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from tal_lab.evaluation.average_precision import average_precision_per_class
from tal_lab.evaluation.matching import THUMOS14_TIOU_THRESHOLDS, Matching, match_predictions

__all__ = [
    "BootstrapResult",
    "PairedBootstrapResult",
    "video_weights",
    "resampled_map",
    "bootstrap_map",
    "paired_bootstrap",
]

def video_weights(num_videos: int, num_resamples: int, seed: int) -> np.ndarray:
    """Multiplicity of each video in each resample (draws with replacement, seeded).

    Shapes:
        returns (B, V) int64, each row summing to V.
    """
    if num_videos < 1 or num_resamples < 1:
        raise ValueError(f"need >= 1 video and resample, got {num_videos} and {num_resamples}")
    draws = np.random.default_rng(seed).integers(0, num_videos, size=(num_resamples, num_videos))
    flat = (draws + np.arange(num_resamples)[:, None] * num_videos).ravel()
    return np.bincount(flat, minlength=num_resamples * num_videos).reshape(num_resamples, num_videos)


def _weighted_ap(wt: np.ndarray, all_cum: np.ndarray, npos: np.ndarray) -> np.ndarray:
    """Interpolated AP of one class under per-resample weights, from its TPs alone.

    Shapes:
        wt: (b, n_tp) weights of the TPs in rank order; all_cum: (b, n_tp) weighted count of
        predictions ranked at or above each TP; npos: (b,). Returns (b,), NaN where npos = 0.
    """
    area = np.zeros(len(npos))
    if wt.shape[1]:
        tp_cum = np.cumsum(wt, axis=1)
        precision = np.divide(tp_cum, all_cum, out=np.zeros_like(tp_cum), where=all_cum > 0)
        envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
        area = (wt * envelope).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(npos > 0, area / npos, np.nan)


def resampled_map(matching: Matching, weights: np.ndarray, video_columns: np.ndarray | None = None) -> np.ndarray:
    """mAP per threshold for each row of video weights.

    Args:
        matching: from :func:`tal_lab.evaluation.matching.match_predictions`.
        weights: multiplicities; column ``video_columns[v]`` belongs to the matching's video code v.
        video_columns: default ``arange(V)``, the matching's own video codes.

    Shapes:
        weights (B, V); video_columns (V_matching,); returns (B, T).
    """
    n_videos, n_classes = len(matching.video_ids), len(matching.labels)
    columns = np.arange(n_videos) if video_columns is None else np.asarray(video_columns)
    w_video = weights[:, columns].astype(np.float64)  # (B, V_matching)
    gt_counts = np.bincount(matching.gt.label * n_videos + matching.gt.video, minlength=n_classes * n_videos)
    npos = w_video @ gt_counts.reshape(n_classes, n_videos).T  # (B, C) weighted positives
    n_thr = len(matching.tiou_thresholds)
    ap = np.full((len(weights), n_thr, n_classes), np.nan)
    for c in np.flatnonzero(matching.num_gt > 0):
        ranked = matching.order[matching.class_offsets[c]:matching.class_offsets[c + 1]]
        video = matching.pred.video[ranked]
        tp = matching.tp[:, ranked]  # (T, n_c)
        at = np.flatnonzero(tp.any(axis=0))  # ranks that are a TP at some threshold
        # Predictions of each video ranked at or above each of those ranks; its product with the
        # weights is the weighted prediction count there, without a cumsum over all predictions.
        block = np.searchsorted(at, np.arange(len(ranked)), side="left")
        counts = np.bincount(block * n_videos + video, minlength=(len(at) + 1) * n_videos)
        prefix = np.cumsum(counts.reshape(len(at) + 1, n_videos)[: len(at)], axis=0)  # (n_at, V)
        all_cum = w_video @ prefix.T.astype(np.float64)  # (B, n_at)
        w_at = w_video[:, video[at]]  # (B, n_at)
        for t in range(n_thr):
            sel = tp[t, at]
            ap[:, t, c] = _weighted_ap(w_at[:, sel], all_cum[:, sel], npos[:, c])
    with np.errstate(invalid="ignore", divide="ignore"):
        counted = ~np.isnan(ap)
        return np.where(counted, ap, 0.0).sum(axis=2) / counted.sum(axis=2)


def _interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    low, high = np.nanquantile(samples, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(low), float(high)


@dataclass(frozen=True)
class BootstrapResult:
    """Average mAP on the full set (``estimate``) and its percentile bootstrap interval.

    Shapes:
        samples (B,) average mAP per resample; map_samples (B, T).
    """

    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    samples: np.ndarray
    map_samples: np.ndarray

    @property
    def std(self) -> float:
        """Bootstrap standard error."""
        return float(np.nanstd(self.samples, ddof=1))

    def __str__(self) -> str:
        return (f"average mAP {self.estimate * 100:.2f} % (bootstrap {self.ci_level:.0%} CI "
                f"{self.ci_low * 100:.2f}-{self.ci_high * 100:.2f}, s.e. {self.std * 100:.2f}, B={len(self.samples)})")


@dataclass(frozen=True)
class PairedBootstrapResult:
    """Difference of average mAP, run a minus run b, over the same video resamples.

    ``p_value`` is two-sided and bootstrap-based: 2 x the smaller of the shares of resamples
    with a difference <= 0 and >= 0 (capped at 1); ``prob_a_better``: share with difference > 0.
    """

    observed_diff: float
    mean_diff: float
    ci_low: float
    ci_high: float
    ci_level: float
    p_value: float
    prob_a_better: float
    samples: np.ndarray

    def __str__(self) -> str:
        return (f"a - b = {self.observed_diff * 100:+.2f} points ({self.ci_level:.0%} CI {self.ci_low * 100:+.2f} "
                f"to {self.ci_high * 100:+.2f}; p ~ {self.p_value:.3f}; "
                f"a better in {self.prob_a_better:.0%} of resamples)")


def _full_average(matching: Matching) -> float:
    ap = average_precision_per_class(matching)
    return float(ap[:, matching.num_gt > 0].mean(axis=1).mean())


def bootstrap_map(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS,
    *,
    num_resamples: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    labels: Sequence[Any] | None = None,
) -> BootstrapResult:
    """Percentile bootstrap CI of the average mAP, resampling videos (GT and prediction-only)."""
    matching = match_predictions(ground_truth, predictions, tiou_thresholds, labels)
    weights = video_weights(len(matching.video_ids), num_resamples, seed)
    map_samples = resampled_map(matching, weights)
    samples = map_samples.mean(axis=1)
    low, high = _interval(samples, ci)
    return BootstrapResult(_full_average(matching), low, high, ci, samples, map_samples)


def paired_bootstrap(
    ground_truth: pd.DataFrame,
    predictions_a: pd.DataFrame,
    predictions_b: pd.DataFrame,
    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS,
    *,
    num_resamples: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    labels: Sequence[Any] | None = None,
) -> PairedBootstrapResult:
    """Bootstrap the difference of average mAP between two runs on the same videos.

    Both runs are evaluated on every resample of the union of their videos, so the noise the
    videos share cancels; label spaces must agree (default: the GT's).
    """
    match_a = match_predictions(ground_truth, predictions_a, tiou_thresholds, labels)
    match_b = match_predictions(ground_truth, predictions_b, tiou_thresholds, labels)
    universe = pd.Index(match_a.video_ids).append(pd.Index(match_b.video_ids)).unique()
    weights = video_weights(len(universe), num_resamples, seed)
    map_a = resampled_map(match_a, weights, universe.get_indexer(match_a.video_ids))
    map_b = resampled_map(match_b, weights, universe.get_indexer(match_b.video_ids))
    diff = map_a.mean(axis=1) - map_b.mean(axis=1)
    low, high = _interval(diff, ci)
    p_value = min(1.0, 2 * min(float(np.mean(diff <= 0)), float(np.mean(diff >= 0))))
    return PairedBootstrapResult(
        observed_diff=_full_average(match_a) - _full_average(match_b),
        mean_diff=float(np.nanmean(diff)),
        ci_low=low,
        ci_high=high,
        ci_level=ci,
        p_value=p_value,
        prob_a_better=float(np.mean(diff > 0)),
        samples=diff,
    )
