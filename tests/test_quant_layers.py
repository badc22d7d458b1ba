"""Tests of nclib.quant.layers: fake-quantized Linear and Conv2d and their input quantizer."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nclib.quant.layers import ActivationQuantizer, QuantConv2d, QuantLinear, layer_from_config


def torch_weight_fq(w, num_bits, per_channel):
    """The weight as torch's fake-quant gives it: symmetric, scale max|w| / (2^(b-1) - 1)."""
    qmax = 2 ** (num_bits - 1) - 1
    if per_channel:
        scale = w.detach().abs().flatten(1).amax(1) / qmax
        return torch.fake_quantize_per_channel_affine(w, scale, torch.zeros_like(scale, dtype=torch.int32),
                                                      0, -qmax - 1, qmax)
    return torch.fake_quantize_per_tensor_affine(w, float(w.detach().abs().max() / qmax), 0, -qmax - 1, qmax)


def calibrated(layer, x):
    """`layer` with its input range observed on `x` (min-max), then frozen."""
    layer.input_quantizer.observer = "minmax"
    layer(x)
    layer.input_quantizer.observer = "off"
    return layer


@pytest.mark.parametrize("per_channel", [False, True])
def test_quant_linear_equals_torch_fake_quant(per_channel):
    """QuantLinear = F.linear of torch-fake-quantized input and weight (per tensor and per channel)."""
    layer = QuantLinear(20, 7, num_bits=4, per_channel=per_channel)
    x = torch.randn(5, 20)
    calibrated(layer, x)
    q = layer.input_quantizer
    x_ref = torch.fake_quantize_per_tensor_affine(x, float(q.scale), int(q.zero_point), 0, 15)
    ref = F.linear(x_ref, torch_weight_fq(layer.weight, 4, per_channel), layer.bias)
    assert torch.equal(layer(x), ref)
    assert not torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))  # it does quantize


def test_quant_conv_equals_torch_fake_quant():
    """QuantConv2d = F.conv2d of torch-fake-quantized input and per-channel weight, stride/padding/groups kept."""
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    layer = QuantConv2d.from_float(conv, num_bits=8, per_channel=True)
    x = torch.randn(2, 4, 9, 9)
    calibrated(layer, x)
    q = layer.input_quantizer
    x_ref = torch.fake_quantize_per_tensor_affine(x, float(q.scale), int(q.zero_point), 0, 255)
    ref = F.conv2d(x_ref, torch_weight_fq(conv.weight, 8, True), None, 2, 1, 1, 2)
    assert torch.equal(layer(x), ref)
    assert layer.bias is None and torch.equal(layer.weight, conv.weight)


def test_weights_get_the_straight_through_gradient():
    """The weight's gradient is the gradient at the quantized weight (STE), not zero."""
    layer = QuantLinear(6, 3, activations=False)
    x = torch.randn(4, 6)
    layer(x).square().sum().backward()
    w_hat = torch_weight_fq(layer.weight, 8, False).detach().requires_grad_()
    F.linear(x, w_hat, layer.bias).square().sum().backward()
    assert torch.allclose(layer.weight.grad, w_hat.grad) and layer.weight.grad.abs().sum() > 0


def test_minmax_observer_widens_and_passes_through():
    """"minmax" keeps the min and max of every batch seen and returns x unchanged."""
    q = ActivationQuantizer(observer="minmax")
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 1.0])
    assert torch.equal(q(a), a) and torch.equal(q(b), b)
    assert q.min_val.item() == -1.0 and q.max_val.item() == 2.0
    assert torch.allclose(q.scale, torch.tensor(3 / 255)) and q.zero_point.item() == 85


def test_ema_observer_averages_in_training_and_freezes_in_eval():
    """"ema": the first batch sets the range, later ones move it by momentum; eval mode leaves it."""
    q = ActivationQuantizer(observer="ema", momentum=0.1).train()
    q(torch.tensor([-2.0, 10.0]))
    q(torch.tensor([-4.0, 20.0]))
    assert torch.allclose(q.min_val, torch.tensor(-2.2))  # 0.9 * -2 + 0.1 * -4
    assert torch.allclose(q.max_val, torch.tensor(11.0))  # 0.9 * 10 + 0.1 * 20
    q.eval()
    before = {k: v.clone() for k, v in q.state_dict().items()}
    out = q(torch.tensor([0.0, 100.0]))
    assert all(torch.equal(before[k], v) for k, v in q.state_dict().items())
    assert abs(out[1] - 11.0) <= q.scale  # clamped to the frozen range


def test_unobserved_quantizer_passes_through_and_observed_one_quantizes():
    """Before any range is observed the quantizer is the identity; with a range it rounds."""
    q = ActivationQuantizer()
    x = torch.tensor([0.1234, 0.5])
    assert torch.equal(q(x), x)
    q.set_range(0.0, 1.0)
    assert not torch.equal(q(x), x) and torch.allclose(q(x), x, atol=0.5 / 255)


def test_config_and_state_dict_rebuild_the_layer():
    """layer_from_config(config) (through JSON) plus load_state_dict gives the same outputs."""
    layer = calibrated(QuantConv2d(3, 5, (3, 1), padding=(1, 0), num_bits=6, per_channel=True),
                       torch.randn(2, 3, 8, 8))
    config = json.loads(json.dumps(layer.config()))
    assert config["class"] == "QuantConv2d" and config["kwargs"]["num_bits"] == 6
    rebuilt = layer_from_config(config)
    rebuilt.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(rebuilt(x), layer(x))
    assert set(layer.state_dict()) == {"weight", "bias", "input_quantizer.scale",
                                       "input_quantizer.zero_point", "input_quantizer.min_val",
                                       "input_quantizer.max_val"}
    linear = QuantLinear(4, 2, bias=False, activations=False)
    assert set(layer_from_config(linear.config()).state_dict()) == {"weight"}


def test_bad_layer_options_are_refused():
    """Unknown observer, 1-bit signed weights, a bad momentum and an unknown class are refused."""
    with pytest.raises(ValueError, match="observer='max'.*'off', 'minmax', 'ema'"):
        ActivationQuantizer(observer="max")
    with pytest.raises(ValueError, match="num_bits=1"):
        QuantLinear(3, 3, num_bits=1)
    with pytest.raises(ValueError, match="num_bits=17"):
        QuantLinear(3, 3, num_bits=17)
    with pytest.raises(ValueError, match="momentum=0"):
        ActivationQuantizer(momentum=0)
    with pytest.raises(ValueError, match="'QuantLinear', 'QuantConv2d'"):
        layer_from_config({"class": "Linear", "kwargs": {}})
