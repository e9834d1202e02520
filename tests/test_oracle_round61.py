"""Round 61's differential fuzzer: planners and ``memplan.verify`` against ``oracle61.safe``, an oracle written again
from CONTRACT.md alone, on the graph shapes the earlier generators leave out (``oracle61.gap_graphs``: view chains
rooted at weights and inputs, node-produced views at any depth, in-place onto views, output views, nodes with no
inputs, a tensor read twice by one node, unread and zero-size tensors, sizes to 2**47, alignments 1 to 2**31).

(a) every plan a solver returns (greedy, size, auto, auto and search/cpsat with a small time limit; on 1, 2 and
"auto" streams, on random explicit schedules, a larger plan alignment, a memory budget, event caps, several devices)
is safe by the oracle; (b) on the planners' plans mutated one change at a time (an offset moved by the alignment or
onto another root, an event dropped or turned around, two nodes swapped in order, a node moved to another stream or
device, the arena or a device's arena shrunk, a view retargeted, the plan's alignment changed) and on plans made
by no planner (``oracle61.random_plan``), ``memplan.verify.check`` finds something exactly when the oracle does.
Derandomised (``derandomize=True``), so a failure repeats; a few hundred examples in all.
"""

from __future__ import annotations

import importlib.util
import json
import random

import oracle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle61 import MUTATIONS, gap_graphs, mutate, random_plan, safe, wide_graphs
from strategies import fit_devices

import memplan
from memplan import GraphBuilder
from memplan.verify import check

FAST = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
WIDE = settings(FAST, max_examples=40)

SOLVERS = [dict(solver="greedy"), dict(solver="size"), dict(), dict(solver="auto", time_limit=0.02),
           dict(solver="search", time_limit=0.02)]
if importlib.util.find_spec("ortools") is not None:
    SOLVERS.append(dict(solver="cpsat", time_limit=0.02))
STREAMS = [dict(), dict(streams=2), dict(streams="auto"), dict(streams=2, max_events=1),
           dict(streams="auto", memory_budget=1 << 12)]


def verdicts(graph, plan: dict, **kw) -> tuple[list, list]:
    """(the oracle's findings, verify's findings) for ``plan`` (a dict) of ``graph``; a plan verify refuses to
    read at all (``PlanFormatError``) counts as a finding."""
    try:
        found = list(check(graph, plan, **kw))
    except memplan.errors.PlanFormatError as e:
        found = [(0, str(e))]
    return safe(graph.to_dict(), plan), found


def _agree(graph, plan: dict, what: str) -> None:
    oracle, found = verdicts(graph, plan)
    assert bool(oracle) == bool(found), (what, oracle, found, json.dumps(graph.to_dict()), json.dumps(plan))


@FAST
@given(gap_graphs(), st.sampled_from(SOLVERS), st.sampled_from(STREAMS), st.sampled_from([0, 0, 2]))
def test_planned_plans_are_safe(graph, solver, streams, raise_alignment):
    opts = dict(solver, **streams)
    if raise_alignment and graph.alignment < 2 ** 31:
        opts["alignment"] = graph.alignment << raise_alignment
    try:
        plan = memplan.plan(graph, **opts)
    except memplan.errors.BudgetError:
        plan = memplan.plan(graph, **{k: v for k, v in opts.items() if k != "memory_budget"})
    assert not safe(graph.to_dict(), plan.to_dict()), (opts, json.dumps(graph.to_dict()))


@FAST
@given(gap_graphs(max_nodes=10), st.sampled_from(SOLVERS), st.randoms(use_true_random=False))
def test_planned_on_random_schedules_are_safe(graph, solver, r):
    gd = graph.to_dict()
    for _ in range(10):   # a random issue order and streams; the fewest events for them
        rp = random_plan(gd, r)
        try:
            schedule = memplan.schedule_with_events(graph, [e["node"] for e in rp["order"]],
                                                    {e["node"]: e["stream"] for e in rp["order"]})
        except memplan.errors.ScheduleError:
            continue
        plan = memplan.plan(graph, schedule, **solver)
        assert not safe(gd, plan.to_dict()), (solver, json.dumps(gd), json.dumps(plan.to_dict()))
        return


