"""Filter pruning: choose which output channels of a conv to keep; surgery removes the rest.

* Li et al., "Pruning Filters for Efficient ConvNets" (ICLR 2017), Section 3.1: rank the
  filters F_j of a layer by their L1 norm s_j = sum |F_j| and remove the smallest.
* Luo et al., "ThiNet: A Filter Level Pruning Method for Deep Neural Network Compression"
  (ICCV 2017), Section 3.2: judge channels by the NEXT layer. One output value of the next
  layer is a sum over its input channels, y = sum_c x_c (x_c: channel c's share). Greedily
  remove the channels T that keep the reconstruction error small, eq. (5):
      min_T  sum_i ( sum_{c in T} x_ic )^2
  then rescale the kept channels by least squares, eq. (6):  w = argmin_w sum_i (y_i - w^T x_i)^2.
* Liu et al., "Learning Efficient Convolutional Networks through Network Slimming" (ICCV
  2017), eq. (1): train with L = loss + lambda * sum |gamma| over the BatchNorm scales, then
  remove the channels whose |gamma| falls under one global threshold.

Shapes: B (images), C (channels of the pruned layer), O (outputs of the next layer),
K (kernel positions), L (output positions), N (samples), S (inputs per channel).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nclib.pruning.channels import coupling, couplings
from nclib.pruning.magnitude import check_sparsity, magnitude_mask
from nclib.pruning.surgery import channel_prunable_layers, remove_channels

__all__ = ["l1_filter_scores", "num_kept", "channel_contributions", "thinet_select",
           "thinet_scales", "reconstruction_error", "FilterPruner", "L1FilterPruner",
           "RandomFilterPruner", "BNScalePruner", "ThiNetPruner", "prune_l1_filters",
           "prune_random_filters", "prune_thinet", "bn_l1_penalty", "SlimmingLoss",
           "slimming_plan", "prune_slimming"]


def l1_filter_scores(weight: torch.Tensor) -> torch.Tensor:
    """Li et al. 2017: s_j = sum |F_j|, the L1 norm of each output filter. (C_out,)"""
    return weight.detach().abs().flatten(1).sum(1)


def num_kept(num_channels: int, sparsity: float, round_to: int = 1) -> int:
    """Channels left after removing round(sparsity * C), rounded to a multiple of `round_to`.

    At least `round_to` (and at least 1: a layer without channels cuts the network), at most
    C. CPU and GPU kernels run fastest on channel counts that fill their vector registers
    (8 or 16 floats): 22 channels can cost as much time as 32 (benchmarks/pruning.py).
    """
    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
        raise ValueError(f"round_to={round_to!r}: expected a positive integer")
    keep = num_channels - round(check_sparsity(sparsity) * num_channels)
    return min(num_channels, max(round_to, round(keep / round_to) * round_to, 1))


# ---------------------------------------------------------------- ThiNet
def channel_contributions(reader: nn.Module, x: torch.Tensor, num_samples: int,
                          inputs_per_channel: int = 1, seed: int = 0
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each input channel's share of sampled outputs of `reader` (bias left out).

    Samples `num_samples` random (image, output unit, position) triples, as ThiNet does.

    Args:
        reader: the Conv2d (groups 1, zero padding) or Linear that reads the channels.
        x: its input, (B, C, H, W) for a conv, (B, C*S) for a Linear.

    Returns:
        contributions (N, C) and targets (N,), the sampled outputs: targets = row sums.
    """
    if not isinstance(reader, (nn.Conv2d, nn.Linear)):
        raise TypeError(f"reader is a {type(reader).__name__}: expected Conv2d or Linear")
    g = torch.Generator().manual_seed(seed)
    w = reader.weight.detach()
    B, O = x.shape[0], w.shape[0]
    b = torch.randint(B, (num_samples,), generator=g)
    o = torch.randint(O, (num_samples,), generator=g)
    if isinstance(reader, nn.Conv2d):
        C = w.shape[1]
        cols = F.unfold(x, reader.kernel_size, reader.dilation, reader.padding, reader.stride)
        cols = cols.view(B, C, -1, cols.shape[-1])  # (B, C, K, L)
        l = torch.randint(cols.shape[-1], (num_samples,), generator=g)
        patches = cols[b, :, :, l]  # (N, C, K)
        contributions = (patches * w[o].view(num_samples, C, -1)).sum(-1)  # (N, C)
    else:
        C = w.shape[1] // inputs_per_channel
        values = x[b].view(num_samples, C, inputs_per_channel)  # (N, C, S)
        contributions = (values * w[o].view(num_samples, C, inputs_per_channel)).sum(-1)  # (N, C)
    return contributions, contributions.sum(1)


