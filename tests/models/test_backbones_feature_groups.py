"""Several feature groups (ActionFormer's Ego4D configs), and build_detector on partial configs."""

from __future__ import annotations

import pytest
import torch

from tal_lab.config import ConfigError
from tal_lab.models import build_detector

from tiny import tiny_raw

# Two feature groups of 6 and 2 channels, projected to 8 and 8: a 16-wide pyramid.
GROUPS = tiny_raw(dataset={"input_dim": [6, 2], "feat_folder": ["a", "b"]}, model={"embd_dim": [8, 8]})


@pytest.mark.parametrize("backbone", ["convTransformer", "conv", "sgp", "maxpool"])
def test_each_group_is_projected_on_its_own_before_the_embedding(backbone: str) -> None:
    torch.manual_seed(0)
    model = build_detector(tiny_raw(GROUPS, model={"backbone_type": backbone})).eval()
    keys = list(model.backbone.state_dict())
    assert keys[:4] == ["proj.0.conv.weight", "proj.0.conv.bias", "proj.1.conv.weight", "proj.1.conv.bias"]
    assert keys[4].startswith("embd.0.") and model.backbone.out_channels[0] == 16 and model.backbone.n_in == 8
    assert tuple(model.backbone.embd[0].conv.weight.shape[:2]) == (16, 16)
    feats = torch.randn(1, 8, 64)
    mask = torch.ones(1, 1, 64, dtype=torch.bool)
    # the projections as ActionFormer computes them: each 1x1 conv on its own channels, stacked
    by_hand = torch.cat([model.backbone.proj[0](feats[:, :6], mask)[0], model.backbone.proj[1](feats[:, 6:], mask)[0]],
                        dim=1)
    seen: list[torch.Tensor] = []
    hook = model.backbone.embd[0].register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0]))
    model.backbone(feats, mask)
    hook.remove()
    torch.testing.assert_close(seen[0], by_hand, rtol=0, atol=0)
    # the second group alone changes the output: its projection is read
    changed = feats.clone()
    changed[:, 6:] += 1.0
    assert not torch.equal(model.backbone(feats, mask)[0][0], model.backbone(changed, mask)[0][0])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": {"embd_dim": 16}}, r"'model\.embd_dim': dataset\.input_dim lists 2 feature groups"),
        ({"model": {"embd_dim": [8, 4, 4]}}, r"'model\.embd_dim': lists 3 projection widths"),
        ({"model": {"fpn_dim": 8}}, r"'model\.fpn_dim'.*must equal embd_dim \(\[8, 8\]\)"),
    ],
)
def test_groups_and_widths_must_agree(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_detector(tiny_raw(GROUPS, **changes))


def test_build_detector_completes_a_partial_config_or_names_the_missing_key() -> None:
    partial = {"dataset": {"input_dim": 8, "num_classes": 3, "max_seq_len": 64},
               "model": {"backbone_type": "sgp", "embd_dim": 16, "fpn_dim": 16, "head_dim": 16,
                         "backbone_arch": [2, 1, 2], "regression_range": [[0, 4], [4, 8], [8, 10000]]}}
    model = build_detector(partial)  # ActionFormer's dialect: tal_lab's SGP defaults fill the rest
    assert model.backbone.num_levels == 3 and type(model.head).__name__ == "ActionFormerHead"
    with pytest.raises(ConfigError, match=r"config key 'model\.sgp_mlp_dim': is required by the SGP backbone"):
        build_detector({**partial, "recipe": "tridet"})  # TriDet's defaults define no sgp_mlp_dim
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.num_bin'"):
        build_detector({**partial, "model": {**partial["model"], "num_bin": 4}})
