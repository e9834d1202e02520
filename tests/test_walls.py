"""The import walls of docs/architecture.md, checked on the source and by importing.

Each wall is a set of modules that must never reach a set of others. Reaching is read from the source
text (``ast``), every ``import`` and ``from ... import`` statement, lazy ones inside functions included,
and followed from module to module, so a wall also fails on a detour through a third module. Walls that
allow a lazy import ("torch only on call") follow only the imports run when a module is imported: those
outside every function and outside ``if TYPE_CHECKING:``. Importing a submodule also runs its package's
``__init__``; that is Python's doing, not a dependency of the code, so it is not followed.

- memplan never imports runtime; it loads torch, pycuda and onnx only on call;
- solvers/ never reach graph, schedule or lifetimes: they see only a BufferProblem;
- verify.py never reaches solvers, lifetimes, optimize or schedule;
- optimize/ never reaches plan or solvers: it proposes schedules and never plans;
- runtime/aten/ never imports pycuda; the rest of runtime/ (the pycuda executors) loads torch only on call;
- nothing imports memplan.cli but ``python -m memplan`` (memplan/__main__.py).

``test_each_wall_can_fail`` plants one import behind each wall in a copy of the tree and checks that the
wall names it, so a wall that quietly stopped checking would fail too.
"""

from __future__ import annotations

import ast
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("memplan", "runtime")
FRAMEWORKS = ("torch", "pycuda", "onnx")


@dataclass(frozen=True)
class Import:
    target: str   # the module imported: ``from .x import f`` is ``pkg.x``; ``from . import sub`` is ``pkg.sub``
    lazy: bool    # inside a function (or ``if TYPE_CHECKING:``): not run when the module is imported
    line: int
    in_function: bool = False   # lazy because it sits in a function (not only under ``if TYPE_CHECKING:``)


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(root: Path, name: str) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


@dataclass(frozen=True)
class _RawImport:
    """An import statement as written, before its relative part is resolved against a tree."""
    module: str | None    # ``import a.b`` is ``a.b``; ``from .x import f`` is ``x`` (with ``level`` 1)
    names: tuple[str, ...]   # the names after ``from ... import`` (empty for ``import a.b``)
    level: int
    lazy: bool
    line: int
    in_function: bool


