"""The layers of uniform quantization: fake-quantized Linear and Conv2d and their input quantizer.

* Jacob et al., "Quantization and Training of Neural Networks for Efficient
  Integer-Arithmetic-Only Inference" (CVPR 2018), Section 3: simulated ("fake")
  quantization in the forward pass. Weights are quantized from their current values at
  every forward, activations with a range that is calibrated (PTQ) or tracked by an
  exponential moving average (QAT); gradients pass straight through (`fake_quantize`).
* Krishnamoorthi, "Quantizing deep convolutional networks for efficient inference: A
  whitepaper" (arXiv 1806.08342, 2018): per-channel weight scales.

`QuantLinear` and `QuantConv2d` are nn.Linear and nn.Conv2d (subclasses, same forward
signature) whose weight is fake-quantized (signed, symmetric, per tensor or per output
channel) and whose INPUT is fake-quantized by an `ActivationQuantizer` (unsigned,
asymmetric). Biases stay fp32 (Jacob et al. store them as int32 of scale s_w * s_x; fp32
changes nothing we measure). `nclib.quant.quantized` builds whole models from them.

Rebuilding a layer (e.g. from a file): ``layer_from_config(layer.config())`` builds the
empty layer from {"class": "QuantLinear" | "QuantConv2d", "kwargs": constructor kwargs},
frozen (observer "off"); then ``load_state_dict`` with the tensors ``weight``, ``bias``
(if kwargs["bias"]) and, if kwargs["activations"], ``input_quantizer.scale``,
``.zero_point``, ``.min_val`` and ``.max_val``.
"""
from __future__ import annotations

from typing import Literal, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from nclib.quant.uniform import calibrate, fake_quantize, qrange, quantize, scale_from_range

__all__ = ["OBSERVERS", "ActivationQuantizer", "QuantLayer", "QuantLinear", "QuantConv2d", "QUANT_FIELDS",
           "QUANT_LAYERS", "layer_from_config"]

OBSERVERS = ("off", "minmax", "ema")


class ActivationQuantizer(nn.Module):
    """Fake-quantizes a tensor (a layer's input) with a range it observed.

    `observer` says how the range [min_val, max_val] is kept:
    * "minmax" (PTQ calibration): the smallest and largest value of every batch seen;
      x passes through unchanged, so later layers calibrate on float activations.
    * "ema" (QAT): in training mode, min_val <- (1 - momentum) * min_val + momentum *
      min(x) (the first batch sets it), the same for max_val, then x is fake-quantized
      with the new range. momentum 0.1 (BatchNorm's convention) follows the changing
      activations of a short QAT run within a few dozen steps. In eval mode: frozen.
    * "off": frozen, fake-quantizes with the stored `scale` and `zero_point`.
    Until it has observed a batch the quantizer passes x through. Its state is in buffers
    (scale, zero_point, and min_val / max_val, +inf / -inf before any batch), so
    state_dict round-trips.
    """

    def __init__(self, num_bits: int = 8, signed: bool = False,
                 observer: Literal["off", "minmax", "ema"] = "off", momentum: float = 0.1):
        super().__init__()
        qrange(num_bits, signed)
        if observer not in OBSERVERS:
            raise ValueError(f"observer={observer!r}: expected one of "
                             f"{', '.join(map(repr, OBSERVERS))}")
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum={momentum!r}: expected a number in (0, 1]")
        self.num_bits, self.signed = num_bits, signed
        self.observer, self.momentum = observer, momentum
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("zero_point", torch.tensor(0))
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    def extra_repr(self) -> str:
        return f"num_bits={self.num_bits}, signed={self.signed}, observer={self.observer!r}"

    def observed(self) -> bool:
        return bool(self.min_val <= self.max_val)

    def set_range(self, min_val, max_val) -> None:
        """Store the range [min_val, max_val] and the scale and zero point that map it."""
        self.min_val.copy_(torch.as_tensor(min_val))
        self.max_val.copy_(torch.as_tensor(max_val))
        scale, zero_point = scale_from_range(self.min_val, self.max_val, self.num_bits,
                                             self.signed)
        self.scale.copy_(scale)
        self.zero_point.copy_(zero_point)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observer == "minmax":
            lo, hi = x.detach().min(), x.detach().max()
            self.set_range(torch.minimum(self.min_val, lo), torch.maximum(self.max_val, hi))
            return x
        if self.observer == "ema" and self.training:
            lo, hi = x.detach().min(), x.detach().max()
            if self.observed():
                lo = (1 - self.momentum) * self.min_val + self.momentum * lo
                hi = (1 - self.momentum) * self.max_val + self.momentum * hi
            self.set_range(lo, hi)
        if not self.observed():
            return x
        return fake_quantize(x, self.scale, self.zero_point, self.num_bits, self.signed)


