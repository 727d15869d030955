"""Average precision: the VOC-2011 interpolated area under precision-recall, per class and threshold.

The reference is ActionFormer's ``interpolated_prec_rec`` (``libs/utils/metrics.py``, commit
61ea7eb): the same terms and the same summation, so AP agrees bit for bit.
"""

from __future__ import annotations

import numpy as np

from tal_lab.evaluation.matching import Matching

__all__ = ["interpolated_average_precision", "average_precision_per_class"]


def interpolated_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC-2011 interpolated AP, the reference's ``interpolated_prec_rec`` (same terms, same sum).

    Shapes:
        precision, recall: (N,) at each ranked prediction.
    """
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    envelope = np.maximum.accumulate(mprec[::-1])[::-1]  # best precision at any later point
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * envelope[idx]))


def average_precision_per_class(matching: Matching) -> np.ndarray:
    """AP per threshold and class: 0 for a class without predictions, NaN without GT.

    Shapes:
        returns (T, C).
    """
    tp_ranked = matching.tp[:, matching.order]  # (T, N) in (class, score) rank order
    num_gt = matching.num_gt
    ap = np.zeros((len(matching.tiou_thresholds), len(matching.labels)))
    for c in range(len(matching.labels)):
        if num_gt[c] == 0:
            ap[:, c] = np.nan
            continue
        lo, hi = matching.class_offsets[c], matching.class_offsets[c + 1]
        if hi == lo:
            continue
        tp_cum = np.cumsum(tp_ranked[:, lo:hi], axis=1).astype(np.float64)
        precision = tp_cum / np.arange(1, hi - lo + 1)  # = tp / (tp + fp): every rank is one of them
        recall = tp_cum / float(num_gt[c])
        for t in range(len(matching.tiou_thresholds)):
            ap[t, c] = interpolated_average_precision(precision[t], recall[t])
    return ap
