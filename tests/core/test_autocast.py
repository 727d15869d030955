"""The one autocast context of training and inference (engine.amp)."""

from __future__ import annotations

import contextlib
from typing import Iterator

import pytest
import torch

from tal_lab.core import autocast as amp_module
from tal_lab.core.autocast import AMP_MODES, amp_dtype, autocast, effective_amp


@pytest.fixture(autouse=True)
def _fresh_answers() -> Iterator[None]:
    """effective_amp / cpu_has_native_bf16 remember their answer per process: forget it around each test."""
    effective_amp.cache_clear()
    amp_module.cpu_has_native_bf16.cache_clear()
    yield
    effective_amp.cache_clear()
    amp_module.cpu_has_native_bf16.cache_clear()


def _cpu_bf16(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(amp_module, "cpu_has_native_bf16", lambda: native)


def test_cuda_computes_every_mode_in_its_precision() -> None:
    cuda = torch.device("cuda", 0)
    assert [amp_dtype(cuda, amp) for amp in AMP_MODES] == [None, torch.bfloat16, torch.float16]
    with pytest.raises(ValueError, match=r"engine.amp must be one of \('none', 'bf16', 'fp16'\), got 'fp8'"):
        amp_dtype(torch.device("cpu"), "fp8")


def test_a_cpu_with_native_bf16_autocasts_to_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu_bf16(monkeypatch, True)
    cpu = torch.device("cpu")
    assert amp_dtype(cpu, "bf16") == torch.bfloat16 and amp_dtype(cpu, "none") is None
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast(cpu, "bf16"):
        assert (a @ b).dtype == torch.bfloat16


@pytest.mark.parametrize(("native", "amp", "reason"), [
    (False, "bf16", "this CPU has no native bf16 arithmetic"), (True, "fp16", "fp16 autocast is not supported here")])
def test_a_mode_the_cpu_cannot_do_computes_in_float32_and_says_so(monkeypatch: pytest.MonkeyPatch, native: bool,
                                                                   amp: str, reason: str) -> None:
    _cpu_bf16(monkeypatch, native)
    with pytest.warns(RuntimeWarning, match=f"engine.amp '{amp}' on cpu: {reason}.*computing in float32"):
        assert effective_amp("cpu", amp) == "none"
    assert amp_dtype(torch.device("cpu"), amp) is None
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast(torch.device("cpu"), amp):
        assert (a @ b).dtype == torch.float32


def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """oneDNN's own probe also says yes on plain AVX-512 (emulated bf16): the flags decide."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    for flags, expected in (("fpu avx2 avx512f", False), ("fpu avx512f avx512_bf16", True), ("fpu amx_bf16", True)):
        info = tmp_path / f"cpuinfo_{expected}_{len(flags)}"
        info.write_text(f"processor : 0\nflags : {flags}\n")
        monkeypatch.setattr(amp_module, "_CPUINFO", info)
        amp_module.cpu_has_native_bf16.cache_clear()
        assert amp_module.cpu_has_native_bf16() is expected, flags
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False, raising=False)
    amp_module.cpu_has_native_bf16.cache_clear()
    assert amp_module.cpu_has_native_bf16() is False  # no oneDNN bf16 at all


@pytest.mark.parametrize("amp", AMP_MODES)
def test_full_precision_switches_a_callers_autocast_off(amp: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu_bf16(monkeypatch, False)
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):  # a caller's own autocast region
        with pytest.warns(RuntimeWarning) if amp != "none" else contextlib.nullcontext():
            context = autocast(torch.device("cpu"), amp)
        with context:
            assert (a @ b).dtype == torch.float32
        assert (a @ b).dtype == torch.bfloat16  # off inside only

