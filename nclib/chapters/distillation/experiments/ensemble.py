"""Chapter 02 experiment `ensemble`: the lecture's speech table (Hinton et al. 2015, Table 1:
baseline, 10x ensemble, distilled single model) with an ensemble of 4 LeNet-300-100 on the
bundled digits (``--dataset mnist``: on every digit of the MNIST training file). The
ensemble averages its members' probabilities (`distill.Ensemble`).
"""
from __future__ import annotations

import statistics

from torch import nn

from nclib import data, distill, models, train, zoo
from nclib.chapters.distillation.experiments.hinton import (
    ALPHA, FULL, KD_TEMPERATURE, MAX_SHIFT, MEMBER_LR, Scale, accuracy, lecture_parts, spread, train_model)
from nclib.course.papers import table
from nclib.course.reproduce import Run, experiment

MEMBER = "lenet300"
MEMBER_SEED = 100  # member k trains with seed 100 + k
MIN_RECOVERED = 0.5  # fraction of the ensemble's gain the distilled model must keep


def train_distilled(parts: data.Splits, ensemble: nn.Module, seed: int, epochs: int) -> nn.Module:
    """One more LeNet-300-100 with the members' recipe, shifts included, and `kd_loss`
    against the ensemble, which answers each shifted batch live."""
    loss_fn = distill.DistillationLoss(ensemble, KD_TEMPERATURE, ALPHA)
    return train_model(parts, MEMBER, seed, epochs, MEMBER_LR, loss_fn, MAX_SHIFT)


# ---------------------------------------------------------------- zoo recipes (the lecture's)
def build_member(**_) -> nn.Module:
    return models.create(MEMBER)


def fit_member(k: int, n_train: int, epochs: int, progress: bool = True):
    parts = lecture_parts(n_train)
    model = train_model(parts, MEMBER, MEMBER_SEED + k, epochs, MEMBER_LR, max_shift=MAX_SHIFT)
    return model, {"test_accuracy": train.evaluate(model, data.loaders(parts).test)}


def fit_distilled(seed: int, n_train: int, epochs: int, members: list, progress: bool = True):
    parts = lecture_parts(n_train)
    ensemble = distill.Ensemble([zoo.trained(m["name"], progress=progress) for m in members])
    model = train_distilled(parts, ensemble, seed, epochs)
    return model, {"test_accuracy": train.evaluate(model, data.loaders(parts).test)}


def member_name(k: int) -> str:
    """The zoo name of the full-scale ensemble's member k: 'kd-member-0', ..."""
    return f"kd-member-{k}"


def _register(scale: Scale = FULL) -> None:
    members = []
    for k in range(scale.num_members):
        recipe = zoo.register(member_name(k), train=fit_member, build=build_member,
                              settings=dict(k=k, n_train=scale.n_train, epochs=scale.member_epochs),
                              depends_on=(train_model, lecture_parts),
                              description=f"chapter 02's ensemble member {k}: LeNet-300-100, "
                              f"shifted digits, seed {MEMBER_SEED + k}")
        members.append({"name": recipe.name, "key": recipe.key})
    zoo.register("kd-ensemble-distilled-s0", train=fit_distilled, build=build_member,
                 settings=dict(seed=0, n_train=scale.n_train, epochs=scale.member_epochs,
                               members=members),
                 depends_on=(train_distilled, train_model, lecture_parts),
                 description=f"chapter 02: LeNet-300-100 distilled from the {len(members)} members")


_register()


def run_ensemble(run: Run, scale: Scale = FULL) -> dict[str, list[float]]:
    """Baseline members, their ensemble, and single models distilled from it.

    Returns the test accuracies (%) by row name: "baseline" (one per member), "ensemble"
    and "distilled" (one per seed).
    """
    parts = lecture_parts(scale.n_train, run.source)
    test = data.loaders(parts).test
    members = [train_model(parts, MEMBER, MEMBER_SEED + k, scale.member_epochs, MEMBER_LR,
                           max_shift=MAX_SHIFT) for k in range(scale.num_members)]
    ensemble = distill.Ensemble(members)
    results = {"baseline": [accuracy(m, test) for m in members],
               "ensemble": [accuracy(ensemble, test)],
               "distilled": [accuracy(train_distilled(parts, ensemble, s, scale.member_epochs), test)
                             for s in scale.seeds]}
    paper = {label: acc for label, acc in table("hinton2015-speech").rows}
    p_base, p_ens, p_dist = paper["Baseline"], paper["10xEnsemble"], paper["Distilled Single model"]
    base, ens, dist = (statistics.fmean(results[k]) for k in ("baseline", "ensemble", "distilled"))
    run.row("Baseline (one member; paper: speech frame accuracy)", p_base,
            spread(results["baseline"]), "%")
    run.row(f"Ensemble, averaged probabilities (paper: 10 models, ours: {scale.num_members})",
            p_ens, ens, "%")
    run.row(f"Distilled single model (kd_loss T={KD_TEMPERATURE:g})", p_dist,
            spread(results["distilled"]), "%")
    recovered = (dist - base) / (ens - base) if ens > base else float("nan")
    run.row("share of the ensemble's gain kept by distillation",
            f"{(p_dist - p_base) / (p_ens - p_base):.0%}", f"{recovered:.0%}")
    run.claim(f"the distilled single model keeps >= {MIN_RECOVERED:.0%} of the ensemble's gain "
              f"over the baseline ({dist - base:+.2f} of {ens - base:+.2f} points)",
              round(recovered, 3), f">= {MIN_RECOVERED}", recovered >= MIN_RECOVERED)
    return results


@experiment("ensemble", dataset="MNIST, the 5,000 bundled digits (1,000 test)",
            scale=FULL.describe_ensemble(), datasets=("bundled", "mnist"),
            summary="the lecture's speech table: baseline, ensemble, distilled single model")
def ensemble(run: Run) -> None:
    scale = FULL.for_source(run.source)
    run.scale = scale.describe_ensemble()
    run_ensemble(run, scale)
