"""tal_lab.evaluation.bootstrap: weighted resampling equals explicit resampling; paired differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tal_lab.evaluation.bootstrap import bootstrap_map, paired_bootstrap, resampled_map, video_weights
from tal_lab.evaluation import match_predictions, mean_average_precision, read_predictions


def _synthetic(seed: int, n_videos: int = 8, noise: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GT of 3 classes and predictions near it (distinct scores), plus a prediction-only video."""
    rng = np.random.default_rng(seed)
    gt_rows, pred_rows = [], []
    for v in range(n_videos):
        for _ in range(rng.integers(1, 5)):
            start, length, label = rng.uniform(0, 80), rng.uniform(2, 12), int(rng.integers(3))
            gt_rows.append((f"v{v}", start, start + length, label))
            for _ in range(3):
                centre = start + length / 2 + rng.normal(0, noise) * length
                width = length * np.exp(rng.normal(0, noise))
                pred_rows.append((f"v{v}", centre - width / 2, centre + width / 2, label, rng.random()))
        start = rng.uniform(0, 80)
        pred_rows.append((f"v{v}", start, start + 4, int(rng.integers(3)), rng.random()))
    pred_rows.append(("only_pred", 0.0, 5.0, 0, rng.random()))
    gt = pd.DataFrame(gt_rows, columns=["video-id", "t-start", "t-end", "label"])
    return gt, pd.DataFrame(pred_rows, columns=["video-id", "t-start", "t-end", "label", "score"])


def _explicit_resample(gt: pd.DataFrame, preds: pd.DataFrame, videos: np.ndarray, counts: np.ndarray):
    """The resampled data set written out: video v drawn m times becomes m renamed copies."""
    gts, preds_out = [], []
    for video, m in zip(videos, counts):
        for copy in range(m):
            gts.append(gt[gt["video-id"] == video].assign(**{"video-id": f"{video}#{copy}"}))
            preds_out.append(preds[preds["video-id"] == video].assign(**{"video-id": f"{video}#{copy}"}))
    return pd.concat(gts, ignore_index=True), pd.concat(preds_out, ignore_index=True)


def test_video_weights_are_seeded_draws_with_replacement() -> None:
    weights = video_weights(7, 50, seed=3)
    assert weights.shape == (50, 7) and (weights.sum(axis=1) == 7).all()
    assert (weights == video_weights(7, 50, seed=3)).all() and not (weights == video_weights(7, 50, seed=4)).all()


def test_unit_weights_reproduce_the_evaluator() -> None:
    gt, preds = _synthetic(0)
    matching = match_predictions(gt, preds)
    ones = np.ones((1, len(matching.video_ids)), dtype=np.int64)
    np.testing.assert_allclose(resampled_map(matching, ones)[0], mean_average_precision(gt, preds).mAP,
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [1, 2])
def test_weighted_resamples_equal_explicit_resamples(seed: int) -> None:
    gt, preds = _synthetic(seed)
    matching = match_predictions(gt, preds)
    weights = video_weights(len(matching.video_ids), 4, seed=seed)
    fast = resampled_map(matching, weights)
    for row, counts in enumerate(weights):
        gt_b, preds_b = _explicit_resample(gt, preds, matching.video_ids, counts)
        if gt_b.empty:
            continue
        labels = sorted(gt["label"].unique())
        explicit = mean_average_precision(gt_b, preds_b, labels=labels)
        np.testing.assert_allclose(fast[row], explicit.mAP, rtol=0, atol=1e-12)


def test_bootstrap_interval_is_seeded_and_brackets_the_spread() -> None:
    gt, preds = _synthetic(3, n_videos=12)
    first = bootstrap_map(gt, preds, num_resamples=200, seed=5)
    again = bootstrap_map(gt, preds, num_resamples=200, seed=5)
    assert (first.samples == again.samples).all()
    assert first.estimate == pytest.approx(mean_average_precision(gt, preds).average_mAP, abs=1e-12)
    assert first.ci_low < first.ci_high and first.std > 0
    assert np.mean((first.samples >= first.ci_low) & (first.samples <= first.ci_high)) >= 0.94
    perfect = bootstrap_map(gt, gt.assign(score=1.0), num_resamples=50)
    assert perfect.ci_low == perfect.ci_high == perfect.estimate == 1.0
    assert "average mAP" in str(first)


def test_paired_bootstrap_of_a_run_with_itself_and_with_a_worse_run() -> None:
    gt, preds = _synthetic(4, n_videos=12)
    same = paired_bootstrap(gt, preds, preds.copy(), num_resamples=100)
    assert (same.samples == 0).all() and same.observed_diff == 0 and same.p_value == 1.0
    gt_worse, noisy = _synthetic(4, n_videos=12, noise=0.6)
    result = paired_bootstrap(gt, preds, noisy, num_resamples=300, seed=1)
    assert gt_worse.equals(gt)  # same seed: same GT, noisier predictions
    assert result.observed_diff > 0 and result.prob_a_better > 0.95 and result.p_value < 0.1
    assert result.ci_low <= result.mean_diff <= result.ci_high
    reverse = paired_bootstrap(gt, noisy, preds, num_resamples=300, seed=1)  # same resamples, sign flipped
    np.testing.assert_allclose(reverse.samples, -result.samples, rtol=0, atol=1e-15)
    assert reverse.observed_diff == pytest.approx(-result.observed_diff, abs=1e-15) and reverse.prob_a_better < 0.05
    assert "a - b" in str(result)


@pytest.mark.needs_shared
def test_thumos14_bootstrap_brackets_the_reference_map_within_ten_points(shared_dir: Path) -> None:
    eval_dir = shared_dir / "reference" / "eval"
    gt = read_predictions(eval_dir / "gt_test_reference.csv")
    preds = read_predictions(eval_dir / "pred_realistic.csv")
    result = bootstrap_map(gt, preds, num_resamples=200, seed=0)
    assert result.estimate == pytest.approx(0.5360891017257738, abs=1e-12)
    assert result.ci_low < result.estimate < result.ci_high and result.ci_high - result.ci_low < 0.1
