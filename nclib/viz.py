"""Matplotlib figures for the lectures, one section per chapter.

Every function draws on `ax` when one is given (else on a new figure), returns the axes,
and takes the numbers to draw as arguments: the notebook computes, the figure shows.
matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["lowrank_shapes", "singular_values", "lowrank_accuracy", "separable_speedup"]


def _axes(ax, figsize: tuple[float, float]):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def _same_length(**seqs: Sequence) -> int:
    lengths = {name: len(s) for name, s in seqs.items()}
    if len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
        raise ValueError(f"expected non-empty sequences of one length, got lengths {lengths}")
    return next(iter(lengths.values()))


# ---------------------------------------------------------------- chapter 04: architecture design
def lowrank_shapes(out_features: int, in_features: int, rank: int, ax=None):
    """The lecture's low-rank picture, to scale: W (N x M) next to A (N x K) times B (K x M).

    The areas are the parameter counts, N M against K (N + M).
    """
    from matplotlib.patches import Rectangle

    N, M, K = out_features, in_features, rank
    if min(N, M, K) < 1 or K > min(N, M):
        raise ValueError(f"out_features={N}, in_features={M}, rank={K}: expected positive "
                         "sizes with rank <= min(out_features, in_features)")
    ax = _axes(ax, (9, 3.2))
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
    ax = _axes(ax, (7, 3.2))
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
    _same_length(compressions=compressions, factorized=factorized, fine_tuned=fine_tuned)
    ax = _axes(ax, (6, 3.2))
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
    n = _same_length(channels=channels, mac_ratio=mac_ratio, speedup=speedup)
    ax = _axes(ax, (6, 3.2))
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


# ---------------------------------------------------------------- chapter 02: knowledge distillation
__all__ += ["soft_targets", "temperature_sweep"]


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
    labels-only student as a horizontal line (accuracies in percent)."""
    _same_length(temperatures=temperatures, accuracies=accuracies)
    ax = _axes(ax, (5, 3))
    ax.plot(temperatures, accuracies, "o-", label="distilled (kd_loss)")
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label="labels only")
    ax.set_xscale("log")
    ax.set_xticks(list(temperatures), [f"{T:g}" for T in temperatures])
    ax.minorticks_off()
    ax.set(xlabel="temperature T", ylabel="test accuracy (%)")
    ax.legend()
    return ax


# ---------------------------------------------------------------- chapter 01: pruning
__all__ += ["accuracy_vs_sparsity", "weight_histogram", "kept_per_layer"]


def accuracy_vs_sparsity(sparsities: Sequence[float], accuracies: dict, dense: float | None = None,
                         at: float | None = None, ax=None):
    """Test accuracy (fractions, drawn in %) against sparsity, one line per method in
    `accuracies` ({label: values}); the dense model as a dashed line; a vertical line at
    sparsity `at` (the slider's position)."""
    if not accuracies:
        raise ValueError("accuracies: expected at least one {label: values}")
    for values in accuracies.values():
        _same_length(sparsities=sparsities, accuracies=values)
    ax = _axes(ax, (5, 3.2))
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
    ax = _axes(ax, (5, 3.2))
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
    ax = _axes(ax, (5, 3.2))
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
