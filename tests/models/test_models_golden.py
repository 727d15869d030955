"""The detector against the golden fixtures of the official ActionFormer / TriDet code.

Every fixture: its state dict loads strictly into the model built from its config, and the model
reproduces the stored stage outputs (float64) within the fixture's own tolerances. The
ActionFormer fixtures also check seeded initialisation, the training losses and the end-to-end
detections; the SGP fixtures compare the backbone alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tal_lab.engine.checkpoints.official import load_checkpoint, load_tridet_backbone
from tal_lab.config import load_config
from tal_lab.models import SGPBackbone, build_detector

from golden import AF_CASES, SGP_CASES, load_golden


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: dict[str, float], what: str) -> None:
    if expected.dtype == torch.bool:
        assert torch.equal(actual, expected), f"{what}: masks differ"
    else:
        torch.testing.assert_close(actual, expected, atol=tol["atol"], rtol=tol["rtol"], msg=lambda m: f"{what}: {m}")


def _af_model(fix: dict[str, Any], dtype: torch.dtype = torch.float64, padding: str = "auto") -> torch.nn.Module:
    """The fixture's model; ``padding`` sets model.eval_padding and train_padding ('auto' is the
    default: 'minimal' for these padding-invariant backbones)."""
    cfg = load_config(fix["config"], {"model": {"eval_padding": padding, "train_padding": padding}})
    model = build_detector(cfg).to(dtype)
    load_checkpoint(model, {k: v.to(dtype) for k, v in fix["state_dict"].items()})  # strict
    return model


def _videos(fix: dict[str, Any], dtype: torch.dtype = torch.float64) -> list[dict[str, Any]]:
    feats, lens, train = fix["inputs"]["feats"], fix["inputs"]["valid_lens"], fix["train"]
    return [dict(meta, feats=feats[b, :, : lens[b]].to(dtype), segments=train["gt_segments"][b],
                 labels=train["gt_labels"][b]) for b, meta in enumerate(train["videos"])]


@pytest.mark.needs_shared
@pytest.mark.parametrize("case", AF_CASES)
def test_actionformer_stages_match_reference(shared_dir: Path, case: str) -> None:
    fix = load_golden(shared_dir, case)
    model = _af_model(fix).eval()
    tol = fix["tolerances"]["eval_float64"]
    ref = fix["eval"]
    x, mask = fix["inputs"]["feats"], fix["inputs"]["masks"]
    with torch.no_grad():
        feats, masks = model.backbone(x, mask)
        neck_feats, neck_masks = model.neck(feats, masks)
        outputs, points, valid = model.forward_features(x, mask)
    assert len(feats) == len(ref["backbone_feats"]) == 6
    for level in range(6):
        _assert_close(feats[level], ref["backbone_feats"][level], tol, f"backbone level {level}")
        _assert_close(masks[level], ref["backbone_masks"][level], tol, f"backbone mask {level}")
        _assert_close(neck_feats[level], ref["neck_feats"][level], tol, f"neck level {level}")
        _assert_close(neck_masks[level], ref["neck_masks"][level], tol, f"neck mask {level}")
        _assert_close(points[level], ref["points"][level], tol, f"points level {level}")
        _assert_close(outputs["cls_logits"][level], ref["cls_logits"][level], tol, f"cls logits level {level}")
        _assert_close(outputs["reg_offsets"][level], ref["reg_offsets"][level], tol, f"reg offsets level {level}")
        _assert_close(valid[level], ref["fpn_masks"][level], tol, f"fpn mask {level}")


@pytest.mark.needs_shared
@pytest.mark.parametrize("case", [c for c in AF_CASES if "stress" not in c])
def test_seeded_init_equals_reference_init(shared_dir: Path, case: str) -> None:
    """Same seed, same construction order and init rules -> the reference's exact weights."""
    fix = load_golden(shared_dir, case)
    torch.manual_seed(fix["seeds"]["model"])
    state = build_detector(load_config(fix["config"])).state_dict()
    assert list(state) == list(fix["state_dict"])
    for key, value in fix["state_dict"].items():
        assert torch.equal(state[key].double(), value), key


@pytest.mark.needs_shared
@pytest.mark.parametrize("padding", ["auto", "reference"])
@pytest.mark.parametrize("case", AF_CASES)
def test_training_forward_gives_reference_losses(shared_dir: Path, case: str, padding: str) -> None:
    fix = load_golden(shared_dir, case)
    model = _af_model(fix, padding=padding).train()
    for module in model.modules():  # the stress fixture keeps drop-path modules at p = 0
        if hasattr(module, "drop_prob"):
            module.drop_prob = 0.0
    losses = model(_videos(fix))
    tol = fix["tolerances"]["losses"]
    assert set(losses) == {"cls_loss", "reg_loss", "final_loss"}
    for key, expected in fix["train"]["losses"].items():
        assert losses[key].dtype == torch.float32
        assert losses[key].item() == pytest.approx(expected, abs=tol["atol"], rel=tol["rtol"]), key
    assert model.loss_normalizer.value == pytest.approx(fix["train"]["loss_normalizer_used"])
    losses["final_loss"].backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # every parameter learns but the regression scale of a level without positives
    assert all(name.startswith("reg_head.scale.") for name, g in grads.items() if g.abs().sum() == 0)


