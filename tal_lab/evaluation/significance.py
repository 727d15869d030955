"""Is a difference between two table rows larger than training noise and test-set sampling?

Each row of Tables I / IV is a configuration trained with several seeds; the question a mark
answers is whether its seed-mean average mAP differs from the reference row's by more than a
new set of seeds **and** a new set of test videos would move it. The test
(:func:`combine_seed_and_video`, docs/analysis.md has a worked example):

* ``D = mean_i a_i - mean_j b_j``: the difference of the seed means of the two rows' average
  mAPs on the full test set (m runs a, n runs b; the seeds need not be the same).
* Training noise: ``s_a^2 / m + s_b^2 / n``, the sample variances (ddof 1) of each row's
  per-seed mAPs (Welch; unpaired, because two configurations given the same seed still
  draw different initial weights, and pairing would halve the degrees of freedom).
* Test-set sampling: the variance of ``D`` over a paired video bootstrap: every run of both
  rows is scored on the same resamples of the test videos
  (:func:`tal_lab.evaluation.bootstrap.resampled_map`), so ``D_k`` is the seed-mean
  difference on resample k.
* ``t = D / sqrt(seed part + video part)`` against Student's t with Welch-Satterthwaite degrees
  of freedom (the video part, from 1000 resamples, counted as known); the mark is a two-sided
  test at ``1 - level`` and the interval is ``D +- t_quantile * se``.

With fewer than :data:`MIN_SEEDS` runs on either side there is no estimate of training noise,
and the result is untested (``significant`` None): never a mark from video resampling alone.
A percentile bootstrap over 3 seeds would be too narrow (its variance is (n - 1) / n of the
seeds' and it ignores that the variance itself is estimated from 3 numbers), hence t.
The seeds' variance, measured on one fixed test set, already holds each run's video-level
noise, which the video part counts once more: the test errs on the conservative side.

:func:`paired_significance` builds the tables' hook (:class:`SeedVideoTest`) that runs this test
for every row against the reference row from the runs' saved detections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from tal_lab.evaluation.average_precision import average_precision_per_class
from tal_lab.evaluation.bootstrap import resampled_map, video_weights
from tal_lab.evaluation.matching import THUMOS14_TIOU_THRESHOLDS, Matching, match_predictions

__all__ = ["MIN_SEEDS", "SIGNIFICANCE_COLUMNS", "SeedVideoResult", "combine_seed_and_video", "run_maps",
           "seed_video_test", "student_t_two_sided_p", "student_t_quantile", "SeedVideoTest", "paired_significance",
           "run_detections"]

MIN_SEEDS = 2  # the fewest runs per side whose spread estimates training noise (a sample variance)
_BETA_MAX_TERMS = 500  # continued-fraction terms; it converges in < 100 for the arguments used here
_BETA_EPS = 1e-15


# ------------------------------------------------------------------------------ Student's t
# Written out because scipy is not a dependency: the t distribution through the regularized
# incomplete beta function, I_{df / (df + t^2)}(df / 2, 1 / 2) = P(|T| >= |t|).
def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny = 1e-300  # keeps Lentz's denominators off zero

    def guard(value: float) -> float:
        return tiny if abs(value) < tiny else value

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, _BETA_MAX_TERMS):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d, c = 1.0 / guard(1.0 + even * d), guard(1.0 + even / c)
        h *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d, c = 1.0 / guard(1.0 + odd * d), guard(1.0 + odd / c)
        h *= d * c
        if abs(d * c - 1.0) < _BETA_EPS:
            return h
    raise RuntimeError(f"incomplete beta fraction did not converge for a={a}, b={b}, x={x}")


def _regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast on this side; use symmetry otherwise
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom (``inf``: the normal)."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    return _regularized_beta(df / 2.0, 0.5, df / (df + t * t))


def student_t_quantile(level: float, df: float) -> float:
    """The q > 0 with P(|T| <= q) = ``level`` (two-sided), by bisection on the p-value."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    alpha = 1.0 - level
    low, high = 0.0, 1.0
    while student_t_two_sided_p(high, df) > alpha:
        low, high = high, 2.0 * high
    while high - low > 1e-12 * high:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if student_t_two_sided_p(mid, df) > alpha else (low, mid)
    return 0.5 * (low + high)


