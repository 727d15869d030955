"""``engine.compile``: torch.compile the detector's network parts for training.

The backbone, the neck and the heads' modules are compiled in place (``nn.Module.compile``:
state-dict keys stay ActionFormer's, checkpoints are unchanged); the detector's Python flow
around them (padding, label assignment, losses) stays eager. Shapes are compiled as dynamic,
since batches differ in padded length under ``minimal`` padding. On a CPU, inductor generates
C++ and needs a compiler: without one the run stays eager and says so. A part that dynamo cannot
compile falls back to eager (torch's ``suppress_errors``) rather than stopping a run.
"""

from __future__ import annotations

import shutil
import warnings

import torch
from torch import nn

__all__ = ["compile_detector", "cpu_compiler"]


def cpu_compiler() -> str | None:
    """The C++ compiler inductor would use on the CPU (``$CXX``, g++, clang++ or c++), or None."""
    from torch._inductor import config as inductor_config  # torch's compiler stack: only when asked for

    candidates = [inductor_config.cpp.cxx[0]] if inductor_config.cpp.cxx and inductor_config.cpp.cxx[0] else []
    for name in [*candidates, "g++", "clang++", "c++"]:
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_detector(detector: nn.Module, device: torch.device) -> list[str]:
    """Compile the network parts of ``detector`` in place; returns the names compiled (none when
    the device cannot compile, with a RuntimeWarning saying why)."""
    if device.type == "cpu" and cpu_compiler() is None:
        warnings.warn("engine.compile: no C++ compiler found (g++, clang++ or $CXX), which torch.compile needs on "
                      "the CPU; training runs eagerly", RuntimeWarning, stacklevel=2)
        return []
    import torch._dynamo  # noqa: F401 - torch's compiler stack: only when asked for

    torch._dynamo.config.suppress_errors = True  # a part dynamo cannot compile runs eagerly
    names = [name for name, _ in detector.named_children() if name != "point_generator"]
    for name in names:
        getattr(detector, name).compile(dynamic=True)
    return names
