"""Matplotlib figures for chapter 02 (knowledge distillation).

Every function draws on `ax` when one is given (else on a new figure), returns the axes,
and takes the numbers to draw as arguments: the notebook computes, the figure shows.
matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

from typing import Sequence

import torch

from nclib.course import plotting

__all__ = ['soft_targets', 'temperature_sweep']

def soft_targets(images: torch.Tensor, probs: dict[float, torch.Tensor],
                 labels: Sequence[int] | None = None, axes=None):
    """Each digit beside its soft targets, one bar chart per temperature.

    Args:
        images: (N, 1, H, W) digits, one row of the figure each.
        probs: {T: (N, C) probabilities}, e.g. ``softmax(teacher_logits / T)``; one column
            per temperature, in the order given.
        labels: the true classes, drawn in a darker color (default: each row's argmax).
        axes: an (N, 1 + len(probs)) array of axes to draw on (default: a new figure).

    Returns:
        The (N, 1 + len(probs)) array of axes.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if not probs:
        raise ValueError("probs: expected at least one temperature")
    tables = [p.detach().cpu() for p in probs.values()]
    N = len(images)
    if N < 1 or any(p.ndim != 2 or p.shape[0] != N for p in tables):
        raise ValueError(f"images has {N} digits and probs shapes "
                         f"{[tuple(p.shape) for p in tables]}: expected (N, C) for each T")
    if labels is None:
        labels = tables[0].argmax(1).tolist()
    if axes is None:
        _, axes = plt.subplots(N, 1 + len(tables), figsize=(2.2 * (1 + len(tables)), 1.7 * N),
                               squeeze=False, gridspec_kw={"width_ratios": [0.6] + [1] * len(tables)})
    axes = np.asarray(axes).reshape(N, 1 + len(tables))
    for i in range(N):
        axes[i, 0].imshow(images[i].detach().cpu().squeeze(0).numpy(), cmap="gray_r")
        axes[i, 0].set_axis_off()
        for j, (T, p) in enumerate(zip(probs, tables)):
            ax = axes[i, j + 1]
            C = p.shape[1]
            colors = ["tab:blue" if c == labels[i] else "tab:gray" for c in range(C)]
            ax.bar(range(C), p[i].numpy(), color=colors)
            ax.set_ylim(0, 1)
            ax.set_xticks(range(C))
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_title(f"T = {T:g}")
    return axes


def temperature_sweep(temperatures: Sequence[float], accuracies: Sequence[float],
                      baseline: float | None = None, ax=None):
    """Test accuracy of distilled students against the temperature (log axis), with the
    labels-only student as a horizontal line (accuracies in percent).

    The y axis runs from at least 10 points below the lowest value (a multiple of 10) to
    100, so differences of a point, which one seed cannot tell from noise, look small.
    """
    plotting.same_length(temperatures=temperatures, accuracies=accuracies)
    ax = plotting.axes(ax, (5, 3))
    lowest = min(list(accuracies) + ([baseline] if baseline is not None else []))
    ax.set_ylim(max(0.0, 10 * (lowest // 10) - 10), 100)
    ax.plot(temperatures, accuracies, "o-", label="distilled (kd_loss)")
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label="labels only")
    ax.set_xscale("log")
    ax.set_xticks(list(temperatures), [f"{T:g}" for T in temperatures])
    ax.minorticks_off()
    ax.set(xlabel="temperature T", ylabel="test accuracy (%)")
    ax.legend()
    return ax


