"""ipywidgets demos for chapter 02 (knowledge distillation), for live teaching.

Each demo is two parts: a plain update function (numbers in, text out), which holds all the
logic and is tested without a browser, and a small builder that wires sliders to it and
returns the widget for a notebook to show. ipywidgets is imported only when a builder runs.
"""
from __future__ import annotations

import html

__all__ = ['soft_target_summary', 'temperature_slider']

def soft_target_summary(logits, temperature: float, labels=None, top: int = 3) -> str:
    """The slider's text: each digit's `top` most likely classes at temperature T and the
    entropy of its soft targets (in bits: 0 is one-hot, log2(C) is uniform).

    Example:
        >>> import torch, math
        >>> print(soft_target_summary(torch.tensor([[0.0, 2 * math.log(3)]]), 2.0))
        T = 2: softmax(z / 2)
        digit 0 (label 1): 1: 0.750, 0: 0.250 | entropy 0.81 bits
    """
    from nclib import distill

    probs = distill.softmax_with_temperature(logits.detach().cpu(), temperature)  # (N, C)
    N, C = probs.shape
    if labels is None:
        labels = probs.argmax(1).tolist()
    k = min(top, C)
    entropy = -(probs * probs.clamp_min(1e-30).log2()).sum(1)  # (N,) bits
    lines = [f"T = {temperature:g}: softmax(z / {temperature:g})"]
    for i in range(N):
        values, classes = probs[i].topk(k)
        best = ", ".join(f"{c}: {v:.3f}" for v, c in zip(values.tolist(), classes.tolist()))
        lines.append(f"digit {i} (label {int(labels[i])}): {best} | entropy {entropy[i]:.2f} bits")
    return "\n".join(lines)


def temperature_slider(logits, images, labels=None, temperature: float = 4.0):
    """A temperature slider over the soft targets of a few digits; moving it redraws at once.

    Args:
        logits: (N, C) a teacher's logits for the N digits.
        images: (N, 1, H, W) the digits, drawn beside their bars (`nclib.figures.soft_targets`).
        labels: their true classes, highlighted (default: the teacher's answer).
        temperature: where the slider starts; it runs from 0.5 to 50 on a log scale.

    Returns:
        An ipywidgets VBox: the slider, the figure and the `soft_target_summary` text.
        ``box.figure`` is the matplotlib figure whose bars the slider moves.
    """
    import math

    import ipywidgets as w
    import matplotlib.pyplot as plt

    from nclib import distill
    from nclib.course.plotting import redraw_in
    from nclib.chapters.distillation import figures

    logits = logits.detach().cpu()
    labels = logits.argmax(1).tolist() if labels is None else [int(c) for c in labels]
    slider = w.FloatLogSlider(value=temperature, base=10, min=math.log10(0.5), max=math.log10(50),
                              step=0.01, description="T", continuous_update=True,
                              readout_format=".3g")
    axes = figures.soft_targets(images, {temperature: distill.softmax_with_temperature(logits, temperature)},
                            labels)
    fig = axes[0, 0].figure
    plt.close(fig)  # shown only inside the widget, not a second time below the cell
    plot, text = w.Output(), w.HTML()

    def update(change=None) -> None:
        T = slider.value
        probs = distill.softmax_with_temperature(logits, T)  # (N, C)
        for ax, p in zip(axes[:, 1], probs):
            for bar, height in zip(ax.containers[0], p.tolist()):
                bar.set_height(height)
        axes[0, 1].set_title(f"T = {T:.3g}")
        redraw_in(plot, fig)
        text.value = f"<pre>{html.escape(soft_target_summary(logits, T, labels))}</pre>"

    slider.observe(update, names="value")
    update()
    box = w.VBox([slider, plot, text])
    box.figure = fig
    return box


