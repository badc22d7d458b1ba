"""Measurement, the spine of every chapter.

Counts: parameters, nonzeros, multiply-accumulates (MACs; one MAC is one multiplication
and one addition, so ``flops = 2 * macs``, as the MobileNet paper writes #FLOPS = 2 * #MACC).
Sizes: bytes of a model in a named storage format. Time: measured latency, the median of
repeated runs after warm-up. `report()` puts them in one row and `compare()` sets rows
side by side.

The MAC counter is analytic and our own: it counts Linear and Conv2d layers (grouped and
depthwise included) from their shapes. Pooling, BatchNorm, activations and additions are
ignored: they cost no multiplications of weights, and the papers' tables leave them out too.
"""
from __future__ import annotations

import io
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

__all__ = ["count_params", "count_nonzero", "count_macs", "MacCount", "LayerMacs",
           "storage_bytes", "register_format", "STORAGE_FORMATS", "saved_bytes", "stored_tensors",
           "measure_latency", "best_latencies", "Latency", "keep_freed_memory", "report", "Row", "compare", "Table", "human"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (a masked weight still counts: it is still stored)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_nonzero(model: nn.Module) -> int:
    """Number of parameters that are not exactly zero."""
    return sum(int(torch.count_nonzero(p.detach())) for p in model.parameters())


# ---------------------------------------------------------------- MACs
@dataclass(frozen=True)
class LayerMacs:
    name: str
    kind: str
    macs: int
    output_shape: tuple[int, ...]


@dataclass
class MacCount:
    """Total MACs of one forward pass of one sample, and the per-layer list."""

    total: int
    layers: list[LayerMacs] = field(default_factory=list)

    @property
    def flops(self) -> int:
        return 2 * self.total

    def __int__(self) -> int:
        return self.total

    def table(self) -> str:
        w = max([len(l.name) for l in self.layers] + [5])
        lines = [f"{'layer':<{w}}  {'type':<8} {'output':<18} {'MACs':>14}"]
        for l in self.layers:
            lines.append(f"{l.name:<{w}}  {l.kind:<8} {str(tuple(l.output_shape)):<18} {l.macs:>14,}")
        lines.append(f"{'total':<{w}}  {'':<8} {'':<18} {self.total:>14,}")
        return "\n".join(lines)


def _layer_macs(module: nn.Module, out: torch.Tensor) -> int | None:
    if isinstance(module, nn.Linear):
        # every output value is a dot product of in_features terms
        return out.numel() * module.in_features
    if isinstance(module, nn.Conv2d):
        # every output value sums kh * kw * (C_in / groups) products
        kh, kw = module.kernel_size
        return out.numel() * kh * kw * (module.in_channels // module.groups)
    return None


def _check_shape(input_shape) -> tuple[int, ...]:
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    if (not isinstance(input_shape, (tuple, list, torch.Size)) or not input_shape
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in input_shape)):
        raise ValueError(f"input_shape={input_shape!r}: expected the shape of one sample as "
                         "positive integers without the batch dimension, like (1, 28, 28)")
    return tuple(input_shape)


def _first_param(model: nn.Module) -> torch.Tensor | None:
    return next(iter(model.parameters()), None)


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> MacCount:
    """MACs of one forward pass of one sample of `input_shape` (no batch dimension).

    Runs the model once on zeros with hooks on every Linear and Conv2d layer.

    Example:
        >>> count_macs(nn.Linear(784, 300), (784,)).total
        235200
    """
    shape = _check_shape(input_shape)
    p = _first_param(model)
    x = torch.zeros((1, *shape), device=p.device if p is not None else "cpu",
                    dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32)
    layers: list[LayerMacs] = []
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            def hook(mod, inputs, out, name=name):
                layers.append(LayerMacs(name or type(mod).__name__, type(mod).__name__,
                                        int(_layer_macs(mod, out)), tuple(out.shape[1:])))
            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    except RuntimeError as e:
        raise ValueError(f"input_shape={shape}: the model cannot run on a sample of this "
                         f"shape ({e})") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return MacCount(sum(l.macs for l in layers), layers)


# ---------------------------------------------------------------- storage
def stored_tensors(model: nn.Module) -> Iterable[torch.Tensor]:
    """What inference needs: parameters and floating-point buffers (BN statistics).

    Integer buffers (BN's batch counter) and buffers named ``*mask`` (pruning masks, which
    a real deployment folds into the weights) are not counted.
    """
    yield from model.parameters()
    for name, b in model.named_buffers():
        if b.is_floating_point() and not name.split(".")[-1].endswith("mask"):
            yield b


def _dense_bytes(bytes_per_value: float) -> Callable[[nn.Module], int]:
    def size(model: nn.Module) -> int:
        return int(sum(t.numel() for t in stored_tensors(model)) * bytes_per_value)
    return size


STORAGE_FORMATS: dict[str, Callable[[nn.Module], int]] = {
    "dense_fp32": _dense_bytes(4),  # 32-bit floats: 4 bytes a value
    "dense_fp16": _dense_bytes(2),
}


def register_format(name: str, size_fn: Callable[[nn.Module], int]) -> None:
    """Add a storage format: `size_fn(model)` returns its size in bytes."""
    STORAGE_FORMATS[name] = size_fn


def storage_bytes(model: nn.Module, fmt: str = "dense_fp32") -> int:
    """Bytes needed to store the model's weights (and BN statistics) in format `fmt`."""
    if fmt not in STORAGE_FORMATS:
        import nclib.quant.coding  # noqa: F401  (registers the sparse and coded formats)
    if fmt not in STORAGE_FORMATS:
        raise ValueError(f"fmt={fmt!r}: expected one of {', '.join(STORAGE_FORMATS)}")
    return int(STORAGE_FORMATS[fmt](model))


def saved_bytes(model: nn.Module) -> int:
    """Bytes of the file `torch.save(model.state_dict())` writes (the real size on disk)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


# ---------------------------------------------------------------- latency
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

    if (input_shape is None) == (inputs is None):
        raise ValueError("measure_latency: give exactly one of input_shape or inputs")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats!r}, warmup={warmup!r}: expected repeats >= 1 "
                         "and warmup >= 0")
    dev = get_device(device)
    if inputs is None:
        inputs = torch.randn((batch_size, *_check_shape(input_shape)),
                             generator=torch.Generator().manual_seed(0))
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


def best_latencies(models: Sequence[nn.Module], inputs: torch.Tensor, rounds: int = 5,
                   repeats: int = 20, device: str | torch.device | None = None) -> list[Latency]:
    """Each model's fastest median latency over `rounds` rounds that take turns.

    When other processes share the cores, a burst of their work slows whichever model runs
    at that moment; taking turns and keeping each model's least disturbed round compares
    the models under the same conditions.
    """
    if rounds < 1:
        raise ValueError(f"rounds={rounds!r}: expected a positive integer")
    best: list[Latency | None] = [None] * len(models)
    for _ in range(rounds):
        for i, m in enumerate(models):
            lat = measure_latency(m, inputs=inputs, repeats=repeats, device=device)
            if best[i] is None or lat.median_ms < best[i].median_ms:
                best[i] = lat
    return best


# ---------------------------------------------------------------- report and compare
@dataclass
class Row:
    """One model's measurements; `compare()` turns a list of rows into a table."""

    name: str
    accuracy: float | None
    params: int
    nonzeros: int
    macs: int | None
    bytes: int
    fmt: str
    latency: Latency | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {"name": self.name, "accuracy": self.accuracy, "params": self.params,
             "nonzeros": self.nonzeros, "macs": self.macs, "bytes": self.bytes, "fmt": self.fmt,
             "latency_ms": self.latency.median_ms if self.latency else None}
        d.update(self.extra)
        return d

    def _repr_html_(self) -> str:
        return compare([self])._repr_html_()

    def __str__(self) -> str:
        return str(compare([self]))


def report(model: nn.Module, name: str | None = None, *, input_shape: Sequence[int] | None = None,
           accuracy: float | None = None, loader=None, fmt: str = "dense_fp32",
           latency: bool = True, batch_size: int = 1, repeats: int = 30, warmup: int = 5,
           device: str | torch.device | None = None, extra: dict | None = None) -> Row:
    """Measure one model: accuracy, parameters, nonzeros, MACs, bytes and latency.

    Args:
        input_shape: one sample's shape, for MACs and latency (None skips both).
        accuracy: a known accuracy in [0, 1]; or pass `loader` to evaluate it here.
        fmt: storage format for the bytes column (see `STORAGE_FORMATS`).
        latency: measure latency (needs `input_shape`), with `batch_size`, `repeats` and
            `warmup` (use few repeats for big models on a CPU).
        extra: more columns to show, like {"sparsity": 0.9}.
    """
    if accuracy is not None and loader is not None:
        raise ValueError("report: give accuracy or loader, not both")
    if accuracy is not None and not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy={accuracy!r}: expected a fraction in [0, 1]")
    if loader is not None:
        from nclib.train import evaluate

        accuracy = evaluate(model, loader, device=device)
    macs = count_macs(model, input_shape).total if input_shape is not None else None
    lat = None
    if latency and input_shape is not None:
        lat = measure_latency(model, input_shape, batch_size=batch_size, repeats=repeats,
                              warmup=warmup, device=device)
    return Row(name or type(model).__name__, accuracy, count_params(model),
               count_nonzero(model), macs, storage_bytes(model, fmt), fmt, lat, dict(extra or {}))


def human(n: float | None, unit: str = "") -> str:
    """1234567 -> '1.23M'; bytes with unit='B' -> '1.23 MB'.

    Sizes use decimal units (1 kB = 1,000 bytes), as the papers' tables do.
    """
    if n is None:
        return "-"
    if unit == "B":
        for u in ("B", "kB", "MB", "GB"):
            if abs(n) < 1000 or u == "GB":
                return f"{n:.0f} {u}" if u == "B" else f"{n:.3g} {u}"
            n /= 1000
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.3g}{suffix}"
    return f"{n:g}"


