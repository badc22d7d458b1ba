"""Chapter 03, parameter quantization: weight sharing with trained centroids and Huffman
coding (Deep Compression, Han et al. 2016), and linear (affine) quantization, PTQ and QAT."""

# The experiments register the chapter's zoo recipes (the compressed LeNets), so that
# `nclib zoo list` and `nclib zoo train` find them.
from nclib.chapters.quantization import experiments  # noqa: F401,E402
