"""The training loop: ActionFormer's recipe, resumable, logged into a run folder.

Per iteration (ActionFormer's ``train_one_epoch``): zero the gradients, forward the batch of
video dicts, back-propagate ``final_loss``, clip the gradient L2 norm when
``train_cfg.clip_grad_l2norm`` is set (None: no clipping), step the optimiser, step the per-iteration schedule, update
the EMA. Per epoch: save ``checkpoints/last.pt`` atomically, then evaluate when the epoch is
listed in ``engine.eval_epochs`` (and always after the last), then append the epoch's record.

The checkpoint is written before the epoch is evaluated, so an evaluation that raises leaves
``last.pt`` at that epoch, with the epoch's record; resuming evaluates and logs it. The previous
checkpoint is kept as ``last.prev.pt``, and a resume from an unreadable ``last.pt`` (truncated
copy, disk error) falls back to it with a warning.

Evaluation runs with every random generator saved and restored, so evaluating (or not) never changes the
training that follows, and a run stopped after any epoch and resumed ends with the same
weights as one left alone (on the CPU, with ``loader.num_workers: 0`` or fresh workers).

Loss values are collected on the device and read back every ``engine.log_every`` iterations
(one host sync per window on GPUs); a NaN or infinite loss then stops the run with
:class:`NonFiniteLossError` naming the epoch and iteration, and the last checkpoint on disk is
the last good one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tal_lab import __version__
from tal_lab.config import apply_overrides
from tal_lab.engine import components
from tal_lab.engine.checkpoints.training_state import (
    atomic_torch_save, capture_rng_state, load_resumable_checkpoint, restore_rng_state)
from tal_lab.engine.compile import compile_detector
from tal_lab.engine.distributed import DistContext, barrier, unwrap, wrap_ddp
from tal_lab.engine.ema import ModelEMA
from tal_lab.engine.evaluator import (
    EvalResult, agnostic_ground_truth, ground_truth_for, run_inference, score_detections, tiou_thresholds_for,
    videos_to_device, fuse_external_scores, load_external_scores)
from tal_lab.engine.optim import build_optimizer, build_scheduler, current_lr, total_epochs
from tal_lab.engine.progress import format_epoch_line, progress_mode
from tal_lab.core.atomic_io import append_jsonl, read_jsonl, rewrite_jsonl, write_csv_atomic, write_json_atomic
from tal_lab.core.autocast import autocast, effective_amp
from tal_lab.runs import RUN_FILES

__all__ = ["NonFiniteLossError", "Trainer", "training_step", "evaluate_detector", "forked_rng"]

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite; the message names the epoch and iteration."""


@contextlib.contextmanager
def forked_rng() -> Iterator[None]:
    """Run a block without disturbing any random generator training uses."""
    saved = capture_rng_state()  # Python, NumPy, torch CPU and every CUDA device
    try:
        yield
    finally:
        restore_rng_state(saved)


def evaluate_detector(
    model: nn.Module,
    cfg: Mapping[str, Any],
    dataset: Any,
    loader: Any,
    device: torch.device,
    weights: str,
    checkpoint_epoch: int | None,
    progress: bool = False,
) -> EvalResult:
    """Detections and mAP of ``model`` on the evaluation split (fusion when configured)."""
    start = time.perf_counter()
    amp = effective_amp(device.type, cfg["engine"]["amp"])
    detections, num_videos, infer_seconds = run_inference(model, loader, device, amp, progress, total=len(loader))
    ground_truth = agnostic_ground_truth(cfg, ground_truth_for(cfg, dataset))
    num_labels = int(cfg["dataset"]["num_classes"])
    fused = cfg["test_cfg"]["ext_score_file"]
    if fused:
        scores = load_external_scores(fused)
        detections = fuse_external_scores(detections, scores)
        # Fused labels index the external classifier's classes, not the detector's.
        num_labels = max(num_labels, max(len(s) for s in scores.values()), int(ground_truth["label"].max()) + 1)
    tious = tiou_thresholds_for(cfg, dataset)
    mean_ap, average, per_class = score_detections(ground_truth, detections, tious, num_labels,
                                                   cfg["dataset"]["eval_label_space"])
    return EvalResult(tiou_thresholds=tious, mAP=mean_ap, average_mAP=average, per_class_ap=per_class,
                      detections=detections, weights=weights, checkpoint_epoch=checkpoint_epoch,
                      seconds=time.perf_counter() - start, inference_seconds=infer_seconds,
                      num_videos=num_videos, fused_with=str(fused) if fused else None)