@FAST
@given(gap_graphs(), st.sampled_from([dict(), dict(streams=2), dict(streams="auto")]),
       st.randoms(use_true_random=False))
def test_mutants_verdicts_agree(graph, streams, r):
    plan = memplan.plan(graph, **streams).to_dict()
    _agree(graph, plan, "as planned")
    for how in MUTATIONS:
        for _ in range(2):
            mutant = mutate(graph.to_dict(), plan, how, r)
            if mutant is not None:
                _agree(graph, mutant, how)


@FAST
@given(gap_graphs(max_nodes=10), st.sampled_from([2, 3]), st.sampled_from([1, 2]), st.randoms(use_true_random=False))
def test_multi_device_mutants_verdicts_agree(graph, devices, streams, r):
    opts = fit_devices(graph, dict(devices=devices, streams=streams))
    planned = memplan.plan_graph(graph, **opts)
    split, plan = planned.graph, planned.plan.to_dict()
    _agree(split, plan, "as planned")
    for how in MUTATIONS:
        for _ in range(2):
            mutant = mutate(split.to_dict(), plan, how, r)
            if mutant is not None:
                _agree(split, mutant, how)


@FAST
@given(gap_graphs(max_nodes=10), st.randoms(use_true_random=False))
def test_random_plans_verdicts_agree(graph, r):
    for _ in range(4):
        _agree(graph, random_plan(graph.to_dict(), r), "random plan")


def test_oracle_refuses_the_known_unsafe_shapes():
    """The oracle itself, on hand-made plans: a read of a weight-rooted view written on another stream with no
    event (rule 2) and its safe version; an output view's root reused before the run ends (rule 3)."""
    b = GraphBuilder("kv", alignment=1)
    b.weight("cache", 64)
    b.input("x", 8)
    b.node("set", "SET_ROWS", ["x"], b.view("slot", "cache", 8, 8))
    b.node("read", "OP", ["slot"], b.output("y", 8))
    g = b.build()
    plan = random_plan(g.to_dict(), random.Random(0))
    plan["order"] = [{"node": "set", "stream": 0}, {"node": "read", "stream": 1}]
    plan["streams"], plan["events"] = 2, []
    plan["tensors"] = [{"id": t.id, "offset": {"x": 0, "y": 8}.get(t.id), "size": t.size} for t in g.tensors]
    plan["arena_bytes"] = 16
    assert any(f.startswith("rule 2") for f in safe(g.to_dict(), plan))
    plan["events"] = [{"after": "set", "before": "read"}]
    assert safe(g.to_dict(), plan) == []
    _agree(g, plan, "hand-made")

    b = GraphBuilder("outview", alignment=1)
    b.input("x", 8)
    b.node("a", "OP", ["x"], b.tensor("t", 8))
    b.view("tv", "t", 4, 0, kind="output")
    b.node("c", "OP", ["t"], b.tensor("u", 8))
    b.node("d", "OP", ["u"], b.output("z", 8))
    g = b.build()
    plan = random_plan(g.to_dict(), random.Random(0))
    plan["order"] = [{"node": n, "stream": 0} for n in ("a", "c", "d")]
    plan["streams"], plan["events"] = 1, []
    offs = {"x": 0, "t": 8, "tv": 8, "u": 0, "z": 8}   # z over t: t is kept to the end by its output view
    plan["tensors"] = [{"id": t.id, "offset": offs[t.id], "size": t.size} for t in g.tensors]
    plan["arena_bytes"] = 16
    assert any(f.startswith("rule 3") for f in safe(g.to_dict(), plan))
    _agree(g, plan, "hand-made")


