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
    folders = sorted(os.path.relpath(d, memplan) for d, _, files in os.walk(memplan)
                     if d != memplan and "__init__.py" in files)   # (nested packages are rows of their own)
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
    # each raised for what the row says
    import numpy as np
    import pytest

    import memplan
    from memplan.examples import bundled
    from runtime.binding import bind, host_input

    assert "`PlanMismatch` (a plan made for another graph: a `PlanFormatError` and an `UnsafePlan`)" in row
    assert issubclass(errors.PlanMismatch, errors.PlanFormatError) and issubclass(errors.PlanMismatch, errors.UnsafePlan)
    graphs = bundled()
    with pytest.raises(errors.PlanMismatch, match="wrong graph"):
        bind(graphs["qkv"], memplan.plan(graphs["diamond"]))
    binding = bind(graphs["qkv"], memplan.plan(graphs["qkv"]))
    with pytest.raises(errors.ExecutorError, match="'x'"):
        host_input(graphs["qkv"], binding, "x", np.zeros(3, np.float32))


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


def _help_of(path: tuple[str, ...], option: str) -> str:
    from memplan.cli import build_parser

    parser = build_parser()
    for name in path:
        parser = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices[name]
    return " ".join(next(a.help for a in parser._actions if option in a.option_strings).split())


def test_simulate_event_us_help_says_the_plans_own_latency_is_the_default(tmp_path, monkeypatch, capsys):
    """``memplan simulate --help`` said ``--event-us`` defaults to "the cost model's" (2 us); a plan scheduled at
    ``--event-us 7`` is simulated at 7 us (the latency its solver block records), as docs/scheduling.md says.
    ``plan --event-us`` gave no default at all (the cost model's 2)."""
    import memplan
    from memplan.cli import main
    from memplan.examples import bundled
    from memplan.optimize.cost import DEFAULT_EVENT_US

    assert "(default: the one the plan was scheduled with, from its solver block; without one, the cost model's " \
        f"{DEFAULT_EVENT_US:g})" in _help_of(("simulate",), "--event-us")
    assert _help_of(("plan",), "--event-us").endswith(f"(default {DEFAULT_EVENT_US:g})")
    assert "uses the event latency the plan was scheduled with (stored in its solver block)" in " ".join(
        read("docs/scheduling.md").split())
    monkeypatch.chdir(tmp_path)
    memplan.save_graph(bundled()["qkv"], "qkv.json")
    assert main(["plan", "qkv.json", "-o", "p.json", "--streams", "3", "--event-us", "7", "-q"]) == 0
    capsys.readouterr()
    assert main(["simulate", "qkv.json", "p.json"]) == 0
    assert "4 event(s) at 7 us" in capsys.readouterr().out
    assert main(["plan", "qkv.json", "-o", "d.json", "--streams", "3", "-q"]) == 0
    capsys.readouterr()
    assert main(["simulate", "qkv.json", "d.json"]) == 0
    assert f"4 event(s) at {DEFAULT_EVENT_US:g} us" in capsys.readouterr().out
