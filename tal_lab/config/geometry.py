"""The feature pyramid a model config implies: level strides, attention windows, input divisor."""

from __future__ import annotations

from typing import Any, Mapping

from tal_lab.config.sentinels import GLOBAL_ATTENTION, AttentionWindow

__all__ = ["level_strides", "attention_windows", "max_div_factor"]


def level_strides(model_cfg: Mapping[str, Any]) -> list[int]:
    """Stride of each pyramid level in level-0 grid steps (1, 2, 4, ... for scale_factor 2)."""
    num_levels = int(model_cfg["backbone_arch"][-1]) + 1
    return [int(model_cfg["scale_factor"]) ** level for level in range(num_levels)]


def attention_windows(model_cfg: Mapping[str, Any]) -> list[AttentionWindow]:
    """``model.n_mha_win_size`` per pyramid level: a window length or 'global'."""
    num_levels = int(model_cfg["backbone_arch"][-1]) + 1
    win = model_cfg["n_mha_win_size"]
    return list(win) if isinstance(win, (list, tuple)) else [win] * num_levels


def max_div_factor(model_cfg: Mapping[str, Any]) -> int:
    """The length every padded input must be divisible by (ActionFormer's max_div_factor).

    Each level halves the sequence; a level with local attention of window w additionally needs
    its length divisible by 2 * (w // 2). A window of 1 attends globally, as in ActionFormer.
    """
    factor = 1
    local = model_cfg["backbone_type"] == "convTransformer"
    for stride, win in zip(level_strides(model_cfg), attention_windows(model_cfg)):
        windowed = local and win != GLOBAL_ATTENTION and int(win) > 1
        factor = max(factor, stride * (int(win) // 2 * 2 if windowed else 1))
    return factor
