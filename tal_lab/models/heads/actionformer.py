"""Heads: dense per-point predictions shared over pyramid levels, and what a method does with them.

A head is a :class:`DenseHead`: an ``nn.Module`` whose sub-modules sit directly on the detector
(so ActionFormer's ``cls_head.*`` / ``reg_head.*`` and TriDet's ``start_head.*`` keys are
top-level keys, as in their checkpoints) and which supplies the method-specific steps the
detector calls:

* ``forward(feats, masks) -> outputs``: per-level tensors in (B, T_l, ...) layout;
* ``losses(outputs, points, valid, gt_segments, gt_labels, normalizer)``: label assignment and
  losses (plain functions from :mod:`tal_lab.ops.assign` / :mod:`tal_lab.ops.losses`);
* ``predict(outputs, points, valid, index, video, test_cfg)``: one video's detections
  (:mod:`tal_lab.ops.decode`).

New heads register a builder with :func:`tal_lab.core.registry.register_head`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tal_lab.config import LossWeight
from tal_lab.core.registry import register_head
from tal_lab.ops.assign import assign_labels
from tal_lab.ops.losses import LossNormalizer, detection_losses
from tal_lab.ops.decode import decode_video, level_scores, level_segments
from tal_lab.models.layers.masked import MaskedConv1D
from tal_lab.models.layers.norm import LayerNorm, Scale

__all__ = [
    "EMPTY_CLASS_PROB",
    "ClsHead",
    "RegHead",
    "DenseHead",
    "CenterSamplingHead",
    "ActionFormerHead",
    "head_options",
    "prior_bias",
]

# ActionFormer's head_empty_cls: classes absent from training get prior probability 1e-6.
EMPTY_CLASS_PROB = 1e-6


def prior_bias(prob: float) -> float:
    """Classifier bias whose sigmoid is ``prob`` (RetinaNet's prior init): -log((1 - p) / p)."""
    return -math.log((1.0 - prob) / prob)


class _ConvTower(nn.Module):
    """(num_layers - 1) x [masked conv -> LayerNorm -> ReLU], shared over levels.

    Shapes:
        x: (B, C_in, T); mask: (B, 1, T) -> (B, feat_dim, T).
    """

    def __init__(self, input_dim: int, feat_dim: int, num_layers: int, kernel_size: int, with_ln: bool) -> None:
        super().__init__()
        self.head = nn.ModuleList()
        self.norm = nn.ModuleList()
        for idx in range(num_layers - 1):
            self.head.append(MaskedConv1D(input_dim if idx == 0 else feat_dim, feat_dim, kernel_size,
                                          bias=not with_ln))
            self.norm.append(LayerNorm(feat_dim) if with_ln else nn.Identity())

    def tower(self, x: Tensor, mask: Tensor) -> Tensor:
        for conv, norm in zip(self.head, self.norm):
            x = torch.relu(norm(conv(x, mask)[0]))
        return x


class ClsHead(_ConvTower):
    """ActionFormer's classification head (keys ``head``, ``norm``, ``cls_head``).

    The classifier bias starts at the prior ``-log((1 - p) / p)``; classes listed in
    ``empty_cls`` start at prior 1e-6 so that they are (almost) never predicted.

    Shapes:
        feats[l]: (B, C, T_l); masks[l]: (B, 1, T_l) -> logits[l]: (B, num_classes, T_l), 0 at
        invalid steps.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_classes: int, prior_prob: float = 0.01,
                 num_layers: int = 3, kernel_size: int = 3, with_ln: bool = False,
                 empty_cls: Sequence[int] = ()) -> None:
        super().__init__(input_dim, feat_dim, num_layers, kernel_size, with_ln)
        self.cls_head = MaskedConv1D(feat_dim, num_classes, kernel_size, float32_output=True)
        with torch.no_grad():
            self.cls_head.conv.bias.fill_(prior_bias(prior_prob))
            for idx in empty_cls:
                self.cls_head.conv.bias[idx] = prior_bias(EMPTY_CLASS_PROB)

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> list[Tensor]:
        return [self.cls_head(self.tower(x, m), m)[0] for x, m in zip(feats, masks)]


class RegHead(_ConvTower):
    """ActionFormer's regression head (keys ``head``, ``norm``, ``scale.{l}``, ``offset_head``).

    Offsets are relu(s_l * conv_out) with a learnable scalar s_l per level: (left, right)
    distances in units of the level's stride.

    Shapes:
        feats[l]: (B, C, T_l) -> offsets[l]: (B, 2, T_l), 0 at invalid steps.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_levels: int, num_layers: int = 3,
                 kernel_size: int = 3, with_ln: bool = False) -> None:
        super().__init__(input_dim, feat_dim, num_layers, kernel_size, with_ln)
        self.scale = nn.ModuleList(Scale() for _ in range(num_levels))
        self.offset_head = MaskedConv1D(feat_dim, 2, kernel_size, float32_output=True)

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> list[Tensor]:
        if len(feats) != len(self.scale):
            raise ValueError(f"regression head built for {len(self.scale)} levels, got {len(feats)}")
        return [F.relu(scale(self.offset_head(self.tower(x, m), m)[0]))
                for scale, x, m in zip(self.scale, feats, masks)]


