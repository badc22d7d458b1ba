"""nclib.chapters.dynamic.widgets and figures: the density summary follows the network; figures draw."""
import matplotlib

matplotlib.use("Agg")

import re  # noqa: E402

import torch  # noqa: E402

from nclib.chapters.dynamic import figures, widgets  # noqa: E402
from nclib.dynamic import FBSNet, SkippingFBS  # noqa: E402


def _net() -> FBSNet:
    torch.manual_seed(0)
    return FBSNet((8, "M", 16)).eval()


def test_the_summary_reports_the_skipping_macs_and_the_nearest_accuracy():
    """MACs are SkippingFBS's at that density; the accuracy shown is the nearest measured one."""
    net, image = _net(), torch.randn(1, 28, 28)
    dense = SkippingFBS(net).forward_with_macs(image[None])[1][0]
    text = widgets.density_summary(net, 0.5, {0.5: 0.91, 1.0: 0.98}, dense, 1.0, image)
    macs = SkippingFBS(net.set_density(0.5)).forward_with_macs(image[None])[1][0]
    assert f"{macs:,}" in text and "91.0%" in text and f"{dense / macs:5.2f}x fewer" in text
    assert "98.0%" in widgets.density_summary(net, 0.9, {0.5: 0.91, 1.0: 0.98}, dense, 1.0, image)
    assert float(re.search(r"latency\s+([\d.]+) ms", text).group(1)) > 0


def test_the_slider_leaves_the_network_as_it_was():
    """Building and moving the slider changes a copy; the caller's network keeps its density."""
    net = _net().set_density(0.75)
    box = widgets.density_slider(net, {0.25: 0.8, 0.5: 0.9, 1.0: 0.97}, 1000, 1.0, torch.randn(1, 28, 28))
    slider, out = box.children
    assert (slider.min, slider.max, slider.step) == (0.25, 1.0, 0.25)
    slider.value = 0.25
    assert "density 0.25" in out.value and net.density == 0.75


def test_figures_draw():
    """Every figure draws from plain numbers without error."""
    g = torch.Generator().manual_seed(0)
    figures.blocks_histogram(torch.randint(0, 10, (50,), generator=g), 9, torch.rand(50, generator=g) > 0.1)
    figures.digits_with_blocks(torch.rand(3, 1, 28, 28), torch.rand(3, 9) > 0.5, ["a", "b", "c"])
    figures.accuracy_vs_macs({"gamma 1": (1e7, 95.0), "gamma 5": (2e7, 97.0)}, (3e7, 96.0))
    figures.saliency_spread(torch.rand(40, 32, generator=g))
    figures.kept_by_digit(torch.rand(40, 16, generator=g) > 0.5, torch.arange(40) % 10)
    figures.fbs_vs_static((2, 3, 4), (0.1, 0.2, 0.3), (0.0, 0.4, 0.9))
