"""nclib.chapters.quantization.figures: each figure draws what it is given and refuses inconsistent input."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nclib.chapters.quantization import figures  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_centroid_histogram_draws_weights_and_one_marker_row_per_start():
    """Bars hold every weight; each set of centroids is one row of markers at its values; lines mark the first set."""
    values = np.random.default_rng(0).normal(size=500)
    sets = {"linear": [-1.0, 0.0, 1.0], "density": [-0.5, 0.5]}
    fig = figures.centroid_histogram(values, sets, bins=20)
    ax = fig.axes[0]
    assert sum(p.get_height() for p in ax.patches) == 500 and len(ax.patches) == 20
    rows = [line for line in ax.lines if line.get_marker() in figures.MARKERS]
    assert [list(r.get_xdata()) for r in rows] == [[-1.0, 0.0, 1.0], [-0.5, 0.5]]
    assert rows[0].get_ydata()[0] != rows[1].get_ydata()[0] < 0  # separate rows, under the bars
    assert len(ax.lines) == 2 + 3  # the two rows and a vertical line per linear centroid
    with pytest.raises(ValueError, match="at least one"):
        figures.centroid_histogram([], sets)


def test_accuracy_and_bytes_against_bits_follow_their_inputs():
    """Accuracy is drawn in %, bytes in kB; reference lines and the slider's position are marked."""
    _, (left, right) = plt.subplots(1, 2)
    fig = figures.accuracy_vs_bits([1, 2, 3], [0.1, 0.8, 0.95], reference=0.96, at=2, ax=left)
    assert fig is left.figure
    assert list(left.lines[0].get_ydata()) == pytest.approx([10, 80, 95])
    assert left.lines[1].get_ydata()[0] == pytest.approx(96)  # the dashed reference
    assert list(left.lines[2].get_ydata()) == pytest.approx([80])  # the marked point at 2 bits
    figures.bytes_vs_bits([1, 2, 3], {"Huffman": [1000, 2000, 3000], "fixed": [1500, 2500, 3500]},
                          lines={"before": 9000}, at=3, ax=right)
    assert list(right.lines[1].get_ydata()) == pytest.approx([1.5, 2.5, 3.5])
    assert right.lines[2].get_ydata()[0] == pytest.approx(9.0) and right.lines[3].get_xdata()[0] == 3
    with pytest.raises(ValueError, match="one length"):
        figures.accuracy_vs_bits([1, 2], [0.5])
    with pytest.raises(ValueError, match="at least one"):
        figures.bytes_vs_bits([1, 2], {})


def test_code_length_chart_sorts_by_frequency_and_draws_lengths_and_ideal():
    """Bars are the counts, most frequent first; the step line holds the code lengths; dots are -log2 p."""
    counts = {0: 1, 1: 2, 2: 5, 3: 1}
    lengths = {0: 3, 1: 2, 2: 1, 3: 3}
    fig = figures.code_length_chart(counts, lengths)
    ax, right = fig.axes
    assert [p.get_height() for p in ax.patches] == [5, 2, 1, 1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "1", "0", "3"]
    assert list(right.lines[0].get_ydata()) == [1, 2, 3, 3]
    assert list(right.lines[1].get_ydata()) == pytest.approx([-math.log2(n / 9) for n in (5, 2, 1, 1)])
    with pytest.raises(ValueError, match="one code length"):
        figures.code_length_chart(counts, {0: 1, 1: 1})


def test_stage_waterfall_bars_fall_from_stage_to_stage():
    """The first bar rises to the first size; each later one spans the previous size down to its own."""
    stages = {"dense": 1_000_000, "pruned": 80_000, "shared": 20_000, "huffman": 16_000}
    fig = figures.stage_waterfall(stages, reference={"paper": 27_000})
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == 5 and ax.get_yscale() == "log"
    assert bars[0].get_y() + bars[0].get_height() == pytest.approx(1_000_000)
    for bar, (top, bottom) in zip(bars[1:4], [(1_000_000, 80_000), (80_000, 20_000), (20_000, 16_000)]):
        assert bar.get_y() == pytest.approx(bottom) and bar.get_y() + bar.get_height() == pytest.approx(top)
    assert bars[4].get_y() + bars[4].get_height() == pytest.approx(27_000)
    texts = [t.get_text() for t in ax.texts]
    assert "80 kB\n/12.5" in texts and "16 kB\n/1.2" in texts and "27 kB" in texts
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dense", "pruned", "shared", "huffman", "paper"]
    with pytest.raises(ValueError, match="at least two"):
        figures.stage_waterfall({"dense": 10})


def test_staircase_shows_levels_clamping_and_the_exact_zero():
    """Identity and staircase lines, the levels as dots, 0.0 circled, the range outside [lo, hi] shaded."""
    x = np.linspace(-2, 2, 9)
    x_hat = np.clip(np.round(x), -1, 1)
    fig = figures.staircase(x, x_hat, (-1.0, 1.0), levels=[-1.0, 0.0, 1.0])
    ax = fig.axes[0]
    assert list(ax.lines[1].get_ydata()) == list(x_hat)
    assert list(ax.lines[2].get_xdata()) == [-1.0, 0.0, 1.0] and list(ax.lines[3].get_xdata()) == [0]
    assert len(ax.patches) == 2  # clamped on both sides
    assert "clamped" in [t.get_text() for t in ax.get_legend().get_texts()]
    figures.staircase(x, x_hat, (-1.0, 1.0), levels=[-1.0, 0.5, 1.0])
    assert len(plt.gcf().axes[0].lines) == 3  # no exact zero, no circle
    with pytest.raises(ValueError, match="lo < hi"):
        figures.staircase(x, x_hat, (1.0, -1.0))


def test_ste_gradient_and_int8_speedup_draw_one_line_per_setting():
    """Gradient rules and speed-up settings are one line each; the 1x line is dashed; lengths must agree."""
    x = np.linspace(-2, 2, 5)
    fig = figures.ste_gradient(x, {"round": np.zeros(5), "STE": [0, 1, 1, 1, 0]}, clamp_range=(-1.5, 1.5))
    ax = fig.axes[0]
    assert list(ax.lines[1].get_ydata()) == [0, 1, 1, 1, 0] and len(ax.patches) == 2
    fig = figures.int8_speedup([64, 1024], {"batch 1": [0.4, 4.0], "batch 64": [0.5, 3.0]})
    ax = fig.axes[0]
    assert [list(line.get_ydata()) for line in ax.lines[:2]] == [[0.4, 4.0], [0.5, 3.0]]
    assert ax.lines[2].get_ydata()[0] == 1 and ax.lines[2].get_linestyle() == "--"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["64", "1024"]
    with pytest.raises(ValueError, match="one length"):
        figures.int8_speedup([64, 1024], {"batch 1": [1.0]})
    with pytest.raises(ValueError, match="at least one"):
        figures.ste_gradient(x, {})
