"""Every solution notebook grades full marks; every exercise as released grades 0, with
every task 'not attempted' and no crash. (nbval runs lectures/ and solutions/ separately.)"""
from pathlib import Path

import pytest

from nclib.course import grade, report, sandbox

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def graded():
    results = grade.grade(SOLUTIONS + EXERCISES, jobs=2, release=ROOT / "exercises",
                          limits=sandbox.Limits(cell_seconds=120, total_seconds=300))
    return {r.submission: r for r in results}


def test_every_chapter_has_solution_and_exercise():
    """solutions/ and exercises/ hold the same chapters, each with at least one check."""
    assert SOLUTIONS and [p.name for p in SOLUTIONS] == [p.name for p in EXERCISES]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_gets_full_marks(graded, path):
    """The solution passes every task it is graded on."""
    r = graded[str(path)]
    assert r.max_score > 0 and r.score == r.max_score, report.render([r])
    assert r.error is None, r.error


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_released_exercise_gets_zero_not_attempted(graded, path):
    """The exercise as released scores 0, every task 'not attempted', and runs to the end."""
    r = graded[str(path)]
    assert r.max_score > 0 and r.score == 0
    assert {t.status for t in r.tasks} == {"not_attempted"}, report.render([r])
    assert r.error is None, r.error
