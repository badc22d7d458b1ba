"""Uniform (affine) quantization of tensors: quantize, dequantize, fake quantization, calibration.

* Jacob et al., "Quantization and Training of Neural Networks for Efficient
  Integer-Arithmetic-Only Inference" (CVPR 2018), Eq. 1, the affine map between a real
  value x and an integer q of `num_bits` bits:

      x ≈ scale * (q - zero_point),   q = clamp(round(x / scale) + zero_point, qmin, qmax)

  `scale` is a positive real (the step between two levels) and `zero_point` is an integer
  in [qmin, qmax]: the level that stands for the real 0.0. Zero must be exact because it
  is everywhere: zero padding of a convolution, every ReLU output below 0, pruned weights.
  Were 0.0 stored as, say, 0.004, every padded border and every inactive unit would add a
  bias that no later layer knows about (Jacob et al., Section 2.1).
* The straight-through estimator (Bengio, Léonard and Courville, "Estimating or
  Propagating Gradients Through Stochastic Neurons for Conditional Computation", 2013):
  round() has gradient 0 almost everywhere, so training through `fake_quantize` uses
  gradient 1 instead, wherever the value was not clamped (and 0 where it was).

Integer ranges (`qrange`): unsigned [0, 2^b - 1], signed [-2^(b-1), 2^(b-1) - 1]. Per
tensor (``axis=None``) one scale and zero point serve the whole tensor; per channel
(``axis=k``) each slice along dimension k has its own (1-D `scale` and `zero_point` of
length ``x.shape[k]``), which suits weights whose output channels have very different
ranges. Rounding is torch's: half to even.
"""
from __future__ import annotations

from typing import Literal

import torch

__all__ = ["CALIBRATION_METHODS", "qrange", "storage_dtype", "quantize", "dequantize",
           "fake_quantize", "scale_from_range", "calibrate"]

CALIBRATION_METHODS = ("minmax", "percentile")
# The smallest scale: a tensor of zeros would give scale 0 (and a division by 0); any
# positive scale represents it exactly. float32's machine epsilon, as torch's observers use.
MIN_SCALE = torch.finfo(torch.float32).eps


def qrange(num_bits: int, signed: bool = False) -> tuple[int, int]:
    """(qmin, qmax) of `num_bits`-bit integers: [0, 2^b - 1] or, signed, [-2^(b-1), 2^(b-1) - 1].

    Signed needs at least 2 bits: 1 signed bit would give [-1, 0], no positive level at
    all (1-bit sign quantization, x -> ±1, is `nclib.quant.binary`'s).

    Example:
        >>> qrange(8), qrange(8, signed=True), qrange(4, signed=True)
        ((0, 255), (-128, 127), (-8, 7))
    """
    if isinstance(num_bits, bool) or not isinstance(num_bits, int) or not 1 <= num_bits <= 16:
        raise ValueError(f"num_bits={num_bits!r}: expected an integer from 1 to 16")
    if signed and num_bits < 2:
        raise ValueError("num_bits=1 with signed=True: a signed range needs at least 2 bits "
                         "([-1, 0] has no positive level); use signed=False or num_bits >= 2")
    if signed:
        return -(2 ** (num_bits - 1)), 2 ** (num_bits - 1) - 1
    return 0, 2 ** num_bits - 1


def storage_dtype(num_bits: int, signed: bool = False) -> torch.dtype:
    """The smallest torch integer dtype holding `qrange(num_bits, signed)`.

    int8 / uint8 up to 8 bits (a 4-bit value still takes a whole byte: packing two per
    byte is a storage format's job), int16 for signed up to 16 bits, int32 for unsigned
    9-16 bits (torch has no general-purpose uint16).
    """
    qrange(num_bits, signed)
    if num_bits <= 8:
        return torch.int8 if signed else torch.uint8
    return torch.int16 if signed else torch.int32


def _broadcast(value, x: torch.Tensor, axis: int | None, name: str, dtype) -> torch.Tensor:
    """`value` as a tensor that broadcasts against `x`: 0-d, or (1, .., C, .., 1) per channel."""
    t = torch.as_tensor(value, dtype=dtype, device=x.device)
    if axis is None:
        if t.numel() != 1:
            raise ValueError(f"{name} has shape {tuple(t.shape)}: with axis=None (per tensor) "
                             "expected one number; give axis=k for one per channel")
        return t.reshape(())
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis!r}: expected None or a dimension of x, "
                         f"from {-x.ndim} to {x.ndim - 1}")
    channels = x.shape[axis]
    if t.ndim != 1 or t.numel() != channels:
        raise ValueError(f"{name} has shape {tuple(t.shape)}: with axis={axis} expected "
                         f"one value per channel, shape ({channels},)")
    shape = [1] * x.ndim
    shape[axis] = channels
    return t.view(shape)


