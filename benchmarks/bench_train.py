"""Benchmark: seconds per training iteration and per epoch at THUMOS14 shapes, per configuration.

Each configuration of the study (original, A-E) is built at the full THUMOS14 size
(ActionFormer's ``configs/thumos_i3d.yaml``: 2048-d I3D input, max_seq_len 2304, width 512,
window 19) and trained on random features of that shape, batch 2, with the engine's own step
(:func:`tal_lab.engine.trainer.training_step`: forward, backward, gradient clipping, AdamW,
schedule, EMA). One warm-up iteration is not timed; the median of ``--iters`` timed iterations
is reported, and an epoch is 100 iterations (200 THUMOS14 training videos, batch 2). On CUDA
the peak GPU memory is reported too.

For scale only (../shared/reference/PERFORMANCE.md, other machines): the official code took
18.6-20.2 s per epoch for the original on one H200; CPU figures differ between machines, so
compare with the official code measured in the same run (bench_vs_official.py).

Usage: ``python benchmarks/bench_train.py [--device auto|cpu|cuda] [--iters 3]
[--configs original E] [--amp none|bf16|fp16] [--threads N] [--set engine.compile=true ...]``

The official code measured beside tal_lab in one run: ``benchmarks/bench_vs_official.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Sequence

import torch

from tal_lab.config import PAPER_CONFIGURATIONS, apply_overrides, load_config, paper_configuration
from tal_lab.core.autocast import effective_amp
from tal_lab.engine.compile import compile_detector
from tal_lab.config.published import published_config
from tal_lab.engine.ema import ModelEMA
from tal_lab.engine.optim import build_optimizer, build_scheduler
from tal_lab.engine.trainer import training_step
from tal_lab.models import build_detector

ITERS_PER_EPOCH = 100  # THUMOS14: 200 training videos ('Validation'), batch 2
BATCH = 2


def thumos_config(name: str, amp: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The THUMOS14 config of ActionFormer with the study's configuration ``name`` (and ``overrides``)."""
    base = load_config(dict(published_config("thumos"), dataset_name="thumos", engine={"amp": amp}))
    return apply_overrides(paper_configuration(name, base), list(overrides))


def random_videos(cfg: dict[str, Any], generator: torch.Generator) -> list[dict[str, Any]]:
    """A batch of THUMOS14-shaped videos: full-length features and ~15 actions each (grid units)."""
    ds = cfg["dataset"]
    length, videos = int(ds["max_seq_len"]), []
    for i in range(BATCH):
        starts = torch.rand(15, generator=generator) * (length - 200)
        segments = torch.stack([starts, starts + 8 + torch.rand(15, generator=generator) * 150], dim=1)
        videos.append({"video_id": f"bench_{i}", "feats": torch.randn(ds["input_dim"], length, generator=generator),
                       "segments": segments, "labels": torch.randint(0, ds["num_classes"], (15,), generator=generator),
                       "fps": 30.0, "duration": length * ds["feat_stride"] / 30.0,
                       "feat_stride": float(ds["feat_stride"]), "feat_num_frames": float(ds["num_frames"])})
    return videos


def bench_config(name: str, device: torch.device, iters: int, amp: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    cfg = thumos_config(name, amp, overrides)
    amp = effective_amp(device.type, amp)
    torch.manual_seed(0)
    model = build_detector(cfg).to(device)
    model.train()
    optimizer = build_optimizer(model, cfg["opt"])
    scheduler = build_scheduler(optimizer, cfg["opt"], ITERS_PER_EPOCH)
    ema = ModelEMA(model, cfg["engine"]["ema_decay"])
    if cfg["engine"]["compile"]:
        compile_detector(model, device)
    scaler = torch.amp.GradScaler("cuda") if (amp == "fp16" and device.type == "cuda") else None
    videos = random_videos(cfg, torch.Generator().manual_seed(0))
    clip = float(cfg["train_cfg"]["clip_grad_l2norm"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> tuple[float, float]:
        start, cpu_start = time.perf_counter(), time.process_time()
        losses = training_step(model, videos, optimizer, scheduler, device, ema=ema, scaler=scaler,
                               clip_norm=clip, amp=amp)
        float(losses["final_loss"])  # wait for the device
        return time.perf_counter() - start, time.process_time() - cpu_start

    warmup = step()[0]  # warm-up: allocator, kernels, first-call overheads (compilation with --set engine.compile=true)
    times = [step() for _ in range(iters)]
    per_iter = statistics.median(t for t, _ in times)
    row = {"config": name, **PAPER_CONFIGURATIONS[name], "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
           "sec_per_iter": per_iter, "sec_per_epoch": per_iter * ITERS_PER_EPOCH, "iters_timed": iters,
           # CPU seconds of this process: on a shared machine, what the step costs without the waiting.
           "cpu_sec_per_iter": statistics.median(c for _, c in times), "warmup_sec": warmup}
    if device.type == "cuda":
        row["peak_gpu_GiB"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per configuration (after 1 warm-up)")
    parser.add_argument("--configs", nargs="+", default=list(PAPER_CONFIGURATIONS), help="original, A-E")
    parser.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"),
                        help="mixed precision (CUDA; bf16 also on CPUs with native bf16, else float32 with a warning)")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides, e.g. model.train_padding=reference engine.compile=true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"tal_lab training step at THUMOS14 shapes (batch {BATCH}, T 2304, 2048-d), {where}, amp "
          f"{effective_amp(device.type, args.amp)}, overrides {args.overrides or 'none'}; median of {args.iters} "
          f"iterations after one warm-up, epoch = {ITERS_PER_EPOCH} iterations")
    header = (f"{'config':>9} {'backbone':>16} {'neck':>9} {'params(M)':>10} {'s/iter':>8} {'s/epoch':>9}"
              f" {'cpu s/iter':>10} {'warm-up s':>9}")
    print(header + ("  peak GPU GiB" if device.type == "cuda" else ""))
    for name in args.configs:
        row = bench_config(name, device, args.iters, args.amp, args.overrides)
        line = (f"{name:>9} {row['backbone_type']:>16} {row['fpn_type']:>9} {row['params_M']:10.2f} "
                f"{row['sec_per_iter']:8.3f} {row['sec_per_epoch']:9.1f} {row['cpu_sec_per_iter']:10.2f}"
                f" {row['warmup_sec']:9.1f}")
        if device.type == "cuda":
            line += f"  {row['peak_gpu_GiB']:12.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
