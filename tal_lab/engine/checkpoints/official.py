"""Loading official ActionFormer and TriDet checkpoints into tal_lab models.

tal_lab's state dicts use the references' key names and shapes directly, so the only mapping is
dropping the ``module.`` prefix that ``nn.DataParallel`` adds in the reference training script.
Files are read with ``torch.load(weights_only=True)``: opening a checkpoint never runs code
from it. Loading is strict: any missing, unexpected or mis-shaped key is a ValueError that names
them.

ActionFormer checkpoint files hold ``state_dict`` (the trained weights), ``state_dict_ema``
(their exponential moving average, what the reference evaluates), ``epoch``, ``optimizer`` and
``scheduler``; a bare state dict is accepted too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

__all__ = [
    "DATA_PARALLEL_PREFIX",
    "read_checkpoint",
    "select_state_dict",
    "strip_prefix",
    "check_state_dict",
    "load_checkpoint",
    "load_tridet_backbone",
]

DATA_PARALLEL_PREFIX = "module."
_MAX_LISTED = 12  # keys listed in an error message
CheckpointSource = str | Path | Mapping[str, Any]  # a file, a loaded checkpoint or a state dict


def read_checkpoint(path_or_dict: CheckpointSource) -> Mapping[str, Any]:
    """A checkpoint dict from a file (safe, ``weights_only=True``, onto the CPU) or as given."""
    if isinstance(path_or_dict, Mapping):
        return path_or_dict
    path = Path(path_or_dict)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, unsafe globals, truncated files
        raise ValueError(f"{path}: cannot be read as a weights-only torch checkpoint ({err})") from err


def _is_state_dict(obj: Mapping[str, Any]) -> bool:
    return len(obj) > 0 and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())


def select_state_dict(checkpoint: Mapping[str, Any], ema: bool = True, source: str = "checkpoint") -> dict[str, Tensor]:
    """Pick ``state_dict_ema`` (``ema=True``) or ``state_dict`` from a checkpoint dict.

    A bare state dict (only tensors) is returned as it is.

    Raises:
        ValueError: the requested entry is missing (naming the entries that exist).
    """
    if _is_state_dict(checkpoint):
        return dict(checkpoint)
    key = "state_dict_ema" if ema else "state_dict"
    if key not in checkpoint:
        hint = " (pass ema=False to load 'state_dict')" if ema and "state_dict" in checkpoint else ""
        raise ValueError(f"{source} has no '{key}'{hint}; its entries are {sorted(map(str, checkpoint))}")
    state = checkpoint[key]
    if not isinstance(state, Mapping) or not _is_state_dict(state):
        raise ValueError(f"{source}: '{key}' is not a state dict of tensors")
    return dict(state)


def strip_prefix(state: Mapping[str, Tensor], prefix: str = DATA_PARALLEL_PREFIX) -> dict[str, Tensor]:
    """Drop a leading ``prefix`` (``module.`` from DataParallel / DDP) from every key that has it."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _MAX_LISTED else "")


def check_state_dict(module: nn.Module, state: Mapping[str, Tensor], what: str = "checkpoint",
                     allow_missing: tuple[str, ...] = ()) -> None:
    """Raise ValueError naming missing, unexpected and mis-shaped keys (strict comparison).

    Args:
        allow_missing: key suffixes that may be absent from ``state`` (they keep their values).
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not (allow_missing and k.endswith(allow_missing))]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listed(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches: {_listed(shapes)}")
    if problems:
        raise ValueError(f"{what} does not match {type(module).__name__} (was the model built from the "
                         f"checkpoint's config?): " + "; ".join(problems))


def load_checkpoint(detector: nn.Module, path_or_dict: CheckpointSource, ema: bool = True) -> dict[str, Any]:
    """Load an official ActionFormer checkpoint (or a tal_lab one in the same format), strictly.

    Args:
        detector: a model built from the checkpoint's config (:func:`tal_lab.models.build_detector`).
        path_or_dict: a checkpoint file or an already loaded dict (or bare state dict).
        ema: load ``state_dict_ema`` (what the reference evaluates) rather than ``state_dict``.

    Returns:
        a summary: ``{'entry': 'state_dict_ema' | 'state_dict' | 'bare', 'epoch': int | None,
        'num_tensors': int}``.

    Raises:
        ValueError: missing / unexpected / mis-shaped keys, or an unreadable file.
        FileNotFoundError: no such file.
    """
    source = str(path_or_dict) if not isinstance(path_or_dict, Mapping) else "checkpoint dict"
    checkpoint = read_checkpoint(path_or_dict)
    state = strip_prefix(select_state_dict(checkpoint, ema, source))
    check_state_dict(detector, state, source)
    detector.load_state_dict(state, strict=True)
    entry = "bare" if _is_state_dict(checkpoint) else ("state_dict_ema" if ema else "state_dict")
    epoch = checkpoint.get("epoch") if entry != "bare" else None
    return {"entry": entry, "epoch": epoch, "num_tensors": len(state)}


def load_tridet_backbone(target: nn.Module, path_or_dict: CheckpointSource, ema: bool = True) -> dict[str, Any]:
    """Load the ``backbone.*`` weights of a TriDet checkpoint into an SGP backbone.

    Args:
        target: an :class:`~tal_lab.models.backbones.SGPBackbone` or a detector holding one as
            ``.backbone`` (built with the TriDet model's sizes: embd_dim, sgp_mlp_dim,
            n_sgp_win_size, k, backbone_arch).
        path_or_dict: a TriDet checkpoint file or dict (``state_dict_ema`` / ``state_dict``,
            keys possibly prefixed ``module.``), or a bare TriDet model state dict.
        ema: use ``state_dict_ema``.

    The rest of the TriDet model (its neck and Trident heads) is ignored. With
    ``sgp_mixture='softmax'`` the mixture weights are not in TriDet's checkpoint and keep their
    initial values; every other key must match.

    Returns:
        ``{'num_tensors': int, 'ignored': number of non-backbone entries}``.
    """
    backbone = getattr(target, "backbone", target)
    source = str(path_or_dict) if not isinstance(path_or_dict, Mapping) else "TriDet checkpoint dict"
    state = strip_prefix(select_state_dict(read_checkpoint(path_or_dict), ema, source))
    prefix = "backbone."
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        raise ValueError(f"{source} holds no 'backbone.*' weights (is it a TriDet model checkpoint?)")
    check_state_dict(backbone, sub, f"{source} (backbone.*)", allow_missing=("mixture_logits",))
    backbone.load_state_dict(sub, strict=False)
    return {"num_tensors": len(sub), "ignored": len(state) - len(sub)}
