"""Round 34 review (review34a): ``bench planners --graph`` with two files of one name.

The rows are named by the file name less ``.json``: ``a/model.json`` and ``b/model.json`` gave two sets of rows
both named ``model`` (table and JSON alike), which no reader could tell apart, and ``--only model`` ran both."""

from __future__ import annotations

import handgraphs as H
from cli_contract import assert_bad_input, run_memplan

import memplan


def test_two_graph_files_of_one_name_are_refused_naming_both(capsys, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = tmp_path / "a" / "model.json", tmp_path / "b" / "model.json"
    memplan.save_graph(H.fanout15(), str(a))
    memplan.save_graph(H.diamond(), str(b))
    code, out, err = run_memplan(capsys, ["bench", "planners", "--graph", a, "--graph", b, "--solvers", "size"])
    assert_bad_input(code, err, "--graph", str(a), str(b), "'model'")
    assert out == ""
