"""Matplotlib figures for chapter 05 (neural architecture search).

Every function draws on `ax` when one is given (else on a new figure), returns the axes,
and takes the numbers to draw as arguments: the notebook computes, the figure shows.
matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from nclib.course import plotting

__all__ = ["accuracy_histogram", "best_so_far", "token_probabilities", "pareto"]

COLORS = {"random": "tab:gray", "rl": "tab:blue"}


def accuracy_histogram(accuracies: torch.Tensor, ends: Mapping[str, Sequence[float]] | None = None,
                       ax=None):
    """Histogram of every architecture's validation accuracy (%), with a tick per search's end.

    `ends`: method -> the best validation accuracy (%) each of its runs ended with.
    """
    ax = plotting.axes(ax, (8, 3.2))
    acc = torch.as_tensor(accuracies, dtype=torch.float64)
    ax.hist(acc.numpy(), bins=40, color="tab:green", alpha=0.6, label="all architectures")
    top = ax.get_ylim()[1]
    for i, (method, values) in enumerate((ends or {}).items()):
        y = top * (1.02 + 0.06 * i)
        ax.plot(list(values), [y] * len(values), "v", color=COLORS.get(method, f"C{i}"),
                alpha=0.7, label=f"{method}: where each run ended")
    ax.axvline(float(acc.max()), color="black", ls="--", lw=1, label=f"true best {float(acc.max()):.1f}%")
    ax.set_xlabel("validation accuracy after the child recipe (%)")
    ax.set_ylabel("architectures")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def best_so_far(curves: Mapping[str, torch.Tensor], best: float, ax=None):
    """Best-so-far validation accuracy (%) against children evaluated: mean and +-1 se bands.

    `curves`: method -> (seeds, children) best-so-far values; `best`: the table's optimum.
    """
    ax = plotting.axes(ax, (7, 3.6))
    for method, c in curves.items():
        c = torch.as_tensor(c, dtype=torch.float64)
        mean = c.mean(0)
        se = c.std(0) / c.shape[0] ** 0.5 if c.shape[0] > 1 else torch.zeros_like(mean)
        x = torch.arange(1, c.shape[1] + 1).numpy()
        color = COLORS.get(method)
        ax.plot(x, mean.numpy(), color=color, label=f"{method} (mean of {c.shape[0]} seeds)")
        ax.fill_between(x, (mean - se).numpy(), (mean + se).numpy(), color=color, alpha=0.25)
    ax.axhline(best, color="black", ls="--", lw=1, label=f"true best {best:.1f}%")
    ax.set_xlabel("children evaluated")
    ax.set_ylabel("best validation accuracy so far (%)")
    ax.legend(fontsize=8)
    return ax


def token_probabilities(labels: Sequence[str], choices: Sequence[Sequence], before: Sequence[torch.Tensor],
                        after: Sequence[torch.Tensor], ax=None):
    """The controller's softmax at every decision, before and after the search (bars per choice).

    `labels` name the decisions (short, or on two lines: they sit above each group of bars).
    """
    ax = plotting.axes(ax, (10, 3.4))
    x, ticks, names = 0.0, [], []
    for label, options, p0, p1 in zip(labels, choices, before, after):
        for j, option in enumerate(options):
            ax.bar(x - 0.2, float(p0[j]), 0.4, color="tab:gray", label="before" if x == 0 else None)
            ax.bar(x + 0.2, float(p1[j]), 0.4, color="tab:blue", label="after" if x == 0 else None)
            ticks.append(x)
            names.append(f"{option}")
            x += 1
        ax.text(x - (len(options) + 1) / 2, 1.02, label, ha="center", va="bottom", fontsize=7)
        x += 0.8
    ax.set_xticks(ticks, names, fontsize=7)
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("probability")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return ax


def pareto(macs: torch.Tensor, accuracies: torch.Tensor, front: Sequence[int],
           marked: Mapping[str, tuple[float, float]] | None = None, ax=None):
    """Validation accuracy (%) against MACs (log scale) of every architecture, the front drawn.

    `marked`: label -> (MACs, accuracy %) of points to name (a search's find, LeNet-5, ...).
    """
    ax = plotting.axes(ax, (7, 4))
    m, a = torch.as_tensor(macs).double(), torch.as_tensor(accuracies).double()
    ax.scatter(m.numpy(), a.numpy(), s=8, color="tab:gray", alpha=0.5, label="all architectures")
    ax.plot(m[list(front)].numpy(), a[list(front)].numpy(), "-o", color="tab:red", ms=4,
            label=f"Pareto front ({len(front)} architectures)")
    for i, (label, (x, y)) in enumerate((marked or {}).items()):
        ax.scatter([x], [y], s=70, marker="*", color=f"C{i}", zorder=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("MACs per digit (log scale)")
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    return ax
