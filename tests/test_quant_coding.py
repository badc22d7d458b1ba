"""nclib.quant.coding: relative-index coding round-trips, and its length is measure's byte count."""
import math

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
