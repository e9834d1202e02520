"""No circle of imports among runtime/'s modules (runtime/aten/ above all), imports inside functions included.

farm-studio drew two circles in runtime/aten/ (round 77): byte_values -> hook_state / python_reads -> python_state ->
byte_values (4 files), and 14 files around guard -> program -> held_params / value_reads -> guard, each arrow taking a
leaf helper back up (``object_fields``, ``_code_names``, ``_active``, ``_real``, ``_DISABLE``, ``_named_tensors``...).
Those helpers now sit in leaf modules (``object_fields``, ``code_names``, ``value_modes``, ``read_names``) and the
steps that need the walks above them (``byte_places``), so data flows one way. The check reads every import, lazy ones
too, as farm-studio does (an import of an enclosing package is no tie: the package's ``__init__`` is Python's doing),
and a planted circle (round 76's ``held_params`` asking ``guard`` for ``object_fields``) shows it can fail.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from test_walls import ROOT, _module_name, _within, imports_of


def import_circles(root: Path, package: str = "runtime") -> list[list[str]]:
    """The circles (strongly connected sets of two or more modules) among ``package``'s modules under ``root``,
    reading every import, those inside functions too; each as its sorted modules, the list sorted."""
    paths = sorted((root / package).rglob("*.py"))   # (that package's files alone: memplan's parse is no need)
    modules = frozenset(_module_name(root, p) for p in paths)
    graph = {_module_name(root, p): [(str(p), i) for i in imports_of(root, p, modules)] for p in paths}
    edges = {m: sorted({i.target for _, i in imps if i.target != m and i.target in graph
                        and _within(i.target, (package,)) and not m.startswith(i.target + ".")})
             for m, imps in graph.items() if _within(m, (package,))}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):   # (Tarjan's, iterative: no recursion limit on a long chain)
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            at, nexts = work[-1]
            nxt = next(nexts, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(edges.get(nxt, ()))))
                elif nxt in on:
                    low[at] = min(low[at], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[at])
            if low[at] == index[at]:
                part = []
                while True:
                    m = stack.pop()
                    on.discard(m)
                    part.append(m)
                    if m == at:
                        break
                if len(part) > 1:
                    found.append(sorted(part))
    return sorted(found)


def test_runtime_modules_form_no_circle_of_imports():
    assert import_circles(ROOT) == []


def test_a_planted_circle_in_runtime_aten_is_found(tmp_path):
    shutil.copytree(ROOT / "runtime", tmp_path / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "runtime/aten/held_params.py"   # the arrow as it was: a lazy import of guard's helper
    path.write_text(path.read_text() + "\n\ndef _fields(torch, value):\n    from .guard import object_fields\n\n"
                    "    return object_fields(torch, value)\n")
    circles = import_circles(tmp_path)
    assert len(circles) == 1 and {"runtime.aten.guard", "runtime.aten.held_params",
                                  "runtime.aten.program"} <= set(circles[0])
