"""Point generator: the anchor-free 'points' of every pyramid level.

Level l with stride s has one point per step at t = 0, s, 2s, ... (level-0 grid units, no
half-stride offset), with that level's regression range. Points are computed on the fly for the
lengths at hand, so unlike the reference there is no buffer of ``max_seq_len *
max_buffer_len_factor`` points to overflow on very long inference inputs.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["PointGenerator"]


class PointGenerator(nn.Module):
    """Per-level points ``(t, reg_range_low, reg_range_high, stride)``.

    Shapes:
        forward(lengths) -> list of (T_l, 4) tensors, one per level.
    """

    def __init__(self, strides: Sequence[int], regression_range: Sequence[Sequence[float]]) -> None:
        super().__init__()
        if len(strides) != len(regression_range):
            raise ValueError(f"{len(strides)} pyramid levels but {len(regression_range)} regression ranges "
                             "(model.regression_range needs one [low, high] per level)")
        self.strides = [int(s) for s in strides]
        self.regression_range = [(float(lo), float(hi)) for lo, hi in regression_range]

    def forward(
        self,
        lengths: Sequence[int],
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> list[Tensor]:
        if len(lengths) != len(self.strides):
            raise ValueError(f"got {len(lengths)} level lengths for {len(self.strides)} levels")
        points = []
        for length, stride, (low, high) in zip(lengths, self.strides, self.regression_range):
            level = torch.empty(int(length), 4, device=device, dtype=dtype)
            level[:, 0] = torch.arange(int(length), device=device, dtype=dtype) * stride
            level[:, 1] = low
            level[:, 2] = high
            level[:, 3] = stride
            points.append(level)
        return points

    def extra_repr(self) -> str:
        return f"strides={self.strides}, regression_range={self.regression_range}"
