"""Chapter 03 checks, tasks 7-9: binary networks. The sign with the straight-through estimator
(Hubara et al., "Binarized Neural Networks", NIPS 2016), XNOR-Net's scale per output channel
(Rastegari et al., ECCV 2016, Eq. 6) and the +-1 dot product of packed signs by xor and
popcount; the references are nclib.quant.binary (`sign_ste`, `alpha`) and `bitpack.binary_matmul`.

Task 7 checks the ties |x| = 1 (gradient 1): BNN's estimator is g_r = g_q 1_{|r| <= 1}, and
latent weights clipped to [-1, 1] after every step sit at exactly +-1, where a strict bound
(|x| < 1, or the backward of x.clamp(-1, 1) and F.hardtanh, both 0 there) would never move
them again; the hint names it. sign(0) = +1, as in nclib.quant.binary and the packed kernels.
Task 8 accepts alpha of shape (O,) or (O, 1, ..., 1); it tests Eq. 6 on the student's values
(no nearby scale gives a channel a smaller ||W_o - alpha_o sign(W_o)||^2), then compares.
Task 9's words come from `pack_signs`, some with bit 63 set (negative int64 values: bin(x)
of a negative Python int, numpy's bitwise_count of an int64, count |x|). The answer must be
an int (Python's or numpy's; not a bool, a float or a tensor).
"""
from __future__ import annotations

import numbers

import torch

from nclib.course.checking import Mismatch, Text, call, close, describe, task
from nclib.quant import binary, bitpack

__all__ = ["sign_ste", "xnor_scale", "xnor_dot", "ref_sign_ste", "ref_xnor_scale", "ref_xnor_dot"]

MASK = 2 ** 64 - 1  # a word's 64 bits, as a non-negative Python int
EQ6_STEP = 1e-3  # task 8: alpha_o +- this times rms(W_o) must not give a smaller error
TORCH_SIGN = ("torch.sign(0) is 0, but a binary value is -1 or +1: here sign(0) = +1, "
              "torch.where(x >= 0, 1.0, -1.0).")
ONE_ALPHA = ("one alpha for the whole tensor: XNOR-Net gives every output channel (filter) its "
             "own, the mean |W| over all but dim 0.")
DIM_0 = ("that is a mean over dim 0, the output channels: average over all the OTHER dims, "
         "dim=tuple(range(1, weight.dim())).")


# ---------------------------------------------------------------- task 7: sign with the STE
def ref_sign_ste(x: torch.Tensor) -> torch.Tensor:
    return binary.sign_ste(x)


def _sign_cases() -> list[tuple[str, torch.Tensor]]:
    """(label, x): a hand-worked case, clipped latent weights (many exactly 0 and +-1),
    pre-activations mostly beyond +-1, a conv activation with exact zeros, float64."""
    g = torch.Generator().manual_seed(70)
    latent = (1.3 * torch.rand(16, 20, generator=g) * 2 - 1.3).clamp(-1, 1)  # ~1/4 at +-1
    latent[::5, ::3] = 0.0
    conv = torch.randn(2, 3, 5, 5, generator=g)
    conv[conv.abs() < 0.3] = 0.0
    return [("hand-worked", torch.tensor([-1.5, -1.0, -0.25, 0.0, 0.25, 1.0, 2.0, 0.5])),
            ("latent weights clipped to [-1, 1]", latent),
            ("pre-activations, most beyond +-1", 3 * torch.randn(4, 32, generator=g)),
            ("a conv activation with exact zeros", conv),
            ("float64", 1.5 * torch.randn(50, generator=g, dtype=torch.float64))]


