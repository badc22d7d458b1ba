"""Chapter 05, neural architecture search with reinforcement learning (Zoph and Le, ICLR 2017):
an LSTM controller trained by REINFORCE against random search, on a space small enough to
know every architecture's accuracy.

The chapter's command: ``nclib nas tabulate [--check] [--workers N] [--out FILE]`` trains
every architecture of the space once, the table a search is measured against.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from nclib.course.commands import command
from nclib.nas import table


def _arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("tabulate", help="train every architecture of the space once (the ground "
                                        "truth a search is measured against)")
    p.add_argument("--check", action="store_true",
                   help="only compare the table's stamp with the code (no training)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes that train children in parallel (default: %(default)s)")
    p.add_argument("--out", type=Path, default=table.TABLE_FILE,
                   help="where to write the table (default: the one nclib ships)")


def _check(path: Path) -> int:
    try:
        t = table.load_table(path)
    except (FileNotFoundError, ValueError) as e:
        print(f"stale: {e}")
        return 1
    print(f"up to date: {path} ({len(t)} architectures, stamp {t.stamp}, made {t.made})")
    return 0


@command("nas", help="neural architecture search: `nclib nas tabulate` trains the whole space",
         add_arguments=_arguments)
def run(args) -> int:
    if args.workers < 1:
        print(f"--workers={args.workers}: expected a positive integer")
        return 2
    if args.check:
        return _check(args.out)
    t0 = time.perf_counter()
    if args.workers == 1:
        result = table.tabulate()
    else:  # spawn: a forked torch can hang on its thread pools
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
            result = table.tabulate(executor=pool)
    path = result.save(args.out)
    print(f"wrote {path}: {len(result)} architectures in {time.perf_counter() - t0:.0f} s "
          f"({result.made['child_seconds']:.0f} s of child training), stamp {result.stamp}")
    return 0
