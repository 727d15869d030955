"""The Trident head: decoding by hand, TriDet's losses, shapes, masks, training, inference,
TriDet's parameter count, and a registry walk of every backbone with the new heads."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tal_lab.config import DEFAULTS, load_config
from tal_lab.ops.losses import LossNormalizer
from tal_lab.models import BACKBONES, build_detector
from tal_lab.models.heads.trident import TridentHead
from tal_lab.ops.boundary import boundary_log_probs, boundary_neighbours, center_logits_by_distance, expected_offsets
from tal_lab.ops.decode import level_scores, level_segments, select_candidates
from tal_lab.ops.trident_losses import trident_losses

from tiny import (
    assert_every_parameter_learns,
    assert_finite_detections,
    check_detections,
    head_config,
    head_videos,
    overfit,
)


# ------------------------------------------------------------------ decoding


def test_neighbours_by_hand() -> None:
    logits = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1)  # (B, T, K)
    start = boundary_neighbours(logits, 2, "start")[0, :, 0]  # [t, d] = logits[t - d]
    end = boundary_neighbours(logits, 2, "end")[0, :, 0]  # [t, d] = logits[t + d]
    assert start.tolist() == [[1, 0, 0], [2, 1, 0], [3, 2, 1], [4, 3, 2]]
    assert end.tolist() == [[1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 0]]
    # TriDet's channel layout: start channel j = distance nb - j, end channel j = distance j
    center = torch.arange(6.0).view(1, 1, 6)
    assert center_logits_by_distance(center, 2).tolist() == [[[[2, 1, 0], [3, 4, 5]]]]


def test_decoding_equals_tridets_formula() -> None:
    """Expectation of softmax(start logit at t - nb + j + centre channel j) with distances
    nb - j (TriDet's decode_offset, written as loops)."""
    gen = torch.Generator().manual_seed(0)
    nb, steps, classes = 3, 6, 2
    start, end = torch.randn(1, steps, classes, generator=gen), torch.randn(1, steps, classes, generator=gen)
    center = torch.randn(1, steps, 2 * (nb + 1), generator=gen)
    got = expected_offsets(boundary_log_probs(start, end, center, nb))[0]  # (T, K, 2)
    for t in range(steps):
        for k in range(classes):
            left_logits = torch.tensor([(start[0, t - nb + j, k] if t - nb + j >= 0 else 0.0) + center[0, t, j]
                                        for j in range(nb + 1)])
            right_logits = torch.tensor([(end[0, t + j, k] if t + j < steps else 0.0) + center[0, t, nb + 1 + j]
                                         for j in range(nb + 1)])
            left = (left_logits.softmax(0) * torch.arange(nb, -1, -1.0)).sum()
            right = (right_logits.softmax(0) * torch.arange(nb + 1.0)).sum()
            torch.testing.assert_close(got[t, k], torch.stack((left, right)))


def test_expected_offset_of_a_one_hot_distribution() -> None:
    log_probs = torch.full((1, 2, 5), -1e4)
    log_probs[0, 0, 3] = 0.0
    log_probs[0, 1, 1] = 0.0
    assert expected_offsets(log_probs.log_softmax(-1)).tolist() == [[3.0, 1.0]]


# ------------------------------------------------------------------ losses


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


# ------------------------------------------------------------------ the head


def _head(seed: int = 0) -> TridentHead:
    torch.manual_seed(seed)
    return TridentHead(16, 16, 3, num_levels=2, num_bins=4, num_layers=3)


def test_forward_shapes_and_masks() -> None:
    head = _head()
    feats = [torch.randn(2, 16, 32), torch.randn(2, 16, 16)]
    masks = [torch.arange(32).view(1, 1, 32) < torch.tensor([32, 20]).view(2, 1, 1)]
    masks.append(masks[0][..., ::2])
    out = head(feats, masks)
    for level, length in enumerate((32, 16)):
        logits, offsets = out["cls_logits"][level], out["reg_offsets"][level]
        invalid = ~masks[level][:, 0]
        assert logits.shape == (2, length, 3) and offsets.shape == (2, length, 3, 2)
        assert logits[invalid].abs().sum() == 0 and offsets[invalid].abs().sum() == 0
        assert (offsets >= 0).all() and (offsets <= 4).all()  # expectations over bins 0..num_bins


def test_padding_leaves_valid_outputs_unchanged() -> None:
    head = _head()
    with torch.no_grad():  # non-zero biases everywhere, so padded steps would show
        for p in head.parameters():
            p.add_(0.2 * torch.randn_like(p))
    head.double()  # float64: float32 reductions over different lengths may round differently
    feats = [torch.randn(1, 16, 24, dtype=torch.float64), torch.randn(1, 16, 12, dtype=torch.float64)]
    outs = []
    for extra in (8, 40):  # pad level 0 by extra, level 1 by extra / 2 (zeros, like the detector)
        padded = [torch.nn.functional.pad(f, (0, extra // 2 ** i)) for i, f in enumerate(feats)]
        masks = [torch.arange(p.shape[-1]).view(1, 1, -1) < f.shape[-1] for p, f in zip(padded, feats)]
        outs.append(head(padded, masks))
    for key in ("cls_logits", "reg_offsets"):
        for level, f in enumerate(feats):
            n = f.shape[-1]
            torch.testing.assert_close(outs[1][key][level][:, :n], outs[0][key][level][:, :n], rtol=0, atol=1e-12)


def test_state_dict_layout_is_tridets() -> None:
    model = build_detector(head_config(backbone_type="sgp", head_type="trident"))
    heads = [k for k in model.state_dict() if not k.startswith(("backbone.", "neck."))]
    tower = ["head.0.conv.weight", "head.1.conv.weight", "norm.0.weight", "norm.0.bias", "norm.1.weight",
             "norm.1.bias"]
    expected = [f"{h}.{k}" for h in ("cls_head", "start_head", "end_head") for k in
                tower + ["cls_head.conv.weight", "cls_head.conv.bias"]]
    expected += [f"reg_head.{k}" for k in tower] + [f"reg_head.scale.{lvl}.scale" for lvl in range(3)]
    expected += ["reg_head.offset_head.conv.weight", "reg_head.offset_head.conv.bias"]
    assert heads == expected
    assert model.state_dict()["reg_head.offset_head.conv.weight"].shape == (2 * (4 + 1), 16, 3)
    assert model.state_dict()["start_head.cls_head.conv.bias"].tolist() == pytest.approx([math.log(0.01 / 0.99)] * 3)


def _tridet_thumos_config(shared_dir: Path) -> dict[str, Any]:
    """TriDet's merged THUMOS14 config, in tal_lab's schema (its keys that tal_lab shares)."""
    ref = json.loads((shared_dir / "reference/keys/tridet_full_config.json").read_text())["config"]
    model = {k: v for k, v in ref["model"].items() if k in DEFAULTS["model"] and k not in ("input_dim",)}
    model["backbone_type"] = {"SGP": "sgp"}[ref["model"]["backbone_type"]]
    model["head_type"] = "trident" if ref["model"]["use_trident_head"] else "actionformer"
    dataset = {k: ref["dataset"][k] for k in ("input_dim", "num_classes", "max_seq_len")}
    return load_config({"dataset": dataset, "model": model, "train_cfg": ref["train_cfg"]})


@pytest.mark.needs_shared
def test_tridet_thumos_parameter_count(shared_dir: Path) -> None:
    rows = (shared_dir / "reference/keys/param_counts.tsv").read_text().splitlines()
    header = rows[0].split("\t")
    ref = dict(zip(header, next(r.split("\t") for r in rows if r.startswith("tridet_thumos_full_model\t"))))
    backbone_keys = [line.split("\t")[0] for line in
                     (shared_dir / "reference/keys/tridet_sgp_backbone.tsv").read_text().splitlines()[1:]]
    model = build_detector(_tridet_thumos_config(shared_dir))
    state = model.state_dict()
    counts = {name: sum(v.numel() for k, v in state.items() if k.startswith(name + "."))
              for name in ("backbone", "neck", "cls_head", "start_head", "end_head", "reg_head")}
    assert sum(p.numel() for p in model.parameters()) == int(ref["total_params"]) == 15_989_604
    assert len(state) == int(ref["state_dict_keys"])
    assert counts["backbone"] == int(ref["backbone"]) and counts["neck"] == int(ref["neck"])
    assert counts["cls_head"] == int(ref["cls_head"]) and counts["reg_head"] == int(ref["reg_head"])
    heads = ("cls_head", "start_head", "end_head", "reg_head")
    assert sum(counts[h] for h in heads) == int(ref["heads"]) == 6_444_132
    assert [k for k in state if k.startswith("backbone.")] == backbone_keys


# ------------------------------------------------------------------ training and inference


def test_overfits_a_tiny_batch_and_predicts_valid_segments() -> None:
    model, history = overfit(head_config(backbone_type="maxpool", head_type="trident"))
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.5 * history[0]
    model.eval()
    videos = head_videos()
    assert check_detections(model(videos), videos, num_classes=3) > 0


def test_decoded_candidates_use_each_class_own_offsets() -> None:
    logits = torch.tensor([[5.0, 5.0, -20.0]])  # one point, classes 0 and 1 above threshold
    offsets = torch.tensor([[[1.0, 1.0], [2.0, 3.0], [0.0, 0.0]]])
    points = torch.tensor([[10.0, 0.0, 100.0, 2.0]])
    segs, scores, labels = select_candidates([level_scores(logits, torch.tensor([True]))],
                                             [level_segments(offsets, points)], 0.001, 100, 0.05)
    assert labels.tolist() == [0, 1]
    assert segs.tolist() == [[8.0, 12.0], [6.0, 16.0]]


# ------------------------------------------------------------------ registry walk


def _walk() -> list[tuple[str, str, str]]:
    combos = [(b, "identity", h) for b in BACKBONES.names() for h in ("trident", "decoupled")]
    combos += [("maxpool", "identity", "actionformer"), ("maxpool", "fpn", "trident"), ("conv", "fpn", "decoupled")]
    return combos


@pytest.mark.parametrize("backbone,neck,head", _walk())
def test_registry_walk_with_the_new_parts(backbone: str, neck: str, head: str) -> None:
    torch.manual_seed(3)
    model = build_detector(head_config(backbone_type=backbone, fpn_type=neck, head_type=head)).train()
    losses = model(head_videos())
    assert all(torch.isfinite(v) for v in losses.values())
    losses["final_loss"].backward()
    assert_every_parameter_learns(model)
    assert_finite_detections(model, head_videos())
