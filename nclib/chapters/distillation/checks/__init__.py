"""Checks for chapter 02 (knowledge distillation): soft targets and the distillation losses
(`losses`, tasks 1-3), an ensemble's prediction and one training step of a student
(`training`, tasks 4-5), and a student of one's own design under a parameter budget
(`budget`, task 6), then the concept questions (`questions`).

The references are `nclib.distill` (Hinton et al. 2015; Ba and Caruana 2014). When an answer
is wrong, the check also tries the usual mistakes (no T^2, "mean" instead of "batchmean",
the KL divergence the wrong way round, ...) and, if one of them gives the student's number,
says which one in the hint. Task 6 has no reference: its check measures the trained model
handed in (output shape, parameters, test accuracy) against the budget.
"""
# tasks 1-3, 4-5, 6: the order of the exercise
from nclib.chapters.distillation.checks.losses import (kd_loss, logit_mse, ref_kd_loss, ref_logit_mse,
                                                       ref_softmax_with_temperature,
                                                       softmax_with_temperature)
from nclib.chapters.distillation.checks.training import (distillation_step, ensemble_probs,
                                                         ref_distillation_step, ref_ensemble_probs)
from nclib.chapters.distillation.checks.budget import student_under_budget
from nclib.chapters.distillation.checks.questions import mean_vs_batchmean, why_t_squared  # concept questions

__all__ = ["softmax_with_temperature", "kd_loss", "logit_mse", "ensemble_probs",
           "distillation_step", "student_under_budget", "why_t_squared", "mean_vs_batchmean",
           "ref_softmax_with_temperature", "ref_kd_loss", "ref_logit_mse",
           "ref_ensemble_probs", "ref_distillation_step"]
