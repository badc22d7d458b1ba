"""Checks of chapter 04: pass on the reference, fail with the right message on wrong answers."""
import pytest
import torch
from torch import nn

from nclib.course import check
from nclib.chapters.architecture import checks as architecture


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---------------------------------------------------------------- reference answers
def param_counts(k, c_in, c_out):
    return k * k * c_in * c_out, k * k * c_in, c_in * c_out


def mac_counts(k, c_in, c_out, h, w):
    return k * k * c_in * c_out * h * w, k * k * c_in * h * w, c_in * c_out * h * w


class SeparableConv(nn.Module):
    def __init__(self, c_in, c_out, kernel_size=3, stride=1):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, kernel_size, stride, kernel_size // 2,
                                   groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def lowrank_factors(weight, rank):
    U, S, Vh = torch.linalg.svd(weight, full_matrices=False)
    return U[:, :rank] * S[:rank], Vh[:rank]


def lowrank_linear(linear, rank):
    A, B = lowrank_factors(linear.weight.detach(), rank)
    first = nn.Linear(linear.in_features, rank, bias=False)
    second = nn.Linear(rank, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        first.weight.copy_(B)
        second.weight.copy_(A)
        if linear.bias is not None:
            second.bias.copy_(linear.bias)
    return nn.Sequential(first, second)


# ---------------------------------------------------------------- wrong answers
class NoGroups(SeparableConv):
    """A full K x K convolution where the depthwise one belongs."""

    def __init__(self, c_in, c_out, kernel_size=3, stride=1):
        super().__init__(c_in, c_out, kernel_size, stride)
        self.depthwise = nn.Conv2d(c_in, c_in, kernel_size, stride, kernel_size // 2, bias=False)


class NoPadding(SeparableConv):
    def __init__(self, c_in, c_out, kernel_size=3, stride=1):
        super().__init__(c_in, c_out, kernel_size, stride)
        self.depthwise = nn.Conv2d(c_in, c_in, kernel_size, stride, groups=c_in, bias=False)


class WithReLU(SeparableConv):
    def forward(self, x):
        return self.pointwise(torch.relu(self.depthwise(x)))


class OtherNames(nn.Module):
    def __init__(self, c_in, c_out, kernel_size=3, stride=1):
        super().__init__()
        self.dw = nn.Conv2d(c_in, c_in, kernel_size, stride, kernel_size // 2, groups=c_in,
                            bias=False)
        self.pw = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        return self.pw(self.dw(x))


def smallest_singular_values(weight, rank):
    U, S, Vh = torch.linalg.svd(weight, full_matrices=False)
    return U[:, -rank:] * S[-rank:], Vh[-rank:]


def without_singular_values(weight, rank):
    U, S, Vh = torch.linalg.svd(weight, full_matrices=False)
    return U[:, :rank], Vh[:rank]


def swapped_factors(weight, rank):
    A, B = lowrank_factors(weight, rank)
    return B, A


def bias_in_both(linear, rank):
    model = lowrank_linear(linear, rank)
    first = nn.Linear(linear.in_features, rank)
    with torch.no_grad():
        first.weight.copy_(model[0].weight)
        first.bias.zero_()
    model[0] = first
    return model


def bias_dropped(linear, rank):
    model = lowrank_linear(linear, rank)
    if model[1].bias is not None:
        nn.init.zeros_(model[1].bias)
    return model


def one_dense_layer(linear, rank):
    A, B = lowrank_factors(linear.weight.detach(), rank)
    dense = nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        dense.weight.copy_(A @ B)
    return dense


CASES = {
    "param_counts": (param_counts, [
        (lambda k, ci, co: (k * k * ci * co, k * k * co, ci * co),       # depthwise over C_out
         "for input (3, 2, 4) expected (72, 18, 8), got (72, 36, 8)"),
        (lambda k, ci, co: (k * k * ci * co, k * k * ci, k * k * ci * co),  # pointwise as K x K
         "got (72, 18, 72)"),
        (lambda k, ci, co: (k * k * ci * co + co, k * k * ci + ci, ci * co + co),  # with biases
         "got (76, 20, 12)"),
    ]),
    "mac_counts": (mac_counts, [
        (lambda k, ci, co, h, w: (k * k * ci * co * h * w, k * k * ci, ci * co * h * w),  # no H x W
         "for input (3, 32, 64, 112, 112) expected (231211008, 3612672, 25690112), got "
         "(231211008, 288, 25690112)"),
        (lambda k, ci, co, h, w: (k * k * ci * co * h * w, k * k * co * h * w, ci * co * h * w),
         "for input (3, 2, 4, 1, 1) expected (72, 18, 8), got (72, 36, 8)"),
    ]),
    "separable_ratio": (lambda k, ci, co: 1 / co + 1 / k ** 2, [
        (lambda k, ci, co: 1 / ci + 1 / k ** 2, "expected 0.3611111111111111, got 0.611111111"),
        (lambda k, ci, co: 1 / co + 1 / k, "got 0.58333"),
    ]),
    "separable_conv": (SeparableConv, [
        (NoGroups, "SeparableConv(2, 4, kernel_size=3, stride=1): number of parameters "
                   "expected 26, got 44"),
        (NoPadding, "output shape expected (2, 4, 8, 8), got (2, 4, 6, 6)"),
        (WithReLU, "output values expected max |difference| <= 1e-05, got max |difference|"),
        (OtherNames, "the layer `self.depthwise` expected an nn.Conv2d, got None"),
    ]),
    "lowrank_factors": (lowrank_factors, [
        (smallest_singular_values, "rank=2): the error ||weight - A @ B||_F expected 1.0, got 3.0"),
        (without_singular_values, "expected 1.0, got 2.44949"),
        (swapped_factors, "shapes of (A, B) expected ((3, 2), (2, 3)), got ((2, 3), (3, 2))"),
    ]),
    "lowrank_linear": (lowrank_linear, [
        (bias_in_both, "(nn.Linear(784, 300, bias=True), rank=21): number of parameters "
                       "(K (N + M) weights + N biases) expected 23064, got 23085"),
        (bias_dropped, "outputs expected A (B x) + b with the rank-K SVD factors, got outputs "
                       "that differ"),
        (one_dense_layer, "expected 23064, got 235500"),
    ]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reference_passes(name, capsys):
    """The reference answer gets full points and a PASS verdict."""
    task = getattr(check.architecture, name)
    r = task(CASES[name][0])
    assert (r.status, r.points) == ("passed", task.points), r.reason
    assert "[PASS]" in capsys.readouterr().out


@pytest.mark.parametrize("name, wrong, message",
                         [(n, w, m) for n, (_, bad) in CASES.items() for w, m in bad])
def test_wrong_versions_fail_with_input_expected_got_and_hint(name, wrong, message):
    """A wrong answer fails, naming the input, the expected and received value, and a hint."""
    r = getattr(check.architecture, name).grade(wrong)
    assert r.status == "failed" and r.points == 0, r.reason
    assert message in r.reason and "for input" in r.reason and "Hint:" in r.reason, r.reason


@pytest.mark.parametrize("name", list(CASES))
def test_stub_and_missing_answer_are_not_attempted(name):
    """The released stub (NotImplementedError), None and ... are 'not attempted', not failures."""
    task = getattr(check.architecture, name)
    for student in (_stub, None, ...):
        r = task.grade(student)
        assert r.status == "not_attempted" and r.points == 0


def test_stub_module_is_not_attempted():
    """A SeparableConv whose __init__ still raises NotImplementedError is 'not attempted'."""
    class Stub(nn.Module):
        def __init__(self, c_in, c_out, kernel_size=3, stride=1):
            super().__init__()
            raise NotImplementedError("Replace this line with your code.")

    assert check.architecture.separable_conv.grade(Stub).status == "not_attempted"


def test_student_exception_is_an_error_with_the_input():
    """An exception in the student's code becomes an 'error' verdict naming the input."""
    r = check.architecture.lowrank_factors.grade(lambda w, k: w[k + 100])
    assert r.status == "error" and "IndexError" in r.reason and "rank=2" in r.reason
    r = check.architecture.separable_conv.grade(lambda *args: 1 / 0)
    assert r.status == "error" and "ZeroDivisionError" in r.reason


def test_points_and_names():
    """Chapter 04 has six tasks worth 8 points; check cells read check.architecture.<task>."""
    names = ["param_counts", "mac_counts", "separable_ratio", "separable_conv",
             "lowrank_factors", "lowrank_linear"]
    assert sum(getattr(check.architecture, n).points for n in names) == 8
    assert all(getattr(check.architecture, n).key == f"architecture.{n}" for n in names)


def test_checks_leave_the_global_random_state_alone():
    """Running a check does not change the notebook's torch random numbers."""
    state = torch.random.get_rng_state()
    check.architecture.separable_conv.grade(SeparableConv)
    check.architecture.lowrank_linear.grade(lowrank_linear)
    assert torch.equal(state, torch.random.get_rng_state())


def test_references_agree_with_nclib_formulas():
    """The meta-device references equal nclib.arch's closed-form cost formulas."""
    from nclib import arch

    for k, c_in, c_out in [(3, 2, 4), (5, 7, 3), (1, 16, 8)]:
        assert architecture.ref_param_counts(k, c_in, c_out) == (
            arch.conv_params(k, c_in, c_out), arch.depthwise_params(k, c_in),
            arch.pointwise_params(c_in, c_out))
        assert architecture.ref_mac_counts(k, c_in, c_out, 5, 3) == (
            arch.conv_macs(k, c_in, c_out, 5, 3), arch.depthwise_macs(k, c_in, 5, 3),
            arch.pointwise_macs(c_in, c_out, 5, 3))
    assert architecture.ref_lowrank_error(torch.diag(torch.tensor([3.0, 2.0, 1.0])), 1) \
        == pytest.approx(5 ** 0.5)
