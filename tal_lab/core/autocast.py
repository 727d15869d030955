"""Mixed precision: the one autocast context that training and inference share (``engine.amp``).

``engine.amp`` means the same on every device where the device can do it: CUDA autocasts to
bf16 or fp16; a CPU autocasts to bf16 when it has native bf16 arithmetic (AVX512-BF16 or AMX:
:func:`cpu_has_native_bf16`). Elsewhere (fp16 on a CPU, bf16 on a CPU without it, MPS) the run
computes in float32 and :func:`effective_amp` says so once with a warning: oneDNN emulates bf16
on such CPUs, several times slower than float32, which nobody asking for mixed precision wants.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch

__all__ = ["AMP_MODES", "active_autocast_dtype", "amp_dtype", "autocast", "cpu_has_native_bf16", "effective_amp"]

# engine.amp: 'none' computes in the weights' dtype.
AMP_MODES: tuple[str, ...] = ("none", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# /proc/cpuinfo flags of native bf16 arithmetic (AVX512-BF16 dot products, AMX tiles).
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_CPUINFO = Path("/proc/cpuinfo")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX), as oneDNN sees it."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        if probe is not None and not probe():
            return False
    except RuntimeError:  # a build without oneDNN
        return False
    cpuinfo = _CPUINFO
    if cpuinfo.is_file():  # oneDNN also reports 'supported' for plain AVX-512 (emulated): ask the flags
        flags = set(cpuinfo.read_text(errors="replace").split())
        return any(flag in flags for flag in _BF16_FLAGS)
    return probe is not None  # macOS / Windows: trust oneDNN


def _check(amp: str) -> None:
    if amp not in AMP_MODES:
        raise ValueError(f"engine.amp must be one of {AMP_MODES}, got {amp!r}")


@functools.lru_cache(maxsize=None)
def effective_amp(device_type: str, amp: str) -> str:
    """The precision ``engine.amp`` gives on a device of this type: ``amp`` itself where the
    device does it, else 'none' (float32), with a warning the first time.

    Raises:
        ValueError: ``amp`` is not one of :data:`AMP_MODES`.
    """
    _check(amp)
    if amp == "none" or device_type == "cuda" or (device_type == "cpu" and amp == "bf16" and cpu_has_native_bf16()):
        return amp
    reason = ("this CPU has no native bf16 arithmetic (AVX512-BF16 or AMX); emulated bf16 is slower than float32"
              if device_type == "cpu" and amp == "bf16" else f"{amp} autocast is not supported here")
    warnings.warn(f"engine.amp {amp!r} on {device_type}: {reason}; computing in float32", RuntimeWarning,
                  stacklevel=2)
    return "none"


def amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The dtype ``engine.amp`` autocasts to on ``device``; None for full precision ('none', or
    a mode the device cannot do: :func:`effective_amp`).

    Raises:
        ValueError: ``amp`` is not one of :data:`AMP_MODES`.
    """
    return _AMP_DTYPES.get(effective_amp(device.type, amp))


def active_autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype an autocast region open here casts ``device_type`` ops to; None outside one (and
    on devices without autocast, such as 'meta')."""
    if not torch.amp.is_autocast_available(device_type) or not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


def autocast(device: torch.device, amp: str) -> torch.autocast:
    """The autocast context of ``engine.amp`` on ``device`` (:func:`amp_dtype`).

    Full precision switches autocast off explicitly rather than leaving it alone, so an
    autocast region the caller may have opened does not leak reduced precision into a run
    configured without it.

    Raises:
        ValueError: ``amp`` is not one of :data:`AMP_MODES`.
    """
    dtype = amp_dtype(device, amp)
    if dtype is None:
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type=device.type, dtype=dtype)
