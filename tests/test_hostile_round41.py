"""Round 41 (hostile): the ``memplan`` command line and the graph/plan JSON readers and writers.

Each test names the input, what the library or command did with it, and what it does now.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from cli_contract import assert_bad_input, leftovers, run_memplan

import memplan
from memplan.examples import diamond

# ---- 1. keys that are no strings: kept as the text JSON writes, so a round trip is the identity --------------------

def _tiny_plan() -> memplan.Plan:
    return memplan.plan(diamond(), solver="greedy")


@pytest.mark.parametrize("change", [
    {"solver": {"name": "x", 3: {4: 5}}},
    {"extra": {7: "x", "z": {None: 1, 2.5: [True, {False: 0}]}}},
    {"solver": {"name": "x", "shape": (2, {1: (3,)})}},
])
def test_a_plan_with_keys_that_are_no_strings_equals_its_round_trip(tmp_path, change):
    """A Plan built in code with a solver block or extra field ``{3: {4: 5}}`` (or a tuple in one) kept the int keys
    (and the tuple), while its JSON wrote "3" (and a list): the plan read back from its own file compared unequal
    (``load_plan(save_plan(p)) != p``), and ``p.solver[3]`` was ``None`` after the round trip. The graph's ``attrs``
    already kept each key as its JSON text; the plan's blocks do too now, at construction."""
    p = dataclasses.replace(_tiny_plan(), **change)
    path = tmp_path / "p.json"
    memplan.save_plan(p, str(path), timings=True)
    back = memplan.load_plan(str(path))
    assert back == p
    assert back.solver == p.solver and back.extra == p.extra
    assert back.to_json(timings=True) == p.to_json(timings=True) == path.read_text()
    assert all(type(k) is str for k in {**p.solver, **p.extra})


def test_a_plan_block_keeps_its_keys_as_json_text_at_once():
    p = dataclasses.replace(_tiny_plan(), solver={"name": "x", 3: {4: 5}}, extra={7: (1, 2)})
    assert p.solver == {"name": "x", "3": {"4": 5}}
    assert p.extra == {"7": [1, 2]}


def test_a_solver_tuple_is_still_refused_as_no_mapping(tmp_path):
    """The control: a block that is no mapping at all is still named by its own type when saved."""
    p = dataclasses.replace(_tiny_plan(), solver=(1, 2))
    with pytest.raises(memplan.PlanFormatError, match="solver"):
        memplan.save_plan(p, str(tmp_path / "p.json"))
    assert not (tmp_path / "p.json").exists()


def test_graph_attrs_with_int_keys_round_trip_byte_for_byte(tmp_path):
    """The graph side (a guard: its ``attrs`` were already kept as their JSON text at build)."""
    b = memplan.GraphBuilder("g")
    b.node("n", "OP", [b.input("x", 8, meta={1: {2: (3, 4)}})], b.output("y", 8), **{"5": {6: None}})
    g = b.build()
    path = tmp_path / "g.json"
    memplan.save_graph(g, str(path))
    back = memplan.load_graph(str(path))
    assert back.tensors[0].attrs == g.tensors[0].attrs == {"meta": {"1": {"2": [3, 4]}}}
    assert back.nodes[0].attrs == g.nodes[0].attrs
    assert memplan.io.graph_text(back) == memplan.io.graph_text(g) == path.read_text()


# ---- 2. an existing output: every single-file output replaces it, and says so in its --help -------------------------

OUTPUT_HELP = [
    (["plan"], "-o OUTPUT"),
    (["plan"], "--graph-out"),
    (["csv"], "-o OUTPUT"),
    (["import"], "-o OUTPUT"),
    (["draw"], "-o OUTPUT"),
    (["trace"], "-o OUTPUT"),
    (["bench", "scale"], "--json"),
    (["bench", "planners"], "--json"),
]


def _option_help(capsys, command, option) -> str:
    code, out, _ = run_memplan(capsys, [*command, "--help"])
    assert code == 0
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(option))
    text = [lines[start]]
    for line in lines[start + 1:]:
        if line.strip().startswith("-") or not line.startswith(" " * 10):
            break
        text.append(line)
    return " ".join(" ".join(text).split())


@pytest.mark.parametrize("command, option", OUTPUT_HELP)
def test_every_single_file_output_says_in_help_that_it_replaces_an_existing_file(capsys, command, option):
    """``bench --json FILE`` replaced an existing file without a word in ``--help`` ("also write the results as JSON
    (atomically)"), as ``plan -o`` and every other single-file output do: one rule, now said by each of them."""
    words = _option_help(capsys, command, option)
    assert "an existing file there is replaced, never one of the command's inputs" in words, words


def test_example_help_says_it_refuses_another_file(capsys):
    assert "with other bytes is refused" in _option_help(capsys, ["example"], "-o DIR")


def test_bench_json_replaces_an_existing_file_as_plan_o_does(tmp_path, capsys, diamond_files):
    """The documented rule, run: an unrelated file at ``--json`` (or ``-o``) is replaced, atomically, with no
    temporary file left; an input never is."""
    g, _ = diamond_files
    out = tmp_path / "results.json"
    out.write_text('{"mine": 1}\n')
    code, _, err = run_memplan(capsys, ["bench", "planners", "--graph", str(g), "--solvers", "greedy",
                                        "--json", str(out)])
    assert code == 0, err
    rows = json.loads(out.read_text())
    assert isinstance(rows, list) and rows
    plan_out = tmp_path / "plan.json"
    plan_out.write_text('{"mine": 1}\n')
    assert run_memplan(capsys, ["plan", str(g), "-o", str(plan_out), "-q"])[0] == 0
    assert json.loads(plan_out.read_text())["format"] == "memplan.plan/1"
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("alias", ["./g.json", "link.json"])
def test_bench_json_never_replaces_its_input_graph(tmp_path, capsys, diamond_files, monkeypatch, alias):
    g, _ = diamond_files
    monkeypatch.chdir(tmp_path)
    os.symlink("g.json", "link.json")
    before = g.read_bytes()
    code, _, err = run_memplan(capsys, ["bench", "planners", "--graph", "g.json", "--solvers", "greedy",
                                        "--json", alias])
    assert_bad_input(code, err, "--json", "input graph", "refusing to overwrite an input")
    assert g.read_bytes() == before
