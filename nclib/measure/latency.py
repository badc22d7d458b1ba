"""Time: measured latency, the median of repeated runs after warm-up.

Every `Latency` carries the conditions it was measured in (batch size, threads, device,
repeats), so a table can state them. `best_latencies` compares models fairly on cores that
other processes share.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from nclib.measure.counts import _check_shape, _first_param

__all__ = ["measure_latency", "best_latencies", "Latency", "keep_freed_memory"]


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the system.

    Some CPU kernels (PyTorch's depthwise convolution among them) allocate megabytes of
    scratch memory on every call. With glibc's defaults that memory goes back to the
    system each time and returns as thousands of page faults, which can cost more than the
    arithmetic and make timings erratic (benchmarks/arch.py measured 10-25x). Call this
    once before timing small layers. Returns False where the C library is not glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
    # keep up to 1 GiB of freed heap; serve blocks up to 32 MiB (glibc's largest) from the heap
    return bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) and libc.mallopt(M_MMAP_THRESHOLD, 1 << 25))


@dataclass(frozen=True)
class Latency:
    """Median wall time of one forward pass, with the conditions it was measured in."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    batch_size: int
    threads: int
    device: str
    repeats: int

    def __str__(self) -> str:
        return (f"{self.median_ms:.3f} ms (median of {self.repeats}, batch {self.batch_size}, "
                f"{self.threads} thread(s), {self.device})")


def _timed_batch(caller: str, input_shape: Sequence[int] | None, inputs: torch.Tensor | None,
                 batch_size: int) -> torch.Tensor:
    """`inputs`, or a batch of `batch_size` random samples of `input_shape` (seed 0)."""
    if (input_shape is None) == (inputs is None):
        raise ValueError(f"{caller}: give exactly one of input_shape or inputs")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
    if inputs is None:
        inputs = torch.randn((batch_size, *_check_shape(input_shape)),
                             generator=torch.Generator().manual_seed(0))
    return inputs


def measure_latency(model: nn.Module, input_shape: Sequence[int] | None = None, *,
                    inputs: torch.Tensor | None = None, batch_size: int = 1, warmup: int = 5,
                    repeats: int = 30, device: str | torch.device | None = None,
                    threads: int | None = None) -> Latency:
    """Median latency of ``model(inputs)`` in eval mode, after `warmup` untimed runs.

    Give either `input_shape` (one sample, no batch dimension; a batch of `batch_size`
    random inputs is made) or `inputs` (a ready batch). `threads` sets torch's thread count
    for the measurement only.
    """
    from nclib import get_device

    inputs = _timed_batch("measure_latency", input_shape, inputs, batch_size)
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats!r}, warmup={warmup!r}: expected repeats >= 1 "
                         "and warmup >= 0")
    dev = get_device(device)
    inputs = inputs.to(dev)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    was_training = model.training
    model.eval()
    original_device = (_first_param(model).device if _first_param(model) is not None else None)
    model.to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    times = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(inputs)
            sync()
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(inputs)
                sync()
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        used_threads = torch.get_num_threads()
        torch.set_num_threads(old_threads)
        model.train(was_training)
        if original_device is not None:
            model.to(original_device)
    q = statistics.quantiles(times, n=10) if len(times) > 1 else [times[0]] * 9
    return Latency(statistics.median(times), q[0], q[-1], int(inputs.shape[0]), used_threads,
                   str(dev), repeats)


def best_latencies(models: Sequence[nn.Module], inputs: torch.Tensor | None = None,
                   rounds: int = 5, repeats: int = 20, device: str | torch.device | None = None,
                   *, input_shape: Sequence[int] | None = None,
                   batch_size: int = 1) -> list[Latency]:
    """Each model's fastest median latency over `rounds` rounds that take turns.

    Give, as for `measure_latency`, either `inputs` (a ready batch) or `input_shape` (one
    sample, no batch dimension) and `batch_size`: one seeded random batch that every model
    gets. When other processes share the cores, a burst of their work slows whichever model
    runs at that moment; taking turns and keeping each model's least disturbed round
    compares the models under the same conditions.

    Example:
        >>> best_latencies([dense, pruned], input_shape=(1, 28, 28), batch_size=64)
    """
    inputs = _timed_batch("best_latencies", input_shape, inputs, batch_size)
    if rounds < 1:
        raise ValueError(f"rounds={rounds!r}: expected a positive integer")
    best: list[Latency | None] = [None] * len(models)
    for _ in range(rounds):
        for i, m in enumerate(models):
            lat = measure_latency(m, inputs=inputs, repeats=repeats, device=device)
            if best[i] is None or lat.median_ms < best[i].median_ms:
                best[i] = lat
    return best
