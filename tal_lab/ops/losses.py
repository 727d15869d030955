"""Training objective: sigmoid focal loss, 1-D DIoU loss and ActionFormer's loss normaliser.

All losses are computed in float32 whatever the dtype of the inputs (the reference casts to
float32 inside its loss functions, so a float64 or bf16 model gets float32 losses).

:func:`detection_losses` reproduces ActionFormer's ``losses``: the classification loss is summed
over every valid point and class, the regression loss over the positive points only, and both
are divided by :class:`LossNormalizer`, an exponential moving average of the number of positives
that is updated *before* it divides the current batch (so the first batch of a run with
``init_loss_norm = 100`` and 24 positives is divided by 0.9 * 100 + 0.1 * 24 = 92.4).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from tal_lab.config import ADAPTIVE_LOSS_WEIGHT, LossWeight

__all__ = [
    "ADAPTIVE_WEIGHT_MIN_REG_LOSS",
    "LossNormalizer",
    "check_batch_shapes",
    "check_label_smoothing",
    "combine_losses",
    "count_positives",
    "detection_losses",
    "diou_loss_1d",
    "sigmoid_focal_loss",
    "smooth_labels",
]

# ActionFormer's adaptive lambda_reg (loss_weight 'adaptive'; the reference's <= 0) divides by
# max(reg_loss, 0.01).
ADAPTIVE_WEIGHT_MIN_REG_LOSS = 0.01
# Guards the DIoU divisions against empty unions (fvcore's eps, kept by ActionFormer).
DIOU_EPS = 1e-8


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        # an empty mean is 0 (kept differentiable), not NaN
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def sigmoid_focal_loss(
    logits: Tensor,
    targets: Tensor,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "sum",
) -> Tensor:
    """Sigmoid focal loss (Lin et al., RetinaNet), in float32, with soft targets allowed.

    loss = alpha_t * (1 - p_t) ** gamma * BCE(logits, targets), with p = sigmoid(logits),
    p_t = p * y + (1 - p) * (1 - y) and alpha_t = alpha * y + (1 - alpha) * (1 - y).

    Args:
        alpha: weight of the positive term, or None for no alpha weighting.
        gamma: focusing exponent.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Shapes:
        logits, targets: any shape, equal; returns a scalar, or that shape for ``"none"``.
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    logits = logits.float()
    targets = targets.float()
    prob = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = bce * ((1 - p_t) ** gamma)
    if alpha is not None:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return _reduce(loss, reduction)


def diou_loss_1d(pred_offsets: Tensor, target_offsets: Tensor, reduction: str = "sum") -> Tensor:
    """1-D Distance-IoU loss between segments that share their anchor point, in float32.

    Both segments are given as non-negative (left, right) distances from the same point, so the
    intersection is min(l_p, l_g) + min(r_p, r_g); the DIoU penalty is the squared distance of
    the centres, 0.5 * ((r_p - l_p) - (r_g - l_g)), over the enclosing length
    max(l_p, l_g) + max(r_p, r_g). loss = 1 - IoU + penalty.

    Raises:
        ValueError: negative offsets (a segment with its anchor outside it).

    Shapes:
        pred_offsets, target_offsets: (N, 2); returns a scalar, or (N,) for ``"none"``.
    """
    if pred_offsets.shape != target_offsets.shape or pred_offsets.dim() != 2 or pred_offsets.shape[1] != 2:
        raise ValueError(
            f"offsets must both be (N, 2), got {tuple(pred_offsets.shape)} and {tuple(target_offsets.shape)}"
        )
    pred = pred_offsets.float()
    target = target_offsets.float()
    if bool((pred < 0).any()):
        raise ValueError("predicted offsets must be non-negative (the regression head ends in a ReLU)")
    if bool((target < 0).any()):
        raise ValueError("target offsets must be non-negative (positives lie inside their segment)")
    lp, rp = pred[:, 0], pred[:, 1]
    lg, rg = target[:, 0], target[:, 1]
    inter = torch.min(rp, rg) + torch.min(lp, lg)
    union = (lp + rp) + (lg + rg) - inter
    iou = inter / union.clamp(min=DIOU_EPS)
    enclosing = torch.max(lp, lg) + torch.max(rp, rg)
    centre_gap = 0.5 * (rp - lp - rg + lg)
    loss = 1.0 - iou + torch.square(centre_gap / enclosing.clamp(min=DIOU_EPS))
    return _reduce(loss, reduction)


class LossNormalizer:
    """EMA of the number of positive points per batch; ActionFormer's ``loss_normalizer``.

    value <- momentum * value + (1 - momentum) * max(num_pos, 1), updated before it divides the
    batch's losses. It is training state: save it with the checkpoint (``state_dict``) so that a
    resumed run divides by the same numbers.
    """

    def __init__(self, init_value: float, momentum: float = 0.9) -> None:
        if not init_value > 0:
            raise ValueError(f"init_value (train_cfg.init_loss_norm) must be positive, got {init_value!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
        self.value = float(init_value)
        self.momentum = float(momentum)

    def update(self, num_pos: int) -> float:
        """Fold one batch's positive count into the average and return the new value."""
        self.value = self.momentum * self.value + (1 - self.momentum) * max(int(num_pos), 1)
        return self.value

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value, "momentum": self.momentum}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"value", "momentum"} - set(state)
        if missing:
            raise ValueError(f"LossNormalizer state is missing {sorted(missing)}")
        self.value = float(state["value"])
        self.momentum = float(state["momentum"])

    def __repr__(self) -> str:
        return f"LossNormalizer(value={self.value}, momentum={self.momentum})"


