"""Matplotlib figures for chapter 07 (the capstone).

Every function draws on the axes it is given (else on a new figure), returns them, and takes
the numbers to draw as arguments: the notebook computes, the figure shows. matplotlib is
imported only when a figure is drawn.
"""
from __future__ import annotations

from typing import Sequence

from nclib.course import plotting

__all__ = ["waterfall", "pareto"]

_PANELS = (("accuracy", "test accuracy (%)", 100.0, False), ("bytes", "file bytes (log)", 1.0, True),
           ("nonzero_macs", "MACs with a nonzero weight", 1.0, False),
           ("latency_ms", "latency, batch 64 (ms)", 1.0, False))


def waterfall(results: Sequence, budgets: dict | None = None, fig=None):
    """One bar chart per measure (accuracy, bytes, MACs, latency), a bar per pipeline stage in
    order; `results` are `StageResult`s. `budgets` ({"accuracy": 0.96, "bytes": 10_000,
    "latency_ms": 5.2}) draws each budget as a dashed line. Returns the figure."""
    import matplotlib.pyplot as plt

    fig = fig or plt.figure(figsize=(12, 3.2))
    names = [r.name for r in results]
    colors = plt.get_cmap("viridis")([i / max(1, len(results) - 1) for i in range(len(results))])
    for k, (field, title, scale, log) in enumerate(_PANELS):
        ax = fig.add_subplot(1, len(_PANELS), k + 1)
        values = [scale * getattr(r, field) for r in results]
        ax.bar(range(len(values)), values, color=colors)
        if log:
            ax.set_yscale("log")
        if field == "accuracy":
            ax.set_ylim(min(values) - 1.5, max(values) + 0.8)
        if budgets and field in budgets:
            ax.axhline(scale * budgets[field], color="tab:red", ls="--", lw=1, label="budget")
            ax.legend(fontsize=7, loc="upper right")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=40, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def pareto(points: Sequence, front_points: Sequence, budget: tuple[int, float] | None = None, ax=None):
    """Accuracy (%) against file bytes (log) for `Point`s, one colour per chapter, the front
    joined by a line; `budget` (max bytes, min accuracy) shades the region that meets it."""
    ax = plotting.axes(ax, (8, 4.5))
    chapters = list(dict.fromkeys(p.chapter for p in points))
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    for i, ch in enumerate(chapters):
        mine = [p for p in points if p.chapter == ch]
        ax.plot([p.bytes for p in mine], [100 * p.accuracy for p in mine], "o", color=cmap(i % 10),
                label=ch, ms=6)
    for i, p in enumerate(sorted(points, key=lambda p: p.bytes)):  # labels alternate above and below
        ax.annotate(p.label, (p.bytes, 100 * p.accuracy), textcoords="offset points",
                    xytext=(4, 4 if i % 2 else -9), fontsize=6)
    ax.plot([p.bytes for p in front_points], [100 * p.accuracy for p in front_points], "-",
            color="gray", lw=1, zorder=0, label="front")
    ax.set_xscale("log")
    if budget:
        max_bytes, min_acc = budget
        top = max(100 * p.accuracy for p in points) + 0.5
        ax.fill_between([min(p.bytes for p in points) / 1.5, max_bytes], 100 * min_acc, top,
                        color="tab:green", alpha=0.12, label="capstone budget")
    ax.set_xlabel("bytes of the model (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7, loc="lower right")
    return ax
