"""Chapter 05 checks, tasks 1-3: the controller's log-probability of an architecture, the
REINFORCE loss with a baseline (Zoph and Le, ICLR 2017, Eq. 2) and the moving-average
baseline. The references are `nclib.nas.Controller.log_prob`, `nclib.nas.reinforce_loss`
and `nclib.nas.update_baseline`.

Task 1 hands the student a controller and tokens; any way of computing log P(tokens) passes
(stepping the LSTM by hand, or `controller.probabilities(tokens)`), within 1e-4. Task 2
checks the loss's value and its gradient with respect to the log-probabilities (which is
what reaches the controller): -(R_k - b) / m for child k. Task 3 starts with b = None.
"""
from __future__ import annotations

import math

import torch

from nclib.course.checking import Mismatch, Text, call, close, describe, task
from nclib.nas import Controller, SearchSpace, reinforce_loss, update_baseline

__all__ = ["sequence_log_prob", "policy_loss", "moving_average", "ref_sequence_log_prob",
           "ref_policy_loss", "ref_moving_average"]


# ---------------------------------------------------------------- task 1: log P(tokens)
def ref_sequence_log_prob(controller: Controller, tokens) -> float:
    with torch.no_grad():
        return float(controller.log_prob(tokens))


def _controllers() -> list[tuple[Controller, tuple[int, ...]]]:
    """Controllers of the lecture's space with sharpened weights (so that steps differ), tokens."""
    space = SearchSpace()
    cases = []
    for seed in range(4):
        torch.manual_seed(50 + seed)
        c = Controller(space)
        with torch.no_grad():
            for p in c.parameters():
                p.mul_(10 * seed + 1)  # seed 0: the fresh controller, near uniform
        g = torch.Generator().manual_seed(seed)
        cases += [(c, space.sample(g)), (c, c.sample(g)[0])]
    return cases


def _log_prob_hint(controller: Controller, tokens, got) -> str:
    probs = controller.probabilities(tokens)
    picked = [float(p[t]) for p, t in zip(probs, tokens)]
    greedy = controller.probabilities()
    if isinstance(got, (int, float)):
        if math.isclose(got, sum(picked), rel_tol=1e-4):
            return "that is the sum of the probabilities: add their logarithms."
        if got > 0 and math.isclose(got, math.prod(picked), rel_tol=1e-4):
            return "that is P(tokens) itself: return its logarithm, a sum of log-probabilities."
        if math.isclose(got, sum(math.log2(p) for p in picked), rel_tol=1e-4):
            return "that is log base 2: REINFORCE's gradient uses the natural log (torch.log)."
        fed_greedy = sum(math.log(float(p[t])) for p, t in zip(greedy, tokens))
        if math.isclose(got, fed_greedy, rel_tol=1e-4):
            return ("each step's softmax was computed feeding back the likeliest token, not the "
                    "architecture's own: pass the tokens, controller.probabilities(tokens).")
    return ("log P(a_1..a_T) = sum over steps t of log p_t[a_t], where p_t is the softmax at "
            "step t with the tokens a_1..a_(t-1) fed back.")


@task("nas", points=1, hint="Lecture 05, section 4 (The controller): each step's softmax, with "
      "the tokens before it fed back; multiply the probabilities, or add their logs.")
def sequence_log_prob(student):
    """sequence_log_prob(controller, tokens) -> float: log P(tokens) under the controller."""
    for controller, tokens in _controllers():
        want = ref_sequence_log_prob(controller, tokens)
        shown = f"(a controller, tokens={tokens})"
        got = call(student, shown, controller, tokens)
        if torch.is_tensor(got) and got.numel() == 1:
            got = float(got.detach())
        if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-5):
            raise Mismatch(shown, want, got, _log_prob_hint(controller, tokens, got))
    return "log P(tokens) agrees with Controller.log_prob on 8 controllers and architectures."


# ---------------------------------------------------------------- task 2: the loss
def ref_policy_loss(log_probs: torch.Tensor, rewards: torch.Tensor, baseline: float) -> torch.Tensor:
    return reinforce_loss(log_probs, rewards, baseline)


def _loss_cases() -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    g = torch.Generator().manual_seed(7)
    cases = [(torch.tensor([-2.0, -3.0]), torch.tensor([0.9, 0.6]), 0.8),
             (torch.tensor([-5.5]), torch.tensor([0.95]), 0.95)]
    for m in (4, 8):
        cases.append((-10 * torch.rand(m, generator=g, dtype=torch.float64),
                      0.9 + 0.06 * torch.rand(m, generator=g, dtype=torch.float64), 0.92))
    return cases


