"""Trained models from the run store, for analyses that need the network (feature diversity).

A run folder (``tal_lab.runs``) holds ``config.yaml``, ``run.json`` and
``checkpoints/last.pt`` plus ``checkpoints/epoch_XXX.pt`` at the epochs evaluated during
training (``engine.eval_epochs``). These helpers rebuild the detector from the config, load a
checkpoint's weights (EMA or raw, as the run evaluated them) and run the diversity probe
over one run's checkpoints, so the notebook only names runs and videos.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from tal_lab.analysis.features import DiversityResult, as_video_features, probe_diversity
from tal_lab.config import load_config
from tal_lab.engine import load_weights
from tal_lab.models import build_detector
from tal_lab.runs import RUN_FILES, run_status

__all__ = ["run_checkpoints", "run_labels", "load_run_detector", "probe_run"]

_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.pt$")


def _run_dir(run: str | Path | Mapping[str, Any]) -> Path:
    """A run folder from a path or a load_runs() row (its 'path')."""
    path = Path(run) if isinstance(run, (str, Path)) else Path(run["path"])  # a path, or a row / dict
    if run_status(path) == "missing":
        raise ValueError(f"{path} is not a tal_lab run folder (no {RUN_FILES['info']})")
    return path


def run_checkpoints(run: str | Path | Mapping[str, Any]) -> dict[int, Path]:
    """Epoch (number of epochs trained) -> checkpoint file, for every checkpoint of a run."""
    folder = _run_dir(run) / "checkpoints"
    found: dict[int, Path] = {}
    if not folder.is_dir():
        return found
    for file in folder.iterdir():
        match = _EPOCH_FILE.match(file.name)
        if match:
            found[int(match.group(1))] = file
    last = folder / "last.pt"
    if last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        done = state.get("epochs_done", state.get("epoch", -1) + 1 if "epoch" in state else None)
        if done is not None:
            found[int(done)] = last
    return dict(sorted(found.items()))


def run_labels(run: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Identifying columns of a run (name, backbone, neck, head, seed, loss_weight, epochs)."""
    info = json.loads((_run_dir(run) / RUN_FILES["info"]).read_text())
    return {"run": info.get("name", _run_dir(run).name), "backbone": info.get("backbone_type"),
            "neck": info.get("fpn_type"), "head": info.get("head_type") or "actionformer",
            "seed": info.get("seed"), "loss_weight": info.get("loss_weight"), "epochs": info.get("epochs")}


def load_run_detector(run: str | Path | Mapping[str, Any], epoch: int | None = None, weights: str | None = None,
                      device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The run's detector with the weights of checkpoint ``epoch`` (default: the last one).

    Args:
        weights: 'ema' or 'model'; default what the run evaluated (``engine.eval_weights``),
            falling back to 'model' when the checkpoint has no EMA.

    Returns:
        (detector in eval mode, the run's resolved config).

    Raises:
        ValueError: not a run folder, no checkpoint, or no checkpoint at ``epoch`` (names the
            epochs available).
    """
    path = _run_dir(run)
    cfg = load_config(path / RUN_FILES["config"])
    checkpoints = run_checkpoints(path)
    if not checkpoints:
        raise ValueError(f"{path}: no checkpoint under checkpoints/ (did the run finish an epoch?)")
    epoch = max(checkpoints) if epoch is None else int(epoch)
    if epoch not in checkpoints:
        raise ValueError(f"{path}: no checkpoint at epoch {epoch}; available: {sorted(checkpoints)} "
                         "(set engine.eval_epochs to keep intermediate checkpoints)")
    detector = build_detector(cfg)
    wanted = weights or cfg["engine"]["eval_weights"]
    try:
        load_weights(detector, checkpoints[epoch], weights=wanted)
    except ValueError:
        if weights is not None or wanted != "ema":
            raise
        load_weights(detector, checkpoints[epoch], weights="model")  # EMA was off in that run
    return detector.to(device).eval(), cfg


def probe_run(run: str | Path | Mapping[str, Any], videos: Any, *, epochs: Sequence[int] | str | None = None,
              weights: str | None = None, limit: int | None = None, **probe_kwargs: Any) -> DiversityResult:
    """Feature diversity of one run at some of its checkpoints (no retraining).

    Args:
        videos: as :func:`tal_lab.analysis.features.probe_diversity` (features, video dicts,
            or a dataset); ``limit`` keeps the first videos.
        epochs: checkpoint epochs to probe: None for the last, 'all' for every one saved.
        probe_kwargs: passed to :func:`~tal_lab.analysis.features.probe_diversity`.

    Returns:
        rows labelled with :func:`run_labels` and ``epoch``.
    """
    available = run_checkpoints(run)
    if not available:
        raise ValueError(f"{_run_dir(run)}: no checkpoint to probe")
    chosen = [max(available)] if epochs is None else list(available) if epochs == "all" else list(epochs)
    features = as_video_features(videos, limit)
    results = []
    for epoch in chosen:
        detector, cfg = load_run_detector(run, epoch, weights)
        labels = {**run_labels(run), "epoch": epoch}
        results.append(probe_diversity(detector, features, labels=labels, cfg=cfg, **probe_kwargs))
    return DiversityResult.concat(results)
