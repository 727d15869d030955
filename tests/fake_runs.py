"""Run folders written without training, in the layout the engine writes (``tal_lab.runs.RUN_FILES``).

One helper for every test that needs a run store: the readers (``tests/runs``), the study tables
and plan (``tests/study``) and the analyses of trained models (``tests/analysis``). ``run.json``
takes its identity from the config as ``tal_lab.engine`` does, so a fake run and a trained one
read the same through ``tal_lab.runs.load_run`` / ``load_runs`` / ``load_epoch_evals``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from tal_lab import __version__
from tal_lab.config import dump_config
from tal_lab.core.atomic_io import append_jsonl, write_csv_atomic, write_json_atomic
from tal_lab.engine.optim import total_epochs
from tal_lab.runs import RUN_FILES, STANDARD_TIOUS, dataset_identity, run_status

CREATED = "2025-01-01T00:00:00+00:00"
FINISHED = "2025-01-01T01:00:00+00:00"
# Iterations per epoch in metrics.jsonl: two, so an epoch's mean loss is none of its iterations' losses.
ITERS_PER_EPOCH = 2
LEARNING_RATE = 0.1
# run.json's parameter count: nothing is built, so any positive number.
NUM_PARAMS = 123
DETECTION_COLUMNS = ["video-id", "t-start", "t-end", "label", "score"]


def _evaluation(maps: Sequence[float], weights: str, seconds: float) -> dict[str, Any]:
    """An ``eval`` record of epochs.jsonl: mAP per tIoU of STANDARD_TIOUS, as fractions."""
    if len(maps) != len(STANDARD_TIOUS):
        raise ValueError(f"maps needs one value per tIoU {STANDARD_TIOUS}, got {list(maps)}")
    return {"tiou_thresholds": list(STANDARD_TIOUS), "mAP": [float(m) for m in maps],
            "average_mAP": sum(maps) / len(maps), "weights": weights, "num_videos": 1, "seconds": seconds,
            "seconds_per_video": seconds}


def _losses(final: float) -> dict[str, float]:
    """The logged losses: final_loss = cls_loss + reg_loss, split 60 / 40."""
    return {"cls_loss": 0.6 * final, "reg_loss": 0.4 * final, "final_loss": final}


def write_run(root: Path, name: str, cfg: Mapping[str, Any], *, maps: Sequence[float] | None = None,
              status: str | None = None, epoch_maps: Mapping[int, Sequence[float]] | None = None,
              detections: pd.DataFrame | None = None, seconds_per_epoch: float = 2.0, eval_seconds: float = 0.5,
              **info: Any) -> Path:
    """Write the run ``name`` of the resolved config ``cfg`` under ``root``; returns its folder.

    Args:
        maps: the final mAP per tIoU of ``STANDARD_TIOUS`` (fractions). With it the run has
            trained every epoch, evaluated the last one (epochs.jsonl) and written results.json
            and detections.csv; without it the run stopped after its first epoch.
        status: run.json's status, as :func:`tal_lab.runs.run_status` reads it: default
            'finished' with ``maps``, else 'running' ('running' with ``maps``: a run killed after
            writing results.json but before marking itself finished; 'failed').
        epoch_maps: evaluations during training, epoch -> mAP per tIoU (as maps).
        detections: detections.csv (default: no detections).
        info: run.json fields that replace the ones derived from ``cfg`` (e.g. created,
            num_params, head_type=None as written before heads were recorded).
    """
    finished = maps is not None
    status = status or ("finished" if finished else "running")
    if status not in ("running", "failed", "finished") or (status == "finished" and not finished):
        raise ValueError(f"status {status!r}: a run is running, failed, or finished with maps")
    run = root / name
    run.mkdir(parents=True)
    dump_config(cfg, run / RUN_FILES["config"])
    model, opt, total = cfg["model"], cfg["opt"], total_epochs(cfg["opt"])
    weights = cfg["engine"]["eval_weights"] if cfg["engine"]["ema"] else "model"
    write_json_atomic(run / RUN_FILES["info"], {
        "run_id": f"20250101-000000-{name}", "name": name, "created": CREATED,
        "finished": FINISHED if status == "finished" else None, "status": status, "error": None,
        "seed": int(cfg["init_rand_seed"]), "dataset": dataset_identity(cfg),
        "backbone_type": model["backbone_type"], "fpn_type": model["fpn_type"],
        "head_type": model.get("head_type", "actionformer"), "loss_weight": float(cfg["train_cfg"]["loss_weight"]),
        "epochs": int(opt["epochs"]), "warmup_epochs": int(opt["warmup_epochs"]) if opt["warmup"] else 0,
        "total_epochs": total, "eval_weights": weights, "tal_lab_version": __version__, "git_commit": None,
        "torch_version": torch.__version__, "device": "cpu", "world_size": 1, "amp": "none", "num_params": NUM_PARAMS,
        "resumed": [], **info})
    epochs_done = total if finished else 1
    evals = {int(epoch): _evaluation(m, weights, eval_seconds) for epoch, m in (epoch_maps or {}).items()}
    if finished:
        evals.setdefault(epochs_done, _evaluation(maps, weights, eval_seconds))
    steps = range(1, epochs_done * ITERS_PER_EPOCH + 1)
    append_jsonl(run / RUN_FILES["metrics"], [
        {"epoch": (step - 1) // ITERS_PER_EPOCH + 1, "iter": (step - 1) % ITERS_PER_EPOCH + 1, "step": step,
         "lr": LEARNING_RATE, **_losses(1.0 / step), "seconds": seconds_per_epoch / ITERS_PER_EPOCH} for step in steps])
    append_jsonl(run / RUN_FILES["epochs"], [
        {"epoch": epoch, "iters": ITERS_PER_EPOCH, "seconds": seconds_per_epoch, "lr": LEARNING_RATE,
         "train": _losses(1.0 / epoch), "eval": evals.get(epoch)} for epoch in range(1, epochs_done + 1)])
    if finished:
        final = _evaluation(maps, weights, eval_seconds)
        detections = pd.DataFrame(columns=DETECTION_COLUMNS) if detections is None else detections
        write_csv_atomic(run / RUN_FILES["detections"], detections)
        write_json_atomic(run / RUN_FILES["results"], {
            **final, "per_class_AP": {"0": final["mAP"]}, "checkpoint_epoch": epochs_done,
            "num_detections": len(detections), "fused_with": None,
            "timings": {"train_seconds": seconds_per_epoch * epochs_done, "seconds_per_epoch": seconds_per_epoch,
                        "eval_seconds": eval_seconds, "inference_seconds": eval_seconds,
                        "seconds_per_video": eval_seconds, "iters_per_epoch": ITERS_PER_EPOCH}})
    assert run_status(run) == status, f"{run}: tal_lab.runs reads {run_status(run)!r}, not {status!r}"
    return run


def write_checkpoint(run: Path, epochs_done: int, state_dict: Mapping[str, torch.Tensor],
                     ema_state_dict: Mapping[str, torch.Tensor] | None = None) -> Path:
    """Save weights as the trainer does: ``checkpoints/last.pt`` after the run's last epoch,
    ``checkpoints/epoch_XXX.pt`` at an earlier evaluated epoch; EMA weights only when given."""
    total = int(json.loads((run / RUN_FILES["info"]).read_text())["total_epochs"])
    last = run / RUN_FILES["checkpoint"]
    path = last if epochs_done == total else last.with_name(f"epoch_{epochs_done:03d}.pt")
    path.parent.mkdir(exist_ok=True)
    state: dict[str, Any] = {"epoch": epochs_done - 1, "epochs_done": epochs_done, "state_dict": dict(state_dict)}
    if ema_state_dict is not None:
        state["state_dict_ema"] = dict(ema_state_dict)
    torch.save(state, path)
    return path
