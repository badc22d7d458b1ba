"""Finding the chapters: the course machinery never names one.

Every chapter is a package under ``nclib/chapters/`` holding only the parts it needs:
``checks`` (its graded tasks), ``experiments`` (its `nclib reproduce` runs), ``widgets``,
``figures``, and in its ``__init__`` whatever it registers (trained-model recipes with
`nclib.zoo.register`, commands with `nclib.course.commands.command`). The checks, the
reproduce runner, the zoo listing and the `nclib` command find them here, by looking at
the folder, so a new chapter is a new folder and nothing else changes.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from types import ModuleType

__all__ = ["PACKAGE", "chapter_names", "chapter_part", "import_all"]

PACKAGE = "nclib.chapters"


def chapter_names() -> list[str]:
    """The chapter packages under nclib/chapters, sorted by name."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(m.name for m in pkgutil.iter_modules(spec.submodule_search_locations)
                  if m.ispkg and not m.name.startswith("_"))


def chapter_part(chapter: str, part: str | None = None) -> ModuleType | None:
    """Import ``nclib.chapters.<chapter>[.<part>]``; None when the chapter has no such part."""
    name = f"{PACKAGE}.{chapter}" + (f".{part}" if part else "")
    if chapter not in chapter_names() or importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def import_all(part: str | None = None) -> list[ModuleType]:
    """Import `part` (or just the package, which registers its recipes) of every chapter."""
    found = (chapter_part(c, part) for c in chapter_names())
    return [m for m in found if m is not None]
