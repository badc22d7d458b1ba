"""nclib.distill: the losses match references, the teacher stays untouched, bad input fails clearly."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nclib import distill, models, train


def _logits(B=8, C=10, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = scale * torch.randn(B, C, generator=g)
    t = scale * torch.randn(B, C, generator=g)
    y = torch.randint(0, C, (B,), generator=g)
    return s, t, y


def test_softmax_with_temperature_hand_case():
    """softmax(z / T): logits (0, 2 ln 3) at T = 2 give (1/4, 3/4); T = 1 is torch.softmax."""
    z = torch.tensor([[0.0, 2 * math.log(3)]])
    assert torch.allclose(distill.softmax_with_temperature(z, 2), torch.tensor([[0.25, 0.75]]))
    s, _, _ = _logits()
    assert torch.allclose(distill.softmax_with_temperature(s, 1), torch.softmax(s, 1))
    assert torch.allclose(distill.softmax_with_temperature(s, 1e4), torch.full_like(s, 0.1), atol=1e-3)


def test_kd_loss_matches_hand_written_reference():
    """kd_loss = alpha T^2 mean_b sum_c p_t log(p_t / p_s) + (1 - alpha) CE, written out by hand."""
    s, t, y = _logits(B=5, C=4)
    T, alpha = 3.0, 0.7
    soft = 0.0
    for b in range(5):
        p_s = [math.exp(v / T) for v in s[b].tolist()]
        p_t = [math.exp(v / T) for v in t[b].tolist()]
        p_s = [v / sum(p_s) for v in p_s]
        p_t = [v / sum(p_t) for v in p_t]
        soft += sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s)) / 5
    hard = sum(-math.log(math.exp(s[b, y[b]].item()) / s[b].exp().sum().item()) for b in range(5)) / 5
    expected = alpha * T ** 2 * soft + (1 - alpha) * hard
    assert distill.kd_loss(s, t, y, T, alpha).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("T", [1.0, 2.0, 4.0, 20.0])
def test_soft_term_matches_torch_kl_div_batchmean(T):
    """With alpha = 1, kd_loss is T^2 * F.kl_div(log_softmax(s/T), softmax(t/T), "batchmean")."""
    s, t, y = _logits()
    ref = T ** 2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    assert torch.allclose(distill.kd_loss(s, t, y, T, alpha=1.0), ref, rtol=1e-5)


def test_batchmean_is_not_mean():
    """The KL term sums over classes ("batchmean"); reduction "mean" would be C = 10 times smaller."""
    s, t, y = _logits(C=10)
    kl = distill.kd_loss(s, t, y, temperature=1.0, alpha=1.0)
    # reduction="mean" (which torch plans to change): the average over all B * C terms
    mean = F.kl_div(F.log_softmax(s, 1), F.softmax(t, 1), reduction="none").mean()
    assert torch.allclose(kl, 10 * mean, rtol=1e-5)
    assert not torch.allclose(kl, mean, rtol=0.5)


def test_alpha_zero_is_cross_entropy():
    """alpha = 0 gives F.cross_entropy with the labels, whatever the teacher says."""
    s, t, y = _logits()
    for T in (1.0, 4.0):
        assert torch.allclose(distill.kd_loss(s, t, y, T, alpha=0.0), F.cross_entropy(s, y))
        assert torch.allclose(distill.kd_loss(s, -t, y, T, alpha=0.0), F.cross_entropy(s, y))


def test_alpha_one_is_soft_term_only():
    """alpha = 1 ignores the labels, and is 0 when the student equals the teacher."""
    s, t, y = _logits()
    assert torch.equal(distill.kd_loss(s, t, y, 4.0, 1.0), distill.kd_loss(s, t, (y + 1) % 10, 4.0, 1.0))
    assert distill.kd_loss(t, t, y, 4.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distill.kd_loss(s, t, y, 4.0, 1.0).item() > 0.1


def _soft_grad_norm(T, squared=True):
    s, t, y = _logits(B=16, scale=2.0)
    s.requires_grad_(True)
    loss = distill.kd_loss(s, t, y, T, alpha=1.0)
    (loss if squared else loss / T ** 2).backward()
    return s.grad.norm().item()


def test_soft_term_gradient_scale_stays_constant_across_temperatures():
    """With T^2 the soft term's gradient stays within 2x from T = 2 to 20; without it, it falls ~T^2 (100x)."""
    with_t2 = [_soft_grad_norm(T) for T in (2, 4, 8, 20)]
    without = [_soft_grad_norm(T, squared=False) for T in (2, 4, 8, 20)]
    assert max(with_t2) / min(with_t2) < 2
    assert without[0] / without[-1] > 50


