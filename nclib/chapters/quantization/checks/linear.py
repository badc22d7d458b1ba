"""Chapter 03 checks, tasks 4-5: the affine map of linear quantization and fake quantization
with the straight-through estimator (Jacob et al., CVPR 2018, Eq. 1; Bengio et al. 2013).
The reference is nclib.quant.uniform.

Rounding: the inputs keep every x / scale at least 0.05 from a tie (k + 1/2), so any rounding
to the nearest integer passes: torch.round (half to even, as the reference) or floor(t + 0.5).
No input lies in the half step just outside the range, where "clamped" could be read off
x or off round(x / scale): both readings of the clipping mask pass. At the range's two ends
(x / scale + zero_point within 0.001 of 0 or 2^b - 1: a ReLU's zeros with zero point 0) the
gradient is not checked: torch.clamp's backward gives 0 or 1/2 there, the reference 1.
"""
from __future__ import annotations

import torch

from nclib.course import discover
from nclib.course.checking import Failure, Mismatch, Text, call, close, describe, nclib_origin, task
from nclib.quant import uniform

TIE_GAP = 0.05  # steps between every test input's x / scale and the nearest tie k + 1/2


def _clear(x: torch.Tensor, scale, zero_point, num_bits: int) -> torch.Tensor:
    """`x` moved off the ties and out of the half steps just outside the range: t = x / scale
    + zero_point with frac(t) within TIE_GAP of 1/2 moves by 2 TIE_GAP steps, and t up to
    0.6 steps outside the range moves to 0.7 steps outside (the ends themselves stay)."""
    qmin, qmax = uniform.qrange(num_bits)
    s, z = float(scale), int(zero_point)
    t = x.double() / s + z
    near_tie = ((t - t.floor()) - 0.5).abs() < TIE_GAP
    t = torch.where(near_tie, t + 2 * TIE_GAP, t)
    t = torch.where((t > qmax + 1e-3) & (t <= qmax + 0.6), torch.full_like(t, qmax + 0.7), t)
    t = torch.where((t < qmin - 1e-3) & (t >= qmin - 0.6), torch.full_like(t, qmin - 0.7), t)
    return ((t - z) * s).float()


def _cases() -> list[tuple[str, torch.Tensor, object, object, int]]:
    """(label, x, scale, zero_point, num_bits): a hand-worked case, calibrated and clamped
    ranges, ReLU outputs (zero point 0), an all-negative range (zero point at the top)."""
    g = torch.Generator().manual_seed(40)
    acts = 2 * torch.randn(64, 10, generator=g) + 1.0
    scale, zero_point = uniform.calibrate(acts)  # 0-d tensors, as calibrate returns them
    raw = [("hand-worked", torch.tensor([-0.375, 0.0, 0.34375, 40.0]), 0.125, 3, 8),  # 0 3 6 255
           ("calibrated on x itself", acts, scale, zero_point, 8),
           ("4 bits, many values clamped", 2 * torch.randn(40, generator=g), 0.25, 8, 4),
           ("ReLU outputs, 3 bits", torch.relu(torch.randn(5, 8, generator=g)), 0.3, 0, 3),
           ("conv activations", 0.5 * torch.randn(2, 3, 4, 4, generator=g), 0.02, 128, 8),
           ("an all-negative range", -5 * torch.rand(30, generator=g), 5 / 255, 255, 8),
           ("2 bits", torch.randn(20, generator=g), 0.5, 1, 2)]
    return [(label, _clear(x, s, z, b), s, z, b) for label, x, s, z, b in raw]


def _shown(label, x, scale, zero_point, num_bits=None, name="x") -> str:
    bits = "" if num_bits is None else f", num_bits={num_bits}"
    return (f"({label}: {name} {describe(x, 40)}, scale={float(scale):.4g}, "
            f"zero_point={int(zero_point)}{bits})")


def _own(fn, what: str) -> None:
    """Refuse nclib's own function handed in inside a pair (Task.grade checks one object)."""
    origin = nclib_origin(fn)
    if origin is not None and not origin[0].startswith(f"{discover.PACKAGE}.quantization."):
        raise Failure(f"{what} is nclib's own `{origin[0]}.{origin[1]}`; write your own function.")


