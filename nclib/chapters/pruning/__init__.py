"""Chapter 01, network pruning: weights (Han et al. 2015), filters (ThiNet, L1), slimming,
and training the pruned architecture from scratch (Liu et al. 2019)."""

# The experiments register the chapter's zoo recipes (the Han searches, vgg-scratch), so
# that `nclib zoo list` and `nclib zoo train` find them.
from nclib.chapters.pruning import experiments  # noqa: F401,E402
