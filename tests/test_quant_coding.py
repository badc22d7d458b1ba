"""nclib.quant.coding: relative-index coding round-trips, and its length is measure's byte count;
Huffman codes are optimal, complete, prefix-free and canonical, and their streams round-trip."""
import dataclasses
import heapq
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from nclib import measure
from nclib.quant import coding


def _sparse(*shape, density=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g)
    return w * (torch.rand(*shape, generator=g) < density)


def _code_bytes(gaps, index_bits, value_bits=32):
    """Bytes of the code: every entry is a value and a gap."""
    return math.ceil(gaps.numel() * (value_bits + index_bits) / 8)


def test_relative_indices_by_hand():
    """3 bits, nonzeros at 1, 4, 15: gaps 1, 2, then a filler (gap 7 lands on 12), then 2."""
    w = torch.zeros(16)
    w[[1, 4, 15]] = torch.tensor([1.5, -2.0, 3.0])
    gaps, values = coding.encode_relative(w.view(4, 4), index_bits=3)
    assert gaps.tolist() == [1, 2, 7, 2]
    assert values.tolist() == [1.5, -2.0, 0.0, 3.0]
    assert measure.relative_bytes(w.view(4, 4), index_bits=3) == _code_bytes(gaps, 3)


def test_filler_entries_at_the_boundary():
    """2 bits (gaps 0..3): 3 zeros fit in one gap, 4 zeros need a filler, 8 zeros two."""
    for zeros, expected in [(3, [3]), (4, [3, 0]), (7, [3, 3]), (8, [3, 3, 0])]:
        w = torch.zeros(1, zeros + 1)
        w[0, -1] = 1.0
        gaps, values = coding.encode_relative(w, index_bits=2)
        assert gaps.tolist() == expected, zeros
        assert values.tolist() == [0.0] * (len(expected) - 1) + [1.0]
        assert measure.relative_bytes(w, index_bits=2) == _code_bytes(gaps, 2)


@pytest.mark.parametrize("bits", [1, 3, 4, 5, 8])
def test_relative_round_trip(bits):
    """decode(encode(w)) == w; every gap fits in the bits; entries = nonzeros + fillers."""
    w = _sparse(20, 30, density=0.05, seed=bits)
    gaps, values = coding.encode_relative(w, bits)
    assert torch.equal(coding.decode_relative(gaps, values, tuple(w.shape)), w)
    assert int(gaps.max()) <= 2 ** bits - 1 and int(gaps.min()) >= 0
    positions = torch.nonzero(w.flatten()).flatten()
    zeros = torch.diff(positions, prepend=torch.tensor([-1])) - 1
    assert gaps.numel() == positions.numel() + int((zeros // 2 ** bits).sum())


@pytest.mark.parametrize("density", [0.0, 0.002, 0.03, 0.3, 1.0])
@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8, 16])
def test_encoded_length_is_measures_byte_count(bits, density):
    """measure.relative_bytes, which counts without encoding, equals the bytes of the real code."""
    for shape in [(40, 50), (6, 3, 5, 5), (300,)]:
        w = _sparse(*shape, density=density, seed=bits)
        gaps, _ = coding.encode_relative(w, bits)
        for value_bits in (8, 32):
            expected = _code_bytes(gaps, bits, value_bits)
            assert measure.relative_bytes(w, bits, value_bits) == expected


def test_bad_arguments():
    """Index bits outside 1..64: ValueError naming the argument."""
    with pytest.raises(ValueError, match="index_bits=0"):
        coding.encode_relative(torch.ones(3, 3), index_bits=0)
    with pytest.raises(ValueError, match="index_bits=True"):
        coding.encode_relative(torch.ones(3, 3), index_bits=True)


# ---------------------------------------------------------------- Huffman coding
def _huffman_cost(counts):
    """Total length of an optimal prefix code, computed independently: the sum of all merged weights."""
    heap = [c for c in counts.values() if c > 0]
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        total += merged
        heapq.heappush(heap, merged)
    return total


def _count_tables():
    """Random count tables: skewed, uniform (powers of two and not), two symbols, sparse symbols."""
    rng = np.random.default_rng(0)
    tables = [{s: 1 + int(rng.integers(0, 1000)) for s in range(int(rng.integers(2, 300)))}
              for _ in range(20)]
    tables += [{s: int(c) for s, c in enumerate(rng.geometric(0.3, 50))},  # skewed
               {s: 2 ** s for s in range(20)},  # very skewed: lengths 1, 2, ..., 19, 19
               {s: 7 for s in range(16)}, {s: 7 for s in range(13)},  # uniform
               {0: 1, 1: 1}, {3: 10, 9: 1}, {5: 0, 6: 4, 7: 4, 8: 0, 10**12: 4}]
    return tables