# ---------------------------------------------------------------- task 4: the affine map
def ref_affine_quantize(x, scale, zero_point, num_bits=8):
    return uniform.quantize(x, scale, zero_point, num_bits, signed=False)


def ref_affine_dequantize(q, scale, zero_point):
    return uniform.dequantize(q, scale, zero_point)


def _quantize_hint(x, scale, zero_point, num_bits, got: torch.Tensor) -> str:
    qmax = 2 ** num_bits - 1
    t = x.double() * (1 / float(scale))
    z = int(zero_point)
    mistakes = {
        "clamp to the integer range: q = clamp(round(x / scale) + zero_point, 0, 2**num_bits - 1) "
        "(a cast to uint8 without it wraps around: 256 becomes 0).":
            [t.round() + z, (t.round() + z).remainder(256)],
        "add the zero point: it is the level that stands for 0.0, q = round(x / scale) + "
        "zero_point.": [(t.round()).clamp(0, qmax)],
        "add the zero point (you subtracted it): q = round(x / scale) + zero_point.":
            [(t.round() - z).clamp(0, qmax)],
        "round to the NEAREST level (torch.round), not down (floor) or toward zero (int()).":
            [(t.floor() + z).clamp(0, qmax), (t.trunc() + z).clamp(0, qmax)],
    }
    for hint, values in mistakes.items():
        if any(torch.equal(got.double(), v) for v in values):
            return hint
    return ""


def _check_quantize(quantize) -> None:
    for label, x, scale, zero_point, num_bits in _cases():
        shown = _shown(label, x, scale, zero_point, num_bits)
        expected = ref_affine_quantize(x, scale, zero_point, num_bits)
        got = call(quantize, shown, x.clone(), scale, zero_point, num_bits)
        if not torch.is_tensor(got) or got.shape != x.shape:
            raise Mismatch(shown, expected, got, "return a tensor shaped like x: one level per "
                           "value.")
        got = got.detach().cpu()
        if not torch.equal(got.double(), expected.double()):
            raise Mismatch(shown, expected, got,
                           _quantize_hint(x, scale, zero_point, num_bits, got))
        if got.is_floating_point() or got.dtype == torch.bool:
            raise Mismatch(shown, Text("an integer tensor (the levels are stored as integers)"),
                           Text(f"the right levels as {got.dtype}"),
                           "after clamping, convert: .to(torch.uint8) holds up to 8 bits, "
                           ".long() any.")


def _dequantize_hint(q: torch.Tensor, scale, zero_point, got) -> str:
    if not (torch.is_tensor(got) and got.shape == q.shape):
        return "return a float tensor shaped like q."
    s, z, levels = float(scale), int(zero_point), q.double()
    mistakes = {
        "subtract the zero point first: x = scale * (q - zero_point).": s * levels,
        "subtract the zero point (you added it): x = scale * (q - zero_point).": s * (levels + z),
        "multiply by the scale (the real step between two levels), do not divide.":
            (levels - z) / s,
        "convert q to float (or int64) before subtracting: uint8 arithmetic wraps around, "
        "0 - 3 gives 253.": s * (levels - z).remainder(256),
    }
    got = got.detach().cpu().double()
    return next((hint for hint, v in mistakes.items() if close(got, v, rtol=1e-5, atol=1e-7)), "")


def _check_dequantize(dequantize) -> None:
    for label, x, scale, zero_point, num_bits in _cases():
        for q in (ref_affine_quantize(x, scale, zero_point, num_bits),  # uint8
                  ref_affine_quantize(x, scale, zero_point, num_bits).long()):
            shown = _shown(f"{label}, q of dtype {q.dtype}", q, scale, zero_point, name="q")
            expected = ref_affine_dequantize(q, scale, zero_point)
            try:
                got = call(dequantize, shown, q.clone(), scale, zero_point)
            except NotImplementedError:
                raise Failure("affine_quantize is right, but affine_dequantize is still the "
                              "stub: replace `raise NotImplementedError` with your code.") from None
            if not (torch.is_tensor(got) and got.shape == q.shape and got.is_floating_point()
                    and close(got.detach().cpu().double(), expected.double(), rtol=1e-5,
                              atol=1e-7)):
                raise Mismatch(shown, expected, got,
                               _dequantize_hint(q, scale, zero_point, got))


