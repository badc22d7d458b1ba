"""Task.grade refuses nclib's own functions and classes as answers, and nothing else."""
import functools

import pytest
import torch

from nclib import models
from nclib.arch.separable import DepthwiseSeparableConv
from nclib.course import check, checking
from nclib.pruning.magnitude import MagnitudePruner, magnitude_mask


def my_magnitude_mask(weight, sparsity):
    # A student's own answer, written in the notebook (here: in this test module).
    k = round(sparsity * weight.numel())
    order = weight.abs().flatten().argsort()
    mask = torch.ones(weight.numel(), dtype=torch.bool)
    mask[order[:k]] = False
    return mask.view(weight.shape)


@pytest.fixture
def anything():
    """A task that accepts any answer it is given."""
    def accepts_anything(student):
        return "ok"

    t = checking.task("qtest", points=1)(accepts_anything)
    yield t
    checking.TASKS.pop(t.key, None)


def test_nclib_reference_is_refused_by_name():
    """Handing in nclib.pruning.magnitude.magnitude_mask itself fails, naming it."""
    r = check.pruning.magnitude_mask.grade(magnitude_mask)
    assert (r.status, r.points) == ("failed", 0)
    assert "that is nclib's own `nclib.pruning.magnitude.magnitude_mask`" in r.reason
    assert "write your own function" in r.reason


def test_the_refusal_shows_in_the_verdict(capsys):
    """Called as in a notebook, the refusal prints a FAIL verdict with the message."""
    r = check.pruning.magnitude_mask(magnitude_mask)
    out = capsys.readouterr().out
    assert r.status == "failed" and "[FAIL] pruning.magnitude_mask" in out and "nclib's own" in out


def test_partials_classes_and_methods_from_nclib_are_refused(anything):
    """A functools.partial of an nclib function, an nclib class and an nclib method all fail."""
    cases = {functools.partial(magnitude_mask, sparsity=0.5): "magnitude_mask`; write your own function",
             functools.partial(functools.partial(magnitude_mask), sparsity=0.5): "magnitude_mask`",
             DepthwiseSeparableConv: "DepthwiseSeparableConv`; write your own class",
             MagnitudePruner(0.5).compute_mask: "MagnitudePruner.compute_mask`",
             models.LeNet300100().forward: "LeNet300100.forward`"}
    for answer, message in cases.items():
        r = anything.grade(answer)
        assert r.status == "failed" and message in r.reason, r.reason


def test_students_own_function_still_passes():
    """A student's own correct function passes as before."""
    r = check.pruning.magnitude_mask.grade(my_magnitude_mask)
    assert (r.status, r.points) == ("passed", 1), r.reason


def test_instances_and_plain_values_are_not_refused(anything):
    """A model built from an nclib class, a torch layer, a number and a student's lambda reach the check."""
    for answer in (models.LeNet300100(), torch.nn.Linear(2, 3), 0.5, "b", lambda: 1, torch.abs):
        assert anything.grade(answer).status == "passed", answer


def test_the_chapters_own_reference_passes():
    """The reference in the chapter's own checks (what the chapter tests hand in) is not refused."""
    from nclib.chapters.pruning import checks

    assert check.pruning.magnitude_mask.grade(checks.ref_magnitude_mask).status == "passed"


def test_another_chapters_code_is_refused():
    """A reference from another chapter's checks is nclib's code like any other."""
    from nclib.chapters.overview import checks as overview

    r = check.pruning.magnitude_mask.grade(overview.ref_linear_params)
    assert r.status == "failed" and "nclib.chapters.overview.checks" in r.reason
