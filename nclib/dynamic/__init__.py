"""Dynamic computation: networks that spend less on easy inputs.

* `blockdrop`: BlockDrop (Wu et al., CVPR 2018): a policy network chooses the residual
  blocks each image runs; the dropped blocks are really skipped.
* `fbs`: Feature Boosting and Suppression (Gao et al., ICLR 2019): per-image channel
  saliencies, winner-take-all, and an inference that computes only the kept channels.
"""
from nclib.dynamic import blockdrop  # noqa: F401
from nclib.dynamic.fbs import (FBSConv2d, FBSNet, SkippingFBS, check_density, kept_channels,
                               winner_take_all)

__all__ = ["blockdrop", "FBSConv2d", "FBSNet", "SkippingFBS", "check_density", "kept_channels",
           "winner_take_all"]
