"""The three backbone blocks: ActionFormer's transformer block, its conv block and TriDet's SGP block.

Module and parameter names follow ActionFormer / TriDet so that their checkpoints load unchanged
(``conv.weight``, ``ln1``, ``mlp.3``, ``drop_path_attn.scale``, ...). Numerics follow the
references, quirks included; each quirk is commented where it is reproduced.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tal_lab.models.layers.attention import MaskedMHCA
from tal_lab.models.layers.conv import Conv1d
from tal_lab.models.layers.drop_path import affine_drop_path_or_identity
from tal_lab.models.layers.masked import MaskedConv1D, downsample_mask, max_pool_downsample
from tal_lab.models.layers.norm import LayerNorm

__all__ = ["TransformerBlock", "ConvBlock", "SGPBlock"]


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
        window_size: int | None = None,
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
        self.mlp = nn.Sequential(Conv1d(n_embd, hidden, 1), act_layer(), nn.Dropout(proj_pdrop),
                                 Conv1d(hidden, n_embd, 1), nn.Dropout(proj_pdrop))
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
        self.psi = Conv1d(n_embd, n_embd, kernel_size, padding=kernel_size // 2, groups=n_embd)
        self.fc = Conv1d(n_embd, n_embd, 1, groups=n_embd)
        self.convw = Conv1d(n_embd, n_embd, kernel_size, padding=kernel_size // 2, groups=n_embd)
        self.convkw = Conv1d(n_embd, n_embd, wide, padding=wide // 2, groups=n_embd)
        self.global_fc = Conv1d(n_embd, n_embd, 1, groups=n_embd)
        if stride == 1:
            self.downsample: nn.Module = nn.Identity()
        elif downsample_type == "max":
            self.downsample = max_pool_downsample(stride)
        elif downsample_type == "avg":
            self.downsample = nn.Sequential(nn.AvgPool1d(stride, stride), Conv1d(n_embd, n_embd, 1))
        else:
            raise ValueError(f"downsample_type must be 'max' or 'avg', got {downsample_type!r}")
        hidden = n_hidden or 4 * n_embd
        self.mlp = nn.Sequential(Conv1d(n_embd, hidden, 1), act_layer(), Conv1d(hidden, n_embd, 1))
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
