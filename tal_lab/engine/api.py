"""The engine's entry points: :func:`train`, :func:`evaluate`, :func:`detect`.

``train`` creates (or resumes) a run folder in the run store (``tal_lab.runs``), trains as
ActionFormer trains, evaluates after the last epoch and records everything there. ``evaluate``
scores a checkpoint on the evaluation split; ``detect`` runs a checkpoint on one video's
feature file.
"""

from __future__ import annotations

import datetime
import json
import logging
import platform
import subprocess
import uuid
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from tal_lab import __version__
from tal_lab.config import ADAPTIVE_LOSS_WEIGHT, dump_config, load_config
from tal_lab.core.atomic_io import write_csv_atomic, write_json_atomic
from tal_lab.core.autocast import effective_amp
from tal_lab.core.machine import machine_of
from tal_lab.data.errors import raise_errors
from tal_lab.data.features import read_features
from tal_lab.data.transforms import resize_features
from tal_lab.engine import components
from tal_lab.engine.checkpoints.official import load_checkpoint
from tal_lab.engine.checkpoints.training_state import load_training_checkpoint, previous_checkpoint_path
from tal_lab.engine.distributed import (
    DistContext, broadcast_object, init_distributed, resolve_device, shutdown_distributed)
from tal_lab.engine.evaluator import EvalResult, run_inference
from tal_lab.engine.optim import total_epochs
from tal_lab.engine.trainer import Trainer, evaluate_detector
from tal_lab.evaluation import read_class_names
from tal_lab.runs import DEFAULT_RUN_STORE, RUN_FILES, dataset_identity, default_run_name, run_status

__all__ = ["train", "evaluate", "detect", "load_weights", "git_commit", "finished_run_differences"]

log = logging.getLogger(__name__)

# Settings that change how a run is executed or displayed but not what it computes; a resumed
# run may change them.
_RESUMABLE_CHANGES = {"engine.progress", "engine.device", "engine.tensorboard", "engine.log_every",
                      "loader.num_workers", "devices", "output_folder", "train_cfg.head_empty_cls"}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """The commit of the checkout tal_lab runs from, or None (no git, not a checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def _flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, Mapping) and f"{prefix}{key}" != "dataset.synthetic.knobs":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _config_differences(stored: Mapping[str, Any], current: Mapping[str, Any],
                        ignored: frozenset[str] = frozenset()) -> list[str]:
    """``key: old -> new`` for every setting that differs, except those a resume may change
    and ``ignored``."""
    a, b = _flatten(stored), _flatten(current)
    # model.train_cfg / model.test_cfg are copies of the top-level sections.
    derived = ("model.train_cfg.", "model.test_cfg.")
    keys = sorted(k for k in (set(a) | set(b)) - _RESUMABLE_CHANGES - ignored if not k.startswith(derived))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def finished_run_differences(run_dir: str | Path, cfg: Mapping[str, Any]) -> list[str]:
    """How the config stored in a finished run folder differs from ``cfg`` (``key: stored ->
    given``), among the settings that change what the run computes: not those a resume may
    change, and not ``engine.eval_epochs`` (evaluating more or fewer epochs never changes the
    training: evaluation runs with every random generator restored). Empty: ``cfg`` would
    train this very run, so its results stand for it."""
    stored = load_config(Path(run_dir) / RUN_FILES["config"])
    return _config_differences(stored, cfg, frozenset({"engine.eval_epochs"}))


def _prepare_run_dir(run_dir: Path, cfg: dict[str, Any], resume: bool) -> str:
    """Decide what a train call does with its folder: 'fresh', 'resume', 'done' or 'error: ...'."""
    info_path = run_dir / RUN_FILES["info"]
    if not info_path.is_file():
        if run_dir.exists() and any(run_dir.iterdir()) and not resume:
            return f"error: {run_dir} exists and is not a tal_lab run folder; choose another run name"
        return "fresh"
    if not resume:
        return (f"error: run folder {run_dir} already exists; pass resume=True (tal-lab train --resume) to "
                f"continue or skip it, or choose another name (--name)")
    stored = load_config(run_dir / RUN_FILES["config"])
    diffs = _config_differences(stored, cfg)
    if diffs:
        return (f"error: cannot resume {run_dir}: the config differs from the stored one in "
                + "; ".join(diffs[:10]))
    if run_status(run_dir) == "finished":
        return "done"
    checkpoint = run_dir / RUN_FILES["checkpoint"]
    return "resume" if checkpoint.is_file() or previous_checkpoint_path(checkpoint).is_file() else "fresh"


def _loss_weight(value: Any) -> float | str:
    return ADAPTIVE_LOSS_WEIGHT if value == ADAPTIVE_LOSS_WEIGHT else float(value)


def _where_it_runs(ctx: DistContext) -> dict[str, Any]:
    """run.json's device, machine (in words) and torch threads: written at the start, rewritten on a resume."""
    return {"device": str(ctx.device), "machine": machine_of(ctx.device), "torch_threads": torch.get_num_threads()}


