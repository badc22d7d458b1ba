"""Fixed, stratified, seeded splits; DataLoaders; subsets and shifted copies of digits."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from nclib.data.bundled import load

__all__ = ["Splits", "Loaders", "split", "loaders", "stratified_subset", "Shifted", "shifted_copy"]


class Splits(NamedTuple):
    """Train, validation and test parts, each an `(X, y)` pair."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


class Loaders(NamedTuple):
    train: DataLoader
    val: DataLoader
    test: DataLoader


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


def stratified_subset(parts: Splits, n_train: int, seed: int = 0) -> Splits:
    """`parts` with the training part cut to `n_train` samples, as many of every class.

    Validation and test stay as they are, so a model trained on fewer digits is still
    judged on the digits every chapter uses. `seed` chooses which training samples stay.

    Example:
        >>> small = stratified_subset(split(*load("mnist")), 1000)  # 100 of each digit
    """
    n = len(parts.train[1])
    if isinstance(n_train, bool) or not isinstance(n_train, int) or not 1 <= n_train <= n:
        raise ValueError(f"n_train={n_train!r}: expected an integer from 1 to {n} (the "
                         "training samples there are)")
    kept = split(*parts.train, fractions=(n_train / n, 1 - n_train / n, 0.0), seed=seed).train
    return Splits(kept, parts.val, parts.test)


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


def shifted_copy(loader, max_shift: int = 2, seed: int = 0, batch_size: int = 500) -> DataLoader:
    """A fixed copy of `loader`'s images, each moved by up to `max_shift` pixels.

    Made once (with `Shifted`), so every model is tested on the same shifted images.
    """
    x, y = zip(*Shifted(loader, max_shift, seed))
    return DataLoader(TensorDataset(torch.cat(x), torch.cat(y)), batch_size=batch_size)
