"""Chapter 07 experiment `capstone-order`: prune before or after distilling?

The capstone's student is a LeNet of 8/16 filters and 64 units (`STUDENT`, 20,522
parameters). It is trained in two phases of fixed length, pruned (`SPARSITY`) in between;
the teacher's soft targets are used in exactly one of them:

* ``distil-prune``: phase 1 distils the dense student from the teacher (`kd_loss`, T 4,
  alpha 0.9), then it is pruned and fine-tuned on the labels;
* ``prune-distil``: phase 1 trains the dense student on the labels, then it is pruned and
  the pruned student is distilled from the teacher;
* ``labels``: labels in both phases (no teacher), the reference.

Same architecture, sparsity, epochs and batches (`fine_tune` seeds them) in every order;
only where the teacher comes in differs. The teacher is the zoo's SmallVGG (97.9% on the
test digits): distillation needs a teacher clearly better than the student, and the dense
LeNet-5 (96.9%) is barely better than this student trained on labels. Each (order, seed)
is a zoo entry (`order_name`), so the lecture reads the result instead of training.
"""
from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass

import torch
from torch import nn

from nclib import data, distill, models, train, zoo
from nclib.course.reproduce import Run, experiment, se_of_difference
from nclib.pruning import magnitude

__all__ = ["STUDENT", "TEACHER", "KD", "PHASE1", "PHASE2", "SPARSITY", "ORDERS", "SEEDS", "Scale",
           "FULL", "student", "phase1", "phase2", "dense_name", "order_name", "run_order"]

STUDENT = dict(channels=(8, 16), hidden=64)
TEACHER = "vgg_small"
KD = dict(temperature=4.0, alpha=0.9)
PHASE1 = dict(epochs=8, lr=2e-3)  # the dense student
PHASE2 = dict(epochs=2, lr=1e-3)  # after pruning
SPARSITY = {"conv2": 0.6, "fc1": 0.8, "fc2": 0.5}  # conv1 (200 weights) is kept whole
ORDERS = ("distil-prune", "prune-distil", "labels")
SEEDS = (0, 1, 2)
MIN_RECOVERY = 1.0  # points the second phase wins back after pruning, on average


@dataclass(frozen=True)
class Scale:
    seeds: tuple[int, ...] = SEEDS
    phase1_epochs: int = PHASE1["epochs"]
    phase2_epochs: int = PHASE2["epochs"]

    def describe(self) -> str:
        return (f"{len(self.seeds)} seeds; phase 1 {self.phase1_epochs} epochs, prune "
                f"{', '.join(f'{k} {v:.0%}' for k, v in SPARSITY.items())}, phase 2 "
                f"{self.phase2_epochs} epochs")


FULL = Scale()


def student() -> nn.Module:
    """The capstone's student, untrained: `models.LeNet((8, 16), 64)`."""
    return models.LeNet(**STUDENT)


def _kd_loss(splits: data.Splits, teacher: nn.Module | None) -> distill.DistillationLoss:
    teacher = teacher if teacher is not None else zoo.trained(TEACHER, progress=False)
    return distill.DistillationLoss(distill.CachedTeacher(teacher, splits.train[0]), **KD)


def _splits(splits: data.Splits | None) -> data.Splits:
    """The given digits, or the bundled ones split as `data.loaders("mnist")` splits them."""
    return splits if splits is not None else data.split(*data.load_mnist())


def phase1(seed: int, distil: bool, epochs: int = PHASE1["epochs"], splits: data.Splits | None = None,
           teacher: nn.Module | None = None) -> nn.Module:
    """The dense student after phase 1: distilled from `teacher` (default the zoo's SmallVGG),
    or trained on labels; on `splits` (default the bundled digits)."""
    splits = _splits(splits)
    torch.manual_seed(seed)
    model = student()
    batches = data.loaders(splits, seed=seed).train
    train.fit(model, batches, epochs=epochs, lr=PHASE1["lr"], progress=False,
              loss_fn=_kd_loss(splits, teacher) if distil else None)
    return model.eval()


def phase2(model: nn.Module, seed: int, distil: bool, epochs: int = PHASE2["epochs"],
           splits: data.Splits | None = None, teacher: nn.Module | None = None
           ) -> tuple[nn.Module, float]:
    """A pruned copy of `model`, fine-tuned (distilled or on labels), masks baked; and its
    test accuracy right after pruning, before phase 2."""
    splits = _splits(splits)
    model = copy.deepcopy(model)
    magnitude.prune_model(model, SPARSITY)
    pruned_acc = train.evaluate(model, data.loaders(splits).test)
    train.fine_tune(model, data.loaders(splits, seed=seed).train, epochs, lr=PHASE2["lr"], seed=seed,
                    loss_fn=_kd_loss(splits, teacher) if distil else None)
    return magnitude.bake(model).eval(), pruned_acc


