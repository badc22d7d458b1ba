"""nclib.data: bundled MNIST and digits, the cache, real-format loaders, splits."""
import gzip
import pickle
import struct
import time

import numpy as np
import pytest
import torch

from nclib import data


def test_load_mnist_shape_range_and_balance():
    """5,000 images of 1x28x28 in [0, 1], labels 0-9 with 500 of each."""
    X, y = data.load_mnist()
    assert X.shape == (5000, 1, 28, 28) and X.dtype == torch.float32
    assert X.min() >= 0 and X.max() <= 1 and X.max() > 0.99
    assert y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [500] * 10


def test_load_mnist_cache_is_used_and_faster(tmp_cache):
    """The second call reads the .npz cache and is at least 5x faster than parsing."""
    t0 = time.perf_counter()
    X1, y1 = data.load_mnist()
    first = time.perf_counter() - t0
    assert (tmp_cache / "mnist5k.npz").exists()
    t0 = time.perf_counter()
    X2, y2 = data.load_mnist()
    second = time.perf_counter() - t0
    assert torch.equal(X1, X2) and torch.equal(y1, y2)
    assert second * 5 < first


@pytest.mark.parametrize("content", [b"", b"garbage, not a zip", None])
def test_corrupt_cache_is_rebuilt(tmp_cache, content):
    """A truncated, garbage or wrong-shaped cache file is rebuilt, not fatal."""
    data.load_mnist()
    path = tmp_cache / "mnist5k.npz"
    if content is None:
        np.savez(path, images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros(3, np.int64))
    else:
        path.write_bytes(content)
    X, y = data.load_mnist()
    assert X.shape == (5000, 1, 28, 28) and torch.bincount(y).tolist() == [500] * 10


def test_load_digits():
    """scikit-learn's digits come as (1797, 1, 8, 8) in [0, 1]."""
    X, y = data.load_digits()
    assert X.shape == (1797, 1, 8, 8) and X.max() == 1 and X.min() == 0
    assert set(y.tolist()) == set(range(10))


def test_split_is_stratified_disjoint_and_seeded():
    """Splits keep 350/50/100 of each digit, share no sample, and repeat with the seed."""
    X, y = data.load_mnist()
    s = data.split(X, y, seed=0)
    assert [len(p[1]) for p in s] == [3500, 500, 1000]
    assert torch.bincount(s.test[1]).tolist() == [100] * 10
    flat = [p[0].flatten(1) for p in s]
    assert not (flat[0][:50, None] == flat[2][None]).all(-1).any()
    again = data.split(X, y, seed=0)
    other = data.split(X, y, seed=1)
    assert torch.equal(s.test[0], again.test[0])
    assert not torch.equal(s.test[0], other.test[0])


def test_loaders_batches():
    """loaders() gives shuffled training batches of the asked size, seeded."""
    L = data.loaders("digits", batch_size=32, seed=0)
    x, y = next(iter(L.train))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,)
    x2, _ = next(iter(data.loaders("digits", batch_size=32, seed=0).train))
    assert torch.equal(x, x2)


@pytest.mark.parametrize("call, match", [
    (lambda: data.load("imagenet"), "name='imagenet'"),
    (lambda: data.load_torchvision("svhn", "."), "name='svhn'"),
    (lambda: data.loaders("digits", batch_size=0), "batch_size=0"),
    (lambda: data.split(torch.zeros(4, 1), torch.zeros(4), fractions=(0.5, 0.6, 0.1)), "fractions"),
])
def test_bad_input_names_argument(call, match):
    """Unknown names and bad sizes raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=match):
        call()


def _write_idx(path, array, compress):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    opener = gzip.open if compress else open
    with opener(str(path) + (".gz" if compress else ""), "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST/raw"), ("fashionmnist", "FashionMNIST/raw")])
@pytest.mark.parametrize("compress", [False, True])
def test_load_torchvision_reads_idx_files(tmp_path, name, folder, compress):
    """MNIST-format IDX files (plain or gzipped) load with the right shapes and values."""
    raw = tmp_path / folder
    raw.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28))
    labels = np.array([0, 1, 2, 3, 4, 9])
    _write_idx(raw / "t10k-images-idx3-ubyte", images, compress)
    _write_idx(raw / "t10k-labels-idx1-ubyte", labels, compress)
    X, y = data.load_torchvision(name, tmp_path, train=False)
    assert X.shape == (6, 1, 28, 28)
    assert torch.allclose(X[:, 0] * 255, torch.tensor(images, dtype=torch.float32))
    assert y.tolist() == labels.tolist()


def test_load_torchvision_reads_cifar_batches(tmp_path):
    """CIFAR-10 python batches load as (N, 3, 32, 32) with their labels."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (4, 3 * 32 * 32), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": raw, "labels": [3, 1, 4, 1]}, f)
    X, y = data.load_torchvision("cifar10", tmp_path, train=False)
    assert X.shape == (4, 3, 32, 32) and y.tolist() == [3, 1, 4, 1]
    assert torch.allclose(X[1, 2] * 255, torch.tensor(raw[1, 2048:].reshape(32, 32), dtype=torch.float32))


