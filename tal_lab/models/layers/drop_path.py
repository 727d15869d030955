"""Stochastic depth with ActionFormer's per-channel affine scale (``drop_path_*.scale``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["drop_path", "AffineDropPath", "affine_drop_path_or_identity"]


def drop_path(x: Tensor, drop_prob: float, training: bool) -> Tensor:
    """Stochastic depth: zero whole samples with probability ``drop_prob``, rescale the rest.

    Shapes:
        x: (B, ...) -> same shape.
    """
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1.0 - drop_prob
    keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
    keep = (keep + keep_prob).floor_()  # 1 with probability keep_prob
    return x.div(keep_prob) * keep


class AffineDropPath(nn.Module):
    """Per-channel learnable scale (init 1e-4, as in CaiT's LayerScale) followed by drop path.

    Shapes:
        x: (B, C, T) -> (B, C, T); ``scale`` is [1, C, 1].
    """

    def __init__(self, num_channels: int, drop_prob: float = 0.0, init_scale: float = 1e-4) -> None:
        super().__init__()
        self.scale = nn.Parameter(init_scale * torch.ones(1, num_channels, 1))
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(self.scale * x, self.drop_prob, self.training)


def affine_drop_path_or_identity(num_channels: int, drop_prob: float) -> nn.Module:
    """:class:`AffineDropPath` if ``drop_prob`` > 0, else identity (the references' checkpoints
    hold the scales only with drop path on)."""
    return AffineDropPath(num_channels, drop_prob) if drop_prob > 0 else nn.Identity()
