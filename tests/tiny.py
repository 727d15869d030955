"""Tiny configurations, videos and checks shared by the model, head, engine and analysis tests."""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch

from tal_lab.config import load_config
from tal_lab.models import build_detector

# The detector at tiny size: C 16 over T 64 (3 levels: strides 1, 2, 4), 8 input channels, 3 classes.
# ActionFormer's recipe, named: the model keys mix ActionFormer's (n_mha_win_size) with TriDet's (sgp_mlp_dim).
TINY: dict[str, Any] = {
    "recipe": "actionformer",
    "dataset": {"input_dim": 8, "num_classes": 3, "max_seq_len": 64},
    "model": {"embd_dim": 16, "fpn_dim": 16, "head_dim": 16, "n_head": 2, "n_mha_win_size": 5,
              "backbone_arch": [2, 1, 2], "regression_range": [[0, 4], [4, 8], [8, 10000]], "sgp_mlp_dim": 24},
}
# Options of the tests that train and decode: a small loss normaliser, no drop path, few detections.
TRAIN_CFG: dict[str, Any] = {"init_loss_norm": 10, "droppath": 0.0}
TEST_CFG: dict[str, Any] = {"min_score": 0.001, "max_seg_num": 50}
# The analysis tests: a 4-level pyramid at C 16, T 32 (window 5 divides every level length).
PYRAMID: dict[str, Any] = {
    "recipe": "actionformer",
    "dataset": {"input_dim": 8, "num_classes": 3, "max_seq_len": 32},
    "model": {"embd_dim": 16, "fpn_dim": 16, "head_dim": 16, "n_mha_win_size": 5, "sgp_mlp_dim": 16,
              "backbone_arch": [2, 2, 3], "regression_range": [[0, 4], [4, 8], [8, 16], [16, 10000]]},
}
# Overrides (``--set`` / ``overrides=``) that make a model small enough for seconds per run.
FAST_OVERRIDES = ["model.n_mha_win_size=3", "dataset.max_seq_len=128", "model.embd_dim=16", "model.fpn_dim=16",
                  "model.head_dim=16"]


def tiny_raw(base: Mapping[str, Any] = TINY, **sections: Any) -> dict[str, Any]:
    """A deep copy of the raw config ``base``: each mapping in ``sections`` updates the section of
    that name, any other value replaces the key (e.g. ``dataset_name``)."""
    cfg = copy.deepcopy(dict(base))
    for name, values in sections.items():
        if isinstance(values, Mapping):
            cfg.setdefault(name, {}).update(copy.deepcopy(dict(values)))
        else:
            cfg[name] = values
    return cfg


def tiny_config(base: Mapping[str, Any] = TINY, **sections: Any) -> dict[str, Any]:
    """:func:`tal_lab.config.load_config` of :func:`tiny_raw`."""
    return load_config(tiny_raw(base, **sections))


# The head tests (Trident, decoupled): 4 bins; SGP branches at N(0, 0.1) (TriDet's 0 would zero them).
HEAD_TINY = tiny_raw(model={"init_conv_vars": 0.1, "num_bins": 4}, train_cfg=TRAIN_CFG, test_cfg=TEST_CFG)


def head_config(**model: Any) -> dict[str, Any]:
    """The head tests' config, with ``model`` options (e.g. backbone_type, head_type)."""
    return tiny_config(HEAD_TINY, model=model)


def head_videos() -> list[dict[str, Any]]:
    """Two videos of 64 and 41 steps (8 channels, seeded), with segments of the 3 classes."""
    gen = torch.Generator().manual_seed(0)
    meta = {"fps": 25.0, "feat_stride": 4, "feat_num_frames": 16}
    return [
        {"video_id": "a", "feats": torch.randn(8, 64, generator=gen), "duration": 10.0, **meta,
         "segments": torch.tensor([[2.0, 9.5], [20.0, 50.0], [11.0, 13.0], [52.0, 61.0]]),
         "labels": torch.tensor([0, 2, 1, 0])},
        {"video_id": "b", "feats": torch.randn(8, 41, generator=gen), "duration": 7.0, **meta,
         "segments": torch.tensor([[5.0, 7.0], [1.0, 39.0], [14.0, 30.0]]), "labels": torch.tensor([1, 2, 0])},
    ]


def overfit(cfg: dict[str, Any], steps: int = 40) -> tuple[torch.nn.Module, list[float]]:
    """Train the detector of ``cfg`` (seed 0, Adam 3e-3) on :func:`head_videos`; returns the
    model and its loss history."""
    torch.manual_seed(0)
    model = build_detector(cfg).train()
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    videos, history = head_videos(), []
    for _ in range(steps):
        optim.zero_grad()
        loss = model(videos)["final_loss"]
        loss.backward()
        optim.step()
        history.append(loss.item())
    return model, history


def check_detections(detections: list[dict[str, Any]], videos: list[dict[str, Any]], num_classes: int) -> int:
    """Valid segments: start <= end within [0, duration], scores in [0, 1] sorted, labels in range.
    Returns the number of detections."""
    total = 0
    for det, video in zip(detections, videos):
        segs, scores, labels = det["segments"], det["scores"], det["labels"]
        assert segs.shape == (scores.shape[0], 2) and labels.shape == scores.shape
        assert (segs[:, 0] <= segs[:, 1]).all()
        assert (segs >= 0).all() and (segs <= video["duration"]).all()
        assert ((scores >= 0) & (scores <= 1)).all()
        assert (scores[:-1] >= scores[1:]).all()
        assert ((labels >= 0) & (labels < num_classes)).all()
        total += scores.shape[0]
    return total


def assert_every_parameter_learns(model: torch.nn.Module) -> None:
    """After a backward pass: every parameter has a finite gradient that is not all zero."""
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def assert_finite_detections(model: torch.nn.Module, videos: list[dict[str, Any]]) -> None:
    """In eval mode, the model's detections of ``videos`` have finite scores and segments."""
    model.eval()
    for det in model(videos):
        assert torch.isfinite(det["scores"]).all() and torch.isfinite(det["segments"]).all()