def thinet_select(contributions: torch.Tensor, num_keep: int) -> torch.Tensor:
    """ThiNet's greedy selection, eq. (5): the channels to keep, sorted. (num_keep,)

    Removes channels one at a time, each time the one whose removal adds least to
    sum_i (sum_{c removed} x_ic)^2, the error of the sampled outputs.
    """
    N, C = contributions.shape
    removed_sum = torch.zeros(N, dtype=contributions.dtype)  # sum over removed channels
    available = torch.ones(C, dtype=torch.bool)
    for _ in range(C - num_keep):
        errors = ((removed_sum[:, None] + contributions) ** 2).sum(0)  # (C,) if c went too
        errors[~available] = float("inf")
        c = int(torch.argmin(errors))
        removed_sum += contributions[:, c]
        available[c] = False
    return available.nonzero().flatten()


def thinet_scales(contributions: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """ThiNet eq. (6): per-channel factors w = argmin sum_i (y_i - w^T x_i)^2 on the kept
    channels, where y_i = sum over all channels. (K,)"""
    X = contributions[:, keep].double()  # (N, K)
    y = contributions.sum(1, keepdim=True).double()  # (N, 1)
    return torch.linalg.lstsq(X, y).solution.flatten().float()


def _reader_input(model: nn.Module, name: str, inputs: torch.Tensor):
    """The one layer that reads `name`'s channels, its input on `inputs`, its S."""
    only = coupling(model, name).only_reader()
    reader = model.get_submodule(only.name)
    seen = []
    handle = reader.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(inputs.to(reader.weight.device))
    finally:
        handle.remove()
        model.train(was_training)
    return reader, seen[0], only.inputs_per_channel


def reconstruction_error(model: nn.Module, name: str, keep: torch.Tensor, inputs: torch.Tensor,
                         scales: torch.Tensor | None = None) -> float:
    """Relative error ||Y - Y'||^2 / ||Y||^2 of the next layer's outputs (bias left out)
    when only the channels `keep` of layer `name` remain, each times `scales` if given."""
    reader, x, per_channel = _reader_input(model, name, inputs)
    factor = torch.zeros(reader.weight.shape[1] // per_channel)  # (C,)
    factor[keep] = 1.0 if scales is None else scales
    factor = factor.repeat_interleave(per_channel).to(x)  # (C*S,)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    with torch.no_grad():
        bias = 0 if reader.bias is None else reader.bias.view(shape)
        y = reader(x) - bias
        y_pruned = reader(x * factor.view(shape)) - bias
    return float(((y - y_pruned) ** 2).sum() / (y ** 2).sum())


# ---------------------------------------------------------------- criteria
class FilterPruner:
    """Chooses the output channels of one layer to keep; subclasses override `compute_keep`.

    `prune(model, sparsity, layers)` visits `layers` in order; each is judged on the model
    as pruned so far (Li et al.'s "greedy" strategy) and removed by surgery. A criterion
    that also rescales the next layer (ThiNet) overrides `compute_scales` too.
    """

    def compute_keep(self, model: nn.Module, name: str, num_keep: int) -> torch.Tensor:
        raise NotImplementedError

    def compute_scales(self, model: nn.Module, name: str,
                       keep: torch.Tensor) -> torch.Tensor | None:
        return None

    def prune(self, model: nn.Module, sparsity: float, layers: Sequence[str] | None = None,
              round_to: int = 1) -> nn.Module:
        """A smaller copy of `model` with `sparsity` of the channels of each layer removed
        (each layer keeps a multiple of `round_to` channels, see `num_kept`)."""
        num_kept(1, sparsity, round_to)  # validates both
        names = channel_prunable_layers(model) if layers is None else list(layers)
        for name in names:
            coupling(model, name)  # a clear error for a layer surgery cannot handle
            num_keep = num_kept(model.get_submodule(name).out_channels, sparsity, round_to)
            keep = self.compute_keep(model, name, num_keep).sort().values
            scales = self.compute_scales(model, name, keep)
            model = remove_channels(model, {name: keep}, None if scales is None else {name: scales})
        return model


def _top(scores: torch.Tensor, num_keep: int) -> torch.Tensor:
    """Indices of the `num_keep` largest scores (ties: the lower index), sorted."""
    return torch.argsort(scores, descending=True, stable=True)[:num_keep].sort().values


class L1FilterPruner(FilterPruner):
    """Li et al. 2017 (arXiv 1608.08710): keep the filters of largest L1 norm."""

    def compute_keep(self, model, name, num_keep):
        return _top(l1_filter_scores(model.get_submodule(name).weight), num_keep)


class RandomFilterPruner(FilterPruner):
    """Keep random filters: the baseline a criterion must beat."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def compute_keep(self, model, name, num_keep):
        g = torch.Generator().manual_seed(self.seed)
        return torch.randperm(model.get_submodule(name).out_channels, generator=g)[:num_keep]


class BNScalePruner(FilterPruner):
    """Liu et al. 2017 (arXiv 1708.06519), per layer: keep the channels of largest |gamma|."""

    def compute_keep(self, model, name, num_keep):
        return _top(_bn_scale(model, name), num_keep)


class ThiNetPruner(FilterPruner):
    """Luo et al. 2017 (arXiv 1707.06342): keep the channels that best reconstruct the next
    layer's outputs on sampled `inputs`, then rescale them by least squares (`rescale`)."""

    def __init__(self, inputs: torch.Tensor, num_samples: int = 4096, seed: int = 0,
                 rescale: bool = True):
        self.inputs, self.num_samples, self.seed, self.rescale = inputs, num_samples, seed, rescale

    def _contributions(self, model, name):
        reader, x, per_channel = _reader_input(model, name, self.inputs)
        contributions, _ = channel_contributions(reader, x, self.num_samples, per_channel,
                                                 self.seed)
        return contributions

    def compute_keep(self, model, name, num_keep):
        return thinet_select(self._contributions(model, name).cpu(), num_keep)

    def compute_scales(self, model, name, keep):
        if not self.rescale:
            return None
        return thinet_scales(self._contributions(model, name).cpu(), keep)


def prune_l1_filters(model: nn.Module, sparsity: float, layers: Sequence[str] | None = None,
                     round_to: int = 1) -> nn.Module:
    """A copy of `model` without the `sparsity` fraction of smallest-L1 filters per layer."""
    return L1FilterPruner().prune(model, sparsity, layers, round_to)


def prune_random_filters(model: nn.Module, sparsity: float, layers: Sequence[str] | None = None,
                         round_to: int = 1, seed: int = 0) -> nn.Module:
    """A copy of `model` without a random `sparsity` fraction of each layer's filters."""
    return RandomFilterPruner(seed).prune(model, sparsity, layers, round_to)


def prune_thinet(model: nn.Module, sparsity: float, inputs: torch.Tensor,
                 layers: Sequence[str] | None = None, round_to: int = 1,
                 num_samples: int = 4096, seed: int = 0) -> nn.Module:
    """A copy of `model` pruned and rescaled by ThiNet on `inputs` (see `ThiNetPruner`)."""
    return ThiNetPruner(inputs, num_samples, seed).prune(model, sparsity, layers, round_to)


# ---------------------------------------------------------------- network slimming
def _bns(model: nn.Module, names: list[str] | None = None) -> dict[str, str]:
    """{layer: the BatchNorm2d on its output} for `names` (default: every prunable layer)."""
    found = couplings(model, channel_prunable_layers(model) if names is None else names)
    missing = [repr(name) for name, c in found.items() if c.bn is None]
    if missing or not found:
        raise ValueError(f"slimming ranks channels by the BatchNorm2d on a prunable layer's "
                         f"output; in {type(model).__name__}, "
                         f"{f'layer {missing[0]} has none' if missing else 'no layer is prunable'}")
    return {name: c.bn for name, c in found.items()}


def _bn_scale(model: nn.Module, name: str) -> torch.Tensor:
    return model.get_submodule(_bns(model, [name])[name]).weight.detach().abs()


def bn_l1_penalty(model: nn.Module, bns: Sequence[str] | None = None) -> torch.Tensor:
    """sum |gamma| over the BatchNorms `bns` (default: those of the channels surgery can
    remove; other BNs, before a residual sum, are left alone). A scalar with gradients."""
    return sum(model.get_submodule(bn).weight.abs().sum()
               for bn in (_bns(model).values() if bns is None else bns))


class SlimmingLoss:
    """A `fit` loss: cross-entropy + strength * sum |gamma| (Liu et al. 2017, eq. (1)).

    The paper picks lambda = 1e-4 for VGG and 1e-5 for ResNet on CIFAR-10 (grid search).

    Example:
        >>> fit(model, loader, epochs=5, loss_fn=SlimmingLoss(model, strength=1e-4))
    """

    def __init__(self, model: nn.Module, strength: float = 1e-4):
        if not strength >= 0:
            raise ValueError(f"strength={strength!r}: expected a non-negative number")
        self.model, self.strength = model, strength
        self.bns = list(_bns(model).values())  # traced once; a clear error now

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y) + self.strength * bn_l1_penalty(self.model, self.bns)


def slimming_plan(model: nn.Module, sparsity: float,
                  min_channels: int = 1) -> dict[str, torch.Tensor]:
    """{layer: kept channels} under one global threshold on |gamma| (Liu et al. 2017).

    Removes the `sparsity` fraction of smallest |gamma| over all prunable layers together,
    but every layer keeps at least `min_channels` (its largest |gamma|): a layer with no
    channel left would cut the network in two.
    """
    if isinstance(min_channels, bool) or not isinstance(min_channels, int) or min_channels < 1:
        raise ValueError(f"min_channels={min_channels!r}: expected a positive integer")
    bns = _bns(model)
    gammas = [model.get_submodule(bn).weight.detach().abs() for bn in bns.values()]
    keep = magnitude_mask(torch.cat(gammas), sparsity).split([g.numel() for g in gammas])
    plan = {}
    for name, gamma, mask in zip(bns, gammas, keep):
        plan[name] = mask.nonzero().flatten()
        if plan[name].numel() < min_channels:
            plan[name] = _top(gamma, min(min_channels, gamma.numel()))
    return plan


def prune_slimming(model: nn.Module, sparsity: float, min_channels: int = 1) -> nn.Module:
    """A copy of `model` without the channels that `slimming_plan` removes."""
    return remove_channels(model, slimming_plan(model, sparsity, min_channels))
