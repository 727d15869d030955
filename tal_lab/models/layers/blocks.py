"""Layers of the detector: masked 1D ops, norms, attention, and the three backbone blocks.

Conventions (ActionFormer's): features are ``(B, C, T)``; a validity mask is ``(B, 1, T)``
bool, True at valid steps; a stride-s op returns features and mask of length ``T // s`` and the
mask is downsampled by nearest neighbour (``mask[..., ::s]``). Module and parameter names follow
ActionFormer / TriDet so that their checkpoints load unchanged (``conv.weight``, ``ln1``,
``mlp.3``, ``drop_path_attn.scale``, ...). Numerics follow the references, quirks included; each
quirk is commented where it is reproduced.

This module never imports the models (timm style).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "MASKED_KEY_LOGIT",
    "MaskedConv1D",
    "LayerNorm",
    "Scale",
    "AffineDropPath",
    "affine_drop_path_or_identity",
    "drop_path",
    "max_pool_downsample",
    "downsample_mask",
    "sinusoid_encoding",
    "local_attention",
    "MaskedMHCA",
    "TransformerBlock",
    "ConvBlock",
    "SGPBlock",
]

# ActionFormer adds -1e4 (not -inf) to the logits of masked keys inside the window.
MASKED_KEY_LOGIT = -1e4


def downsample_mask(mask: Tensor, stride: int) -> Tensor:
    """Nearest-neighbour downsampling of a validity mask (= ``F.interpolate(..., 'nearest')``).

    Shapes:
        mask: (B, 1, T) bool with T divisible by ``stride``; returns (B, 1, T // stride).
    """
    return mask[..., ::stride] if stride > 1 else mask


class MaskedConv1D(nn.Module):
    """``nn.Conv1d`` whose output is zeroed at invalid steps (the input is used as it is).

    Shapes:
        x: (B, C_in, T); mask: (B, 1, T) bool -> (B, C_out, T // stride), (B, 1, T // stride).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"MaskedConv1D needs an odd kernel size (centred window), got {kernel_size}")
        self.stride = stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                              groups=groups, bias=bias)
        if bias:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[-1] % self.stride != 0:
            raise ValueError(f"sequence length {x.shape[-1]} is not divisible by the conv stride {self.stride}")
        out_mask = downsample_mask(mask, self.stride)
        return self.conv(x) * out_mask.to(x.dtype), out_mask


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


def max_pool_downsample(stride: int) -> nn.MaxPool1d:
    """The references' strided max-pool, kernel stride + 1: (B, C, T) -> (B, C, T // stride)."""
    return nn.MaxPool1d(stride + 1, stride, (stride + 1) // 2)


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
    (window ``window_size``) or global (``window_size`` <= 1); a 1x1 conv projects the heads.

    Shapes:
        x: (B, C, T); mask: (B, 1, T) bool -> (B, C, T // stride), (B, 1, T // stride).
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        window_size: int = -1,
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
        self.window_size = window_size
        self.overlap = window_size // 2 if window_size > 1 else None
        kernel = stride + 1 if stride > 1 else 3
        # construction order = reference order (state-dict order and seeded init match)
        self.query_conv = MaskedConv1D(n_embd, n_embd, kernel, stride, groups=n_embd, bias=False)
        self.query_norm = LayerNorm(n_embd)
        self.key_conv = MaskedConv1D(n_embd, n_embd, kernel, stride, groups=n_embd, bias=False)
        self.key_norm = LayerNorm(n_embd)
        self.value_conv = MaskedConv1D(n_embd, n_embd, kernel, stride, groups=n_embd, bias=False)
        self.value_norm = LayerNorm(n_embd)
        self.key = nn.Conv1d(n_embd, n_embd, 1)
        self.query = nn.Conv1d(n_embd, n_embd, 1)
        self.value = nn.Conv1d(n_embd, n_embd, 1)
        self.attn_drop = nn.Dropout(attn_pdrop)
        self.proj_drop = nn.Dropout(proj_pdrop)
        self.proj = nn.Conv1d(n_embd, n_embd, 1)
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


class TransformerBlock(nn.Module):
    """Pre-LN transformer block; with stride 2 it downsamples (max-pool on the skip path).

    The skip path pools the *unmasked* block input (its padded steps are 0), so for an odd
    valid length the last pooled step includes one padded zero, as in the reference.

    Shapes:
        x: (B, C, T); mask: (B, 1, T) bool -> (B, C, T // stride), (B, 1, T // stride).
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        stride: int = 1,
        window_size: int = -1,
        mlp_ratio: int = 4,
        act_layer: type[nn.Module] = nn.GELU,
        attn_pdrop: float = 0.0,
        proj_pdrop: float = 0.0,
        path_pdrop: float = 0.0,
        use_rel_pe: bool = False,
    ) -> None:
        super().__init__()
        self.ln1 = LayerNorm(n_embd)
        self.ln2 = LayerNorm(n_embd)
        self.attn = MaskedMHCA(n_embd, n_head, window_size, stride, attn_pdrop, proj_pdrop, use_rel_pe)
        self.pool_skip = max_pool_downsample(stride) if stride > 1 else nn.Identity()
        hidden = mlp_ratio * n_embd
        # indices 0..4 as in the reference: its checkpoints name the second conv mlp.3
        self.mlp = nn.Sequential(nn.Conv1d(n_embd, hidden, 1), act_layer(), nn.Dropout(proj_pdrop),
                                 nn.Conv1d(hidden, n_embd, 1), nn.Dropout(proj_pdrop))
        self.drop_path_attn = affine_drop_path_or_identity(n_embd, path_pdrop)
        self.drop_path_mlp = affine_drop_path_or_identity(n_embd, path_pdrop)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        out, out_mask = self.attn(self.ln1(x), mask)
        valid = out_mask.to(out.dtype)
        out = self.pool_skip(x) * valid + self.drop_path_attn(out)
        out = out + self.drop_path_mlp(self.mlp(self.ln2(out)) * valid)
        return out, out_mask


class ConvBlock(nn.Module):
    """ResNet basic block of masked convs (conv 3 -> ReLU -> conv 3, + skip, ReLU).

    The conv expands to ``expansion * C`` channels; a strided block downsamples in ``conv1`` and
    with a 1x1 strided conv (``downsample``) on the skip path. No norms. A stride-1 block adds
    its input unmasked, as the reference does.

    Shapes:
        x: (B, C, T); mask: (B, 1, T) bool -> (B, C, T // stride), (B, 1, T // stride).
    """

    def __init__(self, n_embd: int, kernel_size: int = 3, stride: int = 1, expansion: int = 2,
                 act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        width = n_embd * expansion
        self.conv1 = MaskedConv1D(n_embd, width, kernel_size, stride)
        self.conv2 = MaskedConv1D(width, n_embd, kernel_size, 1)
        self.downsample = MaskedConv1D(n_embd, n_embd, 1, stride) if stride > 1 else None
        self.act = act_layer()

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        out, out_mask = self.conv1(x, mask)
        out, out_mask = self.conv2(self.act(out), out_mask)
        skip = x if self.downsample is None else self.downsample(x, mask)[0]
        return self.act(out + skip), out_mask


class SGPBlock(nn.Module):
    """TriDet's Scalable-Granularity Perception block (LN -> SGP -> skip, GN -> MLP -> skip).

    With ``x`` the LayerNorm output, the SGP layer computes (TriDet's formulation)::

        instant = fc(x) * relu(global_fc(mean_t(x)))          # instant-level branch
        window  = (convw(x) + convkw(x)) * psi(x)              # window-level branches
        out     = instant + window + x

    ``mixture='softmax'`` is the paper's equation (1) instead: the granularity branches
    (instant, window w, window k*w) are mixed with learnable softmax-normalised weights,
    ``out = sum_g softmax(mixture_logits)_g * f_g(x) + x`` (``mixture_logits`` [3], init 0).

    Reference quirks kept: GroupNorm statistics and the time mean include padded steps, and the
    block does not mask its output (only the skip path is masked), so outputs at padded steps are
    non-zero and valid outputs depend on the amount of padding. A strided block max-pools the
    unmasked input first (``downsample_type='max'``) or average-pools + 1x1 conv ('avg').

    Shapes:
        x: (B, C, T); mask: (B, 1, T) bool -> (B, C, T // stride), (B, 1, T // stride).
    """

    def __init__(
        self,
        n_embd: int,
        kernel_size: int = 3,
        stride: int = 1,
        k: float = 1.5,
        n_hidden: int | None = None,
        path_pdrop: float = 0.0,
        act_layer: type[nn.Module] = nn.GELU,
        downsample_type: str = "max",
        init_conv_vars: float = 1.0,
        mixture: str = "tridet",
        gn_groups: int = 16,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"SGP kernel size must be odd, got {kernel_size}")
        if mixture not in ("tridet", "softmax"):
            raise ValueError(f"sgp_mixture must be 'tridet' or 'softmax', got {mixture!r}")
        self.stride = stride
        self.mixture = mixture
        # TriDet: the wide kernel is round((kernel + 1) * k), made odd by adding 1
        wide = round((kernel_size + 1) * k)
        wide = wide + 1 if wide % 2 == 0 else wide
        self.ln = LayerNorm(n_embd)
        self.gn = nn.GroupNorm(gn_groups, n_embd)
        self.psi = nn.Conv1d(n_embd, n_embd, kernel_size, padding=kernel_size // 2, groups=n_embd)
        self.fc = nn.Conv1d(n_embd, n_embd, 1, groups=n_embd)
        self.convw = nn.Conv1d(n_embd, n_embd, kernel_size, padding=kernel_size // 2, groups=n_embd)
        self.convkw = nn.Conv1d(n_embd, n_embd, wide, padding=wide // 2, groups=n_embd)
        self.global_fc = nn.Conv1d(n_embd, n_embd, 1, groups=n_embd)
        if stride == 1:
            self.downsample: nn.Module = nn.Identity()
        elif downsample_type == "max":
            self.downsample = max_pool_downsample(stride)
        elif downsample_type == "avg":
            self.downsample = nn.Sequential(nn.AvgPool1d(stride, stride), nn.Conv1d(n_embd, n_embd, 1))
        else:
            raise ValueError(f"downsample_type must be 'max' or 'avg', got {downsample_type!r}")
        hidden = n_hidden or 4 * n_embd
        self.mlp = nn.Sequential(nn.Conv1d(n_embd, hidden, 1), act_layer(), nn.Conv1d(hidden, n_embd, 1))
        self.drop_path_out = affine_drop_path_or_identity(n_embd, path_pdrop)
        self.drop_path_mlp = affine_drop_path_or_identity(n_embd, path_pdrop)
        if mixture == "softmax":
            self.mixture_logits = nn.Parameter(torch.zeros(3))
        # TriDet re-initialises the branch weights N(0, init_conv_vars) (0 -> exactly zero:
        # each branch then starts as the identity) and their biases to 0.
        for conv in (self.psi, self.fc, self.convw, self.convkw, self.global_fc):
            nn.init.normal_(conv.weight, 0.0, init_conv_vars)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        x = self.downsample(x)
        out_mask = downsample_mask(mask, self.stride)
        out = self.ln(x)
        psi = self.psi(out)
        instant = self.fc(out) * torch.relu(self.global_fc(out.mean(dim=-1, keepdim=True)))
        if self.mixture == "tridet":
            out = instant + (self.convw(out) + self.convkw(out)) * psi + out
        else:
            w = torch.softmax(self.mixture_logits, dim=0).to(out.dtype)
            out = w[0] * instant + w[1] * self.convw(out) * psi + w[2] * self.convkw(out) * psi + out
        out = x * out_mask.to(x.dtype) + self.drop_path_out(out)
        return out + self.drop_path_mlp(self.mlp(self.gn(out))), out_mask
