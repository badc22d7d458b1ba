"""Chapter commands: ``nclib NAME ...`` registered by a chapter, found by the `nclib` command.

A chapter registers its command in its ``__init__.py``; `nclib.cli` imports every chapter
(`nclib.course.discover.import_all`) and adds one sub-command per registered `Command`::

    from nclib.course.commands import command

    def _arguments(parser):  # an argparse.ArgumentParser for `nclib nas`
        parser.add_argument("--trials", type=int, default=10, help="default: %(default)s")

    @command("nas", help="run a small architecture search", add_arguments=_arguments)
    def run(args) -> int:
        print(f"searching {args.trials} architectures")
        return 0  # the exit status

A name that a built-in command already has (``zoo``, ``grade``, ...) is an error there.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

__all__ = ["Command", "COMMANDS", "command"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None


COMMANDS: dict[str, Command] = {}


def _origin(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def command(name: str, help: str,
            add_arguments: Callable[[argparse.ArgumentParser], None] | None = None):
    """Register ``run(args) -> int`` as ``nclib NAME``; `add_arguments(parser)` adds its options.

    Registering the same function again (a module reload) replaces it; a second function
    under a name that is taken is a `ValueError`.
    """
    def wrap(run):
        old = COMMANDS.get(name)
        if old is not None and _origin(old.run) != _origin(run):
            raise ValueError(f"command {name!r}: already registered by {_origin(old.run)}, "
                             f"so {_origin(run)} cannot have it; choose another name")
        COMMANDS[name] = Command(name, help, run, add_arguments)
        return run
    return wrap
