"""Storage: the bytes of a model in a named format, counted exactly, bit by bit.

The formats of `storage_bytes` (`register_format` adds more, like codebooks and Huffman):

* "dense_fp32", "dense_fp16": every stored value in 4 or 2 bytes.
* "sparse_csr", compressed sparse row: a weight viewed as a matrix (rows = output units or
  filters) is stored as its a nonzero values, their a column indices, and n + 1 row
  pointers (where each row starts): 2a + n + 1 numbers (Han et al., "Deep Compression",
  ICLR 2016, Section 2).
* "sparse_relative", relative indices (Deep Compression, Section 2 and Fig. 2): instead of
  a position, store the gap to the previous stored entry in a few bits (Han et al. use 5
  bits for fully connected and 8 for conv layers). A gap counts the zeros skipped,
  0 .. 2^b - 1 with b bits; when more zeros separate two nonzeros, a "filler" entry (a
  stored zero) is placed 2^b - 1 zeros further on. Fillers stay rare while the mean gap,
  1/density - 1, is well under 2^b - 1: 4 bits (gaps up to 15) suit layers keeping more
  than about 1 weight in 16, 5 bits (up to 31) sparser ones. The gaps run over the
  flattened weight, row after row, so no row pointers are needed: the decoder knows the
  shape. The coding itself is `nclib.quant.coding.encode_relative`; here the entries are
  only counted.

In the sparse formats the weights of 2 or more dimensions are sparse; biases and BatchNorm
statistics stay dense fp32.
"""
from __future__ import annotations

import io
import math
from typing import Callable, Iterable

import torch
from torch import nn

__all__ = ["storage_bytes", "register_format", "STORAGE_FORMATS", "saved_bytes",
           "stored_tensors", "csr_bytes", "relative_bytes", "sparse_model_bytes",
           "csr_model_bytes", "relative_model_bytes"]

VALUE_BITS = 32  # values stay 32-bit floats until they are quantized (a later chapter)
INDEX_BITS = 32  # CSR's absolute indices: int32, like scipy's and torch's int32 CSR
RELATIVE_BITS = 5  # Deep Compression's gap width for fully connected layers


def stored_tensors(model: nn.Module) -> Iterable[torch.Tensor]:
    """What inference needs: parameters and floating-point buffers (BN statistics).

    Integer buffers (BN's batch counter) and buffers named ``*mask`` (pruning masks, which
    a real deployment folds into the weights) are not counted.
    """
    yield from model.parameters()
    for name, b in model.named_buffers():
        if b.is_floating_point() and not name.split(".")[-1].endswith("mask"):
            yield b


def check_bits(value: int, name: str) -> int:
    """`value` as a number of bits from 1 to 64, or a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise ValueError(f"{name}={value!r}: expected a number of bits from 1 to 64")
    return value


# ---------------------------------------------------------------- one weight
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
    check_bits(value_bits, "value_bits"), check_bits(index_bits, "index_bits")
    matrix = _as_matrix(weight)
    a, n = int(torch.count_nonzero(matrix)), matrix.shape[0]
    bits = a * value_bits + a * index_bits + (n + 1) * index_bits
    return math.ceil(bits / 8)


def relative_bytes(weight: torch.Tensor, index_bits: int = RELATIVE_BITS,
                   value_bits: int = VALUE_BITS) -> int:
    """Bytes of `weight` with relative indices: every entry is a value and a gap.

    Entries = nonzeros + fillers, counted without encoding: z zeros before a nonzero need
    z // 2^b fillers (a filler stands 2^b positions after the previous entry). Zeros after
    the last nonzero cost nothing. `nclib.quant.coding.encode_relative` builds the entries.

    Example (3 bits, nonzeros at 1, 4 and 15 of 16: the 10 zeros before 15 need 1 filler):
        4 entries x (32 + 3) bits = 140 bits, so 18 bytes.
    """
    check_bits(value_bits, "value_bits"), check_bits(index_bits, "index_bits")
    flat = weight.detach().flatten()
    positions = torch.nonzero(flat).flatten()  # (A,)
    zeros = torch.diff(positions, prepend=positions.new_tensor([-1])) - 1  # (A,) zeros before each
    period = 2 ** index_bits
    # No run of zeros reaches 2^b in a tensor shorter than that (and 2^64 does not fit int64).
    fillers = int((zeros // period).sum()) if period <= flat.numel() else 0
    return math.ceil((positions.numel() + fillers) * (value_bits + index_bits) / 8)


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


def _dense_bytes(bytes_per_value: float) -> Callable[[nn.Module], int]:
    def size(model: nn.Module) -> int:
        return int(sum(t.numel() for t in stored_tensors(model)) * bytes_per_value)
    return size


STORAGE_FORMATS: dict[str, Callable[[nn.Module], int]] = {
    "dense_fp32": _dense_bytes(4),  # 32-bit floats: 4 bytes a value
    "dense_fp16": _dense_bytes(2),
    "sparse_csr": csr_model_bytes,
    "sparse_relative": relative_model_bytes,
}


def register_format(name: str, size_fn: Callable[[nn.Module], int]) -> None:
    """Add a storage format: `size_fn(model)` returns its size in bytes."""
    STORAGE_FORMATS[name] = size_fn


def storage_bytes(model: nn.Module, fmt: str = "dense_fp32") -> int:
    """Bytes needed to store the model's weights (and BN statistics) in format `fmt`."""
    if fmt not in STORAGE_FORMATS:
        raise ValueError(f"fmt={fmt!r}: expected one of {', '.join(STORAGE_FORMATS)}")
    return int(STORAGE_FORMATS[fmt](model))


def saved_bytes(model: nn.Module) -> int:
    """Bytes of the file `torch.save(model.state_dict())` writes (the real size on disk)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()
