"""Relative-index coding of sparse weights and Huffman coding of the streams it makes (Han
et al., "Deep Compression", ICLR 2016, Sections 2 and 4, Fig. 2).

Relative indices (Section 2). Instead of a position, each stored value keeps the gap to the
previous stored entry in b bits: the number of zeros skipped, 0 .. 2^b - 1. When more zeros
separate two nonzeros, a "filler" entry (a stored zero) is placed 2^b - 1 zeros further
on. The gaps run over the flattened weight, row after row, so the decoder needs only the
shape. `encode_relative` builds the code and `decode_relative` reads it back. Its size is
measured in `nclib.measure.storage`: `measure.relative_bytes` counts the same entries
without building them, and ``measure.storage_bytes(model, "sparse_relative")`` sizes a
whole model.

Huffman coding (Section 4; Huffman, "A Method for the Construction of Minimum-Redundancy
Codes", 1952). The gaps and the cluster labels are far from uniform, so a variable-length
prefix code gives frequent symbols short code words. Huffman's construction is optimal: no
prefix code has a smaller total length sum_s n_s l_s. Its mean length lies within one bit of
the entropy, H <= sum_s p_s l_s < H + 1, with H = -sum_s p_s log2 p_s (Shannon, 1948;
`entropy_bits`). The code words are canonical (as in DEFLATE, RFC 1951, Section 3.2.2):
they follow from the lengths alone, so a code book is one length per symbol.
"""
from __future__ import annotations

import heapq
import math
import numbers
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from nclib.measure.storage import RELATIVE_BITS, check_bits

__all__ = ["encode_relative", "decode_relative", "code_lengths", "canonical_code",
           "huffman_code", "Encoded", "huffman_encode", "huffman_decode", "entropy_bits"]


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


# ---------------------------------------------------------------- Huffman code books
def _check_counts(counts: Mapping[int, int], name: str = "counts") -> dict[int, int]:
    """`counts` as {symbol: count}, or a ValueError: symbols and counts are integers >= 0."""
    if not isinstance(counts, Mapping):
        raise TypeError(f"{name}: expected a mapping {{symbol: count}}, got "
                        f"{type(counts).__name__}")
    checked = {}
    for s, n in counts.items():
        for value, what in ((s, "symbol"), (n, "count")):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"{name}[{s!r}]={n!r}: expected a non-negative integer {what}")
        checked[int(s)] = int(n)
    return checked


def code_lengths(counts: Mapping[int, int]) -> dict[int, int]:
    """Huffman's optimal code length for every symbol whose count is above 0.

    Merge the two least frequent nodes until one tree is left (a heap keeps them in order);
    a symbol's code length is its depth in that tree. Ties go to the node made first:
    leaves in symbol order, then merged nodes in the order they were made, so equal counts
    give equal lengths on every run. A lone symbol still needs a 1-bit code word.

    Example:
        >>> code_lengths({0: 5, 1: 2, 2: 1, 3: 1})
        {0: 1, 1: 2, 2: 3, 3: 3}
    """
    counts = _check_counts(counts)
    symbols = sorted(s for s, n in counts.items() if n > 0)
    if len(symbols) <= 1:
        return dict.fromkeys(symbols, 1)
    heap = [(counts[s], node) for node, s in enumerate(symbols)]  # nodes 0..S-1: the leaves
    heapq.heapify(heap)
    parent = [-1] * len(symbols)
    while len(heap) > 1:
        (n_a, a), (n_b, b) = heapq.heappop(heap), heapq.heappop(heap)
        parent[a] = parent[b] = len(parent)  # a new node, the parent of the two lightest
        parent.append(-1)
        heapq.heappush(heap, (n_a + n_b, parent[a]))
    depth = [0] * len(parent)  # the root, made last, has depth 0
    for node in range(len(parent) - 2, -1, -1):  # parents are made after their children
        depth[node] = depth[parent[node]] + 1
    return {s: depth[node] for node, s in enumerate(symbols)}


def _canonical_order(lengths: Mapping[int, int]) -> list[int]:
    """The symbols sorted by (length, symbol), after checking that a prefix code has these
    lengths: positive integers with a Kraft sum  sum_s 2^-l_s <= 1."""
    for s, n in _check_counts(lengths, "lengths").items():
        if n == 0:
            raise ValueError(f"lengths[{s!r}]=0: a code word has at least 1 bit")
    order = sorted(lengths, key=lambda s: (lengths[s], s))
    if order:
        top = lengths[order[-1]]
        # Kraft: sum_s 2^-l_s <= 1, in integers: sum_s 2^(top - l_s) <= 2^top.
        if sum(1 << (top - lengths[s]) for s in order) > 1 << top:
            raise ValueError("lengths: sum of 2^-length over the symbols is above 1 (Kraft's "
                             "inequality), so no prefix code has these lengths")
    return [int(s) for s in order]


