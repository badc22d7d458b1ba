"""nclib.arch.separable: cost formulas agree with real layers; the separable block."""
import itertools
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nclib import measure
from nclib.arch import separable as sep

# kernel, C_in, C_out, input size, stride
GRID = list(itertools.product((1, 3, 5), (1, 3, 8), (1, 4, 16), (7, 12), (1, 2)))


def _costs(layer, size, c_in):
    count = measure.count_macs(layer, (c_in, size, size))
    _, h, w = count.layers[0].output_shape
    return measure.count_params(layer), count.total, h, w


@pytest.mark.parametrize("k, c_in, c_out, size, stride", GRID)
def test_formulas_equal_counters_on_real_layers(k, c_in, c_out, size, stride):
    """Standard, depthwise and pointwise formulas equal count_params and count_macs exactly."""
    conv = nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=False)
    params, macs, h, w = _costs(conv, size, c_in)
    assert params == sep.conv_params(k, c_in, c_out)
    assert macs == sep.conv_macs(k, c_in, c_out, h, w)
    dw = nn.Conv2d(c_in, c_in, k, stride, padding=k // 2, groups=c_in, bias=False)
    params, macs, h, w = _costs(dw, size, c_in)
    assert params == sep.depthwise_params(k, c_in)
    assert macs == sep.depthwise_macs(k, c_in, h, w)
    pw = nn.Conv2d(c_in, c_out, 1, bias=False)
    params, macs, h, w = _costs(pw, size, c_in)
    assert params == sep.pointwise_params(c_in, c_out)
    assert macs == sep.pointwise_macs(c_in, c_out, h, w)


@pytest.mark.parametrize("k, c_in, c_out, size, stride", GRID)
def test_ratio_is_one_over_c_out_plus_one_over_k2(k, c_in, c_out, size, stride):
    """(depthwise + pointwise) / standard = 1/C_out + 1/K^2 for params and for measured MACs."""
    block = sep.DepthwiseSeparableConv(c_in, c_out, k, stride, batch_norm=False, relu=False)
    conv = nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=False)
    exact = Fraction(1, c_out) + Fraction(1, k * k)
    shape = (c_in, size, size)
    assert Fraction(measure.count_params(block), measure.count_params(conv)) == exact
    assert Fraction(measure.count_macs(block, shape).total,
                    measure.count_macs(conv, shape).total) == exact
    assert sep.separable_ratio(k, c_out) == pytest.approx(float(exact), rel=1e-12)


def test_lecture_worked_example():
    """The lecture's 3x3x2x4 convolution: 72 parameters, separable 18 + 8 = 26."""
    assert sep.conv_params(3, 2, 4) == 72
    assert sep.depthwise_params(3, 2) == 18 and sep.pointwise_params(2, 4) == 8
    block = sep.DepthwiseSeparableConv(2, 4, 3, batch_norm=False, relu=False)
    assert measure.count_params(block) == 26
    assert sep.separable_ratio(3, 4) == pytest.approx(26 / 72)


def test_block_equals_merged_standard_conv():
    """Without BN/ReLU the block equals F.conv2d with the merged kernel P[o,i] * D[i]."""
    torch.manual_seed(0)
    block = sep.DepthwiseSeparableConv(3, 5, 3, stride=2, batch_norm=False, relu=False)
    x = torch.randn(2, 3, 9, 9)
    W = sep.merge_separable_weights(block.depthwise.weight, block.pointwise.weight)
    assert W.shape == (5, 3, 3, 3)
    assert torch.allclose(block(x), F.conv2d(x, W, stride=2, padding=1), atol=1e-5)


def test_block_shapes_and_layers():
    """The block keeps H x W at stride 1, halves it at stride 2, and has BN and ReLU by default."""
    block = sep.DepthwiseSeparableConv(4, 8)
    assert block(torch.randn(2, 4, 10, 10)).shape == (2, 8, 10, 10)
    assert isinstance(block.bn1, nn.BatchNorm2d) and isinstance(block.act, nn.ReLU)
    assert block.depthwise.groups == 4 and block.pointwise.kernel_size == (1, 1)
    assert (block(torch.randn(2, 4, 10, 10)) >= 0).all()
    down = sep.DepthwiseSeparableConv(4, 8, 3, stride=2)
    assert down(torch.randn(1, 4, 10, 10)).shape == (1, 8, 5, 5)


@pytest.mark.parametrize("call, error, match", [
    (lambda: sep.conv_params(0, 2, 4), ValueError, r"kernel_size=0: expected a positive integer"),
    (lambda: sep.depthwise_params(3, -1), ValueError, r"c_in=-1: expected a positive integer"),
    (lambda: sep.pointwise_macs(2, 4, 5, 0), ValueError, r"out_w=0"),
    (lambda: sep.conv_macs(3, 2, 4, 0, 5), ValueError, r"out_h=0"),
    (lambda: sep.separable_ratio(3, 0), ValueError, r"c_out=0"),
    (lambda: sep.conv_params(3.0, 2, 4), TypeError, r"kernel_size=3.0: expected a positive int"),
    (lambda: sep.depthwise_macs(3, True, 4, 4), TypeError, r"c_in=True"),
    (lambda: sep.DepthwiseSeparableConv(2, 4, 3, padding=-1), ValueError, r"padding=-1"),
    (lambda: sep.DepthwiseSeparableConv(2, 0), ValueError, r"c_out=0"),
])
def test_bad_sizes_raise(call, error, match):
    """Non-positive or non-integer sizes raise an error: argument, value, what is allowed."""
    with pytest.raises(error, match=match):
        call()
