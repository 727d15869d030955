"""Matching predictions to ground truth at every tIoU threshold, as ActionFormer's evaluator does.

Per class, predictions ranked by score claim, one by one, the unmatched ground truth (GT)
instance of the same video with the highest tIoU; a claim fails when that tIoU is strictly below
the threshold (``libs/utils/metrics.py``, ``ANETdetection``, commit 61ea7eb). The reference loops
in Python over every prediction (10-20 s on THUMOS14); here the greedy matching runs for all
classes, videos and thresholds at once (:func:`match_predictions`).

Tie rules the reference leaves to chance are fixed (docs/evaluation.md): ties in score are ranked
in row order of the predictions frame (a stable descending sort; the reference's unstable argsort
changes between numpy versions); among GT instances with exactly equal tIoU the later GT row is
tried first (what the reference's reversed argsort does on the small arrays it sees).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np
import pandas as pd

from tal_lab.evaluation.encoding import Segments, UnknownVideos, encode_inputs

__all__ = [
    "THUMOS14_TIOU_THRESHOLDS",
    "ACTIVITYNET_TIOU_THRESHOLDS",
    "Matching",
    "candidate_pairs",
    "check_tiou_thresholds",
    "match_predictions",
    "rank_order",
]

# ActionFormer's THUMOS14 dataset setting (np.linspace(0.3, 0.7, 5)); ActivityNet's 0.5:0.05:0.95.
THUMOS14_TIOU_THRESHOLDS = np.linspace(0.3, 0.7, 5)
ACTIVITYNET_TIOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def check_tiou_thresholds(tiou_thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """The thresholds as a (T,) float64 array, each in (0, 1]."""
    thr = np.atleast_1d(np.asarray(tiou_thresholds, dtype=np.float64))
    if thr.ndim != 1 or len(thr) == 0 or not ((thr > 0) & (thr <= 1)).all():
        raise ValueError(f"tiou_thresholds must be a non-empty list of values in (0, 1], got {tiou_thresholds!r}")
    return thr


def _first_at_least(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per query, the first index i in [lo, hi) with values[i] >= x (hi if none); values sorted in each range."""
    lo, hi = lo.copy(), hi.copy()
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        below = values[np.minimum(mid, len(values) - 1)] < x
        lo = np.where(active & below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)


