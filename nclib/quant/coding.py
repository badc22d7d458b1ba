"""Storage formats for sparse (pruned) weights: how many bytes the zeros really save.

* CSR, compressed sparse row: a weight viewed as a matrix (rows = output units or
  filters) is stored as its a nonzero values, their a column indices, and n + 1 row
  pointers (where each row starts): 2a + n + 1 numbers (Han et al., "Deep Compression",
  ICLR 2016, Section 2).
* Relative indices (Deep Compression, Section 2 and Fig. 2): instead of a position, store
  the gap to the previous stored entry in a few bits (Han et al. use 5 bits for fully
  connected and 8 for conv layers). A gap counts the zeros skipped, 0 .. 2^b - 1 with b
  bits; when more zeros separate two nonzeros, a "filler" entry (a stored zero) is placed
  2^b - 1 zeros further on. Fillers stay rare while the mean gap, 1/density - 1, is well
  under 2^b - 1: 4 bits (gaps up to 15) suit layers keeping more than about 1 weight in 16,
  5 bits (up to 31) sparser ones. The gaps run over the flattened weight, row after row,
  so no row pointers are needed: the decoder knows the shape.

Importing this module registers "sparse_csr" and "sparse_relative" with
`nclib.measure.register_format`, so ``storage_bytes(model, "sparse_relative")`` works.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
from torch import nn

from nclib.measure import register_format, stored_tensors

__all__ = ["csr_bytes", "encode_relative", "decode_relative", "relative_bytes",
           "sparse_model_bytes", "csr_model_bytes", "relative_model_bytes"]

VALUE_BITS = 32  # values stay 32-bit floats until they are quantized (a later chapter)
INDEX_BITS = 32  # CSR's absolute indices: int32, like scipy's and torch's int32 CSR
RELATIVE_BITS = 5  # Deep Compression's gap width for fully connected layers


def _check_bits(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise ValueError(f"{name}={value!r}: expected a number of bits from 1 to 64")
    return value


def _as_matrix(weight: torch.Tensor) -> torch.Tensor:
    """A weight as a matrix, one row per output unit or filter: (O, I) or (O, C*K*K)."""
    if weight.ndim < 2:
        raise ValueError(f"weight of shape {tuple(weight.shape)}: sparse formats store "
                         "matrices and conv kernels (2 or more dimensions)")
    return weight.detach().reshape(weight.shape[0], -1)


def csr_bytes(weight: torch.Tensor, value_bits: int = VALUE_BITS,
              index_bits: int = INDEX_BITS) -> int:
    """Bytes of `weight` in CSR: a values, a column indices, n + 1 row pointers.

    The weight is seen as a matrix of n = shape[0] rows (`weight.to_sparse_csr()` on that
    matrix holds the same arrays).

    Example:
        >>> csr_bytes(torch.tensor([[0., 2.], [3., 0.]]))  # 2 values, 2 columns, 3 pointers
        28
    """
    _check_bits(value_bits, "value_bits"), _check_bits(index_bits, "index_bits")
    matrix = _as_matrix(weight)
    a, n = int(torch.count_nonzero(matrix)), matrix.shape[0]
    bits = a * value_bits + a * index_bits + (n + 1) * index_bits
    return math.ceil(bits / 8)


def encode_relative(weight: torch.Tensor, index_bits: int = RELATIVE_BITS
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Deep Compression's relative indices: (gaps, values), one entry per stored value.

    Gaps count the zeros skipped since the previous entry (or since the start), at most
    ``2^index_bits - 1``; longer runs of zeros get filler entries of value 0.

    Example (3 bits, as in Deep Compression's Fig. 2; nonzeros at positions 1, 4 and 15):
        gaps 1, 2, 7 (a filler at 12), 2; values w1, w4, 0, w15.
    """
    _check_bits(index_bits, "index_bits")
    flat = weight.detach().flatten().cpu()
    max_gap = 2 ** index_bits - 1  # the largest number b bits hold
    positions = torch.nonzero(flat).flatten()  # (A,)
    previous = torch.cat([positions.new_tensor([-1]), positions[:-1]])
    zeros = positions - previous - 1  # zeros before each nonzero
    # A filler at gap max_gap consumes max_gap zeros and stands on one more: 2^b positions.
    fillers = zeros // (max_gap + 1)  # (A,)
    counts = fillers + 1  # entries per nonzero: its fillers, then itself
    gaps = torch.full((int(counts.sum()),), max_gap, dtype=torch.long)
    values = torch.zeros(int(counts.sum()), dtype=flat.dtype)
    last = torch.cumsum(counts, 0) - 1  # where each nonzero's own entry goes
    gaps[last] = zeros - fillers * (max_gap + 1)
    values[last] = flat[positions]
    return gaps, values


def decode_relative(gaps: torch.Tensor, values: torch.Tensor,
                    shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of `encode_relative`: the dense tensor of `shape`."""
    positions = torch.cumsum(gaps + 1, 0) - 1  # each entry sits gap + 1 after the previous
    flat = torch.zeros(math.prod(shape), dtype=values.dtype)
    flat[positions] = values
    return flat.view(shape)


def relative_bytes(weight: torch.Tensor, index_bits: int = RELATIVE_BITS,
                   value_bits: int = VALUE_BITS) -> int:
    """Bytes of `weight` with relative indices: every entry is a value and a gap."""
    _check_bits(value_bits, "value_bits")
    gaps, _ = encode_relative(weight, index_bits)
    return math.ceil(gaps.numel() * (value_bits + index_bits) / 8)


# ---------------------------------------------------------------- whole models


def sparse_model_bytes(model: nn.Module, weight_bytes: Callable[[torch.Tensor], int]) -> int:
    """Bytes of `model` with every weight of 2+ dimensions in a sparse format, the rest
    (biases, BatchNorm) as dense fp32 (4 bytes a value)."""
    total = 0
    for t in stored_tensors(model):
        total += weight_bytes(t) if isinstance(t, nn.Parameter) and t.ndim >= 2 else 4 * t.numel()
    return total


def csr_model_bytes(model: nn.Module) -> int:
    """The "sparse_csr" storage format: weights in CSR with 32-bit values and indices."""
    return sparse_model_bytes(model, csr_bytes)


def relative_model_bytes(model: nn.Module) -> int:
    """The "sparse_relative" storage format: 32-bit values, 5-bit relative indices."""
    return sparse_model_bytes(model, relative_bytes)


register_format("sparse_csr", csr_model_bytes)
register_format("sparse_relative", relative_model_bytes)
