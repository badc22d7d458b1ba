"""Checks for chapter 03 (quantization): k-means weight sharing and the gradient of a shared
value (`sharing`, tasks 1-2), Huffman code lengths (`coding`, task 3), the affine map and
fake quantization with the straight-through estimator (`linear`, tasks 4-5), Deep
Compression's pipeline to a file-size budget (`budget`, task 6), binary networks (`binary`,
tasks 7-9: the sign with BNN's straight-through estimator, XNOR-Net's scale, the dot product
of packed signs by xor and popcount), which layers of an MLP to binarize for a byte budget
(`binary_budget`, task 10), then the concept questions (`questions`: why linear
initialization, the zero point of uint8, why a BNN in float tensors is not faster).

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
  reloaded model's accuracy on the bundled test digits;
* `nclib.quant.binary.sign_ste` (Hubara et al. 2016): sign(0) = +1 and the gradient where
  |x| <= 1, the ties |x| = 1 included (clipped latent weights sit there);
* `nclib.quant.binary.alpha` (Rastegari et al. 2016, Eq. 6), of shape (O,) or (O, 1, ...),
  after testing on the student's values that no nearby scale has a smaller squared error;
* `nclib.quant.bitpack.binary_matmul` on one row: n - 2 popcount(a xor b), an int, on words
  of `pack_signs` with bit 63 set in some (negative int64 values);
* the binarization budget grades the choice handed in by measuring it: the zoo's fp32 MLP
  with those layers binarized (`binary.binarize_layers`, alpha, no retraining), its bytes
  packed (`binary.binary_bytes`) and its test accuracy.

When an answer is wrong, the check also tries the usual mistakes (no update step, the mean
instead of the sum, Shannon's lengths, no clamp, no straight-through gradient, torch.sign,
max |W| for alpha, xnor over the padding, ...) and, if one of them gives the student's
result, names it in the hint.
"""
# tasks 1-2, 3, 4-5, 6, 7-9, then 10: the order of the exercise
from nclib.chapters.quantization.checks.sharing import (centroid_grad, cluster_weights,
                                                        ref_centroid_grad, ref_cluster_weights)
from nclib.chapters.quantization.checks.coding import huffman_lengths, ref_huffman_lengths
from nclib.chapters.quantization.checks.linear import (affine_quantize, fake_quant_ste,
                                                       ref_affine_dequantize, ref_affine_quantize,
                                                       ref_fake_quant_ste)
from nclib.chapters.quantization.checks.budget import (compressed_under_budget,
                                                       ref_compressed_under_budget)
from nclib.chapters.quantization.checks.binary import (ref_sign_ste, ref_xnor_dot, ref_xnor_scale,
                                                       sign_ste, xnor_dot, xnor_scale)
from nclib.chapters.quantization.checks.binary_budget import binarize_to_budget, ref_binarize_to_budget
from nclib.chapters.quantization.checks.questions import (binary_not_faster,  # concept questions
                                                          why_linear_init, zero_point_uint8)

__all__ = ["cluster_weights", "centroid_grad", "huffman_lengths", "affine_quantize",
           "fake_quant_ste", "compressed_under_budget", "sign_ste", "xnor_scale", "xnor_dot",
           "binarize_to_budget",
           "why_linear_init", "zero_point_uint8", "binary_not_faster",
           "ref_cluster_weights", "ref_centroid_grad", "ref_huffman_lengths",
           "ref_affine_quantize", "ref_affine_dequantize", "ref_fake_quant_ste",
           "ref_compressed_under_budget", "ref_sign_ste", "ref_xnor_scale", "ref_xnor_dot", "ref_binarize_to_budget"]
