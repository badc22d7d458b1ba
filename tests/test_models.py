"""nclib.models: the lecture's networks have the papers' sizes and run on their inputs."""
import pytest
import torch

from nclib import models
from nclib.measure import count_macs, count_params


@pytest.mark.parametrize("name, params", [("lenet300", 266_610), ("lenet5", 431_080)])
def test_lenets_match_han2015(name, params):
    """LeNet-300-100 and LeNet-5 have exactly the parameter counts of Han et al. 2015."""
    m = models.create(name)
    assert count_params(m) == params
    assert m(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_mlp_widths_set_its_layers():
    """MLP((30, 30)) is 784-30-30-10 with 24,790 parameters; one hidden layer of 300 is 238,510."""
    m = models.create("mlp")
    assert [layer.out_features for layer in m.layers] == [30, 30, 10]
    assert count_params(m) == 784 * 30 + 30 + 30 * 30 + 30 + 30 * 10 + 10 == 24_790
    assert count_params(models.MLP(hidden=(300,))) == 784 * 300 + 300 + 300 * 10 + 10
    assert m(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_lenet_widths_set_its_layers():
    """LeNet((8, 16), 64) is LeNet-5's layout at 8/16 filters and 64 units: 20,522 parameters."""
    m = models.create("lenet")
    assert (m.conv1.out_channels, m.conv2.out_channels, m.fc1.out_features) == (8, 16, 64)
    assert count_params(m) == (25 * 8 + 8) + (25 * 8 * 16 + 16) + (256 * 64 + 64) + (64 * 10 + 10)
    assert m(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert count_params(models.LeNet((20, 50), 500)) == 431_080  # LeNet-5's widths
    with pytest.raises(ValueError, match="channels"):
        models.LeNet((8,), 64)
    with pytest.raises(ValueError, match="hidden=0"):
        models.LeNet((8, 16), 0)


@pytest.mark.parametrize("name", ["vgg_small", "resnet_small"])
def test_small_cnns_run_on_mnist_shapes(name):
    """The small VGG and ResNet map (B, 1, 28, 28) to (B, 10) and have BatchNorm."""
    m = models.create(name)
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())


def test_mobilenet_v1_matches_paper_table():
    """MobileNet v1 (alpha 1, 224): 4.2M parameters and 569M MACs within 1% (paper Table 8)."""
    m = models.MobileNetV1()
    assert abs(count_params(m) / 4.2e6 - 1) < 0.01
    assert abs(count_macs(m, m.input_shape).total / 569e6 - 1) < 0.01


def test_conv_mobilenet_matches_paper_table():
    """Conv MobileNet: 29.3M parameters and 4866M MACs within 1% (paper Table 4)."""
    m = models.MobileNetV1(separable=False)
    assert abs(count_params(m) / 29.3e6 - 1) < 0.01
    assert abs(count_macs(m, (3, 224, 224)).total / 4866e6 - 1) < 0.01


def test_mobilenet_width_and_resolution_scale_costs():
    """Width alpha scales MACs by about alpha^2 and resolution rho by rho^2 (paper section 3.3-3.4)."""
    base = count_macs(models.MobileNetV1(), (3, 224, 224)).total
    half = count_macs(models.MobileNetV1(width_mult=0.5), (3, 224, 224)).total
    small = models.MobileNetV1(resolution=128)
    low = count_macs(small, small.input_shape).total
    assert 0.2 < half / base < 0.3
    assert abs(low / base - (128 / 224) ** 2) < 0.02


@pytest.mark.parametrize("call, match", [
    (lambda: models.create("alexnet"), "name='alexnet'"),
    (lambda: models.MobileNetV1(width_mult=0), "width_mult=0"),
    (lambda: models.SmallVGG(cfg=(16, -1)), "-1"),
    (lambda: models.MLP(hidden=()), r"hidden=\(\)"),
    (lambda: models.MLP(hidden=(30, 0)), r"hidden=\(30, 0\)"),
])
def test_bad_model_arguments(call, match):
    """Unknown names and impossible sizes raise ValueError naming the value."""
    with pytest.raises(ValueError, match=match):
        call()
