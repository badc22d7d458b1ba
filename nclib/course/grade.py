"""The autograder: `nclib grade PATH... [-j N] [--json FILE] [--csv FILE] [--timeout S]`.

For each submitted notebook:

1. Find its exercise in the release (by the chapter the notebook's metadata names, else by
   its file name) and put the release's check cells back in place of the student's, so an
   edited check cell counts for nothing.
2. Copy the submission's folder to a scratch folder and execute the notebook there in a
   fresh kernel (nbclient), in a worker process of its own with a memory limit
   (RLIMIT_DATA, inherited by the kernel), a per-cell time limit and a total time limit.
   Output beyond a limit is dropped. When the worker ends, both process groups (worker
   and kernel) are killed, so nothing the notebook started outlives it.
3. Read each check's result from the outputs of the grader's own check cells (a display
   bundle of type `RESULT_MIME`); the points come from the grader's task table, never
   from what the notebook prints.

A notebook that raises, loops, floods output, exhausts memory, kills its kernel or is not a
notebook at all loses only its own points, and the reason is written down.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from nclib.course import checking
from nclib.course.build import CHECK_CALL

__all__ = ["grade", "grade_one", "Limits", "SubmissionResult", "TaskScore", "find_release",
           "prepare", "render", "write_json", "write_csv", "main"]

GRADER_TAG = "nclib-grader-check"
COPY_LIMIT_BYTES = 50 * 2**20  # copy a submission's folder only when it is smaller than this


@dataclass(frozen=True)
class Limits:
    cell_seconds: float = 120
    total_seconds: float = 600
    memory_gib: float = 4.0  # RLIMIT_DATA of the worker and its kernel
    output_bytes: int = 1_000_000  # stream output kept per cell


@dataclass
class TaskScore:
    task: str
    points: float
    max_points: float
    status: str
    reason: str


@dataclass
class SubmissionResult:
    submission: str
    score: float
    max_score: float
    tasks: list[TaskScore] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"submission": self.submission, "score": self.score, "max_score": self.max_score,
                "tasks": [asdict(t) for t in self.tasks], "error": self.error}


# ---------------------------------------------------------------- release and preparation
def default_release() -> Path:
    """exercises/ beside the nclib package (a source checkout), else ./exercises."""
    here = Path(__file__).resolve().parents[2] / "exercises"
    return here if here.is_dir() else Path("exercises")


def _check_tasks(source: str) -> list[str]:
    return [f"{chapter}.{name}" for chapter, name in CHECK_CALL.findall(source)]


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


def prepare(submission: nbformat.NotebookNode, release: nbformat.NotebookNode):
    """The notebook to execute: the submission with the release's check cells in place.

    Returns (notebook, {cell index: [task keys]}) for the grader's own check cells.
    """
    nb = nbformat.from_dict(json.loads(json.dumps(submission)))
    released = [c for c in release.cells if c.cell_type == "code" and _check_tasks(c.source)]
    for rc in released:
        tasks = _check_tasks(rc.source)
        target = None
        for cell in nb.cells:
            if cell.get("id") and cell.get("id") == rc.get("id") and cell.cell_type == "code":
                target = cell
                break
        if target is None:
            for cell in nb.cells:
                if cell.cell_type == "code" and set(tasks) & set(_check_tasks(cell.source)) \
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


def _copy_submission(path: Path, scratch: Path) -> Path:
    """Copy the notebook and, if small, the rest of its folder (other notebooks left out)."""
    folder = path.parent
    total = 0
    files = []
    for f in folder.rglob("*"):
        if f.is_file() and f.suffix != ".ipynb" and not any(p.startswith(".") for p in f.relative_to(folder).parts):
            total += f.stat().st_size
            files.append(f)
    if total <= COPY_LIMIT_BYTES:
        for f in files:
            dst = scratch / f.relative_to(folder)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)
    dst = scratch / path.name
    shutil.copy2(path, dst)
    return dst


# ---------------------------------------------------------------- worker (its own process)
def _worker(spec_path: str) -> None:
    """Execute one prepared notebook and write what happened, cell by cell, to a JSON file."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    spec = json.loads(Path(spec_path).read_text())
    nb = nbformat.read(spec["notebook"], as_version=4)
    state = {"started": None, "timed_out": [], "died": None, "truncated": [], "finished": False}
    out_path = Path(spec["state"])

    def save():
        state["cells"] = {i: nb.cells[i].outputs for i in map(int, spec["positions"])}
        state["errors"] = {}
        for i, cell in enumerate(nb.cells):
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    state["errors"][i] = f"{o.get('ename')}: {o.get('evalue')}"[:500]
        tmp = out_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, default=str))
        os.replace(tmp, out_path)

    class GuardedClient(NotebookClient):
        """Keeps at most `output_bytes` of stream output a cell and notes timeouts."""

        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] == "stream":
                used = sum(len(o.get("text", "")) for o in outs if o.get("output_type") == "stream")
                if used + len(msg["content"].get("text", "")) > spec["output_bytes"]:
                    if cell_index not in state["truncated"]:
                        state["truncated"].append(cell_index)
                    return None
            return super().output(outs, msg, display_id, cell_index)

        async def _async_handle_timeout(self, timeout, cell=None):
            if state["started"] is not None:
                state["timed_out"].append(state["started"])
            return await super()._async_handle_timeout(timeout, cell)

        async def async_start_new_kernel(self, **kwargs):
            await super().async_start_new_kernel(**kwargs)
            pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
            if pid:
                Path(spec["kernel_pid"]).write_text(str(pid))

    def on_start(cell, cell_index):
        state["started"] = cell_index

    def on_done(cell, cell_index, execute_reply):
        save()

    client = GuardedClient(
        nb, timeout=spec["cell_seconds"], kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, record_timing=False,
        error_on_timeout={"ename": "CellTimeoutError",
                          "evalue": f"cell ran past the {spec['cell_seconds']:g} s limit",
                          "traceback": []},
        resources={"metadata": {"path": spec["cwd"]}},
        on_cell_start=on_start, on_cell_executed=on_done)
    try:
        client.execute(env=spec["env"])
        state["finished"] = True
    except DeadKernelError:
        state["died"] = state["started"]
    except Exception as e:  # nbclient itself failed: record it, the parent reports it
        state["crash"] = f"{type(e).__name__}: {e}"[:500]
    save()


