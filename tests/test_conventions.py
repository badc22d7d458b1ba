"""Project conventions that a reviewer would otherwise check by hand.

The architecture of DESIGN.md ("The layers", "Layout") is checked from the import graph of
nclib, read from the source with `ast` (nothing is imported): which module imports which.
"""
import ast
from collections import deque
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NCLIB = ROOT / "nclib"
TESTS = sorted((ROOT / "tests").glob("test_*.py"))
NOTEBOOKS = sorted(p for d in ("lectures", "solutions", "exercises") for p in (ROOT / d).glob("*.ipynb"))
AUTHORED = sorted(p for d in ("lectures", "solutions") for p in (ROOT / d).glob("*.ipynb"))
MODULES = sorted(NCLIB.rglob("*.py"))


def notebook_id(path):
    return f"{path.parent.name}/{path.name}"


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_every_test_has_a_docstring(path):
    """Each test function says, in its docstring, which property it checks."""
    tree = ast.parse(path.read_text())
    missing = [n.name for n in ast.walk(tree)
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")
               and not ast.get_docstring(n)]
    assert not missing, f"{path.name}: tests without a docstring: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_notebooks_start_with_setup_and_do_not_edit_sys_path(path):
    """Notebooks call nclib.setup in their first code cell and never edit sys.path or import *."""
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code and "nclib.setup(" in code[0], "first code cell must call nclib.setup(...)"
    text = "\n".join(code)
    assert "sys.path" not in text and "import *" not in text


# ---------------------------------------------------------------------------------------
# The import graph: module name -> the names of the package's modules it imports.
#
# Every `import` and `from ... import` counts, at the top of a file or inside a function.
# `import a.b.c` is an edge to a.b.c only, not to its parents a and a.b (which Python also
# runs first): a package's __init__ importing its own submodules is not a circle.
# `from X import Y` is an edge to X.Y when X.Y is a module (file or package), else to X.
# Relative imports are resolved. `importlib.import_module("a.b")` with a constant string
# counts as `import a.b`; a computed name (as in nclib.course.discover) cannot be read.
# ---------------------------------------------------------------------------------------

def module_names(package_dir):
    """Every module of the package in `package_dir`: dotted name -> file."""
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = (package_dir.name,) + path.relative_to(package_dir).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported_modules(tree, module, is_package, modules):
    """The dotted names that the code in `tree` (the source of `module`) imports."""
    here = module if is_package else module.rpartition(".")[0]  # the package `.` refers to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here.rsplit(".", node.level - 1)[0] if node.level else ""
            source = ".".join(p for p in (base, node.module) if p)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield submodule if submodule in modules else source
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"):
            yield node.args[0].value


def import_graph(package_dir):
    """Module -> set of modules of the same package that it imports (read with ast)."""
    root = package_dir.name
    modules = module_names(package_dir)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found = imported_modules(tree, module, path.name == "__init__.py", modules)
        graph[module] = {name for name in found if name == root or name.startswith(root + ".")}
    return graph


def reachable(graph, start):
    """The modules that `start` reaches by following one or more import edges."""
    seen, todo = set(), list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def shortest_cycle(graph, start, within):
    """The shortest path start -> ... -> start through the modules `within` (breadth first)."""
    paths, seen = deque([[start]]), {start}
    while paths:
        path = paths.popleft()
        for nxt in sorted(graph.get(path[-1], set()) & within):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                paths.append(path + [nxt])
    raise AssertionError(f"{start} is on no cycle")


def cycles(graph):
    """One cycle per strongly connected component with a cycle (size > 1, or a self-loop).

    Two modules are in one component when each reaches the other; each cycle is a list of
    modules that starts and ends with the component's first module, e.g. [a, b, a].
    """
    reach = {module: reachable(graph, module) for module in graph}
    found, done = [], set()
    for module in sorted(graph):
        if module in done or module not in reach[module]:
            continue
        component = {other for other in reach[module] if module in reach.get(other, ())}
        done |= component
        found.append(shortest_cycle(graph, module, component))
    return found


def describe_cycles(graph):
    """One line per cycle of `graph`, naming its modules (and the whole component if larger)."""
    lines = []
    for cycle in cycles(graph):
        component = {m for m in reachable(graph, cycle[0]) if cycle[0] in reachable(graph, m)}
        extra = f"   (component: {', '.join(sorted(component))})" if len(component) > len(cycle) - 1 else ""
        lines.append(" -> ".join(cycle) + extra)
    return lines


