"""tal_lab.evaluation.significance: Student's t, the combined seed-and-video test, its inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tal_lab.evaluation import mean_average_precision
from tal_lab.evaluation.significance import (MIN_SEEDS, combine_seed_and_video, seed_video_test,
                                             student_t_quantile, student_t_two_sided_p)

# Two-sided 95% quantiles of Student's t (any statistics table; e.g. Abramowitz & Stegun 26.10).
T_975 = {1: 12.706204736, 2: 4.302652730, 4: 2.776445105, 10: 2.228138852, 30: 2.042272456, math.inf: 1.959963985}


@pytest.mark.parametrize("df", list(T_975))
def test_t_quantiles_match_the_tables(df: float) -> None:
    assert student_t_quantile(0.95, df) == pytest.approx(T_975[df], abs=1e-8)
    assert student_t_two_sided_p(T_975[df], df) == pytest.approx(0.05, abs=1e-9)


def test_t_p_values_by_closed_form() -> None:
    # df 1 is Cauchy (p = 1 - 2 atan(t) / pi); df 2 has p = 1 - t / sqrt(2 + t^2)
    for t in (0.3, 1.0, 4.2, 30.0):
        assert student_t_two_sided_p(t, 1) == pytest.approx(1 - 2 * math.atan(t) / math.pi, rel=1e-12)
        assert student_t_two_sided_p(-t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-12)
    assert student_t_two_sided_p(0.0, 3.5) == 1.0
    with pytest.raises(ValueError, match="degrees of freedom"):
        student_t_two_sided_p(1.0, 0)
    with pytest.raises(ValueError, match="level"):
        student_t_quantile(1.0, 3)


def _constant_resamples(full: np.ndarray, num_resamples: int = 4) -> np.ndarray:
    """Each run's mAP unchanged on every resample: no video part."""
    return np.repeat(np.asarray(full, dtype=np.float64)[:, None], num_resamples, axis=1)


def test_without_video_noise_it_is_welchs_t_test() -> None:
    a, b = np.array([0.50, 0.52, 0.54]), np.array([0.40, 0.43, 0.46])
    res = combine_seed_and_video(a, b, _constant_resamples(a), _constant_resamples(b))
    # by hand: D = 0.09; s_a^2 = 4e-4, s_b^2 = 9e-4; se^2 = 4e-4/3 + 9e-4/3 = 4.3333e-4;
    # df = se^4 / ((4e-4/3)^2 / 2 + (9e-4/3)^2 / 2) = 3.4845
    se = math.sqrt(13e-4 / 3)
    df = (13e-4 / 3) ** 2 / ((4e-4 / 3) ** 2 / 2 + (9e-4 / 3) ** 2 / 2)
    assert res.diff == pytest.approx(0.09, abs=1e-15) and res.se_video == 0.0
    assert res.se_seed == pytest.approx(se, rel=1e-12) and res.df == pytest.approx(df, rel=1e-12)
    assert res.p_value == pytest.approx(student_t_two_sided_p(0.09 / se, df), rel=1e-12)
    half = student_t_quantile(0.95, df) * se
    assert (res.ci_low, res.ci_high) == pytest.approx((0.09 - half, 0.09 + half), rel=1e-12)
    assert res.significant is True and res.p_value < 0.05 and res.ci_low > 0
    assert (res.n_a, res.n_b) == (3, 3) and "3 vs 3 seeds" in str(res)


def test_without_seed_noise_it_is_a_normal_test_on_the_video_bootstrap() -> None:
    a, b = np.array([0.5, 0.5]), np.array([0.48, 0.48])
    shifts = np.array([0.01, -0.01, 0.01, -0.01])  # D_k = D +- 1 point: bootstrap s.e. 1.1547 points
    res = combine_seed_and_video(a, b, a[:, None] + shifts, _constant_resamples(b))
    assert res.se_seed == 0.0 and math.isinf(res.df)
    assert res.se_video == pytest.approx(math.sqrt(4 * 1e-4 / 3), rel=1e-12)
    assert res.p_value == pytest.approx(math.erfc(0.02 / res.se_video / math.sqrt(2)), rel=1e-12)
    assert res.significant is False  # z = 1.73 < 1.96


