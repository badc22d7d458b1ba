"""Checks for chapter 03 (quantization): k-means weight sharing and the gradient of a shared
value (`sharing`, tasks 1-2), Huffman code lengths (`coding`, task 3), the affine map and
fake quantization with the straight-through estimator (`linear`, tasks 4-5), Deep
Compression's pipeline to a file-size budget (`budget`, task 6), then the concept questions
(`questions`).

The references are what a student's answer must agree with:

* `nclib.quant.kmeans.kmeans_quantize` (Han et al. 2016, Section 3) with linear
  initialization: a clustering is judged by its shapes, by every label naming its nearest
  centroid and by its within-cluster sum of squares (Eq. 2), within 0.1% of the reference;
* Deep Compression's Eq. 3, as autograd computes it through W = C[I];
* `nclib.quant.coding.code_lengths` (Huffman 1952): lengths pass when they are a prefix
  code's (Kraft) with the optimal total length, never compared one by one;
* `nclib.quant.uniform.quantize`, `dequantize` and `fake_quantize` (Jacob et al. 2018,
  Eq. 1; the straight-through estimator of Bengio et al. 2013), on inputs away from
  rounding ties, so that any rounding to nearest passes;
* the budget task grades the model handed in: its `save_compressed` file's bytes and the
  reloaded model's accuracy on the bundled test digits.

When an answer is wrong, the check also tries the usual mistakes (no update step, the mean
instead of the sum, Shannon's lengths, no clamp, no straight-through gradient, ...) and,
if one of them gives the student's result, names it in the hint.
"""
# tasks 1-2, 3, 4-5, then 6: the order of the exercise
from nclib.chapters.quantization.checks.sharing import (centroid_grad, cluster_weights,
                                                        ref_centroid_grad, ref_cluster_weights)
from nclib.chapters.quantization.checks.coding import huffman_lengths, ref_huffman_lengths
from nclib.chapters.quantization.checks.linear import (affine_quantize, fake_quant_ste,
                                                       ref_affine_dequantize, ref_affine_quantize,
                                                       ref_fake_quant_ste)
from nclib.chapters.quantization.checks.budget import (compressed_under_budget,
                                                       ref_compressed_under_budget)
from nclib.chapters.quantization.checks.questions import why_linear_init, zero_point_uint8  # concept questions

__all__ = ["cluster_weights", "centroid_grad", "huffman_lengths", "affine_quantize",
           "fake_quant_ste", "compressed_under_budget", "why_linear_init", "zero_point_uint8",
           "ref_cluster_weights", "ref_centroid_grad", "ref_huffman_lengths",
           "ref_affine_quantize", "ref_affine_dequantize", "ref_fake_quant_ste",
           "ref_compressed_under_budget"]
