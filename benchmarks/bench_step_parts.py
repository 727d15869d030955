"""Benchmark: where one training step of the CPU study goes, part by part.

At the shapes ``tal-lab study`` trains at (the synthetic ``quick`` benchmark: width 128, crops of
576 steps, batch 2; 1 torch thread, as each of the study's 2 CPU slots), each configuration is set
up as ``run_ablation.ipynb`` sets it up, and the parts of the engine's step
(:func:`tal_lab.engine.trainer.training_step`) are timed separately over the first ``--batches``
batches of an epoch, after ``--warmup`` steps:

* ``forward + loss``: the detector on the batch (label assignment and losses included);
* ``backward``; ``clip``: gradient clipping; ``optimiser``: AdamW's step (schedule included);
* ``EMA``: :meth:`tal_lab.engine.ema.ModelEMA.update`.

Medians in milliseconds per step. The parts run one after the other like the real step, so their sum is
about the step; ``full step`` times the engine's own step on the same batches.

Usage: ``PYTHONPATH=. python benchmarks/bench_step_parts.py [--configs original C E] [--batches 24]
[--threads 1] [--data DIR]`` (``--data``: a generated quick benchmark; default: generated in a temporary folder).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from tal_lab.engine.distributed import DistContext
from tal_lab.engine.trainer import Trainer, training_step, videos_to_device
from tal_lab.study.params import ablation_setup, synthetic_data
from tal_lab.study.plan import TABLE1_CONFIGURATIONS

PARTS = ("forward + loss", "backward", "clip", "optimiser", "EMA")


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - start) * 1e3


def bench_configuration(name: str, data: Path, store: Path, batches: int, warmup: int) -> dict[str, float]:
    backbone, neck = TABLE1_CONFIGURATIONS[name]
    setup = ablation_setup(backbone=backbone, neck=neck, preset="quick", data_root=str(data), output_root=str(store),
                           device="cpu", run_name=f"parts-{name}", overrides=["engine.progress=false"])
    trainer = Trainer(setup.cfg, store / f"parts-{name}", DistContext(), progress=False)
    loader = iter(trainer.train_loader)
    videos = [next(loader) for _ in range(warmup + batches)]
    model, optimizer, ema = trainer.model, trainer.optimizer, trainer.ema

    def step(batch: list[dict[str, Any]]) -> None:
        training_step(model, batch, optimizer, trainer.scheduler, trainer.device, ema=ema,
                      clip_norm=trainer.clip_norm, amp=trainer.amp)

    for batch in videos[:warmup]:
        step(batch)
    times: dict[str, list[float]] = {part: [] for part in (*PARTS, "full step")}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for batch in videos[warmup:]:
        optimizer.zero_grad(set_to_none=True)
        losses, ms = _timed(lambda: model(videos_to_device(batch, trainer.device)))
        times["forward + loss"].append(ms)
        times["backward"].append(_timed(lambda: losses["final_loss"].backward())[1])
        times["clip"].append(_timed(lambda: torch.nn.utils.clip_grad_norm_(params, trainer.clip_norm))[1])
        times["optimiser"].append(_timed(lambda: (optimizer.step(), trainer.scheduler.step()))[1])
        times["EMA"].append(_timed(lambda: ema.update(model))[1])
    for batch in videos[warmup:]:
        times["full step"].append(_timed(lambda: step(batch))[1])
    return {part: statistics.median(values) for part, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["original", "C", "E"], choices=list(TABLE1_CONFIGURATIONS))
    parser.add_argument("--batches", type=int, default=24, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=4, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one of the study's 2 CPU slots)")
    parser.add_argument("--data", type=Path, default=None, help="a generated synthetic quick benchmark folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or synthetic_data("quick", Path(tmp) / "data").parent
        print(f"quick shapes, {args.threads} thread(s), torch {torch.__version__}; medians of {args.batches} steps, ms")
        print(f"{'configuration':>13} " + " ".join(f"{part:>14}" for part in (*PARTS, "full step")))
        for name in args.configs:
            row = bench_configuration(name, Path(data), Path(tmp) / "runs", args.batches, args.warmup)
            print(f"{name:>13} " + " ".join(f"{row[part]:14.1f}" for part in (*PARTS, "full step")), flush=True)


if __name__ == "__main__":
    main()
