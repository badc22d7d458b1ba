"""Checks of chapter 02: pass on the reference, fail with the right message on wrong answers."""
import pytest
import torch
import torch.nn.functional as F

from nclib import distill
from nclib.course import check
from nclib.chapters.distillation import checks as ref
from nclib.chapters.distillation.checks import training


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---------------------------------------------------------------- deliberately wrong answers
def _naive_softmax(z, T):
    e = (z / T).exp()  # exp(1000) = inf, inf / inf = nan
    return e / e.sum(-1, keepdim=True)


def _kd(s, t, y, T, a, soft_scale=None, mean=False, swap=False, hard_T=1.0):
    log_ps, log_pt = F.log_softmax(s / T, 1), F.log_softmax(t / T, 1)
    if swap:
        kl = F.kl_div(log_pt, log_ps.exp(), reduction="batchmean")
    elif mean:  # what F.kl_div's reduction="mean" computes: averaged over B x C entries
        kl = (log_pt.exp() * (log_pt - log_ps)).mean()
    else:
        kl = F.kl_div(log_ps, log_pt.exp(), reduction="batchmean")
    return a * (T ** 2 if soft_scale is None else soft_scale) * kl + (1 - a) * F.cross_entropy(s / hard_T, y)


def _soft_cross_entropy(s, t, y, T, a):
    soft = -(F.softmax(t / T, 1) * F.log_softmax(s / T, 1)).sum(1).mean()
    return a * T ** 2 * soft + (1 - a) * F.cross_entropy(s, y)


def _ensemble_of_logits(models, x):
    return torch.softmax(torch.stack([m(x) for m in models]).mean(0), -1)


def _step(student, teacher, optimizer, batch, temperature=4.0, alpha=0.9, *, eval_teacher=True,
          no_grad=True, zero_grad=True, step=True, loss_after=False):
    x, y = batch
    if eval_teacher:
        teacher.eval()
    with torch.set_grad_enabled(not no_grad):
        t = teacher(x)
    loss = distill.kd_loss(student(x), t, y, temperature, alpha)
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    if step:
        optimizer.step()
    if loss_after:
        return distill.kd_loss(student(x), t, y, temperature, alpha).item()
    return loss.item()


