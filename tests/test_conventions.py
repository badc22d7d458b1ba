"""Project conventions that a reviewer would otherwise check by hand."""
import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = sorted((ROOT / "tests").glob("test_*.py"))
NOTEBOOKS = sorted(p for d in ("lectures", "solutions", "exercises") for p in (ROOT / d).glob("*.ipynb"))


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_every_test_has_a_docstring(path):
    """Each test function says, in its docstring, which property it checks."""
    tree = ast.parse(path.read_text())
    missing = [n.name for n in ast.walk(tree)
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")
               and not ast.get_docstring(n)]
    assert not missing, f"{path.name}: tests without a docstring: {missing}"


def test_techniques_do_not_import_the_course_layer():
    """Data flows one way: nothing below nclib/course (the techniques, measurement) imports nclib.course."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "nclib").rglob("*.py")
                 if p.relative_to(ROOT / "nclib").parts[0] not in ("course", "chapters")
                 and p.name != "cli.py"
                 and re.search(r"^\s*(from|import)\s+nclib\.course", p.read_text(), re.M)]
    assert not offenders, offenders


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebooks_start_with_setup_and_do_not_edit_sys_path(path):
    """Notebooks call nclib.setup in their first code cell and never edit sys.path or import *."""
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code and "nclib.setup(" in code[0], "first code cell must call nclib.setup(...)"
    text = "\n".join(code)
    assert "sys.path" not in text and "import *" not in text
