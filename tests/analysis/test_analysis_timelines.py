"""Timelines: matching at one tIoU / score threshold on hand cases, and the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tal_lab.analysis.timelines import _lanes, class_colours, label_space, match_detections, plot_timelines
from tal_lab.evaluation import mean_average_precision

from images import assert_figure_image


def hand_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    gt = pd.DataFrame({"video-id": ["a", "a", "a", "b"],
                       "t-start": [0.0, 10.0, 30.0, 5.0], "t-end": [5.0, 20.0, 34.0, 8.0],
                       "label": [0, 1, 0, 0]})
    preds = pd.DataFrame({
        "video-id": ["a", "a", "a", "a", "b", "b", "a"],
        "t-start": [0.5, 0.0, 11.0, 30.0, 5.0, 20.0, 31.0],
        "t-end": [5.0, 5.0, 19.0, 32.0, 8.0, 21.0, 34.0],
        "label": [0, 0, 1, 0, 1, 0, 0],
        "score": [0.9, 0.8, 0.7, 0.65, 0.95, 0.6, 0.1]})
    return gt, preds


def test_matching_follows_the_map_protocol_on_a_hand_case() -> None:
    gt, preds = hand_case()
    m = match_detections(gt, preds, tiou=0.5, score_threshold=0.2)
    outcome = m.preds["outcome"].to_dict()
    # row 0 (0.9) takes GT 0 (tIoU 0.9); row 1 (0.8) overlaps GT 0 perfectly but it is taken: FP;
    # row 2 matches GT 1 (0.8); row 3 [30, 32] vs GT 2 [30, 34] has tIoU 0.5 exactly: matched;
    # row 4 has the wrong label: FP; row 5 overlaps nothing: FP; row 6 is below the score threshold.
    assert outcome == {4: "false_positive", 0: "matched", 1: "false_positive", 2: "matched", 3: "matched",
                       5: "false_positive"}
    assert list(m.preds.index) == [4, 0, 1, 2, 3, 5]  # by decreasing score
    assert m.preds.loc[0, "matched_gt"] == 0 and m.preds.loc[3, "matched_gt"] == 2
    assert m.preds.loc[3, "tiou"] == pytest.approx(0.5) and np.isnan(m.preds.loc[1, "tiou"])
    assert m.gt["outcome"].tolist() == ["matched", "matched", "matched", "missed"]
    assert m.gt["matched_pred"].tolist() == [0, 2, 3, -1]
    counts = m.counts().set_index("video-id")
    assert counts.loc["a"].tolist() == [3, 1, 0] and counts.loc["b"].tolist() == [0, 2, 1]
    # at a stricter threshold row 3 (tIoU 0.5) no longer matches
    strict = match_detections(gt, preds, tiou=0.6, score_threshold=0.2)
    assert strict.preds.loc[3, "outcome"] == "false_positive" and strict.gt.loc[2, "outcome"] == "missed"
    # a lower score threshold lets row 6 in: it then takes GT 2 at 0.5? [31, 34] vs [30, 34] = 0.75,
    # but row 3 (higher score) took GT 2 first, so row 6 is a false positive
    low = match_detections(gt, preds, tiou=0.5, score_threshold=0.0)
    assert low.preds.loc[6, "outcome"] == "false_positive"


def test_true_positives_agree_with_the_map_evaluator() -> None:
    rng = np.random.default_rng(0)
    gt_rows, pred_rows = [], []
    for v in range(6):
        for _ in range(4):
            start = rng.uniform(0, 80)
            label = int(rng.integers(0, 3))
            gt_rows.append((f"v{v}", start, start + rng.uniform(2, 15), label))
        for _ in range(10):
            start = rng.uniform(0, 80)
            pred_rows.append((f"v{v}", start, start + rng.uniform(1, 15), int(rng.integers(0, 3)), rng.uniform()))
    for row in gt_rows[:12]:  # near copies of some GT
        pred_rows.append((row[0], row[1] + 0.3, row[2] - 0.2, row[3], rng.uniform()))
    gt = pd.DataFrame(gt_rows, columns=["video-id", "t-start", "t-end", "label"])
    preds = pd.DataFrame(pred_rows, columns=["video-id", "t-start", "t-end", "label", "score"])
    m = match_detections(gt, preds, tiou=0.5)
    result = mean_average_precision(gt, preds, [0.5])
    # AP from our TP flags, computed the evaluator's way, equals the evaluator's mAP
    aps = []
    for label in sorted(gt["label"].unique()):
        p = m.preds[m.preds["label"] == label]
        tp = (p["outcome"] == "matched").to_numpy(float)
        precision = np.cumsum(tp) / np.arange(1, len(tp) + 1)
        recall = np.cumsum(tp) / (gt["label"] == label).sum()
        envelope = np.maximum.accumulate(np.r_[precision, 0][::-1])[::-1]
        aps.append(float(np.sum(np.diff(np.r_[0, recall]) * envelope[:-1])))
    assert np.mean(aps) == pytest.approx(float(np.asarray(result.mAP).ravel()[0]), abs=1e-12)
    assert (m.gt["outcome"] == "matched").sum() == (m.preds["outcome"] == "matched").sum()


def test_lanes_never_overlap() -> None:
    segs = np.array([[0, 5], [1, 2], [4, 8], [5, 6], [7, 9], [2, 3]], dtype=float)
    lanes = _lanes(segs)
    for lane in set(lanes):
        rows = segs[lanes == lane]
        rows = rows[np.argsort(rows[:, 0])]
        assert (rows[1:, 0] >= rows[:-1, 1]).all()
    assert lanes.max() == 1  # at most two segments overlap at any time


def test_plot_timelines_draws_every_segment_with_a_legend() -> None:
    gt, preds = hand_case()
    fig = plot_timelines(gt, preds, ["a", "b"], tiou=0.5, score_threshold=0.2, class_names=["Run", "Jump"],
                         durations={"a": 40.0})
    axes = fig.axes
    assert len(axes) == 2
    assert len(axes[0].patches) == 3 + 4  # video a: 3 GT and 4 predictions at score >= 0.2
    assert len(axes[1].patches) == 1 + 2
    assert axes[0].get_xlim()[1] >= 40.0  # the duration sets the shared time axis
    assert "3 matched, 1 FP, 0 missed" in axes[0].get_title(loc="left")
    legend_texts = {t.get_text() for legend in fig.legends for t in legend.get_texts()}
    assert {"Run", "Jump", "false positive", "missed GT"} <= legend_texts
    hatched = [p for p in axes[1].patches if p.get_hatch()]
    assert len(hatched) == 3  # b: one missed GT and two false positives
    assert_figure_image(fig)


def test_plot_timelines_filters_classes_by_name_or_id_and_reports_bad_input() -> None:
    gt, preds = hand_case()
    fig = plot_timelines(gt, preds, ["a"], score_threshold=0.2, class_names={0: "Run", 1: "Jump"}, classes=["Jump"])
    assert len(fig.axes[0].patches) == 2  # one GT and one prediction of class 1
    fig = plot_timelines(gt, preds, ["a"], score_threshold=0.2, classes=[0], max_preds_per_video=2)
    assert len(fig.axes[0].patches) == 2 + 2
    with pytest.raises(ValueError, match="neither the ground truth nor the predictions"):
        plot_timelines(gt, preds, ["zzz"])
    with pytest.raises(ValueError, match=r"classes \['Swim'\]"):
        plot_timelines(gt, preds, ["a"], classes=["Swim"], class_names=["Run", "Jump"])
    with pytest.raises(ValueError, match="lacks column"):
        match_detections(gt.drop(columns=["label"]), preds)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        match_detections(gt, preds, tiou=0.0)


def test_videos_without_ground_truth_or_predictions() -> None:
    gt, preds = hand_case()
    only_preds = match_detections(gt.iloc[:0], preds)
    assert (only_preds.preds["outcome"] == "false_positive").all()
    only_gt = match_detections(gt, preds.iloc[:0])
    assert (only_gt.gt["outcome"] == "missed").all()
    fig = plot_timelines(gt, preds[preds["video-id"] == "a"], ["b"], score_threshold=0.0)
    assert len(fig.axes[0].patches) == 1


def _legend_colours(fig) -> dict[str, tuple]:
    return {text.get_text(): tuple(handle.get_facecolor())
            for legend in fig.legends for handle, text in zip(legend.legend_handles, legend.get_texts())}


def test_a_class_keeps_its_colour_across_runs_and_thresholds() -> None:
    # Two runs over the same ground truth: the first predicts Run and Jump, the second only Jump.
    # Colours once followed the classes a figure happened to show, so Jump was the second colour
    # in one run's timeline and the first in the other's.
    gt, preds = hand_case()
    names = ["Run", "Jump", "Swim"]
    both = _legend_colours(plot_timelines(gt, preds, ["a"], score_threshold=0.2, class_names=names))
    jump_only = preds[preds["label"] == 1]
    other_run = _legend_colours(plot_timelines(gt[gt["label"] == 1], jump_only, ["a"], class_names=names))
    high = _legend_colours(plot_timelines(gt, preds, ["b"], score_threshold=0.9, class_names=names))
    assert {"Run", "Jump"} <= set(both) and "Swim" not in both  # the legend lists the shown classes only
    assert other_run["Jump"] == both["Jump"] and high["Run"] == both["Run"]
    assert both["Run"] != both["Jump"]
    # the figure's bars carry the legend's colours
    fig = plot_timelines(gt[gt["label"] == 1], jump_only, ["a"], class_names=names)
    faces = {tuple(p.get_facecolor()[:3]) for p in fig.axes[0].patches}
    assert faces == {both["Jump"][:3]}


def test_label_space_orders_named_classes_first_then_the_rest() -> None:
    gt, preds = hand_case()
    assert label_space(gt, preds, ["Run", "Jump", "Swim"]) == [0, 1, 2]
    assert label_space(gt, preds, {5: "Swim", 1: "Jump"}) == [1, 5, 0]
    assert label_space(gt.assign(label=gt["label"] + 7), preds) == [0, 1, 7, 8]
    colours = class_colours(list(range(24)))
    assert len({colours[i] for i in range(23)}) == 23 and colours[23] == colours[0]  # 23 colours, then repeats
    greys = [c for c in colours.values() if max(c[:3]) - min(c[:3]) < 0.05]
    assert not greys  # grey is the legend's "matched" style, not a class
