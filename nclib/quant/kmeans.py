"""Weight sharing by k-means, with trained centroids (Han et al., "Deep Compression",
ICLR 2016, Section 3).

A layer's n weights share k = 2^b values, the centroids C; each weight keeps only its b-bit
cluster label I, and W_ij = C[I_ij].

* Eq. 2: the clusters minimise the within-cluster sum of squares,
  argmin_C sum_i sum_{w in c_i} |w - c_i|^2, found with Lloyd's algorithm (`lloyd`).
* Eq. 1: n labels of log2(k) bits and k 32-bit centroids instead of n 32-bit weights
  compress by r = 32 n / (n log2(k) + 32 k).
* Section 3.2, Fig. 4: the centroids start "random" (Forgy), "density" or "linear"
  (`initial_centroids`). Linear is best: it keeps the few large weights, which matter most.
* Eq. 3, trained centroids (Section 3.3): dL/dC_k = sum_ij dL/dW_ij 1(I_ij = k).
  `share_weights` makes a layer hold only C (a Parameter) and I (a buffer) and rebuild
  W = C[I] in every forward pass (a `torch.nn.utils.parametrize` parametrization: the layer
  is still an nn.Linear or nn.Conv2d). Autograd computes exactly Eq. 3, so any optimizer
  (`nclib.train.fit`) trains the centroids while the labels stay fixed.

Pruned layers keep their zeros: centroid 0 is pinned to 0.0, every zero gets label 0, and
only the nonzero weights are clustered, into the other 2^b - 1 centroids. The zeros stay
exactly zero while training (centroid 0 gets no gradient), and label 0 also codes the
"filler" zeros of relative-index storage (`nclib.quant.coding`).
"""
from __future__ import annotations

import numbers
from typing import Iterable, Literal, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["INITS", "SHAREABLE", "check_num_bits", "initial_centroids", "lloyd",
           "kmeans_quantize", "shared_weight", "Codebook", "attach_codebook", "share_weights",
           "is_shared", "codebook", "shared_layers", "unshare"]

INITS = ("linear", "density", "random")
SHAREABLE = (nn.Linear, nn.Conv2d)
Init = Literal["linear", "density", "random"]


def check_num_bits(num_bits, name: str = "num_bits") -> int:
    """`num_bits` as a bit width from 1 to 16 (2 to 65,536 shared values), or a ValueError."""
    if isinstance(num_bits, bool) or not isinstance(num_bits, numbers.Integral) or \
            not 1 <= num_bits <= 16:
        raise ValueError(f"{name}={num_bits!r}: expected an integer from 1 to 16")
    return int(num_bits)


def _check_init(init) -> None:
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"init={init!r}: expected one of {', '.join(map(repr, INITS))}")


def _check_count(value, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name}={value!r}: expected an integer >= {least}")
    return int(value)


# ---------------------------------------------------------------- k-means in one dimension
def initial_centroids(values: torch.Tensor, k: int, init: Init = "linear",
                      seed: int = 0) -> torch.Tensor:
    """k starting centroids for the 1-D `values`, in ascending order (Han et al., Fig. 4).

    * "linear": k points evenly spaced from min(values) to max(values).
    * "density": the quantiles at (i + 1/2) / k, i = 0 .. k-1: "linearly spaced in the
      CDF", the middle of k bins that hold equal numbers of values.
    * "random" (Forgy): k different values of `values`, each equally likely, drawn with
      `seed`. Fewer than k different values: all of them, the largest repeated.

    Empty `values` give k zeros. Shape: values (N,) -> (k,).
    """
    _check_init(init)
    k = _check_count(k, "k", 1)
    values = values.detach().flatten()
    if values.numel() == 0:
        return values.new_zeros(k)
    if init == "linear":
        return torch.linspace(float(values.min()), float(values.max()), k,
                              dtype=values.dtype, device=values.device)
    if init == "density":  # numpy's quantiles have no size limit (torch.quantile's has)
        at = (np.arange(k) + 0.5) / k  # (k,) the probabilities
        return torch.from_numpy(np.quantile(values.double().cpu().numpy(), at)).to(values)
    g = torch.Generator().manual_seed(seed)
    distinct, which = torch.unique(values.cpu(), return_inverse=True)  # ascending
    draw = torch.randperm(values.numel(), generator=g)  # a random rank for every value
    first = torch.full((distinct.numel(),), values.numel()).scatter_reduce(0, which, draw, "amin")
    chosen = distinct[first.argsort()[:k]].sort().values  # the k values drawn first
    chosen = torch.cat([chosen, chosen[-1:].repeat(k - chosen.numel())])
    return chosen.to(values.device)


