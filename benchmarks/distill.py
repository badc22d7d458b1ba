"""Does a student learn more from a teacher than from labels? Knowledge distillation on
the bundled MNIST digits, printed as tables (not a test).

    NCLIB_THREADS=1 python benchmarks/distill.py

(a) Hinton et al. 2015: a 784-30-30-10 MLP student on 1,000 plain training digits (100 a
    class), trained on labels alone, with `kd_loss` from a SmallVGG teacher, and (c) with
    Ba and Caruana's `logit_mse`. The teacher saw the same 1,000 digits, each moved by up to
    2 pixels at random every epoch, so it knows about shifts, which the student's plain
    images never show. Each method gets its best learning rate on the validation set from
    a small grid; then a temperature sweep at the KD learning rate.
(b) An ensemble of 4 LeNet-300-100 as teacher, each trained on labels with random shifts
    (different seeds); a single member is the baseline, and the distilled model is one more
    LeNet-300-100 trained with the members' recipe (same shifted batches, epochs, lr), with
    the ensemble's soft targets instead of the labels alone.

Accuracies are on the 1,000 test digits, mean ± standard deviation (min-max) over seeds.
"""
import time

import torch

import nclib
from nclib import data, distill, train
from nclib.chapters.distillation.experiments import STUDENT, lecture_parts
from nclib.chapters.distillation.experiments import train_model as train_recipe

N_TRAIN = 1000  # training digits: few enough that what the teacher knows shows
SEEDS = (0, 1, 2)
MAX_SHIFT = 2  # pixels, each direction
TEACHER_EPOCHS, TEACHER_LR = 30, 2e-3
STUDENT_EPOCHS = 40
LRS = (3e-3, 1e-2, 2e-2)  # Adam learning rates tried for every student method
TEMPERATURES = (1, 2, 4, 8, 20)
ALPHA = 0.9  # weight of the soft term (Hinton et al.: "considerably lower weight" on labels)
NUM_MEMBERS, MEMBER_EPOCHS, MEMBER_LR = 4, 60, 3e-3


def fmt(accs: list[float]) -> str:
    a = torch.tensor(accs)
    spread = f" ± {a.std():.2f} ({a.min():.1f}-{a.max():.1f})" if len(accs) > 1 else ""
    return f"{a.mean():6.2f}{spread}"


def mean(accs: list[float]) -> float:
    return sum(accs) / len(accs)


def train_model(parts: data.Splits, name: str, seed: int, epochs: int, lr: float,
                loss_fn=None, max_shift: int = 0) -> tuple[torch.nn.Module, float, float]:
    """The chapter's `train_model`; returns the model with its val and test accuracy (%)."""
    model = train_recipe(parts, name, seed, epochs, lr, loss_fn, max_shift)
    L = data.loaders(parts)
    return model, 100 * train.evaluate(model, L.val), 100 * train.evaluate(model, L.test)


def students(parts, lr, loss_fn=None, max_shift=0, epochs=STUDENT_EPOCHS, name=STUDENT):
    """Students over SEEDS: (val accuracies, test accuracies)."""
    runs = [train_model(parts, name, s, epochs, lr, loss_fn, max_shift)[1:] for s in SEEDS]
    return [v for v, _ in runs], [t for _, t in runs]


