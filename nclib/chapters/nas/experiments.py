"""Chapter 05: the RL controller against random search, on a space whose optimum is known.

`nas-rl-vs-random`: Zoph and Le (ICLR 2017) trained 12,800 children on 800 GPUs to find
their CIFAR-10 networks (Table 1, quoted). We search the 864 small CNNs of
`nclib.nas.SearchSpace`, every one of them trained once by the same short recipe
(`nclib.nas.load_table`), so a search looks its children up, and how far its best find is
from the true best (its regret) is known exactly. Both searches spend equal budgets (5%,
10% and 20% of the space) over 10 seeds; the smaller budgets are the first children of the
20% run of the same seed (a search's history does not depend on how long it will run).
"""
from __future__ import annotations

import torch

from nclib import measure, models
from nclib.course.papers import table as paper_table
from nclib.course.reproduce import Run, experiment, mean_se
from nclib.nas import SearchHistory, Table, load_table, random_search, rl_search, train_child

# Seeds 100-109: the controller's settings were chosen on seeds 0-9 (lr 0.01 to 0.1, batches
# of 4 and 8), so the runs reported are not the runs it was tuned on.
SEEDS = tuple(range(100, 110))
BUDGET_FRACTIONS = (0.05, 0.10, 0.20)
# The controller's settings for budgets of 40 to 200 children: 8 children a batch (the
# paper's m = 8 replicas), Adam 0.02 (the paper's 6e-4 was for 12,800 children; with 5 to
# 20 updates a step must move the softmax visibly), a baseline that forgets in ~5 children.
RL_SETTINGS = dict(batch_size=8, lr=0.02, baseline_decay=0.8, entropy_weight=1e-3)


def budgets(space_size: int) -> list[int]:
    """The children each search may evaluate: 5%, 10% and 20% of the space."""
    return [max(1, round(f * space_size)) for f in BUDGET_FRACTIONS]


def run_searches(table: Table, budget: int, seeds=SEEDS) -> dict[str, list[SearchHistory]]:
    """Random search and the controller (`RL_SETTINGS`), `budget` children each, per seed."""
    return {"random": [random_search(table.space, budget, s, evaluate=table) for s in seeds],
            "rl": [rl_search(table.space, budget, s, evaluate=table, **RL_SETTINGS)
                   for s in seeds]}


def regret(table: Table, history: SearchHistory, budget: int | None = None) -> float:
    """Points of validation accuracy between the table's best and the best of the first `budget`."""
    found = max(t.val_acc for t in history.trials[:budget])
    return 100 * (max(table.best().val_acc) - found)


def quarters(history: SearchHistory, budget: int | None = None) -> tuple[float, float]:
    """Mean reward of the first and of the last quarter of the first `budget` children."""
    r = history.rewards()[:budget]
    q = max(1, len(r) // 4)
    return float(r[:q].mean()), float(r[-q:].mean())


@experiment("nas-rl-vs-random", dataset="MNIST, the 5,000 bundled digits (3,500 train / 500 "
            "val / 1,000 test); every child trained once in the committed table",
            scale="864 CNNs of 3 conv layers (filters 8/16/32, kernel 3/5, stride or pool); "
                  "each child 1 epoch of Adam; budgets 5/10/20% of the space; 10 seeds",
            summary="REINFORCE controller vs random search: regret against the known optimum")
def nas_rl_vs_random(run: Run) -> None:
    paper = paper_table("nas")
    for r in paper.rows:
        run.row(f"paper: {r[0]}, CIFAR-10 error (quoted)", r[3], None, "%")
        run.row(f"paper: {r[0]}, params (quoted)", r[2], None, "params")
    run.row("paper: children trained (quoted, 800 GPUs)", 12800, None, "children")
    table = load_table()
    best = table.best()
    run.row("space size (architectures)", None, table.space.size, "archs")
    run.row("time to tabulate the space (child training, one core)", None,
            round(table.made.get("child_seconds", float("nan")) / 60, 1), "min")
    run.row(f"true best: {table.space.describe(best.tokens)}, val / test accuracy", None,
            f"{100 * max(best.val_acc):.1f} / {100 * best.test_acc:.1f}", "%")
    run.row("median architecture, val accuracy", None,
            100 * float(table.column("val_acc").median()), "%")
    sizes = budgets(table.space.size)
    searches = run_searches(table, sizes[-1])
    regrets = {}
    for budget in sizes:
        for method, label in (("random", "random"), ("rl", "RL")):
            hs = searches[method]
            found = [max(hs_i.trials[:budget], key=lambda t: t.val_acc) for hs_i in hs]
            val = mean_se([100 * t.val_acc for t in found])
            test = mean_se([100 * t.test_acc for t in found])
            reg = [regret(table, h, budget) for h in hs]
            regrets[method, budget] = mean_se(reg)
            run.row(f"{budget} children, {label}: best val accuracy (mean +- se)", None,
                    f"{val[0]:.2f} +- {val[1]:.2f}", "%")
            run.row(f"{budget} children, {label}: its test accuracy", None,
                    f"{test[0]:.2f} +- {test[1]:.2f}", "%")
            run.row(f"{budget} children, {label}: regret (mean +- se)", None,
                    f"{regrets[method, budget][0]:.2f} +- {regrets[method, budget][1]:.2f}",
                    "points")
        gains = [100 * (b - a) for a, b in (quarters(h, budget) for h in searches["rl"])]
        first = mean_se([100 * quarters(h, budget)[0] for h in searches["rl"]])[0]
        last = mean_se([100 * quarters(h, budget)[1] for h in searches["rl"]])[0]
        gain, se = mean_se(gains)
        run.row(f"{budget} children, RL: mean reward, first / last quarter", None,
                f"{first:.2f} / {last:.2f}", "%")
        if budget == sizes[-1]:
            run.claim(f"the controller learns: at {budget} children its last quarter's mean "
                      f"reward beats its first by {gain:.2f} points, more than twice the "
                      f"standard error over {len(SEEDS)} seeds ({se:.2f})",
                      round(gain, 2), f"> {2 * se:.2f}", gain > 2 * se)
    mid = sizes[1]
    (rl_reg, rl_se), (rnd_reg, rnd_se) = regrets["rl", mid], regrets["random", mid]
    run.claim(f"at {mid} children (10% of the space) the controller's mean regret is at most "
              f"random search's ({rl_reg:.2f} +- {rl_se:.2f} vs {rnd_reg:.2f} +- {rnd_se:.2f} "
              "points)", round(rl_reg, 2), f"<= {rnd_reg:.2f}", rl_reg <= rnd_reg)
    found = max((h.best() for h in searches["rl"]), key=lambda t: t.val_acc)
    run.row(f"RL's best find: {table.space.describe(found.tokens)}, params / MACs", None,
            f"{found.params:,} / {found.macs:,}", "")
    run.row("RL's best find: val / test accuracy", None,
            f"{100 * found.val_acc:.1f} / {100 * found.test_acc:.1f}", "%")
    for name, build in (("LeNet-5", models.LeNet5), ("SmallVGG", models.SmallVGG)):
        torch.manual_seed(table.recipe.seed)  # as evaluate_child seeds a child's weights
        model = build()
        val, test, _ = train_child(model, table.recipe)
        run.row(f"{name}, trained the same way: params / MACs", None,
                f"{measure.count_params(model):,} / {measure.count_macs(model, (1, 28, 28)).total:,}", "")
        run.row(f"{name}, trained the same way: val / test accuracy", None,
                f"{100 * max(val):.1f} / {100 * test:.1f}", "%")
