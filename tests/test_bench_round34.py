"""Round 34: ``memplan bench planners --graph FILE`` (repeatable) plans the user's own graph files.

Before, the suite ran the bundled corpus only (argparse refused ``--graph``); now the files run instead of the
corpus, or beside the parts ``--corpus`` names, and a missing or bad file is one error line naming it, exit 2,
before any row."""

from __future__ import annotations

import json

import handgraphs as H
import pytest
from cli_contract import assert_bad_input, run_memplan

import memplan


@pytest.fixture
def graphs(tmp_path):
    a, b = tmp_path / "mine.json", tmp_path / "other.json"
    memplan.save_graph(H.fanout15(), str(a))
    memplan.save_graph(H.diamond(), str(b))
    return str(a), str(b)


def test_graph_files_alone_run_instead_of_the_corpus(capsys, tmp_path, graphs):
    """``--graph A --graph B`` runs A's and B's rows only (serial and multi-stream), named by file, verified."""
    a, b = graphs
    js = tmp_path / "rows.json"
    code, out, err = run_memplan(capsys, ["bench", "planners", "--graph", a, "--graph", b, "--solvers", "greedy,auto",
                                          "--json", js])
    assert code == 0, err
    rows = json.loads(js.read_text())
    assert {r["corpus"] for r in rows} == {"file"}
    assert {r["problem"] for r in rows} == {"mine", "other"}
    assert all(r["status"] != "INVALID" and r["verified"] for r in rows)
    mine = [r for r in rows if r["problem"] == "mine" and r["solver"] == "auto" and r["streams"] == 1]
    assert mine[0]["arena"] == memplan.plan(H.fanout15()).arena_bytes


def test_graph_files_run_beside_the_corpus_parts_named(capsys, graphs):
    a, _ = graphs
    code, out, err = run_memplan(capsys, ["bench", "planners", "--graph", a, "--corpus", "examples",
                                          "--only", "mine,chain", "--solvers", "size"])
    assert code == 0, err
    names = {(ln.split()[0], ln.split()[1]) for ln in out.splitlines()[2:]}
    assert names == {("examples", "chain"), ("file", "mine")}


@pytest.mark.parametrize("case", ["missing", "bad json", "not a graph", "directory"])
def test_a_missing_or_bad_graph_file_is_one_line_naming_it(capsys, tmp_path, graphs, case):
    a, _ = graphs
    bad = tmp_path / "bad.json"
    if case == "bad json":
        bad.write_text('{"format": "memplan.graph/1"')
    elif case == "not a graph":
        bad.write_text('{"format": "memplan.graph/1", "tensors": [], "nodes": [{"id": 1}]}')
    elif case == "directory":
        bad.mkdir()
    code, out, err = run_memplan(capsys, ["bench", "planners", "--graph", a, "--graph", bad, "--solvers", "size"])
    assert_bad_input(code, err, "--graph", str(bad))
    assert out == ""   # refused before the table began


def test_a_graph_file_given_twice_and_json_over_it_are_refused(capsys, tmp_path, graphs):
    a, _ = graphs
    code, _, err = run_memplan(capsys, ["bench", "planners", "--graph", a, "--graph", a, "--solvers", "size"])
    assert_bad_input(code, err, "--graph", a, "twice")
    code, _, err = run_memplan(capsys, ["bench", "planners", "--graph", a, "--json", a, "--solvers", "size"])
    assert_bad_input(code, err, "--json", a, "input graph")
    assert json.loads(open(a).read())["format"] == "memplan.graph/1"   # the input is intact


def test_corpus_options_without_their_part_and_only_naming_no_file_are_refused(capsys, graphs):
    a, _ = graphs
    code, _, err = run_memplan(capsys, ["bench", "planners", "--graph", a, "--sizes", "100"])
    assert_bad_input(code, err, "--sizes 100", "--graph alone")
    code, _, err = run_memplan(capsys, ["bench", "planners", "--graph", a, "--only", "nope"])
    assert_bad_input(code, err, "'nope'", "--graph files", "mine")
    code, out, err = run_memplan(capsys, ["bench", "planners", "--graph", a, "--streams", "2", "--solvers", "size"])
    assert code == 0, err   # --streams schedules the files: not idle
    assert {ln.split()[3] for ln in out.splitlines()[2:]} == {"1", "2"}
