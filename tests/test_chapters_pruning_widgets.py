"""Chapter 01's sparsity slider: its numbers agree with nclib's pruning, it is fast, and
its figure and widget follow the slider."""
import copy
import time

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from nclib.chapters.pruning import figures, widgets
from nclib.pruning import magnitude
from nclib.train import evaluate

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def model_and_loader():
    """A small trained-looking MLP (random weights, no ties) and 200 random labelled inputs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    X, y = torch.randn(200, 20), torch.randint(0, 5, (200,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=50)
    return model, loader


@pytest.fixture(scope="module")
def curve(model_and_loader):
    return widgets.sparsity_curve(*model_and_loader)


def test_update_matches_global_magnitude_pruning(model_and_loader, curve):
    """At each grid sparsity, kept fractions and accuracy equal prune_model(scope='global')'s."""
    model, loader = model_and_loader
    for sparsity in (0.0, 0.3, 0.75, 0.95):
        pruned = copy.deepcopy(model)
        zeros = magnitude.prune_model(pruned, sparsity, scope="global")
        state = widgets.sparsity_update(curve, sparsity)
        for name in ("1", "3"):  # the two Linear layers of the Sequential
            assert state["kept"][name] == pytest.approx(1 - zeros[name], abs=1e-9)
        assert state["kept_total"] == pytest.approx(1 - magnitude.global_sparsity(pruned), abs=1e-9)
        assert state["accuracy"] == pytest.approx(evaluate(pruned, loader))


def test_update_breaks_ties_as_magnitude_mask_does():
    """With many equal magnitudes the slider removes exactly the weights magnitude_mask removes (no threshold ties)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))
    with torch.no_grad():  # magnitudes from {0.5, 1, 1.5}: every threshold falls on a tie
        for layer in (model[1], model[3]):
            layer.weight.copy_(torch.randint(1, 4, layer.weight.shape) * 0.5
                               * torch.sign(torch.randn(layer.weight.shape)))
    X, y = torch.randn(40, 8), torch.randint(0, 4, (40,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=20)
    tied = widgets.sparsity_curve(model, loader, sparsities=[0.0, 0.25, 0.5, 0.8])
    for sparsity in (0.25, 0.5, 0.8):
        pruned = copy.deepcopy(model)
        zeros = magnitude.prune_model(pruned, sparsity, scope="global")
        state = widgets.sparsity_update(tied, sparsity)
        assert state["kept"] == pytest.approx({n: 1 - z for n, z in zeros.items()}, abs=1e-9)
        assert state["kept_total"] == pytest.approx(1 - sparsity, abs=1 / 72)
        assert state["accuracy"] == pytest.approx(evaluate(pruned, loader))


def test_update_edge_values(curve):
    """Sparsity 0 keeps everything at the dense accuracy; the threshold grows with sparsity."""
    state = widgets.sparsity_update(curve, 0.0)
    assert state["threshold"] == 0 and state["kept_total"] == 1.0
    assert set(state["kept"].values()) == {1.0}
    assert state["accuracy"] == curve.dense_accuracy
    thresholds = [widgets.sparsity_update(curve, s)["threshold"] for s in (0.1, 0.5, 0.9, 0.99)]
    assert thresholds == sorted(thresholds) and thresholds[0] > 0
    with pytest.raises(ValueError, match="sparsity=1"):
        widgets.sparsity_update(curve, 1)


def test_curve_validates_sparsities_and_leaves_the_model_alone(model_and_loader):
    """Unsorted or out-of-range sparsities are refused; the model's weights are untouched."""
    model, loader = model_and_loader
    before = [p.clone() for p in model.parameters()]
    small = widgets.sparsity_curve(model, loader, sparsities=[0.0, 0.5])
    assert small.accuracies.shape == (2,) and small.counts.sum() == 20 * 30 + 30 * 5
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    for bad in ([0.5, 0.1], [0.0, 1.0], []):
        with pytest.raises(ValueError, match="sparsities"):
            widgets.sparsity_curve(model, loader, sparsities=bad)


def test_update_and_redraw_are_fast(curve):
    """The update function takes well under a millisecond; a redraw well under a second."""
    t0 = time.perf_counter()
    for s in np.linspace(0, 0.99, 100):
        widgets.sparsity_update(curve, float(s))
    assert (time.perf_counter() - t0) / 100 < 0.01
    fig = widgets.sparsity_figure(curve, 0.5)
    t0 = time.perf_counter()
    widgets.sparsity_figure(curve, 0.9, fig=fig)
    assert time.perf_counter() - t0 < 1.0


def test_figure_shows_accuracy_threshold_and_kept(curve):
    """Three panels: accuracy at the slider's value, the threshold band, each layer's kept %."""
    fig = widgets.sparsity_figure(curve, 0.9, reference={"1": 0.1, "3": 0.2})
    state = widgets.sparsity_update(curve, 0.9)
    acc_ax, hist_ax, kept_ax = fig.axes[:3]
    assert f"{100 * state['accuracy']:.1f}%" in acc_ax.get_title()
    assert f"{state['threshold']:.3g}" in hist_ax.get_title()
    heights = [b.get_height() for b in kept_ax.containers[0]]
    assert heights == pytest.approx([100 * state["kept"]["1"], 100 * state["kept"]["3"]])
    assert [b.get_height() for b in kept_ax.containers[1]] == pytest.approx([10, 20])


def test_slider_redraws_when_moved(curve):
    """Moving the slider redraws the widget's figure at the new sparsity."""
    box = widgets.sparsity_slider(curve, sparsity=0.5)
    slider = box.children[0]
    assert slider.value == 0.5 and slider.max == pytest.approx(0.99)
    slider.value = 0.9
    title = box.figure.axes[0].get_title()
    assert "sparsity 90%" in title


def test_viz_functions_refuse_mismatched_inputs():
    """The chapter's figures name the problem when their inputs do not fit together."""
    with pytest.raises(ValueError, match="one length"):
        figures.accuracy_vs_sparsity([0.1, 0.2], {"a": [0.9]})
    with pytest.raises(ValueError, match="at least one"):
        figures.accuracy_vs_sparsity([0.1], {})
    with pytest.raises(ValueError, match="bin_edges"):
        figures.weight_histogram([0, 1], [1, 2])
    with pytest.raises(ValueError, match="kept"):
        figures.kept_per_layer({})
