"""Self-checking exercises: tasks, results and the `check` namespace.

In a notebook::

    from nclib.course import check
    check.overview.linear_params(linear_params)

A check runs the student's object against nclib's reference on fixed, random (seeded) and
edge cases, prints one short verdict and returns a `Result`. It never raises: a stub that
still raises `NotImplementedError` is "not attempted", a wrong answer is "failed" with the
input, the expected and the received value and a hint, and an exception from the student's
code is "error" with its message. Handing in nclib's own function or class (say
`nclib.pruning.magnitude.magnitude_mask` itself) is "failed": write your own. Objects built
from nclib classes (a model instance) and plain values are fine, and so is the chapter's own
code (``nclib.chapters.<chapter>``): its references, which the chapter tests hand in to
show that a check passes.

For the autograder the verdict is also sent as a display bundle with the MIME type
`RESULT_MIME`; the grader reads it only from the check cells it put there itself.

Writing a check (one per exercise task, in ``nclib/chapters/<chapter>/checks.py``)::

    @task("overview", points=1, hint="A Linear layer has a weight matrix and a bias.")
    def linear_params(student):
        for args in [(3, 4, True), (784, 300, False)]:
            expect(student, reference, args)
"""
from __future__ import annotations

import functools
import inspect
import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

from nclib.course import discover

__all__ = ["task", "expect", "call", "Text", "Mismatch", "Failure", "StudentError", "Result", "TASKS",
           "RESULT_MIME", "STATUSES", "close", "describe", "nclib_origin", "check"]

RESULT_MIME = "application/vnd.nclib.check+json"
STATUSES = ("passed", "failed", "not_attempted", "error", "timeout")
TASKS: dict[str, "Task"] = {}  # "chapter.name" -> Task


@dataclass(frozen=True)
class Result:
    """What a check found; the grader turns these into points."""

    task: str
    points: float
    max_points: float
    status: str
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)

    def verdict(self) -> str:
        mark = {"passed": "PASS", "failed": "FAIL", "not_attempted": "TODO", "error": "ERROR"}
        head = f"[{mark.get(self.status, self.status.upper())}] {self.task}"
        if self.status == "passed":
            return f"{head}: {self.points:g}/{self.max_points:g} point(s). {self.reason}".rstrip()
        return f"{head} ({self.points:g}/{self.max_points:g}): {self.reason}"

    def __repr__(self) -> str:
        return self.verdict()

    def _ipython_display_(self) -> None:
        # A check shows its verdict when it runs; the returned Result, as a cell's last
        # expression, must not show it a second time.
        if not getattr(self, "_shown", False):
            _show(self)


class Mismatch(Exception):
    """Raised inside a check when the student's answer differs from the reference."""

    def __init__(self, inputs: str, expected: Any, got: Any, hint: str = ""):
        super().__init__(inputs)
        self.inputs, self.expected, self.got, self.hint = inputs, expected, got, hint


class Failure(Exception):
    """Raised inside a check with the whole 'failed' verdict, for an answer with no input to
    show (a concept question's answer, say)."""


class StudentError(Exception):
    """The student's code raised while a check called it."""

    def __init__(self, inputs: str, error: BaseException):
        super().__init__(inputs)
        self.inputs, self.error = inputs, error


class Text(str):
    """A description shown as it is in a verdict (a plain str would be shown quoted)."""

    def __repr__(self) -> str:
        return str(self)


def call(fn: Callable, shown: str, *args, **kwargs) -> Any:
    """Call the student's code; its exceptions become an 'error' verdict naming the input."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as e:
        raise StudentError(shown, e) from e


def nclib_origin(obj: Any) -> tuple[str, str, str] | None:
    """(module, qualified name, "function" or "class") when `obj` is a function, class or
    method defined in nclib, or a functools.partial of one; None for anything else, instances
    of nclib classes included."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    if not (inspect.isroutine(obj) or inspect.isclass(obj)):
        return None
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("nclib."):
        return None
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    return module, name, "class" if inspect.isclass(obj) else "function"


