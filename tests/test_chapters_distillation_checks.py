"""Checks of chapter 02: pass on the reference, fail with the right message on wrong answers."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nclib import data, distill, measure, models, train
from nclib.course import check
from nclib.chapters.distillation import checks as ref
from nclib.chapters.distillation import experiments
from nclib.chapters.distillation.checks import budget, training


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
    """The five function tasks: 1 point each for the small ones, 2 for kd_loss and the training
    step (task 6, the student under a budget, has 2 more: see its tests below)."""
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


# ---------------------------------------------------------------- task 6: a student under a budget
def _small_cnn() -> nn.Module:
    """5,994 parameters: conv 5x5 8 - pool - conv 5x5 16 - pool - Linear(256, 10)."""
    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, 8, 12, 12)
                         nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, 16, 4, 4)
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 10))  # (B, 10)


class _NoForward(nn.Module):
    """A module whose forward was never written: torch raises NotImplementedError, no stub."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)


class _WithSpare(nn.Module):
    """A model with a layer it never uses: its parameters are still stored, so they count."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.spare = net, nn.Linear(2000, 10)

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def small_cnn():
    """The small CNN trained on the chapter's 1,000 digits, labels only (2 s): about 95% on the test digits."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = _small_cnn()
        batches = data.loaders(experiments.lecture_parts(), batch_size=64, seed=0).train
        train.fit(net, batches, epochs=6, lr=1e-2, progress=False)
    return net.eval()


def _untrained_cnn():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _small_cnn()


BUDGET_WRONG = {  # what is handed in -> (status, the words the reason must hold)
    "the lecture's MLP": (lambda net: models.MLP(), "failed",
                          ["at most 20,000 parameters, got 24,790 parameters, 4,790 over the budget",
                           "Hint: which layers hold the parameters?"]),
    "an accurate model with a spare layer": (lambda net: _WithSpare(net), "failed",
                                             ["got 26,004 parameters, 6,004 over the budget (test accuracy"]),
    "an untrained model": (lambda net: _untrained_cnn(), "failed",
                           ["expected test accuracy >= 92%, got", "about chance"]),
    "10 outputs missing": (lambda net: nn.Sequential(nn.Flatten(), nn.Linear(784, 5)), "failed",
                           ["expected logits of shape (4, 10), got a tensor of shape (4, 5)",
                            "out_features of your last layer"]),
    "a row of rows": (lambda net: nn.Sequential(net, nn.Unflatten(1, (1, 10))), "failed",
                      ["got a tensor of shape (4, 1, 10)", "one row per digit"]),
    "no flatten": (lambda net: nn.Linear(784, 10), "error",
                   ["RuntimeError", "shape (4, 1, 28, 28)"]),
    "no forward": (lambda net: _NoForward(), "error", ["missing the required \"forward\" function"]),
    "a function": (lambda net: (lambda x: net(x)), "failed", ["hand in the trained model, an nn.Module"]),
}


def test_student_under_budget_passes_a_small_trained_cnn(small_cnn, capsys):
    """A trained 5,994-parameter CNN passes; the verdict reports its parameters and accuracy
    against the budget."""
    acc = 100 * train.evaluate(small_cnn, data.loaders(experiments.lecture_parts()).test)
    assert acc >= budget.MIN_ACCURACY + 1  # the test's own margin: a pass is not luck
    r = check.distillation.student_under_budget(small_cnn)
    assert (r.status, r.points, r.max_points) == ("passed", 2, 2), r.reason
    assert r.reason.startswith(f"5,994 parameters (budget 20,000), {acc:.1f}% on the test "
                               "digits (bar 92%)"), r.reason
    assert "[PASS]" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(BUDGET_WRONG))
def test_student_under_budget_fails_wrong_models_with_the_right_message(small_cnn, name):
    """Too many parameters, too little accuracy, the wrong output shape, a model that cannot
    take digits or no model at all: no points, and a reason that names what was measured."""
    make, status, words = BUDGET_WRONG[name]
    r = check.distillation.student_under_budget.grade(make(small_cnn))
    assert (r.status, r.points) == (status, 0), r.reason
    assert all(w in r.reason for w in words), r.reason


def test_student_under_budget_is_not_attempted_in_the_released_exercise():
    """The released answer cell hands in `...` (and an unanswered one None): not attempted, no points."""
    for student in (None, ...):
        r = check.distillation.student_under_budget.grade(student)
        assert (r.status, r.points, r.max_points) == ("not_attempted", 0, 2)


def test_student_under_budget_leaves_the_model_and_random_state_alone():
    """Checking a model in training mode leaves its BatchNorm statistics, its mode and the
    notebook's next random numbers as they were."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(1, 4, 5), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(4),  # (B, 4, 6, 6)
                        nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).train()  # (B, 10)
    before = training._state(net)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    r = check.distillation.student_under_budget.grade(net)
    assert r.status == "failed" and "test accuracy >= 92%" in r.reason, r.reason
    assert torch.equal(torch.rand(3), expected)
    assert net.training and all(torch.equal(v, before[k]) for k, v in training._state(net).items())


def test_budget_is_below_the_lecture_student():
    """The budget is smaller than the lecture's 784-30-30-10 student, whose size the verdict quotes."""
    assert budget.LECTURE_PARAMS == measure.count_params(models.create(experiments.STUDENT)) == 24_790
    assert budget.MAX_PARAMS < budget.LECTURE_PARAMS
    assert budget.MIN_ACCURACY > budget.LECTURE_KD_ACCURACY
