"""ActionFormer's conv backbone (``conv``): conv embedding and ResNet-style conv blocks."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from tal_lab.core.registry import register_backbone
from tal_lab.models.backbones.pyramid import PyramidBackbone, zero_bias
from tal_lab.models.layers.blocks import ConvBlock

__all__ = ["ConvBackbone", "build_conv"]


class ConvBackbone(PyramidBackbone):
    """ActionFormer's conv backbone: conv embedding, ResNet-style conv blocks (no drop path)."""

    def __init__(
        self,
        n_in: int | Sequence[int],
        n_embd: int | Sequence[int],
        n_embd_ks: int,
        arch: Sequence[int] = (2, 2, 5),
        scale_factor: int = 2,
        with_ln: bool = False,
        max_len: int = 2304,
    ) -> None:
        super().__init__(n_in, n_embd, n_embd_ks, arch, scale_factor, with_ln, max_len)
        width = self.out_channels[0]
        for _ in range(self.arch[1]):
            self.stem.append(ConvBlock(width, 3, 1))
        for _ in range(self.arch[2]):
            self.branch.append(ConvBlock(width, 3, scale_factor))
        self.apply(zero_bias)




@register_backbone("conv")
def build_conv(model: Mapping[str, Any]) -> ConvBackbone:
    """ActionFormer's conv backbone from ``cfg['model']``."""
    return ConvBackbone(
        n_in=model["input_dim"], n_embd=model["embd_dim"], n_embd_ks=model["embd_kernel_size"],
        arch=model["backbone_arch"], scale_factor=model["scale_factor"], with_ln=model["embd_with_ln"],
        max_len=model["max_seq_len"],
    )
