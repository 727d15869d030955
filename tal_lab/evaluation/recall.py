"""Recall: the reference's Recall@kx (per class and video) and recall at k predictions per video."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from tal_lab.evaluation.encoding import encode_inputs
from tal_lab.evaluation.matching import (
    THUMOS14_TIOU_THRESHOLDS,
    Matching,
    candidate_pairs,
    check_tiou_thresholds,
    rank_order,
)

__all__ = ["RECALL_TOP_KX", "RECALL_AT_K", "topkx_recall_per_class", "recall_at_k"]

RECALL_TOP_KX = (1, 5)  # the reference evaluator's Recall@1x / Recall@5x
RECALL_AT_K = (1, 5, 10, 50, 100)  # predictions kept per video for recall_at_k


def _group_rank(key: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rank of each item within its key group, following ``order`` (stable)."""
    sorted_idx = order[np.argsort(key[order], kind="stable")]
    sorted_key = key[sorted_idx]
    starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    pos = np.arange(len(key))
    rank = np.empty(len(key), dtype=np.int64)
    rank[sorted_idx] = pos - np.maximum.accumulate(np.where(starts, pos, 0))
    return rank


def topkx_recall_per_class(matching: Matching, top_k: Sequence[int] = RECALL_TOP_KX) -> np.ndarray:
    """The reference's Recall@kx: per class and video, keep the k x (GT count) best predictions.

    A GT counts as recalled when any kept prediction reaches tIoU >= threshold with it (no
    one-to-one matching, as in the reference). NaN for classes without GT.

    Shapes:
        returns (T, K, C).
    """
    gt, pred = matching.gt, matching.pred
    n_videos, n_classes = len(matching.video_ids), len(matching.labels)
    group_gt = np.bincount(gt.label * n_videos + gt.video, minlength=n_classes * n_videos)
    rank = _group_rank(pred.label * n_videos + pred.video, matching.order)
    pair_rank = rank[matching.pair_pred]
    pair_limit = group_gt[gt.label[matching.pair_gt] * n_videos + gt.video[matching.pair_gt]]
    num_gt = matching.num_gt
    out = np.full((len(matching.tiou_thresholds), len(top_k), n_classes), np.nan)
    for t, thr in enumerate(matching.tiou_thresholds):
        for i, k in enumerate(top_k):
            hit = (matching.pair_tiou >= thr) & (pair_rank < k * pair_limit)
            recalled = np.zeros(len(gt), dtype=bool)
            recalled[matching.pair_gt[hit]] = True
            counts = np.bincount(gt.label[recalled], minlength=n_classes)
            out[t, i] = np.where(num_gt > 0, counts / np.maximum(num_gt, 1), np.nan)
    return out


def recall_at_k(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    k: Sequence[int] = RECALL_AT_K,
    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS,
    *,
    class_aware: bool = True,
    labels: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Recall when each video keeps only its k best predictions (all classes together).

    A GT instance is recalled when a kept prediction of its video (of its class, unless
    ``class_aware`` is False) reaches tIoU >= threshold; predictions may cover several GTs.

    Returns:
        DataFrame, index tIoU threshold, columns ``R@k``, fractions.
    """
    thr = check_tiou_thresholds(tiou_thresholds)
    gt, pred, _, video_ids = encode_inputs(ground_truth, predictions, labels, "ignore")
    n_videos = len(video_ids)
    gt_key = gt.label * n_videos + gt.video if class_aware else gt.video
    pred_key = pred.label * n_videos + pred.video if class_aware else pred.video
    pair_pred, pair_gt, pair_tiou = candidate_pairs(gt_key, gt, pred_key, pred, float(thr.min()))
    rank = _group_rank(pred.video, rank_order(np.zeros(len(pred), dtype=np.int64), pred.score))
    best_rank = np.full((len(thr), len(gt)), np.iinfo(np.int64).max)
    for t, threshold in enumerate(thr):
        hit = pair_tiou >= threshold
        np.minimum.at(best_rank[t], pair_gt[hit], rank[pair_pred[hit]])
    data = {f"R@{int(kk)}": (best_rank < kk).mean(axis=1) for kk in k}
    return pd.DataFrame(data, index=pd.Index(np.round(thr, 6), name="tIoU"))
