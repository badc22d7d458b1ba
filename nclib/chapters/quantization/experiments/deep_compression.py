"""Chapter 03 experiments `deep-compression-lenet300` and `deep-compression-lenet5`: Han et
al., "Deep Compression" (ICLR 2016), Table 1, on the bundled digits.

The three stages of the paper, each measured as a file on disk (`nclib.quant.compressed`):

1. **Pruning**: chapter 01's models (the zoo's ``han-<net>-s<seed>``: magnitude pruning with
   retraining, the highest compression within 0.5 validation points of dense).
2. **Weight sharing with trained centroids**: k-means per layer (linear init), then one
   epoch of training the centroids alone (Eq. 3). How many bits? A search on the
   **validation** digits: every Linear layer gets the same width, lowered from 6 bits while
   the validation accuracy stays within `MAX_VAL_DROP` points (one validation digit) of
   the pruned model's; then the same for the Conv2d layers, from 8 bits. Pruning spent
   chapter 01's budget (0.5 points of dense), so sharing may cost next to nothing. Nothing
   is set to reach the paper's ratio.
3. **Huffman coding** of the labels and the relative indices (8-bit gaps for conv layers,
   5-bit for fc, as Han et al.).

Three seeds (of the pruning search and of the centroid training batches) give the mean
test accuracy and its standard error. The lecture reads the zoo recipes
``dc-<net>-s<seed>``, which run the same `deep_compress`.
"""
from __future__ import annotations

import copy
import statistics
import tempfile
from pathlib import Path

import torch
from torch import nn

from nclib import data, measure, models, train, zoo
from nclib.course import discover
from nclib.course.papers import table
from nclib.course.reproduce import Run, experiment, mean_se
from nclib.quant import compressed, kmeans
from nclib.train import evaluate

# Chapter 03 starts from chapter 01's pruned models: importing that chapter registers its
# zoo recipes (the course machinery finds it by name; no chapter imports another).
discover.chapter_part("pruning")

DATASET = "MNIST, the 5,000 bundled digits (3,500 train / 500 val / 1,000 test)"
SEEDS = (0, 1, 2)
BITS = {"Linear": (6, 5, 4, 3, 2), "Conv2d": (8, 6, 5, 4, 3)}  # widths tried, highest first
CENTROIDS = dict(epochs=1, lr=1e-4)  # Adam on the centroids only (nothing else is left to train)
MAX_VAL_DROP = 0.2  # validation points below the pruned model that a width may cost: one digit
MIN_RATE = {"lenet300": 40.0, "lenet5": 39.0}  # Han et al.'s compression, Table 1
MAX_TEST_DROP = 0.5  # points: the files' models' mean test accuracy against dense
PAPER_LABEL = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}

__all__ = ["SEEDS", "BITS", "CENTROIDS", "MAX_VAL_DROP", "MIN_RATE", "MAX_TEST_DROP", "pruned",
           "layer_kinds", "share_and_train", "deep_compress", "compressed_model", "stage_files",
           "run_deep_compression"]


def pruned(name: str, seed: int) -> nn.Module:
    """Chapter 01's pruned model (a plain model with zeros): the zoo's ``han-<name>-s<seed>``."""
    return zoo.trained(f"han-{name}-s{seed}", progress=False)


def layer_kinds(model: nn.Module) -> dict[str, str]:
    """{layer name: "Conv2d" or "Linear"} for the layers weight sharing applies to."""
    return {n: type(m).__name__ for n, m in model.named_modules() if type(m) in (nn.Conv2d, nn.Linear)}


def share_and_train(model: nn.Module, bits: dict[str, int], loaders: data.Loaders, seed: int
                    ) -> nn.Module:
    """A copy of `model` with each layer kind's width in `bits` ({"Linear": 5, ...}), its
    centroids trained for `CENTROIDS` epochs; labels never change."""
    model = copy.deepcopy(model)
    kmeans.share_weights(model, {n: bits[k] for n, k in layer_kinds(model).items()})
    torch.manual_seed(seed)
    train.fit(model, loaders.train, progress=False, **CENTROIDS)
    return model


