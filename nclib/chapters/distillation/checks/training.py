"""Chapter 02 checks, tasks 4-5: an ensemble's prediction and one distillation training step."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from nclib import distill
from nclib.chapters.distillation.checks.losses import _diagnose, _rows
from nclib.course.checking import Mismatch, Text, call, close, task


# ---------------------------------------------------------------- task 4: ensembles
def ref_ensemble_probs(models, x):
    with torch.no_grad():
        return distill.Ensemble(models)(x).exp()


def _members(K: int, d_in: int, C: int, scale: float) -> list[nn.Module]:
    members = [nn.Sequential(nn.Linear(d_in, 8), nn.ReLU(), nn.Linear(8, C)) for _ in range(K)]
    with torch.no_grad():
        for m in members:
            m[2].weight.mul_(scale)  # confident members: sharply peaked probabilities
    return [m.eval() for m in members]


@task("distillation", points=1, hint="The docstring of nclib.distill.Ensemble gives this "
      "course's definition of an ensemble, after Hinton et al.; check that your result has "
      "shape (B, C), that each row sums to 1, and that K copies of one model give its own "
      "probabilities.")
def ensemble_probs(student):
    """ensemble_probs(models, x) -> (B, C): the mean of the members' softmax probabilities."""
    with torch.random.fork_rng(devices=[]):  # leave the notebook's random numbers alone
        torch.manual_seed(20)
        cases = [(_members(K, d, C, s), torch.randn(B, d))
                 for K, d, C, B, s in [(4, 5, 10, 6, 1.0), (1, 3, 4, 2, 1.0), (2, 6, 3, 1, 30.0),
                                      (5, 4, 10, 8, 10.0), (10, 2, 2, 3, 3.0)]]
        same = _members(1, 5, 10, 1.0)[0]
        cases.append(([same, copy.deepcopy(same), copy.deepcopy(same)], torch.randn(4, 5)))
    for models, x in cases:
        shown = (f"({len(models)} models, each Linear({x.shape[1]}, 8) - ReLU - Linear(8, "
                 f"{models[0][2].out_features}), x of shape {tuple(x.shape)})")
        expected = ref_ensemble_probs(models, x)
        with torch.no_grad():
            got = call(student, shown, models, x.clone())
        if not (torch.is_tensor(got) and close(got.detach(), expected, rtol=1e-4, atol=1e-6)):
            z = torch.stack([m(x) for m in models]).detach()  # (K, B, C)
            hint = _diagnose(got, {
                "that is the softmax of the averaged logits, another kind of ensemble; "
                "this course averages the probabilities: softmax each model first.":
                    lambda: torch.softmax(z.mean(0), -1),
                "divide by the number of models: the average, not the sum.":
                    lambda: torch.softmax(z, -1).sum(0),
                "return probabilities; you returned their log.":
                    lambda: torch.softmax(z, -1).mean(0).log(),
                "take each softmax over the classes (the last dimension).":
                    lambda: torch.softmax(z, 1).mean(0),
            })
            raise Mismatch(shown, _rows(expected), _rows(got), hint)
    return "Each row sums to 1; the ensemble is less sure than its most confident member."


# ---------------------------------------------------------------- task 5: one training step
def ref_distillation_step(student, teacher, optimizer, batch, temperature=4.0, alpha=0.9):
    """`nclib.distill.distillation_step`, the reference (a code check refuses nclib's own
    function handed in as an answer, so the chapter's reference is its own function)."""
    return distill.distillation_step(student, teacher, optimizer, batch, temperature, alpha)


