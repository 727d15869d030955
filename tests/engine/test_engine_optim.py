"""Optimiser groups, the per-iteration schedule and the EMA, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tal_lab.config import load_config
from tal_lab.engine.ema import ModelEMA
from tal_lab.engine.optim import (
    REFERENCE_ETA_MIN, WarmupSchedule, build_optimizer, build_scheduler, split_decay_parameters, total_epochs)
from tal_lab.models import build_detector
from tal_lab.models.layers.drop_path import AffineDropPath
from tal_lab.models.layers.norm import LayerNorm, Scale

TINY_MODEL = {"embd_dim": 16, "fpn_dim": 16, "head_dim": 16, "n_head": 4, "n_mha_win_size": 3,
              "sgp_mlp_dim": 32}


def _detector(backbone: str, neck: str) -> nn.Module:
    # recipe named: the model keys mix ActionFormer's (n_mha_win_size) with TriDet's (sgp_mlp_dim)
    cfg = load_config({"recipe": "actionformer", "dataset": {"input_dim": 8, "num_classes": 3, "max_seq_len": 64},
                       "model": dict(TINY_MODEL, backbone_type=backbone, fpn_type=neck)})
    return build_detector(cfg)


@pytest.mark.parametrize("backbone,neck", [("convTransformer", "identity"), ("sgp", "fpn"), ("conv", "fpn")])
def test_weight_decay_only_on_conv_and_linear_weights(backbone: str, neck: str) -> None:
    model = _detector(backbone, neck)
    decay, no_decay = split_decay_parameters(model)
    names = dict(model.named_parameters())
    assert sorted(decay + no_decay) == sorted(names) and not set(decay) & set(no_decay)
    owners = dict(model.named_modules())
    for name in decay:
        owner = owners[name.rsplit(".", 1)[0]]
        assert name.endswith("weight") and isinstance(owner, (nn.Conv1d, nn.Linear)), name
    for name in no_decay:
        owner = owners[name.rsplit(".", 1)[0]] if "." in name else model
        # Biases, norm weights, Scale factors and drop-path scales: ActionFormer's no-decay set.
        assert (name.endswith("bias") or isinstance(owner, (LayerNorm, nn.GroupNorm, Scale, AffineDropPath))), name
    optimizer = build_optimizer(model, {"type": "AdamW", "learning_rate": 1e-3, "weight_decay": 0.05, "momentum": 0.9})
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.05, 0.0]
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(names)


def test_unknown_optimiser_is_an_error_naming_the_key() -> None:
    with pytest.raises(ValueError, match="opt.type"):
        build_optimizer(nn.Linear(2, 2), {"type": "Adam", "learning_rate": 1e-3, "weight_decay": 0.0})


def _lrs(schedule: WarmupSchedule, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return out


def test_warmup_then_cosine_per_iteration() -> None:
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    opt_cfg = {"epochs": 2, "warmup": True, "warmup_epochs": 1, "schedule_type": "cosine", "eta_min": 0.0}
    schedule = build_scheduler(optimizer, opt_cfg, iters_per_epoch=3)  # W = 3 steps, M = 9 steps
    lrs = _lrs(schedule, optimizer, 9)
    base, eta = 0.1, REFERENCE_ETA_MIN
    expected = [0.0, 0.05, 0.1] + [eta + (base - eta) * (1 + math.cos(math.pi * k / 6)) / 2 for k in range(6)]
    assert lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_multistep_counts_milestones_after_warmup() -> None:
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    opt_cfg = {"epochs": 3, "warmup": True, "warmup_epochs": 1, "schedule_type": "multistep",
               "schedule_steps": [1, 2], "schedule_gamma": 0.5}
    lrs = _lrs(build_scheduler(optimizer, opt_cfg, iters_per_epoch=2), optimizer, 8)
    assert lrs == pytest.approx([0.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25])


def test_schedule_state_resumes_exactly() -> None:
    def fresh() -> tuple[torch.optim.Optimizer, WarmupSchedule]:
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.3)
        cfg = {"epochs": 4, "warmup": True, "warmup_epochs": 1, "schedule_type": "cosine", "eta_min": 0.0}
        return opt, build_scheduler(opt, cfg, iters_per_epoch=5)

    opt_a, sched_a = fresh()
    full = _lrs(sched_a, opt_a, 25)
    opt_b, sched_b = fresh()
    first = _lrs(sched_b, opt_b, 11)
    opt_c, sched_c = fresh()
    opt_c.load_state_dict(opt_b.state_dict())
    sched_c.load_state_dict(sched_b.state_dict())
    assert first + _lrs(sched_c, opt_c, 14) == full


def test_total_epochs_adds_warmup_as_actionformer() -> None:
    assert total_epochs({"epochs": 30, "warmup": True, "warmup_epochs": 5}) == 35
    assert total_epochs({"epochs": 30, "warmup": False, "warmup_epochs": 5}) == 30
    assert total_epochs({"epochs": 30, "warmup": True, "warmup_epochs": 5, "early_stop_epochs": 12}) == 12


def test_ema_update_is_the_decayed_average_and_copies_integer_buffers() -> None:
    model = nn.BatchNorm1d(2)  # float parameters and an integer buffer (num_batches_tracked)
    ema = ModelEMA(model, decay=0.9)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.fill_(3.0)
        model.num_batches_tracked.fill_(7)
    ema.update(model)
    assert torch.allclose(ema.module.weight, 0.9 * start["weight"] + 0.1 * 3.0)
    assert torch.equal(ema.module.bias, start["bias"])
    assert int(ema.module.num_batches_tracked) == 7
    assert not any(p.requires_grad for p in ema.module.parameters())
    other = ModelEMA(nn.BatchNorm1d(2), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.module.weight, ema.module.weight)
    with pytest.raises(ValueError, match="ema_decay"):
        ModelEMA(model, decay=1.0)