@WIDE
@given(wide_graphs(), st.randoms(use_true_random=False))
def test_wide_plans_verdicts_agree(graph, r):
    """16 streams and more (``verify``'s array paths): random plans with sparse events, every node on a stream of
    its own half the time; then the planner's plan of that schedule with each of its events dropped in turn."""
    for _ in range(2):
        plan = random_plan(graph.to_dict(), r, max_streams=40)
        if r.random() < 0.5:
            for i, e in enumerate(plan["order"]):
                e["stream"] = i
            plan["streams"] = len(plan["order"])
        keep = r.choice([0.02, 0.1, 0.3])
        plan["events"] = [e for e in plan["events"] if r.random() < keep]
        _agree(graph, plan, "random plan")
    try:
        schedule = memplan.schedule_with_events(graph, [e["node"] for e in plan["order"]],
                                                {e["node"]: e["stream"] for e in plan["order"]})
    except memplan.errors.ScheduleError:
        return
    planned = memplan.plan(graph, schedule).to_dict()
    _agree(graph, planned, "as planned")
    for i in range(len(planned["events"])):
        _agree(graph, dict(planned, events=planned["events"][:i] + planned["events"][i + 1:]), "event dropped")


@FAST
@given(gap_graphs(max_nodes=12), st.sampled_from(["greedy", "size", "auto"]), st.randoms(use_true_random=False))
def test_serial_offsets_on_other_streams_verdicts_agree(graph, solver, r):
    """A serial plan's offsets kept under the same order on random streams with the fewest events (ggml's
    assumption, ``plan_mutators.plan_with_offsets_of``): rule 3 decided right at each lifetime's edge."""
    plan = memplan.plan(graph, solver=solver).to_dict()
    order = [e["node"] for e in plan["order"]]
    k = r.randint(2, 4)
    stream_of = {n: r.randint(0, k - 1) for n in order}
    try:
        schedule = memplan.schedule_with_events(graph, order, stream_of)
    except memplan.errors.ScheduleError:
        return
    moved = dict(plan, order=[{"node": n, "stream": stream_of[n]} for n in order], streams=k, lower_bound_bytes=0,
                 events=[{"after": e.after, "before": e.before} for e in schedule.events])
    _agree(graph, moved, "serial offsets on several streams")


@FAST
@given(gap_graphs(max_nodes=6), st.sampled_from([dict(), dict(streams=2), dict(solver="search", time_limit=0.02),
                                                 dict(streams=2, solver="greedy")]))
def test_bounds_are_sound(graph, opts):
    """``lower_bound_bytes`` (and a solver's ``bound``) never above the brute-force optimum of the plan's schedule
    (``oracle.optimal_arena``), and OPTIMAL only at it."""
    plan = memplan.plan(graph, **opts).to_dict()
    best = oracle.optimal_arena(graph.to_dict(), plan, max_roots=6)
    if best is None:
        return
    assert plan["lower_bound_bytes"] <= best <= plan["arena_bytes"]
    assert plan["solver"].get("bound", 0) <= best
    if plan["solver"].get("status") == "OPTIMAL":
        assert plan["arena_bytes"] == best


@settings(FAST, max_examples=100)
@given(gap_graphs(max_nodes=10), st.sampled_from([dict(), dict(streams=2), dict(streams="auto")]),
       st.randoms(use_true_random=False))
def test_fused_group_mutants_verdicts_agree(graph, streams, r):
    """``fused_groups=True`` plans and their mutants, judged by ``oracle.findings(fused_groups=True)`` (oracle61 does
    not model a group run as one kernel): planned plans safe, verify's verdict the oracle's on every mutant."""
    gd = graph.to_dict()
    plan = memplan.plan(graph, fused_groups=True, **streams).to_dict()
    assert not oracle.findings(gd, plan, fused_groups=True)
    for how in MUTATIONS:
        mutant = mutate(gd, plan, how, r)
        if mutant is not None:
            try:
                found = list(check(graph, mutant, fused_groups=True))
            except memplan.errors.PlanFormatError as e:
                found = [(0, str(e))]
            expected = oracle.findings(gd, mutant, fused_groups=True)
            assert bool(found) == bool(expected), (how, found, expected, json.dumps(gd), json.dumps(mutant))
