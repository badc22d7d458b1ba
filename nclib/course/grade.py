"""The autograder: `nclib grade PATH... [-j N] [--json FILE] [--csv FILE] [--timeout S]`.

For each submitted notebook:

1. Find its exercise in the release (by the chapter the notebook's metadata names, else by
   its file name) and put the release's check cells back in place of the student's, so an
   edited check cell counts for nothing. A submission whose metadata names another release
   and its task list (`build.build_notebook` writes both) is graded on the tasks that list or
   its own check cells name; the release's other tasks are `not_in_release` and count for
   nothing, earned or possible. One without that metadata is expected to have every task.
2. Run it in a scratch copy of its folder, in a fresh kernel in a worker process of its own,
   with time, memory and output limits (`nclib.course.sandbox.execute`).
3. Read each check's result from the outputs of the grader's own check cells (a display
   bundle of type `RESULT_MIME`); the points come from the grader's task table, never
   from what the notebook prints.

A notebook that raises, loops, floods output, exhausts memory, kills its kernel or is not a
notebook at all loses only its own points, and the reason is written down. The results are
printed and written as JSON and CSV by `nclib.course.report`.
"""
from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from nclib.course import checking, filetasks, leaderboard, report, sandbox
from nclib.course.build import check_tasks, notebook_tasks
from nclib.course.report import NOT_IN_RELEASE, SubmissionResult, TaskScore
from nclib.course.sandbox import Limits

__all__ = ["grade", "grade_one", "find_release", "tasks_not_in_release", "prepare", "add_parser"]

GRADER_TAG = "nclib-grader-check"


# ---------------------------------------------------------------- release and preparation
def default_release() -> Path:
    """exercises/ beside the nclib package (a source checkout), else ./exercises."""
    here = Path(__file__).resolve().parents[2] / "exercises"
    return here if here.is_dir() else Path("exercises")


def find_release(nb: nbformat.NotebookNode, path: Path, release: Path) -> Path:
    """The release exercise notebook a submission answers."""
    if release.is_file():
        return release
    chapter = nb.get("metadata", {}).get("nclib", {}).get("chapter")
    candidates = sorted(release.glob("[0-9][0-9]_*.ipynb"))
    for c in candidates:
        if c.stem == chapter:
            return c
    for c in candidates:
        if c.stem in path.stem:
            return c
    raise ValueError(f"cannot tell which exercise {path.name} answers: its metadata names no "
                     f"chapter and its name contains none of "
                     f"{', '.join(c.stem for c in candidates) or '(no exercises in ' + str(release) + ')'}; "
                     "pass --release FILE")


def tasks_not_in_release(submission: nbformat.NotebookNode,
                         release: nbformat.NotebookNode) -> tuple[str | None, list[str]]:
    """The release a submission records (None if none) and the release's tasks it lacks.

    Tasks are lacking only when the submission records a release other than `release`'s and
    a task list, and neither that list nor the submission's own check cells name them. A
    submission that records the current release, or none (made before releases were
    recorded), lacks nothing: every task is expected of it.
    """
    meta = submission.get("metadata", {}).get("nclib")
    version, listed = (meta.get("release"), meta.get("tasks")) if isinstance(meta, dict) else (None, None)
    if not isinstance(version, str) or not isinstance(listed, list):
        return None, []
    if version == release.get("metadata", {}).get("nclib", {}).get("release"):
        return version, []
    present = set(map(str, listed)) | set(notebook_tasks(submission))  # trust the cells present
    return version, [key for key in notebook_tasks(release) if key not in present]


def prepare(submission: nbformat.NotebookNode, release: nbformat.NotebookNode,
            leave_out: list[str] | tuple[str, ...] = ()):
    """The notebook to execute: the submission with the release's check cells in place.

    Check cells whose every task is in `leave_out` (tasks not in the submission's release)
    are not added. Returns (notebook, {cell index: [task keys]}) for the grader's own check
    cells, without the keys of `leave_out`.
    """
    nb = nbformat.from_dict(json.loads(json.dumps(submission)))
    released = [c for c in release.cells if c.cell_type == "code"
                and set(check_tasks(c.source)) - set(leave_out)]
    for rc in released:
        tasks = [key for key in check_tasks(rc.source) if key not in leave_out]
        target = None
        for cell in nb.cells:
            if cell.get("id") and cell.get("id") == rc.get("id") and cell.cell_type == "code":
                target = cell
                break
        if target is None:
            for cell in nb.cells:
                if cell.cell_type == "code" and set(tasks) & set(check_tasks(cell.source)) \
                        and GRADER_TAG not in cell.metadata.get("tags", []):
                    target = cell
                    break
        if target is None:  # the student deleted it: add it back at the end
            target = nbformat.v4.new_code_cell()
            nb.cells.append(target)
        # import `check` afresh, so a student's `check = ...` elsewhere changes nothing
        target.source = "from nclib.course import check\n" + rc.source
        target.metadata = {"tags": [GRADER_TAG]}
        target.metadata["nclib_tasks"] = tasks
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    positions = {i: c.metadata["nclib_tasks"] for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and GRADER_TAG in c.metadata.get("tags", [])}
    return nb, positions


