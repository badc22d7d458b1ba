"""Chapter 07, the capstone: one model through the course's pipeline, at the scale of the
bundled digits.

* `capstone-order` (`order`): prune before or after distilling? The capstone's student
  (LeNet 8/16/64) trained in two phases with pruning between them, the teacher's soft
  targets in phase 1 or phase 2 (or neither), over 3 seeds.
* `pipeline`: what the lecture measures at each step (accuracy, bytes of the file, MACs,
  batch-64 latency) and the accuracy-vs-bytes points of every chapter's models.

Importing this package registers the chapter's zoo entries (the students of every order
and seed), so that `nclib zoo list` and `nclib zoo train` find them.
"""
from nclib.chapters.capstone.experiments.order import (
    FULL, KD, ORDERS, PHASE1, PHASE2, SEEDS, SPARSITY, STUDENT, TEACHER, Scale, dense_name, order_name,
    phase1, phase2, run_order, student)
from nclib.chapters.capstone.experiments.pipeline import (
    BITS, DENSE, Point, Stage, StageResult, file_bytes, front, measure_stages, nonzero_macs, shared, stages)

__all__ = ["FULL", "KD", "ORDERS", "PHASE1", "PHASE2", "SEEDS", "SPARSITY", "STUDENT", "TEACHER",
           "Scale", "dense_name", "order_name", "phase1", "phase2", "run_order", "student", "BITS", "DENSE",
           "Point", "Stage", "StageResult", "file_bytes", "front", "measure_stages", "nonzero_macs", "shared",
           "stages"]
