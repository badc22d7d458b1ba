"""Course tooling: exercise building, checks, the autograder, paper tables and reproduction.

Notebooks use ``from nclib.course import check``; the rest is driven by the `nclib` command.
This package sits above the techniques and below the chapters (``nclib.chapters``), which it
finds by discovery (`nclib.course.discover`); no technique imports it.
"""
from nclib.course.checking import check

__all__ = ["check"]