def test_high_temperature_gradient_is_logit_matching():
    """Hinton Eq. 4: for zero-mean logits and large T, d loss / d s = (s - t) / (B C)."""
    s, t, y = _logits(B=4, C=10, scale=1.0)
    s, t = s - s.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    s.requires_grad_(True)
    distill.kd_loss(s, t, y, temperature=1000.0, alpha=1.0).backward()
    expected = (s - t).detach() / (4 * 10)
    assert (s.grad - expected).norm() < 0.01 * expected.norm()


def test_logit_mse_matches_formula_and_torch():
    """logit_mse = 1/(2B) sum ||s - t||^2 = C/2 * F.mse_loss, and 0 for equal logits."""
    s, t, _ = _logits(B=6, C=10)
    expected = sum(((s[b] - t[b]) ** 2).sum().item() for b in range(6)) / (2 * 6)
    assert distill.logit_mse(s, t).item() == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(distill.logit_mse(s, t), 5 * F.mse_loss(s, t))
    assert distill.logit_mse(t, t).item() == 0


def _members(K=4, seed=0):
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Flatten(), nn.Linear(12, 5)) for _ in range(K)]


def test_ensemble_averages_probabilities():
    """Ensemble returns log of the mean probabilities (not the softmax of the mean logits); argmax agrees."""
    members = _members()
    x = torch.randn(7, 3, 4)
    for scale in (1, 1000):  # 1000: confident members whose probabilities underflow to 0
        for m in members:
            m[1].weight.data *= scale
        manual = sum(torch.softmax(m(x).double(), 1) for m in members) / 4
        out = distill.Ensemble(members)(x)
        assert torch.isfinite(out).all()
        mean_logits = torch.softmax(sum(m(x) for m in members).double() / 4, 1)
        assert not torch.allclose(torch.softmax(out, 1).double(), mean_logits, atol=1e-3)
        assert torch.allclose(torch.softmax(out, 1).double(), manual, atol=1e-6)
        if scale == 1:  # (at scale 1000 some rows tie at 1/2, 1/2)
            assert torch.equal(out.argmax(1), manual.argmax(1))


def test_ensemble_of_one_is_the_model():
    """An ensemble of one model gives its log-softmax: the same probabilities and argmax."""
    m = _members(K=1)[0]
    x = torch.randn(5, 3, 4)
    assert torch.allclose(distill.Ensemble([m])(x), F.log_softmax(m(x), 1), atol=1e-6)


def test_fit_with_distillation_loss_leaves_teacher_untouched(tiny_loaders):
    """fit with DistillationLoss trains the student but never changes the teacher or gives it gradients."""
    torch.manual_seed(0)
    teacher = models.LeNet300100()
    train.fit(teacher, tiny_loaders.train, epochs=2, progress=False)
    teacher.zero_grad(set_to_none=True)
    teacher.train()  # the loss must switch it to eval mode itself
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    for kind in distill.KINDS:
        student = models.LeNet300100()
        loss_fn = distill.DistillationLoss(teacher, temperature=4, alpha=0.9, kind=kind)
        h = train.fit(student, tiny_loaders.train, epochs=2, progress=False, loss_fn=loss_fn)
        assert h.train_loss[-1] < h.train_loss[0]
    assert not teacher.training
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_distillation_loss_runs_teacher_in_eval_mode():
    """A teacher with dropout, left in train mode, answers deterministically inside the loss."""
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(12, 32), nn.Dropout(0.5), nn.Linear(32, 5)).train()
    loss_fn = distill.DistillationLoss(teacher)
    x, y, s = torch.randn(8, 3, 4), torch.randint(0, 5, (8,)), torch.randn(8, 5)
    first = loss_fn(s, y, x)
    teacher.train()  # switched back by someone else between two batches
    assert torch.equal(first, loss_fn(s, y, x))
    assert not teacher.training and not loss_fn.teacher_logits(x).requires_grad


def test_distillation_loss_matches_kd_loss():
    """DistillationLoss(teacher)(s, y, x) equals kd_loss / logit_mse on the teacher's logits."""
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    x, y, s = torch.randn(8, 3, 4), torch.randint(0, 5, (8,)), torch.randn(8, 5)
    t = teacher(x).detach()
    assert torch.allclose(distill.DistillationLoss(teacher, 3.0, 0.6)(s, y, x),
                          distill.kd_loss(s, t, y, 3.0, 0.6))
    assert torch.allclose(distill.DistillationLoss(teacher, kind="logit_mse")(s, y, x),
                          distill.logit_mse(s, t))


