"""Review of the session's library changes (round 23b): in-place partners in the size planner's window index,
buffer problems built by hand, the verifier's in-place exception against a brute-force reading of the contract.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memplan
from memplan.problem import BufferProblem
from memplan.solvers import size as size_solver
from memplan.solvers import solve
from memplan.solvers.placement import first_fit

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _dense(compatible) -> BufferProblem:
    """200 buffers all live at once: the size planner's ``WindowFit`` route, not its pairwise one."""
    n = 200
    return BufferProblem(np.full(n, 64), np.zeros(n, dtype=np.int64), np.full(n, 5), alignment=1,
                         compatible=compatible)


@pytest.mark.parametrize("compatible", [lambda: frozenset({(0, 1), (1, 0)}), lambda: frozenset({(1, 0)}),
                                        lambda: [(np.int64(1), 0)], lambda: ((1, 0) for _ in range(2))])
@pytest.mark.parametrize("solver", ["size", "greedy", "auto"])
def test_a_hand_built_pair_in_either_order_is_one_partner(compatible, solver):
    """``BufferProblem(compatible={(0, 1), (1, 0)})`` listed buffer 1 twice among buffer 0's partners, and the
    size planner's window index stopped on an AssertionError ("a left-out block the union does not hold"); a
    lone ``(1, 0)`` was a partner to the heuristics but a conflict to the checker, so every heuristic's plan
    was refused as "a solver bug". The pairs are unordered, kept as ``(min, max)`` once (a generator too)."""
    p = _dense(compatible())
    assert size_solver.dense_route(p) == "windows"
    assert p.compatible == frozenset({(0, 1)})
    assert all(type(i) is int for pair in p.compatible for i in pair)
    sol = solve(p, solver)
    assert sol.arena == 199 * 64   # 0 and 1 share their bytes, the rest pack side by side


def _reference(problem: BufferProblem, order: list[int], sizes: list[int]) -> list[int]:
    """Greedy by size as its docstring says, by listing every placed block: the lowest aligned offset clear
    of each placed buffer live at the same time but an in-place partner."""
    lower, upper = problem.lower.tolist(), problem.upper.tolist()
    partner: dict[int, set[int]] = {}
    for a, b in problem.compatible:
        partner.setdefault(a, set()).add(b)
        partner.setdefault(b, set()).add(a)
    off = [0] * len(sizes)
    placed = [False] * len(sizes)
    for i in order:
        if sizes[i] == 0:
            continue
        blocks = [(off[j], off[j] + sizes[j]) for j in range(len(sizes)) if placed[j]
                  and j not in partner.get(i, ()) and lower[j] < upper[i] and upper[j] > lower[i]]
        off[i] = first_fit(blocks, sizes[i], problem.alignment)
        placed[i] = True
    return off


@st.composite
def _interval_problems(draw) -> BufferProblem:
    n = draw(st.integers(1, 30))
    horizon = draw(st.integers(1, 10))
    lower = [draw(st.integers(0, horizon - 1)) for _ in range(n)]
    upper = [lo + draw(st.integers(1, horizon)) for lo in lower]
    sizes = [draw(st.sampled_from([0, 1, 3, 8, 100, 256, 1000])) for _ in range(n)]
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n))
    return BufferProblem(np.array(sizes), np.array(lower), np.array(upper),
                         alignment=draw(st.sampled_from([1, 2, 8, 256])), compatible=frozenset(pairs))


@SETTINGS
@given(_interval_problems())
def test_window_index_leaving_partners_out_is_the_listed_first_fit(problem):
    """``WindowFit.first_fit(without=...)`` (near-linear in-place pairs) against the plain listing it replaced,
    on interval problems with zero sizes, alignments above 1, pairs in both orders, self pairs and a buffer
    with many partners: the same offsets, buffer by buffer."""
    n = len(problem)
    order = np.lexsort((np.arange(n), problem.lower, -problem.sizes)).tolist()
    sizes = problem.sizes.tolist()
    got = [0] * n
    size_solver._place_windows(problem, order, sizes, got)
    assert got == _reference(problem, order, sizes)


