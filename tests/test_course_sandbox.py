"""Running one notebook safely: scratch copy, cell and total time limits, memory limit,
output cap, and no process of the notebook's left behind."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from nclib.course import sandbox

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
LIMITS = sandbox.Limits(cell_seconds=3, total_seconds=60, memory_gib=1.0, output_bytes=250_000)


def _gone(pid: int, within: float = 5.0) -> bool:
    """Whether `pid` has ended (gone, or a zombie nobody reaped) within `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z" or time.monotonic() > deadline:
            return state == "Z"
        time.sleep(0.1)


def _notebook(folder: Path, *sources: str) -> tuple[nbformat.NotebookNode, Path]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = folder / "submission.ipynb"
    nbformat.write(nb, path)
    return nb, path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One notebook that reads a data file, sleeps, over-allocates, floods and raises."""
    folder = tmp_path_factory.mktemp("submission")
    (folder / "data.txt").write_text("hello from the data file")
    nb, path = _notebook(
        folder,
        "print(open('data.txt').read())",
        "import time\ntime.sleep(60)",
        f"big = bytearray(2 * {int(LIMITS.memory_gib * 2**30)})",  # twice the limit
        "import time\nfor _ in range(5):\n    print('x' * 100_000, flush=True)\n    time.sleep(0.2)",
        "1 / 0",
    )
    before = sorted((p.name, p.read_bytes()) for p in folder.iterdir())
    t0 = time.perf_counter()
    state, total_timeout = sandbox.execute(nb, path, [0, 3], LIMITS, threads=1)
    after = sorted((p.name, p.read_bytes()) for p in folder.iterdir())
    return state, total_timeout, time.perf_counter() - t0, before == after


def _stream(outputs) -> str:
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")


def test_runs_in_a_scratch_copy_of_the_folder(run):
    """The notebook reads files beside it from its copy; the submitted folder is unchanged."""
    state, _, _, unchanged = run
    assert "hello from the data file" in _stream(state["cells"]["0"])
    assert unchanged


def test_cell_limit_interrupts_the_cell_and_the_notebook_goes_on(run):
    """A cell past the cell limit is interrupted and marked; later cells still run."""
    state, total_timeout, seconds, _ = run
    assert state["timed_out"] == [1] and state["errors"]["1"].startswith("KeyboardInterrupt")
    assert state["finished"] and not total_timeout and state["died"] is None
    assert seconds < 40
    assert state["errors"]["4"] == "ZeroDivisionError: division by zero"


def test_memory_limit_reaches_the_kernel(run):
    """Allocating twice the limit raises MemoryError inside the kernel, which lives on."""
    state = run[0]
    assert state["errors"]["2"].startswith("MemoryError")
    assert "4" in state["errors"]  # the kernel survived to run the last cell


def test_stream_output_is_capped_per_cell(run):
    """A cell printing 500 kB in five messages keeps the first ones up to `output_bytes`, marked truncated."""
    state = run[0]
    assert state["truncated"] == [3]
    assert 0 < len(_stream(state["cells"]["3"])) <= LIMITS.output_bytes


def test_only_the_cells_asked_for_come_back(run):
    """Outputs are returned for the cells in `keep` only."""
    assert set(run[0]["cells"]) == {"0", "3"}


def test_total_limit_kills_kernel_and_what_it_started(tmp_path):
    """A loop that ignores interrupts is stopped at the total limit; the kernel and its child die."""
    pids = tmp_path / "pids"
    nb, path = _notebook(
        tmp_path,
        f"import os, subprocess\nchild = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')",
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
    )
    limits = sandbox.Limits(cell_seconds=60, total_seconds=20, memory_gib=1.0)
    t0 = time.perf_counter()
    state, total_timeout = sandbox.execute(nb, path, [], limits, threads=1)
    assert total_timeout and time.perf_counter() - t0 < limits.total_seconds + 10
    assert state is not None and not state["finished"]  # saved after cell 0, never finished
    kernel, child = map(int, pids.read_text().split())
    assert _gone(kernel) and _gone(child)


def test_kill_group_kills_the_whole_group():
    """kill_group ends a session leader and the child it started; a gone pid is no error."""
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE,
                            start_new_session=True)
    child = int(proc.stdout.readline())
    try:
        sandbox.kill_group(proc.pid)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert _gone(child)
    finally:  # leave nothing behind when the test fails
        proc.stdout.close()
        for pid in (proc.pid, child):
            if not _gone(pid, within=0):
                os.kill(pid, signal.SIGKILL)
    sandbox.kill_group(proc.pid)  # already reaped: nothing to kill, nothing raised


def test_limit_memory_caps_the_child():
    """Under a 0.5 GiB limit a child cannot allocate 1 GiB (MemoryError) but can allocate 64 MiB."""
    limited = subprocess.run([sys.executable, "-c", "bytearray(2**30)"], capture_output=True,
                             preexec_fn=sandbox.limit_memory(0.5))
    assert limited.returncode != 0 and b"MemoryError" in limited.stderr
    small = subprocess.run([sys.executable, "-c", "bytearray(64 * 2**20)"], capture_output=True,
                           preexec_fn=sandbox.limit_memory(0.5))
    assert small.returncode == 0, small.stderr


def test_copy_submission_copies_the_folder_but_not_other_notebooks(tmp_path, monkeypatch):
    """Data files and subfolders are copied, other notebooks and hidden files are not; a large folder is not."""
    folder, scratch = tmp_path / "in", tmp_path / "out"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "x.csv").write_text("1,2\n")
    (folder / "other.ipynb").write_text("{}")
    (folder / ".secret").write_text("no")
    (folder / "mine.ipynb").write_text("{}")
    scratch.mkdir()
    assert sandbox.copy_submission(folder / "mine.ipynb", scratch) == scratch / "mine.ipynb"
    assert sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*")) == \
        ["data", "data/x.csv", "mine.ipynb"]
    big = tmp_path / "big"
    big.mkdir()
    monkeypatch.setattr(sandbox, "COPY_LIMIT_BYTES", 3)  # data/x.csv is 4 bytes
    sandbox.copy_submission(folder / "mine.ipynb", big)
    assert [p.name for p in big.iterdir()] == ["mine.ipynb"]
