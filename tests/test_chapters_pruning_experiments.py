"""Chapter 01's experiments: they run, their rows are there and the robust claims hold.

The Han searches run at a small scale here (3 sparsities, 2 seeds, 1 epoch each);
`rethinking` (about 30 s of training) is left to `nclib reproduce rethinking`; the latency
claim of `filter-pruning-vgg` is a measurement and is not asserted.
"""
import statistics

import pytest

from nclib.chapters.pruning import experiments
from nclib.course.reproduce import EXPERIMENTS, Run, render, run_experiment


SMALL = experiments.HanScale(sparsities=(0.5, 0.9, 0.97), seeds=(0, 1), epochs=1)


@pytest.fixture(scope="module")
def lenet300():
    run = Run("han2015-lenet300", "MNIST", SMALL.describe("lenet300"))
    return run, experiments.run_han(run, "lenet300", SMALL)


@pytest.fixture(scope="module")
def lenet5():
    run = Run("han2015-lenet5", "MNIST", SMALL.describe("lenet5"))
    return run, experiments.run_han(run, "lenet5", SMALL)


@pytest.fixture(scope="module")
def thinet():
    return run_experiment("thinet")


@pytest.fixture(scope="module")
def filters():
    return run_experiment("filter-pruning-vgg")


def test_han_search_chooses_on_validation_and_claims_follow_the_numbers(lenet300):
    """Each seed's pick is the highest compression within 0.5 val points of dense; the claims are computed
    from the picks' compression and mean test accuracy, and every step has a row."""
    run, out = lenet300
    for seed, points in out["paths"].items():
        assert [p["sparsity"] for p in points] == list(SMALL.sparsities)
        rates = [p["compression"] for p in points]
        assert rates == sorted(rates) and rates[0] == pytest.approx(2, rel=0.01)
        ok = [i for i, p in enumerate(points) if p["val"] >= out["dense_val"] - 0.5]
        assert out["picks"][seed] == (max(ok) if ok else None)
    rate_claim, acc_claim = run.claims
    picked = [out["paths"][s][i] for s, i in out["picks"].items() if i is not None]
    if len(picked) == len(SMALL.seeds):
        worst = min(p["compression"] for p in picked)
        assert rate_claim.value == pytest.approx(worst, abs=0.01) and rate_claim.holds == (worst >= 12)
        drop = statistics.fmean(p["test"] for p in picked) - out["dense_test"]
        assert acc_claim.value == pytest.approx(drop, abs=0.01) and acc_claim.holds == (drop >= -0.5)
    labels = [r.label for r in run.rows]
    assert sum(label.endswith("val / test accuracy") for label in labels) == len(SMALL.sparsities)
    assert "chosen compression, per seed" in labels


def test_han_rows_sit_beside_the_papers(lenet300, lenet5):
    """Dense sizes and Han et al.'s per-layer kept fractions (8/9/26%, 66/12/8/19%) are the paper column."""
    rows300 = {r.label.split(" (seed")[0]: r for r in lenet300[0].rows}
    rows5 = {r.label.split(" (seed")[0]: r for r in lenet5[0].rows}
    assert rows300["dense params"].ours == 266_610 and rows5["dense params"].ours == 431_080
    if "fc1: weights kept" in rows300:  # a seed chose a step
        assert [rows300[f"{l}: weights kept"].paper for l in ("fc1", "fc2", "fc3")] == [8, 9, 26]
        assert all(0 < rows300[f"{l}: weights kept"].ours < 100 for l in ("fc1", "fc2", "fc3"))
    if "conv1: weights kept" in rows5:
        assert [rows5[f"{l}: weights kept"].paper for l in ("conv1", "conv2", "fc1", "fc2")] == [66, 12, 8, 19]


def test_choose_takes_the_highest_compression_within_the_drop():
    """choose() skips steps more than 0.5 points below dense on validation, even between good ones."""
    points = [{"compression": c, "val": v} for c, v in [(2, 95.0), (10, 94.6), (20, 94.4), (30, 94.5)]]
    assert experiments.choose(points, 95.0) == 3
    assert experiments.choose(points, 95.05) == 1  # the bar is 94.55: 94.5 at 30x no longer passes
    assert experiments.choose(points, 96.0) is None


def test_registered_han_experiments_run_the_full_search():
    """The registered experiments search 10 sparsities over 3 seeds and state it."""
    scale = EXPERIMENTS["han2015-lenet300"].scale
    assert "seeds 0, 1, 2" in scale and "98%" in scale and "0.5 points" in scale
    assert experiments.SEARCH[-1] == 0.98 and experiments.SEEDS == (0, 1, 2)


def test_thinet_beats_l1_and_random_on_the_chosen_layer(thinet):
    """On features.7 ThiNet has the lowest reconstruction error and the highest accuracy."""
    assert len(thinet.claims) == 2 and all(c.holds for c in thinet.claims), render(thinet)
    assert all("features.7" in c.text for c in thinet.claims)
    labels = [r.label for r in thinet.rows]
    for method in ("ThiNet", "L1 norm", "random"):
        assert f"features.7 {method}: reconstruction error" in labels
    assert "features.14 alone: accuracy ThiNet / L1 / random" in labels


def test_filter_pruning_is_smaller_and_keeps_accuracy(filters):
    """Fewer params, at least 2x fewer MACs, accuracy within 1 point; unstructured file no smaller (rows)."""
    assert [c.text.split(" (")[0].split(",")[0] for c in filters.claims] == [
        "after fine-tuning", "measured latency speed-up"], render(filters)
    assert filters.claims[0].holds, render(filters)
    rows = {r.label: r.ours for r in filters.rows}
    assert rows["MAC (FLOP) reduction"] >= 2 and rows["baked unstructured file / dense file"] >= 1
    assert rows["filter-pruned: params"] < 0.6 * rows["dense: params"]
    assert rows["filter-pruned: model file (torch.save)"] < rows["dense: model file (torch.save)"]
    assert rows["unstructured: MACs"] == rows["dense: MACs"]
    assert rows["latency speed-up"] > 0 and rows["unstructured: latency"] > 0
