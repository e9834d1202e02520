"""Round 60 (time60): the cost of the verifier's clocks on a dense multi-stream mesh and of a memory budget's exact
probes, proven by what is stored and what is built (no wall clock is read)."""

from __future__ import annotations

import importlib
import random
from collections import Counter

import numpy as np
import pytest

import memplan
from memplan import GraphBuilder
from memplan.verify import check

verify_mod = importlib.import_module("memplan.verify")
plan_mod = importlib.import_module("memplan.plan")


def mesh(layers: int, width: int, *, near: bool = False, seed: int = 0):
    """``layers`` x ``width`` nodes, node (l, c) on stream c reading its column's tensor of layer l - 1 and two others
    (random ones, or its neighbours' with ``near``), with the fewest events; (graph, schedule)."""
    rng = random.Random(seed)
    b = GraphBuilder(f"mesh-{layers}x{width}")
    prev = [b.input(f"x{c}", 256) for c in range(width)]
    order, stream_of = [], {}
    for layer in range(layers):
        cur = []
        for c in range(width):
            others = ((c - 1) % width, (c + 1) % width) if near else (rng.randrange(width), rng.randrange(width))
            t = (b.output if layer == layers - 1 else b.intermediate)(f"t{layer}_{c}", 256)
            b.node(f"n{layer}_{c}", "OP", sorted({prev[c], prev[others[0]], prev[others[1]]}), t)
            order.append(f"n{layer}_{c}")
            stream_of[f"n{layer}_{c}"] = c
            cur.append(t)
        prev = cur
    g = b.build()
    return g, memplan.schedule_with_events(g, order, stream_of)


