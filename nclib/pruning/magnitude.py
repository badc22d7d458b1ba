"""Unstructured magnitude pruning, with masks kept as buffers on the layers.

* Han et al., "Learning both Weights and Connections for Efficient Neural Networks"
  (NIPS 2015): remove the weights of smallest magnitude, retrain the survivors, repeat.
  Section 4: the threshold is "a quality parameter multiplied by the standard deviation of
  a layer's weights".

Schedules (how far to prune at each step, iterative and gradual pruning) are in
`nclib.pruning.schedules`.

How a mask works here. `attach_mask(layer, mask)` leaves the parameter `layer.weight` where
it is (the state_dict key stays ``weight``), stores the boolean mask (True = kept) as the
buffer ``weight_mask``, and
1. zeroes the removed weights in place, so the model really holds zeros;
2. puts a gradient hook on the weight, ``grad * mask``: removed weights get a zero gradient,
   so an optimizer with fresh state (every `fit` call makes one) never moves them: Adam's
   and SGD's steps are exactly zero where every gradient was zero;
3. adds a forward pre-hook, `enforce_mask`, that re-zeroes removed weights if something
   made them nonzero (an optimizer whose momentum predates the mask, a hand edit) and
   re-attaches the gradient hook where ``copy.deepcopy`` dropped it (torch copies module
   hooks, not tensor hooks).
`bake(model)` removes all of this and keeps the zeros.
"""
from __future__ import annotations

import numbers
from typing import Literal, Mapping, Sequence

import torch
from torch import nn

__all__ = ["PRUNABLE", "SCOPES", "check_sparsity", "removal_order", "magnitude_mask",
           "std_threshold",
           "Pruner", "MagnitudePruner", "ThresholdPruner", "RandomPruner",
           "prune_by_magnitude", "prune_by_threshold", "prune_randomly", "attach_mask",
           "enforce_mask", "is_masked", "bake", "prunable_layers", "count_prunable_weights",
           "prune_model", "layer_sparsity", "global_sparsity"]

PRUNABLE = (nn.Linear, nn.Conv2d)
SCOPES = ("layer", "global")


def check_sparsity(sparsity, name: str = "sparsity") -> float:
    """`sparsity` as a float, or a clear error: it must be a fraction removed, in [0, 1)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real):
        raise TypeError(f"{name}={sparsity!r}: expected a number in [0, 1) "
                        "(the fraction of weights removed)")
    if not 0 <= sparsity < 1:  # also rejects NaN
        raise ValueError(f"{name}={sparsity!r}: expected a fraction in [0, 1) (0 removes "
                         "nothing; 1 would remove every weight)")
    return float(sparsity)


# ---------------------------------------------------------------- pure functions
def removal_order(weight: torch.Tensor) -> torch.Tensor:
    """Flat indices of `weight`, smallest |w| first: the order magnitude pruning removes them.

    A stable sort: of equal magnitudes the earlier position goes first, on every run.
    """
    return torch.argsort(weight.detach().abs().flatten(), stable=True)


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask (True = kept) removing the ``round(sparsity * numel)`` smallest |w|.

    They are the first of `removal_order` (ties broken by position). ``round`` is Python's,
    as in ``torch.nn.utils.prune``.

    Example:
        >>> magnitude_mask(torch.tensor([0.3, -0.1, 0.2, 0.1]), 0.5)
        tensor([ True, False,  True, False])
    """
    sparsity = check_sparsity(sparsity)
    num_remove = round(sparsity * weight.numel())
    order = removal_order(weight)
    mask = torch.ones(weight.numel(), dtype=torch.bool, device=weight.device)
    mask[order[:num_remove]] = False
    return mask.view(weight.shape)


def std_threshold(weight: torch.Tensor, quality: float) -> float:
    """Han et al.'s threshold: ``quality * std(weight)`` over the WHOLE tensor, zeros included.

    Why the whole tensor: on the survivors alone the threshold only grows. Survivors are the
    large weights, so their spread exceeds the last threshold (for zero-mean weights
    E[w^2 | |w| > t] > t^2), the next threshold is larger still, and repeated pruning
    removes everything. With the zeros counted, the std shrinks as weights go, and
    repeated pruning settles at a fixed point.
    """
    if isinstance(quality, bool) or not isinstance(quality, numbers.Real) or not quality >= 0:
        raise ValueError(f"quality={quality!r}: expected a non-negative number "
                         "(the threshold is quality x std of the weights)")
    return float(quality * weight.detach().float().std(correction=0))


