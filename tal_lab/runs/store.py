"""The run store: one folder per training run, and readers that turn a folder of runs into tables.

Layout of ``{output_root}/{run_name}/`` (see docs/engine.md for every field):

* ``config.yaml``: the resolved config (what was trained, loadable with ``load_config``);
* ``run.json``: identity and status (run_id, name, created, status, seed, dataset identity,
  backbone / neck / head, loss_weight, epochs, versions, git commit, device, num_params);
* ``metrics.jsonl``: one line per training iteration (epoch, iter, step, lr, losses, seconds);
* ``epochs.jsonl``: one line per epoch (train-loss means, seconds, and ``eval`` at the listed
  epochs and the last one);
* ``results.json``: the final evaluation (mAP per tIoU as fractions, average, per-class AP,
  weights, checkpoint epoch, timings);
* ``detections.csv``: video-id, t-start, t-end, label, score;
* ``checkpoints/last.pt`` (+ ``epoch_XXX.pt`` at evaluated epochs, weights only).

Every JSON / CSV / YAML file is written atomically (temporary file, then ``os.replace``).
:func:`run_status` is the one definition of a finished run; :func:`load_runs` gives one pandas
row per run (mAP in percent, ``status`` from :func:`run_status`), so every table is a groupby.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from tal_lab.core.atomic_io import read_jsonl

__all__ = [
    "RUN_FILES",
    "RUN_STATUSES",
    "STANDARD_TIOUS",
    "default_run_name",
    "dataset_identity",
    "map_column",
    "run_status",
    "Run",
    "load_run",
    "load_runs",
    "load_epoch_evals",
    "find_run_dirs",
]

# The run store every command, notebook and the study use unless told otherwise (relative to
# the working directory). ActionFormer's `output_folder` key is read but not used for it.
DEFAULT_RUN_STORE = "runs"

RUN_FILES = {
    "config": "config.yaml",
    "info": "run.json",
    "metrics": "metrics.jsonl",
    "epochs": "epochs.jsonl",
    "results": "results.json",
    "detections": "detections.csv",
    "checkpoint": "checkpoints/last.pt",
}

# What run_status answers. 'running' covers a run training now and one stopped before its end
# (killed, or stop_after_epochs): the run store cannot tell them apart, and both resume.
RUN_STATUSES = ("finished", "running", "failed", "missing")

# THUMOS14's thresholds: load_runs always has these columns (NaN where a run lacks one).
STANDARD_TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)

_IDENTITY_COLUMNS = ["run_id", "name", "path", "status", "dataset", "data_kind", "data_preset", "data_seed",
                     "seed", "backbone", "neck", "head", "loss_weight", "epochs"]


# --------------------------------------------------------------------------------------------
# run identity


def dataset_identity(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What data a run used: synthetic preset and seed, or the real feature folder and JSON."""
    ds = cfg["dataset"]
    name = cfg["dataset_name"]
    if name == "synthetic":
        syn = ds.get("synthetic", {})
        return {"name": name, "kind": "synthetic", "preset": syn.get("preset"), "seed": syn.get("seed"),
                "knobs": dict(syn.get("knobs") or {}), "feat_folder": ds.get("feat_folder"),
                "json_file": ds.get("json_file")}
    return {"name": name, "kind": "real", "preset": None, "seed": None, "knobs": {},
            "feat_folder": ds.get("feat_folder"), "json_file": ds.get("json_file")}


def default_run_name(cfg: Mapping[str, Any]) -> str:
    """``{dataset}-{backbone}-{neck}-{head}-lw{loss_weight}-e{epochs}-s{seed}``.

    ``dataset`` is ``synthetic-{preset}`` for the synthetic benchmark, else ``dataset_name``;
    ``loss_weight`` is printed in its shortest form (``lw1``, ``lw0.2``; ``lwadaptive``).
    """
    ident = dataset_identity(cfg)
    dataset = f"synthetic-{ident['preset']}" if ident["kind"] == "synthetic" else cfg["dataset_name"]
    model = cfg["model"]
    return (f"{dataset}-{model['backbone_type']}-{model['fpn_type']}-{model['head_type']}"
            f"-lw{_loss_weight_tag(cfg['train_cfg']['loss_weight'])}-e{cfg['opt']['epochs']}-s{cfg['init_rand_seed']}")


def _loss_weight_tag(value: Any) -> str:
    return f"{float(value):g}" if isinstance(value, (int, float)) else str(value)


def _loss_weight_column(value: Any) -> float:
    """The numeric λ_reg of a run, NaN for the adaptive weight ('adaptive' in run.json): the
    tables select and sort runs by their fixed λ_reg."""
    return float(value) if isinstance(value, (int, float)) else math.nan


def map_column(tiou: float) -> str:
    """Column name of the mAP at one tIoU threshold: ``mAP@0.5``."""
    return f"mAP@{float(tiou):g}"


