"""Round 79 (cli79): the ``memplan`` command and ``memplan.io`` under hostile use.

Why: every number the command reports is a claim a user acts on: a lower bound must be what the library can prove
(the graph path already sharpens its bound by alignment), a refusal must say what it is sure of, and an error must
name the offending value as the file spells it. These tests pin the cases round 79 found broken."""

from __future__ import annotations

import numpy as np
import pytest

#: three 4-byte buffers live together at alignment 256: every packing needs 256 + 256 + 4 = 516 B
ALIGNED_CSV = "id,lower,upper,size,alignment\n0,0,10,4,256\n1,0,10,4,256\n2,0,10,4,256\n"


@pytest.mark.parametrize("solver", ["greedy", "size", "ggml"])
def test_csv_alignment_column_bound_counts_the_rounding(tmp_path, capsys, solver):
    """A minimalloc CSV with an ``alignment`` column: its bound added raw sizes (12 B for three 4-byte buffers at
    alignment 256), so a heuristic's optimal 516 B packing was reported "lower bound 12, HEURISTIC", where the same
    problem as a graph reports 516 OPTIMAL with every solver. The interval bound now rounds all but the highest of
    the buffers live together (``problem.aligned_interval_bound``)."""
    from cli_contract import run_memplan

    src = tmp_path / "a.csv"
    src.write_text(ALIGNED_CSV)
    code, _, err = run_memplan(capsys, ["csv", src, "-o", tmp_path / "o.csv", "--solver", solver])
    assert code == 0, err
    assert "arena 516, lower bound 516" in err and "OPTIMAL" in err, err


def test_csv_capacity_below_the_aligned_bound_is_refused_as_impossible(tmp_path, capsys):
    """``memplan csv --solver greedy --capacity 515`` of that CSV said "not found by the greedy heuristic (it proves
    nothing: the search or cpsat solver may find one) ... lower bound 12": an advice to run a search that cannot
    succeed. Now the bound proves it: "none exists", with the bound 516, as the exact solvers say."""
    from cli_contract import assert_bad_input, run_memplan

    src = tmp_path / "a.csv"
    src.write_text(ALIGNED_CSV)
    out = tmp_path / "o.csv"
    code, _, err = run_memplan(capsys, ["csv", src, "-o", out, "--solver", "greedy", "--capacity", "515"])
    assert_bad_input(code, err, "a.csv", "capacity 515", "none exists", "lower bound 516")
    assert not out.exists()


def test_csv_gaps_and_alignment_bound_counts_the_rounding():
    """The bound of a CSV with a ``gaps`` column (``_gap_bound``: the bytes live out of every gap) added raw sizes
    too: buffer 0 in a gap while 1 lives, 2 live throughout, alignment 256 need 260 B (256 + 4 at every time step),
    and the bound was 8."""
    from memplan.io.minimalloc import parse_csv

    text = "id,lower,upper,size,alignment,gaps\n0,0,10,4,256,2-5\n1,2,5,4,256,\n2,0,10,4,256,\n"
    table = parse_csv(text, "g.csv")
    assert table.problem().lower_bound == 260


def test_interval_problem_default_bound_is_sharpened_by_alignment_and_stays_a_bound():
    """``BufferProblem``'s own bound of an interval problem (no order, no compatible pairs) rounds all but the largest
    rounding of each live set, and never passes what the exact solver packs (a proven bound: the solvers stop at it
    and call that OPTIMAL). Random small problems, alignment 1..64."""
    from memplan.problem import BufferProblem, interval_lower_bound
    from memplan.solvers import solve

    rng = np.random.default_rng(79)
    for _ in range(40):
        n = int(rng.integers(1, 7))
        lower = rng.integers(0, 6, n)
        upper = lower + rng.integers(1, 5, n)
        sizes = rng.integers(0, 40, n)
        a = int(2 ** rng.integers(0, 7))
        p = BufferProblem(sizes, lower, upper, alignment=a)
        assert p.lower_bound >= interval_lower_bound(sizes, lower, upper)
        best = solve(BufferProblem(sizes, lower, upper, alignment=a, lower_bound=0), "search")
        assert p.lower_bound <= best.arena, (sizes, lower, upper, a)
    assert BufferProblem(np.array([4, 4, 4]), np.zeros(3, int), np.ones(3, int), alignment=256).lower_bound == 516


def test_cpsat_component_of_an_aligned_interval_problem_keeps_the_aligned_bound():
    """``cpsat`` solves each component of an interval problem as a problem of its own (``decompose.subproblem``),
    whose bound added raw sizes too: the component of three 4-byte buffers at alignment 256 had a bound of 12 B,
    where its packings need 516 B. It now has the whole problem's aligned bound of that component."""
    from memplan.problem import BufferProblem
    from memplan.solvers.decompose import components, subproblem

    lower, upper = np.array([0, 0, 0, 20, 20]), np.array([10, 10, 10, 30, 30])
    p = BufferProblem(np.array([4, 4, 4, 8, 8]), lower, upper, alignment=256)
    parts = components(p)
    assert [subproblem(p, idx).lower_bound for idx in parts] == [516, 264]


