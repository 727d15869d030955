"""Unit tests of the layers: hand-built references, masking, options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tal_lab.models.layers.attention import MASKED_KEY_LOGIT, MaskedMHCA, local_attention, sinusoid_encoding
from tal_lab.models.layers.blocks import SGPBlock, TransformerBlock
from tal_lab.models.layers.drop_path import AffineDropPath
from tal_lab.models.layers.masked import MaskedConv1D
from tal_lab.models.layers.norm import LayerNorm, Scale, _ChannelLayerNorm
from tal_lab.models.backbones import ConvBackbone, ConvTransformerBackbone, SGPBackbone
from tal_lab.models.necks import FPNNeck
from tal_lab.models.points import PointGenerator


def _mask(lengths: list[int], total: int) -> torch.Tensor:
    return (torch.arange(total)[None, :] < torch.tensor(lengths)[:, None])[:, None]  # (B, 1, T)


def dense_local_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_mask: torch.Tensor,
                          overlap: int, rel_pe: torch.Tensor | None = None) -> torch.Tensor:
    """Plain (T, T) reference of ActionFormer's windowed attention numerics.

    Shapes:
        q, k, v: (B, H, T, D); kv_mask: (B, T) bool; rel_pe: (1, 1, H, 2 * overlap + 1).
    """
    length = q.shape[2]
    idx = torch.arange(length)
    offset = idx[None, :] - idx[:, None]  # key - query
    logits = q @ k.transpose(-1, -2)  # (B, H, T, T)
    if rel_pe is not None:
        slot = (offset + overlap).clamp(0, 2 * overlap)
        logits = logits + rel_pe[0, 0][:, slot]  # (H, T, T)
    add = torch.where(kv_mask[:, None, None, :], 0.0, MASKED_KEY_LOGIT).to(q.dtype)
    add = add.masked_fill((offset.abs() > overlap)[None, None], float("-inf"))
    probs = torch.softmax(logits + add, dim=-1).masked_fill(~kv_mask[:, None, :, None], 0.0)
    return probs @ v


@pytest.mark.parametrize("length,overlap,block", [(37, 4, None), (64, 9, None), (16, 4, 8), (5, 4, 3), (48, 1, 5)])
def test_local_attention_equals_dense_reference(length: int, overlap: int, block: int | None) -> None:
    gen = torch.Generator().manual_seed(length)
    q, k, v = (torch.randn(2, 3, length, 4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    rel_pe = torch.randn(1, 1, 3, 2 * overlap + 1, dtype=torch.float64, requires_grad=True)
    kv_mask = _mask([length, max(1, length - 7)], length)[:, 0]
    out = local_attention(q, k, v, kv_mask, overlap, rel_pe, block_len=block)
    ref = dense_local_attention(q, k, v, kv_mask, overlap, rel_pe)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-10)
    if length > 7:
        assert (out[1, :, length - 7:] == 0).all()  # masked queries give 0
    grads = torch.autograd.grad(out.square().sum(), (q, k, v, rel_pe))
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v, rel_pe))
    for g, r in zip(grads, ref_grads):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, r, atol=1e-10, rtol=1e-8)


def test_attention_module_local_vs_global_and_masking() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16)
    mask = _mask([16, 11], 16)
    local = MaskedMHCA(8, 2, window_size=33)  # window wider than the sequence = global, -1e4 vs -inf
    glob = MaskedMHCA(8, 2, window_size=None)
    glob.load_state_dict(local.state_dict())
    out_l, m_l = local(x, mask)
    out_g, m_g = glob(x, mask)
    torch.testing.assert_close(out_l, out_g, atol=1e-5, rtol=1e-5)
    assert torch.equal(m_l, mask) and (out_l[1, :, 11:] == 0).all()
    strided = MaskedMHCA(8, 2, window_size=5, stride=2)
    out_s, m_s = strided(x, mask)
    assert out_s.shape == (2, 8, 8) and torch.equal(m_s, mask[..., ::2])


def test_masked_conv_and_layer_norm() -> None:
    x = torch.randn(2, 4, 8)
    mask = _mask([8, 5], 8)
    conv = MaskedConv1D(4, 6, 3, stride=2)
    out, out_mask = conv(x, mask)
    assert out.shape == (2, 6, 4) and torch.equal(out_mask, mask[..., ::2])
    assert (out[1, :, 3:] == 0).all() and torch.equal(conv.conv.bias, torch.zeros(6))
    with pytest.raises(ValueError, match="divisible by the conv stride"):
        conv(x[..., :7], mask[..., :7])
    with pytest.raises(ValueError, match="odd kernel"):
        MaskedConv1D(4, 4, 2)
    norm = LayerNorm(4)
    assert norm.weight.shape == norm.bias.shape == (1, 4, 1)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
    ref = F.layer_norm(x.transpose(1, 2), (4,), norm.weight.flatten(), norm.bias.flatten(), 1e-5).transpose(1, 2)
    torch.testing.assert_close(norm(x), ref)
    # a padded (all-zero) step normalises to the bias: what leaks into the heads' convs
    torch.testing.assert_close(norm(torch.zeros(1, 4, 2)), norm.bias.expand(1, 4, 2))
    # the hand-written backward against numerical gradients
    args = [torch.randn(shape, dtype=torch.float64, requires_grad=True) for shape in ((2, 4, 5), (1, 4, 1), (1, 4, 1))]
    assert torch.autograd.gradcheck(lambda a, w, b: _ChannelLayerNorm.apply(a, w, b, 1e-5), args)
    # half precision is normalised in float32 and returned in the input dtype
    half = norm(x.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), norm(x), atol=0.05, rtol=0.02)


def test_scale_and_affine_drop_path() -> None:
    scale = Scale()
    assert scale.scale.shape == () and scale.scale.item() == 1.0
    drop = AffineDropPath(3, drop_prob=0.5)
    assert drop.scale.shape == (1, 3, 1) and torch.allclose(drop.scale, torch.full((1, 3, 1), 1e-4))
    x = torch.ones(400, 3, 2)
    drop.eval()
    torch.testing.assert_close(drop(x), 1e-4 * x)
    drop.train()
    out = drop(x)
    kept = out[:, 0, 0] != 0
    assert 0.3 < kept.float().mean() < 0.7  # whole samples dropped ...
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 2e-4))  # ... the rest scaled by 1/keep
    for droppath, present in ((0.0, False), (0.1, True)):
        block = TransformerBlock(8, 2, stride=2, window_size=3, path_pdrop=droppath)
        keys = [k for k in block.state_dict() if "drop_path" in k]
        assert bool(keys) == present


def test_transformer_block_pools_unmasked_input() -> None:
    """Odd valid length: the last pooled skip step includes one padded zero (reference quirk)."""
    block = TransformerBlock(4, 1, stride=2, window_size=3).eval()
    x = -torch.rand(1, 4, 8) - 1.0  # all negative valid features
    mask = _mask([5], 8)
    x = x * mask
    with torch.no_grad():
        for conv in (block.attn.proj, block.mlp[3]):  # silence the attention and MLP branches
            torch.nn.init.zeros_(conv.weight)
            torch.nn.init.zeros_(conv.bias)
        out, out_mask = block(x, mask)
    assert torch.equal(out_mask, mask[..., ::2])
    torch.testing.assert_close(out[0, :, 2], torch.zeros(4))  # max(x[3], x[4], padded 0) = 0
    torch.testing.assert_close(out[0, :, 1], torch.maximum(torch.maximum(x[0, :, 1], x[0, :, 2]), x[0, :, 3]))


@pytest.mark.parametrize("kernel,k,wide", [(1, 5, 11), (3, 1.5, 7), (1, 1.5, 3), (5, 2, 13)])
def test_sgp_wide_kernel_rule(kernel: int, k: float, wide: int) -> None:
    assert SGPBlock(16, kernel, k=k).convkw.kernel_size == (wide,)


def test_sgp_softmax_mixture_is_equation_one() -> None:
    torch.manual_seed(0)
    block = SGPBlock(16, 3, k=1.5, init_conv_vars=0.3, mixture="softmax").eval()
    assert block.mixture_logits.shape == (3,)
    with torch.no_grad():
        block.mixture_logits.copy_(torch.tensor([0.5, -1.0, 2.0]))
        x = torch.randn(2, 16, 8)
        mask = _mask([8, 6], 8)
        out, _ = block(x, mask)
        ln = block.ln(x)
        w = torch.softmax(block.mixture_logits, 0)
        branches = (block.fc(ln) * torch.relu(block.global_fc(ln.mean(-1, keepdim=True))),
                    block.convw(ln) * block.psi(ln), block.convkw(ln) * block.psi(ln))
        h = sum(wg * fg for wg, fg in zip(w, branches)) + ln
        ref = x * mask + h
        ref = ref + block.mlp(block.gn(ref))
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match="sgp_mixture"):
        SGPBlock(16, 3, mixture="mean")


def test_backbones_pyramid_layout_and_padding_invariance() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 6, 64)
    mask = _mask([61, 37], 64)  # at least one padded step at every level (see Detector.eval_groups)
    x = x * mask
    longer_x, longer_mask = F.pad(x, (0, 64)), F.pad(mask, (0, 64))
    backbones = [
        ConvTransformerBackbone(6, 16, 2, 3, 64, (2, 1, 3), [5] * 4, with_ln=True),
        ConvBackbone(6, 16, 3, (2, 1, 3), with_ln=True),
        SGPBackbone(6, 16, 24, 3, 64, (2, 1, 3), sgp_win_size=[3] * 4, init_conv_vars=0.2, with_ln=True),
    ]
    for bb in backbones:
        bb.eval()
        with torch.no_grad():
            for p in bb.parameters():  # non-trivial norms and biases
                p.add_(0.05 * torch.randn_like(p))
            feats, masks = bb(x, mask)
            long_feats, _ = bb(longer_x, longer_mask)
        assert [f.shape for f in feats] == [(2, 16, 64 // 2 ** l) for l in range(4)]
        assert all(torch.equal(m, mask[..., :: 2 ** l]) for l, m in enumerate(masks))
        diffs = [((a - b[..., : a.shape[-1]]) * m).abs().max().item() for a, b, m in zip(feats, long_feats, masks)]
        if bb.padding_invariant:
            assert max(diffs) < 1e-5, type(bb).__name__
        else:  # SGP: GroupNorm and the time mean see the padding (a reference quirk)
            assert max(diffs) > 1e-3


def test_fpn_topdown_quirk_and_strict_variant() -> None:
    torch.manual_seed(0)
    mask = _mask([64, 37], 64)
    masks = [mask[..., :: 2 ** l] for l in range(4)]
    feats = [torch.randn(2, 8, 64 // 2 ** l) * m for l, m in enumerate(masks)]
    quirk = FPNNeck([8] * 4, 8).eval()
    strict = FPNNeck([8] * 4, 8, remask_topdown=True).eval()
    strict.load_state_dict(quirk.state_dict())
    with torch.no_grad():
        out_q, _ = quirk(feats, masks)
        out_s, _ = strict(feats, masks)
    # video a has no padding: identical; video b differs only at its last valid step of level 0
    torch.testing.assert_close(out_q[0][0], out_s[0][0])
    diff = (out_q[0][1] - out_s[0][1]).abs().amax(0)  # (T,)
    assert diff[36] > 1e-4 and diff[:36].max() == 0


def test_point_generator() -> None:
    gen = PointGenerator([1, 2, 4], [[0, 4], [4, 8], [8, 10000]])
    points = gen([8, 4, 2])
    assert [p.shape for p in points] == [(8, 4), (4, 4), (2, 4)]
    torch.testing.assert_close(points[1], torch.tensor([[0.0, 4, 8, 2], [2, 4, 8, 2], [4, 4, 8, 2], [6, 4, 8, 2]]))
    assert points[2][:, 2].eq(10000).all()
    with pytest.raises(ValueError, match="regression ranges"):
        PointGenerator([1, 2], [[0, 4]])


def test_sinusoid_encoding() -> None:
    table = sinusoid_encoding(10, 6)
    assert table.shape == (1, 6, 10)
    t, i = 7, 2  # channel 2i = 4: sin(t / 10000^(4/6)); channel 5: cos of the same angle
    angle = t / 10000 ** (4 / 6)
    assert table[0, 4, t].item() == pytest.approx(torch.sin(torch.tensor(angle)).item(), abs=1e-6)
    assert table[0, 5, t].item() == pytest.approx(torch.cos(torch.tensor(angle)).item(), abs=1e-6)
