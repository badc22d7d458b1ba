"""Chapter 03 experiment `xnor-speed`: the packed xnor-popcount matmul of
`nclib.quant.bitpack` against torch's fp32 matmul, on one thread.

Square layers: a weight of n x n, an input of batch x n. The packed time is the matmul on
operands already packed (the weights are packed once; packing the activations is timed
apart and shown too). Beside it, XNOR-Net's count of high-precision operations saved in a
convolution, S = 64 c N_W / (c N_W + 64) (Rastegari et al. 2016, section 4.1), and one
such convolution (c = 256 channels, 3 x 3 filters, a 14 x 14 input) timed with our packed
kernel against torch's fp32 convolution. Times depend on the machine: the claims are
ratios measured on the same machine in the same process.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from nclib.course.papers import table
from nclib.course.reproduce import Run, experiment
from nclib.quant import bitpack, bitspeed

SIZES = (256, 512, 1024, 2048, 4096)
BATCHES = (1, 64)
MIN_SPEEDUP = {1: 4.0, 64: 1.0}  # at n = 4096
CONV = dict(c=256, n_w=9, n_i=196)  # the paper's example: 256 channels, 3 x 3, 14 x 14

__all__ = ["SIZES", "BATCHES", "MIN_SPEEDUP", "CONV", "op_speedup", "bit_exact", "conv_speed",
           "run_xnor_speed"]


def op_speedup(c: int, n_w: int) -> float:
    """XNOR-Net's S = 64 c N_W / (c N_W + 64): the high-precision operations of a
    convolution (c N_W N_I) over what remains (c N_W N_I / 64 binary words, plus N_I
    for the scaling factors)."""
    return 64 * c * n_w / (c * n_w + 64)


def bit_exact(shapes=((64, 4096, 4096), (7, 1001, 33), (3, 1, 5)), seed: int = 0) -> bool:
    """binary_matmul of packed signs equals sign(a) @ sign(b).T exactly on every (M, n, N)."""
    g = torch.Generator().manual_seed(seed)
    for m, n, k in shapes:
        a, b = torch.randn(m, n, generator=g), torch.randn(k, n, generator=g)
        want = bitpack.unpack_signs(bitpack.pack_signs(a), n) @ bitpack.unpack_signs(bitpack.pack_signs(b), n).T
        got = bitpack.binary_matmul(bitpack.pack_signs(a), bitpack.pack_signs(b), n)
        if not torch.equal(got.double(), want.double()):
            return False
    return True


def conv_speed(c: int = CONV["c"], size: int = 14, kernel: int = 3, seed: int = 0) -> dict:
    """fp32 conv vs the packed BinaryConv2d (packing and im2col included) on one c-channel
    input of size x size, c filters of kernel x kernel, padding 1: times in ms."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, c, size, size, generator=g)
    w = torch.randn(c, c, kernel, kernel, generator=g)
    layer = bitpack.BinaryConv2d(w, None, None, 1, kernel // 2)
    t = bitspeed.best_ms({"fp32_ms": lambda: F.conv2d(x, w, None, 1, kernel // 2),
                          "packed_ms": lambda: layer(x)}, repeats=7)
    return {**t, "speedup": t["fp32_ms"] / t["packed_ms"]}


def run_xnor_speed(run: Run, sizes=SIZES, batches=BATCHES, conv: bool = True) -> dict:
    """The sweep's rows, bit-exactness, storage, the op count beside our conv, and the claims."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exact = bit_exact()
        run.row("binary_matmul equals sign(a) @ sign(b).T (n = 4096, 1001, 1)", None, exact, "")
        sweep = bitspeed.speed_sweep(sizes=sizes, batches=batches)
        for r in sweep:
            run.row(f"n = {r['n']}, batch {r['batch']}: fp32 / packed ms, speed-up", None,
                    f"{r['fp32_ms']:.3f} / {r['packed_ms']:.3f}, {r['speedup']:.1f}x "
                    f"({r['speedup_with_packing']:.1f}x with packing)", "")
        big = max(sizes)
        layer = bitpack.BinaryLinear(torch.randn(big, big), torch.zeros(big), torch.ones(big))
        ratio = bitpack.float_bytes(layer) / bitpack.packed_bytes(layer)
        run.row(f"{big} x {big} layer: fp32 bytes / packed bytes (with alpha and bias)", 32, round(ratio, 1), "x")
        paper = table("xnor-speedup")
        s = op_speedup(CONV["c"], CONV["n_w"])
        run.row("XNOR-Net's S = 64 c N_W / (c N_W + 64), c = 256, N_W = 9", paper.row("theoretical")["speedup"],
                round(s, 2), "x fewer high-precision ops")
        out = {"exact": exact, "sweep": sweep, "storage_ratio": ratio, "op_speedup": s}
        if conv:
            cs = conv_speed()
            out["conv"] = cs
            run.row("one 256-channel 3x3 conv on 14x14: fp32 conv / packed conv, measured",
                    paper.row("measured (their CPU implementation)")["speedup"], round(cs["speedup"], 2), "x")
    finally:
        torch.set_num_threads(threads)
    for batch, target in MIN_SPEEDUP.items():
        rows = [r for r in sweep if r["n"] == big and r["batch"] == batch]
        if rows:
            sp = rows[0]["speedup"]
            run.claim(f"at {big} x {big}, batch {batch}, the packed matmul is at least {target:g}x "
                      f"faster than fp32 on one thread ({sp:.1f}x)", round(sp, 2), f">= {target:g}",
                      sp >= target)
    return out


@experiment("xnor-speed", dataset="random +-1 operands (no data)",
            scale=f"square layers n = {', '.join(map(str, SIZES))}, batch 1 and 64, one thread; "
                  "the paper: AlexNet-sized convolutions, their own CPU code",
            summary="packed xnor-popcount matmul vs fp32 torch, per size; bit-exact; op count")
def xnor_speed(run: Run) -> None:
    run_xnor_speed(run)
