"""Chapter 01 checks, tasks 1-3: the magnitude mask, Han et al.'s std threshold and
masked training (the references are nclib.pruning.magnitude and plain PyTorch)."""
from __future__ import annotations

import copy
import random

import torch
from torch import nn

from nclib.course.checking import Mismatch, Text, call, close, describe, task
from nclib.pruning.magnitude import magnitude_mask as _magnitude_mask
from nclib.pruning.magnitude import std_threshold as _std_threshold


def _weight(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Random weights with distinct magnitudes (no ties), like a trained layer's."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * 0.1


# ---------------------------------------------------------------- task 1: magnitude mask
def ref_magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    return _magnitude_mask(weight, sparsity)


def _mask_cases() -> list[tuple[torch.Tensor, float]]:
    with_zeros = _weight((10, 10), 5)
    with_zeros[:, :3] = 0  # a layer pruned before: 30% zeros, pruned again to 50%
    big_negative = _weight((4, 5), 6)
    big_negative[0, 0] = -5.0  # the largest magnitude is negative: it must be kept
    fixed = [(torch.tensor([0.5, -0.125, 0.25, 0.0625]), 0.5),
             (_weight((3, 4), 1), 0.5),
             (_weight((4, 3, 3, 3), 2), 0.9),  # a conv weight (C_out, C_in, K, K)
             (_weight((10, 10), 3), 0.29),  # 0.29 * 100 = 28.999...: round, do not truncate
             (_weight((5, 7), 4), 0.0),  # nothing removed
             (with_zeros, 0.5), (big_negative, 0.5),
             (torch.tensor([2.0]), 0.4),  # round(0.4) = 0: the only weight stays
             (_weight((1000,), 7), 0.99)]
    rng = random.Random(11)
    shapes = [(20, 30), (8, 4, 3, 3), (300,), (6, 2, 5, 5), (50, 10), (7, 9)]
    return fixed + [(_weight(s, 100 + i), round(rng.uniform(0.05, 0.95), 3))
                    for i, s in enumerate(shapes)]


def _mask_problem(weight: torch.Tensor, mask: torch.Tensor, num_remove: int):
    """None if `mask` removes exactly `num_remove` weights, none larger than a kept one;
    else (expected, got, hint) describing what is wrong."""
    removed = int((~mask).sum())
    if removed != num_remove:
        return (f"a mask removing {num_remove} weights", f"a mask removing {removed} weights",
                f"remove round(sparsity * numel) = {num_remove} weights here; int() would "
                "truncate.")
    size = weight.abs()
    if 0 < removed < weight.numel() and size[~mask].max() > size[mask].min():
        return (f"the {num_remove} smallest |w| removed",
                f"a removed weight with |w| = {size[~mask].max():.4g} while "
                f"|w| = {size[mask].min():.4g} is kept",
                "rank by magnitude, weight.abs(), not by the signed value.")
    return None


@task("pruning", points=1, hint="Lecture 01, section 1 (Networks are over-parameterized) "
      "defines magnitude pruning, and the docstring example of "
      "nclib.pruning.magnitude.magnitude_mask shows a correct mask; check your mask's dtype, "
      "its shape and how many weights it removes against Task 1's statement.")
def magnitude_mask(student):
    """magnitude_mask(weight, sparsity) -> bool mask (True = kept) removing the smallest |w|."""
    for weight, sparsity in _mask_cases():
        shown = f"({describe(weight, 40)}, {sparsity})"
        original = weight.clone()
        got = call(student, shown, weight, sparsity)
        if not torch.equal(weight, original):
            raise Mismatch(shown, Text("the weight left unchanged"),
                           Text("the weight was modified in place"),
                           "compute a mask and return it; leave the weight alone.")
        if not torch.is_tensor(got) or got.dtype != torch.bool:
            what = f"dtype {got.dtype}" if torch.is_tensor(got) else type(got).__name__
            raise Mismatch(shown, Text("a bool tensor"), Text(what),
                           "a comparison like `weight.abs() > threshold` gives a bool tensor.")
        if got.shape != weight.shape:
            raise Mismatch(shown, Text(f"a mask of shape {tuple(weight.shape)}"),
                           Text(f"shape {tuple(got.shape)}"),
                           "reshape the flat mask back: mask.view(weight.shape).")
        num_remove = round(sparsity * weight.numel())
        problem = _mask_problem(weight, got, num_remove)
        if problem is not None:
            expected, got_text, hint = problem
            if _mask_problem(weight, ~got, num_remove) is None:
                hint = "True means kept, False means removed."
            raise Mismatch(shown, Text(expected), Text(got_text), hint)
    return "Han et al. remove 92% of LeNet-300-100's first layer this way (and retrain)."


# ---------------------------------------------------------------- task 2: std threshold
def ref_std_threshold(weight: torch.Tensor, quality: float) -> float:
    return _std_threshold(weight, quality)


def _as_float(value):
    """A student's number as a Python float (a 0-d tensor or numpy scalar is fine too)."""
    if torch.is_tensor(value) and value.numel() == 1:
        return float(value)
    if hasattr(value, "item") and not isinstance(value, (list, tuple)):
        try:
            return float(value.item())
        except (TypeError, ValueError):
            return value
    return value


def _std_cases() -> list[tuple[torch.Tensor, float]]:
    half_zero = _weight((10, 10), 21)
    half_zero[:5] = 0  # a layer pruned before: its zeros count in the std
    fixed = [(torch.tensor([1.0, -1.0, 1.0, -1.0]), 1.0),  # std = 1 when dividing by n = 4
             (torch.tensor([[0.0, 3.0], [-3.0, 0.0]]), 0.5),
             (_weight((300, 784), 22), 1.0), (half_zero, 1.5),
             (_weight((20, 1, 5, 5), 23), 0.7),  # a conv weight
             (_weight((7, 3), 24), 0.0)]
    rng = random.Random(25)
    shapes = [(50, 20), (8, 4, 3, 3), (10,), (100, 30)]
    return fixed + [(_weight(s, 200 + i), round(rng.uniform(0.2, 2.5), 3))
                    for i, s in enumerate(shapes)]


@task("pruning", points=1, hint="Lecture 01, section 2 (Learning both weights and connections "
      "(Han et al., NIPS 2015)) quotes Han et al.'s threshold (their Section 4); the correction "
      "argument in the torch.std docs says what each convention divides by, and the docstring of "
      "nclib.pruning.magnitude.std_threshold why the zeros count.")
def std_threshold(student):
    """std_threshold(weight, quality) -> float: Han et al.'s layer threshold."""
    for weight, quality in _std_cases():
        shown = f"({describe(weight, 40)}, {quality})"
        expected = ref_std_threshold(weight, quality)
        got = _as_float(call(student, shown, weight.clone(), quality))
        if not isinstance(got, (int, float)) or isinstance(got, bool) or \
                not close(float(got), expected, rtol=1e-5, atol=1e-7):
            raise Mismatch(shown, expected, got)
    return "A larger quality removes more weights; Han et al. tune it per layer."


# ---------------------------------------------------------------- task 3: masked training
def ref_apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():  # an in-place edit of the weights, not a step autograd should see
        for name, mask in masks.items():
            model.get_parameter(name).mul_(mask)


def _masked_models() -> list[tuple[str, nn.Module, dict[str, torch.Tensor]]]:
    torch.manual_seed(31)
    mlp = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    cnn = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 3))
    g = torch.Generator().manual_seed(32)

    def random_mask(p: torch.Tensor) -> torch.Tensor:
        return torch.rand(p.shape, generator=g) > 0.6

    cases = [("Linear-ReLU-Linear, masks on both weights", mlp,
              {n: random_mask(p) for n, p in mlp.named_parameters() if n.endswith("weight")}),
             ("a conv net, masks on the conv weight and a bias", cnn,
              {"0.weight": random_mask(cnn[0].weight), "3.bias": random_mask(cnn[3].bias)}),
             ("Linear-ReLU-Linear, no masks at all", copy.deepcopy(mlp), {})]
    return cases


