"""ipywidgets demos for chapter 04 (architecture design), for live teaching.

Each demo is two parts: a plain update function (numbers in, text out), which holds all the
logic and is tested without a browser, and a small builder that wires sliders to it and
returns the widget for a notebook to show. ipywidgets is imported only when a builder runs.
"""
from __future__ import annotations

import html

from nclib import arch

__all__ = ['separable_costs', 'separable_summary', 'separable_calculator']

def separable_costs(kernel_size: int, c_in: int, c_out: int, height: int,
                    width: int) -> dict[str, tuple[int, int]]:
    """Parameters and MACs of a standard K x K convolution and its depthwise separable twin.

    Args:
        kernel_size: K; c_in, c_out: channels; height, width: the OUTPUT feature map, H x W.

    Returns:
        {"standard" | "depthwise" | "pointwise" | "separable": (params, MACs)}, no biases
        (Howard et al. 2017, eq. 2, 4 and 5; formulas in `nclib.arch.separable`).
    """
    standard = (arch.conv_params(kernel_size, c_in, c_out),
                arch.conv_macs(kernel_size, c_in, c_out, height, width))
    depthwise = (arch.depthwise_params(kernel_size, c_in),
                 arch.depthwise_macs(kernel_size, c_in, height, width))
    pointwise = (arch.pointwise_params(c_in, c_out),
                 arch.pointwise_macs(c_in, c_out, height, width))
    separable = (depthwise[0] + pointwise[0], depthwise[1] + pointwise[1])
    return {"standard": standard, "depthwise": depthwise, "pointwise": pointwise,
            "separable": separable}


def separable_summary(kernel_size: int, c_in: int, c_out: int, height: int, width: int) -> str:
    """The calculator's text: each layer's filter, parameters and MACs, then the ratio.

    This is the widget's update function; it is plain, so it can be called and tested
    directly.

    Example:
        >>> print(separable_summary(3, 2, 4, 1, 1).splitlines()[-1])
        (dw + pw) / standard = 26 / 72 = 0.3611 = 1/C_out + 1/K^2 = 1/4 + 1/9: 2.8x fewer
    """
    costs = separable_costs(kernel_size, c_in, c_out, height, width)
    k = kernel_size
    filters = {"standard": f"{k} x {k} x {c_in} x {c_out}", "depthwise": f"{k} x {k} x 1 x {c_in}",
               "pointwise": f"1 x 1 x {c_in} x {c_out}", "separable": "depthwise + pointwise"}
    lines = [f"K = {k}, C_in = {c_in}, C_out = {c_out}, output H x W = {height} x {width}",
             f"{'layer':<10} {'filter':<24} {'params':>14} {'MACs':>18}"]
    for name, (params, macs) in costs.items():
        lines.append(f"{name:<10} {filters[name]:<24} {params:>14,} {macs:>18,}")
    separable, standard = costs["separable"][0], costs["standard"][0]
    ratio = arch.separable_ratio(k, c_out)  # 1/C_out + 1/K^2, the same for params and MACs
    lines.append(f"(dw + pw) / standard = {separable:,} / {standard:,} = {ratio:.4f} "
                 f"= 1/C_out + 1/K^2 = 1/{c_out} + 1/{k * k}: {1 / ratio:.1f}x fewer")
    return "\n".join(lines)


def separable_calculator(kernel_size: int = 3, c_in: int = 32, c_out: int = 64,
                         height: int = 112, width: int = 112):
    """Sliders for K, C_in, C_out, H and W, and the `separable_summary` of their values.

    The defaults are MobileNet's first separable layer (Howard et al. 2017, Table 1).

    Returns:
        An ipywidgets VBox; show it as a cell's last expression. Its `.children[-1]` is the
        HTML widget with the summary, updated whenever a slider moves.
    """
    import ipywidgets as w

    style = {"description_width": "60px"}
    sliders = {
        "kernel_size": w.IntSlider(kernel_size, min=1, max=7, step=2, description="K",
                                   style=style),
        "c_in": w.IntSlider(c_in, min=1, max=1024, description="C_in", style=style),
        "c_out": w.IntSlider(c_out, min=1, max=1024, description="C_out", style=style),
        "height": w.IntSlider(height, min=1, max=224, description="H", style=style),
        "width": w.IntSlider(width, min=1, max=224, description="W", style=style),
    }
    out = w.HTML()

    def update(change=None) -> None:
        text = separable_summary(**{name: s.value for name, s in sliders.items()})
        out.value = f"<pre>{html.escape(text)}</pre>"

    for s in sliders.values():
        s.observe(update, names="value")
    update()
    return w.VBox([*sliders.values(), out])