def describe(value: Any, limit: int = 120) -> str:
    """A short, readable rendering of a value for a verdict."""
    try:
        import torch

        if torch.is_tensor(value):
            text = (f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
                    if value.numel() > 8 else f"tensor({value.tolist()})")
            return text
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def close(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """Equality that tolerates float rounding, for numbers, tensors, arrays and sequences."""
    import numpy as np
    import torch

    if torch.is_tensor(a) or torch.is_tensor(b):
        if not (torch.is_tensor(a) and torch.is_tensor(b)) or a.shape != b.shape:
            return False
        if a.dtype == torch.bool or b.dtype == torch.bool:
            return a.dtype == b.dtype and bool(torch.equal(a, b))
        return bool(torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, rtol, atol) for x, y in zip(a, b))
    return a == b


def expect(student: Callable, reference: Callable, args: tuple = (), kwargs: dict | None = None,
           compare: Callable[[Any, Any], bool] = close, hint: str = "") -> Any:
    """Call both with the same arguments; raise `Mismatch` when the results differ."""
    kwargs = kwargs or {}
    shown = ", ".join([describe(a, 40) for a in args] + [f"{k}={describe(v, 40)}" for k, v in kwargs.items()])
    expected = reference(*args, **kwargs)
    try:
        got = student(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as e:  # the student's code failed: report it, do not crash
        raise StudentError(f"({shown})", e) from e
    if not compare(got, expected):
        raise Mismatch(f"({shown})", expected, got, hint)
    return got


@dataclass
class Task:
    chapter: str
    name: str
    points: float
    hint: str
    run: Callable[[Any], str | None]

    @property
    def key(self) -> str:
        return f"{self.chapter}.{self.name}"

    def grade(self, student: Any) -> Result:
        """Run the check and return a `Result`, whatever the student's object does."""
        if student is None or student is Ellipsis:
            return Result(self.key, 0, self.points, "not_attempted",
                          "nothing to check yet: write your answer above and run its cell.")
        try:
            origin = nclib_origin(student)
            own = f"{discover.PACKAGE}.{self.chapter}."  # the chapter's references pass
            if origin is not None and not origin[0].startswith(own):
                module, name, kind = origin
                raise Failure(f"that is nclib's own `{module}.{name}`; write your own {kind}.")
            note = self.run(student)
        except NotImplementedError:
            return Result(self.key, 0, self.points, "not_attempted",
                          "still the stub: replace `raise NotImplementedError` with your code.")
        except Mismatch as m:
            hint = m.hint or self.hint
            return Result(self.key, 0, self.points, "failed",
                          f"for input {m.inputs} expected {describe(m.expected)}, got "
                          f"{describe(m.got)}." + (f" Hint: {hint}" if hint else ""))
        except Failure as f:
            return Result(self.key, 0, self.points, "failed", str(f))
        except StudentError as s:
            e = s.error
            return Result(self.key, 0, self.points, "error",
                          f"your code raised {type(e).__name__}: {e} (input {s.inputs}).")
        except Exception as e:  # anything else: the check still must not crash the notebook
            return Result(self.key, 0, self.points, "error",
                          f"checking raised {type(e).__name__}: {e}")
        return Result(self.key, self.points, self.points, "passed", note or "")

    def __call__(self, student: Any) -> Result:
        result = self.grade(student)
        _show(result)
        object.__setattr__(result, "_shown", True)
        return result


def _show(result: Result) -> None:
    """Show the verdict; in IPython also attach the machine-readable result for the grader."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - ipykernel is a dependency
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display({"text/plain": result.verdict(), RESULT_MIME: json.dumps(result.as_dict())},
                raw=True)
    else:
        print(result.verdict())


def task(chapter: str, points: float = 1, hint: str = "") -> Callable[[Callable], Task]:
    """Register a check. The decorated function raises `Mismatch` (via `expect`) on a wrong
    answer and may return a short note shown on success."""
    def wrap(fn: Callable) -> Task:
        t = Task(chapter, fn.__name__, points, hint, fn)
        t.__doc__ = fn.__doc__
        TASKS[t.key] = t
        return t
    return wrap


class _Chapters:
    """`check.<chapter>`: that chapter's checks module, imported on first use."""

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        module = discover.chapter_part(name, "checks")
        if module is None:
            have = [c for c in discover.chapter_names() if discover.chapter_part(c, "checks")]
            raise AttributeError(f"nclib.course.check has no chapter {name!r}; "
                                 f"chapters: {', '.join(have)}")
        return module

    def __dir__(self) -> list[str]:
        return discover.chapter_names()

    def __repr__(self) -> str:
        return "<nclib.course.check: check.<chapter>.<task>(answer)>"


check = _Chapters()