# --------------------------------------------------------------------------------------------
# run status


def _read_info(path: Path) -> dict[str, Any]:
    """run.json of the run folder ``path``.

    Raises:
        ValueError: run.json is not valid JSON (names the file).
    """
    info_path = path / RUN_FILES["info"]
    try:
        return json.loads(info_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{info_path}: not valid JSON ({err})") from err


def _status_of(path: Path, info: Mapping[str, Any]) -> str:
    if info.get("status") == "finished" and (path / RUN_FILES["results"]).is_file():
        return "finished"
    return "failed" if info.get("status") == "failed" else "running"


def run_status(path: str | Path) -> str:
    """Where the run in folder ``path`` stands: one of :data:`RUN_STATUSES`.

    * 'missing': no run.json (no run was started there);
    * 'finished': run.json says finished and results.json exists (the engine writes results
      before it marks the run finished, so a run killed in between is not finished);
    * 'failed': run.json says failed (an exception stopped training);
    * 'running': anything else: training now, or stopped before the end; ``train(...,
      resume=True)`` continues it.

    The engine skips finished runs on resume, the study skips them, and the tables and views
    show only them.

    Raises:
        ValueError: run.json is not valid JSON.
    """
    path = Path(path)
    if not (path / RUN_FILES["info"]).is_file():
        return "missing"
    return _status_of(path, _read_info(path))


# --------------------------------------------------------------------------------------------
# readers


@dataclass
class Run:
    """Everything one run folder holds, read into Python / pandas.

    Attributes:
        path: the run folder.
        config: the resolved config (dict, as in config.yaml).
        info: run.json.
        metrics: metrics.jsonl as a DataFrame (one row per iteration; empty if absent).
        epochs: epochs.jsonl flattened (one row per epoch; eval columns NaN where not evaluated).
        results: results.json (empty dict until the run finishes).
        detections: detections.csv (empty DataFrame until the run finishes).
        checkpoint: path of checkpoints/last.pt, or None.
    """

    path: Path
    config: dict[str, Any]
    info: dict[str, Any]
    metrics: pd.DataFrame
    epochs: pd.DataFrame
    results: dict[str, Any] = field(default_factory=dict)
    detections: pd.DataFrame = field(default_factory=pd.DataFrame)
    checkpoint: Path | None = None

    @property
    def name(self) -> str:
        return str(self.info.get("name", self.path.name))


def _flatten_epoch(record: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": record.get("epoch"), "seconds": record.get("seconds"),
                           "iters": record.get("iters"), "lr": record.get("lr")}
    for key, value in (record.get("train") or {}).items():
        row[f"train_{key}"] = value
    evaluation = record.get("eval")
    if evaluation:
        for tiou, value in zip(evaluation["tiou_thresholds"], evaluation["mAP"]):
            row[map_column(tiou)] = 100.0 * value
        row["avg_mAP"] = 100.0 * evaluation["average_mAP"]
        row["weights"] = evaluation.get("weights")
        row["eval_seconds"] = evaluation.get("seconds")
    return row


def load_run(path: str | Path) -> Run:
    """Read one run folder (a missing run.json is an error; other missing files read empty).

    Raises:
        FileNotFoundError: ``path`` has no run.json.
    """
    path = Path(path)
    if not (path / RUN_FILES["info"]).is_file():
        raise FileNotFoundError(f"{path} is not a tal_lab run folder (no {RUN_FILES['info']})")
    info = _read_info(path)
    cfg_path = path / RUN_FILES["config"]
    config = yaml.safe_load(cfg_path.read_text()) if cfg_path.is_file() else {}
    metrics = pd.DataFrame(read_jsonl(path / RUN_FILES["metrics"]))
    epochs = pd.DataFrame([_flatten_epoch(r) for r in read_jsonl(path / RUN_FILES["epochs"])])
    results_path = path / RUN_FILES["results"]
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    det_path = path / RUN_FILES["detections"]
    detections = pd.read_csv(det_path) if det_path.is_file() else pd.DataFrame(
        columns=["video-id", "t-start", "t-end", "label", "score"])
    ckpt = path / RUN_FILES["checkpoint"]
    return Run(path=path, config=config, info=info, metrics=metrics, epochs=epochs, results=results,
               detections=detections, checkpoint=ckpt if ckpt.is_file() else None)


def find_run_dirs(root: str | Path) -> list[Path]:
    """Run folders directly under ``root`` (those holding a run.json), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / RUN_FILES["info"]).is_file())


def _identity_row(path: Path, info: Mapping[str, Any]) -> dict[str, Any]:
    data = info.get("dataset") or {}
    return {
        "run_id": info.get("run_id"), "name": info.get("name"), "path": str(path), "status": _status_of(path, info),
        "dataset": data.get("name"), "data_kind": data.get("kind"), "data_preset": data.get("preset"),
        "data_seed": data.get("seed"), "seed": info.get("seed"), "backbone": info.get("backbone_type"),
        "neck": info.get("fpn_type"), "head": info.get("head_type"),
        "loss_weight": _loss_weight_column(info.get("loss_weight")),
        "epochs": info.get("epochs"),
    }


def load_runs(root: str | Path) -> pd.DataFrame:
    """One row per run under ``root``: identity, final mAP (percent), timings, provenance.

    Columns (always present): run_id, name, path, status (:func:`run_status`), dataset,
    data_kind, data_preset,
    data_seed, seed, backbone, neck, head, loss_weight, epochs, total_epochs, mAP@0.3 ...
    mAP@0.7 (percent; NaN until finished), avg_mAP (percent), weights, checkpoint_epoch,
    params, sec_per_epoch, train_seconds, eval_seconds, sec_per_video, device, machine (the
    processor and CPU count, or the GPU, that last trained it: :func:`tal_lab.core.machine.machine_of`;
    None in runs older than that record), amp (the
    autocast the run trained and evaluated under: 'none' for float32, 'bf16', 'fp16'; None in
    runs older than that record), created, finished, git_commit, version, error. Runs
    evaluated at other thresholds get a column per threshold too.
    """
    rows = []
    for path in find_run_dirs(root):
        info = _read_info(path)
        row = _identity_row(path, info)
        row.update({map_column(t): math.nan for t in STANDARD_TIOUS})
        row.update({"avg_mAP": math.nan, "weights": None, "checkpoint_epoch": None, "sec_per_epoch": math.nan,
                    "train_seconds": math.nan, "eval_seconds": math.nan, "sec_per_video": math.nan})
        results_path = path / RUN_FILES["results"]
        if results_path.is_file():
            results = json.loads(results_path.read_text())
            for tiou, value in zip(results["tiou_thresholds"], results["mAP"]):
                row[map_column(tiou)] = 100.0 * value
            timings = results.get("timings", {})
            row.update({
                "avg_mAP": 100.0 * results["average_mAP"], "weights": results.get("weights"),
                "checkpoint_epoch": results.get("checkpoint_epoch"),
                "sec_per_epoch": timings.get("seconds_per_epoch", math.nan),
                "train_seconds": timings.get("train_seconds", math.nan),
                "eval_seconds": timings.get("eval_seconds", math.nan),
                "sec_per_video": timings.get("seconds_per_video", math.nan),
            })
        row.update({
            "total_epochs": info.get("total_epochs"), "params": info.get("num_params"),
            "device": info.get("device"), "machine": info.get("machine"), "amp": info.get("amp"),
            "created": info.get("created"),
            "finished": info.get("finished"), "git_commit": info.get("git_commit"), "version": info.get("tal_lab_version"),
            "error": info.get("error"),
        })
        rows.append(row)
    columns = (_IDENTITY_COLUMNS + ["total_epochs"] + [map_column(t) for t in STANDARD_TIOUS]
               + ["avg_mAP", "weights", "checkpoint_epoch", "params", "sec_per_epoch", "train_seconds",
                  "eval_seconds", "sec_per_video", "device", "machine", "amp", "created", "finished", "git_commit",
                  "version", "error"])
    frame = pd.DataFrame(rows)
    extra = [c for c in frame.columns if c not in columns]
    return frame.reindex(columns=columns + extra)


def load_epoch_evals(root: str | Path) -> pd.DataFrame:
    """Every evaluation made during runs under ``root``: one row per (run, evaluated epoch).

    Columns: the identity columns of :func:`load_runs`, then epoch, mAP@... (percent),
    avg_mAP (percent), weights, eval_seconds, and the run's device, machine and amp (as in
    :func:`load_runs`: Table II's caption names them). The last epoch's row is the run's
    final evaluation, so Table II can come from one run evaluated at listed epochs.
    """
    rows = []
    for path in find_run_dirs(root):
        info = _read_info(path)
        ident = {**_identity_row(path, info), "device": info.get("device"), "machine": info.get("machine"),
                 "amp": info.get("amp")}
        for record in read_jsonl(path / RUN_FILES["epochs"]):
            if not record.get("eval"):
                continue
            flat = _flatten_epoch(record)
            row = dict(ident)
            row["epoch"] = flat["epoch"]
            row.update({k: v for k, v in flat.items() if k.startswith("mAP@")})
            row.update({"avg_mAP": flat["avg_mAP"], "weights": flat["weights"], "eval_seconds": flat["eval_seconds"]})
            rows.append(row)
    columns = _IDENTITY_COLUMNS + ["epoch"] + [map_column(t) for t in STANDARD_TIOUS] + [
        "avg_mAP", "weights", "eval_seconds", "device", "machine", "amp"]
    frame = pd.DataFrame(rows)
    extra = [c for c in frame.columns if c not in columns]
    return frame.reindex(columns=columns + extra)