def hand_plan(g, sched, *, slot_of=None):
    """The schedule as a plan with every root at an offset of its own, or at ``slot_of(tensor index)`` slots of 256 B
    (several roots on one slot: rule 3 then has pairs to order)."""
    tensors = [{"id": t.id, "offset": 256 * (k if slot_of is None else slot_of(k)), "size": t.size}
               for k, t in enumerate(g.tensors)]
    return memplan.plan_from_dict({
        "format": "memplan.plan/1", "graph": g.name, "alignment": 256,
        "arena_bytes": 256 * (max(x["offset"] for x in tensors) // 256 + 1), "lower_bound_bytes": 0,
        "streams": max(sched.streams) + 1,
        "order": [{"node": n, "stream": s} for n, s in zip(sched.order, sched.streams)],
        "events": [{"after": e.after, "before": e.before} for e in sched.events],
        "tensors": tensors, "solver": {"name": "hand"}})


def clock_bytes(monkeypatch, g, p) -> tuple[int, int]:
    """(bytes of the distinct stored clock arrays, entries of the clocks' differences) that ``verify`` keeps."""
    kept = []
    real = verify_mod._clocks

    def spy(*args):
        out = real(*args)
        kept.append(out)
        return out

    monkeypatch.setattr(verify_mod, "_clocks", spy)
    memplan.verify(g, p)
    (_idx, rep), = kept
    arrays = {id(base): base.nbytes for base, _diff in rep}
    return sum(arrays.values()), sum(len(diff) for _base, diff in rep if diff)


@pytest.mark.parametrize("near", [False, True])
def test_mesh_clocks_take_a_byte_a_stream(monkeypatch, near):
    """A 12-layer mesh on 256 streams (3,072 nodes): every stream has run fewer than 256 nodes, so a stored clock takes
    one byte a stream. Before: int64 arrays (8 bytes a stream: 6.3 MB here, 800 MB for 100 layers on 1,024 streams)
    and, on the neighbour mesh, up to 16 differences a node in dicts that took more than the array they stood for."""
    g, s = mesh(12, 256, near=near)
    arrays, diffs = clock_bytes(monkeypatch, g, hand_plan(g, s))
    n, streams = len(g.nodes), 256
    assert arrays <= n * streams + 2 * 8 * streams   # (one byte a component; the zero clock and slack)
    assert diffs * 64 <= arrays   # differences kept only where they are cheaper than arrays (``_DIFF_BYTES``)


def wide_findings(monkeypatch, g, p):
    """``check``'s findings with clocks stored as before round 60: int64 arrays, differences up to S / 16."""
    with monkeypatch.context() as m:
        m.setattr(verify_mod, "_narrow", lambda clock: clock)
        return list(check(g, p)), check(g, p).total


def without_events(p, drop):
    """``p`` without the events whose ``before`` node ``drop`` names."""
    doc = p.to_dict()
    return memplan.plan_from_dict({**doc, "events": [e for e in doc["events"] if not drop(e["before"])]})


@pytest.mark.parametrize("near", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_narrow_clocks_give_the_same_findings(monkeypatch, near, seed):
    """Random and neighbour meshes, roots packed onto a few slots (rule 3 has pairs to order), some events dropped
    (reads that race, reuses too early): the findings with narrow clocks are those of int64 clocks, one by one."""
    g, s = mesh(8, 64, near=near, seed=seed)
    for slots in (64 * 3, 64 * 2 + 7):
        p = hand_plan(g, s, slot_of=lambda k, slots=slots: k % slots)
        for q in (p, without_events(p, lambda n: n.endswith("_3") or n.startswith("n5_"))):
            got = check(g, q)
            assert (list(got), got.total) == wide_findings(monkeypatch, g, q)


def test_narrow_clocks_widen_past_255_nodes_a_stream(monkeypatch):
    """Streams that run 300 nodes each: the clocks take two bytes there (a one-byte count would wrap at 256 and order
    what is unordered), and the findings are those of int64 clocks."""
    g, s = mesh(300, 3, near=True)
    kept = []
    real = verify_mod._clocks
    with monkeypatch.context() as m:
        m.setattr(verify_mod, "_clocks", lambda *a: kept.append(real(*a)) or kept[-1])
        p = hand_plan(g, s, slot_of=lambda k: k % 7)
        got = check(g, p)
    (_idx, rep), = kept
    assert np.dtype(np.uint16) in {base.dtype for base, _d in rep}
    assert (list(got), got.total) == wide_findings(monkeypatch, g, p)
    bare = without_events(p, lambda n: n.startswith("n299_"))
    got = check(g, bare)
    assert got.total > 0 and (list(got), got.total) == wide_findings(monkeypatch, g, bare)


def moe(experts: int, seed: int = 0):
    """Router, per expert gather / up / SiLU in place / down, a sum of all experts, residual (quality_s59's family)."""
    rng = random.Random(seed)
    b = GraphBuilder(f"moe-{experts}")
    x = b.input("x", 65536)
    b.node("norm", "RMS_NORM", [x], b.intermediate("xn", 65536), cost=3.0)
    outs = []
    for e in range(experts):
        n = rng.randint(1, 4)
        b.node(f"g{e}", "GET_ROWS", ["xn"], b.intermediate(f"g{e}", n * 4096), cost=1.0)
        b.node(f"u{e}", "MUL_MAT", [f"g{e}"], b.intermediate(f"u{e}", n * 11264), cost=8.0)
        b.node(f"a{e}", "SILU", [f"u{e}"], b.intermediate(f"a{e}", n * 11264), cost=1.0, inplace={f"a{e}": f"u{e}"})
        b.node(f"d{e}", "MUL_MAT", [f"a{e}"], b.intermediate(f"d{e}", n * 4096), cost=8.0)
        outs.append(f"d{e}")
    b.node("sum", "MOE_SUM", outs, b.intermediate("moe", 65536), cost=4.0)
    b.node("res", "ADD", ["moe", x], b.output("y", 65536), cost=1.0)
    return b.build()


@pytest.mark.parametrize("solver", ["auto", "search"])
def test_budget_probe_takes_its_cheap_solves_problem(monkeypatch, solver):
    """``streams="auto"``, a memory budget at the serial arena and a time limit: each candidate the heuristics do not
    fit is probed exactly. Before, the probe built its happens-before, lifetimes and problem again (a 16-expert
    MoE: 105 happens-before for 53 schedules; 64 experts: a third of the plan's time); now each schedule's once, and
    the plan is the same twice over."""
    g = moe(12)
    budget = memplan.plan(g).arena_bytes
    built: Counter = Counter()
    real = plan_mod.build_happens_before

    def spy(graph, schedule):
        built[schedule.order, schedule.streams, schedule.events] += 1
        return real(graph, schedule)

    monkeypatch.setattr(plan_mod, "build_happens_before", spy)
    p = memplan.plan(g, solver=solver, streams="auto", memory_budget=budget, time_limit=0.05)
    assert p.arena_bytes <= budget
    probed = sum(1 for v in built.values() if v)
    assert probed >= 3   # (the budget did send candidates to exact probes)
    assert max(built.values()) == 1, built.most_common(3)
    monkeypatch.setattr(plan_mod, "build_happens_before", real)
    again = memplan.plan(g, solver=solver, streams="auto", memory_budget=budget, time_limit=0.05)
    assert again.to_json() == p.to_json()


def test_budget_probes_stop_at_the_plans_wall_clock_stop(monkeypatch):
    """The documented bound of a budget's exact probes: once the plan's wall-clock stop (``plan._budget_wall``) has
    passed, no candidate is solved exactly any more (a fake stop already passed: no solve with a time limit runs but
    the listed serial schedule's last-resort one), the rest is the heuristics', and the plan says
    ``stopped: wall_clock``."""
    g = moe(12)
    budget = memplan.plan(g).arena_bytes
    exact_solves: list = []
    real = plan_mod.solve_schedule

    def spy(graph, schedule, solver="auto", options=None, **kw):
        if options is not None and options.time_limit is not None:
            exact_solves.append(schedule)
        return real(graph, schedule, solver, options, **kw) if options is not None else real(graph, schedule, solver,
                                                                                                **kw)

    monkeypatch.setattr(plan_mod, "solve_schedule", spy)
    monkeypatch.setattr(plan_mod, "_budget_wall", lambda t0, options, work: float("-inf"))
    with pytest.warns(memplan.errors.WallClockStop):
        p = memplan.plan(g, streams="auto", memory_budget=budget, time_limit=0.05)
    assert p.arena_bytes <= budget and p.solver.get("stopped") == "wall_clock"
    serial = memplan.serial_schedule(g)
    assert all(s == serial for s in exact_solves), len(exact_solves)   # (the last resort alone may solve exactly)
    # the same plan with a stop never reached probes candidates exactly
    monkeypatch.setattr(plan_mod, "_budget_wall", lambda t0, options, work: float("inf"))
    exact_solves.clear()
    memplan.plan(g, streams="auto", memory_budget=budget, time_limit=0.05)
    assert len(exact_solves) >= 3
