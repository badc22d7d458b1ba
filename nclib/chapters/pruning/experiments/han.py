"""Chapter 01 experiments `han2015-lenet300` and `han2015-lenet5`: Han et al., "Learning both
Weights and Connections for Efficient Neural Networks" (NIPS 2015), Tables 1-3, on the
bundled digits (or, with ``--dataset mnist``, on the full MNIST files, from a dense model
trained there with the zoo recipe's settings).

How far can a LeNet be pruned? Not fixed in advance: a search. From the zoo's dense model,
prune by global magnitude to each sparsity of a rising schedule (`SEARCH`), retraining after
every step, and record the validation and test accuracy at each compression. The
compression chosen is the highest whose **validation** accuracy stays within
`MAX_VAL_DROP` points of the dense model's; its **test** accuracy is the result. Three
seeds (of the retraining batches) give the mean and its standard error: one accuracy on
1,000 test digits alone has a standard error of about 0.5 points.
"""
from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass

import torch
from torch import nn

from nclib import data, measure, models, train, zoo
from nclib.course.papers import table
from nclib.course.reproduce import Run, Source, experiment, mean_se
from nclib.pruning import magnitude, schedules
from nclib.train import evaluate

DATASET = "MNIST, the 5,000 bundled digits (3,500 train / 500 val / 1,000 test)"
SHAPE = (1, 28, 28)

# Retraining: Adam 1e-3 with L2 1e-4 (Han et al., Section 3.1: L2 regularization gives the
# best accuracy after retraining). The zoo's dense models were trained without L2, so a
# control row gives the dense model the same extra epochs.
RETRAIN = dict(lr=1e-3, weight_decay=1e-4)  # for prune_iteratively and train.fine_tune
# the sparsities of the Linear and Conv2d weights (one global threshold), one after another
SEARCH = (0.5, 0.75, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98)
STEP_EPOCHS = {"lenet300": 2, "lenet5": 1}  # retraining after each step of the search
SEEDS = (0, 1, 2)
MAX_VAL_DROP = 0.5  # points of validation accuracy the chosen compression may lose
MIN_RATE = 12.0  # Han et al.: 12x for both LeNets
MAX_TEST_DROP = 0.5  # points: the chosen models' mean test accuracy against the dense model's
FINAL_SPARSITY = 0.92  # the lecture's one-run example (and Han's per-layer comparison)
SCHEDULE = {"lenet300": (3, 2), "lenet5": (4, 1)}  # (AGP steps, epochs after each) to it
PAPER_LABEL = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}


@dataclass(frozen=True)
class HanScale:
    """How big a search is (the tests run a small one)."""

    sparsities: tuple[float, ...] = SEARCH
    seeds: tuple[int, ...] = SEEDS
    epochs: int | None = None  # None: STEP_EPOCHS of the network

    def describe(self, name: str, source: Source | None = None) -> str:
        """The scale line; `source` says where the dense model comes from (default: the zoo)."""
        dense = "zoo model"
        if source is not None and source.name != "bundled":
            dense = f"dense model trained on these digits as the zoo's ({zoo.RECIPES[name].description})"
        return (f"{dense}; global magnitude pruning to {_pcts(self.sparsities)} of the weights "
                f"in turn, {self.epochs or STEP_EPOCHS[name]} epoch(s) of retraining after each "
                f"(Adam 1e-3, L2 1e-4); seeds {', '.join(map(str, self.seeds))}; the highest "
                f"compression within {MAX_VAL_DROP:g} points of dense on validation")


FULL = HanScale()


def _pcts(values) -> str:
    return ", ".join(f"{100 * v:g}%" for v in values)


def paper_kept(name: str) -> dict[str, float]:
    """Han et al. 2015, Tables 2 and 3: the fraction of each layer's weights they keep."""
    return dict(table(f"han2015-{name}-layers").rows)


