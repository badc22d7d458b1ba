"""ipywidgets demos for chapter 03 (parameter quantization), for live teaching.

Each demo is two parts: a plain update function (numbers in, numbers out), which holds all
the logic and is tested without a browser, and a small builder that wires a slider to it
and returns the widget for a notebook to show. ipywidgets is imported only when a builder
runs.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

__all__ = ["BitsCurve", "bits_curve", "bits_update", "bits_figure", "bits_slider"]

# The bits slider: k-means weight sharing (Han et al. 2016, Section 3) of a trained model at
# every width, WITHOUT retraining the centroids. All the slow work (clustering, evaluating,
# counting bytes at every width) happens once, in `bits_curve`; moving the slider only looks
# the numbers up (`bits_update`) and draws them (`bits_figure`).


@dataclass(frozen=True)
class BitsCurve:
    """What the bits slider shows for one model, computed once.

    Every Linear and Conv2d layer shares 2^b values (`nclib.quant.kmeans.share_weights`,
    linear init); a pruned layer keeps its zeros (centroid 0 pinned at 0.0). Bytes are
    `nclib.measure.storage_bytes` of the compressed file's formats: "codebook" (fixed-width
    b-bit labels and relative indices) and "huffman" (both streams Huffman-coded).
    """

    bits: np.ndarray  # (S,) the slider's positions, ascending
    accuracies: np.ndarray  # (S,) accuracy after sharing at each width, no retraining
    codebook_bytes: np.ndarray  # (S,)
    huffman_bytes: np.ndarray  # (S,)
    reference_accuracy: float  # the model before sharing
    reference_bytes: int  # its own file: fp32 values with relative indices where pruned
    dense_bytes: int  # every weight as a 32-bit float (`storage_bytes(model, "dense_fp32")`)
    layer: str  # the layer whose weights the histogram shows
    values: np.ndarray  # (N,) that layer's nonzero weights
    centroids: tuple  # (S,) of arrays: that layer's shared values at each width


def bits_curve(model, loader, bits=range(1, 9), layer: str | None = None,
               init: str = "linear") -> BitsCurve:
    """Share a copy of `model`'s weights at each width in `bits` and evaluate it on `loader`.

    `model` itself is not changed. `layer` names the layer whose weight histogram and
    centroids the figure draws (default: the largest). Costs one k-means, one evaluation
    and two byte counts per width: under a second for LeNet-300-100 at 1..8 bits.
    """
    from nclib import measure
    from nclib.quant import kmeans
    from nclib.train import evaluate

    bits = np.array(list(bits), dtype=int)
    if bits.ndim != 1 or not len(bits) or np.any(np.diff(bits) <= 0) or bits[0] < 1 or bits[-1] > 16:
        raise ValueError(f"bits={bits.tolist()}: expected increasing integers from 1 to 16")
    layers = {n: m for n, m in model.named_modules() if isinstance(m, kmeans.SHAREABLE)}
    if layer is None:
        layer = max(layers, key=lambda n: layers[n].weight.numel())
    if layer not in layers:
        raise ValueError(f"layer={layer!r}: expected one of {', '.join(layers)}")
    weight = layers[layer].weight.detach().flatten()
    values = weight[weight != 0].cpu().numpy()
    accuracies, fixed, huffman, centroids = [], [], [], []
    for b in bits.tolist():
        shared = kmeans.share_weights(copy.deepcopy(model), int(b), init=init)
        accuracies.append(evaluate(shared, loader))
        fixed.append(measure.storage_bytes(shared, "codebook"))
        huffman.append(measure.storage_bytes(shared, "huffman"))
        centroids.append(kmeans.codebook(shared.get_submodule(layer))[0].numpy())
    return BitsCurve(bits, np.array(accuracies), np.array(fixed), np.array(huffman),
                     evaluate(model, loader), measure.storage_bytes(model, "codebook"),
                     measure.storage_bytes(model, "dense_fp32"), layer, values, tuple(centroids))


def bits_update(curve: BitsCurve, num_bits: int) -> dict:
    """The slider's numbers at `num_bits`: a plain lookup, a few microseconds.

    Returns:
        {"num_bits", "accuracy", "codebook_bytes", "huffman_bytes", "compression" (dense
         bytes / Huffman bytes), "centroids" (the drawn layer's shared values)}.
    """
    where = np.flatnonzero(curve.bits == num_bits)
    if not where.size:
        raise ValueError(f"num_bits={num_bits!r}: expected one of {curve.bits.tolist()}")
    i = int(where[0])
    return {"num_bits": int(num_bits), "accuracy": float(curve.accuracies[i]),
            "codebook_bytes": int(curve.codebook_bytes[i]), "huffman_bytes": int(curve.huffman_bytes[i]),
            "compression": curve.dense_bytes / float(curve.huffman_bytes[i]),
            "centroids": curve.centroids[i]}


def bits_figure(curve: BitsCurve, num_bits: int, fig=None):
    """Three panels at `num_bits`: accuracy against bits, bytes against bits (beside the
    model's own file), and the drawn layer's weights with their shared values. Returns the
    figure."""
    from nclib.chapters.quantization import figures

    state = bits_update(curve, num_bits)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(13, 3.4))
    fig.clear()
    ax = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.3]})
    figures.accuracy_vs_bits(curve.bits, curve.accuracies, reference=curve.reference_accuracy,
                             at=num_bits, ax=ax[0])
    ax[0].set_title(f"{num_bits} bits: accuracy {100 * state['accuracy']:.1f}%")
    figures.bytes_vs_bits(curve.bits, {"Huffman": curve.huffman_bytes, "fixed-width labels": curve.codebook_bytes},
                          lines={"before sharing": curve.reference_bytes}, at=num_bits, ax=ax[1])
    ax[1].set_title(f"{state['huffman_bytes'] / 1e3:.1f} kB: {state['compression']:.0f}x smaller than dense")
    figures.centroid_histogram(curve.values, {f"{num_bits}-bit centroids": state["centroids"]}, ax=ax[2])
    ax[2].set_title(f"{curve.layer}: {len(curve.values):,} nonzero weights, "
                    f"{len(state['centroids'])} shared values")
    fig.tight_layout()
    return fig


def bits_slider(curve: BitsCurve, num_bits: int = 5):
    """A slider for the bits per weight and the `bits_figure` at its value.

    Returns:
        An ipywidgets VBox (show it as a cell's last expression): the slider, then an
        Output widget that redraws the figure whenever the slider moves; ``box.figure``
        is that matplotlib figure.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from nclib.course.plotting import redraw_in

    bits_update(curve, num_bits)  # refuses a width the curve does not have
    slider = w.IntSlider(num_bits, min=int(curve.bits[0]), max=int(curve.bits[-1]), step=1,
                         description="bits", continuous_update=True)
    out = w.Output()
    fig = plt.figure(figsize=(13, 3.4))
    plt.close(fig)  # shown only inside `out`, not once more below the cell

    def update(change=None) -> None:
        if slider.value not in curve.bits:  # a gap in the curve's widths: the nearest one
            slider.value = int(curve.bits[np.argmin(np.abs(curve.bits - slider.value))])
            return
        bits_figure(curve, slider.value, fig=fig)
        redraw_in(out, fig)

    slider.observe(update, names="value")
    update()
    box = w.VBox([slider, out])
    box.figure = fig
    return box
