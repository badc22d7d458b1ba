"""Chapter 01, network pruning: weights (Han et al. 2015), filters (ThiNet, L1), slimming,
and training the pruned architecture from scratch (Liu et al. 2019)."""
