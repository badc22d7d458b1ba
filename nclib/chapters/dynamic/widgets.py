"""ipywidgets demos for chapter 06 (dynamic computation), for live teaching.

The demo is two parts: a plain update function (numbers in, text out), which holds all the
logic and is tested without a browser, and a small builder that wires a slider to it and
returns the widget for a notebook to show. ipywidgets is imported only when a builder runs.
"""
from __future__ import annotations

import copy
import html
from typing import Mapping

import torch

from nclib import measure
from nclib.dynamic import FBSNet, SkippingFBS

__all__ = ["density_summary", "density_slider"]


def density_summary(net: FBSNet, density: float, accuracy: Mapping[float, float], dense_macs: int,
                    dense_ms: float, image: torch.Tensor) -> str:
    """Accuracy, MACs and measured batch-1 latency of `net` at `density`, beside the dense
    network (its `dense_macs` and `dense_ms`). `accuracy` maps densities to accuracies
    measured beforehand (the nearest is shown); the latency is measured now, on `image`.

    This is the widget's update function; it is plain, so it can be called and tested directly.
    """
    net.set_density(density).eval()
    skipping = SkippingFBS(net)
    macs = skipping.forward_with_macs(image[None])[1][0]
    ms = measure.measure_latency(skipping, inputs=image[None], repeats=15, warmup=2, threads=1).median_ms
    nearest = min(accuracy, key=lambda d: abs(d - density))
    return "\n".join([
        f"density {density:.2f}: each layer keeps {100 * density:.0f}% of its channels per image",
        f"accuracy  {100 * accuracy[nearest]:5.1f}%   (measured at density {nearest:.2f})",
        f"MACs      {macs:>12,}   {dense_macs / macs:5.2f}x fewer than dense ({dense_macs:,})",
        f"latency   {ms:8.3f} ms   {dense_ms / ms:5.2f}x dense's {dense_ms:.3f} ms "
        "(batch 1, one thread, measured now)"])


def density_slider(net: FBSNet, accuracy: Mapping[float, float], dense_macs: int, dense_ms: float,
                   image: torch.Tensor):
    """A density slider over the densities of `accuracy`, showing `density_summary` (for a
    copy of `net`: moving the slider leaves `net`'s own density as it was).

    Returns:
        An ipywidgets VBox; its `.children[-1]` is the HTML with the summary.
    """
    import ipywidgets as wd

    densities = sorted(accuracy)
    step = round(min(b - a for a, b in zip(densities, densities[1:])), 4) if len(densities) > 1 else 0.1
    slider = wd.FloatSlider(densities[-1], min=densities[0], max=densities[-1], step=step,
                            description="density", readout_format=".2f",
                            style={"description_width": "70px"})
    out = wd.HTML()
    net = copy.deepcopy(net)

    def update(change=None) -> None:
        text = density_summary(net, slider.value, accuracy, dense_macs, dense_ms, image)
        out.value = f"<pre>{html.escape(text)}</pre>"

    slider.observe(update, names="value")
    update()
    return wd.VBox([slider, out])
