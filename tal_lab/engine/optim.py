"""Optimiser and learning-rate schedule, as ActionFormer builds them.

* :func:`build_optimizer`: AdamW (or SGD) with two parameter groups. Only the weights of
  convolutions and linear layers are decayed; biases, norm weights, per-level ``Scale``
  factors, drop-path scales, position embeddings and every other parameter are not
  (ActionFormer's ``make_optimizer`` rule, itself minGPT's).
* :func:`build_scheduler`: stepped once per *iteration*: linear warm-up from 0 then cosine
  decay (or multi-step decay), in closed form so that its state is just the step count.
* :func:`total_epochs`: ActionFormer trains ``opt.epochs + opt.warmup_epochs`` epochs when
  warm-up is on (its ``train.py``), and the cosine reaches its floor at the end of those.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any, Mapping

import torch
from torch import nn

__all__ = [
    "REFERENCE_ETA_MIN",
    "split_decay_parameters",
    "build_optimizer",
    "total_epochs",
    "WarmupSchedule",
    "build_scheduler",
    "current_lr",
]

# ActionFormer's LinearWarmupCosineAnnealingLR floor; its train script never passes opt.eta_min,
# so this constant is what official runs use. A positive opt.eta_min overrides it here.
REFERENCE_ETA_MIN = 1e-8

_DECAYED_MODULES = (nn.Linear, nn.modules.conv._ConvNd)


def _is_decayed(module: nn.Module, param_name: str, param: nn.Parameter) -> bool:
    """Whether ``module.<param_name>`` gets weight decay (conv / linear weights only)."""
    if not param_name.endswith("weight") or param.dim() < 2:
        return False
    # A masked conv may hold its own weight instead of wrapping nn.Conv1d: judge by class name.
    return isinstance(module, _DECAYED_MODULES) or type(module).__name__.lower().endswith(("conv1d", "conv"))


def split_decay_parameters(model: nn.Module) -> tuple[list[str], list[str]]:
    """Names of the parameters with and without weight decay, each list sorted.

    Every trainable parameter lands in exactly one list (shared parameters once, under their
    first name).
    """
    decay: list[str] = []
    no_decay: list[str] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{module_name}.{param_name}" if module_name else param_name
            (decay if _is_decayed(module, param_name, param) else no_decay).append(full)
    return sorted(decay), sorted(no_decay)


def build_optimizer(model: nn.Module, opt_cfg: Mapping[str, Any], lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """AdamW / SGD over two groups: decayed conv and linear weights, and everything else.

    Args:
        model: the detector (unwrapped: parameter names are the model's own).
        opt_cfg: the config's ``opt`` section (type, learning_rate, weight_decay, momentum).
        lr_scale: multiplies the learning rate; ActionFormer multiplies it by the number of
            devices.

    Raises:
        ValueError: an unknown ``opt.type``.
    """
    params = dict(model.named_parameters())
    decay, no_decay = split_decay_parameters(model)
    groups = [
        {"params": [params[n] for n in decay], "weight_decay": float(opt_cfg["weight_decay"])},
        {"params": [params[n] for n in no_decay], "weight_decay": 0.0},
    ]
    lr = float(opt_cfg["learning_rate"]) * lr_scale
    if opt_cfg["type"] == "AdamW":
        # The reference keeps AdamW's other defaults (betas 0.9/0.999, eps 1e-8).
        return torch.optim.AdamW(groups, lr=lr)
    if opt_cfg["type"] == "SGD":
        return torch.optim.SGD(groups, lr=lr, momentum=float(opt_cfg["momentum"]))
    raise ValueError(f"config key 'opt.type': unsupported optimiser {opt_cfg['type']!r} (AdamW or SGD)")


def total_epochs(opt_cfg: Mapping[str, Any]) -> int:
    """Epochs a run trains: ActionFormer's ``epochs + warmup_epochs`` when warm-up is on.

    ``opt.early_stop_epochs``, when present (an ActionFormer option), stops earlier without
    changing the schedule.
    """
    total = int(opt_cfg["epochs"]) + (int(opt_cfg["warmup_epochs"]) if opt_cfg["warmup"] else 0)
    early = opt_cfg.get("early_stop_epochs")
    return min(total, int(early)) if early else total


class WarmupSchedule(torch.optim.lr_scheduler.LRScheduler):
    """Per-iteration learning rate: linear warm-up, then cosine or multi-step decay.

    The closed forms of ActionFormer's ``LinearWarmupCosineAnnealingLR`` /
    ``LinearWarmupMultiStepLR`` (and of torch's cosine / multi-step without warm-up):

    * step ``s < W`` (warm-up): ``base * s / (W - 1)`` (0 at the first step, base at ``W - 1``);
    * cosine, ``s >= W``: ``eta_min + (base - eta_min) * (1 + cos(pi * (s - W) / (M - W))) / 2``;
    * multi-step, ``s >= W``: ``base * gamma ** (number of milestones <= s - W)``.

    ``W`` warm-up steps, ``M`` total steps. The state is the step count alone, so a resumed
    run continues exactly.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int,
        max_steps: int,
        schedule_type: str = "cosine",
        milestones: list[int] | None = None,
        gamma: float = 0.1,
        eta_min: float = REFERENCE_ETA_MIN,
        last_epoch: int = -1,
    ) -> None:
        if schedule_type not in ("cosine", "multistep"):
            raise ValueError(f"config key 'opt.schedule_type': {schedule_type!r} is not 'cosine' or 'multistep'")
        if max_steps <= warmup_steps and schedule_type == "cosine":
            raise ValueError(f"the cosine schedule needs more steps ({max_steps}) than warm-up steps ({warmup_steps})")
        self.warmup_steps = int(warmup_steps)
        self.max_steps = int(max_steps)
        self.schedule_type = schedule_type
        self.milestones = sorted(int(m) for m in (milestones or []))
        self.gamma = float(gamma)
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int, base_lr: float) -> float:
        """The learning rate of a group with base rate ``base_lr`` at iteration ``step``."""
        warm = self.warmup_steps
        if step < warm:
            # The reference divides by W - 1; with a single warm-up step it would divide by 0.
            return base_lr * step / (warm - 1) if warm > 1 else base_lr
        after = step - warm
        if self.schedule_type == "cosine":
            progress = min(after, self.max_steps - warm) / (self.max_steps - warm)
            return self.eta_min + (base_lr - self.eta_min) * (1.0 + math.cos(math.pi * progress)) / 2.0
        return base_lr * self.gamma ** bisect_right(self.milestones, after)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [self.lr_at(self.last_epoch, base) for base in self.base_lrs]


