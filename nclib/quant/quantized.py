"""Quantized models: BatchNorm folding, post-training quantization, quantization-aware training.

* Jacob et al., "Quantization and Training of Neural Networks for Efficient
  Integer-Arithmetic-Only Inference" (CVPR 2018). Section 3.2: BatchNorm folded into the
  convolution before it, w' = gamma * w / sqrt(var + eps) and
  b' = gamma * (b - mean) / sqrt(var + eps) + beta. Section 3: quantization-aware training
  (QAT) with fake quantization, activation ranges by exponential moving average (EMA).
* Krishnamoorthi, "Quantizing deep convolutional networks for efficient inference: A
  whitepaper" (arXiv 1806.08342, 2018): post-training quantization (PTQ) with min-max
  calibration on a few batches.

Every Conv2d and Linear of a model becomes the `QuantConv2d` / `QuantLinear` of
`nclib.quant.layers` (fake-quantized weight and input). The model still computes in
float, so its accuracy is the quantized model's; `int8_state_dict` gives the integers a
deployment stores, and `nclib.quant.int8` times real int8 kernels.

Simplification: `prepare_qat` folds BatchNorm first (by default), so QAT trains without BN.
Jacob et al. fold BN but keep using batch statistics during training; for the short
fine-tuning of the course, training the folded model directly is simpler and works.
"""
from __future__ import annotations

import copy
import itertools
from typing import Mapping

import torch
from torch import nn

from nclib.quant.layers import QUANT_LAYERS, ActivationQuantizer, QuantLayer
from nclib.quant.uniform import dequantize, qrange

__all__ = ["fold_batchnorm", "quantize_model", "prepare_qat", "int8_state_dict",
           "load_int8_state_dict"]


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule called `name` (like "features.1"), keeping the model's class."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


