"""Chapter 06: the dynamic-computation tables of the lecture, at the scale of the bundled digits.

* `blockdrop` (`blockdrop`): a 9-block ResNet with a BlockDrop policy network (Wu et al.,
  CVPR 2018): accuracy, blocks used, exact MACs, distinct policies and measured latency
  at batch 1 and in grouped batches of 64, beside the paper's ResNet-110 on CIFAR-10; and
  the reward's trade-off gamma.
* `fbs` (`fbs`): Feature Boosting and Suppression (Gao et al., ICLR 2019) against static L1
  filter pruning of the same network at 2x, 3x and 4x fewer MACs, beside the paper's Table 2.

Data: the 5,000 bundled MNIST digits (3,500 train / 500 val / 1,000 test), so one test digit
is 0.1 point of accuracy. Importing this package registers the chapter's zoo entries.
"""
from nclib.chapters.dynamic.experiments.fbs import (
    BASE, CFG, DENSITIES, FINE_TUNE, INPUT, LASSO, REDUCTIONS, SPARSITIES, base_name, dense_for_inference,
    density_for, fbs_macs, fbs_model, gather_cost, fbs_name, run_fbs, skipping_difference, static_model,
    static_name, static_sparsity_for)
from nclib.chapters.dynamic.experiments.blockdrop import (
    GAMMA, GAMMAS, POLICY, RESNET, blockdrop_net, for_inference, num_blocks, per_image_ms, policy_name,
    resnet, resnet_name, run_blockdrop)

__all__ = ["BASE", "CFG", "DENSITIES", "FINE_TUNE", "INPUT", "LASSO", "REDUCTIONS", "SPARSITIES", "base_name",
           "dense_for_inference", "density_for", "gather_cost", "fbs_macs", "fbs_model", "fbs_name", "run_fbs",
           "skipping_difference", "static_model", "static_name", "static_sparsity_for", "GAMMA",
           "GAMMAS", "POLICY", "RESNET", "blockdrop_net", "for_inference", "num_blocks", "per_image_ms",
           "policy_name", "resnet", "resnet_name", "run_blockdrop"]
