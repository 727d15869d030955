"""mAP (tal_lab.evaluation.mean_ap and the modules under it): exact agreement with ActionFormer's
evaluator, and the documented edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tal_lab.evaluation import (
    THUMOS14_TIOU_THRESHOLDS,
    match_predictions,
    mean_average_precision,
    read_predictions,
    recall_at_k,
)

EXACT = 1e-12  # fractions; the acceptance bound is 1e-9 in percent (1e-11 as a fraction)


def _frame(rows: list[tuple], score: bool = True) -> pd.DataFrame:
    columns = ["video-id", "t-start", "t-end", "label"] + (["score"] if score else [])
    return pd.DataFrame(rows, columns=columns)


def _synthetic(
    seed: int, n_videos: int = 6, n_classes: int = 3, per_video: int = 25
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random GT, and predictions around it: jittered copies, exact duplicates, random segments."""
    rng = np.random.default_rng(seed)
    gt_rows, pred_rows = [], []
    for v in range(n_videos):
        for _ in range(rng.integers(1, 6)):
            start = rng.uniform(0, 80)
            gt_rows.append((f"v{v}", start, start + rng.uniform(1, 15), int(rng.integers(n_classes))))
    gt = _frame(gt_rows, score=False)
    for v in range(n_videos):
        own = gt[gt["video-id"] == f"v{v}"]
        for _ in range(per_video):
            if rng.random() < 0.6:
                g = own.iloc[rng.integers(len(own))]
                length = (g["t-end"] - g["t-start"]) * np.exp(rng.normal(0, 0.3))
                centre = (g["t-start"] + g["t-end"]) / 2 + rng.normal(0, 0.2) * length
                label = g["label"] if rng.random() < 0.8 else int(rng.integers(n_classes))
                pred_rows.append((f"v{v}", centre - length / 2, centre + length / 2, label, rng.random()))
            else:
                start = rng.uniform(0, 90)
                label = int(rng.integers(n_classes))
                pred_rows.append((f"v{v}", start, start + rng.uniform(0.5, 10), label, rng.random()))
    preds = _frame(pred_rows)
    dup = preds.sample(frac=0.1, random_state=seed)
    dup = dup.assign(score=dup["score"] * 0.5)  # duplicates that compete for the same GT
    return gt, pd.concat([preds, dup], ignore_index=True)


def _reference_loop_ap(gt: pd.DataFrame, preds: pd.DataFrame, thresholds: np.ndarray) -> np.ndarray:
    """The reference algorithm restated as plain loops (stable tie rules), per class (T, C)."""
    classes = sorted(gt["label"].unique())
    ap = np.zeros((len(thresholds), len(classes)))
    for ci, c in enumerate(classes):
        g = gt[gt["label"] == c].reset_index(drop=True)
        p = preds[preds["label"] == c].reset_index(drop=True)
        p = p.iloc[np.argsort(-p["score"].to_numpy(), kind="stable")].reset_index(drop=True)
        lock = -np.ones((len(thresholds), len(g)))
        tp = np.zeros((len(thresholds), len(p)))
        for i, row in p.iterrows():
            own = np.flatnonzero(g["video-id"].to_numpy() == row["video-id"])
            if len(own) == 0:
                continue
            gs, ge = g["t-start"].to_numpy()[own], g["t-end"].to_numpy()[own]
            inter = (np.minimum(row["t-end"], ge) - np.maximum(row["t-start"], gs)).clip(0)
            tiou = inter / ((ge - gs) + (row["t-end"] - row["t-start"]) - inter)
            ranked = np.argsort(tiou, kind="stable")[::-1]
            for t, thr in enumerate(thresholds):
                for j in ranked:
                    if tiou[j] < thr:
                        break
                    if lock[t, own[j]] >= 0:
                        continue
                    tp[t, i], lock[t, own[j]] = 1, i
                    break
        for t in range(len(thresholds)):
            if len(p) == 0:
                continue
            tp_cum = np.cumsum(tp[t])
            prec = np.r_[0, tp_cum / np.arange(1, len(p) + 1), 0]
            rec = np.r_[0, tp_cum / len(g), 1]
            for k in range(len(prec) - 2, -1, -1):
                prec[k] = max(prec[k], prec[k + 1])
            idx = np.flatnonzero(rec[1:] != rec[:-1]) + 1
            ap[t, ci] = np.sum((rec[idx] - rec[idx - 1]) * prec[idx])
    return ap


# ------------------------------------------------------------------- official fixtures
@pytest.mark.needs_shared
def test_realistic_set_equals_the_official_evaluator(shared_dir: Path) -> None:
    eval_dir = shared_dir / "reference" / "eval"
    ref = json.loads((eval_dir / "eval_reference.json").read_text())["sets"]["pred_realistic"]
    result = mean_average_precision(read_predictions(eval_dir / "gt_test_reference.csv"),
                                    read_predictions(eval_dir / "pred_realistic.csv"))
    np.testing.assert_allclose(result.mAP, list(ref["mAP"].values()), rtol=0, atol=EXACT)
    assert abs(result.average_mAP - ref["average_mAP"]) <= EXACT
    np.testing.assert_allclose(result.ap_per_class, ref["per_class_ap"]["values"], rtol=0, atol=EXACT)
    assert result.labels == tuple(ref["per_class_ap"]["cols_label_id"])
    np.testing.assert_allclose(result.recall, ref["mean_recall"]["values"], rtol=0, atol=EXACT)