# ---------------------------------------------------------------------------------------
# The layers of DESIGN.md, top to bottom: data flows one way, content -> ... -> measurement.
# A module may import only modules of its own layer or of a lower one. A name in PLACES
# places that module and every module below it (nclib.measure places nclib.measure.counts);
# the root package `nclib` is placed by itself only. A module in no layer is an error, so a
# new package must be placed here deliberately.
# ---------------------------------------------------------------------------------------

LAYERS = ["content", "chapters", "course", "techniques", "measurement"]
ROOT_LAYER = "measurement"  # nclib/__init__.py: setup(seed, threads, device) and the version
PLACES = {
    "nclib.chapters": "chapters",
    "nclib.course": "course", "nclib.cli": "course",
    "nclib.pruning": "techniques", "nclib.distill": "techniques", "nclib.quant": "techniques",
    "nclib.arch": "techniques", "nclib.nas": "techniques", "nclib.dynamic": "techniques",
    "nclib.measure": "measurement", "nclib.data": "measurement", "nclib.models": "measurement",
    "nclib.zoo": "measurement", "nclib.train": "measurement",
}


def layer_of(module, places=PLACES):
    """The layer of an nclib module, or None when it is in none."""
    if module == "nclib":
        return ROOT_LAYER
    for prefix, layer in places.items():
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def layer_violations(graph, places=PLACES):
    """Every module in no layer, and every import of a higher layer, as readable lines."""
    modules = sorted(set(graph) | set().union(*graph.values()))
    lines = [f"{m}: in no layer (place it in PLACES)" for m in modules if layer_of(m, places) is None]
    for module in sorted(graph):
        here = layer_of(module, places)
        for target in sorted(graph[module]):
            there = layer_of(target, places)
            if here and there and LAYERS.index(there) < LAYERS.index(here):
                lines.append(f"{module} ({here}) imports {target} ({there})")
    return lines


def chapter_of(module):
    """The chapter package of a module under nclib.chapters (e.g. 'pruning'), else None."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["nclib", "chapters"] else None


@pytest.fixture(scope="module")
def nclib_graph():
    """nclib's import graph, read once for this file."""
    return import_graph(NCLIB)


def test_no_module_imports_itself_back(nclib_graph):
    """No circles: no nclib module imports, through any chain, a module that imports it."""
    found = describe_cycles(nclib_graph)
    assert not found, "import cycles:\n  " + "\n  ".join(found)


def write_package(root, files):
    """Write a package of small modules under `root` (name -> source) and return its folder."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def test_import_graph_resolves_every_kind_of_import(tmp_path):
    """The graph reads absolute, relative, from-imports of modules and of names, and imports in functions."""
    package = write_package(tmp_path / "pkg", {
        "__init__.py": "VERSION = 1\nfrom pkg import sub\n",
        "a.py": "import os\nfrom pkg import VERSION\nfrom pkg.sub import deep\n",
        "b.py": "def later():\n    from . import a\n    from .sub.deep import f\n",
        "c.py": "import importlib\nimportlib.import_module('pkg.b')\nimport pkg.sub\n",
        "sub/__init__.py": "from ..a import VERSION\n",
        "sub/deep.py": "def f():\n    pass\n",
    })
    assert import_graph(package) == {
        "pkg": {"pkg.sub"},
        "pkg.a": {"pkg", "pkg.sub.deep"},
        "pkg.b": {"pkg.a", "pkg.sub.deep"},
        "pkg.c": {"pkg.b", "pkg.sub"},
        "pkg.sub": {"pkg.a"},
        "pkg.sub.deep": set(),
    }


def test_cycle_check_finds_a_planted_circle(tmp_path):
    """The cycle check fails on two modules importing each other (one inside a function), passes without."""
    circle = write_package(tmp_path / "circle", {
        "__init__.py": "",
        "a.py": "from circle import b\n",
        "b.py": "def f():\n    from . import a\n    return a\n",
    })
    assert cycles(import_graph(circle)) == [["circle.a", "circle.b", "circle.a"]]
    assert describe_cycles(import_graph(circle)) == ["circle.a -> circle.b -> circle.a"]
    line = write_package(tmp_path / "line", {
        "__init__.py": "from line import a\n",
        "a.py": "from line import b\n",
        "b.py": "def f():\n    import line\n",  # b -> line -> a -> b
    })
    assert cycles(import_graph(line)) == [["line", "line.a", "line.b", "line"]]
    line.joinpath("b.py").write_text("import os\n")
    assert cycles(import_graph(line)) == []


def test_cycle_check_finds_long_cycles_and_self_loops():
    """Cycles of any length and self-loops are found, one per strongly connected component."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_modules_import_only_their_own_layer_or_lower(nclib_graph):
    """Layer order: every nclib module is in a layer and imports only its own layer or lower ones."""
    found = layer_violations(nclib_graph)
    assert not found, "layer order content -> chapters -> course -> techniques -> measurement:\n  " + \
        "\n  ".join(found)


