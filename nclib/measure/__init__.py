"""Measurement, the spine of every chapter.

* `counts`: parameters, nonzeros, multiply-accumulates (MACs; one MAC is one
  multiplication and one addition, so ``flops = 2 * macs``).
* `storage`: bytes of a model in a named storage format (dense, CSR, relative indices;
  `register_format` adds more).
* `latency`: measured latency, the median of repeated runs after warm-up.
* `tables`: `report()` puts one model's measurements in one row and `compare()` sets rows
  side by side.

Everything is offered here, so ``from nclib import measure; measure.count_macs(...)``.
"""
from nclib.measure.counts import LayerMacs, MacCount, count_macs, count_nonzero, count_params
from nclib.measure.latency import Latency, best_latencies, keep_freed_memory, measure_latency
from nclib.measure.storage import (STORAGE_FORMATS, csr_bytes, csr_model_bytes, register_format,
                                   relative_bytes, relative_model_bytes, saved_bytes,
                                   sparse_model_bytes, storage_bytes, stored_tensors)
from nclib.measure.tables import Row, Table, compare, human, report

__all__ = ["count_params", "count_nonzero", "count_macs", "MacCount", "LayerMacs",
           "storage_bytes", "register_format", "STORAGE_FORMATS", "saved_bytes", "stored_tensors",
           "csr_bytes", "relative_bytes", "sparse_model_bytes", "csr_model_bytes",
           "relative_model_bytes",
           "measure_latency", "best_latencies", "Latency", "keep_freed_memory",
           "report", "Row", "compare", "Table", "human"]
