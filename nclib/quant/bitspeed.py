"""How much faster is a product of packed signs than an fp32 one? Measured on the CPU.

`matmul_speed` times one square layer, weight (n, n), input (batch, n), three ways:

* fp32: ``x @ w.T`` on float32 tensors (torch's BLAS, vectorised multiply-adds);
* packed: `bitpack.binary_matmul` on operands already packed (xor, popcount, sum);
* pack: `bitpack.pack_signs` of the batch's activations, which a binary network pays at
  every layer (the weights are packed once, not timed).

Why the speed-ups look as they do. At batch 1 fp32 reads the whole weight once per call,
n^2 floats (64 MB at n = 4096, more than the caches hold), and spends its time waiting for
memory; the packed weight is 32x smaller (2 MB), so the packed product can win by about
10x. At batch 64 fp32 reuses every weight row from cache 64 times and runs at the
arithmetic speed of the vector units, while numpy makes three passes over the words
(xor, ``bitwise_count`` at about one word per cycle, a sum of bytes) with no fused
kernel: the gain shrinks to about 2x. Small layers fit in cache in fp32 too, and numpy's
per-call overhead (microseconds) dominates: packed can be slower there. Fused C kernels
with vector popcount (daBNN, Larq Compute Engine, bitnet.cpp) go much further.

numpy's arithmetic runs on one thread, so compare it with one torch thread: run with
``torch.set_num_threads(1)`` (``NCLIB_THREADS=1``); this module does not change it, and
every row reports ``torch.get_num_threads()``.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence

import torch

from nclib.quant.bitpack import binary_matmul, pack_signs

__all__ = ["best_ms", "matmul_speed", "speed_sweep"]


def _median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in milliseconds over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def best_ms(jobs: dict[str, Callable[[], object]], repeats: int = 10, rounds: int = 3) -> dict[str, float]:
    """{name: the fastest of `rounds` medians of `repeats` runs of the job, in ms}; the jobs take
    turns in every round, so that a burst of other work on the machine hits all alike."""
    best = {key: float("inf") for key in jobs}
    with torch.inference_mode():
        for _ in range(rounds):
            for key, fn in jobs.items():
                best[key] = min(best[key], _median_ms(fn, repeats))
    return best


def matmul_speed(n: int, batch: int, repeats: int = 10, rounds: int = 3, seed: int = 0) -> dict:
    """Latency of ``x @ w.T`` for w (n, n), x (batch, n): fp32 against packed signs.

    Each time is the fastest of `rounds` medians of `repeats` runs after warm-up, the three
    taking turns in every round so that a burst of other work on the machine hits all alike.

    Returns:
        {"n", "batch", "threads" (torch.get_num_threads()), "fp32_ms", "packed_ms" (the
        product of packed operands), "pack_ms" (packing x), "speedup" (fp32_ms / packed_ms),
        "speedup_with_packing" (fp32_ms / (packed_ms + pack_ms))}.
    """
    for name, value in (("n", n), ("batch", batch), ("repeats", repeats), ("rounds", rounds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"matmul_speed: {name}={value!r}; expected a positive integer")
    g = torch.Generator().manual_seed(seed)
    w, x = torch.randn(n, n, generator=g), torch.randn(batch, n, generator=g)  # (N, n), (B, n)
    w_words, x_words = pack_signs(w), pack_signs(x)  # (N, W), (B, W)
    best = best_ms({"fp32_ms": lambda: x @ w.T,
                    "packed_ms": lambda: binary_matmul(x_words, w_words, n),
                    "pack_ms": lambda: pack_signs(x)}, repeats, rounds)
    return {"n": n, "batch": batch, "threads": torch.get_num_threads(), **best,
            "speedup": best["fp32_ms"] / best["packed_ms"],
            "speedup_with_packing": best["fp32_ms"] / (best["packed_ms"] + best["pack_ms"])}


def speed_sweep(sizes: Sequence[int] = (256, 512, 1024, 2048, 4096),
                batches: Sequence[int] = (1, 64), repeats: int = 10, rounds: int = 3) -> list[dict]:
    """`matmul_speed` for every size and batch, sizes outer, batches inner."""
    return [matmul_speed(n, batch, repeats=repeats, rounds=rounds)
            for n in sizes for batch in batches]
