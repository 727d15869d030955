"""tal_lab.analysis.errors: DETAD false-positive, sensitivity and false-negative analyses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tal_lab.analysis.errors import (
    FP_CATEGORIES,
    THUMOS14_BINS,
    false_negative_analysis,
    false_positive_analysis,
    gt_characteristics,
    normalized_average_precision,
    plot_false_negatives,
    plot_false_positive_profile,
    plot_sensitivity,
    sensitivity_analysis,
)
from tal_lab.evaluation import mean_average_precision, read_predictions, read_video_info_json

from images import assert_figure_image


def _frame(rows: list[tuple], score: bool = True) -> pd.DataFrame:
    columns = ["video-id", "t-start", "t-end", "label"] + (["score"] if score else [])
    return pd.DataFrame(rows, columns=columns)


GT = _frame([("v1", 0, 10, 0), ("v1", 20, 30, 1), ("v2", 0, 10, 0)], score=False)
# One prediction per outcome at alpha = 0.5 (tIoU of [0, 3] with [0, 10] is 0.3).
PREDS = _frame([
    ("v1", 20, 30, 1, 0.95),  # true positive (class 1)
    ("v1", 0, 10, 0, 0.90),  # true positive (class 0)
    ("v1", 0, 10, 0, 0.80),  # double detection: its GT is already taken
    ("v1", 20, 30, 0, 0.70),  # wrong label: tIoU 1 with a class-1 GT
    ("v2", 0, 3, 0, 0.60),  # localization: tIoU 0.3, right label
    ("v1", 0, 3, 1, 0.50),  # confusion: tIoU 0.3 with a class-0 GT
    ("v1", 50, 60, 0, 0.40),  # background: no overlap
    ("v9", 0, 5, 1, 0.99),  # background: a video without GT, ranked first in class 1
])
EXPECTED = ["true_positive", "true_positive", "double_detection", "wrong_label", "localization", "confusion",
            "background", "background"]


def test_every_false_positive_category_on_a_hand_built_case() -> None:
    analysis = false_positive_analysis(GT, PREDS, 0.5)
    assert analysis.predictions["category"].tolist() == EXPECTED
    assert analysis.counts.to_dict() == {"double_detection": 1, "wrong_label": 1, "localization": 1,
                                         "confusion": 1, "background": 2}
    assert analysis.counts.sum() == (analysis.predictions["category"] != "true_positive").sum()
    np.testing.assert_allclose(analysis.profile.sum(axis=1), 1.0)
    assert list(analysis.profile.columns) == ["true_positive", *FP_CATEGORIES]
    # removing false positives can only raise precision
    assert (analysis.map_n_gain >= 0).all() and analysis.map_n_gain["background"] > 0


def test_limit_factor_keeps_the_top_g_per_class_and_blocks_follow_rank() -> None:
    analysis = false_positive_analysis(GT, PREDS, 0.5, limit_factor=1)
    # class 0 has 2 GT, class 1 has 1: the top 2 and top 1 predictions of each
    assert analysis.predictions["score"].tolist() == [0.90, 0.80, 0.99]
    full = false_positive_analysis(GT, PREDS, 0.5)
    assert full.predictions.set_index("score")["rank_block"].to_dict() == {
        0.99: 1, 0.95: 2, 0.90: 1, 0.80: 1, 0.70: 2, 0.60: 2, 0.50: 3, 0.40: 3}
    with pytest.raises(ValueError, match="min_tiou"):
        false_positive_analysis(GT, PREDS, 0.5, min_tiou=0.6)


def test_categories_sum_to_false_positives_on_random_data() -> None:
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 100, 60)
    preds = _frame([(f"v{i % 4}", s, s + rng.uniform(0.5, 8), int(rng.integers(3)), rng.random())
                    for i, s in enumerate(starts)])
    gt = _frame([(f"v{i % 4}", s, s + 5, i % 3) for i, s in enumerate(np.linspace(0, 90, 12))], score=False)
    for alpha in (0.3, 0.5, 0.7):
        analysis = false_positive_analysis(gt, preds, alpha)
        false_positives = (analysis.predictions["category"] != "true_positive").sum()
        assert analysis.counts.sum() == false_positives > 0


def test_normalized_ap_equals_ap_when_n_is_the_class_count() -> None:
    gt = _frame([("a", 0, 10, 0), ("a", 20, 30, 0), ("b", 0, 5, 1), ("b", 9, 12, 1)], score=False)
    preds = _frame([("a", 0, 10, 0, 0.9), ("a", 40, 50, 0, 0.8), ("b", 9, 12, 1, 0.7), ("a", 21, 30, 0, 0.6),
                    ("b", 30, 31, 1, 0.5)])
    result = mean_average_precision(gt, preds, [0.5])
    for c, ranked_tp in ((0, [True, False, True]), (1, [True, False])):
        ap_n, _ = normalized_average_precision(np.array(ranked_tp), num_gt=2, n_avg=2.0)
        assert ap_n == pytest.approx(result.ap_per_class[0, c], abs=1e-15)
    # with fewer average instances, precision is normalised down
    assert normalized_average_precision(np.array([True, False, True]), 2, 1.0)[0] < result.ap_per_class[0, 0]


def test_characteristics_and_bin_edges_follow_detad() -> None:
    gt = _frame([("a", 0, 3, 0), ("a", 10, 13.0001, 0), ("b", 0, 18, 1), ("b", 20, 20.5, 2), ("c", 1, 2, 1)],
                score=False)
    durations = {"a": 100.0, "b": 50.0, "c": 10.0}
    chars = gt_characteristics(gt, durations=durations)
    # DETAD: every GT of the video, whatever its label; the same-class count beside it
    assert chars["num-instances"].tolist() == [2, 2, 2, 2, 1]
    assert chars["num-instances-class"].tolist() == [2, 2, 1, 1, 1]
    np.testing.assert_allclose(chars["coverage"], [0.03, 0.030001, 0.36, 0.01, 0.1])
    table = sensitivity_analysis(gt, gt.assign(score=1.0), durations=durations).table
    num = table.set_index(["characteristic", "bin"])["num_gt"]
    # right-closed bins: 3 s is XS, 3.0001 s is S, 18 s is L; 1 instance is XS, 2 are S
    assert (num["length", "XS"], num["length", "S"], num["length", "L"]) == (3, 1, 1)
    assert (num["num-instances", "XS"], num["num-instances", "S"]) == (1, 4)
    assert "num-instances-class" not in num.index.get_level_values(0)  # DETAD's bins bin DETAD's count
    assert (num["coverage", "XS"], num["coverage", "S"], num["coverage", "XL"]) == (1, 2, 2)
    same_class = {"num-instances-class": THUMOS14_BINS["num-instances"]}
    num = sensitivity_analysis(gt, gt.assign(score=1.0), bins=same_class).table.set_index("bin")["num_gt"]
    assert (num["XS"], num["S"]) == (3, 2)
    with pytest.raises(ValueError, match="no duration"):
        gt_characteristics(gt, durations={"a": 100.0})


def test_sensitivity_restricts_to_the_bin() -> None:
    gt = _frame([("a", 0, 2, 0), ("a", 10, 30, 0), ("b", 0, 2, 1), ("b", 10, 30, 1)], score=False)
    # short instances found, long ones missed, plus a false positive
    preds = _frame([("a", 0, 2, 0, 0.9), ("b", 0, 2, 1, 0.8), ("b", 50, 60, 1, 0.7)])
    analysis = sensitivity_analysis(gt, preds)
    values = analysis.table.set_index(["characteristic", "bin"])["average_mAP_N"]
    assert values["length", "XS"] == 1.0 and values["length", "XL"] == 0.0
    assert np.isnan(values["length", "M"])  # no GT in that bin
    assert 0 < analysis.base < 1 and "coverage" not in analysis.table["characteristic"].tolist()


def test_false_negative_rates_and_the_low_precision_drop() -> None:
    gt = _frame([("a", 0, 2, 0), ("a", 10, 30, 0), ("a", 40, 41, 0)], score=False)
    found = false_negative_analysis(gt, _frame([("a", 0, 2, 0, 0.9)]))
    rates = found.set_index(["characteristic", "bin"])["false_negative_rate"]
    assert rates["all", "all"] == pytest.approx(2 / 3) and rates["length", "XS"] == 0.5
    assert rates["length", "XL"] == 1.0
    # 40 false positives ranked first: normalised precision 1 * 3 / (3 + 40) < 0.05, so DETAD drops the match
    noisy = _frame([("a", 100 + i, 100.5 + i, 0, 1.0 - i / 100) for i in range(40)] + [("a", 0, 2, 0, 0.1)])
    assert false_negative_analysis(gt, noisy).iloc[0]["false_negative_rate"] == 1.0
    assert false_negative_analysis(gt, noisy, min_precision=0.0).iloc[0]["false_negative_rate"] == pytest.approx(2 / 3)


def _heights(ax) -> list[float]:
    return [patch.get_height() for patch in ax.patches]


def test_false_positive_profile_stacks_the_categories_of_each_block() -> None:
    fig = plot_false_positive_profile(false_positive_analysis(GT, PREDS))
    ax_profile, ax_gain = fig.axes
    assert ax_profile.get_title() == "false-positive profile (tIoU 0.5)"
    assert (ax_profile.get_xlabel(), ax_profile.get_ylabel()) == ("top predictions", "error breakdown (%)")
    assert [t.get_text() for t in ax_profile.get_xticklabels()] == ["1G", "2G", "3G"]
    # 1G: a TP, the double detection, the v9 background; 2G: a TP, the wrong label, the
    # localization error; 3G: the confusion and the other background. One bar per category and block.
    third, half = 100 / 3, 50.0
    by_category = [[third, third, 0], [third, 0, 0], [0, third, 0], [0, third, 0], [0, 0, half], [third, 0, half]]
    assert _heights(ax_profile) == pytest.approx([h for row in by_category for h in row])
    bottoms = [patch.get_y() for patch in ax_profile.patches]
    assert bottoms[-3:] == pytest.approx([2 * third, 100, half])  # stacked: background on top
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "true positive", *[c.replace("_", " ") for c in FP_CATEGORIES]]
    # removing the two background errors is the only gain: 20 points of average-mAP_N
    assert ax_gain.get_title() == "removing error impact"
    assert [t.get_text() for t in ax_gain.get_xticklabels()] == [c.replace("_", "\n") for c in FP_CATEGORIES]
    assert _heights(ax_gain) == pytest.approx([0, 0, 0, 0, 20.0])
    assert [t.get_text() for t in ax_gain.texts] == ["0.0", "0.0", "0.0", "0.0", "20.0"]
    assert_figure_image(fig)


def test_bin_plots_draw_one_bar_per_bin_and_the_overall_value_dashed() -> None:
    # Each GT lasts 10 s (length bin M) and is the only one of its class in its video (same-class
    # num-instances XS): both bins hold all 3 GT and equal the overall value, which the dashed line
    # shows. One GT of 3 is missed (v2's, found only at tIoU 0.3); the other bins are empty (NaN, no bar).
    bins = {"length": THUMOS14_BINS["length"], "num-instances-class": THUMOS14_BINS["num-instances"]}
    sensitivity = plot_sensitivity(sensitivity_analysis(GT, PREDS, bins=bins))
    negatives = plot_false_negatives(false_negative_analysis(GT, PREDS, bins=bins))
    for fig, value, ylabel in ((sensitivity, 55.0, "average-mAP$_N$ (%)"), (negatives, 100 / 3, "false negatives (%)")):
        (ax,) = fig.axes
        assert ax.get_ylabel() == ylabel
        assert [t.get_text() for t in ax.get_xticklabels()] == ["XS", "S", "M", "L", "XL", "XS", "S", "M", "L"]
        heights = np.array(_heights(ax))
        assert np.isnan(heights).tolist() == [True, True, False, True, True, False, True, True, True]
        assert heights[[2, 5]] == pytest.approx([value, value])
        (dashed,) = ax.lines
        assert dashed.get_linestyle() == "--" and dashed.get_ydata()[0] == pytest.approx(value)
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"all: {value:.2f}", "length",
                                                                       "num-instances-class"]
        colours = {tuple(patch.get_facecolor()) for patch in ax.patches[:5]}, {
            tuple(patch.get_facecolor()) for patch in ax.patches[5:]}
        assert len(colours[0]) == len(colours[1]) == 1 and colours[0] != colours[1]  # a colour per characteristic
        assert_figure_image(fig)


@pytest.mark.needs_shared
def test_thumos14_diagnosis_is_consistent(shared_dir: Path) -> None:
    eval_dir = shared_dir / "reference" / "eval"
    gt = read_predictions(eval_dir / "gt_test_reference.csv")
    preds = read_predictions(eval_dir / "pred_realistic.csv")
    durations = read_video_info_json(shared_dir / "data" / "thumos14" / "thumos14.json")["duration"]
    fp = false_positive_analysis(gt, preds, 0.5)
    assert fp.counts.sum() == (fp.predictions["category"] != "true_positive").sum()
    assert set(fp.counts.index) == set(FP_CATEGORIES) and (fp.counts > 0).all()
    table = sensitivity_analysis(gt, preds, durations=durations).table
    assert table.groupby("characteristic")["num_gt"].sum().to_dict() == {"coverage": 3358, "length": 3358,
                                                                         "num-instances": 3358}
    fn = false_negative_analysis(gt, preds, durations=durations)
    assert 0 < fn.iloc[0]["false_negative_rate"] < 1
    # num-instances as DETAD's THUMOS14 files count it (every GT of the video) and per class,
    # counted here from the 3,358 Test instances with plain loops (video_test_0000716 alone has 218)
    num = table[table["characteristic"] == "num-instances"].set_index("bin")["num_gt"].to_dict()
    assert num == {"XS": 15, "S": 2203, "M": 727, "L": 413}
    same_class = {"num-instances-class": THUMOS14_BINS["num-instances"]}
    by_class = sensitivity_analysis(gt, preds, bins=same_class).table.set_index("bin")["num_gt"].to_dict()
    assert by_class == {"XS": 20, "S": 2435, "M": 574, "L": 329}
    busiest = gt_characteristics(gt).loc[gt["video-id"] == "video_test_0000716", "num-instances"]
    assert busiest.unique().tolist() == [218]
