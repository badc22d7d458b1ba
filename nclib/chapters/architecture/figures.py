"""Matplotlib figures for chapter 04 (architecture design).

Every function draws on `ax` when one is given (else on a new figure), returns the axes,
and takes the numbers to draw as arguments: the notebook computes, the figure shows.
matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

from typing import Sequence

import torch

from nclib.course import plotting

__all__ = ['lowrank_shapes', 'singular_values', 'lowrank_accuracy', 'separable_speedup']

def lowrank_shapes(out_features: int, in_features: int, rank: int, ax=None):
    """The lecture's low-rank picture, to scale: W (N x M) next to A (N x K) times B (K x M).

    The areas are the parameter counts, N M against K (N + M).
    """
    from matplotlib.patches import Rectangle

    N, M, K = out_features, in_features, rank
    if min(N, M, K) < 1 or K > min(N, M):
        raise ValueError(f"out_features={N}, in_features={M}, rank={K}: expected positive "
                         "sizes with rank <= min(out_features, in_features)")
    ax = plotting.axes(ax, (9, 3.2))
    gap = 0.25 * max(N, M)
    boxes = [  # (x, width, height, label, count, color)
        (0, M, N, f"W\n{N} x {M}", N * M, "tab:blue"),
        (M + gap, K, N, f"A\n{N} x {K}", N * K, "tab:orange"),
        (M + gap + K + 0.6 * gap, M, K, f"B\n{K} x {M}", K * M, "tab:green"),
    ]
    for x, width, height, label, count, color in boxes:
        ax.add_patch(Rectangle((x, N - height), width, height, color=color, alpha=0.6))
        ax.text(x + width / 2, N + 0.04 * N, f"{label.splitlines()[0]}: {count:,}",
                ha="center", va="bottom")
        ax.text(x + width / 2, N - height - 0.04 * N, label.splitlines()[1], ha="center",
                va="top")
    ax.text(M + gap / 2, N / 2, "\u2248", ha="center", va="center", fontsize=18)  # approx.
    ax.text(M + gap + K + 0.3 * gap, N / 2, "\u00d7", ha="center", va="center", fontsize=14)
    ax.set_xlim(-0.02 * M, 2 * M + K + 1.7 * gap)
    ax.set_ylim(-0.2 * N, 1.15 * N)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"N x M = {N * M:,} parameters  vs  K x (N + M) = {K * (N + M):,} "
                 f"({N * M / (K * (N + M)):.1f}x fewer)")
    return ax


def singular_values(weight: torch.Tensor, ranks: Sequence[int] = (), ax=None):
    """Singular values of a weight matrix (left axis, log scale) and the fraction of
    spectral energy sum_{i<=K} s_i^2 / sum_i s_i^2 the first K keep (right axis), with a
    dashed line at each rank in `ranks`."""
    if not torch.is_tensor(weight) or weight.ndim != 2:
        raise ValueError("weight: expected a 2-d tensor")
    S = torch.linalg.svdvals(weight.detach().double())  # descending
    energy = (S ** 2).cumsum(0) / (S ** 2).sum()
    ax = plotting.axes(ax, (7, 3.2))
    k = range(1, len(S) + 1)
    ax.semilogy(k, S.numpy(), color="tab:blue")
    ax.set(xlabel="index i (descending)", ylabel="singular value s_i")
    right = ax.twinx()
    right.plot(k, energy.numpy(), color="tab:red")
    right.set_ylabel("energy kept by the first K", color="tab:red")
    right.set_ylim(0, 1.02)
    for K in ranks:
        ax.axvline(K, color="gray", linestyle="--", linewidth=1)
        right.annotate(f"K={K}: {energy[K - 1]:.0%}", (K, float(energy[K - 1])),
                       textcoords="offset points", xytext=(4, -12), fontsize=8)
    return ax


def lowrank_accuracy(compressions: Sequence[float], factorized: Sequence[float],
                     fine_tuned: Sequence[float], dense: float, ax=None):
    """Accuracy against the layer's compression, right after factorizing and after a
    fine-tune, with the dense model's accuracy as a horizontal line (all in percent)."""
    plotting.same_length(compressions=compressions, factorized=factorized, fine_tuned=fine_tuned)
    ax = plotting.axes(ax, (6, 3.2))
    ax.plot(compressions, factorized, "o-", label="factorized")
    ax.plot(compressions, fine_tuned, "s-", label="factorized + fine-tuned")
    ax.axhline(dense, color="gray", linestyle="--", label="dense")
    ax.set_xscale("log")
    ax.set_xticks(list(compressions), [f"{c:.0f}x" for c in compressions])
    ax.minorticks_off()
    ax.set(xlabel="compression of the layer's weights", ylabel="test accuracy (%)")
    ax.legend()
    return ax


def separable_speedup(channels: Sequence[int], mac_ratio: Sequence[float],
                      speedup: Sequence[float], ax=None):
    """Bars of the MAC ratio (standard / separable, what the counts promise) beside the
    measured speedup, for each channel count."""
    n = plotting.same_length(channels=channels, mac_ratio=mac_ratio, speedup=speedup)
    ax = plotting.axes(ax, (6, 3.2))
    x = range(n)
    width = 0.38
    bars = ax.bar([i - width / 2 for i in x], mac_ratio, width, label="MAC ratio (counted)")
    ax.bar_label(bars, fmt="%.1fx", fontsize=8)
    bars = ax.bar([i + width / 2 for i in x], speedup, width, label="speedup (measured)")
    ax.bar_label(bars, fmt="%.1fx", fontsize=8)
    ax.axhline(1, color="gray", linewidth=1)
    ax.set_xticks(list(x), [str(c) for c in channels])
    ax.set(xlabel="channels C (C_in = C_out)", ylabel="standard / separable")
    ax.set_ylim(0, 1.35 * max(max(mac_ratio), max(speedup)))
    ax.legend(loc="upper center", ncol=2)
    return ax


