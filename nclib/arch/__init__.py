"""Architecture design: low-rank factorization, depthwise separable convolution, MobileNet.

* `nclib.arch.lowrank`: truncated-SVD factorization of Linear layers (`factorize_linear`).
* `nclib.arch.separable`: `DepthwiseSeparableConv` and the cost formulas of standard,
  depthwise and pointwise convolutions (Howard et al. 2017, eq. 2, 4, 5).
* `nclib.arch.mobilenet`: MobileNet v1's Table 1 read from a model, and the paper's
  comparisons (the model itself is `nclib.models.MobileNetV1`).
"""
from nclib.arch.lowrank import LowRankLinear, choose_rank, factorize_linear, svd_factors
from nclib.arch.mobilenet import (PAPER_COSTS, BodyRow, BodyTable, body_table, compare_separable,
                                  summarize_by_type)
from nclib.arch.separable import (DepthwiseSeparableConv, conv_macs, conv_params, depthwise_macs,
                                  depthwise_params, merge_separable_weights, pointwise_macs,
                                  pointwise_params, separable_ratio)

__all__ = ["LowRankLinear", "choose_rank", "factorize_linear", "svd_factors",
           "DepthwiseSeparableConv", "conv_params", "depthwise_params", "pointwise_params",
           "conv_macs", "depthwise_macs", "pointwise_macs", "separable_ratio",
           "merge_separable_weights", "body_table", "BodyTable", "BodyRow", "summarize_by_type",
           "compare_separable", "PAPER_COSTS"]
