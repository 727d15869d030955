"""Backbones: a conv embedding, a stem at full resolution, and a strided branch (the pyramid).

All three share ActionFormer's layout, ``arch = (#embedding convs, #stem blocks, #branch
blocks)``: level 0 is the stem output (stride 1), level l >= 1 the output of branch block l
(stride ``scale_factor ** l``), so (2, 2, 5) gives 6 levels.

Calling a backbone::

    feats, masks = backbone(x, mask)   # x (B, C_in, T), mask (B, 1, T) bool, True = valid
    # feats[l]: (B, embd_dim, T / s**l); masks[l]: (B, 1, T / s**l) bool, masks[l] = mask[..., ::s**l]

T must be divisible by ``scale_factor ** arch[2]``. Constructor arguments use the reference's
names (``n_in``, ``n_embd``, ``mha_win_size``, ``sgp_win_size``, ...) so that a reference's
kwargs build the same module; builders registered here map ``cfg['model']`` onto them.

Several feature groups (ActionFormer's Ego4D configs: features of several extractors
concatenated along channels): ``n_in`` and ``n_embd`` are lists of one length; each group is
projected by its own 1x1 conv (``proj.{i}``, before the embedding, as ActionFormer does) and the
projections are stacked, so the pyramid's width is ``sum(n_embd)``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tal_lab.models.layers.attention import sinusoid_encoding
from tal_lab.models.layers.masked import MaskedConv1D
from tal_lab.models.layers.norm import LayerNorm

__all__ = ["PyramidBackbone", "window_sizes", "zero_bias", "embedding_width"]


def embedding_width(n_embd: int | Sequence[int]) -> int:
    """The pyramid's width: ``n_embd``, or the sum of the per-group projection widths."""
    return sum(int(c) for c in n_embd) if isinstance(n_embd, (list, tuple)) else int(n_embd)


def zero_bias(module: nn.Module) -> None:
    """The references set every Conv1d / Linear bias of a backbone to 0 after construction."""
    if isinstance(module, (nn.Conv1d, nn.Linear)) and module.bias is not None:
        nn.init.zeros_(module.bias)


