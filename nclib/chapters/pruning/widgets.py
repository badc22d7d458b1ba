"""ipywidgets demos for chapter 01 (network pruning), for live teaching.

Each demo is two parts: a plain update function (numbers in, text out), which holds all the
logic and is tested without a browser, and a small builder that wires sliders to it and
returns the widget for a notebook to show. ipywidgets is imported only when a builder runs.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

__all__ = ['SparsityCurve', 'sparsity_curve', 'sparsity_update', 'sparsity_figure', 'sparsity_slider']

# The sparsity slider: global magnitude pruning of a trained model WITHOUT retraining. All
# the slow work (pruning and evaluating at every slider position) happens once, in
# `sparsity_curve`; moving the slider only looks numbers up (`sparsity_update`) and draws
# them (`sparsity_figure`), well under a second.


@dataclass(frozen=True)
class SparsityCurve:
    """What the sparsity slider shows for one trained model, computed once.

    Pruning is global: `magnitude_mask` over all Linear and Conv2d weights at once (their
    `removal_order`) removes the fraction `sparsity` of smallest |w| (Han et al. 2015 prune by magnitude; one
    threshold for the whole network shows which layers hold the small weights).
    """

    sparsities: np.ndarray  # (S,) the slider's positions, ascending
    accuracies: np.ndarray  # (S,) test accuracy after pruning to each, no retraining
    magnitudes: np.ndarray  # (N,) |w| of every prunable weight, in the order they are removed
    removal_ranks: dict  # {layer: (N_l,) where its weights come in that order, ascending}
    bin_edges: np.ndarray  # (B + 1,) histogram of the signed weights
    counts: np.ndarray  # (B,)
    dense_accuracy: float


def sparsity_curve(model, loader, sparsities=None, bins: int = 101) -> SparsityCurve:
    """Prune a copy of `model` to each of `sparsities` (default 0, 0.01, ..., 0.99) and
    evaluate it on `loader`; keep the removal order and a weight histogram.

    `model` itself is not changed. Costs one evaluation per sparsity (about a second for
    LeNet-300-100 on 1,000 test digits).
    """
    import torch

    from nclib.pruning.magnitude import prunable_layers, removal_order
    from nclib.train import evaluate

    if sparsities is None:
        sparsities = np.round(np.arange(100) / 100, 2)
    sparsities = np.asarray(sparsities, dtype=float)
    if sparsities.ndim != 1 or not len(sparsities) or np.any(np.diff(sparsities) <= 0) or \
            sparsities[0] < 0 or sparsities[-1] >= 1:
        raise ValueError("sparsities: expected increasing fractions in [0, 1)")
    work = copy.deepcopy(model)
    layers = prunable_layers(work)
    originals = {n: layer.weight.detach().clone() for n, layer in layers.items()}
    signed = torch.cat([w.flatten() for w in originals.values()])  # (N,) every weight
    # The order magnitude_mask removes weights in, and for each layer the places of its
    # weights in that order: pruning to k weights keeps those of rank >= k, and the slider
    # only counts.
    order = removal_order(signed)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    sizes = [w.numel() for w in originals.values()]
    removal_ranks = {n: np.sort(r.numpy()) for n, r in zip(originals, rank.split(sizes))}
    magnitudes = signed.abs()[order].numpy()
    limit = float(magnitudes[-1])
    counts, bin_edges = np.histogram(signed.numpy(), bins=bins, range=(-limit, limit))
    accuracies = []
    with torch.no_grad():
        for s in sparsities:
            masks = (rank >= round(float(s) * len(rank))).split(sizes)  # = magnitude_mask(signed, s)
            for (n, layer), mask in zip(layers.items(), masks):
                layer.weight.copy_(originals[n] * mask.view_as(originals[n]))
            accuracies.append(evaluate(work, loader))
    return SparsityCurve(sparsities, np.array(accuracies), magnitudes, removal_ranks,
                         bin_edges, counts, evaluate(model, loader))


def sparsity_update(curve: SparsityCurve, sparsity: float) -> dict:
    """The slider's numbers at `sparsity`: a plain function, a few microseconds.

    Returns:
        {"sparsity", "threshold" (the largest |w| removed, 0 if none), "accuracy" (at the
         nearest precomputed sparsity), "kept": {layer: fraction of its weights kept},
         "kept_total": fraction kept}.
    """
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity={sparsity!r}: expected a fraction in [0, 1)")
    k = round(float(sparsity) * len(curve.magnitudes))  # removed: the first k of the order
    t = float(curve.magnitudes[k - 1]) if k > 0 else 0.0
    kept = {n: float(1 - np.searchsorted(r, k) / len(r)) for n, r in curve.removal_ranks.items()}
    nearest = int(np.argmin(np.abs(curve.sparsities - sparsity)))
    return {"sparsity": float(sparsity), "threshold": t,
            "accuracy": float(curve.accuracies[nearest]), "kept": kept,
            "kept_total": float(1 - k / len(curve.magnitudes))}


def sparsity_figure(curve: SparsityCurve, sparsity: float, fig=None, reference=None):
    """Three panels at `sparsity`: accuracy against sparsity with the current point, the
    weight histogram with the threshold, and the fraction of each layer kept (beside
    `reference`, e.g. Han et al.'s per-layer fractions, if given). Returns the figure."""
    from nclib.chapters.pruning import figures

    state = sparsity_update(curve, sparsity)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(12, 3.3))
    fig.clear()
    ax = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1.2, 1]})
    figures.accuracy_vs_sparsity(curve.sparsities, {"magnitude, no retraining": curve.accuracies},
                             dense=curve.dense_accuracy, at=state["sparsity"], ax=ax[0])
    ax[0].set_title(f"accuracy {100 * state['accuracy']:.1f}% at sparsity "
                    f"{100 * state['sparsity']:.0f}%")
    figures.weight_histogram(curve.bin_edges, curve.counts, state["threshold"], ax=ax[1])
    figures.kept_per_layer(state["kept"], reference=reference, ax=ax[2])
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

    from nclib.course.plotting import redraw_in

    step = round(float(np.min(np.diff(curve.sparsities))), 6) if len(curve.sparsities) > 1 \
        else 0.01
    slider = w.FloatSlider(sparsity, min=float(curve.sparsities[0]),
                           max=float(curve.sparsities[-1]), step=step, description="sparsity",
                           readout_format=".0%", continuous_update=True)
    out = w.Output()
    fig = plt.figure(figsize=(12, 3.3))
    plt.close(fig)  # shown only inside `out`, not once more below the cell

    def update(change=None) -> None:
        sparsity_figure(curve, slider.value, fig=fig, reference=reference)
        redraw_in(out, fig)

    slider.observe(update, names="value")
    update()
    box = w.VBox([slider, out])
    box.figure = fig  # the figure the slider redraws
    return box
