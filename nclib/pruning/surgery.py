"""Network surgery: rebuild layers with fewer channels, so a pruned model is really smaller.

Removing output channel c of a convolution touches every layer that shares the channel:
the conv itself (filter c), its BatchNorm (scale, shift and running statistics of c), and
the layer that reads the channel (its input c). A Conv2d reads channel c through
``weight[:, c]``; SmallVGG's Linear classifier reads the flattened last map, where
channel c owns the H*W consecutive inputs ``c*H*W .. (c+1)*H*W - 1``.

The graphs understood here:
* `SmallVGG`: any Conv2d of `features` (made of Conv2d, BatchNorm2d, ReLU, MaxPool2d); the
  next Conv2d, or the classifier after the last one, reads its channels.
* `SmallResNet`: ``blocks.<i>.conv1`` only, the block's inner channels (conv1's outputs,
  bn1, conv2's inputs). Every other channel is added to a shortcut, and a sum needs the
  same channels on both sides.

A masked model (`zero_channels`) is the same network with the removed channels set to
zero, and `remove_channels` gives the same outputs with fewer parameters and MACs.

Liu et al., "Rethinking the Value of Network Pruning" (ICLR 2019) train the pruned
architecture from scratch: `reinitialize` and `scratch_epochs` (Scratch-E, Scratch-B).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal, Mapping

import torch
from torch import nn

from nclib.models import BasicBlock, SmallResNet, SmallVGG
from nclib.pruning.magnitude import attach_mask, is_masked

__all__ = ["Coupling", "channel_prunable_layers", "coupling", "remove_channels", "fold_for_inference",
           "zero_channels", "reinitialize", "scratch_epochs", "SUPPORTED"]

SUPPORTED = ("SmallVGG: any Conv2d in `features` (which may hold only Conv2d, BatchNorm2d, "
             "ReLU, MaxPool2d), then a Linear `classifier`; SmallResNet: blocks.<i>.conv1")


@dataclass(frozen=True)
class Coupling:
    """The layers that share one conv's output channels (names as in `named_modules`)."""

    conv: str  # whose output channels are removed
    bn: str | None  # its BatchNorm2d, if any
    next: str  # the layer that reads the channels (its inputs are removed)
    inputs_per_channel: int  # inputs of `next` per channel: 1 for a conv, H*W for a Linear


def channel_prunable_layers(model: nn.Module) -> list[str]:
    """Names of the layers whose output channels surgery can remove."""
    if isinstance(model, SmallVGG):
        return [f"features.{i}" for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
    if isinstance(model, SmallResNet):
        return [f"blocks.{i}.conv1" for i, b in enumerate(model.blocks)
                if isinstance(b, BasicBlock)]
    raise ValueError(f"surgery does not understand the graph of {type(model).__name__}; "
                     f"supported: {SUPPORTED}")


def coupling(model: nn.Module, name: str) -> Coupling:
    """The BatchNorm and the next layer that share the output channels of layer `name`.

    Raises ValueError (or TypeError for a layer that is not a Conv2d) naming the layer and
    what is supported, for any graph this module does not understand.
    """
    modules = dict(model.named_modules())
    if name not in modules:
        raise ValueError(f"no layer named {name!r} in {type(model).__name__}")
    layer = modules[name]
    if not isinstance(layer, nn.Conv2d):
        raise TypeError(f"layer {name!r} is a {type(layer).__name__}: surgery removes output "
                        f"channels of Conv2d layers; supported: {SUPPORTED}")
    if layer.groups != 1:
        raise ValueError(f"layer {name!r} is a grouped conv (groups={layer.groups}): surgery "
                         "supports groups=1 only")
    if is_masked(layer):
        raise ValueError(f"layer {name!r} carries a magnitude-pruning mask: call "
                         "nclib.pruning.magnitude.bake(model) before surgery")
    if isinstance(model, SmallVGG):
        return _vgg_coupling(model, name)
    if isinstance(model, SmallResNet):
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "blocks" and parts[2] == "conv1":
            return Coupling(name, f"blocks.{parts[1]}.bn1", f"blocks.{parts[1]}.conv2", 1)
        raise ValueError(f"cannot prune the output channels of {name!r} in SmallResNet: they "
                         "are added to a shortcut; only blocks.<i>.conv1 (the block's inner "
                         "channels) can be pruned")
    raise ValueError(f"surgery does not understand the graph of {type(model).__name__} "
                     f"(layer {name!r}); supported: {SUPPORTED}")


def _vgg_coupling(model: SmallVGG, name: str) -> Coupling:
    features = list(model.features)
    for i, m in enumerate(features):
        if not isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d)):
            raise ValueError(f"surgery cannot follow channels through features.{i} "
                             f"({type(m).__name__}); supported: {SUPPORTED}")
    if not name.startswith("features."):
        raise ValueError(f"layer {name!r}: supported: {SUPPORTED}")
    i = int(name.split(".")[1])
    conv = features[i]
    bn = None
    if i + 1 < len(features) and isinstance(features[i + 1], nn.BatchNorm2d):
        bn = f"features.{i + 1}"
    for j in range(i + 1, len(features)):
        if isinstance(features[j], nn.Conv2d):
            return Coupling(name, bn, f"features.{j}", 1)
    if not isinstance(model.classifier, nn.Linear):
        raise ValueError(f"surgery: classifier is a {type(model.classifier).__name__}; "
                         f"supported: {SUPPORTED}")
    per_channel, rest = divmod(model.classifier.in_features, conv.out_channels)
    if rest:
        raise ValueError(f"classifier has {model.classifier.in_features} inputs, not a multiple "
                         f"of the {conv.out_channels} channels of {name!r}")
    return Coupling(name, bn, "classifier", per_channel)  # (C, H, W) flattened: H*W per channel


