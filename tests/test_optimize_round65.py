"""Round 65: ``graph_optimize``'s promises as properties, each checked by an oracle that shares no code with it.

The promises (``memplan/optimize/__init__.py``, docs/scheduling.md):

* a stream id for every node of any DAG, streams numbered by first use, never more than ``max_streams`` nor than
  there are units;
* fusion groups consecutive, in listed order, on one stream;
* every cross-stream dependency ordered by happens-before (stream order plus events), events recorded before
  they are waited, and the fewest events: no event may be removed and leave every dependency ordered (an
  irredundant set; the docs' "transitive reduction over the streams' program order");
* ``max_events`` honoured; the plan verifies; never slower than serial under the cost model;
* a memory budget honoured: the arena within it, or a ``BudgetError`` that names the budget and the serial
  arena, and only when the serial plan is over the budget too (docs/scheduling.md, "Memory vs concurrency");
* deterministic: the same graph and options give the same schedule and byte-identical plan JSON, whatever the
  order of keys inside the graph document (docs/format.md); the schedule is also the same with the ``tensors``
  list, or a node's ``inputs``, in another order (the order of ``nodes`` is the serial order: it is not
  permuted here, the contract makes it meaningful);
* bad options (``max_streams``, ``streams``, ``memory_budget``, ``max_events``, ``cost_model``) refused with a
  ``memplan.errors`` exception naming the option; on the CLI one ``memplan: error:`` line, exit code 2.

The oracle: dependencies are every writer along each input's view chain, found from the graph document
(``strategies.data_deps``), and happens-before is rebuilt here from the schedule's order, streams and events
(bit sets). The self-tests at the end plant each hazard (a dropped event, a redundant one, a split group, a
stream gap) in a real schedule and show the oracle flags it. Bounded: small graphs, a fixed number of examples.
"""

from __future__ import annotations

import json
import random

import pytest
from cli_contract import assert_bad_input, run_captured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import data_deps, graphs, view_chains

import memplan
from memplan import Graph, GraphBuilder, graph_optimize, simulate
from memplan.examples import fanout_join15, qkv_attention
from memplan.graph import graph_from_dict
from memplan.optimize import CostModel
from memplan.schedule import Event, Schedule

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ----------------------------------------------------------------------------------------------------------------
# graphs: the shapes the task names, beside the suite's own strategies
# ----------------------------------------------------------------------------------------------------------------

@st.composite
def shaped_dags(draw, max_nodes: int = 24) -> Graph:
    """One of: a single node; a wide fan-out and join; a deep chain; stacked diamonds; a layered random DAG; many
    fusion groups, back to back or with plain nodes between. Sizes include 0 (zero-size tensors), costs include
    0 and none (roofline), so ties are frequent."""
    shape = draw(st.sampled_from(["one", "wide", "deep", "diamond", "layered", "groups"]))
    b = GraphBuilder(f"shaped-{shape}", alignment=draw(st.sampled_from([1, 64, 256])))
    size = st.sampled_from([0, 0, 1, 100, 256, 1024, 4096])
    cost = st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.0, 5.0, 30.0]), st.floats(0, 50, allow_nan=False))
    b.input("x", draw(size))
    count = [0]

    def node(ins: list[str], group: str | None = None, kind: str = "intermediate") -> str:
        i = count[0]
        count[0] += 1
        t = b.tensor(f"t{i}", draw(size), kind)
        b.node(f"n{i}", "OP", ins, t, cost=draw(cost), group=group)
        return t

    if shape == "one":
        node(["x"], kind=draw(st.sampled_from(["intermediate", "output"])))
    elif shape == "wide":
        src = node(["x"])
        node([node([src]) for _ in range(draw(st.integers(1, max_nodes)))], kind="output")
    elif shape == "deep":
        t = "x"
        for _ in range(draw(st.integers(1, max_nodes))):
            t = node([t])
        node([t], kind="output")
    elif shape == "diamond":
        t = "x"
        for _ in range(draw(st.integers(1, 5))):
            a = node([t])
            t = node([node([a]), node([a])])
    elif shape == "layered":
        layer = ["x"]
        for _ in range(draw(st.integers(1, 5))):
            layer = [node(sorted(set(draw(st.lists(st.sampled_from(layer), min_size=1, max_size=3)))))
                     for _ in range(draw(st.integers(1, 5)))]
        node(layer, kind="output")
    else:   # many fusion groups: chains and branches inside a group, readers of several groups after them
        avail = ["x"]
        for gid in range(draw(st.integers(1, 8))):
            for _ in range(draw(st.integers(1, 4))):
                avail.append(node(sorted(set(draw(st.lists(st.sampled_from(avail), min_size=1, max_size=2)))),
                                  group=f"g{gid}"))
            if draw(st.booleans()):   # a plain node between two groups (else they are back to back)
                avail.append(node([draw(st.sampled_from(avail))]))
    return b.build()


