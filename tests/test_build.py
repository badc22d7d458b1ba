"""Exercise building: solution regions become stubs; staleness is detected."""
import shutil
from pathlib import Path

import nbformat
import pytest

from nclib import cli
from nclib.course import build

ROOT = Path(__file__).resolve().parents[1]


def test_strip_keeps_signature_docstring_and_hints():
    """A region becomes an indented stub; code outside it and # HINT lines stay."""
    src = ('def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    # HINT: double it\n'
           '    y = 2 * x\n    return y\n    ### END SOLUTION\n\nprint(f)')
    out = build.strip_solutions(src)
    assert out.splitlines() == ['def f(x):', '    """Doc."""', '    # HINT: double it',
                                '    raise NotImplementedError("Replace this line with your code.")',
                                '', 'print(f)']


def test_strip_markdown_region():
    """A markdown region becomes 'Your answer here.'"""
    assert build.strip_solutions("Q?\n### BEGIN SOLUTION\nA.\n### END SOLUTION",
                                 markdown=True) == "Q?\n*Your answer here.*"


@pytest.mark.parametrize("src, match", [
    ("### BEGIN SOLUTION\nx = 1", "without"),
    ("x = 1\n### END SOLUTION", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside"),
])
def test_unbalanced_markers_are_errors(src, match):
    """Unbalanced markers raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        build.strip_solutions(src, where="nb cell 3")


def test_build_clears_outputs_and_records_chapter():
    """Built exercises have no outputs or solutions, and metadata names their chapter."""
    nb = nbformat.read(ROOT / "solutions" / "00_overview.ipynb", as_version=4)
    ex = build.build_notebook(nb, "00_overview")
    assert ex.metadata["nclib"]["chapter"] == "00_overview"
    for cell in ex.cells:
        assert "### BEGIN SOLUTION" not in cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert [c.id for c in ex.cells] == [c.id for c in nb.cells]


def test_repository_exercises_are_fresh():
    """exercises/ in the repository is exactly what solutions/ builds."""
    assert build.stale(ROOT / "solutions", ROOT / "exercises") == []


def test_check_fails_when_a_solution_changes(tmp_path, capsys):
    """After a solution changes, `nclib exercises check` exits 1 and names the notebook."""
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    shutil.copytree(ROOT / "solutions", sol)
    assert cli.main(["exercises", "build", "--solutions", str(sol), "--exercises", str(ex)]) == 0
    assert cli.main(["exercises", "check", "--solutions", str(sol), "--exercises", str(ex)]) == 0
    nb = nbformat.read(sol / "00_overview.ipynb", as_version=4)
    nb.cells[0].source += "\n\nOne more sentence."
    nbformat.write(nb, sol / "00_overview.ipynb")
    assert cli.main(["exercises", "check", "--solutions", str(sol), "--exercises", str(ex)]) == 1
    assert "00_overview.ipynb is stale" in capsys.readouterr().err
    (ex / "00_overview.ipynb").unlink()
    assert cli.main(["exercises", "check", "--solutions", str(sol), "--exercises", str(ex)]) == 1
    assert "missing" in capsys.readouterr().err


def test_answer_regions_become_ellipsis_assignments():
    """A top-level region of plain assignments (concept answers) becomes `name = ...`; other regions a stub."""
    src = "### BEGIN SOLUTION\n# HINT: count the products\nmacs_fraction = 0.51\nwhy = 'b'\n### END SOLUTION"
    assert build.strip_solutions(src).splitlines() == [
        "# HINT: count the products", "macs_fraction = ...  # your answer", "why = ...  # your answer"]
    computed = "### BEGIN SOLUTION\nx = f(1)\nprint(x)\n### END SOLUTION"
    assert build.strip_solutions(computed).endswith('raise NotImplementedError("Replace this line with your code.")')
    nested = "def g():\n    ### BEGIN SOLUTION\n    y = 2\n    ### END SOLUTION"
    assert "raise NotImplementedError" in build.strip_solutions(nested)
