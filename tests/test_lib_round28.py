"""Library leftovers, round 28: a Graph's attrs and indexes are its own, ``plan_step`` checks its batch, a faster
``memory_budget`` (same plans), and what Ctrl-C does to a CP-SAT solve off the main thread.

Each test below failed before its fix (the docstring says how).
"""

from __future__ import annotations

import json
from enum import Enum, IntEnum

import numpy as np
import pytest
from needs import sigint_default

import memplan
from memplan import Graph, GraphBuilder, Node, Tensor, graph_from_dict
from memplan.errors import GraphError


class Dim(IntEnum):
    D = 4096


class Colour(str, Enum):
    RED = "red"


class Loud(int):
    """An int whose ``int()`` is another number: ``json`` writes its value (``int.__repr__``), the cost model read
    ``int(s)``."""

    def __int__(self) -> int:
        return 7

    def __index__(self) -> int:
        return 7


class Label(str):
    pass


def _matmul_graph(a_shape, o_shape, **more) -> Graph:
    b = GraphBuilder("mm")
    a = b.input("a", 1 << 20, shape=a_shape, **more)
    w = b.weight("w", 1 << 20)
    t = b.node("mm0", "MUL_MAT", [w, a], b.intermediate("t", 1 << 20, shape=o_shape))
    b.node("mm1", "MUL_MAT", [w, t], b.output("o", 1 << 20, shape=o_shape))
    return b.build()


def _plan_json(g: Graph) -> str:
    return memplan.plan(g, streams="auto").to_json()


def _round_trip(g: Graph) -> Graph:
    return graph_from_dict(json.loads(json.dumps(g.to_dict())))


# ---- attrs: plain JSON, the graph's own ------------------------------------------------------------------------


def test_attrs_a_caller_edits_after_build_do_not_change_the_graph():
    """The graph kept the caller's attrs objects: appending to the shape list passed to the builder after
    ``build()`` changed the validated graph, its JSON and its plan (the MUL_MAT cost model reads the shape)."""
    shape, meta = [512, 512], {"nested": ([1, 2], {"k": [3]})}
    g = _matmul_graph(shape, shape, meta=meta)
    before_doc, before_plan = g.to_dict(), _plan_json(g)
    shape.append(64)
    meta["nested"][0].append(9)
    meta["nested"][1]["k"].clear()
    meta["new"] = 1
    assert g.to_dict() == before_doc
    assert _plan_json(g) == before_plan
    # a Tensor made by hand: its attrs dict too
    attrs = {"shape": [4, 4]}
    g2 = Graph("g", (Tensor("x", 64, "input", attrs=attrs), Tensor("y", 64, "output")),
                (Node("n", "RELU", ("x",), ("y",), attrs=attrs),))
    attrs["shape"].append(4)
    attrs["dtype"] = "f32"
    assert g2.tensor("x").attrs == {"shape": [4, 4]} and g2.node("n").attrs == {"shape": [4, 4]}


def test_attrs_values_are_plain_json_so_the_graph_equals_its_json():
    """Tuples, an IntEnum, a str-mixin enum, a str subclass, numpy numbers and non-string keys stayed as given: the
    graph was unequal to the graph read back from its JSON (a tuple is not a list), and its attrs values kept
    their classes' behaviour (an ``int()`` override, a custom ``__eq__``)."""
    attrs = {"dims": (Dim.D, np.int64(2)), "dtype": Colour.RED, "name": Label("q"), "scale": np.float64(0.5),
             "flag": np.bool_(True), "nested": [(1, (2.5, Label("x")))], 1: "one", Label("k"): {Dim.D: (None,)}}
    g = _matmul_graph([Dim.D, 8], (Dim.D, 8), **{k: v for k, v in attrs.items() if isinstance(k, str)})
    x = g.tensor("a").attrs
    assert x["shape"] == [4096, 8] and x["dims"] == [4096, 2] and x["dtype"] == "red" and x["nested"] == [[1, [2.5, "x"]]]
    assert x["k"] == {"4096": [None]} and x["flag"] is True
    types = set()
    stack = [x]
    while stack:
        v = stack.pop()
        types.add(type(v))
        if isinstance(v, dict):
            types |= set(map(type, v))
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    assert types <= {dict, list, str, int, float, bool, type(None)}, types
    assert _round_trip(g).to_dict() == g.to_dict()
    t = Graph("g", (Tensor("x", 64, "input", attrs={1: "one", Label("s"): (1,)}), Tensor("y", 64, "output")),
              (Node("n", "RELU", ("x",), ("y",)),))
    assert t.tensor("x").attrs == {"1": "one", "s": [1]}


