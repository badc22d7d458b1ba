"""Chapter 02 experiment `hinton2015`: Hinton, Vinyals and Dean's MNIST experiment at the
scale of the bundled digits. A SmallVGG teacher trained on shifted digits; 784-30-30-10
students trained on plain digits with labels alone, with `kd_loss` at several temperatures
and with `logit_mse`. The same functions train the zoo recipes the lecture loads. With
``--dataset mnist`` every model trains on the whole training file, as Hinton et al.'s did.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from nclib import data, distill, measure, models, train, zoo
from nclib.course.papers import table
from nclib.course.reproduce import Run, Source, experiment, se_of_difference

MAX_SHIFT = 2  # pixels in each direction, for the teacher's (and the ensemble's) training
ALPHA = 0.9  # weight of the soft term (Hinton et al.: "a considerably lower weight" on labels)
KD_TEMPERATURE = 4.0  # Hinton et al.: with 30 units per layer, T of 2.5-4 worked best
TEACHER, TEACHER_LR = "vgg_small", 2e-3
STUDENT = "mlp"  # models.MLP(): 784-30-30-10, 24,790 parameters
# Adam, for every student method: best on the validation digits (benchmarks/distill.py)
STUDENT_LR = 3e-3
MEMBER_LR = 3e-3  # Adam, the ensemble members' recipe; the distilled model uses it too
MIN_GAIN = 0.8  # points of test accuracy KD must add over labels alone (mean of the seeds)
PAPER_WIDTHS = {"teacher": (1200, 1200), "student": (800, 800)}  # Hinton et al., section 3
METHODS = ("labels", "kd", "logit_mse")
SHAPE = (1, 28, 28)


@dataclass(frozen=True)
class Scale:
    """How big a run is: training digits (None: all), epochs, seeds, temperatures, members."""

    n_train: int | None = 1000
    seeds: tuple[int, ...] = (0, 1, 2)
    teacher_epochs: int = 30
    student_epochs: int = 40
    temperatures: tuple[float, ...] = (1, 2, 4, 8, 20)
    num_members: int = 4
    member_epochs: int = 60

    def describe_hinton(self) -> str:
        return (f"{self.digits()}; teacher SmallVGG {self.teacher_epochs} epochs (Adam {TEACHER_LR:g}, random shifts "
                f"<= {MAX_SHIFT} px); students 784-30-30-10 MLP {self.student_epochs} epochs "
                f"(Adam {STUDENT_LR:g}) on plain digits, seeds {_seeds(self.seeds)}; mean ± "
                "std (min-max) over seeds")

    def describe_ensemble(self) -> str:
        return (f"{self.digits()}; {self.num_members} LeNet-300-100 members and the distilled LeNet-300-100, "
                f"each {self.member_epochs} epochs, Adam {MEMBER_LR:g}, random shifts <= "
                f"{MAX_SHIFT} px; distilled seeds {_seeds(self.seeds)}; mean ± std (min-max)")

    def digits(self) -> str:
        """'1,000 training digits (100 a class)', or every one when `n_train` is None."""
        if self.n_train is None:
            return "every training digit (as Hinton et al.)"
        return f"{self.n_train:,} training digits ({self.n_train // 10} a class)"

    def for_source(self, source: Source) -> Scale:
        """This scale, on every training digit of a full data set (not the bundled one)."""
        return self if source.name == "bundled" else replace(self, n_train=None)


FULL = Scale()


def _seeds(seeds: tuple[int, ...]) -> str:
    return ", ".join(map(str, seeds))


def lecture_parts(n_train: int | None = FULL.n_train, source: Source | None = None) -> data.Splits:
    """The chapter's data: `n_train` training digits (a tenth of each class; None: all), 500 val,
    1,000 test; or those of `source` (`Run.source`), cut to `n_train` the same way."""
    parts = (source or Source()).splits()
    return parts if n_train is None else data.stratified_subset(parts, n_train)


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


def soft_target_kl(student: nn.Module, teacher: nn.Module, X: torch.Tensor,
                   temperature: float = KD_TEMPERATURE) -> float:
    """Mean KL(teacher || student) of their softmaxes at `temperature` over the inputs `X`:
    how far the student is from the teacher's soft targets (0 when it matches them)."""
    with torch.no_grad():
        log_s = F.log_softmax(student.eval()(X) / temperature, dim=1)  # (N, C)
        log_t = F.log_softmax(teacher.eval()(X) / temperature, dim=1)  # (N, C)
    return (log_t.exp() * (log_t - log_s)).sum(1).mean().item()