def part_a(parts: data.Splits) -> None:
    t0 = time.perf_counter()
    teacher, _, teacher_acc = train_model(parts, "vgg_small", 0, TEACHER_EPOCHS, TEACHER_LR,
                                          max_shift=MAX_SHIFT)
    # The student's images are never augmented, so the teacher answers each one once.
    cached = distill.CachedTeacher(teacher, parts.train[0])
    print(f"(a) teacher: SmallVGG, {TEACHER_EPOCHS} epochs, Adam {TEACHER_LR}, random shifts "
          f"<= {MAX_SHIFT} px: test {teacher_acc:.2f}%  ({time.perf_counter() - t0:.1f} s)")
    print(f"    students: 784-30-30-10 on the {N_TRAIN:,} plain digits, {STUDENT_EPOCHS} "
          f"epochs, Adam, lr picked on validation from {LRS}, seeds {SEEDS}")
    t0 = time.perf_counter()
    methods = {"labels only": None,
               f"kd_loss T=4 alpha={ALPHA}": distill.DistillationLoss(cached, 4, ALPHA),
               "logit_mse": distill.DistillationLoss(cached, kind="logit_mse")}
    print(f"    {'method':<24}{'lr':>7}{'val %':>9}   test %")
    best = {}
    for label, loss_fn in methods.items():
        runs = {lr: students(parts, lr, loss_fn) for lr in LRS}
        lr = max(LRS, key=lambda r: mean(runs[r][0]))
        best[label] = lr, runs[lr][1]
        others = "  ".join(f"{r:g}: {mean(runs[r][1]):.2f}" for r in LRS if r != lr)
        print(f"    {label:<24}{lr:>7g}{mean(runs[lr][0]):>9.2f}  {fmt(runs[lr][1])}   "
              f"(test at {others})")
    print(f"    ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    lr, kd_t4 = best[f"kd_loss T=4 alpha={ALPHA}"]
    print(f"    temperature sweep, kd_loss alpha={ALPHA}, lr={lr:g}:")
    kd = {}
    for T in TEMPERATURES:
        loss_fn = distill.DistillationLoss(cached, T, ALPHA)
        kd[T] = kd_t4 if T == 4 else students(parts, lr, loss_fn)[1]
        print(f"      T={T:<3} {fmt(kd[T])}")
    gain = mean(kd_t4) - mean(best["labels only"][1])
    print(f"    ({time.perf_counter() - t0:.1f} s)")
    print(f"    KD (T=4) - labels only: {gain:+.2f} points (target >= +0.8): "
          f"{'met' if gain >= 0.8 else 'NOT MET'}; logit_mse - labels only: "
          f"{mean(best['logit_mse'][1]) - mean(best['labels only'][1]):+.2f}")


def part_b(parts: data.Splits) -> None:
    t0 = time.perf_counter()
    members, member_accs = [], []
    for k in range(NUM_MEMBERS):
        model, _, acc = train_model(parts, "lenet300", 100 + k, MEMBER_EPOCHS, MEMBER_LR,
                                    max_shift=MAX_SHIFT)
        members.append(model)
        member_accs.append(acc)
    test = data.loaders(parts).test
    ensemble = distill.Ensemble(members)  # the average of the members' probabilities
    ensemble_acc = 100 * train.evaluate(ensemble, test)
    print(f"\n(b) ensemble teacher: {NUM_MEMBERS} LeNet-300-100, each {MEMBER_EPOCHS} epochs, "
          f"Adam {MEMBER_LR}, random shifts <= {MAX_SHIFT} px, seeds 100-{99 + NUM_MEMBERS}  "
          f"({time.perf_counter() - t0:.1f} s)")
    print(f"    {'model':<46}test %")
    print(f"    {'single member (baseline)':<46}{fmt(member_accs)}")
    print(f"    {'ensemble, averaged probabilities (the teacher)':<46}{ensemble_acc:6.2f}")
    t0 = time.perf_counter()
    # The members' recipe, shifts included: the teacher answers each shifted batch live.
    _, kd = students(parts, MEMBER_LR, distill.DistillationLoss(ensemble, 4, ALPHA),
                     MAX_SHIFT, MEMBER_EPOCHS, name="lenet300")
    print(f"    {f'distilled single, kd_loss T=4 alpha={ALPHA}':<46}{fmt(kd)}")
    gain = ensemble_acc - mean(member_accs)
    for label, accs in (("kd_loss", kd),):
        recovered = (mean(accs) - mean(member_accs)) / gain if gain > 0 else float("nan")
        print(f"    {label} recovers {100 * recovered:.0f}% of the ensemble's "
              f"{gain:+.2f} points (target >= 50%): {'met' if recovered >= 0.5 else 'NOT MET'}")
    print(f"    ({time.perf_counter() - t0:.1f} s)")


def main() -> None:
    start = time.perf_counter()
    print(nclib.setup(seed=0, device="cpu"))
    parts = lecture_parts(N_TRAIN)  # a stratified subset: N_TRAIN / 10 digits of each class
    print(f"MNIST-5k: {len(parts.train[1]):,} train, {len(parts.val[1])} val, "
          f"{len(parts.test[1]):,} test digits\n")
    part_a(parts)
    part_b(parts)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
