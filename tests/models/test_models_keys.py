"""State-dict layout of the full THUMOS14 models equals the references' (keys, shapes, counts).

Models are built on the meta device: no memory, no init cost.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from tal_lab.config import load_config
from tal_lab.models import SGPBackbone, build_detector

from golden import AF_MODELS


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _layout(state: dict[str, torch.Tensor]) -> list[tuple[str, list[int]]]:
    return [(key, list(value.shape)) for key, value in state.items()]


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _full_config(shared_dir: Path, name: str) -> dict:
    configs = json.loads((shared_dir / "reference" / "keys" / "full_configs.json").read_text())["configs"]
    return load_config(configs[name])


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", AF_MODELS)
def test_full_thumos_model_keys_shapes_and_counts(shared_dir: Path, name: str) -> None:
    keys_dir = shared_dir / "reference" / "keys"
    with torch.device("meta"):
        model = build_detector(_full_config(shared_dir, name))
    expected = [(row["key"], json.loads(row["shape"])) for row in _read_tsv(keys_dir / f"{name}.tsv")]
    assert _layout(model.state_dict()) == expected
    counts = {row["config"]: row for row in _read_tsv(keys_dir / "param_counts.tsv")}[name]
    assert _count(model) == int(counts["total_params"])
    assert _count(model.backbone) == int(counts["backbone"])
    assert _count(model.neck) == int(counts["neck"])
    assert _count(model.cls_head) == int(counts["cls_head"])
    assert _count(model.reg_head) == int(counts["reg_head"])
    assert len(model.state_dict()) == int(counts["state_dict_keys"])
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.needs_shared
def test_droppath_scales_exist_only_with_droppath(shared_dir: Path) -> None:
    cfg = _full_config(shared_dir, "af_convtransformer_identity")
    with torch.device("meta"):
        model = build_detector(load_config(cfg, {"train_cfg": {"droppath": 0.0}}))
    assert _count(model) == 29_244_444  # README: model (a) with droppath 0
    assert not any("drop_path" in key for key in model.state_dict())


@pytest.mark.needs_shared
def test_sgp_backbone_keys_equal_tridet(shared_dir: Path) -> None:
    keys_dir = shared_dir / "reference" / "keys"
    expected = [(row["key"].removeprefix("backbone."), json.loads(row["shape"]))
                for row in _read_tsv(keys_dir / "tridet_sgp_backbone.tsv")]
    kwargs = json.loads((keys_dir / "tridet_full_config.json").read_text())["backbone_kwargs"]
    with torch.device("meta"):
        direct = SGPBackbone(**kwargs)
        # the paper's configuration E from the ActionFormer thumos config: TriDet's backbone
        via_config = build_detector(load_config(_full_config(shared_dir, "af_convtransformer_identity"),
                                                {"model": {"backbone_type": "sgp"}})).backbone
    assert _layout(direct.state_dict()) == expected
    assert _layout(via_config.state_dict()) == expected
    assert _count(direct) == 9_539_328
