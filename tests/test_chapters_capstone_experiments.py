"""nclib.chapters.capstone.experiments: the order experiment compares what it says it compares,
the pipeline's stages are measured from their files, and the front is the non-dominated set."""
import pytest
import torch
from torch import nn

from nclib import data, measure, models, train
from nclib.chapters.capstone import experiments as E
from nclib.course.reproduce import EXPERIMENTS, Run
from nclib.pruning import magnitude

TINY = E.Scale(seeds=(0, 1), phase1_epochs=1, phase2_epochs=1)


@pytest.fixture(scope="module")
def order_run():
    run = Run("capstone-order", "MNIST", TINY.describe())
    return run, E.run_order(run, TINY)


def test_order_run_has_a_row_per_order_and_the_difference(order_run):
    """One accuracy per order and seed; rows for each order, the difference and its winner."""
    run, acc = order_run
    assert set(acc) == set(E.ORDERS) and all(len(v) == 2 for v in acc.values())
    assert all(0 <= a <= 100 for v in acc.values() for a in v)
    labels = [r.label for r in run.rows]
    assert [label.split(":")[0] for label in labels if ": test accuracy" in label] == list(E.ORDERS)
    diff = next(r.ours for r in run.rows if r.label.startswith("distil-prune minus"))
    expected = sum(acc["distil-prune"]) / 2 - sum(acc["prune-distil"]) / 2
    assert diff.startswith(f"{expected:+.2f}")
    assert len(run.claims) == 1 and run.claims[0].holds == (run.claims[0].value >= 1.0)


def test_phase2_prunes_to_the_sparsity_and_bakes_the_masks():
    """The pruned student has each layer at its sparsity, no masks left, and the accuracy
    reported before phase 2 is the pruned (not fine-tuned) model's."""
    dense = E.phase1(0, distil=False, epochs=1)
    final, pruned_acc = E.phase2(dense, 0, distil=False, epochs=0)
    assert not any(magnitude.is_masked(m) for m in final.modules())
    for name, s in magnitude.layer_sparsity(final).items():
        assert s == pytest.approx(E.SPARSITY.get(name, 0.0), abs=0.01), name
    assert pruned_acc == train.evaluate(final, data.loaders("mnist").test)  # no epochs: as pruned
    assert dense.conv2.weight.count_nonzero() == dense.conv2.weight.numel()  # the input is untouched


def test_distilling_uses_the_teachers_soft_targets(monkeypatch):
    """phase1(distil=True) trains against the teacher it is given; distil=False never asks one."""
    asked = []

    class Teacher(nn.Module):
        def forward(self, x):
            asked.append(len(x))
            return torch.zeros(len(x), 10)
    full = data.split(*data.load_mnist())
    parts = data.Splits((full.train[0][:128], full.train[1][:128]), full.val, full.test)
    E.phase1(0, distil=True, epochs=1, splits=parts, teacher=Teacher())
    assert sum(asked) == 128  # once per training digit (cached), not once per batch
    asked.clear()
    E.phase1(0, distil=False, epochs=1, splits=parts, teacher=Teacher())
    assert asked == []


def test_zoo_names_and_bad_order():
    """Every order and seed has a zoo recipe; an unknown order names the allowed ones."""
    from nclib import zoo
    for seed in E.SEEDS:
        assert E.dense_name(True, seed) in zoo.RECIPES and E.dense_name(False, seed) in zoo.RECIPES
        for order in E.ORDERS:
            assert E.order_name(order, seed) in zoo.RECIPES
    with pytest.raises(ValueError, match="order='both'.*distil-prune"):
        E.order_name("both", 0)
    assert "capstone-order" in EXPERIMENTS


def test_nonzero_macs_counts_only_kept_weights():
    """A LeNet with half of conv2's and fc1's weights zeroed: MACs with a nonzero weight drop by
    exactly those weights times their uses, while count_macs stays dense."""
    torch.manual_seed(0)
    m = models.LeNet((4, 8), 16).eval()
    dense = measure.count_macs(m, (1, 28, 28)).total
    assert E.nonzero_macs(m) == dense
    with torch.no_grad():
        m.conv2.weight.view(-1)[::2] = 0
        m.fc1.weight.view(-1)[::2] = 0
    removed = (m.conv2.weight.numel() // 2) * 8 * 8 + m.fc1.weight.numel() // 2
    assert E.nonzero_macs(m) == dense - removed
    assert measure.count_macs(m, (1, 28, 28)).total == dense


def test_measure_stages_reads_each_stage_back_from_its_file(tmp_path):
    """Bytes are the files' sizes; accuracy is the reloaded model's; Huffman coding is smaller
    than fixed-width labels for the same shared model."""
    torch.manual_seed(0)
    m = models.LeNet((4, 8), 16).eval()
    magnitude.bake(magnitude.prune_model(m, 0.7) and m)
    coded = E.shared(m, 3)
    stages = [E.Stage("dense", m), E.Stage("shared", coded), E.Stage("huffman", coded, "huffman")]
    test = data.loaders("mnist").test
    res = E.measure_stages(stages, test, folder=tmp_path, rounds=1, repeats=2)
    assert [r.bytes for r in res] == [(tmp_path / f"stage{i}.nclib").stat().st_size for i in range(3)]
    assert res[2].bytes < res[1].bytes < res[0].bytes
    assert res[1].bytes == E.file_bytes(coded, "fixed") and res[2].bytes == E.file_bytes(coded)
    assert res[1].accuracy == res[2].accuracy and all(r.latency_ms > 0 for r in res)


def test_front_keeps_the_non_dominated_points():
    """A point beaten on both bytes and accuracy is off the front; the rest are, by bytes."""
    pts = [E.Point("a", "big", 0.98, 100_000), E.Point("b", "small", 0.95, 5_000),
           E.Point("c", "worse", 0.94, 50_000), E.Point("d", "mid", 0.97, 20_000)]
    assert [p.label for p in E.front(pts)] == ["small", "mid", "big"]
