"""Timelines: predicted versus ground-truth segments per video, with matches marked.

Frames use the evaluator's columns: ground truth ``video-id, t-start, t-end, label`` and
predictions ``video-id, t-start, t-end, label, score``; times in seconds, labels as in the
annotations (integer ids or names). Ground truth may come from either split.

Matching is the mAP protocol's (ActivityNet / THUMOS14 evaluator, through
:func:`tal_lab.evaluation.match_predictions`) at one tIoU threshold: predictions of a (video,
label) are taken by decreasing score (ties in row order) and each one matches the free
ground-truth instance of that video and label with the highest tIoU, if that tIoU reaches the
threshold (a miss is strictly below it); otherwise it is a false positive. Ground truth left
unmatched is *missed*. tIoU uses the evaluator's float64 arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from tal_lab.analysis.figure import new_figure
from tal_lab.evaluation import match_predictions

__all__ = ["GT_COLUMNS", "PRED_COLUMNS", "TimelineMatch", "match_detections", "label_space", "CLASS_PALETTE",
           "class_colours", "plot_timelines"]

GT_COLUMNS: tuple[str, ...] = ("video-id", "t-start", "t-end", "label")
PRED_COLUMNS: tuple[str, ...] = ("video-id", "t-start", "t-end", "label", "score")


@dataclass
class TimelineMatch:
    """Outcome of :func:`match_detections`.

    ``gt``: the ground truth rows with ``outcome`` ('matched' | 'missed'), ``matched_pred``
    (index label of the matching prediction or -1) and ``tiou`` (of that match, NaN if none).
    ``preds``: the kept predictions with ``outcome`` ('matched' | 'false_positive'),
    ``matched_gt`` (index label of the ground truth or -1) and ``tiou``.
    """

    gt: pd.DataFrame
    preds: pd.DataFrame
    tiou: float
    score_threshold: float

    def counts(self) -> pd.DataFrame:
        """Per video: matched, false_positive and missed counts."""
        tp = self.preds[self.preds["outcome"] == "matched"].groupby("video-id").size()
        fp = self.preds[self.preds["outcome"] == "false_positive"].groupby("video-id").size()
        miss = self.gt[self.gt["outcome"] == "missed"].groupby("video-id").size()
        videos = sorted(set(self.gt["video-id"]) | set(self.preds["video-id"]))
        out = pd.DataFrame({"matched": tp, "false_positive": fp, "missed": miss}).reindex(videos)
        return out.fillna(0).astype(int).rename_axis("video-id").reset_index()


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks column(s) {missing}; expected {list(columns)}")


def _tiou(gt_sec: np.ndarray, pred_sec: np.ndarray) -> np.ndarray:
    """Row-wise tIoU of matched pairs, the evaluator's arithmetic.

    Shapes:
        gt_sec, pred_sec: (N, 2) [start, end]; returns (N,).
    """
    inter = (np.minimum(gt_sec[:, 1], pred_sec[:, 1]) - np.maximum(gt_sec[:, 0], pred_sec[:, 0])).clip(0)
    return inter / ((gt_sec[:, 1] - gt_sec[:, 0]) + (pred_sec[:, 1] - pred_sec[:, 0]) - inter)


def _index_or_missing(index: pd.Index, positions: np.ndarray) -> np.ndarray:
    """Index labels at ``positions``, -1 where a position is -1 (no match)."""
    out = np.full(len(positions), -1, dtype=object)
    hit = positions >= 0
    out[hit] = index.to_numpy(object)[positions[hit]]
    return out


def match_detections(gt: pd.DataFrame, preds: pd.DataFrame, *, tiou: float = 0.5,
                     score_threshold: float = 0.0) -> TimelineMatch:
    """Label every prediction (score >= ``score_threshold``) and ground-truth instance.

    The matching is :func:`tal_lab.evaluation.match_predictions` at the single threshold
    ``tiou``, so a prediction counts as matched exactly when the mAP protocol counts it as a
    true positive (given the same predictions).

    Raises:
        ValueError: missing columns, a threshold outside (0, 1], labels of mixed kinds, or a
            ground-truth segment that is not longer than zero.
    """
    _check_columns(gt, GT_COLUMNS, "ground-truth")
    _check_columns(preds, PRED_COLUMNS, "prediction")
    if not 0.0 < tiou <= 1.0:
        raise ValueError(f"tiou threshold must lie in (0, 1], got {tiou}")
    gt_out = gt.copy()
    kept = preds[preds["score"] >= score_threshold]
    pred_out = kept.iloc[np.argsort(-kept["score"].to_numpy(), kind="stable")].copy()
    gt_match = np.full(len(gt_out), -1, dtype=np.int64)  # prediction position per GT row
    pred_match = np.full(len(pred_out), -1, dtype=np.int64)  # GT position per prediction
    if len(gt_out) and len(pred_out):
        space = sorted(set(gt_out["label"].tolist()) | set(pred_out["label"].tolist()))
        matching = match_predictions(gt_out, pred_out, [tiou], labels=space)
        hit = matching.matched_gt[0] >= 0
        pred_match[matching.pred.row[hit]] = matching.matched_gt[0][hit]
        gt_match[matching.matched_gt[0][hit]] = matching.pred.row[hit]
    has = pred_match >= 0
    pred_tiou = np.full(len(pred_out), np.nan)
    pred_tiou[has] = _tiou(gt_out[["t-start", "t-end"]].to_numpy(np.float64)[pred_match[has]],
                           pred_out[["t-start", "t-end"]].to_numpy(np.float64)[has])
    pred_out["outcome"] = np.where(has, "matched", "false_positive")
    pred_out["matched_gt"] = _index_or_missing(gt_out.index, pred_match)
    pred_out["tiou"] = pred_tiou
    gt_has = gt_match >= 0
    gt_tiou = np.full(len(gt_out), np.nan)
    gt_tiou[gt_has] = pred_tiou[gt_match[gt_has]]
    gt_out["outcome"] = np.where(gt_has, "matched", "missed")
    gt_out["matched_pred"] = _index_or_missing(pred_out.index, gt_match)
    gt_out["tiou"] = gt_tiou
    return TimelineMatch(gt_out, pred_out, float(tiou), float(score_threshold))


def _lanes(segments: np.ndarray) -> np.ndarray:
    """Greedy interval packing: lane index per segment so that overlapping ones never share one.

    Shapes:
        segments: (N, 2) [start, end]; returns (N,) int lanes.
    """
    lanes = np.zeros(len(segments), dtype=int)
    lane_end: list[float] = []
    for i in np.argsort(segments[:, 0], kind="stable"):
        start, end = segments[i]
        free = next((k for k, e in enumerate(lane_end) if e <= start), None)
        if free is None:
            lane_end.append(end)
            free = len(lane_end) - 1
        else:
            lane_end[free] = end
        lanes[i] = free
    return lanes


def _name_of(label: Any, class_names: Mapping[Any, str] | Sequence[str] | None) -> str:
    if class_names is None:
        return str(label)
    if isinstance(class_names, Mapping):
        return str(class_names.get(label, label))
    try:
        return str(class_names[int(label)])
    except (ValueError, TypeError, IndexError):
        return str(label)


def _resolve_classes(classes: Sequence[Any], labels: set[Any],
                     class_names: Mapping[Any, str] | Sequence[str] | None) -> set[Any]:
    """Accept class ids or names; unknown ones are an error naming them."""
    by_name = {_name_of(label, class_names): label for label in labels}
    chosen, unknown = set(), []
    for c in classes:
        if c in labels:
            chosen.add(c)
        elif str(c) in by_name:
            chosen.add(by_name[str(c)])
        else:
            unknown.append(c)
    if unknown:
        raise ValueError(f"classes {unknown} appear in neither the ground truth nor the predictions of "
                         f"these videos (known: {sorted(by_name)})")
    return chosen


# Outcome styles: (hatch, edge colour, face alpha, line style).
_STYLES = {
    "gt_matched": ("", "black", 0.9, "-"),
    "gt_missed": ("xx", "red", 0.35, "--"),
    "matched": ("", "black", 0.9, "-"),
    "false_positive": ("//", "red", 0.35, "--"),
}


def _shown_match(gt: pd.DataFrame, preds: pd.DataFrame, video_ids: list[str], tiou: float, score_threshold: float,
                 class_names: Mapping[Any, str] | Sequence[str] | None, classes: Sequence[Any] | None,
                 max_preds_per_video: int | None) -> TimelineMatch:
    """The matching of what the timelines show: the videos' rows, the chosen classes, the best
    predictions per video (:func:`plot_timelines`' arguments, checked)."""
    _check_columns(gt, GT_COLUMNS, "ground-truth")
    _check_columns(preds, PRED_COLUMNS, "prediction")
    if not video_ids:
        raise ValueError("plot_timelines needs at least one video id")
    known = set(gt["video-id"]) | set(preds["video-id"])
    unknown = [v for v in video_ids if v not in known]
    if unknown:
        raise ValueError(f"video ids {unknown} appear in neither the ground truth nor the predictions")
    gt_v = gt[gt["video-id"].isin(video_ids)]
    pred_v = preds[preds["video-id"].isin(video_ids) & (preds["score"] >= score_threshold)]
    # Filter classes before capping predictions per video, so a chosen class shows its own
    # best predictions rather than whatever survived a cap taken over all classes.
    if classes is not None:
        chosen = _resolve_classes(classes, set(gt_v["label"]) | set(pred_v["label"]), class_names)
        gt_v, pred_v = gt_v[gt_v["label"].isin(chosen)], pred_v[pred_v["label"].isin(chosen)]
    if max_preds_per_video is not None:
        pred_v = (pred_v.iloc[np.argsort(-pred_v["score"].to_numpy(), kind="stable")]
                  .groupby("video-id", sort=False).head(max_preds_per_video))
    return match_detections(gt_v, pred_v, tiou=tiou, score_threshold=score_threshold)


@dataclass
class _VideoRow:
    """One video's row of the figure: its matched frames and the lane of each segment."""

    video_id: str
    gt: pd.DataFrame
    preds: pd.DataFrame
    gt_lanes: np.ndarray
    pred_lanes: np.ndarray

    @staticmethod
    def of(match: TimelineMatch, video_id: str) -> "_VideoRow":
        g = match.gt[match.gt["video-id"] == video_id]
        p = match.preds[match.preds["video-id"] == video_id]
        g_lanes = _lanes(g[["t-start", "t-end"]].to_numpy(np.float64)) if len(g) else np.zeros(0, int)
        p_lanes = _lanes(p[["t-start", "t-end"]].to_numpy(np.float64)) if len(p) else np.zeros(0, int)
        return _VideoRow(video_id, g, p, g_lanes, p_lanes)

    @property
    def num_gt_lanes(self) -> int:
        return max(1, int(self.gt_lanes.max(initial=-1)) + 1)

    @property
    def num_pred_lanes(self) -> int:
        return max(1, int(self.pred_lanes.max(initial=-1)) + 1)

    @property
    def height(self) -> float:
        """Height ratio of the row: its lanes plus the gap and the title."""
        return self.num_gt_lanes + self.num_pred_lanes + 1.2


def _draw_row(ax: Any, row: _VideoRow, colour: Mapping[Any, Any], durations: Mapping[str, float] | None,
              view: tuple[float, float], show_scores: bool) -> None:
    """One video's lanes on ``ax``: prediction lanes at 0 .. n_pred-1, a gap, then the
    ground-truth lanes above; the time axis spans the video (zoomed to ``view``)."""
    n_gt, n_pred = row.num_gt_lanes, row.num_pred_lanes
    gt_base = n_pred + 0.6
    for frame, lanes, base, kind in ((row.gt, row.gt_lanes, gt_base, "gt"), (row.preds, row.pred_lanes, 0.0, "pred")):
        for (_, seg), lane in zip(frame.iterrows(), lanes):
            hatch, edge, alpha, style = _STYLES[("gt_" + seg["outcome"]) if kind == "gt" else seg["outcome"]]
            start, end = float(seg["t-start"]), float(seg["t-end"])
            ax.barh(base + lane, max(end - start, 1e-9), left=start, height=0.8,
                    color=to_rgba(colour[seg["label"]], alpha), edgecolor=edge, hatch=hatch,
                    linestyle=style, linewidth=1.0)
            if show_scores and kind == "pred":
                ax.text(start, base + lane, f"{seg['score']:.2f}", va="center", fontsize=6)
    ax.axhline(n_pred - 0.2, color="grey", linewidth=0.6)
    ax.set_yticks([(n_pred - 1) / 2, gt_base + (n_gt - 1) / 2], ["pred", "GT"])
    ax.set_ylim(-0.6, gt_base + n_gt - 0.2)
    end_sec = max([0.0, *row.gt["t-end"].tolist(), *row.preds["t-end"].tolist()])
    if durations is not None and row.video_id in durations:
        end_sec = max(end_sec, float(durations[row.video_id]))
    span = end_sec * 1.01 if end_sec > 0 else 1.0
    ax.set_xlim(view[0] * span, view[1] * span)
    p, g = row.preds, row.gt
    counts = (f"{(p['outcome'] == 'matched').sum()} matched, {(p['outcome'] == 'false_positive').sum()} FP, "
              f"{(g['outcome'] == 'missed').sum()} missed")
    ax.set_title(f"{row.video_id}  ({counts})", loc="left", fontsize=9)
    ax.grid(axis="x", alpha=0.3)


def _add_legend(fig: Figure, colour: Mapping[Any, Any],
                class_names: Mapping[Any, str] | Sequence[str] | None) -> None:
    """One legend below the rows: a patch per class, then the three outcome styles."""
    class_handles = [Patch(facecolor=c, label=_name_of(label, class_names)) for label, c in colour.items()]
    outcome_handles = [
        Patch(facecolor="lightgrey", edgecolor="black", label="matched (pred / GT)"),
        Patch(facecolor=to_rgba("lightgrey", 0.35), edgecolor="red", hatch="//", linestyle="--",
              label="false positive"),
        Patch(facecolor=to_rgba("lightgrey", 0.35), edgecolor="red", hatch="xx", linestyle="--",
              label="missed GT"),
    ]
    fig.legend(handles=class_handles + outcome_handles, loc="outside lower center",
               ncols=min(6, len(class_handles) + 3), fontsize=8)


def _label_order(label: Any) -> tuple[str, Any]:
    return (str(type(label)), label)


def label_space(gt: pd.DataFrame, preds: pd.DataFrame,
                class_names: Mapping[Any, str] | Sequence[str] | None = None) -> list[Any]:
    """Every class a timeline may draw, in the order that fixes its colour: the ids of
    ``class_names`` (a mapping's keys, a sequence's positions), then any other label of ``gt`` or
    ``preds``, sorted."""
    named: list[Any] = []
    if isinstance(class_names, Mapping):
        named = sorted(class_names, key=_label_order)
    elif class_names is not None:
        named = list(range(len(class_names)))
    others = (set(gt["label"]) | set(preds["label"])) - set(named)
    return named + sorted(others, key=_label_order)


def _class_palette() -> list[Any]:
    # tab10's colours, then tab20's light versions of them, then five of tab20b: 23 distinct colours
    # before any repeats (THUMOS14 has 20 classes). No grey: the legend's "matched" patch is grey.
    tab20, tab20b = colormaps["tab20"].colors, colormaps["tab20b"].colors
    dark, light = [c for i, c in enumerate(tab20[0::2]) if i != 7], [c for i, c in enumerate(tab20[1::2]) if i != 7]
    return dark + light + list(tab20b[0::4])


CLASS_PALETTE: list[Any] = _class_palette()


def class_colours(labels: Sequence[Any]) -> dict[Any, Any]:
    """One colour per class by its position in ``labels`` (:data:`CLASS_PALETTE`: 23 distinct colours,
    then repeating), so a class keeps its colour in every figure drawn over the same label space:
    across runs, and when a threshold or filter changes which classes are shown."""
    return {label: CLASS_PALETTE[i % len(CLASS_PALETTE)] for i, label in enumerate(labels)}


def plot_timelines(gt: pd.DataFrame, preds: pd.DataFrame, video_ids: Sequence[str], *, tiou: float = 0.5,
                   score_threshold: float = 0.3, class_names: Mapping[Any, str] | Sequence[str] | None = None,
                   classes: Sequence[Any] | None = None, durations: Mapping[str, float] | None = None,
                   max_preds_per_video: int | None = 50, show_scores: bool = False,
                   title: str | None = None, width: float = 12.0,
                   view: tuple[float, float] = (0.0, 1.0)) -> Figure:
    """Ground truth and predictions of several videos, one row per video on its own time axis.

    Each row holds the ground-truth lanes above the prediction lanes on one shared time axis
    (seconds, 0 to the video's duration or its last segment). Bars are coloured by class, each
    class by its place in :func:`label_space` (pass ``class_names`` for colours that hold across
    runs; without it, the labels of ``gt`` and ``preds`` set the order); matched segments are
    solid, false positives and missed ground truth hatched with a red dashed edge. Matching is :func:`match_detections` at ``tiou`` on the predictions with
    score >= ``score_threshold`` (then at most ``max_preds_per_video`` per video, by score).
    ``view`` zooms every row to that fraction of its time axis, e.g. (0.25, 0.5) for its
    second quarter (the explorer's zoom and pan).

    Raises:
        ValueError: no video ids, ids found in neither frame, unknown classes, bad columns.
    """
    video_ids = list(video_ids)
    if not 0.0 <= view[0] < view[1] <= 1.0:
        raise ValueError(f"view={tuple(view)!r} must be (start, end) fractions with 0 <= start < end <= 1")
    match = _shown_match(gt, preds, video_ids, tiou, score_threshold, class_names, classes, max_preds_per_video)
    palette = class_colours(label_space(gt, preds, class_names))
    shown = set(match.gt["label"]) | set(match.preds["label"])
    colour = {label: c for label, c in palette.items() if label in shown}
    rows = [_VideoRow.of(match, vid) for vid in video_ids]
    heights = [row.height for row in rows]
    fig = new_figure(figsize=(width, 0.32 * sum(heights) + 1.6))
    axes = fig.subplots(len(video_ids), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, row in zip(axes, rows):
        _draw_row(ax, row, colour, durations, view, show_scores)
    axes[-1].set_xlabel("time (s)")
    _add_legend(fig, colour, class_names)
    fig.suptitle(title or f"Predictions vs ground truth (tIoU {tiou:g}, score >= {score_threshold:g})")
    return fig