@st.composite
def _inplace_graphs(draw) -> memplan.Graph:
    """Graphs dense in in-place pairs: nodes with several outputs, each a fresh root or a view written into
    an input's root (so a node may write the root of an input it also overwrites in place), in-place maps
    from outputs (or views) to inputs (or views of them), and unproduced views read between."""
    b = memplan.GraphBuilder("inplace-dense")
    b.alignment = 64
    readable: list[str] = [b.input("x", 256)]
    sizes = {"x": 256}
    for k in range(draw(st.integers(1, 6))):
        ins = draw(st.lists(st.sampled_from(readable), min_size=1, max_size=3, unique=True))
        outs: list[str] = []
        for j in range(draw(st.integers(1, 3))):
            if draw(st.integers(0, 3)) == 0:   # write through a view into an input's root
                parent = ins[draw(st.integers(0, len(ins) - 1))]
                size = sizes[parent] // 2
                t = b.view(f"w{k}_{j}", parent, size, sizes[parent] - size)
            else:
                size = draw(st.sampled_from([64, 128, 256]))
                kind = draw(st.sampled_from(["intermediate"] * 3 + ["output"]))
                t = b.output(f"t{k}_{j}", size) if kind == "output" else b.intermediate(f"t{k}_{j}", size)
            sizes[t] = size
            outs.append(t)
        inplace = {o: draw(st.sampled_from(ins)) for o in outs if draw(st.booleans())}
        b.node(f"n{k}", "OP", ins, outs, inplace=inplace or None)
        readable += [o for o in outs]
        if draw(st.integers(0, 3)) == 0:   # an unproduced view of something readable
            parent = draw(st.sampled_from(readable))
            v = b.view(f"u{k}", parent, sizes[parent] // 2, 0)
            sizes[v] = sizes[parent] // 2
            readable.append(v)
    return b.build()


@SETTINGS
@given(st.data())
def test_verify_agrees_with_the_oracle_on_inplace_dense_graphs(data):
    """The verifier's in-place exception (rule 3: ``n`` both the last access of ``in``'s root and the producer of
    ``out``'s root, and ``n`` writing no view of ``in``'s root: the set of roots a node writes, once per node)
    judged against the brute-force oracle on random placements and schedules of graphs dense in such pairs."""
    import random

    from oracle import findings
    from oracle_fuzz import random_placement
    from strategies import schedules

    try:
        g = data.draw(_inplace_graphs(), label="graph")
    except memplan.GraphError:   # a view larger than the slot it was drawn for: not this test's subject
        return
    order, stream_of = data.draw(schedules(g, 3), label="schedule")
    pd = memplan.plan(g, memplan.schedule_with_events(g, order, stream_of), solver="greedy").to_dict()
    gd = g.to_dict()
    rnd = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    for _ in range(20):
        q = random_placement(gd, pd, rnd)
        try:
            memplan.verify(g, q)
            ok = True
        except memplan.MemplanError:
            ok = False
        assert ok == (findings(gd, q) == []), findings(gd, q)


@pytest.mark.parametrize("size", [(np.int64(8), np.int64(4)), (np.float32(8.0), 4), np.array([8, 4]), [8, 4.5]])
def test_memory_map_size_takes_numpy_numbers(size):
    """``render_memory_map(g, p, size=(np.int64(8), 4))`` (or a numpy array) drew before this session's size
    check, which then refused every numpy number as "size must be (width, height) in inches"."""
    pytest.importorskip("matplotlib")
    from memplan import examples
    from memplan.viz.memmap import render_memory_map

    g = examples.diamond()
    assert render_memory_map(g, memplan.plan(g), "svg", size=size).startswith(b"<?xml")


@pytest.mark.parametrize("size", [((1, 2), 3), np.array([[8, 4]]), (True, 4), (np.int64(0), 4)])
def test_memory_map_size_refusals_name_it(size):
    from memplan import examples
    from memplan.viz.memmap import render_memory_map

    g = examples.diamond()
    with pytest.raises(memplan.MemplanError, match="size must be"):
        render_memory_map(g, memplan.plan(g), "svg", size=size)


def test_search_restart_jitter_takes_numpy_numbers():
    """``SearchParams(restart_jitter=np.float32(0.2))`` searched before this session's field checks, which then
    refused it ("must be a finite number >= 0"); numpy reals are taken as the float they equal."""
    from memplan.solvers import SearchParams, SolveOptions

    params = SearchParams(restart_jitter=np.float32(0.25))
    assert type(params.restart_jitter) is float and params.restart_jitter == 0.25
    p = BufferProblem(np.array([4, 4, 8]), np.array([0, 1, 2]), np.array([2, 3, 4]))
    assert solve(p, "search", SolveOptions(time_limit=0.1, search=params)).arena == 12
    with pytest.raises(memplan.SolverError, match="restart_jitter"):
        SearchParams(restart_jitter=np.float64("nan"))


# --- '--' as an option's value (``--devices=--``): Python 3.11's argparse dropped it, leaving [] -------------

@pytest.mark.parametrize("option, words", [("--devices", ["--devices", "not a count: '--'"]),
                                           ("--streams", ["--streams", "not a count"]),
                                           ("--time-limit", ["--time-limit", "not a number"]),
                                           ("--solver", ["--solver", "invalid choice: '--'"])])
def test_an_options_value_double_dash_is_named_by_the_option(tmp_path, capsys, graph_file, option, words):
    """``memplan plan G -o P --devices=--`` was a TypeError traceback ('>' between list and int): argparse 3.11
    removed the '--' from the option's own value and stored [], past its type check (``--solver=--``: "unknown
    solver []"). The value is the text '--', refused by the option's type as any other text."""
    from cli_contract import assert_bad_input
    from cli_contract import run_memplan as run

    p = tmp_path / "p.json"
    code, _, err = run(capsys, ["plan", str(graph_file), "-o", str(p), f"{option}=--"])
    assert_bad_input(code, err, *words)
    assert not p.exists()


def test_an_options_value_double_dash_is_its_text(tmp_path, capsys, graph_file, monkeypatch):
    """``--output=--`` names the file '--' (it was [], "cannot write to list []"), and that value is no '--'
    argument: a '--' after it still ends the options (``plan G --output=-- --`` was "unrecognized arguments")."""
    from cli_contract import run_memplan as run

    monkeypatch.chdir(tmp_path)
    for tail in ([], ["--"]):
        code, _, err = run(capsys, ["plan", str(graph_file), "--output=--", *tail])
        assert code == 0, err
        memplan.verify(memplan.load_graph(str(graph_file)), memplan.load_plan(str(tmp_path / "--")))
        (tmp_path / "--").unlink()


def test_a_runtime_tools_option_value_double_dash_is_named(capsys):
    """The runtime tools share the parser: ``--rounds=--`` was [] and then "--rounds []: expected at least 1"."""
    from cli_contract import exit_code

    from runtime.tools import bound

    code = exit_code(bound.main, ["--rounds=--"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--rounds" in err and "'--'" in err, err
