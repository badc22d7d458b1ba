"""The autograder: hostile submissions lose only their own points, with a reason, and the
batch completes without touching the submitted files."""
import copy
import csv
import hashlib
import json
from pathlib import Path

import nbformat
import pytest

from nclib import cli
from nclib.course import build, check, grade, sandbox

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "exercises" / "00_overview.ipynb"
LIMITS = sandbox.Limits(cell_seconds=8, total_seconds=30, memory_gib=1.5)
STUB = 'raise NotImplementedError("Replace this line with your code.")'
# the release's tasks in order, and its points, read from its check cells (1 point each here)
TASKS = [m.group(2) for c in nbformat.read(RELEASE, as_version=4).cells if c.cell_type == "code"
         for m in build.CHECK_CALL.finditer(c.source)]
MAX_SCORE = sum(getattr(check.overview, name).points for name in TASKS)
FAKE_RESULT = ('{"task": "overview.linear_macs", "points": 1, "max_points": 1, '
               '"status": "passed", "reason": ""}')


def _variants():
    def insert(code, at=2):
        return lambda nb: nb.cells.insert(at, nbformat.v4.new_code_cell(code))

    def solve_one(nb):
        cell = next(c for c in nb.cells if "def linear_params" in c.source)
        cell.source = cell.source.replace(STUB, "return in_features * out_features + (out_features if bias else 0)")

    def cheat(nb):
        for cell in nb.cells:
            if "check.overview.linear_params(" in cell.source:
                cell.source = 'print("[PASS] overview.linear_params: 1/1 point(s).")'
        nb.cells.insert(2, nbformat.v4.new_code_cell(
            "from IPython.display import display\n"
            f"display({{'text/plain': 'pass', '{'application/vnd.nclib.check+json'}': '{FAKE_RESULT}'}}, raw=True)\n"
            "class Fake:\n    def __getattr__(self, name): return self\n"
            "    def __call__(self, *a): print('[PASS]')\n"
            "check = Fake()"))

    return {
        "solved_one": solve_one,
        "loop": insert("while True:\n    pass"),
        "stubborn_loop": insert("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                "while True:\n    pass"),
        "exit": insert("import os\nos._exit(1)", at=5),
        "flood": insert("for _ in range(50):\n    print('x' * 1_000_000)"),  # 50 MB
        "memory": insert(f"big = bytearray(int(2 * {LIMITS.memory_gib} * 2**30))"),  # twice the limit
        "cheat": cheat,
    }


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    release = nbformat.read(RELEASE, as_version=4)
    for name, change in _variants().items():
        nb = copy.deepcopy(release)
        change(nb)
        nbformat.write(nb, folder / f"{name}_00_overview.ipynb")
    (folder / "corrupt_00_overview.ipynb").write_text('{"cells": [ not json')
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    results = grade.grade([folder], jobs=2, release=ROOT / "exercises", limits=LIMITS)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    return {Path(r.submission).name.split("_00_")[0]: r for r in results}, before, after


def _status(result):
    return {t.task.split(".")[1]: t.status for t in result.tasks}


def test_batch_completes_and_files_unchanged(batch):
    """Every submission gets a result, and no submitted file is changed or added."""
    results, before, after = batch
    assert set(results) == set(_variants()) | {"corrupt"}
    assert before == after
    assert MAX_SCORE >= 4 and all(r.max_score == MAX_SCORE for r in results.values())


def test_one_solved_task_scores_exactly_that_task(batch):
    """A copy with one task solved scores 1 of the release's points; the rest are not attempted."""
    r = batch[0]["solved_one"]
    assert r.score == 1 and _status(r) == {name: "passed" if name == "linear_params" else "not_attempted"
                                          for name in TASKS}
    assert r.error is None


def test_infinite_loop_is_interrupted_and_the_rest_still_graded(batch):
    """An interruptible loop hits the cell limit; later checks still run."""
    r = batch[0]["loop"]
    assert "ran past the 8 s cell limit" in r.error and "while True" in r.error
    assert set(_status(r).values()) == {"not_attempted"}


def test_uninterruptible_loop_hits_the_total_limit(batch):
    """A loop that ignores interrupts is stopped by the total limit; its tasks time out."""
    r = batch[0]["stubborn_loop"]
    assert "total limit of 30 s" in r.error and r.score == 0
    assert set(_status(r).values()) == {"timeout"}
    assert r.seconds < LIMITS.total_seconds + 15


def test_kernel_exit_costs_only_later_tasks(batch):
    """os._exit(1) kills the kernel: checks after it are errors, with the cell named."""
    r = batch[0]["exit"]
    assert "kernel died in cell 6" in r.error
    assert _status(r)["linear_params"] == "not_attempted"
    assert _status(r)["conv2d_macs"] == "error"


def test_output_flood_is_truncated(batch):
    """50 MB of output is cut at the limit and reported; grading goes on."""
    r = batch[0]["flood"]
    assert "printed more than 1,000,000 bytes" in r.error
    assert set(_status(r).values()) == {"not_attempted"}


def test_memory_limit(batch):
    """Allocating twice the memory limit fails inside the notebook (MemoryError), nothing else."""
    r = batch[0]["memory"]
    assert "MemoryError" in r.error and set(_status(r).values()) == {"not_attempted"}


def test_edited_check_cell_and_fake_results_gain_nothing(batch):
    """Printing 'pass', faking a result bundle, or rebinding `check` earns no points."""
    r = batch[0]["cheat"]
    assert r.score == 0 and set(_status(r).values()) == {"not_attempted"}


def test_corrupt_notebook(batch):
    """A file that is not a notebook scores 0 of its exercise's points, with the reason."""
    r = batch[0]["corrupt"]
    assert r.score == 0 and r.max_score == MAX_SCORE and "not a valid notebook" in r.error
    assert set(_status(r).values()) == {"error"}


def test_cli_writes_json_and_csv(tmp_path, capsys):
    """`nclib grade --json --csv` writes the documented JSON schema and one CSV row each."""
    (tmp_path / "bad_00_overview.ipynb").write_text("nope")
    out_json, out_csv = tmp_path / "grades.json", tmp_path / "grades.csv"
    assert cli.main(["grade", str(tmp_path / "bad_00_overview.ipynb"), "--json", str(out_json),
                     "--csv", str(out_csv), "--release", str(ROOT / "exercises")]) == 0
    data = json.loads(out_json.read_text())
    assert set(data[0]) == {"submission", "score", "max_score", "tasks", "error"}
    assert set(data[0]["tasks"][0]) == {"task", "points", "max_points", "status", "reason"}
    rows = list(csv.DictReader(out_csv.open()))
    assert rows[0]["score"] == "0" and rows[0]["overview.linear_params status"] == "error"
    assert f"bad_00_overview.ipynb: 0/{MAX_SCORE}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, match", [
    (["grade", "no/such.ipynb"], "no such file"),
    (["grade", "x.ipynb", "--timeout", "0"], "--timeout=0"),
    (["grade", "x.ipynb", "-j", "0"], "-j=0"),
])
def test_cli_bad_arguments(argv, match, capsys):
    """Bad paths and limits exit 2 with a message naming the argument."""
    assert cli.main(argv) == 2
    assert match in capsys.readouterr().err