@task("quantization", points=1, hint="Lecture 03, section 5 (Linear quantization) gives the "
      "affine map: q = clamp(round(x / scale) + zero_point, 0, 2**num_bits - 1), and back "
      "x = scale * (q - zero_point); check each step on the hand-worked case first.")
def affine_quantize(student):
    """affine_quantize(x, scale, zero_point, num_bits=8) -> integer levels in [0, 2^b - 1], and
    affine_dequantize(q, scale, zero_point) -> floats; handed in as a pair of functions."""
    if not (isinstance(student, (tuple, list)) and len(student) == 2
            and all(callable(f) for f in student)):
        raise Failure("hand in both functions as a pair: "
                      "check.quantization.affine_quantize((affine_quantize, affine_dequantize)).")
    quantize, dequantize = student
    _own(quantize, "affine_quantize")
    _own(dequantize, "affine_dequantize")
    _check_quantize(quantize)
    _check_dequantize(dequantize)
    return "Inside the range a round trip is off by at most scale / 2; 0.0 comes back exactly."


# ---------------------------------------------------------------- task 5: the STE
def ref_fake_quant_ste(x, scale, zero_point, num_bits=8):
    return uniform.fake_quantize(x, scale, zero_point, num_bits, signed=False)


def _ste_hint(grad: torch.Tensor | None, upstream: torch.Tensor) -> str:
    if grad is not None and bool((grad == 0).all()):
        return ("round() has gradient 0 almost everywhere, so nothing reaches x: pass the "
                "gradient straight through, x + (y - x).detach().")
    if grad is not None and close(grad, upstream, rtol=1e-5, atol=1e-6):
        return ("where a value was clamped, the output does not move with x: its gradient is "
                "0 there (multiply by the mask of the values inside the range).")
    return "x.grad must be the output's gradient where x is inside the range, 0 elsewhere."


@task("quantization", points=1, hint="Lecture 03, section 5 (Linear quantization), the "
      "straight-through estimator: forward, dequantize(quantize(x)); backward, gradient 1 where "
      "x was inside the range and 0 where it was clamped: x + (y - x).detach() passes the "
      "gradient straight through, and clamping x to the range first stops it where clamped.")
def fake_quant_ste(student):
    """fake_quant_ste(x, scale, zero_point, num_bits=8) -> float tensor like x, STE gradient."""
    g = torch.Generator().manual_seed(50)
    for label, x, scale, zero_point, num_bits in _cases():
        shown = _shown(label, x, scale, zero_point, num_bits)
        x_ref, x_in = x.clone().requires_grad_(), x.clone().requires_grad_()
        expected = ref_fake_quant_ste(x_ref, scale, zero_point, num_bits)
        got = call(student, shown, x_in, scale, zero_point, num_bits)
        if not (torch.is_tensor(got) and got.shape == x.shape and got.is_floating_point()
                and close(got.detach().cpu(), expected.detach(), rtol=1e-5, atol=1e-6)):
            wrong = torch.is_tensor(got) and got.shape == x.shape
            raise Mismatch(shown, expected.detach(), got.detach() if torch.is_tensor(got) else got,
                           "quantize, then dequantize, in floats (task 4's two steps)." if wrong
                           else "return a float tensor shaped like x.")
        if got.grad_fn is None:
            raise Mismatch(f"{shown}: the output's graph", Text("a tensor that backward() can "
                           "differentiate"), Text("a tensor with no gradient"),
                           "compute it from x with torch operations (no .detach() of the "
                           "whole result, no integer tensors on the way back to x).")
        upstream = torch.randn(x.shape, generator=g)  # dL/d out, so the mask shows
        (expected * upstream).sum().backward()
        call(lambda: (got * upstream.to(got.device)).sum().backward(), f"{shown}: backward()")
        t = x.double() / float(scale) + int(zero_point)
        ends = ((t - 0).abs() < 1e-3) | ((t - (2 ** num_bits - 1)).abs() < 1e-3)  # not checked
        grad = None if x_in.grad is None else x_in.grad.cpu()
        if grad is None or not close(torch.where(ends, x_ref.grad, grad), x_ref.grad,
                                     rtol=1e-5, atol=1e-6):
            raise Mismatch(f"{shown}: x.grad for a random upstream gradient", x_ref.grad, grad,
                           _ste_hint(grad, upstream))
    return "QAT trains through this: the weights learn where the levels are (lecture section 6)."
