"""nclib.chapters.nas.widgets and figures: the trade-off follows its reward; figures draw."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from nclib.chapters.nas import figures, widgets  # noqa: E402
from nclib.nas import load_table, mnas_reward  # noqa: E402


@pytest.fixture(scope="module")
def table():
    return load_table()


def test_w_zero_picks_the_true_best_and_negative_w_cheaper(table):
    """At w = 0 the winner is the table's best; a more negative w never picks more MACs."""
    assert widgets.tradeoff_best(table, 300_000, 0.0).tokens == table.best().tokens
    macs = [widgets.tradeoff_best(table, 300_000, w).macs for w in (0.0, -0.07, -0.3, -1.0)]
    assert macs == sorted(macs, reverse=True) and macs[-1] < macs[0]


def test_the_winner_maximizes_the_reward(table):
    """No architecture has a higher MnasNet reward than the one the widget names."""
    won = widgets.tradeoff_best(table, 1e6, -0.2)
    assert all(mnas_reward(r, 1e6, -0.2) <= mnas_reward(won, 1e6, -0.2) for r in table.results)


def test_summary_text_and_sliders(table):
    """The summary names winner and true best; moving the w slider updates the text."""
    text = widgets.tradeoff_summary(table, 300_000, -0.07)
    assert "winner:" in text and "true best:" in text and "fewer MACs" in text
    box = widgets.reward_tradeoff(table)
    before = box.children[-1].value
    box.children[1].value = 0.0
    assert box.children[-1].value != before and table.space.describe(table.best().tokens) in box.children[-1].value


def test_figures_draw(table):
    """Each figure returns axes with what it was given drawn on them."""
    val = 100 * table.column("val_acc")
    ax = figures.accuracy_histogram(val, {"rl": [97.0, 96.8]})
    assert ax.get_legend() is not None
    ax = figures.best_so_far({"rl": torch.tensor([[90.0, 95.0], [91.0, 96.0]])}, 97.6)
    assert len(ax.lines) == 2
    p = [torch.tensor([0.5, 0.5])]
    ax = figures.token_probabilities(["k"], [(3, 5)], p, p)
    assert len(ax.patches) == 4
    front = table.pareto()
    ax = figures.pareto(table.column("macs"), val, [table.space.index(r.tokens) for r in front],
                        {"best": (table.best().macs, float(val.max()))})
    assert ax.get_xscale() == "log"
