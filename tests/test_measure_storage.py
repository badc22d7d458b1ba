"""nclib.measure.storage: bytes by format, by hand and against torch's CSR; imports no technique."""
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from nclib import measure, models
from nclib.pruning import magnitude


def _sparse(*shape, density=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g)
    return w * (torch.rand(*shape, generator=g) < density)


def test_storage_bytes_formats():
    """dense_fp32 is 4 bytes a value (BN statistics included, masks and counters not)."""
    bn = nn.BatchNorm2d(8)
    bn.register_buffer("weight_mask", torch.ones(8))
    assert measure.storage_bytes(bn, "dense_fp32") == 4 * 8 * 4
    assert measure.storage_bytes(bn, "dense_fp16") == 2 * 8 * 4
    assert measure.saved_bytes(nn.Linear(100, 100)) > 4 * 10_100


BUILT_IN = ("dense_fp32", "dense_fp16", "sparse_csr", "sparse_relative")


def _built_in_only(monkeypatch):
    """Only measure's own formats, whatever other modules (nclib.quant) registered before."""
    monkeypatch.setattr(measure.storage, "STORAGE_FORMATS",
                        {k: measure.STORAGE_FORMATS[k] for k in BUILT_IN})


def test_unknown_format_lists_every_format(monkeypatch):
    """An unknown fmt: one ValueError that names it and lists all four built-in formats."""
    _built_in_only(monkeypatch)
    expected = "fmt='int3': expected one of dense_fp32, dense_fp16, sparse_csr, sparse_relative"
    with pytest.raises(ValueError, match=f"^{expected}$"):
        measure.storage_bytes(nn.Linear(2, 2), "int3")


def test_quant_registers_codebook_and_huffman():
    """Importing nclib.quant adds its file's formats, listed after the built-in ones."""
    import nclib.quant  # noqa: F401

    assert list(measure.STORAGE_FORMATS)[:4] == list(BUILT_IN)
    assert {"codebook", "huffman"} <= set(measure.STORAGE_FORMATS)


def test_register_format_adds_a_format(monkeypatch):
    """A registered format is offered by storage_bytes and listed in its error message."""
    _built_in_only(monkeypatch)  # a copy
    measure.register_format("int8", lambda m: measure.count_params(m))  # 1 byte a value
    assert measure.storage_bytes(nn.Linear(3, 2), "int8") == 8
    with pytest.raises(ValueError, match="sparse_relative, int8$"):
        measure.storage_bytes(nn.Linear(3, 2), "int3")


def test_sparse_formats_import_no_technique():
    """Every format works in a fresh process with nclib.measure alone: no pruning, no quant."""
    code = ("import sys, torch; from nclib import measure; m = torch.nn.Linear(8, 4); "
            "[measure.storage_bytes(m, f) for f in list(measure.STORAGE_FORMATS)]; "
            "print(sorted(k for k in sys.modules "
            "if k.startswith(('nclib.quant', 'nclib.pruning'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_csr_bytes_by_hand():
    """[[0,2],[3,0]]: 2 values + 2 column indices + 3 row pointers, 4 bytes each = 28."""
    assert measure.csr_bytes(torch.tensor([[0.0, 2.0], [3.0, 0.0]])) == 28
    assert measure.csr_bytes(torch.zeros(5, 7)) == 6 * 4  # only the row pointers
    # 2 values x 8 bits + 2 columns x 3 bits + 2 pointers x 3 bits = 28 bits: rounded up to 4 bytes
    assert measure.csr_bytes(torch.tensor([[1.0, 0, 0, 4]]), value_bits=8, index_bits=3) == 4


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("shape", [(30, 40), (8, 4, 3, 3), (1, 50)])
def test_csr_bytes_match_torch_sparse_csr(shape):
    """Bytes = 4 x (values + col_indices + crow_indices) of torch's CSR of the (rows, rest) matrix."""
    w = _sparse(*shape)
    csr = w.reshape(shape[0], -1).to_sparse_csr()
    numbers = csr.values().numel() + csr.col_indices().numel() + csr.crow_indices().numel()
    assert measure.csr_bytes(w) == 4 * numbers


def test_relative_bytes_by_hand():
    """3 bits, nonzeros at 1, 4, 15 of 16: 3 values + 1 filler = 4 entries of 35 bits = 18 bytes."""
    w = torch.zeros(4, 4)
    w.view(-1)[[1, 4, 15]] = torch.tensor([1.5, -2.0, 3.0])
    assert measure.relative_bytes(w, index_bits=3) == math.ceil(4 * (32 + 3) / 8) == 18
    assert measure.relative_bytes(w, index_bits=4) == math.ceil(3 * (32 + 4) / 8)  # gap 10 fits
    assert measure.relative_bytes(w, index_bits=3, value_bits=8) == math.ceil(4 * 11 / 8)
    assert measure.relative_bytes(torch.zeros(3, 3)) == 0  # trailing zeros cost nothing


def test_relative_fillers_at_the_boundary():
    """2 bits (gaps 0..3): 3 zeros need no filler, 4 zeros one, 7 zeros one, 8 zeros two."""
    for zeros, entries in [(3, 1), (4, 2), (7, 2), (8, 3)]:
        w = torch.zeros(1, zeros + 1)
        w[0, -1] = 1.0
        assert measure.relative_bytes(w, index_bits=2) == math.ceil(entries * 34 / 8), zeros


def test_relative_bytes_with_wide_gaps():
    """63 and 64 bits: no run of zeros needs a filler, so the entries are the nonzeros."""
    w = _sparse(20, 30, density=0.05)
    nonzeros = int(torch.count_nonzero(w))
    for bits in (63, 64):
        assert measure.relative_bytes(w, index_bits=bits) == math.ceil(nonzeros * (32 + bits) / 8)


def test_bad_arguments():
    """Bits outside 1..64 and 1-D tensors in CSR: ValueError naming the argument."""
    with pytest.raises(ValueError, match="index_bits=0"):
        measure.relative_bytes(torch.ones(3, 3), index_bits=0)
    with pytest.raises(ValueError, match="value_bits=65"):
        measure.csr_bytes(torch.ones(3, 3), value_bits=65)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        measure.csr_bytes(torch.ones(4))


def test_sparse_formats_on_a_pruned_model():
    """sparse_csr and sparse_relative: weights sparse, the rest fp32, masks free, same after bake."""
    model = models.LeNet300100()
    magnitude.prune_model(model, 0.9, scope="global")
    layers = (model.fc1, model.fc2, model.fc3)
    others = 4 * sum(m.bias.numel() for m in layers)
    expected_csr = others + sum(measure.csr_bytes(m.weight) for m in layers)
    assert measure.storage_bytes(model, "sparse_csr") == expected_csr
    relative = measure.storage_bytes(model, "sparse_relative")
    assert relative == others + sum(measure.relative_bytes(m.weight) for m in layers)
    assert relative < expected_csr < measure.storage_bytes(model, "dense_fp32")
    baked = magnitude.bake(model)
    assert measure.storage_bytes(baked, "sparse_relative") == relative
    bn = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2))
    # a dense conv (18 nonzeros, 2 rows) and BN's 4 float tensors of 2 values (fp32)
    assert measure.storage_bytes(bn, "sparse_csr") == 4 * (18 + 18 + 3) + 4 * 8
