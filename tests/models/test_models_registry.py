"""Registry walk: every backbone x neck x head at tiny size trains one step without NaN.

Each registered combination (plus the option variants of the blocks) runs a training forward
and backward; every parameter must get a finite gradient, non-zero except where documented:
TriDet's branch convs start at exactly zero when ``init_conv_vars = 0`` (their gradients are 0
at init: each factor multiplies another zero-initialised factor), so the walk uses 0.1; and a
random 16-channel regression head can give only negative (ReLU-dead) offsets at a level, so the
walk starts the offset bias at 1.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from tal_lab.config import ConfigError
from tal_lab.core.registry import Registry
from tal_lab.models import BACKBONES, HEADS, NECKS, build_detector

from tiny import assert_every_parameter_learns, assert_finite_detections, tiny_config, tiny_raw

# Drop path and dropout on, so that their modules are walked too.
WALK = tiny_raw(model={"init_conv_vars": 0.1}, train_cfg={"init_loss_norm": 10, "droppath": 0.1, "dropout": 0.1})
VARIANTS: list[dict[str, Any]] = [
    {"model": {"n_mha_win_size": -1}},  # global attention, as ActionFormer spells it
    {"model": {"n_mha_win_size": [5, 5, "global"]}},  # local windows below a global top level
    {"model": {"use_rel_pe": True, "use_abs_pe": True}},
    {"model": {"backbone_type": "sgp", "sgp_mixture": "softmax"}},
    {"model": {"backbone_type": "sgp", "downsample_type": "avg", "use_abs_pe": True}},
    {"model": {"fpn_type": "fpn", "fpn_dim": 24, "fpn_start_level": 1,
               "regression_range": [[0, 4], [4, 8], [8, 10000]]}},
]


def tiny_videos(num_classes: int = 3, input_dim: int = 8) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(0)
    return [
        {"video_id": "a", "feats": torch.randn(input_dim, 64, generator=gen), "fps": 30.0, "duration": 10.0,
         "feat_stride": 4, "feat_num_frames": 16,
         "segments": torch.tensor([[2.0, 9.5], [20.0, 50.0], [11.0, 13.0], [30.0, 62.0], [52.0, 61.0]]),
         "labels": torch.tensor([0, 2, 1, 1, 0])},
        {"video_id": "b", "feats": torch.randn(input_dim, 41, generator=gen), "fps": 25.0, "duration": 8.0,
         "feat_stride": 4, "feat_num_frames": 16,
         "segments": torch.tensor([[5.0, 7.0], [1.0, 39.0], [14.0, 30.0], [33.0, 40.0]]),
         "labels": torch.tensor([1, num_classes - 1, 0, 2])},
    ]


def _combinations() -> list[dict[str, Any]]:
    base = [{"model": {"backbone_type": b, "fpn_type": n, "head_type": h}}
            for b, n, h in itertools.product(BACKBONES.names(), NECKS.names(), HEADS.names())]
    return base + VARIANTS


def _id(sections: dict[str, Any]) -> str:
    return "-".join(f"{k}={v}" for k, v in sections["model"].items())


@pytest.mark.parametrize("sections", _combinations(), ids=_id)
def test_every_component_trains(sections: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = build_detector(tiny_config(WALK, **sections)).train()
    for module in model.modules():  # keep the drop-path scales, but drop no sample at random
        if hasattr(module, "drop_prob"):
            module.drop_prob = 0.0
    with torch.no_grad():  # a random 16-wide head can output only negatives at a level: ReLU-dead
        for name, param in model.named_parameters():
            if name.endswith("offset_head.conv.bias"):
                param.fill_(1.0)
    losses = model(tiny_videos())
    for key in ("cls_loss", "reg_loss", "final_loss"):
        assert torch.isfinite(losses[key]), key
    losses["final_loss"].backward()
    assert_every_parameter_learns(model)
    assert_finite_detections(model, tiny_videos())


def test_zero_initialised_sgp_branches_get_zero_gradients() -> None:
    """The documented exception: init_conv_vars 0 (TriDet's thumos value) zeroes the branches."""
    torch.manual_seed(0)
    model = build_detector(tiny_config(WALK, model={"backbone_type": "sgp", "init_conv_vars": 0})).train()
    model(tiny_videos())["final_loss"].backward()
    zero = {name for name, p in model.named_parameters() if p.grad.abs().sum() == 0}
    branch = {name for name, _ in model.named_parameters()
              if name.split(".")[-2] in ("psi", "fc", "convw", "convkw", "global_fc")}
    assert zero == branch  # every other parameter learns


def test_registry_rejects_unknown_and_duplicate_names() -> None:
    with pytest.raises(ValueError, match="model.backbone_type"):
        BACKBONES.get("nope")
    with pytest.raises(ValueError, match=r"unknown neck 'bifpn' \(config key model\.fpn_type\)"):
        NECKS.get("bifpn")
    with pytest.raises(ConfigError, match=r"model\.fpn_type.*'bifpn' is not a registered neck"):
        build_detector(tiny_raw(WALK, model={"fpn_type": "bifpn"}))
    registry = Registry("thing", "thing_type", {})
    registry.register("a")(lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(lambda: None)
    assert "a" in registry and registry.names() == ["a"]


def test_the_builtin_names_are_the_registered_builders() -> None:
    """Every declared built-in name is registered by its module, and nothing else is registered."""
    assert BACKBONES.names() == ["convTransformer", "conv", "sgp", "maxpool"]
    assert NECKS.names() == ["identity", "fpn"]
    assert HEADS.names() == ["actionformer", "trident", "decoupled"]
    for registry in (BACKBONES, NECKS, HEADS):
        for name in registry.names():
            builder = registry.get(name)
            assert builder.__module__.startswith("tal_lab.models."), (registry.kind, name)
    with pytest.raises(ValueError, match="already registered"):
        BACKBONES.register("conv")(lambda model: None)
    with pytest.raises(ValueError, match="cannot be unregistered"):
        HEADS.unregister("trident")
