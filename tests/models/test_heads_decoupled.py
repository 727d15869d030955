"""The boundary-aware task-decoupled head: confidence and re-scoring by hand, the distribution
focal loss, shapes, masks, options, training and inference."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from tal_lab.config import apply_overrides
from tal_lab.models import build_detector
from tal_lab.models.heads.decoupled import DecoupledHead, boundary_confidence, rescore_factors
from tal_lab.ops.boundary import boundary_log_probs, expected_offsets
from tal_lab.ops.trident_losses import distribution_focal_loss

from tiny import check_detections, head_config, head_videos, overfit

TEST_CFG = {"pre_nms_thresh": 0.001, "pre_nms_topk": 100, "duration_thresh": 0.05, "nms_method": "none",
            "iou_threshold": 0.1, "min_score": 0.001, "max_seg_num": 100, "multiclass_nms": True,
            "nms_sigma": 0.5, "voting_thresh": 0.7}
VIDEO = {"fps": 1.0, "duration": 100.0, "feat_stride": 1, "feat_num_frames": 0}


def _log(probs: list[float]) -> torch.Tensor:
    return torch.tensor(probs).clamp(min=1e-30).log()


# ------------------------------------------------------------------ uncertainty


def test_confidence_by_hand() -> None:
    one_hot, uniform, ends = _log([0, 0, 1, 0, 0]), _log([0.2] * 5), _log([0.5, 0, 0, 0, 0.5])
    assert boundary_confidence(one_hot, "std").item() == pytest.approx(1.0)
    assert boundary_confidence(one_hot, "entropy").item() == pytest.approx(1.0)
    # uniform on {0..4}: variance (5^2 - 1) / 12 = 2; the largest std on [0, 4] is 2
    assert boundary_confidence(uniform, "std").item() == pytest.approx(1 - math.sqrt(2) / 2, abs=1e-6)
    assert boundary_confidence(uniform, "entropy").item() == pytest.approx(0.0, abs=1e-6)
    assert boundary_confidence(ends, "std").item() == pytest.approx(0.0, abs=1e-6)
    assert boundary_confidence(ends, "none").item() == 1.0
    with pytest.raises(ValueError, match="decoupled_uncertainty"):
        boundary_confidence(uniform, "variance")


def test_sharper_boundaries_score_higher() -> None:
    """Two points with the same class logit and the same expected offsets; the one whose
    boundary distributions are sharper ranks first after re-scoring."""
    head = DecoupledHead(8, 8, 2, num_levels=1, num_bins=4, uncertainty="std", uncertainty_power=1.0)
    sharp, flat = _log([0, 1, 0, 0, 0]), _log([0.25, 0.5, 0.25, 0, 0])  # both have mean 1
    log_probs = torch.stack([torch.stack([sharp, sharp]), torch.stack([flat, flat])])[None, :, None]  # (1, 2, 1, 2, 5)
    confidence = boundary_confidence(log_probs, "std")
    outputs = {"cls_logits": [torch.tensor([[[2.0, -9.0], [2.0, -9.0]]])], "log_probs": [log_probs],
               "reg_offsets": [expected_offsets(log_probs)], "confidence": [confidence]}
    torch.testing.assert_close(outputs["reg_offsets"][0][0, 0], outputs["reg_offsets"][0][0, 1])
    points = [torch.tensor([[10.0, 0.0, 100.0, 1.0], [20.0, 0.0, 100.0, 1.0]])]
    det = head.predict(outputs, points, [torch.ones(1, 2, dtype=torch.bool)], 0, VIDEO, TEST_CFG)
    assert det["labels"].tolist() == [0, 0]
    assert det["segments_grid"].tolist() == [[9.0, 11.0], [19.0, 21.0]]  # the sharp point first
    flat_conf = 1 - math.sqrt(0.5) / 2  # std of {0: .25, 1: .5, 2: .25} is sqrt(0.5)
    expected = torch.sigmoid(torch.tensor(2.0)) * torch.tensor([1.0, flat_conf])
    torch.testing.assert_close(det["scores"], expected)
    head.uncertainty_power = 0.0  # re-scoring off: equal scores
    det = head.predict(outputs, points, [torch.ones(1, 2, dtype=torch.bool)], 0, VIDEO, TEST_CFG)
    assert det["scores"][0] == det["scores"][1]
    assert rescore_factors(torch.tensor([0.25, 1.0]), 2.0).item() == pytest.approx(0.25)


# ------------------------------------------------------------------ distribution focal loss


def test_distribution_focal_loss_by_hand() -> None:
    dist = _log([0.1, 0.2, 0.4, 0.2, 0.1])
    log_probs = torch.stack([dist, dist])[None]  # (1, 2, 5)
    got = distribution_focal_loss(log_probs, torch.tensor([[2.3, 7.0]]))  # 7 > num_bins: clipped to 4
    expected = -(0.7 * math.log(0.4) + 0.3 * math.log(0.2)) - math.log(0.1)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # minimal for the two-bin distribution around the target
    ideal = _log([0, 0, 0.7, 0.3, 0])
    target = torch.tensor([[2.3, 2.3]])
    assert (distribution_focal_loss(torch.stack([ideal, ideal])[None], target)
            < distribution_focal_loss(torch.stack([_log([0, 0, 1.0, 0, 0])] * 2)[None], target))


# ------------------------------------------------------------------ the head


def _masks(lengths: list[int], steps: int) -> list[torch.Tensor]:
    mask = torch.arange(steps).view(1, 1, steps) < torch.tensor(lengths).view(-1, 1, 1)
    return [mask, mask[..., ::2]]


@pytest.mark.parametrize("class_aware", [False, True])
def test_forward_shapes_and_masks(class_aware: bool) -> None:
    torch.manual_seed(0)
    head = DecoupledHead(16, 16, 3, num_levels=2, num_bins=4, class_aware=class_aware)
    masks = _masks([32, 19], 32)
    out = head([torch.randn(2, 16, 32), torch.randn(2, 16, 16)], masks)
    k = 3 if class_aware else 1
    for level, length in enumerate((32, 16)):
        invalid = ~masks[level][:, 0]
        assert out["cls_logits"][level].shape == (2, length, 3)
        assert out["log_probs"][level].shape == (2, length, k, 2, 5)
        assert out["reg_offsets"][level].shape == (2, length, k, 2)
        assert out["confidence"][level].shape == (2, length, k, 2)
        for key in ("cls_logits", "reg_offsets", "confidence"):
            assert out[key][level][invalid].abs().sum() == 0, key
        conf = out["confidence"][level][~invalid]
        assert ((conf >= 0) & (conf <= 1)).all()
        torch.testing.assert_close(conf, boundary_confidence(out["log_probs"][level][~invalid]))


def test_padding_leaves_valid_outputs_unchanged() -> None:
    torch.manual_seed(0)
    head = DecoupledHead(16, 16, 3, num_levels=2, num_bins=4)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.2 * torch.randn_like(p))
    head.double()  # float64: float32 reductions over different lengths may round differently
    feats = [torch.randn(1, 16, 24, dtype=torch.float64), torch.randn(1, 16, 12, dtype=torch.float64)]
    outs = []
    for extra in (8, 40):
        padded = [torch.nn.functional.pad(f, (0, extra // 2 ** i)) for i, f in enumerate(feats)]
        masks = [torch.arange(p.shape[-1]).view(1, 1, -1) < f.shape[-1] for p, f in zip(padded, feats)]
        outs.append(head(padded, masks))
    for key in ("cls_logits", "log_probs", "reg_offsets", "confidence"):
        for level, f in enumerate(feats):
            n = f.shape[-1]
            torch.testing.assert_close(outs[1][key][level][:, :n], outs[0][key][level][:, :n], rtol=0, atol=1e-12)


def test_log_probs_follow_the_trident_formula() -> None:
    """The head's distributions are boundary_log_probs of its own three outputs."""
    torch.manual_seed(0)
    head = DecoupledHead(16, 16, 3, num_levels=1, num_bins=4)
    feats, masks = [torch.randn(1, 16, 8)], [torch.ones(1, 1, 8, dtype=torch.bool)]
    center, start, end = head.loc_head(feats, masks)[0]
    expected = boundary_log_probs(start.transpose(1, 2), end.transpose(1, 2), center.transpose(1, 2), 4)
    torch.testing.assert_close(head(feats, masks)["log_probs"][0], expected)


