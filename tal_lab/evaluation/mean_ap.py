"""Detection mAP: ActivityNet / THUMOS14 mean average precision with Recall@kx, as ActionFormer reports it.

:func:`mean_average_precision` gives the numbers of ActionFormer's evaluator
(``libs/utils/metrics.py``, ``ANETdetection``, commit 61ea7eb): matching
(:mod:`tal_lab.evaluation.matching`), AP per class (:mod:`tal_lab.evaluation.average_precision`)
and Recall@kx (:mod:`tal_lab.evaluation.recall`) in one :class:`MAPResult`. Classes of the label
space without GT get AP NaN and are left out of the mean, as the reference, whose label space is
the GT's, leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from tal_lab.evaluation.average_precision import average_precision_per_class
from tal_lab.evaluation.encoding import UnknownVideos
from tal_lab.evaluation.matching import THUMOS14_TIOU_THRESHOLDS, match_predictions
from tal_lab.evaluation.recall import RECALL_TOP_KX, topkx_recall_per_class

__all__ = ["MAPResult", "mean_average_precision"]


@dataclass(frozen=True)
class MAPResult:
    """mAP and its parts. Fractions (not percent) everywhere; ``to_frame`` gives percent tables.

    Shapes:
        tiou_thresholds (T,); ap_per_class (T, C) (NaN: class without GT); recall_per_class
        (T, K, C) for ``top_k``; num_gt, num_predictions (C,).
    """

    tiou_thresholds: np.ndarray
    labels: tuple[Any, ...]
    ap_per_class: np.ndarray
    recall_per_class: np.ndarray
    top_k: tuple[int, ...]
    num_gt: np.ndarray
    num_predictions: np.ndarray

    @property
    def mAP(self) -> np.ndarray:  # noqa: N802 - the name every TAL paper uses
        """(T,) mAP per threshold, over classes with GT."""
        return self.ap_per_class[:, self.num_gt > 0].mean(axis=1)

    @property
    def average_mAP(self) -> float:  # noqa: N802
        """mAP averaged over thresholds."""
        return float(self.mAP.mean())

    @property
    def recall(self) -> np.ndarray:
        """(T, K) Recall@kx averaged over classes with GT."""
        return self.recall_per_class[:, :, self.num_gt > 0].mean(axis=2)

    def to_frame(self, percent: bool = True) -> pd.DataFrame:
        """One row per threshold plus 'average': mAP and Recall@kx."""
        scale = 100.0 if percent else 1.0
        index = [f"{t:.2f}" for t in self.tiou_thresholds] + ["average"]
        data = {"mAP": np.r_[self.mAP, self.average_mAP] * scale}
        for i, k in enumerate(self.top_k):
            data[f"Recall@{k}x"] = np.r_[self.recall[:, i], self.recall[:, i].mean()] * scale
        return pd.DataFrame(data, index=pd.Index(index, name="tIoU"))

    def per_class_frame(self, class_names: Sequence[str] | Mapping[Any, str] | None = None,
                        percent: bool = True) -> pd.DataFrame:
        """AP per class (rows) and threshold (columns), the class's average, and its GT count.

        Rows are named by ``class_names``: a mapping label -> name, a list aligned with
        ``labels`` (same length), or a list indexed by label id
        (:func:`tal_lab.evaluation.io.read_class_names`).
        """
        scale = 100.0 if percent else 1.0
        if class_names is None:
            names = list(self.labels)
        elif isinstance(class_names, Mapping):
            names = [class_names[label] for label in self.labels]
        elif len(class_names) == len(self.labels):
            names = list(class_names)
        else:
            names = [class_names[int(label)] for label in self.labels]
        frame = pd.DataFrame(self.ap_per_class.T * scale, columns=[f"AP@{t:.2f}" for t in self.tiou_thresholds],
                             index=pd.Index(names, name="class"))
        frame["average"] = frame.mean(axis=1)
        frame["num_gt"] = self.num_gt
        return frame

    def __str__(self) -> str:
        return self.to_frame().round(2).to_string()


def mean_average_precision(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS,
    *,
    labels: Sequence[Any] | None = None,
    top_k: Sequence[int] = RECALL_TOP_KX,
    unknown_videos: UnknownVideos = "false_positive",
) -> MAPResult:
    """ActivityNet detection mAP at each tIoU threshold, identical to ActionFormer's evaluator.

    Args:
        ground_truth: columns video-id, t-start, t-end, label (seconds).
        predictions: the same plus score; row order ranks tied scores.
        tiou_thresholds: values in (0, 1]; THUMOS14's 0.3:0.1:0.7 by default.
        labels: the label space; default the sorted GT labels. Classes without GT get AP NaN.
        top_k: the k of Recall@kx (the reference's 1x and 5x by default).
        unknown_videos: predictions for videos absent from GT: 'false_positive' (reference),
            'ignore' or 'error'.

    Returns:
        :class:`MAPResult` (``.mAP`` (T,), ``.average_mAP``, ``.ap_per_class`` (T, C), ...).
    """
    matching = match_predictions(ground_truth, predictions, tiou_thresholds, labels, unknown_videos)
    return MAPResult(
        tiou_thresholds=matching.tiou_thresholds,
        labels=matching.labels,
        ap_per_class=average_precision_per_class(matching),
        recall_per_class=topkx_recall_per_class(matching, top_k),
        top_k=tuple(int(k) for k in top_k),
        num_gt=matching.num_gt,
        num_predictions=np.diff(matching.class_offsets),
    )