def compression_path(name: str, seed: int, scale: HanScale = FULL,
                     source: Source | None = None) -> tuple[list[dict], list[dict]]:
    """Prune the dense model `name` along `scale.sparsities`, retraining after each step.

    Returns (points, states): per step its sparsity, compression (params / nonzeros), val
    and test accuracy in percent, and the baked state_dict after that step. `source` gives
    the digits and the dense model (default: the bundled digits and the zoo's model).
    """
    source = source or Source()
    model = source.dense(name)
    L = source.loaders(seed)
    params = measure.count_params(model)
    points, states = [], []
    torch.manual_seed(seed)
    for sparsity in scale.sparsities:
        magnitude.prune_model(model, sparsity, scope="global")
        train.fit(model, L.train, epochs=scale.epochs or STEP_EPOCHS[name], progress=False,
                  **RETRAIN)
        baked = magnitude.bake(copy.deepcopy(model))
        points.append({"sparsity": sparsity, "compression": params / measure.count_nonzero(baked),
                       "val": 100 * evaluate(baked, L.val), "test": 100 * evaluate(baked, L.test)})
        states.append(baked.state_dict())
    return points, states


def choose(points: list[dict], dense_val: float) -> int | None:
    """The index of the highest compression whose val accuracy (%) is within MAX_VAL_DROP
    points of `dense_val`; None when no step is."""
    ok = [i for i, p in enumerate(points) if p["val"] >= dense_val - MAX_VAL_DROP - 1e-9]
    return max(ok, key=lambda i: points[i]["compression"]) if ok else None


# ---------------------------------------------------------------- zoo recipes (the lecture's)
def build_pruned(name: str, **_) -> nn.Module:
    return models.create(name)


def fit_pruned(name: str, seed: int, sparsities: list, dense: dict, epochs: int, retrain: dict,
               progress: bool = True):
    """The search for one seed; the model is the chosen step, `info["path"]` every step.
    (`dense` and `retrain` are in the settings so that the cache key follows them.)"""
    points, states = compression_path(name, seed, HanScale(tuple(sparsities), (seed,), epochs))
    dense_val = 100 * evaluate(zoo.trained(name, progress=progress), data.loaders("mnist").val)
    pick = choose(points, dense_val)
    model = build_pruned(name)
    model.load_state_dict(states[len(states) - 1 if pick is None else pick])
    return model, {"path": points, "chosen": pick, "dense_val": dense_val}


def search_name(name: str, seed: int) -> str:
    """The zoo name of one seed's search: 'han-lenet300-s0'."""
    return f"han-{name}-s{seed}"


def searched(name: str, seed: int) -> tuple[nn.Module, dict]:
    """The cached search of one seed: the chosen (baked) model and its info (path, chosen)."""
    return zoo.trained(search_name(name, seed)), zoo.info(search_name(name, seed))


for _name in PAPER_LABEL:
    for _seed in SEEDS:
        zoo.register(search_name(_name, _seed), train=fit_pruned, build=build_pruned,
                     settings=dict(name=_name, seed=_seed, sparsities=list(SEARCH),
                                   dense={"key": zoo.RECIPES[_name].key},
                                   epochs=STEP_EPOCHS[_name], retrain=RETRAIN),
                     depends_on=(compression_path, choose),  # their source is in the cache key
                     description=f"chapter 01: {PAPER_LABEL[_name]} pruned by the Han search, "
                     f"seed {_seed}")


def prune_and_retrain(name: str, sparsity=FINAL_SPARSITY, scope: str = "global") -> nn.Module:
    """The zoo model `name` pruned iteratively to `sparsity` (AGP steps of `SCHEDULE`), with
    Han's retraining after each step (`RETRAIN`)."""
    num_steps, epochs = SCHEDULE[name]
    model = zoo.trained(name, progress=False)
    torch.manual_seed(0)
    schedules.prune_iteratively(model, data.loaders("mnist", seed=0).train, sparsity, num_steps,
                                epochs, scope=scope, progress=False, **RETRAIN)
    return model


def _fmt(values: list[float]) -> str:
    mean, se = mean_se(values)
    return f"{mean:.2f}% ± {se:.2f}" if len(values) > 1 else f"{mean:.2f}%"


