"""Concept questions: graded like any task, answers stored only as salted hashes."""
import inspect
import json
from pathlib import Path

import pytest

from nclib.course import checking, questions
from nclib.course.questions import answer_hash, choice, number, number_hash

# The hashes below come from `python -m nclib.course.questions KEY ANSWER [--tolerance T]`.
HABITAT_HASH = "6662cc5915e1d0632f420196f18340edf5037951baaafe6c33b1231d2e45c3d9"
FRACTION_HASH = "afb2220fa856df108e96fc8ff459621dd2f8965e81c0d207e28014b123a6b4eb"
SPEEDUP_HASH = "32b09ce1b458449514d93128cf5c244e04e6f45adec0c239f84a47d7d2798f4c"
EXPLAIN = "Only one of them lives on Rottnest Island."


def _register_questions():
    # What a chapter's checks.py would write: the right answers appear only as hashes.
    habitat = choice("qtest", "habitat", points=2, answer_hash=HABITAT_HASH,
                     options={"wombat": "digs burrows", "quokka": "smiles for selfies",
                              "kiwi": "cannot fly"},
                     explanation=EXPLAIN, hint="Think of Western Australia.")
    fraction = number("qtest", "fraction", points=3, answer_hash=FRACTION_HASH, tolerance=0.01,
                      explanation="Most MACs sit in the first layer.", hint="Divide, then check.")
    speedup = number("qtest", "speedup", answer_hash=SPEEDUP_HASH, tolerance=0.05, relative=True,
                     explanation="A speed-up is a ratio, so its tolerance is relative.")
    return habitat, fraction, speedup


@pytest.fixture(scope="module")
def asked():
    """The three test questions, registered for this module only."""
    tasks = _register_questions()
    yield tasks
    for t in tasks:
        checking.TASKS.pop(t.key, None)


def test_questions_are_registered_tasks(asked):
    """A question is a checking.Task in TASKS under "chapter.name", with its points."""
    habitat, fraction, speedup = asked
    assert all(isinstance(t, checking.Task) for t in asked)
    assert checking.TASKS["qtest.habitat"] is habitat and habitat.points == 2
    assert checking.TASKS["qtest.fraction"] is fraction and fraction.points == 3
    assert checking.TASKS["qtest.speedup"] is speedup and speedup.points == 1


def test_right_answers_pass_with_points_and_explanation(asked):
    """The right option (any case, spaces around) and a right number pass with full points."""
    habitat, fraction, speedup = asked
    for answer in ("quokka", "  QuOkKa \n"):
        r = habitat.grade(answer)
        assert (r.status, r.points, r.max_points) == ("passed", 2, 2) and EXPLAIN in r.reason
    r = fraction.grade(0.7315)
    assert (r.status, r.points, r.max_points) == ("passed", 3, 3)
    assert "Most MACs sit in the first layer." in r.reason
    assert speedup.grade(271828).status == "passed"


def test_wrong_answers_fail_with_not_the_answer_and_the_explanation(asked):
    """A wrong option or number fails with 0 points, 'not <answer>', the explanation and the hint."""
    habitat, fraction, _ = asked
    r = habitat.grade("kiwi")
    assert (r.status, r.points) == ("failed", 0)
    assert "not 'kiwi'" in r.reason and EXPLAIN in r.reason and "Western Australia" in r.reason
    r = fraction.grade(0.5)
    assert (r.status, r.points) == ("failed", 0)
    assert "not 0.5" in r.reason and "Most MACs sit in the first layer." in r.reason


def test_unknown_option_fails_listing_the_options(asked):
    """A key that is not an option fails and names every option."""
    r = asked[0].grade("emu")
    assert r.status == "failed" and "'emu' is not an option" in r.reason
    assert all(repr(k) in r.reason for k in ("wombat", "quokka", "kiwi"))


def test_non_answers_fail_clearly(asked):
    """A choice answered with a non-string, or a number with text, a bool or nan, fails saying what to give."""
    habitat, fraction, _ = asked
    assert habitat.grade(1).status == "failed" and "as a string" in habitat.grade(1).reason
    for bad in ("0.7315", True, float("nan"), [0.7315]):
        r = fraction.grade(bad)
        assert r.status == "failed" and "answer with one number" in r.reason, bad


