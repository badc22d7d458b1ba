"""nclib.quant.graph: a model's architecture as JSON, rebuilt with identical outputs; nothing
outside the tables is written or read."""
import json
import operator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nclib import models
from nclib.quant import graph


class Branches(nn.Module):
    """Grouped conv, a residual add, a concatenation, functional calls and a slice."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = torch.cat([x, x, x, x], dim=1)  # (B, 4, H, W)
        y = F.relu(self.bn(self.conv(x)))
        y = operator.add(y, torch.cat([x, x], 1))
        y = self.pool(y).flatten(1)  # (B, 8)
        return self.fc(torch.cat([y, y[:, :8]], dim=1))


def _round_trip(model):
    spec = json.loads(json.dumps(graph.describe(model)))  # through real JSON text
    rebuilt = graph.rebuild(spec)
    rebuilt.load_state_dict(model.state_dict())
    return rebuilt.eval()


@pytest.mark.parametrize("make", [models.LeNet300100, models.LeNet5, models.SmallVGG,
                                  models.SmallResNet, Branches,
                                  lambda: models.MobileNetV1(num_classes=10, width_mult=0.25,
                                                             resolution=32)])
def test_rebuilt_model_gives_identical_outputs(make):
    """describe -> JSON -> rebuild -> load_state_dict: bit-identical outputs, in eval mode."""
    torch.manual_seed(0)
    model = make().eval()
    shape = getattr(model, "input_shape", (1, 28, 28))
    x = torch.randn(5, *shape)
    assert torch.equal(model(x), _round_trip(model)(x))


def test_description_is_plain_data():
    """The description names layers by type and settings, calls by name from the tables."""
    spec = graph.describe(models.LeNet5())
    assert spec["layers"]["conv1"] == {"type": "Conv2d", "config": {
        "in_channels": 1, "out_channels": 20, "kernel_size": [5, 5], "stride": [1, 1],
        "padding": [0, 0], "dilation": [1, 1], "groups": 1, "bias": True, "padding_mode": "zeros"}}
    targets = [n["target"] for n in spec["nodes"] if n["op"] == "call_function"]
    assert targets == ["torch.max_pool2d", "torch.max_pool2d", "torch.relu"]


def test_unknown_layers_and_functions_are_refused_when_writing():
    """A layer type, function or direct tensor use outside the tables: ValueError naming it."""
    with pytest.raises(ValueError, match="'act' is a GELU"):
        graph.describe(_with(nn.GELU()))
    class Fn(nn.Module):
        def forward(self, x):
            return F.gelu(x)
    with pytest.raises(ValueError, match="function 'gelu'"):
        graph.describe(Fn())
    class Attr(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))
        def forward(self, x):
            return x * self.scale
    with pytest.raises(ValueError, match="reads the tensor 'scale' directly"):
        graph.describe(Attr())


def _with(layer):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(3, 3), layer
        def forward(self, x):
            return self.act(self.fc(x))
    return M()


def test_unknown_names_are_refused_when_reading():
    """A description naming a type or function outside the tables is not built (no lookup by name)."""
    spec = graph.describe(models.LeNet300100())
    bad_layer = json.loads(json.dumps(spec))
    bad_layer["layers"]["fc1"]["type"] = "os.system"
    with pytest.raises(ValueError, match="layer type 'os.system' is not one"):
        graph.rebuild(bad_layer)
    bad_call = json.loads(json.dumps(spec))
    next(n for n in bad_call["nodes"] if n["op"] == "call_function")["target"] = "builtins.eval"
    with pytest.raises(ValueError, match="function 'builtins.eval' is not allowed"):
        graph.rebuild(bad_call)
    bad_config = json.loads(json.dumps(spec))
    bad_config["layers"]["fc1"]["config"]["device"] = "cuda"
    with pytest.raises(ValueError, match="a Linear needs the settings"):
        graph.rebuild(bad_config)