def _run_info(cfg: Mapping[str, Any], name: str, ctx: DistContext) -> dict[str, Any]:
    model = cfg["model"]
    return {
        "run_id": f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}",
        "name": name, "created": _now(), "finished": None, "status": "running", "error": None,
        "seed": int(cfg["init_rand_seed"]), "dataset": dataset_identity(cfg),
        "backbone_type": model["backbone_type"], "fpn_type": model["fpn_type"],
        "head_type": model["head_type"],
        "loss_weight": _loss_weight(cfg["train_cfg"]["loss_weight"]), "epochs": int(cfg["opt"]["epochs"]),
        "warmup_epochs": int(cfg["opt"]["warmup_epochs"]) if cfg["opt"]["warmup"] else 0,
        "total_epochs": total_epochs(cfg["opt"]), "eval_weights": cfg["engine"]["eval_weights"]
        if cfg["engine"]["ema"] else "model",
        "tal_lab_version": __version__, "git_commit": git_commit(), "torch_version": torch.__version__,
        "python_version": platform.python_version(), **_where_it_runs(ctx), "world_size": ctx.world_size,
        "amp": effective_amp(ctx.device.type, cfg["engine"]["amp"]), "num_params": None,
        "resumed": [],
    }


def _update_info(run_dir: Path, **changes: Any) -> dict[str, Any]:
    path = run_dir / RUN_FILES["info"]
    info = json.loads(path.read_text())
    info.update(changes)
    write_json_atomic(path, info)
    return info


