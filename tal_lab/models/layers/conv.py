"""``Conv1d``: ``nn.Conv1d`` that, in bf16 / fp16 on a CPU, computes dense convolutions as matrix products.

oneDNN's reduced-precision convolution on a CPU with AMX / AVX512-BF16 writes its output in
channels-last order, and PyTorch reorders it to the (B, C, T) layout every call: at THUMOS14 shapes
the reorder costs more than the convolution (a 512 -> 2048 pointwise conv at T 2304, batch 2: 60 ms
forward as a bf16 ``conv1d``, 7 ms as a bf16 matmul, on 2 threads of a Xeon with AMX;
``benchmarks/bench_amp_cpu.py``). A dense convolution of kernel k is k matrix products ``W_j @ x``
summed at shifts ``j - k // 2``; stacking the k weight slices makes that one matmul and k - 1
shifted additions.

The matmul form is taken only for reduced precision on a CPU (autocast to bf16 / fp16, or bf16 /
fp16 tensors), for ``groups == 1``, ``dilation == 1``, zero 'same' padding (``k // 2``), and kernel
1 or stride 1: a strided wider kernel would compute every response to keep one in ``stride`` (slower
than oneDNN's conv at stride 2), and depthwise convolutions are not matmuls. Everything else,
float32 included, is ``nn.Conv1d`` itself, so the reference-precision path and the golden fixtures
do not change. Parameters, initialisation and state-dict keys are ``nn.Conv1d``'s.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tal_lab.core.autocast import active_autocast_dtype

__all__ = ["Conv1d", "reduced_precision_on_cpu"]

_REDUCED = (torch.bfloat16, torch.float16)


def reduced_precision_on_cpu(x: Tensor) -> bool:
    """True when an op on ``x`` runs in bf16 / fp16 on a CPU (autocast or the tensor's dtype)."""
    return x.device.type == "cpu" and (x.dtype in _REDUCED or active_autocast_dtype("cpu") in _REDUCED)


def conv1d_as_matmul(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int) -> Tensor:
    """A dense, zero-padded 'same' ``conv1d`` as one matmul plus shifted sums.

    Shapes:
        x: (B, C_in, T); weight: (C_out, C_in, k), k odd; bias: (C_out,) or None
        -> (B, C_out, (T - 1) // stride + 1), as ``F.conv1d(x, weight, bias, stride, k // 2)``.
    """
    out_channels, in_channels, kernel = weight.shape
    batch, length = x.shape[0], x.shape[-1]
    out_length = (length - 1) // stride + 1
    if kernel == 1:
        # bmm of the broadcast weight: matmul(2-D, 3-D) folds the batch into a transposed copy of x
        out = torch.bmm(weight.view(1, out_channels, in_channels).expand(batch, -1, -1),
                        x[..., ::stride] if stride > 1 else x)
    else:
        # responses[:, j] = W_j @ x; out[t] = sum_j responses[:, j, :, stride * t + j - k // 2]
        stacked = weight.permute(2, 0, 1).reshape(1, kernel * out_channels, in_channels)
        responses = torch.bmm(stacked.expand(batch, -1, -1), x).unflatten(1, (kernel, out_channels))
        out = _ShiftedSum.apply(responses, stride, out_length)
    if bias is not None:
        out = out + bias.to(out.dtype).view(1, out_channels, 1)
    return out


def _shift_ranges(kernel: int, stride: int, length: int, out_length: int) -> list[tuple[int, int, int]]:
    """Per kernel tap j: the output steps [lo, hi) it reaches and the input step of ``lo``."""
    half, ranges = kernel // 2, []
    for j in range(kernel):
        lo = max(0, -((j - half) // stride))  # ceil((half - j) / stride)
        hi = min(out_length, (length - 1 - j + half) // stride + 1)
        ranges.append((lo, max(lo, hi), stride * lo + j - half))
    return ranges


class _ShiftedSum(torch.autograd.Function):
    """out[..., t] = sum_j responses[:, j, ..., stride * t + j - k // 2] (zero outside [0, T)).

    Hand-written because autograd of k padded slices allocates and zero-fills k full copies
    of ``responses`` in the backward.

    Shapes:
        responses: (B, k, C, T) -> (B, C, T_out).
    """

    @staticmethod
    def forward(ctx: object, responses: Tensor, stride: int, out_length: int) -> Tensor:
        batch, kernel, channels, length = responses.shape
        ranges = _shift_ranges(kernel, stride, length, out_length)
        ctx.geometry = (ranges, stride, length)  # type: ignore[attr-defined]
        out = responses.new_zeros(batch, channels, out_length)
        for j, (lo, hi, start) in enumerate(ranges):
            if hi > lo:
                out[..., lo:hi] += responses[:, j, :, start:start + stride * (hi - lo - 1) + 1:stride]
        return out

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> tuple[Tensor, None, None]:
        ranges, stride, length = ctx.geometry  # type: ignore[attr-defined]
        batch, channels, _ = grad.shape
        grad_responses = grad.new_zeros(batch, len(ranges), channels, length)
        for j, (lo, hi, start) in enumerate(ranges):
            if hi > lo:
                grad_responses[:, j, :, start:start + stride * (hi - lo - 1) + 1:stride] = grad[..., lo:hi]
        return grad_responses, None, None


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` with the matmul form for reduced precision on a CPU (module docstring).

    Shapes:
        x: (B, C_in, T) -> (B, C_out, T_out).
    """

    def forward(self, x: Tensor) -> Tensor:
        kernel = self.kernel_size[0]
        if (self.groups == 1 and self.dilation[0] == 1 and self.padding_mode == "zeros"
                and self.padding == (kernel // 2,) and kernel % 2 == 1 and x.dim() == 3
                and (kernel == 1 or self.stride[0] == 1) and reduced_precision_on_cpu(x)):
            return conv1d_as_matmul(x, self.weight, self.bias, self.stride[0])
        return super().forward(x)
