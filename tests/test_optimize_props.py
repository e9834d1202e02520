"""Property tests: on random DAGs (with fusion groups, views, in-place pairs) every schedule and plan
graph_optimize produces is well-formed, keeps groups whole, records before waiting, and verifies."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memplan
from memplan import GraphBuilder, build_happens_before, graph_optimize, simulate
from memplan.optimize import CostModel


@st.composite
def random_dag(draw):
    n = draw(st.integers(2, 14))
    b = GraphBuilder("rand", alignment=64)
    b.input("x", draw(st.integers(1, 4)) * 256)
    tensors = ["x"]
    group_left = 0
    gid = 0
    for i in range(n):
        k = draw(st.integers(1, min(3, len(tensors))))
        ins = sorted(set(draw(st.lists(st.sampled_from(tensors), min_size=1, max_size=k))))
        kind = "output" if i == n - 1 or draw(st.integers(0, 9)) == 0 else "intermediate"
        out = b.tensor(f"t{i}", draw(st.integers(0, 8)) * 128, kind)
        cost = draw(st.one_of(st.none(), st.floats(0, 50, allow_nan=False)))
        group = None
        if group_left > 0:
            group = f"g{gid}"
            group_left -= 1
        elif draw(st.integers(0, 5)) == 0:
            gid += 1
            group = f"g{gid}"
            group_left = draw(st.integers(1, 2))
        inplace = {out: ins[0]} if ins[0] != "x" and draw(st.booleans()) else None
        b.node(f"n{i}", "OP", ins, out, cost=cost, group=group, inplace=inplace)
        tensors.append(out)
        if draw(st.integers(0, 4)) == 0:
            v = b.view(f"v{i}", out, b._tensors[-1].size)
            tensors.append(v)
    return b.build()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=random_dag(), max_streams=st.integers(1, 8), event_us=st.sampled_from([0.0, 1.0, 5.0]))
def test_random_dags_schedule_safely(g, max_streams, event_us):
    model = CostModel(event_us=event_us)
    sched = graph_optimize(g, max_streams, cost_model=model)
    assert sched.num_streams <= max_streams
    assert sorted(sched.order) == sorted(n.id for n in g.nodes)
    build_happens_before(g, sched)  # topological, events forward, groups whole (raises otherwise)
    pos = {nid: i for i, nid in enumerate(sched.order)}
    s = sched.stream_of()
    for e in sched.events:
        assert pos[e.after] < pos[e.before] and s[e.after] != s[e.before]
    for members in g.groups().values():
        ids = [g.nodes[m].id for m in members]
        assert len({s[i] for i in ids}) == 1
        assert [pos[i] for i in ids] == list(range(pos[ids[0]], pos[ids[0]] + len(ids)))
    sim = simulate(g, sched, model)
    assert sim.makespan_us <= sim.serial_us + 1e-6  # never slower than serial under the model
    p = memplan.plan(g, sched)
    memplan.verify(g, p)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=random_dag(), max_streams=st.integers(2, 8), frac=st.floats(0, 1.2), cap=st.integers(0, 6))
def test_random_budgets_fit_or_raise(g, max_streams, frac, cap):
    serial = memplan.plan(g).arena_bytes
    conc = memplan.plan(g, streams=max_streams).arena_bytes
    budget = int(serial * 0.9 + frac * max(conc - serial, 0))
    try:
        p = memplan.plan(g, streams=max_streams, memory_budget=budget, max_events=cap)
    except memplan.BudgetError:
        p = None
    if p is None:
        assert serial > budget  # refused only when not even the serial plan fits
    else:
        assert p.arena_bytes <= budget
        assert len(p.events) <= cap
        blk = p.solver["schedule"]
        assert blk["makespan_us"] <= blk["serial_makespan_us"] + 1e-6
        memplan.verify(g, p)
