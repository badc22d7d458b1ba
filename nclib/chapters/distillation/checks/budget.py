"""Chapter 02 check, task 6: a student of one's own design under a parameter budget, distilled
from the lecture's teacher (Hinton et al. 2015, the lecture's section 5 with a free design).

The check measures the trained model it is handed, not how it was trained: it must map
digits (B, 1, 28, 28) to logits (B, 10), have at most `MAX_PARAMS` parameters
(`measure.count_params`, what the budget counts) and reach `MIN_ACCURACY` on the chapter's
1,000 test digits (`experiments.lecture_parts().test`).
"""
from __future__ import annotations

import torch
from torch import nn

from nclib import data, measure, train
from nclib.chapters.distillation import experiments
from nclib.course.checking import Failure, Mismatch, StudentError, Text, call, describe, task

# The lecture's student, 784-30-30-10, has 24,790 parameters and reaches 88.7% on the test
# digits from the labels alone, 90.8% with kd_loss (T = 4, alpha = 0.9, Adam 3e-3, 40 epochs;
# mean of 3 seeds). The budget is about four fifths of that, and the bar more than a point
# above it. Measured on one thread with kd_loss T = 4, alpha = 0.9, Adam 3e-3, the zoo's
# kd-teacher, seeds 0, 1, 2 (test accuracy %, and the slowest seed's training time):
#   MLP 784-24-10, 19,090 parameters, 40 epochs                      90.3  90.3  90.2   3 s
#   2x2 average pooling, then MLP 196-90-10, 18,640, 40 epochs       91.7  91.5  92.3   3 s
#   conv 5x5 8 - pool - conv 5x5 16 - pool - Linear(256, 10), 5,994,
#   15 epochs (the solution; labels alone: 95.6 93.3 95.0)           96.0  95.0  95.8   4 s
# so a network as small as the lecture's, fully connected, falls short; one that uses the
# digits' shape passes with 3 points to spare on every seed.
MAX_PARAMS = 20_000
MIN_ACCURACY = 92.0  # percent of the 1,000 test digits
LECTURE_PARAMS = 24_790  # models.MLP(), the lecture's 784-30-30-10 student
LECTURE_KD_ACCURACY = 90.8  # that student distilled, mean of 3 seeds (above)
NUM_CLASSES = 10
PROBE = 4  # test digits the output shape is checked on

__all__ = ["student_under_budget", "MAX_PARAMS", "MIN_ACCURACY", "LECTURE_PARAMS"]


def _check_output(student: nn.Module, x: torch.Tensor) -> None:
    """Raise `Mismatch` unless the student maps digits x (B, 1, 28, 28) to logits (B, 10)."""
    shown = f"(your model on {len(x)} test digits, {describe(x)})"
    device = next(student.parameters(), torch.empty(0)).device
    was_training = student.training
    student.eval()  # no BatchNorm statistics updated, no dropout, by looking at it
    try:
        with torch.no_grad():
            out = student(x.to(device))
    except Exception as e:  # NotImplementedError too: a module without forward is no stub
        raise StudentError(shown, e) from e
    finally:
        student.train(was_training)
    want = Text(f"logits of shape ({len(x)}, {NUM_CLASSES})")
    if not torch.is_tensor(out):
        raise Mismatch(shown, want, out, "forward must return one tensor: the logits.")
    got = Text(f"a tensor of shape {tuple(out.shape)}")
    if out.ndim != 2 or out.shape[0] != len(x):
        raise Mismatch(shown, want, got, "one row per digit, one column per class: follow the "
                       "shape from layer to layer (the shape comments of nclib.models show how).")
    if out.shape[1] != NUM_CLASSES:
        raise Mismatch(shown, want, got, f"one score for each of the {NUM_CLASSES} digit "
                       "classes: look at the out_features of your last layer.")


@task("distillation", points=2, hint="Lecture 02, sections 1 and 5: the student's size "
      "(measure.report) and its training recipe; measure.count_params is what the budget counts.")
def student_under_budget(student):
    """student_under_budget(model): a trained nn.Module that maps digits (B, 1, 28, 28) to
    logits (B, 10), with at most 20,000 parameters and at least 92% accuracy on the
    chapter's 1,000 test digits; distilled with your own kd_loss from the zoo's kd-teacher."""
    if not isinstance(student, nn.Module):
        raise Failure(f"hand in the trained model, an nn.Module (got {describe(student)}).")
    parts = experiments.lecture_parts()
    _check_output(student, parts.test[0][:PROBE])
    n = measure.count_params(student)
    shown = "(your model on the chapter's 1,000 test digits)"
    with torch.random.fork_rng(devices=[]):  # iterating a DataLoader draws a random seed
        acc = 100 * call(train.evaluate, shown, student, data.loaders(parts).test)
    if n > MAX_PARAMS:
        raise Mismatch("(your model, measure.count_params(model))",
                       Text(f"at most {MAX_PARAMS:,} parameters"),
                       Text(f"{n:,} parameters, {n - MAX_PARAMS:,} over the budget (test accuracy "
                            f"{acc:.1f}%)"),
                       "which layers hold the parameters? Count them layer by layer "
                       "(measure.count_params of each child module); chapter 00 shows what a "
                       "Linear layer's and a convolution's weights depend on.")
    if acc < MIN_ACCURACY:
        chance = acc < 100 / NUM_CLASSES + 10  # guessing gets 10%
        raise Mismatch(shown, Text(f"test accuracy >= {MIN_ACCURACY:g}%"),
                       Text(f"{acc:.1f}%, with {n:,} parameters (budget {MAX_PARAMS:,})"),
                       "that is about chance: hand in the model after training it." if chance else
                       "compare your training with the lecture's (section 5: optimizer, learning "
                       "rate, epochs, temperature) and try designs on the validation digits; "
                       "chapter 00's LeNet-300-100 and LeNet-5 spend their parameters very "
                       "differently.")
    return (f"{n:,} parameters (budget {MAX_PARAMS:,}), {acc:.1f}% on the test digits (bar "
            f"{MIN_ACCURACY:g}%); the lecture's student: {LECTURE_PARAMS:,} parameters, "
            f"{LECTURE_KD_ACCURACY:g}% distilled.")
