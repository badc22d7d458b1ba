"""Chapter 01's experiments: they run, their rows are there and the robust claims hold.

`rethinking` (about 30 s of training) is left to `nclib reproduce rethinking`; the latency
claim of `filter-pruning-vgg` is a measurement and is not asserted.
"""
import pytest

from nclib.course.reproduce import render, run_experiment


@pytest.fixture(scope="module")
def lenet300():
    return run_experiment("han2015-lenet300")


@pytest.fixture(scope="module")
def lenet5():
    return run_experiment("han2015-lenet5")


@pytest.fixture(scope="module")
def thinet():
    return run_experiment("thinet")


@pytest.fixture(scope="module")
def filters():
    return run_experiment("filter-pruning-vgg")


def test_han_lenet300_claims_and_per_layer_rows(lenet300):
    """At least 12x (at most 8.3% kept) within 0.3 points of dense; fc1-fc3 beside 8/9/26%."""
    assert len(lenet300.claims) == 3 and all(c.holds for c in lenet300.claims), render(lenet300)
    rows = {r.label: r for r in lenet300.rows}
    assert [rows[f"{l}: weights kept"].paper for l in ("fc1", "fc2", "fc3")] == [8, 9, 26]
    assert rows["dense params"].ours == 266_610 and rows["compression (params / nonzeros)"].ours >= 12
    kept = [rows[f"{l}: weights kept"].ours for l in ("fc1", "fc2", "fc3")]
    assert all(0 < k < 100 for k in kept) and rows["all weights kept"].ours <= 8.3


def test_han_lenet5_claims(lenet5):
    """LeNet-5: at least 10x fewer nonzero parameters within 0.3 points of dense."""
    assert len(lenet5.claims) == 2 and all(c.holds for c in lenet5.claims), render(lenet5)
    rows = {r.label: r for r in lenet5.rows}
    assert rows["dense params"].ours == 431_080
    assert rows["conv1: weights kept"].paper == 66 and rows["fc1: weights kept"].paper == 8
    assert rows["size of the pruned model, sparse_relative"].ours < rows["size dense_fp32"].ours / 5


def test_thinet_beats_l1_and_random_on_the_chosen_layer(thinet):
    """On features.7 ThiNet has the lowest reconstruction error and the highest accuracy."""
    assert len(thinet.claims) == 2 and all(c.holds for c in thinet.claims), render(thinet)
    assert all("features.7" in c.text for c in thinet.claims)
    labels = [r.label for r in thinet.rows]
    for method in ("ThiNet", "L1 norm", "random"):
        assert f"features.7 {method}: reconstruction error" in labels
    assert "features.14 alone: accuracy ThiNet / L1 / random" in labels


def test_filter_pruning_is_smaller_and_keeps_accuracy(filters):
    """Fewer params, at least 2x fewer MACs, accuracy within 1 point; unstructured file no smaller."""
    claims = {c.text.split(" (")[0]: c for c in filters.claims}
    assert claims["MACs at most half of dense"].holds, render(filters)
    assert next(c for c in filters.claims if c.text.startswith("after fine-tuning")).holds
    assert next(c for c in filters.claims if "unstructured" in c.text).holds
    assert any(c.text.startswith("measured latency speed-up") for c in filters.claims)  # reported
    rows = {r.label: r.ours for r in filters.rows}
    assert rows["filter-pruned: params"] < 0.6 * rows["dense: params"]
    assert rows["filter-pruned: model file (torch.save)"] < rows["dense: model file (torch.save)"]
    assert rows["unstructured: MACs"] == rows["dense: MACs"]
    assert rows["latency speed-up"] > 0 and rows["unstructured: latency"] > 0
