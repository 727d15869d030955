"""DETAD-style diagnosis of a detector's errors (Alwassel et al., ECCV 2018).

Follows the definitions of DETAD's code (github.com/HumamAlwassel/DETAD):

* **False-positive profile.** Each class keeps its ``limit_factor x G`` best predictions (G: its
  GT count). Predictions are matched as by the mAP evaluator at one tIoU ``alpha``; each false
  positive (FP) is then compared with every GT of its video, whatever the label, and takes the
  label of the GT of highest tIoU (first in GT order on ties):
  tIoU >= alpha: *double detection* (same label; that GT was already taken) or *wrong label*;
  ``min_tiou`` (0.1) <= tIoU < alpha: *localization* (same label) or *confusion*; below 0.1 or a
  video without GT: *background*. The profile splits the ranked predictions of each class into
  blocks of G (top-1G, 2G, ...); the impact of an error type is the gain in average-mAP_N when
  its FPs are removed.
* **mAP_N.** AP with precision normalised to the average number of GT per class N:
  ``R N / (R N + FP)``, so subsets with different GT counts compare fairly.
* **Sensitivity.** GT binned by a characteristic (length in seconds, coverage = length /
  video duration, ``num-instances``: the number of GT instances in the video whatever their
  label, as DETAD's THUMOS14 characteristic files count it; ``num-instances-class``: those of
  the same class only); per bin, average-mAP_N over the bin's GT and the predictions that
  match a GT of the bin or match nothing. The bins taken from DETAD (:data:`THUMOS14_BINS`,
  :data:`ACTIVITYNET_BINS`) bin ``num-instances``.
* **False negatives.** The share of each bin's GT left unmatched, after DETAD drops matches
  whose normalised precision is <= 0.05.

Matching and ranking (ties in row order) come from :mod:`tal_lab.evaluation.matching`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tal_lab.analysis.figure import new_figure
from tal_lab.evaluation import Matching, candidate_pairs, interpolated_average_precision, match_predictions

__all__ = [
    "FP_CATEGORIES",
    "THUMOS14_BINS",
    "ACTIVITYNET_BINS",
    "FalsePositiveAnalysis",
    "SensitivityAnalysis",
    "normalized_average_precision",
    "false_positive_analysis",
    "gt_characteristics",
    "sensitivity_analysis",
    "false_negative_analysis",
    "plot_false_positive_profile",
    "plot_sensitivity",
    "plot_false_negatives",
]

FP_CATEGORIES = ("double_detection", "wrong_label", "localization", "confusion", "background")
TRUE_POSITIVE = "true_positive"
DETAD_MIN_TIOU = 0.1  # below it an FP is background (DETAD min_tiou_thr)
DETAD_LIMIT_FACTOR = 10  # predictions kept per class: 10 x its GT count
DETAD_FN_MIN_PRECISION = 0.05  # matches at normalised precision <= this do not count (FN analysis)
_SIZES = ("XS", "S", "M", "L", "XL")
# DETAD's bins: (right-closed edges, names); the lowest edge is included. num-instances is DETAD's
# count (every GT of the video); bin 'num-instances-class' for the same-class count.
THUMOS14_BINS: dict[str, tuple[tuple[float, ...], tuple[str, ...]]] = {
    "coverage": ((0.0, 0.02, 0.04, 0.06, 0.08, 1.0), _SIZES),
    "length": ((0.0, 3.0, 6.0, 12.0, 18.0, np.inf), _SIZES),
    "num-instances": ((-1.0, 1.0, 40.0, 80.0, np.inf), _SIZES[:4]),
}
ACTIVITYNET_BINS: dict[str, tuple[tuple[float, ...], tuple[str, ...]]] = {
    "coverage": ((0.0, 0.2, 0.4, 0.6, 0.8, 1.0), _SIZES),
    "length": ((0.0, 30.0, 60.0, 120.0, 180.0, np.inf), _SIZES),
    "num-instances": ((-1.0, 1.0, 4.0, 8.0, np.inf), _SIZES[:4]),
}
# DETAD's palette: true positive, then the FP categories in FP_CATEGORIES order.
_FP_COLORS = ("#33a02c", "#b2df8a", "#1f78b4", "#fb9a99", "#e31a1c", "#a6cee3")
_CHAR_COLORS = ("#386cb0", "#f0027f", "#bf5b17", "#7fc97f", "#beaed4", "#fdc086")


def normalized_average_precision(
    tp_ranked: np.ndarray, num_gt: int, n_avg: float, min_precision: float = 0.0
) -> tuple[float, np.ndarray]:
    """DETAD's AP_N of one class: precision R*N / (R*N + FP) with N = ``n_avg``.

    Matches at ranks whose normalised precision is <= ``min_precision`` are turned into FPs
    first (DETAD's ``minimum_normalized_precision_threshold_for_detection``).

    Shapes:
        tp_ranked: (n,) bool in rank order. Returns (AP_N, tp after the drop (n,)).
    """
    tp = np.asarray(tp_ranked, dtype=bool)
    if len(tp) == 0:
        return 0.0, tp

    def curve(tp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        recall = np.cumsum(tp).astype(np.float64) / num_gt
        return recall * n_avg / (recall * n_avg + np.cumsum(~tp)), recall

    precision, recall = curve(tp)
    if min_precision > 0:  # at 0 nothing changes: every match has a positive precision
        tp = tp & (precision > min_precision)
        precision, recall = curve(tp)
    return interpolated_average_precision(precision, recall), tp


def _classes_with_gt(matching: Matching) -> np.ndarray:
    return np.flatnonzero(matching.num_gt > 0)


def _n_avg(matching: Matching) -> float:
    return len(matching.gt) / len(_classes_with_gt(matching))  # DETAD: GT count / class count


def _ranked(matching: Matching, c: int) -> np.ndarray:
    return matching.order[matching.class_offsets[c]:matching.class_offsets[c + 1]]


def _ap_n_per_threshold(matching: Matching, ranked: np.ndarray, num_gt: int, n_avg: float) -> list[float]:
    """AP_N of the ranked predictions ``ranked`` (of one class, against ``num_gt`` GT) at each threshold."""
    return [normalized_average_precision(matching.tp[t, ranked], num_gt, n_avg)[0]
            for t in range(len(matching.tiou_thresholds))]


def _average_map_n(matching: Matching, keep: np.ndarray) -> float:
    """Average over classes with GT and thresholds of AP_N on the kept predictions."""
    n_avg = _n_avg(matching)
    aps = []
    for c in _classes_with_gt(matching):
        ranked = _ranked(matching, c)
        aps.append(_ap_n_per_threshold(matching, ranked[keep[ranked]], matching.num_gt[c], n_avg))
    return float(np.mean(aps))


@dataclass(frozen=True)
class FalsePositiveAnalysis:
    """DETAD false-positive diagnosis at one tIoU.

    ``predictions``: the kept predictions (rows of the input frame) with ``rank_block`` (1 = top
    G of its class) and ``category`` (true_positive or an FP category); ``counts``: FPs per
    category (sums to the FP count); ``profile``: share of each category per block (rows
    '1G', '2G', ...); ``map_n_gain``: average-mAP_N gain when an FP category is removed.
    """

    tiou_threshold: float
    predictions: pd.DataFrame
    counts: pd.Series
    profile: pd.DataFrame
    average_map_n: float
    map_n_gain: pd.Series


def _classify_false_positives(matching: Matching, fp_index: np.ndarray, alpha: float, min_tiou: float) -> np.ndarray:
    """FP category (index into FP_CATEGORIES) of each prediction in ``fp_index``."""
    gt, pred = matching.gt, matching.pred
    # GTs below min_tiou cannot change the category (background either way): let the search skip them
    pair_pred, pair_gt, tiou = candidate_pairs(gt.video, gt, pred.video[fp_index], pred, min_tiou, fp_index)
    best = np.lexsort((pair_gt, -tiou, pair_pred))  # per prediction: highest tIoU, first GT row
    pair_pred, pair_gt, tiou = pair_pred[best], pair_gt[best], tiou[best]
    head = np.r_[True, pair_pred[1:] != pair_pred[:-1]] if len(pair_pred) else np.zeros(0, dtype=bool)
    top_tiou = np.full(len(pred), -1.0)  # -1: no GT of the video reaches min_tiou
    top_label = np.full(len(pred), -1)
    top_tiou[pair_pred[head]] = tiou[head]
    top_label[pair_pred[head]] = gt.label[pair_gt[head]]
    t, same = top_tiou[fp_index], top_label[fp_index] == pred.label[fp_index]
    category = np.full(len(fp_index), FP_CATEGORIES.index("background"))
    high, mid = t >= alpha, (t >= min_tiou) & (t < alpha)
    category[high & same] = FP_CATEGORIES.index("double_detection")
    category[high & ~same] = FP_CATEGORIES.index("wrong_label")
    category[mid & same] = FP_CATEGORIES.index("localization")
    category[mid & ~same] = FP_CATEGORIES.index("confusion")
    return category


def false_positive_analysis(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    tiou_threshold: float = 0.5,
    *,
    min_tiou: float = DETAD_MIN_TIOU,
    limit_factor: int = DETAD_LIMIT_FACTOR,
    labels: Sequence[Any] | None = None,
) -> FalsePositiveAnalysis:
    """Classify the FPs among each class's top ``limit_factor x G`` predictions (DETAD).

    Predictions for videos absent from the GT are background errors.
    """
    if not 0 < min_tiou < tiou_threshold <= 1:
        raise ValueError(f"need 0 < min_tiou < tiou_threshold <= 1, got {min_tiou} and {tiou_threshold}")
    if limit_factor < 1:
        raise ValueError(f"limit_factor must be >= 1, got {limit_factor}")
    matching = match_predictions(ground_truth, predictions, [tiou_threshold], labels)
    n = len(matching.pred)
    block = np.full(n, -1)  # 0-based block of G ranks; -1: not kept
    for c in _classes_with_gt(matching):
        ranked = _ranked(matching, c)[: limit_factor * matching.num_gt[c]]
        block[ranked] = np.arange(len(ranked)) // matching.num_gt[c]
    keep = block >= 0
    tp = matching.tp[0]
    names = np.array((TRUE_POSITIVE,) + FP_CATEGORIES, dtype=object)
    category = np.zeros(n, dtype=np.int64)  # index into names; 0 = true positive
    fp_index = np.flatnonzero(keep & ~tp)
    category[fp_index] = 1 + _classify_false_positives(matching, fp_index, tiou_threshold, min_tiou)
    kept = np.flatnonzero(keep)
    table = predictions.iloc[matching.pred.row[kept]].copy()
    table["rank_block"] = block[kept] + 1
    table["category"] = names[category[kept]]
    counts = pd.Series(np.bincount(category[fp_index] - 1, minlength=len(FP_CATEGORIES)),
                       index=list(FP_CATEGORIES), name="count")
    profile = pd.crosstab(table["rank_block"], table["category"], normalize="index")
    profile = profile.reindex(columns=list(names), fill_value=0.0)
    profile.index = [f"{b}G" for b in profile.index]
    base = _average_map_n(matching, keep)
    gain = {name: _average_map_n(matching, keep & (category != i + 1)) - base for i, name in enumerate(FP_CATEGORIES)}
    return FalsePositiveAnalysis(float(tiou_threshold), table, counts, profile, base,
                                 pd.Series(gain, name="average_mAP_N_gain"))


def gt_characteristics(
    ground_truth: pd.DataFrame, durations: Mapping[str, float] | pd.Series | None = None
) -> pd.DataFrame:
    """Per-GT characteristics: length (s), num-instances (GT in the same video, any label:
    DETAD's), num-instances-class (GT of the same class in the same video), coverage.

    Coverage (length / video duration) needs ``durations`` (video-id -> seconds).
    """
    frame = pd.DataFrame(index=ground_truth.index)
    frame["length"] = ground_truth["t-end"].to_numpy(float) - ground_truth["t-start"].to_numpy(float)
    frame["num-instances"] = ground_truth.groupby("video-id", sort=False)["label"].transform("size")
    frame["num-instances-class"] = ground_truth.groupby(["video-id", "label"], sort=False)["label"].transform("size")
    if durations is not None:
        duration = ground_truth["video-id"].map(pd.Series(durations) if isinstance(durations, Mapping) else durations)
        if duration.isna().any():
            missing = sorted(set(ground_truth.loc[duration.isna(), "video-id"]))[:5]
            raise ValueError(f"durations: no duration for video(s) {missing}")
        frame["coverage"] = frame["length"] / duration.to_numpy(float)
    return frame


def _bin_index(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Right-closed bins, lowest edge included (pandas.cut include_lowest); -1 outside."""
    edges = np.asarray(edges, dtype=np.float64)
    idx = np.searchsorted(edges, values, side="left") - 1
    idx[values == edges[0]] = 0
    idx[(values < edges[0]) | (values > edges[-1])] = -1
    return idx


def _bins_of(ground_truth: pd.DataFrame, durations: Any, bins: Mapping[str, Any]) -> list[tuple[str, str, np.ndarray]]:
    chars = gt_characteristics(ground_truth, durations)
    out = []
    for name, (edges, bin_names) in bins.items():
        if name not in chars:
            if name == "coverage":
                continue  # coverage needs durations; the other characteristics still apply
            raise ValueError(f"bins: unknown characteristic {name!r} (have {list(chars.columns)})")
        if len(bin_names) != len(edges) - 1:
            raise ValueError(f"bins[{name!r}]: {len(edges)} edges need {len(edges) - 1} names")
        idx = _bin_index(chars[name].to_numpy(float), edges)
        out += [(name, bin_name, idx == b) for b, bin_name in enumerate(bin_names)]
    return out


@dataclass(frozen=True)
class SensitivityAnalysis:
    """Average-mAP_N per characteristic bin (``table``) and over all GT (``base``)."""

    table: pd.DataFrame
    base: float


def sensitivity_analysis(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    tiou_thresholds: Sequence[float] = (0.5,),
    *,
    durations: Mapping[str, float] | pd.Series | None = None,
    bins: Mapping[str, Any] = THUMOS14_BINS,
    labels: Sequence[Any] | None = None,
) -> SensitivityAnalysis:
    """DETAD sensitivity: average-mAP_N restricted to the GT of each characteristic bin.

    A prediction stays in a bin's evaluation when, at every threshold, it matches a GT of the
    bin or nothing (DETAD's filter); recall is over the bin's GT of the class; classes without
    GT in the bin are left out. Returns a table: characteristic, bin, average_mAP_N, num_gt.
    """
    matching = match_predictions(ground_truth, predictions, tiou_thresholds, labels)
    n_avg, rows = _n_avg(matching), []
    everything = np.ones(len(matching.pred), dtype=bool)
    for name, bin_name, in_bin in _bins_of(ground_truth, durations, bins):
        gt_in_bin = np.bincount(matching.gt.label[in_bin], minlength=len(matching.labels))
        allowed = np.r_[in_bin, True]  # index -1 (no match) maps to the trailing True
        aps = []
        for c in np.flatnonzero(gt_in_bin > 0):
            ranked = _ranked(matching, c)
            ranked = ranked[allowed[matching.matched_gt[:, ranked]].all(axis=0)]
            aps.append(np.mean(_ap_n_per_threshold(matching, ranked, gt_in_bin[c], n_avg)))
        rows.append((name, bin_name, float(np.mean(aps)) if aps else np.nan, int(in_bin.sum())))
    table = pd.DataFrame(rows, columns=["characteristic", "bin", "average_mAP_N", "num_gt"])
    return SensitivityAnalysis(table, _average_map_n(matching, everything))


def false_negative_analysis(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    tiou_thresholds: Sequence[float] = (0.5,),
    *,
    durations: Mapping[str, float] | pd.Series | None = None,
    bins: Mapping[str, Any] = THUMOS14_BINS,
    min_precision: float = DETAD_FN_MIN_PRECISION,
    labels: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Share of GT left unmatched, overall ('all') and per characteristic bin, averaged over thresholds.

    Returns a table: characteristic, bin, false_negative_rate, num_gt.
    """
    matching = match_predictions(ground_truth, predictions, tiou_thresholds, labels)
    n_avg = _n_avg(matching)
    detected = np.zeros((len(matching.tiou_thresholds), len(matching.gt)), dtype=bool)
    for c in _classes_with_gt(matching):
        ranked = _ranked(matching, c)
        for t in range(len(matching.tiou_thresholds)):
            _, tp = normalized_average_precision(matching.tp[t, ranked], matching.num_gt[c], n_avg, min_precision)
            detected[t, matching.matched_gt[t, ranked[tp]]] = True
    groups = [("all", "all", np.ones(len(matching.gt), dtype=bool))] + _bins_of(ground_truth, durations, bins)
    rows = [(name, bin_name, float((~detected[:, in_bin]).mean(axis=1).mean()) if in_bin.any() else np.nan,
             int(in_bin.sum())) for name, bin_name, in_bin in groups]
    return pd.DataFrame(rows, columns=["characteristic", "bin", "false_negative_rate", "num_gt"])


# ------------------------------------------------------------------------------------- plots
def _style(ax: Any) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.yaxis.grid(True, linestyle=":")
    ax.set_axisbelow(True)


def plot_false_positive_profile(analysis: FalsePositiveAnalysis, figsize: tuple[float, float] = (11, 4)) -> Figure:
    """DETAD's figure: error breakdown per top-kG block, and the mAP_N gain of removing each FP type."""
    fig = new_figure(figsize=figsize)
    ax_profile, ax_gain = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    bottom = np.zeros(len(analysis.profile))
    names = (TRUE_POSITIVE,) + FP_CATEGORIES
    for name, color in zip(names, _FP_COLORS):
        values = analysis.profile[name].to_numpy() * 100
        ax_profile.bar(analysis.profile.index, values, bottom=bottom, color=color, label=name.replace("_", " "))
        bottom += values
    ax_profile.set_ylim(0, 100)
    ax_profile.set_xlabel("top predictions")
    ax_profile.set_ylabel("error breakdown (%)")
    ax_profile.set_title(f"false-positive profile (tIoU {analysis.tiou_threshold:g})")
    fig.legend(*ax_profile.get_legend_handles_labels(), loc="outside upper center", ncol=6, fontsize=8)
    gains = analysis.map_n_gain.to_numpy() * 100
    bars = ax_gain.bar(range(len(gains)), gains, color=_FP_COLORS[1:])
    ax_gain.bar_label(bars, fmt="%.1f", fontsize=8)
    ax_gain.set_xticks(range(len(gains)), [n.replace("_", "\n") for n in FP_CATEGORIES], fontsize=8)
    ax_gain.set_ylabel("average-mAP$_N$ improvement (%)")
    ax_gain.set_title("removing error impact")
    for ax in (ax_profile, ax_gain):
        _style(ax)
    return fig


def _plot_by_bins(
    table: pd.DataFrame, value: str, ylabel: str, base: float | None, figsize: tuple[float, float]
) -> Figure:
    fig = new_figure(figsize=figsize)
    ax = fig.subplots()
    x, ticks, labels = 0, [], []
    for i, (name, part) in enumerate(table.groupby("characteristic", sort=False)):
        xs = np.arange(x, x + len(part))
        bars = ax.bar(xs, part[value].to_numpy() * 100, color=_CHAR_COLORS[i % len(_CHAR_COLORS)], label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ticks += xs.tolist()
        labels += part["bin"].tolist()
        x += len(part) + 1
    if base is not None:
        ax.axhline(base * 100, color="k", linestyle="--", linewidth=1, label=f"all: {base * 100:.2f}")
    ax.set_xticks(ticks, labels)
    ax.set_ylim(0, 100)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    _style(ax)
    return fig


def plot_sensitivity(analysis: SensitivityAnalysis, figsize: tuple[float, float] = (9, 3.5)) -> Figure:
    """Average-mAP_N per characteristic bin, with the all-GT value dashed."""
    return _plot_by_bins(analysis.table, "average_mAP_N", "average-mAP$_N$ (%)", analysis.base, figsize)


def plot_false_negatives(table: pd.DataFrame, figsize: tuple[float, float] = (9, 3.5)) -> Figure:
    """False-negative rate per characteristic bin (the 'all' row dashed)."""
    overall = table.loc[table["characteristic"] == "all", "false_negative_rate"]
    bins = table[table["characteristic"] != "all"]
    return _plot_by_bins(bins, "false_negative_rate", "false negatives (%)",
                         float(overall.iloc[0]) if len(overall) else None, figsize)
