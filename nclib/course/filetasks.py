"""Tasks graded from a file the notebook wrote, by the grader itself, never by the student's kernel.

A code task's result is read from the student's kernel, which runs the grader's own check
cells; a task about a *file* the student hands in (a compressed model, say) must not be,
since the student's code runs in that kernel and could fake whatever it reports. A file
task is declared in a chapter's checks like any task, and names the file and the measures
it reports::

    @file_task("capstone", points=2, file="submission.nclib",
               measures={"accuracy": "max", "bytes": "min"})
    def accuracy_budget(path, context):
        model = load(path)                     # raise Failure(...) for a bad file
        ...
        return Measured("94.1% >= 93%", accuracy=0.941, bytes=path.stat().st_size)

In a notebook, ``check.capstone.accuracy_budget()`` grades the file in the notebook's folder
at once, for the student to see. The grader instead (`grade_files`, called by
`nclib.course.grade`) copies the file out of the scratch folder after the run and grades it
in a fresh process of its own (`python -m nclib.course.filetasks SPEC`), with a memory and
a time limit; the kernel's output for these tasks counts for nothing. A missing file, one
over `MAX_FILE_BYTES`, or one the task rejects loses only that task's points, with the
reason. `context` holds what the instructor passes: ``context["test_data"]`` is the path of
``--test-data FILE`` or None.

`measures` (name -> "max" or "min", in order of importance) are what a leaderboard ranks
by after the score (`nclib.course.leaderboard`); the grader knows no chapter by name.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nclib.course import checking
from nclib.course.checking import Failure, Result, Task

__all__ = ["FileTask", "Measured", "file_task", "failure", "grade_files", "file_tasks", "rescore",
           "MAX_FILE_BYTES"]

MAX_FILE_BYTES = 20 * 2**20  # a handed-in file larger than this is not even copied


class Measured(str):
    """A passing task's note with the figures it measured (for the leaderboard)."""

    def __new__(cls, note: str, **measures: float):
        obj = super().__new__(cls, note)
        obj.measures = {k: float(v) for k, v in measures.items()}
        return obj


@dataclass
class FileTask(Task):
    """A task whose answer is the file `file` in the notebook's folder."""

    file: str = "submission"
    measures: dict[str, str] = field(default_factory=dict)

    def grade_file(self, path: Path, context: dict | None = None) -> tuple[Result, dict[str, float]]:
        """(the Result, the measures reported) for the file at `path`, whatever it holds."""
        context = dict(context or {})
        measures: dict[str, float] = {}
        path = Path(path)
        if not path.is_file():
            return Result(self.key, 0, self.points, "not_attempted",
                          f"no file {self.file} was written: run the cell that saves it."), measures
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Result(self.key, 0, self.points, "failed",
                          f"{self.file} is {size:,} bytes, over the {MAX_FILE_BYTES:,} the grader "
                          "accepts at all."), measures
        try:
            note = self.run(path, context)
            measures = dict(getattr(note, "measures", {}))
        except Failure as f:
            measures = dict(getattr(f, "measures", {}))
            return Result(self.key, 0, self.points, "failed", str(f)), measures
        except Exception as e:  # a file the task could not read: the task's points only
            return Result(self.key, 0, self.points, "failed",
                          f"{self.file} could not be graded: {type(e).__name__}: {e}"[:500]), measures
        return Result(self.key, self.points, self.points, "passed", str(note or "")), measures

    def __call__(self, student=None) -> Result:
        """In a notebook: grade the file in the current folder (`student` may name another)."""
        result, _ = self.grade_file(Path(student or self.file))
        checking._show(result)
        object.__setattr__(result, "_shown", True)
        return result


def file_task(chapter: str, points: float = 1, *, file: str, measures: dict[str, str] | None = None,
              hint: str = "") -> Callable[[Callable], FileTask]:
    """Register a file task: the decorated ``fn(path, context)`` raises `Failure` (with a
    ``measures`` attribute, if it measured something) or returns a note or a `Measured`."""
    measures = dict(measures or {})
    bad = {k: v for k, v in measures.items() if v not in ("max", "min")}
    if bad:
        raise ValueError(f"measures={bad!r}: each measure is ranked 'max' or 'min'")

    def wrap(fn: Callable) -> FileTask:
        t = FileTask(chapter, fn.__name__, points, hint, fn, file=file, measures=measures)
        t.__doc__ = fn.__doc__
        checking.TASKS[t.key] = t
        return t
    return wrap