def training_step(
    model: nn.Module,
    videos: list[dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
    ema: ModelEMA | None = None,
    scaler: torch.amp.GradScaler | None = None,
    clip_norm: float | None = None,
    amp: str = "none",
) -> dict[str, torch.Tensor]:
    """One ActionFormer iteration; returns the losses, detached, still on the device.

    zero grad -> forward (autocast under ``amp`` where the device does it) -> backward of ``final_loss``
    (scaled for fp16) -> clip the L2 norm to ``clip_norm`` unless None -> optimiser step ->
    schedule step -> EMA update.
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast(device, amp):
        losses = model(videos_to_device(videos, device))
    if "final_loss" not in losses:
        raise ValueError(f"the detector's training output lacks 'final_loss' (has {sorted(losses)})")
    final = losses["final_loss"]
    if scaler is not None:
        scaler.scale(final).backward()
        scaler.unscale_(optimizer)
    else:
        final.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, clip_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    if ema is not None:
        ema.update(unwrap(model))
    return {k: v.detach().float() for k, v in losses.items() if torch.is_tensor(v) and v.numel() == 1}


class Trainer:
    """One training run: model, optimiser, schedule, EMA, data, and the run folder it writes.

    Args:
        cfg: resolved config (``tal_lab.config.load_config``).
        run_dir: the run folder (rank 0 writes into it; other ranks read checkpoints from it).
        ctx: distributed context (device, rank, world size).
        progress: show tqdm progress bars (rank 0 only).
    """

    def __init__(self, cfg: dict[str, Any], run_dir: Path, ctx: DistContext, progress: bool = True) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.ctx = ctx
        self.device = ctx.device
        self.progress_mode = progress_mode(progress and ctx.is_main)
        self.progress = self.progress_mode == "bars"  # tqdm bars (widgets in JupyterLab)
        self.engine_cfg = cfg["engine"]
        self.amp = effective_amp(self.device.type, self.engine_cfg["amp"])
        self.total_epochs = total_epochs(cfg["opt"])
        self.eval_epochs = sorted(set(int(e) for e in self.engine_cfg["eval_epochs"]) | {self.total_epochs})
        self.use_ema = bool(self.engine_cfg["ema"])
        self.eval_weights = self.engine_cfg["eval_weights"] if self.use_ema else "model"
        self.epochs_done = 0
        self.global_step = 0
        # The record of the checkpointed epoch, read back on resume (see _finish_pending_epoch).
        self.pending_record: dict[str, Any] | None = None
        self._tb: Any = None

        seed = int(cfg["init_rand_seed"])
        components.fix_random_seed(seed, deterministic_cuda=self.device.type == "cuda")
        self.train_set = components.build_split(cfg, "train", True)
        empty = components.empty_label_ids(self.train_set)
        if empty is not None and empty != list(cfg["train_cfg"]["head_empty_cls"]):
            # ActionFormer fills head_empty_cls from the training set before building the model.
            self.cfg = cfg = apply_overrides(cfg, {"train_cfg": {"head_empty_cls": empty}})
        batch = int(cfg["loader"]["batch_size"])
        if batch % ctx.world_size:
            raise ValueError(f"config key 'loader.batch_size': {batch} videos cannot be split over "
                             f"{ctx.world_size} processes; use a multiple of {ctx.world_size}")
        self.train_loader = components.build_train_loader(self.train_set, cfg, batch // ctx.world_size, seed,
                                                          ctx.rank, ctx.world_size)
        self.iters_per_epoch = len(self.train_loader)
        self.val_set: Any = None
        self.val_loader: Any = None

        detector = components.build_detector(cfg).to(self.device)
        self.detector = detector
        self.num_params = components.count_parameters(detector)
        # ActionFormer multiplies the learning rate by its number of devices.
        self.optimizer = build_optimizer(detector, cfg["opt"], lr_scale=float(ctx.world_size))
        self.scheduler = build_scheduler(self.optimizer, cfg["opt"], self.iters_per_epoch)
        self.ema = ModelEMA(detector, float(self.engine_cfg["ema_decay"])) if self.use_ema else None
        self.scaler = torch.amp.GradScaler("cuda") if self.amp == "fp16" else None
        # compiled after the EMA copy: evaluation (the EMA weights) stays eager
        self.compiled = compile_detector(detector, self.device) if self.engine_cfg["compile"] else []
        self.model = wrap_ddp(detector, ctx)
        if ctx.enabled:
            # Same initial weights everywhere (DDP broadcast them); different randomness per rank.
            torch.manual_seed(seed + ctx.rank)
        clip = cfg["train_cfg"]["clip_grad_l2norm"]
        self.clip_norm = None if clip is None else float(clip)
        self.log_every = max(1, int(self.engine_cfg["log_every"]))

    # ---------------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / RUN_FILES["checkpoint"]

    def state(self, record: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Everything needed to continue this run exactly; ``record`` is the last epoch's log
        record, kept until the epoch is evaluated and logged."""
        state: dict[str, Any] = {
            "epoch": self.epochs_done - 1, "epochs_done": self.epochs_done, "global_step": self.global_step,
            "state_dict": self.detector.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": capture_rng_state(self.train_loader),
            "tal_lab_version": __version__, "epoch_record": None if record is None else dict(record),
        }
        if self.ema is not None:
            state["state_dict_ema"] = self.ema.state_dict()
        if self.scaler is not None:
            state["grad_scaler"] = self.scaler.state_dict()
        normalizer = components.loss_normalizer_of(self.detector)
        if normalizer is not None:
            state["loss_normalizer"] = normalizer.state_dict()
        rng = state["rng"]
        dataset_rng = getattr(self.train_set, "rng", None)
        if hasattr(dataset_rng, "getstate"):  # the dataset's own truncation generator (main process)
            version, mt, gauss = dataset_rng.getstate()
            rng["dataset"] = {"version": version, "state": list(mt), "gauss_next": gauss}
        return state

    def load_state(self, path: Path) -> Path:
        """Continue from a checkpoint written by :meth:`save` (weights, optimiser, schedule, RNG).

        An unreadable ``path`` falls back to the previous checkpoint kept beside it, with a
        warning naming both (:func:`~tal_lab.engine.checkpoints.training_state.load_resumable_checkpoint`).
        Returns the file resumed from.
        """
        state, used = load_resumable_checkpoint(path, map_location=self.device)
        self.detector.load_state_dict(state["state_dict"])
        if self.ema is not None:
            self.ema.load_state_dict(state.get("state_dict_ema", state["state_dict"]))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "grad_scaler" in state:
            self.scaler.load_state_dict(state["grad_scaler"])
        normalizer = components.loss_normalizer_of(self.detector)
        if normalizer is not None and "loss_normalizer" in state:
            normalizer.load_state_dict(state["loss_normalizer"])
        self.epochs_done = int(state["epochs_done"])
        self.global_step = int(state["global_step"])
        self.pending_record = state.get("epoch_record")
        rng = state["rng"]
        restore_rng_state(rng, self.train_loader)
        dataset_rng = getattr(self.train_set, "rng", None)
        if "dataset" in rng and hasattr(dataset_rng, "setstate"):
            d = rng["dataset"]
            dataset_rng.setstate((d["version"], tuple(d["state"]), d["gauss_next"]))
        if self.ctx.enabled:
            torch.manual_seed(int(self.cfg["init_rand_seed"]) + self.ctx.rank + self.epochs_done)
        return used

    def save(self, eval_epoch: bool, record: Mapping[str, Any] | None = None) -> None:
        """Write last.pt, keeping the one before as last.prev.pt (and epoch_XXX.pt, weights only,
        at evaluated epochs) on rank 0; ``record`` is the epoch's log record."""
        if not self.ctx.is_main:
            return
        state = self.state(record)
        atomic_torch_save(state, self.checkpoint_path, keep_previous=True)
        if eval_epoch and self.epochs_done != self.total_epochs:
            weights = {k: state[k] for k in ("epoch", "epochs_done", "state_dict", "state_dict_ema") if k in state}
            atomic_torch_save(weights, self.checkpoint_path.parent / f"epoch_{self.epochs_done:03d}.pt")

    def truncate_logs(self) -> None:
        """Forget log lines written after the checkpoint (the killed part of a run)."""
        if not self.ctx.is_main:
            return
        done = self.epochs_done
        for name in ("metrics", "epochs"):
            path = self.run_dir / RUN_FILES[name]
            if path.is_file():
                rewrite_jsonl(path, lambda r: int(r.get("epoch", 0)) <= done)

    # ---------------------------------------------------------------------- training
    def _tensorboard(self) -> Any:
        if self._tb is None and self.engine_cfg["tensorboard"] and self.ctx.is_main:
            try:  # tensorboard is an optional extra (pip install tal_lab[tensorboard])
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ImportError("engine.tensorboard is on but tensorboard is not installed "
                                  "(pip install tensorboard, or set engine.tensorboard=false)") from err
            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
        return self._tb

    def _step(self, videos: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return training_step(self.model, videos, self.optimizer, self.scheduler, self.device, ema=self.ema,
                             scaler=self.scaler, clip_norm=self.clip_norm, amp=self.amp)

    def _flush(self, pending: list[dict[str, Any]], epoch: int, bar: Any, sums: dict[str, float]) -> None:
        """Read back a window of losses, check them, log them."""
        if not pending:
            return
        keys = list(pending[0]["losses"])
        values = torch.stack([torch.stack([p["losses"][k].reshape(()) for k in keys]) for p in pending]).cpu()
        records = []
        for row, item in zip(values.tolist(), pending):
            losses = dict(zip(keys, row))
            bad = {k: v for k, v in losses.items() if not np.isfinite(v)}
            if bad:
                raise NonFiniteLossError(
                    f"non-finite training loss at epoch {epoch}, iteration {item['iter']} of "
                    f"{self.iters_per_epoch} (global step {item['step']}): "
                    + ", ".join(f"{k}={v}" for k, v in losses.items())
                    + f"; the last good checkpoint ({self.epochs_done} epochs) is kept at {self.checkpoint_path}")
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            records.append({"epoch": epoch, "iter": item["iter"], "step": item["step"], "lr": item["lr"],
                            **losses, "seconds": item["seconds"]})
        pending.clear()
        if not self.ctx.is_main:
            return
        append_jsonl(self.run_dir / RUN_FILES["metrics"], records)
        last = records[-1]
        if bar is not None:
            bar.set_postfix(loss=f"{last.get('final_loss', float('nan')):.3f}", lr=f"{last['lr']:.2e}")
        writer = self._tensorboard()
        if writer is not None:
            for rec in records:
                writer.add_scalar("train/learning_rate", rec["lr"], rec["step"])
                for k in keys:
                    writer.add_scalar(f"train/{k}", rec[k], rec["step"])

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Train one epoch (``epoch`` counts from 1); returns its record for epochs.jsonl."""
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch - 1)
        self.model.train()
        sums: dict[str, float] = {}
        pending: list[dict[str, Any]] = []
        bar = tqdm(total=self.iters_per_epoch, desc=f"epoch {epoch}/{self.total_epochs}", leave=False,
                   disable=not self.progress, dynamic_ncols=True)
        start = tick = time.perf_counter()
        iters = 0
        for iters, videos in enumerate(self.train_loader, 1):
            lr = current_lr(self.optimizer)
            losses = self._step(videos)
            self.global_step += 1
            now = time.perf_counter()
            pending.append({"iter": iters, "step": self.global_step, "lr": lr, "losses": losses,
                            "seconds": now - tick})
            tick = now
            if len(pending) >= self.log_every:
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                self._flush(pending, epoch, bar, sums)
            bar.update(1)
        self._flush(pending, epoch, bar, sums)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        bar.close()
        seconds = time.perf_counter() - start
        return {"epoch": epoch, "iters": iters, "seconds": seconds, "lr": current_lr(self.optimizer),
                "train": {k: v / max(iters, 1) for k, v in sums.items()}, "eval": None}

    # ---------------------------------------------------------------------- evaluation
    def eval_model(self) -> nn.Module:
        """The weights evaluations use: the EMA copy or the trained model (unwrapped)."""
        return self.ema.module if (self.ema is not None and self.eval_weights == "ema") else self.detector

    def evaluate(self) -> EvalResult:
        """Evaluate the current weights on the evaluation split (rank 0; RNG untouched)."""
        with forked_rng():
            if self.val_set is None:
                self.val_set = components.build_split(self.cfg, "val", False)
                self.val_loader = components.build_eval_loader(self.val_set, self.cfg)
            return evaluate_detector(self.eval_model(), self.cfg, self.val_set, self.val_loader, self.device,
                                     self.eval_weights, self.epochs_done, progress=self.progress)

    def _write_final(self, result: EvalResult, epoch_records: list[dict[str, Any]]) -> None:
        write_csv_atomic(self.run_dir / RUN_FILES["detections"], result.detections)
        seconds = [float(r["seconds"]) for r in epoch_records]
        summary = result.summary()
        summary["timings"] = {
            "train_seconds": float(np.sum(seconds)), "seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
            "eval_seconds": result.seconds, "inference_seconds": result.inference_seconds,
            "seconds_per_video": result.seconds_per_video, "iters_per_epoch": self.iters_per_epoch,
        }
        write_json_atomic(self.run_dir / RUN_FILES["results"], summary)

    def _print_epoch_line(self, record: dict[str, Any], epoch: int, epochs_timed: list[float]) -> None:
        """One plain line per epoch (headless runs); the ETA uses this session's epochs only."""
        epochs_timed.append(float(record["seconds"]))
        line = format_epoch_line(epoch, self.total_epochs, record["train"].get("final_loss", float("nan")),
                                 record["lr"], epochs_timed[-1], float(np.mean(epochs_timed)))
        if record.get("eval"):
            line += f"; average mAP {100 * record['eval']['average_mAP']:.2f}%"
        print(line, flush=True)

    def _finish_epoch(self, record: dict[str, Any]) -> EvalResult | None:
        """Evaluate a checkpointed epoch when it is listed, then log it (epochs.jsonl, and the
        final files after the last epoch); returns its evaluation (rank 0), else None."""
        epoch = int(record["epoch"])
        epochs_path = self.run_dir / RUN_FILES["epochs"]
        result = None
        if epoch in self.eval_epochs:
            if self.ctx.is_main:
                result = self.evaluate()
                record["eval"] = {k: v for k, v in result.summary().items()
                                  if k in ("tiou_thresholds", "mAP", "average_mAP", "weights", "num_videos",
                                           "seconds_per_video")}
                record["eval"]["seconds"] = result.seconds
                log.info("epoch %d: average mAP %.2f%% (%s weights)", epoch, 100 * result.average_mAP, result.weights)
                writer = self._tensorboard()
                if writer is not None:
                    writer.add_scalar("validation/average_mAP", result.average_mAP, epoch)
                if epoch == self.total_epochs:
                    earlier = [r for r in read_jsonl(epochs_path) if r["epoch"] < epoch]
                    self._write_final(result, earlier + [record])
            barrier(self.ctx)
        if self.ctx.is_main:
            append_jsonl(epochs_path, [record])
        return result

    def _finish_pending_epoch(self) -> EvalResult | None:
        """After a resume: finish the checkpointed epoch that was never logged (its evaluation
        raised, or the run was killed during it)."""
        record = self.pending_record
        self.pending_record = None
        if record is None or int(record["epoch"]) != self.epochs_done:
            return None
        if any(int(r.get("epoch", 0)) == self.epochs_done for r in read_jsonl(self.run_dir / RUN_FILES["epochs"])):
            return None
        log.info("epoch %d was checkpointed but not logged; finishing it (evaluation, log)", self.epochs_done)
        return self._finish_epoch(record)

    def fit(self, stop_after_epochs: int | None = None) -> EvalResult | None:
        """Train from ``epochs_done`` to the end (or stop after ``stop_after_epochs`` in total).

        Each epoch is checkpointed before it is evaluated, so an evaluation that raises never
        costs the epoch: the checkpoint holds the epoch's record, and a resumed run evaluates
        and logs it before training on.

        Returns the final evaluation (rank 0), or None when stopped early / on other ranks.
        """
        pending = self._finish_pending_epoch()
        final = pending if self.epochs_done == self.total_epochs else None
        epochs_timed: list[float] = []
        outer = tqdm(total=self.total_epochs, initial=self.epochs_done, desc="training", unit="epoch",
                     disable=not self.progress, dynamic_ncols=True)
        try:
            for epoch in range(self.epochs_done + 1, self.total_epochs + 1):
                record = self.train_epoch(epoch)
                self.epochs_done = epoch
                self.save(eval_epoch=epoch in self.eval_epochs, record=record)
                barrier(self.ctx)
                result = self._finish_epoch(record)
                if epoch == self.total_epochs:
                    final = result
                outer.update(1)
                outer.set_postfix(loss=f"{record['train'].get('final_loss', float('nan')):.3f}")
                if self.progress_mode == "lines":
                    self._print_epoch_line(record, epoch, epochs_timed)
                if stop_after_epochs is not None and epoch >= stop_after_epochs and epoch < self.total_epochs:
                    return None
        finally:
            outer.close()
            if self._tb is not None:
                self._tb.close()
                self._tb = None
        return final