def test_one_seed_on_a_side_is_never_tested() -> None:
    rng = np.random.default_rng(0)
    strong, weak = np.array([0.9]), np.array([0.1, 0.12, 0.11])
    resampled_strong = strong[:, None] + rng.normal(0, 1e-3, (1, 50))
    resampled_weak = weak[:, None] + rng.normal(0, 1e-3, (3, 50))
    for a, b, ra, rb in ((strong, weak, resampled_strong, resampled_weak),
                         (weak, strong, resampled_weak, resampled_strong)):
        res = combine_seed_and_video(a, b, ra, rb)
        assert res.significant is None and math.isnan(res.p_value) and math.isnan(res.ci_low)
        assert abs(res.diff) > 10 * res.se_video > 0  # the video bootstrap alone would have marked it
        assert "untested" in str(res)
    assert combine_seed_and_video(weak, weak, resampled_weak, resampled_weak, min_seeds=4).significant is None
    with pytest.raises(ValueError, match="min_seeds"):
        combine_seed_and_video(weak, weak, resampled_weak, resampled_weak, min_seeds=MIN_SEEDS - 1)


def test_identical_runs_give_no_difference_and_shape_errors_name_the_inputs() -> None:
    a = np.array([0.4, 0.4, 0.4])
    res = combine_seed_and_video(a, a, _constant_resamples(a), _constant_resamples(a))
    assert res.diff == 0.0 and res.p_value == 1.0 and res.significant is False
    with pytest.raises(ValueError, match="same resamples"):
        combine_seed_and_video(a, a, _constant_resamples(a, 4), _constant_resamples(a, 5))
    with pytest.raises(ValueError, match="at least one run"):
        combine_seed_and_video(a[:0], a, _constant_resamples(a)[:0], _constant_resamples(a))


def _detections(gt: pd.DataFrame, found: float, rng: np.random.Generator) -> pd.DataFrame:
    """A run finding the share ``found`` of the GT (high scores) plus one low-score false positive per video."""
    hits = gt[rng.uniform(size=len(gt)) < found].assign(score=lambda f: rng.uniform(0.5, 1.0, len(f)))
    videos = gt["video-id"].unique()
    misses = pd.DataFrame({"video-id": videos, "t-start": 90.0, "t-end": 95.0, "label": 0,
                           "score": rng.uniform(0.0, 0.5, len(videos))})
    return pd.concat([hits, misses], ignore_index=True)


def test_detections_give_each_runs_map_and_the_sign_follows_the_order() -> None:
    rng = np.random.default_rng(1)
    gt = pd.DataFrame([(f"v{v}", s, s + 5.0, v % 2) for v in range(12) for s in (0.0, 30.0, 60.0)],
                      columns=["video-id", "t-start", "t-end", "label"])
    good = [_detections(gt, 0.9, rng) for _ in range(3)]
    poor = [_detections(gt, 0.5, rng) for _ in range(3)]
    res = seed_video_test(gt, good, poor, num_resamples=200)
    expected = np.mean([mean_average_precision(gt, d).average_mAP for d in good]) - np.mean(
        [mean_average_precision(gt, d).average_mAP for d in poor])
    assert res.diff == pytest.approx(expected, abs=1e-12) and res.diff > 0
    reverse = seed_video_test(gt, poor, good, num_resamples=200)
    assert reverse.diff == pytest.approx(-res.diff, abs=1e-15) and reverse.p_value == pytest.approx(res.p_value)
    assert reverse.se_video == pytest.approx(res.se_video, abs=1e-15)  # same resamples, sign flipped
    assert res.significant is True
    assert seed_video_test(gt, good[:1], poor, num_resamples=50).significant is None