@pytest.mark.needs_shared
def test_adversarial_set_equals_the_row_order_tie_policy(shared_dir: Path) -> None:
    eval_dir = shared_dir / "reference" / "eval"
    reference = json.loads((eval_dir / "eval_reference.json").read_text())
    policies = reference["sets"]["pred_adversarial"]["tie_break_policies"]
    gt = read_predictions(eval_dir / "gt_test_reference.csv")
    preds = read_predictions(eval_dir / "pred_adversarial.csv")
    for frame, policy in ((preds, "row_order"), (preds.iloc[::-1].reset_index(drop=True), "reverse_row_order")):
        result = mean_average_precision(gt, frame)
        np.testing.assert_allclose(result.mAP, list(policies[policy]["mAP"].values()), rtol=0, atol=EXACT)
        assert abs(result.average_mAP - policies[policy]["average_mAP"]) <= EXACT


# ----------------------------------------------------------------------- algorithm
@pytest.mark.parametrize("seed", range(6))
def test_vectorised_matching_equals_the_reference_loop(seed: int) -> None:
    gt, preds = _synthetic(seed)
    thresholds = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    result = mean_average_precision(gt, preds, thresholds)
    np.testing.assert_allclose(result.ap_per_class, _reference_loop_ap(gt, preds, thresholds), rtol=0, atol=EXACT)


def test_hand_computed_average_precision() -> None:
    gt = _frame([("a", 0, 10, 0), ("a", 20, 30, 0)], score=False)
    # ranks: TP (P 1, R .5), FP (P .5, R .5), TP (P 2/3, R 1): AP = .5 * 1 + .5 * 2/3
    preds = _frame([("a", 0, 10, 0, 0.9), ("a", 40, 50, 0, 0.8), ("a", 21, 30, 0, 0.7)])
    result = mean_average_precision(gt, preds, [0.5])
    assert result.average_mAP == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-15)
    assert mean_average_precision(gt, gt.assign(score=1.0)).average_mAP == 1.0


def test_tied_scores_rank_in_row_order() -> None:
    gt = _frame([("a", 0, 10, 0)], score=False)
    hit, miss = ("a", 0, 10, 0, 0.5), ("a", 50, 60, 0, 0.5)
    assert mean_average_precision(gt, _frame([hit, miss]), [0.5]).average_mAP == 1.0
    assert mean_average_precision(gt, _frame([miss, hit]), [0.5]).average_mAP == 0.5


def test_equal_tiou_gts_go_to_the_later_gt_row_first() -> None:
    gt = _frame([("a", 0, 10, 0), ("a", 0, 10, 0)], score=False)
    matching = match_predictions(gt, _frame([("a", 0, 10, 0, 0.9), ("a", 0, 10, 0, 0.8)]), [0.5])
    assert matching.matched_gt[0].tolist() == [1, 0]


def test_threshold_boundary_follows_the_reference_arithmetic() -> None:
    # Segments whose nominal tIoU is exactly q; the reference's float64 order decides.
    rows, expected = [], []
    for i, (start, length, q) in enumerate([(1.1, 2.3, 0.3), (3.3, 7.1, 0.3), (0.7, 4.9, 0.7), (2.0, 8.0, 0.5),
                                            (0.1, 0.7, 0.3), (5.3, 1.9, 0.7)]):
        end, p_end = start + length, start + q * length
        inter = min(p_end, end) - max(start, start)
        tiou = inter / ((end - start) + (p_end - start) - inter)  # reference order, Python floats
        rows.append((f"v{i}", start, p_end, 0, 1.0))
        expected.append(tiou >= q)
        matching = match_predictions(_frame([(f"v{i}", start, end, 0)], score=False), _frame(rows[-1:]), [q])
        assert bool(matching.tp[0, 0]) is expected[-1]
    assert not all(expected) and any(expected)  # both sides of the boundary are exercised


def test_zero_length_predictions_are_false_positives_and_zero_length_gt_is_rejected() -> None:
    gt = _frame([("a", 0, 10, 0)], score=False)
    result = mean_average_precision(gt, _frame([("a", 5, 5, 0, 0.9), ("a", 0, 10, 0, 0.8)]), [0.5])
    assert np.isfinite(result.ap_per_class).all() and result.average_mAP == 0.5
    with pytest.raises(ValueError, match="not longer than 0"):
        mean_average_precision(_frame([("a", 3, 3, 0)], score=False), _frame([("a", 3, 3, 0, 0.9)]))
    with pytest.raises(ValueError, match="t-end"):
        mean_average_precision(gt, _frame([("a", 4, 3, 0, 0.9)]))


