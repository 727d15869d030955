"""Benchmark: how much of a tal_lab step is convolution, the floor that no rewrite of the rest can go below.

At THUMOS14 shapes (batch 2, 2048-d input, width 512) the detectors of the study spend most of a
training step and of an inference in ``nn.Conv1d``: the same convolutions, with the same
FLOPs, as the official code at the same padded length. This script measures, per configuration
and padded length, on this machine:

* ``step s``: the median wall time of ``--steps`` training steps after one warm-up (the
  engine's own :func:`~tal_lab.engine.trainer.training_step`), or of ``--steps`` inferences of
  one video (eval forward, decoding and NMS);
* ``conv share``: the share of the CPU time of one more step that torch's profiler puts in
  convolution kernels (forward and backward: ``mkldnn_convolution``, ``_slow_conv2d_*``,
  ``convolution_backward`` and their kin), and ``conv s`` = share x step s;
* ``conv GFLOP`` and ``GFLOP/s``: the convolutions' floating-point operations, counted from
  every ``nn.Conv1d`` call (2 x outputs x inputs-per-output x kernel; in training, the weight
  gradient costs as much again, and the input gradient too where the input needs one), over
  ``conv s``;
* ``matmul GFLOP/s``: one large float32 matrix product on the same threads, the machine's
  practical peak, for scale.

Each video has ``length`` valid steps and is padded as tal_lab pads it by default (``padded``:
to need for the transformer and conv backbones, to 2304 for SGP, whose outputs depend on it).
``conv s`` is the floor of that step at that padded length: only fewer convolution FLOPs (less
padding, a smaller model) or faster kernels (bf16 on CPUs that have it, a GPU) go below it.
With ``--official-json`` (the ``--json`` output of ``bench_vs_official.py`` from the same
machine), each row also shows the official time of the matching measurement and the ratio of
the floor to it: a target ratio below that floor ratio cannot be met at that padding.

Usage: ``python benchmarks/bench_floor.py [--configs original C tridet] [--train-lengths 2304 1601]
[--infer-lengths 1600] [--steps 2] [--threads 2] [--official-json bench.json]``

Default lengths: 2304 is THUMOS14's full training length (the official padding); 1601 is the
mean padded length of a THUMOS14 training epoch under ``minimal`` padding and 1269 with
``loader.length_buckets: 8``, as bench_vs_official.py reports them; 1600 is about the mean
length of its inference videos.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from bench_train import BATCH, ITERS_PER_EPOCH
from tal_lab.config import load_config, paper_configuration
from tal_lab.config.published import published_config
from tal_lab.engine.ema import ModelEMA
from tal_lab.engine.optim import build_optimizer, build_scheduler
from tal_lab.engine.trainer import training_step
from tal_lab.models import build_detector

CONFIGS = ("original", "C", "tridet")
# Profiler event names of the convolution kernels (CPU): the floor's share of a step.
CONV_KERNELS = ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward",
                "aten::convolution_backward", "aten::mkldnn_convolution_backward", "aten::thnn_conv2d",
                "aten::_convolution_depthwise2d", "aten::slow_conv_dilated2d", "aten::_nnpack_spatial_convolution",
                "aten::unfold_backward_conv")


def config_for(name: str) -> dict[str, Any]:
    """The THUMOS14 recipe of ``name`` ('original', 'C': ActionFormer's; 'tridet': TriDet's), with
    tal_lab's default padding ('auto': to need where that is exact, else the reference's 2304)."""
    recipe = "tridet" if name == "tridet" else "actionformer"
    base = load_config(dict(published_config("thumos", recipe), dataset_name="thumos"))
    return base if name == "tridet" else paper_configuration(name, base)


def random_batch(cfg: dict[str, Any], length: int, count: int, generator: torch.Generator) -> list[dict[str, Any]]:
    """``count`` videos of ``length`` valid feature steps and ~15 actions each."""
    ds, videos = cfg["dataset"], []
    for i in range(count):
        starts = torch.rand(15, generator=generator) * max(length - 160, 1)
        segments = torch.stack([starts, starts + 8 + torch.rand(15, generator=generator) * 150], 1).clamp(max=length)
        videos.append({"video_id": f"floor_{i}", "feats": torch.randn(ds["input_dim"], length, generator=generator),
                       "segments": segments, "labels": torch.randint(0, ds["num_classes"], (15,), generator=generator),
                       "fps": 30.0, "duration": length * ds["feat_stride"] / 30.0,
                       "feat_stride": float(ds["feat_stride"]), "feat_num_frames": float(ds["num_frames"])})
    return videos


class ConvFlops:
    """Counts the floating-point operations of every ``nn.Conv1d`` call of a model while active."""

    def __init__(self, model: nn.Module, training: bool) -> None:
        self.training, self.flops, self.handles = training, 0.0, []
        for module in model.modules():
            if isinstance(module, nn.Conv1d):
                self.handles.append(module.register_forward_hook(self._count))

    def _count(self, module: nn.Conv1d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        per_output = module.in_channels // module.groups * module.kernel_size[0]
        forward = 2.0 * output.numel() * per_output
        passes = 1.0
        if self.training:
            passes += 1.0 if module.weight.requires_grad else 0.0
            passes += 1.0 if inputs[0].requires_grad else 0.0
        self.flops += forward * passes

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def conv_share(run: Callable[[], Any]) -> float:
    """The share of ``run``'s profiled CPU time spent in convolution kernels."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if e.key in CONV_KERNELS)
    return conv / total if total else float("nan")


