"""Chapter 03 experiment `apprentice`: a ternary student trained on labels only, and distilled
from a full-precision teacher (Mishra and Marr, "Apprentice", ICLR 2018).

Apprentice names three schemes: (A) train the full-precision teacher and the low-precision
student jointly, (B) distil into the low-precision student from an already trained teacher,
(C) start from a trained full-precision student, then lower its precision and fine-tune it
with the teacher. We run scheme B, the one a course can cache: the teacher is chapter 02's
SmallVGG (the zoo's `kd-teacher`, trained on 1,000 digits shifted by up to 2 pixels) and the
data chapter 02's 1,000 training digits, so that the student has something to learn from it.

The student is LeNet-5 with every Linear and Conv2d ternary (Li and Liu's ternary weight
networks, `nclib.quant.binary.ternarize`: {-alpha, 0, +alpha} per output channel, 2 bits a
weight) and fp32 activations (the paper kept 8-bit or more activations; we leave them float
to isolate the weights), trained from scratch 20 epochs with Adam 1e-3 on labels, or with
chapter 02's KD loss (T = 4, soft weight 0.9). Three seeds; the claim is on their means.
The paper's ImageNet numbers for ternary ResNets are not quoted: we could not check them
in the paper's tables.
"""
from __future__ import annotations

import statistics

import torch
from torch import nn

from nclib import data, distill, models, train, zoo
from nclib.course import discover
from nclib.course.reproduce import Run, experiment
from nclib.quant import binary

SEEDS = (0, 1, 2)
STUDENT = "lenet5"
EPOCHS, LR = 20, 1e-3
METHODS = ("labels", "kd")
MIN_GAIN = 0.5  # points of test accuracy distillation must add (mean of the seeds)
TEACHER = "kd-teacher"

__all__ = ["SEEDS", "STUDENT", "EPOCHS", "LR", "MIN_GAIN", "TEACHER", "ternary_student",
           "student_name", "parts", "run_apprentice"]


def _chapter02():
    return discover.chapter_part("distillation", "experiments")  # registers kd-teacher


def parts() -> data.Splits:
    """Chapter 02's splits: 1,000 training digits (100 a class), 500 val, 1,000 test."""
    return _chapter02().lecture_parts()


def ternary_student(seed: int = 0) -> nn.Module:
    """LeNet-5 with every Linear and Conv2d ternary, initialised from `seed`."""
    torch.manual_seed(seed)
    model = models.create(STUDENT)
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return binary.binarize_layers(model, names, weights="ternary")


def _train(method: str, seed: int, epochs: int = EPOCHS, teacher: nn.Module | None = None) -> nn.Module:
    p, ch2 = parts(), _chapter02()
    model = ternary_student(seed)
    loss = None
    if method == "kd":
        teacher = teacher if teacher is not None else zoo.trained(TEACHER, progress=False)
        loss = distill.DistillationLoss(distill.CachedTeacher(teacher, p.train[0]), ch2.KD_TEMPERATURE,
                                        ch2.ALPHA)
    torch.manual_seed(seed)
    train.fit(model, data.loaders(p, batch_size=64, seed=seed).train, epochs=epochs, lr=LR,
              loss_fn=loss, progress=False)
    return model.eval()


def student_name(method: str, seed: int) -> str:
    """The zoo name: 'app-lenet5-kd-s0'."""
    return f"app-{STUDENT}-{method}-s{seed}"


def _build(**_) -> nn.Module:
    return ternary_student(0)


def _fit(method: str, seed: int, epochs: int, teacher_key: str, progress: bool = True):
    """(`teacher_key` is in the settings so that the cache key follows the teacher.)"""
    model = _train(method, seed, epochs)
    return model, {"test_accuracy": train.evaluate(model, data.loaders(parts()).test)}


def _register() -> None:
    _chapter02()
    for method in METHODS:
        for seed in SEEDS:
            zoo.register(student_name(method, seed), train=_fit, build=_build,
                         settings=dict(method=method, seed=seed, epochs=EPOCHS,
                                       teacher_key=zoo.RECIPES[TEACHER].key),
                         depends_on=(ternary_student, _train, binary.ternarize, binary.BinarizedLinear),
                         description=f"chapter 03: ternary LeNet-5, {method}, seed {seed} (Apprentice)")


_register()


def run_apprentice(run: Run, seeds=SEEDS, epochs: int | None = None) -> dict:
    """Test accuracy of the ternary student per method and seed, and the distillation claim.

    With `epochs` the students are trained here (a test runs them short); by default they
    come from the zoo."""
    test = data.loaders(parts()).test
    teacher = zoo.trained(TEACHER, progress=False)
    run.row("teacher (SmallVGG, fp32): test accuracy", None, round(100 * train.evaluate(teacher, test), 2), "%")
    accs = {}
    for method in METHODS:
        accs[method] = []
        for seed in seeds:
            model = (zoo.trained(student_name(method, seed), progress=False) if epochs is None
                     else _train(method, seed, epochs, teacher))
            accs[method].append(100 * train.evaluate(model, test))
        label = "labels only" if method == "labels" else "distilled from the teacher (scheme B)"
        run.row(f"ternary LeNet-5, {label}: test accuracy, mean of {len(seeds)} seeds", None,
                round(statistics.fmean(accs[method]), 2), "%")
        run.row(f"ternary LeNet-5, {label}: per seed", None,
                ", ".join(f"{a:.1f}" for a in accs[method]), "%")
    gain = statistics.fmean(accs["kd"]) - statistics.fmean(accs["labels"])
    run.claim(f"distillation adds at least {MIN_GAIN:g} points to the ternary student (mean of "
              f"{len(seeds)} seeds: {gain:+.2f})", round(gain, 2), f">= {MIN_GAIN:g}", gain >= MIN_GAIN - 1e-9)
    return accs


@experiment("apprentice", dataset="MNIST, chapter 02's 1,000 training digits of the 5,000 bundled "
            "(100 a class), 1,000 test digits",
            scale=f"ternary LeNet-5, {EPOCHS} epochs Adam {LR:g}, seeds {', '.join(map(str, SEEDS))}; "
                  "teacher chapter 02's SmallVGG; the paper: ternary ResNets on ImageNet",
            summary="Apprentice scheme B: a ternary student with labels only vs distilled")
def apprentice(run: Run) -> None:
    run_apprentice(run)