def deep_compress(name: str, seed: int, max_drop: float = MAX_VAL_DROP,
                  widths: dict[str, tuple[int, ...]] = BITS) -> tuple[nn.Module, dict]:
    """The bits search for one seed: (the shared model at the chosen widths, info).

    `widths` lists the widths to try per layer kind, highest first. info: "bits" {kind:
    width}, "trials" (every width tried: bits, val %, kept), "pruned_val" (%): a width is
    kept while val >= pruned_val - max_drop, and the search of a kind stops at the first
    width that is not."""
    L = data.loaders("mnist", seed=seed)
    start = pruned(name, seed)
    pruned_val = 100 * evaluate(start, L.val)
    kinds = sorted(set(layer_kinds(start).values()), key=["Linear", "Conv2d"].index)
    bits = {k: widths[k][0] for k in kinds}
    best = share_and_train(start, bits, L, seed)
    trials = [{"kind": "all", "bits": dict(bits), "val": 100 * evaluate(best, L.val), "kept": True}]
    for kind in kinds:
        for width in widths[kind][1:]:
            trial = {**bits, kind: width}
            model = share_and_train(start, trial, L, seed)
            val = 100 * evaluate(model, L.val)
            ok = val >= pruned_val - max_drop - 1e-9
            trials.append({"kind": kind, "bits": dict(trial), "val": val, "kept": ok})
            if not ok:
                break
            bits, best = trial, model
    return best, {"bits": bits, "trials": trials, "pruned_val": pruned_val}


def recipe_name(name: str, seed: int) -> str:
    """The zoo name of one seed's compressed model: 'dc-lenet300-s0'."""
    return f"dc-{name}-s{seed}"


def _build(name: str, **_) -> nn.Module:
    return models.create(name)


def _fit(name: str, seed: int, pruned_key: str, bits: dict, centroids: dict, max_drop: float,
         progress: bool = True):
    """The zoo keeps the shared weights as a plain model (weight = centroids[labels]);
    `compressed_model` turns it back into labels and centroids."""
    model, info = deep_compress(name, seed, max_drop)
    return kmeans.unshare(model), info


for _name in PAPER_LABEL:
    for _seed in SEEDS:
        zoo.register(recipe_name(_name, _seed), train=_fit, build=_build,
                     settings=dict(name=_name, seed=_seed,
                                   pruned_key=zoo.RECIPES[f"han-{_name}-s{_seed}"].key,
                                   bits={k: list(v) for k, v in BITS.items()}, centroids=CENTROIDS,
                                   max_drop=MAX_VAL_DROP),
                     depends_on=(deep_compress, share_and_train),
                     description=f"chapter 03: {PAPER_LABEL[_name]} pruned, weight-shared "
                     f"(bits chosen on val), seed {_seed}")


def compressed_model(name: str, seed: int) -> tuple[nn.Module, dict]:
    """The zoo's compressed model of one seed, weight-shared again, and its info."""
    model = zoo.trained(recipe_name(name, seed), progress=False)
    info = zoo.info(recipe_name(name, seed))
    for layer, kind in layer_kinds(model).items():
        weight = model.get_submodule(layer).weight.detach()
        centroids, labels = compressed.codebook_from_values(weight, info["bits"][kind])
        kmeans.attach_codebook(model.get_submodule(layer), centroids, labels, name=layer)
    return model, info


def stage_files(dense: nn.Module, pruned_model: nn.Module, shared: nn.Module, folder: Path
                ) -> dict[str, int]:
    """Bytes on disk of each stage's file: dense, pruned (fp32 values and fixed-width
    relative indices), + weight sharing (fixed-width labels), + Huffman."""
    files = {"dense fp32": (dense, "fixed"), "pruned, relative indices": (pruned_model, "fixed"),
             "+ weight sharing": (shared, "fixed"), "+ Huffman coding": (shared, "huffman")}
    return {stage: compressed.save_compressed(m, folder / f"{i}.nclib", coding=how, overwrite=True)
            for i, (stage, (m, how)) in enumerate(files.items())}


def _fmt(values: list[float]) -> str:
    mean, se = mean_se(values)
    return f"{mean:.2f}% ± {se:.2f}"


