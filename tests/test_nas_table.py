"""nclib.nas.table: the committed table of the whole space, its stamp, the Pareto front."""
import json
import random
import re

import pytest
import torch

from nclib.cli import main
from nclib.nas import (ChildRecipe, SearchSpace, Table, evaluate_child, load_table, pareto_front,
                       tabulate)
from nclib.nas.table import TABLE_FILE


def test_the_committed_table_matches_the_code_and_holds_every_architecture():
    """The shipped table's stamp matches this space and recipe; costs match the space's count."""
    t = load_table()
    space = SearchSpace()
    assert len(t) == space.size and [r.tokens for r in t.results] == list(space)
    for r in random.Random(0).sample(t.results, 40):
        assert (r.params, r.macs) == space.costs(r.tokens)
        assert 0.1 < max(r.val_acc) <= 1 and 0.1 < r.test_acc <= 1 and r.seconds > 0


def test_three_random_entries_retrained_match_the_table(tmp_path, monkeypatch):
    """Retraining 3 architectures by the recipe reproduces their accuracies within 1 point."""
    monkeypatch.setenv("NCLIB_CACHE", str(tmp_path))  # really trained, not read from a cache
    t = load_table()
    cheap = [r for r in t.results if r.macs < 1_000_000]  # seconds each, not minutes
    for r in random.Random(1).sample(cheap, 3):
        again = evaluate_child(r.tokens, t.space, t.recipe, cache=False)
        assert abs(max(again.val_acc) - max(r.val_acc)) <= 0.01, t.space.describe(r.tokens)
        assert abs(again.test_acc - r.test_acc) <= 0.01, t.space.describe(r.tokens)


def test_the_table_is_a_real_search_problem():
    """Accuracies spread over several points, and the best architecture is unique or nearly."""
    acc = load_table().column("val_acc")
    assert float(acc.max() - acc.min()) > 0.03
    assert int((acc == acc.max()).sum()) <= 3


def test_a_table_of_another_recipe_is_stale(tmp_path):
    """load_table refuses a table whose stamp does not match the recipe it is asked for."""
    with pytest.raises(ValueError, match="run `nclib nas tabulate`"):
        load_table(recipe=ChildRecipe(epochs=2))
    data = json.loads(TABLE_FILE.read_text())
    data["stamp"] = "0" * 16
    bad = tmp_path / "table.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="stamp '0000000000000000'"):
        load_table(bad)
    with pytest.raises(FileNotFoundError, match="no search-space table"):
        load_table(tmp_path / "missing.json")


def test_tabulate_saves_a_table_that_loads_back(tmp_path, monkeypatch):
    """A tiny space tabulated by a tiny recipe round-trips through save and load_table."""
    monkeypatch.setenv("NCLIB_CACHE", str(tmp_path))
    space = SearchSpace(depth=1, filters=(4, 8), kernels=(3,))
    recipe = ChildRecipe(n_train=100, batch_size=25)
    t = tabulate(space, recipe, progress=False)
    back = load_table(t.save(tmp_path / "t.json"), space, recipe)
    assert [r.val_acc for r in back.results] == [r.val_acc for r in t.results]
    assert back.made["child_seconds"] > 0 and len(back) == 2


def test_tabulate_shows_a_progress_bar_with_the_time_left(tmp_path, monkeypatch, capsys):
    """The bar counts children and shows the estimated time remaining (tqdm's <mm:ss)."""
    monkeypatch.setenv("NCLIB_CACHE", str(tmp_path))
    tabulate(SearchSpace(depth=1, filters=(4, 8), kernels=(3,)), ChildRecipe(n_train=100, batch_size=25))
    err = capsys.readouterr().err
    assert "tabulate" in err and "2/2" in err and re.search(r"<\d\d:\d\d", err)


def test_the_check_command_compares_stamps(tmp_path, capsys):
    """`nclib nas tabulate --check` says up to date for the shipped table, stale otherwise."""
    assert main(["nas", "tabulate", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["nas", "tabulate", "--check", "--out", str(tmp_path / "none.json")]) == 1
    assert "stale" in capsys.readouterr().out


def test_pareto_front_by_hand_and_by_definition():
    """Hand-worked front; every point off it is dominated, none on it is."""
    macs = torch.tensor([10.0, 20.0, 20.0, 30.0, 40.0, 5.0])
    acc = torch.tensor([0.90, 0.95, 0.93, 0.94, 0.97, 0.80])
    assert pareto_front(macs, acc) == [5, 0, 1, 4]
    t = load_table()
    front = set(pareto_front(t.column("macs"), t.column("val_acc")))
    m, a = t.column("macs"), t.column("val_acc")
    for i in range(len(m)):
        dominated = bool((((m <= m[i]) & (a > a[i])) | ((m < m[i]) & (a >= a[i]))).any())
        assert dominated == (i not in front)


def test_a_table_needs_one_result_per_architecture():
    """A Table with the wrong number of results is a clear error."""
    with pytest.raises(ValueError, match="expected 864"):
        Table(SearchSpace(), ChildRecipe(), [])
