"""nclib.pruning.channels: couplings read from the traced graph, op by op; clear errors."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nclib.pruning import channels, surgery


class Functional(nn.Module):
    """conv -> functional ops of every supported kind -> a flatten written `style` -> Linear."""

    def __init__(self, style):
        super().__init__()
        self.style = style
        self.conv = nn.Conv2d(2, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * 2 * 2, 3)
        self.flatten = nn.Flatten()

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))  # (B, 6, 16, 16)
        x = torch.max_pool2d(F.relu6(x), 2)  # (B, 6, 8, 8)
        x = F.avg_pool2d(torch.relu(x), 2).relu()  # (B, 6, 4, 4)
        x = F.adaptive_avg_pool2d(2 * F.dropout(x, 0.5, self.training) + 1, 2)  # (B, 6, 2, 2)
        x = F.max_pool2d(x, 1)
        if self.style == "view":
            x = x.view(x.size(0), -1)
        elif self.style == "reshape":
            x = x.reshape(x.shape[0], -1)
        elif self.style == "torch.flatten":
            x = torch.flatten(x, 1)
        elif self.style == "method":
            x = x.flatten(1)
        else:
            x = self.flatten(x)
        return self.fc(F.relu(x))  # (B, 3)


@pytest.mark.parametrize("style", ["view", "reshape", "torch.flatten", "method", "module"])
def test_functional_ops_and_every_flatten_are_followed(style):
    """Functional relu/relu6/pools/dropout, arithmetic with numbers, each flatten: to the Linear."""
    model = Functional(style).eval()
    c = channels.coupling(model, "conv")
    assert c == channels.Coupling("conv", "bn", ("bn",), (channels.Reader("fc", 4),))
    keep = {"conv": torch.tensor([1, 2, 5])}
    x = torch.randn(3, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    small, masked = surgery.remove_channels(model, keep), surgery.zero_channels(model, keep)
    assert small.fc.in_features == 12
    assert (small(x) - masked(x)).abs().max() < 1e-5


class TwoReaders(nn.Module):
    """conv -> ReLU -> two convs (an Inception-like fork without the concatenation)."""

    def __init__(self, fork=None):
        super().__init__()
        self.conv, self.a, self.b = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 3, 1), nn.Conv2d(4, 3, 3)
        self.fork = fork

    def forward(self, x):
        x = torch.relu(self.conv(x))
        if self.fork == "cat":
            return torch.cat([self.a(x), x], 1)
        return self.a(x).mean((2, 3)) * self.b(x).mean((2, 3))


def test_two_readers_both_lose_the_inputs():
    """A channel read by two convs is removed from both; outputs equal the zeroed model's."""
    model = TwoReaders()
    c = channels.coupling(model, "conv")
    assert c.readers == (channels.Reader("a", 1), channels.Reader("b", 1))
    with pytest.raises(ValueError, match="'conv' is read by 2 layers"):
        c.only_reader()
    keep = {"conv": torch.tensor([0, 3])}
    small, masked = surgery.remove_channels(model, keep), surgery.zero_channels(model, keep)
    assert small.a.in_channels == small.b.in_channels == 2
    x = torch.randn(2, 1, 9, 9)
    assert (small(x) - masked(x)).abs().max() < 1e-6


def _reason(model, name="conv"):
    """The message of the one ValueError for layer `name`; it names the layer."""
    with pytest.raises(ValueError, match=f"cannot remove the output channels of '{name}' in ") \
            as error:
        channels.coupling(model, name)
    return str(error.value)


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.b = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3, groups=2)

    def forward(self, x):
        return self.b(self.conv(x)).mean((1, 2, 3))


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.conv = nn.Conv2d(1, 4, 1), nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.b(self.conv(self.conv(self.stem(x))))  # self.conv called twice


class SubConv(nn.Conv2d):
    """A Conv2d subclass (as a quantization-aware conv would be): its extras would be lost."""


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        y = self.conv(x)
        return y if y.sum() > 0 else -y  # data-dependent control flow


class _Model(nn.Module):
    """conv = layers[0], b = layers[1] (if any); forward(x) = body(self, x), traced inline."""

    def __init__(self, body, *layers):
        super().__init__()
        self.body, self.conv = body, layers[0]
        if len(layers) > 1:
            self.b = layers[1]

    def forward(self, x):
        return self.body(self, x)


def test_each_unsupported_graph_is_one_error_naming_layer_and_reason():
    """cat, unknown ops, bad reshapes, grouped readers, outputs, shared layers: reason named."""
    conv, fc = nn.Conv2d(1, 2, 3), nn.Linear(2 * 26 * 26, 3)
    assert "node 'cat' (cat())" in _reason(TwoReaders(fork="cat"))  # the fork ends in a concat
    times_input = _Model(lambda self, x: self.b((self.conv(x) * x[:, :, 1:-1, 1:-1]).flatten(1)),
                         conv, fc)
    assert "node 'mul' (mul())" in _reason(times_input)
    assert "reshapes them, but only x.flatten(1)" in \
        _reason(_Model(lambda self, x: self.b(self.conv(x).view(-1, 2 * 26 * 26)), conv, fc))
    assert "reshapes them" in \
        _reason(_Model(lambda self, x: self.b(torch.flatten(self.conv(x))), conv, fc))
    assert "layer 'b' (Linear) reads them without a flatten" in \
        _reason(_Model(lambda self, x: self.b(self.conv(x)), conv, nn.Linear(26, 3)))
    assert "they are an output of the model" in _reason(_Model(lambda self, x: self.conv(x), conv))
    assert "grouped conv 'b' (groups=2)" in _reason(Grouped())
    assert "'conv' is called 2 times" in _reason(Shared(), "stem")
    assert "grouped conv (groups=2)" in _reason(Grouped(), "b")
    assert "never called" in _reason(_Model(lambda self, x: x, conv))
    assert "no layer reads them" in _reason(_Model(lambda self, x: (self.conv(x), x)[1], conv))
    assert "SubConv: surgery rebuilds plain Conv2d only" in \
        _reason(_Model(lambda self, x: self.b(self.conv(x).flatten(1)), SubConv(1, 2, 3), fc))
    with pytest.raises(ValueError, match="torch.fx cannot trace Untraceable"):
        surgery.channel_prunable_layers(Untraceable())


def test_analysis_lists_every_conv_with_its_coupling_or_reason():
    """analyze_channels: one entry per Conv2d in named_modules order, a Coupling or a reason."""
    analysis = channels.analyze_channels(Shared())
    assert list(analysis) == ["stem", "conv", "b"]
    assert all(isinstance(v, str) for v in analysis.values())  # shared conv; b is the output
    assert surgery.channel_prunable_layers(Shared()) == []