def failure(message: str, **measures: float) -> Failure:
    """A `Failure` that carries what was measured (a missed budget still reports its figure)."""
    f = Failure(message)
    f.measures = {k: float(v) for k, v in measures.items()}
    return f



# ---------------------------------------------------------------- the grader's side
def grade_files(keys: list[str], folder: Path, context: dict | None = None,
                seconds: float = 300, memory_gib: float = 4.0) -> dict[str, dict]:
    """Grade the file tasks `keys` on the files in `folder`, in a fresh process of their own.

    Returns {key: {"status", "points", "reason", "measures"}}; a process that dies, runs
    past `seconds` or writes nothing gives every task an "error" with the reason."""
    from nclib.course.sandbox import kill_group, limit_memory

    with tempfile.TemporaryDirectory(prefix="nclib-files-") as tmp:
        spec = Path(tmp) / "spec.json"
        out = Path(tmp) / "results.json"
        spec.write_text(json.dumps({"keys": keys, "folder": str(folder), "out": str(out),
                                    "context": context or {}}))
        env = dict(os.environ, MPLBACKEND="agg", NCLIB_GRADING="1")
        proc = subprocess.Popen([sys.executable, "-m", "nclib.course.filetasks", str(spec)],
                                cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=limit_memory(memory_gib))
        try:
            _, err = proc.communicate(timeout=seconds)
            reason = None
        except subprocess.TimeoutExpired:
            err, reason = b"", f"grading the files ran past {seconds:g} s"
        finally:
            kill_group(proc.pid)
            proc.wait()
        results = json.loads(out.read_text()) if out.exists() else {}
        if reason is None and not results:
            tail = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            reason = f"the file grader exited with code {proc.returncode}: {tail[0][:300]}"
    return {k: results.get(k) or {"status": "error", "points": 0, "reason": reason or "not graded",
                                  "measures": {}} for k in keys}


def file_tasks(keys) -> dict[str, FileTask]:
    """The file tasks among task keys `keys` (their chapters' checks imported first)."""
    out = {}
    for key in keys:
        getattr(checking.check, key.split(".")[0], None)
        t = checking.TASKS.get(key)
        if isinstance(t, FileTask):
            out[key] = t
    return out


def rescore(result, tasks: dict[str, FileTask], folder: Path, files: dict, context: dict | None,
            seconds: float, memory_gib: float) -> None:
    """Replace, in a `report.SubmissionResult`, the scores of the file tasks `tasks` by the
    grader's own grading of the files copied into `folder` (`files`: the sandbox's record
    of each, its size or why it was not copied). The kernel's results for them are dropped."""
    todo = [k for k, t in tasks.items() if isinstance(files.get(t.file), int) and files[t.file] <= MAX_FILE_BYTES]
    graded = grade_files(todo, folder, context, seconds, memory_gib) if todo else {}
    for score in result.tasks:
        t = tasks.get(score.task)
        if t is None:
            continue
        got = files.get(t.file, "missing")
        if score.task in graded:
            g = graded[score.task]
            score.status, score.reason, score.measures = g["status"], g["reason"], g.get("measures", {})
        elif got == "missing":
            score.status, score.reason = "not_attempted", f"no file {t.file} was written: run the cell that saves it."
        elif isinstance(got, int):
            score.status, score.reason = "failed", (f"{t.file} is {got:,} bytes, over the {MAX_FILE_BYTES:,} "
                                                    "the grader accepts at all.")
        else:
            score.status, score.reason = "failed", f"{t.file} is {got}: hand in the file itself."
        score.points = score.max_points if score.status == "passed" else 0
    result.score = sum(s.points for s in result.tasks)


def _worker(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    results = {}
    for key in spec["keys"]:
        chapter = key.split(".")[0]
        getattr(checking.check, chapter, None)  # imports the chapter's checks: registers the task
        t = checking.TASKS.get(key)  # run as __main__, this module's FileTask is another class
        if not callable(getattr(t, "grade_file", None)):
            results[key] = {"status": "error", "points": 0, "reason": f"{key} is not a file task",
                            "measures": {}}
            continue
        r, measures = t.grade_file(Path(spec["folder"]) / t.file, spec["context"])
        results[key] = {"status": r.status, "points": r.points, "reason": r.reason, "measures": measures}
        Path(spec["out"]).write_text(json.dumps(results))
    Path(spec["out"]).write_text(json.dumps(results))


if __name__ == "__main__":
    _worker(sys.argv[1])
