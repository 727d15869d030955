"""Exponential moving average of a model's weights (ActionFormer's ``ModelEma``).

After every optimiser step, each floating entry of the state dict (parameters and buffers) is
updated as ``ema = decay * ema + (1 - decay) * model``; integer buffers are copied. ActionFormer
evaluates these averaged weights (decay 0.999); short schedules can do better with the raw
weights (``engine.eval_weights: model``).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["ModelEMA"]


class ModelEMA:
    """A frozen copy of ``model`` whose weights follow the model's with an exponential average.

    Args:
        model: the model being trained (unwrapped, not the DDP wrapper).
        decay: weight of the old average at each update (0.999 in ActionFormer).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"config key 'engine.ema_decay': must lie in (0, 1), got {decay!r}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model)
        self.module.eval()
        for param in self.module.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        current = model.state_dict()
        averaged, values = [], []
        for key, ema_value in self.module.state_dict().items():
            value = current[key].detach()
            if ema_value.is_floating_point():
                averaged.append(ema_value)
                values.append(value.to(ema_value.dtype))
            else:
                ema_value.copy_(value)
        if averaged:
            # decay * ema + (1 - decay) * model, in the reference's order of operations; the
            # foreach kernels do per tensor what mul_ / add_ do, in one call over all of them
            torch._foreach_mul_(averaged, self.decay)
            torch._foreach_add_(averaged, values, alpha=1.0 - self.decay)

    @torch.no_grad()
    def set(self, model: nn.Module) -> None:
        """Copy ``model``'s weights into the average."""
        self.module.load_state_dict(model.state_dict())

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights (the checkpoint's ``state_dict_ema``)."""
        return self.module.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the averaged weights saved by :meth:`state_dict`."""
        self.module.load_state_dict(state)
