"""nclib.chapters.architecture.widgets: the update functions compute the right numbers; the widgets follow their sliders."""
import pytest

from nclib import arch
from nclib.chapters.architecture import widgets


def test_separable_costs_lecture_example():
    """The lecture's 3x3x2x4 layer: 72 parameters, separable 18 + 8 = 26; MACs scale with H x W."""
    costs = widgets.separable_costs(3, 2, 4, 1, 1)
    assert costs == {"standard": (72, 72), "depthwise": (18, 18), "pointwise": (8, 8),
                     "separable": (26, 26)}
    costs = widgets.separable_costs(3, 2, 4, 5, 7)
    assert costs["standard"] == (72, 72 * 35) and costs["separable"] == (26, 26 * 35)


@pytest.mark.parametrize("k, c_in, c_out, h, w", [(3, 32, 64, 112, 112), (5, 7, 3, 4, 9),
                                                  (1, 16, 1, 2, 2), (7, 1, 1000, 1, 1)])
def test_separable_costs_match_nclib_formulas_and_ratio(k, c_in, c_out, h, w):
    """Counts equal nclib.arch's formulas and (dw + pw) / standard = 1/C_out + 1/K^2."""
    costs = widgets.separable_costs(k, c_in, c_out, h, w)
    assert costs["standard"] == (arch.conv_params(k, c_in, c_out), arch.conv_macs(k, c_in, c_out, h, w))
    assert costs["depthwise"] == (arch.depthwise_params(k, c_in), arch.depthwise_macs(k, c_in, h, w))
    params, macs = costs["separable"]
    assert params / costs["standard"][0] == pytest.approx(1 / c_out + 1 / k ** 2)
    assert macs / costs["standard"][1] == pytest.approx(1 / c_out + 1 / k ** 2)


def test_separable_summary_text():
    """The update function shows each layer's filter, params, MACs and the ratio with its formula."""
    text = widgets.separable_summary(3, 32, 64, 112, 112)
    assert "standard   3 x 3 x 32 x 64" in text and "231,211,008" in text
    assert "depthwise  3 x 3 x 1 x 32" in text and "3,612,672" in text
    assert "1/C_out + 1/K^2 = 1/64 + 1/9: 7.9x fewer" in text
    assert widgets.separable_summary(3, 2, 4, 1, 1).splitlines()[-1] == (
        "(dw + pw) / standard = 26 / 72 = 0.3611 = 1/C_out + 1/K^2 = 1/4 + 1/9: 2.8x fewer")


def test_separable_summary_rejects_bad_sizes():
    """Sizes below 1 are refused with the name of the argument."""
    with pytest.raises(ValueError, match="c_out=0"):
        widgets.separable_summary(3, 2, 0, 1, 1)


def test_calculator_follows_its_sliders():
    """Moving a slider re-renders the summary for the new values; HTML is escaped."""
    box = widgets.separable_calculator()
    sliders, out = box.children[:-1], box.children[-1]
    assert [s.description for s in sliders] == ["K", "C_in", "C_out", "H", "W"]
    assert out.value.startswith("<pre>") and "1/64 + 1/9" in out.value
    sliders[2].value = 128  # C_out
    assert "1/128 + 1/9" in out.value and out.value.count("<pre>") == 1
    sliders[0].value = 5  # K
    assert "1/128 + 1/25" in out.value