def run_deep_compression(run: Run, name: str, seeds: tuple[int, ...] = SEEDS, compress=deep_compress
                         ) -> dict:
    """Every seed's pipeline, rows per stage beside the paper's, and the two claims."""
    L = data.loaders("mnist")
    paper, label = table("deep-compression"), PAPER_LABEL[name]
    dense = zoo.trained(name, progress=False)
    dense_test = 100 * evaluate(dense, L.test)
    dense_bytes = measure.storage_bytes(dense, "dense_fp32")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            shared, info = compress(name, seed)
            sizes = stage_files(dense, pruned(name, seed), shared, Path(tmp))
            loaded = compressed.load_compressed(Path(tmp) / "3.nclib")
            results[seed] = {"sizes": sizes, "bits": info["bits"], "trials": info["trials"], "test": 100 * evaluate(loaded, L.test),
                             "table": compressed.layer_table(shared) if seed == seeds[0] else None,
                             "measured": measure.storage_bytes(shared, "huffman")}
    run.row("dense fp32 bytes", paper.row(f"{label} Ref")["size_bytes"], dense_bytes, "bytes")
    run.row("dense test error", paper.row(f"{label} Ref")["top1_error_pct"], 100 - dense_test, "%")
    for stage in results[seeds[0]]["sizes"]:
        sizes = [r["sizes"][stage] for r in results.values()]
        run.row(f"{stage}: file bytes, mean of {len(seeds)} seeds", None, statistics.fmean(sizes), "bytes")
    files = [r["sizes"]["+ Huffman coding"] for r in results.values()]
    rates = [dense_bytes / f for f in files]
    run.row("compressed file bytes", paper.row(f"{label} Compressed")["size_bytes"],
            statistics.fmean(files), "bytes")
    run.row("compression", paper.row(f"{label} Compressed")["compression"],
            round(statistics.fmean(rates), 1), "x")
    run.row("compression per seed", None, ", ".join(f"{r:.1f}x" for r in rates))
    run.row("bits chosen per seed (Linear / Conv2d)", None,
            "; ".join("/".join(str(v) for v in r["bits"].values()) for r in results.values()))
    tests = [r["test"] for r in results.values()]
    mean, se = mean_se(tests)
    run.row("compressed: test error, mean ± SE", paper.row(f"{label} Compressed")["top1_error_pct"],
            f"{100 - mean:.2f}% ± {se:.2f}", "%")
    first = results[seeds[0]]
    run.row(f"bits search (seed {seeds[0]}): widths tried -> val accuracy", None, ", ".join(
        f"{'/'.join(map(str, t['bits'].values()))} -> {t['val']:.1f}%" for t in first["trials"]))
    run.row(f"storage_bytes(model, 'huffman') / file bytes (seed {seeds[0]})", None,
            first["measured"] / first["sizes"]["+ Huffman coding"])
    for row in first["table"]:
        index = (f"{row['index_bits']} -> {row['index_bits_huffman']:.2f}" if row["index_bits"]
                 else "none (a label for every weight)")
        run.row(f"{row['layer']}: kept, bits per weight / index, fixed -> Huffman (seed {seeds[0]})",
                None, f"{row['kept_pct']:.1f}%, {row['weight_bits']} -> "
                f"{row['weight_bits_huffman']:.2f} / {index}")
    worst, target = min(rates), MIN_RATE[name]
    run.claim(f"every seed's compressed file is at least {target:g}x smaller than dense fp32, as "
              f"Han et al.'s (lowest {worst:.1f}x)", round(worst, 1), f">= {target:g}", worst >= target)
    drop = mean - dense_test
    run.claim(f"the files' models' mean test accuracy is within {MAX_TEST_DROP:g} points of dense "
              f"({_fmt(tests)} vs {dense_test:.2f}%)", round(drop, 2), f">= -{MAX_TEST_DROP:g}",
              drop >= -MAX_TEST_DROP - 1e-9)
    return results


def _scale(name: str) -> str:
    return (f"chapter 01's pruned {PAPER_LABEL[name]} (zoo han-{name}-s0..2); k-means (linear init) "
            f"and {CENTROIDS['epochs']} epoch of centroid training (Adam {CENTROIDS['lr']:g}); bits: "
            f"Linear from {BITS['Linear'][0]}, Conv2d from {BITS['Conv2d'][0]}, lowered while val "
            f"stays within {MAX_VAL_DROP:g} points of the pruned model's; Huffman; seeds {', '.join(map(str, SEEDS))}")


@experiment("deep-compression-lenet300", dataset=DATASET, scale=_scale("lenet300"),
            summary="LeNet-300-100 pruned, weight-shared and Huffman-coded: file bytes beside Han et al.")
def deep_compression_lenet300(run: Run) -> None:
    run_deep_compression(run, "lenet300")


@experiment("deep-compression-lenet5", dataset=DATASET, scale=_scale("lenet5"),
            summary="LeNet-5 pruned, weight-shared and Huffman-coded: file bytes beside Han et al.")
def deep_compression_lenet5(run: Run) -> None:
    run_deep_compression(run, "lenet5")
