"""Checks of chapter 05: pass on the reference, fail with the right message on wrong answers."""
import math

import pytest

from nclib.chapters.nas import checks as nas
from nclib.course import check
from nclib.nas import SearchSpace


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---------------------------------------------------------------- answers written by hand
def log_prob_by_hand(controller, tokens):
    probs = controller.probabilities(tokens)
    return sum(math.log(float(p[t])) for p, t in zip(probs, tokens))


def loss_by_hand(log_probs, rewards, baseline):
    return -((rewards - baseline) * log_probs).mean()


def baseline_by_hand(baseline, reward, decay):
    return reward if baseline is None else decay * baseline + (1 - decay) * reward


def encode_by_hand(layers):
    space = SearchSpace()
    return tuple(d.choices.index(layers[d.layer][d.name]) for d in space.decisions)


def _under_budget():
    t = nas.space.table()
    return max((r for r in t.results if r.macs <= nas.MAC_BUDGET), key=lambda r: max(r.val_acc)).tokens


@pytest.mark.parametrize("name, answer", [
    ("sequence_log_prob", log_prob_by_hand), ("sequence_log_prob", nas.ref_sequence_log_prob),
    ("policy_loss", loss_by_hand), ("policy_loss", nas.ref_policy_loss),
    ("moving_average", baseline_by_hand), ("moving_average", nas.ref_moving_average),
    ("encode_architecture", encode_by_hand), ("encode_architecture", nas.ref_encode_architecture),
    ("why_baseline", "b"), ("equal_budget", "a"),
])
def test_right_answers_pass(name, answer):
    """Answers written by hand and the chapter's references get full points."""
    result = getattr(check.nas, name)(answer)
    assert result.status == "passed", result.reason


def test_the_budget_task_passes_the_best_architecture_under_the_budget():
    """The most accurate architecture within MAC_BUDGET meets the bar, as tokens or settings."""
    tokens = _under_budget()
    assert check.nas.search_under_budget(tokens).status == "passed"
    assert check.nas.search_under_budget(SearchSpace().decode(tokens)).status == "passed"


def test_the_budget_task_is_a_real_decision():
    """Few architectures fit and pass (so a search is needed); the best overall is over budget."""
    t = nas.space.table()
    fit = [r for r in t.results if r.macs <= nas.MAC_BUDGET]
    passing = [r for r in fit if max(r.val_acc) >= nas.MIN_VAL_ACC]
    assert 1 <= len(passing) <= 0.05 * len(fit)
    assert t.best().macs > nas.MAC_BUDGET
    assert "over the MAC budget" in check.nas.search_under_budget(t.best().tokens).reason
    worst = min(fit, key=lambda r: max(r.val_acc))
    assert "below the bar" in check.nas.search_under_budget(worst.tokens).reason


@pytest.mark.parametrize("name", ["sequence_log_prob", "policy_loss", "moving_average",
                                  "encode_architecture", "search_under_budget"])
def test_stubs_are_not_attempted(name):
    """A stub that raises NotImplementedError is 'not attempted', not an error."""
    fn = _stub if name != "search_under_budget" else None
    assert getattr(check.nas, name)(fn).status == "not_attempted"


@pytest.mark.parametrize("answer, hint", [
    (lambda c, t: sum(float(p[i]) for p, i in zip(c.probabilities(t), t)), "sum of the probabilities"),
    (lambda c, t: math.prod(float(p[i]) for p, i in zip(c.probabilities(t), t)), "P(tokens) itself"),
    (lambda c, t: sum(math.log2(float(p[i])) for p, i in zip(c.probabilities(t), t)), "log base 2"),
    (lambda c, t: sum(math.log(float(p[i])) for p, i in zip(c.probabilities(), t)), "likeliest token"),
])
def test_log_prob_mistakes_are_named(answer, hint):
    """Sum of probabilities, the product, log2 and greedy feed-back each get their hint."""
    result = check.nas.sequence_log_prob(answer)
    assert result.status == "failed" and hint in result.reason


@pytest.mark.parametrize("answer, hint", [
    (lambda lp, r, b: ((r - b) * lp).mean(), "sign is flipped"),
    (lambda lp, r, b: -((r - b) * lp).sum(), "sum over the batch"),
    (lambda lp, r, b: -(r * lp).mean(), "baseline is missing"),
    (lambda lp, r, b: -((r - b) * lp).mean().item(), "scalar tensor"),
    (lambda lp, r, b: -((r - b) * lp.detach()).mean().requires_grad_(), "do not detach"),
])
def test_loss_mistakes_are_named(answer, hint):
    """A flipped sign, a sum, no baseline, a float and a detached loss each fail with a hint."""
    result = check.nas.policy_loss(answer)
    assert result.status == "failed" and hint in result.reason, result.reason


@pytest.mark.parametrize("answer, hint", [
    (lambda b, r, d: r if b is None else (1 - d) * b + d * r, "weights are swapped"),
    (lambda b, r, d: 0.0 if b is None else d * b + (1 - d) * r, "start at the reward"),
])
def test_baseline_mistakes_are_named(answer, hint):
    """Swapped weights and a baseline that starts at 0 get their hints."""
    result = check.nas.moving_average(answer)
    assert result.status == "failed" and hint in result.reason


@pytest.mark.parametrize("answer, hint", [
    (lambda layers: tuple(t + 1 for t in encode_by_hand(layers)), "start at 1"),
    (lambda layers: tuple(layers[d.layer][d.name] for d in SearchSpace().decisions), "settings themselves"),
    (lambda layers: encode_by_hand(layers) + (0,), "one token too many"),
])
def test_encode_mistakes_are_named(answer, hint):
    """Tokens from 1, the settings themselves and an extra last-layer token get their hints."""
    result = check.nas.encode_architecture(answer)
    assert result.status == "failed" and hint in result.reason


@pytest.mark.parametrize("answer", [(0, 0, 0), "16 3x3", (9,) * 8])
def test_the_budget_task_refuses_what_is_not_an_architecture(answer):
    """A wrong length, a string or unknown tokens fail with the space's message."""
    result = check.nas.search_under_budget(answer)
    assert result.status == "failed" and "architecture of the lecture's space" in result.reason


@pytest.mark.parametrize("name, wrong", [("why_baseline", "a"), ("why_baseline", "c"),
                                         ("equal_budget", "b"), ("equal_budget", "c")])
def test_wrong_concept_answers_fail_with_the_explanation(name, wrong):
    """A wrong option fails and says why."""
    result = getattr(check.nas, name)(wrong)
    assert result.status == "failed" and "not" in result.reason