def train(
    cfg: str | Path | Mapping[str, Any],
    output_root: str | Path | None = None,
    run_name: str | None = None,
    resume: bool = False,
    progress: bool | None = None,
    *,
    overrides: Any = None,
    stop_after_epochs: int | None = None,
) -> Path:
    """Train one configuration and record it in the run store; returns the run folder.

    Args:
        cfg: a config (YAML path, or dict in ActionFormer's schema; an official ActionFormer
            YAML works).
        output_root: the run store; default :data:`tal_lab.runs.DEFAULT_RUN_STORE` (``runs``),
            whatever the config's ``output_folder`` says, so every command shares one store.
        run_name: folder name; default ``{dataset}-{backbone}-{neck}-{head}-lw{lw}-e{epochs}-s{seed}``.
        resume: continue the run in that folder from its last checkpoint (a finished run is
            returned as is; a folder without checkpoint restarts; an unreadable last.pt falls
            back to last.prev.pt with a warning). Without it an existing folder is an error.
        progress: show progress bars; default ``engine.progress``.
        overrides: ``key=value`` strings or a nested dict applied to ``cfg``.
        stop_after_epochs: stop (as if killed) once this many epochs are done; the run stays
            'running' and ``resume=True`` continues it.

    Raises:
        ValueError: the folder exists (without ``resume``) or holds a different config.
        NonFiniteLossError: a NaN / infinite loss (the run is marked 'failed').
    """
    cfg = load_config(cfg, overrides)
    ctx = init_distributed(cfg)
    try:
        root = Path(output_root if output_root is not None else DEFAULT_RUN_STORE)
        name = run_name or default_run_name(cfg)
        run_dir = root / name
        decision = _prepare_run_dir(run_dir, cfg, resume) if ctx.is_main else None
        decision = broadcast_object(ctx, decision)
        if decision.startswith("error: "):
            raise ValueError(decision[len("error: "):])
        if decision == "done":
            log.info("%s is finished; nothing to do", run_dir)
            return run_dir
        if ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            if decision == "fresh":
                for key in ("metrics", "epochs", "results", "detections"):
                    (run_dir / RUN_FILES[key]).unlink(missing_ok=True)
                dump_config(cfg, run_dir / RUN_FILES["config"])
                write_json_atomic(run_dir / RUN_FILES["info"], _run_info(cfg, name, ctx))
            else:
                info = json.loads((run_dir / RUN_FILES["info"]).read_text())
                _update_info(run_dir, status="running", error=None,
                             resumed=list(info.get("resumed", [])) + [_now()], **_where_it_runs(ctx))
        show = bool(cfg["engine"]["progress"]) if progress is None else bool(progress)
        try:
            trainer = Trainer(cfg, run_dir, ctx, progress=show)
            if decision == "resume":
                used = trainer.load_state(run_dir / RUN_FILES["checkpoint"])
                trainer.truncate_logs()
                log.info("resuming %s after epoch %d (from %s)", run_dir, trainer.epochs_done, used.name)
            if ctx.is_main:
                dump_config(trainer.cfg, run_dir / RUN_FILES["config"])
                _update_info(run_dir, num_params=trainer.num_params)
            result = trainer.fit(stop_after_epochs)
        except BaseException as err:
            if ctx.is_main and (run_dir / RUN_FILES["info"]).is_file():
                _update_info(run_dir, status="failed", error=f"{type(err).__name__}: {err}")
            raise
        if ctx.is_main and result is not None:
            _update_info(run_dir, status="finished", finished=_now())
        return run_dir
    finally:
        shutdown_distributed(ctx)


def load_weights(detector: nn.Module, checkpoint: str | Path, weights: str = "ema") -> dict[str, Any]:
    """Load ``weights`` ('ema' or 'model') of a tal_lab or ActionFormer checkpoint, strictly.

    Keys may carry DataParallel's ``module.`` prefix. Returns the checkpoint dict.

    Raises:
        ValueError: unknown ``weights``, EMA asked of a checkpoint without it, or key mismatch
            (names the missing and unexpected keys).
    """
    if weights not in ("ema", "model"):
        raise ValueError(f"weights must be 'ema' or 'model', got {weights!r}")
    state = load_training_checkpoint(checkpoint)
    key = "state_dict_ema" if weights == "ema" else "state_dict"
    if key not in state:
        raise ValueError(f"{checkpoint} has no {key} (EMA was off in that run?); use weights='model'")
    load_checkpoint(detector, state, ema=weights == "ema")
    return state


def _checkpoint_epoch(state: Mapping[str, Any]) -> int | None:
    if "epochs_done" in state:
        return int(state["epochs_done"])
    return int(state["epoch"]) + 1 if "epoch" in state else None


def evaluate(
    cfg: str | Path | Mapping[str, Any],
    checkpoint: str | Path,
    weights: str = "ema",
    output: str | Path | None = None,
    progress: bool | None = None,
    overrides: Any = None,
) -> EvalResult:
    """Evaluate a checkpoint on the config's evaluation split (``val_split``).

    Args:
        weights: 'ema' (what ActionFormer evaluates) or 'model'.
        output: a folder that receives detections.csv and results.json.

    Returns:
        :class:`~tal_lab.engine.evaluator.EvalResult` (mAP fractions per threshold, average,
        per-class AP, detections, timing).
    """
    cfg = load_config(cfg, overrides)
    device = resolve_device(cfg)
    detector = components.build_detector(cfg).to(device)
    state = load_weights(detector, checkpoint, weights)
    dataset = components.build_split(cfg, "val", False)
    loader = components.build_eval_loader(dataset, cfg)
    show = bool(cfg["engine"]["progress"]) if progress is None else bool(progress)
    result = evaluate_detector(detector, cfg, dataset, loader, device, weights, _checkpoint_epoch(state), show)
    result.extra["checkpoint"] = str(checkpoint)
    if output is not None:
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        write_csv_atomic(out / RUN_FILES["detections"], result.detections)
        summary = result.summary()
        summary["checkpoint"] = str(checkpoint)
        write_json_atomic(out / RUN_FILES["results"], summary)
    return result


