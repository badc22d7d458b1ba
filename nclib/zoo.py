"""Trained models, trained once on this machine and cached.

Chapters start from trained models. `trained(name)` trains the named model on the bundled
MNIST digits with a fixed recipe the first time (seconds on a laptop CPU), saves the
weights in ``cache_dir()/zoo``, and loads them afterwards in well under a second.

The cache key hashes the recipe, the model class's source code and nclib's version, so a
changed recipe or model never loads stale weights. A corrupt cache file is retrained.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from nclib import __version__
from nclib.data import atomic_write, cache_dir, loaders
from nclib.models import MODELS, create
from nclib.train import evaluate, fit

__all__ = ["Recipe", "RECIPES", "trained", "info", "cache_path", "clear"]


@dataclass(frozen=True)
class Recipe:
    """How a zoo model is trained: fixed, so every machine gets the same network."""

    model: str
    epochs: int
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    batch_size: int = 64
    dataset: str = "mnist"
    seed: int = 0
    model_kwargs: dict = field(default_factory=dict)
    description: str = ""


RECIPES: dict[str, Recipe] = {
    "lenet300": Recipe("lenet300", epochs=20, lr=1e-3, description="LeNet-300-100, Adam 1e-3, 20 epochs"),
    "lenet5": Recipe("lenet5", epochs=10, lr=1e-3, description="LeNet-5, Adam 1e-3, 10 epochs"),
    "vgg_small": Recipe("vgg_small", epochs=8, lr=2e-3, description="SmallVGG with BN, Adam 2e-3, 8 epochs"),
    "resnet_small": Recipe("resnet_small", epochs=8, lr=2e-3, description="SmallResNet, Adam 2e-3, 8 epochs"),
}


def _key(recipe: Recipe) -> str:
    source = inspect.getsource(MODELS[recipe.model])
    blob = json.dumps({"recipe": asdict(recipe), "source": source, "nclib": __version__},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cache_path(name: str) -> Path:
    """Where `trained(name)` keeps its weights (the file name carries the cache key)."""
    recipe = _recipe(name)
    return cache_dir() / "zoo" / f"{name}-{_key(recipe)}.pt"


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"name={name!r}: expected one of {', '.join(RECIPES)}")
    return RECIPES[name]


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


def _load(path: Path, name: str) -> tuple[nn.Module, dict] | None:
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = create(_recipe(name).model, **_recipe(name).model_kwargs)
        model.load_state_dict(blob["state_dict"])
        return model, dict(blob["info"])
    except Exception as e:  # corrupt, truncated or foreign file: train again
        warnings.warn(f"zoo: cached weights {path} could not be read ({type(e).__name__}); "
                      "retraining")
        return None


def _train(name: str, progress: bool) -> tuple[nn.Module, dict]:
    recipe = _recipe(name)
    torch.manual_seed(recipe.seed)
    model = create(recipe.model, **recipe.model_kwargs)
    data = loaders(recipe.dataset, batch_size=recipe.batch_size, seed=recipe.seed)
    t0 = time.perf_counter()
    # Training always runs on the CPU so the weights are the same wherever they were made.
    history = fit(model, data.train, data.val, epochs=recipe.epochs, lr=recipe.lr,
                  optimizer=recipe.optimizer, weight_decay=recipe.weight_decay, device="cpu",
                  progress=progress, desc=f"zoo: training {name}")
    seconds = time.perf_counter() - t0
    info = {"name": name, "recipe": asdict(recipe), "key": _key(recipe),
            "test_accuracy": evaluate(model, data.test, device="cpu"),
            "val_accuracy": history.val_acc[-1], "train_seconds": round(seconds, 2),
            "threads": torch.get_num_threads(), "torch": str(torch.__version__),
            "nclib": __version__}
    return model, info


def trained(name: str, retrain: bool = False, progress: bool = True) -> nn.Module:
    """The named model, trained with its recipe (see `RECIPES`), in eval mode on the CPU.

    The first call trains and caches it; later calls load the cache. `info(name)` tells how
    it was trained and what it scored.
    """
    path = cache_path(name)
    loaded = None if retrain else _load(path, name)
    if loaded is None:
        with _lock(path):
            loaded = None if retrain else _load(path, name)  # another process may have finished
            if loaded is None:
                model, meta = _train(name, progress)
                atomic_write(path, lambda tmp: torch.save(
                    {"state_dict": model.state_dict(), "info": meta}, tmp))
                loaded = model, meta
    model, _ = loaded
    return model.eval()


def info(name: str) -> dict:
    """How the cached model was trained and its accuracy (trains it first if needed)."""
    path = cache_path(name)
    loaded = _load(path, name)
    if loaded is None:
        trained(name, progress=False)
        loaded = _load(path, name)
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
