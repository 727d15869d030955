"""Loading ActionFormer / TriDet checkpoints: formats, strictness, safety."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tal_lab.engine.checkpoints.official import load_checkpoint, load_tridet_backbone
from tal_lab.models import build_detector

from tiny import tiny_config


def tiny(seed: int, **model: Any) -> torch.nn.Module:
    cfg = tiny_config(model=model)
    torch.manual_seed(seed)
    return build_detector(cfg)


class Payload:
    """An arbitrary pickled object: weights_only loading refuses to build it."""


def official_checkpoint(model: torch.nn.Module, ema_model: torch.nn.Module) -> dict[str, Any]:
    """The reference training script's layout: DataParallel 'module.' keys, EMA beside."""
    return {
        "epoch": 35,
        "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
        "state_dict_ema": {f"module.{k}": v for k, v in ema_model.state_dict().items()},
        "scheduler": {"last_epoch": 3500},
        "optimizer": {"state": {}, "param_groups": []},
    }


def _equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


def test_official_checkpoint_file_loads_ema_or_raw(tmp_path: Path) -> None:
    raw, ema = tiny(1), tiny(2)
    path = tmp_path / "epoch_035.pth.tar"
    torch.save(official_checkpoint(raw, ema), path)
    target = tiny(3)
    info = load_checkpoint(target, path)  # ema=True: what the reference evaluates
    assert info == {"entry": "state_dict_ema", "epoch": 35, "num_tensors": len(target.state_dict())}
    assert _equal(target, ema)
    load_checkpoint(target, path, ema=False)
    assert _equal(target, raw)
    # a bare state dict (e.g. the golden fixtures) loads too
    assert load_checkpoint(tiny(4), raw.state_dict())["entry"] == "bare"


def test_mismatches_are_named() -> None:
    source = tiny(1, fpn_type="fpn")
    with pytest.raises(ValueError, match=r"unexpected keys: neck\.lateral_convs\.0\.conv\.weight"):
        load_checkpoint(tiny(2), source.state_dict())
    with pytest.raises(ValueError, match=r"missing keys: neck\.lateral_convs\.0\.conv\.weight"):
        load_checkpoint(source, tiny(2).state_dict())
    with pytest.raises(ValueError, match=r"shape mismatches: backbone\.embd\.0\.conv\.weight \(32, 8, 3\)"):
        load_checkpoint(tiny(2), tiny(3, embd_dim=32, fpn_dim=32).state_dict())
    with pytest.raises(ValueError, match=r"no 'state_dict_ema' \(pass ema=False"):
        load_checkpoint(tiny(2), {"state_dict": source.state_dict(), "epoch": 1})


def test_files_are_loaded_without_running_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict_ema": tiny(1).state_dict(), "extra": Payload()}, path)
    with pytest.raises(ValueError, match="weights-only"):
        load_checkpoint(tiny(2), path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tiny(2), tmp_path / "missing.pth")


def test_tridet_backbone_weights_load_into_sgp() -> None:
    tridet = tiny(1, backbone_type="sgp", init_conv_vars=0.1)
    checkpoint = {"state_dict_ema": {f"module.{k}": v for k, v in tridet.state_dict().items()}}
    target = tiny(2, backbone_type="sgp")
    info = load_tridet_backbone(target, checkpoint)
    assert info["num_tensors"] == len(tridet.backbone.state_dict())
    assert _equal(target.backbone, tridet.backbone)
    # the paper's softmax mixture: TriDet has no mixture weights; they keep their init
    softmax = tiny(3, backbone_type="sgp", sgp_mixture="softmax")
    load_tridet_backbone(softmax.backbone, checkpoint)
    assert all(torch.equal(v, tridet.backbone.state_dict()[k])
               for k, v in softmax.backbone.state_dict().items() if "mixture" not in k)
    with pytest.raises(ValueError, match="no 'backbone.\\*' weights"):
        load_tridet_backbone(target, {"state_dict_ema": {"cls_head.x": torch.zeros(1)}})
    with pytest.raises(ValueError, match="shape mismatches"):
        load_tridet_backbone(tiny(4, backbone_type="sgp", sgp_mlp_dim=32), checkpoint)
