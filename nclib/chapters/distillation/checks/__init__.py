"""Checks for chapter 02 (knowledge distillation): soft targets and the distillation losses
(`losses`, tasks 1-3), an ensemble's prediction and one training step of a student
(`training`, tasks 4-5).

The references are `nclib.distill` (Hinton et al. 2015; Ba and Caruana 2014). When an answer
is wrong, the check also tries the usual mistakes (no T^2, "mean" instead of "batchmean",
the KL divergence the wrong way round, ...) and, if one of them gives the student's number,
says which one in the hint.
"""
# tasks 1-3, then 4-5: the order of the exercise
from nclib.chapters.distillation.checks.losses import (kd_loss, logit_mse, ref_kd_loss, ref_logit_mse,
                                                       ref_softmax_with_temperature,
                                                       softmax_with_temperature)
from nclib.chapters.distillation.checks.training import (distillation_step, ensemble_probs,
                                                         ref_distillation_step, ref_ensemble_probs)
from nclib.chapters.distillation.checks.questions import mean_vs_batchmean, why_t_squared  # concept questions

__all__ = ["softmax_with_temperature", "kd_loss", "logit_mse", "ensemble_probs",
           "distillation_step", "why_t_squared", "mean_vs_batchmean",
           "ref_softmax_with_temperature", "ref_kd_loss", "ref_logit_mse",
           "ref_ensemble_probs", "ref_distillation_step"]
