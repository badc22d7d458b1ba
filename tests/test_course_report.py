"""Grading reports: the terminal table, the JSON schema and the CSV layout."""
import csv
import json

from nclib.course.report import SubmissionResult, TaskScore, render, write_csv, write_json

RESULTS = [
    SubmissionResult("a.ipynb", 1, 2, [TaskScore("ch.one", 1, 1, "passed", ""),
                                       TaskScore("ch.two", 0, 1, "failed", "expected 3, got 4")],
                     seconds=1.25),
    SubmissionResult("b.ipynb", 0, 1, [TaskScore("ch.three", 0, 1, "timeout", "too slow")],
                     error="cell 2 ran past the 8 s cell limit", release="0.1.0"),
]
OLDER = SubmissionResult("c.ipynb", 1, 1, [TaskScore("ch.one", 1, 1, "passed", ""),
                                           TaskScore("ch.two", 0, 0, "not_in_release", "not in release 0.0.9")],
                         release="0.0.9")


def test_render_shows_each_task_and_flags_problems():
    """The table has one line per task with points and reason, a problem line, and (!) in the summary."""
    text = render(RESULTS)
    assert "a.ipynb: 1/2  (1.2 s)" in text
    assert any(line.split()[:3] == ["ch.two", "0/1", "failed"] and line.endswith("expected 3, got 4")
               for line in text.splitlines())
    assert "  problem: cell 2 ran past the 8 s cell limit" in text
    summary = text.split("\n\n")[-1].splitlines()
    assert summary[1].split() == ["a.ipynb", "1/2"] and summary[2].split() == ["b.ipynb", "0/1", "(!)"]


def test_json_has_the_documented_schema(tmp_path):
    """JSON: a list of {submission, score, max_score, release, tasks, error}; seconds is left out."""
    write_json(RESULTS, tmp_path / "g.json")
    data = json.loads((tmp_path / "g.json").read_text())
    assert [set(d) for d in data] == [{"submission", "score", "max_score", "release", "tasks", "error"}] * 2
    assert data[0]["release"] is None and data[1]["release"] == "0.1.0"
    assert data[0]["tasks"][1] == {"task": "ch.two", "points": 0, "max_points": 1, "status": "failed",
                                   "reason": "expected 3, got 4", "measures": {}}
    assert data[1]["error"] == "cell 2 ran past the 8 s cell limit" and data[0]["error"] is None


def test_csv_has_a_column_pair_per_task_of_any_submission(tmp_path):
    """CSV: one row per submission with its release, points and status for every task seen, blank where
    a submission lacks it."""
    write_csv(RESULTS, tmp_path / "g.csv")
    rows = list(csv.reader((tmp_path / "g.csv").open()))
    assert rows[0] == ["submission", "score", "max_score", "error", "release", "ch.one points", "ch.one status",
                       "ch.two points", "ch.two status", "ch.three points", "ch.three status"]
    assert rows[1] == ["a.ipynb", "1", "2", "", "", "1", "passed", "0", "failed", "", ""]
    assert rows[2] == ["b.ipynb", "0", "1", "cell 2 ran past the 8 s cell limit", "0.1.0",
                       "", "", "", "", "0", "timeout"]


def test_render_says_what_an_older_release_is_graded_on():
    """A submission with tasks not in its release gets a line naming its release and the counts;
    its summary row names the release; a current one gets neither."""
    text = render([OLDER] + RESULTS)
    lines = text.splitlines()
    assert lines[:2] == ["c.ipynb: 1/1  (0.0 s)", "  graded on the 1 task of release 0.0.9; "
                         "1 task of the current release is not in it and not counted"]
    assert any(line.split()[:3] == ["ch.two", "0/0", "not_in_release"] for line in lines)
    assert text.count("graded on the") == 1
    summary = text.split("\n\n")[-1].splitlines()
    assert summary[1].split() == ["c.ipynb", "1/1", "(release", "0.0.9)"]
    assert summary[3].split() == ["b.ipynb", "0/1", "(!)"]
    many = SubmissionResult("d.ipynb", 0, 2, [TaskScore(f"ch.{i}", 0, 0 if i < 2 else 1,
                                                        "not_in_release" if i < 2 else "failed", "")
                                              for i in range(4)], release="0.0.1")
    assert "graded on the 2 tasks of release 0.0.1; 2 tasks of the current release are not in it" \
        in render([many])
