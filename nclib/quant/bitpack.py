"""Binary networks at the level of bits: signs packed in 64-bit words, products by xor and popcount.

A binarized layer (`nclib.quant.binary`) multiplies vectors of -1 and +1: one bit each is
enough, not a float's 32. A value maps to bit 1 iff it is negative, so sign(0) = +1. The n
values of a row fill ceil(n / 64) words, element j in word j // 64, bit j % 64 (least
significant first); the unused high bits of the last word are 0. Words are int64 tensors;
numpy reads them as uint64 (popcount: numpy 2's ``bitwise_count``).

The dot product (Hubara et al., "Binarized Neural Networks", NIPS 2016; Rastegari et al.,
"XNOR-Net", ECCV 2016). For s, t in {-1, +1}^n with bits u, v, s_k t_k is +1 where the signs
agree and -1 where they differ, the positions that xor marks:

    s . t = (n - d) - d = n - 2 d,   d = popcount(u xor v)                          (1)

The papers write 2 popcount(xnor(u, v)) - n; with xor the zero padding is never counted.

The {0, 1} form of the lecture's slide: for x, y in {0, 1}^n, x . y = popcount(x and y)
(`pack_bits`, `and_matmul`). With u = (1 - s) / 2, v = (1 - t) / 2 and |u| = popcount(u),
popcount(u xor v) = |u| + |v| - 2 popcount(u and v), so by (1)

    s . t = n - 2 |u| - 2 |v| + 4 popcount(u and v)                                (2)

One xor and one popcount replace 64 multiply-adds; a 4096 x 4096 weight takes 2 MB, not 64
(`packed_bytes`, `float_bytes`). A product is three numpy passes (xor, popcount, sum into
int32) over blocks that stay in cache; `nclib.quant.bitspeed` times it against fp32.

`BinaryLinear` and `BinaryConv2d`: XNOR-Net's layers for inference, on packed weights and
inputs. They compute on the CPU and refuse tensors on other devices (ValueError), so that
no copy hides in a timing; `pack_signs` and `pack_bits` take any device, return CPU words.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["pack_signs", "unpack_signs", "pack_bits", "binary_matmul", "and_matmul",
           "BinaryLinear", "BinaryConv2d", "packed_bytes", "float_bytes"]

BLOCK_WORDS = 1 << 17  # words per block of a product: 1 MB of xor results, about a core's L2
SHORT_ROW = 16  # repeat rows of a shorter than this: broadcast, numpy loops W words at a time


def _check_tensor(x, where: str, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: {name} is a {type(x).__name__}; expected a torch.Tensor")
    if x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(f"{where}: {name} has shape {tuple(x.shape)}; expected shape (..., n) "
                         "with n >= 1 values in the last dimension")


def _check_words(words, where: str, name: str, dims: int | None = None) -> None:
    if not isinstance(words, torch.Tensor) or words.dtype != torch.int64:
        got = f"dtype {words.dtype}" if isinstance(words, torch.Tensor) else type(words).__name__
        raise TypeError(f"{where}: {name} has {got}; expected packed words, an int64 tensor "
                        "(from pack_signs or pack_bits)")
    if (dims and words.dim() != dims) or words.dim() == 0 or words.shape[-1] == 0:
        raise ValueError(f"{where}: {name} has shape {tuple(words.shape)}; expected "
                         f"{'(rows, words)' if dims == 2 else '(..., words)'} with words >= 1")
    if words.device.type != "cpu":
        raise ValueError(f"{where}: {name} is on {words.device}; the packed arithmetic runs on "
                         "the CPU (numpy): call .cpu() first")


def _check_n(n, num_words: int, where: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= 64 * num_words - n < 64:
        raise ValueError(f"{where}: n={n!r} does not fit {num_words} words; expected an integer "
                         f"with {64 * (num_words - 1)} < n <= {64 * num_words}")


def _pack(bits: np.ndarray, lead) -> torch.Tensor:
    """Bool rows (L, n) -> words (*lead, ceil(n / 64)); element j: word j // 64, bit j % 64."""
    num_words = -(-bits.shape[1] // 64)
    padded = np.zeros((len(bits), 64 * num_words), bool)  # (L, 64 W): the padding bits stay 0
    padded[:, :bits.shape[1]] = bits
    words = np.packbits(padded.reshape(-1), bitorder="little").view("<i8")  # byte 0: lowest
    return torch.from_numpy(words.astype(np.int64, copy=False)).reshape(*lead, num_words)


def pack_signs(x: torch.Tensor) -> torch.Tensor:
    """The signs of the last dimension of x packed in 64-bit words: bit 1 iff x < 0.

    Shape: (..., n) floating -> (..., ceil(n / 64)) int64, on the CPU.

    Example:
        >>> pack_signs(torch.tensor([0.5, -1.0, 0.0, -2.0]))  # bits 1 and 3 set: 2 + 8
        tensor([10])
    """
    _check_tensor(x, "pack_signs(x)", "x")
    if not x.is_floating_point():
        raise TypeError(f"pack_signs(x): x has dtype {x.dtype}; expected a floating tensor "
                        "(float16, bfloat16, float32 or float64); pack 0/1 values with pack_bits")
    *lead, n = x.shape
    v = x.detach().cpu().reshape(-1, n)  # (L, n), in numpy: faster than torch here, on one thread
    v = v.to(torch.promote_types(v.dtype, torch.float32)).numpy()  # numpy has no bfloat16
    if v.size and np.isnan(v.max()):  # max propagates NaN
        raise ValueError("pack_signs(x): x has NaN values; expected numbers (NaN has no sign)")
    return _pack(v < 0, lead)


def unpack_signs(words: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of `pack_signs`: (..., ceil(n / 64)) words -> (..., n) float32 of +-1."""
    _check_words(words, "unpack_signs(words, n)", "words")
    *lead, num_words = words.shape
    _check_n(n, num_words, "unpack_signs(words, n)")
    raw = words.contiguous().numpy().astype("<i8", copy=False).view(np.uint8)  # (..., 8 W)
    bits = np.unpackbits(raw.reshape(-1, 8 * num_words), axis=1, count=n, bitorder="little")
    return torch.from_numpy(1 - 2 * bits.astype(np.float32)).reshape(*lead, n)  # s = 1 - 2 u


def pack_bits(x01: torch.Tensor) -> torch.Tensor:
    """Values 0 and 1 (any dtype) packed like `pack_signs`, bit 1 where 1: (..., n) -> (..., W)."""
    _check_tensor(x01, "pack_bits(x01)", "x01")
    bad = x01[(x01 != 0) & (x01 != 1)]
    if bad.numel():
        raise ValueError(f"pack_bits(x01): x01 has values {bad[:3].tolist()}; expected 0s and 1s")
    return _pack((x01.detach() == 1).cpu().reshape(-1, x01.shape[-1]).numpy(), x01.shape[:-1])


def _popcount_matmul(a: torch.Tensor, b: torch.Tensor, op) -> torch.Tensor:
    """sum over words w of popcount(op(a[i, w], b[j, w])) for every pair of rows: int32 (M, N).

    Blocked: mb rows of a against nb rows of b, about BLOCK_WORDS words at a time, so that
    the three passes (op, popcount, sum) read and write memory that stays in cache.
    """
    a, b = (t.contiguous().numpy().view(np.uint64) for t in (a, b))  # (M, W), (N, W)
    (M, W), N = a.shape, b.shape[0]
    out = torch.empty(M, N, dtype=torch.int32)
    nb = max(1, min(N, BLOCK_WORDS // W))
    mb = max(1, min(M, BLOCK_WORDS // (nb * W)))
    xs, counts = np.empty(mb * nb * W, np.uint64), np.empty(mb * nb * W, np.uint8)
    for i in range(0, M, mb):
        m = min(mb, M - i)
        lhs = a[i:i + m, None]  # (m, 1, W), broadcast against nb rows of b
        if W < SHORT_ROW:  # broadcasting loops over W words at a time: repeat short rows
            lhs = np.ascontiguousarray(np.broadcast_to(lhs, (m, nb, W)))  # (m, nb, W)
        for j in range(0, N, nb):
            k = min(nb, N - j)
            x = xs[:m * k * W].reshape(m, k, W)
            op(lhs[:, :k], b[None, j:j + k], out=x)  # (m, k, W)
            np.bitwise_count(x.reshape(-1), out=counts[:m * k * W])  # a byte per word, <= 64
            torch.sum(torch.from_numpy(counts[:m * k * W]).view(m, k, W), dim=2, dtype=torch.int32,
                      out=out[i:i + m, j:j + k])  # (m, k): the counts of W words added
    return out


def _check_pair(a, b, where: str) -> None:
    _check_words(a, where, "a_packed", dims=2)
    _check_words(b, where, "b_packed", dims=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{where}: a_packed has {a.shape[1]} words a row, b_packed has "
                         f"{b.shape[1]}; expected the same (both packed from rows of n values)")


def binary_matmul(a_packed: torch.Tensor, b_packed: torch.Tensor, n: int) -> torch.Tensor:
    """The +-1 dot products n - 2 popcount(a xor b) (Eq. 1) of packed rows, exactly
    ``unpack_signs(a_packed, n) @ unpack_signs(b_packed, n).T``.

    Shape: a_packed (M, W), b_packed (N, W) int64, packed from n values a row
    (64 (W - 1) < n <= 64 W) -> (M, N) int32.
    """
    where = "binary_matmul(a_packed, b_packed, n)"
    _check_pair(a_packed, b_packed, where)
    _check_n(n, a_packed.shape[1], where)
    used = n % 64  # bits of the last word that hold values; the rest must be 0
    for name, words in (("a_packed", a_packed), ("b_packed", b_packed)):
        if used and (words[:, -1] >> used != 0).any():
            raise ValueError(f"{where}: {name} has bits set past n={n} in its last word; "
                             "expected zero padding (as pack_signs writes)")
    d = _popcount_matmul(a_packed, b_packed, np.bitwise_xor)  # positions where signs differ
    return d.mul_(-2).add_(n)  # s . t = n - 2 d


def and_matmul(a_packed: torch.Tensor, b_packed: torch.Tensor) -> torch.Tensor:
    """The {0, 1} dot products popcount(a and b) of packed rows: (M, W), (N, W) -> int32 (M, N)."""
    _check_pair(a_packed, b_packed, "and_matmul(a_packed, b_packed)")
    return _popcount_matmul(a_packed, b_packed, np.bitwise_and)


def _vector(t, name: str, size: int, where: str) -> torch.Tensor | None:
    """None, or `t` as a float32 CPU vector of `size` values (one per output channel)."""
    if t is not None and not (torch.is_tensor(t) and t.is_floating_point() and t.numel() == size):
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{where}: {name} is {got}; expected None or a float tensor of {size} "
                         "values, one per output channel")
    return None if t is None else t.detach().float().cpu().reshape(size)


class _BinaryLayer(nn.Module):
    """What BinaryLinear and BinaryConv2d share: packed weight, alpha, bias, the product."""

    def _setup(self, weight, bias, alpha, input_scale: bool, dims: int) -> None:
        where = f"{type(self).__name__}(weight, ...)"
        _check_tensor(weight, where, "weight")
        if weight.dim() != dims or not weight.is_floating_point():
            raise ValueError(f"{where}: weight has shape {tuple(weight.shape)} and dtype "
                             f"{weight.dtype}; expected a floating tensor of {dims} dimensions")
        out = weight.shape[0]
        self.weight_shape = tuple(weight.shape)
        self.register_buffer("weight_words", pack_signs(weight.reshape(out, -1)))  # (O, W)
        self.register_buffer("alpha", _vector(alpha, "alpha", out, where))  # (O,) or None
        self.register_buffer("bias", _vector(bias, "bias", out, where))  # (O,) or None
        self.input_scale = bool(input_scale)

    def _check_input(self, x, dims: int, size: int, shape: str) -> None:
        where = f"{type(self).__name__}.forward(x)"
        _check_tensor(x, where, "x")
        if x.dim() != dims or x.shape[1] != size:
            raise ValueError(f"{where}: x has shape {tuple(x.shape)}; expected {shape}")
        if x.device.type != "cpu":
            raise ValueError(f"{where}: x is on {x.device}; packed layers compute on the CPU "
                             "(numpy popcount): call x.cpu() and keep the layer on the CPU")

    def _product(self, rows: torch.Tensor) -> torch.Tensor:
        """beta alpha (sign(rows) . sign(W)) + bias for rows (R, K) of inputs: (R, O) float32."""
        y = binary_matmul(pack_signs(rows), self.weight_words, rows.shape[1]).float()  # (R, O)
        if self.input_scale:
            y *= rows.detach().abs().float().mean(dim=1, keepdim=True)  # beta per row, (R, 1)
        if self.alpha is not None:
            y *= self.alpha  # (O,)
        return y if self.bias is None else y.add_(self.bias)

    def extra_repr(self) -> str:
        conv = f", stride={self.stride}, padding={self.padding}" if hasattr(self, "stride") else ""
        return (f"weight_shape={self.weight_shape}, bias={self.bias is not None}, "
                f"alpha={self.alpha is not None}, input_scale={self.input_scale}{conv}")


class BinaryLinear(_BinaryLayer):
    """A Linear on packed signs, y = beta alpha (sign(x) . sign(W)) + bias, by xor and popcount.

    Equal to ``F.linear(sign(x), sign(W) * alpha[:, None], bias)``, times beta = mean |x| of
    each input row if `input_scale` (XNOR-Net). `weight_words` (out, ceil(in / 64)) holds
    the signs of `weight` (out, in); `alpha` and `bias` are float32 buffers (out,) or None.
    Shape: (B, in) -> (B, out) float32, on the CPU.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 alpha: torch.Tensor | None = None, input_scale: bool = False):
        super().__init__()
        self._setup(weight, bias, alpha, input_scale, dims=2)
        self.out_features, self.in_features = self.weight_shape

    @classmethod
    def from_float(cls, linear: nn.Linear, scale: bool = False, input_scale: bool = False):
        """The signs of `linear`'s weight, its bias, and alpha = mean |W| per row if `scale`."""
        w = linear.weight.detach()
        return cls(w, linear.bias, w.abs().mean(dim=1) if scale else None, input_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x, 2, self.in_features, f"(B, {self.in_features})")
        return self._product(x)


class BinaryConv2d(_BinaryLayer):
    """A Conv2d on packed signs by im2col: every receptive field is a row for `binary_matmul`.

    The input is zero-padded first and then binarized: padded positions are sign(0) = +1 (a
    bit has no 0). Equal to ``F.conv2d(sign(F.pad(x, [p, p, p, p])), sign(W) * alpha[:, None,
    None, None], bias, stride)``, times, if `input_scale`, beta = the mean |x_padded| of each
    receptive field (C kh kw values, one beta per output position): a simplification of
    XNOR-Net's K = A * k, which averages over channels, then over the window. groups=1,
    dilation=1 only; `stride` and `padding` are ints or pairs.

    Shape: (B, C, H, W) -> (B, O, H', W') float32, on the CPU.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 alpha: torch.Tensor | None = None, stride=1, padding=0,
                 input_scale: bool = False):
        super().__init__()
        self._setup(weight, bias, alpha, input_scale, dims=4)
        pairs = [(v, v) if isinstance(v, int) else tuple(v) for v in (stride, padding)]
        if [len(p) for p in pairs] != [2, 2] or min(pairs[0]) < 1 or min(pairs[1]) < 0:
            raise ValueError(f"BinaryConv2d: stride={stride!r}, padding={padding!r}; expected "
                             "ints or pairs of ints, stride >= 1 and padding >= 0")
        self.stride, self.padding = pairs

    @classmethod
    def from_float(cls, conv: nn.Conv2d, scale: bool = False, input_scale: bool = False):
        """The signs of `conv`'s weight, its bias, and alpha = mean |W| per filter if `scale`."""
        if conv.groups != 1 or conv.dilation != (1, 1) or isinstance(conv.padding, str):
            raise ValueError(f"BinaryConv2d.from_float: conv has groups={conv.groups}, dilation="
                             f"{conv.dilation}, padding={conv.padding!r}; expected groups=1, "
                             "dilation=1 and integer padding")
        w = conv.weight.detach()
        return cls(w, conv.bias, w.abs().mean(dim=(1, 2, 3)) if scale else None, conv.stride,
                   conv.padding, input_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        O, C, kh, kw = self.weight_shape
        self._check_input(x, 4, C, f"(B, {C}, H, W)")
        (ph, pw), (sh, sw) = self.padding, self.stride
        xp = F.pad(x, [pw, pw, ph, ph])  # zeros, which sign makes +1
        B, _, H, W = xp.shape
        Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
        cols = F.unfold(xp, (kh, kw), stride=(sh, sw))  # (B, C kh kw, Ho Wo), W's row order
        y = self._product(cols.transpose(1, 2).reshape(B * Ho * Wo, C * kh * kw))  # (B L, O)
        return y.view(B, Ho, Wo, O).permute(0, 3, 1, 2).contiguous()  # (B, O, H', W')


def _values(module, where: str) -> tuple[int, int]:
    if not isinstance(module, _BinaryLayer):
        raise TypeError(f"{where}: module is a {type(module).__name__}; expected a "
                        "BinaryLinear or a BinaryConv2d")
    extra = sum(t.numel() for t in (module.alpha, module.bias) if t is not None)
    return module.weight_words.numel(), extra


def packed_bytes(module: nn.Module) -> int:
    """Bytes of a packed layer: 8 per weight word, 4 per alpha and per bias value."""
    words, extra = _values(module, "packed_bytes(module)")
    return 8 * words + 4 * extra


def float_bytes(module: nn.Module) -> int:
    """Bytes of the same layer in fp32, for comparison: 4 per weight, alpha and bias value."""
    _, extra = _values(module, "float_bytes(module)")
    return 4 * (int(np.prod(module.weight_shape)) + extra)
