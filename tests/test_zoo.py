"""nclib.zoo: trained once, cached under a recipe key, loaded fast, rebuilt when corrupt."""
import time

import pytest
import torch

from nclib import zoo


@pytest.fixture
def quick_recipe(monkeypatch, tmp_cache):
    """A one-epoch recipe on the digits, in an empty cache."""
    recipes = dict(zoo.RECIPES)
    recipes["lenet300"] = zoo.Recipe("lenet300", epochs=1, dataset="digits",
                                     model_kwargs={"in_features": 64})
    monkeypatch.setattr(zoo, "RECIPES", recipes)
    return recipes


def test_trained_caches_and_loads_quickly(quick_recipe):
    """The first call trains and writes the cache; the second loads the same weights in < 1 s."""
    m1 = zoo.trained("lenet300", progress=False)
    path = zoo.cache_path("lenet300")
    assert path.exists() and not m1.training
    t0 = time.perf_counter()
    m2 = zoo.trained("lenet300", progress=False)
    assert time.perf_counter() - t0 < 1.0
    assert torch.equal(m1.fc1.weight, m2.fc1.weight)
    meta = zoo.info("lenet300")
    assert 0.5 < meta["test_accuracy"] <= 1 and meta["recipe"]["epochs"] == 1


def test_key_changes_with_recipe(quick_recipe):
    """A different recipe gets a different cache file, so stale weights are never loaded."""
    before = zoo.cache_path("lenet300")
    quick_recipe["lenet300"] = zoo.Recipe("lenet300", epochs=2, dataset="digits",
                                          model_kwargs={"in_features": 64})
    assert zoo.cache_path("lenet300") != before


def test_corrupt_cache_is_retrained(quick_recipe):
    """A corrupt cache file gives a warning and a retrained model, not a crash."""
    zoo.trained("lenet300", progress=False)
    zoo.cache_path("lenet300").write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="retraining"):
        m = zoo.trained("lenet300", progress=False)
    assert m(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
    assert torch.load(zoo.cache_path("lenet300"), weights_only=True)["info"]["name"] == "lenet300"


def test_unknown_model_name(tmp_cache):
    """An unknown zoo name lists the ones there are."""
    with pytest.raises(ValueError, match="name='alexnet'.*lenet300"):
        zoo.trained("alexnet")


def test_clear(quick_recipe):
    """clear() removes cached files."""
    zoo.trained("lenet300", progress=False)
    assert zoo.clear() >= 1 and not zoo.cache_path("lenet300").exists()
