"""Chapter 04's experiments: they run, their rows are there and the lecture's claims hold."""
import pytest

from nclib.course.reproduce import render, run_experiment


@pytest.fixture(scope="module")
def mobilenet():
    return run_experiment("mobilenet-table")


@pytest.fixture(scope="module")
def lowrank():
    return run_experiment("lowrank-lenet300")


def test_mobilenet_table_rows_and_claims(mobilenet):
    """Four networks, params and MACs beside the paper's, every claim within its tolerance."""
    rows = {r.label: r for r in mobilenet.rows}
    for label in ("MobileNet", "Conv MobileNet", "GoogleNet (torchvision)", "VGG 16 (torchvision)"):
        assert rows[f"{label} params"].unit == "params" and rows[f"{label} MACs"].unit == "MACs"
    assert rows["MobileNet params"].paper == 4.2e6
    assert abs(rows["MobileNet MACs"].ours / 569e6 - 1) < 0.01
    assert abs(rows["Conv MobileNet params"].ours / 29.3e6 - 1) < 0.01
    assert len(mobilenet.claims) == 8 and all(c.holds for c in mobilenet.claims), render(mobilenet)
    assert any("torchvision: BatchNorm" in c.text for c in mobilenet.claims)


def test_mobilenet_accuracies_are_quoted_not_measured(mobilenet):
    """Accuracy rows carry the paper's number, marked as quoted, and no number of ours."""
    quoted = [r for r in mobilenet.rows if "top-1" in r.label]
    assert len(quoted) == 4
    assert all(r.unit == "% (quoted)" and r.ours is None for r in quoted)
    assert {r.paper for r in quoted} == {71.7, 70.6, 69.8, 71.5}
    assert "70.6 % (quoted)" in render(mobilenet)


def test_lowrank_lenet300_rows_and_claim(lowrank):
    """Every rank has params, compression and both accuracies; at 10x fine-tuning stays within 1 point."""
    labels = [r.label for r in lowrank.rows]
    for K in (108, 43, 21, 10, 4):  # the ranks of compressions 2, 5, 10, 20, 50
        for what in ("fc1 params", "fc1 compression", "accuracy, factorized", "accuracy, fine-tuned"):
            assert f"rank {K}: {what}" in labels
    rows = {r.label: r.ours for r in lowrank.rows}
    assert rows["rank 21: fc1 params"] == 21 * (300 + 784) + 300
    assert rows["rank 21: fc1 compression"] == pytest.approx(784 * 300 / (21 * 1084), abs=0.01)
    assert len(lowrank.claims) == 1 and lowrank.claims[0].holds, render(lowrank)
    assert rows["rank 21: accuracy, fine-tuned"] >= rows["dense test accuracy"] - 1


def test_lowrank_too_far_loses_accuracy(lowrank):
    """The table shows the limit too: at rank 4 (about 54x) accuracy falls far below dense."""
    rows = {r.label: r.ours for r in lowrank.rows}
    assert rows["rank 4: accuracy, fine-tuned"] < rows["dense test accuracy"] - 10
