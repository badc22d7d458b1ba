"""Checks of chapter 00: pass on the reference, fail with the right message on wrong answers."""
import pytest

from nclib.course import check
from nclib.chapters.overview import checks as overview


def _stub(*args, **kwargs):
    raise NotImplementedError


CASES = {
    "linear_params": (overview.ref_linear_params, [
        (lambda i, o, bias=True: i * o, "expected 235500, got 235200"),        # forgot the bias
        (lambda i, o, bias=True: (i + 1) * o + o, "expected"),                # counted a bias twice
    ]),
    "linear_macs": (overview.ref_linear_macs, [
        (lambda i, o: i * o + o, "got 235500"),                              # counted the bias add
        (lambda i, o: i + o, "expected 235200, got 1084"),
    ]),
    "conv2d_params": (overview.ref_conv2d_params, [
        (lambda ci, co, k, groups=1, bias=True: co * ci * k * k + (co if bias else 0), "(8, 8, 3, groups=8"),
        (lambda ci, co, k, groups=1, bias=True: co * (ci // groups) * k * k, "expected 520, got 500"),
    ]),
    "conv2d_macs": (overview.ref_conv2d_macs, [
        (lambda ci, co, k, h, w, groups=1: co * (ci // groups) * k * k, "expected"),   # forgot H x W
        (lambda ci, co, k, h, w, groups=1: co * ci * k * k * h * w, "groups=8"),       # ignored groups
    ]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reference_passes(name, capsys):
    """The reference solution gets full points and a PASS verdict."""
    r = getattr(check.overview, name)(CASES[name][0])
    assert (r.status, r.points, r.max_points) == ("passed", 1, 1)
    assert "[PASS]" in capsys.readouterr().out


@pytest.mark.parametrize("name, wrong, message",
                         [(n, w, m) for n, (_, bad) in CASES.items() for w, m in bad])
def test_wrong_versions_fail_with_input_expected_got_and_hint(name, wrong, message):
    """A wrong formula fails, naming the input, the expected and received value, and a hint."""
    r = getattr(check.overview, name).grade(wrong)
    assert r.status == "failed" and r.points == 0
    assert message in r.reason and "for input" in r.reason and "Hint:" in r.reason


@pytest.mark.parametrize("name", list(CASES))
def test_stub_and_missing_answer_are_not_attempted(name):
    """The released stub (NotImplementedError), None and ... are 'not attempted', not failures."""
    task = getattr(check.overview, name)
    for student in (_stub, None, ...):
        r = task.grade(student)
        assert r.status == "not_attempted" and r.points == 0


def test_student_exception_is_reported_not_raised():
    """An exception in the student's code becomes an 'error' verdict with its message."""
    r = check.overview.linear_params.grade(lambda i, o, bias=True: i / 0)
    assert r.status == "error" and "ZeroDivisionError" in r.reason and "input" in r.reason
    r = check.overview.linear_params.grade(42)  # not even a function
    assert r.status == "error" and "not callable" in r.reason


def test_unknown_chapter_is_a_clear_error():
    """check.<unknown> names the chapters there are."""
    with pytest.raises(AttributeError, match="overview"):
        check.no_such_chapter