@st.composite
def wide_dags(draw) -> Graph:
    """A fan-out of 30 .. 80 branches (some two deep) and its join; the same with each branch writing a slot of one
    shared root through a view (SET_ROWS into a KV cache: a weight or an intermediate), some through a view op on
    it, and read back through it; or a layered DAG of 10 .. 40 nodes a layer: enough units for more than 32
    streams, where the scheduler's clocks turn dense (``streams.DENSE_STREAMS``, ``events.DENSE_STREAMS``) and
    streams are found from an index (``streams.INDEXED_CANDIDATES``)."""
    rng = random.Random(draw(st.integers(0, 2 ** 32 - 1)))
    b = GraphBuilder("wide", alignment=64)
    b.input("x", 256)
    count = [0]

    def node(ins: list[str]) -> str:
        i = count[0]
        count[0] += 1
        t = b.tensor(f"t{i}", rng.choice([0, 64, 256, 1000]), "intermediate")
        b.node(f"n{i}", "OP", ins, t, cost=rng.choice([None, 0.0, 1.0, 3.0, 7.5, 20.0]))
        return t

    shape = draw(st.sampled_from(["fan", "slots", "layered"]))
    if shape == "fan":
        src = node(["x"])
        outs = [node([src]) for _ in range(rng.randint(30, 80))]
        node([node([o]) if rng.random() < 0.5 else o for o in outs])
    elif shape == "slots":
        width = rng.randint(34, 80)
        if rng.random() < 0.5:
            root = b.weight("cache", 64 * width)
        else:
            root = b.intermediate("cache", 64 * width)
            b.node("mk", "OP", ["x"], root, cost=1.0)
        src = node(["x"])
        reads = []
        for i in range(width):
            slot = b.view(f"slot{i}", root, 64, 64 * i)
            b.node(f"set{i}", "SET_ROWS", [node([src])], slot, cost=rng.choice([0.0, 1.0]))
            if rng.random() < 0.5:
                flat = b.view(f"flat{i}", slot, 32)
                b.node(f"reshape{i}", "RESHAPE", [slot], flat, cost=0.0)
                slot = flat
            reads.append(node([slot]))
        node(reads)
    else:
        layer = ["x"]
        for _ in range(rng.randint(2, 4)):
            layer = [node(sorted(set(rng.sample(layer, min(len(layer), rng.randint(1, 3))))))
                     for _ in range(rng.randint(10, 40))]
        node(layer)
    return b.build()


any_dag = st.one_of(graphs(max_nodes=10), view_chains(max_nodes=12), shaped_dags())


# ----------------------------------------------------------------------------------------------------------------
# the oracle
# ----------------------------------------------------------------------------------------------------------------

def happens_before(order: list[str], stream_of: dict[str, int], events, skip: int = -1) -> dict[str, int]:
    """node -> bit set (over issue positions) of the nodes that happen before it: the contract's HB, the
    transitive closure of stream order and events, rebuilt from the schedule alone. ``skip``: an event left out."""
    pos = {n: i for i, n in enumerate(order)}
    waits: dict[str, list[str]] = {}
    for i, e in enumerate(events):
        if i != skip:
            waits.setdefault(e.before, []).append(e.after)
    before: dict[str, int] = {}
    last: dict[int, str] = {}
    for n in order:
        acc = 0
        for a in ([last[stream_of[n]]] if stream_of[n] in last else []) + waits.get(n, []):
            if a in before:   # (a wait on a node issued later is a no-op, as in CUDA)
                acc |= before[a] | (1 << pos[a])
        before[n] = acc
        last[stream_of[n]] = n
    return before