def test_attrs_of_an_int_subclass_plan_as_their_json():
    """A shape entry of an int subclass whose ``int()`` differs from its value: the graph planned with the
    cost model's ``int(s)`` (7), its JSON said 4096, so the graph and its round trip gave other plan bytes."""
    g = _matmul_graph([Loud(4096), Loud(4096)], [Loud(4096), Loud(4096)])
    assert g.tensor("a").attrs["shape"] == [4096, 4096] and type(g.tensor("a").attrs["shape"][0]) is int
    assert _plan_json(_round_trip(g)) == _plan_json(g)


def test_numpy_float_attrs_save_and_load(tmp_path):
    """An attrs value ``np.float32(0.5)`` (not a Python float) made ``save_graph`` refuse a graph ``plan`` took; it
    is kept as its Python float now, and the file reads back as the same graph."""
    b = GraphBuilder("g")
    b.node("n", "RELU", [b.input("x", 64, scale=np.float32(0.5), eps=np.float16(0.25))], b.output("y", 64))
    g = b.build()
    path = str(tmp_path / "g.json")
    memplan.save_graph(g, path)
    assert memplan.load_graph(path).to_dict() == g.to_dict()
    assert g.tensor("x").attrs == {"scale": 0.5, "eps": 0.25}


def test_attrs_json_cannot_hold_are_still_refused_by_save(tmp_path):
    """What JSON cannot hold stays as given (a set, NaN, keys JSON writes alike), for ``save_graph`` to name."""
    b = GraphBuilder("g")
    b.node("n", "RELU", [b.input("x", 64, meta={1: "a", "1": "b"}, s={1})], b.output("y", 64))
    g = b.build()
    assert g.tensor("x").attrs["s"] == {1} and g.tensor("x").attrs["meta"] == {1: "a", "1": "b"}
    with pytest.raises(GraphError, match="tensor 'x'"):
        memplan.save_graph(g, str(tmp_path / "g.json"))


def test_cyclic_and_deep_attrs_are_copied_without_recursion():
    """A cyclic attrs value stays a cycle (of the graph's own copy); nesting past the recursion limit is copied."""
    loop: list = []
    loop.append(loop)
    deep: list = []
    d = deep
    for _ in range(5000):
        d.append([])
        d = d[0]
    b = GraphBuilder("g")
    b.node("n", "RELU", [b.input("x", 64, loop=loop, deep=(deep,))], b.output("y", 64))
    a = b.build().tensor("x").attrs
    assert a["loop"] is not loop and a["loop"][0] is a["loop"]
    assert a["deep"][0] is not deep


# ---- the indexes: read-only ------------------------------------------------------------------------------------


def test_graph_indexes_are_read_only_and_still_pickle():
    """``tensor_index`` / ``node_index`` were the graph's plain dicts: ``g.tensor_index["y"] = 0`` made ``g.tensor("y")``
    the input and every later plan or check of the "immutable" graph wrong. They are read-only views now, and the
    graph still pickles and copies (a ``MappingProxyType`` alone does neither)."""
    import copy
    import pickle

    g = _matmul_graph([8, 8], [8, 8])
    for index, key in ((g.tensor_index, "o"), (g.node_index, "mm1")):
        with pytest.raises(TypeError):
            index[key] = 0
        with pytest.raises((TypeError, AttributeError)):
            index.clear()
        with pytest.raises(TypeError):
            del index[key]
    assert g.tensor("o").id == "o" and g.node("mm1").id == "mm1"
    for h in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g), copy.copy(g)):
        assert h == g and dict(h.tensor_index) == dict(g.tensor_index) and dict(h.node_index) == dict(g.node_index)
        with pytest.raises(TypeError):
            h.tensor_index["o"] = 0
        assert _plan_json(h) == _plan_json(g)


