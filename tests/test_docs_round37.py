"""Prose claims of README.md, docs/*.md and the CLI's ``--help`` that a new user reads and test_docs_round32.py's
block runner does not execute: each pinned where it is cheap, so that the words cannot drift from the code."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

import memplan
from memplan.cli import build_parser, main
from memplan.examples import bundled
from memplan.solvers import SolveOptions
from memplan.solvers.auto import POLISH_BUFFERS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(rel: str) -> str:
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def options_with_defaults(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("memplan",)):
    """(command, option, default, help) of every option of every (sub)command that has a default of its own."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options_with_defaults(sub, (*path, name))
        elif (action.option_strings and action.dest != "help"
              and action.default not in (None, False, argparse.SUPPRESS, [])):
            yield " ".join(path), action.option_strings[-1], action.default, action.help or ""


def test_every_option_with_a_default_says_it_in_its_help():
    """``memplan show --help`` listed ``--top`` without its 10, ``bench schedule --budget`` without its 1.05,
    ``--workers`` without its 1: a user reading ``--help`` could not tell what a run without them does."""
    silent = [(cmd, opt, default) for cmd, opt, default, text in options_with_defaults(build_parser())
              if "default" not in text]
    assert silent == []


def test_option_defaults_the_help_names_are_the_defaults(capsys):
    """The numbers the help texts give are the parser's defaults."""
    found = {(cmd, opt): (default, text) for cmd, opt, default, text in options_with_defaults(build_parser())}
    assert found[("memplan show", "--top")] == (10, "how many of the largest tensors to list (default 10)")
    assert found[("memplan plan", "--workers")][0] == found[("memplan csv", "--workers")][0] == 1
    assert "(default 1.05)" in found[("memplan bench schedule", "--budget")][1]
    assert found[("memplan bench schedule", "--budget")][0] == 1.05
    assert found[("memplan bench scale", "--mode")][0] == ["serial", "auto"]
    assert found[("memplan csv", "--solver")][0] == "search" and found[("memplan plan", "--solver")][0] == "auto"


def test_the_default_solvers_short_search_is_described_as_it_runs():
    """README, ``help(memplan.plan)`` and ``plan --help`` name the default's search of small problems by its size
    (README said the solver block then names ``search``: only when that search found the smaller arena)."""
    readme = read("README.md")
    assert f"a problem of up to {POLISH_BUFFERS} buffers that the heuristics leave above its lower bound" in readme
    assert "names `search` only where that search found the smaller arena" in readme
    for doc in (memplan.plan.__doc__, SolveOptions.__doc__):
        assert f"at most {POLISH_BUFFERS} buffers" in " ".join(doc.split())
    solver_help = next(a.help for a in build_parser()._subparsers._group_actions[0].choices["plan"]._actions
                       if "--solver" in a.option_strings)
    assert f"at most {POLISH_BUFFERS} buffers" in solver_help
    auto_row = next(line for line in read("docs/benchmarks.md").splitlines() if line.startswith("| `auto` |"))
    assert f"on a problem of at most {POLISH_BUFFERS} buffers still above its bound a short `search`" in auto_row
    # a small problem the heuristics already solve at its bound: no search runs, and the block names the heuristic
    plan = memplan.plan(bundled()["qkv"])
    assert plan.solver["name"] == "greedy" and "search" not in plan.solver["tried"]


def test_format_doc_worked_example_graph_is_what_memplan_example_writes(tmp_path, capsys):
    """docs/format.md's worked example says ``memplan example`` writes its graph as ``qkv.json``: the same
    document (its weights were 64 KiB / 16 KiB there, 4 MiB / 1 MiB in the bundled file)."""
    text = read("docs/format.md")
    section = text[text.index("## Worked example"):]
    assert "`memplan example`\nwrites this graph as `qkv.json`" in section
    shown = json.loads(section.split("```json\n")[1].split("```", 1)[0])
    assert main(["example", "-o", str(tmp_path)]) == 0
    capsys.readouterr()
    written = json.loads((tmp_path / "qkv.json").read_text())
    assert shown == written


def test_import_memplan_and_its_help_load_no_framework_or_solver_backend():
    """``import memplan`` and ``help(memplan)`` load numpy (a requirement) but none of torch, onnx, onnxruntime,
    transformers, matplotlib, ortools (CP-SAT, loaded when an exact solve runs) or the runtime package."""
    code = ("import contextlib, io, sys, memplan\n"
            "with contextlib.redirect_stdout(io.StringIO()): help(memplan); help(memplan.plan)\n"
            "heavy = {'torch', 'onnx', 'onnxruntime', 'transformers', 'matplotlib', 'ortools', 'scipy', 'pycuda',"
            " 'runtime'}\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


def test_readme_install_note_names_what_each_extra_unlocks(tmp_path, monkeypatch, capsys):
    """README: the planner alone runs every command but ``import`` and ``draw``, which name the extra they need."""
    readme = read("README.md")
    assert re.search(r"runs every command but `import`\s+and `draw`, which then name the extra they need", readme)
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x07")
    assert main(["import", str(model), "-o", str(tmp_path / "g.json")]) == 2
    assert "pip install 'memplan[onnx]'" in capsys.readouterr().err
    graph, plan = tmp_path / "qkv.json", tmp_path / "p.json"
    memplan.save_graph(bundled()["qkv"], str(graph))
    assert main(["plan", str(graph), "-o", str(plan), "-q"]) == 0
    assert main(["draw", str(graph), str(plan), "-o", str(tmp_path / "m.png")]) == 2
    assert "pip install 'memplan[plot]'" in capsys.readouterr().err


def test_format_doc_names_every_solver_block_key_a_one_device_plan_writes():
    """docs/format.md's ``solver`` bullet lists the block's keys; ``bound``, ``tried`` and ``rejoined`` (every
    default plan has them where they apply) were not named there."""
    text = read("docs/format.md")
    bullet = text[text.index("- `solver`: how the offsets were found"):text.index("## When is a plan safe?")]
    named = set(re.findall(r"`(\w+)`", bullet))
    written: set[str] = set()
    for graph in bundled().values():
        for options in ({}, {"streams": "auto", "fused_groups": True}, {"solver": "greedy"},
                        {"solver": "search", "time_limit": 0.05}):
            written |= set(json.loads(memplan.plan(graph, **options).to_json())["solver"])
    assert {"bound", "tried", "rejoined", "schedule"} <= written
    assert written - named == set()


def test_aten_doc_module_table_lists_every_module():
    """docs/aten.md's "Modules" table gives each file of runtime/aten its one job; ``ambient.py`` (the default
    dtype, backend flags and modes a call meets) and ``profile_gap.py`` were missing."""
    text = read("docs/aten.md")
    table = text[text.index("## Modules"):text.index("## How each node lands in planned memory")]
    listed = set(re.findall(r"`(\w+\.py)`", table))
    files = {f for f in os.listdir(os.path.join(ROOT, "runtime", "aten")) if f.endswith(".py") and f != "__init__.py"}
    assert files - listed == set()


def test_readme_stdin_sentence_is_what_the_cli_does(tmp_path, monkeypatch, capsys):
    """README: ``-o -`` is stdout, an input ``-`` is refused (never read from standard input); ``./-`` is a file."""
    assert "inputs are always files, never standard input (`memplan plan - -o P` is refused" in read("README.md")
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "-", "-o", "p.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not from standard input" in err and "./- names a file called '-'" in err
    assert not (tmp_path / "p.json").exists()
    memplan.save_graph(bundled()["qkv"], str(tmp_path / "-"))
    assert main(["plan", "./-", "-o", "-", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["graph"] == "qkv"
