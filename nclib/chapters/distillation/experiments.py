"""Chapter 02: knowledge distillation on the bundled MNIST digits, beside the lecture.

* `hinton2015`: Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network"
  (arXiv 1503.02531, 2015), their MNIST experiment at small scale. The teacher (SmallVGG)
  trains on digits moved by up to 2 pixels at random, as theirs did; the student
  (LeNet-300-100) only ever sees the plain digits. Students trained on labels alone, with
  `kd_loss` at several temperatures, and with Ba and Caruana's `logit_mse` (NIPS 2014).
* `ensemble`: the lecture's speech table (Hinton et al., Table 1: baseline, 10x ensemble,
  distilled single model) with an ensemble of 4 LeNet-300-100 on digits.

Both train on a stratified 1,000-digit subset of the training split (100 a class), so the
student has something left to learn from the teacher, and test on the 1,000 test digits.
The learning rates were picked on the validation digits by benchmarks/distill.py, which
also tried a grid for every method; here each method trains at its pick.
`run_hinton2015` and `run_ensemble` take a `Scale`, so the tests can run them small.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch
from torch import nn

from nclib import data, distill, models, train
from nclib.course.papers import table
from nclib.course.reproduce import Run, experiment

MAX_SHIFT = 2  # pixels in each direction, for the teacher's (and the ensemble's) training
ALPHA = 0.9  # weight of the soft term (Hinton et al.: "a considerably lower weight" on labels)
KD_TEMPERATURE = 4.0
TEACHER_LR = 2e-3
# Adam learning rates picked on the validation digits by benchmarks/distill.py
LR = {"labels": 3e-3, "kd": 1e-2, "logit_mse": 3e-3}
MEMBER_LR = 3e-3  # the ensemble members' recipe; the distilled model uses it too
MIN_GAIN = 0.8  # points of test accuracy KD must add over labels alone
MIN_SHIFT_GAIN = 5.0  # points on shifted test digits: what the teacher knew about shifts
MIN_RECOVERED = 0.5  # fraction of the ensemble's gain the distilled model must keep


@dataclass(frozen=True)
class Scale:
    """How big a run is: training digits, epochs, seeds, temperatures, ensemble members."""

    n_train: int = 1000
    seeds: tuple[int, ...] = (0, 1, 2)
    teacher_epochs: int = 30
    student_epochs: int = 40
    temperatures: tuple[float, ...] = (1, 2, 4, 8, 20)
    num_members: int = 4
    member_epochs: int = 60

    def describe_hinton(self) -> str:
        return (f"{self.n_train:,} training digits ({self.n_train // 10} a class); teacher "
                f"SmallVGG {self.teacher_epochs} epochs (Adam {TEACHER_LR:g}, random shifts "
                f"<= {MAX_SHIFT} px); students LeNet-300-100 {self.student_epochs} epochs on "
                f"plain digits, seeds {_seeds(self.seeds)}; mean ± std (min-max) over seeds")

    def describe_ensemble(self) -> str:
        return (f"{self.n_train:,} training digits ({self.n_train // 10} a class); "
                f"{self.num_members} LeNet-300-100 members and the distilled LeNet-300-100, "
                f"each {self.member_epochs} epochs, Adam {MEMBER_LR:g}, random shifts <= "
                f"{MAX_SHIFT} px; distilled seeds {_seeds(self.seeds)}; mean ± std (min-max)")


FULL = Scale()


def _seeds(seeds: tuple[int, ...]) -> str:
    return ", ".join(map(str, seeds))


def train_model(parts: data.Splits, name: str, seed: int, epochs: int, lr: float,
                loss_fn=None, max_shift: int = 0) -> nn.Module:
    """`models.create(name)` trained with Adam; `seed` sets its weights, batches and shifts."""
    torch.manual_seed(seed)
    model = models.create(name)
    batches = data.loaders(parts, batch_size=64, seed=seed).train
    if max_shift:
        batches = data.Shifted(batches, max_shift, seed)
    train.fit(model, batches, epochs=epochs, lr=lr, loss_fn=loss_fn, progress=False)
    return model.eval()


def accuracy(model: nn.Module, loader) -> float:
    """Test accuracy in percent."""
    return 100 * train.evaluate(model, loader)


def spread(accs: list[float]) -> str:
    """'93.03% ± 0.21 (92.8-93.2)': mean, standard deviation and range over seeds."""
    mean = statistics.fmean(accs)
    if len(accs) == 1:
        return f"{mean:.2f}%"
    return f"{mean:.2f}% ± {statistics.stdev(accs):.2f} ({min(accs):.1f}-{max(accs):.1f})"


def run_hinton2015(run: Run, scale: Scale = FULL) -> dict[str, list[float]]:
    """Teacher, labels-only, KD and logit-matching students, and a temperature sweep.

    Returns the test accuracies (%) by row label, one per seed (the teacher: one).
    """
    parts = data.stratified_subset(data.split(*data.load_mnist()), scale.n_train)
    test = data.loaders(parts).test
    shifted = data.shifted_copy(test, MAX_SHIFT)
    teacher = train_model(parts, "vgg_small", 0, scale.teacher_epochs, TEACHER_LR,
                          max_shift=MAX_SHIFT)
    # The students' digits are never augmented: the teacher answers each one once, and this
    # one teacher serves every student of the run.
    cached = distill.CachedTeacher(teacher, parts.train[0])

    def students(lr: float, loss_fn=None) -> list[nn.Module]:
        return [train_model(parts, "lenet300", s, scale.student_epochs, lr, loss_fn)
                for s in scale.seeds]

    kd = f"kd_loss T={KD_TEMPERATURE:g}, alpha={ALPHA:g}"
    trained = {
        "labels only": students(LR["labels"]),
        kd: students(LR["kd"], distill.DistillationLoss(cached, KD_TEMPERATURE, ALPHA)),
        "logit_mse (Ba and Caruana)": students(LR["logit_mse"],
                                               distill.DistillationLoss(cached, kind="logit_mse")),
    }
    results = {"teacher": [accuracy(teacher, test)]}
    paper = table("hinton2015-mnist")  # full MNIST, 10,000 test digits: a different scale
    paper_acc = {"labels only": paper.row("student, labels only")["test_accuracy_pct"],
                 kd: paper.row("student, distilled (T = 20)")["test_accuracy_pct"]}
    run.row("teacher SmallVGG, trained on shifted digits", paper.row("teacher")["test_accuracy_pct"],
            results["teacher"][0], "%")
    run.row("teacher on shifted test digits", None, accuracy(teacher, shifted), "%")
    for label, nets in trained.items():
        results[label] = [accuracy(m, test) for m in nets]
        run.row(f"student LeNet-300-100, {label}", paper_acc.get(label), spread(results[label]), "%")
    for label in ("labels only", kd):
        results[f"{label}, shifted"] = [accuracy(m, shifted) for m in trained[label]]
        run.row(f"student, {label}, on shifted test digits", None,
                spread(results[f"{label}, shifted"]), "%")
    soft = {}
    for T in scale.temperatures:
        if T == KD_TEMPERATURE:
            soft[T] = results[kd]
        else:
            loss_fn = distill.DistillationLoss(cached, T, ALPHA)
            soft[T] = [accuracy(m, test) for m in students(LR["kd"], loss_fn)]
        results[f"T={T:g}"] = soft[T]
        run.row(f"temperature sweep: kd_loss T={T:g}", None, spread(soft[T]), "%")
    gain = statistics.fmean(results[kd]) - statistics.fmean(results["labels only"])
    run.claim(f"KD ({kd}) beats labels only by >= {MIN_GAIN} points of test accuracy, mean "
              f"of {len(scale.seeds)} seeds: {gain:+.2f}", round(gain, 2), f">= {MIN_GAIN}",
              gain >= MIN_GAIN)
    shift_gain = (statistics.fmean(results[f"{kd}, shifted"])
                  - statistics.fmean(results["labels only, shifted"]))
    run.claim(f"on shifted test digits, which no student saw, the KD student beats the "
              f"labels-only one by >= {MIN_SHIFT_GAIN:g} points: {shift_gain:+.2f}",
              round(shift_gain, 2), f">= {MIN_SHIFT_GAIN:g}", shift_gain >= MIN_SHIFT_GAIN)
    best = max(soft, key=lambda T: statistics.fmean(soft[T]))
    run.claim(f"the best temperature is above 1 (soft targets beat sharp ones): T={best:g}",
              best, "> 1", best > 1)
    return results


def run_ensemble(run: Run, scale: Scale = FULL) -> dict[str, list[float]]:
    """Baseline members, their ensemble, and single models distilled from it.

    Returns the test accuracies (%) by row name: "baseline" (one per member), "ensemble",
    "distilled" and "logit_mse" (one per seed).
    """
    parts = data.stratified_subset(data.split(*data.load_mnist()), scale.n_train)
    test = data.loaders(parts).test
    members = [train_model(parts, "lenet300", 100 + k, scale.member_epochs, MEMBER_LR,
                           max_shift=MAX_SHIFT) for k in range(scale.num_members)]
    ensemble = distill.Ensemble(members, combine="logits")

    def distilled(kind: str) -> list[float]:
        # the members' recipe, shifts included; the ensemble answers each shifted batch live
        loss_fn = distill.DistillationLoss(ensemble, KD_TEMPERATURE, ALPHA, kind=kind)
        return [accuracy(train_model(parts, "lenet300", s, scale.member_epochs, MEMBER_LR,
                                     loss_fn, MAX_SHIFT), test) for s in scale.seeds]

    results = {"baseline": [accuracy(m, test) for m in members],
               "ensemble": [accuracy(ensemble, test)], "distilled": distilled("kd"),
               "logit_mse": distilled("logit_mse")}
    paper = {label: acc for label, acc in table("hinton2015-speech").rows}
    p_base, p_ens, p_dist = paper["Baseline"], paper["10xEnsemble"], paper["Distilled Single model"]
    base, ens, dist = (statistics.fmean(results[k]) for k in ("baseline", "ensemble", "distilled"))
    run.row("Baseline (one member; paper: speech frame accuracy)", p_base,
            spread(results["baseline"]), "%")
    run.row(f"Ensemble (paper: 10 models, ours: {scale.num_members})", p_ens, ens, "%")
    run.row(f"Distilled single model (kd_loss T={KD_TEMPERATURE:g})", p_dist,
            spread(results["distilled"]), "%")
    run.row("Distilled single model, logit_mse", None, spread(results["logit_mse"]), "%")
    recovered = (dist - base) / (ens - base) if ens > base else float("nan")
    run.row("share of the ensemble's gain kept by distillation",
            f"{(p_dist - p_base) / (p_ens - p_base):.0%}", f"{recovered:.0%}")
    run.claim(f"the distilled single model keeps >= {MIN_RECOVERED:.0%} of the ensemble's gain "
              f"over the baseline ({dist - base:+.2f} of {ens - base:+.2f} points)",
              round(recovered, 3), f">= {MIN_RECOVERED}", recovered >= MIN_RECOVERED)
    return results


@experiment("hinton2015", dataset="MNIST, the 5,000 bundled digits (1,000 test)",
            scale=FULL.describe_hinton(),
            summary="LeNet-300-100 student: labels vs distilled from a shift-trained teacher")
def hinton2015(run: Run) -> None:
    run_hinton2015(run, FULL)


@experiment("ensemble", dataset="MNIST, the 5,000 bundled digits (1,000 test)",
            scale=FULL.describe_ensemble(),
            summary="the lecture's speech table: baseline, ensemble, distilled single model")
def ensemble(run: Run) -> None:
    run_ensemble(run, FULL)