def dense_name(distil: bool, seed: int) -> str:
    """The zoo name of a phase-1 student: 'cap-dense-kd-s0' or 'cap-dense-labels-s0'."""
    return f"cap-dense-{'kd' if distil else 'labels'}-s{seed}"


def order_name(order: str, seed: int) -> str:
    """The zoo name of a final (pruned) student: 'cap-distil-prune-s0', ..."""
    if order not in ORDERS:
        raise ValueError(f"order={order!r}: expected one of {', '.join(ORDERS)}")
    return f"cap-{order}-s{seed}"


# ---------------------------------------------------------------- zoo recipes (the lecture's)
def _build(**_) -> nn.Module:
    return student()


def _fit_dense(seed: int, distil: bool, epochs: int, teacher: dict, progress: bool = True):
    model = phase1(seed, distil, epochs)
    return model, {"test_accuracy": train.evaluate(model, data.loaders("mnist").test)}


def _fit_order(seed: int, order: str, epochs: int, dense: dict, progress: bool = True):
    model, pruned_acc = phase2(zoo.trained(dense["name"], progress=progress), seed,
                               distil=order == "prune-distil", epochs=epochs)
    return model, {"test_accuracy": train.evaluate(model, data.loaders("mnist").test),
                   "pruned_accuracy": pruned_acc,
                   "dense_accuracy": zoo.info(dense["name"])["test_accuracy"],
                   "sparsity": magnitude.global_sparsity(model, list(SPARSITY))}


def _register() -> None:
    teacher = {"name": TEACHER, "key": zoo.RECIPES[TEACHER].key}
    for seed in SEEDS:
        for distil in (True, False):
            zoo.register(dense_name(distil, seed), train=_fit_dense, build=_build,
                         settings=dict(seed=seed, distil=distil, epochs=PHASE1["epochs"], teacher=teacher),
                         depends_on=(phase1, student, _kd_loss, _splits, models.LeNet),
                         description="chapter 07: LeNet 8/16/64 "
                         f"{'distilled from SmallVGG' if distil else 'on labels'}, "
                         f"{PHASE1['epochs']} epochs, seed {seed}")
        for order in ORDERS:
            name = dense_name(order == "distil-prune", seed)
            zoo.register(order_name(order, seed), train=_fit_order, build=_build,
                         settings=dict(seed=seed, order=order, epochs=PHASE2["epochs"],
                                       dense={"name": name, "key": zoo.RECIPES[name].key}),
                         depends_on=(phase2, _kd_loss, _splits, magnitude.prune_model),
                         description=f"chapter 07: the student pruned ({order}), seed {seed}")


_register()


# ---------------------------------------------------------------- the experiment
def run_order(run: Run, scale: Scale = FULL) -> dict[str, list[float]]:
    """Final test accuracies (%) by order, one per seed; rows and claims in `run`."""
    splits, teacher = run.source.splits(), run.source.dense(TEACHER)
    test = data.loaders(splits).test
    acc = {o: [] for o in ORDERS}
    recovered = []
    for seed in scale.seeds:
        dense = {d: phase1(seed, d, scale.phase1_epochs, splits, teacher) for d in (True, False)}
        for order in ORDERS:
            final, pruned_acc = phase2(dense[order == "distil-prune"], seed, order == "prune-distil",
                                       scale.phase2_epochs, splits, teacher)
            acc[order].append(100 * train.evaluate(final, test))
            recovered.append(acc[order][-1] - 100 * pruned_acc)
    for order in ORDERS:
        vals = acc[order]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        run.row(f"{order}: test accuracy, mean ± sd over {len(vals)} seeds", None,
                f"{statistics.fmean(vals):.2f} ± {sd:.2f} ({', '.join(f'{v:.1f}' for v in vals)})", "%")
    a, b = acc["distil-prune"], acc["prune-distil"]
    diff = statistics.fmean(a) - statistics.fmean(b)
    se = se_of_difference(a, b) if len(a) > 1 else float("nan")
    winner = "distil-prune" if diff > 0 else "prune-distil" if diff < 0 else "neither"
    run.row("distil-prune minus prune-distil (points, ± its standard error)", None,
            f"{diff:+.2f} ± {se:.2f} ({winner} ahead)")
    mean_recovered = statistics.fmean(recovered)
    run.claim(f"phase 2 wins back at least {MIN_RECOVERY:g} point of what pruning cost, on "
              f"average over orders and seeds ({mean_recovered:.2f})", round(mean_recovered, 2),
              f">= {MIN_RECOVERY:g}", mean_recovered >= MIN_RECOVERY)
    return acc


@experiment("capstone-order", dataset="MNIST, the 5,000 bundled digits (1,000 test)",
            scale=FULL.describe(), datasets=("bundled", "mnist"),
            summary="prune before or after distilling: two orders and a labels-only reference, 3 seeds")
def capstone_order(run: Run) -> None:
    run_order(run, FULL)