def canonical_code(lengths: Mapping[int, int]) -> dict[int, str]:
    """Canonical Huffman code words ('0'/'1' strings) from the code lengths alone.

    In the order (length, symbol), each code word is the previous one plus 1, shifted left
    (zeros appended) when the length grows (RFC 1951, Section 3.2.2). So code words of one
    length are consecutive binary numbers in symbol order, and the code is prefix-free.

    Example:
        >>> canonical_code({0: 1, 1: 2, 2: 3, 3: 3})
        {0: '0', 1: '10', 2: '110', 3: '111'}
    """
    words, code, previous = {}, 0, 0
    for s in _canonical_order(lengths):
        code <<= lengths[s] - previous  # a longer code word: append zeros
        words[s] = format(code, f"0{lengths[s]}b")
        code, previous = code + 1, lengths[s]
    return words


def huffman_code(counts: Mapping[int, int]) -> dict[int, str]:
    """The canonical Huffman code of `counts`: ``canonical_code(code_lengths(counts))``."""
    return canonical_code(code_lengths(counts))


def entropy_bits(counts: Mapping[int, int]) -> float:
    """Shannon entropy in bits per symbol: no code averages fewer (0.0 for < 2 symbols)."""
    n = np.array([c for c in _check_counts(counts).values() if c > 0], dtype=np.float64)
    if n.size == 0:
        return 0.0
    p = n / n.sum()
    # H = -sum_s p_s log2 p_s
    return float(max(0.0, -(p * np.log2(p)).sum()))


# ---------------------------------------------------------------- Huffman streams
@dataclass(frozen=True)
class Encoded:
    """A Huffman-coded stream: the code book, the bits, how many bits and how many symbols.

    `lengths` is the code book ({symbol: code length}; canonical code words follow from it).
    `payload` holds `bit_length` bits, most significant bit of each byte first, padded
    with zeros to whole bytes. `count` is the number of symbols coded.
    """

    lengths: dict[int, int]
    payload: bytes
    bit_length: int
    count: int


def _as_symbols(symbols) -> np.ndarray:
    """A sequence, tensor or array of non-negative integers as a 1-D int64 array."""
    values = symbols.detach().cpu().numpy() if torch.is_tensor(symbols) else np.asarray(symbols)
    if values.size == 0:
        values = values.astype(np.int64)
    if values.ndim != 1:
        raise ValueError(f"symbols of shape {values.shape}: expected one dimension")
    if values.dtype.kind not in "iu":
        raise TypeError(f"symbols of dtype {values.dtype}: expected integers")
    if values.size and values.min() < 0:
        raise ValueError(f"symbols: expected non-negative integers, got {values.min()}")
    return values.astype(np.int64)


def huffman_encode(symbols: Sequence[int] | np.ndarray | torch.Tensor) -> Encoded:
    """Huffman-code `symbols` (non-negative integers) with the code of their own counts.

    Example:
        >>> enc = huffman_encode([0, 0, 0, 1, 2])  # code words 0, 10, 11
        >>> enc.bit_length, enc.payload
        (7, b'\\x16')
    """
    values = _as_symbols(symbols)
    if values.size == 0:
        return Encoded(lengths={}, payload=b"", bit_length=0, count=0)
    alphabet, which, counts = np.unique(values, return_inverse=True, return_counts=True)
    lengths = code_lengths(dict(zip(alphabet.tolist(), counts.tolist())))
    words = canonical_code(lengths)
    # All code words of the alphabet, one after another, as an array of 0/1.
    book = "".join(words[s] for s in alphabet.tolist())
    book = np.frombuffer(book.encode(), np.uint8) - ord("0")
    size = np.array([lengths[s] for s in alphabet.tolist()], dtype=np.int64)  # (S,)
    start = np.cumsum(size) - size  # (S,) where each code word begins in `book`
    per_symbol = size[which]  # (N,) bits of each coded symbol
    first_bit = np.cumsum(per_symbol) - per_symbol  # (N,) where its bits begin in the stream
    # Bit j of the stream is bit (j - first_bit) of its symbol's code word.
    within = np.arange(int(per_symbol.sum())) - np.repeat(first_bit, per_symbol)  # (B,)
    bits = book[np.repeat(start[which], per_symbol) + within]  # (B,)
    return Encoded(lengths=lengths, payload=np.packbits(bits).tobytes(),
                   bit_length=int(bits.size), count=int(values.size))


