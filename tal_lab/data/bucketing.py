"""Length-bucketed training batches: shuffled, then sorted by length within pools of batches.

With ``model.train_padding`` minimal a batch costs as much as its longest video. Shuffled
pairs of THUMOS14 training videos (cropped to at most 2304 steps) pad to about 1,600 steps on
average; pairs of neighbours in length pad to about 1,200. Sorting the whole epoch would give
the same pairs every epoch, so the sort is local: each epoch shuffles the videos, cuts the
order into pools of ``pool_batches`` batches, sorts each pool by length (stable: equal lengths
keep the shuffled order) and shuffles the batches. A pool of 1 batch is the plain shuffle.

This changes which videos share a batch, so a run with it is a different run from the
reference's: ``loader.length_buckets`` is off (0) by default, and its effect on accuracy is
measured in the README's Speed section.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler

__all__ = ["LengthBucketBatchSampler"]


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices whose lengths are close, drawn afresh each epoch.

    Drops the last ``len(lengths) % batch_size`` videos of each epoch's shuffle, as a shuffled
    loader with ``drop_last`` does. Every draw comes from ``generator``; pass the loader's own
    generator so that a training checkpoint, which saves it, resumes the same batches.

    Args:
        lengths: each video's length as a training item (only their order matters).
        batch_size: videos per batch.
        pool_batches: batches per sorted pool (>= 1).
        generator: the random source of the shuffles.

    Raises:
        ValueError: a non-positive batch size or pool, fewer videos than one batch, or a
            length that is not a finite number.
    """

    def __init__(self, lengths: Sequence[float], batch_size: int, pool_batches: int,
                 generator: torch.Generator) -> None:
        if batch_size < 1 or pool_batches < 1:
            raise ValueError(f"batch_size ({batch_size}) and pool_batches ({pool_batches}) must be >= 1")
        if len(lengths) < batch_size:
            raise ValueError(f"{len(lengths)} videos are fewer than one batch of {batch_size}")
        self.lengths = [float(length) for length in lengths]
        bad = next((i for i, length in enumerate(self.lengths) if not math.isfinite(length)), None)
        if bad is not None:
            raise ValueError(f"video {bad} has length {lengths[bad]!r}: lengths must be finite numbers")
        self.batch_size = batch_size
        self.pool_batches = pool_batches
        self.generator = generator

    def __len__(self) -> int:
        return len(self.lengths) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()[: len(self) * self.batch_size]
        pool = self.batch_size * self.pool_batches
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start:start + pool], key=self.lengths.__getitem__)
            batches.extend(chunk[k:k + self.batch_size] for k in range(0, len(chunk), self.batch_size))
        for index in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[index]
