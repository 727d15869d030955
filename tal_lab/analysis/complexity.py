"""Model complexity: parameters and FLOPs per video, per part, cached per config.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` over the forward of
backbone, neck and head (no post-processing) on **one video of ``seq_len`` steps** (THUMOS14's
2304 by default, whatever the config's max_seq_len; every step valid). FlopCounterMode counts
2 FLOPs per multiply-accumulate of matrix products, convolutions and attention, and nothing for
element-wise ops, norms or pooling. ActionFormer's and TriDet's papers report "GFLOPs" that are
multiply-accumulates (ActionFormer THUMOS14: 45 G), i.e. :attr:`Complexity.gmacs`, half of
:attr:`Complexity.gflops`; both are given so neither is mistaken for the other.

The model is built on the ``meta`` device (no memory, no arithmetic: counting a THUMOS14-size
model takes a fraction of a second); a model with an operation that has no meta kernel is
counted on the CPU instead. The first count in a process takes a few seconds more, because
FlopCounterMode loads part of torch's compiler stack. Results are cached per (model config,
seq_len).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tal_lab.config import apply_overrides, load_config
from tal_lab.models import build_detector

__all__ = ["THUMOS14_SEQ_LEN", "Complexity", "count_parameters", "detector_complexity", "model_complexity",
           "complexity_frame", "clear_cache"]

# ActionFormer's THUMOS14 max_seq_len: the length GFLOPs per video are quoted at.
THUMOS14_SEQ_LEN = 2304


@dataclass(frozen=True)
class Complexity:
    """Parameters (counts) and GFLOPs (1e9 FLOPs, 2 per multiply-accumulate) of one model."""

    params: int
    params_backbone: int
    params_neck: int
    params_head: int
    gflops: float
    gflops_backbone: float
    gflops_neck: float
    gflops_head: float
    seq_len: int
    device: str  # where the count ran: 'meta' or 'cpu'

    @property
    def gmacs(self) -> float:
        """Multiply-accumulates (1e9): the unit ActionFormer / TriDet call GFLOPs."""
        return self.gflops / 2.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gmacs": self.gmacs}


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


def _count(fn: Callable[[], Any]) -> tuple[float, Any]:
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return counter.get_total_flops() / 1e9, out


@torch.no_grad()
def detector_complexity(detector: nn.Module, input_dim: int, seq_len: int = THUMOS14_SEQ_LEN,
                        device: str | torch.device | None = None) -> Complexity:
    """Count a built detector (``.backbone``, ``.neck`` and ``.head`` called on their outputs).

    Args:
        input_dim: input feature channels (model.input_dim).
        device: where the dummy video lives; default the detector's parameter device.

    Shapes:
        the dummy video: feats (1, input_dim, seq_len), mask (1, 1, seq_len) all True.
    """
    for part in ("backbone", "neck", "head"):
        if not callable(getattr(detector, part, None)):
            raise ValueError(f"detector_complexity needs a detector with '.{part}', got {type(detector).__name__}")
    if device is None:
        device = next((p.device for p in detector.parameters()), torch.device("cpu"))
    dtype = next((p.dtype for p in detector.parameters() if p.is_floating_point()), torch.float32)
    was_training = detector.training
    detector.eval()
    try:
        feats = torch.zeros(1, input_dim, seq_len, device=device, dtype=dtype)
        mask = torch.ones(1, 1, seq_len, device=device, dtype=torch.bool)
        g_backbone, (lf, lm) = _count(lambda: detector.backbone(feats, mask))
        g_neck, (nf, nm) = _count(lambda: detector.neck(lf, lm))
        g_head, _ = _count(lambda: detector.head(nf, nm))
    finally:
        detector.train(was_training)
    total = count_parameters(detector)
    p_backbone, p_neck = count_parameters(detector.backbone), count_parameters(detector.neck)
    return Complexity(
        params=total, params_backbone=p_backbone, params_neck=p_neck, params_head=total - p_backbone - p_neck,
        gflops=g_backbone + g_neck + g_head, gflops_backbone=g_backbone, gflops_neck=g_neck, gflops_head=g_head,
        seq_len=int(seq_len), device=str(torch.device(device).type))


def _model_key(cfg: Mapping[str, Any]) -> str:
    """The parts of a config that shape the model (train / test settings do not)."""
    model = {k: v for k, v in cfg["model"].items() if k not in ("train_cfg", "test_cfg", "max_seq_len")}
    model["droppath"] = cfg["train_cfg"]["droppath"]  # drop-path scale parameters exist only when > 0
    return json.dumps(model, sort_keys=True, default=str)


_CACHE: dict[tuple[str, int, str], Complexity] = {}


def _count_config(cfg: dict[str, Any], seq_len: int, device: str) -> Complexity:
    try:
        cfg = apply_overrides(cfg, {"dataset": {"max_seq_len": int(seq_len)}})
    except ValueError as err:
        raise ValueError(f"cannot count FLOPs at seq_len {seq_len} for this config: {err}") from err
    input_dim = int(cfg["model"]["input_dim"])
    if device == "cpu":
        return detector_complexity(build_detector(cfg), input_dim, seq_len, device="cpu")
    try:
        with torch.device("meta"):
            detector = build_detector(cfg)
        return detector_complexity(detector, input_dim, seq_len, device="meta")
    except (NotImplementedError, RuntimeError):
        # an op without a meta kernel: count on real (zero) tensors instead
        return detector_complexity(build_detector(cfg), input_dim, seq_len, device="cpu")


def model_complexity(cfg: Mapping[str, Any], seq_len: int = THUMOS14_SEQ_LEN, device: str = "meta") -> Complexity:
    """Parameters and GFLOPs per video of the model a config describes (cached).

    Args:
        cfg: a full config (``tal_lab.config.load_config`` / a run's config.yaml as loaded).
        seq_len: video length in feature steps (default THUMOS14's 2304).
        device: 'meta' (default) or 'cpu' (real zero tensors); the counts do not depend on it.

    Raises:
        ValueError: the config cannot take ``seq_len`` (e.g. not divisible by the pyramid).
    """
    if device not in ("meta", "cpu"):
        raise ValueError(f"device must be 'meta' or 'cpu', got {device!r}")
    cfg = load_config(copy.deepcopy(dict(cfg)))
    key = (_model_key(cfg), int(seq_len), device)
    if key not in _CACHE:
        _CACHE[key] = _count_config(cfg, int(seq_len), device)
    return _CACHE[key]


def complexity_frame(configs: Mapping[str, Mapping[str, Any]], seq_len: int = THUMOS14_SEQ_LEN) -> pd.DataFrame:
    """One row per named config: params (and per part), gflops (and per part), gmacs."""
    rows = [{"name": name, **model_complexity(cfg, seq_len).as_dict()} for name, cfg in configs.items()]
    return pd.DataFrame(rows)


def clear_cache() -> None:
    """Forget cached counts (e.g. after registering a new component under an old name)."""
    _CACHE.clear()
