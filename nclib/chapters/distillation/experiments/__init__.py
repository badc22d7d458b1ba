"""Chapter 02: knowledge distillation on the bundled MNIST digits, beside the lecture.

* `hinton2015` (`hinton`): Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural
  Network" (arXiv 1503.02531, 2015), their MNIST experiment at small scale. The teacher
  (SmallVGG, 40,794 parameters) trains on digits moved by up to 2 pixels at random, as
  theirs did; the student (a 784-30-30-10 MLP, 24,790 parameters: their "30 units per
  layer") only ever sees the plain digits. Students trained on labels alone, with `kd_loss`
  at several temperatures, and with Ba and Caruana's `logit_mse` (NIPS 2014).
* `ensemble` (`ensemble`): the lecture's speech table (Hinton et al., Table 1: baseline, 10x
  ensemble, distilled single model) with an ensemble of 4 LeNet-300-100 on digits; an
  ensemble averages its members' probabilities (`distill.Ensemble`).

Both train on a stratified 1,000-digit subset of the training split (100 a class), so the
student has something left to learn from the teacher, and test on the 1,000 test digits;
with `nclib reproduce NAME --dataset mnist --root DIR` they train on every digit of the
full MNIST files instead, as Hinton et al. did.
The learning rates were picked on the validation digits by benchmarks/distill.py.
`run_hinton2015` and `run_ensemble` take a `Scale`, so the tests can run them small. The
models of the full-scale runs are zoo recipes too (`kd-teacher`, `kd-student-...`,
`kd-member-...`), which the lecture loads instead of training them in its cells.
"""
from nclib.chapters.distillation.experiments.hinton import (
    ALPHA, FULL, KD_TEMPERATURE, MAX_SHIFT, MEMBER_LR, MIN_GAIN, STUDENT, STUDENT_LR, TEACHER, Scale, accuracy,
    lecture_parts, se_of_difference, soft_target_kl, spread, student_name, train_model)
from nclib.chapters.distillation.experiments.ensemble import member_name, run_ensemble
from nclib.chapters.distillation.experiments.hinton import run_hinton2015

__all__ = ["ALPHA", "FULL", "KD_TEMPERATURE", "MAX_SHIFT", "MIN_GAIN", "STUDENT", "STUDENT_LR",
           "TEACHER", "MEMBER_LR", "Scale", "accuracy", "lecture_parts", "se_of_difference", "soft_target_kl", "spread",
           "student_name", "member_name", "train_model", "run_hinton2015", "run_ensemble"]
