"""Chapter 07: what the lecture measures at each step of the pipeline, and across chapters.

`stages()` takes LeNet-5 through the capstone's pipeline with the zoo's models: the dense
LeNet-5, the student distilled from SmallVGG, the student pruned and fine-tuned
(``distil-prune``, seed 0, from `order`), its weights shared at `BITS` bits (fixed-width
labels in the file) and the same Huffman-coded. `measure_stages` writes each stage's file
with `save_compressed`, loads it back and measures what the grader measures: accuracy on
the test digits, bytes on disk, MACs (and how many of them multiply a nonzero weight) and
batch-64 latency on one thread, every model timed in turns with the others.

`Point` and `front` hold the accuracy-vs-bytes plane of every chapter's results (the
lecture gathers them: chapters do not import each other).
"""
from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nclib import measure, train, zoo
from nclib.chapters.capstone.experiments.order import dense_name, order_name
from nclib.nas.table import pareto_front
from nclib.quant import compressed, kmeans

__all__ = ["BITS", "DENSE", "Stage", "StageResult", "stages", "shared", "nonzero_macs", "measure_stages",
           "file_bytes", "Point", "front"]

BITS = 4  # label width of every layer: 16 shared values
DENSE = "lenet5"


@dataclass(frozen=True)
class Stage:
    name: str
    model: nn.Module
    coding: str = "fixed"  # how save_compressed codes the labels and gaps


@dataclass(frozen=True)
class StageResult:
    name: str
    accuracy: float  # fraction of the test digits
    bytes: int  # the file on disk
    macs: int  # every multiply-accumulate of the dense layers
    nonzero_macs: int  # those with a nonzero weight (what sparse kernels could skip to)
    latency_ms: float  # batch 64, one thread, median


def shared(model: nn.Module, bits: int = BITS) -> nn.Module:
    """A copy of `model` with every layer's weights shared by k-means (`bits` per label)."""
    return kmeans.share_weights(copy.deepcopy(model), bits).eval()


def stages(seed: int = 0) -> list[Stage]:
    """The pipeline's stages, from the zoo (trained the first time)."""
    dense = zoo.trained(DENSE, progress=False)
    student = zoo.trained(dense_name(True, seed), progress=False)
    pruned = zoo.trained(order_name("distil-prune", seed), progress=False)
    coded = shared(pruned)
    return [Stage("LeNet-5, dense", dense), Stage("distilled student", student),
            Stage("pruned, fine-tuned", pruned), Stage(f"weights shared ({BITS} bits)", coded),
            Stage("Huffman-coded", coded, "huffman")]


def nonzero_macs(model: nn.Module, input_shape=(1, 28, 28)) -> int:
    """MACs of the Conv2d and Linear layers counted only where the weight is nonzero."""
    total, hooks = 0, []

    def count(layer, inputs, out):
        nonlocal total
        w = layer.weight.detach()
        if isinstance(layer, nn.Conv2d):  # each output position uses every nonzero weight of its group
            total += int(torch.count_nonzero(w)) * out.shape[-1] * out.shape[-2]
        else:
            total += int(torch.count_nonzero(w))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(count))
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in hooks:
            h.remove()
    return total


def file_bytes(model: nn.Module, coding: str = "huffman") -> int:
    """The size of the file `save_compressed(model, ..., coding=coding)` writes."""
    return compressed.compressed_bytes(model, coding) + compressed.FRAMING


def measure_stages(stage_list: list[Stage], test, folder: str | Path | None = None,
                   rounds: int = 5, repeats: int = 10) -> list[StageResult]:
    """Write, reload and measure every stage (see the module docstring); `test` is a loader."""
    x64 = next(iter(test))[0][:64]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(folder or tmp)
        loaded, sizes = [], []
        for i, st in enumerate(stage_list):
            path = folder / f"stage{i}.nclib"
            sizes.append(compressed.save_compressed(st.model, path, coding=st.coding, overwrite=True))
            loaded.append(compressed.load_compressed(path).eval())
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            lat = measure.best_latencies(loaded, inputs=x64, rounds=rounds, repeats=repeats)
        finally:
            torch.set_num_threads(threads)
    return [StageResult(st.name, train.evaluate(m, test), size,
                        measure.count_macs(m, (1, 28, 28)).total, nonzero_macs(m),
                        t.median_ms)
            for st, m, size, t in zip(stage_list, loaded, sizes, lat)]


@dataclass(frozen=True)
class Point:
    """One result on the accuracy-vs-bytes plane."""
    chapter: str
    label: str
    accuracy: float  # fraction of the test digits
    bytes: int


def front(points: list[Point]) -> list[Point]:
    """The points no other point beats on both (fewer bytes and higher accuracy), by bytes."""
    idx = pareto_front(torch.tensor([float(p.bytes) for p in points]),
                       torch.tensor([p.accuracy for p in points]))
    return [points[i] for i in idx]
