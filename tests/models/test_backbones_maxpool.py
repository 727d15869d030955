"""The max-pool backbone (TemporalMaxer-style): pooling by hand, shapes, masks, padding."""

from __future__ import annotations

import pytest
import torch

from tal_lab.config import load_config
from tal_lab.models import BACKBONES, build_detector
from tal_lab.models.backbones.maxpool import MaxPoolBackbone, MaxPoolBlock, pool_kernel_size
from tal_lab.core.structures import pad_batch


def _backbone(arch: tuple[int, int, int] = (2, 1, 2), use_abs_pe: bool = False) -> MaxPoolBackbone:
    torch.manual_seed(0)
    return MaxPoolBackbone(n_in=6, n_embd=8, n_embd_ks=3, max_len=64, arch=arch, use_abs_pe=use_abs_pe)


def _perturb(module: torch.nn.Module) -> None:
    """Non-trivial LayerNorm weights / biases and conv biases, so padded steps are non-zero."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))


def test_block_pools_by_hand_and_ignores_padded_steps() -> None:
    x = torch.tensor([[[1.0, 5.0, 2.0, 0.0, 3.0, 100.0]]])  # step 5 is padding (junk)
    mask = torch.tensor([[[True, True, True, True, True, False]]])
    out, out_mask = MaxPoolBlock(2)(x, mask)
    # output i = max over input steps 2i-1 .. 2i+1 that are valid (kernel 3, TemporalMaxer's)
    assert out.tolist() == [[[5.0, 5.0, 3.0]]]
    assert out_mask.tolist() == [[[True, True, True]]]
    neg = -torch.arange(1.0, 7.0).view(1, 1, 6)  # negative features: padding must not win either
    mask4 = torch.tensor([[[True, True, True, True, False, False]]])
    out, out_mask = MaxPoolBlock(1)(neg, mask4)
    assert out.tolist() == [[[-1.0, -1.0, -2.0, -3.0, 0.0, 0.0]]]
    assert out_mask.equal(mask4)


def test_kernel_sizes_and_errors() -> None:
    assert [pool_kernel_size(s) for s in (1, 2, 3, 4)] == [3, 3, 3, 5]
    with pytest.raises(ValueError, match="odd"):
        MaxPoolBlock(2, kernel_size=4)
    with pytest.raises(ValueError, match="not divisible"):
        MaxPoolBlock(2)(torch.zeros(1, 1, 5), torch.ones(1, 1, 5, dtype=torch.bool))


@pytest.mark.parametrize("arch", [(2, 1, 2), (2, 0, 5)])
def test_shapes_masks_and_parameters(arch: tuple[int, int, int]) -> None:
    backbone = _backbone(arch)
    x, mask = pad_batch([torch.randn(6, 64), torch.randn(6, 37)], 64)
    feats, masks = backbone(x, mask)
    assert len(feats) == arch[2] + 1 == backbone.num_levels
    for level, (f, m) in enumerate(zip(feats, masks)):
        assert f.shape == (2, 8, 64 // 2 ** level) and m.shape == (2, 1, 64 // 2 ** level)
        assert m.equal(mask[..., :: 2 ** level])
        assert (f * ~m).abs().sum() == 0  # zero at padded steps
    # max pooling only: every parameter belongs to the embedding convs / norms
    assert {name.split(".")[0] for name, _ in backbone.named_parameters()} == {"embd", "embd_norm"}
    assert backbone.padding_invariant and not _backbone(use_abs_pe=True).padding_invariant


def test_each_level_is_a_max_of_the_previous() -> None:
    backbone = _backbone((2, 0, 3))
    x, mask = pad_batch([torch.randn(6, 64)], 64)
    feats, _ = backbone(x, mask)
    for finer, coarser in zip(feats[:-1], feats[1:]):
        # level l+1 step i = max over level-l steps 2i-1, 2i, 2i+1
        padded = torch.nn.functional.pad(finer, (1, 1), value=float("-inf"))
        windows = padded.unfold(-1, 3, 2)  # (B, C, T/2, 3)
        assert torch.equal(coarser, windows.amax(-1))


def test_valid_outputs_do_not_depend_on_padding() -> None:
    backbone = _backbone((2, 1, 2))
    _perturb(backbone)  # LayerNorm biases != 0: the embedding is non-zero at padded steps
    # float64: reductions over different lengths may round differently in float32 (~1e-7)
    backbone.double()
    video = torch.randn(6, 37, dtype=torch.float64)
    short_x, short_m = pad_batch([video], 40)
    long_x, long_m = pad_batch([video], 128)
    short, _ = backbone(short_x, short_m)
    long, _ = backbone(long_x, long_m)
    for level, (a, b) in enumerate(zip(short, long)):
        n = a.shape[-1]
        torch.testing.assert_close(b[..., :n], a, rtol=0, atol=1e-12, msg=f"level {level}")


def test_registered_and_built_from_config() -> None:
    assert "maxpool" in BACKBONES
    cfg = load_config({"dataset": {"input_dim": 6, "num_classes": 3, "max_seq_len": 64},
                       "model": {"backbone_type": "maxpool", "embd_dim": 8, "fpn_dim": 8, "head_dim": 8,
                                 "backbone_arch": [2, 0, 5]}})
    detector = build_detector(cfg, eval_padding="minimal")  # exact for a padding-invariant backbone
    assert isinstance(detector.backbone, MaxPoolBackbone)
    assert detector.backbone.strides == [1, 2, 4, 8, 16, 32]
