"""Round 64 hostile inputs against the less-travelled Python API: the trace writers, ``show.describe``'s encoding,
the bundled example builders' counts and ``Plan.ratio_text``'s decimals. Each was a raw exception or a hang."""

from __future__ import annotations

import signal

import numpy as np
import pytest

import memplan
from memplan import examples, show
from memplan.errors import GraphError, MemplanError, OptionError, PlanFormatError
from memplan.viz import trace


@pytest.fixture(scope="module")
def qkv():
    g = examples.qkv_attention()
    return g, memplan.plan(g)


@pytest.mark.parametrize("call", [trace.trace_events, trace.trace_json,
                                  lambda g, s: trace.save_trace(g, s, "/nonexistent/never-written.json")])
def test_a_trace_of_a_schedule_is_refused_naming_what_it_needs(qkv, call):
    """``simulate`` takes a Plan or a Schedule, the trace a Plan only: a Schedule was an AttributeError
    ('Schedule' object has no attribute 'graph') from inside ``trace_events``."""
    g, _ = qkv
    with pytest.raises(PlanFormatError, match="trace_events needs a memplan Plan.*not Schedule"):
        call(g, memplan.serial_schedule(g))


def test_a_trace_of_a_plan_is_as_before(qkv):
    g, p = qkv
    doc = trace.trace_events(g, p)
    assert doc["otherData"]["arena_bytes"] == p.arena_bytes
    assert sum(e["ph"] == "X" for e in doc["traceEvents"]) == len(g.nodes)


@pytest.mark.parametrize("encoding", [True, 5, b"utf-8", ["ascii"]])
def test_describe_names_an_encoding_that_is_no_string(qkv, encoding):
    """``encoding=True`` was a TypeError from ``str.encode``."""
    with pytest.raises(OptionError, match="describe: encoding must be the name of an encoding"):
        show.describe(qkv[1], encoding=encoding)


@pytest.mark.parametrize("encoding", ["idna", "undefined", "\ud800", "a\x00b", "no-such-codec"])
def test_describe_in_an_encoding_that_cannot_escape_is_the_printable_text(encoding):
    """``idna`` refuses the backslashreplace handler, ``undefined`` every character, a name with a NUL or a lone
    surrogate is no codec name: UnicodeError and ValueError, raw, where an unknown name fell back to ``printable``."""
    b = memplan.GraphBuilder("g\u5f20")
    b.input("x\u5f20", 16)
    b.output("y", 16)
    b.node("n", "op", ["x\u5f20"], ["y"])
    p = memplan.plan(b.build())
    assert show.describe(p, encoding=encoding) == show.describe(p)
    assert "\\u5f20" in show.describe(p, encoding="ascii")   # (an encoding that escapes still does)


def _alarm(seconds: int):
    def stop(signum, frame):
        raise TimeoutError("still building")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    return old


