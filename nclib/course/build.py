"""Build exercise notebooks from solution notebooks (the nbgrader convention).

In a solution notebook, student code sits between two marker lines::

    def linear_params(in_features, out_features, bias=True):
        \"\"\"Number of parameters of nn.Linear(in_features, out_features, bias).\"\"\"
        ### BEGIN SOLUTION
        # HINT: a weight matrix and maybe a bias vector
        return in_features * out_features + (out_features if bias else 0)
        ### END SOLUTION

`build_notebook` replaces each marked region with a stub at the same indentation that keeps
the region's ``# HINT:`` lines and raises `NotImplementedError`; the signature and docstring
outside the region stay. A region at the top of a cell that only assigns answers
(``why_no_faster = "b"``, a concept question) becomes ``why_no_faster = ...  # your
answer``, so its check says "not attempted" instead of failing on a missing name. In markdown cells a region becomes "*Your answer here.*". Outputs
and execution counts are cleared; everything else (cell ids, tags, metadata) is copied. The
notebook's metadata (``nclib``) records its chapter, so the grader can match submissions,
and the release it belongs to (``nclib.__version__``) with the tasks its check cells name,
so a student's copy of an older release is graded on the tasks that release had.

`start` copies the released exercises into a student's own folder, never overwriting a file.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat

import nclib

__all__ = ["BEGIN", "END", "strip_solutions", "build_notebook", "build", "stale", "start",
           "CHECK_CALL", "check_tasks", "notebook_tasks"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = re.compile(r"^\s*#\s*HINT:")
CHECK_CALL = re.compile(r"\bcheck\.(\w+)\.(\w+)\(")
STUB = 'raise NotImplementedError("Replace this line with your code.")'


def check_tasks(source: str) -> list[str]:
    """The task keys ("pruning.magnitude_mask") a check cell's source calls, in order."""
    return [f"{chapter}.{name}" for chapter, name in CHECK_CALL.findall(source)]


def notebook_tasks(nb: nbformat.NotebookNode) -> list[str]:
    """Every task the code cells of `nb` check, in the order they first name it."""
    return list(dict.fromkeys(key for cell in nb.cells if cell.cell_type == "code"
                              for key in check_tasks(cell.source)))


def _answer_names(region: list[str]) -> list[str] | None:
    """The names a region assigns when it holds nothing but ``name = value`` lines, else None."""
    code = "\n".join(line for line in region if not HINT.match(line))
    try:
        body = ast.parse(code).body
    except SyntaxError:
        return None
    if not body or not all(isinstance(s, ast.Assign) and len(s.targets) == 1
                           and isinstance(s.targets[0], ast.Name) for s in body):
        return None
    return [s.targets[0].id for s in body]


def strip_solutions(source: str, markdown: bool = False, where: str = "cell") -> str:
    """Replace every BEGIN/END SOLUTION region of `source` by a stub."""
    out: list[str] = []
    region: list[str] | None = None
    indent = ""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if region is not None:
                raise ValueError(f"{where}: '{BEGIN}' inside another solution region")
            region, indent = [], line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if region is None:
                raise ValueError(f"{where}: '{END}' without '{BEGIN}'")
            if markdown:
                out.append(f"{indent}*Your answer here.*")
            else:
                out += [h for h in region if HINT.match(h)]
                names = None if indent else _answer_names(region)
                out += [f"{n} = ...  # your answer" for n in names] if names else [indent + STUB]
            region = None
        elif region is not None:
            region.append(line)
        else:
            out.append(line)
    if region is not None:
        raise ValueError(f"{where}: '{BEGIN}' without '{END}'")
    return "\n".join(out)


def build_notebook(solution: nbformat.NotebookNode, chapter: str) -> nbformat.NotebookNode:
    """The exercise version of a solution notebook (a new object; the input is unchanged)."""
    nb = nbformat.from_dict(json.loads(json.dumps(solution)))
    for i, cell in enumerate(nb.cells):
        where = f"{chapter} cell {i}"
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, where=where)
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown":
            cell.source = strip_solutions(cell.source, markdown=True, where=where)
    nb.metadata["nclib"] = {"chapter": chapter, "kind": "exercise", "release": nclib.__version__,
                            "tasks": notebook_tasks(nb)}
    return nb


