"""What a run ran on, in words: the processor and its CPU count, or the GPU.

Run records and table captions name the machine behind every timing: ``torch.device`` says
only 'cpu' or 'cuda:0', and the same 'cpu' spans machines whose steps differ by 2x.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

__all__ = ["cpu_model", "usable_cpus", "machine_of"]

_CPUINFO = Path("/proc/cpuinfo")


def cpu_model() -> str | None:
    """The processor's model name (Linux: /proc/cpuinfo's 'model name'; elsewhere
    ``platform.processor()``), or None where neither says."""
    try:
        for line in _CPUINFO.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_of(device: torch.device) -> str:
    """E.g. 'AMD EPYC, 2 CPUs' on the CPU, 'NVIDIA H100 80GB HBM3' on a GPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpus = usable_cpus()
    return f"{cpu_model() or 'unknown processor'}, {cpus} CPU{'' if cpus == 1 else 's'}"
