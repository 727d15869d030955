"""Complexity: parameter counts against the reference, FLOPs against a hand count, the cache."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from tal_lab.analysis import complexity as cx
from tal_lab.config import load_config, paper_configuration

from tiny import PYRAMID, tiny_config


class _Backbone(nn.Module):
    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        self.proj = nn.Conv1d(c_in, c, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        y = self.proj(x)
        return [y, y[:, :, ::2]], [mask, mask[:, :, ::2]]


class _Neck(nn.Module):
    def forward(self, feats: list[torch.Tensor], masks: list[torch.Tensor]) -> tuple[list, list]:
        return feats, masks


class _Head(nn.Module):
    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.cls = nn.Conv1d(c, k, 3, padding=1)

    def forward(self, feats: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.cls(f) for f in feats]


class _Detector(nn.Module):
    def __init__(self, c_in: int = 6, c: int = 4, k: int = 3) -> None:
        super().__init__()
        self.backbone, self.neck, self.cls_head = _Backbone(c_in, c), _Neck(), _Head(c, k)
        self.head = self.cls_head


def test_flops_of_a_hand_built_detector() -> None:
    c_in, c, k, t = 6, 4, 3, 40
    result = cx.detector_complexity(_Detector(c_in, c, k), c_in, seq_len=t)
    # a 1x1 conv: one multiply-accumulate (2 FLOPs) per weight and step
    assert result.gflops_backbone * 1e9 == pytest.approx(2 * c_in * c * t, rel=1e-12)
    assert result.gflops_neck == 0
    assert result.gflops_head * 1e9 == pytest.approx(2 * c * k * 3 * (t + t // 2), rel=1e-12)  # kernel 3 on both levels
    assert result.gmacs == pytest.approx(result.gflops / 2)
    assert result.params == c_in * c + c + c * k * 3 + k
    assert result.params_head == c * k * 3 + k and result.params_neck == 0
    with pytest.raises(ValueError, match="'.backbone'"):
        cx.detector_complexity(nn.Linear(2, 2), 2)


def tiny(name: str) -> dict:
    return paper_configuration(name, tiny_config(PYRAMID))


def test_meta_and_cpu_counts_agree_and_are_cached() -> None:
    cx.clear_cache()
    for name in ("original", "D"):
        on_meta = cx.model_complexity(tiny(name), seq_len=2304)
        on_cpu = cx.model_complexity(tiny(name), seq_len=2304, device="cpu")
        assert on_meta.device == "meta" and on_cpu.device == "cpu"
        assert on_meta.params == on_cpu.params and on_meta.gflops == pytest.approx(on_cpu.gflops, rel=1e-12)
        assert on_meta.params == on_meta.params_backbone + on_meta.params_neck + on_meta.params_head
    again = cx.model_complexity(tiny("original"), seq_len=2304)
    assert again is cx.model_complexity(tiny("original"), seq_len=2304)
    # the schedule does not change the model: same cache entry
    longer = load_config({**tiny("original"), "opt": {"epochs": 99}})
    assert cx.model_complexity(longer, seq_len=2304) is again
    # twice the steps, twice the FLOPs (every op is linear in T), same parameters
    double = cx.model_complexity(tiny("original"), seq_len=4608)
    assert double.gflops == pytest.approx(2 * again.gflops, rel=1e-9) and double.params == again.params
    frame = cx.complexity_frame({"original": tiny("original"), "D": tiny("D")}, seq_len=2304)
    assert list(frame["name"]) == ["original", "D"] and (frame["gflops"] > 0).all()
    with pytest.raises(ValueError, match="seq_len 100"):
        cx.model_complexity(tiny("original"), seq_len=100)
    with pytest.raises(ValueError, match="device"):
        cx.model_complexity(tiny("original"), device="gpu")


@pytest.mark.needs_shared
def test_thumos14_parameter_counts_equal_the_reference(shared_dir: Path) -> None:
    with open(shared_dir / "reference/keys/param_counts.tsv") as f:
        reference = {row["config"]: row for row in csv.DictReader(f, delimiter="\t")}
    base = load_config({"dataset": {"input_dim": 2048, "num_classes": 20, "max_seq_len": 2304},
                        "model": {"n_mha_win_size": 19}})
    for key, name in (("original", "af_convtransformer_identity"), ("A", "af_convtransformer_fpn"),
                      ("B", "af_conv_identity"), ("C", "af_conv_fpn")):
        result = cx.model_complexity(paper_configuration(key, base))
        ref = reference[name]
        assert result.params == int(ref["total_params"])
        assert (result.params_backbone, result.params_neck, result.params_head) == (
            int(ref["backbone"]), int(ref["neck"]), int(ref["heads"]))
        assert result.device == "meta" and result.gflops > 0
    sgp = cx.model_complexity(paper_configuration("E", base))
    assert sgp.params_backbone == int(reference["tridet_sgp_backbone"]["total_params"])
