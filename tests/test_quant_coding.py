"""nclib.quant.coding: sparse storage bytes, by hand and against torch's CSR arrays."""
import math

import pytest
import torch
from torch import nn

from nclib import measure, models
from nclib.pruning import magnitude
from nclib.quant import coding


def _sparse(*shape, density=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g)
    return w * (torch.rand(*shape, generator=g) < density)


def test_csr_bytes_by_hand():
    """[[0,2],[3,0]]: 2 values + 2 column indices + 3 row pointers, 4 bytes each = 28."""
    assert coding.csr_bytes(torch.tensor([[0.0, 2.0], [3.0, 0.0]])) == 28
    assert coding.csr_bytes(torch.zeros(5, 7)) == 6 * 4  # only the row pointers
    # 2 values x 8 bits + 2 columns x 3 bits + 2 pointers x 3 bits = 28 bits: rounded up to 4 bytes
    assert coding.csr_bytes(torch.tensor([[1.0, 0, 0, 4]]), value_bits=8, index_bits=3) == 4


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("shape", [(30, 40), (8, 4, 3, 3), (1, 50)])
def test_csr_bytes_match_torch_sparse_csr(shape):
    """Bytes = 4 x (values + col_indices + crow_indices) of torch's CSR of the (rows, rest) matrix."""
    w = _sparse(*shape)
    csr = w.reshape(shape[0], -1).to_sparse_csr()
    numbers = csr.values().numel() + csr.col_indices().numel() + csr.crow_indices().numel()
    assert coding.csr_bytes(w) == 4 * numbers


def test_relative_indices_by_hand():
    """3 bits, nonzeros at 1, 4, 15: gaps 1, 2, then a filler (gap 7 lands on 12), then 2."""
    w = torch.zeros(16)
    w[[1, 4, 15]] = torch.tensor([1.5, -2.0, 3.0])
    gaps, values = coding.encode_relative(w.view(4, 4), index_bits=3)
    assert gaps.tolist() == [1, 2, 7, 2]
    assert values.tolist() == [1.5, -2.0, 0.0, 3.0]
    assert coding.relative_bytes(w.view(4, 4), index_bits=3) == math.ceil(4 * (32 + 3) / 8)


def test_filler_entries_at_the_boundary():
    """2 bits (gaps 0..3): 3 zeros fit in one gap, 4 zeros need a filler, 8 zeros two."""
    for zeros, expected in [(3, [3]), (4, [3, 0]), (7, [3, 3]), (8, [3, 3, 0])]:
        w = torch.zeros(1, zeros + 1)
        w[0, -1] = 1.0
        gaps, values = coding.encode_relative(w, index_bits=2)
        assert gaps.tolist() == expected, zeros
        assert values.tolist() == [0.0] * (len(expected) - 1) + [1.0]


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


def test_bad_arguments():
    """Bits outside 1..64 and 1-D tensors in CSR: ValueError naming the argument."""
    with pytest.raises(ValueError, match="index_bits=0"):
        coding.encode_relative(torch.ones(3, 3), index_bits=0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        coding.csr_bytes(torch.ones(4))


def test_registered_formats_on_a_pruned_model():
    """storage_bytes knows sparse_csr and sparse_relative: weights sparse, the rest fp32, masks free."""
    model = models.LeNet300100()
    magnitude.prune_model(model, 0.9, scope="global")
    others = 4 * sum(m.bias.numel() for m in (model.fc1, model.fc2, model.fc3))
    expected_csr = others + sum(coding.csr_bytes(m.weight) for m in (model.fc1, model.fc2, model.fc3))
    assert measure.storage_bytes(model, "sparse_csr") == expected_csr
    relative = measure.storage_bytes(model, "sparse_relative")
    assert relative < expected_csr < measure.storage_bytes(model, "dense_fp32")
    baked = magnitude.bake(model)
    assert measure.storage_bytes(baked, "sparse_relative") == relative
    bn = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2))
    # a dense conv (18 nonzeros, 2 rows) and BN's 4 float tensors of 2 values (fp32)
    assert measure.storage_bytes(bn, "sparse_csr") == 4 * (18 + 18 + 3) + 4 * 8
