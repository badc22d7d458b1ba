"""nclib.zoo: recipes registered, trained once, cached under a recipe key, loaded fast."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nclib import models, zoo

TRAIN_CALLS = []  # one entry per call of _fit_tiny, to tell training from loading


def _build_tiny(hidden, **_):
    return nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 2))


def _fit_tiny(hidden, steps, progress=True):
    """A few Adam steps on 64 random points whose class is the sign of the first feature."""
    TRAIN_CALLS.append(hidden)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 8, generator=g)  # (N, 8)
    y = (X[:, 0] > 0).long()  # (N,)
    torch.manual_seed(0)
    model = _build_tiny(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        opt.step()
    return model, {"train_accuracy": (model(X).argmax(1) == y).float().mean().item()}


def _fit_tiny_no_info(hidden, steps, progress=True):
    model, _ = _fit_tiny(hidden, steps, progress)
    return model


@pytest.fixture
def registry(monkeypatch, tmp_cache):
    """A copy of the registry with a tiny recipe in it, and an empty cache."""
    monkeypatch.setattr(zoo, "RECIPES", dict(zoo.RECIPES))
    TRAIN_CALLS.clear()
    zoo.register("tiny", train=_fit_tiny, build=_build_tiny,
                 settings={"hidden": 4, "steps": 20}, description="tiny MLP")
    return zoo.RECIPES


def test_trained_caches_and_loads(registry):
    """The first call trains and writes the cache; the second loads the same weights."""
    m1 = zoo.trained("tiny", progress=False)
    path = zoo.cache_path("tiny")
    assert path.exists() and not m1.training and TRAIN_CALLS == [4]
    m2 = zoo.trained("tiny", progress=False)
    assert TRAIN_CALLS == [4] and torch.equal(m1[0].weight, m2[0].weight)
    meta = zoo.info("tiny")
    assert meta["train_accuracy"] > 0.8 and meta["settings"] == {"hidden": 4, "steps": 20}
    assert meta["key"] in path.name and TRAIN_CALLS == [4]


def test_train_may_return_only_the_model(registry):
    """A train function that returns just the model is recorded with the zoo's own info."""
    zoo.register("bare", train=_fit_tiny_no_info, build=_build_tiny,
                 settings={"hidden": 3, "steps": 2})
    assert zoo.trained("bare", progress=False)(torch.zeros(1, 8)).shape == (1, 2)
    assert zoo.info("bare")["name"] == "bare" and "train_accuracy" not in zoo.info("bare")


def test_key_changes_with_recipe(registry):
    """A changed setting, train function or dependency gets another cache file."""
    before = zoo.cache_path("tiny")
    zoo.register("tiny", train=_fit_tiny, build=_build_tiny,
                 settings={"hidden": 4, "steps": 20})  # the same recipe again: allowed
    assert zoo.cache_path("tiny") == before
    paths = {before}
    for change in [dict(settings={"hidden": 4, "steps": 21}),
                   dict(train=_fit_tiny_no_info),
                   dict(depends_on=(models.LeNet5,))]:
        recipe = dict(train=_fit_tiny, build=_build_tiny, settings={"hidden": 4, "steps": 20})
        zoo.register("tiny", **{**recipe, **change}, replace=True)
        paths.add(zoo.cache_path("tiny"))
    assert len(paths) == 4


def test_changed_recipe_never_loads_stale_weights(registry):
    """After a setting changes, `trained` trains again instead of loading the old file."""
    zoo.trained("tiny", progress=False)
    zoo.register("tiny", train=_fit_tiny, build=_build_tiny,
                 settings={"hidden": 5, "steps": 20}, replace=True)
    assert zoo.trained("tiny", progress=False)[0].out_features == 5 and TRAIN_CALLS == [4, 5]


def test_register_twice_needs_replace(registry):
    """Another recipe under a taken name is an error that says how to replace it."""
    with pytest.raises(ValueError, match="'tiny'.*_fit_tiny.*replace=True"):
        zoo.register("tiny", train=_fit_tiny_no_info, build=_build_tiny,
                     settings={"hidden": 4, "steps": 20})
    with pytest.raises(ValueError, match="'lenet300'.*replace=True"):
        zoo.register("lenet300", train=_fit_tiny, build=_build_tiny,
                     settings={"hidden": 4, "steps": 20})


def test_bad_recipes_are_clear_errors(registry):
    """Settings that cannot be hashed, and a build that does not match train, are errors."""
    with pytest.raises(ValueError, match="settings must be JSON-like"):
        zoo.register("odd", train=_fit_tiny, build=_build_tiny, settings={"hidden": nn.ReLU})
    zoo.register("mismatch", train=_fit_tiny, build=lambda hidden, **_: _build_tiny(hidden + 1),
                 settings={"hidden": 4, "steps": 1})
    with pytest.raises(ValueError, match="'mismatch': build.. does not make the architecture"):
        zoo.trained("mismatch", progress=False)
    assert not zoo.cache_path("mismatch").exists()


def test_training_leaves_the_callers_random_numbers_alone(registry):
    """Whether the model was cached or not, the caller's next random numbers are the same."""
    torch.manual_seed(1)
    zoo.trained("tiny", progress=False)  # trains
    cold = torch.rand(3)
    torch.manual_seed(1)
    zoo.trained("tiny", progress=False)  # loads
    assert torch.equal(cold, torch.rand(3))


def test_corrupt_cache_is_retrained(registry):
    """A corrupt cache file gives a warning and a retrained model, not a crash."""
    zoo.trained("tiny", progress=False)
    zoo.cache_path("tiny").write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="retraining"):
        m = zoo.trained("tiny", progress=False)
    assert m(torch.zeros(1, 8)).shape == (1, 2) and TRAIN_CALLS == [4, 4]
    assert torch.load(zoo.cache_path("tiny"), weights_only=True)["info"]["name"] == "tiny"


def test_unknown_model_name(registry):
    """An unknown zoo name lists the registered ones, the chapters' too."""
    with pytest.raises(ValueError, match="name='alexnet'.*lenet300.*tiny"):
        zoo.trained("alexnet")


def test_clear(registry):
    """clear() removes cached files."""
    zoo.trained("tiny", progress=False)
    assert zoo.clear() >= 1 and not zoo.cache_path("tiny").exists()


def test_lecture_models_keep_their_recipes():
    """The four lecture models are trained as before (their weights feed many experiments)."""
    common = {"optimizer": "adam", "weight_decay": 0.0, "batch_size": 64, "dataset": "mnist",
              "seed": 0, "model_kwargs": {}}
    for name, epochs, lr in [("lenet300", 20, 1e-3), ("lenet5", 10, 1e-3),
                             ("vgg_small", 8, 2e-3), ("resnet_small", 8, 2e-3)]:
        recipe = zoo.RECIPES[name]
        assert recipe.settings == {"model": name, "epochs": epochs, "lr": lr, **common}
        assert recipe.train is zoo.train_model and recipe.depends_on == (models.MODELS[name],)
