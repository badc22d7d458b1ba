"""A model's architecture as data: the graph torch.fx traces, written as JSON and rebuilt.

`describe(model)` traces ``forward`` into its calls (layers, functions such as
``torch.relu``, methods such as ``x.flatten(1)``) and returns plain JSON: every layer as a
type name and its constructor settings, every call as a name from a fixed table with its
arguments. `rebuild(spec)` makes a `torch.fx.GraphModule` that runs the same calls in the
same order, so its outputs equal the original's exactly once the weights are loaded.

Nothing in a description is executed: a type or function name that is not in the tables
below (`LAYERS`, `FUNCTIONS`, `METHODS`) is refused, both when writing and when reading.
This is why a file built on it cannot run code on load (a pickle can: unpickling calls
whatever the file names). `register_layer` adds a layer type (the quantized layers of
`nclib.quant` are added by `nclib.quant.compressed`).
"""
from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = ["describe", "rebuild", "register_layer", "LAYERS", "FUNCTIONS", "METHODS", "layer_type"]

# type name -> (class, the constructor arguments read from a layer's attributes)
LAYERS: dict[str, tuple[type, tuple[str, ...]]] = {
    "Conv2d": (nn.Conv2d, ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                           "dilation", "groups", "bias", "padding_mode")),
    "Linear": (nn.Linear, ("in_features", "out_features", "bias")),
    "BatchNorm2d": (nn.BatchNorm2d, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "BatchNorm1d": (nn.BatchNorm1d, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "ReLU": (nn.ReLU, ("inplace",)),
    "ReLU6": (nn.ReLU6, ("inplace",)),
    "Hardtanh": (nn.Hardtanh, ("min_val", "max_val")),
    "Tanh": (nn.Tanh, ()),
    "Sigmoid": (nn.Sigmoid, ()),
    "MaxPool2d": (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode")),
    "AvgPool2d": (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, ("output_size",)),
    "AdaptiveMaxPool2d": (nn.AdaptiveMaxPool2d, ("output_size",)),
    "Flatten": (nn.Flatten, ("start_dim", "end_dim")),
    "Dropout": (nn.Dropout, ("p",)),
    "Identity": (nn.Identity, ()),
}

FUNCTIONS: dict[str, Any] = {
    "torch.relu": torch.relu, "F.relu": F.relu, "F.relu6": F.relu6, "torch.sigmoid": torch.sigmoid,
    "torch.tanh": torch.tanh, "F.hardtanh": F.hardtanh,
    "torch.max_pool2d": torch.max_pool2d, "F.max_pool2d": F.max_pool2d,
    "F.avg_pool2d": F.avg_pool2d,
    "F.adaptive_avg_pool2d": F.adaptive_avg_pool2d, "torch.flatten": torch.flatten,
    "operator.add": operator.add, "operator.mul": operator.mul, "operator.getitem": operator.getitem,
    "torch.add": torch.add, "torch.mul": torch.mul, "torch.cat": torch.cat,
}
_FUNCTION_NAMES = {id(fn): name for name, fn in FUNCTIONS.items()}
METHODS = frozenset({"flatten", "view", "reshape", "relu", "size", "mean", "add", "mul",
                     "contiguous", "sigmoid", "clamp"})


def register_layer(name: str, cls: type, fields: tuple[str, ...]) -> None:
    """Allow layers of `cls` in descriptions, built as ``cls(**{f: layer.f for f in fields})``.

    A field that is a tensor attribute in torch (like ``bias``) is written as whether it
    exists. Layers of a subclass of `cls` are not covered: register them by name too.
    """
    LAYERS[name] = (cls, tuple(fields))


def layer_type(module: nn.Module) -> str | None:
    """The registered type name of `module`, or None. A layer that torch's parametrize
    wrapped (a weight-shared layer: class ``ParametrizedLinear``) counts as its own type."""
    cls = type(module)
    if getattr(cls, "__module__", "") == "torch.nn.utils.parametrize":
        cls = cls.__bases__[0]
    for name, (registered, _) in LAYERS.items():
        if cls is registered:
            return name
    return None


class _Tracer(fx.Tracer):
    """Every registered layer is one call (a leaf), even a subclass defined outside torch.nn."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return layer_type(m) is not None or super().is_leaf_module(m, qualname)


# ---------------------------------------------------------------- values <-> JSON
def _encode(value, where: str):
    if isinstance(value, fx.Node):
        return {"node": value.name}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        items = [_encode(v, where) for v in value]
        return {"tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, slice):
        return {"slice": [_encode(v, where) for v in (value.start, value.stop, value.step)]}
    if value is Ellipsis:
        return {"ellipsis": True}
    raise ValueError(f"{where}: an argument of type {type(value).__name__} ({value!r}) cannot be "
                     "written as data (allowed: tensors from other calls, numbers, strings, "
                     "None, tuples, lists, slices)")


def _decode(value, env: dict):
    if isinstance(value, list):
        return [_decode(v, env) for v in value]
    if isinstance(value, dict):
        if "node" in value:
            if value["node"] not in env:
                raise ValueError(f"architecture: a call reads {value['node']!r} before it is computed")
            return env[value["node"]]
        if "tuple" in value:
            return tuple(_decode(v, env) for v in value["tuple"])
        if "slice" in value:
            return slice(*(_decode(v, env) for v in value["slice"]))
        if "ellipsis" in value:
            return Ellipsis
        raise ValueError(f"architecture: unknown argument {value!r}")
    return value


def _config(module: nn.Module, fields: tuple[str, ...]) -> dict:
    out = {}
    for f in fields:
        v = getattr(module, f)
        if f == "bias" or isinstance(v, torch.Tensor):  # a tensor attribute: only whether it exists
            v = v is not None
        out[f] = list(v) if isinstance(v, tuple) else v
    return out


# ---------------------------------------------------------------- describe / rebuild
def describe(model: nn.Module) -> dict:
    """The architecture of `model` as JSON-ready data: {"layers": {...}, "nodes": [...]}.

    Raises ValueError naming the part that cannot be described: a layer type, function or
    method outside the tables, a parameter used directly in forward, or a model that
    torch.fx cannot trace.
    """
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # fx raises many kinds (TraceError, TypeError, ...)
        raise ValueError(f"torch.fx cannot trace {type(model).__name__} "
                         f"({type(e).__name__}: {e})") from None
    layers, nodes = {}, []
    modules = dict(model.named_modules())
    for node in graph.nodes:
        where = f"{type(model).__name__}, call {node.name!r}"
        entry = {"name": node.name, "op": node.op, "args": _encode(node.args, where),
                 "kwargs": {k: _encode(v, where) for k, v in node.kwargs.items()}}
        if node.op == "call_module":
            layer = modules[node.target]
            kind = layer_type(layer)
            if kind is None:
                raise ValueError(f"{where}: layer {node.target!r} is a {type(layer).__name__}; "
                                 f"a compressed file holds {', '.join(LAYERS)}")
            layers[node.target] = {"type": kind, "config": _config(layer, LAYERS[kind][1])}
            entry["target"] = node.target
        elif node.op == "call_function":
            name = _FUNCTION_NAMES.get(id(node.target))
            if name is None:
                raise ValueError(f"{where}: function {getattr(node.target, '__name__', node.target)!r} "
                                 f"is not one a compressed file holds ({', '.join(FUNCTIONS)})")
            entry["target"] = name
        elif node.op == "call_method":
            if node.target not in METHODS:
                raise ValueError(f"{where}: method .{node.target}() is not one a compressed file "
                                 f"holds ({', '.join(sorted(METHODS))})")
            entry["target"] = node.target
        elif node.op == "placeholder":
            entry["target"] = node.target
        elif node.op == "get_attr":
            raise ValueError(f"{where}: forward reads the tensor {node.target!r} directly; "
                             "only layers' own parameters and buffers can be stored")
        nodes.append(entry)
    return {"layers": layers, "nodes": nodes}


def build_layer(spec: dict, where: str) -> nn.Module:
    """One layer from its {"type", "config"}; only registered types."""
    kind = spec.get("type")
    if kind not in LAYERS:
        raise ValueError(f"{where}: layer type {kind!r} is not one a compressed file holds "
                         f"({', '.join(LAYERS)})")
    cls, fields = LAYERS[kind]
    config = spec.get("config", {})
    if set(config) != set(fields):
        raise ValueError(f"{where}: a {kind} needs the settings {', '.join(fields)}, "
                         f"the file gives {', '.join(config) or 'none'}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: cannot build a {kind} from {config} ({e})") from None


def rebuild(spec: dict) -> fx.GraphModule:
    """The model a `describe` result describes, with freshly initialized weights."""
    layers = {name: build_layer(s, f"layer {name!r}") for name, s in spec["layers"].items()}
    graph, env = fx.Graph(), {}
    for entry in spec["nodes"]:
        op, target, name = entry.get("op"), entry.get("target"), entry.get("name")
        args = _decode(entry.get("args", []), env)
        kwargs = {k: _decode(v, env) for k, v in entry.get("kwargs", {}).items()}
        if op == "placeholder":
            node = graph.placeholder(target)
        elif op == "call_module":
            if target not in layers:
                raise ValueError(f"architecture: call {name!r} uses layer {target!r}, which is not described")
            node = graph.call_module(target, tuple(args), kwargs)
        elif op == "call_function":
            if target not in FUNCTIONS:
                raise ValueError(f"architecture: function {target!r} is not allowed ({', '.join(FUNCTIONS)})")
            node = graph.call_function(FUNCTIONS[target], tuple(args), kwargs)
        elif op == "call_method":
            if target not in METHODS:
                raise ValueError(f"architecture: method {target!r} is not allowed")
            node = graph.call_method(target, tuple(args), kwargs)
        elif op == "output":
            node = graph.output(args[0])
        else:
            raise ValueError(f"architecture: unknown operation {op!r}")
        env[name] = node
    graph.lint()
    return fx.GraphModule(layers, graph, class_name="CompressedModel")