def check_batch_shapes(expected: Mapping[str, tuple[Tensor, tuple[int, ...]]]) -> None:
    """Raise a ValueError naming the first tensor whose shape is not the one expected (derived
    from ``cls_logits``); ``expected`` maps names to (tensor, shape)."""
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} (from cls_logits), got {tuple(tensor.shape)}")


def check_label_smoothing(label_smoothing: float) -> None:
    """Raise a ValueError unless 0 <= label_smoothing < 1."""
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing!r}")


def count_positives(cls_targets: Tensor, valid: Tensor, normalizer: LossNormalizer) -> tuple[Tensor, int, float]:
    """Positive points (valid, with a non-zero class target), their count, and the normaliser
    updated with that count (ActionFormer updates it once per batch, before dividing).

    Shapes:
        cls_targets: (B, P, C); valid: (B, P) bool -> positives (B, P) bool.
    """
    positives = (cls_targets.sum(-1) > 0) & valid
    num_pos = int(positives.sum().item())
    return positives, num_pos, normalizer.update(num_pos)


def smooth_labels(cls_targets: Tensor, label_smoothing: float) -> Tensor:
    """The reference's label smoothing ``y * (1 - ls) + ls / (C + 1)`` (C + 1 counting a
    background class).

    Shapes:
        cls_targets: (..., C) -> (..., C).
    """
    return cls_targets * (1 - label_smoothing) + label_smoothing / (cls_targets.shape[-1] + 1)


def combine_losses(cls_loss: Tensor, reg_loss: Tensor, loss_weight: LossWeight) -> Tensor:
    """final_loss = cls_loss + w * reg_loss, w = loss_weight (a positive number), or for
    'adaptive' ActionFormer's adaptive weight cls_loss.detach() / max(reg_loss, 0.01)."""
    if loss_weight == ADAPTIVE_LOSS_WEIGHT:
        weight: Tensor | float = cls_loss.detach() / max(reg_loss.item(), ADAPTIVE_WEIGHT_MIN_REG_LOSS)
    elif isinstance(loss_weight, (int, float)) and not isinstance(loss_weight, bool) and loss_weight > 0:
        weight = float(loss_weight)
    else:
        raise ValueError(f"loss_weight (train_cfg.loss_weight) must be a positive number or "
                         f"'{ADAPTIVE_LOSS_WEIGHT}', got {loss_weight!r}")
    return cls_loss + reg_loss * weight


def detection_losses(
    cls_logits: Tensor,
    reg_offsets: Tensor,
    valid: Tensor,
    cls_targets: Tensor,
    reg_targets: Tensor,
    normalizer: LossNormalizer,
    loss_weight: LossWeight,
    label_smoothing: float,
    focal_alpha: float | None = 0.25,
    focal_gamma: float = 2.0,
) -> dict[str, Tensor | int]:
    """ActionFormer's training losses for one batch; updates ``normalizer`` once.

    * positives: valid points with a non-zero class target;
    * cls_loss: focal loss summed over valid points x classes, targets smoothed as the reference
      does (``y * (1 - ls) + ls / (C + 1)``, C + 1 counting a background class), / normaliser;
    * reg_loss: DIoU loss summed over positives / normaliser (0, still connected to the graph,
      when there are no positives);
    * final_loss = cls_loss + w * reg_loss, w = loss_weight, or for 'adaptive' ActionFormer's
      adaptive weight cls_loss.detach() / max(reg_loss, 0.01).

    Returns:
        dict with ``cls_loss``, ``reg_loss``, ``final_loss`` (0-d float32 tensors) and ``num_pos``
        (a python int: the positive count of this batch, what the normaliser was updated with).

    Shapes:
        cls_logits: (B, P, C); reg_offsets: (B, P, 2) in strides; valid: (B, P) bool;
        cls_targets: (B, P, C); reg_targets: (B, P, 2). P = sum of the level lengths.
    """
    batch, num_points, num_classes = cls_logits.shape
    expected = {
        "reg_offsets": (reg_offsets, (batch, num_points, 2)),
        "valid": (valid, (batch, num_points)),
        "cls_targets": (cls_targets, (batch, num_points, num_classes)),
        "reg_targets": (reg_targets, (batch, num_points, 2)),
    }
    check_batch_shapes(expected)
    if valid.dtype != torch.bool:
        raise ValueError(f"valid must be a bool mask, got {valid.dtype}")
    check_label_smoothing(label_smoothing)
    positives, num_pos, norm = count_positives(cls_targets, valid, normalizer)

    targets = smooth_labels(cls_targets[valid], label_smoothing)  # (N_valid, C)
    cls_loss = sigmoid_focal_loss(
        cls_logits[valid], targets, alpha=focal_alpha, gamma=focal_gamma, reduction="sum"
    ) / norm

    pred_pos = reg_offsets[positives]  # (N_pos, 2)
    if num_pos == 0:
        reg_loss = 0.0 * pred_pos.float().sum()
    else:
        reg_loss = diou_loss_1d(pred_pos, reg_targets[positives], reduction="sum") / norm
    final_loss = combine_losses(cls_loss, reg_loss, loss_weight)
    return {"cls_loss": cls_loss, "reg_loss": reg_loss, "final_loss": final_loss, "num_pos": num_pos}
