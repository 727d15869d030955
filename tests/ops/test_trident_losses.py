"""tal_lab.ops.trident_losses: TriDet's IoU-weighted focal loss and DIoU, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from tal_lab.ops.losses import LossNormalizer
from tal_lab.ops.trident_losses import trident_losses


def _focal(logit: float, target: int) -> float:
    """Sigmoid focal loss of one entry by its formula (alpha 0.25, gamma 2)."""
    p = 1 / (1 + math.exp(-logit))
    return 0.25 * (1 - p) ** 2 * -math.log(p) if target else 0.75 * p ** 2 * -math.log(1 - p)


def test_losses_by_hand() -> None:
    """IoU-weighted focal loss on positive (point, class) entries, DIoU per pair (TriDet)."""
    cls_logits = torch.tensor([[[0.5, -1.0], [-2.0, 0.3], [1.0, 1.0]]])  # (B=1, P=3, C=2)
    offsets = torch.tensor([[[[1.0, 2.0], [3.0, 3.0]], [[2.0, 2.0], [1.0, 1.0]], [[4.0, 4.0], [0.5, 0.5]]]])
    valid = torch.tensor([[True, True, False]])
    cls_targets = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]])  # point 0: two classes; 2: invalid
    reg_targets = torch.tensor([[[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]])
    normalizer = LossNormalizer(10.0)
    out = trident_losses(cls_logits, offsets, valid, cls_targets, reg_targets, normalizer,
                         loss_weight=1.0, label_smoothing=0.0, iou_weight_power=0.2)
    norm = 0.9 * 10 + 0.1 * 1  # one positive point
    # point 0's IoU with its target (2, 2): class 0 (1, 2): 3 / 4; class 1 (3, 3): 4 / 6
    cls_loss = (_focal(0.5, 1) * (3 / 4) ** 0.2 + _focal(-1.0, 1) * (4 / 6) ** 0.2  # point 0, positive
                + _focal(-2.0, 0) + _focal(0.3, 0))  # point 1, background; point 2 is padding
    assert out["cls_loss"].item() == pytest.approx(cls_loss / norm, rel=1e-6)
    # DIoU: (1, 2) vs (2, 2): 1 - 3 / 4 + (centre gap 0.5 / enclosing 4)^2; (3, 3): 1 - 4 / 6, same centre
    assert out["reg_loss"].item() == pytest.approx((1 / 4 + 1 / 64 + 1 / 3) / norm, rel=1e-6)
    torch.testing.assert_close(out["final_loss"], out["cls_loss"] + out["reg_loss"])
    assert out["num_pos"] == 1 and normalizer.value == pytest.approx(norm)


def test_losses_without_positives_stay_connected() -> None:
    offsets = torch.rand(1, 4, 2, 2, requires_grad=True)
    cls_logits = torch.randn(1, 4, 2, requires_grad=True)
    out = trident_losses(cls_logits, offsets, torch.ones(1, 4, dtype=torch.bool), torch.zeros(1, 4, 2),
                         torch.zeros(1, 4, 2), LossNormalizer(5.0), 1.0, 0.0, 0.2)
    assert out["reg_loss"] == 0 and out["num_pos"] == 0
    out["final_loss"].backward()
    # the offsets stay in the graph with zero gradient; every logit is pushed towards background
    assert offsets.grad is not None and offsets.grad.abs().sum() == 0
    assert (cls_logits.grad > 0).all()
