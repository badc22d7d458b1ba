"""Checks of chapter 06: pass on the reference, fail with the right message on wrong answers."""
import math

import pytest
import torch
import torch.nn.functional as F

from nclib.chapters.dynamic import checks as dyn
from nclib.course import check


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---------------------------------------------------------------- answers written by hand
def reward_by_hand(policy, correct, gamma):
    used = policy.float().sum(1) / policy.shape[1]
    return torch.where(correct.bool(), 1 - used ** 2, torch.full_like(used, -gamma))


def loss_by_hand(probs, sampled, reward, greedy_reward):
    dist = torch.distributions.Bernoulli(probs=probs)
    return -((reward - greedy_reward) * dist.log_prob(sampled).sum(1)).mean()


def mask_by_hand(saliency, density):
    k = max(1, math.ceil(density * saliency.shape[1] - 1e-9))
    mask = torch.zeros_like(saliency)
    for row, s in enumerate(saliency):
        for c in sorted(range(len(s)), key=lambda c: -float(s[c]))[:k]:
            mask[row, c] = 1
    return mask


def conv_by_hand(x_kept, weight, bias, keep_in, keep_out):
    return F.conv2d(x_kept, weight[keep_out][:, keep_in], bias[keep_out], padding=1)


@pytest.mark.parametrize("name, answer", [
    ("blockdrop_reward", reward_by_hand), ("blockdrop_reward", dyn.ref_blockdrop_reward),
    ("self_critical_loss", loss_by_hand), ("self_critical_loss", dyn.ref_self_critical_loss),
    ("top_k_mask", mask_by_hand), ("top_k_mask", dyn.ref_top_k_mask),
    ("sliced_conv", conv_by_hand), ("sliced_conv", dyn.ref_sliced_conv),
    ("why_masking", "a"), ("why_grouping", "c"),
])
def test_right_answers_pass(name, answer):
    """Answers written by hand and the chapter's references get full points."""
    result = getattr(check.dynamic, name)(answer)
    assert result.status == "passed", result.reason


@pytest.mark.parametrize("name", ["blockdrop_reward", "self_critical_loss", "top_k_mask",
                                  "sliced_conv", "choose_density"])
def test_stubs_are_not_attempted(name):
    """A stub that raises NotImplementedError (or None for the density) is 'not attempted'."""
    answer = None if name == "choose_density" else _stub
    assert getattr(check.dynamic, name)(answer).status == "not_attempted"


def _reward(policy, correct, gamma, fraction=lambda u, K: (u / K) ** 2, wrong=None):
    u = policy.float().sum(1)
    w = torch.full_like(u, -gamma) if wrong is None else wrong(u, policy.shape[1], gamma)
    return torch.where(correct.bool(), 1 - fraction(u, policy.shape[1]), w)


@pytest.mark.parametrize("answer, hint", [
    (lambda p, c, g: _reward(p, c, g, fraction=lambda u, K: u / K), "not squared"),
    (lambda p, c, g: _reward(p, c, g, fraction=lambda u, K: u ** 2), "divide the blocks used by K"),
    (lambda p, c, g: _reward(p, c, g, wrong=lambda u, K, g: torch.full_like(u, g)), "not +gamma"),
    (lambda p, c, g: _reward(p, c, g, wrong=lambda u, K, g: 1 - (u / K) ** 2), "whatever it used"),
    (lambda p, c, g: _reward(p, c, g, fraction=lambda u, K: 1 - (1 - u / K) ** 2), "(1 - |u|_1 / K)^2"),
])
def test_reward_mistakes_are_named(answer, hint):
    """An unsquared fraction, no division by K, +gamma, and (1 - u/K)^2 each get their hint."""
    result = check.dynamic.blockdrop_reward(answer)
    assert result.status == "failed" and hint in result.reason, result.reason


def _log_p(p, u):
    return (u * p.log() + (1 - u) * (1 - p).log()).sum(1)


