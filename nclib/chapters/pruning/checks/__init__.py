"""Checks for chapter 01 (network pruning): masks, thresholds, masked training (`masks`,
tasks 1-3), filter ranking, channel surgery and compression arithmetic (`filters`, 4-6),
a per-layer sensitivity scan and pruning to a storage budget (`budget`, 7-8).

The references are what a student's answer must agree with:

* `nclib.pruning.magnitude` (Han et al. 2015): which weights a magnitude mask removes and
  the threshold ``quality * std(w)``. A mask is judged by what it must do (remove exactly
  ``round(sparsity * numel)`` weights, none larger than a kept one), so any valid way of
  breaking ties between equal magnitudes passes;
* `nclib.pruning.structured.l1_filter_scores` (Li et al. 2017) for the filter ranking;
* plain PyTorch for masked training and channel removal: the weights a correct answer
  must hold are written out below, a few lines each;
* Han et al.'s compression arithmetic: rate = all weights / kept weights, and bytes with
  Deep Compression's relative indices (Han et al. 2016): every kept weight costs
  value_bits + index_bits bits;
* for the scan, a fresh copy magnitude-pruned in one layer, then `nclib.train.evaluate`; the
  budget task grades the model handed in, measured with `nclib.measure.storage_bytes`
  ("sparse_relative") and its accuracy on the bundled test digits.
"""
# tasks 1-3, 4-6, then 7-8: the order of the exercise
from nclib.chapters.pruning.checks.masks import (apply_masks, magnitude_mask, ref_apply_masks,
                                                 ref_magnitude_mask, ref_std_threshold,
                                                 std_threshold)
from nclib.chapters.pruning.checks.filters import (compression_rates, ref_compression_rates,
                                                   ref_remove_conv_channels, ref_select_l1_filters,
                                                   remove_conv_channels, select_l1_filters)
from nclib.chapters.pruning.checks.budget import (meet_budget, ref_meet_budget,
                                                  ref_sensitivity_scan, sensitivity_scan)
from nclib.chapters.pruning.checks.questions import filter_macs_removed, masked_no_faster  # concept questions

__all__ = ["magnitude_mask", "std_threshold", "apply_masks", "select_l1_filters",
           "remove_conv_channels", "compression_rates", "sensitivity_scan", "meet_budget",
           "filter_macs_removed", "masked_no_faster", "ref_magnitude_mask", "ref_std_threshold",
           "ref_apply_masks", "ref_select_l1_filters", "ref_remove_conv_channels",
           "ref_compression_rates", "ref_sensitivity_scan", "ref_meet_budget"]
