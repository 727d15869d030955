"""The max-pool backbone ``maxpool``: TemporalMaxer's idea (Tang et al., 2023) as a pyramid.

Conv embedding (as every backbone here), then parameter-free max pooling: no attention, no
learned token mixing. It is the simplest strong baseline of Table I, the row that shows how
much the learned mixers (transformer, conv, SGP) add.

Layout (``arch = (#embedding convs, #stem blocks, #branch blocks)``, as the other backbones):

* level 0: the embedding output after ``arch[1]`` stride-1 max pools (kernel 3);
* level l >= 1: one max pool of stride ``scale_factor`` (kernel 3 for stride 2, as TemporalMaxer)
  applied to level l - 1.

TemporalMaxer itself has no stem: ``backbone_arch [2, 0, 5]`` is its THUMOS14 layout exactly.

Masking: padded steps are filled with -inf before each pool, so a valid output never sees a
padded step, and outputs are 0 at padded steps. TemporalMaxer pools the unmasked input (its
embedding leaves relu(LayerNorm bias) on padded steps); with -inf filling the valid outputs do
not depend on the amount of padding (``padding_invariant``), which lets inference pad less.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tal_lab.core.registry import register_backbone
from tal_lab.models.backbones.pyramid import PyramidBackbone
from tal_lab.models.layers.masked import downsample_mask

__all__ = ["MaxPoolBlock", "MaxPoolBackbone", "pool_kernel_size", "build_maxpool"]


def pool_kernel_size(stride: int) -> int:
    """Smallest odd kernel, at least 3, that covers every input step at this stride.

    Stride 1 or 2 -> 3 (TemporalMaxer's kernel), 3 -> 3, 4 -> 5: a kernel smaller than the
    stride would skip steps, an even one could not be centred.
    """
    if stride < 1:
        raise ValueError(f"max-pool stride must be a positive integer, got {stride}")
    return max(3, stride if stride % 2 == 1 else stride + 1)


class MaxPoolBlock(nn.Module):
    """Masked max pooling over time (no parameters).

    Shapes:
        x: (B, C, T); mask: (B, 1, T) bool -> (B, C, T // stride), (B, 1, T // stride); outputs
        are 0 at invalid steps.
    """

    def __init__(self, stride: int = 1, kernel_size: int | None = None) -> None:
        super().__init__()
        self.stride = int(stride)
        self.kernel_size = pool_kernel_size(self.stride) if kernel_size is None else int(kernel_size)
        if self.kernel_size % 2 != 1 or self.kernel_size < self.stride:
            raise ValueError(f"max-pool kernel must be odd and >= the stride {self.stride}, got {self.kernel_size}")

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[-1] % self.stride != 0:
            raise ValueError(f"sequence length {x.shape[-1]} is not divisible by the pool stride {self.stride}")
        out_mask = downsample_mask(mask, self.stride)
        # -inf on padded steps: they never win a max, whatever the features' sign
        x = x.masked_fill(~mask, float("-inf"))
        out = F.max_pool1d(x, self.kernel_size, self.stride, self.kernel_size // 2)
        # a valid output step i reads input step i * stride, which is valid, so it is finite;
        # where() (not a product) keeps the -inf of all-padded windows out of the result
        return torch.where(out_mask, out, torch.zeros_like(out)), out_mask

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPoolBackbone(PyramidBackbone):
    """TemporalMaxer-style backbone: conv embedding, then max pooling only.

    Parameters live only in the embedding (``embd.*``, ``embd_norm.*``, ActionFormer's keys).
    """

    def __init__(
        self,
        n_in: int | Sequence[int],
        n_embd: int | Sequence[int],
        n_embd_ks: int,
        max_len: int,
        arch: Sequence[int] = (2, 0, 5),
        scale_factor: int = 2,
        with_ln: bool = True,
        use_abs_pe: bool = False,
    ) -> None:
        super().__init__(n_in, n_embd, n_embd_ks, arch, scale_factor, with_ln, max_len, use_abs_pe)
        self.padding_invariant = not use_abs_pe
        for _ in range(self.arch[1]):
            self.stem.append(MaxPoolBlock(1))
        for _ in range(self.arch[2]):
            self.branch.append(MaxPoolBlock(scale_factor))

    def forward(self, x: Tensor, mask: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        feats, masks = super().forward(x, mask)
        # without stem blocks level 0 is the raw embedding, whose padded steps hold
        # relu(LayerNorm bias); zero them like every other level
        feats[0] = feats[0] * masks[0].to(feats[0].dtype)
        return feats, masks


@register_backbone("maxpool")
def build_maxpool(model: Mapping[str, Any]) -> MaxPoolBackbone:
    """The max-pool backbone from ``cfg['model']`` (embedding keys as the other backbones)."""
    return MaxPoolBackbone(
        n_in=model["input_dim"], n_embd=model["embd_dim"], n_embd_ks=model["embd_kernel_size"],
        max_len=model["max_seq_len"], arch=model["backbone_arch"], scale_factor=model["scale_factor"],
        with_ln=model["embd_with_ln"], use_abs_pe=model["use_abs_pe"],
    )
