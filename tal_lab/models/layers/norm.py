"""Normalisation and scaling layers with ActionFormer's parameter names and numerics."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["LayerNorm", "Scale"]


class _ChannelLayerNorm(torch.autograd.Function):
    """LayerNorm over dim 1 of (B, C, T) with a hand-written backward.

    Autograd of the plain formula costs about twice as many memory passes (and
    ``torch.var_mean`` over a strided dim is slow on the CPU); this keeps x-hat and 1/std and
    computes the usual closed-form gradient. Half-precision inputs are normalised in float32.

    Shapes:
        x: (B, C, T); weight, bias: (1, C, 1) -> (B, C, T).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
        dtype, param_dtype = x.dtype, weight.dtype
        if dtype in (torch.float16, torch.bfloat16) or param_dtype in (torch.float16, torch.bfloat16):
            x, weight, bias = x.float(), weight.float(), bias.float()
        centred = x - x.mean(dim=1, keepdim=True)
        rstd = torch.rsqrt(centred.square().mean(dim=1, keepdim=True) + eps)  # (B, 1, T)
        xhat = centred.mul_(rstd)
        ctx.save_for_backward(xhat, rstd, weight)
        ctx.in_dtype, ctx.param_dtype = dtype, param_dtype
        return torch.addcmul(bias, xhat, weight).to(dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        xhat, rstd, weight = ctx.saved_tensors
        grad = grad.to(xhat.dtype)
        grad_bias = grad.sum(dim=(0, 2), keepdim=True)
        grad_weight = (grad * xhat).sum(dim=(0, 2), keepdim=True)
        grad_xhat = grad * weight
        mean_g = grad_xhat.mean(dim=1, keepdim=True)
        mean_gx = (grad_xhat * xhat).mean(dim=1, keepdim=True)
        # d/dx of (x - mu) / sigma: rstd * (g - mean(g) - xhat * mean(g * xhat))
        grad_x = torch.addcmul(grad_xhat.sub_(mean_g), xhat, mean_gx, value=-1.0).mul_(rstd)
        return (grad_x.to(ctx.in_dtype), grad_weight.to(ctx.param_dtype), grad_bias.to(ctx.param_dtype), None)


class LayerNorm(nn.Module):
    """LayerNorm over channels of (B, C, T) features; weight and bias have shape [1, C, 1].

    Normalises each time step over C with the biased variance (eps inside the square root),
    so an all-zero (padded) step maps to ``bias``.

    Shapes:
        x: (B, C, T) -> (B, C, T).
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, num_channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return _ChannelLayerNorm.apply(x, self.weight, self.bias, self.eps)


class Scale(nn.Module):
    """A learnable scalar (0-d parameter, init 1) multiplying its input (per pyramid level)."""

    def __init__(self, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(init_value, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale
