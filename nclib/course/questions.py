"""Concept questions: multiple choice and numbers, graded like every other task.

A chapter declares its questions in its ``checks.py``, beside its code tasks::

    from nclib.course.questions import choice, number

    why_no_faster = choice(
        "pruning", "why_no_faster",
        options={"a": "the mask is applied twice", "b": "the zeros are still multiplied",
                 "c": "the optimizer has more state"},
        answer_hash="<from the command below>",
        explanation="A mask keeps every dense shape, so the zeros are still multiplied.")
    macs_fraction = number(
        "pruning", "macs_fraction", tolerance=0.05, answer_hash="<from the command below>",
        explanation="...", hint="...")

A question is a `checking.Task` (key "chapter.name", its points, the same `Result`, verdict
and display bundle), so ``check.pruning.why_no_faster("b")`` works in a notebook and the
grader scores it like a code task. In an exercise the answer goes in a cell of its own,
because the grader puts the released check cells back::

    why_no_faster = "b"                          # the student's cell
    check.pruning.why_no_faster(why_no_faster)   # the check cell

Grading:

* choice: the answer is one option key, a str; case and surrounding spaces are ignored.
  A key that is not an option fails, naming the options.
* number: an int or a float (a one-element tensor or numpy scalar too); bools, strings,
  nan and inf fail. `tolerance` is absolute, ``|x - v| <= tolerance``, or with
  ``relative=True`` relative, ``|x - v| <= tolerance * |v|`` (then 0 < tolerance < 1).
* None or ``...`` is "not attempted".
* The one-sentence explanation is shown after ANY answer: after "right" on a pass, after
  "not <answer>" (and the hint) on a fail. Holding it back would protect nothing (a choice
  question can be answered by trying each option, and the grader counts only the last run)
  and would only hold back the lesson from the students who need it most.

Hashing: the source holds no accepted answer as text, only ``answer_hash``, the hex
sha256 of ``SALT + key + "\\n" + normalized answer``. SALT is public: this keeps the answer
out of sight of a student reading the checks; it is not a secret, and not meant to be.

* choice: the normalized answer is the option key, stripped and lower-cased.
* number: a hash cannot test a range, so the answer is put on a grid. With coordinate
  ``c(x) = x`` (absolute) or ``c(x) = ln|x|`` (relative, the sign hashed beside it), the
  accepted interval ``[a, b]`` of c is ``2 * GRID`` steps of ``s = (b - a) / (2 * GRID)``
  wide (GRID = 1000); s depends on the tolerance only. The hashed text of a grid point is
  its sign (relative only), its index and the grid ("absolute 0.05"). The question stores
  the hash of the lowest accepted point, ``round(a / s)``, and accepts x when x's point
  ``i = round(c(x) / s)`` is at most 2 * GRID above it: one of ``i, i - 1, ..., i - 2 * GRID``
  has that hash (2001 hashes, about 2 ms). Precision: every answer within the tolerance
  passes, both edges included (up to float rounding exactly at an edge); every answer more
  than one step beyond it fails; within one step outside (tolerance / 1000 when absolute, about tolerance * |v| / 1000 when relative)
  it depends on where the grid falls.

Computing a hash for a new question (or call `answer_hash` / `number_hash`)::

    python -m nclib.course.questions pruning.why_no_faster b
    python -m nclib.course.questions pruning.macs_fraction 0.51 --tolerance 0.05 [--relative]
"""
from __future__ import annotations

import argparse
import hashlib
import math
import numbers
import re
from typing import Any

from nclib.course.checking import Failure, Task, describe, task

__all__ = ["choice", "number", "answer_hash", "number_hash", "SALT", "GRID", "main"]

SALT = "nclib.course.questions/v1:"  # public; it only keeps answers out of plain sight
GRID = 1000  # grid steps per tolerance: an accepted interval is 2 * GRID steps wide
HEX = re.compile(r"[0-9a-f]{64}")


def _digest(key: str, text: str) -> str:
    return hashlib.sha256(f"{SALT}{key}\n{text}".encode()).hexdigest()


def _normalize(option: str) -> str:
    return option.strip().lower()


def answer_hash(key: str, answer: str) -> str:
    """The `answer_hash` of a multiple-choice question "chapter.name" whose answer is `answer`."""
    return _digest(key, _normalize(answer))


# ---------------------------------------------------------------- numbers on a grid
def _grid(tolerance: float, relative: bool) -> tuple[float, str]:
    """(step s, name): the accepted interval [a, b] of c(x) is 2 * GRID steps s wide. The name
    goes into the hashed text; it holds the tolerance as written, not s, whose last bit may
    differ between platforms' logarithms."""
    if not tolerance > 0 or (relative and not tolerance < 1):
        raise ValueError(f"tolerance must be > 0{' and < 1 when relative' if relative else ''}, "
                         f"got {tolerance!r}")
    width = math.log((1 + tolerance) / (1 - tolerance)) if relative else 2 * tolerance
    return width / (2 * GRID), f"{'relative' if relative else 'absolute'} {tolerance!r}"


def _point(sign: str, index: int, grid: str) -> str:
    """The hashed text of a grid point: its sign (relative only), its index and the grid."""
    return f"{sign}{index} on {grid}"


def _coordinate(x: float, relative: bool) -> tuple[float, str] | None:
    """(c(x), sign); None for 0 under a relative tolerance (it is never accepted)."""
    if not relative:
        return x, ""
    return (math.log(abs(x)), "-" if x < 0 else "+") if x != 0 else None


