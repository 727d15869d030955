"""Focal loss, DIoU loss, the loss normaliser and the full objective against the reference."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tal_lab.config import ADAPTIVE_LOSS_WEIGHT
from tal_lab.ops.assign import assign_labels
from tal_lab.ops.losses import LossNormalizer, detection_losses, diou_loss_1d, sigmoid_focal_loss

from golden import AF_CASES, load_golden


def test_focal_loss_hand_computed() -> None:
    ln2 = math.log(2.0)
    logits = torch.zeros(2)  # p = 0.5 -> BCE = ln 2, (1 - p_t)^2 = 1/4
    targets = torch.tensor([1.0, 0.0])
    per = sigmoid_focal_loss(logits, targets, reduction="none")
    torch.testing.assert_close(per, torch.tensor([0.25 * 0.25 * ln2, 0.75 * 0.25 * ln2]))
    # no alpha weighting, gamma 0: plain BCE
    torch.testing.assert_close(
        sigmoid_focal_loss(logits, targets, alpha=None, gamma=0.0, reduction="sum"), torch.tensor(2 * ln2)
    )
    # a confident correct prediction: logit 3, target 1: p = sigmoid(3), loss = 0.25 (1-p)^2 (-log p)
    p = 1 / (1 + math.exp(-3.0))
    value = sigmoid_focal_loss(torch.tensor([3.0]), torch.tensor([1.0]), reduction="mean")
    assert value.item() == pytest.approx(0.25 * (1 - p) ** 2 * -math.log(p), rel=1e-6)
    # float64 in, float32 out (the reference computes losses in float32)
    assert sigmoid_focal_loss(logits.double(), targets.double()).dtype == torch.float32
    with pytest.raises(ValueError, match="reduction"):
        sigmoid_focal_loss(logits, targets, reduction="avg")


def test_diou_loss_hand_computed() -> None:
    pred = torch.tensor([[1.0, 1.0], [2.0, 3.0]])
    target = torch.tensor([[1.0, 3.0], [2.0, 3.0]])
    # row 0: intersection 1 + 1, union 2 + 4 - 2 = 4, IoU 1/2; enclosing 1 + 3 = 4; centres
    # differ by 0.5 * ((1 - 1) - (3 - 1)) = -1 -> penalty (1/4)^2. Row 1: identical -> 0
    per = diou_loss_1d(pred, target, reduction="none")
    torch.testing.assert_close(per, torch.tensor([0.5 + 0.0625, 0.0]))
    assert diou_loss_1d(pred, target).item() == pytest.approx(0.5625)
    # disjoint-looking but anchored: pred (0, 1) vs target (2, 0): intersection 0, union 3,
    # enclosing 3, centre gap 0.5 * (1 - 0 - 0 + 2) = 1.5 -> 1 + 0.25
    assert diou_loss_1d(torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 0.0]])).item() == pytest.approx(1.25)
    assert diou_loss_1d(pred.double(), target.double()).dtype == torch.float32
    with pytest.raises(ValueError, match="non-negative"):
        diou_loss_1d(torch.tensor([[-1.0, 1.0]]), target[:1])


def test_loss_normalizer_ema_and_state() -> None:
    norm = LossNormalizer(100.0)
    assert norm.update(24) == pytest.approx(92.4)
    assert norm.update(0) == pytest.approx(0.9 * 92.4 + 0.1 * 1)  # max(num_pos, 1)
    other = LossNormalizer(2000.0, momentum=0.5)
    other.load_state_dict(norm.state_dict())
    assert other.value == norm.value and other.momentum == 0.9
    with pytest.raises(ValueError, match="init_loss_norm"):
        LossNormalizer(0.0)
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict({"value": 1.0})


@pytest.mark.needs_shared
@pytest.mark.parametrize("case", AF_CASES)
def test_losses_equal_reference(shared_dir: Path, case: str) -> None:
    fixture = load_golden(shared_dir, case)
    ev, train = fixture["eval"], fixture["train"]
    train_cfg = fixture["config"]["model"]["train_cfg"]
    cls_t, reg_t = assign_labels(
        torch.cat(ev["points"]), train["gt_segments"], train["gt_labels"], 20, train_cfg["center_sample_radius"]
    )
    norm = LossNormalizer(train["init_loss_norm"])
    out = detection_losses(
        torch.cat(ev["cls_logits"], 1), torch.cat(ev["reg_offsets"], 1), torch.cat(ev["fpn_masks"], 1),
        cls_t, reg_t, norm, train_cfg["loss_weight"], train_cfg["label_smoothing"],
    )
    assert out["num_pos"] == train["num_pos"]
    assert norm.value == pytest.approx(train["loss_normalizer_used"], abs=1e-12)
    for key in ("cls_loss", "reg_loss", "final_loss"):
        assert out[key].dtype == torch.float32
        assert out[key].item() == pytest.approx(train["losses"][key], rel=1e-5, abs=1e-6)


def _toy_batch(requires_grad: bool = True) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 10, 3, generator=gen, requires_grad=requires_grad)
    offsets = torch.rand(2, 10, 2, generator=gen).requires_grad_(requires_grad)
    valid = torch.ones(2, 10, dtype=torch.bool)
    valid[1, 7:] = False
    cls_t = torch.zeros(2, 10, 3)
    cls_t[0, 2, 1] = 1
    cls_t[1, 4, 0] = cls_t[1, 4, 2] = 1
    cls_t[1, 8, 1] = 1  # a positive at a padded step: not counted
    reg_t = torch.rand(2, 10, 2, generator=gen) + 0.1
    return {"cls_logits": logits, "reg_offsets": offsets, "valid": valid, "cls_targets": cls_t, "reg_targets": reg_t}


def test_objective_by_hand_smoothing_and_adaptive_weight() -> None:
    # 1 video, 4 points (the last one padding), 3 classes; logits 0 (p = 0.5) make every focal
    # term alpha_t * (1 - p_t)^2 * BCE = (0.75 - 0.5 y) * 0.25 * ln 2 for a soft target y
    logits = torch.zeros(1, 4, 3, requires_grad=True)
    offsets = torch.ones(1, 4, 2)
    offsets[0, 1] = torch.tensor([1.0, 3.0])
    offsets.requires_grad_(True)
    valid = torch.tensor([[True, True, True, False]])
    cls_t = torch.zeros(1, 4, 3)
    cls_t[0, 1, 1] = 1
    cls_t[0, 3, 0] = 1  # a positive at the padded point: not counted
    reg_t = torch.full((1, 4, 2), 2.0)
    norm = LossNormalizer(10.0)
    out = detection_losses(logits, offsets, valid, cls_t, reg_t, normalizer=norm, loss_weight=ADAPTIVE_LOSS_WEIGHT,
                           label_smoothing=0.1)
    assert out["num_pos"] == 1 and norm.value == pytest.approx(0.9 * 10 + 0.1 * 1)
    # smoothed targets y (1 - 0.1) + 0.1 / 4: the positive 0.925, the 8 other valid entries 0.025
    cls_loss = ((0.75 - 0.5 * 0.925) + 8 * (0.75 - 0.5 * 0.025)) * 0.25 * math.log(2) / 9.1
    # DIoU of (1, 3) vs (2, 2): IoU (1 + 2) / 5, centre gap 0.5 * (2 - 0) = 1 over enclosing 5
    reg_loss = (1 - 3 / 5 + (1 / 5) ** 2) / 9.1
    assert out["cls_loss"].item() == pytest.approx(cls_loss, rel=1e-6)
    assert out["reg_loss"].item() == pytest.approx(reg_loss, rel=1e-6)
    # ActionFormer's adaptive weight cls / max(reg, 0.01), without gradient: final = 2 cls
    assert out["final_loss"].item() == pytest.approx(2 * cls_loss, rel=1e-6)
    (cls_grad,) = torch.autograd.grad(out["cls_loss"], logits, retain_graph=True)
    out["final_loss"].backward()
    torch.testing.assert_close(logits.grad, cls_grad)  # the weight's cls_loss is detached
    assert (logits.grad[0, :3] != 0).all() and offsets.grad[0, 1].abs().sum() > 0
    # padded points and non-positive offsets get no gradient
    assert logits.grad[0, 3].abs().sum() == 0 and offsets.grad[0, [0, 2, 3]].abs().sum() == 0
    fixed = detection_losses(logits, offsets, valid, cls_t, reg_t, LossNormalizer(10.0), 2.0, 0.1)
    assert fixed["final_loss"].item() == pytest.approx(cls_loss + 2 * reg_loss, rel=1e-6)


def test_no_positives_and_low_precision_inputs() -> None:
    batch = _toy_batch()
    batch["cls_targets"].zero_()
    norm = LossNormalizer(5.0)
    out = detection_losses(**batch, normalizer=norm, loss_weight=1.0, label_smoothing=0.0)
    assert out["num_pos"] == 0 and norm.value == pytest.approx(0.9 * 5 + 0.1)
    assert out["reg_loss"].item() == 0.0 and out["reg_loss"].dtype == torch.float32
    out["final_loss"].backward()  # still connected to the graph
    assert batch["reg_offsets"].grad is not None and batch["reg_offsets"].grad.abs().sum() == 0
    low = _toy_batch(requires_grad=False)
    low["cls_logits"], low["reg_offsets"] = low["cls_logits"].bfloat16(), low["reg_offsets"].bfloat16()
    out = detection_losses(**low, normalizer=LossNormalizer(5.0), loss_weight=1.0, label_smoothing=0.0)
    assert all(out[k].dtype == torch.float32 for k in ("cls_loss", "reg_loss", "final_loss"))


def test_objective_rejects_bad_shapes() -> None:
    batch = _toy_batch(requires_grad=False)
    batch["valid"] = batch["valid"][:, :9]
    with pytest.raises(ValueError, match="valid"):
        detection_losses(**batch, normalizer=LossNormalizer(1.0), loss_weight=1.0, label_smoothing=0.0)