def measure(name: str, kind: str, length: int, steps: int) -> dict[str, Any]:
    """One row: a training step on ``BATCH`` videos of ``length`` or an inference of one video."""
    cfg = config_for(name)
    torch.manual_seed(0)
    model = build_detector(cfg)
    generator = torch.Generator().manual_seed(0)
    if kind == "train":
        model.train()
        optimizer = build_optimizer(model, cfg["opt"])
        scheduler = build_scheduler(optimizer, cfg["opt"], ITERS_PER_EPOCH)
        ema = ModelEMA(model, float(cfg["engine"]["ema_decay"]))
        videos = random_batch(cfg, length, BATCH, generator)
        clip = float(cfg["train_cfg"]["clip_grad_l2norm"])

        def run() -> Any:
            return training_step(model, videos, optimizer, scheduler, torch.device("cpu"), ema=ema, clip_norm=clip)
        padded = int(model.padding.train_length([length] * BATCH))
    else:
        model.eval()
        videos = random_batch(cfg, length, 1, generator)

        def run() -> Any:
            with torch.no_grad():
                return model(videos)
        padded = int(model.padding.eval_groups([length])[0][0])
    run()  # warm-up
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    counter = ConvFlops(model, training=kind == "train")
    share = conv_share(run)
    counter.remove()
    step = statistics.median(seconds)
    return {"config": name, "kind": kind, "length": length, "padded": padded, "step_s": step, "conv_share": share,
            "conv_s": share * step, "conv_gflop": counter.flops / 1e9,
            "conv_gflops_per_s": counter.flops / 1e9 / (share * step) if share > 0 else float("nan")}


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a float32 (size x size) @ (size x size) product on the current threads (median)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 / statistics.median(times) / 1e9


def official_seconds(path: Path | None) -> dict[tuple[str, str], float]:
    """(config, measurement) -> the official code's median seconds in a bench_vs_official.py ``--json``
    file; measurements 'train-full', 'train-lengths' (both padded to 2304 by the official code) and
    'infer' (per video)."""
    if path is None:
        return {}
    found: dict[tuple[str, str], float] = {}
    for entry in json.loads(path.read_text())["results"]:
        if entry["column"] != "official":
            continue
        values = [r["value"] for r in entry["rounds"] if "error" not in r and r.get("value") is not None]
        if values:
            found[(entry["config"], entry["measurement"])] = statistics.median(values)
    return found


def official_measurement(row: dict[str, Any]) -> str:
    """The bench_vs_official.py measurement a row compares with: full-T training for a 2304 batch,
    training at THUMOS14 lengths for a shorter one, inference."""
    if row["kind"] == "inference":
        return "infer"
    return "train-full" if row["length"] >= 2304 else "train-lengths"


def table(rows: Sequence[dict[str, Any]], official: dict[tuple[str, str], float]) -> str:
    head = (f"{'config':>8} {'what':>9} {'length':>6} {'padded':>6} {'step s':>7} {'conv share':>10} {'conv s':>7}"
            f" {'conv GFLOP':>10} {'GFLOP/s':>8}")
    if official:
        head += f" {'official s':>10} {'floor / official':>16}"
    lines = [head]
    for r in rows:
        line = (f"{r['config']:>8} {r['kind']:>9} {r['length']:>6} {r['padded']:>6} {r['step_s']:7.3f}"
                f" {r['conv_share']:10.0%} {r['conv_s']:7.3f} {r['conv_gflop']:10.1f} {r['conv_gflops_per_s']:8.0f}")
        if official:
            reference = official.get((r["config"], official_measurement(r)))
            line += (f" {reference:10.3f} {r['conv_s'] / reference:15.2f}x" if reference
                     else f" {'-':>10} {'-':>16}")
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--train-lengths", nargs="*", type=int, default=[2304, 1601],
                        help="padded training lengths (default 2304 1601)")
    parser.add_argument("--infer-lengths", nargs="*", type=int, default=[1600], help="inference video lengths")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per row after 1 warm-up (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--official-json", type=Path, default=None,
                        help="bench_vs_official.py --json output of this machine: adds the floor / official ratio")
    parser.add_argument("--json", type=Path, default=None, help="also save the rows here")
    args = parser.parse_args()
    if args.steps < 1 or args.threads < 1:
        parser.error("--steps and --threads must be at least 1")
    if any(not 64 <= n <= 2304 for n in args.train_lengths) or any(n < 64 for n in args.infer_lengths):
        parser.error("lengths must be at least 64 feature steps (training: at most max_seq_len 2304)")
    if args.official_json is not None and not args.official_json.is_file():
        parser.error(f"--official-json {args.official_json}: no such file")
    torch.set_num_threads(args.threads)
    official = official_seconds(args.official_json)
    peak = matmul_gflops()
    print(f"tal_lab convolution floor at THUMOS14 shapes (batch {BATCH} in training, 2048-d), CPU, {args.threads} "
          f"threads, torch {torch.__version__}; median of {args.steps} steps after a warm-up; "
          f"float32 matmul on these threads: {peak:.0f} GFLOP/s", flush=True)
    rows = []
    for name in args.configs:
        for kind, lengths in (("train", args.train_lengths), ("inference", args.infer_lengths)):
            for length in lengths:
                rows.append(measure(name, kind, length, args.steps))
                print(table(rows[-1:], official).splitlines()[-1], flush=True)
    print()
    print(table(rows, official))
    if args.json:
        args.json.write_text(json.dumps({"matmul_gflops": peak, "threads": args.threads, "torch": torch.__version__,
                                         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
