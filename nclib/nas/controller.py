"""The controller of Zoph and Le (ICLR 2017): an LSTM that writes an architecture token by token.

At step t the LSTM reads the embedding of the token it chose at step t - 1 (a learned start
vector at t = 1), and a softmax over decision t's choices gives the next token; the
sampled token is fed back as the next input. The paper's controller has 2 layers of 35
hidden units, weights uniform in [-0.08, 0.08], trained with Adam.

Training is REINFORCE (Williams 1992) with a baseline (the paper's Eq. 2, m children a
batch, T tokens each, R_k the k-th child's reward):

    grad J(theta) ~ 1/m sum_k sum_t grad log P(a_t | a_(t-1):1; theta) (R_k - b)

where b is an exponential moving average of earlier rewards. Subtracting b changes no
expectation (the expected score function is 0) but removes most of the variance: without
it every sampled architecture would be made more likely, the good ones only slightly more.
An entropy bonus keeps the controller from settling on one architecture too early.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from nclib.nas.space import SearchSpace

__all__ = ["Controller", "reinforce_loss", "update_baseline"]


class Controller(nn.Module):
    """An LSTM policy over the decisions of a `SearchSpace`, one token per step.

    Args:
        space: the decisions to make (their number of choices sets each softmax's size).
        hidden: hidden units per layer (the paper: 35).
        num_layers: LSTM layers (the paper: 2).
        init_range: weights uniform in [-init_range, init_range] (the paper: 0.08).
    """

    def __init__(self, space: SearchSpace, hidden: int = 35, num_layers: int = 2,
                 init_range: float = 0.08):
        super().__init__()
        self.space = space
        self.choices = [len(d.choices) for d in space.decisions]
        self.start = nn.Parameter(torch.zeros(1, 1, hidden))  # the input of step 1
        self.embed = nn.ModuleList(nn.Embedding(n, hidden) for n in self.choices)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=num_layers)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in self.choices)
        for p in self.parameters():
            nn.init.uniform_(p, -init_range, init_range)

    def _steps(self, tokens: Sequence[int] | None = None, generator: torch.Generator | None = None):
        """Yield (step, logits, token) for every decision.

        The token fed back is `tokens[t]` when given, else sampled with `generator`, else
        (no generator either) the likeliest.
        """
        x, state = self.start, None  # (1, 1, H)
        for t, head in enumerate(self.heads):
            out, state = self.lstm(x, state)  # (1, 1, H)
            logits = head(out[0, 0])  # (n_t,)
            if tokens is not None:
                token = int(tokens[t])
            elif generator is not None:
                token = int(torch.multinomial(torch.softmax(logits.detach(), -1), 1,
                                              generator=generator))
            else:
                token = int(logits.argmax())
            yield t, logits, token
            x = self.embed[t](torch.tensor([[token]]))  # (1, 1, H): the choice, fed back

    def sample(self, generator: torch.Generator) -> tuple[tuple[int, ...], torch.Tensor, torch.Tensor]:
        """Sample an architecture: (tokens, log P(tokens), entropy summed over steps).

        The log-probability and the entropy keep their graph, for `reinforce_loss`.
        """
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator={generator!r}: expected a torch.Generator")
        tokens, log_prob, entropy = [], 0.0, 0.0
        for t, logits, token in self._steps(generator=generator):
            logp = torch.log_softmax(logits, -1)  # (n_t,)
            log_prob = log_prob + logp[token]
            entropy = entropy - (logp.exp() * logp).sum()
            tokens.append(token)
        return tuple(tokens), log_prob, entropy

    def log_prob(self, tokens: Sequence[int]) -> torch.Tensor:
        """log P(tokens) = sum_t log P(a_t | a_(t-1):1), each token fed back as in sampling."""
        tokens = self.space.check(tokens)
        total = 0.0
        for t, logits, token in self._steps(tokens):
            total = total + torch.log_softmax(logits, -1)[token]
        return total

    @torch.no_grad()
    def probabilities(self, tokens: Sequence[int] | None = None) -> list[torch.Tensor]:
        """The softmax of every step, feeding back `tokens` (default: each step's likeliest)."""
        tokens = self.space.check(tokens) if tokens is not None else None
        return [torch.softmax(logits, -1) for _, logits, _ in self._steps(tokens)]

def reinforce_loss(log_probs: torch.Tensor, rewards: torch.Tensor, baseline: float,
                   entropies: torch.Tensor | None = None, entropy_weight: float = 0.0) -> torch.Tensor:
    """The loss whose gradient is Eq. 2 (ascent on J), minus an entropy bonus.

    loss = -1/m sum_k (R_k - b) log P(a^k) - entropy_weight x 1/m sum_k H(a^k)

    Shape: log_probs, rewards and entropies are (m,), one per child of the batch.
    """
    advantage = (rewards - baseline).detach()  # (m,): the reward is not differentiated
    loss = -(advantage * log_probs).mean()
    if entropies is not None and entropy_weight:
        loss = loss - entropy_weight * entropies.mean()
    return loss


def update_baseline(baseline: float | None, reward: float, decay: float = 0.9) -> float:
    """The exponential moving average b <- decay x b + (1 - decay) x R (the first R when b is None)."""
    if not 0 <= decay < 1:
        raise ValueError(f"decay={decay!r}: expected a number in [0, 1)")
    return float(reward) if baseline is None else decay * baseline + (1 - decay) * float(reward)
