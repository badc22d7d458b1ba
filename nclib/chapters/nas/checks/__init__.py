"""Checks for chapter 05 (neural architecture search): the controller's log-probability of an
architecture, the REINFORCE loss with a baseline and the moving-average baseline
(`controller`, tasks 1-3), writing an architecture as tokens and an architecture under a MAC
budget found by the student's own search (`space`, tasks 4-5), then the concept questions
(`questions`: why a baseline, why equal budgets).

When an answer is wrong, the check also tries the usual mistakes (the sum of probabilities,
log base 2, the likeliest tokens fed back, a flipped sign, the sum over the batch, no
baseline, swapped weights, tokens from 1, the settings instead of their indices) and, if one
of them gives the student's result, names it in the hint.
"""
# tasks 1-3, 4-5, then the questions: the order of the exercise
from nclib.chapters.nas.checks.controller import (moving_average, policy_loss, ref_moving_average,
                                                  ref_policy_loss, ref_sequence_log_prob,
                                                  sequence_log_prob)
from nclib.chapters.nas.checks.space import (MAC_BUDGET, MIN_VAL_ACC, encode_architecture,
                                             ref_encode_architecture, search_under_budget)
from nclib.chapters.nas.checks.questions import equal_budget, why_baseline  # concept questions

__all__ = ["sequence_log_prob", "policy_loss", "moving_average", "encode_architecture",
           "search_under_budget", "why_baseline", "equal_budget", "ref_sequence_log_prob",
           "ref_policy_loss", "ref_moving_average", "ref_encode_architecture", "MAC_BUDGET",
           "MIN_VAL_ACC"]
