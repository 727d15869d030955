"""The one autocast context of training and inference (engine.amp)."""

from __future__ import annotations

import pytest
import torch

from tal_lab.core.autocast import AMP_MODES, amp_dtype, autocast


def test_only_cuda_computes_in_reduced_precision() -> None:
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert [amp_dtype(cuda, amp) for amp in AMP_MODES] == [None, torch.bfloat16, torch.float16]
    assert [amp_dtype(cpu, amp) for amp in AMP_MODES] == [None, None, None]
    with pytest.raises(ValueError, match=r"engine.amp must be one of \('none', 'bf16', 'fp16'\), got 'fp8'"):
        amp_dtype(cpu, "fp8")


@pytest.mark.parametrize("amp", AMP_MODES)
def test_full_precision_switches_a_callers_autocast_off(amp: str) -> None:
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):  # a caller's own autocast region
        with autocast(torch.device("cpu"), amp):
            assert (a @ b).dtype == torch.float32
        assert (a @ b).dtype == torch.bfloat16  # off inside only