class Table:
    """Rows side by side, with each column's ratio to the first (baseline) row.

    Shows as HTML in a notebook and as aligned text in a terminal (`str(table)`).
    """

    def __init__(self, rows: Sequence[Row], baseline: int = 0):
        if not rows:
            raise ValueError("compare: expected at least one row")
        if not 0 <= baseline < len(rows):
            raise ValueError(f"baseline={baseline!r}: expected an index in [0, {len(rows) - 1}]")
        self.rows, self.baseline = list(rows), baseline

    def cells(self) -> tuple[list[str], list[list[str]]]:
        base = self.rows[self.baseline]
        extra_keys = [k for r in self.rows for k in r.extra]
        extra_keys = list(dict.fromkeys(extra_keys))
        header = ["model", "accuracy", "params", "nonzeros", "MACs", "size", "latency"] + extra_keys

        def ratio(value, ref) -> str:
            if value is None or ref is None or value == 0 or ref == 0 or value == ref:
                return ""
            r = max(value, ref) / min(value, ref)
            if r < 1.05:
                return " (about the same)"
            shown = f"{r:.1f}" if r < 100 else f"{r:,.0f}"
            return f" ({shown}x less)" if value < ref else f" ({shown}x more)"

        body = []
        for r in self.rows:
            lat = r.latency.median_ms if r.latency else None
            base_lat = base.latency.median_ms if base.latency else None
            body.append([
                r.name,
                "-" if r.accuracy is None else f"{100 * r.accuracy:.2f}%",
                human(r.params) + ratio(r.params, base.params),
                human(r.nonzeros) + ratio(r.nonzeros, base.nonzeros),
                human(r.macs) + ratio(r.macs, base.macs),
                f"{human(r.bytes, 'B')} {r.fmt}" + ratio(r.bytes, base.bytes),
                "-" if lat is None else f"{lat:.3f} ms" + ratio(lat, base_lat),
            ] + [_fmt_extra(r.extra.get(k)) for k in extra_keys])
        return header, body

    def note(self) -> str:
        lat = [r.latency for r in self.rows if r.latency]
        if not lat:
            return ""
        def values(attr: str) -> str:
            seen = sorted({getattr(l, attr) for l in lat})
            return str(seen[0]) if len(seen) == 1 else f"{seen[0]}-{seen[-1]}"

        return (f"latency: median of {values('repeats')} runs, batch {values('batch_size')}, "
                f"{values('threads')} thread(s), {values('device')}; MACs per sample; "
                "flops = 2 x MACs")

    def __str__(self) -> str:
        header, body = self.cells()
        widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
        if self.note():
            lines.append(self.note())
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        header, body = self.cells()
        th = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in header)
        trs = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>"
                                       for c in row) + "</tr>" for row in body)
        note = f"<caption style='caption-side:bottom'>{html.escape(self.note())}</caption>"
        return f"<table>{note}<thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _fmt_extra(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def compare(rows: Sequence[Row], baseline: int = 0) -> Table:
    """Render rows side by side; ratios are relative to ``rows[baseline]``."""
    return Table(rows, baseline)
