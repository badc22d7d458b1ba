"""`nclib reproduce NAME [--json]`: small-scale versions of the lecture's tables.

An experiment is a function registered with `@experiment(...)` in
``nclib/chapters/<chapter>/experiments.py``. It fills a `Run` with rows ("paper | ours") and
claims (the chapter's acceptance statements, computed on this run). A claim that does not
hold is reported as such, never hidden; the command exits 0 either way unless the run
itself failed.

``--dataset mnist --root DIR`` runs an experiment that accepts it (``@experiment(...,
datasets=("bundled", "mnist"))``) on the full MNIST files in ``DIR/MNIST/raw`` instead of
the 5,000 bundled digits; ``--device cuda`` trains there. The experiment reads both from
`Run.source` (a `Source`), so nothing of one run is left for the next.
"""
from __future__ import annotations

import copy
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal

from torch import nn

from nclib import data, zoo

__all__ = ["experiment", "Run", "Claim", "ResultRow", "Source", "SOURCES", "EXPERIMENTS",
           "run_experiment", "render", "add_parser", "mean_se", "se_of_difference"]

SOURCES = ("bundled", "mnist")
VAL_FRACTION = 1 / 12  # of MNIST's training file, its last digits: 5,000 of 60,000


class Source:
    """Where a run's digits come from and where it trains; one per run, made by `run_experiment`.

    * "bundled": the 5,000 bundled digits, split 3,500 / 500 / 1,000 as `data.loaders("mnist")`
      does; the dense models are the zoo's (`zoo.trained`).
    * "mnist": torchvision's MNIST files under `root` (`data.load_torchvision`): the training
      file less its last twelfth (validation), and the 10,000 test digits; the dense models are
      trained here with their zoo recipe's settings (`zoo.train_on`), once per run.

    `device` is where those dense models train (None: where `nclib.setup` chose).
    """

    def __init__(self, name: Literal["bundled", "mnist"] = "bundled",
                 root: str | Path | None = None, device: str | None = None):
        if name not in SOURCES:
            raise ValueError(f"dataset={name!r}: expected one of {', '.join(SOURCES)}")
        if name == "mnist" and root is None:
            raise ValueError("--dataset mnist needs --root DIR, the folder that holds MNIST/raw")
        if name != "mnist" and root is not None:
            raise ValueError(f"--root {root}: only --dataset mnist reads files (dataset={name!r})")
        self.name, self.root, self.device = name, root, device
        self._splits: data.Splits | None = None
        self._dense: dict[str, nn.Module] = {}

    def splits(self) -> data.Splits:
        """Train, validation and test digits (read once per run)."""
        if self._splits is None:
            if self.name == "bundled":
                self._splits = data.split(*data.load_mnist())
            else:
                X, y = data.load_torchvision("mnist", self.root, train=True)
                n_val = max(1, round(VAL_FRACTION * len(y)))
                self._splits = data.Splits((X[:-n_val], y[:-n_val]), (X[-n_val:], y[-n_val:]),
                                           data.load_torchvision("mnist", self.root, train=False))
        return self._splits

    def loaders(self, seed: int = 0, batch_size: int = 64) -> data.Loaders:
        """`data.loaders` over `splits()`; `seed` sets the order of the training batches."""
        return data.loaders(self.splits(), batch_size=batch_size, seed=seed)

    def dense(self, name: str) -> nn.Module:
        """A fresh copy of the trained lecture model `name` ("lenet300", ...), on the CPU."""
        if self.name == "bundled":
            return zoo.trained(name, progress=False)
        if name not in self._dense:
            self._dense[name] = zoo.train_on(name, self.splits(), self.device)
        return copy.deepcopy(self._dense[name])

    def describe(self) -> str:
        """The data set line of a run on these digits (it reads the files if not yet read)."""
        n_train, n_val, n_test = (len(part[1]) for part in self.splits())
        if self.name == "bundled":
            return (f"MNIST, the 5,000 bundled digits ({n_train:,} train / {n_val:,} val / "
                    f"{n_test:,} test)")
        folder = Path(self.root).expanduser() / "MNIST" / "raw"
        return (f"full MNIST, torchvision's IDX files in {folder}: {n_train:,} train / {n_val:,} "
                f"val (the last {n_val:,} of the training file) / {n_test:,} test")


