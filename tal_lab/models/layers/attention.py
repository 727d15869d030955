"""Local-window multi-head attention (banded, exact to ActionFormer's windowed attention) and
the sinusoid position encoding."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tal_lab.models.layers.conv import Conv1d
from tal_lab.models.layers.masked import MaskedConv1D
from tal_lab.models.layers.norm import LayerNorm

__all__ = ["MASKED_KEY_LOGIT", "sinusoid_encoding", "local_attention", "MaskedMHCA"]


# ActionFormer adds -1e4 (not -inf) to the logits of masked keys inside the window.
MASKED_KEY_LOGIT = -1e4


def sinusoid_encoding(length: int, channels: int) -> Tensor:
    """The Transformer's sinusoidal position table, (1, C, T), float32 (ActionFormer's layout).

    Channel 2i holds sin(t / 10000^(2i/C)), channel 2i+1 the cosine of the same angle.
    """
    pos = torch.arange(length, dtype=torch.float64)[:, None]  # (T, 1)
    expo = 2.0 * (torch.arange(channels, dtype=torch.float64) // 2) / channels  # (C,)
    angle = pos / torch.pow(10000.0, expo)[None, :]  # (T, C)
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.to(torch.float32).T.unsqueeze(0)  # (1, C, T)


def _band_from_blocks(scores: Tensor, width: int) -> Tensor:
    """Extract the diagonal band of blocked scores: row i keeps columns i .. i + width - 1.

    Shapes:
        scores: (..., L, L + width - 1) contiguous -> (..., L, width).
    """
    rows, cols = scores.shape[-2:]
    flat = F.pad(scores.flatten(-2), (0, rows))  # (..., L * (cols + 1))
    return flat.view(*scores.shape[:-2], rows, cols + 1)[..., :width]


def _blocks_from_band(band: Tensor, cols: int) -> Tensor:
    """Inverse of :func:`_band_from_blocks`: place row i's band at columns i .. i + width - 1.

    Shapes:
        band: (..., L, width) -> (..., L, cols) with zeros off the band (cols = L + width - 1).
    """
    rows, width = band.shape[-2:]
    flat = F.pad(band, (0, cols + 1 - width)).flatten(-2)  # (..., L * (cols + 1))
    return flat[..., : rows * cols].view(*band.shape[:-2], rows, cols)


def local_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kv_mask: Tensor,
    overlap: int,
    rel_pe: Tensor | None = None,
    attn_drop: Callable[[Tensor], Tensor] | None = None,
    block_len: int | None = None,
) -> Tensor:
    """Masked sliding-window attention, vectorised over blocks of queries.

    Query t attends to keys t - overlap .. t + overlap. Numerics are ActionFormer's: logits of
    masked keys get ``MASKED_KEY_LOGIT`` (-1e4) added, keys outside the sequence -inf; rows of
    masked queries are zero after the softmax. Queries are processed in blocks of ``block_len``:
    each block multiplies against the ``block_len + 2 * overlap`` keys it can see (one batched
    matmul), and the band is cut out with a pad-and-reshape skew (no Python loop over time, no
    (T, T) matrix). ``q`` must already carry the 1/sqrt(head_dim) scale.

    Shapes:
        q, k, v: (B, H, T, D); kv_mask: (B, T) bool; rel_pe: (1, 1, H, 2 * overlap + 1) or None.
        returns: (B, H, T, D).
    """
    batch, heads, length, dim = q.shape
    width = 2 * overlap + 1
    block = block_len or max(4 * overlap, 16)  # measured: ~2x the minimal work is the sweet spot
    num_blocks = -(-length // block)
    padded = num_blocks * block
    span = block + 2 * overlap  # keys visible to one query block

    q_blocks = (F.pad(q, (0, 0, 0, padded - length)) if padded > length else q).reshape(
        batch, heads, num_blocks, block, dim)
    k_pad = F.pad(k, (0, 0, overlap, padded - length + overlap))  # (B, H, padded + 2o, D)
    k_blocks = k_pad.unfold(2, span, block)  # (B, H, nb, D, span)
    scores = _band_from_blocks(q_blocks @ k_blocks, width)  # (B, H, nb, L, width)
    scores = scores.reshape(batch, heads, padded, width)

    if rel_pe is not None:
        scores = scores + rel_pe.permute(0, 2, 1, 3)  # (1, H, 1, width)
    # Additive mask per (query, window slot): 0 valid key, -1e4 masked key, -inf outside the
    # sequence. Rows of the block padding (t >= T) get 0 so that their softmax stays finite.
    key_valid = F.pad(kv_mask, (overlap, padded - length + overlap), value=False)
    inside = F.pad(torch.ones_like(kv_mask), (overlap, padded - length + overlap), value=False)
    key_valid = key_valid.unfold(1, width, 1)  # (B, padded, width)
    inside = inside.unfold(1, width, 1)
    bias = torch.where(key_valid, 0.0, MASKED_KEY_LOGIT).to(scores.dtype)
    bias = bias.masked_fill(~inside, float("-inf"))
    bias[:, length:] = 0.0
    probs = torch.softmax(scores + bias[:, None], dim=-1)  # (B, H, padded, width)
    query_valid = F.pad(kv_mask, (0, padded - length), value=False)
    probs = probs.masked_fill(~query_valid[:, None, :, None], 0.0)
    if attn_drop is not None:
        probs = attn_drop(probs)

    v_blocks = F.pad(v, (0, 0, overlap, padded - length + overlap)).unfold(2, span, block)
    probs = _blocks_from_band(probs.view(batch, heads, num_blocks, block, width), span)
    out = probs @ v_blocks.transpose(-1, -2)  # (B, H, nb, L, D)
    return out.reshape(batch, heads, padded, dim)[:, :, :length]


class MaskedMHCA(nn.Module):
    """Multi-head conv attention with masks (ActionFormer's MaskedMHCA / LocalMaskedMHCA).

    Depthwise convs (kernel 3, or stride + 1 when strided) with LayerNorms produce the query,
    key and value inputs (and downsample them); 1x1 convs project them; attention is local
    (window ``window_size``) or global (``window_size`` None, or 1 as in the reference); a 1x1
    conv projects the heads.

    Shapes:
        x: (B, C, T); mask: (B, 1, T) bool -> (B, C, T // stride), (B, 1, T // stride).
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        window_size: int | None = None,
        stride: int = 1,
        attn_pdrop: float = 0.0,
        proj_pdrop: float = 0.0,
        use_rel_pe: bool = False,
    ) -> None:
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"embedding dim {n_embd} is not divisible by the number of heads {n_head}")
        if stride > 1 and stride % 2 != 0:
            raise ValueError(f"attention downsampling stride must be 1 or even, got {stride}")
        self.n_head = n_head
        self.head_dim = n_embd // n_head
        self.scale = 1.0 / math.sqrt(self.head_dim)
        if window_size is not None and window_size < 1:
            raise ValueError(f"window_size must be None (global attention) or a positive window, got {window_size!r}")
        self.window_size = window_size
        self.overlap = window_size // 2 if window_size is not None and window_size > 1 else None
        kernel = stride + 1 if stride > 1 else 3
        # construction order = reference order (state-dict order and seeded init match)
        self.query_conv = MaskedConv1D(n_embd, n_embd, kernel, stride, groups=n_embd, bias=False)
        self.query_norm = LayerNorm(n_embd)
        self.key_conv = MaskedConv1D(n_embd, n_embd, kernel, stride, groups=n_embd, bias=False)
        self.key_norm = LayerNorm(n_embd)
        self.value_conv = MaskedConv1D(n_embd, n_embd, kernel, stride, groups=n_embd, bias=False)
        self.value_norm = LayerNorm(n_embd)
        self.key = Conv1d(n_embd, n_embd, 1)
        self.query = Conv1d(n_embd, n_embd, 1)
        self.value = Conv1d(n_embd, n_embd, 1)
        self.attn_drop = nn.Dropout(attn_pdrop)
        self.proj_drop = nn.Dropout(proj_pdrop)
        self.proj = Conv1d(n_embd, n_embd, 1)
        if use_rel_pe:
            if self.overlap is None:
                raise ValueError("relative position encoding needs local attention (n_mha_win_size > 1)")
            self.rel_pe = nn.Parameter(torch.zeros(1, 1, n_head, window_size))
            nn.init.trunc_normal_(self.rel_pe, std=(2.0 / n_embd) ** 0.5)
        else:
            self.rel_pe = None

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        q, q_mask = self.query_conv(x, mask)
        k, kv_mask = self.key_conv(x, mask)
        v, _ = self.value_conv(x, mask)
        q = self.query(self.query_norm(q))
        k = self.key(self.key_norm(k))
        v = self.value(self.value_norm(v))
        batch, channels, length = q.shape
        # (B, H * D, T) -> (B, H, T, D): channel h * D + d belongs to head h
        q = q.view(batch, self.n_head, self.head_dim, length).transpose(2, 3) * self.scale
        k = k.view(batch, self.n_head, self.head_dim, length).transpose(2, 3)
        v = v.view(batch, self.n_head, self.head_dim, length).transpose(2, 3)
        valid = kv_mask[:, 0]  # (B, T)
        if self.overlap is not None:
            out = local_attention(q, k, v, valid, self.overlap, self.rel_pe, self.attn_drop)
        else:
            logits = (q @ k.transpose(-2, -1)).masked_fill(~valid[:, None, None, :], float("-inf"))
            probs = self.attn_drop(torch.softmax(logits, dim=-1))  # (B, H, T, T)
            out = probs @ (v * valid[:, None, :, None].to(v.dtype))
        out = out.transpose(2, 3).reshape(batch, channels, length)  # (B, H, D, T) -> (B, C, T)
        return self.proj_drop(self.proj(out)) * q_mask.to(out.dtype), q_mask