# ---------------------------------------------------------------- criteria
class Pruner:
    """A pruning criterion: subclasses override `compute_mask(weight)` (True = keep).

    `apply(layer)` computes the mask on the layer's current weight (removed weights are
    zeros there) and combines it with the current mask: a weight removed once stays removed.
    """

    def compute_mask(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def apply(self, layer: nn.Module, name: str = "layer") -> nn.Module:
        _check_prunable(layer, name)
        return _narrow_mask(layer, self.compute_mask(layer.weight.detach()))


class MagnitudePruner(Pruner):
    """Han et al. 2015: remove the fraction `sparsity` of weights with the smallest |w|."""

    def __init__(self, sparsity: float):
        self.sparsity = check_sparsity(sparsity)

    def compute_mask(self, weight: torch.Tensor) -> torch.Tensor:
        return magnitude_mask(weight, self.sparsity)


class ThresholdPruner(Pruner):
    """Han et al. 2015, Section 4: remove every weight with |w| <= quality * std(w)."""

    def __init__(self, quality: float):
        std_threshold(torch.zeros(1), quality)  # validates quality
        self.quality = float(quality)

    def compute_mask(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.abs() > std_threshold(weight, self.quality)


class RandomPruner(Pruner):
    """Remove a random fraction `sparsity` of the weights: the baseline a criterion must beat."""

    def __init__(self, sparsity: float, seed: int = 0):
        self.sparsity, self.seed = check_sparsity(sparsity), seed

    def compute_mask(self, weight: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        scores = 1 + torch.rand(weight.shape, generator=g).to(weight.device)  # in [1, 2)
        scores = torch.where(weight != 0, scores, 0.0)  # removed weights (zeros) go first
        return magnitude_mask(scores, self.sparsity)


def prune_by_magnitude(layer: nn.Module, sparsity: float) -> nn.Module:
    """Mask the `sparsity` fraction of `layer`'s smallest weights (see `MagnitudePruner`)."""
    return MagnitudePruner(sparsity).apply(layer)


def prune_by_threshold(layer: nn.Module, quality: float) -> nn.Module:
    """Mask `layer`'s weights with |w| <= quality * std(w) (see `ThresholdPruner`)."""
    return ThresholdPruner(quality).apply(layer)


def prune_randomly(layer: nn.Module, sparsity: float, seed: int = 0) -> nn.Module:
    """Mask a random `sparsity` fraction of `layer`'s weights (see `RandomPruner`)."""
    return RandomPruner(sparsity, seed).apply(layer)


# ---------------------------------------------------------------- masks on layers
def is_masked(layer: nn.Module) -> bool:
    """Whether `layer` carries a pruning mask (the buffer ``weight_mask``)."""
    return isinstance(getattr(layer, "weight_mask", None), torch.Tensor)


def _check_prunable(layer: nn.Module, name: str) -> None:
    if not isinstance(layer, PRUNABLE):
        raise TypeError(f"layer {name!r} is a {type(layer).__name__}: magnitude pruning "
                        f"supports {', '.join(t.__name__ for t in PRUNABLE)}")


def enforce_mask(layer: nn.Module, inputs=()) -> None:
    """Forward pre-hook of a masked layer: removed weights are zero, their gradient masked.

    `attach_mask` installs it; call ``enforce_mask(layer)`` to re-zero removed weights now
    (after an optimizer step whose momentum predates the mask).
    """
    w = layer.weight
    with torch.no_grad():
        # Write only when needed: an in-place write would break a graph that still needs
        # w (two forward passes before one backward).
        if torch.any(w.masked_select(~layer.weight_mask)):
            w.mul_(layer.weight_mask)
    if w.requires_grad and getattr(w, "_mask_grad_handle", None) is None:
        w._mask_grad_handle = w.register_hook(lambda grad: grad * layer.weight_mask)


def attach_mask(layer: nn.Module, mask: torch.Tensor, name: str = "layer") -> nn.Module:
    """Keep only `layer`'s weights where `mask` is True, now and while training.

    Replaces any mask the layer had. See the module docstring for how it works.
    """
    _check_prunable(layer, name)
    if mask.dtype != torch.bool or mask.shape != layer.weight.shape:
        raise ValueError(f"mask for {name!r}: expected a bool tensor of shape "
                         f"{tuple(layer.weight.shape)}, got {mask.dtype} {tuple(mask.shape)}")
    mask = mask.to(layer.weight.device)
    if is_masked(layer):
        layer.weight_mask.copy_(mask)
    else:
        layer.register_buffer("weight_mask", mask.clone())
        layer.register_forward_pre_hook(enforce_mask)
    enforce_mask(layer)
    return layer


def _narrow_mask(layer: nn.Module, mask: torch.Tensor) -> nn.Module:
    """Attach `mask` AND the layer's current mask."""
    if is_masked(layer):
        mask = mask & layer.weight_mask
    return attach_mask(layer, mask)


def bake(model: nn.Module) -> nn.Module:
    """Make pruning permanent, in place: zeros stay, masks and hooks go.

    The result is a plain model (its state_dict loads into a fresh one), still dense:
    its zeros cost as much time and fp32 storage as any other weight.
    """
    for layer in model.modules():
        if not is_masked(layer):
            continue
        w = layer.weight
        with torch.no_grad():
            w.mul_(layer.weight_mask)
        handle = getattr(w, "_mask_grad_handle", None)
        if handle is not None:
            handle.remove()
            del w._mask_grad_handle
        # torch has no public way to remove a hook without its handle: find it by identity.
        for key, hook in list(layer._forward_pre_hooks.items()):
            if hook is enforce_mask:
                del layer._forward_pre_hooks[key]
        del layer.weight_mask
    return model


# ---------------------------------------------------------------- whole models
def prunable_layers(model: nn.Module, layers: Sequence[str] | None = None) -> dict[str, nn.Module]:
    """{name: layer} for `layers` (default: every Linear and Conv2d of `model`)."""
    if layers is None:
        return {n: m for n, m in model.named_modules() if isinstance(m, PRUNABLE)}
    if isinstance(layers, str):
        raise TypeError(f"layers={layers!r}: expected a list of layer names, like [{layers!r}]")
    modules = dict(model.named_modules())
    found = {}
    for name in layers:
        if name not in modules:
            names = [n for n, m in modules.items() if isinstance(m, PRUNABLE)]
            raise ValueError(f"layers: no layer named {name!r}; the Linear and Conv2d "
                             f"layers are {', '.join(map(repr, names))}")
        _check_prunable(modules[name], name)
        found[name] = modules[name]
    return found


def count_prunable_weights(model: nn.Module, layers: Sequence[str] | None = None) -> int:
    """Number of weights of `layers` (default every Linear and Conv2d): what pruning can remove.

    Biases are not counted. Example: LeNet-300-100 has 784*300 + 300*100 + 100*10 = 266,200.
    """
    return sum(layer.weight.numel() for layer in prunable_layers(model, layers).values())


def prune_model(model: nn.Module, sparsity: float | Mapping[str, float],
                scope: Literal["layer", "global"] = "layer",
                layers: Sequence[str] | None = None) -> dict[str, float]:
    """Magnitude-prune the weights of `layers` (default every Linear and Conv2d), in place.

    Args:
        sparsity: the fraction of weights removed, in [0, 1); with scope "layer" also a
            dict {layer name: sparsity} (Han et al. prune each layer at its own rate).
        scope: "layer" removes `sparsity` of every layer's weights; "global" removes the
            `sparsity` fraction of smallest |w| over all the layers together (one
            threshold), so layers of small weights lose more. Biases are never pruned.

    Returns:
        {layer name: fraction of its weights that are zero}.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope={scope!r}: expected one of {', '.join(map(repr, SCOPES))}")
    found = prunable_layers(model, layers)
    if not found:
        raise ValueError(f"{type(model).__name__} has no Linear or Conv2d layer to prune")
    if scope == "layer":
        if isinstance(sparsity, Mapping):
            unknown = [n for n in sparsity if n not in found]
            if unknown:
                raise ValueError(f"sparsity: no prunable layer named {unknown[0]!r}; expected "
                                 f"names among {', '.join(map(repr, found))}")
            targets = dict(sparsity)
        else:
            targets = {name: sparsity for name in found}
        for name, s in targets.items():
            MagnitudePruner(check_sparsity(s, f"sparsity[{name!r}]")).apply(found[name], name)
    else:
        if isinstance(sparsity, Mapping):
            raise TypeError("scope='global' takes one sparsity for all layers, not a dict")
        weights = [layer.weight.detach().flatten() for layer in found.values()]
        keep = magnitude_mask(torch.cat(weights), sparsity)  # one threshold for all layers
        for layer, mask in zip(found.values(), keep.split([w.numel() for w in weights])):
            _narrow_mask(layer, mask.view(layer.weight.shape))
    return layer_sparsity(model, list(found))


def layer_sparsity(model: nn.Module, layers: Sequence[str] | None = None) -> dict[str, float]:
    """{name: fraction of zero weights} for `layers` (default every Linear and Conv2d)."""
    return {name: 1 - int(torch.count_nonzero(layer.weight)) / layer.weight.numel()
            for name, layer in prunable_layers(model, layers).items()}


def global_sparsity(model: nn.Module, layers: Sequence[str] | None = None) -> float:
    """Fraction of zero weights over all `layers` together (biases not counted)."""
    found = prunable_layers(model, layers).values()
    total = sum(layer.weight.numel() for layer in found)
    return 1 - sum(int(torch.count_nonzero(layer.weight)) for layer in found) / total