# ---------------------------------------------------------------- scoring
def _score(path: Path, positions: dict[int, list[str]], state: dict | None, limits: Limits,
           total_timeout: bool, sources: list[str] | None = None) -> SubmissionResult:
    """Points and reasons from the worker's state (see `sandbox.execute`) and the task table."""
    def cell(i: int) -> str:
        """Cells as a person counts them (from 1), with their first line."""
        first = (sources[i].strip().splitlines() or [""])[0][:40] if sources and i < len(sources) else ""
        return f"cell {i + 1}" + (f" ({first!r})" if first else "")

    tasks: list[TaskScore] = []
    problems: list[str] = []
    state = state or {}
    cells = {int(k): v for k, v in state.get("cells", {}).items()}
    errors = {int(k): v for k, v in state.get("errors", {}).items()}
    timed_out = set(state.get("timed_out", []))
    died = state.get("died")
    for index, keys in positions.items():
        found = {}
        for o in cells.get(index, []):
            data = o.get("data", {}) if o.get("output_type") in ("display_data", "execute_result") else {}
            if checking.RESULT_MIME in data:
                try:
                    r = json.loads(data[checking.RESULT_MIME]) if isinstance(data[checking.RESULT_MIME], str) \
                        else data[checking.RESULT_MIME]
                    found[r["task"]] = r
                except (ValueError, KeyError, TypeError):
                    continue
        for key in keys:
            known = checking.TASKS.get(key)
            max_points = known.points if known else 0
            r = found.get(key)
            if r is not None and r.get("status") in checking.STATUSES:
                points = max_points if r["status"] == "passed" else 0
                tasks.append(TaskScore(key, points, max_points, r["status"], str(r.get("reason", ""))[:500]))
            elif index in timed_out:
                tasks.append(TaskScore(key, 0, max_points, "timeout",
                                       f"the check cell ran past the {limits.cell_seconds:g} s cell limit"))
            elif index in errors:
                tasks.append(TaskScore(key, 0, max_points, "error", f"the check cell raised {errors[index]}"))
            elif died is not None and died <= index:
                tasks.append(TaskScore(key, 0, max_points, "error",
                                       f"the kernel died in {cell(died)} before this check ran"))
            elif total_timeout:
                tasks.append(TaskScore(key, 0, max_points, "timeout",
                                       f"the notebook ran past the {limits.total_seconds:g} s total limit "
                                       "before this check ran"))
            else:
                tasks.append(TaskScore(key, 0, max_points, "error", "this check did not run"))
    if total_timeout:
        problems.append(f"stopped after the total limit of {limits.total_seconds:g} s")
    if died is not None:
        problems.append(f"the kernel died in {cell(died)} (os._exit, a crash, or memory)")
    for i in sorted(timed_out):
        problems.append(f"{cell(i)} ran past the {limits.cell_seconds:g} s cell limit")
    for i in sorted(errors):  # a stub's NotImplementedError is "not attempted", not a problem
        if i not in positions and i not in timed_out and not errors[i].startswith("NotImplementedError"):
            problems.append(f"{cell(i)} raised {errors[i]}")
    for i in state.get("truncated", []):
        problems.append(f"{cell(i)} printed more than {limits.output_bytes:,} bytes; the rest was dropped")
    if state.get("crash"):
        problems.append(f"execution failed: {state['crash']}")
    return SubmissionResult(str(path), sum(t.points for t in tasks), sum(t.max_points for t in tasks),
                            tasks, "; ".join(problems) or None)


def _unreadable(path: Path, release: Path, reason: str, seconds: float) -> SubmissionResult:
    """A submission that cannot be run: every task of its exercise (if known) gets 0."""
    tasks = []
    try:
        release_nb = nbformat.read(find_release({}, path, release), as_version=4)
        for c in release_nb.cells:
            for key in check_tasks(c.source) if c.cell_type == "code" else []:
                getattr(checking.check, key.split(".")[0], None)
                known = checking.TASKS.get(key)
                tasks.append(TaskScore(key, 0, known.points if known else 0, "error", reason))
    except (ValueError, OSError):
        pass
    return SubmissionResult(str(path), 0, sum(t.max_points for t in tasks), tasks, reason, seconds)


def _add_not_in_release(result: SubmissionResult, version: str, keys: list[str],
                        release: nbformat.NotebookNode) -> None:
    """Put the tasks the submission's release lacks into `result`, in the release's order."""
    reason = f"not in release {version}, which this submission is from; not counted"
    by_key = {t.task: t for t in result.tasks}
    by_key.update((key, TaskScore(key, 0, 0, NOT_IN_RELEASE, reason)) for key in keys)
    result.tasks = [by_key[key] for key in notebook_tasks(release) if key in by_key]