def test_huffman_by_hand():
    """Counts 5, 2, 1, 1: lengths 1, 2, 3, 3, code words 0, 10, 110, 111; [0,0,0,1,2] is 7 bits."""
    counts = {0: 5, 1: 2, 2: 1, 3: 1}
    assert coding.code_lengths(counts) == {0: 1, 1: 2, 2: 3, 3: 3}
    assert coding.huffman_code(counts) == {0: "0", 1: "10", 2: "110", 3: "111"}
    enc = coding.huffman_encode([0, 0, 0, 1, 2])  # code words 0, 10, 11: 0001011 (+ 1 padding bit)
    assert enc == coding.Encoded(lengths={0: 1, 1: 2, 2: 2}, payload=bytes([0b00010110]),
                                 bit_length=7, count=5)


@pytest.mark.parametrize("index", range(len(_count_tables())))
def test_code_lengths_are_optimal(index):
    """Huffman's total length sum_s n_s l_s equals an independent heapq computation of the optimum."""
    counts = _count_tables()[index]
    lengths = coding.code_lengths(counts)
    assert set(lengths) == {s for s, c in counts.items() if c > 0}
    assert sum(counts[s] * l for s, l in lengths.items()) == _huffman_cost(counts)


def test_a_single_symbol_gets_one_bit():
    """One symbol alone gets length 1 (code word '0'); no symbols give an empty code."""
    assert coding.code_lengths({4: 10, 5: 0}) == {4: 1}
    assert coding.huffman_code({4: 10}) == {4: "0"}
    assert coding.code_lengths({}) == {} and coding.huffman_code({7: 0}) == {}


@pytest.mark.parametrize("index", range(len(_count_tables())))
def test_codes_are_complete_prefix_free_and_canonical(index):
    """Kraft sum 1; no code word prefixes another; equal lengths are consecutive numbers in symbol order."""
    lengths = coding.code_lengths(_count_tables()[index])
    words = coding.canonical_code(lengths)
    assert {s: len(w) for s, w in words.items()} == lengths
    assert sum(Fraction(1, 2 ** l) for l in lengths.values()) == 1  # a complete code
    ordered = sorted(words.values())  # a prefix sorts right before the words it starts
    assert not any(b.startswith(a) for a, b in zip(ordered, ordered[1:]))
    canonical = sorted(words, key=lambda s: (lengths[s], s))
    for a, b in zip(canonical, canonical[1:]):
        expected = (int(words[a], 2) + 1) << (lengths[b] - lengths[a])
        assert int(words[b], 2) == expected, (a, b)
    assert set(words[canonical[0]]) == {"0"}


def test_deterministic_ties():
    """Equal counts give the same code on every call, whatever the order of the mapping."""
    counts = {s: 3 for s in range(10)}
    backwards = dict(reversed(list(counts.items())))
    assert coding.huffman_code(counts) == coding.huffman_code(backwards)
    assert sorted(coding.code_lengths(counts).values()) == [3] * 6 + [4] * 4


@pytest.mark.parametrize("index", range(len(_count_tables())))
def test_entropy_bounds_the_mean_length(index):
    """Shannon: H <= mean Huffman length < H + 1."""
    counts = _count_tables()[index]
    lengths = coding.code_lengths(counts)
    mean = sum(counts[s] * l for s, l in lengths.items()) / sum(counts.values())
    h = coding.entropy_bits(counts)
    assert h <= mean + 1e-12 and mean < h + 1


def test_entropy_by_hand():
    """8 equal symbols: 3 bits; two: 1 bit; one symbol or none: 0 bits; 1/2, 1/4, 1/4: 1.5 bits."""
    assert coding.entropy_bits({s: 5 for s in range(8)}) == pytest.approx(3.0)
    assert coding.entropy_bits({0: 1, 1: 1}) == pytest.approx(1.0)
    assert coding.entropy_bits({3: 9}) == 0.0 and coding.entropy_bits({}) == 0.0
    assert coding.entropy_bits({0: 2, 1: 1, 2: 1}) == pytest.approx(1.5)


_FIBONACCI = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181, 6765]


