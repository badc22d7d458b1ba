"""Chapter 05's experiment: it runs on the committed table, its rows are there and its claims hold."""
import pytest

from nclib.chapters.nas import experiments
from nclib.course.reproduce import render, run_experiment
from nclib.nas import load_table


@pytest.fixture(scope="module")
def run():
    return run_experiment("nas-rl-vs-random")


def test_rows_for_every_budget_and_both_searches(run):
    """Best val and test accuracy and regret for random and RL at 5%, 10% and 20% of the space."""
    labels = [r.label for r in run.rows]
    for budget in (43, 86, 173):
        for method in ("random", "RL"):
            for what in ("best val accuracy (mean +- se)", "its test accuracy", "regret (mean +- se)"):
                assert f"{budget} children, {method}: {what}" in labels
        assert f"{budget} children, RL: mean reward, first / last quarter" in labels
    assert any(label.startswith("LeNet-5, trained the same way") for label in labels)
    assert any(label.startswith("SmallVGG, trained the same way") for label in labels)
    quoted = [r for r in run.rows if "(quoted)" in r.label]
    assert quoted and all(r.ours is None for r in quoted)


def test_the_claims_hold(run):
    """The controller learns, and at 10% of the space its regret is at most random search's."""
    assert len(run.claims) == 2 and all(c.holds for c in run.claims), render(run)


def test_regret_and_quarters_by_hand():
    """Regret is the table's best minus the best found, in points; quarters are means of rewards."""
    table = load_table()
    history = experiments.run_searches(table, 8, seeds=(0,))["random"][0]
    best = max(table.best().val_acc)
    assert experiments.regret(table, history) == pytest.approx(100 * (best - history.best().val_acc))
    first, last = experiments.quarters(history)
    r = history.rewards()
    assert first == pytest.approx(float(r[:2].mean())) and last == pytest.approx(float(r[-2:].mean()))
    assert experiments.budgets(864) == [43, 86, 173]
