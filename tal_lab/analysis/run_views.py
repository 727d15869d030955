"""Views of one run for the notebooks: training curve, mAP table, ground truth, and the explorer.

The notebooks hold no function definitions; what they show of a run comes from here:

* :func:`plot_training_curve`: losses per iteration (smoothed) and mAP at evaluated epochs.
* :func:`map_table`: the run's final mAP per tIoU and the average, as a
  :class:`~tal_lab.analysis.study_table.StudyTable` (CSV / Markdown / LaTeX).
* :func:`split_ground_truth`: the ground truth of a run's evaluation or training split.
* :class:`RunExplorer`: ipywidgets to pick a run and videos, move the score and tIoU
  thresholds and filter classes; the timeline and the per-class AP update. Without a front end
  (papermill) it still builds the widgets, and :meth:`RunExplorer.render` gives one static state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import ipywidgets as w
import pandas as pd
from IPython.display import display
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tal_lab.analysis.figure import new_figure
from tal_lab.analysis.study_table import StudyTable
from tal_lab.analysis.timelines import plot_timelines
from tal_lab.config import PAPER_CONFIGURATIONS
from tal_lab.engine import evaluate
from tal_lab.evaluation import mean_average_precision, read_ground_truth_json
from tal_lab.runs import load_run, load_runs

__all__ = ["plot_training_curve", "map_table", "run_summary", "split_ground_truth", "class_names",
           "busiest_videos", "run_detections", "pick_runs", "at_last_epoch", "best_pair", "plot_class_ap",
           "ExplorerPanel", "PANEL_TEXT", "RunExplorer"]

# Iterations averaged in the plotted loss curve (the raw per-iteration loss is noisy).
LOSS_SMOOTHING_ITERS = 10
# Table IV's (backbone, neck) when no Table I run has a result: the paper's best, E.
PAPER_BEST_PAIR: tuple[str, str] = (PAPER_CONFIGURATIONS["E"]["backbone_type"], PAPER_CONFIGURATIONS["E"]["fpn_type"])


def plot_training_curve(run: Any, title: str | None = None) -> Figure:
    """Loss per iteration (raw and smoothed, x in epochs) and mAP at each evaluated epoch, on one
    shared epoch axis with whole-epoch ticks.

    Args:
        run: a :class:`tal_lab.runs.Run` (``metrics`` and ``epochs`` frames).

    Raises:
        ValueError: the run has no logged iteration yet.
    """
    metrics, epochs = run.metrics, run.epochs
    if metrics.empty:
        raise ValueError(f"run {run.name} has no logged iterations (metrics.jsonl is empty)")
    fig = new_figure(figsize=(11, 3.6))
    # one epoch axis for both panels: an evaluation sits under the loss of the epoch it followed (a run
    # evaluated only at its end showed its points alone on an axis from 13.4 to 14.6)
    ax_loss, ax_map = fig.subplots(1, 2, sharex=True)
    ax_loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    iters = metrics.groupby("epoch")["iter"].transform("max")
    x = (metrics["epoch"] - 1) + metrics["iter"] / iters  # fractional epoch of each iteration
    for column, colour in (("final_loss", "black"), ("cls_loss", "tab:blue"), ("reg_loss", "tab:orange")):
        if column in metrics:
            ax_loss.plot(x, metrics[column], color=colour, alpha=0.2, linewidth=0.8)
            ax_loss.plot(x, metrics[column].rolling(LOSS_SMOOTHING_ITERS, min_periods=1).mean(), color=colour,
                         label=column)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="training loss")
    ax_loss.legend(frameon=False)
    evaluated = epochs.dropna(subset=["avg_mAP"]) if "avg_mAP" in epochs else epochs.iloc[:0]
    if len(evaluated):
        for column in [c for c in evaluated.columns if c.startswith("mAP@")] + ["avg_mAP"]:
            style = {"color": "black", "linewidth": 2} if column == "avg_mAP" else {"alpha": 0.7}
            ax_map.plot(evaluated["epoch"], evaluated[column], marker="o", label=column, **style)
        ax_map.legend(frameon=False, fontsize=8)
    else:
        ax_map.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ax_map.transAxes)
    ax_map.set(xlabel="epoch", ylabel="mAP (%)", title="mAP at evaluated epochs")
    fig.suptitle(title or run.name, fontsize=10)
    return fig


def map_table(run: Any) -> StudyTable:
    """The run's final mAP (percent) per tIoU threshold and their average, with a caption.

    Raises:
        ValueError: the run has no results yet.
    """
    results = run.results
    if not results:
        raise ValueError(f"run {run.name} has no results.json yet (not finished)")
    columns = [f"mAP@{t:g}" for t in results["tiou_thresholds"]] + ["avg_mAP"]
    values = [100.0 * v for v in results["mAP"]] + [100.0 * results["average_mAP"]]
    frame = pd.DataFrame([[run.name, *values]], columns=["run", *columns])
    display = pd.DataFrame([[run.name, *[f"{v:.2f}" for v in values]]], columns=["run", *columns])
    info = run.info
    data = info.get("dataset") or {}
    source = (f"synthetic '{data.get('preset')}' benchmark (data seed {data.get('seed')})"
              if data.get("kind") == "synthetic" else f"{data.get('name')} features in {data.get('feat_folder')}")
    amp = info.get("amp", "none")
    precision = f"{amp} autocast, " if amp != "none" else ""  # fp32 (the reference precision) goes unsaid
    caption = (f"mAP (%) of {info.get('backbone_type')} / {info.get('fpn_type')} / {info.get('head_type')}, "
               f"λ_reg {info.get('loss_weight')}, {info.get('epochs')} epochs, seed {info.get('seed')}, "
               f"{precision}{results.get('weights')} weights of epoch {results.get('checkpoint_epoch')}, on the "
               f"{source}, {results.get('num_videos')} evaluation videos.")
    return StudyTable("map", "mAP", frame, caption, display=display)


def run_summary(run: Any) -> dict[str, Any]:
    """A run's identity and final numbers (mAP in percent), for a notebook's summary.json."""
    results = run.results or {}
    maps = {f"mAP@{t:g}": 100.0 * v for t, v in zip(results.get("tiou_thresholds", []), results.get("mAP", []))}
    return {"run": run.name, "path": str(run.path), "status": run.info.get("status"),
            "backbone": run.info.get("backbone_type"), "neck": run.info.get("fpn_type"),
            "head": run.info.get("head_type"), "loss_weight": run.info.get("loss_weight"),
            "epochs": run.info.get("epochs"), "seed": run.info.get("seed"), "amp": run.info.get("amp", "none"),
            "dataset": run.info.get("dataset"),
            **maps, "avg_mAP": 100.0 * results["average_mAP"] if "average_mAP" in results else None,
            "weights": results.get("weights"), "checkpoint_epoch": results.get("checkpoint_epoch")}


def split_ground_truth(cfg: Mapping[str, Any], split: str = "test") -> pd.DataFrame:
    """Ground truth (video-id, t-start, t-end, label id) of a config's evaluation ('test') or
    training ('train') split, read from its annotation JSON as the evaluator reads it.

    Raises:
        ValueError: ``split`` is not 'test' or 'train', or the annotation file is missing.
    """
    if split not in ("test", "train"):
        raise ValueError(f"split={split!r} is not valid; choose test | train")
    json_file = cfg["dataset"].get("json_file")
    if not json_file or not Path(str(json_file)).is_file():
        raise ValueError(f"annotation file {json_file!r} of the run's config does not exist")
    subsets = cfg["val_split"] if split == "test" else cfg["train_split"]
    return pd.concat([read_ground_truth_json(json_file, subset=s) for s in subsets], ignore_index=True)


def class_names(cfg: Mapping[str, Any]) -> dict[int, str]:
    """Label id -> class name, from the annotations of the config's JSON (empty when unreadable;
    ids without an annotation are absent, e.g. in a small synthetic benchmark)."""
    try:
        database = json.loads(Path(str(cfg["dataset"]["json_file"])).read_text())["database"]
        return dict(sorted({int(a["label_id"]): str(a["label"]) for video in database.values()
                            for a in video.get("annotations", [])}.items()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def busiest_videos(gt: pd.DataFrame, count: int) -> list[str]:
    """The ``count`` videos with most ground-truth instances (ties: by id)."""
    sizes = gt.groupby("video-id").size().reset_index(name="n").sort_values(["n", "video-id"],
                                                                             ascending=[False, True])
    return sizes["video-id"].head(count).tolist()


def run_detections(run: Any, split: str = "test", device: str = "auto") -> pd.DataFrame:
    """Detections of a run on its evaluation split (saved ones) or its training split (computed
    now with the run's checkpoint and evaluated weights)."""
    if split == "test":
        return run.detections
    if split != "train":
        raise ValueError(f"split={split!r} is not valid; choose test | train")
    if run.checkpoint is None:
        raise ValueError(f"run {run.name} has no checkpoint to run on the training split")
    weights = (run.results or {}).get("weights") or "ema"
    result = evaluate(run.config, run.checkpoint, weights=weights, progress=False,
                      overrides={"val_split": list(run.config["train_split"]), "engine": {"device": device}})
    return result.detections


def pick_runs(runs_root: str | Path, names: Sequence[str] = (), data_tag: str = "", one_per: str | None = None,
              limit: int | None = None) -> list[Path]:
    """Finished runs (:func:`tal_lab.runs.run_status`) of a store: the ``names`` given (each
    must exist), else those whose name starts with ``data_tag``, best average mAP first,
    optionally one per value of a ``load_runs`` column (``one_per='backbone'``: the best run of
    each backbone).

    Raises:
        ValueError: a named run is missing or unfinished, or nothing is left to show.
    """
    root = Path(runs_root)
    table = load_runs(root)
    finished = table[table["status"] == "finished"]
    if names:
        missing = [n for n in names if n not in set(finished["name"])]
        if missing:
            raise ValueError(f"runs {missing} are not finished runs of {root}; have {finished['name'].tolist()}")
        return [root / n for n in names]
    chosen = finished[finished["name"].str.startswith(data_tag)] if data_tag and len(finished) else finished
    chosen = chosen.sort_values(["avg_mAP", "name"], ascending=[False, True])
    if one_per:
        chosen = chosen.drop_duplicates(one_per, keep="first")
    if limit is not None:
        chosen = chosen.head(limit)
    if chosen.empty:
        raise ValueError(f"no finished run{f' named {data_tag}*' if data_tag else ''} in {root}; "
                         f"train one first (run_ablation.ipynb or tal-lab study)")
    return [Path(p) for p in chosen["path"]]


def at_last_epoch(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's last epoch (``run`` and ``epoch`` columns, as the diversity probe
    labels them)."""
    return frame[frame["epoch"] == frame.groupby("run")["epoch"].transform("max")]


def best_pair(table1_frame: pd.DataFrame, default: tuple[str, str] = PAPER_BEST_PAIR) -> tuple[str, str]:
    """The (backbone, neck) pair with the highest mean average mAP: Table IV's configuration.

    ``table1_frame`` has ``backbone``, ``neck`` and ``avg_mAP`` columns: Table I's frame (one
    row per configuration, already a mean over seeds) or one row per run (the study runner);
    each pair scores the mean of its rows, rows without ``avg_mAP`` left out.

    Tie-break (equal means): ``default`` (the paper's best, E) when it is among the best, else
    the best pair whose first row comes first in the frame (Table I's row order). ``default``
    when no row has a result.
    """
    rows = table1_frame.dropna(subset=["avg_mAP"])
    if rows.empty:
        return default
    means = rows.groupby(["backbone", "neck"], sort=False)["avg_mAP"].mean()
    best = [(str(backbone), str(neck)) for backbone, neck in means.index[means == means.max()]]
    return default if default in best else best[0]


def plot_class_ap(per_class: pd.DataFrame, tiou: float, title: str = "") -> Figure:
    """Horizontal bars of AP (%) per class at one threshold (classes without GT left out)."""
    column = f"AP@{tiou:.2f}"
    shown = per_class[per_class["num_gt"] > 0].sort_values(column)
    fig = new_figure(figsize=(6, 0.25 * max(4, len(shown)) + 1.0))
    ax = fig.subplots()
    ax.barh([str(c) for c in shown.index], shown[column].fillna(0.0), color="tab:blue")
    ax.set(xlabel=f"AP (%) at tIoU {tiou:g}", xlim=(0, 100), title=title or f"per-class AP at tIoU {tiou:g}")
    return fig


# What an explorer panel's output reads as where no live kernel draws it.
PANEL_TEXT = ("Interactive explorer (run, videos, score, tIoU, time view, classes): its controls work while the "
              "notebook's kernel runs; run the notebook (Run > Run All Cells) to use them.")


class ExplorerPanel(w.VBox):
    """The explorer's controls and output area: an ipywidgets ``VBox`` whose plain-text form says
    what it is.

    JupyterLab draws a widget from its live kernel. Opened later (an executed copy, without a
    kernel holding the widget), the output falls back to its ``text/plain``, which for a ``VBox``
    is a truncated ``VBox(children=(Dropdown(...`` repr; this one says how to get the controls.
    """

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = PANEL_TEXT
        return bundle


class RunExplorer:
    """Interactive view of the runs in a store: run, videos, score / tIoU thresholds, classes.

    Args:
        runs_root: the run store.
        run: a run name; '' takes the finished run with the best average mAP.
        data_tag: only runs whose name starts with it (e.g. 'synthetic-quick').
        videos: initial video ids; empty takes the ``num_videos`` with most ground truth.
    """

    def __init__(self, runs_root: str | Path, run: str = "", videos: Sequence[str] = (), score_threshold: float = 0.3,
                 tiou: float = 0.5, classes: Sequence[str] = (), num_videos: int = 3, data_tag: str = "") -> None:
        self.root = Path(runs_root)
        table = load_runs(self.root)
        finished = table[table["status"] == "finished"]
        if data_tag and len(finished):  # an empty store's name column is not a string column
            finished = finished[finished["name"].str.startswith(data_tag)]
        if finished.empty:
            raise ValueError(f"no finished run{f' named {data_tag}*' if data_tag else ''} in {self.root}; train one "
                             f"first (run_ablation.ipynb)")
        self.run_names = finished.sort_values("avg_mAP", ascending=False)["name"].tolist()
        if run and run not in self.run_names:
            raise ValueError(f"run {run!r} is not a finished run in {self.root}; have {self.run_names}")
        if not 0 < tiou <= 1 or not 0 <= score_threshold <= 1:
            raise ValueError(f"tiou={tiou!r} must lie in (0, 1] and score_threshold={score_threshold!r} in [0, 1]")
        self.num_videos = num_videos
        self.state: dict[str, Any] = {"score_threshold": float(score_threshold), "tiou": float(tiou),
                                      "view": (0.0, 1.0)}
        self._load(run or self.run_names[0])
        unknown = [v for v in videos if v not in self.video_ids]
        if unknown:
            raise ValueError(f"videos {unknown} are not in the evaluation split of {self.run.name}")
        missing = [c for c in classes if c not in self.names.values()]
        if missing:
            raise ValueError(f"classes {missing} are unknown; known: {sorted(self.names.values())}")
        self.state["videos"] = list(videos) or self.default_videos()
        self.state["classes"] = list(classes)
        self._widgets: Any = None

    def _load(self, name: str) -> None:
        self.run = load_run(self.root / name)
        self.gt = split_ground_truth(self.run.config, "test")
        self.names = class_names(self.run.config)
        counts = self.gt.groupby("video-id").size().sort_values(ascending=False, kind="stable")
        self.video_ids = counts.index.tolist()

    def default_videos(self) -> list[str]:
        """The videos with most ground-truth instances."""
        return self.video_ids[:self.num_videos]

    def _label_ids(self, classes: Sequence[str]) -> list[int]:
        by_name = {n: i for i, n in self.names.items()}
        return [by_name[c] for c in classes]

    def render(self) -> tuple[Figure, Figure, pd.DataFrame]:
        """The current state: timeline figure, per-class AP figure and the per-class AP table."""
        s = self.state
        preds = self.run.detections[self.run.detections["score"] >= s["score_threshold"]]
        gt = self.gt
        # every class of the dataset is in the label space (AP NaN without ground truth)
        labels = sorted(set(self.names) | set(gt["label"]) | set(preds["label"]))
        if s["classes"]:
            labels = self._label_ids(s["classes"])
            preds, gt = preds[preds["label"].isin(labels)], gt[gt["label"].isin(labels)]
        in_videos = pd.concat([gt[gt["video-id"].isin(s["videos"])]["label"],
                               preds[preds["video-id"].isin(s["videos"])]["label"]])
        timeline = plot_timelines(self.gt, self.run.detections, s["videos"], tiou=s["tiou"],
                                  score_threshold=s["score_threshold"], class_names=self.names or None,
                                  # a chosen class absent from these videos leaves their lanes empty
                                  classes=[c for c in labels if c in set(in_videos)] if s["classes"] else None,
                                  title=f"{self.run.name}: score >= {s['score_threshold']:g}, tIoU {s['tiou']:g}",
                                  view=s["view"])
        result = mean_average_precision(gt, preds[["video-id", "t-start", "t-end", "label", "score"]], [s["tiou"]],
                                        labels=labels)
        names = [self.names.get(int(label), str(label)) for label in result.labels]
        per_class = result.per_class_frame(class_names=names)
        ap = plot_class_ap(per_class, s["tiou"], title=f"per-class AP at tIoU {s['tiou']:g}, score >= "
                                                       f"{s['score_threshold']:g} (mAP {100 * result.average_mAP:.1f}%)")
        return timeline, ap, per_class

    def widgets(self) -> Any:
        """The control panel and output area (ipywidgets); changing a control redraws in place.

        One redraw per change: a new run sets the video list while redraws are held, then
        draws once. The figures replace the previous ones in the same Output (``wait=True``
        keeps the old image until the new one is ready, so nothing flickers).
        """
        wide = {"layout": w.Layout(width="98%"), "style": {"description_width": "6em"}}
        run = w.Dropdown(options=self.run_names, value=self.run.name, description="run", **wide)
        videos = w.SelectMultiple(options=self.video_ids, value=tuple(self.state["videos"]), rows=6,
                                  description="videos", layout=w.Layout(width="auto", min_width="16em"))
        score = w.FloatSlider(value=self.state["score_threshold"], min=0.0, max=1.0, step=0.01,
                              description="score ≥", continuous_update=False)
        tiou = w.FloatSlider(value=self.state["tiou"], min=0.1, max=0.95, step=0.05, description="tIoU",
                             continuous_update=False)
        view = w.FloatRangeSlider(value=self.state["view"], min=0.0, max=1.0, step=0.01,
                                  description="time view", readout_format=".0%", continuous_update=False)
        classes = w.SelectMultiple(options=sorted(self.names.values()), value=tuple(self.state["classes"]), rows=6,
                                   description="classes", layout=w.Layout(width="auto", min_width="14em"))
        out = w.Output()
        holding = False  # set while a run change resets the video list: one redraw after it

        def on_run(change: Mapping[str, Any]) -> None:
            nonlocal holding
            holding = True
            try:
                self._load(change["new"])
                videos.options = self.video_ids
                videos.value = tuple(self.default_videos())
            finally:
                holding = False
            on_change()

        def on_change(_: Any = None) -> None:
            if holding:
                return
            self.state.update(videos=list(videos.value) or self.default_videos(), score_threshold=score.value,
                              tiou=tiou.value, classes=list(classes.value), view=tuple(view.value))
            self.show(out)

        run.observe(on_run, names="value")
        for control in (videos, score, tiou, view, classes):
            control.observe(on_change, names="value")
        self._widgets = ExplorerPanel([run, w.HBox([w.VBox([score, tiou, view]), videos, classes]), out])
        on_change()
        return self._widgets

    def show(self, out: Any = None) -> None:
        """Render the current state into ``out`` (an ipywidgets Output) or the cell's output."""
        timeline, ap, _ = self.render()
        if out is None:
            display(timeline, ap)
            return
        with out:
            out.clear_output(wait=True)
            display(timeline, ap)

    def describe(self) -> str:
        """The current state in one line (for saved reports)."""
        s = self.state
        return (f"run {self.run.name}; videos {', '.join(s['videos'])}; score >= {s['score_threshold']:g}; "
                f"tIoU {s['tiou']:g}; classes {', '.join(s['classes']) or 'all'}")