# ---------------------------------------------------------------- parent side
def _kill_group(pid: int) -> None:
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _limit_memory(gib: float):
    def apply():
        import resource

        limit = int(gib * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return apply


def _score(path: Path, positions: dict[int, list[str]], state: dict | None, limits: Limits,
           total_timeout: bool, sources: list[str] | None = None) -> SubmissionResult:
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
            for key in _check_tasks(c.source) if c.cell_type == "code" else []:
                getattr(checking.check, key.split(".")[0], None)
                known = checking.TASKS.get(key)
                tasks.append(TaskScore(key, 0, known.points if known else 0, "error", reason))
    except (ValueError, OSError):
        pass
    return SubmissionResult(str(path), 0, sum(t.max_points for t in tasks), tasks, reason, seconds)


def grade_one(path: str | Path, release: str | Path | None = None, limits: Limits = Limits(),
              threads: int | None = None) -> SubmissionResult:
    """Grade one notebook in a scratch folder, in its own worker process and kernel."""
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
    graded, positions = prepare(nb, release_nb)
    for keys in positions.values():  # the task table must know every released task
        for key in keys:
            getattr(checking.check, key.split(".")[0], None)
    scratch = Path(tempfile.mkdtemp(prefix="nclib-grade-"))
    state, total_timeout = None, False
    try:
        target = _copy_submission(path, scratch)
        nbformat.write(graded, target)
        env = dict(os.environ, MPLBACKEND="agg", PYTHONUNBUFFERED="1", NCLIB_GRADING="1")
        if threads:
            env.update(NCLIB_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        spec = {"notebook": str(target), "state": str(scratch / ".grade-state.json"),
                "kernel_pid": str(scratch / ".kernel.pid"), "cwd": str(scratch),
                "positions": {str(k): v for k, v in positions.items()},
                "cell_seconds": limits.cell_seconds, "output_bytes": limits.output_bytes, "env": env}
        spec_path = scratch / ".grade-spec.json"
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.Popen([sys.executable, "-m", "nclib.course.grade", "--worker", str(spec_path)],
                                cwd=scratch, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=_limit_memory(limits.memory_gib))
        try:
            _, stderr = proc.communicate(timeout=limits.total_seconds)
        except subprocess.TimeoutExpired:
            total_timeout = True
            stderr = b""
        finally:
            kernel_pid = scratch / ".kernel.pid"
            if kernel_pid.exists():
                try:
                    _kill_group(int(kernel_pid.read_text()))
                except ValueError:
                    pass
            _kill_group(proc.pid)
            proc.wait()
        state_file = scratch / ".grade-state.json"
        if state_file.exists():
            try:
                state = json.loads(state_file.read_text())
            except ValueError:
                state = None
        if state is None and not total_timeout:
            tail = (stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            state = {"crash": f"the grading worker exited with code {proc.returncode}: {tail[0][:300]}"}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = _score(path, positions, state, limits, total_timeout,
                    [c.source for c in graded.cells])
    result.seconds = time.perf_counter() - t0
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
          limits: Limits = Limits()) -> list[SubmissionResult]:
    """Grade notebooks (folders are searched for .ipynb files), `jobs` at a time."""
    files = _expand([str(p) for p in paths])
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r}: expected a positive integer")
    threads = 1 if jobs > 1 else None  # parallel kernels must not fight over cores
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda f: grade_one(f, release, limits, threads), files))


