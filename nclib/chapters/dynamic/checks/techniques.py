"""Chapter 06 checks, tasks 1-4: BlockDrop's reward (Wu et al., CVPR 2018, Eq. 2) and its
self-critical REINFORCE loss, FBS's winner-take-all (Gao et al., ICLR 2019) and the sliced
convolution that computes only the kept channels. The references are
`nclib.dynamic.blockdrop.blockdrop_reward`, `.self_critical_loss`,
`nclib.dynamic.winner_take_all` and the gather in `nclib.dynamic.SkippingFBS`.

Task 2 checks the loss's value and its gradient with respect to the probabilities. Task 4
counts the student's multiply-accumulates with torch's FlopCounterMode: the output must be
right AND only the kept filters' slices of the kept inputs may have been multiplied.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from nclib.course.checking import Mismatch, Text, call, close, describe, task
from nclib.dynamic import winner_take_all
from nclib.dynamic.blockdrop import blockdrop_reward as _reward
from nclib.dynamic.blockdrop import self_critical_loss as _loss

__all__ = ["blockdrop_reward", "self_critical_loss", "top_k_mask", "sliced_conv", "ref_blockdrop_reward",
           "ref_self_critical_loss", "ref_top_k_mask", "ref_sliced_conv"]


def _matches(got, value) -> bool:
    return torch.is_tensor(got) and got.shape == value.shape and close(got.detach().double(), value.double(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- task 1: the reward
def ref_blockdrop_reward(policy, correct, gamma):
    return _reward(policy, correct, gamma)


def _reward_hint(policy, correct, gamma, got) -> str:
    u = policy.float().sum(1)
    K = policy.shape[1]
    c = correct.bool()
    wrong = torch.full_like(u, -float(gamma))
    candidates = {
        "the fraction is not squared: 1 - (|u|_1 / K)^2": torch.where(c, 1 - u / K, wrong),
        "divide the blocks used by K: the reward uses the fraction |u|_1 / K": torch.where(c, 1 - u ** 2, wrong),
        "a wrong prediction costs -gamma (a penalty), not +gamma": torch.where(c, 1 - (u / K) ** 2, -wrong),
        "a wrong prediction gets -gamma whatever it used, not 1 - (|u|_1 / K)^2": 1 - (u / K) ** 2,
        "that is (1 - |u|_1 / K)^2: square the fraction, then subtract from 1": torch.where(c, (1 - u / K) ** 2, wrong),
    }
    for hint, value in candidates.items():
        if _matches(got, value):
            return hint
    return "R(u) = 1 - (|u|_1 / K)^2 where the prediction is right, -gamma where it is wrong."


@task("dynamic", points=1, hint="Lecture 06, section 2 (The policy and its reward): Eq. 2 rewards "
      "a right prediction by the blocks it saved and punishes a wrong one by -gamma.")
def blockdrop_reward(student):
    """blockdrop_reward(policy, correct, gamma) -> (B,) rewards of BlockDrop's Eq. 2."""
    g = torch.Generator().manual_seed(5)
    cases = [(torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]]),
              torch.tensor([True, True, True, False]), 5.0),
             (torch.ones(2, 9, dtype=torch.bool), torch.tensor([True, False]), 0.0)]
    for dtype in (torch.long, torch.float32, torch.bool):
        cases.append(((torch.rand(6, 9, generator=g) < 0.5).to(dtype), torch.rand(6, generator=g) < 0.7, 2.0))
    for policy, correct, gamma in cases:
        shown = Text(f"(policy={describe(policy)}, correct={describe(correct)}, gamma={gamma})")
        want = ref_blockdrop_reward(policy, correct, gamma)
        got = call(student, str(shown), policy.clone(), correct.clone(), gamma)
        if not _matches(got, want):
            raise Mismatch(shown, want, got, _reward_hint(policy, correct, gamma, got))
    return "Eq. 2 on 5 batches: all blocks, none, a wrong prediction, gamma 0, three dtypes."


# ---------------------------------------------------------------- task 2: the loss
def ref_self_critical_loss(probs, sampled, reward, greedy_reward):
    return _loss(probs, sampled, reward, greedy_reward)


def _loss_cases():
    g = torch.Generator().manual_seed(9)
    cases = [(torch.tensor([[0.8, 0.3, 0.6]]), torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0.9]),
              torch.tensor([0.5]))]
    for B, K in ((4, 6), (8, 9)):
        p = 0.2 + 0.6 * torch.rand(B, K, generator=g, dtype=torch.float64)
        u = (torch.rand(B, K, generator=g, dtype=torch.float64) < p).double()
        cases.append((p, u, torch.randn(B, generator=g, dtype=torch.float64),
                      torch.randn(B, generator=g, dtype=torch.float64)))
    return cases


