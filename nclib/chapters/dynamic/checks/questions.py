"""Chapter 06 concept questions: why masking a channel saves no time, and why a dynamic network
groups the images of a batch by the computation they chose.

The accepted answers are stored as hashes (`nclib.course.questions`); the explanation is
shown once a student has answered.
"""
from nclib.course.questions import choice

__all__ = ["why_masking", "why_grouping"]

why_masking = choice(
    "dynamic", "why_masking",
    options={"a": "Multiplying a channel by zero after it was computed still computes it: the "
                  "dense convolution runs every filter over every input channel, and a zero "
                  "weight or activation costs as much as any other number.",
             "b": "The mask itself is as large as the feature map, so reading it costs as "
                  "much time as the channels it removes.",
             "c": "Masking saves the MACs but not the time, because a GPU or CPU runs at most "
                  "one channel at a time anyway."},
    answer_hash="9e41989a9b2f915d80e041ce1f71c4a7164917189df4fdd67bccc4b20e2375e3",
    explanation="A dense kernel does not look at values: zeros are multiplied like any other "
                "number, so time falls only when the suppressed filters and their input "
                "slices are left out of the computation (gathered away), as the skipping "
                "inference does.",
    hint="Lecture 06, section 8 (computing only the kept channels): what does a dense "
         "convolution do with a channel the mask sets to zero afterwards?")

why_grouping = choice(
    "dynamic", "why_grouping",
    options={"a": "Grouping makes the policy network deterministic, which it is not otherwise.",
             "b": "Without grouping the accuracy drops, because BatchNorm sees different "
                  "images in each block.",
             "c": "A batch runs as one tensor only through the blocks all its images keep; "
                  "with one batched pass per distinct policy each block runs once per group, "
                  "where otherwise the batch runs image by image (batch 1, slow) or every "
                  "block for every image with the dropped results masked (no saving)."},
    answer_hash="41ea21959674b8dc8d70958b62c70c75cbf5a2469738fe72b2c78eec49a3e172",
    explanation="Images that chose the same blocks can share one batched call per block; the "
                "fewer distinct policies a batch holds, the closer the speed-up comes to the "
                "MAC ratio. With every image its own policy, grouping is no better than "
                "batch 1.",
    hint="Lecture 06, section 5 (latency: batch 1 and grouped batches): how do 64 images run "
         "through a block when only some of them keep it?")
