"""nclib.arch.mobilenet: Table 1 read from the model; the paper's cost comparisons."""
import pytest
import torch
from torch import nn

from nclib import measure
from nclib.arch import mobilenet as mb
from nclib.models import MobileNetV1

# Howard et al. 2017, Table 1, as printed (with "x" for the multiplication sign). One fix:
# the paper prints "Conv dw / s2" for the last depthwise layer, but its input and output
# are both 7 x 7, so the stride is 1 (see nclib.models.MOBILENET_V1_BLOCKS).
PAPER_TABLE_1 = """\
Conv / s2 | 3 x 3 x 3 x 32 | 224 x 224 x 3
Conv dw / s1 | 3 x 3 x 32 dw | 112 x 112 x 32
Conv / s1 | 1 x 1 x 32 x 64 | 112 x 112 x 32
Conv dw / s2 | 3 x 3 x 64 dw | 112 x 112 x 64
Conv / s1 | 1 x 1 x 64 x 128 | 56 x 56 x 64
Conv dw / s1 | 3 x 3 x 128 dw | 56 x 56 x 128
Conv / s1 | 1 x 1 x 128 x 128 | 56 x 56 x 128
Conv dw / s2 | 3 x 3 x 128 dw | 56 x 56 x 128
Conv / s1 | 1 x 1 x 128 x 256 | 28 x 28 x 128
Conv dw / s1 | 3 x 3 x 256 dw | 28 x 28 x 256
Conv / s1 | 1 x 1 x 256 x 256 | 28 x 28 x 256
Conv dw / s2 | 3 x 3 x 256 dw | 28 x 28 x 256
Conv / s1 | 1 x 1 x 256 x 512 | 14 x 14 x 256
""" + """\
Conv dw / s1 | 3 x 3 x 512 dw | 14 x 14 x 512
Conv / s1 | 1 x 1 x 512 x 512 | 14 x 14 x 512
""" * 5 + """\
Conv dw / s2 | 3 x 3 x 512 dw | 14 x 14 x 512
Conv / s1 | 1 x 1 x 512 x 1024 | 7 x 7 x 512
Conv dw / s1 | 3 x 3 x 1024 dw | 7 x 7 x 1024
Conv / s1 | 1 x 1 x 1024 x 1024 | 7 x 7 x 1024
Avg Pool / s1 | Pool 7 x 7 | 7 x 7 x 1024
FC / s1 | 1024 x 1000 | 1 x 1 x 1024
Softmax / s1 | Classifier | 1 x 1 x 1000
"""


def test_body_table_equals_paper_table_1():
    """MobileNet 1.0-224's table, read from the model, equals the paper's Table 1 row by row."""
    table = mb.body_table(MobileNetV1())
    ours = [" | ".join((r.type_stride, r.filter_shape, r.input_size)) for r in table]
    assert ours == PAPER_TABLE_1.splitlines()
    assert "Filter Shape" in str(table) and "568,740,352" in str(table)


def test_body_table_follows_width_and_resolution():
    """With alpha=0.5 at 160 the rows show halved channels and 160/32 = 5 x 5 at the end."""
    table = mb.body_table(MobileNetV1(width_mult=0.5, resolution=160, num_classes=10))
    assert (table[0].filter_shape, table[0].input_size) == ("3 x 3 x 3 x 16", "160 x 160 x 3")
    assert table[1].filter_shape == "3 x 3 x 16 dw"
    assert table[-3].filter_shape == "Pool 5 x 5" and table[-3].input_size == "5 x 5 x 512"
    assert table[-1].input_size == "1 x 1 x 10"
    assert len(mb.body_table(MobileNetV1(), input_size=128)) == len(table)


def test_body_table_costs_match_counters():
    """Rows' MACs and params sum to count_macs and the conv/FC parameters (Conv MobileNet too)."""
    for model in (MobileNetV1(width_mult=0.25, resolution=128),
                  MobileNetV1(width_mult=0.25, resolution=128, separable=False)):
        table = mb.body_table(model)
        assert sum(r.macs for r in table) == measure.count_macs(model, (3, 128, 128)).total
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert sum(r.params for r in table) == sum(measure.count_params(m) for m in layers)
    assert {r.type_stride for r in table} >= {"Conv / s1", "Conv / s2"}
    assert not any("dw" in r.filter_shape for r in table)  # Conv MobileNet has no depthwise


def test_shares_by_type_match_paper_table_2():
    """1x1 convs hold 94.86% of MACs (paper Table 2); the paper's Conv 3x3 "1.19%" is 1.91%."""
    shares = mb.summarize_by_type(mb.body_table(MobileNetV1()))
    assert list(shares) == ["Conv 1 x 1", "Conv DW 3 x 3", "Conv 3 x 3", "FC"]
    paper = {"Conv 1 x 1": (94.86, 74.59), "Conv DW 3 x 3": (3.06, 1.06),
             "Conv 3 x 3": (1.91, 0.02), "FC": (0.18, 24.33)}
    for kind, (macs, params) in paper.items():
        assert 100 * shares[kind][0] == pytest.approx(macs, abs=0.01)
        assert 100 * shares[kind][1] == pytest.approx(params, abs=0.03)  # we count FC biases
    assert sum(m for m, _ in shares.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("key", list(mb.PAPER_COSTS))
def test_models_match_paper_costs(key):
    """Our MobileNets' params and MACs match the paper's Tables 4, 6, 7 (to 0.1M and 0.5%)."""
    name, alpha, res = key
    model = MobileNetV1(1000, alpha, res, separable=name == "MobileNet")
    params = sum(r.params for r in mb.body_table(model))  # BN folded away, as in the paper
    macs = measure.count_macs(model, (3, res, res)).total
    paper_params, paper_macs = mb.PAPER_COSTS[key]
    assert abs(params - paper_params) <= 0.1e6  # printed as 4.2M: one unit of 0.1M
    # the paper sometimes rounds down (149.5M printed 149M, 290.7M printed 290M)
    assert macs == pytest.approx(paper_macs, rel=0.005)


def test_compare_separable_table():
    """compare_separable puts Conv MobileNet first with about 8.5x the MACs of MobileNet."""
    table = mb.compare_separable(width_mult=0.25, resolution=128, num_classes=10)
    conv, sep = table.rows
    assert conv.name.startswith("Conv MobileNet") and sep.name.startswith("MobileNet")
    assert 7 < conv.macs / sep.macs < 9
    assert conv.extra["paper MACs"] == "-"  # the paper has no 10-class numbers


@pytest.mark.parametrize("model, size, error, match", [
    (MobileNetV1(width_mult=0.25), 0, ValueError, r"input_size=0: expected a positive integer"),
    (nn.Linear(4, 2), 32, TypeError, r"expected a CNN with an nn.Conv2d layer, got Linear"),
    (nn.Sequential(nn.Conv2d(3, 4, 3)), None, ValueError, r"input_size=None"),
])
def test_body_table_bad_input(model, size, error, match):
    """A bad input size or a model without convolutions raises an error naming the argument."""
    with pytest.raises(error, match=match):
        mb.body_table(model, size)
