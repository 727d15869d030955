"""engine.compile: the network parts compiled in place, or an eager run that says why."""

from __future__ import annotations

import pytest
import torch

from tal_lab.config import ConfigError, apply_overrides
from tal_lab.engine import compile as compile_module
from tal_lab.engine.compile import compile_detector
from tal_lab.models import build_detector

from tiny import tiny_config


def test_without_a_cpp_compiler_training_stays_eager_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compile_module, "cpu_compiler", lambda: None)
    detector = build_detector(tiny_config())
    with pytest.warns(RuntimeWarning, match=r"engine.compile: no C\+\+ compiler found .* training runs eagerly"):
        assert compile_detector(detector, torch.device("cpu")) == []
    assert detector.backbone._compiled_call_impl is None


def test_compiling_marks_the_network_parts_and_keeps_the_state_dict_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compile_module, "cpu_compiler", lambda: "/usr/bin/g++")
    detector = build_detector(tiny_config())
    keys = list(detector.state_dict())
    names = compile_detector(detector, torch.device("cpu"))  # lazy: nothing is compiled before a forward
    assert names == ["backbone", "neck", "cls_head", "reg_head"]
    assert all(getattr(detector, name)._compiled_call_impl is not None for name in names)
    assert list(detector.state_dict()) == keys  # checkpoints keep ActionFormer's keys


def test_engine_compile_must_be_a_boolean() -> None:
    assert tiny_config()["engine"]["compile"] is False
    with pytest.raises(ConfigError, match="engine.compile.*must be true or false, got 'yes'"):
        apply_overrides(tiny_config(), {"engine": {"compile": "yes"}})