def _loss_hint(p, u, r, rg, got) -> str:
    log_p = (u * p.log() + (1 - u) * (1 - p).log()).sum(1)
    adv = r - rg
    candidates = {
        "the sign is flipped: minimizing this makes the worse-than-greedy policies likelier; "
        "the loss is -(R - R_greedy) log P": (adv * log_p).mean(),
        "that is a sum over the batch: average over the images": -(adv * log_p).sum(),
        "the baseline is missing: subtract the greedy policy's reward": -(r * log_p).mean(),
        "a dropped block's decision counts too: log P adds log(1 - p) where u = 0":
            -(adv * (u * p.log()).sum(1)).mean(),
        "log P(u) is a sum of logs, not the log of a sum or a product of probabilities":
            -(adv * (u * p + (1 - u) * (1 - p)).prod(1)).mean(),
    }
    for hint, value in candidates.items():
        if torch.is_tensor(got) and got.numel() == 1 and close(got.detach().double().reshape(()), value, rtol=1e-5):
            return hint
    return "loss = -(1/B) sum_b (R(u_b) - R(greedy_b)) sum_k [u log p + (1 - u) log(1 - p)]."


@task("dynamic", points=2, hint="Lecture 06, section 3 (Training the policy: self-critical "
      "REINFORCE): the greedy policy's reward is the baseline; only log P carries a gradient.")
def self_critical_loss(student):
    """self_critical_loss(probs, sampled, reward, greedy_reward) -> a scalar loss (Eq. 4)."""
    for p, u, r, rg in _loss_cases():
        p = p.clone().requires_grad_(True)
        shown = Text(f"(probs={describe(p.detach())}, sampled={describe(u)}, reward={describe(r)}, "
                     f"greedy_reward={describe(rg)})")
        got = call(student, str(shown), p, u.clone(), r.clone(), rg.clone())
        want = ref_self_critical_loss(p.detach(), u, r, rg)
        if not torch.is_tensor(got) or got.numel() != 1:
            raise Mismatch(shown, want, got, "return a scalar tensor (a 0-d loss for backward).")
        if not close(got.detach().reshape(()).to(want.dtype), want, rtol=1e-5):
            raise Mismatch(shown, want, got.detach(), _loss_hint(p.detach(), u, r, rg, got))
        (grad,) = (torch.autograd.grad(got.reshape(()), p, allow_unused=True) if got.requires_grad else (None,))
        if grad is None:
            raise Mismatch(shown, Text("a loss with a gradient"), Text("no graph to probs"),
                           "compute the loss from probs; do not detach it or call .item().")
        pd = p.detach()
        want_grad = -((r - rg)[:, None] * (u / pd - (1 - u) / (1 - pd))) / len(r)
        if not close(grad, want_grad.to(grad.dtype), rtol=1e-5, atol=1e-9):
            raise Mismatch(Text(f"{shown}, the gradient d loss / d probs"), want_grad, grad,
                           "only log P may carry the gradient: the advantage is a constant.")
    return "the loss and its gradient are Eq. 4's on 3 batches."


# ---------------------------------------------------------------- task 3: winner-take-all
def ref_top_k_mask(saliency, density):
    return winner_take_all(saliency, density)


def _mask_hint(s, density, got) -> str:
    C = s.shape[1]
    if torch.is_tensor(got) and got.shape != s.shape:
        return f"return a 0/1 mask of the saliency's shape {tuple(s.shape)}, not the kept indices."

    def rows(k):
        k = max(1, min(C, k))
        return torch.zeros_like(s).scatter_(1, s.topk(k, 1).indices, 1.0)
    k = math.ceil(density * C - 1e-9)
    candidates = {"k is rounded down: keep ceil(d x C) channels": rows(math.floor(density * C)),
                  "k is rounded: keep ceil(d x C) channels": rows(round(density * C)),
                  "those are the smallest saliencies: keep the largest":
                      torch.zeros_like(s).scatter_(1, (-s).topk(k, 1).indices, 1.0)}
    flat = torch.zeros(s.numel())
    flat[s.flatten().topk(k * s.shape[0]).indices] = 1
    candidates["that is the top-k of the whole batch: winner-take-all picks per image (row)"] = flat.view_as(s)
    for hint, value in candidates.items():
        if torch.is_tensor(got) and got.shape == s.shape and torch.equal(got.detach().float(), value.float()):
            return hint
    return "per row, ones at the k = ceil(d x C) largest saliencies, zeros elsewhere."


@task("dynamic", points=1, hint="Lecture 06, section 7 (FBS: saliencies and winner-take-all): "
      "each image keeps its own k = ceil(d x C) most salient channels.")
