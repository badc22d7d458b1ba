"""Trained models: a registry of recipes, each trained once on this machine and cached.

Chapters start from trained models. A *recipe* says how to make one: a `train` function,
the `settings` it is called with, and a `build` function that makes the same architecture
untrained (to load cached weights into). `trained(name)` trains the model the first time
(seconds on a laptop CPU), saves its weights in ``cache_dir()/zoo``, and loads them
afterwards in well under a second.

The four lecture models ("lenet300", "lenet5", "vgg_small", "resnet_small") are registered
below; a chapter registers its own in its ``__init__.py``, where `nclib zoo list` finds it::

    import torch
    from torch import nn
    from nclib import data, train, zoo

    def build(hidden, **_):  # gets every setting, uses what it needs
        return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),
                             nn.Linear(hidden, 10))

    def fit_mlp(hidden, epochs, progress=True):
        torch.manual_seed(0)
        model, L = build(hidden), data.loaders("mnist", seed=0)
        train.fit(model, L.train, epochs=epochs, device="cpu", progress=progress)
        return model, {"test_accuracy": train.evaluate(model, L.test, device="cpu")}

    zoo.register("mlp100", train=fit_mlp, build=build, settings={"hidden": 100, "epochs": 2},
                 description="784-100-10 MLP, Adam 1e-3, 2 epochs")
    net = zoo.trained("mlp100")  # trained the first time, loaded from the cache afterwards

The cache key hashes the settings, the source code of `train`, `build` and whatever the
recipe says it `depends_on` (the built-ins: their model class), and nclib's version, so a
changed recipe or model never loads stale weights. A corrupt cache file is retrained.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from nclib import __version__
from nclib.data import Splits, atomic_write, cache_dir, loaders
from nclib.models import MODELS, create
from nclib.train import evaluate, fit

__all__ = ["Recipe", "RECIPES", "register", "trained", "info", "cache_path", "clear",
           "build_model", "train_model", "train_on"]


@dataclass(frozen=True)
class Recipe:
    """How a zoo model is made: fixed, so every machine gets the same network."""

    name: str
    train: Callable[..., nn.Module | tuple[nn.Module, dict]]
    build: Callable[..., nn.Module]
    settings: dict
    description: str
    depends_on: tuple
    key: str  # the hash that names the cache file


RECIPES: dict[str, Recipe] = {}


def register(name: str, *, train: Callable, build: Callable, settings: dict,
             description: str = "", depends_on: tuple = (), replace: bool = False) -> Recipe:
    """Register a recipe as `trained(name)`.

    Args:
        train: ``train(**settings, progress=bool)`` returns the trained model, or
            ``(model, info)`` with `info` a dict of plain numbers and strings (accuracies)
            that `info(name)` reports. It should train on the CPU and seed itself, so that
            every machine gets the same weights (the zoo seeds torch with 0 before calling
            it, for a recipe that forgets).
        build: ``build(**settings)`` returns the same architecture, untrained.
        settings: JSON-like values (numbers, strings, lists, dicts); part of the cache key.
        depends_on: further classes or functions whose source the weights depend on (a model
            class defined elsewhere); their source is part of the cache key.
        replace: allow replacing a different recipe registered under the same name
            (registering the very same recipe again, as a module reload does, is allowed).
    """
    try:
        json.dumps(settings, sort_keys=True)
    except TypeError as e:
        raise ValueError(f"zoo.register({name!r}): settings must be JSON-like ({e})") from None
    settings = copy.deepcopy(dict(settings))
    depends_on = tuple(depends_on)
    key = _key(name, settings, (train, build, *depends_on))
    old = RECIPES.get(name)
    if old is not None and old.key != key and not replace:
        raise ValueError(f"zoo.register({name!r}): another recipe is registered under this "
                         f"name (its train is {old.train.__module__}.{old.train.__qualname__}); "
                         "choose another name, or pass replace=True")
    RECIPES[name] = Recipe(name, train, build, settings, description, depends_on, key)
    return RECIPES[name]


def _key(name: str, settings: dict, code: tuple) -> str:
    sources = []
    for obj in code:
        try:
            sources.append(inspect.getsource(obj))
        except (OSError, TypeError):
            raise ValueError(f"zoo.register({name!r}): the source of {obj!r} cannot be read, "
                             "so it cannot be part of the cache key; define it in a file "
                             "or a notebook cell") from None
    blob = json.dumps({"settings": settings, "sources": sources, "nclib": __version__},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ---------------------------------------------------------------- the lecture's models
def build_model(model: str, model_kwargs: dict, **_) -> nn.Module:
    """``nclib.models.create(model, **model_kwargs)``: the untrained architecture."""
    return create(model, **model_kwargs)


def train_model(model: str, epochs: int, lr: float, optimizer: str, weight_decay: float,
                batch_size: int, dataset: str, seed: int, model_kwargs: dict,
                progress: bool = True) -> tuple[nn.Module, dict]:
    """Train a `nclib.models` classifier on a bundled data set with `nclib.train.fit`."""
    torch.manual_seed(seed)
    net = create(model, **model_kwargs)
    data = loaders(dataset, batch_size=batch_size, seed=seed)
    # Training always runs on the CPU so the weights are the same wherever they were made.
    history = fit(net, data.train, data.val, epochs=epochs, lr=lr, optimizer=optimizer,
                  weight_decay=weight_decay, device="cpu", progress=progress,
                  desc=f"zoo: training {model}")
    return net, {"test_accuracy": evaluate(net, data.test, device="cpu"),
                 "val_accuracy": history.val_acc[-1]}


def _register_lecture_model(model: str, epochs: int, lr: float, description: str) -> None:
    settings = {"model": model, "epochs": epochs, "lr": lr, "optimizer": "adam",
                "weight_decay": 0.0, "batch_size": 64, "dataset": "mnist", "seed": 0,
                "model_kwargs": {}}
    register(model, train=train_model, build=build_model, settings=settings,
             description=description, depends_on=(MODELS[model],))


def train_on(name: str, parts: Splits, device: str | torch.device | None = "cpu",
             progress: bool = False) -> nn.Module:
    """A lecture model ("lenet300", ...) trained by its recipe's settings on `parts`, not cached.

    What `train_model` does with the bundled digits, on the data you give (full MNIST, say)
    and on `device` (None: `nclib.setup`'s); the result is returned on the CPU in eval mode.
    (`train_model`'s source is part of the cache key, so it stays as it is, not calling this.)
    """
    recipe = _recipe(name)
    if recipe.train is not train_model:
        raise ValueError(f"name={name!r}: expected a lecture model trained by zoo.train_model "
                         f"({', '.join(n for n, r in RECIPES.items() if r.train is train_model)})")
    s = recipe.settings
    with torch.random.fork_rng(devices=[]):  # as `trained`: the caller's random numbers stay
        torch.manual_seed(s["seed"])
        net = create(s["model"], **s["model_kwargs"])
        data = loaders(parts, batch_size=s["batch_size"], seed=s["seed"])
        fit(net, data.train, data.val, epochs=s["epochs"], lr=s["lr"], optimizer=s["optimizer"],
            weight_decay=s["weight_decay"], device=device, progress=progress,
            desc=f"training {s['model']}")
    return net.to("cpu").eval()


_register_lecture_model("lenet300", 20, 1e-3, "LeNet-300-100, Adam 1e-3, 20 epochs")
_register_lecture_model("lenet5", 10, 1e-3, "LeNet-5, Adam 1e-3, 10 epochs")
_register_lecture_model("vgg_small", 8, 2e-3, "SmallVGG with BN, Adam 2e-3, 8 epochs")
_register_lecture_model("resnet_small", 8, 2e-3, "SmallResNet, Adam 2e-3, 8 epochs")


# ---------------------------------------------------------------- the cache
def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"name={name!r}: expected one of {', '.join(RECIPES)}")
    return RECIPES[name]


def cache_path(name: str) -> Path:
    """Where `trained(name)` keeps its weights (the file name carries the cache key)."""
    return cache_dir() / "zoo" / f"{name}-{_recipe(name).key}.pt"


@contextlib.contextmanager
def _lock(path: Path):
    """Only one process trains a given model at a time (others wait, then load)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the atomic write still keeps files whole
        yield
        return
    with open(path.with_suffix(".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _load(path: Path, recipe: Recipe) -> tuple[nn.Module, dict] | None:
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return _rebuild(recipe, blob["state_dict"]), dict(blob["info"])
    except Exception as e:  # corrupt, truncated or foreign file: train again
        warnings.warn(f"zoo: cached weights {path} could not be read ({type(e).__name__}); "
                      "retraining")
        return None


def _rebuild(recipe: Recipe, state_dict: dict) -> nn.Module:
    model = recipe.build(**recipe.settings)
    model.load_state_dict(state_dict)
    return model


def _train(recipe: Recipe, progress: bool) -> tuple[nn.Module, dict]:
    # Training draws from a forked RNG, and the model returned is rebuilt from its weights
    # as a cached one is: the caller's random numbers are the same whether it was cached.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # a recipe that does not seed itself is still repeatable
        t0 = time.perf_counter()
        out = recipe.train(**recipe.settings, progress=progress)
        seconds = time.perf_counter() - t0
    model, extra = out if isinstance(out, tuple) else (out, {})
    try:  # what is saved must load into build()'s architecture next time
        model = _rebuild(recipe, model.to("cpu").state_dict())
    except RuntimeError as e:
        raise ValueError(f"zoo: {recipe.name!r}: build() does not make the architecture "
                         f"that train() returned ({e})") from None
    meta = {**extra, "name": recipe.name, "settings": recipe.settings, "key": recipe.key,
            "train_seconds": round(seconds, 2), "threads": torch.get_num_threads(),
            "torch": str(torch.__version__), "nclib": __version__}
    try:
        json.dumps(meta)
    except TypeError as e:
        raise ValueError(f"zoo: {recipe.name!r}: train() must return an info dict of plain "
                         f"numbers and strings ({e})") from None
    return model, meta


def trained(name: str, retrain: bool = False, progress: bool = True) -> nn.Module:
    """The named model, trained with its recipe (see `RECIPES`), in eval mode on the CPU.

    The first call trains and caches it; later calls load the cache. `info(name)` tells how
    it was trained and what it scored.
    """
    recipe = _recipe(name)
    path = cache_path(name)
    loaded = None if retrain else _load(path, recipe)
    if loaded is None:
        with _lock(path):
            loaded = None if retrain else _load(path, recipe)  # another process may have finished
            if loaded is None:
                model, meta = _train(recipe, progress)
                atomic_write(path, lambda tmp: torch.save(
                    {"state_dict": model.state_dict(), "info": meta}, tmp))
                loaded = model, meta
    model, _ = loaded
    return model.eval()


def info(name: str) -> dict:
    """How the cached model was trained and its accuracy (trains it first if needed)."""
    path = cache_path(name)
    loaded = _load(path, _recipe(name))
    if loaded is None:
        trained(name, progress=False)
        loaded = _load(path, _recipe(name))
    return loaded[1]


def clear() -> int:
    """Delete every cached zoo file; returns how many were removed."""
    folder = cache_dir() / "zoo"
    n = 0
    for f in folder.glob("*"):
        if f.is_file():
            os.remove(f)
            n += 1
    return n