def test_classes_without_ground_truth_are_left_out_of_the_mean() -> None:
    gt = _frame([("a", 0, 10, 0), ("b", 0, 10, 1)], score=False)
    preds = _frame([("a", 0, 10, 0, 0.9), ("b", 0, 4, 1, 0.8), ("a", 0, 10, 2, 0.7)])
    with pytest.raises(ValueError, match=r"prediction labels \[2\]"):
        mean_average_precision(gt, preds)
    result = mean_average_precision(gt, preds, [0.5], labels=[0, 1, 2])
    assert np.isnan(result.ap_per_class[0, 2]) and result.ap_per_class[0, :2].tolist() == [1.0, 0.0]
    assert result.average_mAP == 0.5


def test_label_names_work_and_label_kinds_must_agree() -> None:
    gt = _frame([("a", 0, 10, "Diving"), ("a", 20, 30, "Shotput")], score=False)
    preds = _frame([("a", 0, 10, "Diving", 0.9), ("a", 20, 30, "Shotput", 0.4)])
    result = mean_average_precision(gt, preds)
    assert result.labels == ("Diving", "Shotput") and result.average_mAP == 1.0
    assert list(result.per_class_frame().index) == ["Diving", "Shotput"]
    with pytest.raises(ValueError, match="label spaces differ"):
        mean_average_precision(gt, preds.assign(label=[0, 1]))


def test_videos_without_predictions_and_unknown_videos() -> None:
    gt = _frame([("a", 0, 10, 0), ("b", 0, 10, 0)], score=False)
    preds = _frame([("a", 0, 10, 0, 0.9)])
    assert mean_average_precision(gt, preds, [0.5]).average_mAP == 0.5  # b's GT is missed
    extra = _frame([("zzz", 0, 10, 0, 0.95), ("a", 0, 10, 0, 0.9)])
    # the reference counts predictions for videos outside the GT as false positives
    assert mean_average_precision(gt, extra, [0.5]).average_mAP == 0.25
    assert mean_average_precision(gt, extra, [0.5], unknown_videos="ignore").average_mAP == 0.5
    with pytest.raises(ValueError, match="zzz"):
        mean_average_precision(gt, extra, unknown_videos="error")
    with pytest.raises(ValueError, match="unknown_videos"):
        mean_average_precision(gt, extra, unknown_videos="drop")  # type: ignore[arg-type]


def test_empty_predictions_give_zero() -> None:
    gt = _frame([("a", 0, 10, 0)], score=False)
    result = mean_average_precision(gt, _frame([]))
    assert result.mAP.tolist() == [0.0] * 5 and (result.recall == 0).all()
    assert result.to_frame().shape == (6, 3)


def test_invalid_inputs_raise_clear_errors() -> None:
    gt = _frame([("a", 0, 10, 0)], score=False)
    with pytest.raises(ValueError, match="missing column"):
        mean_average_precision(gt, _frame([("a", 0, 10, 0, 0.9)]).drop(columns="score"))
    with pytest.raises(ValueError, match="score"):
        mean_average_precision(gt, _frame([("a", 0, 10, 0, np.nan)]))
    with pytest.raises(ValueError, match="tiou_thresholds"):
        mean_average_precision(gt, _frame([]), [0.0])


def test_recall_at_k_per_video() -> None:
    gt = _frame([("a", 0, 10, 0), ("a", 20, 30, 1)], score=False)
    preds = _frame([("a", 50, 60, 0, 0.9), ("a", 20, 30, 1, 0.8), ("a", 0, 10, 1, 0.7), ("a", 0, 10, 0, 0.6)])
    table = recall_at_k(gt, preds, k=(1, 2, 4), tiou_thresholds=[0.5])
    assert table.loc[0.5].tolist() == [0.0, 0.5, 1.0]
    agnostic = recall_at_k(gt, preds, k=(1, 2, 4), tiou_thresholds=[0.5], class_aware=False)
    assert agnostic.loc[0.5].tolist() == [0.0, 0.5, 1.0]
    assert recall_at_k(gt, preds, k=(3,), tiou_thresholds=[0.5], class_aware=False).loc[0.5, "R@3"] == 1.0


def test_result_tables() -> None:
    gt, preds = _synthetic(7)
    result = mean_average_precision(gt, preds)
    frame = result.to_frame()
    assert list(frame.columns) == ["mAP", "Recall@1x", "Recall@5x"]
    assert frame.loc["average", "mAP"] == pytest.approx(result.average_mAP * 100)
    per_class = result.per_class_frame(class_names=["x", "y", "z"], percent=False)
    np.testing.assert_allclose(per_class.iloc[:, :5].mean(axis=0), result.mAP)
    assert list(per_class.index) == ["x", "y", "z"] and per_class["num_gt"].sum() == len(gt)
    subset = mean_average_precision(gt[gt["label"] > 0], preds[preds["label"] > 0])
    names = [f"class{i}" for i in range(10)]
    assert list(subset.per_class_frame(names).index) == ["class1", "class2"]  # indexed by label id
    assert list(subset.per_class_frame({1: "b", 2: "c"}).index) == ["b", "c"]
    assert "average" in str(result) and len(THUMOS14_TIOU_THRESHOLDS) == 5
