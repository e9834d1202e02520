"""Round 38's checks of README.md, docs/*.md, ``--help`` and the module docstrings against the code: each claim
that was false or missing is pinned here, so that the words cannot drift from the code again."""

from __future__ import annotations

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(rel: str) -> str:
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def _py_files(folder: str) -> set[str]:
    return {f for f in os.listdir(os.path.join(ROOT, folder)) if f.endswith(".py")}


def test_architecture_module_table_names_every_module_of_memplan():
    """docs/architecture.md named ``solvers/named.py`` but not ``options.py``, ``placement.py``, ``rejoin.py``,
    ``optimize/memorder.py``, ``timeline.py``, ``baselines.py``, ``errors.py``, ``argtypes.py``, ``examples.py``,
    ``generators.py``, ``_gc.py``, the importers' and viz's modules or ``benchmarks/`` at all. Its table now lists
    each folder's files, and exactly those: a new module, or a renamed or removed one, fails here."""
    text = read("docs/architecture.md")
    start = text.index("| folder | modules |")
    lines = text[start:].splitlines()
    rows = lines[2:next(i for i, line in enumerate(lines) if not line.startswith("|"))]
    listed: dict[str, set[str]] = {}
    for row in rows:
        folder, modules = (cell.strip() for cell in row.strip("|").split("|"))
        listed[folder.strip("`")] = set(re.findall(r"`(\w+\.py)`", modules))
    memplan = os.path.join(ROOT, "memplan")
    folders = sorted(d for d in os.listdir(memplan) if os.path.isfile(os.path.join(memplan, d, "__init__.py")))
    expected = {"memplan/": _py_files("memplan") - {"__init__.py"}}
    expected.update({f"{d}/": _py_files(os.path.join("memplan", d)) for d in folders})
    assert listed == expected


def test_runtime_doc_pieces_table_names_every_runtime_module():
    """docs/runtime.md's "Pieces" table gives each file of runtime/ its job; ``bits.py``, ``oom.py``,
    ``tool_args.py``, ``torch_timing.py`` and ``tools/bound.py`` were named nowhere in the docs."""
    text = read("docs/runtime.md")
    table = text[text.index("## Pieces"):text.index("The CPU tests also run the pycuda executors")]
    listed = set(re.findall(r"`(runtime/[\w/]+\.py)`", table))
    files = {f"{folder}/{f}" for folder in ("runtime", "runtime/tools", "runtime/models")
             for f in _py_files(folder) if f != "__init__.py"}
    assert files - listed == set()


def test_readme_error_row_names_every_memplan_error():
    """README's ``MemplanError`` row is "the base of every error memplan raises on purpose", followed by a list
    that left out ``PlanMismatch`` (``verify``, ``simulate``, ``runtime.binding.bind`` of a plan for another graph)
    and ``ExecutorError`` (what the runtime refuses): every subclass in ``memplan.errors`` is named there."""
    import memplan.errors as errors

    row = next(line for line in read("README.md").splitlines() if line.startswith("| `MemplanError` |"))
    defined = {name for name, obj in vars(errors).items()
               if isinstance(obj, type) and issubclass(obj, errors.MemplanError) and obj.__module__ == errors.__name__}
    assert {name for name in defined if f"`{name}`" not in row} == set()


def test_format_doc_worked_example_plan_is_what_memplan_plan_writes():
    """docs/format.md's worked example walks through its plan's order, events and offsets (``q`` reuses ``x``'s
    bytes, ``a`` reuses ``xn``'s...), but only its arena, bound, streams and event count were checked: the whole
    excerpt, but for the elided ``solver`` keys, is the plan ``memplan plan qkv.json --streams 3`` writes."""
    import json

    import memplan

    section = read("docs/format.md")
    section = section[section.index("## Worked example"):]
    graph_doc, plan_doc = (json.loads(part.split("```", 1)[0]) for part in section.split("```json\n")[1:3])
    written = json.loads(memplan.plan(memplan.graph_from_dict(graph_doc), streams=3).to_json())
    shown_solver = {k: v for k, v in plan_doc.pop("solver").items() if k != "..."}
    assert {k: v for k, v in written.items() if k != "solver"} == plan_doc
    assert {k: written["solver"][k] for k in shown_solver} == shown_solver
