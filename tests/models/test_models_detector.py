"""Detector flow: input validation, batching at inference, state, deep copies."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from tal_lab.models import build_detector
from tal_lab.models.heads.actionformer import EMPTY_CLASS_PROB, prior_bias

from tiny import TEST_CFG, TRAIN_CFG, tiny_config, tiny_raw

DETECTOR = tiny_raw(train_cfg=TRAIN_CFG, test_cfg=TEST_CFG)


def tiny_model(seed: int = 0, **model: Any) -> torch.nn.Module:
    cfg = tiny_config(DETECTOR, model=model)
    torch.manual_seed(seed)
    detector = build_detector(cfg)
    with torch.no_grad():  # non-trivial LayerNorm biases: padded steps then carry garbage
        for name, param in detector.named_parameters():
            if name.endswith("bias") and param.dim() == 3:
                param.normal_(0.0, 0.3)
    return detector


def video(vid: str, length: int, seed: int, segments: list[list[float]] | None = None) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    segs = torch.tensor(segments or [[1.0, 6.0], [10.0, 30.0]])
    return {"video_id": vid, "feats": torch.randn(8, length, generator=gen), "fps": 25.0, "duration": length / 6.25,
            "feat_stride": 4, "feat_num_frames": 16, "segments": segs,
            "labels": torch.arange(len(segs)) % 3}


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["video_id"] == b["video_id"]
    assert torch.equal(a["labels"], b["labels"])
    torch.testing.assert_close(a["scores"], b["scores"], atol=1e-6, rtol=0)
    torch.testing.assert_close(a["segments"], b["segments"], atol=1e-4, rtol=0)


def test_inference_any_batch_size_matches_one_video_at_a_time() -> None:
    model = tiny_model().eval()
    videos = [video("a", 40, 1), video("b", 64, 2), video("long", 150, 3), video("c", 13, 4)]
    batched = model(videos)
    assert [r["video_id"] for r in batched] == ["a", "b", "long", "c"]
    for vid, res in zip(videos, batched):
        _same(model([vid])[0], res)
        assert res["segments"].shape == (len(res["scores"]), 2) and res["labels"].dtype == torch.long
        assert (res["segments"] >= 0).all() and (res["segments"] <= vid["duration"]).all()
    assert [len(g) for _, g in model.eval_groups([40, 64, 150, 13])] == [3, 1]


@pytest.mark.parametrize("backbone", ["convTransformer", "conv"])
def test_minimal_eval_padding_gives_reference_results(backbone: str) -> None:
    reference = tiny_model(backbone_type=backbone, fpn_type="fpn").eval()
    minimal = tiny_model(backbone_type=backbone, fpn_type="fpn", eval_padding="minimal").eval()
    minimal.load_state_dict(reference.state_dict())
    videos = [video("a", 9, 1), video("b", 33, 2), video("c", 64, 3), video("long", 100, 4)]
    groups = minimal.eval_groups([v["feats"].shape[1] for v in videos])
    div = minimal.max_div_factor
    assert groups == [(64, [0, 1, 2]), (-(-100 // div) * div, [3])]  # over-length: as the reference
    assert minimal.eval_groups([9, 20]) == [(24, [0, 1])]  # 20 -> 20 + one top-stride (4) step
    for batch in (videos, videos[:2]):  # the second batch is padded to 40, not 64
        for ref, res in zip(reference(batch), minimal(batch)):
            _same(ref, res)
    with pytest.raises(ValueError, match="'minimal' is not exact for SGPBackbone"):
        tiny_model(backbone_type="sgp", eval_padding="minimal")


def test_training_losses_normaliser_state_and_empty_ground_truth() -> None:
    model = tiny_model().train()
    videos = [video("a", 64, 1), video("empty", 30, 2, segments=[])]
    videos[1]["segments"] = torch.zeros(0, 2)
    videos[1]["labels"] = torch.zeros(0, dtype=torch.long)
    losses = model(videos)
    assert set(losses) == {"cls_loss", "reg_loss", "final_loss"}
    assert all(torch.isfinite(v) for v in losses.values())
    first = model.loss_normalizer.value
    assert first < 10  # EMA updated before use: 0.9 * 10 + 0.1 * num_pos, few positives here
    state = model.loss_normalizer.state_dict()
    model(videos)
    assert model.loss_normalizer.value != first
    model.loss_normalizer.load_state_dict(state)
    assert model.loss_normalizer.value == first
    # no ground truth at all: finite losses, zero regression loss; the graph still reaches every
    # parameter, and all but the regression head learn (it has no positive to fit)
    for v in videos:
        v["segments"], v["labels"] = torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)
    losses = model(videos)
    assert losses["reg_loss"].item() == 0.0 and torch.isfinite(losses["final_loss"])
    losses["final_loss"].backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert {name for name, g in grads.items() if g.abs().sum() == 0} == {n for n in grads if n.startswith("reg_head.")}


def test_input_validation_names_the_problem() -> None:
    model = tiny_model().train()
    good = video("ok", 64, 1)
    with pytest.raises(ValueError, match="exceed max_seq_len 64"):
        model([good, video("too_long", 65, 2)])
    with pytest.raises(ValueError, match=r"video bad: 'feats' must be a \(C, T\) tensor"):
        model([dict(good, video_id="bad", feats=torch.randn(1, 8, 64))])
    with pytest.raises(ValueError, match="expects model.input_dim = 8"):
        model([dict(good, feats=torch.randn(64, 8))])
    with pytest.raises(ValueError, match="needs 'segments'"):
        model([dict(good, segments=None)])
    with pytest.raises(ValueError, match="non-empty list"):
        model([])
    with pytest.raises(ValueError, match="needs 'fps'"):
        model.eval()([dict(good, fps=None)])
    backbone = model.backbone
    x = torch.randn(2, 8, 64)
    with pytest.raises(ValueError, match=r"features \(B, C, T\)"):
        backbone(x[0], torch.ones(1, 64, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, 1, T\)"):
        backbone(x, torch.ones(2, 64, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, 1, T\)"):
        backbone(x, torch.ones(2, 1, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        backbone(x, torch.ones(2, 1, 64))
    with pytest.raises(ValueError, match="not divisible by the top pyramid stride 4"):
        backbone(x[..., :62], torch.ones(2, 1, 62, dtype=torch.bool))
    with pytest.raises(ValueError, match="input channels"):
        backbone(x[:, :5], torch.ones(2, 1, 64, dtype=torch.bool))


def test_state_dict_layout_deepcopy_and_modes() -> None:
    model = tiny_model()
    keys = list(model.state_dict())
    assert keys[0].startswith("backbone.") and any(k.startswith("cls_head.") for k in keys)
    assert not any(k.startswith("head.") for k in keys)
    ema = copy.deepcopy(model)
    assert ema.head.cls_head is ema.cls_head and ema.cls_head is not model.cls_head
    model.eval()
    assert not model.head.training and not model.cls_head.training
    model.train()
    assert model.head.training
    empty = tiny_model(head_type="actionformer")
    empty = build_detector(tiny_config(DETECTOR, train_cfg={"head_empty_cls": [1], "cls_prior_prob": 0.05}))
    bias = empty.cls_head.cls_head.conv.bias
    assert bias[1].item() == pytest.approx(prior_bias(EMPTY_CLASS_PROB))
    assert bias[0].item() == pytest.approx(prior_bias(0.05)) == pytest.approx(-2.944439, abs=1e-6)


def test_backbone_output_layout_is_documented() -> None:
    model = tiny_model().eval()
    x = torch.randn(2, 8, 64)
    mask = (torch.arange(64) < torch.tensor([[64], [23]]))[:, None]
    feats, masks = model.backbone(x, mask)
    assert [f.shape for f in feats] == [(2, 16, 64), (2, 16, 32), (2, 16, 16)]
    for level, m in enumerate(masks):
        assert m.dtype == torch.bool and torch.equal(m, mask[..., :: 2 ** level])


@pytest.mark.parametrize("backbone", ["convTransformer", "conv"])
def test_minimal_train_padding_gives_the_same_losses_and_gradients(backbone: str) -> None:
    reference = tiny_model(backbone_type=backbone, fpn_type="fpn").train()
    minimal = copy.deepcopy(reference)
    minimal.train_padding = "minimal"
    videos = [video("a", 17, 1), video("b", 30, 2)]  # padded to 36 instead of 64
    assert minimal.minimal_length([17, 30]) == 36
    grads = []
    for model in (reference, minimal):
        losses = model(videos)
        losses["final_loss"].backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
        assert model.loss_normalizer.value == reference.loss_normalizer.value
    for key in ("cls_loss", "reg_loss", "final_loss"):
        torch.testing.assert_close(reference(videos)[key], minimal(videos)[key])
    for key, grad in grads[0].items():
        torch.testing.assert_close(grads[1][key], grad, atol=1e-6, rtol=1e-4, msg=key)


def test_input_noise_perturbs_training_inputs_only() -> None:
    model = tiny_model().train()
    noisy = copy.deepcopy(model)
    noisy.input_noise = 0.5
    videos = [video("a", 40, 1)]
    assert model(videos)["final_loss"].item() != noisy(videos)["final_loss"].item()
    model.eval(), noisy.eval()
    _same(model(videos)[0], noisy(videos)[0])
