"""Chapter 02's figures and temperature slider: they draw the soft targets they are given and follow T."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from nclib import distill  # noqa: E402
from nclib.chapters.distillation import figures, widgets  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _digits(n=3, C=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g), 5 * torch.randn(n, C, generator=g)


def test_soft_targets_draws_one_bar_chart_per_digit_and_temperature():
    """Bars are the given probabilities; the true class is highlighted; columns follow the temperatures."""
    images, z = _digits()
    probs = {T: distill.softmax_with_temperature(z, T) for T in (1, 4, 20)}
    axes = figures.soft_targets(images, probs, labels=[3, 0, 9])
    assert axes.shape == (3, 4)
    assert [ax.get_title() for ax in axes[0, 1:]] == ["T = 1", "T = 4", "T = 20"]
    bars = axes[1, 2].containers[0]
    assert [b.get_height() for b in bars] == pytest.approx(probs[4][1].tolist())
    colors = [b.get_facecolor() for b in axes[0, 1].containers[0]]
    assert colors[3] != colors[0] and colors.count(colors[0]) == 9  # class 3 stands out
    with pytest.raises(ValueError, match="expected \\(N, C\\)"):
        figures.soft_targets(images, {1: probs[1][:2]})
    with pytest.raises(ValueError, match="at least one temperature"):
        figures.soft_targets(images, {})


def test_temperature_sweep_plots_accuracies_and_baseline():
    """One point per temperature on a log axis, and the labels-only line."""
    ax = figures.temperature_sweep([1, 2, 4, 8, 20], [91.0, 93.0, 93.2, 92.8, 92.6], baseline=90.9)
    assert list(ax.lines[0].get_xdata()) == [1, 2, 4, 8, 20] and ax.get_xscale() == "log"
    assert list(ax.lines[1].get_ydata()) == [90.9, 90.9]
    assert ax.get_ylim() == (80.0, 100.0)  # 10 points below the lowest value's tens: a point looks small
    assert figures.temperature_sweep([1, 2], [55.0, 60.0]).get_ylim() == (40.0, 100.0)
    with pytest.raises(ValueError, match="one length"):
        figures.temperature_sweep([1, 2], [90.0])


def test_soft_target_summary_hand_case():
    """Logits (0, 2 ln 3) at T = 2 give probabilities 1/4 and 3/4, entropy 0.81 bits."""
    text = widgets.soft_target_summary(torch.tensor([[0.0, 2 * math.log(3)]]), 2.0)
    assert text.splitlines() == ["T = 2: softmax(z / 2)",
                                 "digit 0 (label 1): 1: 0.750, 0: 0.250 | entropy 0.81 bits"]


def test_soft_target_summary_entropy_grows_with_temperature():
    """Top classes keep their order as T rises, and the entropy approaches log2(C) bits."""
    _, z = _digits(n=1)
    low, high = (widgets.soft_target_summary(z, T, labels=[7]) for T in (1, 1000))
    assert "label 7" in low and low.splitlines()[1].split(":")[1] == high.splitlines()[1].split(":")[1]
    bits = [float(t.rsplit("entropy ", 1)[1].split()[0]) for t in (low, high)]
    assert bits[0] < bits[1] and bits[1] == pytest.approx(math.log2(10), abs=0.01)


def test_temperature_slider_redraws_bars_and_text():
    """Moving the slider sets every bar to softmax(z / T) and rewrites the summary at once."""
    images, z = _digits()
    box = widgets.temperature_slider(z, images, labels=[1, 2, 3], temperature=4)
    slider, text = box.children[0], box.children[-1]
    axes = box.figure.axes
    assert slider.value == pytest.approx(4) and "T = 4:" in text.value
    slider.value = 20
    heights = [b.get_height() for b in axes[1].containers[0]]  # digit 0's bars
    assert heights == pytest.approx(distill.softmax_with_temperature(z, 20)[0].tolist(), abs=1e-6)
    assert "T = 20:" in text.value and text.value.startswith("<pre>")
    assert axes[1].get_title() == "T = 20"
