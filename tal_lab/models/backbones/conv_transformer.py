"""ActionFormer's backbone (``convTransformer``): conv embedding, transformer stem and branch."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from tal_lab.config import GLOBAL_ATTENTION, attention_windows
from tal_lab.core.registry import register_backbone
from tal_lab.models.backbones.pyramid import PyramidBackbone, zero_bias
from tal_lab.models.layers.blocks import TransformerBlock

__all__ = ["ConvTransformerBackbone", "build_conv_transformer"]


class ConvTransformerBackbone(PyramidBackbone):
    """ActionFormer's backbone: conv embedding, transformer stem, strided transformer branch.

    ``mha_win_size`` holds one local-attention window per level (None: global attention).
    """

    def __init__(
        self,
        n_in: int | Sequence[int],
        n_embd: int | Sequence[int],
        n_head: int,
        n_embd_ks: int,
        max_len: int,
        arch: Sequence[int] = (2, 2, 5),
        mha_win_size: Sequence[int | None] = (None,) * 6,
        scale_factor: int = 2,
        with_ln: bool = False,
        attn_pdrop: float = 0.0,
        proj_pdrop: float = 0.0,
        path_pdrop: float = 0.0,
        use_abs_pe: bool = False,
        use_rel_pe: bool = False,
    ) -> None:
        super().__init__(n_in, n_embd, n_embd_ks, arch, scale_factor, with_ln, max_len, use_abs_pe)
        if len(mha_win_size) != self.num_levels:
            raise ValueError(f"mha_win_size needs one window per level ({self.num_levels}), got {mha_win_size!r}")
        self.mha_win_size = list(mha_win_size)
        common = dict(attn_pdrop=attn_pdrop, proj_pdrop=proj_pdrop, path_pdrop=path_pdrop, use_rel_pe=use_rel_pe)
        width = self.out_channels[0]
        for _ in range(self.arch[1]):
            self.stem.append(TransformerBlock(width, n_head, 1, self.mha_win_size[0], **common))
        for idx in range(self.arch[2]):
            self.branch.append(TransformerBlock(width, n_head, scale_factor, self.mha_win_size[1 + idx], **common))
        self.apply(zero_bias)




@register_backbone("convTransformer")
def build_conv_transformer(model: Mapping[str, Any]) -> ConvTransformerBackbone:
    """ActionFormer's convTransformer from ``cfg['model']`` (dropout / droppath from train_cfg)."""
    train = model["train_cfg"]
    return ConvTransformerBackbone(
        n_in=model["input_dim"], n_embd=model["embd_dim"], n_head=model["n_head"],
        n_embd_ks=model["embd_kernel_size"], max_len=model["max_seq_len"], arch=model["backbone_arch"],
        mha_win_size=[None if w == GLOBAL_ATTENTION else w for w in attention_windows(model)],
        scale_factor=model["scale_factor"], with_ln=model["embd_with_ln"],
        attn_pdrop=0.0, proj_pdrop=train["dropout"], path_pdrop=train["droppath"],
        use_abs_pe=model["use_abs_pe"], use_rel_pe=model["use_rel_pe"],
    )
