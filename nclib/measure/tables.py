"""Report tables: `report()` measures one model into a `Row`, `compare()` sets rows side by
side with each column's ratio to a baseline row, as text and as HTML."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from nclib.measure.counts import count_macs, count_nonzero, count_params
from nclib.measure.latency import Latency, measure_latency
from nclib.measure.storage import storage_bytes

__all__ = ["report", "Row", "compare", "Table", "human"]


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
