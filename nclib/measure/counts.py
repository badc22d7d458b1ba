"""Counts: parameters, nonzeros and multiply-accumulates (MACs).

One MAC is one multiplication and one addition, so ``flops = 2 * macs``, as the MobileNet
paper writes #FLOPS = 2 * #MACC (Howard et al., 2017).

The MAC counter is analytic and our own: it counts Linear and Conv2d layers (grouped and
depthwise included) from their shapes. Pooling, BatchNorm, activations and additions are
ignored: they cost no multiplications of weights, and the papers' tables leave them out too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

__all__ = ["count_params", "count_nonzero", "count_macs", "MacCount", "LayerMacs"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (a masked weight still counts: it is still stored)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_nonzero(model: nn.Module) -> int:
    """Number of parameters that are not exactly zero."""
    return sum(int(torch.count_nonzero(p.detach())) for p in model.parameters())


# ---------------------------------------------------------------- MACs
@dataclass(frozen=True)
class LayerMacs:
    name: str
    kind: str
    macs: int
    output_shape: tuple[int, ...]


@dataclass
class MacCount:
    """Total MACs of one forward pass of one sample, and the per-layer list."""

    total: int
    layers: list[LayerMacs] = field(default_factory=list)

    @property
    def flops(self) -> int:
        return 2 * self.total

    def __int__(self) -> int:
        return self.total

    def table(self) -> str:
        w = max([len(l.name) for l in self.layers] + [5])
        lines = [f"{'layer':<{w}}  {'type':<8} {'output':<18} {'MACs':>14}"]
        for l in self.layers:
            lines.append(f"{l.name:<{w}}  {l.kind:<8} {str(tuple(l.output_shape)):<18} {l.macs:>14,}")
        lines.append(f"{'total':<{w}}  {'':<8} {'':<18} {self.total:>14,}")
        return "\n".join(lines)


def _layer_macs(module: nn.Module, out: torch.Tensor) -> int | None:
    if isinstance(module, nn.Linear):
        # every output value is a dot product of in_features terms
        return out.numel() * module.in_features
    if isinstance(module, nn.Conv2d):
        # every output value sums kh * kw * (C_in / groups) products
        kh, kw = module.kernel_size
        return out.numel() * kh * kw * (module.in_channels // module.groups)
    return None


def _check_shape(input_shape) -> tuple[int, ...]:
    """One sample's shape as a tuple, or a clear error (shared with `latency`)."""
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    if (not isinstance(input_shape, (tuple, list, torch.Size)) or not input_shape
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in input_shape)):
        raise ValueError(f"input_shape={input_shape!r}: expected the shape of one sample as "
                         "positive integers without the batch dimension, like (1, 28, 28)")
    return tuple(input_shape)


def _first_param(model: nn.Module) -> torch.Tensor | None:
    return next(iter(model.parameters()), None)


def _kind(module: nn.Module) -> str:
    """The layer's class name; a layer whose weight torch's parametrize rebuilds (weight
    sharing) is named by its own class, not the wrapper class ``ParametrizedLinear``."""
    cls = type(module)
    if cls.__module__ == "torch.nn.utils.parametrize":
        cls = cls.__bases__[0]
    return cls.__name__


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> MacCount:
    """MACs of one forward pass of one sample of `input_shape` (no batch dimension).

    Runs the model once on zeros with hooks on every Linear and Conv2d layer.

    Example:
        >>> count_macs(nn.Linear(784, 300), (784,)).total
        235200
    """
    shape = _check_shape(input_shape)
    p = _first_param(model)
    x = torch.zeros((1, *shape), device=p.device if p is not None else "cpu",
                    dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32)
    layers: list[LayerMacs] = []
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            def hook(mod, inputs, out, name=name):
                kind = _kind(mod)
                layers.append(LayerMacs(name or kind, kind,
                                        int(_layer_macs(mod, out)), tuple(out.shape[1:])))
            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    except RuntimeError as e:
        raise ValueError(f"input_shape={shape}: the model cannot run on a sample of this "
                         f"shape ({e})") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return MacCount(sum(l.macs for l in layers), layers)
