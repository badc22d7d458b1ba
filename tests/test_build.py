"""Exercise building: solution regions become stubs; staleness is detected."""
import shutil
from pathlib import Path

import nbformat
import pytest

import nclib
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


def test_build_records_release_and_tasks_in_check_order():
    """Metadata records nclib's version and each task its check cells name, once, in order."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Run `check.ch.not_a_task(f)` below."),
                nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
                nbformat.v4.new_code_cell("check.ch.second(f)\ncheck.ch.first(f)"),
                nbformat.v4.new_code_cell("check.ch.first(f)  # again\ncheck.ch.third(f)")]
    meta = build.build_notebook(nb, "09_ch").metadata["nclib"]
    assert meta == {"chapter": "09_ch", "kind": "exercise", "release": nclib.__version__,
                    "tasks": ["ch.second", "ch.first", "ch.third"]}
    released = nbformat.read(ROOT / "exercises" / "00_overview.ipynb", as_version=4).metadata["nclib"]
    assert released["release"] == nclib.__version__
    assert released["tasks"][:2] == ["overview.linear_params", "overview.linear_macs"]


def test_check_notices_a_stale_release_or_task_list(tmp_path, capsys, monkeypatch):
    """`nclib exercises check` fails on an exercise whose recorded release or tasks are out of date."""
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    shutil.copytree(ROOT / "solutions", sol)
    argv = ["--solutions", str(sol), "--exercises", str(ex)]
    assert cli.main(["exercises", "build", *argv]) == 0
    path = ex / "00_overview.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata["nclib"]["release"] = "0.0.9"
    nbformat.write(nb, path)
    assert cli.main(["exercises", "check", *argv]) == 1
    assert "records release 0.0.9, the course is at release " + nclib.__version__ in capsys.readouterr().err
    assert cli.main(["exercises", "build", *argv]) == 0
    monkeypatch.setattr(nclib, "__version__", "9.0.0")  # a new release: every exercise is stale
    assert cli.main(["exercises", "check", *argv]) == 1
    assert capsys.readouterr().err.count("the course is at release 9.0.0") == len(list(sol.glob("*.ipynb")))
    assert cli.main(["exercises", "build", *argv]) == 0
    nb = nbformat.read(sol / "00_overview.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if "check.overview.linear_macs(" not in c.source]
    nbformat.write(nb, sol / "00_overview.ipynb")
    assert cli.main(["exercises", "check", *argv]) == 1
    assert "task list is out of date" in capsys.readouterr().err
    assert build.build(sol, ex) == [path]
    assert "overview.linear_macs" not in nbformat.read(path, as_version=4).metadata["nclib"]["tasks"]

