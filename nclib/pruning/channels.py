"""Channel analysis: which layers share a conv's output channels, read from the traced graph.

Removing output channel c of a Conv2d touches every layer that sees the channel on its way
to the layers that read it. `torch.fx` traces the model's forward into a graph of calls;
starting at the conv, we follow each use of its output:

* through: BatchNorm2d (its statistics of c are sliced), depthwise Conv2d (groups ==
  in_channels == out_channels: filter c is sliced and channel c flows on), elementwise
  activations, Dropout, Identity, pooling, arithmetic with a number;
* flatten: nn.Flatten, torch.flatten(x, 1), x.flatten(1), x.view(B, -1), x.reshape(B, -1):
  the (C, H, W) map becomes C*H*W inputs, and channel c owns the S = H*W consecutive
  inputs ``c*S .. c*S + S - 1``;
* readers: a Conv2d (groups 1) reads channel c through ``weight[:, c]``; a Linear after a
  flatten through ``weight[:, c*S:(c+1)*S]``, where S = in_features / C (exact: the
  model only runs if in_features = C*H*W, so no sample input, and no input shape, is needed).

Anything else stops the analysis with a reason: a sum (a residual connection needs the
same channels on both of its sides), a concatenation, an op this module does not know,
a grouped conv, the model's output, or a layer called more than once.

Shapes: B (images), C (channels), H, W (height, width), S (inputs per channel).
"""
from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import fx, nn

from nclib.pruning.magnitude import is_masked

__all__ = ["Reader", "Coupling", "analyze_channels", "coupling", "couplings", "SUPPORTED"]

SUPPORTED = ("Conv2d (groups 1, or depthwise), BatchNorm2d, elementwise activations, Dropout, "
             "Identity, pooling, arithmetic with a number, flatten/view(B, -1), then a "
             "Conv2d or Linear reader")

_ELEMENTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh, nn.Sigmoid, nn.Tanh,
                        nn.SiLU, nn.GELU, nn.Hardswish, nn.ELU, nn.Dropout, nn.Dropout2d,
                        nn.Identity)
_POOL_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
# functions, and Tensor methods by name
_ELEMENTWISE = {torch.relu, torch.relu_, F.relu, F.relu6, F.leaky_relu, F.hardtanh, torch.sigmoid,
                torch.tanh, F.silu, F.gelu, F.hardswish, F.elu, F.dropout, F.dropout2d,
                "relu", "relu_", "sigmoid", "tanh", "contiguous"}
_POOLS = {torch.max_pool2d, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d,
          F.adaptive_max_pool2d}
_SHAPE_METHODS, _SHAPE_ATTRIBUTES = {"size", "dim"}, {"shape", "ndim"}
_ARITHMETIC = {operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub,
               torch.mul, torch.div, "add", "sub", "mul", "div", "add_", "mul_"}
_SUMS = {operator.add, operator.sub, torch.add, torch.sub, "add", "sub", "add_", "sub_"}


@dataclass(frozen=True)
class Reader:
    """A layer that reads the channels: input c*S .. c*S + S - 1 belongs to channel c."""

    name: str
    inputs_per_channel: int  # S: 1 for a conv, H*W for a Linear after a flatten


@dataclass(frozen=True)
class Coupling:
    """The layers that share one conv's output channels (names as in `named_modules`)."""

    conv: str  # whose output channels are removed
    bn: str | None  # the BatchNorm2d applied directly to its output, if any
    through: tuple[str, ...]  # BatchNorm2d and depthwise Conv2d layers the channels pass through
    readers: tuple[Reader, ...]  # the layers whose inputs are removed

    def only_reader(self) -> Reader:
        """The one layer that reads the channels (ValueError if there are several)."""
        if len(self.readers) != 1:
            raise ValueError(f"layer {self.conv!r} is read by {len(self.readers)} layers "
                             f"({', '.join(r.name for r in self.readers)}), not one")
        return self.readers[0]


class _Stop(Exception):
    """The walk met something it cannot follow; the message says what."""


def _in(node: fx.Node) -> str:
    """" in <module>": the module whose forward made `node`, if not the model's own."""
    stack = node.meta.get("nn_module_stack") or {}
    return f" in {list(stack)[-1]}" if stack else ""


