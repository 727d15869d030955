"""Devices and multi-process training (torchrun + DistributedDataParallel).

One process per device, launched by ``torchrun --nproc_per_node N -m tal_lab train CONFIG``:
torchrun sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` / ``MASTER_PORT`` and
:func:`init_distributed` joins the group (nccl on GPUs, gloo on CPU). Every rank trains on its
share of the data (a ``DistributedSampler``); DDP averages gradients, so all ranks hold the same
weights; rank 0 alone logs, evaluates and writes checkpoints and the run store.

ActionFormer runs several GPUs through ``nn.DataParallel``: one batch of ``loader.batch_size``
split over the devices, with the learning rate multiplied by their number. Here each of the
``W`` ranks takes ``batch_size / W`` videos per step (same global batch) and the learning rate
is multiplied by ``W``, which reproduces that recipe.
"""

from __future__ import annotations

import datetime
import os
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistContext", "resolve_device", "init_distributed", "shutdown_distributed", "barrier",
           "broadcast_object", "wrap_ddp", "unwrap"]

# How long ranks wait for each other (rank 0 evaluates while the others wait at a barrier).
_PROCESS_GROUP_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class DistContext:
    """Where this process runs and which share of the work is its own."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # True when init_distributed created the process group

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(cfg: Mapping[str, Any], local_rank: int = 0) -> torch.device:
    """The device of this process from ``engine.device`` and ActionFormer's ``devices``.

    ``engine.device: auto`` takes the config's first ``devices`` entry when it names a CUDA
    device that exists (ActionFormer's configs say ``['cuda:0']``), else the CPU. Under
    torchrun each rank takes ``cuda:LOCAL_RANK``.

    Raises:
        ValueError: a CUDA device is asked for on a machine without one.
    """
    wanted = str(cfg["engine"]["device"])
    if wanted == "auto":
        first = str((cfg["devices"] or ["cpu"])[0])
        wanted = first if (first.startswith("cuda") and torch.cuda.is_available()) else "cpu"
        devices = cfg["devices"]
        if len(devices) > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1 and torch.cuda.is_available():
            warnings.warn(f"config key 'devices' lists {len(devices)} devices, but this is one process: "
                          f"launch with `torchrun --nproc_per_node {len(devices)} -m tal_lab train ...` to use them; "
                          f"running on {wanted}", stacklevel=2)
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"config key 'engine.device': {wanted!r} asked for, but CUDA is not available")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return torch.device("cuda", local_rank)
        return torch.device(wanted)
    if wanted != "cpu":
        raise ValueError(f"config key 'engine.device': {wanted!r} is not auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def init_distributed(cfg: Mapping[str, Any]) -> DistContext:
    """Join the process group torchrun describes in the environment, or run alone.

    Returns a context with ``world_size == 1`` when ``WORLD_SIZE`` is unset or 1. When a process
    group already exists (a caller set it up), it is used as is.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 and not dist.is_initialized():
        return DistContext(device=resolve_device(cfg))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(cfg, local_rank)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, timeout=_PROCESS_GROUP_TIMEOUT)
        owns = True
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                       device=device, owns_group=owns)


def shutdown_distributed(ctx: DistContext) -> None:
    """Leave the process group if :func:`init_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op when alone)."""
    if ctx.enabled:
        dist.barrier()


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled by torch.distributed; only our own values)."""
    if not ctx.enabled:
        return obj
    holder = [obj if ctx.is_main else None]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def wrap_ddp(model: nn.Module, ctx: DistContext) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel when several ranks run, else itself."""
    if not ctx.enabled:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # Every parameter of the detectors takes part in each loss: no unused-parameter search.
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=False)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP / DataParallel wrapper."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model
