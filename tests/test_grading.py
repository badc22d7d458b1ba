"""The autograder: hostile submissions lose only their own points, with a reason, and the
batch completes without touching the submitted files."""
import copy
import csv
import hashlib
import json
from pathlib import Path

import nbformat
import pytest

import nclib
from nclib import cli
from nclib.course import build, check, grade, report, sandbox

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "exercises" / "00_overview.ipynb"
LIMITS = sandbox.Limits(cell_seconds=8, total_seconds=30, memory_gib=1.5)
STUB = 'raise NotImplementedError("Replace this line with your code.")'
# the release's tasks in order, and its points, read from its check cells (1 point each here)
TASKS = [m.group(2) for c in nbformat.read(RELEASE, as_version=4).cells if c.cell_type == "code"
         for m in build.CHECK_CALL.finditer(c.source)]
MAX_SCORE = sum(getattr(check.overview, name).points for name in TASKS)
SOLUTION = ROOT / "solutions" / "00_overview.ipynb"
NEW_TASK = "overview.conv2d_params"  # the task the older release in these tests lacks
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
    assert set(data[0]) == {"submission", "score", "max_score", "release", "tasks", "error"}
    assert data[0]["release"] is None  # not a notebook: no metadata to read a release from
    assert set(data[0]["tasks"][0]) == {"task", "points", "max_points", "status", "reason", "measures"}
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



# ---------------------------------------------------------------- submissions of older releases
def _without_check(nb, key):
    """`nb` without the check cell of task `key`."""
    nb.cells = [c for c in nb.cells if key not in build.check_tasks(c.source)]
    return nb


def _older(nb, release="0.0.9", drop=(NEW_TASK,)):
    """`nb` as an older release made it: no check cell for `drop`, metadata without them."""
    release_meta = nbformat.read(RELEASE, as_version=4).metadata["nclib"]
    for key in drop:
        _without_check(nb, key)
    nb.metadata["nclib"] = dict(release_meta, release=release,
                                tasks=[k for k in release_meta["tasks"] if k not in drop])
    return nb


def test_tasks_not_in_release_trusts_the_cells_present_and_only_other_releases():
    """Only a submission recording another release and a task list lacks tasks; a check cell it
    has counts as present; the current release, no metadata or odd metadata lack nothing."""
    release = nbformat.read(RELEASE, as_version=4)
    assert grade.tasks_not_in_release(_older(copy.deepcopy(release)), release) == ("0.0.9", [NEW_TASK])
    kept_cell = _older(copy.deepcopy(release), drop=())  # metadata lacks the task, its cell is there
    kept_cell.metadata["nclib"]["tasks"].remove(NEW_TASK)
    assert grade.tasks_not_in_release(kept_cell, release) == ("0.0.9", [])
    forged = _older(copy.deepcopy(release), release=nclib.__version__)
    assert grade.tasks_not_in_release(forged, release) == (nclib.__version__, [])
    for meta in ({"chapter": "00_overview"}, {"release": "0.0.9"}, {"release": "0.0.9", "tasks": "x"},
                 "not a dict"):
        legacy = _without_check(copy.deepcopy(release), NEW_TASK)
        legacy.metadata["nclib"] = meta
        assert grade.tasks_not_in_release(legacy, release) == (None, [])


def test_prepare_adds_no_check_cell_for_a_task_not_in_release():
    """The grader's notebook for an older release has no check cell of the newer task; the
    current release's copy without that cell gets it added back."""
    release = nbformat.read(RELEASE, as_version=4)
    older = _older(copy.deepcopy(release))
    nb, positions = grade.prepare(older, release, [NEW_TASK])
    assert [k for keys in positions.values() for k in keys] == [f"overview.{t}" for t in TASKS
                                                               if f"overview.{t}" != NEW_TASK]
    assert not any(NEW_TASK in build.check_tasks(c.source) for c in nb.cells)
    nb, positions = grade.prepare(_without_check(copy.deepcopy(release), NEW_TASK), release)
    assert positions[len(nb.cells) - 1] == [NEW_TASK]


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Graded: an older release answered from the solution, the current release and a
    pre-release-metadata copy, each without the check cell of NEW_TASK."""
    folder = tmp_path_factory.mktemp("releases")
    release = nbformat.read(RELEASE, as_version=4)
    legacy = _without_check(copy.deepcopy(release), NEW_TASK)
    legacy.metadata["nclib"] = {"chapter": "00_overview", "kind": "exercise"}
    made = {"older": _older(nbformat.read(SOLUTION, as_version=4)),
            "current": _without_check(copy.deepcopy(release), NEW_TASK), "legacy": legacy}
    for name, nb in made.items():
        nbformat.write(nb, folder / f"{name}_00_overview.ipynb")
    results = grade.grade([folder], jobs=2, release=ROOT / "exercises", limits=LIMITS)
    return {Path(r.submission).name.split("_00_")[0]: r for r in results}


def test_older_release_is_graded_on_its_own_tasks(releases):
    """Answered from the solution, an older release earns full marks out of its own tasks; the
    newer task is `not_in_release`, worth nothing either way, and the report says so."""
    r = releases["older"]
    new_points = getattr(check.overview, NEW_TASK.split(".")[1]).points
    assert r.error is None and r.release == "0.0.9"
    assert _status(r) == {name: "not_in_release" if f"overview.{name}" == NEW_TASK else "passed"
                          for name in TASKS}
    assert [t.task for t in r.tasks] == [f"overview.{name}" for name in TASKS]
    assert r.score == r.max_score == MAX_SCORE - new_points > 0
    new = next(t for t in r.tasks if t.task == NEW_TASK)
    assert (new.points, new.max_points) == (0, 0) and "not in release 0.0.9" in new.reason
    assert (f"  graded on the {len(TASKS) - 1} tasks of release 0.0.9; 1 task of the current "
            "release is not in it and not counted") in report.render([r])


def test_current_or_unrecorded_release_missing_a_check_cell_is_not_attempted(releases):
    """The current release, or a copy made before releases were recorded, is expected to have
    every task: a deleted check cell is put back and its stub scores 0 of the full total."""
    for name, release in (("current", nclib.__version__), ("legacy", None)):
        r = releases[name]
        assert r.release == release and r.error is None
        assert r.score == 0 and r.max_score == MAX_SCORE
        assert set(_status(r).values()) == {"not_attempted"} and len(r.tasks) == len(TASKS)
        assert "graded on the" not in report.render([r])
