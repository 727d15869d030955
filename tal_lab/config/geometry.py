"""The feature pyramid a model config implies: level strides, attention windows, input divisors."""

from __future__ import annotations

from typing import Any, Mapping

from tal_lab.config.sentinels import GLOBAL_ATTENTION, AttentionWindow

__all__ = ["level_strides", "attention_windows", "attention_div_factor", "sgp_div_factor", "max_div_factor"]


def level_strides(model_cfg: Mapping[str, Any]) -> list[int]:
    """Stride of each pyramid level in level-0 grid steps (1, 2, 4, ... for scale_factor 2)."""
    num_levels = int(model_cfg["backbone_arch"][-1]) + 1
    return [int(model_cfg["scale_factor"]) ** level for level in range(num_levels)]


def attention_windows(model_cfg: Mapping[str, Any]) -> list[AttentionWindow]:
    """``model.n_mha_win_size`` per pyramid level: a window length or 'global'."""
    num_levels = int(model_cfg["backbone_arch"][-1]) + 1
    win = model_cfg["n_mha_win_size"]
    return list(win) if isinstance(win, (list, tuple)) else [win] * num_levels


def attention_div_factor(model_cfg: Mapping[str, Any]) -> int:
    """ActionFormer's max_div_factor: what max_seq_len and over-length inputs are divisible by.

    Each level halves the sequence; a level with local attention of window w additionally needs
    its length divisible by 2 * (w // 2). A window of 1 attends globally, as in ActionFormer.
    Backbones without attention need only the top stride.
    """
    factor = 1
    local = model_cfg["backbone_type"] == "convTransformer"
    for stride, win in zip(level_strides(model_cfg), attention_windows(model_cfg)):
        windowed = local and win != GLOBAL_ATTENTION and int(win) > 1
        factor = max(factor, stride * (int(win) // 2 * 2 if windowed else 1))
    return factor


def sgp_div_factor(model_cfg: Mapping[str, Any]) -> int:
    """TriDet's max_div_factor: the largest stride x ``n_sgp_win_size`` over levels whose window
    exceeds 1 (stride alone elsewhere), whatever the backbone, as TriDet computes it."""
    strides = level_strides(model_cfg)
    win = model_cfg["n_sgp_win_size"]
    windows = list(win) if isinstance(win, (list, tuple)) else [win] * len(strides)
    return max(stride * int(w) if int(w) > 1 else stride for stride, w in zip(strides, windows))


def max_div_factor(model_cfg: Mapping[str, Any]) -> int:
    """The divisor an inference input longer than max_seq_len is padded to a multiple of:
    :func:`attention_div_factor` or :func:`sgp_div_factor`, as ``model.eval_pad_divisor`` says
    ('attention_window', ActionFormer's; 'sgp_window', TriDet's)."""
    if model_cfg["eval_pad_divisor"] == "sgp_window":
        return sgp_div_factor(model_cfg)
    return attention_div_factor(model_cfg)