# ---- runtime.step.plan_step: the batch is the graph's -------------------------------------------------------------


@pytest.mark.parametrize("graph_batch, asked", [(4, 1), (1, 4), (4, 16)])
def test_plan_step_refuses_a_batch_that_is_not_the_graphs(graph_batch, asked):
    """``plan_step(graph, batch=...)`` took the batch on trust: a 4-row step planned as ``batch=1`` came back as the
    ordinary plan (its fused add+norm groups then stage copies every step), a 1-row step as ``batch=4`` was planned
    twice. A batch other than the rows the graph's weight products multiply is refused, naming both."""
    from runtime.models import llama as L
    from runtime.step import plan_step

    g = L.build_graph(L.config("tiny", batch=graph_batch))
    with pytest.raises(ValueError, match=rf"batch={asked} .* step of {graph_batch} rows"):
        plan_step(g, batch=asked)
    assert plan_step(g, batch=graph_batch).to_json() == plan_step(g, batch=np.int64(graph_batch)).to_json()
    with pytest.raises(GraphError, match="plan_step needs a memplan Graph"):
        plan_step(g.to_dict(), batch=graph_batch)


# ---- CP-SAT and Ctrl-C off the main thread (decided: documented, see ``cpsat._run``) ------------------------------


def test_ctrl_c_off_the_main_thread_or_under_asyncio_is_as_documented():
    """``cpsat._run``'s documented rule: memplan handles Ctrl-C only in the main thread under Python's own handler.
    From a worker thread it installs nothing (SIGINT stays the caller's), the KeyboardInterrupt reaches the main
    thread, and the solve runs to its limit and returns a plan not marked "interrupted". Under ``asyncio.run`` the
    loop's handler stays in place; its second Ctrl-C raises KeyboardInterrupt out of ``plan`` (the solve is then
    stopped in the background: the process exits normally). A subprocess: the signals would hit the test run."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import asyncio, os, signal, threading
        import memplan
        from memplan.benchmarks.scale import random_dag
        g = random_dag(100, seed=1)   # (the default's plan ends above its bound: a named solver works)
        seen, out = [], {}
        def progress(msg):
            if not seen:
                seen.append(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
                os.kill(os.getpid(), signal.SIGINT)
        done = threading.Event()   # (not Thread.join: a join a KeyboardInterrupt breaks may not wait again)
        def work():
            try:
                out["p"] = memplan.plan(g, solver="cpsat", time_limit=2, progress=progress)
            except BaseException as exc:
                out["p"] = exc
            done.set()
        threading.Thread(target=work).start()
        try:
            while not done.wait(0.05):
                pass
            print("no KeyboardInterrupt")
        except KeyboardInterrupt:
            print("KeyboardInterrupt in the main thread")
        done.wait()
        p = out["p"]
        print("thread", seen, type(p).__name__, getattr(p, "solver", {}).get("interrupted"),
              signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
        sent = []
        def twice(msg):
            if not sent:
                sent.append(signal.getsignal(signal.SIGINT) is not signal.default_int_handler)
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
        async def main():
            return memplan.plan(g, solver="cpsat", time_limit=2, progress=twice)
        try:
            p = asyncio.run(main())
            print("asyncio returned", sent, p.solver.get("interrupted"), flush=True)
        except KeyboardInterrupt:
            print("asyncio KeyboardInterrupt", sent, flush=True)
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, preexec_fn=sigint_default, cwd=root, env=env)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-2000:])
    # (Python 3.10's ``asyncio.run`` installs no SIGINT handler (3.11's Runner does): memplan's own is in place, as
    # outside asyncio, and the Ctrl-C keeps the best plan found, marked "interrupted")
    under_asyncio = "asyncio KeyboardInterrupt [True]" if sys.version_info >= (3, 11) else \
        "asyncio returned [True] True"
    assert r.stdout.split("\n")[:3] == ["KeyboardInterrupt in the main thread", "thread [True] Plan None True",
                                        under_asyncio], r.stdout


# ---- memory_budget: the candidate pool replays prefixes from where they differ, and makes schedules on demand ----


def _fixed_order_replay_inputs(n: int, seed: int):
    from memplan.generators import fanout_join
    from memplan.optimize.budget import unit_streams
    from memplan.optimize.streams import expand, optimize

    g = fanout_join(n, max_width=6, seed=seed)[0]
    opt = optimize(g, 4)
    ustream = unit_streams(opt, opt.schedule, g)[1]
    return g, opt, ustream, expand(opt.units, opt.units.fixed_order, ustream)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replay_branches_are_full_replays(seed):
    """``Replay.branch`` (a run continued from a mark of another run, with other streams from there on) gives the
    events, event pairs and makespan of a full ``Replay`` of its streams, bit for bit, also two branches deep with a
    mark that lies before the second branch's start (taken from the run it branched off)."""
    import random

    from memplan.optimize.events import Replay

    g, opt, _, (order, streams) = _fixed_order_replay_inputs(200, seed)
    rng = random.Random(seed)
    N = len(order)
    p1, p2 = sorted(rng.sample(range(1, N), 2))[::-1]   # p1 > p2: the second branch starts before the first
    s1 = streams[:p1] + [rng.randrange(4) for _ in range(N - p1)]
    s2 = s1[:p2] + [rng.randrange(4) for _ in range(N - p2)]
    base = Replay(g, order, streams, opt.cost, opt.event_us, [p1, p2], record=True)
    b1 = base.branch(p1, s1, [p2])
    b2 = b1.branch(p2, s2, [N])
    b3 = b2.branch(N, s2)   # the same streams: nothing replayed
    for br, st in ((b1, s1), (b2, s2), (b3, s2)):
        full = Replay(g, order, st, opt.cost, opt.event_us, record=True)
        assert (br.events, br.makespan, br.pairs) == (full.events, full.makespan, full.pairs)


