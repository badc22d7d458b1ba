"""Chapter 05 checks, tasks 4-5: writing an architecture as the controller's tokens, and an
architecture found by the student's own search that meets a MAC budget and an accuracy bar.

Task 4's reference is `nclib.nas.SearchSpace.encode` on the lecture's space. Task 5 looks the
handed-in architecture up in the committed table (`nclib.nas.load_table`), which holds
every architecture's validation accuracy after the chapter's child recipe: the student's
search may use the table too, as the lecture does (a real search would train each child).
"""
from __future__ import annotations

import functools

import torch

from nclib.course.checking import Failure, Mismatch, call, describe, task
from nclib.nas import SearchSpace, load_table

__all__ = ["encode_architecture", "ref_encode_architecture", "search_under_budget",
           "MAC_BUDGET", "MIN_VAL_ACC", "table"]

# Task 5, measured in the table: 93 of the 864 architectures fit in 300,000 MACs, and 2 of
# those reach 95.0% validation accuracy (96.2% and 95.0%; the next: 94.8%); the best overall
# (97.6%) takes 2.9 M MACs. Random search's 86 children hit one of the two about 1 time in 5.
MAC_BUDGET = 300_000
MIN_VAL_ACC = 0.950


@functools.lru_cache(maxsize=1)
def table():
    return load_table()


# ---------------------------------------------------------------- task 4: encode
def ref_encode_architecture(layers) -> tuple[int, ...]:
    return SearchSpace().encode(layers)


def _encode_hint(layers, got) -> str:
    space = SearchSpace()
    want = space.encode(layers)
    if isinstance(got, (list, tuple)) and len(got) == len(want):
        if all(isinstance(g, int) and g == w + 1 for g, w in zip(got, want)):
            return "the tokens start at 1: a token is the index of the choice, from 0."
        values = [layers[d.layer][d.name] for d in space.decisions]
        if list(got) == values:
            return ("those are the settings themselves: a token is the choice's index in the "
                    "decision's choices, e.g. filters 16 of (8, 16, 32) is token 1.")
    if isinstance(got, (list, tuple)) and len(got) == len(want) + 1:
        return ("one token too many: the last layer has no downsample decision (a linear layer "
                "follows it).")
    return ("one token per decision, in space.decisions order: for each layer filters, kernel, "
            "then downsample (not for the last layer).")


@task("nas", points=1, hint="Lecture 05, section 1 (The search space): the decisions in order, "
      "each token the index of the choice taken (space.decisions lists them).")
def encode_architecture(student):
    """encode_architecture(layers) -> the tuple of tokens of readable layer settings."""
    space = SearchSpace()
    g = torch.Generator().manual_seed(11)
    cases = [space.tokens_at(0), space.tokens_at(space.size - 1)] + [space.sample(g) for _ in range(8)]
    for tokens in cases:
        layers = space.decode(tokens)
        shown = f"({describe(layers, 200)})"
        got = call(student, shown, [dict(s) for s in layers])
        if not isinstance(got, (list, tuple)) or list(got) != list(tokens):
            raise Mismatch(shown, tokens, got, _encode_hint(layers, got))
    return "the tokens of 10 architectures, the first and the last of the space among them."


# ---------------------------------------------------------------- task 5: a search to a budget
def _tokens(student) -> tuple[int, ...]:
    space = SearchSpace()
    if isinstance(student, (list, tuple)) and student and isinstance(student[0], dict):
        try:
            return space.encode(student)
        except ValueError as e:
            raise Failure(f"those layer settings are not in the space: {e}") from None
    try:
        return space.check(student)
    except (ValueError, TypeError) as e:
        raise Failure(f"hand in an architecture of the lecture's space as its tokens (a tuple "
                      f"of {len(space.decisions)} ints) or its layer settings; {e}") from None


@task("nas", points=2, hint="Lecture 05, section 7 (Beyond accuracy: MACs): MACs are counted "
      "without training (section 1), so a search can look only at architectures within the budget.")
def search_under_budget(student):
    """search_under_budget(tokens): an architecture with at most MAC_BUDGET MACs and at least
    MIN_VAL_ACC validation accuracy in the table."""
    t = table()
    tokens = _tokens(student)
    result = t(tokens)
    val = max(result.val_acc)
    measured = (f"{t.space.describe(tokens)}: {result.macs:,} MACs (budget {MAC_BUDGET:,}) and "
                f"{val:.1%} validation accuracy (bar {MIN_VAL_ACC:.1%})")
    if result.macs > MAC_BUDGET:
        raise Failure(f"{measured}: over the MAC budget. Hint: strided layers do 4x fewer MACs "
                      "than pooled ones, and the first layer runs at full resolution.")
    if val < MIN_VAL_ACC:
        raise Failure(f"{measured}: below the bar. Hint: few architectures within the budget "
                      "reach it, and a search over the whole space spends most children over "
                      "the budget; MACs cost no training (space.costs), so search only among "
                      "the architectures within it, and keep the best by validation accuracy.")
    return f"{measured}; its test accuracy is {result.test_acc:.1%}."