def _check_encoded(encoded: Encoded) -> None:
    for name in ("bit_length", "count"):
        value = getattr(encoded, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name}={value!r}: expected a non-negative integer")
    if len(encoded.payload) != math.ceil(encoded.bit_length / 8):
        raise ValueError(f"a payload of {len(encoded.payload)} bytes for bit_length="
                         f"{encoded.bit_length} (which needs {math.ceil(encoded.bit_length / 8)} "
                         "bytes): the payload is truncated or does not belong to this stream")
    if encoded.count and not encoded.lengths:
        raise ValueError(f"count={encoded.count} symbols but no code book (lengths is empty)")


MAX_DECODE_LENGTH = 57  # a window of code bits is read from 8 bytes at any of 8 bit offsets
TABLE_BITS = 16  # the lookup table decodes code words of up to 16 bits in one step


def huffman_decode(encoded: Encoded) -> list[int]:
    """The symbols of `encoded`: ``huffman_decode(huffman_encode(s)) == list(s)``.

    Raises ValueError when the stream is inconsistent: a payload shorter or longer than
    `bit_length`, bits that run out before `count` symbols, bits that are no code word, or
    bits left over after `count` symbols.

    How: written left-justified in `top` bits (the longest length), canonical code words
    are increasing and tile 0 .. 2^top without gaps, so the code word that starts at a bit
    position is the last one whose left-justified value is at most the next `top` bits
    there. Every bit position is decoded at once (numpy): a table on the first 16 bits
    settles the short code words, a binary search the longer ones. Then a walk from bit 0
    jumps from code word to code word. Code words up to 57 bits long are decoded; longer
    ones need more than 10^12 symbols (a Fibonacci-like count table), so a stream from
    `huffman_encode` never has them.
    """
    _check_encoded(encoded)
    n, count = int(encoded.bit_length), int(encoded.count)
    if count == 0:
        if n:
            raise ValueError(f"count=0 symbols but bit_length={n}")
        return []
    order = _canonical_order(encoded.lengths)  # rank -> symbol
    size = np.array([encoded.lengths[s] for s in order], dtype=np.int64)  # (S,) ascending
    top = int(size[-1])
    if top > MAX_DECODE_LENGTH:
        raise ValueError(f"lengths: code words of {top} bits; up to {MAX_DECODE_LENGTH} bits "
                         "can be decoded")
    left = np.zeros(len(order), dtype=np.uint64)  # (S,) code words, left-justified in top bits
    code = 0
    for r in range(1, len(order)):
        code = (code + 1) << int(size[r] - size[r - 1])  # as in `canonical_code`
        left[r] = code << (top - int(size[r]))
    end = int(left[-1]) + 1  # the last code word is `top` bits long: no window above it starts one
    # The next `top` bits at every bit position p: 8 bytes from byte p // 8, shifted by p % 8.
    data = np.concatenate([np.frombuffer(encoded.payload, np.uint8), np.zeros(8, np.uint8)])
    words = np.lib.stride_tricks.sliding_window_view(data, 8).copy().view(">u8").ravel()
    p = np.arange(n, dtype=np.uint64)  # (n,)
    window = (words[p >> np.uint64(3)] << (p & np.uint64(7))) >> np.uint64(64 - top)  # (n,)
    t = min(top, TABLE_BITS)
    table = np.searchsorted(left, np.arange(2 ** t, dtype=np.uint64) << np.uint64(top - t),
                            side="right") - 1  # (2^t,) the code word of each t-bit head
    rank = table[window >> np.uint64(top - t)]  # (n,)
    long = size[rank] > t  # a head shared by longer code words: search the whole window
    rank[long] = np.searchsorted(left, window[long], side="right") - 1
    length = size[rank]  # (n,) the length of the code word starting at each bit
    length[window >= np.uint64(end)] = 0  # past the last code word (Kraft sum < 1): none
    tail = np.arange(max(0, n - top), n)
    length[tail[tail + length[tail] > n]] = 0  # code words that run past bit_length: none
    steps = np.append(length, 0)  # (n + 1,) 0 at bit n: the end of the stream
    jump, starts, at = steps.tolist(), [0] * count, 0
    for i in range(count):
        starts[i] = at
        at += jump[at]  # a step of 0 stays put: caught below
    starts = np.array(starts)
    bad = np.flatnonzero(steps[starts] == 0)
    if bad.size and starts[bad[0]] == n:
        raise ValueError(f"the payload ends after {bad[0]} of {count} symbols "
                         "(it is truncated or count is wrong)")
    if bad.size:
        raise ValueError(f"the bits from bit {starts[bad[0]]} on are no code word of the code "
                         "book (the payload is truncated, corrupt or coded with other lengths)")
    if at != n:
        raise ValueError(f"{n - at} bits are left after {count} symbols: the payload, "
                         "bit_length and count disagree")
    return np.array(order)[rank[starts]].tolist()
