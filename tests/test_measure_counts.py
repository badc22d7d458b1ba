"""nclib.measure.counts: our MAC counter agrees with PyTorch's FLOP counter; parameters, nonzeros."""
import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nclib import measure, models


def _torch_macs(model, shape):
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *shape))
    return counter.get_total_flops() // 2


CASES = [(lambda: models.LeNet300100(), (1, 28, 28)), (lambda: models.LeNet5(), (1, 28, 28)),
         (lambda: models.SmallVGG(), (1, 28, 28)), (lambda: models.SmallResNet(), (1, 28, 28)),
         (lambda: models.MobileNetV1(), (3, 224, 224)),
         (lambda: models.MobileNetV1(width_mult=0.5, separable=False), (3, 160, 160)),
         (lambda: torchvision.models.vgg16(), (3, 224, 224)),
         (lambda: torchvision.models.resnet18(), (3, 224, 224)),
         (lambda: torchvision.models.mobilenet_v2(), (3, 224, 224))]


@pytest.mark.parametrize("make, shape", CASES)
def test_count_macs_equals_flop_counter(make, shape):
    """count_macs equals FlopCounterMode's FLOPs / 2 exactly (grouped and depthwise too)."""
    model = make()
    assert measure.count_macs(model, shape).total == _torch_macs(model, shape)


def test_vgg16_matches_lecture_table():
    """torchvision's VGG-16: 138M parameters and 15.3G MACs within 2% (MobileNet paper Table 8)."""
    m = torchvision.models.vgg16()
    assert abs(measure.count_params(m) / 138e6 - 1) < 0.02
    assert abs(measure.count_macs(m, (3, 224, 224)).total / 15.3e9 - 1) < 0.02


def test_count_macs_by_hand():
    """Linear: in*out; Conv2d: K*K*(C_in/groups)*C_out*H*W; per-layer list sums to the total."""
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                        nn.Flatten(), nn.Linear(4 * 5 * 5, 7))
    count = measure.count_macs(net, (2, 5, 5))
    assert [l.macs for l in count.layers] == [3 * 3 * 2 * 4 * 25, 3 * 3 * 1 * 4 * 25, 100 * 7]
    assert count.total == sum(l.macs for l in count.layers) and count.flops == 2 * count.total
    assert "total" in count.table()


def test_count_params_and_nonzero():
    """Parameters count every stored value; nonzeros skip exact zeros."""
    layer = nn.Linear(10, 5)
    with torch.no_grad():
        layer.weight[:, :4] = 0
    assert measure.count_params(layer) == 55
    assert measure.count_nonzero(layer) == 55 - 20


@pytest.mark.parametrize("shape, match", [((1, 0, 28), "input_shape"), ((3, 32, 32), "cannot run")])
def test_bad_input_shape(shape, match):
    """A shape with a zero, or one the model cannot run on: ValueError naming input_shape."""
    with pytest.raises(ValueError, match=match):
        measure.count_macs(models.LeNet5(), shape)


def test_weight_shared_layers_keep_their_kind():
    """A layer whose weight is rebuilt from a codebook (torch parametrize) is reported as its own class."""
    from nclib.quant import kmeans

    model = kmeans.share_weights(models.LeNet300100(), 3)
    kinds = [layer.kind for layer in measure.count_macs(model, (1, 28, 28)).layers]
    assert kinds == ["Linear"] * 3
    assert measure.count_macs(model, (1, 28, 28)).total == measure.count_macs(models.LeNet300100(), (1, 28, 28)).total