def test_absolute_tolerance_edges(asked):
    """Absolute 0.01: both edges pass, 2/1000 of the tolerance beyond either edge fails."""
    fraction = asked[1]
    for inside in (0.7315 - 0.01, 0.7215 + 1e-9, 0.7315 + 0.0099999, 0.7315 + 0.01, 0.73):
        assert fraction.grade(inside).status == "passed", inside
    for outside in (0.7315 - 0.01002, 0.7315 + 0.01002, 0.7, -0.7315):
        assert fraction.grade(outside).status == "failed", outside


def test_relative_tolerance_edges(asked):
    """Relative 5%: both edges pass, 2/1000 of the tolerance beyond either edge fails, and so does 0."""
    speedup = asked[2]
    for inside in (271828 * 0.95, 271828 * 1.05, 271828 * 1.0499, 260000):
        assert speedup.grade(inside).status == "passed", inside
    for outside in (271828 * (1 - 0.05 * 1.002), 271828 * (1 + 0.05 * 1.002), -271828, 0):
        assert speedup.grade(outside).status == "failed", outside


def test_tensor_and_numpy_numbers_are_numbers(asked):
    """A 0-d tensor or a numpy scalar is graded as the number it holds."""
    import numpy as np
    import torch

    assert asked[1].grade(torch.tensor(0.7315)).status == "passed"
    assert asked[1].grade(np.float64(0.7315)).status == "passed"


def test_none_and_ellipsis_are_not_attempted(asked):
    """None and ... are 'not attempted' with 0 points, for both kinds."""
    for question in asked:
        for answer in (None, ...):
            r = question.grade(answer)
            assert (r.status, r.points) == ("not_attempted", 0)


def test_answers_are_not_in_the_source_only_their_hashes(asked):
    """Neither questions.py nor a registration holds the right answer as text; the hashes match it."""
    registration = inspect.getsource(_register_questions)
    module = Path(questions.__file__).read_text()
    for text in ("0.7315", "7315", "271828", "2718"):
        assert text not in registration and text not in module, text
    assert registration.count("quokka") == 1  # only as one of the options, never as the answer
    assert "quokka" not in module
    assert answer_hash("qtest.habitat", "Quokka") == HABITAT_HASH  # what the hashes stand for
    assert number_hash("qtest.fraction", 0.7315, 0.01) == FRACTION_HASH
    assert number_hash("qtest.speedup", 271828, 0.05, relative=True) == SPEEDUP_HASH
    held = [c.cell_contents for t in asked for c in t.run.__closure__ or ()]
    assert not any(isinstance(v, (int, float)) and v in (0.7315, 271828) for v in held)


def test_a_wrong_hash_or_options_are_refused_when_registering():
    """A hash that matches no option, a malformed hash or a bad tolerance raise ValueError at import time."""
    options = {"a": "one", "b": "two"}
    with pytest.raises(ValueError, match="matches none of the options"):
        choice("qtest", "bad", options=options, answer_hash=answer_hash("qtest.bad", "c"),
               explanation="x")
    with pytest.raises(ValueError, match="64 lower-case hex"):
        choice("qtest", "bad", options=options, answer_hash="b", explanation="x")
    with pytest.raises(ValueError, match="differ"):
        choice("qtest", "bad", options={"a": "one", " A": "two"},
               answer_hash=answer_hash("qtest.bad", "a"), explanation="x")
    with pytest.raises(ValueError, match="< 1 when relative"):
        number("qtest", "bad", answer_hash=FRACTION_HASH, tolerance=1.5, relative=True,
               explanation="x")
    assert "qtest.bad" not in checking.TASKS


def test_display_bundle_carries_the_result(asked, monkeypatch):
    """Called in IPython, a question displays RESULT_MIME with its Result, as code tasks do."""
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append(data))
    r = asked[0]("quokka")
    assert len(shown) == 1 and shown[0]["text/plain"] == r.verdict()
    assert json.loads(shown[0][checking.RESULT_MIME]) == r.as_dict()
    assert r.as_dict()["task"] == "qtest.habitat" and r.as_dict()["status"] == "passed"


def test_author_command_prints_the_hash(capsys):
    """`python -m nclib.course.questions KEY ANSWER [--tolerance T]` prints the answer_hash to paste."""
    questions.main(["qtest.habitat", "quokka"])
    assert f'answer_hash="{HABITAT_HASH}"' in capsys.readouterr().out
    questions.main(["qtest.speedup", "271828", "--tolerance", "0.05", "--relative"])
    assert f'answer_hash="{SPEEDUP_HASH}", tolerance=0.05, relative=True' in capsys.readouterr().out
