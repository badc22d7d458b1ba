"""Pruning schedules: how far to prune at each step, and the loops that follow them.

* Han et al., "Learning both Weights and Connections for Efficient Neural Networks"
  (NIPS 2015): iterative pruning, prune to a target, retrain the survivors, repeat
  (`prune_iteratively`).
* Zhu & Gupta, "To prune, or not to prune" (arXiv 1710.01878, 2017), eq. (1): the automated
  gradual pruning (AGP) schedule  s_t = s_f + (s_i - s_f) (1 - t / n)^3, followed while
  training (`GradualPruning`, a step hook of `nclib.train.fit`).

The masks, criteria and whole-model pruning they apply are in `nclib.pruning.magnitude`.
"""
from __future__ import annotations

from typing import Literal, Mapping, Sequence

from torch import nn

from nclib.pruning.magnitude import (SCOPES, check_sparsity, enforce_mask, global_sparsity,
                                     is_masked, prune_model)
from nclib.train import fit

__all__ = ["SCHEDULES", "agp_sparsity", "sparsity_schedule", "prune_iteratively",
           "GradualPruning"]

SCHEDULES = ("agp", "linear", "geometric")


def agp_sparsity(step: int, num_steps: int, final_sparsity: float,
                 initial_sparsity: float = 0.0) -> float:
    """Zhu & Gupta 2017, eq. (1): the sparsity after pruning step `step` of `num_steps`.

    Prunes fast while many redundant weights remain and slowly near the end. Steps
    outside [0, num_steps] are clamped.
    """
    s_f = check_sparsity(final_sparsity, "final_sparsity")
    s_i = check_sparsity(initial_sparsity, "initial_sparsity")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps={num_steps!r}: expected a positive integer")
    t = min(max(step, 0), num_steps)
    # s_t = s_f + (s_i - s_f) (1 - t/n)^3
    return s_f + (s_i - s_f) * (1 - t / num_steps) ** 3


def sparsity_schedule(final_sparsity: float, num_steps: int,
                      kind: Literal["agp", "linear", "geometric"] = "agp",
                      initial_sparsity: float = 0.0) -> list[float]:
    """The target sparsity after each of `num_steps` prune steps (the last is the final one).

    kind: "agp" (eq. (1) above); "linear" (equal increments); "geometric" (each step
    removes the same fraction of the surviving weights: the kept fraction shrinks as
    (1 - s_i) * ((1 - s_f) / (1 - s_i)) ** (t / n)).
    """
    if kind not in SCHEDULES:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(map(repr, SCHEDULES))}")
    s_f = check_sparsity(final_sparsity, "final_sparsity")
    s_i = check_sparsity(initial_sparsity, "initial_sparsity")
    agp = [agp_sparsity(t, num_steps, s_f, s_i) for t in range(1, num_steps + 1)]
    if kind == "agp":
        return agp
    if kind == "linear":
        return [s_i + (s_f - s_i) * t / num_steps for t in range(1, num_steps + 1)]
    return [1 - (1 - s_i) * ((1 - s_f) / (1 - s_i)) ** (t / num_steps)
            for t in range(1, num_steps + 1)]


def prune_iteratively(model: nn.Module, train_loader, final_sparsity: float | Mapping[str, float],
                      num_steps: int, epochs_per_step: int, *,
                      schedule: Literal["agp", "linear", "geometric"] = "agp",
                      scope: Literal["layer", "global"] = "layer",
                      layers: Sequence[str] | None = None, val_loader=None,
                      **fit_kwargs) -> list[dict]:
    """Han et al.'s loop, in place: prune to the schedule's next target, retrain, repeat.

    `final_sparsity` may be a dict {layer: sparsity} with scope "layer"; each layer then
    follows its own schedule. `fit_kwargs` go to `nclib.train.fit` (lr, progress, ...).

    Returns:
        One dict per step: step, sparsity (over the pruned layers), val_acc (or None).
    """
    if isinstance(final_sparsity, Mapping):
        per_layer = {n: sparsity_schedule(s, num_steps, schedule)
                     for n, s in final_sparsity.items()}
        targets = [{n: s[t] for n, s in per_layer.items()} for t in range(num_steps)]
        names = list(final_sparsity)
    else:
        targets, names = sparsity_schedule(final_sparsity, num_steps, schedule), layers
    records = []
    for t, target in enumerate(targets, 1):
        prune_model(model, target, scope, names)
        history = fit(model, train_loader, val_loader, epochs=epochs_per_step, **fit_kwargs)
        records.append({"step": t, "sparsity": global_sparsity(model, names),
                        "val_acc": history.val_acc[-1] if history.val_acc else None})
    return records


class GradualPruning:
    """A `fit` step hook for AGP (Zhu & Gupta 2017): prune while training, no extra loop.

    At steps ``start_step + j * frequency`` for j = 0..num_steps it prunes to
    ``agp_sparsity(j, num_steps, final_sparsity, initial_sparsity)``; after every step it
    re-zeroes removed weights (Adam's momentum from before a weight was removed would
    otherwise move it a little until the next forward pass).

    Example:
        >>> fit(model, loader, epochs=5, step_hook=GradualPruning(0.9, num_steps=10, frequency=20))
    """

    def __init__(self, final_sparsity: float, num_steps: int, frequency: int, start_step: int = 1,
                 initial_sparsity: float = 0.0, scope: Literal["layer", "global"] = "layer",
                 layers: Sequence[str] | None = None):
        agp_sparsity(0, num_steps, final_sparsity, initial_sparsity)  # validates them
        if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
            raise ValueError(f"frequency={frequency!r}: expected a positive number of steps")
        if scope not in SCOPES:
            raise ValueError(f"scope={scope!r}: expected one of {', '.join(map(repr, SCOPES))}")
        self.final_sparsity, self.num_steps, self.frequency = final_sparsity, num_steps, frequency
        self.start_step, self.initial_sparsity = start_step, initial_sparsity
        self.scope, self.layers = scope, layers

    def __call__(self, model: nn.Module, step: int) -> None:
        j, rest = divmod(step - self.start_step, self.frequency)
        if rest == 0 and 0 <= j <= self.num_steps:
            s = agp_sparsity(j, self.num_steps, self.final_sparsity, self.initial_sparsity)
            prune_model(model, s, self.scope, self.layers)
        for layer in model.modules():
            if is_masked(layer):
                enforce_mask(layer)
