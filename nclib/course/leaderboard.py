"""A class leaderboard: `nclib grade ... --leaderboard board.csv`.

Submissions are ranked by score, then by the measures their tasks report, in the order and
direction the tasks declare them (a file task's ``measures={"accuracy": "max", "bytes":
"min"}``, `nclib.course.filetasks`): the grader knows no chapter by name. A submission that
lacks a measure (its file was missing, say) ranks below every one that has it, at equal
score. Equal score and equal measures share a rank (1, 2, 2, 4); the submission's name only
orders the rows within a tie.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from nclib.course import checking
from nclib.course.report import SubmissionResult

__all__ = ["Row", "measure_order", "rank", "render", "write_csv"]


@dataclass
class Row:
    rank: int
    submission: str
    score: float
    max_score: float
    measures: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def measure_order(results: list[SubmissionResult]) -> dict[str, str]:
    """{measure: "max" | "min"} in the order the graded tasks declare them."""
    order: dict[str, str] = {}
    for r in results:
        for t in r.tasks:
            for name, sense in getattr(checking.TASKS.get(t.task), "measures", {}).items():
                order.setdefault(name, sense)
    return order


def _measures(r: SubmissionResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in r.tasks:
        for name, v in (t.measures or {}).items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                out.setdefault(name, float(v))
    return out


def rank(results: list[SubmissionResult], order: dict[str, str] | None = None) -> list[Row]:
    """The submissions, best first, with competition ranks; each row's measures in the
    order they rank by (so the table's columns read left to right as the ranking does)."""
    order = measure_order(results) if order is None else order
    first = {name: i for i, name in enumerate(order)}
    rows = [Row(0, r.submission, r.score, r.max_score,
                dict(sorted(_measures(r).items(), key=lambda kv: first.get(kv[0], len(first)))), r.error)
            for r in results]

    def key(row: Row) -> tuple:
        parts: list = [-row.score]
        for name, sense in order.items():
            v = row.measures.get(name)
            parts += [v is None, 0.0 if v is None else (-v if sense == "max" else v)]
        return tuple(parts)

    rows.sort(key=lambda row: (key(row), row.submission))
    for i, row in enumerate(rows):
        row.rank = rows[i - 1].rank if i and key(rows[i - 1]) == key(row) else i + 1
    return rows


def _cell(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.4g}" if abs(v) < 1 else f"{v:,.0f}" if v >= 1000 else f"{v:g}"


def render(rows: list[Row], top: int = 10) -> str:
    """The first `top` rows as a table for the terminal."""
    names = list(dict.fromkeys(n for row in rows for n in row.measures))
    w = max([len(row.submission) for row in rows[:top]] + [10])
    lines = [f"leaderboard (top {min(top, len(rows))} of {len(rows)}):",
             f"{'rank':>4}  {'submission':<{w}}  {'score':>7}" + "".join(f"  {n:>12}" for n in names)]
    for row in rows[:top]:
        lines.append(f"{row.rank:>4}  {row.submission:<{w}}  {row.score:>7g}"
                     + "".join(f"  {_cell(row.measures.get(n)):>12}" for n in names)
                     + ("  (!)" if row.error else ""))
    return "\n".join(lines)


def write_csv(rows: list[Row], path: str | Path) -> None:
    """rank, submission, score, max_score, each measure, error: one row per submission."""
    names = list(dict.fromkeys(n for row in rows for n in row.measures))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "submission", "score", "max_score", *names, "error"])
        for row in rows:
            w.writerow([row.rank, row.submission, row.score, row.max_score,
                        *[row.measures.get(n, "") for n in names], row.error or ""])