def test_cached_teacher_gives_the_teachers_logits(tiny_loaders):
    """CachedTeacher answers like the teacher for shuffled batches of cached inputs, and refuses new inputs."""
    torch.manual_seed(0)
    teacher = models.LeNet5().eval()
    X = tiny_loaders.train.dataset.tensors[0]
    cached = distill.CachedTeacher(teacher, X, batch_size=128)
    x = next(iter(tiny_loaders.train))[0]
    with torch.no_grad():
        assert torch.allclose(cached(x), teacher(x), atol=1e-5)
    with pytest.raises(ValueError, match="not among the cached"):
        cached(x + 0.01)
    loss_live = distill.DistillationLoss(teacher)
    loss_cached = distill.DistillationLoss(cached)
    s, y = torch.randn(len(x), 10), torch.zeros(len(x), dtype=torch.long)
    assert torch.allclose(loss_live(s, y, x), loss_cached(s, y, x), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_distillation_loss_moves_teacher_to_inputs_device():
    """A CPU teacher is moved to the inputs' device (CUDA) before it answers."""
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    x, y = torch.randn(8, 3, 4, device="cuda"), torch.randint(0, 5, (8,), device="cuda")
    loss = distill.DistillationLoss(teacher)(torch.randn(8, 5, device="cuda"), y, x)
    assert loss.device.type == "cuda" and next(teacher.parameters()).device.type == "cuda"


S, T_, Y = torch.zeros(4, 10), torch.zeros(4, 10), torch.zeros(4, dtype=torch.long)
TEACHER = nn.Linear(2, 2)


@pytest.mark.parametrize("call, match", [
    (lambda: distill.kd_loss(S, torch.zeros(4, 5), Y), r"teacher_logits has shape \(4, 5\).*\(4, 10\).*same shape"),
    (lambda: distill.kd_loss(S[0], T_[0], Y), r"expected the same shape \(B, C\)"),
    (lambda: distill.logit_mse(S, torch.zeros(3, 10)), r"teacher_logits has shape \(3, 10\)"),
    (lambda: distill.kd_loss(S, T_, torch.zeros(3, dtype=torch.long)), r"labels has shape \(3,\).*\(4,\)"),
    (lambda: distill.kd_loss(S, T_, Y, temperature=0), r"temperature=0: expected a positive"),
    (lambda: distill.kd_loss(S, T_, Y, temperature=-2.0), r"temperature=-2.0: expected a positive"),
    (lambda: distill.softmax_with_temperature(S, float("nan")), r"temperature=nan"),
    (lambda: distill.kd_loss(S, T_, Y, alpha=1.5), r"alpha=1.5: expected a number in \[0, 1\]"),
    (lambda: distill.kd_loss(S, T_, Y, alpha=-0.1), r"alpha=-0.1: expected a number in \[0, 1\]"),
    (lambda: distill.Ensemble([]), r"models=\[\]: expected at least one model"),
    (lambda: distill.DistillationLoss(TEACHER, kind="mse"), r"kind='mse': expected one of 'kd', 'logit"),
    (lambda: distill.DistillationLoss(TEACHER, temperature=0), r"temperature=0"),
    (lambda: distill.DistillationLoss(TEACHER, alpha=2), r"alpha=2"),
    (lambda: distill.CachedTeacher(TEACHER, torch.zeros(0, 2)), r"X has shape \(0, 2\): expected at least one"),
])
def test_bad_input_raises_value_error_naming_it(call, match):
    """Bad shapes, T <= 0, alpha outside [0, 1], empty inputs, unknown options: ValueError naming them."""
    with pytest.raises(ValueError, match=match):
        call()


def test_distillation_step_moves_student_not_teacher():
    """One distillation step changes the student's weights and leaves the teacher untouched."""
    torch.manual_seed(0)
    student, teacher = nn.Linear(6, 3), nn.Sequential(nn.Linear(6, 3), nn.BatchNorm1d(3))
    teacher.train()
    before_t = [p.clone() for p in teacher.parameters()] + [teacher[1].running_mean.clone()]
    before_s = student.weight.clone()
    opt = torch.optim.SGD(student.parameters(), lr=0.1)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    loss = distill.distillation_step(student, teacher, opt, (x, y), temperature=2.0, alpha=0.5)
    assert isinstance(loss, float) and loss > 0
    assert not torch.equal(before_s, student.weight)
    after_t = [p for p in teacher.parameters()] + [teacher[1].running_mean]
    assert all(torch.equal(a, b) for a, b in zip(before_t, after_t))
    assert all(p.grad is None for p in teacher.parameters())
