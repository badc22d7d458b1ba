"""File tasks (graded from the file a notebook wrote, by the grader's own process) and the
class leaderboard: a missing, corrupt, oversized or hostile file loses only its task's points,
with a reason, and nothing in it runs."""
import csv
import pickle
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from nclib import cli
from nclib.chapters.capstone import checks as capstone
from nclib.course import filetasks, grade, leaderboard, sandbox
from nclib.course.report import SubmissionResult, TaskScore
from nclib.quant import save_compressed

LIMITS = sandbox.Limits(cell_seconds=60, total_seconds=120, memory_gib=3)
KEYS = ["capstone.bytes_budget", "capstone.latency_budget", "capstone.accuracy_budget"]


def _tiny(seed: int = 0) -> nn.Module:
    """An untrained small CNN: a few kB on disk, fast, and far below the accuracy bar."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).eval()


class _RunsCode:
    """Unpickling this would create the file `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_small_untrained_model_passes_bytes_and_fails_accuracy_with_its_figures(tmp_path):
    """The tasks measure the file: its bytes pass, its accuracy fails; both report measures."""
    path = tmp_path / capstone.FILE
    save_compressed(_tiny(), path)
    r, m = capstone.bytes_budget.grade_file(path)
    assert r.status == "passed" and m["bytes"] == path.stat().st_size
    r, m = capstone.accuracy_budget.grade_file(path)
    assert r.status == "failed" and "below the bar" in r.reason and 0 <= m["accuracy"] < 0.5


def test_the_dense_lenet5_fails_bytes_and_latency_with_its_measured_figures(tmp_path):
    """Handing in the dense model: bytes fail with the file's size in the reason, latency fails
    at about 1x (it is the reference itself), accuracy passes (the budgets are about size and speed)."""
    from nclib import zoo

    path = tmp_path / capstone.FILE
    size = save_compressed(zoo.trained(capstone.DENSE, progress=False), path)
    r, m = capstone.bytes_budget.grade_file(path)
    assert r.status == "failed" and f"{size:,} bytes on disk" in r.reason and m["bytes"] == size > 100 * capstone.MAX_BYTES
    r, m = capstone.latency_budget.grade_file(path)
    assert r.status == "failed" and "too slow" in r.reason and 0.7 < m["latency_ratio"] < 1.4
    r, m = capstone.accuracy_budget.grade_file(path)
    assert r.status == "passed" and m["accuracy"] >= capstone.MIN_ACCURACY


def test_missing_corrupt_and_pickled_files_fail_with_a_reason_and_run_nothing(tmp_path):
    """No file: not attempted; a flipped byte: corrupt; a pickle that would run code: refused,
    and the file the pickle would create does not appear."""
    r, _ = capstone.bytes_budget.grade_file(tmp_path / "nothing.nclib")
    assert r.status == "not_attempted" and "no file" in r.reason
    good = tmp_path / "good.nclib"
    save_compressed(_tiny(), good)
    broken = bytearray(good.read_bytes())
    broken[len(broken) // 2] ^= 0xFF
    (tmp_path / "corrupt.nclib").write_bytes(bytes(broken))
    r, _ = capstone.accuracy_budget.grade_file(tmp_path / "corrupt.nclib")
    assert r.status == "failed" and "corrupt" in r.reason
    sentinel = tmp_path / "ran"
    (tmp_path / "pickle.nclib").write_bytes(pickle.dumps(_RunsCode(sentinel)))
    for task in (capstone.bytes_budget, capstone.latency_budget, capstone.accuracy_budget):
        r, _ = task.grade_file(tmp_path / "pickle.nclib")
        assert r.status == "failed" and "not a usable nclib model file" in r.reason, r.reason
    assert not sentinel.exists()


def test_held_out_test_data_is_used_and_checked(tmp_path):
    """--test-data's digits replace the bundled ones; a file of the wrong shape is refused."""
    model = _tiny()
    x = torch.randn(20, 1, 28, 28)
    with torch.no_grad():
        y = model(x).argmax(1)  # the model's own answers: 100% on these
    np.savez(tmp_path / "held.npz", x=x.numpy(), y=y.numpy())
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 28, 28)), y=np.zeros(3))
    save_compressed(model, tmp_path / capstone.FILE)
    r, m = capstone.accuracy_budget.grade_file(tmp_path / capstone.FILE, {"test_data": str(tmp_path / "held.npz")})
    assert r.status == "passed" and m["accuracy"] == 1.0 and "20 of the held-out digits" in r.reason
    r, _ = capstone.accuracy_budget.grade_file(tmp_path / capstone.FILE, {"test_data": str(tmp_path / "bad.npz")})
    assert r.status == "failed" and "expected x (N, 1, 28, 28)" in r.reason


def test_grade_files_runs_in_a_process_of_its_own_and_survives_a_hostile_file(tmp_path):
    """grade_files gives every key a result; a pickle file runs nothing there either."""
    sentinel = tmp_path / "ran"
    (tmp_path / capstone.FILE).write_bytes(pickle.dumps(_RunsCode(sentinel)))
    out = filetasks.grade_files(KEYS + ["overview.linear_params"], tmp_path, seconds=120)
    assert all(out[k]["status"] == "failed" for k in KEYS) and not sentinel.exists()
    assert out["overview.linear_params"]["status"] == "error"
    assert "not a file task" in out["overview.linear_params"]["reason"]


def test_a_measure_must_be_ranked_max_or_min():
    """file_task refuses a measure that is neither maximized nor minimized."""
    with pytest.raises(ValueError, match="'max' or 'min'"):
        filetasks.file_task("capstone", file="f", measures={"accuracy": "high"})


def _release(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["nclib"] = {"chapter": "07_capstone"}
    nb.cells = [nbformat.v4.new_code_cell("import torch\nfrom nclib.course import check"),
                nbformat.v4.new_code_cell("# write submission.nclib here"),
                *[nbformat.v4.new_code_cell(f"check.{key}()") for key in KEYS]]
    path = folder / "07_capstone.ipynb"
    nbformat.write(nb, path)
    return path


def _submission(release: Path, folder: Path, code: str, name: str) -> Path:
    nb = nbformat.read(release, as_version=4)
    nb.cells[1].source = code
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


SAVE = ("from torch import nn\nfrom nclib.quant import save_compressed\ntorch.manual_seed(0)\n"
        "m = nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(144, 10))\n"
        "save_compressed(m.eval(), 'submission.nclib')")
FAKE = ("from IPython.display import display\nimport json\n" + SAVE + "\nclass Fake:\n"
        "    def __getattr__(self, name): return self\n"
        "    def __call__(self, *a):\n"
        "        for k in ('bytes_budget', 'latency_budget', 'accuracy_budget'):\n"
        "            display({'text/plain': 'pass', 'application/vnd.nclib.check+json': json.dumps("
        "{'task': 'capstone.' + k, 'points': 1, 'max_points': 1, 'status': 'passed', 'reason': ''})}, raw=True)\n"
        "import nclib.course\nnclib.course.check = Fake()")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("capstone")
    release, subs = _release(root), root / "subs"
    paths = [_submission(release, subs / "a", SAVE, "saves"),
             _submission(release, subs / "b", "pass", "writes_nothing"),
             _submission(release, subs / "c", FAKE, "fakes_results")]
    save_compressed(_tiny(), subs / "b" / capstone.FILE)  # a stale file the run did not write
    results = grade.grade(paths, jobs=2, release=release, limits=LIMITS)
    return {Path(r.submission).stem: r for r in results}


def test_the_grader_grades_the_written_file_not_the_kernels_report(graded):
    """The file a notebook wrote is graded by the grader: bytes pass, accuracy fails with its
    figure; a notebook that writes nothing is not attempted (a file left in its folder is not
    its run's); faked passes count for nothing."""
    saves = {t.task: t for t in graded["saves"].tasks}
    assert saves["capstone.bytes_budget"].status == "passed" and saves["capstone.bytes_budget"].measures["bytes"] > 0
    assert saves["capstone.accuracy_budget"].status == "failed" and "below the bar" in saves["capstone.accuracy_budget"].reason
    assert {t.status for t in graded["writes_nothing"].tasks} == {"not_attempted"}
    assert graded["writes_nothing"].score == 0
    fakes = {t.task: t for t in graded["fakes_results"].tasks}
    assert fakes["capstone.accuracy_budget"].status == "failed"
    assert graded["fakes_results"].score == graded["saves"].score


def _result(name, score, **measures):
    tasks = [TaskScore("capstone.accuracy_budget", 0, 1, "failed", "", {k: v for k, v in measures.items()})]
    return SubmissionResult(name, score, 3, tasks)


def test_the_leaderboard_ranks_by_score_then_the_declared_measures_and_shares_ties():
    """Score first, then accuracy (higher) and bytes (lower); a missing measure ranks last;
    equal results share a rank."""
    results = [_result("small", 2, accuracy=0.97, bytes=20_000), _result("big", 2, accuracy=0.97, bytes=90_000),
               _result("best", 3, accuracy=0.96, bytes=50_000), _result("twin", 2, accuracy=0.97, bytes=20_000),
               _result("missing", 2), _result("sharp", 2, accuracy=0.98, bytes=99_000)]
    rows = leaderboard.rank(results, capstone.MEASURES)
    assert [(r.rank, r.submission) for r in rows] == [(1, "best"), (2, "sharp"), (3, "small"), (3, "twin"),
                                                      (5, "big"), (6, "missing")]
    assert leaderboard.measure_order(results) == capstone.MEASURES  # read from the tasks themselves
    assert "leaderboard (top 3 of 6)" in leaderboard.render(rows, top=3)
    board = leaderboard.render([leaderboard.rank([_result("x", 1, bytes=10, latency_ratio=0.3, accuracy=0.9)])[0]])
    header = board.splitlines()[1].split()
    assert header[-3:] == ["accuracy", "bytes", "latency_ratio"]  # columns in the order they rank


def test_the_command_writes_the_leaderboard_and_refuses_missing_test_data(graded, tmp_path, capsys):
    """--leaderboard writes one ranked row per submission; a missing --test-data is an error."""
    folder = Path(graded["saves"].submission).parent
    board = tmp_path / "board.csv"
    assert cli.main(["grade", str(folder), "--release", str(folder.parents[1] / "07_capstone.ipynb"),
                     "--leaderboard", str(board), "--timeout", "120"]) == 0
    rows = list(csv.DictReader(board.open()))
    assert [r["rank"] for r in rows] == ["1"] and rows[0]["bytes"] and "leaderboard" in capsys.readouterr().out
    assert cli.main(["grade", str(folder), "--test-data", str(tmp_path / "none.npz")]) == 2