def _check_qparams(x, scale, zero_point, num_bits, signed, axis):
    """Validated (scale, zero_point, qmin, qmax), shaped to broadcast against `x`."""
    qmin, qmax = qrange(num_bits, signed)
    scale = _broadcast(scale, x, axis, "scale", torch.float32)
    if not bool(torch.all(torch.isfinite(scale) & (scale > 0))):
        raise ValueError(f"scale={scale.flatten().tolist()}: expected positive finite numbers "
                         "(the real step between two integer levels)")
    zp = torch.as_tensor(zero_point, device=x.device)
    if zp.is_floating_point() and not bool(torch.all(zp == zp.round())):
        raise ValueError(f"zero_point={zp.flatten().tolist()}: expected integers")
    zp = _broadcast(zp, x, axis, "zero_point", torch.int64)
    if not bool(torch.all((qmin <= zp) & (zp <= qmax))):
        raise ValueError(f"zero_point={zp.flatten().tolist()}: expected integers in "
                         f"[{qmin}, {qmax}] (the {num_bits}-bit range), so 0.0 is a level")
    return scale, zp, qmin, qmax


def _rounded(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    """round(x / scale) + zero_point, before clamping, in float32.

    Computed as x * (1 / scale), as torch's fake-quant kernels do: the two forms differ in
    the last bit of float32 for some scales, which moves values that lie on a tie (k + 0.5
    steps) to the other level. This form matches torch exactly (tests/test_quant_uniform.py).
    """
    inv_scale = 1.0 / scale  # float32, like torch's `1.0f / scale`
    return torch.round(x.float() * inv_scale) + zero_point  # round half to even


def quantize(x: torch.Tensor, scale, zero_point, num_bits: int = 8, signed: bool = False,
             axis: int | None = None) -> torch.Tensor:
    """q = clamp(round(x / scale) + zero_point, qmin, qmax) (Jacob et al., Eq. 1 inverted).

    Returns an integer tensor of `storage_dtype(num_bits, signed)`, same shape as `x`.

    Example:
        >>> quantize(torch.tensor([-0.3, 0.0, 0.25, 30.0]), 0.1, 3)  # 0.25 / 0.1 = 2.5 -> 2
        tensor([  0,   3,   5, 255], dtype=torch.uint8)
    """
    scale, zp, qmin, qmax = _check_qparams(x, scale, zero_point, num_bits, signed, axis)
    q = torch.clamp(_rounded(x, scale, zp), qmin, qmax)
    return q.to(storage_dtype(num_bits, signed))


def dequantize(q: torch.Tensor, scale, zero_point, axis: int | None = None) -> torch.Tensor:
    """x ≈ scale * (q - zero_point) (Jacob et al., Eq. 1), as float32."""
    scale = _broadcast(scale, q, axis, "scale", torch.float32)
    zp = _broadcast(zero_point, q, axis, "zero_point", torch.int64)
    return (q.to(torch.int64) - zp).float() * scale  # int64 first: uint8 - zp would wrap


class _FakeQuantize(torch.autograd.Function):
    """dequantize(quantize(x)) forward; the straight-through gradient backward."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        q = _rounded(x, scale, zero_point)
        inside = (q >= qmin) & (q <= qmax)  # not clamped: torch's mask is the same
        ctx.save_for_backward(inside)
        return ((torch.clamp(q, qmin, qmax) - zero_point) * scale).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None  # STE: d out / d x = 1 where not clamped


def fake_quantize(x: torch.Tensor, scale, zero_point, num_bits: int = 8, signed: bool = False,
                  axis: int | None = None) -> torch.Tensor:
    """The float value `x` would have after quantize and dequantize, with the STE gradient.

    Values equal `torch.fake_quantize_per_tensor_affine` (``axis=None``) and
    `torch.fake_quantize_per_channel_affine` (``axis=k``) with the same range; so do the
    gradients with respect to `x`. `scale` and `zero_point` get no gradient (they are
    computed from the data, not learned).
    """
    scale, zp, qmin, qmax = _check_qparams(x, scale, zero_point, num_bits, signed, axis)
    return _FakeQuantize.apply(x, scale, zp, qmin, qmax)


def scale_from_range(min_val, max_val, num_bits: int = 8, signed: bool = False,
                     symmetric: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero_point) that map the real range [min_val, max_val] onto the integers.

    * asymmetric: the range is widened to hold 0, [lo, hi] = [min(min_val, 0),
      max(max_val, 0)], and ``scale = (hi - lo) / (qmax - qmin)``; the zero point
      ``qmin - round(lo / scale)`` is an integer, so 0.0 is exactly a level (as torch's
      MinMaxObserver).
    * symmetric: ``scale = max(|min_val|, |max_val|) / (2^(b-1) - 1)``, zero point 0
      (signed) or 2^(b-1) (unsigned): -max..max maps exactly onto -127..127 at 8 bits and
      the level -128 is unused ("restricted range", so that -x is always representable
      when x is). Torch's observers divide by 127.5 instead, which clips max|x| by half
      a step.
    Every scale is at least float32's eps, so an all-zero range gives no division by zero.
    Element-wise: tensors of min/max per channel give per-channel scales.
    """
    qmin, qmax = qrange(num_bits, signed)
    lo = torch.clamp(torch.as_tensor(min_val, dtype=torch.float32), max=0.0)
    hi = torch.clamp(torch.as_tensor(max_val, dtype=torch.float32), min=0.0)
    if symmetric:
        half = (qmax - qmin) // 2  # 2^(b-1) - 1 levels on each side of zero
        if half == 0:
            raise ValueError("symmetric=True with num_bits=1: one bit has no level on "
                             "either side of zero; use symmetric=False or num_bits >= 2")
        scale = torch.clamp(torch.maximum(-lo, hi) / half, min=MIN_SCALE)
        zero_point = torch.full_like(scale, qmin + half + 1, dtype=torch.int64)
        return scale, zero_point
    scale = torch.clamp((hi - lo) / (qmax - qmin), min=MIN_SCALE)
    zero_point = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax).to(torch.int64)
    return scale, zero_point