def _describe(node: fx.Node, modules: dict) -> str:
    if node.op == "call_module":
        return f"layer {node.target!r} ({type(modules[node.target]).__name__})"
    if node.op == "call_method":
        return f"node {node.name!r} (.{node.target}(){_in(node)})"
    if node.op == "call_function":
        return f"node {node.name!r} ({getattr(node.target, '__name__', node.target)}(){_in(node)})"
    return f"node {node.name!r} ({node.op})"


def _reads_shape(node: fx.Node) -> bool:
    """Whether `node` only reads a tensor's shape (x.size(0), x.shape[0]), not its values."""
    if node.op == "call_method":
        return node.target in _SHAPE_METHODS
    if node.op == "call_function" and node.target is getattr:
        return node.args[1] in _SHAPE_ATTRIBUTES
    if node.op == "call_function" and node.target is operator.getitem:
        return isinstance(node.args[0], fx.Node) and _reads_shape(node.args[0])
    return False


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    """The arguments of `node` that are traced values (shape reads left out)."""
    found = []
    fx.node.map_arg((node.args, node.kwargs), found.append)
    return [a for a in found if not _reads_shape(a)]


def _flatten_start(node: fx.Node) -> int | None:
    """start_dim of a flatten (-1 for a view or reshape other than (B, -1)); None if no flatten."""
    if node.target in (torch.flatten, "flatten"):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return start if end == -1 else -1
    if node.target in (torch.reshape, "view", "reshape"):
        shape = node.args[1:]
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return 1 if len(shape) == 2 and shape[1] == -1 else -1
    return None


def _module_step(m: nn.Module, name: str, flat: bool, channels: int, what: str):
    # exact types for the layers surgery rebuilds: a subclass may do more than its base
    if type(m) is nn.Conv2d and not flat:
        if m.groups == 1:
            return ("reader", Reader(name, 1))
        if m.groups == m.in_channels == m.out_channels:  # depthwise: channel c stays c
            return ("through", False, name)
        raise _Stop(f"they are read by the grouped conv {name!r} (groups={m.groups}), whose "
                    "groups would no longer line up")
    if type(m) is nn.Linear:
        if not flat:
            raise _Stop(f"{what} reads them without a flatten (it reads the last dimension)")
        per_channel, rest = divmod(m.in_features, channels)  # in_features = C*H*W
        if rest or not per_channel:
            raise _Stop(f"{what} has {m.in_features} inputs, not a multiple of {channels}")
        return ("reader", Reader(name, per_channel))
    if type(m) is nn.BatchNorm2d and not flat:
        return ("through", False, name)
    if isinstance(m, _POOL_MODULES) and not flat and not getattr(m, "return_indices", False):
        return ("through", False, None)
    if isinstance(m, _ELEMENTWISE_MODULES):
        return ("through", flat, None)
    if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
        return ("through", True, None)
    return None


def _step(node: fx.Node, source: fx.Node, flat: bool, channels: int, modules: dict):
    """What `node` does with the channels it gets from `source` (flattened if `flat`).

    Returns ("through", flat, layer to slice or None), ("reader", Reader) or ("ignore",);
    raises _Stop with the reason when the channels cannot be followed.
    """
    what = _describe(node, modules)
    if node.op == "output":
        raise _Stop("they are an output of the model")
    if _reads_shape(node):
        return ("ignore",)
    values = _tensor_args(node)
    only = values == [source] and bool(node.args) and node.args[0] is source
    result = None
    if node.op == "call_module" and only:
        result = _module_step(modules[node.target], node.target, flat, channels, what)
    elif node.op in ("call_function", "call_method"):
        if node.target in _SUMS and len(values) > 1:
            raise _Stop(f"they feed the sum {node.name!r}{_in(node)}, and a sum needs the "
                        "same channels on both of its sides")
        if values == [source] and node.target in _ARITHMETIC:  # x + 1, 2 * x
            result = ("through", flat, None)
        elif only and node.target in _ELEMENTWISE:
            result = ("through", flat, None)
        elif only and node.target in _POOLS and not flat and \
                not node.kwargs.get("return_indices", False):
            result = ("through", False, None)
        elif only and _flatten_start(node) is not None:
            if _flatten_start(node) != 1:
                raise _Stop(f"{what} reshapes them, but only x.flatten(1) or x.view(B, -1) "
                            "keep each channel's H*W values together")
            result = ("through", True, None)
    if result is None:
        raise _Stop(f"they reach {what}, which surgery cannot follow channels through "
                    f"(it follows {SUPPORTED})")
    return result