def test_missing_real_dataset_names_files_and_folder(tmp_path):
    """A missing data set gives one error naming the files, the folder and how to get them."""
    with pytest.raises(FileNotFoundError) as err:
        data.load_torchvision("mnist", tmp_path)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and str(tmp_path / "MNIST" / "raw") in msg
    assert "download=True" in msg


def test_corrupt_idx_file_is_reported(tmp_path):
    """An IDX file with a bad header is named in the error."""
    raw = tmp_path / "MNIST/raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x01\x02junk")
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\x01\x02junk")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        data.load_torchvision("mnist", tmp_path)


def test_loader_seed_changes_order_not_split():
    """Different seeds shuffle differently but test on the same samples."""
    a, b = data.loaders("digits", seed=0), data.loaders("digits", seed=1)
    assert torch.equal(a.test.dataset.tensors[0], b.test.dataset.tensors[0])
    assert not torch.equal(next(iter(a.train))[0], next(iter(b.train))[0])
    c = data.loaders("digits", split_seed=1)
    assert not torch.equal(a.test.dataset.tensors[0], c.test.dataset.tensors[0])


def test_shifted_moves_images_by_at_most_max_shift():
    """Shifted batches keep labels and shapes; each image is its original moved <= 2 pixels."""
    x = torch.zeros(4, 1, 8, 8)
    x[:, 0, 4, 4] = 1.0  # one bright pixel in the middle
    loader = [(x, torch.arange(4))]
    (xs, ys), = list(data.Shifted(loader, max_shift=2, seed=0))
    assert xs.shape == x.shape and torch.equal(ys, torch.arange(4))
    pos = [divmod(int(img.argmax()), 8) for img in xs[:, 0]]
    assert all(abs(r - 4) <= 2 and abs(c - 4) <= 2 for r, c in pos)
    assert len(set(pos)) > 1 and xs.sum() == 4
    with pytest.raises(ValueError, match="max_shift=-1"):
        data.Shifted(loader, max_shift=-1)


def test_stratified_subset_keeps_classes_balanced_and_val_test_unchanged():
    """stratified_subset cuts training to n samples, n/10 a digit, drawn from the training part; val and test are untouched."""
    parts = data.split(*data.load_mnist(), seed=0)
    small = data.stratified_subset(parts, 1000)
    assert len(small.train[1]) == 1000
    assert torch.equal(torch.bincount(small.train[1], minlength=10), torch.full((10,), 100))
    assert small.val is parts.val and small.test is parts.test
    train_rows = {tuple(r) for r in parts.train[0].flatten(1)[:, ::7].tolist()}
    assert all(tuple(r) in train_rows for r in small.train[0][:50].flatten(1)[:, ::7].tolist())
    other = data.stratified_subset(parts, 1000, seed=1)
    assert not torch.equal(other.train[0], small.train[0])
    for bad in (0, 3501, 2.5, True):
        with pytest.raises(ValueError, match=f"n_train={bad!r}.*1 to 3500"):
            data.stratified_subset(parts, bad)


def test_shifted_copy_is_fixed_and_moves_digits():
    """Shifted test digits are the same on every call, mostly moved, with their ink and labels kept."""
    test = data.loaders(data.stratified_subset(data.split(*data.load_mnist()), 200)).test
    a = torch.cat([x for x, _ in data.shifted_copy(test)])
    b = torch.cat([x for x, _ in data.shifted_copy(test)])
    plain = torch.cat([x for x, _ in test])
    assert torch.equal(torch.cat([y for _, y in data.shifted_copy(test)]), torch.cat([y for _, y in test]))
    assert torch.equal(a, b) and a.shape == plain.shape
    moved = (a != plain).flatten(1).any(1).float().mean()
    assert moved > 0.8  # 24 of the 25 shifts move a digit
    # MNIST digits sit near the middle: a 2-pixel shift pushes little ink off the edge
    kept = a.sum((1, 2, 3)) / plain.sum((1, 2, 3))
    assert kept.max() <= 1 + 1e-5 and kept.mean() > 0.99 and kept.min() > 0.9
