"""Figures of the feature-diversity probe (:mod:`tal_lab.analysis.features`).

Every function takes the tidy frames of a :class:`~tal_lab.analysis.features.DiversityResult`
(several runs concatenated), groups by a ``hue`` column (e.g. backbone, run, epoch) and returns
a :class:`matplotlib.figure.Figure` (not registered with pyplot, so nothing leaks or shows
twice; a notebook displays the returned figure, ``fig.savefig`` writes it).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tal_lab.analysis.figure import new_figure

__all__ = [
    "METRIC_LABELS",
    "plot_diversity_by_level",
    "plot_diversity_overview",
    "plot_diversity_by_layer",
    "plot_diversity_over_epochs",
    "plot_cosine_to_mean",
]

METRIC_LABELS: dict[str, str] = {
    "mean_cosine": "mean pairwise cosine",
    "effective_rank": "effective rank",
    "effective_rank_ratio": "effective rank / min(T, C)",
    "collapse_ratio": "rank-collapse ratio ||X - 1 mu^T|| / ||X||",
    "mean_cos_to_mean": "mean cosine to temporal mean",
    "cos_to_mean": "cosine to temporal mean",
}


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; have {list(frame.columns)}")


def _select(frame: pd.DataFrame, stage: str, what: str) -> pd.DataFrame:
    _require(frame, ["stage"], what)
    sub = frame[frame["stage"] == stage]
    if sub.empty:
        raise ValueError(f"{what}: no rows for stage '{stage}' (stages present: "
                         f"{sorted(frame['stage'].unique())})")
    return sub


def _groups(frame: pd.DataFrame, hue: str | None) -> list[tuple[str, pd.DataFrame]]:
    if hue is None or hue not in frame.columns:
        return [("all", frame)]
    return [(str(key), sub) for key, sub in frame.groupby(hue, sort=True, dropna=False)]


def _line_by(ax, frame: pd.DataFrame, x: str, metric: str, hue: str | None) -> None:
    """Mean over the rows of each x (videos, seeds) with a +-1 std band, one line per hue."""
    for label, sub in _groups(frame, hue):
        stats = sub.groupby(x)[metric].agg(["mean", "std"]).sort_index()
        xs = stats.index.to_numpy()
        ax.plot(xs, stats["mean"].to_numpy(), marker="o", label=label)
        std = stats["std"].fillna(0.0).to_numpy()
        ax.fill_between(xs, stats["mean"] - std, stats["mean"] + std, alpha=0.15)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(alpha=0.3)


def plot_diversity_by_level(summary: pd.DataFrame, metric: str = "mean_cosine", *, stage: str = "backbone",
                            hue: str | None = "backbone", title: str | None = None) -> Figure:
    """One metric across pyramid levels (x) for each ``hue`` group (mean over videos +- std)."""
    _require(summary, ["level", metric], "plot_diversity_by_level")
    sub = _select(summary, stage, "plot_diversity_by_level")
    fig = new_figure(figsize=(6, 4))
    ax = fig.add_subplot()
    _line_by(ax, sub, "level", metric, hue)
    ax.set_xlabel(f"pyramid level ({stage} output)")
    ax.set_xticks(sorted(sub["level"].unique()))
    ax.set_title(title or f"{METRIC_LABELS.get(metric, metric)} per level")
    ax.legend(title=hue)
    return fig


def plot_diversity_overview(summary: pd.DataFrame, *, stage: str = "backbone", hue: str | None = "backbone",
                            metrics: Sequence[str] = ("mean_cosine", "effective_rank_ratio", "collapse_ratio"),
                            title: str | None = None) -> Figure:
    """Side-by-side panels, one per metric, across pyramid levels (the notebook's headline figure)."""
    _require(summary, ["level", *metrics], "plot_diversity_overview")
    sub = _select(summary, stage, "plot_diversity_overview")
    fig = new_figure(figsize=(4.2 * len(metrics), 3.8))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        _line_by(ax, sub, "level", metric, hue)
        ax.set_xlabel(f"pyramid level ({stage})")
        ax.set_xticks(sorted(sub["level"].unique()))
    axes[0].legend(title=hue)
    fig.suptitle(title or f"Feature diversity per pyramid level ({stage} outputs, valid steps only)")
    return fig


def plot_diversity_by_layer(summary: pd.DataFrame, metric: str = "mean_cosine", *, hue: str | None = "backbone",
                            title: str | None = None) -> Figure:
    """One metric across backbone blocks in forward order (x labelled by block name)."""
    _require(summary, ["layer", "order", metric], "plot_diversity_by_layer")
    sub = _select(summary, "layer", "plot_diversity_by_layer").copy()
    # Blocks of different backbones have different names: use the position within each run.
    sub["block"] = sub.groupby(hue if hue in sub.columns else "stage")["order"].rank(method="dense").astype(int) - 1
    fig = new_figure(figsize=(7, 4))
    ax = fig.add_subplot()
    _line_by(ax, sub, "block", metric, hue)
    names = sub.drop_duplicates("block").sort_values("block")
    ax.set_xticks(names["block"].to_numpy(), names["layer"].tolist(), rotation=45, ha="right")
    ax.set_xlabel("backbone block (forward order)")
    ax.set_title(title or f"{METRIC_LABELS.get(metric, metric)} per backbone block")
    ax.legend(title=hue)
    return fig


def plot_diversity_over_epochs(summary: pd.DataFrame, metric: str = "mean_cosine", *, stage: str = "backbone",
                               hue: str | None = "backbone", levels: Sequence[int] | None = None,
                               epoch: str = "epoch", title: str | None = None) -> Figure:
    """One metric against training epoch, one panel per pyramid level, one line per hue."""
    _require(summary, ["level", epoch, metric], "plot_diversity_over_epochs")
    sub = _select(summary, stage, "plot_diversity_over_epochs")
    levels = sorted(sub["level"].unique()) if levels is None else list(levels)
    cols = min(3, len(levels))
    rows = int(np.ceil(len(levels) / cols))
    fig = new_figure(figsize=(4 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, level in zip(axes, levels):
        _line_by(ax, sub[sub["level"] == level], epoch, metric, hue)
        ax.set_title(f"level {level}")
        ax.set_xlabel(epoch)
    for ax in axes[len(levels):]:
        ax.set_visible(False)
    axes[0].legend(title=hue)
    fig.suptitle(title or f"{METRIC_LABELS.get(metric, metric)} over training ({stage})")
    return fig


def plot_cosine_to_mean(steps: pd.DataFrame, *, stage: str = "backbone", hue: str | None = "backbone",
                        title: str | None = None) -> Figure:
    """Distribution per pyramid level of each step's cosine to its level's temporal mean.

    Box plots (median, quartiles, 5-95 % whiskers) grouped by level, one colour per ``hue``
    group: the figure TriDet's paper uses to show self-attention features crowding near 1.
    """
    _require(steps, ["level", "cos_to_mean"], "plot_cosine_to_mean")
    sub = _select(steps, stage, "plot_cosine_to_mean")
    groups = _groups(sub, hue)
    levels = sorted(sub["level"].unique())
    width = 0.8 / len(groups)
    fig = new_figure(figsize=(max(6, 1.2 * len(levels) * max(1, len(groups) / 2)), 4))
    ax = fig.add_subplot()
    colours = [f"C{i}" for i in range(len(groups))]
    for g, ((label, frame), colour) in enumerate(zip(groups, colours)):
        data = [frame.loc[frame["level"] == lv, "cos_to_mean"].dropna().to_numpy() for lv in levels]
        keep = [i for i, d in enumerate(data) if d.size]
        positions = [levels.index(levels[i]) + (g - (len(groups) - 1) / 2) * width for i in keep]
        parts = ax.boxplot([data[i] for i in keep], positions=positions, widths=width * 0.9,
                           whis=(5, 95), showfliers=False, patch_artist=True)
        for box in parts["boxes"]:
            box.set_facecolor(colour)
            box.set_alpha(0.6)
        ax.plot([], [], color=colour, linewidth=8, alpha=0.6, label=label)  # legend handle
    ax.set_xticks(range(len(levels)), [str(lv) for lv in levels])
    ax.set_xlabel(f"pyramid level ({stage} output)")
    ax.set_ylabel(METRIC_LABELS["cos_to_mean"])
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title=hue)
    ax.set_title(title or "Cosine similarity of each step to the level's temporal mean")
    return fig