def _video_from_features(
    cfg: Mapping[str, Any], path: Path, fps: float, feat_stride: float, num_frames: float,
    duration: float | None,
) -> dict[str, Any]:
    """One video dict from a feature file, with the dataset's conversions (downsampling, resizing)."""
    ds = cfg["dataset"]
    # Ego4D lists each feature folder's channels; detect reads one file holding them concatenated.
    dims = ds["input_dim"]
    input_dim = sum(int(d) for d in dims) if isinstance(dims, (list, tuple)) else int(dims)
    feats, problems = read_features(path, path.stem, input_dim)
    raise_errors(problems, f"features {path}")
    assert feats is not None
    if duration is None:
        # The span the feature windows cover: the last window ends at (T - 1) * stride + num_frames.
        duration = ((feats.shape[0] - 1) * feat_stride + num_frames) / fps
    rate = int(ds["downsample_rate"])
    tensor = torch.from_numpy(np.ascontiguousarray(feats[::rate].T))
    stride, frames = float(feat_stride) * rate, float(num_frames)
    if ds["force_upsampling"]:
        max_len = int(ds["max_seq_len"])
        stride = frames = float((feats.shape[0] - 1) * feat_stride + num_frames) / max_len
        tensor = resize_features(tensor, max_len)
    return {"video_id": path.stem, "feats": tensor, "segments": None, "labels": None, "fps": float(fps),
            "duration": float(duration), "feat_stride": stride, "feat_num_frames": frames}


def detect(
    cfg: str | Path | Mapping[str, Any],
    checkpoint: str | Path,
    features_path: str | Path,
    fps: float | None = None,
    feat_stride: float | None = None,
    num_frames: float | None = None,
    weights: str = "ema",
    duration: float | None = None,
    overrides: Any = None,
) -> pd.DataFrame:
    """Detections of a checkpoint on one video's feature file.

    Args:
        features_path: ``.npy`` of shape (T, C) or ``.npz`` with key ``feats``; C must equal
            ``dataset.input_dim`` (its sum when it lists several feature folders: one file
            holding them concatenated, in order).
        fps, feat_stride, num_frames: the features' frame rate, stride and window (frames);
            default ``dataset.default_fps`` / ``feat_stride`` / ``num_frames`` of the config.
        duration: the video's length in seconds (detections are clipped to it); default the
            span the feature windows cover.

    Returns:
        DataFrame video-id, t-start, t-end (seconds), label, score (+ label_name when the
        config's annotation file names the classes), best score first.

    Raises:
        ValueError: no fps known, or a bad feature file (naming it).
    """
    cfg = load_config(cfg, overrides)
    ds = cfg["dataset"]
    fps = fps if fps is not None else ds["default_fps"]
    if fps is None:
        raise ValueError("the features' fps is unknown: pass fps (--fps) or set dataset.default_fps")
    feat_stride = feat_stride if feat_stride is not None else ds["feat_stride"]
    num_frames = num_frames if num_frames is not None else ds["num_frames"]
    path = Path(features_path)
    if not path.is_file():
        raise FileNotFoundError(f"feature file not found: {path}")
    device = resolve_device(cfg)
    detector = components.build_detector(cfg).to(device)
    load_weights(detector, checkpoint, weights)
    video = _video_from_features(cfg, path, float(fps), float(feat_stride), float(num_frames), duration)
    frame, _, _ = run_inference(detector, [[video]], device, cfg["engine"]["amp"])
    frame = frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    names = _class_names(cfg)
    if names is not None:
        frame["label_name"] = [names[i] if 0 <= i < len(names) else None for i in frame["label"]]
    return frame


def _class_names(cfg: Mapping[str, Any]) -> list[str] | None:
    json_file = cfg["dataset"]["json_file"]
    if not json_file or not Path(str(json_file)).is_file():
        return None
    try:
        return read_class_names(json_file)
    except (ValueError, KeyError):
        return None
