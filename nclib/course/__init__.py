"""Course tooling: exercise building, checks, the autograder, paper tables and reproduction.

Notebooks use ``from nclib.course import check``; the rest is driven by the `nclib` command.
This package sits above the techniques: nothing in ``nclib`` outside ``nclib.course`` may
import it.
"""
from nclib.course import checks as check

__all__ = ["check"]
