"""Checks for chapter 07 (the capstone): three budgets on the model file the notebook writes,
`submission.nclib` (`nclib.quant.save_compressed`), each graded from the file by the grader
itself (`nclib.course.filetasks`): its bytes on disk, its batch-64 latency against the dense
LeNet-5 measured in the same process, and its accuracy on the test digits (or on held-out
digits the instructor passes with ``nclib grade --test-data FILE``).
"""
from nclib.chapters.capstone.checks.budgets import (DENSE, FILE, MAX_BYTES, MAX_LATENCY_RATIO,
                                                    MEASURES, MIN_ACCURACY, accuracy_budget,
                                                    bytes_budget, latency_budget, load_submission,
                                                    load_test_data)

__all__ = ["bytes_budget", "latency_budget", "accuracy_budget", "load_submission", "load_test_data",
           "FILE", "DENSE", "MAX_BYTES", "MAX_LATENCY_RATIO", "MIN_ACCURACY", "MEASURES"]
