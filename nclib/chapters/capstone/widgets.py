"""ipywidgets demo for chapter 07 (the capstone), for live teaching: the bits slider.

A plain update function (numbers in, text out) holds the logic and is tested without a
browser; the builder wires two sliders to it. ipywidgets is imported only when it runs.
"""
from __future__ import annotations

import copy
import html

import torch
from torch import nn

from nclib.quant import compressed, kmeans

__all__ = ["bits_summary", "bits_sliders"]


def bits_summary(model: nn.Module, conv_bits: int, fc_bits: int, x: torch.Tensor, y: torch.Tensor,
                 max_bytes: int, min_accuracy: float) -> str:
    """Share a copy of `model`'s weights (`conv_bits` per Conv2d label, `fc_bits` per Linear
    one), Huffman-code it, and say its file bytes and its accuracy on (x, y) against the
    budgets. The update function of `bits_sliders`; plain, so it is tested directly."""
    bits = {name: conv_bits if isinstance(m, nn.Conv2d) else fc_bits
            for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    m = kmeans.share_weights(copy.deepcopy(model), bits).eval()
    size = compressed.compressed_bytes(m, "huffman") + compressed.FRAMING
    with torch.no_grad():
        acc = (m(x).argmax(1) == y).float().mean().item()
    ok = lambda hit: "meets" if hit else "MISSES"  # noqa: E731
    return "\n".join([
        f"conv layers {conv_bits} bits ({2 ** conv_bits} values), fc layers {fc_bits} bits "
        f"({2 ** fc_bits} values)",
        f"file      {size:>8,} bytes   {ok(size <= max_bytes)} the budget of {max_bytes:,}",
        f"accuracy  {100 * acc:8.1f}%       {ok(acc >= min_accuracy)} the bar of {100 * min_accuracy:.0f}% "
        f"({len(y):,} test digits)"])


def bits_sliders(model: nn.Module, x: torch.Tensor, y: torch.Tensor, max_bytes: int,
                 min_accuracy: float, conv_bits: int = 4, fc_bits: int = 4):
    """Two sliders (bits of the conv and of the fc layers, 1-8) showing `bits_summary` for
    copies of `model` (which is never changed). Returns an ipywidgets VBox; its
    `.children[-1]` is the HTML with the summary."""
    import ipywidgets as wd

    style = {"description_width": "70px"}
    conv = wd.IntSlider(conv_bits, min=1, max=8, description="conv bits", style=style)
    fc = wd.IntSlider(fc_bits, min=1, max=8, description="fc bits", style=style)
    out = wd.HTML()
    model = copy.deepcopy(model)

    def update(change=None) -> None:
        text = bits_summary(model, conv.value, fc.value, x, y, max_bytes, min_accuracy)
        out.value = f"<pre>{html.escape(text)}</pre>"

    conv.observe(update, names="value")
    fc.observe(update, names="value")
    update()
    return wd.VBox([wd.HBox([conv, fc]), out])