CASES = {
    "softmax_with_temperature": (ref.ref_softmax_with_temperature, [
        (lambda z, T: torch.softmax(z * T, -1), "divide the logits by T (you multiplied)"),
        (lambda z, T: torch.softmax(z / T, 0), "the LAST dimension"),
        (_naive_softmax, "exp(1000) overflows"),
        (lambda z, T: torch.log_softmax(z / T, -1), "you returned log-probabilities"),
    ]),
    "kd_loss": (ref.ref_kd_loss, [
        (lambda s, t, y, T, a: _kd(s, t, y, T, a, soft_scale=1), "multiply the soft term by T^2"),
        (lambda s, t, y, T, a: _kd(s, t, y, T, a, soft_scale=T), "multiply by T^2, not by T"),
        (lambda s, t, y, T, a: _kd(s, t, y, T, a, mean=True),
         "did you divide by the number of classes too? Use batchmean"),
        (lambda s, t, y, T, a: _kd(s, t, y, T, a, swap=True), "you swapped the two"),
        (lambda s, t, y, T, a: _kd(s, t, y, T, a, hard_T=T), "plain logits, at T = 1"),
        (lambda s, t, y, T, a: _kd(s, t, y, T, 1 - a), "alpha weights the soft (teacher) term"),
        (_soft_cross_entropy, "subtract"),
        (lambda s, t, y, T, a: _kd(s, t, y, T, a).item(), "return the loss as a tensor"),
        (lambda s, t, y, T, a: _kd(s, t, y, T, a).detach(), "a tensor with no gradient"),
    ]),
    "logit_mse": (ref.ref_logit_mse, [
        (lambda s, t: F.mse_loss(s, t), "F.mse_loss averages over the classes too"),
        (lambda s, t: (s - t).pow(2).sum(1).mean(), "halve it"),
        (lambda s, t: 0.5 * (s - t).pow(2).sum(), "average over the batch"),
        (lambda s, t: 0.5 * (s - t).pow(2).sum(1), "not one per sample"),
    ]),
    "ensemble_probs": (ref.ref_ensemble_probs, [
        (_ensemble_of_logits, "the softmax of the averaged logits"),
        (lambda models, x: torch.stack([m(x).softmax(-1) for m in models]).sum(0),
         "divide by the number of models"),
        (lambda models, x: models[0](x).softmax(-1), "expected"),  # one member only
    ]),
    "distillation_step": (ref.ref_distillation_step, [
        (lambda *a: _step(*a, no_grad=False), "no gradients in the teacher"),
        (lambda *a: _step(*a, eval_teacher=False), "call teacher.eval()"),
        (lambda *a: _step(*a, zero_grad=False), "call optimizer.zero_grad()"),
        (lambda *a: _step(*a, step=False), "call optimizer.step()"),
        (lambda *a: _step(*a, loss_after=True), "the returned loss"),
        (lambda *a: None, "return the loss of the batch as a number"),
    ]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reference_passes(name, capsys):
    """The reference solution gets full points and a PASS verdict."""
    task = getattr(check.distillation, name)
    r = task(CASES[name][0])
    assert (r.status, r.points, r.max_points) == ("passed", task.points, task.points)
    assert "[PASS]" in capsys.readouterr().out


@pytest.mark.parametrize("name, wrong, message",
                         [(n, w, m) for n, (_, bad) in CASES.items() for w, m in bad])
def test_wrong_versions_fail_with_input_expected_got_and_hint(name, wrong, message):
    """A wrong answer fails, naming the input, the expected and received value, and a hint."""
    r = getattr(check.distillation, name).grade(wrong)
    assert r.status == "failed" and r.points == 0, r.reason
    assert message in r.reason and "for input" in r.reason and "Hint:" in r.reason, r.reason


def test_points_add_up_to_seven():
    """Five tasks: 1 point each for the small ones, 2 for kd_loss and the training step."""
    points = {name: getattr(check.distillation, name).points for name in CASES}
    assert points == {"softmax_with_temperature": 1, "kd_loss": 2, "logit_mse": 1,
                      "ensemble_probs": 1, "distillation_step": 2}


@pytest.mark.parametrize("name", list(CASES))
def test_stub_and_missing_answer_are_not_attempted(name):
    """The released stub (NotImplementedError), None and ... are 'not attempted', not failures."""
    task = getattr(check.distillation, name)
    for student in (_stub, None, ...):
        r = task.grade(student)
        assert r.status == "not_attempted" and r.points == 0


def test_student_exception_is_reported_not_raised():
    """An exception in the student's code becomes an 'error' verdict naming the input."""
    r = check.distillation.kd_loss.grade(lambda s, t, y, T, a: s @ t)
    assert r.status == "error" and "RuntimeError" in r.reason and "temperature=4" in r.reason


def test_checks_leave_the_global_random_state_alone():
    """Running a check does not change the notebook's next random numbers."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for name, (reference, _) in CASES.items():
        getattr(check.distillation, name).grade(reference)
    assert torch.equal(torch.rand(3), expected)


def test_distillation_step_reference_leaves_teacher_untouched():
    """The reference step moves the student, and neither the teacher's weights nor its statistics."""
    student, teacher = training._pair(0)
    before_s, before_t = training._state(student), training._state(teacher)
    opt = torch.optim.SGD(student.parameters(), lr=0.1)
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    loss = ref.ref_distillation_step(student, teacher, opt, (x, y), 4.0, 0.9)
    assert isinstance(loss, float) and loss > 0
    assert any(not torch.equal(v, before_s[k]) for k, v in training._state(student).items())
    assert all(torch.equal(v, before_t[k]) for k, v in training._state(teacher).items())
    assert all(p.grad is None for p in teacher.parameters())
