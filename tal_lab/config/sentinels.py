"""ActionFormer's sentinel numbers, turned into explicit values at the edge and back.

ActionFormer spells "off" and "automatic" as numbers. Inside tal_lab each is an explicit value,
so no reader has to know the reference's convention:

=============================  ===========================  =====================  ============
key                            the reference reads          inside tal_lab         written back
=============================  ===========================  =====================  ============
``model.n_mha_win_size``       -1 (also in a per-level      ``'global'``           -1
                               list): global attention
``train_cfg.clip_grad_l2norm`` <= 0 (default -1): no        ``None``               -1
                               gradient clipping
``train_cfg.loss_weight``      <= 0: the adaptive weight    ``'adaptive'``         -1
                               cls_loss / reg_loss
``test_cfg.voting_thresh``     <= 0: no segment voting      ``None``               0.0
=============================  ===========================  =====================  ============

:func:`from_reference` accepts both spellings (an official YAML and tal_lab's own);
:func:`to_reference` writes what the reference code reads (``loss_weight: -1`` follows the
comment of ActionFormer's defaults, "use -1 to enable auto balancing"), so a dumped config
runs in the official tools unchanged.
"""

from __future__ import annotations

from typing import Any, Final, Literal

__all__ = ["GLOBAL_ATTENTION", "ADAPTIVE_LOSS_WEIGHT", "LossWeight", "AttentionWindow", "from_reference",
           "to_reference"]

GLOBAL_ATTENTION: Final = "global"
ADAPTIVE_LOSS_WEIGHT: Final = "adaptive"
# train_cfg.loss_weight inside tal_lab: a positive weight or ActionFormer's adaptive one.
LossWeight = float | Literal["adaptive"]
# One level's model.n_mha_win_size inside tal_lab: a local window or global attention.
AttentionWindow = int | Literal["global"]

_REFERENCE_GLOBAL_WINDOW = -1
_REFERENCE_NO_CLIPPING = -1
_REFERENCE_ADAPTIVE_WEIGHT = -1
_REFERENCE_NO_VOTING = 0.0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _window_in(value: Any) -> Any:
    return GLOBAL_ATTENTION if _is_number(value) and value == _REFERENCE_GLOBAL_WINDOW else value


def _window_out(value: Any) -> Any:
    return _REFERENCE_GLOBAL_WINDOW if value == GLOBAL_ATTENTION else value


def from_reference(cfg: dict[str, Any]) -> dict[str, Any]:
    """Replace the reference's sentinels in a merged plain config by explicit values (in place)."""
    model, train, test = cfg["model"], cfg["train_cfg"], cfg["test_cfg"]
    win = model["n_mha_win_size"]
    model["n_mha_win_size"] = [_window_in(w) for w in win] if isinstance(win, list) else _window_in(win)
    if _is_number(train["clip_grad_l2norm"]) and train["clip_grad_l2norm"] <= 0:
        train["clip_grad_l2norm"] = None
    if _is_number(train["loss_weight"]) and train["loss_weight"] <= 0:
        train["loss_weight"] = ADAPTIVE_LOSS_WEIGHT
    if _is_number(test["voting_thresh"]) and test["voting_thresh"] <= 0:
        test["voting_thresh"] = None
    return cfg


def to_reference(cfg: dict[str, Any]) -> dict[str, Any]:
    """Write the explicit values of a plain config back in the reference's spelling (in place)."""
    model, train, test = cfg["model"], cfg["train_cfg"], cfg["test_cfg"]
    win = model["n_mha_win_size"]
    model["n_mha_win_size"] = [_window_out(w) for w in win] if isinstance(win, list) else _window_out(win)
    if train["clip_grad_l2norm"] is None:
        train["clip_grad_l2norm"] = _REFERENCE_NO_CLIPPING
    if train["loss_weight"] == ADAPTIVE_LOSS_WEIGHT:
        train["loss_weight"] = _REFERENCE_ADAPTIVE_WEIGHT
    if test["voting_thresh"] is None:
        test["voting_thresh"] = _REFERENCE_NO_VOTING
    return cfg