# ------------------------------------------------------------------------------ the test
@dataclass(frozen=True)
class SeedVideoResult:
    """Difference of seed-mean average mAP, a minus b (fractions), and its combined test.

    ``significant`` is None (untested; ``p_value``, ``ci_*``, ``se_seed`` and ``df`` NaN) when a
    side has fewer than ``min_seeds`` runs. ``se_video`` is the paired video bootstrap's
    standard error of ``diff``; ``se_seed`` the seeds' (Welch).
    """

    diff: float
    ci_low: float
    ci_high: float
    level: float
    p_value: float
    se_seed: float
    se_video: float
    df: float
    n_a: int
    n_b: int
    significant: bool | None

    @property
    def se(self) -> float:
        """Standard error of ``diff``: seed and video parts together."""
        return math.hypot(self.se_seed, self.se_video)

    def __str__(self) -> str:
        head = f"a - b = {self.diff * 100:+.2f} points ({self.n_a} vs {self.n_b} seeds"
        if self.significant is None:
            return head + f"; untested: fewer than {MIN_SEEDS} seeds on a side)"
        return (head + f"; {self.level:.0%} CI {self.ci_low * 100:+.2f} to {self.ci_high * 100:+.2f}; "
                f"s.e. seeds {self.se_seed * 100:.2f}, videos {self.se_video * 100:.2f}; "
                f"t df {self.df:.1f}; p = {self.p_value:.3f})")


def combine_seed_and_video(full_a: np.ndarray, full_b: np.ndarray, resampled_a: np.ndarray,
                           resampled_b: np.ndarray, *, level: float = 0.95,
                           min_seeds: int = MIN_SEEDS) -> SeedVideoResult:
    """The combined seed-and-video test of two rows from their runs' mAPs.

    Args:
        full_a, full_b: each run's average mAP on the full test set.
        resampled_a, resampled_b: each run's average mAP on the same video resamples (column k
            of both is resample k).
        min_seeds: below this many runs on a side the result is untested; at least 2.

    Shapes:
        full_a (m,), full_b (n,), resampled_a (m, B), resampled_b (n, B), B >= 2.
    """
    if min_seeds < MIN_SEEDS:
        raise ValueError(f"min_seeds must be >= {MIN_SEEDS} (a variance needs two runs), got {min_seeds}")
    full_a, full_b = np.asarray(full_a, dtype=np.float64), np.asarray(full_b, dtype=np.float64)
    m, n = len(full_a), len(full_b)
    if m == 0 or n == 0:
        raise ValueError(f"each side needs at least one run, got {m} and {n}")
    if resampled_a.shape[0] != m or resampled_b.shape[0] != n or resampled_a.shape[1] != resampled_b.shape[1]:
        raise ValueError(f"resampled maps {resampled_a.shape} and {resampled_b.shape} do not match {m} and {n} runs "
                         "on the same resamples")
    if resampled_a.shape[1] < 2:
        raise ValueError("the video bootstrap needs at least 2 resamples")
    diff = float(full_a.mean() - full_b.mean())
    se_video = float(np.std(resampled_a.mean(axis=0) - resampled_b.mean(axis=0), ddof=1))
    if m < min_seeds or n < min_seeds:
        nan = math.nan
        return SeedVideoResult(diff, nan, nan, level, nan, nan, se_video, nan, m, n, None)
    seed_a, seed_b = full_a.var(ddof=1) / m, full_b.var(ddof=1) / n
    total = seed_a + seed_b + se_video ** 2
    welch = seed_a ** 2 / (m - 1) + seed_b ** 2 / (n - 1)  # the video part adds no term: counted as known
    df = total ** 2 / welch if welch > 0 else math.inf
    se = math.sqrt(total)
    if se == 0.0:  # every run identical on every resample: only an exact zero is no difference
        p_value = 1.0 if diff == 0.0 else 0.0
        half = 0.0
    else:
        p_value = student_t_two_sided_p(diff / se, df)
        half = student_t_quantile(level, df) * se
    return SeedVideoResult(diff, diff - half, diff + half, level, p_value, math.sqrt(seed_a + seed_b), se_video,
                           df, m, n, bool(p_value < 1.0 - level))


