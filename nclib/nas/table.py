"""The whole search space, every child trained once: the ground truth a search is measured against.

NAS-Bench-101 (Ying et al., ICML 2019) trained every architecture of a small space once,
so that a search can be run by looking children up, and judged by how far its best find
is from the true best (its *regret*). Our space is small enough for the same: `tabulate`
trains all of `SearchSpace()` by `ChildRecipe()` (about a quarter of an hour on one core;
`nclib nas tabulate`), and the result ships with nclib as ``table.json``, so lectures look
children up instantly on a fresh machine.

The table carries a *stamp*: a hash of the space, the recipe and the code that builds and
trains a child (without comments and docstrings). `load_table()` refuses a table whose
stamp does not match the code, and ``nclib nas tabulate --check`` compares the stamps
without training anything.
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import json
import platform
import textwrap
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch

from nclib.data import atomic_write
from nclib.nas.child import ChildEvaluator, ChildRecipe, ChildResult, train_child
from nclib.nas.space import ChildNet, SearchSpace

__all__ = ["TABLE_FILE", "Table", "stamp", "tabulate", "load_table", "pareto_front"]

TABLE_FILE = Path(__file__).with_name("table.json")


def _code_text(obj) -> str:
    """The code of `obj` as a syntax tree, without docstrings: comments and prose may change."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def stamp(space: SearchSpace, recipe: ChildRecipe) -> str:
    """A hash of the space, the recipe and the code of `ChildNet` and `train_child`."""
    blob = json.dumps({"space": space.stamp_text, "recipe": asdict(recipe),
                       "code": [_code_text(ChildNet), _code_text(train_child)]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Table:
    """Every architecture's `ChildResult`, in `space.index` order; ``table(tokens)`` looks one up.

    A table is an evaluator like `ChildEvaluator` (``result = table(tokens)``), only instant.
    """

    def __init__(self, space: SearchSpace, recipe: ChildRecipe, results: Sequence[ChildResult],
                 made: dict | None = None):
        if len(results) != space.size:
            raise ValueError(f"results: expected {space.size} (one per architecture), "
                             f"got {len(results)}")
        self.space, self.recipe, self.results = space, recipe, list(results)
        self.stamp = stamp(space, recipe)
        self.made = made or {}

    def __repr__(self) -> str:
        return f"Table({self.space.size} architectures, stamp {self.stamp})"

    def __len__(self) -> int:
        return len(self.results)

    def __call__(self, tokens: Sequence[int]) -> ChildResult:
        return self.results[self.space.index(tokens)]

    def column(self, name: str) -> torch.Tensor:
        """One number per architecture: "val_acc" (the best), "test_acc", "params", "macs", "seconds"."""
        get = {"val_acc": lambda r: max(r.val_acc)}.get(name, lambda r: getattr(r, name))
        if name not in ("val_acc", "test_acc", "params", "macs", "seconds"):
            raise ValueError(f"name={name!r}: expected val_acc, test_acc, params, macs or seconds")
        return torch.tensor([float(get(r)) for r in self.results], dtype=torch.float64)

    def best(self) -> ChildResult:
        """The architecture of highest validation accuracy (ties: the fewest MACs)."""
        return max(self.results, key=lambda r: (max(r.val_acc), -r.macs))

    def pareto(self) -> list[ChildResult]:
        """The architectures no other beats on both validation accuracy and MACs, by MACs."""
        keep = pareto_front(self.column("macs"), self.column("val_acc"))
        return [self.results[i] for i in keep]

    def save(self, path: str | Path = TABLE_FILE) -> Path:
        path = Path(path)
        data = {"stamp": self.stamp, "space": self.space.stamp_text, "recipe": asdict(self.recipe),
                "made": self.made, "fields": ["val_acc", "test_acc", "params", "macs", "seconds"],
                "rows": [[r.val_acc, r.test_acc, r.params, r.macs, round(r.seconds, 3)]
                         for r in self.results]}
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=0)))
        path.chmod(0o644)  # package data: readable by everyone (a temporary file is 0600)
        return path


def pareto_front(macs: torch.Tensor, accuracy: torch.Tensor) -> list[int]:
    """Indices of the points on the front (fewer MACs, higher accuracy), by increasing MACs.

    A point is on the front when no other point has at most its MACs and a higher
    accuracy, or fewer MACs and at least its accuracy.
    """
    order = sorted(range(len(macs)), key=lambda i: (float(macs[i]), -float(accuracy[i])))
    front, best = [], float("-inf")
    for i in order:
        if float(accuracy[i]) > best:
            front.append(i)
            best = float(accuracy[i])
    return front


def tabulate(space: SearchSpace | None = None, recipe: ChildRecipe = ChildRecipe(),
             executor=None, progress: bool = True) -> Table:
    """Train every architecture of `space` once (resuming from the child cache); the `Table`.

    `executor`: any `concurrent.futures.Executor` to train children in parallel (None: here).
    """
    from tqdm.auto import tqdm

    space = space or SearchSpace()
    evaluator = ChildEvaluator(space, recipe, cache=True)
    every = list(space)
    t0 = time.perf_counter()
    bar = tqdm(total=len(every), desc="tabulate", unit="child", disable=not progress)
    if executor is None:
        results = []
        for tokens in every:
            results.append(evaluator(tokens))
            bar.update(1)
    else:
        futures = [executor.submit(evaluator, tokens) for tokens in every]
        results = []
        for f in futures:
            results.append(f.result())
            bar.update(1)
    bar.close()
    made = {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
            "machine": platform.machine(), "wall_seconds": round(time.perf_counter() - t0, 1),
            "child_seconds": round(sum(r.seconds for r in results), 3)}
    return Table(space, recipe, results, made)


def load_table(path: str | Path = TABLE_FILE, space: SearchSpace | None = None,
               recipe: ChildRecipe = ChildRecipe()) -> Table:
    """The table at `path` (default: the one shipped with nclib), if its stamp matches the code.

    A stale table (its space, recipe or child code changed) is a ValueError that says to run
    ``nclib nas tabulate``.
    """
    space = space or SearchSpace()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no search-space table at {path}: run `nclib nas tabulate`")
    data = json.loads(path.read_text())
    expected = stamp(space, recipe)
    if data.get("stamp") != expected:
        raise ValueError(f"the table at {path} has stamp {data.get('stamp')!r} but this space "
                         f"and recipe give {expected!r}: the space, the recipe or the child "
                         "code changed since it was made; run `nclib nas tabulate`")
    results = [ChildResult(tokens, [float(a) for a in row[0]], float(row[1]), int(row[2]),
                           int(row[3]), float(row[4]), cached=True)
               for tokens, row in zip(space, data["rows"])]
    return Table(space, recipe, results, data.get("made"))
