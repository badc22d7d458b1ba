"""The lecture's models.

* `LeNet300100`, `LeNet5`: the MNIST networks of Han et al., "Learning both Weights and
  Connections for Efficient Neural Networks" (NIPS 2015): 266,610 and 431,080 parameters.
* `MLP`: a fully connected classifier of any widths; chapter 02's student is
  784-30-30-10 (24,790 parameters), the "30 units per layer" of Hinton et al. 2015.
* `LeNet`: LeNet-5's shape at any width (ReLU after every layer but the last); the capstone's
  small student is ``LeNet((8, 16), 64)``: 20,522 parameters.
* `SmallVGG`: a VGG-style CNN with BatchNorm, for filter pruning on 28x28 inputs.
* `SmallResNet`: a ResNet with a flat list of residual blocks, for dynamic computation.
* `MobileNetV1`: Howard et al., "MobileNets" (arXiv 1704.04861, 2017), Table 1, with the
  width multiplier alpha and input resolution; ``separable=False`` gives the paper's
  "Conv MobileNet" (every depthwise separable block replaced by a full 3x3 convolution).

Shapes use B (batch), C (channels), H, W (height, width).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["LeNet300100", "MLP", "LeNet5", "LeNet", "SmallVGG", "SmallResNet", "BasicBlock", "MobileNetV1",
           "MODELS", "create"]


class LeNet300100(nn.Module):
    """784-300-100-10 fully connected network (Han et al. 2015, Table 1: 267K parameters)."""

    def __init__(self, num_classes: int = 10, in_features: int = 28 * 28):
        super().__init__()
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, 784)
        x = torch.relu(self.fc1(x))  # (B, 300)
        x = torch.relu(self.fc2(x))  # (B, 100)
        return self.fc3(x)  # (B, classes)


class MLP(nn.Module):
    """Fully connected: in_features -> hidden[0] -> ... -> classes, ReLU after each hidden layer.

    `layers` holds the Linear layers in order (``layers[-1]`` is the classifier).
    """

    def __init__(self, hidden: tuple[int, ...] = (30, 30), num_classes: int = 10,
                 in_features: int = 28 * 28):
        super().__init__()
        hidden = tuple(hidden)
        if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden={hidden!r}: expected one or more positive layer widths")
        widths = (in_features, *hidden, num_classes)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, in_features)
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))  # (B, hidden[i])
        return self.layers[-1](x)  # (B, classes)


class LeNet5(nn.Module):
    """Caffe's LeNet-5 as pruned by Han et al. 2015 (431K parameters).

    conv 5x5 20 -> maxpool -> conv 5x5 50 -> maxpool -> fc 500 -> fc 10, on 28x28 inputs.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(self.conv1(x), 2)  # (B, 20, 12, 12)
        x = torch.max_pool2d(self.conv2(x), 2)  # (B, 50, 4, 4)
        x = torch.relu(self.fc1(x.flatten(1)))  # (B, 500)
        return self.fc2(x)  # (B, classes)


class LeNet(nn.Module):
    """LeNet-5's layout at any width: conv 5x5 channels[0] -> ReLU -> maxpool -> conv 5x5
    channels[1] -> ReLU -> maxpool -> fc hidden -> ReLU -> fc classes, on 28x28 inputs.

    Unlike `LeNet5` (Caffe's, no ReLU after its convolutions) every hidden layer has one.
    """

    def __init__(self, channels: tuple[int, int] = (8, 16), hidden: int = 64, num_classes: int = 10,
                 in_channels: int = 1):
        super().__init__()
        channels = tuple(channels)
        if len(channels) != 2 or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"channels={channels!r}: expected two positive conv widths")
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden={hidden!r}: expected a positive number of units")
        self.conv1 = nn.Conv2d(in_channels, channels[0], 5)
        self.conv2 = nn.Conv2d(channels[0], channels[1], 5)
        self.fc1 = nn.Linear(channels[1] * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)  # (B, channels[0], 12, 12)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)  # (B, channels[1], 4, 4)
        x = torch.relu(self.fc1(x.flatten(1)))  # (B, hidden)
        return self.fc2(x)  # (B, classes)