class PyramidBackbone(nn.Module):
    """Shared part of the backbones: embedding convs, optional absolute PE, stem, branch.

    Subclasses fill ``self.stem`` (stride-1 blocks) and ``self.branch`` (strided blocks); each
    block maps ``(x, mask) -> (x, mask)``.

    Attributes:
        n_in: input channels (all feature groups together).
        in_groups: channels of each feature group (None: one group, no projection).
        num_levels: pyramid levels (``arch[2] + 1``).
        strides: stride of each level in input steps.
        out_channels: channels of each level.
        padding_invariant: True when outputs at valid steps do not depend on how much padding
            follows them, as long as every level keeps at least one padded step (padded steps
            hold LayerNorm biases that the next conv reads at the last valid step, and the
            strided max-pool reads a padded 0 there); lets inference pad less. False for SGP
            (GroupNorm statistics and the mean over time include every padded step).
    """

    padding_invariant: bool = True

    def __init__(
        self,
        n_in: int | Sequence[int],
        n_embd: int | Sequence[int],
        n_embd_ks: int,
        arch: Sequence[int],
        scale_factor: int,
        with_ln: bool,
        max_len: int,
        use_abs_pe: bool = False,
    ) -> None:
        super().__init__()
        if len(arch) != 3:
            raise ValueError(f"backbone arch must be (#embedding convs, #stem, #branch), got {arch!r}")
        self.in_groups: list[int] | None = None
        self.proj: nn.ModuleList | None = None
        if isinstance(n_in, (list, tuple)):
            if not isinstance(n_embd, (list, tuple)) or len(n_embd) != len(n_in):
                raise ValueError(f"{len(n_in)} feature groups (n_in {list(n_in)}) need one projection width each "
                                 f"(n_embd), got {n_embd!r}")
            self.in_groups = [int(c) for c in n_in]
            self.proj = nn.ModuleList(MaskedConv1D(c_in, c_out, 1) for c_in, c_out in zip(n_in, n_embd))
        elif isinstance(n_embd, (list, tuple)):
            raise ValueError(f"n_embd lists {len(n_embd)} projection widths but n_in {n_in} is one feature group")
        self.n_in = sum(self.in_groups) if self.in_groups is not None else int(n_in)
        width = embedding_width(n_embd)
        # after the projections the groups are one feature of their summed width
        embd_in = width if self.in_groups is not None else self.n_in
        self.arch = tuple(int(a) for a in arch)
        self.scale_factor = scale_factor
        self.max_len = max_len
        self.use_abs_pe = use_abs_pe
        self.num_levels = self.arch[2] + 1
        self.strides = [scale_factor ** level for level in range(self.num_levels)]
        self.out_channels = [width] * self.num_levels
        self.embd = nn.ModuleList()
        self.embd_norm = nn.ModuleList()
        for idx in range(self.arch[0]):
            # with LayerNorm after it, a conv bias would be redundant (reference: bias=not with_ln)
            self.embd.append(MaskedConv1D(embd_in if idx == 0 else width, width, n_embd_ks, bias=not with_ln))
            self.embd_norm.append(LayerNorm(width) if with_ln else nn.Identity())
        if use_abs_pe:
            # scaled by 1/sqrt(C) as in the reference; a buffer, not in the state dict
            self.register_buffer("pos_embd", sinusoid_encoding(max_len, width) / width ** 0.5,
                                 persistent=False)
        self.stem = nn.ModuleList()
        self.branch = nn.ModuleList()

    def check_inputs(self, x: Tensor, mask: Tensor) -> None:
        """Raise ValueError for inputs the pyramid cannot take (names the problem)."""
        if x.dim() != 3:
            raise ValueError(f"backbone input must be features (B, C, T), got shape {tuple(x.shape)}")
        if x.shape[1] != self.n_in:
            raise ValueError(f"backbone expects {self.n_in} input channels (model.input_dim), got {x.shape[1]}")
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor (True = valid step), got dtype {mask.dtype}")
        if mask.shape != (x.shape[0], 1, x.shape[2]):
            raise ValueError(f"mask must have shape (B, 1, T) = {(x.shape[0], 1, x.shape[2])}, "
                             f"got {tuple(mask.shape)}")
        top = self.strides[-1]
        if x.shape[2] % top != 0:
            raise ValueError(f"sequence length {x.shape[2]} is not divisible by the top pyramid stride {top}")

    def forward(self, x: Tensor, mask: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        self.check_inputs(x, mask)
        length = x.shape[-1]
        if self.proj is not None and self.in_groups is not None:
            # each feature group (C_i channels) projected on its own, the projections stacked
            x = torch.cat([proj(part, mask)[0] for proj, part in zip(self.proj, x.split(self.in_groups, dim=1))],
                          dim=1)  # (B, sum(n_embd), T)
        for conv, norm in zip(self.embd, self.embd_norm):
            x, mask = conv(x, mask)
            x = torch.relu(norm(x))
        if self.use_abs_pe:
            pe = self.pos_embd.to(x.dtype)
            if self.training and length > self.max_len:
                raise ValueError(f"sequence length {length} exceeds max_seq_len {self.max_len} "
                                 "(absolute position embedding, training)")
            if not self.training and length >= self.max_len:
                # the reference stretches the table to over-length inference inputs
                pe = F.interpolate(pe, length, mode="linear", align_corners=False)
            x = x + pe[:, :, :length] * mask.to(x.dtype)
        for block in self.stem:
            x, mask = block(x, mask)
        feats, masks = [x], [mask]
        for block in self.branch:
            x, mask = block(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks


def window_sizes(model_cfg: Mapping[str, Any], key: str) -> list[int]:
    """One window size per pyramid level from an int or a per-level list (e.g. ``n_sgp_win_size``)."""
    num_levels = int(model_cfg["backbone_arch"][-1]) + 1
    win = model_cfg[key]
    if isinstance(win, (list, tuple)):
        if len(win) != num_levels:
            raise ValueError(f"model.{key} must hold one value per level ({num_levels}), got {win!r}")
        return [int(w) for w in win]
    return [int(win)] * num_levels
