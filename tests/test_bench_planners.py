"""``memplan bench planners`` on a small corpus: rows, verification, baselines, JSON output."""

from __future__ import annotations

import argparse
import json

from memplan.benchmarks import planners
from memplan.cli import main


def args(**kw) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    planners.add_arguments(p)
    ns = p.parse_args([])
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_examples_serial_and_multi_stream(capsys):
    rows = planners.run(args(corpus="examples", solvers="ggml,size,greedy,auto", time_limit=2.0, minimalloc=None))
    out = capsys.readouterr().out
    assert "arena/lb" in out and "llama-tiny" in out
    assert {r["streams"] for r in rows} >= {1} and max(r["streams"] for r in rows) > 1
    for r in rows:
        if r["solver"] == "ggml" and r["streams"] > 1:
            assert r["status"] == "n/a" and r["arena"] is None  # ggml knows no streams
        else:
            assert r["verified"] and r["arena"] >= r["lower_bound"]
    # auto with a time limit is never worse than the heuristics on the same schedule
    by = {(r["problem"], r["streams"], r["solver"]): r for r in rows}
    for (g, s, solver), r in by.items():
        if solver == "auto":
            assert r["arena"] <= min(by[(g, s, "size")]["arena"], by[(g, s, "greedy")]["arena"])


def test_minimalloc_rows_and_json(tmp_path, minimalloc_dir):
    out = tmp_path / "rows.json"
    assert main(["bench", "planners", "--minimalloc", minimalloc_dir, "--corpus", "minimalloc", "--only", "A",
                 "--solvers", "ggml,size", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["solver"] for r in rows] == ["ggml", "size"]
    assert all(r["problem"] == "A" and r["capacity"] == 1048576 and r["verified"] for r in rows)
    assert all(r["lower_bound"] == 1048576 for r in rows)


def test_only_naming_no_problem_is_refused_before_running(capsys, minimalloc_dir):
    """``--only`` with a typo is one error line naming it (and the problems there are), exit 2, before any
    row runs: not an empty table and exit 0."""
    from cli_contract import assert_bad_input

    code = main(["bench", "planners", "--corpus", "examples", "--only", "qkv,ZZ", "--solvers", "ggml"])
    out, err = capsys.readouterr()
    assert_bad_input(code, err, "--only", "'ZZ'", "qkv")
    assert out == ""
    code = main(["bench", "planners", "--minimalloc", minimalloc_dir, "--corpus", "minimalloc", "--only", "qkv",
                 "--solvers", "ggml"])  # a problem of another corpus part
    assert_bad_input(code, capsys.readouterr().err, "'qkv'", "A")
    assert main(["bench", "planners", "--minimalloc", minimalloc_dir, "--corpus", "minimalloc,examples",
                 "--only", "A,qkv", "--solvers", "ggml"]) == 0
    rows = [ln.split()[:2] for ln in capsys.readouterr().out.splitlines()[2:]]
    assert {tuple(r) for r in rows} == {("minimalloc", "A"), ("examples", "qkv")}


def test_a_graph_without_concurrency_gets_one_row_per_solver():
    """docs/benchmarks.md: rows with 1 stream where graph_optimize found no useful concurrency are not
    repeated (a chain's optimised schedule is its serial one; repeated rows share one key in the JSON)."""
    from memplan.examples import bundled

    graphs = bundled()
    rows = planners._graph_rows("examples", "chain", graphs["chain"], ["size", "greedy"], 1.0, 4)
    assert [(r["streams"], r["solver"]) for r in rows] == [(1, "size"), (1, "greedy")]
    rows = planners._graph_rows("examples", "qkv", graphs["qkv"], ["size"], 1.0, 4)
    assert [r["streams"] for r in rows] == [1, 3]   # a real multi-stream schedule keeps its rows