class DenseHead(nn.Module):
    """Base class of heads; see the module docstring for the protocol.

    A head holds parameters only in its sub-modules (the detector mounts those directly).
    """

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> dict[str, list[Tensor]]:
        raise NotImplementedError

    def losses(self, outputs: Mapping[str, list[Tensor]], points: Sequence[Tensor], valid: Sequence[Tensor],
               gt_segments: Sequence[Tensor], gt_labels: Sequence[Tensor],
               normalizer: LossNormalizer) -> dict[str, Tensor]:
        raise NotImplementedError

    def predict(self, outputs: Mapping[str, list[Tensor]], points: Sequence[Tensor], valid: Sequence[Tensor],
                index: int, video: Mapping[str, Any], test_cfg: Mapping[str, Any]) -> dict[str, Tensor]:
        raise NotImplementedError


class CenterSamplingHead(DenseHead):
    """A head trained on ActionFormer's centre-sampled targets (:func:`tal_lab.ops.assign.assign_labels`).

    Holds the assignment and loss options every such head shares; subclasses call
    :meth:`assign` in their ``losses``.
    """

    def __init__(self, num_classes: int, center_sample: str = "radius", center_sample_radius: float = 1.5,
                 loss_weight: LossWeight = 1.0, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.center_sample = center_sample
        self.center_sample_radius = center_sample_radius
        self.loss_weight = loss_weight
        self.label_smoothing = label_smoothing

    def assign(self, points: Sequence[Tensor], gt_segments: Sequence[Tensor],
               gt_labels: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Classification and regression targets of every point of every level, levels concatenated.

        Shapes:
            points[l]: (T_l, 4); gt_segments[b]: (N_b, 2) level-0 grid units; gt_labels[b]: (N_b,) ->
            cls_targets (B, P, num_classes), reg_targets (B, P, 2), P = sum of the T_l.
        """
        return assign_labels(torch.cat(list(points)), gt_segments, gt_labels, self.num_classes,
                             self.center_sample_radius, center_sample=self.center_sample)


class ActionFormerHead(CenterSamplingHead):
    """ActionFormer's head pair: focal classification + DIoU regression, soft-NMS decoding.

    Outputs (levels in order): ``cls_logits[l]`` (B, T_l, C) raw logits, ``reg_offsets[l]``
    (B, T_l, 2) in strides; both 0 at invalid steps.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_classes: int, num_levels: int,
                 num_layers: int = 3, kernel_size: int = 3, with_ln: bool = True,
                 prior_prob: float = 0.01, empty_cls: Sequence[int] = (),
                 center_sample: str = "radius", center_sample_radius: float = 1.5,
                 loss_weight: LossWeight = 1.0, label_smoothing: float = 0.0) -> None:
        super().__init__(num_classes, center_sample, center_sample_radius, loss_weight, label_smoothing)
        self.cls_head = ClsHead(input_dim, feat_dim, num_classes, prior_prob, num_layers, kernel_size,
                                with_ln, empty_cls)
        self.reg_head = RegHead(input_dim, feat_dim, num_levels, num_layers, kernel_size, with_ln)

    def forward(self, feats: Sequence[Tensor], masks: Sequence[Tensor]) -> dict[str, list[Tensor]]:
        # heads compute (B, C, T_l); the objective reads (B, T_l, C) as the reference permutes
        logits = [x.transpose(1, 2) for x in self.cls_head(feats, masks)]
        offsets = [x.transpose(1, 2) for x in self.reg_head(feats, masks)]
        return {"cls_logits": logits, "reg_offsets": offsets}

    def losses(self, outputs: Mapping[str, list[Tensor]], points: Sequence[Tensor], valid: Sequence[Tensor],
               gt_segments: Sequence[Tensor], gt_labels: Sequence[Tensor],
               normalizer: LossNormalizer) -> dict[str, Tensor]:
        cls_targets, reg_targets = self.assign(points, gt_segments, gt_labels)
        losses = detection_losses(torch.cat(outputs["cls_logits"], dim=1), torch.cat(outputs["reg_offsets"], dim=1),
                                  torch.cat(list(valid), dim=1), cls_targets, reg_targets, normalizer,
                                  self.loss_weight, self.label_smoothing)
        return {key: losses[key] for key in ("cls_loss", "reg_loss", "final_loss")}

    def predict(self, outputs: Mapping[str, list[Tensor]], points: Sequence[Tensor], valid: Sequence[Tensor],
                index: int, video: Mapping[str, Any], test_cfg: Mapping[str, Any]) -> dict[str, Tensor]:
        # one (left, right) pair per point, shared by the classes: K = 1
        scores = [level_scores(x[index], m[index]) for x, m in zip(outputs["cls_logits"], valid, strict=True)]
        segments = [level_segments(x[index][:, None, :], p)  # (T_l, 2) -> (T_l, 1, 2)
                    for x, p in zip(outputs["reg_offsets"], points, strict=True)]
        return decode_video(scores, segments, test_cfg, video)


def head_options(model: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments every head takes from ``cfg['model']``: the tower's shape, and from its
    ``train_cfg`` the classifier prior, empty classes, assignment and loss options."""
    train = model["train_cfg"]
    return {
        "num_layers": model["head_num_layers"], "kernel_size": model["head_kernel_size"],
        "with_ln": model["head_with_ln"], "prior_prob": train["cls_prior_prob"], "empty_cls": train["head_empty_cls"],
        "center_sample": train["center_sample"], "center_sample_radius": train["center_sample_radius"],
        "loss_weight": train["loss_weight"], "label_smoothing": train["label_smoothing"],
    }


@register_head("actionformer")
def build_actionformer_head(model: Mapping[str, Any], in_channels: int, num_levels: int) -> ActionFormerHead:
    """ActionFormer's cls / reg heads from ``cfg['model']`` (prior, empty classes from train_cfg)."""
    return ActionFormerHead(in_channels, model["head_dim"], model["num_classes"], num_levels, **head_options(model))
