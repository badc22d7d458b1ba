"""Checks for chapter 04 (architecture design): the costs of separable convolution, a
depthwise separable module, and low-rank factorization of a Linear layer by SVD.

The references are what a student's answer must agree with:

* counts: real PyTorch layers built on the "meta" device (shapes only: no memory and no
  arithmetic, so even a 512-channel layer is counted at once) and counted with
  `nclib.measure`, so a formula is compared with what the layer holds and computes;
* the module: `nclib.arch.DepthwiseSeparableConv` without BatchNorm and ReLU, with the same
  weights copied into the student's layers;
* low rank: the smallest possible error of a rank-K approximation, from the singular
  values of `torch.linalg.svd` (Eckart and Young 1936), and `nclib.arch.LowRankLinear`.
"""
from __future__ import annotations

import random

import torch
from torch import nn

from nclib.arch import DepthwiseSeparableConv, LowRankLinear, separable_ratio as _ratio
from nclib.course.checking import Mismatch, Text, call, expect, task
from nclib.course.questions import choice, number
from nclib.measure import count_macs, count_params


# ---------------------------------------------------------------- counting (tasks 1-3)
def _layers(kernel_size: int, c_in: int, c_out: int) -> tuple[nn.Conv2d, nn.Conv2d, nn.Conv2d]:
    """Standard, depthwise and pointwise convolution without bias, on the meta device."""
    return (nn.Conv2d(c_in, c_out, kernel_size, bias=False, device="meta"),
            nn.Conv2d(c_in, c_in, kernel_size, groups=c_in, bias=False, device="meta"),
            nn.Conv2d(c_in, c_out, 1, bias=False, device="meta"))


def ref_param_counts(kernel_size: int, c_in: int, c_out: int) -> tuple[int, int, int]:
    return tuple(count_params(layer) for layer in _layers(kernel_size, c_in, c_out))


def ref_mac_counts(kernel_size: int, c_in: int, c_out: int, out_h: int,
                   out_w: int) -> tuple[int, int, int]:
    standard, depthwise, pointwise = _layers(kernel_size, c_in, c_out)
    # no padding, stride 1: an input of (out_h + K - 1) x (out_w + K - 1) gives out_h x out_w
    big = (c_in, out_h + kernel_size - 1, out_w + kernel_size - 1)
    return (count_macs(standard, big).total, count_macs(depthwise, big).total,
            count_macs(pointwise, (c_in, out_h, out_w)).total)


def ref_separable_ratio(kernel_size: int, c_in: int, c_out: int) -> float:
    return _ratio(kernel_size, c_out)


def _count_cases() -> list[tuple[int, int, int]]:
    """(K, C_in, C_out): the lecture's example, MobileNet's layers, edge cases, random ones."""
    fixed = [(3, 2, 4), (3, 32, 64), (3, 512, 512), (3, 1024, 1024), (5, 3, 7), (1, 8, 16),
             (3, 1, 1), (7, 1, 1000), (3, 64, 1)]
    rng = random.Random(4)
    return fixed + [(rng.choice([1, 3, 5, 7]), rng.randint(1, 300), rng.randint(1, 300))
                    for _ in range(6)]


@task("architecture", points=1, hint="Lecture 04, section 3 (The general formulas) gives each "
      "layer's filter shape, and section 2 (Depthwise separable convolution: the worked example) "
      "counts the lecture's example; check your counts for K = 3, C_in = 2, C_out = 4 against "
      "that example first.")
def param_counts(student):
    """param_counts(kernel_size, c_in, c_out) -> (standard, depthwise, pointwise) parameters."""
    for args in _count_cases():
        expect(student, ref_param_counts, args)
    return "The lecture's 3x3x2x4 layer: 72 parameters; depthwise + pointwise: 18 + 8 = 26."


@task("architecture", points=1, hint="Lecture 04, section 3 (The general formulas) gives each "
      "layer's MACs and says whose channels the depthwise layer's outputs are; count each "
      "layer's output values and compare with nclib.measure.count_macs on the real layers.")
def mac_counts(student):
    """mac_counts(kernel_size, c_in, c_out, out_h, out_w) -> (standard, depthwise, pointwise) MACs."""
    rng = random.Random(5)
    sizes = [(1, 1), (112, 112), (7, 7), (4, 9), (1, 1), (1, 30), (56, 56), (14, 14), (3, 2)]
    sizes += [(rng.randint(1, 60), rng.randint(1, 60)) for _ in range(6)]
    for (k, c_in, c_out), (h, w) in zip(_count_cases(), sizes):
        expect(student, ref_mac_counts, (k, c_in, c_out, h, w))
    return "Every term has the factor H x W, so the MAC ratio equals the parameter ratio."