def _pair(seed: int) -> tuple[nn.Module, nn.Module]:
    """A small student MLP and a teacher with BatchNorm, handed over in training mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        student = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
        teacher = nn.Sequential(nn.Linear(6, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))
        with torch.no_grad():  # running statistics that differ from any one batch's
            teacher[1].running_mean.uniform_(-1, 1)
            teacher[1].running_var.uniform_(0.5, 2)
    return student, teacher.train()


def _optimizer(kind: str, params) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)
    return torch.optim.Adam(params, lr=0.01)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@task("distillation", points=2, hint="Task 5's bullets say how the teacher must answer (the "
      "docs of nn.Module.eval and torch.no_grad say why), and nclib.train.fit takes one optimizer "
      "step in the usual order; check that two steps in a row leave the teacher unchanged and "
      "that you return the batch's loss from before the step.")
def distillation_step(student):
    """distillation_step(student, teacher, optimizer, batch, temperature, alpha) -> the batch's
    loss (a number); afterwards the student must have moved exactly as one reference step
    moves it, and the teacher must be untouched (weights, BatchNorm statistics, gradients)."""
    cases = [("sgd", 8, 4.0, 0.9), ("adam", 5, 1.0, 0.5), ("sgd", 16, 20.0, 1.0),
             ("sgd", 4, 2.0, 0.0), ("adam", 2, 4.0, 0.9)]
    for i, (kind, B, T, a) in enumerate(cases):
        net, teacher = _pair(30 + i)
        ref_net, ref_teacher = copy.deepcopy(net), copy.deepcopy(teacher)
        opt, ref_opt = _optimizer(kind, net.parameters()), _optimizer(kind, ref_net.parameters())
        teacher_before = _state(teacher)
        g = torch.Generator().manual_seed(40 + i)
        for step in (1, 2):  # a second step shows gradients left over from the first
            x, y = torch.randn(B, 6, generator=g), torch.randint(0, 4, (B,), generator=g)
            shown = (f"(student MLP 6-16-4, teacher MLP with BatchNorm handed over in train "
                     f"mode, {kind} optimizer, batch of {B}, temperature={T:g}, alpha={a:g}; "
                     f"step {step})")
            before = _state(net)
            expected = ref_distillation_step(ref_net, ref_teacher, ref_opt, (x, y), T, a)
            got = call(student, shown, net, teacher, opt, (x.clone(), y.clone()), T, a)
            _check_step(shown, step, net, ref_net, teacher, teacher_before, before, got, expected)
    return "The student moved exactly like the reference step; the teacher never changed."


def _check_step(shown: str, step: int, net: nn.Module, ref_net: nn.Module, teacher: nn.Module,
                teacher_before: dict, before: dict, got, expected: float) -> None:
    if any(p.grad is not None and p.grad.abs().sum() > 0 for p in teacher.parameters()):
        raise Mismatch(shown, Text("no gradients in the teacher"),
                       Text("teacher parameters with .grad set"), "compute the teacher's "
                       "logits under torch.no_grad(): the teacher only answers, it does not "
                       "learn, and its gradients cost time and memory.")
    changed = [k for k, v in _state(teacher).items() if not torch.equal(v, teacher_before[k])]
    if changed:
        raise Mismatch(shown, Text("the teacher unchanged"), Text(f"the teacher's "
                       f"{', '.join(changed[:3])} changed"), "call teacher.eval() before "
                       "asking it: in training mode BatchNorm normalizes with the batch's "
                       "statistics and updates its running averages (and dropout drops units).")
    try:
        value = float(got)
    except (TypeError, ValueError, RuntimeError):
        raise Mismatch(shown, expected, got, "return the loss of the batch as a number: "
                       "loss.item().") from None
    if not math.isclose(value, expected, rel_tol=1e-5, abs_tol=1e-7):
        raise Mismatch(f"{shown}: the returned loss", expected, value, "return the loss "
                       "computed on the batch before the step: kd_loss(student(x), "
                       "teacher_logits, y, temperature, alpha).item().")
    now, ref = _state(net), _state(ref_net)
    diff = max((now[k] - ref[k]).abs().max().item() for k in ref)
    if diff > 1e-5:
        moved = max((ref[k] - before[k]).abs().max().item() for k in ref)
        stood_still = all(torch.equal(now[k], before[k]) for k in now)
        if stood_still:
            hint = "call optimizer.step() after loss.backward(), or the student never learns."
        elif step == 2:
            hint = ("the first step was right, the second was not: call optimizer.zero_grad() "
                    "before loss.backward(), or the gradients of the steps add up.")
        else:
            hint = ("one step is optimizer.zero_grad(), loss.backward(), optimizer.step(), "
                    "with the loss of this batch.")
        raise Mismatch(f"{shown}: the student's weights after the step",
                       Text(f"weights as after one reference step (it moves them by up to "
                             f"{moved:.3g})"),
                       Text(f"weights that differ from those by up to {diff:.3g}"), hint)
