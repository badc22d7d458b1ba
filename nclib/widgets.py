"""ipywidgets demos for live teaching, one section per chapter.

Each demo is two parts: a plain update function (numbers in, text out), which holds all the
logic and is tested without a browser, and a small builder that wires sliders to it and
returns the widget for a notebook to show::

    from nclib import widgets
    widgets.separable_calculator()

ipywidgets is imported only when a builder runs, so `import nclib.widgets` stays cheap.
"""
from __future__ import annotations

import html

from nclib import arch

__all__ = ["separable_costs", "separable_summary", "separable_calculator"]


# ---------------------------------------------------------------- chapter 04: architecture design
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


# ---------------------------------------------------------------- chapter 02: knowledge distillation
__all__ += ["soft_target_summary", "temperature_slider"]


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
        images: (N, 1, H, W) the digits, drawn beside their bars (`nclib.viz.soft_targets`).
        labels: their true classes, highlighted (default: the teacher's answer).
        temperature: where the slider starts; it runs from 0.5 to 50 on a log scale.

    Returns:
        An ipywidgets VBox: the slider, the figure and the `soft_target_summary` text.
        ``box.figure`` is the matplotlib figure whose bars the slider moves.
    """
    import math

    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    from nclib import distill, viz

    logits = logits.detach().cpu()
    labels = logits.argmax(1).tolist() if labels is None else [int(c) for c in labels]
    slider = w.FloatLogSlider(value=temperature, base=10, min=math.log10(0.5), max=math.log10(50),
                              step=0.01, description="T", continuous_update=True,
                              readout_format=".3g")
    axes = viz.soft_targets(images, {temperature: distill.softmax_with_temperature(logits, temperature)},
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
        with plot:
            plot.clear_output(wait=True)
            display(fig)
        text.value = f"<pre>{html.escape(soft_target_summary(logits, T, labels))}</pre>"

    slider.observe(update, names="value")
    update()
    box = w.VBox([slider, plot, text])
    box.figure = fig
    return box


# ---------------------------------------------------------------- chapter 01: pruning
# The sparsity slider: global magnitude pruning of a trained model WITHOUT retraining. All
# the slow work (pruning and evaluating at every slider position) happens once, in
# `sparsity_curve`; moving the slider only looks numbers up (`sparsity_update`) and draws
# them (`sparsity_figure`), well under a second.
import copy as _copy  # noqa: E402  (this chapter's section keeps its imports with it)
from dataclasses import dataclass as _dataclass  # noqa: E402

import numpy as _np  # noqa: E402

__all__ += ["SparsityCurve", "sparsity_curve", "sparsity_update", "sparsity_figure",
            "sparsity_slider"]


@_dataclass(frozen=True)
class SparsityCurve:
    """What the sparsity slider shows for one trained model, computed once.

    Pruning is global: one threshold t for all Linear and Conv2d weights removes every
    weight with |w| <= t, and t is the magnitude below which the fraction `sparsity` of
    all weights lies (Han et al. 2015 prune by magnitude; one threshold for the whole
    network shows which layers hold the small weights).
    """

    sparsities: _np.ndarray  # (S,) the slider's positions, ascending
    accuracies: _np.ndarray  # (S,) test accuracy after pruning to each, no retraining
    magnitudes: _np.ndarray  # (N,) |w| of every prunable weight, ascending
    layer_magnitudes: dict  # {layer: (N_l,) its |w|, ascending}
    bin_edges: _np.ndarray  # (B + 1,) histogram of the signed weights
    counts: _np.ndarray  # (B,)
    dense_accuracy: float


def sparsity_curve(model, loader, sparsities=None, bins: int = 101) -> SparsityCurve:
    """Prune a copy of `model` to each of `sparsities` (default 0, 0.01, ..., 0.99) and
    evaluate it on `loader`; keep the sorted magnitudes and a weight histogram.

    `model` itself is not changed. Costs one evaluation per sparsity (about a second for
    LeNet-300-100 on 1,000 test digits).
    """
    import torch

    from nclib.pruning.magnitude import prunable_layers
    from nclib.train import evaluate

    if sparsities is None:
        sparsities = _np.round(_np.arange(100) / 100, 2)
    sparsities = _np.asarray(sparsities, dtype=float)
    if sparsities.ndim != 1 or not len(sparsities) or _np.any(_np.diff(sparsities) <= 0) or \
            sparsities[0] < 0 or sparsities[-1] >= 1:
        raise ValueError("sparsities: expected increasing fractions in [0, 1)")
    work = _copy.deepcopy(model)
    layers = prunable_layers(work)
    originals = {n: layer.weight.detach().clone() for n, layer in layers.items()}
    layer_magnitudes = {n: _np.sort(w.abs().flatten().numpy()) for n, w in originals.items()}
    magnitudes = _np.sort(_np.concatenate(list(layer_magnitudes.values())))
    signed = torch.cat([w.flatten() for w in originals.values()]).numpy()
    limit = float(magnitudes[-1])
    counts, bin_edges = _np.histogram(signed, bins=bins, range=(-limit, limit))
    accuracies = []
    with torch.no_grad():
        for s in sparsities:
            t = _threshold(magnitudes, s)
            for n, layer in layers.items():
                layer.weight.copy_(originals[n] * (originals[n].abs() > t))
            accuracies.append(evaluate(work, loader))
    return SparsityCurve(sparsities, _np.array(accuracies), magnitudes, layer_magnitudes,
                         bin_edges, counts, evaluate(model, loader))


def _threshold(magnitudes: _np.ndarray, sparsity: float) -> float:
    """The largest removed magnitude: the round(sparsity * N)-th smallest |w| (0 if none)."""
    k = round(float(sparsity) * len(magnitudes))
    return float(magnitudes[k - 1]) if k > 0 else 0.0


def sparsity_update(curve: SparsityCurve, sparsity: float) -> dict:
    """The slider's numbers at `sparsity`: a plain function, a few microseconds.

    Returns:
        {"sparsity", "threshold", "accuracy" (at the nearest precomputed sparsity),
         "kept": {layer: fraction of its weights kept}, "kept_total": fraction kept}.
    """
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity={sparsity!r}: expected a fraction in [0, 1)")
    t = _threshold(curve.magnitudes, sparsity)
    # a weight is kept when |w| > t: count the magnitudes up to t, from the right
    kept = {n: float(1 - _np.searchsorted(m, t, side="right") / len(m))
            for n, m in curve.layer_magnitudes.items()}
    total = 1 - _np.searchsorted(curve.magnitudes, t, side="right") / len(curve.magnitudes)
    nearest = int(_np.argmin(_np.abs(curve.sparsities - sparsity)))
    return {"sparsity": float(sparsity), "threshold": t,
            "accuracy": float(curve.accuracies[nearest]), "kept": kept,
            "kept_total": float(total)}


def sparsity_figure(curve: SparsityCurve, sparsity: float, fig=None, reference=None):
    """Three panels at `sparsity`: accuracy against sparsity with the current point, the
    weight histogram with the threshold, and the fraction of each layer kept (beside
    `reference`, e.g. Han et al.'s per-layer fractions, if given). Returns the figure."""
    from nclib import viz

    state = sparsity_update(curve, sparsity)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(12, 3.3))
    fig.clear()
    ax = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1.2, 1]})
    viz.accuracy_vs_sparsity(curve.sparsities, {"magnitude, no retraining": curve.accuracies},
                             dense=curve.dense_accuracy, at=state["sparsity"], ax=ax[0])
    ax[0].set_title(f"accuracy {100 * state['accuracy']:.1f}% at sparsity "
                    f"{100 * state['sparsity']:.0f}%")
    viz.weight_histogram(curve.bin_edges, curve.counts, state["threshold"], ax=ax[1])
    viz.kept_per_layer(state["kept"], reference=reference, ax=ax[2])
    ax[2].set_title(f"kept: {100 * state['kept_total']:.1f}% of all weights")
    fig.tight_layout()
    return fig


def sparsity_slider(curve: SparsityCurve, sparsity: float = 0.9, reference=None):
    """A slider for the sparsity and the `sparsity_figure` at its value.

    Returns:
        An ipywidgets VBox (show it as a cell's last expression): the slider, then an
        Output widget that redraws the figure whenever the slider moves; ``box.figure``
        is that matplotlib figure.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    step = round(float(_np.min(_np.diff(curve.sparsities))), 6) if len(curve.sparsities) > 1 \
        else 0.01
    slider = w.FloatSlider(sparsity, min=float(curve.sparsities[0]),
                           max=float(curve.sparsities[-1]), step=step, description="sparsity",
                           readout_format=".0%", continuous_update=True)
    out = w.Output()
    fig = plt.figure(figsize=(12, 3.3))
    plt.close(fig)  # shown only inside `out`, not once more below the cell

    def update(change=None) -> None:
        sparsity_figure(curve, slider.value, fig=fig, reference=reference)
        with out:
            out.clear_output(wait=True)
            display(fig)

    slider.observe(update, names="value")
    update()
    box = w.VBox([slider, out])
    box.figure = fig  # the figure the slider redraws
    return box