def _upstream(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random dL/d out, not just ones (so a mask returned as the gradient shows): multiples
    of 1/4 from -2 to 2, never 0, exact in floats and short to read in a verdict."""
    size = torch.randint(1, 9, x.shape, generator=g)
    flip = torch.randint(0, 2, x.shape, generator=g) * 2 - 1
    return (0.25 * size * flip).to(x.dtype)


def _ste_hint(x: torch.Tensor, grad: torch.Tensor | None, upstream: torch.Tensor) -> str:
    inside, ties = x.abs() <= 1, x.abs() == 1
    if grad is None or bool((grad == 0).all()):
        return ("the derivative of sign is 0 everywhere (undefined at 0), so nothing reaches x: "
                "pass it straight through, y = x + (sign(x) - x).detach(), and cancel it where "
                "|x| > 1.")
    if close(grad, upstream, rtol=1e-6, atol=1e-7):
        return ("straight through everywhere: cancel the gradient where |x| > 1 (BNN's "
                "1_{|x| <= 1}, the gradient of hard tanh), multiply it by (x.abs() <= 1).")
    if close(grad, inside.to(grad.dtype), rtol=1e-6, atol=1e-7):
        return ("that is the mask itself: multiply the incoming gradient by it (a backward "
                "returns grad_output * mask).")
    off = ~ties
    if bool(ties.any()) and close(grad[off], (upstream * inside)[off], rtol=1e-6, atol=1e-7):
        return ("right except at |x| = 1 exactly: BNN's gradient passes where |x| <= 1, ties "
                "included (the clipped latent weights sit at +-1, and a strict bound would never "
                "move them again). x.clamp(-1, 1), F.hardtanh and (x.abs() < 1) give 0 there: "
                "use the mask (x.abs() <= 1).")
    return "x.grad must be the output's gradient where |x| <= 1, and 0 where |x| > 1."


@task("quantization", points=1, hint="Lecture 03, section 9 (The derivative of sign is zero): BNN's "
      "straight-through estimator, forward sign(x) with sign(0) = +1, backward the incoming "
      "gradient where |x| <= 1 and 0 where |x| > 1; y = x + (sign(x) - x).detach() passes the "
      "gradient straight through, a mask (x.abs() <= 1) cancels it.")
def sign_ste(student):
    """sign_ste(x) -> +-1 like x (sign(0) = +1); gradient 1 where |x| <= 1, 0 where |x| > 1."""
    g = torch.Generator().manual_seed(71)
    for label, x in _sign_cases():
        shown = f"({label}: x {describe(x, 40)})"
        x_ref, x_in = x.clone().requires_grad_(), x.clone().requires_grad_()
        expected = ref_sign_ste(x_ref)
        got = call(student, shown, x_in)
        if not (torch.is_tensor(got) and got.shape == x.shape):
            raise Mismatch(shown, expected.detach(), got.detach() if torch.is_tensor(got) else got,
                           "return a tensor shaped like x: one sign per value.")
        if not torch.equal(got.detach().cpu().double(), expected.detach().double()):
            zeros = torch.equal(got.detach().cpu().double(), torch.sign(x).double())
            raise Mismatch(shown, expected.detach(), got.detach(), TORCH_SIGN if zeros else
                           "sign(x): +1 where x >= 0 (zero included), -1 where x < 0.")
        if got.dtype != x.dtype:
            raise Mismatch(shown, Text(f"signs of dtype {x.dtype}, like x"),
                           Text(f"the right signs as {got.dtype}"),
                           "keep x's dtype: torch.where(x >= 0, 1.0, -1.0).to(x.dtype).")
        upstream = _upstream(x, g)
        (expected * upstream).sum().backward()
        if got.grad_fn is not None:
            call(lambda: (got * upstream.to(got.device)).sum().backward(), f"{shown}: backward()")
        grad = None if x_in.grad is None else x_in.grad.detach().cpu()
        if grad is None or not close(grad, x_ref.grad, rtol=1e-6, atol=1e-7):
            raise Mismatch(f"{shown}: x.grad for a random upstream gradient", x_ref.grad,
                           Text("no gradient (None)") if grad is None else grad,
                           _ste_hint(x, grad, upstream))
    return "Every BNN layer trains through this: the latent weights move, their signs flip."


# ---------------------------------------------------------------- task 8: XNOR-Net's alpha
def ref_xnor_scale(weight: torch.Tensor) -> torch.Tensor:
    return binary.alpha(weight)  # (O, 1, ..., 1); (O,) is accepted too


def _scale_cases() -> list[tuple[str, torch.Tensor]]:
    """(label, weight): a hand-worked Linear weight, Linear and conv weights (never square, so
    a mean over the wrong dim has the wrong shape), latent weights, a pruned all-zero filter."""
    g = torch.Generator().manual_seed(80)
    pruned = 0.1 * torch.randn(6, 4, 3, 3, generator=g)
    pruned[2] = 0.0
    return [("hand-worked Linear weight", torch.tensor([[0.5, -1.0, 1.5], [-0.25, 0.25, -1.0]])),
            ("a Linear weight", 0.1 * torch.randn(10, 20, generator=g)),
            ("a conv weight", 0.2 * torch.randn(8, 3, 3, 3, generator=g) + 0.05),
            ("latent conv weights in [-1, 1]", 2 * torch.rand(16, 8, 3, 3, generator=g) - 1),
            ("a pruned conv weight, filter 2 all zeros", pruned)]


def _unchanged(shown: str, what: str, before, after, hint: str) -> None:
    """Raise Mismatch when the student's code modified its inputs in place."""
    if not all(torch.equal(a, b) for a, b in zip(before, after)):
        raise Mismatch(shown, Text(f"the {what} left unchanged"),
                       Text(f"the {what} modified in place"), hint)


def _errors(w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """||W_o - alpha_o sign(W_o)||^2 for every output channel o, in float64: (O,)."""
    rows = w.double().flatten(1)  # (O, n)
    return (rows - scale.double()[:, None] * binary.sign(rows)).pow(2).sum(1)


def _scale_hint(w: torch.Tensor, got: torch.Tensor) -> str:
    """The usual mistake that gives `got` (O,), or ''."""
    rows = w.double().flatten(1)  # (O, n)
    n = rows.shape[1]
    mistakes = {
        ONE_ALPHA: [rows.abs().mean().expand(len(rows))],
        "that is max |W|: alpha is the MEAN of |W| over the channel (Eq. 6: ||W||_1 / n).":
            [rows.abs().amax(1)],
        "that is the mean of W: take the mean of |W|, the absolute values (a mean of signed "
        "weights is near 0).": [rows.mean(1)],
        "that is the L2 norm: XNOR-Net's alpha is the L1 norm over n, ||W||_1 / n = mean |W|.":
            [rows.norm(dim=1), rows.norm(dim=1) / n ** 0.5],
        "that is the L1 norm ||W||_1: divide it by n, the weights per output channel.":
            [rows.abs().sum(1)],
    }
    return next((hint for hint, values in mistakes.items()
                 if any(close(got, v, rtol=1e-5, atol=1e-8) for v in values)), "")


@task("quantization", points=1, hint="Lecture 03, section 10 (XNOR-Net: scaling factors), XNOR-Net's "
      "Eq. 6: alpha = ||W||_1 / n, the mean of |W| over everything but dim 0, one per output "
      "channel: weight.abs().mean(dim=tuple(range(1, weight.dim()))).")
def xnor_scale(student):
    """xnor_scale(weight (O, I) or (O, C, kh, kw)) -> alpha (O,) (or keepdim (O, 1, ..., 1))."""
    for label, weight in _scale_cases():
        shown = f"({label}: weight {describe(weight, 40)})"
        out = weight.shape[0]
        keepdim = (out,) + (1,) * (weight.dim() - 1)
        original = weight.clone()
        got = call(student, shown, weight)
        _unchanged(shown, "weight", [original], [weight],
                   "compute alpha from weight.abs(), not weight.abs_().")
        if not (torch.is_tensor(got) and got.is_floating_point()
                and tuple(got.shape) in ((out,), keepdim)):
            shape = tuple(got.shape) if torch.is_tensor(got) else None
            hint = (ONE_ALPHA if shape is not None and got.numel() == 1 else DIM_0
                    if shape == weight.shape[1:] else "one float alpha per output channel.")
            raise Mismatch(shown, Text(f"a float tensor of shape ({out},) or {keepdim}"),
                           Text(describe(got)), hint)
        scale = got.detach().cpu().double().flatten()  # (O,)
        expected = ref_xnor_scale(weight).double().flatten()
        step = EQ6_STEP * weight.double().flatten(1).pow(2).mean(1).sqrt()  # (O,)
        mine = _errors(weight, scale)  # Eq. 6 on the student's values: is a nearby scale better?
        excess = mine - torch.minimum(_errors(weight, scale - step), _errors(weight, scale + step))
        if bool((excess > 1e-12 * (1 + mine)).any()):
            o = int(excess.argmax())
            best = float(_errors(weight, expected)[o])
            raise Mismatch(f"{shown}, output channel {o}",
                           Text(f"the alpha of least squared error ||W_o - alpha sign(W_o)||^2 "
                                f"= {best:.6g}, at alpha = {float(expected[o]):.6g}"),
                           Text(f"alpha = {float(scale[o]):.6g}, squared error "
                                f"{float(mine[o]):.6g}"), _scale_hint(weight, scale))
        if not close(scale, expected, rtol=1e-5, atol=1e-8):
            raise Mismatch(shown, expected, scale, _scale_hint(weight, scale))
    return ("alpha * sign(W) is the closest scaled binary weight to W: the 1-bit weight and one "
            "float per filter (lecture section 10).")


# ---------------------------------------------------------------- task 9: xnor and popcount
def ref_xnor_dot(a_words: torch.Tensor, b_words: torch.Tensor, n: int) -> int:
    return int(bitpack.binary_matmul(a_words[None], b_words[None], n)[0, 0])


def _dot_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    """(label, a_words, b_words, n): a hand-worked case, random signs for every n of the list
    (bit 63 set where n >= 64: the signs differ at value 63, agree negative at 127), equal and
    opposite vectors, and 64 negative values (the word -1)."""
    g = torch.Generator().manual_seed(90)
    signs = lambda n: torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)  # noqa: E731
    cases = [("hand-worked", torch.tensor([1.0, -1, -1, 1, 1]), torch.tensor([1.0, 1, -1, -1, 1]))]
    for n in (1, 5, 8, 63, 64, 65, 100, 200):
        a, b = signs(n), signs(n)
        if n >= 64:
            a[63], b[63] = -1.0, 1.0  # the xor has bit 63 set: a negative int64 word
        if n >= 128:
            a[127], b[127] = -1.0, -1.0  # both words negative
        cases.append((f"random signs, n={n}", a, b))
    a, c = signs(65), signs(100)
    c[63] = -1.0
    cases += [("equal signs", a, a.clone()), ("opposite signs", c, -c),
              ("64 negative values against alternating ones", -torch.ones(64),
               torch.tensor([1.0, -1.0] * 32))]
    return [(label, bitpack.pack_signs(a), bitpack.pack_signs(b), a.numel())
            for label, a, b in cases]


def _popcounts(a_words: torch.Tensor, b_words: torch.Tensor, op, mask: int = MASK) -> int:
    return sum(bin(op(u, v) & mask).count("1") for u, v in zip(a_words.tolist(), b_words.tolist()))


def _dot_mistakes(a_words: torch.Tensor, b_words: torch.Tensor, n: int) -> dict[str, list[int]]:
    """Hint -> the results the mistake gives on these words."""
    bits = 64 * a_words.numel()
    d = _popcounts(a_words, b_words, lambda u, v: u ^ v)  # positions where the signs differ
    both = _popcounts(a_words, b_words, lambda u, v: u & v)  # positions where both are -1
    signed = _popcounts(a_words, b_words, lambda u, v: u ^ v, mask=-1)  # bin(x) of x < 0: |x|
    return {
        "that is popcount(a xor b) itself, the positions where the signs differ: each of them "
        "adds -1 and each other position +1, so the dot product is n - 2 * popcount(a xor b).": [d],
        "the factor 2 is missing: n - popcount(a xor b) counts the agreements, but each "
        "disagreement also subtracts 1: (n - d) - d = n - 2 * popcount(a xor b).": [n - d],
        "the xnor of two padding bits (0 and 0) is 1: counted over all 64 * W bits it takes the "
        "64 * W - n padding positions for agreements. Use n - 2 * popcount(a xor b) (xor leaves "
        "the padding out), with the true n, not 64 * W.":
            [2 * (bits - d) - n, bits - 2 * d, bits - d],
        "a and b marks the positions where both bits are 1 (both -1): that is the {0, 1} dot "
        "product; for +-1 values compare the bits with xor, n - 2 * popcount(a xor b).":
            [both, n - 2 * both, 2 * both - n],
        "a word with bit 63 set is a negative int64: bin(x) of a negative Python int (and "
        "numpy's bitwise_count of an int64) counts the bits of |x|. Count the 64 bits of the "
        "word: bin(x & (2**64 - 1)).count('1'), or view the words as numpy uint64.":
            [n - 2 * signed],
    }


def _dot_hint(student, cases, failing: int, value: int) -> str:
    """The usual mistake that gives `value` on case `failing`, or ''. When several give it,
    the first that also gives the student's results on every other case."""
    found = [h for h, v in _dot_mistakes(*cases[failing][1:]).items() if value in v]
    for hint in found:
        try:
            for _, a, b, n in cases:
                got, _ = _as_int(student(a.clone(), b.clone(), n))
                if got not in _dot_mistakes(a, b, n)[hint]:
                    break
            else:
                return hint
        except Exception:  # the student's code fails elsewhere: keep the first match
            break
    return found[0] if found else ""


def _as_int(got) -> tuple[int | None, bool]:
    """(the student's result as an int, whether it is an int); None if it is no whole number."""
    if isinstance(got, numbers.Integral) and not isinstance(got, bool):
        return int(got), True
    if torch.is_tensor(got) and got.numel() == 1 and got.dtype != torch.bool:
        got = got.item()  # the right value as a tensor is named as such
    if isinstance(got, (int, float)) and not isinstance(got, bool) and float(got).is_integer():
        return int(got), False
    return None, False


@task("quantization", points=1, hint="Lecture 03, section 11 (Packed bits that run): s . t = "
      "(n - d) - d = n - 2 d with d = popcount(a xor b), summed over the W words; a word with "
      "bit 63 set is a negative int64, so count its bits as x & (2**64 - 1).")
def xnor_dot(student):
    """xnor_dot(a_words, b_words, n) -> int: the +-1 dot product of two packed sign vectors."""
    cases = _dot_cases()
    for i, (label, a, b, n) in enumerate(cases):
        shown = f"({label}: a_words {describe(a, 40)}, b_words {describe(b, 40)}, n={n})"
        expected = ref_xnor_dot(a, b, n)
        a_in, b_in = a.clone(), b.clone()
        got = call(student, shown, a_in, b_in, n)
        _unchanged(shown, "words", [a, b], [a_in, b_in],
                   "compute a_words ^ b_words into a new tensor (not a_words ^= b_words).")
        value, is_int = _as_int(got)
        if value is None:
            raise Mismatch(shown, expected, got, "return the dot product as one int.")
        if value != expected:
            raise Mismatch(shown, expected, got, _dot_hint(student, cases, i, value))
        if not is_int:
            raise Mismatch(shown, Text(f"the int {expected}"), Text(f"{describe(got)}"),
                           "the right value, but return a Python int: int(...) (or .item() "
                           "of a one-element tensor).")
    return ("One xor and one popcount replace 64 multiply-adds: that is where a binary "
            "network's speed comes from (nclib.quant.bitpack.binary_matmul).")