@task("architecture", points=1, hint="Lecture 04, section 3 (The general formulas) derives the "
      "ratio from its table (Howard et al., eq. 5 over eq. 2); check yours on the worked example "
      "of section 2, where 26 of the 72 parameters remain.")
def separable_ratio(student):
    """separable_ratio(kernel_size, c_in, c_out) -> (depthwise + pointwise) / standard."""
    for args in _count_cases():
        expect(student, ref_separable_ratio, args)
    return "1/C_out + 1/K^2: for MobileNet's 3 x 3 layers (C_out 64 to 1024), 8 to 9 times fewer."


# ---------------------------------------------------------------- the module (task 4)
def _separable_cases() -> list[tuple[int, int, int, int, int]]:
    """(C_in, C_out, K, stride, input size)."""
    fixed = [(2, 4, 3, 1, 8), (8, 8, 3, 1, 7), (3, 16, 3, 2, 9), (4, 6, 5, 1, 10),
             (16, 32, 1, 1, 5), (1, 1, 3, 1, 3), (6, 3, 3, 2, 1)]
    rng = random.Random(6)
    return fixed + [(rng.randint(1, 12), rng.randint(1, 12), rng.choice([1, 3, 5]),
                     rng.choice([1, 2]), rng.randint(3, 12)) for _ in range(5)]


@task("architecture", points=2, hint="Lecture 04, section 2 (Depthwise separable convolution: "
      "the worked example) describes the two layers and the groups argument, and the docstring "
      "of nclib.arch.DepthwiseSeparableConv says which layer takes the stride and padding; "
      "compare your parameter count and output shape with it, built without BatchNorm and ReLU.")
def separable_conv(student):
    """SeparableConv(c_in, c_out, kernel_size=3, stride=1): an nn.Module with layers
    `depthwise` and `pointwise`, no bias, BatchNorm or ReLU; compared with nclib's
    DepthwiseSeparableConv on parameters, weight shapes and outputs (same weights)."""
    # fork_rng: building layers draws from torch's global generator; the notebook's own
    # random numbers must not depend on whether (or how often) a check ran
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        for case in _separable_cases():
            _check_separable(student, *case)
    return "Same parameters, same outputs as nclib.arch.DepthwiseSeparableConv."


def _check_separable(student, c_in: int, c_out: int, k: int, stride: int, size: int) -> None:
    shown = f"SeparableConv({c_in}, {c_out}, kernel_size={k}, stride={stride})"
    module = call(student, f"({shown})", c_in, c_out, k, stride)
    if not isinstance(module, nn.Module):
        raise Mismatch(shown, Text("an nn.Module"), module,
                       "SeparableConv must be a class that subclasses nn.Module.")
    ref = DepthwiseSeparableConv(c_in, c_out, k, stride, batch_norm=False, relu=False)
    if count_params(module) != count_params(ref):
        raise Mismatch(f"{shown}: number of parameters", count_params(ref),
                       count_params(module))
    for name in ("depthwise", "pointwise"):
        theirs, ours = getattr(module, name, None), getattr(ref, name)
        if not isinstance(theirs, nn.Conv2d):
            raise Mismatch(f"{shown}: the layer `self.{name}`", Text("an nn.Conv2d"),
                           theirs, "store the two convolutions as "
                           "self.depthwise and self.pointwise (the check copies weights "
                           "into them).")
        if theirs.weight.shape != ours.weight.shape:
            raise Mismatch(f"{shown}: shape of self.{name}.weight",
                           tuple(ours.weight.shape), tuple(theirs.weight.shape))
        with torch.no_grad():
            theirs.weight.copy_(ours.weight)
    x = torch.randn(2, c_in, size, size)  # (B, C_in, H, W)
    shown_x = f"{shown} on an input of shape {tuple(x.shape)}"
    with torch.no_grad():
        expected = ref(x)
        got = call(module, f"({shown_x})", x.clone())
    if not torch.is_tensor(got) or got.shape != expected.shape:
        raise Mismatch(f"{shown_x}: output shape", tuple(expected.shape),
                       tuple(got.shape) if torch.is_tensor(got) else got,
                       "padding kernel_size // 2 and the stride belong to the depthwise "
                       "layer; the pointwise layer keeps H x W.")
    diff = (got.double() - expected.double()).abs().max().item()
    if not diff <= 1e-5 * (1 + expected.abs().max().item()):
        raise Mismatch(f"{shown_x} with nclib's weights copied in: output values",
                       Text("max |difference| <= 1e-05"), Text(f"max |difference| = {diff:.3g}"),
                       "forward must apply self.depthwise, then self.pointwise, and "
                       "nothing else (no ReLU, no BatchNorm).")


