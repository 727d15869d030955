"""Median wall-clock timing shared by the benchmark scripts (run as ``python benchmarks/x.py``)."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch


def median_seconds(fn: Callable[[], Any], repeats: int, device: torch.device | None = None,
                   warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones.

    On a CUDA ``device`` the clock waits for queued kernels before and after each call.
    """
    def sync() -> None:
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
