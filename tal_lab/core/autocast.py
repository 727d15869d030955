"""Mixed precision: the one autocast context that training and inference share (``engine.amp``)."""

from __future__ import annotations

import torch

__all__ = ["AMP_MODES", "amp_dtype", "autocast"]

# engine.amp: 'none' computes in the weights' dtype; the others autocast on CUDA only.
AMP_MODES: tuple[str, ...] = ("none", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The dtype ``engine.amp`` autocasts to on ``device``; None for full precision ('none', or
    any device but CUDA).

    Raises:
        ValueError: ``amp`` is not one of :data:`AMP_MODES`.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"engine.amp must be one of {AMP_MODES}, got {amp!r}")
    return _AMP_DTYPES.get(amp) if device.type == "cuda" else None


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
