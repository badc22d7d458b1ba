"""Matplotlib figures for chapter 01 (network pruning).

Every function draws on `ax` when one is given (else on a new figure), returns the axes,
and takes the numbers to draw as arguments: the notebook computes, the figure shows.
matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

from typing import Sequence

from nclib.course import plotting

__all__ = ['accuracy_vs_sparsity', 'weight_histogram', 'kept_per_layer']

def accuracy_vs_sparsity(sparsities: Sequence[float], accuracies: dict, dense: float | None = None,
                         at: float | None = None, ax=None):
    """Test accuracy (fractions, drawn in %) against sparsity, one line per method in
    `accuracies` ({label: values}); the dense model as a dashed line; a vertical line at
    sparsity `at` (the slider's position)."""
    if not accuracies:
        raise ValueError("accuracies: expected at least one {label: values}")
    for values in accuracies.values():
        plotting.same_length(sparsities=sparsities, accuracies=values)
    ax = plotting.axes(ax, (5, 3.2))
    x = [100 * s for s in sparsities]
    for label, values in accuracies.items():
        ax.plot(x, [100 * a for a in values], label=label)
    if dense is not None:
        ax.axhline(100 * dense, color="gray", linestyle="--", linewidth=1, label="dense")
    if at is not None:
        ax.axvline(100 * at, color="tab:red", linewidth=1)
    ax.set(xlabel="sparsity: weights removed (%)", ylabel="test accuracy (%)", ylim=(0, 100))
    ax.legend(loc="lower left", fontsize=8)
    return ax


def weight_histogram(bin_edges: Sequence[float], counts: Sequence[float], threshold: float = 0.0,
                     log: bool = False, ax=None):
    """Histogram of weight values (counts precomputed by np.histogram; `log` for a log
    count axis) with the pruning threshold: the band |w| <= threshold, shaded, is removed."""
    if len(bin_edges) != len(counts) + 1 or not len(counts):
        raise ValueError(f"expected len(bin_edges) == len(counts) + 1 >= 2, got "
                         f"{len(bin_edges)} and {len(counts)}")
    ax = plotting.axes(ax, (5, 3.2))
    ax.stairs(counts, bin_edges, fill=True, color="tab:blue", alpha=0.7)
    if log:
        ax.set_yscale("log")
    if threshold > 0:
        ax.axvspan(-threshold, threshold, color="tab:red", alpha=0.2, label="removed")
        for side in (-threshold, threshold):
            ax.axvline(side, color="tab:red", linewidth=1)
        ax.legend(loc="upper right", fontsize=8)
    ax.set(xlabel="weight value", ylabel="number of weights",
           title=f"threshold |w| <= {threshold:.3g}")
    return ax


def kept_per_layer(kept: dict, reference: dict | None = None, ax=None):
    """Bars of the fraction of each layer's weights kept ({layer: fraction}), beside
    `reference` fractions (e.g. a paper's) when given; drawn in %."""
    if not kept:
        raise ValueError("kept: expected {layer: fraction kept} for at least one layer")
    ax = plotting.axes(ax, (5, 3.2))
    names = list(kept)
    x = range(len(names))
    width = 0.4 if reference else 0.7
    bars = ax.bar([i - (width / 2 if reference else 0) for i in x],
                  [100 * kept[n] for n in names], width, label="ours")
    ax.bar_label(bars, fmt="%.0f%%", fontsize=8)
    if reference:
        bars = ax.bar([i + width / 2 for i in x], [100 * reference.get(n, 0) for n in names],
                      width, label="paper", color="tab:gray")
        ax.bar_label(bars, fmt="%.0f%%", fontsize=8)
        ax.legend(fontsize=8)
    ax.set_xticks(list(x), names)
    ax.set(ylabel="weights kept (%)", ylim=(0, 110))
    return ax
