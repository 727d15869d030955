"""Conv1d: nn.Conv1d in float32, dense convolutions as one matmul plus shifted sums in bf16 on a CPU;
the heads' prediction layers in float32 under autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tal_lab.models.layers.conv import Conv1d, conv1d_as_matmul, reduced_precision_on_cpu
from tal_lab.models.layers.masked import MaskedConv1D


@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize("length", [16, 17])
@pytest.mark.parametrize("with_bias", [True, False])
def test_the_matmul_form_is_the_zero_padded_same_convolution(kernel: int, stride: int, length: int,
                                                             with_bias: bool) -> None:
    generator = torch.Generator().manual_seed(kernel * 100 + stride * 10 + length)
    x = torch.randn(2, 6, length, generator=generator, dtype=torch.float64)
    weight = torch.randn(5, 6, kernel, generator=generator, dtype=torch.float64)
    bias = torch.randn(5, generator=generator, dtype=torch.float64) if with_bias else None
    expected = F.conv1d(x, weight, bias, stride, kernel // 2)
    got = conv1d_as_matmul(x, weight, bias, stride)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_float32_is_nn_conv1d_bit_for_bit_with_the_same_parameters() -> None:
    torch.manual_seed(3)
    ours = Conv1d(8, 4, 3, padding=1)
    torch.manual_seed(3)
    theirs = nn.Conv1d(8, 4, 3, padding=1)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    assert torch.equal(ours.weight, theirs.weight) and torch.equal(ours.bias, theirs.bias)  # same seeded init
    x = torch.randn(2, 8, 12)
    assert not reduced_precision_on_cpu(x)
    assert torch.equal(ours(x), theirs(x))


def _without_onednn_conv(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bf16 path must not call conv1d")
    monkeypatch.setattr(nn.Conv1d, "_conv_forward", refuse)


@pytest.mark.parametrize(("kernel", "stride"), [(1, 1), (3, 1), (5, 1), (1, 2)])
def test_bf16_autocast_on_cpu_takes_the_matmul_form_forward_and_backward(monkeypatch: pytest.MonkeyPatch,
                                                                         kernel: int, stride: int) -> None:
    torch.manual_seed(0)
    conv = Conv1d(16, 8, kernel, stride=stride, padding=kernel // 2)
    x = torch.randn(2, 16, 24, requires_grad=True)
    expected = F.conv1d(x, conv.weight, conv.bias, stride, kernel // 2)
    expected.square().sum().backward()
    expected_grads = [x.grad.clone(), conv.weight.grad.clone()]
    x.grad, conv.weight.grad, conv.bias.grad = None, None, None
    _without_onednn_conv(monkeypatch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert reduced_precision_on_cpu(x)
        out = conv(x)
    assert out.dtype == torch.bfloat16 and out.shape == expected.shape
    torch.testing.assert_close(out.float(), expected.detach(), rtol=0.02, atol=0.05)  # bf16: 8 mantissa bits
    out.float().square().sum().backward()
    assert x.grad.dtype == torch.float32 and conv.weight.grad.dtype == torch.float32
    for got, want in zip([x.grad, conv.weight.grad], expected_grads):
        assert (got - want).norm() / want.norm() < 0.02


def test_bf16_tensors_take_the_matmul_form_too(monkeypatch: pytest.MonkeyPatch) -> None:
    conv = Conv1d(4, 4, 3, padding=1).bfloat16()
    x = torch.randn(1, 4, 10).bfloat16()
    expected = F.conv1d(x.double(), conv.weight.double(), conv.bias.double(), 1, 1)
    _without_onednn_conv(monkeypatch)
    out = conv(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), expected, rtol=0.02, atol=0.05)


@pytest.mark.parametrize("layer", [
    lambda: Conv1d(8, 8, 3, padding=1, groups=8),   # depthwise (SGP, attention's q/k/v)
    lambda: Conv1d(8, 8, 3, padding=2, dilation=2),
    lambda: Conv1d(8, 8, 3, padding=0),              # not 'same'
    lambda: Conv1d(8, 8, 3, stride=2, padding=1),    # strided, kernel > 1: oneDNN's conv is faster
    lambda: Conv1d(8, 8, 3, padding=1, padding_mode="reflect"),
])
def test_other_convolutions_stay_nn_conv1d_under_autocast(layer) -> None:
    conv = layer()
    calls: list[int] = []
    original = nn.Conv1d._conv_forward

    def counted(self: nn.Conv1d, *args: object) -> torch.Tensor:
        calls.append(1)
        return original(self, *args)

    x = torch.randn(1, 8, 12)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nn.Conv1d, "_conv_forward", counted)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = conv(x)
    assert calls == [1] and out.dtype == torch.bfloat16


def test_a_heads_prediction_layer_stays_float32_under_autocast() -> None:
    """bf16 logits would tie scores by the hundreds: the last conv of each head runs in float32."""
    torch.manual_seed(1)
    prediction = MaskedConv1D(16, 5, 3, float32_output=True)
    hidden = MaskedConv1D(16, 16, 3)
    x, mask = torch.randn(2, 16, 12), torch.ones(2, 1, 12, dtype=torch.bool)
    mask[1, :, 9:] = False
    expected, _ = prediction(x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, out_mask = prediction(x.bfloat16(), mask)
        assert hidden(x, mask)[0].dtype == torch.bfloat16
    assert out.dtype == torch.float32 and torch.equal(out_mask, mask)
    assert torch.equal(out, prediction(x.bfloat16().float(), mask)[0])  # the float32 conv of the bf16 input
    assert torch.equal(out[1, :, 9:], torch.zeros(5, 3))
    torch.testing.assert_close(out, expected, rtol=0.02, atol=0.05)


@pytest.mark.parametrize("head", ["actionformer", "trident", "decoupled"])
def test_every_head_predicts_in_float32_under_bf16_autocast(head: str) -> None:
    from tal_lab.models import build_detector
    from tests.tiny import head_config, head_videos

    model = build_detector(head_config(head_type=head)).eval()
    dtypes: dict[str, torch.dtype] = {}
    for name, module in model.named_modules():
        if isinstance(module, MaskedConv1D) and module.float32_output:
            module.register_forward_hook(lambda m, args, out, name=name: dtypes.__setitem__(name, out[0].dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        detections = model(head_videos())
    assert len(detections) == 2
    assert dtypes and not any(name.startswith(("backbone", "neck")) for name in dtypes), dtypes
    assert set(dtypes.values()) == {torch.float32}, dtypes
    expected = {"actionformer": 2, "trident": 4, "decoupled": 4}[head]  # cls + offsets (+ start / end)
    assert len(dtypes) == expected, sorted(dtypes)
