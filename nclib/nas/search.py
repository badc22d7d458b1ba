"""Random search and the RL controller's search, with children evaluated on any executor.

Both searches spend the same `budget`: the number of children evaluated (a child sampled
twice counts twice, as in Zoph and Le, whose 12,800 children were each trained). Each
returns a `SearchHistory` of every child in the order it was sampled.

Children are evaluated by `evaluate(tokens) -> ChildResult`: by default a `ChildEvaluator`
that trains them (cached on disk), or a `Table` that looks them up. Where they run is the
`executor`'s business: None evaluates them here, one after the other; any
`concurrent.futures.Executor` runs a batch at once, a `ProcessPoolExecutor` on this
machine's cores or ``dask.distributed.Client(...).get_executor()`` on a cluster. The search
submits a batch, waits for all of it and reads the results in the order they were
submitted, so the history is the same on every executor for the same seed. The paper's m
parallel children per controller update (m = 8 there) is the batch of `rl_search`.
"""
from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from nclib.nas.child import ChildEvaluator, ChildResult, accuracy_reward
from nclib.nas.controller import Controller, reinforce_loss, update_baseline
from nclib.nas.space import SearchSpace

__all__ = ["Trial", "SearchHistory", "evaluate_batch", "random_search", "rl_search"]


@dataclass(frozen=True)
class Trial:
    """One evaluated child: its tokens, the reward the search saw, and what it measured."""

    tokens: tuple[int, ...]
    reward: float
    val_acc: float
    test_acc: float
    params: int
    macs: int
    seconds: float


@dataclass
class SearchHistory:
    """The children of one search, in order; `controller` is the trained one (RL only)."""

    method: str
    seed: int
    trials: list[Trial] = field(default_factory=list)
    controller: Controller | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.trials)

    def rewards(self) -> torch.Tensor:
        return torch.tensor([t.reward for t in self.trials], dtype=torch.float64)

    def best_so_far(self, key: str = "val_acc") -> torch.Tensor:
        """After each child, the best `key` found so far (a running maximum)."""
        values = torch.tensor([getattr(t, key) for t in self.trials], dtype=torch.float64)
        return torch.cummax(values, 0).values

    def best(self) -> Trial:
        """The child of highest validation accuracy (the first found among equals)."""
        return max(self.trials, key=lambda t: t.val_acc)


def _check(space, budget: int, executor) -> None:
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space={space!r}: expected a nclib.nas.SearchSpace")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget={budget!r}: expected a positive number of children")
    if executor is not None and not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(f"executor={executor!r}: expected None (evaluate here) or a "
                        "concurrent.futures.Executor, such as ProcessPoolExecutor(2) or "
                        "dask.distributed.Client(...).get_executor()")


def evaluate_batch(evaluate: Callable[[Sequence[int]], ChildResult],
                   batch: Sequence[tuple[int, ...]], executor=None) -> list[ChildResult]:
    """``[evaluate(tokens) for tokens in batch]``, on `executor` when given, in batch order."""
    if executor is None:
        return [evaluate(tokens) for tokens in batch]
    futures = [executor.submit(evaluate, tokens) for tokens in batch]
    return [f.result() for f in futures]


def _trial(result: ChildResult, reward: float) -> Trial:
    return Trial(result.tokens, float(reward), max(result.val_acc), result.test_acc,
                 result.params, result.macs, result.seconds)


def random_search(space: SearchSpace, budget: int, seed: int, executor=None, *,
                  evaluate: Callable[[Sequence[int]], ChildResult] | None = None,
                  reward: Callable[[ChildResult], float] = accuracy_reward,
                  batch_size: int = 8) -> SearchHistory:
    """`budget` children sampled uniformly (every token independent), `batch_size` at a time."""
    _check(space, budget, executor)
    evaluate = evaluate or ChildEvaluator(space)
    g = torch.Generator().manual_seed(seed)
    history = SearchHistory("random", seed)
    while len(history) < budget:
        batch = [space.sample(g) for _ in range(min(batch_size, budget - len(history)))]
        for result in evaluate_batch(evaluate, batch, executor):
            history.trials.append(_trial(result, reward(result)))
    return history


def rl_search(space: SearchSpace, budget: int, seed: int, executor=None, *,
              evaluate: Callable[[Sequence[int]], ChildResult] | None = None,
              reward: Callable[[ChildResult], float] = accuracy_reward,
              batch_size: int = 8, lr: float = 0.02, baseline_decay: float = 0.8,
              entropy_weight: float = 1e-3, controller: Controller | None = None) -> SearchHistory:
    """The controller's search: sample `batch_size` children, evaluate them, one REINFORCE step.

    Args:
        lr: Adam's learning rate for the controller. The paper's 6e-4 was for 12,800
            children; 0.02 was chosen for budgets of 40 to 200 on `SearchSpace()`.
        baseline_decay: of the moving-average baseline, updated once per child.
        entropy_weight: of the entropy bonus in `reinforce_loss`.
        controller: start from this one (default: a fresh `Controller(space)` seeded by `seed`).
    """
    _check(space, budget, executor)
    evaluate = evaluate or ChildEvaluator(space)
    g = torch.Generator().manual_seed(seed)
    if controller is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            controller = Controller(space)
    optimizer = torch.optim.Adam(controller.parameters(), lr=lr)
    history, baseline = SearchHistory("rl", seed, controller=controller), None
    while len(history) < budget:
        samples = [controller.sample(g) for _ in range(min(batch_size, budget - len(history)))]
        results = evaluate_batch(evaluate, [tokens for tokens, _, _ in samples], executor)
        rewards = torch.tensor([float(reward(r)) for r in results])  # (m,)
        if baseline is None:
            baseline = float(rewards.mean())  # nothing to compare the first batch with
        loss = reinforce_loss(torch.stack([lp for _, lp, _ in samples]), rewards, baseline,
                              torch.stack([h for _, _, h in samples]), entropy_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for result, r in zip(results, rewards.tolist()):
            history.trials.append(_trial(result, r))
            baseline = update_baseline(baseline, r, baseline_decay)
    return history