def candidate_pairs(
    gt_key: np.ndarray, gt: Segments, pred_key: np.ndarray, pred: Segments, min_tiou: float,
    pred_index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (prediction, GT) pairs with equal keys and tIoU >= ``min_tiou``, with their tIoU.

    tIoU uses the reference's float64 arithmetic in its order: the clipped intersection divided
    by (GT length + prediction length - intersection). ``pred_index`` restricts the search to
    those predictions (``pred_key`` then has their keys).

    Only GTs whose start can reach the threshold are visited: tIoU >= t > 0 implies
    ps + t*pl - pl/t <= gs <= pe - t*pl (p: prediction, g: GT, l: length), widened by a margin
    far above rounding error; the exact test decides.

    Shapes:
        gt_key: (G,) int; pred_key: (N',) int. Returns pred index (P,), gt index (P,), tIoU (P,).
    """
    pred_index = np.arange(len(pred_key)) if pred_index is None else np.asarray(pred_index)
    gt_order = np.lexsort((gt.start_sec, gt_key))  # by key, then start
    sorted_key, sorted_start = gt_key[gt_order], gt.start_sec[gt_order]
    lo = np.searchsorted(sorted_key, pred_key, side="left")
    hi = np.searchsorted(sorted_key, pred_key, side="right")
    if min_tiou > 0 and len(pred_index):
        p_s, p_e = pred.start_sec[pred_index], pred.end_sec[pred_index]
        p_len = p_e - p_s
        margin = 1e-9 * (np.abs(p_s) + np.abs(p_e) + 1.0) / min_tiou
        lo, hi = (_first_at_least(sorted_start, lo, hi, p_s + min_tiou * p_len - p_len / min_tiou - margin),
                  _first_at_least(sorted_start, lo, hi, np.nextafter(p_e - min_tiou * p_len + margin, np.inf)))
    count = hi - lo
    pair_pred = np.repeat(pred_index, count)
    first = np.cumsum(count) - count  # where each prediction's run of pairs starts
    pair_gt = gt_order[np.arange(len(pair_pred)) - np.repeat(first - lo, count)]
    p_s, p_e = pred.start_sec[pair_pred], pred.end_sec[pair_pred]
    g_s, g_e = gt.start_sec[pair_gt], gt.end_sec[pair_gt]
    inter = (np.minimum(p_e, g_e) - np.maximum(p_s, g_s)).clip(0)
    tiou = inter / ((g_e - g_s) + (p_e - p_s) - inter)
    keep = tiou >= min_tiou
    return pair_pred[keep], pair_gt[keep], tiou[keep]


def rank_order(label: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Prediction indices sorted by label, then score descending, ties in row order (stable)."""
    return np.lexsort((np.arange(len(score)), -score, label))


def _greedy_match(
    pair_pred: np.ndarray, pair_gt: np.ndarray, pair_tiou: np.ndarray,
    thresholds: np.ndarray, precedence: np.ndarray, n_pred: int, n_gt: int,
) -> np.ndarray:
    """The reference's sequential greedy matching, resolved in parallel rounds.

    Each prediction, in precedence order, takes its best free GT (highest tIoU, then later GT
    row) with tIoU >= threshold. In a round every undecided prediction looks at its best free
    GT; it may take it now when no earlier undecided prediction still has that GT among its
    free candidates: earlier predictions can only lock GTs they list, so nothing can change the
    outcome. The earliest undecided prediction of each (threshold, video, class) always
    qualifies, so every round makes progress; in practice a handful of rounds suffice.

    Shapes:
        pair_*: (P,); thresholds: (T,); precedence: (N,) unique ranks. Returns (T, N) GT index or -1.
    """
    pref = np.lexsort((-pair_gt, -pair_tiou, pair_pred))  # per prediction, best candidate first
    pair_pred, pair_gt, pair_tiou = pair_pred[pref], pair_gt[pref], pair_tiou[pref]
    # One matching problem per threshold; row-major nonzero keeps each prediction's run in order.
    t_idx, k = np.nonzero(pair_tiou[None, :] >= thresholds[:, None])
    slot_pred = t_idx * n_pred + pair_pred[k]
    slot_gt = t_idx * n_gt + pair_gt[k]
    prec = precedence[pair_pred[k]]
    matched = np.full(len(thresholds) * n_pred, -1, dtype=np.int64)
    locked = np.zeros(len(thresholds) * n_gt, dtype=bool)
    done = np.zeros(len(thresholds) * n_pred, dtype=bool)
    first_claim = np.empty(len(thresholds) * n_gt, dtype=np.int64)
    while len(slot_pred):
        head = np.r_[True, slot_pred[1:] != slot_pred[:-1]]  # each prediction's best free GT
        first_claim[slot_gt] = np.iinfo(np.int64).max
        np.minimum.at(first_claim, slot_gt, prec)
        win = head.copy()
        win[head] = first_claim[slot_gt[head]] == prec[head]
        matched[slot_pred[win]] = slot_gt[win] % n_gt
        locked[slot_gt[win]] = True
        done[slot_pred[win]] = True
        live = ~(done[slot_pred] | locked[slot_gt])
        slot_pred, slot_gt, prec = slot_pred[live], slot_gt[live], prec[live]
    return matched.reshape(len(thresholds), n_pred)


@dataclass(frozen=True)
class Matching:
    """Per-prediction matching results, reusable by AP, recall, DETAD and the bootstrap.

    ``order`` ranks predictions by (class, score desc, row); ``class_offsets[c]:class_offsets[c+1]``
    is class c's run of ``order``. ``pair_*`` are the same-(video, class) pairs with tIoU >= the
    lowest threshold.

    Shapes:
        tiou_thresholds (T,); matched_gt (T, N) GT index or -1; order (N,); class_offsets (C+1,).
    """

    tiou_thresholds: np.ndarray
    labels: tuple[Any, ...]
    video_ids: np.ndarray
    gt: Segments
    pred: Segments
    matched_gt: np.ndarray
    order: np.ndarray
    class_offsets: np.ndarray
    pair_pred: np.ndarray
    pair_gt: np.ndarray
    pair_tiou: np.ndarray

    @cached_property
    def tp(self) -> np.ndarray:
        """(T, N) bool, in prediction row order."""
        return self.matched_gt >= 0

    @cached_property
    def num_gt(self) -> np.ndarray:
        """(C,) GT instances per class."""
        return np.bincount(self.gt.label, minlength=len(self.labels))


def match_predictions(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS,
    labels: Sequence[Any] | None = None,
    unknown_videos: UnknownVideos = "false_positive",
) -> Matching:
    """Match predictions to GT at every threshold, as the reference evaluator does."""
    thr = check_tiou_thresholds(tiou_thresholds)
    gt, pred, space, video_ids = encode_inputs(ground_truth, predictions, labels, unknown_videos)
    n_videos = len(video_ids)
    pair_pred, pair_gt, pair_tiou = candidate_pairs(
        gt.label * n_videos + gt.video, gt, pred.label * n_videos + pred.video, pred, float(thr.min()))
    order = rank_order(pred.label, pred.score)
    precedence = np.empty(len(pred), dtype=np.int64)
    precedence[order] = np.arange(len(pred))
    matched = _greedy_match(pair_pred, pair_gt, pair_tiou, thr, precedence, len(pred), len(gt))
    offsets = np.searchsorted(pred.label[order], np.arange(len(space) + 1), side="left")
    return Matching(thr, space, video_ids, gt, pred, matched, order, offsets, pair_pred, pair_gt, pair_tiou)
