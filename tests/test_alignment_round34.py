"""Round 34: ``memplan plan --alignment N`` / ``plan(graph, alignment=N)`` plan one run at a larger alignment.

Before, the CLI refused ``--alignment`` (only ``import`` had it) and ``plan()`` refused the keyword: a user had to
edit the graph file. The graph's own field keeps its meaning (contract rule 4: every root offset a multiple of
it), so a plan may only raise it; the plan's ``alignment`` field records the one used, and the plan verifies
against the unchanged graph. A smaller one, or one that is no alignment, is one error line (exit 2)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from cli_contract import assert_bad_input, run_memplan

import memplan
from memplan.errors import GraphError
from memplan.examples import moe


@pytest.fixture
def graph_file(tmp_path):
    path = tmp_path / "g.json"
    memplan.save_graph(moe(), str(path))
    return str(path)


def _roots_aligned(g: memplan.Graph, doc: dict, align: int) -> bool:
    offs = {t["id"]: t["offset"] for t in doc["tensors"]}
    return all(offs[t.id] % align == 0 for i, t in enumerate(g.tensors) if g.root[i] == i and offs[t.id] is not None)


@pytest.mark.parametrize("streams", [None, 3])
def test_cli_alignment_plans_at_it_records_it_and_verifies_against_the_graph(capsys, tmp_path, graph_file, streams):
    before = open(graph_file).read()
    out = tmp_path / "p.json"
    argv = ["plan", graph_file, "-o", out, "-q", "--alignment", "4096"] + (["--streams", str(streams)] if streams else [])
    code, _, err = run_memplan(capsys, argv)
    assert code == 0, err
    doc = json.loads(out.read_text())
    g = moe()
    assert doc["alignment"] == 4096 and _roots_aligned(g, doc, 4096)
    assert open(graph_file).read() == before   # the graph file is not changed
    assert run_memplan(capsys, ["verify", graph_file, out])[0] == 0
    # the plan of the graph whose field says 4096, byte for byte
    lib = memplan.plan(dataclasses.replace(g, alignment=4096), streams=streams)
    assert json.loads(lib.to_json()) == doc
    assert memplan.plan(g, streams=streams, alignment=4096).to_json() == lib.to_json()


def test_the_graphs_own_alignment_changes_nothing():
    g = moe()
    assert memplan.plan(g, alignment=g.alignment).to_json() == memplan.plan(g).to_json()


@pytest.mark.parametrize("value, words", [("128", ["alignment 128", "below", "256", "moe8"]),
                                          ("3", ["--alignment", "alignment 3 is not a positive power of two"]),
                                          ("0", ["--alignment", "not a positive power of two"]),
                                          (str(1 << 50), ["--alignment", "absurd"]),
                                          ("1e3", ["--alignment", "not an integer"])])
def test_cli_alignment_refused_in_one_line(capsys, tmp_path, graph_file, value, words):
    out = tmp_path / "p.json"
    code, _, err = run_memplan(capsys, ["plan", graph_file, "-o", out, "--alignment", value])
    assert_bad_input(code, err, *words)
    assert not out.exists()


@pytest.mark.parametrize("value, text", [(128, "below the alignment 256"), (256.0, "256.0 is not an integer"),
                                         (True, "not a positive power of two"), (3, "not a positive power of two")])
def test_library_alignment_refused_naming_it(value, text):
    with pytest.raises(GraphError, match=text):
        memplan.plan(moe(), alignment=value)


def test_devices_split_graph_keeps_the_graphs_alignment(capsys, tmp_path, graph_file):
    """``--devices 2 --alignment 4096``: the split graph written keeps the input's 256 (the run's 4096 is the
    plan's), and the two verify together."""
    out, split = tmp_path / "p.json", tmp_path / "split.json"
    code, _, err = run_memplan(capsys, ["plan", graph_file, "-o", out, "-q", "--alignment", "4096", "--devices", "2",
                                        "--graph-out", split])
    assert code == 0, err
    assert json.loads(split.read_text())["alignment"] == 256
    doc = json.loads(out.read_text())
    assert doc["alignment"] == 4096
    assert all(t["offset"] is None or t["offset"] % 4096 == 0 for t in doc["tensors"]
               if t["id"] in {x.id for x in memplan.load_graph(str(split)).tensors if x.view_of is None})
    assert run_memplan(capsys, ["verify", split, out])[0] == 0
