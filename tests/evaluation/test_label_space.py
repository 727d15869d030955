"""ActionFormer's relabelling of classes (EPIC's official numbers) and class-agnostic scoring, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tal_lab.evaluation import class_agnostic, mean_average_precision, official_label_space

# Classes 0..3; the GT has classes 0 and 2 only, so the official evaluator renumbers 0 -> 0, 2 -> 1.
GT = pd.DataFrame({"video-id": ["v", "v"], "t-start": [0.0, 20.0], "t-end": [10.0, 30.0], "label": [0, 2]})
PREDS = pd.DataFrame({
    "video-id": ["v", "v", "v", "v"],
    "t-start": [40.0, 20.0, 0.0, 0.0], "t-end": [50.0, 30.0, 10.0, 10.0],
    # class 1 (no GT) keeps id 1 = the renumbered class 2; class 3 (no GT) lands on no class
    "label": [1, 2, 0, 3], "score": [0.9, 0.8, 0.7, 0.6],
})


def test_official_relabelling_keeps_ids_absent_from_the_gt() -> None:
    relabelled = official_label_space(GT, PREDS)
    assert relabelled.original == [0, 2]
    assert relabelled.ground_truth["label"].tolist() == [0, 1]
    assert relabelled.predictions["label"].tolist() == [1, 1, 0]  # the class-3 prediction is never scored
    assert relabelled.predictions["score"].tolist() == [0.9, 0.8, 0.7]


def test_the_two_label_spaces_give_the_hand_computed_maps() -> None:
    corrected = mean_average_precision(GT, PREDS, [0.5], labels=[0, 1, 2, 3])
    # class 0: its TP alone -> AP 1; class 2: its TP alone -> AP 1; classes 1, 3 have no GT (NaN, left out)
    assert corrected.mAP.tolist() == [1.0]
    assert np.isnan(corrected.ap_per_class[0, [1, 3]]).all()
    relabelled = official_label_space(GT, PREDS)
    official = mean_average_precision(relabelled.ground_truth, relabelled.predictions, [0.5], labels=[0, 1])
    # renumbered class 1 (= class 2) ranks the class-1 false positive (0.9) before its TP (0.8):
    # precision 0 then 1/2 at recall 1, so AP 0.5; with class 0's AP 1, mAP 0.75
    assert official.ap_per_class[0].tolist() == [1.0, 0.5] and official.mAP.tolist() == [0.75]


def test_class_agnostic_frames_have_label_zero() -> None:
    assert class_agnostic(GT)["label"].tolist() == [0, 0] and GT["label"].tolist() == [0, 2]
    result = mean_average_precision(class_agnostic(GT), class_agnostic(PREDS), [0.5])
    # proposals: 0.9 FP, 0.8 TP, 0.7 TP, 0.6 duplicate FP -> precision 0, 1/2, 2/3, 1/2 at recall
    # 0, 1/2, 1, 1; interpolated (running maximum from the right) 2/3 over both recall steps
    assert result.mAP.tolist() == [2 / 3]