def _check_masked(student, label, model, masks, step: str) -> None:
    """Call the student's function on `model` and compare every parameter with the
    reference result; parameters must stay the same objects (the optimizer holds them)."""
    expected = copy.deepcopy(model)
    ref_apply_masks(expected, masks)
    params = dict(model.named_parameters())
    shown = f"({label}{step})"
    call(student, shown, model, masks)
    for name, p in model.named_parameters():
        if p is not params[name]:
            raise Mismatch(shown, Text(f"{name} still the same Parameter object"),
                           Text("a new Parameter"),
                           "modify the weights in place (p.mul_(mask) under torch.no_grad()): "
                           "the optimizer keeps references to the old Parameters.")
        want = expected.get_parameter(name)
        if not torch.equal(p.detach(), want.detach()):
            if name in masks:
                left = int(((p.detach() != 0) & ~masks[name]).sum())
                got = (f"{name} with {left} removed weight(s) still nonzero" if left
                       else f"{name} with kept weights changed")
                raise Mismatch(shown, Text(f"{name} zero where the mask is False, unchanged "
                                            "elsewhere"), Text(got))
            raise Mismatch(shown, Text(f"{name} unchanged (it has no mask)"),
                           Text(f"{name} changed"), "only touch the parameters named in masks.")


@task("pruning", points=1, hint="Lecture 01, section 2 (Learning both weights and connections "
      "(Han et al., NIPS 2015)) explains why removed weights must stay zero while retraining, and "
      "the torch.no_grad docs say how to edit a parameter in place; check afterwards that each "
      "Parameter is still the same object and that the unmasked ones did not change.")
def apply_masks(student):
    """apply_masks(model, masks): zero the removed weights in place (a fit step hook)."""
    for label, model, masks in _masked_models():
        model = copy.deepcopy(model)
        with torch.no_grad():
            for p in model.parameters():  # nonzero everywhere, as after an optimizer step
                p.add_(0.01 * torch.sign(p) + 0.001)
        _check_masked(student, label, model, masks, "")
    # During training: Adam moves every weight after each step; the hook puts the zeros back.
    label, model, masks = _masked_models()[0]
    model = copy.deepcopy(model)
    ref_apply_masks(model, masks)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(33)
    for step in range(1, 4):
        x, y = torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        _check_masked(student, label, model, masks, f", after Adam step {step}")
    return "As a step hook: fit(model, loader, step_hook=lambda m, step: apply_masks(m, masks))."
