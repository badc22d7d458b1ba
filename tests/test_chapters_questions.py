"""Every chapter's concept questions: the right answer passes, two wrong answers fail with the
explanation, an empty answer is not attempted, and no accepted answer is in the source as text."""
import ast
from pathlib import Path

import pytest

from nclib.course import check, discover, questions

# (task key, right answer, two wrong answers)
QUESTIONS = [
    ("overview.fp32_megabytes", 100, (25, 800)),
    ("overview.dram_vs_multiply", 173, (640, 17)),
    ("pruning.filter_macs_removed", 0.51, (0.3, 0.09)),
    ("pruning.masked_no_faster", "b", ("a", "c")),
    ("distillation.why_t_squared", "c", ("a", "b")),
    ("distillation.mean_vs_batchmean", 10, (1, 64)),
    ("quantization.why_linear_init", "b", ("a", "c")),
    ("quantization.zero_point_uint8", 64, (63.75, 191)),
    ("architecture.lowrank_weights", 22764, (235200, 1084)),
    ("architecture.separable_short_of_macs", "a", ("b", "c")),
]


def _task(key):
    chapter, name = key.split(".")
    return getattr(getattr(check, chapter), name)


@pytest.mark.parametrize("key, right, wrong", QUESTIONS, ids=[q[0] for q in QUESTIONS])
def test_question_grades_right_wrong_and_empty(key, right, wrong):
    """Right: passed with its points and the explanation; wrong: failed, 'not X' and the explanation."""
    task = _task(key)
    passed = task.grade(right)
    assert (passed.status, passed.points) == ("passed", task.points) and len(passed.reason) > 40
    explanation = passed.reason.split("is right. ", 1)[1]
    for answer in wrong:
        failed = task.grade(answer)
        assert failed.status == "failed" and failed.points == 0
        assert f"not {answer!r}" in failed.reason or f"not {answer}" in failed.reason
        assert explanation in failed.reason
    assert task.grade(...).status == "not_attempted"


def _registration(key):
    """The source text of the statement that registers question `key` in its chapter's checks."""
    chapter, name = key.split(".")
    path = Path(discover.chapter_part(chapter, "checks").__file__)
    for f in sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]:
        text = f.read_text()
        for node in ast.parse(text).body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
                return ast.get_source_segment(text, node)
    raise AssertionError(f"no registration of {key}")


@pytest.mark.parametrize("key, right, wrong", QUESTIONS, ids=[q[0] for q in QUESTIONS])
def test_accepted_answer_is_not_in_the_source(key, right, wrong):
    """The registration holds the answer's salted hash; a number answer never appears in it as text."""
    source = _registration(key)
    assert "answer_hash=" in source
    if isinstance(right, str):
        assert questions.answer_hash(key, right) in source
    else:
        assert str(right) not in source and f"{right:,}" not in source
