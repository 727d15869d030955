"""The pieces the engine trains: detector, datasets and loaders, built from a config.

Thin adapters over ``tal_lab.models`` and ``tal_lab.data``, plus ActionFormer's ``fix_random_seed``.
"""

from __future__ import annotations

import os
import random
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from tal_lab.data import build_dataset
from tal_lab.data.batching import collate_videos
from tal_lab.data.loader import make_data_loader, seed_worker
from tal_lab.models import build_detector

__all__ = ["fix_random_seed", "build_detector", "build_split", "build_train_loader", "build_eval_loader",
           "empty_label_ids", "loss_normalizer_of", "count_parameters"]


def fix_random_seed(seed: int, deterministic_cuda: bool = True) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA), as ActionFormer's ``fix_random_seed``.

    On CUDA the reference also asks for deterministic kernels; here that request only warns
    where an operation has no deterministic implementation (the reference would stop).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        if deterministic_cuda:
            # cuBLAS needs this workspace setting to be deterministic (CUDA >= 10.2).
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
            torch.use_deterministic_algorithms(True, warn_only=True)


def build_split(cfg: Mapping[str, Any], split: str, is_training: bool) -> Dataset:
    """``tal_lab.data.build_dataset(cfg, split, is_training)`` ('train' or 'val')."""
    return build_dataset(cfg, split, is_training)


def build_train_loader(
    dataset: Dataset, cfg: Mapping[str, Any], batch_size: int, seed: int, rank: int = 0, world_size: int = 1
) -> DataLoader:
    """The training loader: shuffled, last partial batch dropped, seeded (ActionFormer's).

    With several ranks each takes its share through a ``DistributedSampler`` (seeded; the
    trainer calls ``set_epoch`` every epoch) and ``batch_size`` videos per step.
    """
    num_workers = int(cfg["loader"]["num_workers"])
    length_buckets = int(cfg["loader"]["length_buckets"])
    if world_size == 1:
        return make_data_loader(dataset, True, batch_size, num_workers, seed, length_buckets=length_buckets)
    if length_buckets:
        raise ValueError(f"loader.length_buckets {length_buckets} is for one process; with {world_size} ranks "
                         "each rank's DistributedSampler shuffles its share: set loader.length_buckets 0")
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                 drop_last=True)
    generator = torch.Generator()
    generator.manual_seed(seed + rank)
    extra: dict[str, Any] = {"persistent_workers": True, "worker_init_fn": seed_worker} if num_workers else {}
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=num_workers,
                      collate_fn=collate_videos, generator=generator, **extra)


def build_eval_loader(dataset: Dataset, cfg: Mapping[str, Any]) -> DataLoader:
    """The evaluation loader: in order, ``engine.eval_batch_size`` videos per batch (1 as the reference)."""
    batch = int(cfg["engine"]["eval_batch_size"])
    return make_data_loader(dataset, False, batch, int(cfg["loader"]["num_workers"]), int(cfg["init_rand_seed"]))


def empty_label_ids(dataset: Dataset) -> list[int] | None:
    """Class ids without any training instance (ActionFormer's ``empty_label_ids``), if known."""
    attributes = getattr(dataset, "attributes", None)
    if isinstance(attributes, Mapping) and "empty_label_ids" in attributes:
        return [int(c) for c in attributes["empty_label_ids"]]
    ids = getattr(dataset, "empty_label_ids", None)
    return None if ids is None else [int(c) for c in ids]


def loss_normalizer_of(model: nn.Module) -> Any:
    """The detector's moving positive-count normaliser (has state_dict), or None."""
    normalizer = getattr(model, "loss_normalizer", None)
    return normalizer if hasattr(normalizer, "state_dict") and hasattr(normalizer, "load_state_dict") else None


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (shared ones once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