def test_candidate_pool_makes_only_the_schedules_it_is_asked_for(monkeypatch):
    """``candidate_pool`` built every fork give-back's Schedule (a full replay, the ids and every Event) though a
    memory budget plans at most ``MAX_GIVE_BACK_PLANS`` of them; now a give-back's schedule is made when asked for,
    from the events its replay found: the same schedule (order, streams, events), makespan and pool order."""
    from memplan.optimize import budget
    from memplan.optimize.streams import schedule_makespan
    from memplan.schedule import schedule_with_events

    g, opt, _, _ = _fixed_order_replay_inputs(400, 5)
    calls = []
    real = budget.scored_schedule
    monkeypatch.setattr(budget, "scored_schedule", lambda *a, **k: calls.append(1) or real(*a, **k))
    pool = budget.candidate_pool(g, opt)
    lazy = [r for r in pool if isinstance(r, budget._LazyReduced)]
    assert len(lazy) > 10 and not calls
    keys = []
    for r in pool:
        s = r.schedule
        assert r.makespan_us == schedule_makespan(g, s, opt.cost, opt.event_us)
        assert s == schedule_with_events(g, list(s.order), dict(zip(s.order, s.streams)))
        keys.append((round(r.makespan_us, 6), len(s.events), s.num_streams))
    assert keys == sorted(keys) and len({(r.schedule.order, r.schedule.streams) for r in pool}) == len(pool)
    assert not calls   # (the schedules came from the replays' events)
