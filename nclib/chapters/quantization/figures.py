"""Matplotlib figures for chapter 03 (parameter quantization, part 1).

Every function takes the numbers to draw (the notebook computes, the figure shows), draws
on `ax` when one is given (else on a new figure) and returns the matplotlib Figure.
matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from nclib.course import plotting

__all__ = ["centroid_histogram", "accuracy_vs_bits", "bytes_vs_bits", "code_length_chart",
           "stage_waterfall", "staircase", "ste_gradient", "int8_speedup"]

MARKERS = ("v", "^", "s", "o", "D")


def centroid_histogram(values: Sequence[float], centroids: Mapping[str, Sequence[float]],
                       bins: int = 80, ax=None):
    """Histogram of a layer's weight values with each set of shared values in `centroids`
    ({label: values}, e.g. one per k-means init, Han et al. 2016, Fig. 4) as a row of
    markers under it and, for the first set, vertical lines."""
    values = np.asarray(values, dtype=float).ravel()
    if not values.size or not centroids:
        raise ValueError("expected at least one weight value and one {label: centroids}")
    ax = plotting.axes(ax, (6, 3.2))
    counts, edges, _ = ax.hist(values, bins=bins, color="tab:blue", alpha=0.6, label="weights")
    top = max(float(counts.max()), 1.0)
    for i, (label, c) in enumerate(centroids.items()):
        c = np.asarray(c, dtype=float).ravel()
        y = -top * 0.08 * (i + 1)  # one row per set, under the bars
        ax.plot(c, np.full_like(c, y), MARKERS[i % len(MARKERS)], ms=6, linestyle="none",
                label=f"{label} ({len(c)})")
        if i == 0:
            for v in c:
                ax.axvline(v, color="gray", linewidth=0.6, alpha=0.6, zorder=0)
    ax.set_ylim(-top * 0.08 * (len(centroids) + 1), top * 1.05)
    ax.set(xlabel="weight value", ylabel="number of weights")
    ax.legend(fontsize=8, loc="upper right")
    return ax.figure


def accuracy_vs_bits(bits: Sequence[int], accuracies: Sequence[float],
                     reference: float | None = None, at: int | None = None, ax=None):
    """Test accuracy (fractions, drawn in %) against the bits per shared weight; the model
    before sharing as a dashed line (`reference`); the point at `at` (the slider) marked."""
    plotting.same_length(bits=bits, accuracies=accuracies)
    ax = plotting.axes(ax, (4.5, 3.2))
    acc = [100 * a for a in accuracies]
    ax.plot(bits, acc, "o-", label="k-means, no retraining")
    if reference is not None:
        ax.axhline(100 * reference, color="gray", linestyle="--", linewidth=1, label="before sharing")
    if at is not None:
        ax.plot([at], [acc[list(bits).index(at)]], "o", color="tab:red", ms=10, zorder=3)
    ax.set(xlabel="bits per weight (2^b shared values)", ylabel="test accuracy (%)",
           ylim=(0, 100), xticks=list(bits))
    ax.legend(loc="lower right", fontsize=8)
    return ax.figure


def bytes_vs_bits(bits: Sequence[int], sizes: Mapping[str, Sequence[float]],
                  lines: Mapping[str, float] | None = None, at: int | None = None, ax=None):
    """Bytes against the bits per shared weight, one line per storage format in `sizes`
    ({label: bytes}), horizontal dashed `lines` ({label: bytes}, e.g. the pruned model's
    file), a vertical line at `at`; drawn in kB."""
    if not sizes:
        raise ValueError("sizes: expected at least one {label: bytes per width}")
    for values in sizes.values():
        plotting.same_length(bits=bits, sizes=values)
    ax = plotting.axes(ax, (4.5, 3.2))
    for label, values in sizes.items():
        ax.plot(bits, [v / 1e3 for v in values], "o-", label=label)
    for i, (label, value) in enumerate((lines or {}).items()):
        ax.axhline(value / 1e3, color=f"C{i + 2}", linestyle="--", linewidth=1, label=label)
    if at is not None:
        ax.axvline(at, color="tab:red", linewidth=1)
    ax.set_ylim(bottom=0)
    ax.set(xlabel="bits per weight", ylabel="bytes (kB)", xticks=list(bits))
    ax.legend(fontsize=8, loc="upper left")
    return ax.figure


def code_length_chart(counts: Mapping[int, int], lengths: Mapping[int, int], ax=None):
    """Symbols sorted from most to least frequent: their counts as bars (log axis) and, on a
    second axis, their Huffman code lengths beside the ideal -log2 p (Shannon)."""
    if not counts or set(lengths) != {s for s, n in counts.items() if n > 0}:
        raise ValueError("expected counts and one code length for every symbol with a count above 0")
    ax = plotting.axes(ax, (6, 3.2))
    order = sorted(lengths, key=lambda s: (-counts[s], s))
    n = np.array([counts[s] for s in order], dtype=float)
    x = np.arange(len(order))
    ax.bar(x, n, color="tab:blue", alpha=0.6)
    ax.set_yscale("log")
    ax.set(xlabel="symbol, most frequent first", ylabel="count")
    ax.set_xticks(x, [str(s) for s in order], fontsize=7)
    right = ax.twinx()
    right.step(x, [lengths[s] for s in order], where="mid", color="tab:red", label="Huffman code length")
    right.plot(x, -np.log2(n / n.sum()), ".", color="black", label="-log2 p (ideal)")
    right.set(ylabel="bits", ylim=(0, max(lengths.values()) + 1))
    right.legend(fontsize=8, loc="upper left")
    return ax.figure


def stage_waterfall(stages: Mapping[str, float], reference: Mapping[str, float] | None = None,
                    ax=None):
    """A waterfall of file bytes (log axis): the first stage as a bar from the bottom, each
    later one as a bar falling from the previous size to its own, labelled with its size and
    the factor it saves; `reference` bytes ({label: bytes}, e.g. the paper's) as grey bars."""
    from nclib.measure import human

    reference = dict(reference or {})
    if len(stages) < 2 or min(list(stages.values()) + list(reference.values())) <= 0:
        raise ValueError("stages: expected at least two {stage: bytes > 0} (and reference bytes > 0)")
    ax = plotting.axes(ax, (6, 3.4))
    sizes = list(stages.values())
    floor = min(sizes + list(reference.values())) / 4  # the bottom of the log axis
    for i, size in enumerate(sizes):
        if i == 0:  # the start: a bar from the bottom, its size on top
            ax.bar(i, size - floor, bottom=floor, color="tab:blue", width=0.6)
            ax.text(i, size * 1.15, human(size, "B"), ha="center", va="bottom", fontsize=7)
        else:  # a step down from the previous size, the new size and the factor below it
            ax.bar(i, sizes[i - 1] - size, bottom=size, color="tab:green", width=0.6)
            ax.text(i, size / 1.15, f"{human(size, 'B')}\n/{sizes[i - 1] / size:.1f}", ha="center",
                    va="top", fontsize=7)
    at = [len(sizes) + 0.5 + j for j in range(len(reference))]
    for x, size in zip(at, reference.values()):
        ax.bar(x, size - floor, bottom=floor, color="tab:gray", width=0.6)
        ax.text(x, size * 1.15, human(size, "B"), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(range(len(sizes))) + at, list(stages) + list(reference), rotation=20,
                  ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(floor, max(sizes + list(reference.values())) * 4)
    ax.set(ylabel="bytes")
    return ax.figure


def staircase(x: Sequence[float], x_hat: Sequence[float], clamp_range: tuple[float, float],
              levels: Sequence[float] | None = None, ax=None):
    """The affine quantizer x -> x_hat = scale (q - zero_point): the staircase, the identity
    line, the clamping range [lo, hi] (outside it, shaded, every x maps to an end level) and
    the representable `levels` as dots (0.0 among them, circled when it is one)."""
    plotting.same_length(x=x, x_hat=x_hat)
    lo, hi = clamp_range
    if not lo < hi:
        raise ValueError(f"clamp_range={clamp_range!r}: expected (lo, hi) with lo < hi")
    ax = plotting.axes(ax, (4.8, 3.4))
    x, x_hat = np.asarray(x, dtype=float), np.asarray(x_hat, dtype=float)
    ax.plot(x, x, color="gray", linestyle=":", linewidth=1, label="x (no quantization)")
    ax.plot(x, x_hat, color="tab:blue", label="scale (q - zero_point)")
    _shade_outside(ax, x, lo, hi)
    if levels is not None:
        levels = np.asarray(levels, dtype=float)
        ax.plot(levels, levels, "o", color="tab:blue", ms=4, label=f"{len(levels)} levels")
        if np.any(levels == 0):
            ax.plot([0], [0], "o", mfc="none", mec="tab:red", ms=11, label="0.0 exactly")
    ax.set(xlabel="real value x", ylabel="dequantized value")
    ax.legend(fontsize=7, loc="upper left")
    return ax.figure


def ste_gradient(x: Sequence[float], grads: Mapping[str, Sequence[float]],
                 clamp_range: tuple[float, float] | None = None, ax=None):
    """d(output)/dx against x for each rule in `grads` ({label: gradients}, e.g. the true
    gradient of round, 0 almost everywhere, and the straight-through estimator's), with
    the clamping range shaded outside."""
    if not grads:
        raise ValueError("grads: expected at least one {label: gradients}")
    for values in grads.values():
        plotting.same_length(x=x, grads=values)
    ax = plotting.axes(ax, (4.8, 3.4))
    x = np.asarray(x, dtype=float)
    for i, (label, g) in enumerate(grads.items()):  # later rules drawn thinner, over the first
        ax.plot(x, np.asarray(g, dtype=float), drawstyle="steps-mid", linewidth=3.5 - 1.5 * min(i, 1),
                label=label)
    if clamp_range is not None:
        _shade_outside(ax, x, *clamp_range)
    ax.set(xlabel="real value x", ylabel="gradient passed back", ylim=(-0.2, 1.3))
    ax.legend(fontsize=8, loc="center left")
    return ax.figure


def _shade_outside(ax, x: np.ndarray, lo: float, hi: float) -> None:
    """Shade the x outside [lo, hi]: where a quantizer clamps."""
    label = "clamped"
    for side in ((x.min(), lo), (hi, x.max())):
        if side[0] < side[1]:
            ax.axvspan(*side, color="tab:red", alpha=0.12, label=label)
            label = None


def int8_speedup(sizes: Sequence[int], speedups: Mapping[str, Sequence[float]], ax=None):
    """int8 speed-up (fp32 time / int8 time) of square Linear layers against their size,
    one line per setting in `speedups` ({label, e.g. "batch 1": values}); 1x dashed."""
    if not speedups:
        raise ValueError("speedups: expected at least one {label: speed-ups}")
    for values in speedups.values():
        plotting.same_length(sizes=sizes, speedups=values)
    ax = plotting.axes(ax, (4.8, 3.2))
    for label, values in speedups.items():
        ax.plot(sizes, values, "o-", label=label)
    ax.axhline(1, color="gray", linestyle="--", linewidth=1, label="as fast as fp32")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xticks(list(sizes), [str(s) for s in sizes])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="Linear layer size n (n x n weights)", ylabel="int8 speed-up over fp32")
    ax.legend(fontsize=8)
    return ax.figure
