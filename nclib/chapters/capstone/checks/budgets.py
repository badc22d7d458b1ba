"""Chapter 07 checks: the capstone's three budgets, graded from the file handed in.

"Hand in a model file of at most MAX_BYTES bytes, whose latency is at most MAX_LATENCY_RATIO
times the dense LeNet-5's, with test accuracy at least MIN_ACCURACY."

Each task loads `submission.nclib` with `nclib.quant.load_compressed`, which reads data only
(JSON and numbers, layers from a fixed table), never a pickle: a file that is not an nclib
model, or is altered, is refused before anything in it is used, so a file cannot run code
on load. Under `nclib grade` the tasks run in the grader's own process on the file the
notebook wrote; in a notebook, ``check.capstone.bytes_budget()`` grades the file there.

* bytes: the file's size on disk.
* latency: batch 64 of test digits, one thread, median of repeats, the rounds taking turns
  with the dense LeNet-5 (`nclib.measure.best_latencies`) in the same process: a ratio, so
  the machine does not matter.
* accuracy: on the 1,000 bundled test digits, or on ``--test-data FILE``, an ``.npz`` with
  ``x`` (N, 1, 28, 28) and ``y`` (N,) (read with ``allow_pickle=False``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nclib import data, measure, zoo
from nclib.course.filetasks import Measured, failure, file_task
from nclib.quant import load_compressed

__all__ = ["bytes_budget", "latency_budget", "accuracy_budget", "load_submission", "load_test_data",
           "FILE", "DENSE", "MAX_BYTES", "MAX_LATENCY_RATIO", "MIN_ACCURACY", "MEASURES"]

FILE = "submission.nclib"
DENSE = "lenet5"  # the zoo's LeNet-5: the model to compress, and the latency reference
MEASURES = {"accuracy": "max", "bytes": "min", "latency_ratio": "min"}  # the leaderboard's order
# The budgets, from a pipeline measured here (lecture 07 will carry it): the zoo LeNet-5 is
# 96.9% on the test digits and 1,724,936 bytes as a file (ratio 1.0, by definition); a
# LeNet of 8/16 filters and 64 units trained 8 epochs (96.6%), magnitude-pruned (conv2 60%,
# fc1 80%, fc2 50%), fine-tuned 2 epochs, masks baked, 4-bit weight sharing and Huffman
# coding: 5,594 bytes, 96.8%, 0.25x the dense latency at batch 64. The dense model fails
# the bytes budget 172-fold and the latency budget; the pipeline meets all three with margin.
MAX_BYTES = 10_000
MAX_LATENCY_RATIO = 0.5
MIN_ACCURACY = 0.96


def load_submission(path: Path) -> torch.nn.Module:
    """The handed-in model, or a Failure that says why it cannot be used."""
    try:
        model = load_compressed(path)
    except ValueError as e:
        raise failure(f"{Path(path).name} is not a usable nclib model file: {e}. Hint: write it "
                      "with nclib.quant.save_compressed(model, 'submission.nclib').") from None
    return model.eval()


def load_test_data(context: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y): the instructor's held-out digits (context["test_data"]) or the bundled test set."""
    path = (context or {}).get("test_data")
    if not path:
        test = data.loaders("mnist").test
        return torch.cat([x for x, _ in test]), torch.cat([y for _, y in test])
    with np.load(path, allow_pickle=False) as f:
        if "x" not in f or "y" not in f:
            raise ValueError(f"--test-data {path}: expected arrays x and y, found {list(f)}")
        x, y = torch.as_tensor(f["x"]).float(), torch.as_tensor(f["y"]).long()
    if x.ndim != 4 or x.shape[1:] != (1, 28, 28) or y.shape != (x.shape[0],):
        raise ValueError(f"--test-data {path}: expected x (N, 1, 28, 28) and y (N,), got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    return x, y


def _logits(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    if not torch.is_tensor(out) or out.shape != (x.shape[0], 10):
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise failure(f"the model maps {tuple(x.shape)} digits to {shape}, not to (N, 10) logits")
    return out


@file_task("capstone", points=1, file=FILE, measures=MEASURES,
           hint="Lecture 07: weight sharing and Huffman coding shrink the file most.")
def bytes_budget(path: Path, context: dict):
    """The file handed in is at most MAX_BYTES bytes on disk (and is an nclib model)."""
    size = path.stat().st_size
    load_submission(path)
    if size > MAX_BYTES:
        raise failure(f"{path.name} is {size:,} bytes on disk, over the budget of {MAX_BYTES:,}. "
                      "Hint: prune, share weights and Huffman-code before save_compressed.", bytes=size)
    return Measured(f"{size:,} bytes on disk (budget {MAX_BYTES:,})", bytes=size)


@file_task("capstone", points=1, file=FILE, measures=MEASURES,
           hint="Lecture 07: only a smaller architecture (fewer channels) runs faster.")
def latency_budget(path: Path, context: dict):
    """Batch-64 latency at most MAX_LATENCY_RATIO x the dense LeNet-5's, in this process."""
    model = load_submission(path)
    x = load_test_data({})[0][:64]
    _logits(model, x)
    dense = zoo.trained(DENSE, progress=False).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        lat = measure.best_latencies([dense, model], inputs=x, rounds=5, repeats=10)
    finally:
        torch.set_num_threads(threads)
    ratio = lat[1].median_ms / lat[0].median_ms
    measured = (f"{lat[1].median_ms:.2f} ms for 64 digits, {ratio:.2f}x the dense LeNet-5's "
                f"{lat[0].median_ms:.2f} ms (budget {MAX_LATENCY_RATIO:g}x; one thread, median)")
    if ratio > MAX_LATENCY_RATIO:
        raise failure(f"{measured}: too slow. Hint: sparse weights and shared values are still "
                      "computed densely; fewer filters and units make it faster.", latency_ratio=ratio)
    return Measured(measured, latency_ratio=ratio)


@file_task("capstone", points=1, file=FILE, measures=MEASURES,
           hint="Lecture 07: fine-tune (or distil) after each compression step.")
def accuracy_budget(path: Path, context: dict):
    """Test accuracy at least MIN_ACCURACY (held-out digits when the grader is given them)."""
    model = load_submission(path)
    x, y = load_test_data(context)
    accuracy = (_logits(model, x).argmax(1) == y).float().mean().item()
    where = "the held-out digits" if (context or {}).get("test_data") else "the test digits"
    measured = f"{accuracy:.1%} on {len(y):,} of {where} (bar {MIN_ACCURACY:.0%})"
    if accuracy < MIN_ACCURACY:
        raise failure(f"{measured}: below the bar. Hint: fine-tune after pruning and sharing.",
                      accuracy=accuracy)
    return Measured(measured, accuracy=accuracy)
