"""Round 39 (hostile, CLI): the fuzzer's new classes of input. ``corrupt.semantic`` keeps a file well formed but
changes its meaning (a graph with the same names and other sizes, kinds or alignment under its plans; a plan with a
hazard planted) and ``run_case`` holds every ``verify`` that passes to the brute-force oracle; ``without_modules``
runs where OR-Tools does not import (``--solver cpsat`` was a traceback there)."""

from __future__ import annotations

import random

import pytest


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from corrupt import make_inputs

    return make_inputs(str(tmp_path_factory.mktemp("round39")))


def test_well_formed_edits_of_changed_meaning_keep_the_cli_contract(inputs):
    """Seeds 0..119: ``verify`` refuses every edit that made the pair unsafe (the oracle judges each one it passes),
    and no command gives a traceback or a second line for a graph that lost its plans."""
    from corrupt import commands, run_case, semantic

    passed = 0
    for seed in range(120):
        rnd = random.Random(seed)
        target = rnd.choice(sorted(n for n in inputs.files if not n.endswith(".csv")))
        what, data = semantic(inputs, target, rnd)
        for argv in commands(inputs, target):
            if argv[0] in ("verify", "show"):
                code, problem = run_case(inputs, target, data, argv, timeout=60)
                assert problem is None, f"seed {seed}: {target} ({what}): memplan {' '.join(argv)}: {problem}"
                passed += argv[0] == "verify" and code == 0
    assert passed   # (some edits keep the plan safe: the oracle was asked, and agreed)


def test_a_verify_that_passes_an_unsafe_plan_is_reported(inputs, monkeypatch):
    """The check bites: with the verifier made to pass everything, a plan with every tensor at offset 0 is a finding."""
    import importlib
    import json

    from corrupt import run_case

    # (the module: ``memplan.verify`` is the function, which the package imports over the module's name)
    monkeypatch.setattr(importlib.import_module("memplan.verify"), "verify", lambda *a, **k: None)
    graph, plan = json.loads(inputs.files["qkv.json"]), json.loads(inputs.files["qkv.ms.json"])
    assert not any(t.get("view_of") for t in graph["tensors"])
    bad = dict(plan, tensors=[dict(t, offset=None if t["offset"] is None else 0) for t in plan["tensors"]])
    code, problem = run_case(inputs, "qkv.ms.json", json.dumps(bad).encode(),
                             ["verify", inputs.path("qkv.json"), inputs.path("qkv.ms.json")])
    assert code == 0 and problem.startswith("unverified plan: verify passed a plan the oracle finds unsafe")


@pytest.mark.parametrize("target, argv", [
    ("qkv.json", ["plan", "{qkv.json}", "-o", "{out.json}", "--solver", "cpsat"]),
    ("qkv.json", ["plan", "{qkv.json}", "-o", "{out.json}", "--streams", "2", "--solver", "cpsat", "--time-limit", "1"]),
    ("p.csv", ["csv", "{p.csv}", "-o", "{out.csv}", "--solver", "cpsat"]),
], ids=["plan", "plan-streams", "csv"])
def test_cpsat_where_ortools_does_not_import_keeps_the_cli_contract(inputs, target, argv):
    """It was "traceback: ModuleNotFoundError: import of ortools.sat.python halted" (fuzz_cli --no-ortools)."""
    from corrupt import run_case, without_modules

    argv = [inputs.path(a[1:-1]) if a.startswith("{") else a for a in argv]
    with without_modules("ortools"):
        code, problem = run_case(inputs, target, inputs.files[target], argv, timeout=60)
    assert problem is None and code == 2
    code, problem = run_case(inputs, target, inputs.files[target], argv, timeout=60)   # (and imports again after)
    assert problem is None and code == 0


def _memplan_without_stderr(argv, cwd):
    """``memplan argv 2>&-``: started with file descriptor 2 closed, so Python's ``sys.stderr`` is None."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "memplan", *argv], cwd=cwd, env=env, timeout=120, stdout=subprocess.PIPE,
                          stderr=None, preexec_fn=lambda: os.close(2), text=True)


@pytest.mark.parametrize("argv", [["plan", "g.json", "-o", "-"], ["plan", "g.json", "-o", "-", "--seed", "3"],
                                  ["trace", "g.json", "p.json", "-o", "-"]], ids=["plan", "plan-warning", "trace"])
def test_a_document_on_stdout_stays_whole_where_stderr_is_closed(tmp_path, argv):
    """``memplan plan g.json -o - 2>&-``: ``print(note, file=sys.stderr)`` with ``sys.stderr`` None prints to stdout,
    so the summary line ("-: arena 3072 B, ...") ended the plan JSON (exit 0, and the document no longer parsed)."""
    import json

    import memplan
    from memplan.examples import diamond

    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    memplan.save_plan(memplan.plan(diamond()), str(tmp_path / "p.json"))
    r = _memplan_without_stderr(argv, tmp_path)
    assert r.returncode == 0
    doc = json.loads(r.stdout)   # (it raised "Extra data")
    assert doc.get("graph", doc.get("otherData", {}).get("graph")) == "diamond"


def test_an_error_where_stderr_is_closed_writes_nothing_to_stdout(tmp_path):
    r = _memplan_without_stderr(["plan", "missing.json", "-o", "-"], tmp_path)
    assert r.returncode == 2 and r.stdout == ""   # (it was "memplan: error: missing.json: no such file" on stdout)
