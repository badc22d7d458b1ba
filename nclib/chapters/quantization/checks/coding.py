"""Chapter 03 check, task 3: the code lengths of an optimal prefix code (Huffman, 1952; Deep
Compression's last stage, Han et al. 2016, Section 4). The reference is
nclib.quant.coding.code_lengths.

Optimal codes are not unique (equal counts can be merged in either order), so lengths are
never compared one by one. An answer passes when its lengths are those of a prefix code
(positive integers with Kraft sum  sum_s 2^-l_s <= 1) and its total length sum_s n_s l_s is
the optimum. A complete code (Kraft sum exactly 1) follows: an incomplete one could shorten a
code word. Every symbol that occurs needs a length; symbols of count 0 may be left out and,
if given a length, count in the Kraft sum. A lone symbol needs a 1-bit code word.
"""
from __future__ import annotations

import math
import numbers
import random
from fractions import Fraction

from nclib.course.checking import Mismatch, Text, call, describe, task
from nclib.quant.coding import code_lengths


MAX_LENGTH = 64  # far above any depth these counts reach (32 symbols: at most 31)


def ref_huffman_lengths(counts: dict[int, int]) -> dict[int, int]:
    return code_lengths(counts)


def _counts_cases() -> list[tuple[str, dict[int, int]]]:
    """Hand-worked counts, ties (one with two optimal codes), a deep (Fibonacci) tree, gaps in
    the symbols, the edge cases, and random ones shaped like the cluster labels of a layer."""
    cases = [("hand-worked", {0: 5, 1: 2, 2: 1, 3: 1}),  # lengths 1, 2, 3, 3: 15 bits
             ("two symbols", {0: 10, 1: 1}),
             ("8 equal counts", dict.fromkeys(range(8), 3)),
             ("two optimal codes", {0: 1, 1: 1, 2: 2, 3: 2}),  # lengths 2 2 2 2 or 3 3 1 2
             ("Fibonacci counts", {s: n for s, n in enumerate([1, 1, 2, 3, 5, 8, 13, 21, 34])}),
             ("symbols that are not 0, 1, 2, ...", {3: 7, 10: 2, 42: 1, 7: 2}),
             ("a symbol of count 0", {0: 4, 1: 0, 2: 3, 3: 1}),
             ("one symbol", {7: 12})]
    rng = random.Random(30)
    for num_symbols in (4, 16, 32, 5):
        peak = rng.randrange(num_symbols)  # labels of a bell-shaped layer: most near one value
        cases.append((f"{num_symbols} cluster labels", {
            s: max(1, round(1000 * math.exp(-((s - peak) / (0.2 * num_symbols)) ** 2)
                            * rng.uniform(0.5, 1.5))) for s in range(num_symbols)}))
    return cases


def _total(counts, lengths) -> int:
    return sum(n * lengths.get(s, 0) for s, n in counts.items())


def _shannon(counts) -> dict[int, int]:
    total = sum(counts.values())
    return {s: max(1, math.ceil(-math.log2(n / total))) for s, n in counts.items() if n > 0}


def _as_lengths(shown: str, counts: dict[int, int], got) -> dict[int, int]:
    """The student's lengths as {symbol: int}, after checking the keys and the values."""
    if not isinstance(got, dict):
        raise Mismatch(shown, Text("a dict {symbol: code length}"), got)
    used = {s for s, n in counts.items() if n > 0}
    missing, unknown = sorted(used - set(got)), sorted(set(got) - set(counts), key=repr)
    if missing or unknown:
        raise Mismatch(shown, Text(f"a length for each of the symbols {sorted(used)}"),
                       Text(f"no length for {missing}" if missing
                            else f"unknown symbols {unknown}"),
                       "every symbol that occurs needs a code word; the keys are the symbols "
                       "of counts.")
    for s, length in got.items():
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 1:
            lone = len(used) == 1 and length == 0
            raise Mismatch(shown, Text("code lengths that are integers >= 1"),
                           Text(f"length {length!r} for symbol {s!r}"),
                           "a lone symbol's tree is a single leaf at depth 0, but a code word "
                           "needs at least 1 bit (else n symbols would take 0 bits): give it "
                           "length 1." if lone else "a code length is a number of bits, an "
                           "integer: the depth of the symbol's leaf in the tree.")
        if length > MAX_LENGTH:
            raise Mismatch(shown, Text(f"code lengths of at most {MAX_LENGTH} bits here"),
                           Text(f"length {length} for symbol {s!r}"),
                           "a code length is the depth of the symbol's leaf in the tree.")
    return {s: int(length) for s, length in got.items()}


@task("quantization", points=2, hint="Lecture 03, section 3 (Huffman coding) builds the tree: "
      "take the two least frequent nodes (a heap: heapq), merge them into one whose count is "
      "their sum, until one node is left; a symbol's code length is the depth of its leaf.")
def huffman_lengths(student):
    """huffman_lengths(counts) -> {symbol: code length} of an optimal prefix code."""
    for label, counts in _counts_cases():
        shown = f"({label}: {describe(counts, 90)})"
        got = _as_lengths(shown, counts, call(student, shown, dict(counts)))
        kraft = sum(Fraction(1, 2 ** length) for length in got.values())
        if kraft > 1:
            zero = [s for s in got if counts[s] == 0]
            raise Mismatch(shown, Text("lengths of a prefix code: sum of 2^-length <= 1 "
                                       "(Kraft's inequality)"),
                           Text(f"a sum of {float(kraft):.4g}"),
                           f"symbol {zero[0]!r} never occurs: leave it out of the tree, its "
                           "code word only takes space." if zero else
                           "no prefix code has these lengths: read each length off the tree, "
                           "as the depth of the symbol's leaf.")
        best, total = _total(counts, ref_huffman_lengths(counts)), _total(counts, got)
        if total != best:
            used = {s: n for s, n in counts.items() if n > 0}
            zero = [s for s in got if counts[s] == 0]
            if zero:
                hint = (f"symbol {zero[0]!r} never occurs: leave it out of the tree; its leaf "
                        "makes the code words of the others longer.")
            elif got == _shannon(used):
                hint = ("those are Shannon's lengths ceil(-log2 p): a prefix code within a bit "
                        "per symbol of the entropy, but not the optimum; Huffman's tree is.")
            elif len(set(got.values())) == 1:
                hint = ("every code word has the same length: that is a fixed-length code. "
                        "Huffman gives frequent symbols short code words and rare ones long.")
            else:
                hint = ""
            raise Mismatch(shown, Text(f"the optimal total sum count * length = {best} bits"),
                           Text(f"{total} bits, with lengths {describe(got, 80)}"), hint)
    return ("Huffman's total is the optimum; its mean length lies within one bit of the "
            "entropy (nclib.quant.coding.entropy_bits).")
