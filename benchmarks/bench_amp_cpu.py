"""Benchmark: the convolutions of the THUMOS14 models on a CPU, float32 against bf16, conv1d against matmul.

For each convolution shape of ActionFormer / TriDet at THUMOS14 size (batch 2, T 2304, width 512,
2048-d input, MLP 4x), forward and forward + backward in milliseconds (median of ``--repeats``
after two warm-ups):

* ``fp32 conv1d``: ``F.conv1d`` in float32 (the reference-precision path);
* ``bf16 conv1d``: ``F.conv1d`` under CPU autocast to bf16 (oneDNN's reduced-precision convolution,
  whose output PyTorch reorders from channels-last every call);
* ``bf16 matmul``: :func:`tal_lab.models.layers.conv.conv1d_as_matmul` under the same autocast
  (what :class:`tal_lab.models.layers.conv.Conv1d` runs in bf16 on a CPU).

Emulated bf16 (a CPU without AVX512-BF16 / AMX) is several times slower than float32; the header
says which this CPU is (:func:`tal_lab.core.autocast.cpu_has_native_bf16`). The whole training step
in both precisions: ``benchmarks/bench_train.py --amp bf16``.

Usage: ``PYTHONPATH=. python benchmarks/bench_amp_cpu.py [--threads 2] [--repeats 5] [--length 2304]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from tal_lab.core.autocast import cpu_has_native_bf16
from tal_lab.models.layers.conv import conv1d_as_matmul

# (what, C_in, C_out, kernel, stride, groups)
SHAPES = [
    ("input embedding", 2048, 512, 3, 1, 1),
    ("embedding / head conv", 512, 512, 3, 1, 1),
    ("q / k / v / proj", 512, 512, 1, 1, 1),
    ("MLP fc1", 512, 2048, 1, 1, 1),
    ("MLP fc2", 2048, 512, 1, 1, 1),
    ("conv backbone downsampling", 512, 512, 3, 2, 1),
    ("depthwise (q/k/v, SGP)", 512, 512, 3, 1, 512),
]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bench_shape(c_in: int, c_out: int, kernel: int, stride: int, groups: int, length: int,
                repeats: int) -> dict[str, tuple[float, float]]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, c_in, length, generator=generator, requires_grad=True)
    weight = torch.randn(c_out, c_in // groups, kernel, generator=generator, requires_grad=True)
    bias = torch.zeros(c_out, requires_grad=True)
    forms: dict[str, tuple[Callable[[], torch.Tensor], bool]] = {
        "fp32 conv1d": (lambda: F.conv1d(x, weight, bias, stride, kernel // 2, 1, groups), False),
        "bf16 conv1d": (lambda: F.conv1d(x, weight, bias, stride, kernel // 2, 1, groups), True),
    }
    if groups == 1:
        forms["bf16 matmul"] = (lambda: conv1d_as_matmul(x, weight, bias, stride), True)
    results = {}
    for name, (form, bf16) in forms.items():
        def forward() -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return form()

        def forward_backward() -> None:
            forward().float().sum().backward()

        with torch.no_grad():
            fwd = median_ms(forward, repeats)
        results[name] = (fwd, median_ms(forward_backward, repeats))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--length", type=int, default=2304, help="T (default 2304, THUMOS14's max_seq_len)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"convolutions at batch 2, T {args.length}: ms, forward / forward+backward, median of {args.repeats}; "
          f"{platform.processor() or platform.machine()}, native bf16 {cpu_has_native_bf16()}, "
          f"torch {torch.__version__}, {args.threads} threads")
    header = f"{'conv':28s} {'C_in>C_out k/s/g':>18s} {'fp32 conv1d':>16s} {'bf16 conv1d':>16s} {'bf16 matmul':>16s}"
    print(header)
    for what, c_in, c_out, kernel, stride, groups in SHAPES:
        res = bench_shape(c_in, c_out, kernel, stride, groups, args.length, args.repeats)
        cells = [f"{res[k][0]:6.1f} / {res[k][1]:6.1f}" if k in res else f"{'-':>15s}"
                 for k in ("fp32 conv1d", "bf16 conv1d", "bf16 matmul")]
        print(f"{what:28s} {f'{c_in}>{c_out} {kernel}/{stride}/{groups}':>18s} " + " ".join(f"{c:>16s}" for c in cells),
              flush=True)


if __name__ == "__main__":
    main()