@pytest.mark.parametrize("answer, hint", [
    (lambda p, u, r, rg: ((r - rg) * _log_p(p, u)).mean(), "sign is flipped"),
    (lambda p, u, r, rg: -((r - rg) * _log_p(p, u)).sum(), "sum over the batch"),
    (lambda p, u, r, rg: -(r * _log_p(p, u)).mean(), "baseline is missing"),
    (lambda p, u, r, rg: -((r - rg) * (u * p.log()).sum(1)).mean(), "log(1 - p)"),
    (lambda p, u, r, rg: -((r - rg) * _log_p(p, u)).mean().item(), "scalar tensor"),
    (lambda p, u, r, rg: -((r - rg) * _log_p(p.detach(), u)).mean().requires_grad_(), "do not detach"),
    (lambda p, u, r, rg: -((r - rg) * _log_p(p, u)).mean() * 0 - ((r - rg) * _log_p(p, u)).mean().detach()
     - (p * 0).sum(), "only log P"),
])
def test_loss_mistakes_are_named(answer, hint):
    """A flipped sign, a sum, no baseline, a missing log(1 - p), a float, a detached loss and a
    right value with a wrong gradient each fail with their hint."""
    result = check.dynamic.self_critical_loss(answer)
    assert result.status == "failed" and hint in result.reason, result.reason


@pytest.mark.parametrize("answer, hint", [
    (lambda s, d: torch.zeros_like(s).scatter_(1, s.topk(max(1, math.floor(d * s.shape[1])), 1).indices, 1.0),
     "rounded down"),
    (lambda s, d: torch.zeros_like(s).scatter_(1, (-s).topk(math.ceil(d * s.shape[1]), 1).indices, 1.0),
     "smallest saliencies"),
    (lambda s, d: s.topk(math.ceil(d * s.shape[1]), 1).indices, "not the kept indices"),
])
def test_mask_mistakes_are_named(answer, hint):
    """k rounded down, the smallest channels and indices instead of a mask get their hints."""
    result = check.dynamic.top_k_mask(answer)
    assert result.status == "failed" and hint in result.reason, result.reason


def _masked_conv(x_kept, weight, bias, keep_in, keep_out):
    """Every filter on the kept inputs, the suppressed outputs dropped afterwards."""
    return F.conv2d(x_kept, weight[:, keep_in], bias, padding=1)[:, keep_out]


def _zero_filled(x_kept, weight, bias, keep_in, keep_out, clean=True):
    """The kept filters over every input channel, zeros where an input was suppressed."""
    x = x_kept.new_zeros(x_kept.shape[0], weight.shape[1], *x_kept.shape[2:])
    x[:, keep_in] = x_kept
    w = torch.nan_to_num(weight[keep_out]) if clean else weight[keep_out]
    return F.conv2d(x, w, bias[keep_out], padding=1)


@pytest.mark.parametrize("answer, hint", [
    (_masked_conv, "computed all C_out filters"),
    (_zero_filled, "all C_in input channels"),
    (lambda x, w, b, i, o: _zero_filled(x, w, b, i, torch.arange(w.shape[0]))[:, o], "every filter"),
    (lambda x, w, b, i, o: _zero_filled(x, w, b, i, o, clean=False), "NaN where"),
    (lambda x, w, b, i, o: F.conv2d(x, w[o][:, i], b[o]), "padding 1"),
])
def test_sliced_conv_mistakes_are_named(answer, hint):
    """Computing all filters, convolving zero-filled inputs (or both), touching a suppressed
    weight and a missing padding each fail with their hint."""
    result = check.dynamic.sliced_conv(answer)
    assert result.status == "failed" and hint in result.reason, result.reason


def test_the_budget_task_is_a_real_decision():
    """The training density (0.49) and 0.44 are over the budget, 0.35 is below the bar, and
    0.43, the highest density within the budget, passes with both figures in the message."""
    for density in (0.49, 0.44):
        over = check.dynamic.choose_density(density)
        assert over.status == "failed" and "over the MAC budget" in over.reason
    low = check.dynamic.choose_density(0.35)
    assert low.status == "failed" and "below the accuracy bar" in low.reason
    passed = check.dynamic.choose_density(0.43)
    assert passed.status == "passed" and "MACs per image" in passed.reason


@pytest.mark.parametrize("answer", [0, 1.5, "0.5", True, [0.5]])
def test_the_budget_task_refuses_what_is_not_a_density(answer):
    """Densities outside (0, 1], strings, bools and lists fail with a clear message."""
    result = check.dynamic.choose_density(answer)
    assert result.status == "failed" and "density" in result.reason, result.reason


@pytest.mark.parametrize("name, wrong", [("why_masking", "b"), ("why_masking", "c"),
                                         ("why_grouping", "a"), ("why_grouping", "b")])
def test_wrong_concept_answers_fail_with_the_explanation(name, wrong):
    """A wrong option fails and says why."""
    result = getattr(check.dynamic, name)(wrong)
    assert result.status == "failed" and "not" in result.reason
