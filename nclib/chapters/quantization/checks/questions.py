"""Chapter 03 concept questions: why the centroids start linearly, and the zero point of an
affine quantizer.

The accepted answers are stored as hashes (`nclib.course.questions`); the explanation is
shown once a student has answered.
"""
from nclib.course.questions import choice, number

__all__ = ["why_linear_init", "zero_point_uint8"]

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