class QuantLayer:
    """What QuantLinear and QuantConv2d share: the weight and input quantizers, config()."""

    def _setup(self, num_bits: int, per_channel: bool, activations: bool,
               observer: str, momentum: float) -> None:
        qrange(num_bits, signed=True)  # weights are signed: at least 2 bits
        self.num_bits = num_bits
        self.per_channel, self.activations = bool(per_channel), bool(activations)
        self.input_quantizer = (ActivationQuantizer(num_bits, False, observer, momentum)
                                if activations else None)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, num_bits={self.num_bits}, "
                f"per_channel={self.per_channel}")

    def weight_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero_point) of the weight now: symmetric, signed, per output channel or not."""
        return calibrate(self.weight, self.num_bits, signed=True, symmetric=True,
                         axis=0 if self.per_channel else None)

    def quantized_weight(self) -> torch.Tensor:
        """The fake-quantized weight (straight-through gradient to `weight`)."""
        scale, zero_point = self.weight_qparams()
        return fake_quantize(self.weight, scale, zero_point, self.num_bits, signed=True,
                             axis=0 if self.per_channel else None)

    def integer_weight(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(q, scale, zero_point): the weight's integers (int8 up to 8 bits) and their map."""
        scale, zero_point = self.weight_qparams()
        q = quantize(self.weight.detach(), scale, zero_point, self.num_bits, signed=True,
                     axis=0 if self.per_channel else None)
        return q, scale, zero_point

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.input_quantizer is None else self.input_quantizer(x)

    def config(self) -> dict:
        """{"class": name, "kwargs": constructor kwargs}, JSON-ready (see the module docstring)."""
        return {"class": type(self).__name__,
                "kwargs": {**_float_kwargs(self), "num_bits": self.num_bits,
                           "per_channel": self.per_channel, "activations": self.activations}}

    @classmethod
    def from_float(cls, layer: nn.Module, num_bits: int = 8, per_channel: bool = False,
                   activations: bool = True, observer: str = "off", momentum: float = 0.1):
        """The quantized version of a Linear / Conv2d, with its weight and bias copied."""
        q = cls(**_float_kwargs(layer), num_bits=num_bits, per_channel=per_channel,
                activations=activations, observer=observer, momentum=momentum,
                device=layer.weight.device, dtype=layer.weight.dtype)
        with torch.no_grad():
            q.weight.copy_(layer.weight)
            if layer.bias is not None:
                q.bias.copy_(layer.bias)
        return q


class QuantLinear(QuantLayer, nn.Linear):
    """nn.Linear with fake-quantized weight and input; same forward signature."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, num_bits: int = 8,
                 per_channel: bool = False, activations: bool = True,
                 observer: Literal["off", "minmax", "ema"] = "off", momentum: float = 0.1,
                 device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self._setup(num_bits, per_channel, activations, observer, momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.quantize_input(x), self.quantized_weight(), self.bias)  # (B, O)


class QuantConv2d(QuantLayer, nn.Conv2d):
    """nn.Conv2d with fake-quantized weight and input; same forward signature."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 num_bits: int = 8, per_channel: bool = False, activations: bool = True,
                 observer: Literal["off", "minmax", "ema"] = "off", momentum: float = 0.1,
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device=device, dtype=dtype)
        self._setup(num_bits, per_channel, activations, observer, momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.quantize_input(x), self.quantized_weight(), self.bias)


QUANT_LAYERS = {nn.Linear: QuantLinear, nn.Conv2d: QuantConv2d}
QUANT_FIELDS = ("num_bits", "per_channel", "activations")  # constructor kwargs beyond the float layer's


def _float_kwargs(layer: nn.Module) -> dict:
    """The constructor kwargs of a Linear / Conv2d (JSON-ready: tuples become lists)."""
    if isinstance(layer, nn.Linear):
        return {"in_features": layer.in_features, "out_features": layer.out_features,
                "bias": layer.bias is not None}
    padding = layer.padding if isinstance(layer.padding, str) else list(layer.padding)
    return {"in_channels": layer.in_channels, "out_channels": layer.out_channels,
            "kernel_size": list(layer.kernel_size), "stride": list(layer.stride),
            "padding": padding, "dilation": list(layer.dilation), "groups": layer.groups,
            "bias": layer.bias is not None, "padding_mode": layer.padding_mode}


def layer_from_config(config: Mapping) -> nn.Module:
    """An empty QuantLinear / QuantConv2d from `layer.config()`; load its state_dict next."""
    classes = {cls.__name__: cls for cls in QUANT_LAYERS.values()}
    if config.get("class") not in classes:
        raise ValueError(f"config['class']={config.get('class')!r}: expected one of "
                         f"{', '.join(map(repr, classes))}")
    return classes[config["class"]](**config["kwargs"])
