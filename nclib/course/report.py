"""What grading produces and how it is written: the result records, the table, JSON and CSV.

`--json` writes a list with one object per submission, `{"submission", "score",
"max_score", "release", "tasks": [{"task", "points", "max_points", "status", "reason",
"measures"}], "error"}` ("measures": what a file task measured, `nclib.course.filetasks`,
else {}); `--csv` writes one row per submission (for an LMS): score, max_score, error,
release, then each task's points and status. `release` is the course release the
submission's metadata records (null / empty when it records none). A task of the current
release that the submission's older release lacks has the status `not_in_release`, 0 points
and 0 max_points: `score` and `max_score` are then out of the tasks that release had.
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["TaskScore", "SubmissionResult", "NOT_IN_RELEASE", "render", "write_json", "write_csv"]

NOT_IN_RELEASE = "not_in_release"  # the grader's status for a task newer than the submission


@dataclass
class TaskScore:
    task: str
    points: float
    max_points: float
    status: str
    reason: str
    measures: dict[str, float] = field(default_factory=dict)  # what a file task measured


@dataclass
class SubmissionResult:
    submission: str
    score: float
    max_score: float
    tasks: list[TaskScore] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    release: str | None = None  # the release its metadata records, None if it records none

    def as_dict(self) -> dict:
        return {"submission": self.submission, "score": self.score, "max_score": self.max_score,
                "release": self.release, "tasks": [asdict(t) for t in self.tasks], "error": self.error}

    def release_note(self) -> str | None:
        """'graded on the 5 tasks of release 0.0.9; ...' when some tasks are not in its release."""
        absent = sum(t.status == NOT_IN_RELEASE for t in self.tasks)
        if not absent:
            return None
        graded = len(self.tasks) - absent
        return (f"graded on the {graded} task{'s' * (graded != 1)} of release {self.release}; "
                f"{absent} task{'s' * (absent != 1)} of the current release "
                f"{'are' if absent != 1 else 'is'} not in it and not counted")


def render(results: list[SubmissionResult]) -> str:
    """The terminal report: one block per submission, one line per task, then a summary."""
    lines = []
    for r in results:
        lines.append(f"{r.submission}: {r.score:g}/{r.max_score:g}  ({r.seconds:.1f} s)")
        if r.release_note():
            lines.append(f"  {r.release_note()}")
        for t in r.tasks:
            lines.append(f"  {t.task:<32} {t.points:g}/{t.max_points:g}  {t.status:<14} {t.reason}")
        if r.error:
            lines.append(f"  problem: {r.error}")
    lines.append("")
    w = max([len(r.submission) for r in results] + [10])
    lines.append(f"{'submission':<{w}}  score")
    for r in results:
        lines.append(f"{r.submission:<{w}}  {r.score:g}/{r.max_score:g}" + ("  (!)" if r.error else "")
                     + (f"  (release {r.release})" if r.release_note() else ""))
    return "\n".join(lines)


def write_json(results: list[SubmissionResult], path: str | Path) -> None:
    Path(path).write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")


def write_csv(results: list[SubmissionResult], path: str | Path) -> None:
    """One row per submission: score, max_score, error, release, then each task's points and status."""
    keys = list(dict.fromkeys(t.task for r in results for t in r.tasks))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", "score", "max_score", "error", "release"]
                   + [f"{k} {c}" for k in keys for c in ("points", "status")])
        for r in results:
            by = {t.task: t for t in r.tasks}
            row = [r.submission, r.score, r.max_score, r.error or "", r.release or ""]
            for k in keys:
                row += [by[k].points, by[k].status] if k in by else ["", ""]
            w.writerow(row)