def unordered(graph: Graph, sched: Schedule, skip: int = -1) -> list[tuple[str, str]]:
    """The (writer, reader) dependencies that the schedule leaves unordered."""
    order = list(sched.order)
    pos = {n: i for i, n in enumerate(order)}
    hb = happens_before(order, sched.stream_of(), sched.events, skip)
    return [(w, n) for n, ws in data_deps(graph).items() for w in sorted(ws) if not hb[n] >> pos[w] & 1]


def schedule_problems(graph: Graph, sched: Schedule, max_streams: int | None = None) -> list[str]:
    """Every broken promise of ``sched`` for ``graph``, in words (empty: all kept)."""
    out: list[str] = []
    order = list(sched.order)
    stream_of = sched.stream_of()
    if sorted(order) != sorted(n.id for n in graph.nodes):
        return ["the order is not every node once"]
    used = sorted(set(sched.streams))
    if used != list(range(len(used))):
        out.append(f"streams {used} are not 0 .. {len(used) - 1}")
    firsts = [s for i, s in enumerate(sched.streams) if s not in sched.streams[:i]]
    if firsts != sorted(firsts):
        out.append(f"streams not numbered by first use: {firsts}")
    if max_streams is not None and sched.num_streams > max_streams:
        out.append(f"{sched.num_streams} streams, over max_streams={max_streams}")
    if sched.num_streams > max(1, len(graph.units())):   # (an empty graph's schedule declares one stream)
        out.append(f"{sched.num_streams} streams for {len(graph.units())} units")
    pos = {n: i for i, n in enumerate(order)}
    for e in sched.events:
        if stream_of[e.after] == stream_of[e.before]:
            out.append(f"event {e} within one stream")
        if pos[e.after] >= pos[e.before]:
            out.append(f"event {e} waited before it is recorded")
    if len(set(sched.events)) != len(sched.events):
        out.append("an event twice")
    out += [f"dependency {w} -> {n} not ordered" for w, n in unordered(graph, sched)]
    for i, e in enumerate(sched.events):
        if not unordered(graph, sched, skip=i):
            out.append(f"event {e} is redundant: every dependency stays ordered without it")
    for name, members in graph.groups().items():
        ids = [graph.nodes[m].id for m in members]
        if len({stream_of[i] for i in ids}) != 1:
            out.append(f"group {name!r} on several streams")
        if [pos[i] for i in ids] != list(range(pos[ids[0]], pos[ids[0]] + len(ids))):
            out.append(f"group {name!r} not consecutive in listed order")
    return out


def plan_schedule(p: memplan.Plan) -> Schedule:
    d = p.to_dict()
    return Schedule(tuple(o["node"] for o in d["order"]), tuple(o["stream"] for o in d["order"]),
                    tuple(Event(e["after"], e["before"]) for e in d["events"]))


# ----------------------------------------------------------------------------------------------------------------
# 1. the schedule's promises
# ----------------------------------------------------------------------------------------------------------------

@settings(max_examples=45, **SETTINGS)
@given(g=any_dag, k=st.one_of(st.integers(1, 8), st.integers(1, 64)), event_us=st.sampled_from([0.0, 1.0, 2.0, 50.0]),
       cap=st.one_of(st.none(), st.none(), st.integers(0, 6)))
def test_schedule_keeps_every_promise(g, k, event_us, cap):
    model = CostModel(event_us=event_us)
    cap = None if k == 1 else cap   # (one stream: the cap is ignored with a warning, tested below)
    sched = graph_optimize(g, k, cost_model=model, max_events=cap)
    assert schedule_problems(g, sched, k) == []
    if cap is not None:
        assert len(sched.events) <= cap
    p = memplan.plan(g, sched)
    memplan.verify(g, p)
    sim = simulate(g, p, model)
    assert sim.makespan_us <= sim.serial_us + 1e-6 * max(1.0, sim.serial_us)
    assert graph_optimize(g, k, cost_model=model, max_events=cap) == sched   # deterministic


