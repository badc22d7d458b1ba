"""Chapter 01 experiments `han2015-lenet300` and `han2015-lenet5`: Han et al., "Learning both
Weights and Connections for Efficient Neural Networks" (NIPS 2015), Tables 1-3, on the
bundled digits: iterative magnitude pruning with retraining; compression, test error and
the weights kept per layer beside the paper's.
"""
from __future__ import annotations

import torch
from torch import nn

from nclib import data, measure, train, zoo
from nclib.course.papers import table
from nclib.course.reproduce import Run, experiment
from nclib.pruning import magnitude, schedules
from nclib.train import evaluate

DATASET = "MNIST, the 5,000 bundled digits (3,500 train / 1,000 test)"
SHAPE = (1, 28, 28)


# ---------------------------------------------------------------- Han et al. 2015
# Retraining: Adam 1e-3 with L2 1e-4 (Han et al., Section 3.1: L2 regularization gives the
# best accuracy after retraining). The zoo's dense models were trained without L2, so a
# control row gives the dense model the same extra epochs.
RETRAIN = dict(lr=1e-3, weight_decay=1e-4)  # for prune_iteratively and train.fine_tune
FINAL_SPARSITY = 0.92  # of the Linear and Conv2d weights, one global magnitude threshold
# (prune steps of the AGP schedule, epochs of retraining after each)
SCHEDULE = {"lenet300": (3, 2), "lenet5": (4, 1)}
PAPER_LABEL = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}


def paper_kept(name: str) -> dict[str, float]:
    """Han et al. 2015, Tables 2 and 3: the fraction of each layer's weights they keep."""
    return dict(table(f"han2015-{name}-layers").rows)


def prune_and_retrain(name: str, sparsity=FINAL_SPARSITY, scope: str = "global") -> nn.Module:
    """The zoo model `name` pruned iteratively to `sparsity` (AGP steps of `SCHEDULE`), with
    Han's retraining after each step (`RETRAIN`)."""
    num_steps, epochs = SCHEDULE[name]
    model = zoo.trained(name, progress=False)
    torch.manual_seed(0)
    schedules.prune_iteratively(model, data.loaders("mnist", seed=0).train, sparsity, num_steps,
                                epochs, scope=scope, progress=False, **RETRAIN)
    return model


def retrained_dense(name: str) -> nn.Module:
    """The control: the dense zoo model given the same retraining epochs, unpruned (the zoo
    trains without L2, so part of a pruned model's gain can come from the extra epochs)."""
    num_steps, epochs = SCHEDULE[name]
    return train.fine_tune(zoo.trained(name, progress=False), data.loaders("mnist", seed=0).train,
                           num_steps * epochs, **RETRAIN)


def _han(run: Run, name: str, min_rate: float, max_kept_pct: float | None = None) -> None:
    test = data.loaders("mnist").test
    han = table("han2015")
    label = PAPER_LABEL[name]
    dense = zoo.trained(name, progress=False)
    dense_acc = evaluate(dense, test)
    control = retrained_dense(name)
    pruned = prune_and_retrain(name)
    acc = evaluate(pruned, test)
    params, nonzeros = measure.count_params(pruned), measure.count_nonzero(pruned)
    kept = 1 - magnitude.global_sparsity(pruned)
    rate = params / nonzeros
    han_kept = paper_kept(name)
    han_rates = prune_and_retrain(name, {l: 1 - k for l, k in han_kept.items()}, "layer")

    run.row("dense params", han.row(f"{label} Ref")["params"], measure.count_params(dense), "params")
    run.row("pruned: nonzero params", han.row(f"{label} Pruned")["params"], nonzeros, "params")
    run.row("compression (params / nonzeros)", han.row(f"{label} Pruned")["compression"],
            round(rate, 2), "x")
    run.row("dense test error", han.row(f"{label} Ref")["top1_error_pct"], 100 * (1 - dense_acc), "%")
    run.row("pruned test error", han.row(f"{label} Pruned")["top1_error_pct"], 100 * (1 - acc), "%")
    run.row("dense + same retraining, test error", None,
            100 * (1 - evaluate(control, test)), "%")
    for layer, fraction in magnitude.layer_sparsity(pruned).items():
        run.row(f"{layer}: weights kept", 100 * han_kept[layer], 100 * (1 - fraction), "%")
    run.row("all weights kept", None, 100 * kept, "%")
    run.row("size dense_fp32", None, measure.storage_bytes(dense, "dense_fp32"), "bytes")
    run.row("size of the pruned model, sparse_relative", None,
            measure.storage_bytes(pruned, "sparse_relative"), "bytes")
    run.row("Han's per-layer rates instead: compression", None,
            round(params / measure.count_nonzero(han_rates), 2), "x")
    run.row("Han's per-layer rates instead: test error", None,
            100 * (1 - evaluate(han_rates, test)), "%")
    if max_kept_pct is not None:
        run.claim(f"keeps at most {max_kept_pct:g}% of the weights ({100 * kept:.2f}% kept)",
                  round(100 * kept, 2), f"<= {max_kept_pct:g}", 100 * kept <= max_kept_pct)
    run.claim(f"at least {min_rate:g}x fewer nonzero parameters ({rate:.2f}x)", round(rate, 2),
              f">= {min_rate:g}", rate >= min_rate)
    run.claim(f"test accuracy no more than 0.3 points below dense ({100 * acc:.1f}% vs "
              f"{100 * dense_acc:.1f}%)", round(100 * (acc - dense_acc), 2), ">= -0.3",
              acc >= dense_acc - 0.003 - 1e-9)


_HAN_SCALE = ("zoo model; one global magnitude threshold to {s:.0%} of the weights in {n} "
              "AGP steps, {e} epoch(s) of retraining after each (Adam 1e-3, L2 1e-4)")


@experiment("han2015-lenet300", dataset=DATASET,
            scale=_HAN_SCALE.format(s=FINAL_SPARSITY, n=3, e=2),
            summary="LeNet-300-100 pruned 12x with retraining, beside Han et al. 2015")
def han2015_lenet300(run: Run) -> None:
    _han(run, "lenet300", min_rate=12, max_kept_pct=8.3)


@experiment("han2015-lenet5", dataset=DATASET,
            scale=_HAN_SCALE.format(s=FINAL_SPARSITY, n=4, e=1),
            summary="LeNet-5 pruned >= 10x with retraining, beside Han et al. 2015")
def han2015_lenet5(run: Run) -> None:
    _han(run, "lenet5", min_rate=10)
