"""Chapter 03 concept questions: why the centroids start linearly, the zero point of an
affine quantizer, and why a binary network written with float tensors is not faster.

The accepted answers are stored as hashes (`nclib.course.questions`); the explanation is
shown once a student has answered.
"""
from nclib.course.questions import choice, number

__all__ = ["why_linear_init", "zero_point_uint8", "binary_not_faster"]

why_linear_init = choice(
    "quantization", "why_linear_init",
    options={"a": "Linearly spaced centroids make Lloyd's algorithm converge in fewer "
                  "iterations, and the result is the same.",
             "b": "Weights are bell-shaped, so density (or random) starts put almost every "
                  "centroid near zero and leave the few large weights, which matter most, to "
                  "share values with smaller ones; linear spacing keeps centroids out there.",
             "c": "A density start needs the weights sorted, which is too slow for layers with "
                  "millions of weights."},
    answer_hash="10282ec1d8a1ca2a6178f9b0e93ee67001f5492ba79ca9e2e0db84bd4bc5d8dc",
    explanation="Han et al. (Section 3.2, Fig. 4) found linear initialization the most "
                "accurate: the large weights are rare but move a layer's outputs the most, and "
                "only a linear start gives them centroids of their own (it does not minimise "
                "the squared error: a density start often has less).",
    hint="Lecture 03, section 1 (Weight sharing (k-means)) compares the three starts on one "
         "layer's weights (Han et al., Fig. 4): look where each puts its centroids, and which "
         "weights are left with none nearby.")

zero_point_uint8 = number(
    "quantization", "zero_point_uint8", tolerance=0.2,
    answer_hash="1eb5867bfeba078ad531da4586dcbbfa5549cc8b212e95ad16beaf9c593d9a24",
    explanation="scale = (3.0 - (-1.0)) / 255 maps -1.0 to level 0, so 0.0 lies 1.0 / scale "
                "= 63.75 levels above it; the zero point is that number rounded to an "
                "integer, so that 0.0 (padding, ReLU zeros, pruned weights) is exactly a level.",
    hint="Lecture 03, section 5 (Linear quantization): the zero point is the integer level "
         "that stands for the real 0.0; the range's minimum maps to level 0 and each level is "
         "one scale step; an integer answer.")

binary_not_faster = choice(
    "quantization", "binary_not_faster",
    options={"a": "Computing sign(w) and sign(x) at every forward pass costs more than the "
                  "multiplications that binary values save.",
             "b": "CPUs and GPUs have no instructions for bit operations, so a binary network "
                  "can only be fast on special hardware.",
             "c": "The +-1 values are still stored as 32-bit floats and multiplied by the same "
                  "fp32 matrix-multiply kernel; speed needs the signs packed 64 to a word and a "
                  "kernel that computes with xnor (xor) and popcount, as nclib.quant.bitpack "
                  "does."},
    answer_hash="55366119e11131183e72627db183301389acc9a42c1480ecd034c45f581a12b7",
    explanation="F.linear cannot tell a +-1 from any other float: it reads 32 bits per value "
                "and does one fp32 multiply-add per product, as in the fp32 network (the two "
                "signs cost a little more on top); the 32x fewer bytes and the 64 products per "
                "xor and popcount come only with packed words and a kernel that computes on "
                "them, such as nclib.quant.bitpack.binary_matmul (every CPU has xor and popcount "
                "instructions).",
    hint="Lecture 03, section 11 (Packed bits that run): look at what F.linear is given, how "
         "many bits each +-1 takes there, and which instruction multiplies them.")
