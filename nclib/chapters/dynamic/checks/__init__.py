"""Checks for chapter 06 (dynamic computation): BlockDrop's reward and its self-critical
REINFORCE loss, FBS's winner-take-all and the sliced convolution that computes only the kept
channels (`techniques`, tasks 1-4), a density chosen to meet a MAC budget with an accuracy
bar (`budget`, task 5), then the concept questions (`questions`: why masking saves nothing,
why grouping by policy matters at batch > 1).

When an answer is wrong, the check also tries the usual mistakes (the fraction not squared,
+gamma for a wrong prediction, a flipped sign, a sum over the batch, the baseline left out,
k rounded down, the batch's top-k instead of each image's, every filter computed and then
masked) and, if one of them gives the student's result, names it in the hint.
"""
# tasks 1-4, 5, then the questions: the order of the exercise
from nclib.chapters.dynamic.checks.techniques import (blockdrop_reward, ref_blockdrop_reward,
                                                      ref_self_critical_loss, ref_sliced_conv,
                                                      ref_top_k_mask, self_critical_loss,
                                                      sliced_conv, top_k_mask)
from nclib.chapters.dynamic.checks.budget import (MAC_BUDGET, MIN_ACCURACY, NETWORK,
                                                  choose_density, measure_density)
from nclib.chapters.dynamic.checks.questions import why_grouping, why_masking  # concept questions

__all__ = ["blockdrop_reward", "self_critical_loss", "top_k_mask", "sliced_conv",
           "choose_density", "why_masking", "why_grouping", "ref_blockdrop_reward",
           "ref_self_critical_loss", "ref_top_k_mask", "ref_sliced_conv", "measure_density",
           "MAC_BUDGET", "MIN_ACCURACY", "NETWORK"]