@settings(max_examples=12, **SETTINGS)
@given(g=wide_dags(), k=st.sampled_from([17, 33, 40, 64, 1024]), event_us=st.sampled_from([0.0, 2.0]),
       cap=st.one_of(st.none(), st.integers(0, 40)))
def test_schedule_keeps_every_promise_past_32_streams(g, k, event_us, cap):
    sched = graph_optimize(g, k, cost_model=CostModel(event_us=event_us), max_events=cap)
    assert schedule_problems(g, sched, k) == []
    if cap is not None:
        assert len(sched.events) <= cap
    memplan.verify(g, memplan.plan(g, sched))


def _shuffled_keys(x, rng: random.Random):
    if isinstance(x, dict):
        items = list(x.items())
        rng.shuffle(items)
        return {k: _shuffled_keys(v, rng) for k, v in items}
    if isinstance(x, list):
        return [_shuffled_keys(v, rng) for v in x]
    return x


@settings(max_examples=25, **SETTINGS)
@given(g=any_dag, k=st.sampled_from([2, 3, 8, 40]), seed=st.integers(0, 2 ** 32 - 1))
def test_deterministic_over_orders_the_contract_leaves_open(g, k, seed):
    """Keys inside the document permuted: byte-identical plan JSON (docs/format.md). The ``tensors`` list or a
    node's ``inputs`` permuted: the same schedule (the tensors' order may only break placement ties)."""
    rng = random.Random(seed)
    doc = g.to_dict()
    base = graph_optimize(g, k)
    shuffled = json.loads(json.dumps(doc))
    rng.shuffle(shuffled["tensors"])
    for n in shuffled["nodes"]:
        rng.shuffle(n["inputs"])
    assert graph_optimize(graph_from_dict(shuffled), k) == base
    same = graph_from_dict(_shuffled_keys(doc, rng))
    assert memplan.plan(same, streams=k).to_json() == memplan.plan(g, streams=k).to_json()


def test_one_node_and_empty_graphs():
    b = GraphBuilder("one")
    b.input("x", 0)
    b.node("n", "OP", ["x"], b.output("y", 0))
    one = b.build()
    empty = GraphBuilder("empty").build()
    for g in (one, empty):
        for k in (1, 2, 64, 1024):
            sched = graph_optimize(g, k)
            assert sched.num_streams == 1 and sched.events == ()
            assert schedule_problems(g, sched, k) == []
            memplan.verify(g, memplan.plan(g, streams=k, memory_budget=0 if g is empty else 10 ** 6))


# ----------------------------------------------------------------------------------------------------------------
# 2. the memory budget
# ----------------------------------------------------------------------------------------------------------------

@settings(max_examples=30, **SETTINGS)
@given(g=st.one_of(any_dag, wide_dags()), k=st.sampled_from([None, 1, 2, 3, 8, 33, "auto"]),
       base=st.sampled_from(["arena", "arena", "peak"]), frac=st.sampled_from([0.0, 0.5, 0.99, 1.0, 1.01, 1.5, 3.0]),
       delta=st.sampled_from([-1, 0, 1]), cap=st.one_of(st.none(), st.integers(0, 12)),
       solver=st.sampled_from(["auto", "greedy", "size"]), fused=st.booleans())