def student_loss(method: str, teacher: nn.Module, temperature: float | None = None):
    """The `loss_fn` of a student method: None (labels), `kd_loss` at T, or `logit_mse`."""
    if method == "labels":
        return None
    if method == "kd":
        return distill.DistillationLoss(teacher, temperature, ALPHA)
    if method == "logit_mse":
        return distill.DistillationLoss(teacher, kind="logit_mse")
    raise ValueError(f"method={method!r}: expected one of {', '.join(METHODS)}")


def train_student(parts: data.Splits, method: str, teacher: nn.Module, seed: int, epochs: int,
                  temperature: float | None = KD_TEMPERATURE) -> nn.Module:
    """A 784-30-30-10 student on the plain training digits; the teacher answers each once."""
    cached = distill.CachedTeacher(teacher, parts.train[0])
    return train_model(parts, STUDENT, seed, epochs, STUDENT_LR,
                       student_loss(method, cached, temperature))


# ---------------------------------------------------------------- zoo recipes (the lecture's)
def build_teacher(**_) -> nn.Module:
    return models.create(TEACHER)


def fit_teacher(n_train: int, epochs: int, lr: float, max_shift: int, seed: int,
                progress: bool = True):
    parts = lecture_parts(n_train)
    teacher = train_model(parts, TEACHER, seed, epochs, lr, max_shift=max_shift)
    return teacher, {"test_accuracy": train.evaluate(teacher, data.loaders(parts).test)}


def build_student(**_) -> nn.Module:
    return models.create(STUDENT)


def fit_student(method: str, temperature: float | None, seed: int, n_train: int, epochs: int,
                teacher: dict, progress: bool = True):
    parts = lecture_parts(n_train)
    model = train_student(parts, method, zoo.trained(teacher["name"], progress=progress), seed,
                          epochs, temperature)
    return model, {"test_accuracy": train.evaluate(model, data.loaders(parts).test)}


def student_name(method: str, seed: int = 0, temperature: float = KD_TEMPERATURE) -> str:
    """The zoo name of a full-scale student: 'kd-student-labels-s0', 'kd-student-kd-T4-s1'."""
    return f"kd-student-{method}{f'-T{temperature:g}' if method == 'kd' else ''}-s{seed}"


def _register(scale: Scale = FULL) -> None:
    recipe = zoo.register("kd-teacher", train=fit_teacher, build=build_teacher, settings=dict(
        n_train=scale.n_train, epochs=scale.teacher_epochs, lr=TEACHER_LR, max_shift=MAX_SHIFT,
        seed=0), depends_on=(train_model, lecture_parts),
        description=f"chapter 02's teacher: SmallVGG, {scale.n_train:,} digits "
        f"shifted <= {MAX_SHIFT} px, {scale.teacher_epochs} epochs")
    teacher = {"name": recipe.name, "key": recipe.key}
    runs = [(m, KD_TEMPERATURE, s) for m in METHODS for s in scale.seeds]
    runs += [("kd", T, 0) for T in scale.temperatures if T != KD_TEMPERATURE]
    for method, T, seed in runs:
        zoo.register(student_name(method, seed, T), train=fit_student, build=build_student,
                     settings=dict(method=method, temperature=T if method == "kd" else None,
                                   seed=seed, n_train=scale.n_train,
                                   epochs=scale.student_epochs, teacher=teacher),
                     depends_on=(train_student, student_loss, train_model, lecture_parts),
                     description=f"chapter 02's 784-30-30-10 student, {method}"
                     + (f" T={T:g}" if method == "kd" else "") + f", seed {seed}")


_register()


# ---------------------------------------------------------------- the experiment
def _size_rows(run: Run, teacher: nn.Module, student: nn.Module) -> None:
    paper = {who: models.MLP(widths) for who, widths in PAPER_WIDTHS.items()}
    for who, net in (("teacher", teacher), ("student", student)):
        run.row(f"{who} parameters", measure.count_params(paper[who]), measure.count_params(net))
    for who, net in (("teacher", teacher), ("student", student)):
        run.row(f"{who} MACs per digit", measure.count_macs(paper[who], SHAPE).total,
                measure.count_macs(net, SHAPE).total)
    for who, net in (("teacher", teacher), ("student", student)):
        run.row(f"{who} size, fp32", measure.storage_bytes(paper[who]),
                measure.storage_bytes(net), "bytes")


