"""Binary weights and binary activations: BinaryConnect, Binarized Neural Networks, XNOR-Net.

* Courbariaux, Bengio and David, "BinaryConnect: Training Deep Neural Networks with binary
  weights during propagations" (NIPS 2015). The forward and backward passes use binary
  weights w_b = sign(w) (deterministic) or w_b = +1 with probability
  hard_sigmoid(w) = clip((w + 1) / 2, 0, 1), else -1 (stochastic). The optimizer updates
  the real-valued *latent* weights w, which are clipped to [-1, 1] after every step
  (`clip_latent`): outside that range a weight would keep growing without ever changing
  its sign.
* Hubara, Courbariaux, Soudry, El-Yaniv and Bengio, "Binarized Neural Networks" (arXiv
  1602.02830, NIPS 2016): activations are binarized too. The derivative of sign is 0
  everywhere (and undefined at 0), so no gradient would reach the earlier layers. The
  straight-through estimator passes the gradient through sign as if it were the identity,
  and cancels it where |x| > 1: the gradient of hard tanh, clip(x, -1, 1) (`sign_ste`).
* Rastegari, Ordonez, Redmon and Farhadi, "XNOR-Net" (ECCV 2016): a binary weight filter
  is scaled by alpha = mean |W| of that output channel, the L1 norm over n, which
  minimises ||W - alpha * sign(W)||^2 (binary-weight networks, BWN). XNOR layers binarize
  their input as well and scale each output by beta = the mean |x| of the values it reads
  (for a Linear, one beta per input row; for a convolution, one per receptive field).

Conventions here: sign(0) = +1 everywhere (the packed kernels of `nclib.quant.bitpack` use
the same). A convolution that binarizes its input pads it with zeros first and then takes
the sign, so padded positions are +1: that is what a packed kernel can compute (a bit has
no 0). In eval mode every binarized layer uses sign(w), deterministic, also when it was
trained stochastically, so the trained model is really binary and can be packed
(BinaryConnect's paper also reports the stochastic nets with their real-valued weights).

`BinarizedLinear` and `BinarizedConv2d` are nn.Linear and nn.Conv2d (subclasses, the same
weights), so a trained float model converts with `binarize_layers` and `fit` trains them
(pass ``step_hook=clip_hook`` to clip the latent weights). `to_packed` turns a trained
model's XNOR layers into `bitpack.BinaryLinear` / `BinaryConv2d`, which compute with
xnor and popcount; `binary_bytes` counts a model's bytes with its binary weights packed.
"""
from __future__ import annotations

import copy
from typing import Iterable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from nclib.quant import bitpack

__all__ = ["MODES", "sign", "sign_ste", "hard_sigmoid", "binarize", "alpha", "BinarizedLinear",
           "BinarizedConv2d", "BINARIZED", "WEIGHTS", "ternarize", "clip_latent", "clip_hook", "binarize_layers",
           "to_packed", "binary_bytes"]

MODES = ("det", "stochastic")
WEIGHTS = (*MODES, "ternary")
TERNARY_THRESHOLD = 0.7  # Li and Liu's Delta = 0.7 * mean |W|


def sign(x: torch.Tensor) -> torch.Tensor:
    """+1 where x >= 0, -1 where x < 0 (so sign(0) = +1), in x's dtype."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """clip((x + 1) / 2, 0, 1): BinaryConnect's probability that a weight binarizes to +1."""
    return ((x + 1) / 2).clamp(0, 1)


class _SignSTE(torch.autograd.Function):
    """sign forward; backward: the gradient of hard tanh, 1 where |x| <= 1, else 0."""

    @staticmethod
    def forward(ctx, x, binary):
        ctx.save_for_backward(x)
        return binary

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype), None