def test_budget_met_or_refused_by_name(g, k, base, frac, delta, cap, solver, fused):
    """Budgets below, at and above the serial plan's arena (the same solver's) or its peak (the serial schedule's
    lower bound, the most bytes live at one node): the arena within the budget and every schedule promise kept, or
    a BudgetError quoting the budget and the serial arena -- only where the serial plan is over the budget too (it
    is a candidate: a budget at its arena is always met)."""
    serial_plan = memplan.plan(g, solver=solver, fused_groups=fused)
    serial = serial_plan.arena_bytes
    budget = max(0, int((serial if base == "arena" else serial_plan.lower_bound_bytes) * frac) + delta)
    opts = dict(streams=k, memory_budget=budget, solver=solver, fused_groups=fused)
    if cap is not None and k not in (None, 1):
        opts["max_events"] = cap
    try:
        p = memplan.plan(g, **opts)
    except memplan.BudgetError as exc:
        assert budget < serial, str(exc)
        assert f"memory budget of {budget} B" in str(exc) and f"arena of {serial} B" in str(exc), str(exc)
        return
    assert p.arena_bytes <= budget
    memplan.verify(g, p, fused_groups=fused)
    sched = plan_schedule(p)
    assert schedule_problems(g, sched, {None: 1, "auto": 8}.get(k, k)) == []
    if "max_events" in opts:
        assert len(sched.events) <= cap
    sim = simulate(g, p)
    assert sim.makespan_us <= sim.serial_us + 1e-6 * max(1.0, sim.serial_us)
    assert memplan.plan(g, **opts).to_json() == p.to_json()


@settings(max_examples=15, **SETTINGS)
@given(g=any_dag, k=st.sampled_from([2, 3, 8]), frac=st.sampled_from([0.0, 0.9, 1.0, 1.5]))
def test_budget_checks_a_given_schedule_never_changes_it(g, k, frac):
    """A ``schedule`` given with a ``memory_budget``: planned as given, or a BudgetError naming the given schedule's
    arena and the budget."""
    sched = graph_optimize(g, k)
    arena = memplan.plan(g, sched).arena_bytes
    budget = int(arena * frac)
    try:
        p = memplan.plan(g, sched, memory_budget=budget)
    except memplan.BudgetError as exc:
        assert budget < arena
        assert f"given schedule needs an arena of {arena} B" in str(exc) and f"{budget} B" in str(exc), str(exc)
        return
    assert p.arena_bytes <= budget and plan_schedule(p) == sched


# ----------------------------------------------------------------------------------------------------------------
# 3. bad options: our exception, naming the option; the CLI: one line, exit 2
# ----------------------------------------------------------------------------------------------------------------

class _NoUs:
    event_us = 2.0


BAD_API = [
    *[(lambda g, v=v: graph_optimize(g, v), "max_streams")
      for v in (0, -1, True, False, 1025, 2 ** 70, 2.0, 2.5, "2", None, float("nan"), float("inf"), [2])],
    *[(lambda g, v=v: graph_optimize(g, 2, max_events=v), "max_events")
      for v in (-1, True, 2.5, "3", float("nan"), 2 ** 70)],
    *[(lambda g, v=v: graph_optimize(g, 2, cost_model=v), "cost_model")
      for v in ("roofline", 3, object(), CostModel, {"event_us": 1}, _NoUs())],
    *[(lambda g, v=v: graph_optimize(g, 2, cost_model=CostModel(event_us=v)), "event_us")
      for v in (-1, float("nan"), float("inf"), "2", True, None, 1e16)],
    (lambda g: graph_optimize(g, 2, costmodel=CostModel()), "costmodel"),
    *[(lambda g, v=v: memplan.plan(g, streams=2, memory_budget=v), "memory_budget")
      for v in (float("nan"), -1, "1000", "64K", float("inf"), True, 2 ** 70, 1.5, [1])],
    *[(lambda g, v=v: memplan.plan(g, streams=v), "streams")
      for v in (0, -1, True, "8", 2.0, 2 ** 70, "AUTO", "", float("nan"))],
    (lambda g: memplan.plan(g, streams=2, max_events=-1), "max_events"),
]


@pytest.mark.parametrize("call,option", BAD_API, ids=[f"{o}-{i}" for i, (_, o) in enumerate(BAD_API)])
def test_bad_options_refused_by_name(call, option):
    with pytest.raises(memplan.errors.MemplanError) as info:
        call(qkv_attention())
    assert option in str(info.value), str(info.value)