def test_decoupled_towers_and_state_dict() -> None:
    model = build_detector(head_config(head_type="decoupled"))
    keys = [k for k in model.state_dict() if not k.startswith(("backbone.", "neck."))]
    assert {k.split(".")[0] for k in keys} == {"cls_head", "loc_head"}
    loc = [k[len("loc_head."):] for k in keys if k.startswith("loc_head.")]
    assert loc == ["head.0.conv.weight", "head.1.conv.weight", "norm.0.weight", "norm.0.bias", "norm.1.weight",
                   "norm.1.bias", "scale.0.scale", "scale.1.scale", "scale.2.scale", "offset_head.conv.weight",
                   "offset_head.conv.bias", "start_conv.conv.weight", "start_conv.conv.bias",
                   "end_conv.conv.weight", "end_conv.conv.bias"]
    # no shared layers: the classification tower is not used by the localisation outputs
    assert model.state_dict()["loc_head.start_conv.conv.weight"].shape == (1, 16, 3)


def test_options_from_the_model_config() -> None:
    cfg = head_config(head_type="decoupled", decoupled_uncertainty="entropy", decoupled_uncertainty_power=2.0,
                      decoupled_dfl_weight=0.0, decoupled_class_aware=True)
    head = build_detector(cfg).head
    assert (head.uncertainty, head.uncertainty_power, head.dfl_weight, head.class_aware) == ("entropy", 2.0, 0.0, True)
    assert build_detector(cfg).train()(head_videos()).keys() == {"cls_loss", "reg_loss", "final_loss"}
    assert "dfl_loss" in build_detector(head_config(head_type="decoupled")).train()(head_videos())
    with pytest.raises(ValueError, match="decoupled_uncertainty"):
        build_detector(apply_overrides(cfg, {"model": {"decoupled_uncertainty": "variance"}}))


@pytest.mark.parametrize("class_aware", [False, True])
def test_overfits_a_tiny_batch_and_predicts_valid_segments(class_aware: bool) -> None:
    cfg = head_config(backbone_type="maxpool", head_type="decoupled", decoupled_class_aware=class_aware)
    model, history = overfit(cfg, steps=30)
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.5 * history[0]
    model.eval()
    videos: list[dict[str, Any]] = head_videos()
    assert check_detections(model(videos), videos, num_classes=3) > 0
