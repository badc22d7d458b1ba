"""Chapter 01 concept questions: what removing filters saves, and why masks save no time.

The accepted answers are stored as hashes (`nclib.course.questions`); the explanation is
shown once a student has answered.
"""
from nclib.course.questions import choice, number

__all__ = ["filter_macs_removed", "masked_no_faster"]

filter_macs_removed = number(
    "pruning", "filter_macs_removed", tolerance=0.03,
    answer_hash="b80f96f1a452abc20f5be4b1afbb210270a56fd9fd365e19ec38bea08680d1ea",
    explanation="A convolution's MACs are proportional to C_in x C_out, and both keep 70% of "
                "their channels, so 70% of 70% of the MACs remain (a little more at the first "
                "conv, whose input channels stay).",
    hint="Lecture 00, section 1 (Computation: multiply-accumulates) gives a convolution's MACs; "
         "see how they change when C_in and C_out both shrink, and answer with the part "
         "removed, not the part kept.")

masked_no_faster = choice(
    "pruning", "masked_no_faster",
    options={"a": "PyTorch switches to double precision when a weight holds zeros.",
             "b": "The zeros are still stored in the dense weight tensors, and dense kernels "
                  "multiply every one of them.",
             "c": "The remaining weights grow during retraining, so each multiplication "
                  "takes longer."},
    answer_hash="17155e07921086c86806dd88a1604d67bf5e20f88ac47d223ce9ce62ad370602",
    explanation="A dense kernel multiplies whatever is stored, zero or not: only a sparse "
                "format with a sparse kernel, or removing whole filters (an ordinary, "
                "smaller network), saves time.")
