"""Chapter 01: the pruning tables of the lecture, at the scale of the bundled digits
(`han`: weights; `filters`: ThiNet, filter pruning, rethinking).

* `han2015-lenet300`, `han2015-lenet5`: Han et al., "Learning both Weights and Connections
  for Efficient Neural Networks" (NIPS 2015), Tables 1-3: magnitude pruning with retraining
  along a rising schedule; the highest compression that keeps the validation accuracy
  within 0.5 points of dense, its test accuracy over 3 seeds, and the weights kept per
  layer beside the paper's. The searches are zoo recipes too (`han-lenet300-s0`, ...).
* `thinet`: Luo et al., "ThiNet" (ICCV 2017): half the filters of one SmallVGG layer chosen
  by ThiNet, by L1 norm (Li et al., ICLR 2017) and at random; the next layer's
  reconstruction error and the accuracy before fine-tuning.
* `filter-pruning-vgg`: SmallVGG filter-pruned by ThiNet to under half its MACs and
  fine-tuned: parameters, MACs, bytes and measured CPU latency, beside an unstructured
  model with as many nonzero weights, which is no faster.
* `rethinking`: Liu et al., "Rethinking the Value of Network Pruning" (ICLR 2019): the
  pruned architecture fine-tuned, trained from scratch for the dense model's epochs
  (Scratch-E) and for its compute budget (Scratch-B).

Data: the 5,000 bundled MNIST digits (3,500 train / 500 val / 1,000 test), so one test digit
is 0.1 point of accuracy; every training run gets fresh loaders with a fixed seed.
"""
from nclib.chapters.pruning.experiments.han import (
    DATASET, FINAL_SPARSITY, MAX_TEST_DROP, MAX_VAL_DROP, MIN_RATE, RETRAIN, SCHEDULE, SEARCH, SEEDS,
    SHAPE, HanScale, choose, compression_path, mean_se, paper_kept, prune_and_retrain, run_han, searched)
from nclib.chapters.pruning.experiments.filters import (FILTER_PLAN, FINE_TUNE, LATENCY, THINET_LAYER,
                                                       filter_pruned_vgg, one_layer_comparison,
                                                       scratch_epochs, train_from_scratch)

__all__ = ["DATASET", "SHAPE", "RETRAIN", "FINAL_SPARSITY", "SCHEDULE", "SEARCH", "SEEDS", "MAX_VAL_DROP",
           "MIN_RATE", "MAX_TEST_DROP", "HanScale", "choose", "compression_path", "mean_se", "run_han",
           "searched", "paper_kept", "prune_and_retrain", "THINET_LAYER", "FILTER_PLAN", "FINE_TUNE", "LATENCY",
           "one_layer_comparison", "filter_pruned_vgg", "scratch_epochs", "train_from_scratch"]
