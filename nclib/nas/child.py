"""Training a child network for its reward, with every result cached on disk.

Zoph and Le (ICLR 2017, Section 3.2) train each sampled child to convergence and reward the
controller with the child's validation accuracy (in their CIFAR-10 runs: the best of the
last 5 epochs, cubed). We cannot afford convergence on a laptop, so a child gets a short,
fixed `ChildRecipe`: the same for every architecture, so rewards compare children fairly
even though none is trained to the end. `evaluate_child` trains one and returns a
`ChildResult`; results are cached in ``cache_dir()/nas`` under a key of the architecture
and the recipe, so evaluating a child again is instant (a corrupt entry is retrained).

Rewards (functions of a result):

* `accuracy_reward`: the best validation accuracy of the last `last` epochs;
* `paper_reward`: that, cubed (the paper's choice; it stretches the top of the scale);
* `mnas_reward`: MnasNet's accuracy x (MACs / target)^w (Tan et al., CVPR 2019, Eq. 2,
  w = -0.07 on both sides of the target): a child twice the target loses 5% of its reward.
"""
from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from nclib.data import Loaders, atomic_write, cache_dir, load, loaders, split, stratified_subset
from nclib.nas.space import SearchSpace
from nclib.train import evaluate, fit

__all__ = ["ChildRecipe", "ChildResult", "train_child", "evaluate_child", "ChildEvaluator",
           "accuracy_reward", "paper_reward", "mnas_reward"]


@dataclass(frozen=True)
class ChildRecipe:
    """How every child is trained: Adam, `epochs` passes over `n_train` training digits.

    `seed` fixes the initial weights and the batch order, so one architecture trained twice
    on one machine gives the same accuracy; `threads` torch threads (1: children in
    parallel processes do not fight over cores, and results do not depend on the thread
    count). `n_train` None uses the whole training split (3,500 of the bundled digits).
    """

    epochs: int = 1
    batch_size: int = 64
    lr: float = 3e-3
    n_train: int | None = None
    seed: int = 0
    threads: int = 1
    dataset: str = "mnist"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ChildRecipe({name}={v!r}): expected a positive integer")
        if self.n_train is not None and (isinstance(self.n_train, bool)
                                         or not isinstance(self.n_train, int) or self.n_train < 1):
            raise ValueError(f"ChildRecipe(n_train={self.n_train!r}): expected a positive "
                             "integer or None (the whole training split)")

    def describe(self) -> str:
        digits = "all training digits" if self.n_train is None else f"{self.n_train} training digits"
        return (f"{self.epochs} epoch(s) of Adam {self.lr:g}, batch {self.batch_size}, on "
                f"{digits} ({self.dataset}), seed {self.seed}, {self.threads} thread(s)")


@dataclass
class ChildResult:
    """One trained child: validation accuracy after each epoch, test accuracy, costs, time."""

    tokens: tuple[int, ...]
    val_acc: list[float]
    test_acc: float
    params: int
    macs: int
    seconds: float
    cached: bool = field(default=False, compare=False)

    def to_json(self) -> dict:
        d = asdict(self)
        d["tokens"] = list(self.tokens)
        d.pop("cached")
        return d

    @classmethod
    def from_json(cls, d: dict, cached: bool = False) -> "ChildResult":
        return cls(tuple(d["tokens"]), [float(a) for a in d["val_acc"]], float(d["test_acc"]),
                   int(d["params"]), int(d["macs"]), float(d["seconds"]), cached)


# ---------------------------------------------------------------- rewards
def accuracy_reward(result: ChildResult, last: int = 5) -> float:
    """The best validation accuracy of the last `last` epochs (a fraction in [0, 1])."""
    return max(result.val_acc[-last:])


def paper_reward(result: ChildResult, last: int = 5) -> float:
    """Zoph and Le's reward: the best validation accuracy of the last epochs, cubed."""
    return accuracy_reward(result, last) ** 3


def mnas_reward(result: ChildResult, target_macs: float, w: float = -0.07) -> float:
    """MnasNet's soft trade-off: ACC x (MACs / target)^w (Tan et al. 2019, Eq. 2)."""
    if not target_macs > 0:
        raise ValueError(f"target_macs={target_macs!r}: expected a positive number of MACs")
    return accuracy_reward(result) * (result.macs / target_macs) ** w


# ---------------------------------------------------------------- training
@functools.lru_cache(maxsize=4)
def _loaders(recipe: ChildRecipe) -> Loaders:
    parts = split(*load(recipe.dataset), seed=0)
    if recipe.n_train is not None:
        parts = stratified_subset(parts, recipe.n_train, seed=0)
    return loaders(parts, batch_size=recipe.batch_size, seed=recipe.seed)


def train_child(model: torch.nn.Module, recipe: ChildRecipe = ChildRecipe()
                ) -> tuple[list[float], float, float]:
    """Train `model` by `recipe` on the CPU: (validation accuracy per epoch, test accuracy, seconds).

    Any model for 1 x 28 x 28 digits can be trained this way (LeNet-5 as well as a child),
    so a found architecture can be set beside hand-designed ones trained the same way.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        L = _loaders(recipe)
        L.train.generator.manual_seed(recipe.seed)  # the same batches for every child
        t0 = time.perf_counter()
        history = fit(model, L.train, L.val, epochs=recipe.epochs, lr=recipe.lr,
                      device="cpu", progress=False)
        seconds = time.perf_counter() - t0
        return history.val_acc, evaluate(model, L.test, device="cpu"), seconds
    finally:
        torch.set_num_threads(threads)


def _cache_file(space: SearchSpace, tokens: tuple[int, ...], recipe: ChildRecipe):
    blob = json.dumps({"space": space.stamp_text, "recipe": asdict(recipe)}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return cache_dir() / "nas" / key / f"{space.index(tokens)}.json"


def evaluate_child(tokens: Sequence[int], space: SearchSpace | None = None,
                   recipe: ChildRecipe = ChildRecipe(), cache: bool = True) -> ChildResult:
    """Build the architecture `tokens` of `space`, train it by `recipe`, return its result.

    With `cache`, a result trained before (same space, architecture and recipe) is read
    from ``cache_dir()/nas`` instead (its `cached` is True); a corrupt file is retrained.
    """
    space = space or SearchSpace()
    tokens = space.check(tokens)
    path = _cache_file(space, tokens, recipe)
    if cache and path.exists():
        try:
            found = ChildResult.from_json(json.loads(path.read_text()), cached=True)
            if found.tokens == tokens:
                return found
        except (ValueError, KeyError, TypeError):
            pass  # corrupt: train again and overwrite
    torch.manual_seed(recipe.seed)
    model = space.build(tokens)
    val_acc, test_acc, seconds = train_child(model, recipe)
    params, macs = space.costs(tokens)
    result = ChildResult(tokens, val_acc, test_acc, params, macs, seconds)
    if cache:
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(result.to_json())))
    return result


@dataclass(frozen=True)
class ChildEvaluator:
    """``evaluator(tokens) -> ChildResult``: `evaluate_child` with its space and recipe bound.

    A plain picklable object, so a process pool or a Dask cluster can run it.
    """

    space: SearchSpace = field(default_factory=SearchSpace)
    recipe: ChildRecipe = ChildRecipe()
    cache: bool = True

    def __call__(self, tokens: Sequence[int]) -> ChildResult:
        return evaluate_child(tokens, self.space, self.recipe, self.cache)
