"""Unit conversions, tIoU and padding."""

from __future__ import annotations

import pytest
import torch

from tal_lab.core.structures import grid_to_sec, pad_batch, padded_length, sec_to_grid, segment_tiou


def test_seconds_grid_round_trip_and_half_window_offset() -> None:
    sec = torch.tensor([[0.0, 1.0], [12.34, 56.78]], dtype=torch.float64)
    grid = sec_to_grid(sec, fps=30.0, feat_stride=4, num_frames=16)
    # 1 s at 30 fps is frame 30; minus the 8-frame half window, over stride 4: 5.5
    assert grid[0].tolist() == [-2.0, 5.5]
    back = grid_to_sec(grid, fps=30.0, feat_stride=4, num_frames=16)
    torch.testing.assert_close(back, sec, rtol=0, atol=1e-12)


def test_tiou_properties() -> None:
    gen = torch.Generator().manual_seed(0)
    starts = torch.rand(20, generator=gen, dtype=torch.float64) * 10
    a = torch.stack([starts, starts + torch.rand(20, generator=gen, dtype=torch.float64) * 5], 1)
    b = a[torch.randperm(20, generator=gen)] + 0.5
    iou = segment_tiou(a, b)
    torch.testing.assert_close(iou, segment_tiou(b, a).T)
    assert bool(((iou >= 0) & (iou <= 1)).all())
    torch.testing.assert_close(torch.diagonal(segment_tiou(a, a)), torch.ones(20, dtype=torch.float64))
    hand = segment_tiou(torch.tensor([[0.0, 4.0]]), torch.tensor([[2.0, 6.0], [5.0, 5.0]]))
    assert hand.tolist() == [[pytest.approx(2 / 6), 0.0]]


def test_padded_length_follows_the_reference() -> None:
    assert padded_length([100, 50], 2304, 576, training=True) == 2304
    assert padded_length([100], 2304, 576, training=False) == 2304
    assert padded_length([100], 2304, 576, training=False, pad_to_max_seq_len=False) == 576
    assert padded_length([3000], 2304, 576, training=False) == 3456
    with pytest.raises(ValueError, match="more than max_seq_len=2304"):
        padded_length([2305], 2304, 576, training=True)


def test_pad_batch_masks_and_values() -> None:
    feats = [torch.ones(3, 5), 2 * torch.ones(3, 2)]
    batch, mask = pad_batch(feats, 8)
    assert batch.shape == (2, 3, 8) and mask.shape == (2, 1, 8) and mask.dtype == torch.bool
    assert mask[1, 0].tolist() == [True, True] + [False] * 6
    assert batch[1, :, 2:].abs().sum() == 0 and batch[0, :, :5].eq(1).all()
    with pytest.raises(ValueError, match="channels"):
        pad_batch([torch.ones(3, 5), torch.ones(4, 5)], 8)
    with pytest.raises(ValueError, match="do not fit"):
        pad_batch([torch.ones(3, 9)], 8)
