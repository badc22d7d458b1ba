"""Full data sets read from their original files: MNIST, FashionMNIST and CIFAR-10.

The files are read here, in their published formats (IDX for the MNISTs, pickled batches
for CIFAR-10); torchvision is used only when you ask it to download them.
"""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import torch

__all__ = ["TORCHVISION_DATASETS", "read_idx", "load_torchvision"]

TORCHVISION_DATASETS = ("mnist", "fashionmnist", "cifar10")

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