def _nearest(values: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The index of each value's nearest centroid; of two equally near, the lower one."""
    ordered, order = centroids.sort(stable=True)
    middle = (ordered[1:] + ordered[:-1]) / 2  # (k-1,) the boundaries between clusters
    labels = torch.searchsorted(middle, values)  # a value on a boundary goes below it
    lowest = torch.searchsorted(ordered, ordered)  # equal centroids: the first of them
    return order[lowest[labels]]


def lloyd(values: torch.Tensor, centroids: torch.Tensor, max_iter: int = 100
          ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Lloyd's algorithm in one dimension: (centroids, labels, num_iter).

    Repeat: label every value with its nearest centroid (of two equally near, the smaller;
    for ascending centroids that is the lower index, as in scikit-learn), then move each
    centroid to the mean of its values, which minimises Eq. 2 for those labels. An empty
    cluster keeps its centroid. Stops when no label changes or after `max_iter` moves
    (`num_iter` of them); the labels are those of the returned centroids. Sums in float64.
    Shape: values (N,), centroids (k,) -> (k,), (N,) long, int.
    """
    max_iter = _check_count(max_iter, "max_iter", 0)
    x = values.detach().flatten().double()  # (N,)
    c = centroids.detach().flatten().double().to(x.device)  # (k,)
    labels = _nearest(x, c)
    num_iter = 0
    while num_iter < max_iter:
        num_iter += 1
        # c_k = mean of the values labelled k (kept where there are none)
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        sizes = torch.bincount(labels, minlength=c.numel())
        c = torch.where(sizes > 0, sums / sizes.clamp(min=1), c)
        new = _nearest(x, c)
        if torch.equal(new, labels):
            break
        labels = new
    return c.to(centroids.dtype), labels, num_iter


def kmeans_quantize(weight: torch.Tensor, num_bits: int, init: Init = "linear",
                    seed: int = 0, max_iter: int = 100, *, pruned: bool | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Share `weight`'s values among 2^num_bits centroids: (centroids, labels).

    Args:
        num_bits: the label width b; the codebook has 2^b centroids.
        init, seed: where the centroids start (`initial_centroids`).
        max_iter: at most this many moves of Lloyd's algorithm (`lloyd`).
        pruned: keep the zeros: centroid 0 is 0.0, every zero has label 0, and the nonzero
            weights share the other 2^b - 1 centroids (labels 1 ..). None (the default):
            when the weight has an exact zero. False clusters zeros like any other value.

    Returns centroids (2^b,) in the weight's float dtype and labels (long, the weight's
    shape); ``shared_weight(centroids, labels)`` rebuilds the weight.

    Example:
        >>> c, i = kmeans_quantize(torch.tensor([0., 0.1, 0.2, 2.0]), num_bits=1)
        >>> c, i  # a pruned weight: 0.0 pinned, one free centroid
        (tensor([0.0000, 0.7667]), tensor([0, 1, 1, 1]))
    """
    num_bits = check_num_bits(num_bits)
    _check_init(init)
    if pruned is not None and not isinstance(pruned, bool):
        raise ValueError(f"pruned={pruned!r}: expected True, False or None (None: True when "
                         "the weight has an exact zero)")
    flat = weight.detach().flatten()
    flat = flat if flat.is_floating_point() else flat.float()  # (N,)
    if pruned is None:
        pruned = bool((flat == 0).any())
    free = flat != 0 if pruned else torch.ones_like(flat, dtype=torch.bool)  # clustered
    k = 2 ** num_bits - int(pruned)  # free centroids
    start = initial_centroids(flat[free], k, init, seed)
    centroids, labels, _ = lloyd(flat[free], start, max_iter)
    if pruned:
        centroids, labels = torch.cat([centroids.new_zeros(1), centroids]), labels + 1
    full = labels.new_zeros(flat.shape)
    full[free] = labels
    return centroids, full.view(weight.shape)


def shared_weight(centroids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The weight the codebook stands for: W_ij = C[I_ij]. Shape: (k,), (...) -> (...)."""
    return centroids[labels]


# ---------------------------------------------------------------- layers that share weights
class Codebook(nn.Module):
    """The parametrization W = C[I] of a weight-shared layer (see `attach_codebook`): its
    input (``original``) is the centroid vector C; the labels I and `pinned` are buffers."""

    def __init__(self, labels: torch.Tensor, num_centroids: int, pinned: bool):
        super().__init__()
        self.num_centroids = num_centroids
        self.register_buffer("labels", labels.detach().long().clone())
        self.register_buffer("pinned", torch.tensor(bool(pinned), device=labels.device))

    def centroids(self, original: torch.Tensor) -> torch.Tensor:
        """The shared values: `original`, with centroid 0 at 0.0 in a pinned (pruned) layer.

        masked_fill passes no gradient to the value it replaces: the pinned centroid
        never moves, and the pruned weights stay exactly zero.
        """
        return torch.cat([original[:1].masked_fill(self.pinned, 0.0), original[1:]])

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        # W = C[I]; indexing's backward scatter-adds dL/dW over the labels, which is Eq. 3:
        # dL/dC_k = sum_ij dL/dW_ij 1(I_ij = k)
        return self.centroids(original)[self.labels]

    def right_inverse(self, centroids: torch.Tensor) -> torch.Tensor:
        """What ``layer.weight = ...`` stores: a new centroid vector of shape (k,)."""
        if tuple(centroids.shape) != (self.num_centroids,):
            raise ValueError(f"a weight-shared layer takes {self.num_centroids} centroids, got "
                             f"shape {tuple(centroids.shape)} (unshare it to set a weight)")
        return centroids


def is_shared(layer: nn.Module) -> bool:
    """Whether `layer`'s weight is rebuilt from a codebook (`share_weights`)."""
    return parametrize.is_parametrized(layer, "weight") and \
        any(isinstance(p, Codebook) for p in layer.parametrizations.weight)


def _remove_codebook(layer: nn.Module) -> None:
    """Make `layer` plain again, its weight a Parameter holding centroids[labels]."""
    # copy.deepcopy gives a parametrized layer and its copies one class, and removing a
    # parametrization deletes the weight property from that class, breaking the copies:
    # give the layer a class of its own first.
    shared = type(layer)
    layer.__class__ = type(shared.__name__, shared.__bases__, dict(vars(shared)))
    parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)


def attach_codebook(layer: nn.Module, centroids: torch.Tensor, labels: torch.Tensor,
                    pinned: bool | None = None, name: str = "layer") -> nn.Module:
    """Make `layer` hold only `centroids` (a Parameter) and `labels` (a buffer); in place.

    Its weight is rebuilt as centroids[labels] in every forward pass, and the state_dict
    holds ``parametrizations.weight.original`` (the centroids) and
    ``parametrizations.weight.0.labels`` instead of ``weight``. `pinned` holds centroid 0
    at 0.0 while training; None: when centroid 0 is 0.0 (as `kmeans_quantize` makes it for
    a pruned weight). A layer that already shares its weights gets the new codebook.
    """
    if not isinstance(layer, SHAREABLE):
        raise TypeError(f"layer {name!r} is a {type(layer).__name__}: weight sharing supports "
                        f"{', '.join(t.__name__ for t in SHAREABLE)}")
    weight, k = layer.weight.detach(), centroids.numel()  # (rebuilt, if shared already)
    if centroids.ndim != 1 or not centroids.is_floating_point():
        raise ValueError(f"centroids for {name!r}: expected a 1-D float tensor, got "
                         f"{centroids.dtype} {tuple(centroids.shape)}")
    if labels.shape != weight.shape or labels.is_floating_point() or \
            (labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < k):
        raise ValueError(f"labels for {name!r}: expected integers in 0 .. {k - 1} of shape "
                         f"{tuple(weight.shape)}, got {labels.dtype} {tuple(labels.shape)}")
    if is_shared(layer):
        _remove_codebook(layer)
    pinned = float(centroids[0]) == 0.0 if pinned is None else bool(pinned)
    # The parametrization's `original` IS the centroid vector: give the layer that first.
    layer.weight = nn.Parameter(centroids.detach().to(weight).clone(),
                                requires_grad=layer.weight.requires_grad)
    book = Codebook(labels.to(weight.device), k, pinned)
    parametrize.register_parametrization(layer, "weight", book, unsafe=True)
    return layer


def codebook(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight-shared layer's (centroids, labels), detached copies. Shape: (k,), weight's."""
    if not is_shared(layer):
        raise ValueError(f"a {type(layer).__name__} that does not share its weights "
                         "(call share_weights or attach_codebook first)")
    weight = layer.parametrizations.weight
    book = next(p for p in weight if isinstance(p, Codebook))
    return book.centroids(weight.original).detach().clone(), book.labels.clone()


def shared_layers(model: nn.Module) -> dict[str, nn.Module]:
    """{name: layer} of every weight-shared layer of `model` (the model itself is named '')."""
    return {name: m for name, m in model.named_modules() if is_shared(m)}


def unshare(model: nn.Module) -> nn.Module:
    """Back to plain layers whose weight is centroids[labels]; in place, returns `model`."""
    for layer in shared_layers(model).values():
        _remove_codebook(layer)
    return model


def share_weights(model: nn.Module, num_bits: int | Mapping[str, int], init: Init = "linear",
                  layers: Iterable[str] | None = None, *, seed: int = 0,
                  max_iter: int = 100) -> nn.Module:
    """In place, every layer keeps only its k-means codebook (`attach_codebook`); returns model.

    Args:
        num_bits: one label width for every layer, or {layer name: width}; a dict shares
            the layers it names (unless `layers` says which).
        layers: names of the nn.Linear and nn.Conv2d layers to share; default: all of them.
        init, seed, max_iter: as in `kmeans_quantize`; a pruned layer keeps its zeros.

    Example:
        >>> share_weights(model, num_bits={"fc1": 5, "fc2": 5, "fc3": 5})
        >>> fit(model, loaders.train, epochs=1)  # trains the centroids (Eq. 3)
    """
    _check_init(init)
    candidates = {name: m for name, m in model.named_modules() if isinstance(m, SHAREABLE)}
    if not candidates:
        raise ValueError(f"model: a {type(model).__name__} without nn.Linear or nn.Conv2d "
                         "layers; weight sharing needs at least one")
    if isinstance(num_bits, Mapping):
        bits = {name: check_num_bits(b, f"num_bits[{name!r}]") for name, b in num_bits.items()}
    else:
        bits = dict.fromkeys(candidates, check_num_bits(num_bits))
    names = list(bits) if layers is None else [layers] if isinstance(layers, str) else list(layers)
    for name in [*bits, *names]:
        if name not in candidates:
            where = "layers" if name in names and name not in bits else "num_bits"
            raise ValueError(f"{where}: no nn.Linear or nn.Conv2d named {name!r} in model (its "
                             f"layers: {', '.join(map(repr, candidates))})")
        if name not in bits:
            raise ValueError(f"num_bits: no width for layer {name!r}")
    for name in names:
        weight = candidates[name].weight.detach()
        pruned = bool((weight == 0).any())  # keep the zeros of a pruned layer
        centroids, labels = kmeans_quantize(weight, bits[name], init, seed, max_iter,
                                            pruned=pruned)
        attach_codebook(candidates[name], centroids, labels, pinned=pruned, name=name)
    return model
