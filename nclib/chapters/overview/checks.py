"""Checks for chapter 00 (overview): counting parameters and MACs of layers by hand.

The references build the real PyTorch layer and count it with `nclib.measure`, so a
student's formula is compared with what the layer actually holds and computes.
"""
from __future__ import annotations

import random

from torch import nn

from nclib.course.checking import expect, task
from nclib.course.questions import number
from nclib.measure import count_macs, count_params


def ref_linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    return count_params(nn.Linear(in_features, out_features, bias=bias))


def ref_linear_macs(in_features: int, out_features: int) -> int:
    return count_macs(nn.Linear(in_features, out_features), (in_features,)).total


def ref_conv2d_params(c_in: int, c_out: int, kernel_size: int, groups: int = 1,
                      bias: bool = True) -> int:
    return count_params(nn.Conv2d(c_in, c_out, kernel_size, groups=groups, bias=bias))


def ref_conv2d_macs(c_in: int, c_out: int, kernel_size: int, h_out: int, w_out: int,
                    groups: int = 1) -> int:
    # no padding, stride 1: an input of (h_out + k - 1) x (w_out + k - 1) gives h_out x w_out
    conv = nn.Conv2d(c_in, c_out, kernel_size, groups=groups)
    return count_macs(conv, (c_in, h_out + kernel_size - 1, w_out + kernel_size - 1)).total


def _linear_cases(with_bias: bool) -> list[tuple]:
    rng = random.Random(0)
    fixed = [(784, 300), (300, 100), (1, 1), (3, 7)]
    cases = fixed + [(rng.randint(1, 500), rng.randint(1, 500)) for _ in range(6)]
    if with_bias:
        return [c + (True,) for c in cases] + [c + (False,) for c in cases[:4]]
    return cases


@task("overview", points=1, hint="Lecture 00, section 1 (Computation: multiply-accumulates) "
      "describes what a Linear layer computes, and the torch.nn.Linear docs give the shapes of "
      "its weight and bias; compare your count with nclib.measure.count_params on a real "
      "nn.Linear, with and without bias.")
def linear_params(student):
    """linear_params(in_features, out_features, bias=True) -> number of parameters."""
    for args in _linear_cases(with_bias=True):
        expect(student, ref_linear_params, args)
    return "LeNet-300-100's first layer alone holds 235,500 of its 266,610 parameters."


@task("overview", points=1, hint="Lecture 00, section 1 (Computation: multiply-accumulates) "
      "says what one MAC is and what a Linear layer computes; compare your count with "
      "nclib.measure.count_macs on a real nn.Linear, and ask whether adding the bias multiplies.")
def linear_macs(student):
    """linear_macs(in_features, out_features) -> MACs for one input vector."""
    for args in _linear_cases(with_bias=False):
        expect(student, ref_linear_macs, args)


def _conv_cases() -> list[tuple]:
    rng = random.Random(1)
    cases = [(1, 20, 5, 1, True), (20, 50, 5, 1, True), (32, 64, 3, 1, False),
             (8, 8, 3, 8, False),  # depthwise: one 3x3 filter per channel
             (16, 32, 1, 1, True), (6, 12, 3, 3, True)]  # pointwise; 3 groups
    for _ in range(4):
        g = rng.choice([1, 2, 4])
        cases.append((g * rng.randint(1, 8), g * rng.randint(1, 8), rng.choice([1, 3, 5]), g,
                      rng.random() < 0.5))
    return cases


@task("overview", points=1, hint="Task 3's text and the groups argument in the torch.nn.Conv2d "
      "docs say how many input channels each filter sees; compare your count with "
      "nclib.measure.count_params on a real nn.Conv2d, a grouped one and one without bias too.")
def conv2d_params(student):
    """conv2d_params(c_in, c_out, kernel_size, groups=1, bias=True) -> parameters."""
    for c_in, c_out, k, g, b in _conv_cases():
        expect(student, ref_conv2d_params, (c_in, c_out, k), {"groups": g, "bias": b})


@task("overview", points=1, hint="Lecture 00, section 1 (Computation: multiply-accumulates) "
      "gives a convolution's MACs per output value; compare your count with "
      "nclib.measure.count_macs on a real nn.Conv2d with the same groups and an h_out x w_out "
      "output.")
def conv2d_macs(student):
    """conv2d_macs(c_in, c_out, kernel_size, h_out, w_out, groups=1) -> MACs."""
    rng = random.Random(2)
    for c_in, c_out, k, g, _ in _conv_cases():
        h, w = rng.randint(1, 12), rng.randint(1, 12)
        expect(student, ref_conv2d_macs, (c_in, c_out, k, h, w), {"groups": g})
    return "The lecture's 3x3x2x4 example: 72 MACs per output pixel."


# ---------------------------------------------------------------- concept questions
fp32_megabytes = number(
    "overview", "fp32_megabytes", tolerance=0.01, relative=True,
    answer_hash="c1689f12077d10878a275ef535203515d992dc3e1b6d0db5e35082276fefeb08",
    explanation="A 32-bit float takes 4 bytes, so a model's size in bytes is four times its "
                "number of weights: the lecture's app-store warning is about sizes like this.",
    hint="Lecture 00, section 2 (Memory and storage: bytes) says how many bytes one 32-bit "
         "weight takes; the question counts 1 MB as 10^6 bytes.")

dram_vs_multiply = number(
    "overview", "dram_vs_multiply", tolerance=0.05, relative=True,
    answer_hash="a8caef770c549db1b65810afa314be5547b4e9da9bb4b442f9a176ce6b31d1a5",
    explanation="Divide the two energies: one weight fetched from off-chip memory costs as much "
                "as a couple of hundred multiplications, so weights that fit on chip save energy.")