@pytest.mark.parametrize("build, words", [
    (lambda: examples.chain(10 ** 12), "chain: n must be at most 10000000"),
    (lambda: examples.chain(np.int64(2 ** 62)), "chain: n must be at most"),
    (lambda: examples.moe(2 ** 40), "moe: experts must be at most 2500000"),
])
def test_a_bundled_builder_refuses_a_count_past_the_node_bound(build, words):
    """``chain(10**12)`` and ``moe(2**40)`` built nodes until memory ran out (``LlamaConfig.layers`` was bounded,
    these not); refused at once now (the alarm is only a guard against the hang coming back)."""
    old = _alarm(20)
    try:
        with pytest.raises(GraphError, match=words):
            build()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_the_bundled_builders_still_build_their_largest_counts_quickly():
    assert len(examples.chain(examples.MAX_NODES // 1000).nodes) == examples.MAX_NODES // 1000
    assert len(examples.moe(8).nodes) <= 8 * examples.MOE_NODES_PER_EXPERT


@pytest.mark.parametrize("decimals", [np.int64(3), np.int8(3), np.array(3), np.uint16(3)])
def test_ratio_text_takes_a_numpy_integer_as_the_int_it_equals(qkv, decimals):
    """Every other integer option takes a numpy integer (``errors.as_int``); ``ratio_text(np.int64(3))`` was an
    OptionError."""
    assert qkv[1].ratio_text(decimals) == qkv[1].ratio_text(3)


@pytest.mark.parametrize("decimals", [True, np.bool_(True), 2.0, "3", -1, 101, None])
def test_ratio_text_still_refuses_what_is_no_count_of_decimals(qkv, decimals):
    with pytest.raises(MemplanError, match="ratio_text: decimals must be an integer from 0 to 100"):
        qkv[1].ratio_text(decimals)


def _deep(levels: int) -> dict:
    root: dict = {}
    d = root
    for _ in range(levels):
        d["a"] = {}
        d = d["a"]
    return root


@pytest.mark.parametrize("value, words", [
    (_deep(100_000), "nested more than 64 levels deep"),
    (10 ** 5000, "integer string conversion"),
    ({"inner": 10 ** 5000}, "integer string conversion"),
    (float("nan"), "not JSON compliant"),
], ids=["deep", "bigint", "inner-bigint", "nan"])
def test_describe_names_a_solver_block_from_code_that_no_plan_file_holds(qkv, value, words):
    """``describe`` printed the block's values: nested 100,000 deep a raw RecursionError, a 5,000-digit integer a raw
    ValueError (Python's limit on integer text); now the PlanFormatError ``save_plan`` of the same plan gives."""
    import dataclasses

    p = dataclasses.replace(qkv[1], solver={**qkv[1].solver, "x": value})
    with pytest.raises(PlanFormatError, match=f"describe: plan field 'solver' is not JSON that load_plan reads back.*{words}"):
        show.describe(p)
    with pytest.raises(PlanFormatError, match="field 'solver' is not JSON"):
        p.to_json()


def test_describe_of_a_solver_block_of_plain_json_is_as_before(qkv):
    import dataclasses

    p = dataclasses.replace(qkv[1], solver={**qkv[1].solver, "x": {"y": [1, 2]}, "n": np.int64(3)})
    assert "  x: y=[1, 2]" in show.describe(p).splitlines()


def _intervals(n: int = 300, seed: int = 3):
    """Random intervals whose heuristic start ends above the live-bytes bound (cpsat has something to search), with
    the capacity given."""
    import random

    from memplan.problem import BufferProblem

    r = random.Random(seed)
    lo = [r.randrange(0, 200) for _ in range(n)]
    hi = [a + r.randrange(1, 60) for a in lo]
    sizes = [r.randrange(1, 100) for _ in range(n)]
    return lambda cap: BufferProblem(sizes=np.array(sizes), lower=np.array(lo), upper=np.array(hi), alignment=1,
                                     capacity=cap)


def test_cpsat_asked_to_fit_below_the_bound_searches_nothing():
    """``memplan csv --solver cpsat --capacity C`` with C below the problem's live-bytes bound (no packing can fit)
    minimised for cpsat's whole budget before "none exists" (22 s at ``--capacity 1`` on 300 buffers, a minute at
    2,000 under a bound of 2,944); now the start comes back unsearched (``skipped: capacity``) as the refusal's best."""
    pytest.importorskip("ortools")
    from memplan.solvers import Objective, OverCapacity, SolveOptions, solve

    make = _intervals()
    bound = int(make(None).lower_bound)
    for cap in (1, bound - 1):
        with pytest.raises(OverCapacity, match=rf"^cpsat: no packing within capacity {cap} found \(none exists\)") as e:
            solve(make(cap), "cpsat", SolveOptions(objective=Objective.FIT))
        assert e.value.best.info.get("skipped") == "capacity" and e.value.best.arena > bound


def test_cpsat_still_searches_a_capacity_at_or_above_the_bound_and_when_minimising():
    pytest.importorskip("ortools")
    from memplan.solvers import Objective, OverCapacity, SolveOptions, solve

    make = _intervals()
    bound = int(make(None).lower_bound)
    sol = solve(make(10 ** 9), "cpsat", SolveOptions(objective=Objective.FIT, time_limit=0.5))
    assert "skipped" not in sol.info
    with pytest.raises(OverCapacity) as e:   # (minimising under it: cpsat's best is what the refusal reports)
        solve(make(bound - 1), "cpsat", SolveOptions(time_limit=0.5))
    assert e.value.best.info.get("skipped") != "capacity"


@pytest.mark.parametrize("kwargs, words", [
    ({"n_nodes": 10, "streams": 0}, "streams must be an integer from 1 to 1024, not 0"),
    ({"n_nodes": 10, "max_width": 0}, "max_width must be an integer from 1"),
    ({"n_nodes": 10, "chain": 0}, "chain must be an integer from 1"),
    ({"n_nodes": None}, "n_nodes must be an integer from 1 to 10000000, not None"),
    ({"n_nodes": 2.5}, "n_nodes must be an integer"),
    ({"n_nodes": -5}, "n_nodes must be an integer"),
    ({"n_nodes": 10 ** 12}, "n_nodes must be an integer from 1 to 10000000"),
    ({"n_nodes": 10, "seed": None}, "seed must be an integer, not None"),
    ({"n_nodes": 10, "seed": [1]}, "seed must be an integer"),
])
def test_fanout_join_names_an_argument_out_of_its_range(kwargs, words):
    """``streams=0`` was a raw ZeroDivisionError, ``max_width=0``/``chain=0`` a ValueError from ``randrange``,
    ``None`` a TypeError, ``2.5`` a 3-node graph, ``-5`` a 1-node one, ``10**12`` a build until memory ran out,
    ``seed=None`` another graph each call."""
    from memplan.generators import fanout_join

    old = _alarm(20)
    try:
        with pytest.raises(GraphError, match=f"fanout_join: {words}"):
            fanout_join(**kwargs)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_fanout_join_of_numpy_integers_is_the_graph_of_their_ints():
    from memplan.generators import fanout_join

    g, s = fanout_join(np.int64(40), streams=np.int8(3), seed=np.int64(-2))
    h, t = fanout_join(40, streams=3, seed=-2)
    assert g == h and s == t and g.name == "fanout-join-40-s-2"
