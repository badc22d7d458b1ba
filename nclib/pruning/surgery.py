"""Network surgery: rebuild layers with fewer channels, so a pruned model is really smaller.

Removing output channel c of a convolution touches every layer that shares the channel
(`nclib.pruning.channels` finds them in the graph that torch.fx traces, for any plain CNN):
the conv itself (filter c), the BatchNorms and depthwise convs the channel passes through
(their statistics and filter of c), and every layer that reads it (its inputs of c). A
Conv2d reads channel c through ``weight[:, c]``; a Linear after a flatten reads it through
the H*W consecutive inputs ``c*H*W .. (c+1)*H*W - 1``. A channel that is added to another
(a residual connection) is not removable: a sum needs the same channels on both sides.

A masked model (`zero_channels`) is the same network with the removed channels set to
zero, and `remove_channels` gives the same outputs with fewer parameters and MACs.

Liu et al., "Rethinking the Value of Network Pruning" (ICLR 2019) train the pruned
architecture from scratch: `reinitialize` and `scratch_epochs` (Scratch-E, Scratch-B).
"""
from __future__ import annotations

import copy
from typing import Literal, Mapping

import torch
from torch import nn

from nclib.pruning.channels import Coupling, analyze_channels, couplings
from nclib.pruning.magnitude import attach_mask, is_masked

__all__ = ["channel_prunable_layers", "remove_channels", "zero_channels", "fold_for_inference",
           "reinitialize", "scratch_epochs"]


def channel_prunable_layers(model: nn.Module) -> list[str]:
    """Names of the Conv2d layers whose output channels surgery can remove, in the order of
    `model.named_modules()` (`nclib.pruning.channels.analyze_channels` says why not the others)."""
    return [name for name, c in analyze_channels(model).items() if isinstance(c, Coupling)]


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


def _conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None,
               groups: int = 1) -> nn.Conv2d:
    new = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, groups, bias=bias is not None,
                    padding_mode=conv.padding_mode, device=weight.device, dtype=weight.dtype)
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


def _through_like(layer: nn.Module, keep: torch.Tensor) -> nn.Module:
    """A BatchNorm2d or depthwise Conv2d on the kept channels only."""
    if isinstance(layer, nn.BatchNorm2d):
        return _bn_like(layer, keep)
    bias = None if layer.bias is None else layer.bias.detach()[keep]
    weight = layer.weight.detach()[keep]  # (K, 1, kh, kw): depthwise, K groups
    return _conv_like(layer, weight, bias, groups=keep.numel())


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


def _conv_widths(model: nn.Module) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def _updated_cfg(cfg, widths_before: list[int], model: nn.Module):
    """`cfg` with each channel count replaced by the conv's new width, if `cfg` (a tuple or
    list, e.g. SmallVGG's (16, 16, "M", ...)) holds the conv widths in order; else None."""
    if not isinstance(cfg, (tuple, list)):
        return None
    is_width = [isinstance(v, int) and not isinstance(v, bool) for v in cfg]
    if [v for v, w in zip(cfg, is_width) if w] != widths_before:
        return None
    widths = iter(_conv_widths(model))
    return type(cfg)(next(widths) if w else v for v, w in zip(cfg, is_width))


def remove_channels(model: nn.Module, keep: Mapping[str, torch.Tensor],
                    input_scales: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """A smaller copy of `model` keeping only the output channels `keep[name]` of each layer.

    Args:
        keep: {conv name: indices of the output channels to keep}.
        input_scales: optional {conv name: one factor per kept channel}, multiplied into
            the weights of the layers that read that channel (ThiNet's least-squares
            rescaling).

    Returns:
        A new model; `model` is unchanged. Layer names stay the same. A `cfg` attribute
        that lists the conv widths (SmallVGG's) is updated to the new widths.

    Raises ValueError naming the layer and the reason when its channels cannot be removed.
    """
    model = copy.deepcopy(model)
    plan = couplings(model, keep)
    widths_before = _conv_widths(model)
    for name, idx in keep.items():
        c = plan[name]
        conv = model.get_submodule(name)
        idx = _check_keep(idx, conv.out_channels, name).to(conv.weight.device)
        bias = None if conv.bias is None else conv.bias.detach()[idx]
        _replace(model, name, _conv_like(conv, conv.weight.detach()[idx], bias))
        for layer in c.through:
            _replace(model, layer, _through_like(model.get_submodule(layer), idx))
        scale = _scale_for(input_scales, name, idx.numel())
        for r in c.readers:
            reader = model.get_submodule(r.name)
            _replace(model, r.name, _reader_like(reader, idx.cpu(), r.inputs_per_channel, scale))
    cfg = _updated_cfg(getattr(model, "cfg", None), widths_before, model)
    if cfg is not None:  # keep cfg truthful: SmallVGG(cfg=model.cfg) rebuilds it
        model.cfg = cfg
    return model


def zero_channels(model: nn.Module, keep: Mapping[str, torch.Tensor],
                  input_scales: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """A same-shape copy of `model` with every channel not in `keep[name]` set to zero.

    Zeroes the conv's filters (and bias), the scale and shift of the BatchNorms the channel
    passes through (so it is 0 after BN, not the shift), the filters of the depthwise
    convs, and the readers' weights on that channel; so its outputs equal those of
    `remove_channels(model, keep, input_scales)`.
    """
    model = copy.deepcopy(model)
    plan = couplings(model, keep)
    with torch.no_grad():
        for name, idx in keep.items():
            c = plan[name]
            conv = model.get_submodule(name)
            idx = _check_keep(idx, conv.out_channels, name)
            removed = torch.ones(conv.out_channels, dtype=torch.bool, device=conv.weight.device)
            removed[idx.to(removed.device)] = False
            for layer in (conv, *(model.get_submodule(n) for n in c.through)):
                for p in (layer.weight, layer.bias):
                    if p is not None:
                        p[removed] = 0
            scale = _scale_for(input_scales, name, idx.numel())
            for r in c.readers:
                reader, per_channel = model.get_submodule(r.name), r.inputs_per_channel
                reader.weight[:, removed.repeat_interleave(per_channel)] = 0  # (O, C*S)
                if scale is not None:
                    kept = _columns(idx, per_channel).to(reader.weight.device)
                    factor = scale.repeat_interleave(per_channel).to(reader.weight)
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