def test_layer_check_finds_a_planted_violation(monkeypatch):
    """The layer check fails on an upward import and on a module in no layer, and passes a clean graph."""
    upward = {"nclib.measure": {"nclib.pruning.magnitude"}, "nclib.pruning.magnitude": {"nclib.models"},
              "nclib.models": set()}
    assert layer_violations(upward) == ["nclib.measure (measurement) imports nclib.pruning.magnitude (techniques)"]
    clean = {"nclib.chapters.pruning.checks": {"nclib.course.checking", "nclib.pruning.magnitude", "nclib"},
             "nclib.course.checking": {"nclib.measure"}, "nclib.pruning.magnitude": {"nclib.train"}}
    assert layer_violations(clean) == []
    monkeypatch.delitem(PLACES, "nclib.train")  # a module that nobody placed
    assert layer_violations(clean) == ["nclib.train: in no layer (place it in PLACES)"]


def test_techniques_do_not_import_the_course_layer(nclib_graph):
    """Data flows one way: nothing below nclib.course (the techniques, measurement) imports course or chapters."""
    below, above = {"techniques", "measurement"}, {"course", "chapters"}
    offenders = [f"{module} -> {target}" for module, targets in sorted(nclib_graph.items())
                 for target in sorted(targets)
                 if layer_of(module) in below and layer_of(target) in above]
    assert not offenders, offenders


def test_chapters_do_not_import_each_other(nclib_graph):
    """One chapter package never imports another chapter's package."""
    offenders = [f"{module} -> {target}" for module, targets in sorted(nclib_graph.items())
                 for target in sorted(targets)
                 if chapter_of(module) and chapter_of(target) and chapter_of(module) != chapter_of(target)]
    assert not offenders, offenders


# ---------------------------------------------------------------------------------------
# Notebooks never redefine what nclib provides (STYLE.md rule 7). What nclib provides: the
# names in the __all__ of any nclib module, and the public top-level functions and classes.
# A solution region (### BEGIN SOLUTION ... ### END SOLUTION) is the student's code, and a
# `def` whose body holds one is the exercise function the student writes: both are allowed.
# ---------------------------------------------------------------------------------------

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def exported_names(package_dir):
    """Name -> the nclib modules that export it (in __all__, or as a public top-level def/class)."""
    names = {}
    for module, path in module_names(package_dir).items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            found = []
            if isinstance(node, DEFINITIONS) and not node.name.startswith("_"):
                found = [node.name]
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and \
                    any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and \
                    isinstance(node.value, (ast.List, ast.Tuple)):
                found = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
            for name in found:
                names.setdefault(name, set()).add(module)
    return names


def solution_regions(source):
    """The (begin, end) line numbers (1-based) of each solution region of a cell."""
    regions, begin = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        if line.strip() == BEGIN:
            begin = number
        elif line.strip() == END and begin is not None:
            regions.append((begin, number))
            begin = None
    return regions


def definitions(tree):
    """The functions and classes a cell defines at its top level (also under if/with/try)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, DEFINITIONS):
            yield node
        else:
            todo.extend(n for n in ast.iter_child_nodes(node) if isinstance(n, (ast.stmt, ast.excepthandler)))


def redefinitions(path, provided):
    """'cell N line L: def NAME' for each definition outside a solution region that nclib provides."""
    lines = []
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    for index, cell in enumerate(cells):
        # Magics and shell lines are blanked, not removed, so that line numbers stay right.
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in cell.source.splitlines())
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        regions = solution_regions(source)
        for node in definitions(tree):
            in_region = any(begin < node.lineno < end for begin, end in regions)
            holds_region = any(node.lineno < begin <= node.end_lineno for begin, _ in regions)
            if node.name in provided and not (in_region or holds_region):
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                lines.append(f"code cell {index} line {node.lineno}: {kind} {node.name} "
                             f"(nclib has it: {', '.join(sorted(provided[node.name]))})")
    return lines


@pytest.mark.parametrize("path", AUTHORED, ids=notebook_id)
def test_notebooks_do_not_redefine_nclib(path):
    """No lecture or solution defines, outside a solution region, a function or class that nclib exports."""
    found = redefinitions(path, exported_names(NCLIB))
    assert not found, f"{notebook_id(path)} redefines what nclib provides:\n  " + "\n  ".join(found)


def test_redefinition_check_allows_exercise_functions_only(tmp_path):
    """A def holding a solution region, or inside one, is allowed; a plain def of an nclib name is not."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%matplotlib inline\ndef magnitude_mask(weight, sparsity):\n    ### BEGIN SOLUTION\n    return 1\n"
        "    ### END SOLUTION\n",
        "### BEGIN SOLUTION\ndef fit(model):\n    pass\n### END SOLUTION\n",
        "x = 1\nif x:\n    def fine_tune(model):\n        return model\n",
        "class History:\n    def fit(self):\n        pass\n",
        "!pip list\ndef helper():\n    pass\n",
        "def broken(:\n",
    )]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    provided = {"magnitude_mask": {"m"}, "fit": {"m"}, "fine_tune": {"m"}, "History": {"m"}}
    assert redefinitions(path, provided) == ["code cell 2 line 3: def fine_tune (nclib has it: m)",
                                             "code cell 3 line 1: class History (nclib has it: m)"]


