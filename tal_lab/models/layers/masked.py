"""Masked 1D operations on (B, C, T) features with (B, 1, T) bool masks (True = valid).

A stride-s op returns features and mask of length ``T // s``; the mask is downsampled by
nearest neighbour (``mask[..., ::s]``), as ActionFormer does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tal_lab.core.autocast import active_autocast_dtype
from tal_lab.models.layers.conv import Conv1d

__all__ = ["downsample_mask", "MaskedConv1D", "max_pool_downsample"]


def downsample_mask(mask: Tensor, stride: int) -> Tensor:
    """Nearest-neighbour downsampling of a validity mask (= ``F.interpolate(..., 'nearest')``).

    Shapes:
        mask: (B, 1, T) bool with T divisible by ``stride``; returns (B, 1, T // stride).
    """
    return mask[..., ::stride] if stride > 1 else mask


class MaskedConv1D(nn.Module):
    """A :class:`~tal_lab.models.layers.conv.Conv1d` whose output is zeroed at invalid steps (the input is
    used as it is).

    ``float32_output``: under autocast the convolution runs in float32 (a head's last layer,
    whose outputs become scores and offsets); without autocast it changes nothing.

    Shapes:
        x: (B, C_in, T); mask: (B, 1, T) bool -> (B, C_out, T // stride), (B, 1, T // stride).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = True,
        float32_output: bool = False,
    ) -> None:
        super().__init__()
        # A head's prediction layer under mixed precision: bf16 logits have 8 mantissa bits, so
        # their scores tie by the hundreds (the soft-NMS then runs 2x longer and mAP ranks ties)
        self.float32_output = float32_output
        if kernel_size % 2 != 1:
            raise ValueError(f"MaskedConv1D needs an odd kernel size (centred window), got {kernel_size}")
        self.stride = stride
        self.conv = Conv1d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                           groups=groups, bias=bias)
        if bias:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[-1] % self.stride != 0:
            raise ValueError(f"sequence length {x.shape[-1]} is not divisible by the conv stride {self.stride}")
        out_mask = downsample_mask(mask, self.stride)
        if self.float32_output and active_autocast_dtype(x.device.type) is not None:
            with torch.autocast(x.device.type, enabled=False):
                out = self.conv(x.float())
        else:
            out = self.conv(x)
        return out * out_mask.to(out.dtype), out_mask


def max_pool_downsample(stride: int) -> nn.MaxPool1d:
    """The references' strided max-pool, kernel stride + 1: (B, C, T) -> (B, C, T // stride)."""
    return nn.MaxPool1d(stride + 1, stride, (stride + 1) // 2)