def _check_floating(x, where: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: x is a {type(x).__name__}; expected a torch.Tensor")
    if not x.is_floating_point():
        raise TypeError(f"{where}: x has dtype {x.dtype}; expected a floating tensor")


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """sign(x) in the forward pass; in the backward pass the gradient passes where |x| <= 1.

    Example:
        >>> x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
        >>> sign_ste(x).sum().backward(); x.grad
        tensor([0., 1., 1., 1., 0.])
    """
    _check_floating(x, "sign_ste(x)")
    return _SignSTE.apply(x, sign(x.detach()))


def binarize(x: torch.Tensor, mode: Literal["det", "stochastic"] = "det",
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary values of x in {-1, +1}, with the straight-through gradient of `sign_ste`.

    mode "det": sign(x). mode "stochastic": +1 with probability hard_sigmoid(x), else -1,
    drawn from `generator` (required, so that a draw can be repeated: pass a
    ``torch.Generator().manual_seed(s)`` on x's device).
    """
    _check_floating(x, "binarize(x)")
    if mode not in MODES:
        raise ValueError(f"binarize(mode={mode!r}): expected one of {', '.join(map(repr, MODES))}")
    if mode == "det":
        return sign_ste(x)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"binarize(mode='stochastic'): generator={generator!r}; expected a "
                         "torch.Generator (e.g. torch.Generator().manual_seed(0)), so that the "
                         "random binarization can be reproduced")
    p = hard_sigmoid(x.detach())
    u = torch.rand(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
    return _SignSTE.apply(x, torch.where(u < p, 1.0, -1.0).to(x.dtype))


def ternarize(weight: torch.Tensor, threshold: float = TERNARY_THRESHOLD) -> torch.Tensor:
    """Ternary weights alpha * {-1, 0, +1} per output channel (Li and Liu, "Ternary Weight
    Networks", arXiv 1605.04711): zero where |w| <= Delta = threshold * mean |w|, alpha the
    mean |w| of the rest; the gradient passes straight through to the latent weights.

    2 bits per weight (3 levels) and one fp32 alpha per output channel.
    """
    _check_floating(weight, "ternarize(weight)")
    dims = tuple(range(1, weight.dim()))
    w = weight.detach()
    keep = w.abs() > threshold * w.abs().mean(dim=dims, keepdim=True)
    scale = (w.abs() * keep).sum(dim=dims, keepdim=True) / keep.sum(dim=dims, keepdim=True).clamp(min=1)
    t = torch.where(keep, scale * sign(w), torch.zeros_like(w))
    return weight + (t - weight).detach()


def alpha(weight: torch.Tensor) -> torch.Tensor:
    """XNOR-Net's scale per output channel: mean |W| over everything but dim 0, shape (O, 1, ...)."""
    return weight.abs().mean(dim=tuple(range(1, weight.dim())), keepdim=True)


class _Binarized:
    """What BinarizedLinear and BinarizedConv2d share: their options and the binary weight."""

    def _setup(self, weights: str, scale: bool, activations: bool, input_scale: bool, seed: int):
        if weights not in WEIGHTS:
            raise ValueError(f"weights={weights!r}: expected one of {', '.join(map(repr, WEIGHTS))}")
        if input_scale and not activations:
            raise ValueError("input_scale=True scales binarized inputs: it needs activations=True")
        self.weights, self.scale, self.activations, self.input_scale = weights, scale, activations, input_scale
        self.seed = seed
        self._generator = None

    def binary_weight(self) -> torch.Tensor:
        """The weight the forward pass uses: sign(w) or a stochastic draw, times alpha if scaled."""
        w = self.weight
        if self.weights == "ternary":
            return ternarize(w)  # scaled already
        if self.training and self.weights == "stochastic":
            if self._generator is None or self._generator.device != w.device:
                self._generator = torch.Generator(device=w.device).manual_seed(self.seed)
            wb = binarize(w, "stochastic", self._generator)
        else:
            wb = sign_ste(w)
        return wb * alpha(w) if self.scale else wb

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", weights={self.weights!r}, scale={self.scale}, "
                f"activations={self.activations}, input_scale={self.input_scale}")


class BinarizedLinear(_Binarized, nn.Linear):
    """nn.Linear with binary weights (BinaryConnect), optionally scaled (BWN), optionally
    with binary inputs (BNN) scaled by beta = mean |x| per row (XNOR).

    Shape: (B, in_features) -> (B, out_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 weights: Literal["det", "stochastic"] = "det", scale: bool = False,
                 activations: bool = False, input_scale: bool = False, seed: int = 0):
        super().__init__(in_features, out_features, bias)
        self._setup(weights, scale, activations, input_scale, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.activations:
            return F.linear(x, self.binary_weight(), self.bias)
        y = F.linear(sign_ste(x), self.binary_weight())
        if self.input_scale:
            y = y * x.abs().mean(dim=-1, keepdim=True)  # (B, 1)
        return y if self.bias is None else y + self.bias


class BinarizedConv2d(_Binarized, nn.Conv2d):
    """nn.Conv2d with binary weights, optionally scaled, optionally binary inputs (zero-padded,
    then binarized: padded positions are +1) scaled by the mean |x| of each receptive field.

    Only groups=1 and dilation=1 with integer padding (the packed kernel's cases).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, *, weights: Literal["det", "stochastic"] = "det",
                 scale: bool = False, activations: bool = False, input_scale: bool = False,
                 seed: int = 0):
        if isinstance(padding, str):
            raise ValueError(f"padding={padding!r}: expected an int or a pair of ints")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self._setup(weights, scale, activations, input_scale, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.binary_weight()
        if not self.activations:
            return F.conv2d(x, w, self.bias, self.stride, self.padding)
        ph, pw = self.padding
        xp = F.pad(x, [pw, pw, ph, ph])  # zeros, which sign makes +1
        y = F.conv2d(sign_ste(xp), w, None, self.stride)
        if self.input_scale:  # mean |x| over each receptive field: XNOR-Net's K
            box = torch.ones(1, *w.shape[1:], device=x.device, dtype=x.dtype) / w[0].numel()
            y = y * F.conv2d(xp.abs(), box, None, self.stride)
        return y if self.bias is None else y + self.bias[:, None, None]


BINARIZED = (BinarizedLinear, BinarizedConv2d)


@torch.no_grad()
def clip_latent(model: nn.Module) -> nn.Module:
    """Clip the latent weights of every binarized layer to [-1, 1] (in place; returns model)."""
    for m in model.modules():
        if isinstance(m, BINARIZED):
            m.weight.clamp_(-1, 1)
    return model


def clip_hook(model: nn.Module, step: int) -> None:
    """`clip_latent` as `nclib.train.fit`'s ``step_hook``: clip after every optimizer step."""
    clip_latent(model)


def binarize_layers(model: nn.Module, names: Iterable[str], **options) -> nn.Module:
    """A copy of `model` whose named Linear / Conv2d layers are binarized (weights copied).

    `options` are BinarizedLinear's (weights, scale, activations, input_scale, seed). The
    latent weights are clipped to [-1, 1]. Unknown names, or names of other layer types,
    raise ValueError listing the layers that can be binarized.
    """
    names = list(dict.fromkeys(names))
    new = copy.deepcopy(model)
    layers = {n: m for n, m in new.named_modules() if type(m) in (nn.Linear, nn.Conv2d, *BINARIZED)}
    unknown = [n for n in names if n not in layers]
    if unknown:
        raise ValueError(f"binarize_layers: names {unknown} are not Linear or Conv2d layers of the "
                         f"model; expected some of {sorted(layers)}")
    for n in names:
        old = layers[n]
        if isinstance(old, nn.Linear):
            b = BinarizedLinear(old.in_features, old.out_features, old.bias is not None, **options)
        else:
            if old.groups != 1 or old.dilation != (1, 1):
                raise ValueError(f"binarize_layers: {n!r} has groups={old.groups}, dilation="
                                 f"{old.dilation}; only groups=1, dilation=1 can be binarized")
            b = BinarizedConv2d(old.in_channels, old.out_channels, old.kernel_size, old.stride,
                                old.padding, old.bias is not None, **options)
        b.load_state_dict(old.state_dict())
        b.to(old.weight.device).train(old.training)
        parent, _, attr = n.rpartition(".")
        setattr(new.get_submodule(parent) if parent else new, attr, b)
    return clip_latent(new)


def to_packed(model: nn.Module) -> nn.Module:
    """A copy of `model` for inference, each binarized layer with binary inputs replaced by a
    `bitpack.BinaryLinear` / `BinaryConv2d` (xnor and popcount on packed words).

    Layers with real-valued inputs (a first layer) keep their float forward, with sign(w)."""
    new = copy.deepcopy(model).eval().cpu()
    for name, m in list(new.named_modules()):
        if not (isinstance(m, BINARIZED) and m.activations):
            continue
        w = sign(m.weight.detach())
        a = alpha(m.weight.detach()).flatten() if m.scale else None
        b = None if m.bias is None else m.bias.detach()
        if isinstance(m, BinarizedLinear):
            packed = bitpack.BinaryLinear(w, b, a, input_scale=m.input_scale)
        else:
            packed = bitpack.BinaryConv2d(w, b, a, m.stride, m.padding, input_scale=m.input_scale)
        parent, _, attr = name.rpartition(".")
        setattr(new.get_submodule(parent) if parent else new, attr, packed)
    return new


def binary_bytes(model: nn.Module) -> int:
    """Bytes of `model` with each binarized weight stored as 1 bit, packed in 64-bit words
    per output channel, and everything else (biases, alpha, BatchNorm, float layers) fp32.
    A model after `to_packed` counts the same: its packed layers by `bitpack.packed_bytes`."""
    total = 0
    for m in model.modules():
        if isinstance(m, (bitpack.BinaryLinear, bitpack.BinaryConv2d)):  # already packed (to_packed)
            total += bitpack.packed_bytes(m)
            continue
        own = list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False))
        for pname, t in own:
            if pname == "num_batches_tracked":
                continue
            if isinstance(m, BINARIZED) and pname == "weight":
                bits = 2 if m.weights == "ternary" else 1
                total += t.shape[0] * -(-bits * t[0].numel() // 64) * 8
                total += 4 * t.shape[0] if m.scale or m.weights == "ternary" else 0  # alpha
            else:
                total += 4 * t.numel()
    return total