@pytest.mark.parametrize("command", ["simulate", "trace"])
def test_recorded_event_latency_refusal_quotes_the_value_as_the_file_spells_it(tmp_path, capsys, command):
    """A plan whose ``solver.schedule.event_us`` was edited to ``true`` was refused by ``simulate`` and ``trace`` as
    "event_us 'True' is not a finite non-negative number", a value the file does not hold (Python's spelling, in
    quotes, as if a string), ``[true]`` as ``'[True]'`` and the number -1 as the string ``'-1'``. Now ``true``,
    ``[true]`` and ``-1``, as ``planfile`` quotes the plan's other fields (``_json_shown``)."""
    import json

    from cli_contract import assert_bad_input, run_memplan

    import memplan
    from memplan.examples import qkv_attention

    g, p = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(qkv_attention(), str(g))
    assert run_memplan(capsys, ["plan", g, "-o", p, "--streams", "2", "-q"])[0] == 0
    doc = json.loads(p.read_text())
    for value, shown in ((True, "event_us true is not"), ([True], "event_us [true] is not"),
                         (-1, "event_us -1 is not"), ("5", "event_us '5' is not")):
        doc["solver"]["schedule"]["event_us"] = value
        p.write_text(json.dumps(doc))
        argv = [command, g, p] + (["-o", tmp_path / "t.json"] if command == "trace" else [])
        code, _, err = run_memplan(capsys, argv)
        assert_bad_input(code, err, "p.json", shown)


def test_split_plan_paired_with_another_graph_is_not_said_to_be_planned_from_it(tmp_path, capsys):
    """``memplan verify qkv.json split-plan.json`` (a ``--devices 2`` plan of the tiny Llama) said "the plan is split
    over 2 devices and refers to the split graph (graph 'qkv' with COPY nodes), not the graph it was planned from",
    telling the user the plan was planned from the Q/K/V graph, then "plan was made for graph 'llama-L2-b1', not
    'qkv'". The split-graph advice is now given only for the graph the plan names (its unsplit graph, as before)."""
    from cli_contract import assert_bad_input, run_memplan

    import memplan
    from memplan.examples import bundled

    llama, qkv = tmp_path / "llama.json", tmp_path / "qkv.json"
    memplan.save_graph(bundled()["llama-tiny"], str(llama))
    memplan.save_graph(bundled()["qkv"], str(qkv))
    plan, split = tmp_path / "p.json", tmp_path / "s.json"
    assert run_memplan(capsys, ["plan", llama, "-o", plan, "--devices", "2", "--graph-out", split, "-q"])[0] == 0
    for command in (["verify", qkv, plan], ["simulate", qkv, plan], ["show", plan, "--graph", qkv]):
        code, _, err = run_memplan(capsys, command)
        assert_bad_input(code, err, "p.json", "plan was made for graph 'llama-L2-b1', not 'qkv'")
        assert "refers to the split graph" not in err, err
    code, _, err = run_memplan(capsys, ["verify", llama, plan])
    assert_bad_input(code, err, "refers to the split graph (graph 'llama-L2-b1' with COPY nodes)")


def test_example_writes_through_a_dangling_link_as_plan_does(tmp_path, capsys):
    """``memplan example -o DIR`` where ``DIR/chain.json`` is a symbolic link to a file not yet there refused, "chain.json
    is already there and not the bundled example's bytes (an edited graph?)", where nothing is there to lose and
    ``memplan plan -o LINK`` writes through such a link. Now the examples are written, the chain graph at the link's
    target; a link to another file with other bytes is still refused."""
    from cli_contract import assert_bad_input, run_memplan

    from memplan.examples import bundled
    from memplan.io import graph_text

    out = tmp_path / "ex"
    out.mkdir()
    (out / "chain.json").symlink_to("target.json")
    code, _, err = run_memplan(capsys, ["example", "-o", out])
    assert code == 0, err
    assert (out / "chain.json").is_symlink()
    assert (out / "target.json").read_text() == graph_text(bundled()["chain"])
    (tmp_path / "mine.json").write_text("{}")
    (out / "qkv.json").unlink()
    (out / "qkv.json").symlink_to(tmp_path / "mine.json")
    code, _, err = run_memplan(capsys, ["example", "-o", out])
    assert_bad_input(code, err, "qkv.json is already there")
    assert (tmp_path / "mine.json").read_text() == "{}"


@pytest.mark.parametrize(("cost", "shown"), [(True, "cost true is"), ("1", "cost '1' is"), ([1], "cost [1] is")])
def test_graph_file_cost_of_another_type_is_refused_in_the_files_words(tmp_path, capsys, cost, shown):
    """A graph file with ``"cost": true`` was refused as "cost True (bool: give a Python int or float) is not a finite
    non-negative number", a value the file does not hold and advice for a caller in Python. Now the value as the file
    spells it, and "give a JSON number, or leave 'cost' out"."""
    import json

    from cli_contract import assert_bad_input, run_memplan

    from memplan.examples import bundled
    from memplan.io import graph_text

    doc = json.loads(graph_text(bundled()["chain"]))
    doc["nodes"][0]["cost"] = cost
    g = tmp_path / "g.json"
    g.write_text(json.dumps(doc))
    code, _, err = run_memplan(capsys, ["plan", g, "-o", tmp_path / "p.json"])
    assert_bad_input(code, err, "g.json", f"node '{doc['nodes'][0]['id']}': {shown}", "give a JSON number")
    assert "Python" not in err and not (tmp_path / "p.json").exists()
