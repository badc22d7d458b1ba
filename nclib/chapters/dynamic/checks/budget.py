"""Chapter 06 check, task 5: choose the density at which a trained FBS network meets a MAC
budget with an accuracy bar.

The network is the zoo's `dyn-fbs-4x` (fine-tuned at density 0.49); winner-take-all lets it
run at any other density with no retraining, at some cost in accuracy. The student hands in
a density; the check runs a copy of the network at that density and measures the MACs per
image that the skipping inference computes (`SkippingFBS`, the saliency predictors
included) and the accuracy on the 1,000 test digits.
"""
from __future__ import annotations

import copy
import numbers

import torch

from nclib import data, zoo  # the chapter's package, imported first, registers its zoo
from nclib.course.checking import Failure, task
from nclib.dynamic import FBSNet, SkippingFBS
from nclib.train import evaluate

__all__ = ["choose_density", "measure_density", "MAC_BUDGET", "MIN_ACCURACY", "NETWORK"]

NETWORK = "dyn-fbs-4x"
# The budget: 5x fewer MACs than the dense SmallVGG (58,379,776 per digit). Density 0.44
# needs 11,773,267 MACs (over), 0.43 needs 11,316,222 (within): the decision is the highest
# density within the budget. How much accuracy a lower density costs depends on the zoo
# model's training, which differs with the thread count that trained it (floating-point
# sums in another order). Measured on dyn-fbs-4x (fine-tuned at 0.49) trained with 1 thread
# (as CI and a 2-core laptop do) / with 2 threads: 0.43 reaches 96.4% / 94.5%, 0.40 94.3% /
# 89.8%, 0.35 85.1% / 62.5%. The bar leaves a point of margin at 0.43 for either.
MAC_BUDGET = 58_379_776 // 5
MIN_ACCURACY = 0.93


def measure_density(net: FBSNet, density: float) -> tuple[int, float]:
    """(MACs per image, test accuracy) of a copy of `net` run at `density`.

    The MACs are `SkippingFBS`'s count (the saliency predictors included; the same for every
    image, since each keeps ceil(d x C) channels a layer); the accuracy is the masked
    network's on the 1,000 test digits, which the skipping one equals (a test compares)."""
    net = copy.deepcopy(net).cpu().set_density(density).eval()
    test = data.loaders("mnist").test
    macs = SkippingFBS(net).forward_with_macs(next(iter(test))[0][:1])[1][0]
    return macs, evaluate(net, test, device="cpu")


def _density(student) -> float:
    if isinstance(student, torch.Tensor) and student.numel() == 1:
        student = student.item()
    if isinstance(student, bool) or not isinstance(student, numbers.Real):
        raise Failure(f"hand in the density, a number in (0, 1]; got {type(student).__name__} "
                      f"{student!r}. Hint: the slider's value, as a float.")
    if not 0 < float(student) <= 1:
        raise Failure(f"density {float(student)!r} is not in (0, 1]: it is the fraction of each "
                      "layer's channels kept per image.")
    return float(student)


@task("dynamic", points=2, hint="Lecture 06, section 9 (the density slider): move it to where "
      "the MACs fall under the budget and read the accuracy there; both fall with density.")
def choose_density(student):
    """choose_density(d): the zoo's dyn-fbs-4x run at density d must need at most MAC_BUDGET
    MACs per image and reach MIN_ACCURACY on the 1,000 test digits."""
    density = _density(student)
    macs, accuracy = measure_density(zoo.trained(NETWORK, progress=False), density)
    measured = (f"at density {density:g} dyn-fbs-4x needs {macs:,} MACs per image (budget "
                f"{MAC_BUDGET:,}) and reaches {accuracy:.1%} on the test digits (bar "
                f"{MIN_ACCURACY:.1%})")
    if macs > MAC_BUDGET:
        raise Failure(f"{measured}: over the MAC budget. Hint: fewer channels per layer cost "
                      "fewer MACs, about d^2 of the dense convolutions.")
    if accuracy < MIN_ACCURACY:
        raise Failure(f"{measured}: below the accuracy bar. Hint: the lower the density, the "
                      "more each image loses; find the highest density within the budget.")
    return f"{measured}."
