"""Which labels detections are scored under: ActionFormer's renumbering, or class-agnostic.

:func:`tal_lab.evaluation.mean_average_precision` scores a fixed label space (by default the
dataset's class ids, so a predicted class without ground truth (GT) has AP NaN and stays out of
the mean). Two other labelings are needed to reproduce published numbers:

* :func:`official_label_space`: ActionFormer's ``ANETdetection`` (``libs/utils/metrics.py``,
  commit 61ea7eb) renumbers the GT's labels, sorted, as 0..K-1 and applies the same map to the
  predictions with ``Series.replace``, which leaves a predicted id absent from the GT as it is.
  Such a prediction is then scored as a false positive of the class that took that index, or
  ignored when no class did. On EPIC-Kitchens nouns (classes without GT in the validation
  split) this moves the official mAP; reproducing it bit for bit needs the same relabelling.
* :func:`class_agnostic`: every label 0, for a detector with one class (``num_classes: 1``,
  ActivityNet proposals) scored against multi-class GT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["OfficialLabels", "official_label_space", "class_agnostic"]


@dataclass(frozen=True)
class OfficialLabels:
    """GT and predictions relabelled as ActionFormer's evaluator does.

    Attributes:
        ground_truth, predictions: the frames with labels 0..K-1; predictions whose label is
            not one of them are left out (the evaluator never looks at them).
        original: the GT label of each new index (``original[i]`` was renumbered i).
    """

    ground_truth: pd.DataFrame
    predictions: pd.DataFrame
    original: list[Any]


def official_label_space(ground_truth: pd.DataFrame, predictions: pd.DataFrame) -> OfficialLabels:
    """Relabel both frames as ActionFormer's ``ANETdetection`` does (see the module docstring)."""
    original = sorted(ground_truth["label"].unique().tolist())
    index = {label: i for i, label in enumerate(original)}
    gt = ground_truth.assign(label=ground_truth["label"].map(index).astype(np.int64))
    # Series.replace maps the listed ids at once and keeps every other id: so does this.
    labels = predictions["label"].map(lambda label: index.get(label, label))
    kept = labels.isin(range(len(original)))
    preds = predictions.assign(label=labels)[kept].astype({"label": np.int64})
    return OfficialLabels(gt.reset_index(drop=True), preds.reset_index(drop=True), original)


def class_agnostic(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a GT or predictions frame with every label 0 (proposals)."""
    return frame.assign(label=np.zeros(len(frame), dtype=np.int64))