# ---------------------------------------------------------------------------------------
# Size and layout (STYLE.md: modules of 80-300 lines; DESIGN.md "Layout").
# ---------------------------------------------------------------------------------------

MAX_LINES = 320
CHAPTER_PARTS = {"__init__.py", "checks.py", "experiments.py", "widgets.py", "figures.py"}


def test_no_module_is_over_320_lines():
    """Module size: every nclib module is at most 320 lines long (STYLE.md aims for 80-300)."""
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in MODULES}
    offenders = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not offenders, f"modules over {MAX_LINES} lines: {offenders}"


def test_chapter_packages_hold_only_their_standard_parts():
    """nclib/chapters holds chapter packages of __init__, checks, experiments, widgets and figures
    only; a part that outgrows one module may be a package of that name holding modules only."""
    def entries(folder):
        return [e for e in sorted(folder.iterdir()) if e.name != "__pycache__" and not e.name.startswith(".")]

    chapters = NCLIB / "chapters"
    extra = [e for e in entries(chapters) if not e.is_dir() and e.name != "__init__.py"]
    for package in (e for e in entries(chapters) if e.is_dir()):
        for e in entries(package):
            if e.is_dir() and f"{e.name}.py" in CHAPTER_PARTS and e.name != "__init__":
                extra += [f for f in entries(e) if f.is_dir() or f.suffix != ".py"]
                extra += [e] if not (e / "__init__.py").exists() or (package / f"{e.name}.py").exists() else []
            elif e.is_dir() or e.name not in CHAPTER_PARTS:
                extra.append(e)
    assert not extra, [str(e.relative_to(ROOT)) for e in extra]


def test_no_widgets_or_viz_module_outside_the_chapters():
    """Widgets and figures live in the chapters: there is no nclib/widgets.py or nclib/viz.py."""
    found = [str(p.relative_to(ROOT)) for name in ("widgets", "viz")
             for p in (NCLIB / f"{name}.py", NCLIB / name) if p.exists()]
    assert not found, found


def only_guards(source):
    """True when a code cell does nothing but assert (an unpacking line before the asserts is allowed)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False

    def guard(node):
        return isinstance(node, ast.Assert) or (isinstance(node, ast.For) and all(map(guard, node.body)))

    rest = [n for n in body if not guard(n)]
    return len(rest) < len(body) and (not rest or (len(rest) == 1 and rest[0] is body[0]
                                                   and isinstance(body[0], ast.Assign)))


def test_only_guards_recognises_assert_cells():
    """Assert-only cells (with one unpacking line first) are guards; a cell that also prints is not."""
    assert only_guards("assert 1 < 2\nassert 2 < 3")
    assert only_guards("(a, b) = 1, 2\nassert a < b\nfor x in (1, 2):\n    assert x")
    assert not only_guards("print(1)\nassert True")
    assert not only_guards("x = 1")


@pytest.mark.parametrize("path", AUTHORED, ids=notebook_id)
def test_guard_cells_are_tagged_and_collapsed(path):
    """nbval markers are cell tags, not comments, and a cell that only asserts is collapsed for the reader."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert "NBVAL_" not in cell.source, f"cell {i}: mark it with a tag such as 'nbval-check-output'"
        if only_guards(cell.source):
            assert cell.metadata.get("jupyter", {}).get("source_hidden"), \
                f"cell {i} only guards claims: collapse it (metadata jupyter.source_hidden)"
