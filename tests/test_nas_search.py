"""nclib.nas.search: random and RL search, equal budgets, the same history on any executor."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from nclib.nas import ChildResult, SearchSpace, random_search, rl_search


class SumOfTokens:
    """A stand-in for training: validation accuracy rises with every token (best: all last)."""

    def __call__(self, tokens):
        space = SearchSpace()
        top = sum(len(d.choices) - 1 for d in space.decisions)
        acc = 0.5 + 0.4 * sum(tokens) / top
        return ChildResult(tuple(tokens), [acc], acc, 1, 1 + sum(tokens), 0.0)


@pytest.mark.parametrize("search", [random_search, rl_search])
def test_a_search_spends_its_budget_and_is_seeded(search):
    """budget children, valid tokens; the same seed repeats the history, another seed does not."""
    space = SearchSpace()
    a = search(space, 30, seed=0, evaluate=SumOfTokens())
    assert len(a) == 30 and all(space.check(t.tokens) == t.tokens for t in a.trials)
    assert search(space, 30, seed=0, evaluate=SumOfTokens()).trials == a.trials
    assert search(space, 30, seed=1, evaluate=SumOfTokens()).trials != a.trials


@pytest.mark.parametrize("search", [random_search, rl_search])
def test_a_smaller_budget_is_a_prefix_of_a_larger_one(search):
    """The first 13 children of a 40-child search are the 13 of a 13-child search."""
    space = SearchSpace()
    short = search(space, 13, seed=4, evaluate=SumOfTokens())
    long = search(space, 40, seed=4, evaluate=SumOfTokens())
    assert long.trials[:13] == short.trials


def test_the_controller_learns_where_the_reward_is():
    """On a reward that grows with the tokens, the last quarter beats the first and random search."""
    space = SearchSpace()
    rl = rl_search(space, 160, seed=0, evaluate=SumOfTokens()).rewards()
    rnd = random_search(space, 160, seed=0, evaluate=SumOfTokens()).rewards()
    assert rl[-40:].mean() > rl[:40].mean() + 0.05
    assert rl[-40:].mean() > rnd[-40:].mean() + 0.05


def test_best_so_far_is_a_running_maximum():
    """best_so_far never falls and ends at the best child's accuracy."""
    h = random_search(SearchSpace(), 25, seed=2, evaluate=SumOfTokens())
    b = h.best_so_far()
    assert (b[1:] >= b[:-1]).all() and float(b[-1]) == h.best().val_acc


def test_a_thread_pool_gives_the_serial_history():
    """Children evaluated on an executor come back in submission order."""
    space = SearchSpace()
    with ThreadPoolExecutor(3) as pool:
        threaded = rl_search(space, 20, seed=5, executor=pool, evaluate=SumOfTokens())
    assert threaded.trials == rl_search(space, 20, seed=5, evaluate=SumOfTokens()).trials


@pytest.mark.parametrize("search", [random_search, rl_search])
@pytest.mark.parametrize("budget", [0, -3, 2.5, True])
def test_a_budget_below_one_is_refused(search, budget):
    """The budget is a positive number of children."""
    with pytest.raises(ValueError, match=f"budget={budget!r}"):
        search(SearchSpace(), budget, seed=0, evaluate=SumOfTokens())


@pytest.mark.parametrize("search", [random_search, rl_search])
def test_an_executor_that_is_not_one_is_refused(search):
    """Only None or a concurrent.futures.Executor; the message says what would do."""
    with pytest.raises(TypeError, match="expected None .* concurrent.futures.Executor"):
        search(SearchSpace(), 4, seed=0, executor="dask", evaluate=SumOfTokens())
    with pytest.raises(TypeError, match="space="):
        search("space", 4, seed=0, evaluate=SumOfTokens())