# ---------------------------------------------------------------- low rank (tasks 5-6)
def _lowrank_cases() -> list[tuple[torch.Tensor, int]]:
    """(W, K): hand-worked matrices, edge ranks, tall, wide and random matrices."""
    g = torch.Generator().manual_seed(8)
    cases = [(torch.diag(torch.tensor([3.0, 2.0, 1.0])), 2),  # error: the dropped 1
             (torch.tensor([[1.0, 2.0], [2.0, 4.0]]), 1),  # rank 1 already: error 0
             (torch.ones(4, 6), 1),
             (torch.randn(6, 3, generator=g), 3),  # full rank of a tall matrix: exact
             (torch.randn(4, 10, generator=g), 1),  # wide, rank 1
             (torch.randn(300, 784, generator=g) * 0.05, 21)]  # LeNet-300-100's fc1 at 10x
    rng = random.Random(9)
    for _ in range(5):
        n, m = rng.randint(1, 40), rng.randint(1, 40)
        cases.append((torch.randn(n, m, generator=g), rng.randint(1, min(n, m))))
    return cases


def _matrix(W: torch.Tensor) -> str:
    return f"weight of shape {tuple(W.shape)}" if W.numel() > 9 else f"weight {W.tolist()}"


def ref_lowrank_error(W: torch.Tensor, rank: int) -> float:
    """||W - W_K||_F of the best rank-K approximation: sqrt(sum of the dropped s_i^2)."""
    S = torch.linalg.svd(W.double(), full_matrices=False).S
    return S[rank:].pow(2).sum().sqrt().item()


@task("architecture", points=2, hint="Lecture 04, section 1 (Low rank: N x M versus K x (N + M)) "
      "says which singular values to keep and how to split them between A and B, and the "
      "torch.linalg.svd docs say in which order it returns them; compare your error with the "
      "one the Eckart-Young theorem there predicts.")
def lowrank_factors(student):
    """lowrank_factors(weight, rank) -> (A, B), A of shape (N, K), B of shape (K, M), with
    A @ B the best rank-K approximation of weight (its error is checked against the SVD's)."""
    for W, K in _lowrank_cases():
        N, M = W.shape
        shown = f"({_matrix(W)}, rank={K})"
        got = call(student, shown, W.clone(), K)
        if not (isinstance(got, (tuple, list)) and len(got) == 2
                and all(torch.is_tensor(t) for t in got)):
            raise Mismatch(shown, Text("a pair of tensors (A, B)"), got)
        A, B = got
        if tuple(A.shape) != (N, K) or tuple(B.shape) != (K, M):
            raise Mismatch(f"{shown}: shapes of (A, B)", ((N, K), (K, M)),
                           (tuple(A.shape), tuple(B.shape)),
                           "A is (N, K) and B is (K, M), so that A @ B is (N, M) like weight.")
        product = A.double() @ B.double()  # (N, M)
        error, best = (W.double() - product).norm().item(), ref_lowrank_error(W, K)
        scale = W.double().norm().item()
        if abs(error - best) > 1e-4 * scale + 1e-6:
            raise Mismatch(f"{shown}: the error ||weight - A @ B||_F", round(best, 6),
                           round(error, 6), "the best rank-K error is the root of the sum "
                           "of the squared singular values you drop; keep the K LARGEST ones "
                           "(torch.linalg.svd sorts them in descending order) and multiply "
                           "them in.")
        U, S, Vh = torch.linalg.svd(W.double(), full_matrices=False)
        best_product = (U[:, :K] * S[:K]) @ Vh[:K]  # (N, M)
        diff = (product - best_product).abs().max().item()
        if diff > 1e-4 * (1 + best_product.abs().max().item()):
            raise Mismatch(f"{shown}: A @ B", Text("U_K S_K V_K^T from torch.linalg.svd"),
                           Text(f"a matrix that differs by up to {diff:.3g}"))
    return "Eckart-Young: no rank-K matrix is closer to W than the truncated SVD."


