"""Real int8 arithmetic on the CPU: how much faster is an int8 Linear than an fp32 one?

Fake quantization (`nclib.quant.layers`) only simulates int8: the model still multiplies
floats. Speed needs an integer kernel. This module uses torch's
``quantized::linear_dynamic`` (FBGEMM on x86, QNNPACK on ARM), the kernel behind
``torch.ao.nn.quantized.dynamic.Linear`` and ``quantize_dynamic``:

* the weight is quantized once to int8 (symmetric, per tensor, by `nclib.quant.uniform.calibrate`)
  and prepacked (``quantized::linear_prepack``) into the kernel's blocked layout;
* at every call ("dynamic") the input is quantized to uint8 from its own min and max, the
  products are accumulated in int32, and the output is rescaled to fp32 (Jacob et al.
  2018, Eq. 4 and 7). So the int8 timing includes quantizing the activations and the fp32
  output: it is a drop-in replacement for nn.Linear.

On x86 the input uses 7 of its 8 bits (``reduce_range``, as torch's own dynamic Linear
does): FBGEMM's AVX2 path multiplies uint8 by int8 into int16 pairs, which 8-bit inputs
could overflow.

Why int8 can be faster: the weight is 4x fewer bytes to read (at batch 1 a large Linear
is limited by memory: fp32 4096 x 4096 reads 64 MB per call), and a vector instruction
does 4x more int8 multiply-accumulates than fp32 ones. Why it can be slower: for small
layers quantizing the input and rescaling the output cost more than the products.

Torch 2.14 deprecates quantized tensor types (``torch.qint8`` ...), which prepacking
needs, and warns once per process. `int8_kernel` turns on ``torch.set_warn_always`` while
it builds a layer, catches the warning and returns its text, so a lecture can show it.
``torch._int_mm`` (int8 x int8 -> int32, what torchao builds on) is the primitive that
is not deprecated; with it, quantizing the input and rescaling are left to the caller.
If a later torch removes the kernel, `int8_kernel` says so and `linear_speed` returns None
for the int8 figures.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import torch
from torch import nn

from nclib.measure import measure_latency
from nclib.quant.uniform import calibrate

__all__ = ["KERNEL", "Int8Linear", "int8_kernel", "linear_speed", "speed_sweep"]

KERNEL = "quantized::linear_dynamic"


class Int8Linear(nn.Module):
    """An nn.Linear computed by ``quantized::linear_dynamic``: int8 weight, uint8 input, fp32 out.

    Shape: (B, in_features) -> (B, out_features), like the Linear it was made from.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float().cpu()  # (O, I)
        scale, _ = calibrate(weight, num_bits=8, signed=True, symmetric=True)  # max|w| / 127
        qweight = torch.quantize_per_tensor(weight, float(scale), 0, torch.qint8)
        bias = None if linear.bias is None else linear.bias.detach().float().cpu()
        self.packed = torch.ops.quantized.linear_prepack(qweight, bias)
        self.reduce_range = torch.backends.quantized.engine in ("fbgemm", "x86")
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x, self.packed, reduce_range=self.reduce_range)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={KERNEL}"


def _build(linear: nn.Linear) -> tuple[Int8Linear | None, str | None, str | None]:
    """(int8 layer or None, the reason it failed or None, the warnings' text or None)."""
    was_warn_always = torch.is_warn_always_enabled()
    caught: list = []
    layer, reason = None, None
    try:
        torch.set_warn_always(True)  # torch's "warn once" warnings, every time
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layer = Int8Linear(linear)
            layer(torch.zeros(1, linear.in_features))  # some failures only show on a call
    except (AttributeError, RuntimeError, NotImplementedError, TypeError) as e:
        layer, reason = None, f"{type(e).__name__}: {e}"
    finally:
        torch.set_warn_always(was_warn_always)
    text = "\n".join(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    return layer, reason, text or None


def int8_kernel() -> dict:
    """Which int8 kernel `linear_speed` uses, whether it works here, and what torch warned.

    Returns:
        {"name", "available", "reason" (why not, else None), "warning" (the text of the
        warnings torch raised while building a layer, else None), "torch" (version),
        "engine" (``torch.backends.quantized.engine``), "supported_engines",
        "cpu_capability", "description"}.
    """
    _, reason, warning = _build(nn.Linear(8, 4))
    quantized = getattr(torch.backends, "quantized", None)
    return {"name": KERNEL, "available": reason is None, "reason": reason, "warning": warning,
            "torch": torch.__version__,
            "engine": getattr(quantized, "engine", None),
            "supported_engines": list(getattr(quantized, "supported_engines", [])),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "description": "int8 weight (per tensor, prepacked), input quantized to uint8 "
                           "at every call, int32 accumulation, fp32 output"}


def linear_speed(in_features: int, out_features: int, batch: int, repeats: int = 30,
                 threads: int = 1, rounds: int = 3, seed: int = 0) -> dict:
    """Measured CPU latency of one Linear layer in fp32 (nn.Linear) and int8 (`Int8Linear`).

    Each figure is the fastest of `rounds` medians of `repeats` runs after 5 warm-up runs
    (`nclib.measure.measure_latency`), rounds taking turns between fp32 and int8 so a
    burst of other work on the machine hits both alike; torch uses `threads` threads during
    the measurement only. The int8 time includes quantizing the input.

    Returns:
        {"in_features", "out_features", "batch", "threads", "fp32_ms", "int8_ms",
        "speedup" (fp32_ms / int8_ms), "rel_error" (||y_int8 - y_fp32|| / ||y_fp32||)};
        the int8 fields are None where the kernel is unavailable (`int8_kernel` says why).
    """
    for name, value in (("in_features", in_features), ("out_features", out_features),
                        ("batch", batch), ("repeats", repeats), ("threads", threads),
                        ("rounds", rounds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: expected a positive integer")
    g = torch.Generator().manual_seed(seed)
    linear = nn.Linear(in_features, out_features)
    with torch.no_grad():  # seeded weights: the default init draws from the global RNG
        weight = torch.randn(out_features, in_features, generator=g)  # (O, I)
        linear.weight.copy_(weight / math.sqrt(in_features))
        linear.bias.copy_(torch.randn(out_features, generator=g) * 0.1)
    x = torch.randn(batch, in_features, generator=g)  # (B, I)
    result = {"in_features": in_features, "out_features": out_features, "batch": batch,
              "threads": threads, "fp32_ms": None, "int8_ms": None, "speedup": None,
              "rel_error": None}
    int8, _, _ = _build(linear)
    fp32_times, int8_times = [], []
    for _ in range(rounds):
        fp32_times.append(measure_latency(linear, inputs=x, repeats=repeats, threads=threads,
                                          device="cpu").median_ms)
        if int8 is not None:
            int8_times.append(measure_latency(int8, inputs=x, repeats=repeats, threads=threads,
                                              device="cpu").median_ms)
    result["fp32_ms"] = min(fp32_times)
    if int8 is not None:
        with torch.no_grad():
            y, y8 = linear(x), int8(x)  # (B, O)
        result.update(int8_ms=min(int8_times), speedup=min(fp32_times) / min(int8_times),
                      rel_error=float((y8 - y).norm() / y.norm()))
    return result


def speed_sweep(sizes: Sequence[int] = (64, 256, 1024, 4096), batches: Sequence[int] = (1, 64),
                repeats: int = 30, threads: int = 1, rounds: int = 3) -> list[dict]:
    """`linear_speed` of square layers (size x size) for every size and batch, in that order."""
    return [linear_speed(size, size, batch, repeats=repeats, threads=threads, rounds=rounds)
            for size in sizes for batch in batches]
