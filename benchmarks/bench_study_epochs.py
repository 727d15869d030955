"""Measure the seconds per training epoch that ``tal-lab study --dry-run`` estimates from.

For each data size the study trains at, and each Table I configuration (and the Table IV heads
on the original and E), this times what a run spends:

* ``synthetic-tiny`` / ``synthetic-quick``: a real run through :func:`tal_lab.engine.train` on
  the synthetic benchmark, one epoch after the preset's warm-up, then the final evaluation; the
  median epoch and the evaluation seconds are kept (``epochs.jsonl``, ``results.json``).
* ``thumos14``: the engine's training step at THUMOS14 shapes on random features, as
  ``benchmarks/bench_train.py`` does (median of ``--iters`` steps x 100 iterations per epoch);
  no evaluation is timed at that size (``eval_seconds`` null).

The table is written to ``tal_lab/study/epoch_seconds.json`` with the machine
(:func:`tal_lab.core.machine.machine_of`), the torch version, the device, the threads and the git commit.

Usage: ``python benchmarks/bench_study_epochs.py [--sizes synthetic-tiny synthetic-quick thumos14]
[--threads 1] [--thumos-threads 2] [--iters 2] [--out tal_lab/study/epoch_seconds.json]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench_train import BATCH, ITERS_PER_EPOCH, random_videos
from tal_lab.config import apply_overrides, load_config
from tal_lab.config.published import published_config
from tal_lab.core.atomic_io import read_jsonl, write_json_atomic
from tal_lab.core.machine import machine_of
from tal_lab.data.synthetic_spec import get_preset
from tal_lab.engine import train
from tal_lab.engine.api import git_commit
from tal_lab.engine.ema import ModelEMA
from tal_lab.engine.optim import build_optimizer, build_scheduler
from tal_lab.engine.trainer import training_step
from tal_lab.models import build_detector
from tal_lab.study.params import BACKBONE_CHOICES, ablation_setup
from tal_lab.study.plan import TABLE1_CONFIGURATIONS, TABLE4_HEADS

ROOT = Path(__file__).resolve().parents[1]
SIZES = ("synthetic-tiny", "synthetic-quick", "thumos14")
# Table IV's heads are timed on these configurations only (the paper's original and best).
HEAD_CONFIGURATIONS = ("original", "E")


def cases() -> list[tuple[str, str]]:
    """(configuration, head) pairs to time."""
    pairs = [(name, "actionformer") for name in TABLE1_CONFIGURATIONS]
    return pairs + [(name, head) for name in HEAD_CONFIGURATIONS for head in TABLE4_HEADS if head != "actionformer"]


def synthetic_figure(preset: str, configuration: str, head: str, data_root: Path, store: Path) -> dict[str, Any]:
    """Train one epoch after the warm-up at ``preset``; the median epoch and the evaluation."""
    backbone, neck = TABLE1_CONFIGURATIONS[configuration]
    setup = ablation_setup(backbone=backbone, neck=neck, head=head, epochs=1, preset=preset,
                           data_root=str(data_root), output_root=str(store), device="cpu",
                           run_name=f"{preset}-{configuration}-{head}", overrides=["engine.progress=false"])
    run_dir = train(setup.cfg, setup.output_root, setup.run_name, progress=False)
    seconds = [float(r["seconds"]) for r in read_jsonl(run_dir / "epochs.jsonl")]
    results = json.loads((run_dir / "results.json").read_text())
    return {"seconds_per_epoch": statistics.median(seconds), "eval_seconds": float(results["seconds"]),
            "train_videos": get_preset(preset).num_train_videos,
            "epochs_timed": len(seconds)}


def thumos_figure(configuration: str, head: str, iters: int) -> dict[str, Any]:
    """The engine's training step at THUMOS14 shapes, times 100 iterations per epoch."""
    backbone, neck = TABLE1_CONFIGURATIONS[configuration]
    base = load_config(dict(published_config("thumos"), dataset_name="thumos"))
    cfg = apply_overrides(base, {"model": {"backbone_type": BACKBONE_CHOICES[backbone], "fpn_type": neck,
                                           "head_type": head}})
    torch.manual_seed(0)
    device = torch.device("cpu")
    model = build_detector(cfg).train()
    optimizer = build_optimizer(model, cfg["opt"])
    scheduler = build_scheduler(optimizer, cfg["opt"], ITERS_PER_EPOCH)
    ema = ModelEMA(model, cfg["engine"]["ema_decay"])
    videos = random_videos(cfg, torch.Generator().manual_seed(0))
    clip = float(cfg["train_cfg"]["clip_grad_l2norm"])

    def step() -> float:
        start = time.perf_counter()
        losses = training_step(model, videos, optimizer, scheduler, device, ema=ema, scaler=None, clip_norm=clip,
                               amp="none")
        float(losses["final_loss"])
        return time.perf_counter() - start

    step()  # warm-up: allocator and first-call overheads
    per_iter = statistics.median(step() for _ in range(iters))
    return {"seconds_per_epoch": per_iter * ITERS_PER_EPOCH, "eval_seconds": None,
            "train_videos": ITERS_PER_EPOCH * BATCH, "epochs_timed": None, "iters_timed": iters}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the synthetic sizes (default 1: "
                                                               "the study's 2 jobs on 2 cores)")
    parser.add_argument("--thumos-threads", type=int, default=2, help="torch threads at THUMOS14 size (default 2)")
    parser.add_argument("--iters", type=int, default=2, help="timed steps per case at THUMOS14 size")
    parser.add_argument("--out", default=str(ROOT / "tal_lab" / "study" / "epoch_seconds.json"))
    args = parser.parse_args()
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            threads = args.thumos_threads if size == "thumos14" else args.threads
            torch.set_num_threads(threads)
            for configuration, head in cases():
                if size == "thumos14":
                    row = thumos_figure(configuration, head, args.iters)
                else:
                    preset = size.removeprefix("synthetic-")
                    row = synthetic_figure(preset, configuration, head, Path(tmp) / "data" / preset,
                                           Path(tmp) / "runs")
                figures.append({"size": size, "configuration": configuration, "head": head, "device": "cpu",
                                "threads": threads, **row})
                print(f"{size:>16} {configuration:>8} {head:>12}: {row['seconds_per_epoch']:9.2f} s/epoch", flush=True)
    table = {"about": "seconds per training epoch measured by benchmarks/bench_study_epochs.py; tal-lab study "
                      "--dry-run scales them by epochs and training videos (tal_lab.study.estimates)",
             "machine": machine_of(torch.device("cpu")), "device": "cpu", "torch": torch.__version__,
             "commit": git_commit(),
             "measured": datetime.date.today().isoformat(), "figures": figures}
    write_json_atomic(args.out, table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
