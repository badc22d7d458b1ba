"""`nclib reproduce NAME [--json]`: small-scale versions of the lecture's tables.

An experiment is a function registered with `@experiment(...)` in
``nclib/chapters/<chapter>/experiments.py``. It fills a `Run` with rows ("paper | ours") and
claims (the chapter's acceptance statements, computed on this run). A claim that does not
hold is reported as such, never hidden; the command exits 0 either way unless the run
itself failed.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

__all__ = ["experiment", "Run", "Claim", "ResultRow", "EXPERIMENTS", "run_experiment",
           "render", "add_parser"]


@dataclass
class ResultRow:
    label: str
    paper: float | str | None
    ours: float | str | None
    unit: str = ""


@dataclass
class Claim:
    text: str
    value: float | str | None
    target: float | str
    holds: bool


@dataclass
class Run:
    """What an experiment reports: filled by the experiment function."""

    experiment: str
    dataset: str
    scale: str
    seconds: float = 0.0
    rows: list[ResultRow] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)

    def row(self, label: str, paper=None, ours=None, unit: str = "") -> None:
        self.rows.append(ResultRow(label, _plain(paper), _plain(ours), unit))

    def claim(self, text: str, value, target, holds: bool) -> bool:
        self.claims.append(Claim(text, _plain(value), _plain(target), bool(holds)))
        return bool(holds)

    def claim_close(self, text: str, value: float, target: float, rel_tol: float) -> bool:
        """Claim that `value` is within `rel_tol` (a fraction) of `target`."""
        off = abs(value / target - 1)
        return self.claim(f"{text} (off by {100 * off:.2f}%, allowed {100 * rel_tol:g}%)",
                          value, target, off <= rel_tol)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 2)
        return d


def _plain(v):
    """JSON-friendly numbers: tensors and numpy scalars become Python floats/ints."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


@dataclass(frozen=True)
class Experiment:
    name: str
    dataset: str
    scale: str
    summary: str
    fn: Callable[[Run], None]


EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str, dataset: str, scale: str, summary: str):
    """Register `fn(run)` as `nclib reproduce NAME`."""
    def wrap(fn):
        EXPERIMENTS[name] = Experiment(name, dataset, scale, summary, fn)
        return fn
    return wrap


def _load_all() -> None:
    from nclib.course import discover

    discover.import_all("experiments")


def run_experiment(name: str) -> Run:
    _load_all()
    if name not in EXPERIMENTS:
        raise ValueError(f"name={name!r}: expected one of {', '.join(sorted(EXPERIMENTS))} "
                         "(see `nclib reproduce --list`)")
    import nclib

    exp = EXPERIMENTS[name]
    nclib.setup(seed=0)
    run = Run(exp.name, exp.dataset, exp.scale)
    t0 = time.perf_counter()
    exp.fn(run)
    run.seconds = time.perf_counter() - t0
    return run


def _fmt(v, unit: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and unit == "%":
        return f"{v:.2f}%"
    if isinstance(v, (int, float)):
        from nclib.measure import human

        return human(v, "B" if unit == "bytes" else "") + ("" if unit in ("", "bytes", "%") else f" {unit}")
    return str(v)


def render(run: Run) -> str:
    lines = [f"{run.experiment}: data set {run.dataset}; scale {run.scale}; {run.seconds:.1f} s"]
    cells = [("", "paper", "ours")] + [(r.label, _fmt(r.paper, r.unit), _fmt(r.ours, r.unit))
                                       for r in run.rows]
    w = [max(len(c[i]) for c in cells) for i in range(3)]
    for i, c in enumerate(cells):
        lines.append(f"{c[0]:<{w[0]}} | {c[1]:>{w[1]}} | {c[2]:>{w[2]}}")
        if i == 0:
            lines.append("-" * (sum(w) + 6))
    if run.claims:
        lines.append("claims:")
        for c in run.claims:
            lines.append(f"  [{'holds' if c.holds else 'DOES NOT HOLD'}] {c.text}")
    return "\n".join(lines)


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="run a small-scale version of a lecture table")
    p.add_argument("name", nargs="?", help="experiment name (see --list)")
    p.add_argument("--list", action="store_true", help="name every experiment")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    if args.list or not args.name:
        _load_all()
        for e in sorted(EXPERIMENTS.values(), key=lambda e: e.name):
            print(f"{e.name:<22} {e.summary}")
        return 0
    run = run_experiment(args.name)
    print(json.dumps(run.as_dict()) if args.json else render(run))
    sys.stdout.flush()
    return 0