class SmallVGG(nn.Module):
    """VGG-style CNN: 3x3 conv + BatchNorm + ReLU blocks, max pooling at each "M".

    `features` holds the blocks in order and `classifier` is one Linear layer on the
    flattened last feature map, so filter pruning can remove a conv's output channels and
    the matching inputs of whatever follows.
    """

    def __init__(self, cfg: tuple = (16, 16, "M", 32, 32, "M", 64, "M"), num_classes: int = 10,
                 in_channels: int = 1, input_size: int = 28):
        super().__init__()
        layers: list[nn.Module] = []
        c, size = in_channels, input_size
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                size //= 2
            else:
                if not isinstance(v, int) or v < 1:
                    raise ValueError(f"cfg entry {v!r}: expected a positive channel count or 'M'")
                layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v),
                           nn.ReLU(inplace=True)]
                c = v
        self.cfg = tuple(cfg)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C, H', W')
        return self.classifier(x.flatten(1))  # (B, classes)


class BasicBlock(nn.Module):
    """Residual block: conv-bn-relu-conv-bn plus a shortcut (1x1 conv + bn when shapes change)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The block's residual branch alone (what BlockDrop skips)."""
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.shortcut(x) + self.residual(x))


class SmallResNet(nn.Module):
    """A CIFAR-style ResNet for 28x28 inputs: stem, stages of `BasicBlock`s, pool, fc.

    The residual blocks sit in one flat `blocks` sequence, so dynamic-computation methods
    can decide per block whether to run it.
    """

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32), blocks_per_stage: int = 2,
                 num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        if blocks_per_stage < 1 or not widths:
            raise ValueError(f"blocks_per_stage={blocks_per_stage!r}, widths={widths!r}: "
                             "expected at least one stage of at least one block")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks_per_stage):
                blocks.append(BasicBlock(c, w, stride=2 if (i > 0 and j == 0) else 1))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))  # (B, C, H', W')
        return self.fc(self.pool(x).flatten(1))  # (B, classes)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


# MobileNet v1 body (paper Table 1): (output channels, stride) of each separable block.
# The paper prints "Conv dw / s2" for the last block, but its input and output are both
# 7x7, so the stride is 1; every public implementation uses 1.
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class MobileNetV1(nn.Module):
    """MobileNet v1 (Howard et al. 2017, Table 1) with width multiplier and resolution.

    Args:
        width_mult: alpha, which thins every layer to ``int(alpha * channels)``.
        resolution: the input size the model is meant for (rho * 224 in the paper); the
            network itself accepts any size (global average pooling before the classifier).
        separable: False builds "Conv MobileNet", with full 3x3 convolutions instead of
            depthwise + pointwise pairs (paper Table 4).
    """

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, resolution: int = 224,
                 in_channels: int = 3, separable: bool = True):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult={width_mult!r}: expected a positive number")
        if resolution < 32:
            raise ValueError(f"resolution={resolution!r}: expected at least 32")
        self.width_mult, self.resolution, self.separable = width_mult, resolution, separable

        def ch(c: int) -> int:
            return max(1, int(c * width_mult))

        layers = [_conv_bn(in_channels, ch(32), 3, 2)]
        c = ch(32)
        for c_out, stride in MOBILENET_V1_BLOCKS:
            if separable:
                layers.append(nn.Sequential(_conv_bn(c, c, 3, stride, groups=c),  # depthwise
                                            _conv_bn(c, ch(c_out), 1, 1)))  # pointwise
            else:
                layers.append(_conv_bn(c, ch(c_out), 3, stride))
            c = ch(c_out)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.features[0][0].in_channels, self.resolution, self.resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C, H/32, W/32)
        return self.classifier(self.pool(x).flatten(1))  # (B, classes)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet300": LeNet300100,
    "mlp": MLP,
    "lenet5": LeNet5,
    "lenet": LeNet,
    "vgg_small": SmallVGG,
    "resnet_small": SmallResNet,
    "mobilenet_v1": MobileNetV1,
}


def create(name: str, **kwargs) -> nn.Module:
    """Build a model by its short name (see `MODELS`)."""
    if name not in MODELS:
        raise ValueError(f"name={name!r}: expected one of {', '.join(MODELS)}")
    return MODELS[name](**kwargs)