def _loss_hint(lp: torch.Tensor, r: torch.Tensor, b: float, got) -> str:
    candidates = {
        "the sign is flipped: minimizing this makes the worse-than-baseline children likelier; "
        "the loss is -(R - b) log P": ((r - b) * lp).mean(),
        "that is a sum over the batch: Eq. 2 averages, 1/m": -((r - b) * lp).sum(),
        "the baseline is missing: subtract b from every reward": -(r * lp).mean(),
        "the baseline was added: the advantage is R - b": -((r + b) * lp).mean(),
    }
    for hint, value in candidates.items():
        if torch.is_tensor(got) and close(got.detach().to(value.dtype), value, rtol=1e-5):
            return hint
    return "loss = -(1/m) sum_k (R_k - b) log P(a^k)."


@task("nas", points=2, hint="Lecture 05, section 5 (REINFORCE with a baseline): Eq. 2 is the "
      "gradient of -(1/m) sum_k (R_k - b) log P(a^k); the reward is a number, not differentiated.")
def policy_loss(student):
    """policy_loss(log_probs, rewards, baseline) -> a scalar tensor whose gradient is Eq. 2's."""
    for lp, r, b in _loss_cases():
        lp = lp.clone().requires_grad_(True)
        shown = Text(f"(log_probs={describe(lp.detach())}, rewards={describe(r)}, baseline={b})")
        got = call(student, str(shown), lp, r.clone(), b)
        want = ref_policy_loss(lp.detach(), r, b)
        if not torch.is_tensor(got) or got.numel() != 1:
            raise Mismatch(shown, want, got, "return a scalar tensor (a 0-d loss for backward).")
        if not close(got.detach().reshape(()).to(want.dtype), want, rtol=1e-5):
            raise Mismatch(shown, want, got.detach(), _loss_hint(lp.detach(), r, b, got))
        (grad,) = (torch.autograd.grad(got.reshape(()), lp, allow_unused=True)
                   if got.requires_grad else (None,))
        if grad is None:
            raise Mismatch(shown, Text("a loss with a gradient"), Text("no graph to log_probs"),
                           "compute the loss from log_probs, do not detach it or call .item().")
        want_grad = -(r - b) / len(r)
        if not close(grad, want_grad.to(grad.dtype), rtol=1e-5, atol=1e-9):
            raise Mismatch(Text(f"{shown}, the gradient d loss / d log_probs"), want_grad, grad,
                           "only log_probs may carry the gradient: the advantage R - b is a "
                           "constant (detach rewards and baseline if they have a graph).")
    return "the loss and its gradient are Eq. 2's on 4 batches."


# ---------------------------------------------------------------- task 3: the baseline
def ref_moving_average(baseline, reward: float, decay: float) -> float:
    return update_baseline(baseline, reward, decay)


@task("nas", points=1, hint="Lecture 05, section 5 (REINFORCE with a baseline): b <- decay x b + "
      "(1 - decay) x R, and the first reward itself when there is no b yet.")
def moving_average(student):
    """moving_average(baseline, reward, decay) -> the new baseline (the reward when baseline is None)."""
    cases = [(None, 0.93, 0.9), (0.9, 1.0, 0.9), (0.5, 0.0, 0.8), (0.91, 0.95, 0.0),
             (0.92, 0.94, 0.99)]
    for b, r, d in cases:
        want = ref_moving_average(b, r, d)
        shown = f"(baseline={b}, reward={r}, decay={d})"
        got = call(student, shown, b, r, d)
        if not isinstance(got, (int, float)) and not (torch.is_tensor(got) and got.numel() == 1):
            raise Mismatch(shown, want, got, "return one number.")
        got = float(got)
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            hint = ""
            if b is not None and math.isclose(got, (1 - d) * b + d * r, rel_tol=1e-6):
                hint = ("the weights are swapped: the old baseline keeps `decay` of its weight, "
                        "the new reward gets 1 - decay.")
            elif b is None:
                hint = "with no baseline yet (None), start at the reward itself."
            raise Mismatch(shown, want, got, hint)
    # a running baseline follows a series of rewards
    b, series = None, [0.90, 0.92, 0.95, 0.91]
    for r in series:
        b = call(student, f"(baseline={b}, reward={r}, decay=0.5)", b, r, 0.5)
    want = ref_moving_average(ref_moving_average(ref_moving_average(0.90, 0.92, 0.5), 0.95, 0.5), 0.91, 0.5)
    if not math.isclose(float(b), want, rel_tol=1e-6):
        raise Mismatch(f"(the rewards {series} in turn, decay 0.5)", want, b, "")
    return "the baseline follows the rewards as an exponential moving average."