@functools.cache
def _raw_imports(text: str, filename: str) -> tuple[_RawImport, ...]:
    """Every import statement of one source text. Cached on the text itself: walking the syntax tree is
    what a wall check costs, and the planted-break tests read the same unchanged files dozens of times
    (a planted file has new text, so it is walked afresh)."""
    found: list[_RawImport] = []

    def visit(node: ast.AST, lazy: bool, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            func = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            inner = lazy or func
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = True
            if isinstance(child, ast.Import):
                found.extend(_RawImport(a.name, (), 0, inner, child.lineno, func) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.append(_RawImport(child.module, tuple(a.name for a in child.names), child.level, inner,
                                        child.lineno, func))
            visit(child, inner, func)

    visit(ast.parse(text, filename=filename), False, False)
    return tuple(found)


def imports_of(root: Path, path: Path, modules: frozenset[str] | None = None) -> list[Import]:
    """Every import statement of one source file, relative ones resolved (against the files under ``root``,
    read afresh each call: only the parse is cached). ``modules``: the modules of ``PACKAGES`` under ``root``, listed
    by the caller this call (``_is_module`` asks the file system for each name otherwise)."""
    name = _module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []
    for raw in _raw_imports(path.read_text(), str(path.relative_to(root))):
        if not raw.names:
            found.append(Import(raw.module or "", raw.lazy, raw.line, raw.in_function))
            continue
        if raw.level:
            up = package.split(".")[: len(package.split(".")) - raw.level + 1]
            base = ".".join(up + ([raw.module] if raw.module else []))
        else:
            base = raw.module or ""
        for n in raw.names:
            sub = f"{base}.{n}"
            known = sub in modules if modules is not None and _within(sub, PACKAGES) else _is_module(root, sub)
            found.append(Import(sub if known else base, raw.lazy, raw.line, raw.in_function))
    return found


def import_graph(root: Path) -> dict[str, list[tuple[str, Import]]]:
    """Module -> its imports, for every module of memplan/ and runtime/ under ``root``."""
    graph: dict[str, list[tuple[str, Import]]] = {}
    paths = [path for package in PACKAGES for path in sorted((root / package).rglob("*.py"))]
    # (the same answers as ``_is_module`` for a name in PACKAGES, from this one listing: a stat of each name was most
    # of a graph's time once the parses are cached)
    modules = frozenset(_module_name(root, path) for path in paths if path.is_file())
    for path in paths:
        graph[_module_name(root, path)] = [(str(path.relative_to(root)), i) for i in imports_of(root, path, modules)]
    return graph


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def reach(graph, start: Callable[[str], bool], banned: tuple[str, ...], *, lazy: bool = True) -> list[str]:
    """Each import of a banned module reachable from a module ``start`` accepts, as the chain of imports
    that leads to it: ``banned <- importer (file:line) <- ... <- a start module``."""
    came: dict[str, tuple[str, str] | None] = {m: None for m in graph if start(m)}
    todo = list(came)
    breaks = []
    while todo:
        module = todo.pop(0)
        for where, imp in graph.get(module, ()):
            if imp.lazy and not lazy:
                continue
            if _within(imp.target, banned):
                chain, at = [imp.target, f"{module} ({where}:{imp.line})"], came[module]
                while at is not None:
                    chain.append(f"{at[0]} ({at[1]})")
                    at = came[at[0]]
                breaks.append(" <- ".join(chain))
            elif imp.target not in came:
                came[imp.target] = (module, f"{where}:{imp.line}")
                todo.append(imp.target)
    return breaks


def _in(*prefixes: str) -> Callable[[str], bool]:
    return lambda m: _within(m, prefixes)


#: name -> (who, what they never reach, whether lazy imports count)
WALLS: dict[str, tuple[Callable[[str], bool], tuple[str, ...], bool]] = {
    "memplan never imports runtime": (_in("memplan"), ("runtime",), True),
    "memplan loads torch, pycuda and onnx only on call": (_in("memplan"), FRAMEWORKS, False),
    "solvers see only a BufferProblem": (
        _in("memplan.solvers"), ("memplan.graph", "memplan.schedule", "memplan.lifetimes"), True),
    "verify shares no planner code": (
        _in("memplan.verify"), ("memplan.solvers", "memplan.lifetimes", "memplan.optimize", "memplan.schedule"),
        True),
    "optimize never plans": (_in("memplan.optimize"), ("memplan.plan", "memplan.solvers"), True),
    "runtime/aten never imports pycuda": (_in("runtime.aten"), ("pycuda",), True),
    "the pycuda executors load torch only on call": (
        lambda m: _within(m, ("runtime",)) and not _within(m, ("runtime.aten",)), ("torch",), False),
    "nothing imports the CLI": (lambda m: m != "memplan.__main__", ("memplan.cli",), True),
}


def wall_breaks(root: Path, wall: str) -> list[str]:
    start, banned, lazy = WALLS[wall]
    return reach(import_graph(root), start, banned, lazy=lazy)


@pytest.mark.parametrize("wall", WALLS)
def test_wall_holds(wall):
    breaks = wall_breaks(ROOT, wall)
    assert not breaks, f"{wall}:\n" + "\n".join(breaks)


#: wall -> (file, an import that breaks it): a direct break or a detour through another module
PLANTS = {
    "memplan never imports runtime": ("memplan/show.py", "def _f():\n    from runtime import binding\n"),
    "memplan loads torch, pycuda and onnx only on call": ("memplan/importers/onnx/common.py", "import onnx\n"),
    "solvers see only a BufferProblem": ("memplan/problem.py", "from .lifetimes import Lifetimes\n"),
    "verify shares no planner code": ("memplan/planfile.py", "def _f():\n    from .optimize import cost\n"),
    "optimize never plans": ("memplan/optimize/cost.py", "from ..solvers import solve\n"),
    "runtime/aten never imports pycuda": ("runtime/binding.py", "def _f():\n    import pycuda.driver\n"),
    "the pycuda executors load torch only on call": ("runtime/kernels/ops.py", "from torch import nn\n"),
    "nothing imports the CLI": ("runtime/layout.py", "def _f():\n    from memplan import cli\n"),
}


def test_each_wall_can_fail(tmp_path):
    assert set(PLANTS) == set(WALLS)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    for wall, (file, line) in PLANTS.items():
        path = tmp_path / file
        clean = path.read_text()
        path.write_text(clean + "\n" + line)
        assert wall_breaks(tmp_path, wall), (wall, file)
        path.write_text(clean)
        assert wall_breaks(tmp_path, wall) == [], wall


def test_a_break_names_its_chain(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "memplan/problem.py"
    path.write_text(path.read_text() + "\nfrom .lifetimes import Lifetimes\n")
    (chain,) = wall_breaks(tmp_path, "solvers see only a BufferProblem")
    assert chain.startswith("memplan.lifetimes <- memplan.problem (memplan/problem.py:"), chain


def test_importing_all_of_memplan_loads_no_framework_and_no_runtime():
    """The same wall by running it: every memplan module imported, none of runtime, torch, pycuda, onnx."""
    code = ("import pkgutil, sys, importlib, memplan\n"
            "for m in pkgutil.walk_packages(memplan.__path__, 'memplan.'):\n"
            "    if m.name != 'memplan.__main__': importlib.import_module(m.name)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'runtime', 'torch', 'pycuda', 'onnx'}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


def import_circles(root: Path, package: str = "memplan") -> list[list[str]]:
    """Circles among ``package``'s modules, reading every import outside a function (those under
    ``if TYPE_CHECKING:`` too: a type a module names is a tie to it, and a circle of ties makes two modules one).
    Each circle once, as the modules on it, starting at the least name."""
    graph = import_graph(root)
    edges = {m: sorted({i.target for _, i in imps if not i.in_function and _within(i.target, (package,))
                        and i.target != m and i.target in graph})
             for m, imps in graph.items() if _within(m, (package,))}
    return circles_of(edges)


def circles_of(edges: dict[str, list[str]]) -> list[list[str]]:
    """The circles of a module -> imported modules map, each once, starting at its least name."""
    circles: set[tuple[str, ...]] = set()
    for start in sorted(edges):
        todo = [(start, [start])]
        while todo:
            at, path = todo.pop()
            for nxt in edges.get(at, ()):
                if nxt == start:
                    i = path.index(min(path))
                    circles.add(tuple(path[i:] + path[:i]))
                elif nxt not in path and nxt > start:
                    todo.append((nxt, path + [nxt]))
    return [list(c) for c in sorted(circles)]


def test_memplan_modules_form_no_circle(tmp_path):
    """DESIGN.md's data flows one way; farm-studio counts a ``TYPE_CHECKING`` import as a tie, and so does this.
    A planted circle (graph <-> planfile, as it was before ``jsoncopy``) shows the check can fail."""
    assert import_circles(ROOT) == []
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "memplan/graph.py"
    path.write_text(path.read_text() + "\nfrom .planfile import json_text\n")
    assert import_circles(tmp_path) == [["memplan.graph", "memplan.planfile"]]
