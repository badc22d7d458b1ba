"""Quantization and coding (Deep Compression and its successors).

* `coding`: storage formats for sparse weights (CSR, relative indices). Importing it
  registers "sparse_csr" and "sparse_relative" with `nclib.measure.storage_bytes`.
"""
from nclib.quant import coding

__all__ = ["coding"]