def _assert_detections(results: list[dict[str, Any]], expected: list[dict[str, Any]], tol: dict[str, Any]) -> None:
    assert [r["video_id"] for r in results] == [e["video_id"] for e in expected]
    for res, exp in zip(results, expected):
        assert torch.equal(res["labels"], exp["labels"]), res["video_id"]
        torch.testing.assert_close(res["scores"].float(), exp["scores"], atol=tol["scores"]["atol"], rtol=0)
        torch.testing.assert_close(res["segments"].float(), exp["segments_sec"],
                                   atol=tol["segments_sec"]["atol"], rtol=0)


@pytest.mark.needs_shared
@pytest.mark.parametrize("padding", ["auto", "reference"])
@pytest.mark.parametrize("case", AF_CASES)
def test_inference_gives_reference_detections(shared_dir: Path, case: str, padding: str) -> None:
    fix = load_golden(shared_dir, case)
    tol = fix["tolerances"]["detections"]
    # float32 end to end, as the reference forward() ran it
    model32 = _af_model(fix, torch.float32, padding).eval()
    if padding == "auto":  # the fixture's 163-step video alone (below) is padded to 224, not 256
        lengths = [v["feats"].shape[-1] for v in _videos(fix)]
        assert lengths == [256, 163] and model32.padding.eval_groups([163]) == [(224, [0])]
    _assert_detections(model32(_videos(fix, torch.float32)), fix["detections"]["e2e_float32"]["per_video"], tol)
    # float64 model: the 'thumos' variant (post-processing of the stored float64 outputs)
    model64 = _af_model(fix, padding=padding).eval()
    videos = _videos(fix)
    batched = model64(videos)
    _assert_detections(batched, fix["detections"]["variants"]["thumos"]["per_video"], tol)
    # any batch size: each video alone gives the same detections
    for video, res in zip(videos, batched):
        alone = model64([video])[0]
        assert torch.equal(alone["labels"], res["labels"])
        torch.testing.assert_close(alone["scores"], res["scores"], atol=1e-12, rtol=0)


def _sgp_config(kwargs: dict[str, Any]) -> dict[str, Any]:
    """tal_lab config whose SGP backbone equals TriDet's backbone built with ``kwargs``."""
    wins = set(kwargs["sgp_win_size"])
    assert len(wins) == 1
    return load_config({
        "dataset": {"input_dim": kwargs["n_in"], "max_seq_len": kwargs["max_len"], "num_classes": 20},
        "model": {"backbone_type": "sgp", "fpn_type": "identity", "embd_dim": kwargs["n_embd"],
                  "fpn_dim": kwargs["n_embd"], "head_dim": 16, "sgp_mlp_dim": kwargs["sgp_mlp_dim"],
                  "embd_kernel_size": kwargs["n_embd_ks"], "backbone_arch": list(kwargs["arch"]),
                  "scale_factor": kwargs["scale_factor"], "embd_with_ln": kwargs["with_ln"],
                  "downsample_type": kwargs["downsample_type"], "n_sgp_win_size": wins.pop(),
                  "k": kwargs["k"], "init_conv_vars": kwargs["init_conv_vars"], "use_abs_pe": kwargs["use_abs_pe"]},
        "train_cfg": {"droppath": kwargs["path_pdrop"]},
    })


@pytest.mark.needs_shared
@pytest.mark.parametrize("case", SGP_CASES)
def test_sgp_backbone_matches_tridet(shared_dir: Path, case: str) -> None:
    fix = load_golden(shared_dir, case)
    tol = fix["tolerances"]["eval_float64"]
    detector = build_detector(_sgp_config(fix["backbone_kwargs"])).double().eval()
    # a TriDet training checkpoint: DataParallel prefix, EMA weights, heads we ignore
    tridet_ckpt = {
        "epoch": 20,
        "state_dict_ema": {f"module.backbone.{k}": v for k, v in fix["state_dict"].items()}
        | {"module.cls_head.cls_head.conv.bias": torch.zeros(20)},
    }
    info = load_tridet_backbone(detector, tridet_ckpt)
    assert info == {"num_tensors": len(fix["state_dict"]), "ignored": 1}
    with torch.no_grad():
        feats, masks = detector.backbone(fix["inputs"]["feats"], fix["inputs"]["masks"])
    for level, (f, m) in enumerate(zip(feats, masks)):
        _assert_close(f, fix["eval"]["backbone_feats"][level], tol, f"SGP level {level}")
        _assert_close(m, fix["eval"]["backbone_masks"][level], tol, f"SGP mask {level}")
    # block kernels as TriDet builds them
    blocks = list(detector.backbone.stem) + list(detector.backbone.branch)
    for block, spec in zip(blocks, fix["sgp_block_kernels"]):
        assert block.psi.kernel_size[0] == spec["psi"] and block.convkw.kernel_size[0] == spec["convkw"]


@pytest.mark.needs_shared
@pytest.mark.parametrize("case", [c for c in SGP_CASES if "stress" not in c])
def test_sgp_seeded_init_equals_tridet_init(shared_dir: Path, case: str) -> None:
    fix = load_golden(shared_dir, case)
    torch.manual_seed(fix["seeds"]["model"])
    state = SGPBackbone(**fix["backbone_kwargs"]).state_dict()
    assert list(state) == list(fix["state_dict"])
    for key, value in fix["state_dict"].items():
        assert torch.equal(state[key].double(), value), key