def calibrate(x: torch.Tensor, num_bits: int = 8, signed: bool = False, symmetric: bool = False,
              method: Literal["minmax", "percentile"] = "minmax", percentile: float = 99.99,
              axis: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero_point) for `x`, from its range (see `scale_from_range`).

    Args:
        method: "minmax" uses min(x) and max(x): nothing is clipped, but one outlier
            stretches every step. "percentile" clips the outliers: asymmetric ranges use
            the `percentile` and 100 - `percentile` percentiles of x (both tails), symmetric
            ones the `percentile` percentile of |x| (``torch.quantile``, linear
            interpolation; at most 2^24 values per channel).
        axis: None for one (scale, zero_point) for the whole tensor (0-d tensors), or a
            dimension k for one per slice along it (1-D tensors of length x.shape[k]).

    Returns:
        scale (float32) and zero_point (int64) tensors.

    Example:
        >>> calibrate(torch.tensor([-1.0, 0.5, 3.0]))  # 4 / 255, and -1.0 -> level 0
        (tensor(0.0157), tensor(64))
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method={method!r}: expected one of "
                         f"{', '.join(map(repr, CALIBRATION_METHODS))}")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) \
            or not 50 < percentile <= 100:
        raise ValueError(f"percentile={percentile!r}: expected a number in (50, 100]")
    if x.numel() == 0:
        raise ValueError("x is empty: calibration needs at least one value")
    x = x.detach().float()
    if axis is None:
        values = x.reshape(1, -1)  # (1, N)
    else:
        _broadcast(torch.ones(x.shape[axis]), x, axis, "scale", torch.float32)  # checks axis
        values = x.movedim(axis, 0).reshape(x.shape[axis], -1)  # (C, N)
    if method == "minmax":
        lo, hi = values.amin(dim=1), values.amax(dim=1)  # (C,)
    elif symmetric:
        hi = torch.quantile(values.abs(), percentile / 100, dim=1)  # (C,)
        lo = -hi
    else:
        lo = torch.quantile(values, 1 - percentile / 100, dim=1)  # (C,)
        hi = torch.quantile(values, percentile / 100, dim=1)  # (C,)
    scale, zero_point = scale_from_range(lo, hi, num_bits, signed, symmetric)
    if axis is None:
        return scale.reshape(()), zero_point.reshape(())
    return scale, zero_point
