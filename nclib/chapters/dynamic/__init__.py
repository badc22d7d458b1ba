"""Chapter 06, dynamic computation: BlockDrop (Wu et al., CVPR 2018) and Feature Boosting and
Suppression (Gao et al., ICLR 2019), with the skipped computation really skipped."""

# The experiments register the chapter's zoo recipes (the ResNet with its policies, the FBS
# and pruned networks), so that `nclib zoo list` and `nclib zoo train` find them.
from nclib.chapters.dynamic import experiments  # noqa: F401,E402
