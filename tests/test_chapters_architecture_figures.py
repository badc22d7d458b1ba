"""nclib.chapters.architecture.figures: each figure draws what it is given and refuses inconsistent input."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from nclib.chapters.architecture import figures  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_lowrank_shapes_areas_are_the_parameter_counts():
    """Three rectangles, N x M, N x K and K x M, with the counts in the title."""
    ax = figures.lowrank_shapes(300, 784, 21)
    sizes = sorted((p.get_width(), p.get_height()) for p in ax.patches)
    assert sizes == sorted([(784, 300), (21, 300), (784, 21)])
    assert "235,200" in ax.get_title() and "22,764" in ax.get_title()
    with pytest.raises(ValueError, match="rank <= min"):
        figures.lowrank_shapes(3, 4, 5)


def test_singular_values_plots_spectrum_and_energy():
    """The spectrum is descending on a log axis; the energy curve ends at 1; ranks are marked."""
    W = torch.diag(torch.tensor([4.0, 2.0, 1.0, 0.5]))
    ax = figures.singular_values(W, ranks=(2,))
    s = ax.lines[0].get_ydata()
    assert list(s) == [4.0, 2.0, 1.0, 0.5] and ax.get_yscale() == "log"
    energy = ax.figure.axes[1].lines[0].get_ydata()
    assert energy[-1] == pytest.approx(1.0) and energy[1] == pytest.approx(20 / 21.25)
    assert len(ax.lines) == 2  # the spectrum and the dashed line at K = 2
    with pytest.raises(ValueError, match="2-d"):
        figures.singular_values(torch.ones(3))


def test_lowrank_accuracy_lines_and_lengths():
    """Two curves and a dense line; sequences of different lengths are refused."""
    ax = figures.lowrank_accuracy([2, 10], [94.0, 90.0], [94.5, 93.0], 94.3)
    assert len(ax.lines) == 3 and list(ax.lines[1].get_ydata()) == [94.5, 93.0]
    with pytest.raises(ValueError, match="one length"):
        figures.lowrank_accuracy([2, 10], [94.0], [94.5, 93.0], 94.3)


def test_separable_speedup_bars_on_given_axes():
    """One pair of bars per channel count, drawn on the axes passed in, labelled with C."""
    _, ax = plt.subplots()
    out = figures.separable_speedup([32, 64, 128, 256], [7.0, 7.9, 8.4, 8.7], [2.5, 2.0, 2.8, 3.2], ax=ax)
    assert out is ax and len(ax.patches) == 8
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "64", "128", "256"]
    assert [p.get_height() for p in ax.patches[4:]] == [2.5, 2.0, 2.8, 3.2]
    with pytest.raises(ValueError, match="one length"):
        figures.separable_speedup([], [], [])
