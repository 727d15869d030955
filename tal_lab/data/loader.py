"""DataLoader construction: shuffling, seeded and persistent workers, the list collator.

As ActionFormer's ``make_data_loader``: training loaders shuffle and drop the last partial
batch, evaluation loaders keep the order; the collator returns the list of video dicts. Every
random draw is seeded: the shuffling order by a ``torch.Generator`` seeded from ``seed``, and
each worker reseeds python's ``random``, numpy and the dataset's truncation generator from its
torch seed (``torch.initial_seed()``, which the loader derives from the generator and the
worker id), so the same seed and number of workers give the same batches. Workers are
persistent: they load features lazily and stay up across epochs.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from tal_lab.data.batching import collate_videos
from tal_lab.data.bucketing import LengthBucketBatchSampler
from tal_lab.data.build import build_dataset

__all__ = ["seed_worker", "make_data_loader", "build_data_loader"]

# python's random.seed and numpy's legacy seeding take seeds below 2**32; the reference uses 2**31.
_SEED_MODULUS = 2**31


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: reseed python, numpy and the dataset's generator."""
    seed = torch.initial_seed() % _SEED_MODULUS
    random.seed(seed)
    np.random.seed(seed)
    info = get_worker_info()
    dataset = getattr(info, "dataset", None)
    # Subset / ConcatDataset wrappers: reseed the innermost dataset that has a generator.
    while dataset is not None and not hasattr(dataset, "reseed"):
        dataset = getattr(dataset, "dataset", None)
    if dataset is not None:
        dataset.reseed(seed)


def make_data_loader(
    dataset: Dataset,
    is_training: bool,
    batch_size: int,
    num_workers: int,
    seed: int,
    prefetch_factor: int | None = None,
    length_buckets: int = 0,
) -> DataLoader:
    """A DataLoader over video dicts (batches are lists of dicts).

    Args:
        is_training: shuffle and drop the last partial batch.
        num_workers: 0 loads in the main process (the dataset's generator then keeps the seed
            it was built with); > 0 starts persistent, seeded workers.
        seed: seeds the shuffling order and, through it, the workers.
        prefetch_factor: batches each worker loads ahead (torch default 2); workers only.
        length_buckets: training only: 0 shuffles as the reference; N > 0 sorts the shuffled
            videos by length within pools of N batches (:mod:`tal_lab.data.bucketing`; the
            dataset must have ``item_lengths``).

    Raises:
        ValueError: a training loader whose dataset is smaller than one batch (no batches), or
            length buckets for a dataset that cannot tell its videos' lengths.
    """
    if is_training and len(dataset) < batch_size:  # type: ignore[arg-type]
        raise ValueError(f"training set has {len(dataset)} videos, fewer than loader.batch_size "  # type: ignore[arg-type]
                         f"{batch_size}; with drop_last the loader would yield no batch")
    generator = torch.Generator()
    generator.manual_seed(seed)
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra["persistent_workers"] = True
        extra["worker_init_fn"] = seed_worker
        if prefetch_factor is not None:
            extra["prefetch_factor"] = prefetch_factor
    if is_training and length_buckets > 0:
        if not hasattr(dataset, "item_lengths"):
            raise ValueError(f"loader.length_buckets {length_buckets}: the {type(dataset).__name__} dataset "
                             "has no item_lengths() to sort its videos by; set loader.length_buckets 0")
        # The sampler draws from the loader's generator, which training checkpoints save.
        sampler = LengthBucketBatchSampler(dataset.item_lengths(), batch_size, length_buckets, generator)
        return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate_videos,
                          generator=generator, **extra)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=is_training,
        drop_last=is_training,
        num_workers=num_workers,
        collate_fn=collate_videos,
        generator=generator,
        **extra,
    )


def build_data_loader(
    cfg: Mapping[str, Any],
    split: str,
    is_training: bool | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
) -> DataLoader:
    """Dataset and loader of a full config for 'train' or 'val'.

    Defaults: ``cfg['loader']`` batch size and workers for training; evaluation loads one video
    per batch (ActionFormer evaluates with batch size 1). The seed is ``cfg['init_rand_seed']``.
    """
    training = (split == "train") if is_training is None else is_training
    dataset = build_dataset(cfg, split, training)
    if batch_size is None:
        batch_size = int(cfg["loader"]["batch_size"]) if training else 1
    if num_workers is None:
        num_workers = int(cfg["loader"]["num_workers"])
    return make_data_loader(dataset, training, batch_size, num_workers, int(cfg["init_rand_seed"]),
                            length_buckets=int(cfg["loader"]["length_buckets"]))