def _streams():
    rng = np.random.default_rng(1)
    skewed = rng.choice(32, size=5000, p=rng.dirichlet(np.full(32, 0.3)))
    return {
        "skewed": skewed, "uniform": rng.integers(0, 256, 3000),
        "tensor": torch.from_numpy(skewed[:777]), "list": skewed[:100].tolist(),
        "single": [7] * 9, "one": [0], "empty": [], "sparse": rng.choice([3, 10**9, 2**40], 500),
        "long codes": rng.permutation(np.repeat(np.arange(20), _FIBONACCI)),  # code words of 19 bits
        "labels": torch.randint(0, 16, (50, 40), generator=torch.Generator().manual_seed(0)).flatten(),
    }


@pytest.mark.parametrize("name", list(_streams()))
def test_huffman_round_trip(name):
    """decode(encode(s)) == s; the payload holds exactly bit_length = sum of code lengths bits."""
    symbols = _streams()[name]
    expected = symbols.tolist() if hasattr(symbols, "tolist") else list(symbols)
    enc = coding.huffman_encode(symbols)
    assert coding.huffman_decode(enc) == expected
    assert enc.count == len(expected) and len(enc.payload) == math.ceil(enc.bit_length / 8)
    counts = {s: expected.count(s) for s in set(expected)} if len(expected) < 1000 else \
        dict(zip(*np.unique(expected, return_counts=True)))
    assert enc.lengths == coding.code_lengths(counts)
    assert enc.bit_length == sum(int(c) * enc.lengths[int(s)] for s, c in counts.items())
    if name == "long codes":
        assert max(enc.lengths.values()) > 16  # the search path past the 16-bit table


def test_huffman_round_trip_of_a_layer_sized_stream():
    """400,000 symbols of 32 classes (a big layer's labels) decode exactly (benchmarks/quant.py times it)."""
    rng = np.random.default_rng(2)
    symbols = rng.choice(32, size=400_000, p=rng.dirichlet(np.ones(32)))
    assert coding.huffman_decode(coding.huffman_encode(symbols)) == symbols.tolist()


def test_inconsistent_payloads_raise():
    """A truncated payload, wrong bit_length or count, bits that are no code word: ValueError."""
    rng = np.random.default_rng(3)
    enc = coding.huffman_encode(rng.choice(8, size=1000, p=[.4, .2, .1, .1, .1, .05, .03, .02]))
    for broken, message in [
        (dict(payload=enc.payload[:-1]), "truncated"),
        (dict(payload=b""), "truncated"),
        (dict(bit_length=enc.bit_length - 1), "no code word|bits are left|ends after"),
        (dict(bit_length=enc.bit_length + 9), "truncated"),
        (dict(count=enc.count + 1), "ends after 1000 of 1001"),
        (dict(count=enc.count - 1), "bits are left after 999"),
        (dict(lengths={}), "no code book"),
        (dict(lengths={0: 1, 1: 1, 2: 1}), "Kraft"),
        (dict(lengths={0: 0, 1: 1}), "at least 1 bit"),
    ]:
        with pytest.raises(ValueError, match=message):
            coding.huffman_decode(dataclasses.replace(enc, **broken))
    short = dataclasses.replace(coding.huffman_encode([0, 0, 0, 1, 2]), bit_length=6)  # 000101|1
    with pytest.raises(ValueError, match="from bit 5 on are no code word"):  # '1' needs a 2nd bit
        coding.huffman_decode(short)
    lone = coding.huffman_encode([5, 5, 5])  # the code word '0' only: a 1 bit is no code word
    with pytest.raises(ValueError, match="from bit 1 on are no code word"):
        coding.huffman_decode(dataclasses.replace(lone, payload=bytes([0b01000000])))
    with pytest.raises(ValueError, match="count=0 symbols but bit_length=8"):
        coding.huffman_decode(coding.Encoded({}, b"\x00", 8, 0))


def test_bad_symbols_and_counts():
    """Negative, non-integer or 2-D symbols and negative counts are refused with the reason."""
    with pytest.raises(ValueError, match="non-negative"):
        coding.huffman_encode([1, -2])
    with pytest.raises(TypeError, match="float"):
        coding.huffman_encode(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="one dimension"):
        coding.huffman_encode(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"counts\[3\]=-1"):
        coding.code_lengths({3: -1})
    with pytest.raises(ValueError, match="Kraft"):
        coding.canonical_code({0: 1, 1: 1, 2: 2})