def _linear_cases() -> list[tuple[nn.Linear, int]]:
    """(layer, K), with PyTorch's default initialization from the current seed."""
    cases = [(nn.Linear(784, 300), 21), (nn.Linear(10, 6), 6), (nn.Linear(5, 8, bias=False), 2),
             (nn.Linear(1, 1), 1), (nn.Linear(30, 20), 1)]
    rng = random.Random(11)
    for _ in range(4):
        m, n = rng.randint(1, 50), rng.randint(1, 50)
        cases.append((nn.Linear(m, n, bias=rng.random() < 0.7), rng.randint(1, min(m, n))))
    return cases


@task("architecture", points=1, hint="Lecture 04, section 1 (Low rank: N x M versus K x (N + M)) "
      "shows the two thin layers that replace one (as nclib.arch.factorize_linear does), and the "
      "torch.nn.Linear docs give the shape of a layer's weight; check your parameter count, the "
      "bias counted once, and that the original layer is unchanged.")
def lowrank_linear(student):
    """lowrank_linear(linear, rank) -> a module computing A (B x) + b with the rank-K SVD
    factors of linear.weight: K (N + M) weights plus the N biases; outputs compared with
    nclib.arch.LowRankLinear."""
    with torch.random.fork_rng(devices=[]):  # leave the notebook's random numbers alone
        torch.manual_seed(10)
        for linear, K in _linear_cases():
            _check_lowrank_linear(student, linear, K)
    return "LeNet-300-100's fc1 at rank 21: 23,064 parameters instead of 235,500."


def _check_lowrank_linear(student, linear: nn.Linear, K: int) -> None:
    N, M = linear.out_features, linear.in_features
    bias = linear.bias is not None
    shown = f"(nn.Linear({M}, {N}, bias={bias}), rank={K})"
    before = {k: v.clone() for k, v in linear.state_dict().items()}
    got = call(student, shown, linear, K)
    if any(not torch.equal(before[k], v) for k, v in linear.state_dict().items()):
        raise Mismatch(shown, Text("the original layer left unchanged"), Text("its weights changed"),
                       "build new layers; copy the factors into them.")
    if not isinstance(got, nn.Module):
        raise Mismatch(shown, Text("an nn.Module (like nn.Sequential of two nn.Linear)"),
                       got)
    ref = LowRankLinear.from_linear(linear, rank=K)
    if count_params(got) != count_params(ref):
        raise Mismatch(f"{shown}: number of parameters (K (N + M) weights"
                       f"{' + N biases' if bias else ''})", count_params(ref),
                       count_params(got))
    x = torch.randn(3, M)  # (B, M)
    with torch.no_grad():
        expected = ref(x)  # (B, N)
        out = call(got, f"{shown} applied to an input of shape {tuple(x.shape)}", x.clone())
    if not torch.is_tensor(out) or out.shape != expected.shape:
        raise Mismatch(f"{shown}: output shape for an input of shape {tuple(x.shape)}",
                       tuple(expected.shape),
                       tuple(out.shape) if torch.is_tensor(out) else out)
    diff = (out.double() - expected.double()).abs().max().item()
    if not diff <= 1e-4 * (1 + expected.abs().max().item()):
        raise Mismatch(f"{shown}: outputs", Text("A (B x) + b with the rank-K SVD factors"),
                       Text(f"outputs that differ by up to {diff:.3g}"),
                       "use your lowrank_factors (the K largest singular values), B in "
                       "the first layer, A in the second, and the original bias.")
    if count_macs(got, (M,)).total != K * (N + M):
        raise Mismatch(f"{shown}: MACs per input", K * (N + M),
                       count_macs(got, (M,)).total,
                       "return nn.Sequential of two nn.Linear layers (MACs are counted on "
                       "nn.Linear layers), applied one after the other; never form A @ B.")


# ---------------------------------------------------------------- concept questions
lowrank_weights = number(
    "architecture", "lowrank_weights", tolerance=0.001, relative=True,
    answer_hash="77301d4a245ad3e34c667b867103d655d87c12c5833d202b8a343964f367571b",
    explanation="The factors are N x K and K x M: K (N + M) weights instead of N M, about 10x "
                "fewer at this rank.")

separable_short_of_macs = choice(
    "architecture", "separable_short_of_macs",
    options={"a": "The depthwise layer does only about 4.5 MACs per value it reads or writes, "
                  "so it waits for memory instead of computing.",
             "b": "PyTorch computes depthwise convolutions in double precision.",
             "c": "The MAC count of a depthwise convolution leaves out its K x K filters."},
    answer_hash="3d553bb45eea180c263923c98a2fcc530322acb419737e2b495850a5ca48cd0e",
    explanation="Each depthwise filter touches a value at most K^2 times, so the layer is bound "
                "by memory traffic, and its time falls much less than its MACs.")
