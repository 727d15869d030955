"""The Trident head: shapes, masks, training, inference,
TriDet's parameter count, and a registry walk of every backbone with the new heads."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tal_lab.config import DEFAULTS, load_config
from tal_lab.models import BACKBONES, build_detector
from tal_lab.models.heads.trident import TridentHead
from tal_lab.ops.decode import level_scores, level_segments, select_candidates

from tiny import (
    assert_every_parameter_learns,
    assert_finite_detections,
    check_detections,
    head_config,
    head_videos,
    overfit,
)


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
