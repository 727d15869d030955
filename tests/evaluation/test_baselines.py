"""Chance-level baselines (tal_lab.evaluation.baselines): the prior they learn and what they draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tal_lab.evaluation.baselines import (LabelPrior, detection_counts, expected_matches, prior_matched_predictions,
                                   relocated_predictions, uniform_random_predictions)
from tal_lab.evaluation import PRED_COLUMNS, mean_average_precision


def _gt(rows: list[tuple[str, float, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["video-id", "t-start", "t-end", "label"])


TRAIN = _gt([("a", 0.0, 2.0, 3), ("a", 5.0, 6.0, 3), ("b", 1.0, 4.0, 3), ("b", 6.0, 16.0, 7)])
TRAIN_SEC = {"a": 10.0, "b": 20.0}


def test_prior_holds_class_frequencies_durations_and_relative_centres() -> None:
    prior = LabelPrior.from_ground_truth(TRAIN, TRAIN_SEC)
    assert prior.labels.tolist() == [3, 7]
    np.testing.assert_allclose(prior.class_probs, [0.75, 0.25])
    assert [d.tolist() for d in prior.durations_sec] == [[1.0, 2.0, 3.0], [10.0]]
    np.testing.assert_allclose(prior.relative_centres, [0.1, 0.55, 0.125, 0.55])
    assert LabelPrior.from_ground_truth(TRAIN).relative_centres is None


def test_draws_follow_the_prior_inside_each_video_with_the_given_counts() -> None:
    prior = LabelPrior.from_ground_truth(TRAIN)
    videos_sec = {"x": 12.0, "y": 5.0, "z": 30.0}
    counts = {"x": 4000, "y": 3, "z": 0}
    preds = prior_matched_predictions(prior, videos_sec, counts, np.random.default_rng(0))
    assert list(preds.columns) == list(PRED_COLUMNS)
    assert detection_counts(preds, list(videos_sec)) == counts
    lengths = (preds["t-end"] - preds["t-start"]).to_numpy()
    video_sec = preds["video-id"].map(videos_sec).to_numpy()
    assert (preds["t-start"] >= 0).all() and (preds["t-end"] <= video_sec + 1e-9).all()
    # label 7 lasts 10 s (capped at the 5 s video), label 3 lasts 1, 2 or 3 s
    seven = (preds["label"] == 7).to_numpy()
    np.testing.assert_allclose(lengths[seven], np.minimum(10.0, video_sec[seven]))
    assert set(np.round(lengths[~seven], 6)) == {1.0, 2.0, 3.0}
    x = preds[preds["video-id"] == "x"]
    assert abs((x["label"] == 3).mean() - 0.75) < 0.03  # 4000 draws: std 0.007
    # starts uniform over where the segment fits: mean (12 - length) / 2
    free = 12.0 - (x["t-end"] - x["t-start"])
    assert abs((x["t-start"] / free).mean() - 0.5) < 0.02
    assert ((0 <= x["score"]) & (x["score"] < 1)).all()


def test_same_seed_same_draw_and_prior_positions_follow_training_centres() -> None:
    prior = LabelPrior.from_ground_truth(TRAIN, TRAIN_SEC)
    videos_sec, counts = {"x": 100.0}, {"x": 500}
    first = prior_matched_predictions(prior, videos_sec, counts, np.random.default_rng(5), position="prior")
    again = prior_matched_predictions(prior, videos_sec, counts, np.random.default_rng(5), position="prior")
    pd.testing.assert_frame_equal(first, again)
    centres = 0.5 * (first["t-start"] + first["t-end"]) / 100.0
    assert set(np.round(centres, 6)) <= {0.1, 0.55, 0.125}  # short segments: never shifted


def test_a_prior_that_fixes_everything_reproduces_the_ground_truth() -> None:
    # one class whose actions always fill the video: prior-matched draws are the GT, mAP 1
    train = _gt([("a", 0.0, 8.0, 2), ("b", 0.0, 8.0, 2)])
    test = _gt([("u", 0.0, 8.0, 2), ("v", 0.0, 8.0, 2)])
    prior = LabelPrior.from_ground_truth(train, {"a": 8.0, "b": 8.0})
    preds = prior_matched_predictions(prior, {"u": 8.0, "v": 8.0}, {"u": 1, "v": 1}, np.random.default_rng(1))
    assert mean_average_precision(test, preds).average_mAP == pytest.approx(1.0)


def test_uniform_random_keeps_segments_in_the_video_and_labels_in_range() -> None:
    preds = uniform_random_predictions({"x": 6.0}, {"x": 300}, 4, np.array([1.0, 20.0]), np.random.default_rng(2))
    assert len(preds) == 300 and set(preds["label"]) == {0, 1, 2, 3}
    assert (preds["t-start"] >= 0).all() and (preds["t-end"] <= 6.0).all()
    assert (preds["t-end"] > preds["t-start"]).all()


def test_relocated_keeps_labels_and_lengths_and_moves_segments_inside_the_video() -> None:
    dets = pd.DataFrame({"video-id": ["x"] * 200 + ["y"], "t-start": [1.0] * 200 + [0.0],
                         "t-end": [3.0] * 200 + [9.0], "label": [4] * 200 + [1], "score": [0.9] * 201})
    moved = relocated_predictions(dets, {"x": 10.0, "y": 5.0}, np.random.default_rng(3))
    assert list(moved.columns) == list(PRED_COLUMNS)
    assert moved["video-id"].tolist() == dets["video-id"].tolist() and moved["label"].tolist() == dets["label"].tolist()
    np.testing.assert_allclose(moved["t-end"] - moved["t-start"], [2.0] * 200 + [5.0])  # capped at the video
    assert (moved["t-start"] >= 0).all() and (moved["t-end"] <= moved["video-id"].map({"x": 10.0, "y": 5.0})).all()
    assert moved["t-start"].iloc[:200].nunique() == 200 and moved["score"].nunique() == 201
    with pytest.raises(ValueError, match=r"without a duration: \['y'\]"):
        relocated_predictions(dets, {"x": 10.0}, np.random.default_rng(3))


def _one_per_stratum(preds: pd.DataFrame, videos_sec: dict[str, float]) -> bool:
    free = preds["video-id"].map(videos_sec) - (preds["t-end"] - preds["t-start"])
    fractions = (preds["t-start"] / free).groupby([preds["video-id"], preds["label"]])
    return all(np.array_equal(np.sort(np.floor(f.to_numpy() * len(f))), np.arange(len(f))) for _, f in fractions)


def test_spread_puts_one_segment_of_each_label_in_each_stratum_of_the_video() -> None:
    prior = LabelPrior.from_ground_truth(TRAIN)
    videos_sec = {"x": 40.0, "y": 12.0}
    spread = prior_matched_predictions(prior, videos_sec, {"x": 300, "y": 7}, np.random.default_rng(4), "spread")
    assert _one_per_stratum(spread, videos_sec) and spread.groupby(["video-id", "label"]).ngroups == 4
    uniform = prior_matched_predictions(prior, videos_sec, {"x": 300, "y": 7}, np.random.default_rng(4))
    assert not _one_per_stratum(uniform, videos_sec)
    moved = relocated_predictions(spread, videos_sec, np.random.default_rng(5), position="spread")
    assert _one_per_stratum(moved, videos_sec) and not moved["t-start"].equals(spread["t-start"])
    with pytest.raises(ValueError, match="position must be one of"):
        relocated_predictions(spread, videos_sec, np.random.default_rng(5), position="prior")


def test_expected_matches_by_hand() -> None:
    # g = 4 s in a 100 s video, t = 0.5: lengths 2..8 match on a stretch (L + 4) / 3 of centres
    got = expected_matches(np.array([2.0, 4.0, 8.0, 9.0]), np.array([4.0]), np.array([100.0]), 1, [0.5])
    np.testing.assert_allclose(got, [2 / 100, 8 / 300, 4 / 100, 0.0])
    # two instances in two videos (10 s, 20 s), both thresholds; 4 videos in all
    got = expected_matches(np.array([4.0]), np.array([4.0, 2.0]), np.array([10.0, 20.0]), 4, [0.5, 0.6])
    by_t = [(8 / 3) / 10 + 2 / 20, (8 / 4) / 10 + 0.0]  # 2 s vs 4 s: tIoU at most 0.5
    np.testing.assert_allclose(got, [np.mean(by_t) / 4])


def test_tuned_length_is_the_longest_that_still_matches_and_is_what_tuned_draws_use() -> None:
    train = _gt([("a", 0.0, 4.0, 1), ("b", 10.0, 14.0, 1), ("b", 0.0, 1.0, 2)])
    prior = LabelPrior.from_ground_truth(train, {"a": 100.0, "b": 100.0}, [0.5], np.array([1.0, 2.0, 4.0, 8.0, 9.0]))
    np.testing.assert_allclose(prior.tuned_lengths_sec, [8.0, 2.0])  # g / t for both
    # matches per prediction at those lengths: 2 x (8 + 4) / 3 / 100 and (2 + 1) / 3 / 100 (per 2 videos)
    np.testing.assert_allclose(prior.tuned_class_probs, [8 / 9, 1 / 9])
    tuned_labels = prior_matched_predictions(prior, {"x": 50.0}, {"x": 4000}, np.random.default_rng(1), labels="tuned")
    assert abs((tuned_labels["label"] == 1).mean() - 8 / 9) < 0.02  # frequencies would give 2 / 3
    preds = prior_matched_predictions(prior, {"x": 50.0, "y": 5.0}, {"x": 100, "y": 100}, np.random.default_rng(0),
                                      duration="tuned")
    lengths = (preds["t-end"] - preds["t-start"]).to_numpy()
    expected = np.where(preds["label"] == 1, 8.0, 2.0)
    np.testing.assert_allclose(lengths, np.minimum(expected, preds["video-id"].map({"x": 50.0, "y": 5.0})))
    default = LabelPrior.from_ground_truth(train, {"a": 100.0, "b": 100.0})
    assert 1.0 <= default.tuned_lengths_sec.min() and default.tuned_lengths_sec.max() <= 4.0  # training range


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no instances"):
        LabelPrior.from_ground_truth(TRAIN.iloc[:0])
    with pytest.raises(ValueError, match="'a'.*ends"):
        LabelPrior.from_ground_truth(_gt([("a", 3.0, 2.0, 1)]))
    with pytest.raises(ValueError, match=r"\['b'\]"):
        LabelPrior.from_ground_truth(TRAIN, {"a": 10.0})
    prior = LabelPrior.from_ground_truth(TRAIN)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"without a duration: \['q'\]"):
        prior_matched_predictions(prior, {"x": 5.0}, {"q": 2}, rng)
    with pytest.raises(ValueError, match="negative"):
        prior_matched_predictions(prior, {"x": 5.0}, {"x": -1}, rng)
    with pytest.raises(ValueError, match="video_durations_sec"):
        prior_matched_predictions(prior, {"x": 5.0}, {"x": 1}, rng, position="prior")
    with pytest.raises(ValueError, match="duration='tuned' needs"):
        prior_matched_predictions(prior, {"x": 5.0}, {"x": 1}, rng, duration="tuned")
    with pytest.raises(ValueError, match="labels='tuned' needs"):
        prior_matched_predictions(prior, {"x": 5.0}, {"x": 1}, rng, labels="tuned")
    with pytest.raises(ValueError, match="labels must be"):
        prior_matched_predictions(prior, {"x": 5.0}, {"x": 1}, rng, labels="uniform")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="can match"):
        LabelPrior.from_ground_truth(TRAIN, TRAIN_SEC, [0.5], np.array([100.0]))
    with pytest.raises(ValueError, match="duration must be"):
        prior_matched_predictions(prior, {"x": 5.0}, {"x": 1}, rng, duration="mode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="position"):
        prior_matched_predictions(prior, {"x": 5.0}, {"x": 1}, rng, position="edges")  # type: ignore[arg-type]
    assert prior_matched_predictions(prior, {"x": 5.0}, {"x": 0}, rng).empty
