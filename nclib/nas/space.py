"""A search space of small CNNs, written as a sequence of decisions (Zoph and Le, ICLR 2017).

Zoph and Le's controller describes a convolutional network one *token* at a time: for each
layer the number of filters, the filter height and width, the stride (or, in their third
space, max pooling) and which earlier layers feed it. Here a network for 1 x 28 x 28
digits is `depth` such layers, each ``conv -> BatchNorm -> ReLU``, with three decisions a
layer:

* ``filters``: how many output channels;
* ``kernel``: the filter's size k (k x k, padding k // 2 keeps the size);
* ``downsample``: how the layer halves its feature map, ``"stride"`` (a stride-2
  convolution: 4x fewer MACs) or ``"pool"`` (stride 1, then 2 x 2 max pooling).

The last layer does not downsample: its feature map (7 x 7 after two halvings of 28 x 28)
is flattened into one linear layer, as in LeNet-5. A *token* is the index of the choice taken, so an
architecture is a tuple of ints, one per decision in `decisions` order; `decode` turns it
into readable layer settings and `encode` turns those back.

    >>> space = SearchSpace()
    >>> space.size  # (3 x 2 x 2)^2 x (3 x 2)
    864
    >>> tokens = space.sample(torch.Generator().manual_seed(0))
    >>> model = space.build(tokens)  # an untrained nn.Module for (B, 1, 28, 28)
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

from nclib import measure

__all__ = ["Decision", "SearchSpace", "ChildNet"]


@dataclass(frozen=True)
class Decision:
    """One token's choices: `layer` (0-based), the setting's `name` and its `choices`."""

    layer: int
    name: str
    choices: tuple

    @property
    def label(self) -> str:
        return f"layer {self.layer + 1} {self.name}"


class ChildNet(nn.Module):
    """The network an architecture describes: conv-BN-ReLU layers, then one linear layer."""

    def __init__(self, layers: Sequence[dict], in_channels: int = 1, num_classes: int = 10,
                 input_size: int = 28):
        super().__init__()
        blocks: list[nn.Module] = []
        c = in_channels
        for spec in layers:
            k, stride = spec["kernel"], 2 if spec.get("downsample") == "stride" else 1
            block = [nn.Conv2d(c, spec["filters"], k, stride=stride, padding=k // 2, bias=False),
                     nn.BatchNorm2d(spec["filters"]), nn.ReLU(inplace=True)]
            if spec.get("downsample") == "pool":
                block.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*block))
            c = spec["filters"]
        self.features = nn.Sequential(*blocks)
        size = input_size
        for spec in layers:  # stride 2 with padding k // 2 rounds up, a 2 x 2 pool rounds down
            if spec.get("downsample") == "stride":
                size = (size + 1) // 2
            elif spec.get("downsample") == "pool":
                size //= 2
        self.classifier = nn.Linear(c * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C, H', W')
        return self.classifier(x.flatten(1))  # (B, C H' W') -> (B, classes)


class SearchSpace:
    """`depth` conv layers with a choice of filters, kernel and downsampling for each.

    Args:
        depth: number of conv layers (at least 1); all but the last halve the feature map.
        filters, kernels: the choices for every layer.
        downsample: the choices of the layers that halve the map ("stride", "pool").
        input_shape, num_classes: what the built networks take and predict.
    """

    DOWNSAMPLE = ("stride", "pool")

    def __init__(self, depth: int = 3, filters: Sequence[int] = (8, 16, 32),
                 kernels: Sequence[int] = (3, 5), downsample: Sequence[str] = DOWNSAMPLE,
                 input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth={depth!r}: expected a positive integer")
        for name, values in (("filters", filters), ("kernels", kernels)):
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                 for v in values):
                raise ValueError(f"{name}={tuple(values)!r}: expected positive integers")
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f"kernels={tuple(kernels)!r}: expected odd sizes (padding k // 2 "
                             "keeps the feature map's size only for odd k)")
        bad = [d for d in downsample if d not in self.DOWNSAMPLE]
        if not downsample or bad:
            raise ValueError(f"downsample={tuple(downsample)!r}: expected a non-empty choice "
                             f"of {self.DOWNSAMPLE}")
        self.depth, self.input_shape, self.num_classes = depth, tuple(input_shape), num_classes
        self.decisions: list[Decision] = []
        for i in range(depth):
            self.decisions += [Decision(i, "filters", tuple(filters)),
                               Decision(i, "kernel", tuple(kernels))]
            if i < depth - 1:
                self.decisions.append(Decision(i, "downsample", tuple(downsample)))

    def __repr__(self) -> str:
        return f"SearchSpace(depth={self.depth}, size={self.size}, decisions={len(self.decisions)})"

    @property
    def size(self) -> int:
        """How many architectures: the product of every decision's number of choices."""
        return math.prod(len(d.choices) for d in self.decisions)

    @property
    def stamp_text(self) -> str:
        """Everything that defines the space, as text (part of a tabulation's stamp)."""
        parts = [f"{d.layer}:{d.name}={','.join(map(str, d.choices))}" for d in self.decisions]
        return f"ChildNet{self.input_shape}->{self.num_classes}|" + ";".join(parts)

    def check(self, tokens: Sequence[int]) -> tuple[int, ...]:
        """`tokens` as a tuple, or a ValueError naming the first token that is not allowed."""
        tokens = tuple(tokens)
        if len(tokens) != len(self.decisions):
            raise ValueError(f"tokens={tokens!r}: expected {len(self.decisions)} tokens, one per "
                             f"decision ({', '.join(d.label for d in self.decisions)})")
        out = []
        for t, d in zip(tokens, self.decisions):
            try:
                i = operator.index(t)  # ints, numpy ints, 0-d integer tensors
            except TypeError:
                i = None
            if isinstance(t, bool) or i is None or not 0 <= i < len(d.choices):
                raise ValueError(f"token {t!r} for {d.label}: expected an index 0 to "
                                 f"{len(d.choices) - 1} of {d.choices}")
            out.append(i)
        return tuple(out)

    def decode(self, tokens: Sequence[int]) -> list[dict]:
        """Readable layer settings: ``[{"filters": 16, "kernel": 5, "downsample": "pool"}, ...]``."""
        layers: list[dict] = [{} for _ in range(self.depth)]
        for t, d in zip(self.check(tokens), self.decisions):
            layers[d.layer][d.name] = d.choices[t]
        return layers

    def encode(self, layers: Sequence[dict]) -> tuple[int, ...]:
        """The tokens of readable layer settings (the inverse of `decode`)."""
        if len(layers) != self.depth:
            raise ValueError(f"layers: expected {self.depth} layer settings, got {len(layers)}")
        tokens = []
        for d in self.decisions:
            value = layers[d.layer].get(d.name)
            if value not in d.choices:
                raise ValueError(f"{d.label}={value!r}: expected one of {d.choices}")
            tokens.append(d.choices.index(value))
        return tuple(tokens)

    def describe(self, tokens: Sequence[int]) -> str:
        """One line, e.g. ``"16 5x5 pool | 32 3x3 stride | 8 3x3"``."""
        return " | ".join(f"{s['filters']} {s['kernel']}x{s['kernel']}"
                          + (f" {s['downsample']}" if "downsample" in s else "")
                          for s in self.decode(tokens))

    def index(self, tokens: Sequence[int]) -> int:
        """The architecture's number, 0 to size - 1 (mixed radix, first token most significant)."""
        i = 0
        for t, d in zip(self.check(tokens), self.decisions):
            i = i * len(d.choices) + t
        return i

    def tokens_at(self, index: int) -> tuple[int, ...]:
        """The architecture numbered `index` (the inverse of `index`)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise ValueError(f"index={index!r}: expected an integer 0 to {self.size - 1}")
        tokens = []
        for d in reversed(self.decisions):
            index, t = divmod(index, len(d.choices))
            tokens.append(t)
        return tuple(reversed(tokens))

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        """Every architecture, in `index` order."""
        return (self.tokens_at(i) for i in range(self.size))

    def sample(self, generator: torch.Generator) -> tuple[int, ...]:
        """One architecture uniformly at random (every token uniform and independent)."""
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator={generator!r}: expected a torch.Generator")
        return tuple(int(torch.randint(len(d.choices), (), generator=generator))
                     for d in self.decisions)

    def build(self, tokens: Sequence[int]) -> ChildNet:
        """The untrained network of `tokens` (initialized by torch's current random state)."""
        return ChildNet(self.decode(tokens), self.input_shape[0], self.num_classes,
                        self.input_shape[1])

    def costs(self, tokens: Sequence[int]) -> tuple[int, int]:
        """(parameters, MACs of one input) of an architecture, counted without training it."""
        with torch.device("meta"):  # shapes only: no memory, no arithmetic
            model = self.build(tokens)
        return measure.count_params(model), measure.count_macs(model, self.input_shape).total