def number_hash(key: str, value: float, tolerance: float, relative: bool = False) -> str:
    """The `answer_hash` of a number question "chapter.name" whose right answer is `value`:
    the hash of the lowest grid point of the accepted interval."""
    step, grid = _grid(tolerance, relative)
    located = _coordinate(value, relative)
    if located is None:
        raise ValueError("a relative tolerance around 0 accepts nothing; use an absolute one")
    c, sign = located
    a = c + math.log(1 - tolerance) if relative else c - tolerance  # ln|v (1 - t)|, or v - t
    return _digest(key, _point(sign, round(a / step), grid))


def _as_number(answer: Any) -> float:
    if hasattr(answer, "item") and not isinstance(answer, (str, bytes)):  # tensor, numpy
        try:
            answer = answer.item()
        except (TypeError, ValueError, RuntimeError):  # more than one element: not a number
            pass
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real) \
            or not math.isfinite(answer):
        raise Failure(f"answer with one number (an int or a float), not {describe(answer)}.")
    return float(answer)


# ---------------------------------------------------------------- the two kinds
def _check_hash(key: str, answer_hash: str) -> None:
    if not isinstance(answer_hash, str) or not HEX.fullmatch(answer_hash):
        raise ValueError(f"{key}: answer_hash must be 64 lower-case hex digits; compute it with "
                         f"`python -m nclib.course.questions {key} ANSWER`")


def _register(chapter: str, name: str, points: float, hint: str, doc: str, run) -> Task:
    run.__name__, run.__qualname__, run.__doc__ = name, name, doc
    return task(chapter, points=points, hint=hint)(run)


def _wrong(given: str, explanation: str, hint: str) -> Failure:
    return Failure(f"not {given}. {explanation}" + (f" Hint: {hint}" if hint else ""))


def choice(chapter: str, name: str, *, options: dict[str, str], answer_hash: str,
           explanation: str, points: float = 1, hint: str = "") -> Task:
    """Register a multiple-choice question: the answer is one key of `options`.

    Args:
        options: option key -> the option's text, e.g. {"a": "...", "b": "..."}.
        answer_hash: `answer_hash(key, right_key)`, never the key itself.
        explanation: one sentence, shown once the question is answered (right or wrong).
    """
    key = f"{chapter}.{name}"
    _check_hash(key, answer_hash)
    keys = {_normalize(k): k for k in options}
    if len(keys) != len(options) or "" in keys:
        raise ValueError(f"{key}: option keys must be non-empty and differ ignoring case "
                         f"and spaces, got {list(options)}")
    if not any(_digest(key, k) == answer_hash for k in keys):
        raise ValueError(f"{key}: answer_hash matches none of the options {list(options)}")
    listed = ", ".join(repr(k) for k in options)

    def run(answer: Any) -> str:
        if not isinstance(answer, str):
            raise Failure(f"answer with one option key as a string ({listed}), "
                          f"not {describe(answer)}.")
        given = _normalize(answer)
        if given not in keys:
            raise Failure(f"{answer!r} is not an option; choose one of {listed}.")
        if _digest(key, given) != answer_hash:
            raise _wrong(f"{given!r} ({options[keys[given]]})", explanation, hint)
        return f"{given!r} is right. {explanation}"

    doc = "Choose one of: " + "; ".join(f"{k!r}: {text}" for k, text in options.items())
    return _register(chapter, name, points, hint, doc, run)


def number(chapter: str, name: str, *, answer_hash: str, tolerance: float, explanation: str,
           relative: bool = False, points: float = 1, hint: str = "") -> Task:
    """Register a question answered by one number, accepted within `tolerance`.

    Args:
        answer_hash: `number_hash(key, value, tolerance, relative)`, never the value itself.
        tolerance: absolute (|x - v| <= tolerance), or relative (|x - v| <= tolerance * |v|)
            with ``relative=True``; see the module docstring for the edges.
        explanation: one sentence, shown once the question is answered (right or wrong).
    """
    key = f"{chapter}.{name}"
    _check_hash(key, answer_hash)
    step, grid = _grid(tolerance, relative)

    def run(answer: Any) -> str:
        x = _as_number(answer)
        located = _coordinate(x, relative)
        if located is not None:
            c, sign = located
            top = round(c / step)  # the answer's grid point; accepted if within 2 * GRID above
            if any(_digest(key, _point(sign, top - j, grid)) == answer_hash
                   for j in range(2 * GRID + 1)):
                return f"{x:g} is right. {explanation}"
        raise _wrong(f"{x:g}", explanation, hint)

    kind = "of the right value (relative)" if relative else "(absolute)"
    doc = f"Answer with one number; accepted within {tolerance:g} {kind}."
    return _register(chapter, name, points, hint, doc, run)


# ---------------------------------------------------------------- authors' command
def main(argv: list[str] | None = None) -> None:
    """Print the `answer_hash` of a new question."""
    p = argparse.ArgumentParser(prog="python -m nclib.course.questions",
                                description="Print the answer_hash of a concept question.")
    p.add_argument("key", help='the task key, "chapter.name"')
    p.add_argument("answer", help="the right option key, or the right number")
    p.add_argument("--tolerance", type=float, help="a number question: its tolerance")
    p.add_argument("--relative", action="store_true", help="the tolerance is relative")
    args = p.parse_args(argv)
    if args.tolerance is None:
        print(f'answer_hash="{answer_hash(args.key, args.answer)}"')
    else:
        value = float(args.answer)
        print(f'answer_hash="{number_hash(args.key, value, args.tolerance, args.relative)}", '
              f"tolerance={args.tolerance!r}" + (", relative=True" if args.relative else ""))


if __name__ == "__main__":
    main()