# ---------------------------------------------------------------- statistics over seeds
def mean_se(values: list[float]) -> tuple[float, float]:
    """The mean of runs with different seeds and its standard error (0 for one run)."""
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0


def se_of_difference(a: list[float], b: list[float]) -> float:
    """The standard error of mean(a) - mean(b) for independent runs (inf for one seed)."""
    if min(len(a), len(b)) < 2:
        return float("inf")
    return (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5


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
    source: Source = field(default_factory=Source, repr=False, compare=False)  # not reported

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
        return {"experiment": self.experiment, "dataset": self.dataset, "scale": self.scale,
                "seconds": round(self.seconds, 2), "rows": [asdict(r) for r in self.rows],
                "claims": [asdict(c) for c in self.claims]}


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
    datasets: tuple[str, ...] = ("bundled",)


EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str, dataset: str, scale: str, summary: str,
               datasets: tuple[str, ...] = ("bundled",)):
    """Register `fn(run)` as `nclib reproduce NAME`.

    `dataset` is the data set line of a bundled run; `datasets` names the `SOURCES` that `fn`
    reads from `run.source` (a run on "mnist" states its own line, `Source.describe()`).
    """
    unknown = set(datasets) - set(SOURCES)
    if unknown or "bundled" not in datasets:
        raise ValueError(f"datasets={datasets!r}: expected 'bundled' and any of "
                         f"{', '.join(SOURCES)}")

    def wrap(fn):
        EXPERIMENTS[name] = Experiment(name, dataset, scale, summary, fn, tuple(datasets))
        return fn
    return wrap


def _load_all() -> None:
    from nclib.course import discover

    discover.import_all("experiments")


def run_experiment(name: str, dataset: Literal["bundled", "mnist"] = "bundled",
                   root: str | Path | None = None, device: str | None = None) -> Run:
    """Run the experiment `name` on `dataset` (with its files under `root`) on `device`.

    `device` (default "auto": CUDA, then MPS, then the CPU) is where `fit` and `evaluate`
    run unless told otherwise; zoo models are trained on the CPU as always.
    """
    _load_all()
    if name not in EXPERIMENTS:
        raise ValueError(f"name={name!r}: expected one of {', '.join(sorted(EXPERIMENTS))} "
                         "(see `nclib reproduce --list`)")
    import nclib

    exp = EXPERIMENTS[name]
    if dataset in SOURCES and dataset not in exp.datasets:
        accept = sorted(e.name for e in EXPERIMENTS.values() if dataset in e.datasets)
        raise ValueError(f"--dataset {dataset}: {name} runs on {', '.join(exp.datasets)} only; "
                         f"the experiments that accept --dataset {dataset}: {', '.join(accept)}")
    source = Source(dataset, root, nclib.setup(seed=0, device=device or "auto").device)
    run = Run(exp.name, exp.dataset if dataset == "bundled" else source.describe(), exp.scale,
              source=source)
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
    p.add_argument("--dataset", choices=SOURCES, default="bundled",
                   help="bundled (default): the 5,000 digits that ship with nclib; mnist: the "
                        "full MNIST files in --root (only the experiments that accept it)")
    p.add_argument("--root", metavar="DIR", help="with --dataset mnist: the folder holding "
                                                 "MNIST/raw/train-images-idx3-ubyte and the rest")
    p.add_argument("--device", help="where to train: cpu, cuda, cuda:1, mps (default: auto)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    if args.list or not args.name:
        _load_all()
        for e in sorted(EXPERIMENTS.values(), key=lambda e: e.name):
            print(f"{e.name:<22} {e.summary}")
        return 0
    run = run_experiment(args.name, args.dataset, args.root, args.device)
    print(json.dumps(run.as_dict()) if args.json else render(run))
    sys.stdout.flush()
    return 0
