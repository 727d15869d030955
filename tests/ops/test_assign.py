"""Label assignment: golden targets from the reference, and a hand-built case."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tal_lab.ops.assign import assign_labels, positive_mask

from golden import AF_CASES, load_golden


@pytest.mark.needs_shared
@pytest.mark.parametrize("case", AF_CASES)
def test_targets_equal_reference(shared_dir: Path, case: str) -> None:
    fixture = load_golden(shared_dir, case)
    train, points = fixture["train"], torch.cat(fixture["eval"]["points"])
    cfg = fixture["config"]["model"]
    cls_t, reg_t = assign_labels(
        points, train["gt_segments"], train["gt_labels"], cfg["num_classes"],
        cfg["train_cfg"]["center_sample_radius"],
    )
    assert cls_t.dtype == reg_t.dtype == torch.float64
    torch.testing.assert_close(cls_t, train["gt_cls_targets"], rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(reg_t, train["gt_reg_targets"], rtol=1e-7, atol=1e-9)
    valid = torch.cat(fixture["eval"]["fpn_masks"], 1)
    assert int(positive_mask(cls_t, valid).sum()) == train["num_pos"]


def _two_level_points() -> torch.Tensor:
    """Level 0: t = 0..15, stride 1, range [0, 4]; level 1: t = 0, 2, .., 14, stride 2, range [4, 100]."""
    lvl0 = torch.stack([torch.arange(16.0), torch.zeros(16), torch.full((16,), 4.0), torch.ones(16)], 1)
    t1 = torch.arange(0.0, 16.0, 2.0)
    lvl1 = torch.stack([t1, torch.full((8,), 4.0), torch.full((8,), 100.0), torch.full((8,), 2.0)], 1)
    return torch.cat([lvl0, lvl1]).double()


def test_hand_built_assignment() -> None:
    points = _two_level_points()  # 16 + 8 points
    gt = torch.tensor([[2.0, 6.0], [3.0, 7.0], [3.0, 7.0005], [0.5, 14.5]], dtype=torch.float64)
    labels = torch.tensor([1, 2, 0, 3])
    cls_t, reg_t = assign_labels(points, [gt], [labels], num_classes=4, center_sample_radius=1.5)
    assert cls_t.shape == (1, 24, 4) and reg_t.shape == (1, 24, 2)

    # t=3 (level 0): inside GT0's centre region (4 +- 1.5 -> (2.5, 5.5)), max dist 3 in [0, 4];
    # GT1/GT2 centre 5 / 5.00025: region starts at 3.5, so t=3 is outside them -> GT0 only
    assert cls_t[0, 3].tolist() == [0, 1, 0, 0]
    assert reg_t[0, 3].tolist() == [1.0, 3.0]
    # t=4: GT0 (len 4), GT1 (len 4), GT2 (len 4.0005, within 1e-3) all qualify: multi-hot, and the
    # regression target comes from the first shortest (GT0): (4 - 2, 6 - 4)
    assert cls_t[0, 4].tolist() == [1, 1, 1, 0]
    assert reg_t[0, 4].tolist() == [2.0, 2.0]
    # t=6: GT0's region ends at 5.5 (strict), GT1 region (3.5, 6.5): max dist max(3, 1) = 3 -> GT1
    # and GT2 (same length within 1e-3); regression from GT1
    assert cls_t[0, 6].tolist() == [1, 0, 1, 0]
    assert reg_t[0, 6].tolist() == [3.0, 1.0]
    # t=5: all three qualify (max dists 3, 2, 2.0005); GT0 and GT1 tie for shortest, GT0 is first
    assert cls_t[0, 5].tolist() == [1, 1, 1, 0]
    assert reg_t[0, 5].tolist() == [3.0, 1.0]
    # GT3 [0.5, 14.5], centre 7.5: on level 0 the distances exceed 4 -> never assigned there
    assert cls_t[0, :16, 3].sum() == 0
    # level 1 point t=8 (index 16 + 4): GT3 centre region 7.5 +- 3; max dist max(7.5, 6.5) = 7.5 in
    # [4, 100]; GT0..2 are out of range there (max dist >= 4 only for t far away) -> GT3, / stride 2
    assert cls_t[0, 20].tolist() == [0, 0, 0, 1]
    assert reg_t[0, 20].tolist() == [7.5 / 2, 6.5 / 2]
    # the regression range is inclusive at both ends: level-1 point t=6 for GT [2, 10]
    # has max dist exactly 4 = the range's low end
    cls_b, reg_b = assign_labels(points, [torch.tensor([[2.0, 10.0]], dtype=torch.float64)],
                                 [torch.tensor([0])], 4, 1.5)
    assert cls_b[0, 16 + 3, 0] == 1 and reg_b[0, 16 + 3].tolist() == [2.0, 2.0]
    # ... and level-0 t=6 (max dist 4 = high end of [0, 4]) too
    assert cls_b[0, 6, 0] == 1


def test_centre_region_is_strict_and_clipped() -> None:
    points = _two_level_points()
    # GT [4, 5]: centre 4.5, region [3, 6] clipped to [4, 5]; t=4 and t=5 sit on the boundary
    cls_t, _ = assign_labels(points, [torch.tensor([[4.0, 5.0]], dtype=torch.float64)], [torch.tensor([0])], 1, 1.5)
    assert cls_t[0, :, 0].sum() == 0
    cls_t, _ = assign_labels(points, [torch.tensor([[3.9, 5.1]], dtype=torch.float64)], [torch.tensor([0])], 1, 1.5)
    assert torch.nonzero(cls_t[0, :, 0]).flatten().tolist() == [4, 5]
    # GT [0, 12], centre 6: level 0 distances reach 5+ -> nothing; on level 1 (stride 2) the
    # centre region 6 +- 3 keeps t = 4, 6, 8 while "none" keeps every t strictly inside (2..10)
    wide = torch.tensor([[0.0, 12.0]], dtype=torch.float64)
    cls_r, _ = assign_labels(points, [wide], [torch.tensor([0])], 1, 1.5)
    cls_n, _ = assign_labels(points, [wide], [torch.tensor([0])], 1, 1.5, center_sample="none")
    assert cls_r[0, :16].sum() == 0 and cls_n[0, :16].sum() == 0
    assert torch.nonzero(cls_r[0, 16:, 0]).flatten().tolist() == [2, 3, 4]
    assert torch.nonzero(cls_n[0, 16:, 0]).flatten().tolist() == [1, 2, 3, 4, 5]


def test_empty_ground_truth_and_batch_independence() -> None:
    points = _two_level_points()
    gt_a = torch.tensor([[2.0, 6.0]], dtype=torch.float64)
    empty = torch.zeros((0, 2), dtype=torch.float64)
    cls_t, reg_t = assign_labels(points, [gt_a, empty], [torch.tensor([1]), torch.zeros(0, dtype=torch.long)], 3, 1.5)
    assert cls_t[1].abs().sum() == 0 and reg_t[1].abs().sum() == 0
    alone_cls, alone_reg = assign_labels(points, [gt_a], [torch.tensor([1])], 3, 1.5)
    assert torch.equal(cls_t[:1], alone_cls) and torch.equal(reg_t[:1], alone_reg)
    # negatives still carry the offsets of the video's first segment (reference quirk)
    assert reg_t[0, 15].tolist() == [(15 - 2.0) / 1, (6.0 - 15) / 1]


def test_bad_inputs_raise() -> None:
    points = _two_level_points()
    gt = torch.tensor([[2.0, 6.0]])
    with pytest.raises(ValueError, match="points"):
        assign_labels(points[:, :3], [gt], [torch.tensor([0])], 2, 1.5)
    with pytest.raises(ValueError, match="gt_labels"):
        assign_labels(points, [gt], [torch.tensor([0, 1])], 2, 1.5)
    with pytest.raises(ValueError, match="label outside"):
        assign_labels(points, [gt], [torch.tensor([5])], 2, 1.5)
    with pytest.raises(ValueError, match="center_sample"):
        assign_labels(points, [gt], [torch.tensor([0])], 2, 1.5, center_sample="box")