def _render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def _pairs(solutions: Path, exercises: Path) -> list[tuple[Path, Path]]:
    if not solutions.is_dir():
        raise FileNotFoundError(f"solutions folder {solutions} does not exist")
    return [(s, exercises / s.name) for s in sorted(solutions.glob("[0-9][0-9]_*.ipynb"))]


def build(solutions: str | Path = "solutions", exercises: str | Path = "exercises") -> list[Path]:
    """Write exercises/NN_name.ipynb for every solutions/NN_name.ipynb; returns what changed."""
    solutions, exercises = Path(solutions), Path(exercises)
    exercises.mkdir(parents=True, exist_ok=True)
    changed = []
    for src, dst in _pairs(solutions, exercises):
        text = _render(build_notebook(nbformat.read(src, as_version=4), src.stem))
        if not dst.exists() or dst.read_text(encoding="utf-8") != text:
            dst.write_text(text, encoding="utf-8")
            changed.append(dst)
    return changed


def _why_stale(dst: Path, want: str, src: Path) -> str:
    """What differs: the release, the task list, or (else) the notebook itself."""
    try:
        have = nbformat.reads(dst.read_text(encoding="utf-8"), as_version=4).metadata.get("nclib", {})
    except Exception:  # not a notebook any more: say so in the general words
        have = {}
    new = nbformat.reads(want, as_version=4).metadata["nclib"]
    if have and have.get("release") != new["release"]:
        return f"it records release {have.get('release')}, the course is at release {new['release']}"
    if have and have.get("tasks") != new["tasks"]:
        old = have.get("tasks") or []
        added = ", ".join(t for t in new["tasks"] if t not in old) or "none"
        dropped = ", ".join(t for t in old if t not in new["tasks"]) or "none"
        return f"its task list is out of date ({src} adds {added}; drops {dropped})"
    return f"{src} changed since it was built"


def stale(solutions: str | Path = "solutions", exercises: str | Path = "exercises") -> list[str]:
    """Problems that make exercises/ differ from what solutions/ builds (empty when fresh)."""
    solutions, exercises = Path(solutions), Path(exercises)
    problems = []
    for src, dst in _pairs(solutions, exercises):
        want = _render(build_notebook(nbformat.read(src, as_version=4), src.stem))
        if not dst.exists():
            problems.append(f"{dst} is missing (built from {src})")
        elif dst.read_text(encoding="utf-8") != want:
            problems.append(f"{dst} is stale: {_why_stale(dst, want, src)}")
    if exercises.is_dir():
        for extra in sorted(exercises.glob("[0-9][0-9]_*.ipynb")):
            if not (solutions / extra.name).exists():
                problems.append(f"{extra} has no solution {solutions / extra.name}")
    return problems


def start(exercises: str | Path = "exercises",
          folder: str | Path | None = None) -> tuple[Path, list[Path], list[Path]]:
    """Copy every exercises/NN_name.ipynb into `folder` (default: my-exercises beside exercises/).

    A file that exists in `folder` is never overwritten, so running it again only adds the
    exercises of new chapters. Errors name the command's arguments (DIR, --exercises).

    Returns:
        (folder, copied, kept): the folder, the files written and the files left as they were.
    """
    exercises = Path(exercises)
    folder = Path(folder) if folder is not None else exercises.parent / "my-exercises"
    sources = sorted(exercises.glob("[0-9][0-9]_*.ipynb")) if exercises.is_dir() else []
    if not sources:
        raise FileNotFoundError(f"--exercises={str(exercises)!r}: no exercises (NN_name.ipynb) "
                                "there; expected the folder of released exercises, such as "
                                "exercises/ of the course")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"DIR={str(folder)!r} is a file; expected a folder to copy the exercises "
                         "into (a new one, or the one that holds your work)")
    if folder.resolve() == exercises.resolve():
        raise ValueError(f"DIR={str(folder)!r} is the release folder, which `nclib exercises build` "
                         "and `git pull` rewrite; expected a folder of your own, such as my-exercises")
    folder.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for src in sources:
        dst = folder / src.name
        try:
            with open(dst, "xb") as f:  # "x": fails if the file exists, so nothing is overwritten
                f.write(src.read_bytes())
            copied.append(dst)
        except FileExistsError:
            kept.append(dst)
    return folder, copied, kept