# ---------------------------------------------------------------- rebuilding layers
def _check_keep(keep, num_channels: int, name: str) -> torch.Tensor:
    keep = torch.as_tensor(keep, dtype=torch.long).flatten()
    if keep.numel() == 0 or keep.unique().numel() != keep.numel() or \
            int(keep.min()) < 0 or int(keep.max()) >= num_channels:
        raise ValueError(f"keep[{name!r}]: expected distinct channel indices in "
                         f"[0, {num_channels - 1}], at least one, got {keep.tolist()}")
    return keep.sort().values


def _columns(keep: torch.Tensor, per_channel: int) -> torch.Tensor:
    """Input positions of the kept channels: channel c owns c*S .. c*S + S - 1."""
    return (keep[:, None] * per_channel + torch.arange(per_channel)).flatten()  # (K*S,)


def _conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
    new = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, bias=bias is not None, padding_mode=conv.padding_mode,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new.train(conv.training)


def _bn_like(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(keep.numel(), bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
                         device=bn.weight.device if bn.affine else None)
    with torch.no_grad():
        for key in ("weight", "bias", "running_mean", "running_var"):
            if getattr(bn, key) is not None:
                getattr(new, key).copy_(getattr(bn, key)[keep])
        if bn.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)


def _reader_like(layer: nn.Module, keep: torch.Tensor, per_channel: int,
                 scale: torch.Tensor | None) -> nn.Module:
    """`layer` (Conv2d or Linear) reading only the kept channels, each times `scale`."""
    w = layer.weight.detach()
    if isinstance(layer, nn.Conv2d):
        w = w[:, keep]  # (O, K, kh, kw)
        if scale is not None:
            w = w * scale.to(w)[None, :, None, None]
        bias = None if layer.bias is None else layer.bias.detach()
        return _conv_like(layer, w, bias)
    w = w[:, _columns(keep, per_channel)]  # (O, K*S)
    if scale is not None:
        w = w * scale.to(w).repeat_interleave(per_channel)[None, :]
    new = nn.Linear(w.shape[1], w.shape[0], bias=layer.bias is not None, device=w.device,
                    dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        if layer.bias is not None:
            new.bias.copy_(layer.bias)
    return new.train(layer.training)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def _scale_for(input_scales, name: str, num_kept: int) -> torch.Tensor | None:
    if not input_scales or name not in input_scales:
        return None
    scale = torch.as_tensor(input_scales[name], dtype=torch.float32).flatten()
    if scale.numel() != num_kept:
        raise ValueError(f"input_scales[{name!r}]: expected {num_kept} scales (one per kept "
                         f"channel), got {scale.numel()}")
    return scale


def remove_channels(model: nn.Module, keep: Mapping[str, torch.Tensor],
                    input_scales: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """A smaller copy of `model` keeping only the output channels `keep[name]` of each layer.

    Args:
        keep: {conv name: indices of the output channels to keep}.
        input_scales: optional {conv name: one factor per kept channel}, multiplied into
            the next layer's weights for that channel (ThiNet's least-squares rescaling).

    Returns:
        A new model; `model` is unchanged. Layer names stay the same.
    """
    model = copy.deepcopy(model)
    for name, idx in keep.items():
        c = coupling(model, name)
        conv = model.get_submodule(name)
        idx = _check_keep(idx, conv.out_channels, name).to(conv.weight.device)
        bias = None if conv.bias is None else conv.bias.detach()[idx]
        _replace(model, name, _conv_like(conv, conv.weight.detach()[idx], bias))
        if c.bn is not None:
            _replace(model, c.bn, _bn_like(model.get_submodule(c.bn), idx))
        reader = model.get_submodule(c.next)
        scale = _scale_for(input_scales, name, idx.numel())
        _replace(model, c.next, _reader_like(reader, idx.cpu(), c.inputs_per_channel, scale))
    if isinstance(model, SmallVGG):  # keep cfg truthful: SmallVGG(cfg=model.cfg) rebuilds it
        model.cfg = tuple(m.out_channels if isinstance(m, nn.Conv2d) else "M"
                          for m in model.features if isinstance(m, (nn.Conv2d, nn.MaxPool2d)))
    return model


def zero_channels(model: nn.Module, keep: Mapping[str, torch.Tensor],
                  input_scales: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """A same-shape copy of `model` with every channel not in `keep[name]` set to zero.

    Zeroes the conv's filters (and bias), the BatchNorm's scale and shift (so the channel
    is 0 after BN, not the shift) and the next layer's weights on that channel; so its
    outputs equal those of `remove_channels(model, keep, input_scales)`.
    """
    model = copy.deepcopy(model)
    with torch.no_grad():
        for name, idx in keep.items():
            c = coupling(model, name)
            conv = model.get_submodule(name)
            idx = _check_keep(idx, conv.out_channels, name)
            removed = torch.ones(conv.out_channels, dtype=torch.bool, device=conv.weight.device)
            removed[idx.to(removed.device)] = False
            conv.weight[removed] = 0
            if conv.bias is not None:
                conv.bias[removed] = 0
            if c.bn is not None:
                bn = model.get_submodule(c.bn)
                bn.weight[removed], bn.bias[removed] = 0, 0
            reader = model.get_submodule(c.next)
            columns = removed.repeat_interleave(c.inputs_per_channel)  # (C*S,)
            reader.weight[:, columns] = 0
            scale = _scale_for(input_scales, name, idx.numel())
            if scale is not None:
                kept = _columns(idx, c.inputs_per_channel).to(reader.weight.device)
                factor = scale.repeat_interleave(c.inputs_per_channel).to(reader.weight)
                shape = (1, -1) + (1,) * (reader.weight.ndim - 2)
                reader.weight[:, kept] *= factor.view(shape)
    return model


# ---------------------------------------------------------------- training from scratch
def reinitialize(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of `model` (the pruned architecture) with fresh random weights.

    Calls every layer's `reset_parameters` (BatchNorm statistics included) under its own
    seeded generator, leaving torch's global random state alone. Magnitude-pruning masks
    are kept and re-applied, as Liu et al. do for unstructured pruning.
    """
    model = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in model.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
            if is_masked(layer):
                attach_mask(layer, layer.weight_mask.clone())
    return model


def scratch_epochs(epochs: int, dense_macs: int, pruned_macs: int,
                   budget: Literal["E", "B"] = "B", max_factor: float = 3.0) -> int:
    """Epochs to train a pruned architecture from scratch (Liu et al. 2019).

    budget "E" (Scratch-E): the same number of epochs as the dense model. "B" (Scratch-B):
    the same compute: a model with k times fewer MACs per sample trains k times more epochs,
    at most `max_factor` times (Liu et al. cap ImageNet at 2x; we default to 3x).
    """
    if budget not in ("E", "B"):
        raise ValueError(f"budget={budget!r}: expected 'E' (same epochs) or 'B' (same compute)")
    if not 0 < pruned_macs <= dense_macs:
        raise ValueError(f"pruned_macs={pruned_macs!r}: expected a positive number no larger "
                         f"than dense_macs={dense_macs!r}")
    if budget == "E":
        return epochs
    return round(epochs * min(dense_macs / pruned_macs, max_factor))


def fold_for_inference(model: nn.Module) -> nn.Module:
    """A copy ready for CPU inference: each BatchNorm folded into the conv before it
    (w' = w * gamma / sigma, b' = beta - gamma * mu / sigma; torch's fuse_conv_bn_eval) and
    the channels_last memory layout, which oneDNN's conv and pooling kernels prefer."""
    model = copy.deepcopy(model).eval()
    for parent in model.modules():
        children = list(parent.named_children())
        for (name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(parent, name, nn.utils.fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
    return model.to(memory_format=torch.channels_last)