def run_hinton2015(run: Run, scale: Scale = FULL) -> dict[str, list[float]]:
    """Teacher, labels-only, KD and logit-matching students, and a temperature sweep.

    Returns the test accuracies (%) by row label, one per seed (the teacher: one), and
    "KL to the teacher, <label>": `soft_target_kl` on the test digits, one per seed.
    """
    parts = lecture_parts(scale.n_train, run.source)
    test = data.loaders(parts).test
    shifted = data.shifted_copy(test, MAX_SHIFT)
    teacher = train_model(parts, TEACHER, 0, scale.teacher_epochs, TEACHER_LR, max_shift=MAX_SHIFT)

    def students(method: str, T: float = KD_TEMPERATURE) -> list[nn.Module]:
        return [train_student(parts, method, teacher, s, scale.student_epochs, T) for s in scale.seeds]

    kd = f"kd_loss T={KD_TEMPERATURE:g}, alpha={ALPHA:g}"
    trained = {"labels only": students("labels"), kd: students("kd"),
               "logit_mse (Ba and Caruana)": students("logit_mse")}
    results = {"teacher": [accuracy(teacher, test)]}
    paper = table("hinton2015-mnist")  # full MNIST, 10,000 test digits: a different scale
    paper_acc = {"labels only": paper.row("student, labels only")["test_accuracy_pct"],
                 kd: paper.row("student, distilled (T = 20)")["test_accuracy_pct"]}
    _size_rows(run, teacher, trained[kd][0])
    run.row("teacher SmallVGG, trained on shifted digits", paper.row("teacher")["test_accuracy_pct"],
            results["teacher"][0], "%")
    run.row("teacher on shifted test digits", None, accuracy(teacher, shifted), "%")
    X_test = parts.test[0]
    for label, nets in trained.items():
        results[label] = [accuracy(m, test) for m in nets]
        run.row(f"student 784-30-30-10, {label}", paper_acc.get(label), spread(results[label]), "%")
        results[f"KL to the teacher, {label}"] = [soft_target_kl(m, teacher, X_test) for m in nets]
        run.row(f"  KL(teacher || student) at T={KD_TEMPERATURE:g}, test digits", None,
                f"{statistics.fmean(results[f'KL to the teacher, {label}']):.3f}")
    for label in ("labels only", kd):
        results[f"{label}, shifted"] = [accuracy(m, shifted) for m in trained[label]]
        run.row(f"student, {label}, on shifted test digits", None,
                spread(results[f"{label}, shifted"]), "%")
    soft = {}
    for T in scale.temperatures:
        nets = trained[kd] if T == KD_TEMPERATURE else students("kd", T)
        soft[T] = results[kd] if T == KD_TEMPERATURE else [accuracy(m, test) for m in nets]
        results[f"T={T:g}"] = soft[T]
        results[f"KL to the teacher, T={T:g}"] = [soft_target_kl(m, teacher, X_test) for m in nets]
        run.row(f"temperature sweep: kd_loss T={T:g}", None, spread(soft[T]), "%")
    gain = statistics.fmean(results[kd]) - statistics.fmean(results["labels only"])
    run.claim(f"KD ({kd}) beats labels only by >= {MIN_GAIN} points of test accuracy, mean "
              f"of {len(scale.seeds)} seeds: {gain:+.2f}", round(gain, 2), f">= {MIN_GAIN}",
              gain >= MIN_GAIN)
    kd_shifted, plain_shifted = results[f"{kd}, shifted"], results["labels only, shifted"]
    shift_gain = statistics.fmean(kd_shifted) - statistics.fmean(plain_shifted)
    bar = 2 * se_of_difference(kd_shifted, plain_shifted)
    run.claim(f"on shifted test digits, which no student saw, the KD student beats the "
              f"labels-only one by more than twice the standard error of the difference: "
              f"{shift_gain:+.2f} vs {bar:.2f}", round(shift_gain, 2), f"> {bar:.2f}",
              shift_gain > bar)
    best = max(soft, key=lambda T: statistics.fmean(soft[T]))
    run.claim(f"the best temperature is above 1 (soft targets beat sharp ones): T={best:g}",
              best, "> 1", best > 1)
    return results


@experiment("hinton2015", dataset="MNIST, the 5,000 bundled digits (1,000 test)",
            scale=FULL.describe_hinton(), datasets=("bundled", "mnist"),
            summary="784-30-30-10 student: labels vs distilled from a shift-trained SmallVGG")
def hinton2015(run: Run) -> None:
    scale = FULL.for_source(run.source)
    run.scale = scale.describe_hinton()
    run_hinton2015(run, scale)
