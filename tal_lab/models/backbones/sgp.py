"""TriDet's Scalable-Granularity Perception backbone (``sgp``)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from tal_lab.core.registry import register_backbone
from tal_lab.models.backbones.pyramid import PyramidBackbone, window_sizes, zero_bias
from tal_lab.models.layers.blocks import SGPBlock

__all__ = ["SGPBackbone", "build_sgp"]


class SGPBackbone(PyramidBackbone):
    """TriDet's SGP backbone (state dict = a TriDet checkpoint's ``backbone.*`` entries).

    Stem blocks always use kernel 1 and no drop path (as TriDet builds them); branch block l
    uses ``sgp_win_size[l]``. ``mixture`` selects TriDet's SGP ('tridet') or the paper's
    softmax mixture ('softmax', see :class:`SGPBlock`).
    """

    padding_invariant = False

    def __init__(
        self,
        n_in: int | Sequence[int],
        n_embd: int | Sequence[int],
        sgp_mlp_dim: int,
        n_embd_ks: int,
        max_len: int,
        arch: Sequence[int] = (2, 2, 5),
        scale_factor: int = 2,
        with_ln: bool = False,
        path_pdrop: float = 0.0,
        downsample_type: str = "max",
        sgp_win_size: Sequence[int] = (-1,) * 6,
        k: float = 1.5,
        init_conv_vars: float = 1.0,
        use_abs_pe: bool = False,
        mixture: str = "tridet",
    ) -> None:
        super().__init__(n_in, n_embd, n_embd_ks, arch, scale_factor, with_ln, max_len, use_abs_pe)
        if len(sgp_win_size) != self.num_levels:
            raise ValueError(f"sgp_win_size needs one kernel per level ({self.num_levels}), got {sgp_win_size!r}")
        width = self.out_channels[0]
        if width % 16 != 0:
            raise ValueError(f"the SGP GroupNorm uses 16 groups: embd_dim {n_embd} is not a multiple of 16")
        common = dict(k=k, n_hidden=sgp_mlp_dim, init_conv_vars=init_conv_vars, mixture=mixture)
        for _ in range(self.arch[1]):
            self.stem.append(SGPBlock(width, 1, 1, **common))
        for idx in range(self.arch[2]):
            self.branch.append(SGPBlock(width, sgp_win_size[1 + idx], scale_factor, path_pdrop=path_pdrop,
                                        downsample_type=downsample_type, **common))
        self.apply(zero_bias)




@register_backbone("sgp")
def build_sgp(model: Mapping[str, Any]) -> SGPBackbone:
    """TriDet's SGP backbone from ``cfg['model']`` (TriDet's keys: n_sgp_win_size, k, ...)."""
    return SGPBackbone(
        n_in=model["input_dim"], n_embd=model["embd_dim"], sgp_mlp_dim=model["sgp_mlp_dim"],
        n_embd_ks=model["embd_kernel_size"], max_len=model["max_seq_len"], arch=model["backbone_arch"],
        scale_factor=model["scale_factor"], with_ln=model["embd_with_ln"],
        path_pdrop=model["train_cfg"]["droppath"], downsample_type=model["downsample_type"],
        sgp_win_size=window_sizes(model, "n_sgp_win_size"), k=model["k"],
        init_conv_vars=model["init_conv_vars"], use_abs_pe=model["use_abs_pe"],
        mixture=model["sgp_mixture"],
    )