def run_han(run: Run, name: str, scale: HanScale = FULL) -> dict:
    """The search for every seed: rows for each step and the choice, and the two claims.

    The digits and the dense model are `run.source`'s."""
    L = run.source.loaders()
    han, label = table("han2015"), PAPER_LABEL[name]
    dense = run.source.dense(name)
    dense_val, dense_test = 100 * evaluate(dense, L.val), 100 * evaluate(dense, L.test)
    paths = {s: compression_path(name, s, scale, run.source) for s in scale.seeds}
    picks = {s: choose(points, dense_val) for s, (points, _) in paths.items()}
    run.row("dense params", han.row(f"{label} Ref")["params"], measure.count_params(dense), "params")
    run.row("dense val accuracy", None, dense_val, "%")
    run.row("dense test error", han.row(f"{label} Ref")["top1_error_pct"], 100 - dense_test, "%")
    for i, sparsity in enumerate(scale.sparsities):
        step = [paths[s][0][i] for s in scale.seeds]
        rate = statistics.fmean(p["compression"] for p in step)
        run.row(f"{100 * sparsity:g}% removed ({rate:.1f}x): val / test accuracy", None,
                f"{_fmt([p['val'] for p in step])} / {_fmt([p['test'] for p in step])}")
    chosen = {s: paths[s][0][i] for s, i in picks.items() if i is not None}
    rates = [p["compression"] for p in chosen.values()]
    tests = [p["test"] for p in chosen.values()]
    run.row("chosen compression, per seed", han.row(f"{label} Pruned")["compression"],
            ", ".join(f"{r:.1f}x" for r in rates) or "none within the drop")
    if chosen:
        mean, se = mean_se(tests)
        run.row("chosen: test error, mean ± SE", han.row(f"{label} Pruned")["top1_error_pct"],
                f"{100 - mean:.2f}% ± {se:.2f}")
        first = min(chosen)
        model = build_pruned(name)
        model.load_state_dict(paths[first][1][picks[first]])
        han_kept = paper_kept(name)
        for layer, fraction in magnitude.layer_sparsity(model).items():
            run.row(f"{layer}: weights kept (seed {first})", 100 * han_kept[layer],
                    100 * (1 - fraction), "%")
        run.row("size dense_fp32", None, measure.storage_bytes(dense, "dense_fp32"), "bytes")
        run.row(f"size of the chosen model (seed {first}), sparse_relative", None,
                measure.storage_bytes(model, "sparse_relative"), "bytes")
    worst = min(rates) if len(rates) == len(scale.seeds) else 0.0
    run.claim(f"every seed's chosen compression is at least {MIN_RATE:g}x, as Han et al.'s "
              f"(lowest {worst:.2f}x)", round(worst, 2), f">= {MIN_RATE:g}", worst >= MIN_RATE)
    drop = (statistics.fmean(tests) - dense_test) if tests else float("-inf")
    run.claim(f"the chosen models' mean test accuracy is within {MAX_TEST_DROP:g} points of dense "
              f"({_fmt(tests) if tests else '-'} vs {dense_test:.2f}%)", round(drop, 2),
              f">= -{MAX_TEST_DROP:g}", drop >= -MAX_TEST_DROP - 1e-9)
    return {"dense_val": dense_val, "dense_test": dense_test, "picks": picks,
            "paths": {s: points for s, (points, _) in paths.items()}}


@experiment("han2015-lenet300", dataset=DATASET, scale=FULL.describe("lenet300"),
            datasets=("bundled", "mnist"), summary="LeNet-300-100: the highest compression within 0.5 points, beside Han et al.")
def han2015_lenet300(run: Run) -> None:
    run.scale = FULL.describe("lenet300", run.source)
    run_han(run, "lenet300")


@experiment("han2015-lenet5", dataset=DATASET, scale=FULL.describe("lenet5"),
            datasets=("bundled", "mnist"), summary="LeNet-5: the highest compression within 0.5 points, beside Han et al.")
def han2015_lenet5(run: Run) -> None:
    run.scale = FULL.describe("lenet5", run.source)
    run_han(run, "lenet5")