# ---------------------------------------------------------------- grading
def grade_one(path: str | Path, release: str | Path | None = None, limits: Limits = Limits(),
              threads: int | None = None, context: dict | None = None) -> SubmissionResult:
    """Grade one notebook in a scratch folder, in its own worker process and kernel; its file
    tasks (`nclib.course.filetasks`) on the files it wrote, in a process of the grader's."""
    path = Path(path)
    t0 = time.perf_counter()
    release = Path(release) if release else default_release()
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as e:
        reason = (f"not a valid notebook: {type(e).__name__}: "
                  f"{str(e).splitlines()[0][:300] if str(e) else ''}")
        return _unreadable(path, release, reason, time.perf_counter() - t0)
    try:
        release_path = find_release(nb, path, release)
        release_nb = nbformat.read(release_path, as_version=4)
    except (ValueError, OSError) as e:
        return SubmissionResult(str(path), 0, 0, [], str(e), time.perf_counter() - t0)
    version, missing = tasks_not_in_release(nb, release_nb)
    graded, positions = prepare(nb, release_nb, missing)
    # the task table must know every released task: file_tasks imports their chapters' checks
    files = filetasks.file_tasks(k for keys in positions.values() for k in keys)
    with tempfile.TemporaryDirectory(prefix="nclib-handed-in-") as handed:
        state, total_timeout = sandbox.execute(graded, path, positions.keys(), limits, threads,
                                               collect=sorted({t.file for t in files.values()}),
                                               into=Path(handed))
        result = _score(path, positions, state, limits, total_timeout,
                        [c.source for c in graded.cells])
        if files:
            filetasks.rescore(result, files, Path(handed), (state or {}).get("files", {}), context,
                              limits.cell_seconds, limits.memory_gib)
    if missing:
        _add_not_in_release(result, version, missing, release_nb)
    result.release, result.seconds = version, time.perf_counter() - t0
    return result


def _expand(paths: list[str]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in f.parts)
        else:
            out.append(p)
    return out


def grade(paths: list[str | Path], jobs: int = 1, release: str | Path | None = None,
          limits: Limits = Limits(), context: dict | None = None) -> list[SubmissionResult]:
    """Grade notebooks (folders are searched for .ipynb files), `jobs` at a time."""
    files = _expand([str(p) for p in paths])
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r}: expected a positive integer")
    threads = 1 if jobs > 1 else None  # parallel kernels must not fight over cores
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda f: grade_one(f, release, limits, threads, context), files))


# ---------------------------------------------------------------- the command
def add_parser(sub) -> None:
    p = sub.add_parser("grade", help="grade submitted notebooks offline",
                       description="Grade notebooks: each runs in a fresh kernel in a scratch "
                                   "folder, with the release's check cells and time and memory limits.")
    p.add_argument("paths", nargs="+", help="notebooks or folders of notebooks")
    p.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded at once")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--csv", help="write one row per submission to this CSV file")
    p.add_argument("--timeout", type=float, default=Limits.total_seconds,
                   help="total seconds a notebook may run (default %(default)s)")
    p.add_argument("--cell-timeout", type=float, default=Limits.cell_seconds,
                   help="seconds one cell may run (default %(default)s)")
    p.add_argument("--memory", type=float, default=Limits.memory_gib,
                   help="GiB of memory a notebook may use (default %(default)s)")
    p.add_argument("--release", help="the release's exercises folder or one exercise notebook")
    p.add_argument("--test-data", help="held-out test data for the file tasks (an .npz of x, y)")
    p.add_argument("--leaderboard", help="rank the submissions and write the table to this CSV file")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    for name, value in (("--timeout", args.timeout), ("--cell-timeout", args.cell_timeout),
                        ("--memory", args.memory), ("-j", args.jobs)):
        if value <= 0:
            raise ValueError(f"{name}={value}: expected a positive number")
    missing = [p for p in args.paths + [args.test_data or "."] if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    for out in (args.json, args.csv, args.leaderboard):
        if out and Path(out).resolve() in {p.resolve() for p in _expand(args.paths)}:
            raise ValueError(f"{out}: would overwrite a submission")
    limits = Limits(cell_seconds=min(args.cell_timeout, args.timeout), total_seconds=args.timeout,
                    memory_gib=args.memory)
    context = {"test_data": str(Path(args.test_data).resolve()) if args.test_data else None}
    results = grade(args.paths, jobs=args.jobs, release=args.release, limits=limits, context=context)
    if not results:
        raise FileNotFoundError(f"no notebooks found in {', '.join(args.paths)}")
    print(report.render(results))
    if args.json:
        report.write_json(results, args.json)
    if args.csv:
        report.write_csv(results, args.csv)
    if args.leaderboard:
        rows = leaderboard.rank(results)
        leaderboard.write_csv(rows, args.leaderboard)
        print("\n" + leaderboard.render(rows))
    return 0
