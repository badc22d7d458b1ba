"""nclib.chapters.capstone.widgets and figures: the bits summary is the file's and the model's;
figures draw."""
import matplotlib

matplotlib.use("Agg")

import re  # noqa: E402

import torch  # noqa: E402

from nclib import models  # noqa: E402
from nclib.chapters.capstone import experiments as E  # noqa: E402
from nclib.chapters.capstone import figures, widgets  # noqa: E402
from nclib.quant import kmeans  # noqa: E402


def _model():
    torch.manual_seed(0)
    return models.LeNet((4, 8), 16).eval()


def test_the_summary_states_the_shared_files_bytes_and_accuracy_against_the_budgets():
    """Bytes are what save_compressed would write for those bits; accuracy is on the digits
    given; each budget says meets or MISSES by the figures."""
    m, x = _model(), torch.randn(40, 1, 28, 28)
    y = m(x).argmax(1)  # the model's own answers: 100% before sharing
    text = widgets.bits_summary(m, 3, 2, x, y, max_bytes=10**6, min_accuracy=0.0)
    shared = kmeans.share_weights(__import__("copy").deepcopy(m), {"conv1": 3, "conv2": 3, "fc1": 2, "fc2": 2})
    assert f"{E.file_bytes(shared):,} bytes   meets" in text
    acc = (shared(x).argmax(1) == y).float().mean().item()
    assert f"{100 * acc:.1f}%" in text
    tight = widgets.bits_summary(m, 3, 2, x, y, max_bytes=100, min_accuracy=1.01)
    assert "MISSES the budget of 100" in tight and "MISSES the bar of 101%" in tight
    assert not kmeans.shared_layers(m)  # the caller's model is unchanged


def test_the_sliders_update_the_summary():
    """Moving a slider re-shares at the new width; the model passed in stays unshared."""
    m = _model()
    x = torch.randn(20, 1, 28, 28)
    box = widgets.bits_sliders(m, x, m(x).argmax(1), 10_000, 0.9)
    conv, fc = box.children[0].children
    out = box.children[-1]
    fc.value = 2
    assert "fc layers 2 bits (4 values)" in out.value
    conv.value = 6
    assert "conv layers 6 bits (64 values)" in out.value
    assert int(re.search(r"file\s+([\d,]+) bytes", out.value).group(1).replace(",", "")) > 0
    assert not kmeans.shared_layers(m)


def test_figures_draw():
    """The waterfall and the Pareto figure draw from plain results."""
    res = [E.StageResult("dense", 0.97, 1_700_000, 2_000_000, 2_000_000, 10.0),
           E.StageResult("small", 0.965, 5_000, 300_000, 200_000, 2.5)]
    fig = figures.waterfall(res, {"accuracy": 0.96, "bytes": 10_000, "latency_ms": 5.0})
    assert len(fig.axes) == 4
    pts = [E.Point("00", "LeNet-5", 0.97, 1_700_000), E.Point("07", "ours", 0.965, 5_000)]
    ax = figures.pareto(pts, E.front(pts), (10_000, 0.96))
    assert ax.get_xscale() == "log"
