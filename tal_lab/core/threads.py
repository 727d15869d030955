"""Run small-tensor CPU work on one intra-op thread (post-processing, NMS).

With the small tensors of post-processing, intra-op threads only add a synchronisation per
operation, and a late thread on a busy machine stalls each one (a golden video's
post-processing on a loaded 2-core VM: ~90 ms on 1 thread, ~650 ms on 2).
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import torch
from torch import Tensor

__all__ = ["one_cpu_thread", "single_threaded_on_cpu"]

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


@contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run on one intra-op thread when on the CPU. The count is process-wide (restored
    afterwards): do not run this beside other threaded CPU work.
    """
    previous = torch.get_num_threads()
    if device.type != "cpu" or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def single_threaded_on_cpu(fn: _Fn) -> _Fn:
    """Decorator: run ``fn`` under :func:`one_cpu_thread` for the device of its first tensor
    argument (or of the first tensor of its first list / tuple argument)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        device = torch.device("cpu")
        for value in [*args, *kwargs.values()]:
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], Tensor):
                value = value[0]
            if isinstance(value, Tensor):
                device = value.device
                break
        with one_cpu_thread(device):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
