"""Chapter 03's bits slider: its numbers agree with nclib's weight sharing and storage, it is
fast, and its figure and widget follow the slider."""
import copy
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from nclib import measure  # noqa: E402
from nclib.chapters.quantization import widgets  # noqa: E402
from nclib.quant import kmeans  # noqa: E402
from nclib.train import evaluate  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def pruned_mlp(sizes, kept, seed=0):
    """A Sequential MLP with random weights of which the fraction `kept` (largest |w|) is nonzero."""
    torch.manual_seed(seed)
    layers = [nn.Flatten()]
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                w = layer.weight
                w.mul_(w.abs() >= w.abs().flatten().quantile(1 - kept))
    return model


def loader_of(n, features, classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=100)


@pytest.fixture(scope="module")
def model_and_loader():
    """A small pruned MLP (30% of its weights kept) and 200 random labelled inputs."""
    return pruned_mlp([20, 40, 5], kept=0.3), loader_of(200, 20, 5)


@pytest.fixture(scope="module")
def curve(model_and_loader):
    return widgets.bits_curve(*model_and_loader, bits=range(1, 7))


def test_curve_matches_share_weights_and_storage_bytes(model_and_loader, curve):
    """At each width, accuracy, bytes and centroids equal those of share_weights on a copy."""
    model, loader = model_and_loader
    for b in (1, 3, 6):
        shared = kmeans.share_weights(copy.deepcopy(model), b)
        state = widgets.bits_update(curve, b)
        assert state["accuracy"] == pytest.approx(evaluate(shared, loader))
        assert state["huffman_bytes"] == measure.storage_bytes(shared, "huffman")
        assert state["codebook_bytes"] == measure.storage_bytes(shared, "codebook")
        assert state["compression"] == pytest.approx(measure.storage_bytes(model, "dense_fp32") / state["huffman_bytes"])
        assert np.array_equal(state["centroids"], kmeans.codebook(shared[1])[0].numpy())
        assert len(state["centroids"]) == 2 ** b and state["centroids"][0] == 0.0  # pruned: 0.0 pinned
    assert curve.layer == "1" and len(curve.values) == int((model[1].weight != 0).sum())
    assert curve.reference_accuracy == pytest.approx(evaluate(model, loader))


def test_curve_leaves_the_model_alone_and_validates_its_inputs(model_and_loader):
    """The model keeps its plain weights; unsorted or out-of-range widths and unknown layers are refused."""
    model, loader = model_and_loader
    before = [p.clone() for p in model.parameters()]
    small = widgets.bits_curve(model, loader, bits=[2, 4], layer="3")
    assert small.layer == "3" and small.accuracies.shape == (2,)
    assert not kmeans.shared_layers(model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    for bad in ([4, 2], [0, 1], [], [8, 17]):
        with pytest.raises(ValueError, match="bits"):
            widgets.bits_curve(model, loader, bits=bad)
    with pytest.raises(ValueError, match="layer='fc9'"):
        widgets.bits_curve(model, loader, layer="fc9")


def test_update_refuses_widths_the_curve_lacks(curve):
    """bits_update answers only for the widths that were computed."""
    with pytest.raises(ValueError, match="num_bits=7"):
        widgets.bits_update(curve, 7)


def test_figure_titles_and_lines_follow_the_width(curve):
    """The three panels show the accuracy, the bytes and the centroids at the slider's width."""
    fig = widgets.bits_figure(curve, 3)
    state = widgets.bits_update(curve, 3)
    acc_ax, bytes_ax, hist_ax = fig.axes[:3]
    assert f"{100 * state['accuracy']:.1f}%" in acc_ax.get_title() and "3 bits" in acc_ax.get_title()
    assert f"{state['huffman_bytes'] / 1e3:.1f} kB" in bytes_ax.get_title()
    assert list(bytes_ax.lines[0].get_ydata()) == pytest.approx(curve.huffman_bytes / 1e3)
    assert "8 shared values" in hist_ax.get_title()
    widgets.bits_figure(curve, 5, fig=fig)
    assert "32 shared values" in fig.axes[2].get_title() and len(fig.axes) == 3


def test_slider_redraws_when_moved(curve):
    """Moving the slider redraws the widget's figure at the new width."""
    box = widgets.bits_slider(curve, num_bits=4)
    slider = box.children[0]
    assert slider.value == 4 and (slider.min, slider.max) == (1, 6)
    assert box.figure.axes[0].get_title().startswith("4 bits")
    slider.value = 2
    assert box.figure.axes[0].get_title().startswith("2 bits")
    with pytest.raises(ValueError, match="num_bits=9"):
        widgets.bits_slider(curve, num_bits=9)


def test_slider_snaps_to_a_computed_width(model_and_loader):
    """With a gap in the curve's widths, a slider position in the gap moves to the nearest width."""
    gappy = widgets.bits_curve(*model_and_loader, bits=[1, 2, 5])
    box = widgets.bits_slider(gappy, num_bits=2)
    box.children[0].value = 4
    assert box.children[0].value == 5 and box.figure.axes[0].get_title().startswith("5 bits")


def test_build_of_a_lenet300_sized_curve_is_fast_and_updates_are_instant():
    """1..8 bits for a pruned 784-300-100-10 MLP on 1,000 inputs build in under 3 s; a lookup takes microseconds."""
    model = pruned_mlp([784, 300, 100, 10], kept=0.08)
    loader = loader_of(1000, 784, 10)
    t0 = time.perf_counter()
    big = widgets.bits_curve(model, loader)
    assert time.perf_counter() - t0 < 3.0
    assert big.layer == "1" and list(big.bits) == list(range(1, 9))
    t0 = time.perf_counter()
    for b in range(1, 9):
        widgets.bits_update(big, b)
    assert (time.perf_counter() - t0) / 8 < 1e-3
    fig = widgets.bits_figure(big, 5)
    t0 = time.perf_counter()
    widgets.bits_figure(big, 3, fig=fig)
    assert time.perf_counter() - t0 < 1.0
