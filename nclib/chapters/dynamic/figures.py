"""Matplotlib figures for chapter 06 (dynamic computation).

Every function draws on `ax` when one is given (else on a new figure), returns the axes,
and takes the numbers to draw as arguments: the notebook computes, the figure shows.
matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from nclib.course import plotting

__all__ = ["blocks_histogram", "digits_with_blocks", "accuracy_vs_macs", "saliency_spread",
           "kept_by_digit", "fbs_vs_static"]


def blocks_histogram(blocks: torch.Tensor, num_blocks: int, correct: torch.Tensor | None = None, ax=None):
    """How many images used each number of blocks (0..K); wrong predictions stacked in red."""
    ax = plotting.axes(ax, (7, 3))
    blocks = torch.as_tensor(blocks).long()
    right = torch.ones_like(blocks, dtype=torch.bool) if correct is None else torch.as_tensor(correct).bool()
    bins = list(range(num_blocks + 1))
    ok = torch.bincount(blocks[right], minlength=num_blocks + 1)
    bad = torch.bincount(blocks[~right], minlength=num_blocks + 1)
    ax.bar(bins, ok.tolist(), color="tab:blue", label="right")
    ax.bar(bins, bad.tolist(), bottom=ok.tolist(), color="tab:red", label="wrong")
    ax.set_xticks(bins)
    ax.set_xlabel(f"residual blocks run (of {num_blocks})")
    ax.set_ylabel("test digits")
    ax.legend(fontsize=8)
    return ax


def digits_with_blocks(images: torch.Tensor, policies: torch.Tensor, titles: Sequence[str], fig=None):
    """A row of digits, each with its policy drawn under it as a strip of kept (dark) blocks."""
    import matplotlib.pyplot as plt

    n = len(images)
    fig = fig or plt.figure(figsize=(1.3 * n, 1.9))
    for i, (img, p, title) in enumerate(zip(images, policies, titles)):
        ax = fig.add_axes([i / n + 0.01, 0.28, 1 / n - 0.02, 0.6])
        ax.imshow(torch.as_tensor(img).squeeze(0).numpy(), cmap="gray_r")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
        strip = fig.add_axes([i / n + 0.01, 0.08, 1 / n - 0.02, 0.12])
        strip.imshow(torch.as_tensor(p).float()[None].numpy(), cmap="Blues", vmin=0, vmax=1.3, aspect="auto")
        strip.set_xticks([])
        strip.set_yticks([])
    return fig


def accuracy_vs_macs(points: Mapping[str, tuple[float, float]], full: tuple[float, float], ax=None):
    """Accuracy (%) against MACs per image for each labelled model, the full network starred."""
    ax = plotting.axes(ax, (6, 3.4))
    for label, (macs, acc) in points.items():
        ax.plot(macs, acc, "o", color="tab:blue")
        ax.annotate(label, (macs, acc), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.plot(*full, "*", color="black", ms=12, label="full network")
    ax.set_xlabel("MACs per image (policy network included)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    return ax


def saliency_spread(saliency: torch.Tensor, channels: int = 20, ax=None):
    """Box plots of each of the first `channels` channels' saliency over the images: a channel
    that matters for some images and not others has a wide box (FBS's Figure 1c)."""
    ax = plotting.axes(ax, (8, 3))
    s = torch.as_tensor(saliency)[:, :channels]  # (N, channels)
    ax.boxplot([col.numpy() for col in s.T], showfliers=False)
    ax.set_xlabel("channel")
    ax.set_ylabel("saliency over images")
    return ax


def kept_by_digit(kept: torch.Tensor, labels: torch.Tensor, ax=None):
    """How often each digit class keeps each channel: rows are digits 0-9, columns channels."""
    ax = plotting.axes(ax, (8, 2.8))
    kept, labels = torch.as_tensor(kept).float(), torch.as_tensor(labels)
    rate = torch.stack([kept[labels == c].mean(0) for c in range(10)])  # (10, C)
    im = ax.imshow(rate.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(range(10))
    ax.set_xlabel("channel")
    ax.set_ylabel("digit")
    ax.figure.colorbar(im, ax=ax, label="fraction of images keeping it")
    return ax


def fbs_vs_static(reductions: Sequence[int], fbs_drop: Sequence[float], static_drop: Sequence[float], ax=None):
    """Accuracy lost (points) at each MAC reduction, FBS beside static L1 filter pruning."""
    ax = plotting.axes(ax, (5, 3))
    x = torch.arange(len(reductions)).float()
    ax.bar((x - 0.2).tolist(), list(fbs_drop), 0.4, label="FBS (dynamic)", color="tab:blue")
    ax.bar((x + 0.2).tolist(), list(static_drop), 0.4, label="L1 filters (static)", color="tab:gray")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x.tolist(), [f"{r}x" for r in reductions])
    ax.set_xlabel("fewer MACs")
    ax.set_ylabel("accuracy lost (points)")
    ax.legend(fontsize=8)
    return ax