BAD_CLI = [
    (["--streams", "0"], "--streams"), (["--streams", "-1"], "--streams"), (["--streams", "1025"], "--streams"),
    (["--streams", "2.5"], "--streams"), (["--streams", "true"], "--streams"), (["--streams", ""], "--streams"),
    (["--streams", "99999999999999999999999"], "--streams"), (["--streams", "\uff18"], "--streams"),
    (["--streams", "2", "--memory-budget", "nan"], "--memory-budget"),
    (["--streams", "2", "--memory-budget", "-1"], "--memory-budget"),
    (["--streams", "2", "--memory-budget", "abc"], "--memory-budget"),
    (["--streams", "2", "--memory-budget", "inf"], "--memory-budget"),
    (["--streams", "2", "--memory-budget", "1.5"], "--memory-budget"),
    (["--streams", "2", "--memory-budget", "99999999999999999999999"], "--memory-budget"),
    (["--streams", "2", "--memory-budget", "0"], "memory budget of 0 B"),
    (["--memory-budget", "1"], "memory budget of 1 B"),
    (["--streams", "2", "--event-us", "nan"], "--event-us"), (["--streams", "2", "--event-us", "-1"], "--event-us"),
    (["--streams", "2", "--event-us", "1e16"], "--event-us"),
    (["--streams", "2", "--max-events", "-1"], "--max-events"),
    (["--streams", "2", "--max-events", "1.5"], "--max-events"),
    (["--max-events", "3"], "--max-events"),
]


@pytest.mark.parametrize("args,word", BAD_CLI, ids=[" ".join(a) for a, _ in BAD_CLI])
def test_bad_cli_options_one_line_exit_2(tmp_path, args, word):
    src = tmp_path / "g.json"
    memplan.save_graph(fanout_join15(), str(src))
    out = tmp_path / "p.json"
    code, _, err = run_captured("plan", str(src), "-o", str(out), "-q", *args)
    assert_bad_input(code, err, word)
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------------------
# the oracle can fail: each hazard planted in a real schedule is flagged
# ----------------------------------------------------------------------------------------------------------------

def _groups_graph() -> Graph:
    b = GraphBuilder("planted")
    b.input("x", 256)
    a = b.intermediate("a", 256)
    b.node("a", "OP", ["x"], a, cost=1.0)
    l1 = b.intermediate("l1", 256)
    b.node("l1", "OP", [a], l1, cost=10.0, group="g")
    l2 = b.intermediate("l2", 256)
    b.node("l2", "OP", [l1], l2, cost=10.0, group="g")
    r = b.intermediate("r", 256)
    b.node("r", "OP", [a], r, cost=20.0)
    b.node("j", "OP", [l2, r], b.output("y", 256), cost=1.0)
    return b.build()


def test_oracle_flags_each_planted_hazard():
    g = _groups_graph()
    good = graph_optimize(g, 2)
    assert good.num_streams == 2 and len(good.events) == 2 and schedule_problems(g, good, 2) == []
    # a dropped event: a dependency unordered
    dropped = Schedule(good.order, good.streams, good.events[1:])
    assert any("not ordered" in p for p in schedule_problems(g, dropped))
    # a redundant event: the stream's first node already orders it (a -> its successor on the same stream)
    so = good.stream_of()
    other = [n for n in good.order if so[n] != so["a"]]
    extra = Schedule(good.order, good.streams, (*good.events, Event("a", other[-1])))
    assert any("redundant" in p for p in schedule_problems(g, extra))
    # a group split over two streams, and a group not consecutive
    streams = list(good.streams)
    streams[good.order.index("l2")] = 1 - streams[good.order.index("l1")]
    assert any("several streams" in p for p in schedule_problems(g, Schedule(good.order, tuple(streams), ())))
    order = ["a", "l1", "r", "l2", "j"]
    assert any("not consecutive" in p for p in schedule_problems(g, Schedule(tuple(order), (0,) * 5, ())))
    # streams not numbered 0 .. n-1, and over max_streams
    assert any("are not 0" in p for p in schedule_problems(g, Schedule(good.order, tuple(2 * s for s in good.streams),
                                                                        good.events)))
    assert any("over max_streams" in p for p in schedule_problems(g, good, 1))
