"""Chapter 02's experiments: their building blocks, and small runs that fill every row and claim."""
import statistics

import pytest
import torch

from nclib import data
from nclib.chapters.distillation import experiments as exp
from nclib.course.reproduce import EXPERIMENTS, Run, render

TINY = exp.Scale(n_train=200, seeds=(0, 1), teacher_epochs=2, student_epochs=2,
                 temperatures=(1, 4), num_members=2, member_epochs=2)


# big enough for the teacher's soft targets to mean something (a few seconds)
SMALL = exp.Scale(n_train=300, seeds=(0, 1), teacher_epochs=8, student_epochs=15, temperatures=(1, 4))


@pytest.fixture(scope="module")
def hinton():
    run = Run("hinton2015", "MNIST", SMALL.describe_hinton())
    return run, exp.run_hinton2015(run, SMALL)


@pytest.fixture(scope="module")
def ensemble():
    run = Run("ensemble", "MNIST", TINY.describe_ensemble())
    return run, exp.run_ensemble(run, TINY)


def test_train_model_is_reproducible():
    """The same seed gives the same trained weights; another seed gives others."""
    parts = data.stratified_subset(data.split(*data.load_mnist()), 100)
    a, b, c = (exp.train_model(parts, "mlp", s, 1, 1e-3, max_shift=2) for s in (3, 3, 4))
    assert torch.equal(a.layers[-1].weight, b.layers[-1].weight)
    assert not torch.equal(a.layers[-1].weight, c.layers[-1].weight)
    assert not a.training


def test_spread_formats_mean_std_and_range():
    """One seed gives the mean alone; several add the standard deviation and the range."""
    assert exp.spread([91.0]) == "91.00%"
    assert exp.spread([90.0, 92.0, 94.0]) == "92.00% ± 2.00 (90.0-94.0)"


def test_hinton2015_small_run_fills_rows_and_computes_claims(hinton):
    """Sizes, teacher, three methods, shifted digits and every temperature get a row; claims follow the numbers."""
    run, results = hinton
    labels = [r.label for r in run.rows]
    assert labels[6:8] == ["teacher SmallVGG, trained on shifted digits", "teacher on shifted test digits"]
    kd = "kd_loss T=4, alpha=0.9"
    for method in ("labels only", kd, "logit_mse (Ba and Caruana)"):
        assert f"student 784-30-30-10, {method}" in labels and len(results[method]) == 2
    assert [lb for lb in labels if lb.startswith("temperature")] == [
        "temperature sweep: kd_loss T=1", "temperature sweep: kd_loss T=4"]
    assert results["T=4"] == results[kd]  # T = 4 is the KD run itself, not trained twice
    gain, shift_gain, best = run.claims
    expected = statistics.fmean(results[kd]) - statistics.fmean(results["labels only"])
    assert gain.value == pytest.approx(expected, abs=0.006) and gain.holds == (gain.value >= 0.8)
    kd_s, plain_s = results[f"{kd}, shifted"], results["labels only, shifted"]
    se = ((statistics.variance(kd_s) + statistics.variance(plain_s)) / 2) ** 0.5
    assert shift_gain.target == f"> {2 * se:.2f}" and shift_gain.holds == (shift_gain.value > 2 * se)
    assert best.value in (1, 4) and best.holds == (best.value > 1)
    assert "seeds 0, 1" in render(run) and "300 training digits" in render(run)


def test_hinton2015_teacher_is_bigger_than_its_student(hinton):
    """The rows give teacher and student parameters, MACs and bytes, ours and the paper's (2x1200 vs 2x800
    units); the teacher is bigger in all three, in both."""
    run, _ = hinton
    rows = {r.label: r for r in run.rows}
    for what in ("parameters", "MACs per digit", "size, fp32"):
        teacher, student = rows[f"teacher {what}"], rows[f"student {what}"]
        assert teacher.ours > student.ours and teacher.paper > student.paper, what
    assert rows["student parameters"].ours == 24_790 and rows["teacher parameters"].ours == 40_794
    assert rows["teacher parameters"].paper == 784 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 10 + 10


def test_kd_at_t4_matches_the_teachers_soft_targets_better_than_t1(hinton):
    """A small run catches a broken kd_loss: students trained at T=4 are nearer the teacher's T=4 soft targets
    (KL on the test digits) than students trained at T=1, and both are nearer than the labels-only ones."""
    _, results = hinton
    t4, t1 = (statistics.fmean(results[f"KL to the teacher, T={T}"]) for T in (4, 1))
    labels = statistics.fmean(results["KL to the teacher, labels only"])
    assert t4 < t1 < labels


def test_soft_target_kl_is_zero_for_the_teacher_itself():
    """soft_target_kl(m, m) is 0 and grows as the student moves away from the teacher."""
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    X = torch.randn(8, 1, 2, 2)
    assert exp.soft_target_kl(teacher, teacher, X) == pytest.approx(0, abs=1e-7)
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    assert exp.soft_target_kl(other, teacher, X) > 1e-4


def test_ensemble_small_run_has_the_lecture_table(ensemble):
    """Baseline, ensemble and distilled rows carry the paper's 58.9 / 61.1 / 60.8; the share is computed."""
    run, results = ensemble
    paper = [r.paper for r in run.rows]
    assert paper[:3] == [58.9, 61.1, 60.8] and paper[-1] == "86%"
    assert len(results["baseline"]) == 2 and len(results["distilled"]) == 2
    base, ens, dist = (statistics.fmean(results[k]) for k in ("baseline", "ensemble", "distilled"))
    (claim,) = run.claims
    if ens > base:
        assert claim.value == pytest.approx((dist - base) / (ens - base), abs=1e-3)
        assert claim.holds == (claim.value >= 0.5)
    else:  # no gain to keep: the claim cannot hold
        assert not claim.holds


def test_registered_experiments_state_their_scale():
    """Both experiments are registered and their scale names digits, epochs and seeds."""
    hinton, ens = EXPERIMENTS["hinton2015"], EXPERIMENTS["ensemble"]
    assert "1,000 training digits" in hinton.scale and "seeds 0, 1, 2" in hinton.scale
    assert "784-30-30-10" in hinton.scale
    assert "30 epochs" in hinton.scale and "40 epochs" in hinton.scale
    assert "4 LeNet-300-100 members" in ens.scale and "60 epochs" in ens.scale
