"""nclib.nas.child: a child trained by a fixed recipe, its rewards, and the result cache."""
import json

import pytest

from nclib import models
from nclib.nas import (ChildEvaluator, ChildRecipe, ChildResult, SearchSpace, accuracy_reward,
                       evaluate_child, mnas_reward, paper_reward, train_child)
from nclib.nas.child import _cache_file

TINY = ChildRecipe(n_train=300, epochs=2, batch_size=16)  # seconds, not minutes: enough to learn something
TOKENS = (1, 0, 0, 1, 0, 1, 1, 0)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NCLIB_CACHE", str(tmp_path))
    return tmp_path


def test_a_child_is_trained_measured_and_deterministic(cache):
    """Two trainings of one architecture by one recipe give the same accuracies; costs are counted."""
    a = evaluate_child(TOKENS, recipe=TINY, cache=False)
    b = evaluate_child(TOKENS, recipe=TINY, cache=False)
    assert len(a.val_acc) == 2 and a.val_acc == b.val_acc and a.test_acc == b.test_acc
    assert a.val_acc[-1] > 0.3  # 10 classes: chance is 0.1
    assert (a.params, a.macs) == SearchSpace().costs(TOKENS) and a.seconds > 0
    assert not a.cached and not list(cache.rglob("*.json"))


def test_the_cache_returns_the_same_result_at_once_and_rebuilds_a_corrupt_entry(cache):
    """A second evaluation is read from disk; a damaged file is trained again and rewritten."""
    first = evaluate_child(TOKENS, recipe=TINY)
    again = evaluate_child(TOKENS, recipe=TINY)
    assert again.cached and again == first
    path = _cache_file(SearchSpace(), TOKENS, TINY)
    path.write_text("{not json")
    rebuilt = evaluate_child(TOKENS, recipe=TINY)
    assert not rebuilt.cached and rebuilt.val_acc == first.val_acc
    assert json.loads(path.read_text())["tokens"] == list(TOKENS)


def test_the_cache_key_holds_the_recipe(cache):
    """Another recipe trains again: the cached result belongs to one recipe."""
    evaluate_child(TOKENS, recipe=TINY)
    other = evaluate_child(TOKENS, recipe=ChildRecipe(n_train=200, epochs=1))
    assert not other.cached and len(other.val_acc) == 1


def test_any_digit_model_trains_by_the_recipe():
    """train_child trains LeNet-5 the way children are trained."""
    val, test, seconds = train_child(models.LeNet5(), ChildRecipe(n_train=200))
    assert len(val) == 1 and 0.1 < test <= 1 and seconds > 0


def test_rewards():
    """Best of the last epochs; cubed (the paper); MnasNet's (MACs / target)^-0.07."""
    r = ChildResult((0,) * 8, [0.5, 0.9, 0.8], 0.85, 100, 2000, 1.0)
    assert accuracy_reward(r) == 0.9 and accuracy_reward(r, last=1) == 0.8
    assert paper_reward(r) == pytest.approx(0.729)
    assert mnas_reward(r, 2000) == pytest.approx(0.9)
    assert mnas_reward(r, 1000) == pytest.approx(0.9 * 2 ** -0.07)
    with pytest.raises(ValueError, match="target_macs=0"):
        mnas_reward(r, 0)


@pytest.mark.parametrize("kwargs, match", [(dict(epochs=0), "epochs=0"),
                                           (dict(n_train=0), "n_train=0"),
                                           (dict(batch_size=1.5), "batch_size=1.5")])
def test_bad_recipes_are_clear_errors(kwargs, match):
    """A recipe's counts must be positive integers."""
    with pytest.raises(ValueError, match=match):
        ChildRecipe(**kwargs)


def test_the_evaluator_is_evaluate_child_bound(cache):
    """ChildEvaluator(space, recipe)(tokens) is evaluate_child(tokens, space, recipe)."""
    assert ChildEvaluator(SearchSpace(), TINY, cache=False)(TOKENS).val_acc == evaluate_child(
        TOKENS, recipe=TINY, cache=False).val_acc