# ---------------------------------------------------------------- BatchNorm folding
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of `model` with every BatchNorm2d that directly follows a Conv2d folded into it.

    The pairs are found in the graph `torch.fx.symbolic_trace` records: a BN whose input
    is a conv's output, used by nothing else. The conv gets w' and b' (Jacob et al.,
    Section 3.2; a conv without bias gains one), the BN becomes nn.Identity, and the copy
    keeps the model's class and submodule names. Folding uses the running statistics, so
    eval-mode outputs are unchanged. `model` itself is never modified.
    """
    folded = copy.deepcopy(model)
    if not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules()):
        return folded
    try:
        graph = torch.fx.symbolic_trace(folded).graph
    except Exception as e:  # fx raises many kinds of errors on dynamic control flow
        raise TypeError(f"fold_batchnorm: torch.fx cannot trace {type(model).__name__} ({e}); "
                        "use fold_bn=False or fold by hand") from e
    modules = dict(folded.named_modules())
    calls = [n for n in graph.nodes if n.op == "call_module"]
    times_called = {t: sum(n.target == t for n in calls) for t in {n.target for n in calls}}
    for node in calls:
        bn, source = modules[node.target], node.args[0] if node.args else None
        if not (isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None
                and isinstance(source, torch.fx.Node) and source.op == "call_module"
                and isinstance(modules[source.target], nn.Conv2d) and len(source.users) == 1
                and times_called[source.target] == 1 and times_called[node.target] == 1):
            continue
        conv = modules[source.target]
        with torch.no_grad():
            factor = torch.rsqrt(bn.running_var + bn.eps)  # (O,) 1 / sqrt(var + eps)
            bias = -bn.running_mean if conv.bias is None else conv.bias - bn.running_mean
            if bn.affine:
                factor = bn.weight * factor  # gamma / sqrt(var + eps)
            bias = bias * factor + (bn.bias if bn.affine else 0)  # b' = gamma (b - mean)/sd + beta
            conv.weight = nn.Parameter(conv.weight * factor.view(-1, 1, 1, 1))  # w' = gamma w / sd
            conv.bias = nn.Parameter(bias)
        _set_module(folded, node.target, nn.Identity())
    return folded


# ---------------------------------------------------------------- whole models
def _quantized_copy(model, num_bits, per_channel, activations, fold_bn, observer, momentum=0.1):
    """A copy of `model` (BN folded) with every Linear and Conv2d replaced by its Quant* layer."""
    qmodel = fold_batchnorm(model) if fold_bn else copy.deepcopy(model)
    layers = {n: m for n, m in qmodel.named_modules() if type(m) in QUANT_LAYERS}
    if not layers:
        raise ValueError(f"model ({type(model).__name__}) has no quantizable layer "
                         "(Conv2d, Linear)")
    if isinstance(num_bits, Mapping):  # {layer name: bits}; layers not named stay float
        unknown = [n for n in num_bits if n not in layers]
        if unknown:
            raise ValueError(f"num_bits: no Conv2d or Linear named {unknown[0]!r}; the "
                             f"quantizable layers are {', '.join(map(repr, layers))}")
        bits = dict(num_bits)
    else:
        bits = dict.fromkeys(layers, num_bits)
    for name, b in bits.items():
        quant_cls = QUANT_LAYERS[type(layers[name])]
        _set_module(qmodel, name, quant_cls.from_float(layers[name], b, per_channel, activations,
                                                       observer, momentum))
    return qmodel


def _quantizers(model: nn.Module) -> list[ActivationQuantizer]:
    return [m for m in model.modules() if isinstance(m, ActivationQuantizer)]


def quantize_model(model: nn.Module, calib_loader, num_bits: int | Mapping[str, int] = 8,
                   per_channel: bool = False, activations: bool = True, num_batches: int = 8,
                   fold_bn: bool = True) -> nn.Module:
    """Post-training quantization: a quantized copy of `model`, calibrated, in eval mode.

    BN is folded first (`fold_batchnorm`), every Linear and Conv2d becomes its Quant*
    layer, and the input ranges are the min and max seen on the first `num_batches`
    batches ``(x, y)`` of `calib_loader` (the weights already quantized), then frozen.
    `num_bits` may be a dict {layer name: bits}; layers it does not name stay float.
    """
    if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
        raise ValueError(f"num_batches={num_batches!r}: expected a positive integer")
    qmodel = _quantized_copy(model, num_bits, per_channel, activations, fold_bn, "minmax").eval()
    if activations:
        param = next(qmodel.parameters())
        seen = 0
        with torch.no_grad():
            for batch in itertools.islice(calib_loader, num_batches):
                qmodel(batch[0].to(param.device, param.dtype))
                seen += 1
        if not seen:
            raise ValueError("calib_loader yielded no batches: calibration needs at least one")
    for quantizer in _quantizers(qmodel):
        quantizer.observer = "off"
    return qmodel


def prepare_qat(model: nn.Module, num_bits: int | Mapping[str, int] = 8,
                per_channel: bool = False, activations: bool = True, fold_bn: bool = True,
                momentum: float = 0.1) -> nn.Module:
    """Quantization-aware training: a copy of `model` with Quant* layers, in training mode.

    Train it with `nclib.train.fit` like any model: each forward quantizes the current
    weights; in training mode the input ranges follow an EMA (`momentum`), in eval mode
    they are frozen. BN is folded first by default: QAT then trains without BN (see the
    module docstring). The result is already the quantized model (`int8_state_dict`).
    """
    return _quantized_copy(model, num_bits, per_channel, activations, fold_bn, "ema",
                           momentum).train()


def _quant_layers(qmodel: nn.Module) -> dict[str, QuantLayer]:
    found = {n: m for n, m in qmodel.named_modules() if isinstance(m, QuantLayer)}
    if not found:
        raise ValueError(f"qmodel ({type(qmodel).__name__}) has no QuantLinear or QuantConv2d: "
                         "make it with quantize_model or prepare_qat")
    return found


def int8_state_dict(qmodel: nn.Module) -> dict[str, torch.Tensor]:
    """What a deployment of `qmodel` stores: integer weights, their scales, fp32 the rest.

    For each quantized layer NAME: ``NAME.weight`` (torch.int8 for up to 8 bits: fewer
    bits still take a byte each; int16 above 8), ``NAME.weight_scale`` (float32, 0-d or one
    per output channel), ``NAME.weight_zero_point`` (int32, zeros: symmetric),
    ``NAME.bias`` (fp32) and ``NAME.input_quantizer.scale`` / ``.zero_point``. Every other
    state_dict entry (float layers, BN not folded) is kept as it is.
    """
    layers = _quant_layers(qmodel)
    state = {k: v for k, v in qmodel.state_dict().items()
             if not any(k.startswith(f"{name}.") for name in layers)}
    for name, layer in layers.items():
        q, scale, zero_point = layer.integer_weight()
        state.update({f"{name}.weight": q, f"{name}.weight_scale": scale,
                      f"{name}.weight_zero_point": zero_point.to(torch.int32)})
        if layer.bias is not None:
            state[f"{name}.bias"] = layer.bias.detach().float()
        quantizer = layer.input_quantizer
        if quantizer is not None:
            state[f"{name}.input_quantizer.scale"] = quantizer.scale.clone()
            state[f"{name}.input_quantizer.zero_point"] = quantizer.zero_point.to(torch.int32)
    return state


def load_int8_state_dict(qmodel: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load `int8_state_dict`'s output into a quantized model of the same structure, in place.

    Weights become ``scale * (q - zero_point)``: quantizing them again gives the same q.
    """
    layers = _quant_layers(qmodel)
    rest = {k: v for k, v in state.items() if not any(k.startswith(f"{n}.") for n in layers)}
    qmodel.load_state_dict(rest, strict=False)
    with torch.no_grad():
        for name, layer in layers.items():
            axis = 0 if layer.per_channel else None
            w = dequantize(state[f"{name}.weight"], state[f"{name}.weight_scale"],
                           state[f"{name}.weight_zero_point"], axis=axis)
            layer.weight.copy_(w)
            if layer.bias is not None:
                layer.bias.copy_(state[f"{name}.bias"])
            quantizer = layer.input_quantizer
            if quantizer is not None:  # the range that gives back this scale and zero point
                scale = state[f"{name}.input_quantizer.scale"]
                zp = state[f"{name}.input_quantizer.zero_point"]
                qmin, qmax = qrange(quantizer.num_bits, quantizer.signed)
                quantizer.set_range((qmin - zp) * scale, (qmax - zp) * scale)
                quantizer.scale.copy_(scale)
                quantizer.zero_point.copy_(zp)
    return qmodel
