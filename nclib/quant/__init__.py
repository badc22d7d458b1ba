"""Quantization and coding: Deep Compression (Han et al., ICLR 2016) and linear quantization.

* `kmeans`: weight sharing, k-means per layer and trained centroids (Deep Compression, Sec. 3).
* `coding`: relative-index sparse storage (Sec. 2) and canonical Huffman codes (Sec. 4).
* `compressed`: a model file of codebooks and Huffman-coded labels and indices
  (`save_compressed`, `load_compressed`), with its architecture as data (`graph`,
  `segments`); it registers the "codebook" and "huffman" formats of
  `nclib.measure.storage_bytes`.
* `uniform`: affine quantization of tensors, fake quantization with the straight-through
  estimator, calibration (Jacob et al., CVPR 2018).
* `layers`, `quantized`: quantized Linear and Conv2d layers, BatchNorm folding,
  post-training quantization (PTQ) and quantization-aware training (QAT), int8 state.
* `int8`: a real int8 CPU kernel of the installed torch, timed against fp32.
* `binary`: binary and ternary weights and binary activations for training: BinaryConnect
  (Courbariaux et al., NIPS 2015), BNN's straight-through sign (Hubara et al., 2016),
  XNOR-Net's scales (Rastegari et al., ECCV 2016), ternary weights (Li and Liu, 2016).
* `bitpack`, `bitspeed`: signs packed 64 to a word, products by xor and popcount, packed
  inference layers, and their speed against fp32.
"""
from nclib.quant import (binary, bitpack, bitspeed, coding, compressed, graph, int8, kmeans, layers, quantized,
                         segments, uniform)
from nclib.quant.compressed import load_compressed, save_compressed
from nclib.quant.kmeans import kmeans_quantize, share_weights
from nclib.quant.quantized import fold_batchnorm, prepare_qat, quantize_model
from nclib.quant.uniform import dequantize, fake_quantize, quantize

__all__ = ["binary", "bitpack", "bitspeed", "coding", "compressed", "graph", "segments", "kmeans", "uniform", "layers", "quantized",
           "int8", "save_compressed", "load_compressed", "kmeans_quantize", "share_weights",
           "quantize", "dequantize", "fake_quantize", "quantize_model", "prepare_qat",
           "fold_batchnorm"]
