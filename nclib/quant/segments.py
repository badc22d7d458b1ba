"""Segments of a compressed file: raw tensors and streams of small integers (the gaps and
labels of `nclib.quant.compressed`), fixed-width or Huffman-coded.

A fixed-width stream packs each value in `width` bits, most significant bit first, padded
to whole bytes at the end. A Huffman stream is two segments: the code-length table (one
byte per symbol 0..max; 0 for an absent symbol: canonical codes need only the lengths,
`nclib.quant.coding`) and the payload. Raw tensors are little-endian.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from nclib.quant import coding

__all__ = ["Writer", "read_stream", "read_raw", "pack_bits", "unpack_bits", "Coding", "DTYPES"]

DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64,
          "int32": torch.int32, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}
_NAMES = {v: k for k, v in DTYPES.items()}
Coding = Literal["huffman", "fixed"]


def pack_bits(values: np.ndarray, width: int) -> bytes:
    """Each value in `width` bits, most significant first, then padded to whole bytes."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
    bits = (values.astype(np.uint64)[:, None] >> shifts) & np.uint64(1)  # (N, width)
    return np.packbits(bits.astype(np.uint8).ravel()).tobytes()


def unpack_bits(buf: bytes, width: int, count: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(buf, np.uint8))
    if bits.size < count * width:
        raise ValueError(f"a packed stream holds {bits.size} bits, {count} values of {width} need more")
    bits = bits[: count * width].reshape(count, width).astype(np.int64)
    return (bits << np.arange(width - 1, -1, -1)).sum(axis=1)


class Writer:
    """Collects segments; `stream` and `raw` return the record that points at them."""

    def __init__(self):
        self.segments: list[bytes] = []

    def _add(self, data: bytes) -> int:
        self.segments.append(data)
        return len(self.segments) - 1

    def raw(self, t: torch.Tensor) -> dict:
        t = t.detach().cpu().contiguous()
        if t.dtype not in _NAMES:
            raise ValueError(f"a tensor of dtype {t.dtype} cannot be stored ({', '.join(DTYPES)})")
        arr = t.numpy()
        return {"dtype": _NAMES[t.dtype], "seg": self._add(arr.astype(arr.dtype.newbyteorder("<")).tobytes())}

    def stream(self, values: np.ndarray, width: int, how: Coding) -> dict:
        if how == "fixed":
            return {"coding": "fixed", "width": width, "count": int(values.size),
                    "seg": self._add(pack_bits(values, width))}
        enc = coding.huffman_encode(values)
        top = max(enc.lengths, default=-1)
        table = bytes(enc.lengths.get(s, 0) for s in range(top + 1))
        return {"coding": "huffman", "count": enc.count, "bit_length": enc.bit_length,
                "table": self._add(table), "seg": self._add(enc.payload)}


def read_stream(rec: dict, segs: list[bytes]) -> np.ndarray:
    if rec["coding"] == "fixed":
        return unpack_bits(segs[rec["seg"]], rec["width"], rec["count"])
    lengths = {s: n for s, n in enumerate(segs[rec["table"]]) if n}
    enc = coding.Encoded(lengths=lengths, payload=segs[rec["seg"]], bit_length=rec["bit_length"],
                         count=rec["count"])
    return np.asarray(coding.huffman_decode(enc), dtype=np.int64)


def read_raw(rec: dict, segs: list[bytes], shape) -> torch.Tensor:
    dtype = DTYPES[rec["dtype"]]
    arr = np.frombuffer(segs[rec["seg"]], dtype=torch.empty(0, dtype=dtype).numpy().dtype.newbyteorder("<"))
    if arr.size != math.prod(shape):
        raise ValueError(f"a raw tensor holds {arr.size} values, its shape {tuple(shape)} needs {math.prod(shape)}")
    return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="))).reshape(shape).clone()