def _follow(conv_node: fx.Node, modules: dict, calls: Counter) -> Coupling:
    """Walk every use of `conv_node`'s channels; the Coupling, or _Stop with the reason."""
    channels = modules[conv_node.target].out_channels
    order = {n: i for i, n in enumerate(conv_node.graph.nodes)}
    through, readers, bn = [], [], None
    todo, seen = [(user, conv_node, False) for user in conv_node.users], set()
    while todo:
        node, source, flat = todo.pop(0)
        if node in seen:
            raise _Stop(f"{_describe(node, modules)} uses them twice")
        seen.add(node)
        result = _step(node, source, flat, channels, modules)
        if result[0] == "reader":
            readers.append((order[node], result[1]))
        elif result[0] == "through":
            if result[2] is not None:
                through.append((order[node], result[2]))
                if source is conv_node and isinstance(modules[result[2]], nn.BatchNorm2d):
                    bn = result[2]
            todo += [(user, node, result[1]) for user in node.users]
    if not readers:
        raise _Stop("no layer reads them (the conv's output is never used)")
    layers = [conv_node.target] + [n for _, n in through] + [r.name for _, r in readers]
    for layer in layers:
        if calls[layer] > 1:
            raise _Stop(f"layer {layer!r} is called {calls[layer]} times in forward")
    return Coupling(conv_node.target, bn, tuple(n for _, n in sorted(through)),
                    tuple(r for _, r in sorted(readers, key=lambda p: p[0])))


def analyze_channels(model: nn.Module) -> dict[str, Coupling | str]:
    """For every Conv2d of `model` (in `named_modules` order): its Coupling, or the reason
    its output channels cannot be removed. Raises ValueError if torch.fx cannot trace it."""
    try:
        graph = fx.Tracer().trace(model)
    except Exception as e:  # fx raises many kinds (TraceError, TypeError, ...)
        raise ValueError(f"torch.fx cannot trace {type(model).__name__} ({type(e).__name__}: "
                         f"{e}); surgery needs a forward without data-dependent control "
                         "flow") from None
    modules = dict(model.named_modules())
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    nodes = {n.target: n for n in graph.nodes if n.op == "call_module"}
    result: dict[str, Coupling | str] = {}
    for name, layer in modules.items():
        if not isinstance(layer, nn.Conv2d):
            continue
        if type(layer) is not nn.Conv2d:
            result[name] = f"it is a {type(layer).__name__}: surgery rebuilds plain Conv2d only"
        elif name not in nodes:
            result[name] = "it is never called in forward (torch.fx sees no call)"
        elif layer.groups == layer.in_channels == layer.out_channels and layer.groups > 1:
            result[name] = ("it is a depthwise conv: its channels are its input's; remove them "
                            "at the layer that makes them")
        elif layer.groups != 1:
            result[name] = f"it is a grouped conv (groups={layer.groups}): surgery supports " \
                           "groups=1 (and depthwise convs in the path)"
        else:
            try:
                result[name] = _follow(nodes[name], modules, calls)
            except _Stop as stop:
                result[name] = str(stop)
    return result


def couplings(model: nn.Module, names: Iterable[str]) -> dict[str, Coupling]:
    """{name: Coupling} for each layer in `names`, from one trace of `model`.

    Raises ValueError naming the layer and the reason for a layer whose channels cannot be
    removed (or that carries a magnitude-pruning mask), TypeError for a layer that is not
    a Conv2d.
    """
    names = list(names)
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            raise ValueError(f"no layer named {name!r} in {type(model).__name__}")
        if not isinstance(modules[name], nn.Conv2d):
            raise TypeError(f"layer {name!r} is a {type(modules[name]).__name__}: surgery "
                            "removes output channels of Conv2d layers")
    if not names:
        return {}
    analysis = analyze_channels(model)
    found = {}
    for name in names:
        c = analysis[name]
        if isinstance(c, str):
            raise ValueError(f"cannot remove the output channels of {name!r} in "
                             f"{type(model).__name__}: {c}")
        for layer in (c.conv, *c.through, *(r.name for r in c.readers)):
            if is_masked(modules[layer]):
                raise ValueError(f"layer {layer!r} carries a magnitude-pruning mask: call "
                                 "nclib.pruning.magnitude.bake(model) before surgery")
        found[name] = c
    return found


def coupling(model: nn.Module, name: str) -> Coupling:
    """The layers that share the output channels of layer `name` (see `couplings`)."""
    return couplings(model, [name])[name]
