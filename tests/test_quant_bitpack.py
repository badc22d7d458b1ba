"""Tests of nclib.quant.bitpack and bitspeed: packed signs, xor-popcount products, packed layers."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nclib.quant import bitpack, bitspeed
from nclib.quant.bitpack import (BinaryConv2d, BinaryLinear, and_matmul, binary_matmul, pack_bits,
                                 pack_signs, unpack_signs)

SIZES = (1, 7, 63, 64, 65, 130, 784)


def sign(x):
    """The float reference's sign: +1 where x >= 0 (so sign(0) = +1), -1 where x < 0."""
    return torch.where(x >= 0, 1.0, -1.0)


def words_as_uint64(words):
    """The packed words as numpy uint64, to read single bits."""
    return words.numpy().view(np.uint64)


@pytest.mark.parametrize("n", SIZES)
def test_pack_unpack_round_trip_for_any_n_and_leading_shape(n):
    """unpack_signs(pack_signs(x)) == sign(x) for leading shapes (), (5,), (2, 3); ceil(n/64) words."""
    for lead in ((), (5,), (2, 3)):
        x = torch.randn(*lead, n)
        words = pack_signs(x)
        assert words.dtype == torch.int64 and words.shape == (*lead, -(-n // 64))
        back = unpack_signs(words, n)
        assert back.dtype == torch.float32 and torch.equal(back, sign(x))


def test_bit_layout_and_sign_of_zero():
    """Element j is bit j % 64 of word j // 64, bit 1 iff x < 0: 0.0 and -0.0 give +1, in every float dtype."""
    x = torch.tensor([0.5, -1.0, 0.0, -2.0, -0.0])
    assert pack_signs(x).tolist() == [2 + 8]
    x = torch.ones(130)
    x[[0, 63, 64, 129]] = -1.0
    w = words_as_uint64(pack_signs(x))
    assert w.tolist() == [1 + 2 ** 63, 1, 2]
    assert torch.equal(unpack_signs(pack_signs(torch.zeros(3)), 3), torch.ones(3))
    inf = torch.tensor([float("inf"), -float("inf")])
    assert torch.equal(unpack_signs(pack_signs(inf), 2), torch.tensor([1.0, -1.0]))
    tiny = torch.tensor([-1e-300, 1e-300], dtype=torch.float64)  # 0 in float32: the sign stays
    assert torch.equal(unpack_signs(pack_signs(tiny), 2), torch.tensor([-1.0, 1.0]))
    for dtype in (torch.float16, torch.bfloat16):
        assert pack_signs(torch.tensor([-1.0, 2.0, -3.0], dtype=dtype)).tolist() == [1 + 4]


@pytest.mark.parametrize("n", SIZES)
def test_padding_bits_are_zero(n):
    """The bits past n in the last word are 0, even where every value is negative."""
    words = words_as_uint64(pack_signs(-torch.ones(4, n)))
    used = n - 64 * (words.shape[1] - 1)
    assert np.all(np.bitwise_count(words[:, -1]) == used)
    assert np.all(words[:, :-1] == np.uint64(2 ** 64 - 1))


def test_binary_matmul_equals_the_float_product_exactly():
    """binary_matmul == unpack(a) @ unpack(b).T exactly, int32 (M, N), for odd n, n = 1 and n % 64 != 0."""
    g = torch.Generator().manual_seed(1)
    for M, N, n in ((1, 1, 1), (3, 5, 7), (4, 9, 63), (2, 3, 64), (5, 4, 65), (7, 6, 130),
                    (1, 300, 784), (33, 17, 1000), (64, 40, 4096)):
        a, b = torch.randn(M, n, generator=g), torch.randn(N, n, generator=g)
        got = binary_matmul(pack_signs(a), pack_signs(b), n)
        assert got.dtype == torch.int32 and got.shape == (M, N)
        assert torch.equal(got, (sign(a) @ sign(b).T).int())


def test_strided_inputs_give_the_same_words_and_products():
    """Transposed values and every-other-row word views pack and multiply like contiguous copies."""
    x = torch.randn(70, 6)
    assert torch.equal(pack_signs(x.T), pack_signs(x.T.contiguous()))
    a, b = pack_signs(torch.randn(8, 70)), pack_signs(torch.randn(6, 70))
    want = binary_matmul(a[::2].clone(), b[1::2].clone(), 70)
    assert torch.equal(binary_matmul(a[::2], b[1::2], 70), want)


def test_binary_matmul_blocks_do_not_change_the_result(monkeypatch):
    """Tiny blocks (many partial blocks of rows of a and of b) give the same products as one block."""
    a, b = torch.randn(37, 200), torch.randn(29, 200)
    want = (sign(a) @ sign(b).T).int()
    for block, short in ((1, 16), (64, 16), (100, 1), (10 ** 6, 16), (10 ** 6, 1)):
        monkeypatch.setattr(bitpack, "BLOCK_WORDS", block)
        monkeypatch.setattr(bitpack, "SHORT_ROW", short)
        assert torch.equal(binary_matmul(pack_signs(a), pack_signs(b), 200), want)


def test_and_matmul_is_the_01_dot_product_and_the_identity_holds():
    """pack_bits/and_matmul give x . y for 0/1 vectors; s . t = n - 2|u| - 2|v| + 4 popcount(u and v)."""
    g = torch.Generator().manual_seed(2)
    for n in (1, 50, 64, 131):
        x = torch.randint(0, 2, (6, n), generator=g)
        y = torch.randint(0, 2, (8, n), generator=g)
        assert torch.equal(pack_bits(x), pack_bits(x.bool()))
        assert torch.equal(pack_bits(x), pack_bits(x.float()))
        prod = and_matmul(pack_bits(x), pack_bits(y))
        assert prod.dtype == torch.int32 and torch.equal(prod, (x @ y.T).int())
        s, t = torch.randn(6, n, generator=g), torch.randn(8, n, generator=g)
        u, v = pack_signs(s), pack_signs(t)  # the bits u = (1 - s) / 2 of s, v of t
        assert torch.equal(pack_bits((1 - sign(s)) / 2), u)
        size_u = ((1 - sign(s)) / 2).sum(1, keepdim=True).int()  # (6, 1) popcount(u)
        size_v = ((1 - sign(t)) / 2).sum(1).int()  # (8,)
        assert torch.equal(binary_matmul(u, v, n), n - 2 * size_u - 2 * size_v + 4 * and_matmul(u, v))


def test_pack_errors_name_the_argument_and_what_is_allowed():
    """pack_signs refuses non-floating, non-tensor, 0-dim, empty and NaN input; pack_bits non-0/1 values."""
    with pytest.raises(TypeError, match=r"pack_signs\(x\): x has dtype torch.int64; expected a floating"):
        pack_signs(torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="x is a list"):
        pack_signs([1.0, -1.0])
    with pytest.raises(ValueError, match=r"shape \(\)"):
        pack_signs(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"shape \(3, 0\)"):
        pack_signs(torch.ones(3, 0))
    with pytest.raises(ValueError, match="NaN"):
        pack_signs(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match=r"x01 has values \[2"):
        pack_bits(torch.tensor([0, 1, 2]))


def test_matmul_errors_name_the_argument_and_value():
    """Wrong dtype, shape, word counts, n and padding bits raise errors that name them."""
    a, b = pack_signs(torch.randn(2, 70)), pack_signs(torch.randn(3, 70))  # 2 words a row
    with pytest.raises(TypeError, match="a_packed has dtype torch.int32"):
        binary_matmul(a.int(), b, 70)
    with pytest.raises(TypeError, match="b_packed has dtype torch.float32"):
        and_matmul(a, b.float())
    with pytest.raises(ValueError, match=r"a_packed has shape \(2, 2, 1\)"):
        binary_matmul(a[..., None], b, 70)
    with pytest.raises(ValueError, match="a_packed has 2 words a row, b_packed has 1"):
        binary_matmul(a, pack_signs(torch.randn(3, 64)), 70)
    for n in (64, 129, 0, 70.0, True):
        with pytest.raises(ValueError, match=f"n={n!r} does not fit 2 words"):
            binary_matmul(a, b, n)
    with pytest.raises(ValueError, match="b_packed has bits set past n=65"):
        binary_matmul(pack_signs(torch.ones(2, 70)), pack_signs(-torch.ones(3, 70)), 65)
    with pytest.raises(ValueError, match="n=63 does not fit 2 words"):
        unpack_signs(a, 63)


def xnor_linear(x, weight, bias, alpha, input_scale):
    """The float reference of a packed Linear: F.linear(sign(x), sign(W) alpha) (times beta) + bias."""
    w = sign(weight) * (alpha[:, None] if alpha is not None else 1)
    y = F.linear(sign(x), w)
    if input_scale:
        y = y * x.abs().mean(dim=1, keepdim=True)
    return y if bias is None else y + bias


@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("input_scale", [False, True])
def test_binary_linear_equals_the_float_reference(scaled, input_scale):
    """BinaryLinear.from_float(linear) equals F.linear on signs, with and without alpha and beta."""
    linear = nn.Linear(130, 9)
    x = torch.randn(5, 130)
    x[0, :4] = 0.0  # sign(0) = +1 in both
    layer = BinaryLinear.from_float(linear, scale=scaled, input_scale=input_scale)
    w = linear.weight.detach()
    alpha = w.abs().mean(dim=1) if scaled else None
    want = xnor_linear(x, w, linear.bias.detach(), alpha, input_scale)
    got = layer(x)
    assert got.dtype == torch.float32 and got.shape == (5, 9)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert layer.weight_words.shape == (9, 3) and layer.weight_words.dtype == torch.int64
    assert (layer.alpha is not None) == scaled and layer.bias.dtype == torch.float32
    buffers = {name for name, _ in layer.named_buffers()}
    assert buffers == {"weight_words", "bias"} | ({"alpha"} if scaled else set())
    assert "input_scale" in repr(layer) and "(9, 130)" in repr(layer)


def test_binary_linear_without_bias_and_errors():
    """No bias and no alpha give the plain +-1 product; wrong shapes, alpha sizes, devices are refused."""
    w, x = torch.randn(4, 10), torch.randn(3, 10)
    layer = BinaryLinear(w)
    assert layer.bias is None and layer.alpha is None
    assert torch.equal(layer(x), sign(x) @ sign(w).T)
    with pytest.raises(ValueError, match=r"x has shape \(3, 11\); expected \(B, 10\)"):
        layer(torch.randn(3, 11))
    with pytest.raises(ValueError, match="alpha is \\(3,\\); expected None or a float tensor of 4"):
        BinaryLinear(w, alpha=torch.ones(3))
    with pytest.raises(ValueError, match=r"weight has shape \(10,\)"):
        BinaryLinear(torch.randn(10))
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="compute on the CPU"):
            layer(x.cuda())


def xnor_conv(x, weight, bias, alpha, stride, padding, input_scale):
    """The float reference of a packed Conv2d: zero-pad, then sign, then conv (times beta per window)."""
    xp = F.pad(x, [padding] * 4)
    w = sign(weight) * (alpha[:, None, None, None] if alpha is not None else 1)
    y = F.conv2d(sign(xp), w, None, stride)
    if input_scale:
        box = torch.ones(1, *weight.shape[1:]) / weight[0].numel()
        y = y * F.conv2d(xp.abs(), box, None, stride)
    return y if bias is None else y + bias[:, None, None]


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 0), (2, 1)])
@pytest.mark.parametrize("scaled,input_scale", [(False, False), (True, False), (True, True)])
def test_binary_conv2d_equals_the_float_reference(stride, padding, scaled, input_scale):
    """BinaryConv2d.from_float equals conv2d of sign(zero-padded x), with and without alpha and beta."""
    conv = nn.Conv2d(3, 5, 3, stride=stride, padding=padding)
    x = torch.randn(2, 3, 9, 8)
    layer = BinaryConv2d.from_float(conv, scale=scaled, input_scale=input_scale)
    w = conv.weight.detach()
    alpha = w.abs().mean(dim=(1, 2, 3)) if scaled else None
    want = xnor_conv(x, w, conv.bias.detach(), alpha, stride, padding, input_scale)
    got = layer(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_binary_conv2d_pads_with_plus_one_and_refuses_other_convolutions():
    """A padded all-negative input sees +1 at the border; groups, dilation and bad strides are refused."""
    layer = BinaryConv2d(torch.ones(1, 1, 3, 3), padding=1)
    y = layer(-torch.ones(1, 1, 3, 3))  # corner window: 4 inputs of -1 and 5 padded +1
    assert y[0, 0, 0, 0] == 1.0 and y[0, 0, 1, 1] == -9.0
    with pytest.raises(ValueError, match="groups=2"):
        BinaryConv2d.from_float(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match=r"dilation=\(2, 2\)"):
        BinaryConv2d.from_float(nn.Conv2d(4, 4, 3, dilation=2))
    with pytest.raises(ValueError, match="stride=0"):
        BinaryConv2d(torch.ones(1, 1, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"x has shape \(1, 2, 3, 3\); expected \(B, 1, H, W\)"):
        layer(torch.ones(1, 2, 3, 3))


def test_packed_bytes_is_a_32nd_of_the_float_weight():
    """A 4096 x 4096 BinaryLinear with alpha and bias takes (4096^2 * 4) / 32 + 2 * 4096 * 4 bytes, +-1%."""
    layer = BinaryLinear(torch.randn(4096, 4096), torch.randn(4096), torch.rand(4096))
    want = 4096 * 4096 * 4 / 32 + 2 * 4096 * 4
    assert abs(bitpack.packed_bytes(layer) - want) <= 0.01 * want
    assert bitpack.float_bytes(layer) == 4 * (4096 * 4096 + 2 * 4096)
    conv = BinaryConv2d(torch.randn(8, 3, 3, 3))  # 27 values a filter: one word each, no alpha or bias
    assert bitpack.packed_bytes(conv) == 8 * 8 and bitpack.float_bytes(conv) == 4 * 8 * 27
    with pytest.raises(TypeError, match="module is a Linear"):
        bitpack.packed_bytes(nn.Linear(2, 2))


def test_speed_sweep_rows_are_well_formed():
    """speed_sweep has a row per (n, batch), positive times and consistent speed-ups (no speed claims)."""
    rows = bitspeed.speed_sweep(sizes=(64,), batches=(1, 2), repeats=2, rounds=1)
    assert [(r["n"], r["batch"]) for r in rows] == [(64, 1), (64, 2)]
    for r in rows:
        assert set(r) == {"n", "batch", "fp32_ms", "packed_ms", "pack_ms", "speedup",
                          "speedup_with_packing", "threads"}
        assert r["fp32_ms"] > 0 and r["packed_ms"] > 0 and r["pack_ms"] > 0
        assert r["threads"] == torch.get_num_threads()
        assert r["speedup"] == pytest.approx(r["fp32_ms"] / r["packed_ms"])
        assert r["speedup_with_packing"] == pytest.approx(r["fp32_ms"] / (r["packed_ms"] + r["pack_ms"]))
    with pytest.raises(ValueError, match="batch=0"):
        bitspeed.matmul_speed(64, 0)
