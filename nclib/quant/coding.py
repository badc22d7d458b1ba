"""Relative-index coding of sparse weights (Han et al., "Deep Compression", ICLR 2016,
Section 2 and Fig. 2).

Instead of a position, each stored value keeps the gap to the previous stored entry in b
bits: the number of zeros skipped, 0 .. 2^b - 1. When more zeros separate two nonzeros, a
"filler" entry (a stored zero) is placed 2^b - 1 zeros further on. The gaps run over the
flattened weight, row after row, so the decoder needs only the shape.

This module builds the code (`encode_relative`) and reads it back (`decode_relative`). Its
size is measured in `nclib.measure.storage`: `measure.relative_bytes` counts the same
entries without building them, and ``measure.storage_bytes(model, "sparse_relative")``
sizes a whole model.
"""
from __future__ import annotations

import math

import torch

from nclib.measure.storage import RELATIVE_BITS, check_bits

__all__ = ["encode_relative", "decode_relative"]


def encode_relative(weight: torch.Tensor, index_bits: int = RELATIVE_BITS
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Deep Compression's relative indices: (gaps, values), one entry per stored value.

    Gaps count the zeros skipped since the previous entry (or since the start), at most
    ``2^index_bits - 1``; longer runs of zeros get filler entries of value 0.

    Example (3 bits, as in Deep Compression's Fig. 2; nonzeros at positions 1, 4 and 15):
        gaps 1, 2, 7 (a filler at 12), 2; values w1, w4, 0, w15.
    """
    check_bits(index_bits, "index_bits")
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
