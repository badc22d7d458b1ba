"""Chapter 02 checks, tasks 1-3: soft targets, Hinton's loss and Ba and Caruana's logit
matching, with the usual mistakes tried to name what went wrong."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from nclib import distill
from nclib.course.checking import Mismatch, Text, call, close, describe, task


def _diagnose(got, mistakes: dict[str, Callable[[], torch.Tensor]], default: str = "") -> str:
    """The hint of the first usual mistake that gives `got`, else `default`."""
    if not torch.is_tensor(got):
        return default
    for hint, wrong in mistakes.items():
        value = wrong()
        if value.shape == got.shape and close(got.detach(), value, rtol=1e-4, atol=1e-6):
            return hint
    return default


def _rows(value) -> object:
    """A table of probabilities as a verdict shows it: its shape and its first row, rounded."""
    if not torch.is_tensor(value) or value.ndim != 2 or value.numel() <= 8:
        return value
    first = ", ".join(f"{v:.4f}" for v in value[0].tolist()[:6])
    more = ", ..." if value.shape[1] > 6 else ""
    return Text(f"tensor of shape {tuple(value.shape)} whose first row is [{first}{more}]")


def _scalar_hint(got, mistakes: dict[str, Callable[[], torch.Tensor]]) -> str:
    """The hint for a wrong loss: a plain number, a tensor of the wrong size, or a mistake."""
    if isinstance(got, (int, float)):
        return ("return the loss as a tensor (no .item() or float()), so that backward() "
                "can differentiate it.")
    if torch.is_tensor(got) and got.numel() != 1:
        return "return one number for the whole batch (a tensor of shape ()), not one per sample."
    return _diagnose(got.reshape(()) if torch.is_tensor(got) else got, mistakes)


def _check_loss(student: Callable, reference: Callable, shown: str, s: torch.Tensor,
                rest: tuple, mistakes: Callable[[], dict]) -> None:
    """Compare a loss with the reference: its value, then its gradient for the student's logits."""
    s_ref, s_in = s.clone().requires_grad_(), s.clone().requires_grad_()
    expected = reference(s_ref, *rest)
    got = call(student, shown, s_in, *[r.clone() if torch.is_tensor(r) else r for r in rest])
    if not (torch.is_tensor(got) and got.numel() == 1
            and close(got.detach().reshape(()), expected.detach(), rtol=1e-5, atol=1e-8)):
        raise Mismatch(shown, expected.detach(), got.detach() if torch.is_tensor(got) else got,
                       _scalar_hint(got, mistakes()))
    if got.grad_fn is None:
        raise Mismatch(f"{shown}: the loss's graph", Text("a tensor that backward() can "
                       "differentiate"), Text("a tensor with no gradient"), "keep it a "
                       "tensor computed from student_logits: no .item(), .detach() or "
                       "torch.tensor(...) on the way.")
    expected.backward()
    call(lambda: got.reshape(()).backward(), f"{shown}: backward()")
    if s_in.grad is None or not close(s_in.grad, s_ref.grad, rtol=1e-4, atol=1e-9):
        raise Mismatch(f"{shown}: gradient with respect to student_logits", s_ref.grad,
                       s_in.grad, "the value is right but not its gradient: compute every "
                       "term from student_logits with torch operations.")