def top_k_mask(student):
    """top_k_mask(saliency, density) -> (B, C) 0/1 mask of each row's ceil(d x C) largest."""
    g = torch.Generator().manual_seed(3)
    cases = [(torch.tensor([[0.1, 0.9, 0.5, 0.3], [4.0, 1.0, 2.0, 3.0]]), 0.5),
             (torch.rand(3, 10, generator=g), 0.25), (torch.rand(2, 7, generator=g), 1.0),
             (torch.rand(4, 3, generator=g), 0.01), (torch.randn(5, 64, generator=g), 0.7)]
    for s, d in cases:
        shown = Text(f"(saliency={describe(s)}, density={d})")
        want = ref_top_k_mask(s, d)
        got = call(student, str(shown), s.clone(), d)
        if not torch.is_tensor(got) or got.shape != want.shape or not torch.equal(got.detach().float(), want.float()):
            raise Mismatch(shown, want, got, _mask_hint(s, d, got))
    return "the masks of 5 batches, density 1 and a density below one channel among them."


# ---------------------------------------------------------------- task 4: the sliced conv
def ref_sliced_conv(x_kept, weight, bias, keep_in, keep_out):
    W = weight.index_select(0, keep_out).index_select(1, keep_in)  # (k_out, k_in, 3, 3)
    return F.conv2d(x_kept, W, bias.index_select(0, keep_out), padding=1)


def _conv_cases():
    g = torch.Generator().manual_seed(4)
    cases = []
    for c_in, c_out, k_in, k_out, size in ((6, 8, 3, 5, 5), (16, 12, 16, 12, 4), (10, 9, 4, 1, 6), (5, 7, 1, 3, 3)):
        keep_in = torch.randperm(c_in, generator=g)[:k_in]  # unsorted
        keep_out = torch.randperm(c_out, generator=g)[:k_out]
        cases.append((torch.randn(1, k_in, size, size, generator=g), torch.randn(c_out, c_in, 3, 3, generator=g),
                      torch.randn(c_out, generator=g), keep_in, keep_out))
    return cases


def _macs(student, shown, *args):
    counter = FlopCounterMode(display=False)
    with counter:
        got = call(student, shown, *args)
    return got, counter.get_total_flops() // 2


@task("dynamic", points=2, hint="Lecture 06, section 8 (Computing only the kept channels): gather "
      "weight[keep_out][:, keep_in] and bias[keep_out], then one convolution.")
def sliced_conv(student):
    """sliced_conv(x_kept, weight, bias, keep_in, keep_out) -> (1, k_out, H, W), only kept channels computed."""
    for i, (x, W, b, keep_in, keep_out) in enumerate(_conv_cases()):
        shown = Text(f"(x_kept={describe(x)}, weight of shape {tuple(W.shape)}, keep_in={keep_in.tolist()}, "
                     f"keep_out={keep_out.tolist()})")
        want = ref_sliced_conv(x, W, b, keep_in, keep_out)
        if i == 0:  # suppressed filters and input slices hold NaN: touching them shows
            W = W.clone()
            W[[c for c in range(W.shape[0]) if c not in keep_out.tolist()]] = float("nan")
            W[:, [c for c in range(W.shape[1]) if c not in keep_in.tolist()]] = float("nan")
        got, macs = _macs(student, str(shown), x.clone(), W, b.clone(), keep_in.clone(), keep_out.clone())
        if not torch.is_tensor(got) or got.shape != want.shape:
            hint = (f"return the kept output channels only, shape {tuple(want.shape)}"
                    if not torch.is_tensor(got) or got.shape[-2:] == want.shape[-2:] else
                    f"padding 1 keeps the map {tuple(want.shape[-2:])}; got {tuple(got.shape[-2:])}")
            raise Mismatch(shown, want, got, hint + ".")
        if torch.isnan(got).any():
            raise Mismatch(shown, want, got, "NaN where a suppressed filter or input channel was used: "
                           "gather the kept filters and their slices of the kept inputs.")
        if not close(got.detach(), want, rtol=1e-4, atol=1e-5):
            raise Mismatch(shown, want, got.detach(), "output channel j is filter keep_out[j] applied to "
                           "the inputs keep_in (in that order), plus bias[keep_out[j]]; padding 1.")
        per_pair = 9 * x.shape[2] * x.shape[3]  # one filter slice over one input channel
        c_out, c_in, k_out, k_in = W.shape[0], W.shape[1], keep_out.numel(), keep_in.numel()
        if macs != k_out * k_in * per_pair:
            what = {c_out * c_in: "you ran every filter over every input channel, zeros included",
                    c_out * k_in: "you computed all C_out filters and dropped the suppressed ones",
                    k_out * c_in: "you convolved all C_in input channels, zeros included"}
            raise Mismatch(Text(f"{shown}, the MACs computed"), k_out * k_in * per_pair, macs,
                           f"{what.get(macs // per_pair, 'more than the kept channels ran')}: only "
                           "k_out x k_in x 9 x H x W multiplications may run.")
    return "right outputs on 4 cases, computing exactly the kept channels' MACs."
