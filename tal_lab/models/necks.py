"""Necks: map the backbone pyramid to the features the heads read.

``neck(feats, masks) -> (feats, masks)`` with the per-level layout of the backbone
(``feats[l]`` (B, C_l, T_l), ``masks[l]`` (B, 1, T_l) bool); levels below ``start_level`` are
dropped (ActionFormer's ``fpn_start_level``). Key names are ActionFormer's
(``lateral_convs``, ``fpn_convs``, ``fpn_norms``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from tal_lab.core.registry import register_neck
from tal_lab.models.layers.masked import MaskedConv1D
from tal_lab.models.layers.norm import LayerNorm

__all__ = ["IdentityNeck", "FPNNeck"]


class IdentityNeck(nn.Module):
    """ActionFormer's 'identity' neck: a LayerNorm per level (output not re-masked).

    Shapes:
        feats[l]: (B, C, T_l) -> (B, C, T_l); masks passed through.
    """

    def __init__(self, in_channels: Sequence[int], out_channel: int, start_level: int = 0,
                 with_ln: bool = True) -> None:
        super().__init__()
        if any(c != out_channel for c in in_channels[start_level:]):
            raise ValueError(f"the identity neck passes features through: fpn_dim {out_channel} must equal "
                             f"the backbone channels {list(in_channels)}")
        self.start_level = start_level
        self.num_levels = len(in_channels) - start_level
        self.out_channels = [out_channel] * self.num_levels
        self.fpn_norms = nn.ModuleList(
            LayerNorm(out_channel) if with_ln else nn.Identity() for _ in range(self.num_levels))

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        feats, masks = feats[self.start_level:], list(masks[self.start_level:])
        return [norm(x) for norm, x in zip(self.fpn_norms, feats)], masks


class FPNNeck(nn.Module):
    """ActionFormer's 'fpn' neck (the paper's refined FPN-1D, equations (2)-(4)).

    Per level: lateral 1x1 masked conv; top-down, each level adds the nearest-neighbour x2
    upsampling of the (already fused) coarser level; then a depthwise 3-tap masked conv and a
    LayerNorm. By default the top-down sum is not re-masked (the reference's behaviour): an
    upsampled value can sit on the padded step just past the valid region, where the output conv
    reads it at the last valid step. ``remask_topdown=True`` masks each fused level before its
    output conv (strictly masked; differs from the reference at the last valid steps).

    Shapes:
        feats[l]: (B, C_in, T_l) -> (B, out_channel, T_l); masks passed through.
    """

    def __init__(self, in_channels: Sequence[int], out_channel: int, scale_factor: int = 2,
                 start_level: int = 0, with_ln: bool = True, remask_topdown: bool = False) -> None:
        super().__init__()
        self.start_level = start_level
        self.scale_factor = scale_factor
        self.remask_topdown = remask_topdown
        self.num_levels = len(in_channels) - start_level
        self.out_channels = [out_channel] * self.num_levels
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        self.fpn_norms = nn.ModuleList()
        for channels in in_channels[start_level:]:
            # convs followed by LayerNorm carry no bias (reference: bias=not with_ln)
            self.lateral_convs.append(MaskedConv1D(channels, out_channel, 1, bias=not with_ln))
            self.fpn_convs.append(MaskedConv1D(out_channel, out_channel, 3, groups=out_channel, bias=not with_ln))
            self.fpn_norms.append(LayerNorm(out_channel) if with_ln else nn.Identity())

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        feats, masks = feats[self.start_level:], list(masks[self.start_level:])
        fused = [conv(x, m)[0] for conv, x, m in zip(self.lateral_convs, feats, masks)]
        for level in range(self.num_levels - 1, 0, -1):
            up = F.interpolate(fused[level], scale_factor=self.scale_factor, mode="nearest")
            fused[level - 1] = fused[level - 1] + up
            if self.remask_topdown:
                fused[level - 1] = fused[level - 1] * masks[level - 1].to(up.dtype)
        outs = [norm(conv(x, m)[0]) for conv, norm, x, m in zip(self.fpn_convs, self.fpn_norms, fused, masks)]
        return outs, masks


@register_neck("identity")
def build_identity(model: Mapping[str, Any], in_channels: Sequence[int]) -> IdentityNeck:
    """ActionFormer's identity neck from ``cfg['model']``."""
    return IdentityNeck(in_channels, model["fpn_dim"], model["fpn_start_level"], model["fpn_with_ln"])


@register_neck("fpn")
def build_fpn(model: Mapping[str, Any], in_channels: Sequence[int]) -> FPNNeck:
    """ActionFormer's fpn neck (refined FPN-1D) from ``cfg['model']``."""
    return FPNNeck(in_channels, model["fpn_dim"], model["scale_factor"], model["fpn_start_level"],
                   model["fpn_with_ln"])
