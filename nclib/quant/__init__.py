"""Quantization and coding (Deep Compression and its successors).

* `coding`: relative-index coding of sparse weights (encode and decode). Its size, like
  every storage format's, is counted by `nclib.measure.storage_bytes`.
"""
from nclib.quant import coding

__all__ = ["coding"]
