"""Running one notebook safely: the grader's worker process, its kernel and their limits.

`execute` copies the submission's folder to a scratch folder and runs the prepared notebook
there in a fresh kernel (nbclient), in a worker process of its own (`python -m
nclib.course.sandbox --worker SPEC`) with

- a memory limit (RLIMIT_DATA, inherited by the kernel, so an oversized allocation fails
  with `MemoryError` inside the notebook),
- a per-cell time limit (the kernel is interrupted and the cell marked as timed out),
- a total time limit (the worker is stopped from outside),
- a cap on the stream output kept per cell (the rest is dropped).

When the worker ends, both process groups (worker and kernel) are killed, so nothing the
notebook started outlives it. What happened comes back as the worker's state: which cells
timed out, raised or printed too much, where the kernel died, and the outputs of the cells
the caller asked to keep. This module knows nothing of tasks or points (see grade.py).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = ["Limits", "execute", "copy_submission", "kill_group", "limit_memory"]

COPY_LIMIT_BYTES = 50 * 2**20  # copy a submission's folder only when it is smaller than this


@dataclass(frozen=True)
class Limits:
    cell_seconds: float = 120
    total_seconds: float = 600
    memory_gib: float = 4.0  # RLIMIT_DATA of the worker and its kernel
    output_bytes: int = 1_000_000  # stream output kept per cell


# ---------------------------------------------------------------- parent side
def execute(notebook: nbformat.NotebookNode, submission: Path, keep: Iterable[int],
            limits: Limits = Limits(), threads: int | None = None, collect: Iterable[str] = (),
            into: Path | None = None, collect_bytes: int = 20 * 2**20) -> tuple[dict | None, bool]:
    """Run `notebook` in a scratch copy of `submission`'s folder, in its own worker and kernel.

    Args:
        notebook: the notebook to run (written in place of the submission in the copy).
        submission: the submitted file; its folder is copied, the file itself never changed.
        keep: indices of the cells whose outputs the caller wants back.
        threads: NCLIB_THREADS and OMP_NUM_THREADS of the kernel (default: inherited).
        collect, into: files (names relative to the notebook's folder) that the run must
            write: removed from the scratch copy before it, copied out of the scratch folder
            into `into` after it, before the folder is removed: plain files of
            at most `collect_bytes` only (never a link). state["files"] records, per name,
            its size in bytes, or why it was not copied ("missing", "not a plain file").

    Returns:
        (state, total_timeout): the worker's state (see `_worker`), or None when it left none,
        and whether the total time limit stopped the notebook. A worker that exited without
        a state, before the total limit, gives {"crash": reason}.
    """
    scratch = Path(tempfile.mkdtemp(prefix="nclib-grade-"))
    state, total_timeout = None, False
    try:
        target = copy_submission(submission, scratch)
        for name in collect:  # a file to collect must be one this run writes, not a stale copy
            (scratch / name).unlink(missing_ok=True)
        nbformat.write(notebook, target)
        env = dict(os.environ, MPLBACKEND="agg", PYTHONUNBUFFERED="1", NCLIB_GRADING="1")
        if threads:
            env.update(NCLIB_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        spec = {"notebook": str(target), "state": str(scratch / ".grade-state.json"),
                "kernel_pid": str(scratch / ".kernel.pid"), "cwd": str(scratch),
                "keep": sorted(keep), "cell_seconds": limits.cell_seconds,
                "output_bytes": limits.output_bytes, "env": env}
        spec_path = scratch / ".grade-spec.json"
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.Popen([sys.executable, "-m", "nclib.course.sandbox", "--worker", str(spec_path)],
                                cwd=scratch, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=limit_memory(limits.memory_gib))
        try:
            _, stderr = proc.communicate(timeout=limits.total_seconds)
        except subprocess.TimeoutExpired:
            total_timeout = True
            stderr = b""
        finally:
            kernel_pid = scratch / ".kernel.pid"
            if kernel_pid.exists():
                try:
                    kill_group(int(kernel_pid.read_text()))
                except ValueError:
                    pass
            kill_group(proc.pid)
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
        files = {name: _collect(scratch / name, into, collect_bytes) for name in collect}
        if files:
            state = dict(state or {}, files=files)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return state, total_timeout


def _collect(src: Path, into: Path | None, limit: int) -> int | str:
    """Copy `src` (a plain file, not a link, of at most `limit` bytes) into `into`."""
    if src.is_symlink() or (src.exists() and not src.is_file()):
        return "not a plain file"
    if not src.exists():
        return "missing"
    size = src.stat().st_size
    if into is not None and size <= limit:
        into.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, into / src.name)
    return size


def copy_submission(path: Path, scratch: Path) -> Path:
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


def kill_group(pid: int) -> None:
    """SIGKILL the process group of `pid`; a process already gone is not an error."""
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def limit_memory(gib: float):
    """A `preexec_fn` that caps the child's data segment (RLIMIT_DATA) at `gib` GiB."""
    def apply():
        import resource

        limit = int(gib * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return apply


# ---------------------------------------------------------------- worker (its own process)
def _worker(spec_path: str) -> None:
    """Execute one notebook and write what happened, cell by cell, to a JSON file.

    The state: "started" (the cell running last), "timed_out" and "truncated" (cell
    indices), "died" (the cell the kernel died in, or None), "finished", "cells" (outputs of
    the cells to keep), "errors" ({cell: "Name: value"} of every cell that raised) and,
    if nbclient itself failed, "crash". It is saved after every cell, so a worker killed
    for the total limit still tells how far the notebook got.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    spec = json.loads(Path(spec_path).read_text())
    nb = nbformat.read(spec["notebook"], as_version=4)
    state = {"started": None, "timed_out": [], "died": None, "truncated": [], "finished": False}
    out_path = Path(spec["state"])

    def save():
        state["cells"] = {i: nb.cells[i].outputs for i in spec["keep"]}
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


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--worker":
        _worker(argv[1])
        return
    raise SystemExit("use `nclib grade ...`")


if __name__ == "__main__":
    main()