# ---------------------------------------------------------------- reports
def render(results: list[SubmissionResult]) -> str:
    """The terminal report: one block per submission, one line per task, then a summary."""
    lines = []
    for r in results:
        lines.append(f"{r.submission}: {r.score:g}/{r.max_score:g}  ({r.seconds:.1f} s)")
        for t in r.tasks:
            lines.append(f"  {t.task:<32} {t.points:g}/{t.max_points:g}  {t.status:<13} {t.reason}")
        if r.error:
            lines.append(f"  problem: {r.error}")
    lines.append("")
    w = max([len(r.submission) for r in results] + [10])
    lines.append(f"{'submission':<{w}}  score")
    for r in results:
        lines.append(f"{r.submission:<{w}}  {r.score:g}/{r.max_score:g}" + ("  (!)" if r.error else ""))
    return "\n".join(lines)


def write_json(results: list[SubmissionResult], path: str | Path) -> None:
    Path(path).write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")


def write_csv(results: list[SubmissionResult], path: str | Path) -> None:
    """One row per submission: score, max_score, error, then each task's points and status."""
    keys = list(dict.fromkeys(t.task for r in results for t in r.tasks))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", "score", "max_score", "error"] + [f"{k} {c}" for k in keys
                                                                     for c in ("points", "status")])
        for r in results:
            by = {t.task: t for t in r.tasks}
            row = [r.submission, r.score, r.max_score, r.error or ""]
            for k in keys:
                row += [by[k].points, by[k].status] if k in by else ["", ""]
            w.writerow(row)


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
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    for name, value in (("--timeout", args.timeout), ("--cell-timeout", args.cell_timeout),
                        ("--memory", args.memory), ("-j", args.jobs)):
        if value <= 0:
            raise ValueError(f"{name}={value}: expected a positive number")
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    for out in (args.json, args.csv):
        if out and Path(out).resolve() in {p.resolve() for p in _expand(args.paths)}:
            raise ValueError(f"{out}: would overwrite a submission")
    limits = Limits(cell_seconds=min(args.cell_timeout, args.timeout), total_seconds=args.timeout,
                    memory_gib=args.memory)
    results = grade(args.paths, jobs=args.jobs, release=args.release, limits=limits)
    if not results:
        raise FileNotFoundError(f"no notebooks found in {', '.join(args.paths)}")
    print(render(results))
    if args.json:
        write_json(results, args.json)
    if args.csv:
        write_csv(results, args.csv)
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--worker":
        _worker(argv[1])
        return
    raise SystemExit("use `nclib grade ...`")


if __name__ == "__main__":
    main()