def build_scheduler(
    optimizer: torch.optim.Optimizer, opt_cfg: Mapping[str, Any], iters_per_epoch: int
) -> WarmupSchedule:
    """The per-iteration schedule of ``opt_cfg`` for ``iters_per_epoch`` iterations per epoch.

    With warm-up the cosine spans ``epochs + warmup_epochs`` epochs (ActionFormer's
    ``make_scheduler``); multi-step milestones (``schedule_steps``, in epochs) count from the
    end of warm-up.
    """
    if iters_per_epoch <= 0:
        raise ValueError("the training loader yields no batch: fewer training videos than loader.batch_size?")
    warm_epochs = int(opt_cfg["warmup_epochs"]) if opt_cfg["warmup"] else 0
    max_steps = (int(opt_cfg["epochs"]) + warm_epochs) * iters_per_epoch
    eta_min = float(opt_cfg.get("eta_min") or 0.0) or REFERENCE_ETA_MIN
    if not opt_cfg["warmup"] and opt_cfg["schedule_type"] == "cosine":
        eta_min = float(opt_cfg.get("eta_min") or 0.0)  # torch's CosineAnnealingLR default floor is 0
    return WarmupSchedule(
        optimizer,
        warmup_steps=warm_epochs * iters_per_epoch,
        max_steps=max_steps,
        schedule_type=opt_cfg["schedule_type"],
        milestones=[int(e) * iters_per_epoch for e in opt_cfg.get("schedule_steps") or []],
        gamma=float(opt_cfg.get("schedule_gamma", 0.1)),
        eta_min=eta_min,
    )


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the first parameter group (all groups share one schedule)."""
    return float(optimizer.param_groups[0]["lr"])