def _average(matching: Matching) -> float:
    """Average mAP over thresholds on the full set, as the evaluator computes it."""
    return float(average_precision_per_class(matching)[:, matching.num_gt > 0].mean(axis=1).mean())


def run_maps(matchings: Sequence[Matching], num_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every run's average mAP on the full set and on the same video resamples.

    The resamples draw from the union of the runs' videos (GT and prediction-only), so every
    run sees the same draws: the pairing that cancels the noise the videos share.

    Shapes:
        returns full (R,), resampled (R, B).
    """
    if not matchings:
        return np.zeros(0), np.zeros((0, num_resamples))
    universe = pd.Index(matchings[0].video_ids)
    for matching in matchings[1:]:
        universe = universe.append(pd.Index(matching.video_ids)).unique()
    weights = video_weights(len(universe), num_resamples, seed)
    full = np.array([_average(m) for m in matchings])
    resampled = np.stack([resampled_map(m, weights, universe.get_indexer(m.video_ids)).mean(axis=1)
                          for m in matchings])
    return full, resampled


def _label_space(ground_truth: pd.DataFrame, predictions: Sequence[pd.DataFrame]) -> list[Any]:
    """GT labels plus any label a run predicts: classes without GT change no mean, and one
    space lets every run be matched alike."""
    labels = set(ground_truth["label"])
    for frame in predictions:
        labels |= set(frame["label"])
    return sorted(labels)


def seed_video_test(ground_truth: pd.DataFrame, predictions_a: Sequence[pd.DataFrame],
                    predictions_b: Sequence[pd.DataFrame],
                    tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU_THRESHOLDS, *,
                    num_resamples: int = 1000, seed: int = 0, level: float = 0.95,
                    min_seeds: int = MIN_SEEDS) -> SeedVideoResult:
    """The combined test of row a (one detections frame per seed) against row b on ``ground_truth``."""
    frames = [*predictions_a, *predictions_b]
    labels = _label_space(ground_truth, frames)
    matchings = [match_predictions(ground_truth, f, tiou_thresholds, labels) for f in frames]
    full, resampled = run_maps(matchings, num_resamples, seed)
    m = len(predictions_a)
    return combine_seed_and_video(full[:m], full[m:], resampled[:m], resampled[m:], level=level,
                                  min_seeds=min_seeds)


# ------------------------------------------------------------------------------ the tables' hook
def run_detections(path: str | Path) -> pd.DataFrame | None:
    """A run's saved detections (detections.csv), or None when the run has none."""
    file = Path(path) / "detections.csv"
    return pd.read_csv(file) if file.is_file() else None


SIGNIFICANCE_COLUMNS = ("diff_vs_ref", "ci_low", "ci_high", "p_value", "se_seed", "se_video", "df", "n_tested",
                        "n_tested_ref", "significant")


@dataclass(frozen=True, eq=False)
class SeedVideoTest:
    """The ``significance`` hook of :func:`tal_lab.study.tables.table_configurations` / ``table_heads``.

    Called with a table's numeric frame (``key`` and ``_paths``: the run folders of each row,
    one per seed), it runs :func:`combine_seed_and_video` of every row against row
    ``reference`` on the runs' detections.csv and returns the frame with the columns of
    :data:`SIGNIFICANCE_COLUMNS`: ``diff_vs_ref``, ``ci_low``, ``ci_high``, ``se_seed``,
    ``se_video`` in percentage points, ``p_value``, ``df``, ``n_tested`` / ``n_tested_ref``
    (runs with detections on each side) and ``significant`` (True / False; None untested:
    the reference row itself, or fewer than ``min_seeds`` runs with detections on a side).
    Each run is matched and resampled once per call; all share the same video resamples.
    """

    ground_truth: pd.DataFrame
    reference: str = "original"
    tiou_thresholds: Sequence[float] | np.ndarray = field(default_factory=lambda: THUMOS14_TIOU_THRESHOLDS)
    num_resamples: int = 1000
    seed: int = 0
    level: float = 0.95
    min_seeds: int = MIN_SEEDS

    def __post_init__(self) -> None:
        if self.min_seeds < MIN_SEEDS:
            raise ValueError(f"min_seeds must be >= {MIN_SEEDS} (a variance needs two runs), got {self.min_seeds}")

    @property
    def method(self) -> str:
        """The test in words, for a caption."""
        return ("a Welch t-test of the difference of seed means of average mAP whose variance adds a paired "
                f"bootstrap over test videos ({self.num_resamples} resamples shared by both rows) to each row's "
                "seed-to-seed variance")

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        if "_paths" not in frame.columns or "key" not in frame.columns:
            raise ValueError("the significance hook needs the table frame with 'key' and '_paths' columns")
        detections = {p: d for paths in frame["_paths"] for p in paths if (d := run_detections(p)) is not None}
        labels = _label_space(self.ground_truth, list(detections.values()))
        paths = list(detections)
        matchings = [match_predictions(self.ground_truth, detections[p], self.tiou_thresholds, labels)
                     for p in paths]
        full, resampled = run_maps(matchings, self.num_resamples, self.seed)
        index = {p: i for i, p in enumerate(paths)}
        rows = [(key, [index[p] for p in row_paths if p in index])
                for key, row_paths in zip(frame["key"], frame["_paths"])]
        ref = next((runs for key, runs in rows if key == self.reference), [])
        results = [self._row(key, runs, ref, full, resampled) for key, runs in rows]
        out = frame.copy()
        for column in SIGNIFICANCE_COLUMNS:
            out[column] = [r[column] for r in results]
        return out

    def _row(self, key: str, runs: list[int], ref: list[int], full: np.ndarray,
             resampled: np.ndarray) -> dict[str, Any]:
        untested: dict[str, Any] = {c: math.nan for c in SIGNIFICANCE_COLUMNS}
        untested.update(n_tested=len(runs), n_tested_ref=len(ref), significant=None)
        if key == self.reference or not runs or not ref:
            return untested
        res = combine_seed_and_video(full[runs], full[ref], resampled[runs], resampled[ref], level=self.level,
                                     min_seeds=self.min_seeds)
        points = {"diff_vs_ref": res.diff, "ci_low": res.ci_low, "ci_high": res.ci_high, "se_seed": res.se_seed,
                  "se_video": res.se_video}
        return {**{k: v * 100.0 for k, v in points.items()}, "p_value": res.p_value, "df": res.df,
                "n_tested": res.n_a, "n_tested_ref": res.n_b, "significant": res.significant}


def paired_significance(ground_truth: pd.DataFrame, *, reference: str = "original",
                        tiou_thresholds: Sequence[float] | None = None, num_resamples: int = 1000,
                        seed: int = 0, ci: float = 0.95, min_seeds: int = MIN_SEEDS) -> SeedVideoTest:
    """The tables' significance hook: the combined seed-and-video test of each row against ``reference``.

    Args:
        ground_truth: the evaluation split's ground truth (video-id, t-start, t-end, label),
            with labels of the same kind as the runs' detections.
        reference: the ``key`` of the reference row ('original' in Table I, 'actionformer'
            in the head table).
        tiou_thresholds: default THUMOS14's 0.3:0.1:0.7.
        ci: the level of the interval; a row is marked when its two-sided p < 1 - ci.
        min_seeds: the fewest seeds with detections on each side for a test (>= 2).
    """
    thresholds = THUMOS14_TIOU_THRESHOLDS if tiou_thresholds is None else tiou_thresholds
    return SeedVideoTest(ground_truth, reference, thresholds, num_resamples, seed, ci, min_seeds)
