"""Shared test set-up: one seeded, single-threaded torch for every test."""
import os

import pytest
import torch

os.environ.setdefault("NCLIB_THREADS", "1")


@pytest.fixture(autouse=True)
def _seeded():
    import nclib

    nclib.setup(seed=0, device="cpu")
    yield


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty cache folder, so a test can break files without touching the real cache."""
    monkeypatch.setenv("NCLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def tiny_loaders():
    """Loaders over 400 bundled digits: enough to see learning, fast to train."""
    from nclib import data

    X, y = data.load_mnist()
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(y), generator=g)[:600]
    parts = data.split(X[idx], y[idx], fractions=(0.67, 0.0, 0.33), seed=0)
    parts = data.Splits(parts.train, parts.test, parts.test)
    return data.loaders(parts, batch_size=32)


def pytest_collection_modifyitems(session, config, items):
    """The browser tests run last (a stable sort keeps every other order): by then the
    notebooks' nbval runs have trained the zoo models the lectures load, so the browser
    times the lectures, not a cold cache's training."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_browser.py"))