def _logits(B: int, C: int, scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Student logits, teacher logits (B, C) and labels (B,), from their own generator."""
    g = torch.Generator().manual_seed(seed)
    s = scale * torch.randn(B, C, generator=g, dtype=torch.float64)
    t = scale * torch.randn(B, C, generator=g, dtype=torch.float64)
    return s, t, torch.randint(0, C, (B,), generator=g)


# ---------------------------------------------------------------- task 1: soft targets
def ref_softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return distill.softmax_with_temperature(logits, temperature)


@task("distillation", points=1, hint="Lecture 02, section 2 (Dark knowledge: soft targets at a "
      "temperature) gives Hinton et al.'s Eq. 1; check that your probabilities sum to 1 over the "
      "classes and that very large logits give no nan or inf.")
def softmax_with_temperature(student):
    """softmax_with_temperature(logits, temperature) -> softmax(logits / T) over the last dim."""
    z = torch.tensor([[0.0, 2 * math.log(3)]])  # at T = 2: exp(0) : exp(ln 3) = 1 : 3
    cases = [(z, 2.0), (z, 1.0), (torch.tensor([1.0, 2.0, 3.0]), 1.0),  # one vector
             (torch.tensor([[1000.0, 0.0, -1000.0]]), 1.0),  # exp(1000) overflows
             (torch.tensor([[5.0, 5.0, 5.0, 5.0]]), 0.5)]  # ties: uniform at any T
    cases += [(_logits(B, C, 4.0, seed)[0], T) for seed, (B, C, T) in
              enumerate([(8, 10, 4.0), (3, 10, 20.0), (5, 4, 0.5), (1, 2, 1.0), (16, 10, 1e4)])]
    for logits, T in cases:
        shown = f"({describe(logits, 60)}, temperature={T:g})"
        expected = ref_softmax_with_temperature(logits, T)
        got = call(student, shown, logits.clone(), T)
        if not (torch.is_tensor(got) and close(got, expected, rtol=1e-5, atol=1e-7)):
            hint = _diagnose(got, {
                "divide the logits by T (you multiplied).": lambda: torch.softmax(logits * T, -1),
                "take the softmax over the classes, the LAST dimension (dim=-1), not over "
                "the batch.": lambda: torch.softmax(logits / T, 0),
                "return probabilities; you returned log-probabilities.":
                    lambda: torch.log_softmax(logits / T, -1),
            }, "exp(1000) overflows to inf: subtract each row's maximum before exp, or use "
               "torch.softmax, which does." if logits.abs().max() > 80 else "")
            raise Mismatch(shown, _rows(expected), _rows(got), hint)
    return "T = 1 is the ordinary softmax; as T grows the targets approach uniform."


# ---------------------------------------------------------------- task 2: Hinton's loss
def ref_kd_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    return distill.kd_loss(student_logits, teacher_logits, labels, temperature, alpha)


def _kd_mistakes(s, t, y, T, a) -> dict[str, Callable[[], torch.Tensor]]:
    """What the usual mistakes compute, each with the hint that names it."""
    log_ps, log_pt = F.log_softmax(s / T, 1), F.log_softmax(t / T, 1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(1).mean()
    ce = F.cross_entropy(s, y)
    return {
        "multiply the soft term by T^2 (Hinton et al.: its gradients shrink as 1/T^2).":
            lambda: a * kl + (1 - a) * ce,
        "multiply by T^2, not by T.": lambda: a * T * kl + (1 - a) * ce,
        "did you divide by the number of classes too? Use batchmean: sum the KL over the "
        "classes, average over the batch (F.kl_div(..., reduction='batchmean')).":
            lambda: a * T ** 2 * kl / s.shape[1] + (1 - a) * ce,
        "average over the batch: sum over the classes, then divide by B (batchmean).":
            lambda: a * T ** 2 * kl * s.shape[0] + (1 - a) * ce,
        "the KL divergence goes KL(teacher || student) = sum p_teacher * (log p_teacher - "
        "log p_student); you swapped the two. (F.kl_div(input, target) takes the "
        "student's log-probabilities as input and the teacher's probabilities as target.)":
            lambda: a * T ** 2 * (log_ps.exp() * (log_ps - log_pt)).sum(1).mean() + (1 - a) * ce,
        "the cross-entropy with the labels uses the student's plain logits, at T = 1.":
            lambda: a * T ** 2 * kl + (1 - a) * F.cross_entropy(s / T, y),
        "alpha weights the soft (teacher) term and 1 - alpha the cross-entropy with the "
        "labels; you swapped them.": lambda: (1 - a) * T ** 2 * kl + a * ce,
        "you computed the cross-entropy with the soft targets, sum -p_t log p_s; the KL "
        "divergence subtracts the teacher's entropy (same gradients, but KL is 0 when the "
        "student matches the teacher).":
            lambda: a * T ** 2 * (-(log_pt.exp() * log_ps).sum(1).mean()) + (1 - a) * ce,
    }


def _kd_cases() -> list[tuple]:
    """(student, teacher, labels, T, alpha): random, edge alphas, equal logits, tiny batches."""
    cases = []
    for seed, (B, C, scale, T, a) in enumerate([
            (8, 10, 3.0, 4.0, 0.9), (5, 4, 2.0, 1.0, 0.5), (16, 10, 5.0, 20.0, 0.7),
            (3, 10, 3.0, 2.0, 0.0),  # labels only
            (6, 10, 3.0, 8.0, 1.0),  # teacher only
            (1, 2, 1.0, 3.0, 0.3),  # one sample, two classes
            (32, 100, 4.0, 4.0, 0.9)]):
        cases.append((*_logits(B, C, scale, seed), T, a))
    s, _, y = _logits(4, 10, 3.0, 99)
    cases.append((s, s.clone(), y, 4.0, 1.0))  # student = teacher: the loss is 0
    return cases


@task("distillation", points=2, hint="Lecture 02, section 3 (The distillation loss) gives the "
      "loss and three details to get right: the direction of the KL, the \"batchmean\" "
      "reduction and the factor T^2; check each of them against Task 2's bullets.")
def kd_loss(student):
    """kd_loss(student_logits, teacher_logits, labels, temperature, alpha) -> scalar tensor."""
    for s, t, y, T, a in _kd_cases():
        shown = (f"(student_logits={describe(s, 50)}, teacher_logits={describe(t, 50)}, "
                 f"labels={describe(y, 50)}, temperature={T:g}, alpha={a:g})")
        _check_loss(student, ref_kd_loss, shown, s, (t, y, T, a),
                    lambda: _kd_mistakes(s, t, y, T, a))
    return "With T^2 the soft term's gradients keep their size whatever T you try."


# ---------------------------------------------------------------- task 3: Ba and Caruana
def ref_logit_mse(student_logits, teacher_logits):
    return distill.logit_mse(student_logits, teacher_logits)


@task("distillation", points=1, hint="Lecture 02, section 4 (Logit matching (Ba and Caruana "
      "2014)) gives the loss; compare how it normalizes the squared differences (what is summed, "
      "what is averaged, the constant in front) with yours and with F.mse_loss's default.")
def logit_mse(student):
    """logit_mse(student_logits, teacher_logits) -> 1/(2B) sum_b ||s_b - t_b||^2, a scalar."""
    cases = [(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 0.0, 0.0]])),  # (0+4+9)/2
             (torch.zeros(2, 10), torch.zeros(2, 10))]
    cases += [_logits(B, C, 3.0, 10 + seed)[:2] for seed, (B, C) in
              enumerate([(8, 10), (5, 4), (1, 2), (64, 10), (3, 100)])]
    for s, t in cases:
        shown = f"(student_logits={describe(s, 50)}, teacher_logits={describe(t, 50)})"
        _check_loss(student, ref_logit_mse, shown, s, (t,), lambda: {
            "F.mse_loss averages over the classes too; sum over the classes, average over "
            "the batch, halve (that is C / 2 * F.mse_loss).": lambda: F.mse_loss(s, t),
            "halve it: 1/(2B), the 1/2 of Ba and Caruana's loss.":
                lambda: (s - t).pow(2).sum(1).mean(),
            "average over the batch (divide by B), after summing over the classes.":
                lambda: 0.5 * (s - t).pow(2).sum(),
            "square the differences; a norm is the square root of the sum of squares.":
                lambda: 0.5 * (s - t).norm(dim=1).mean(),
        })
    return "Its gradient is (s - t) / B: the student's logits are pulled straight to the teacher's."
