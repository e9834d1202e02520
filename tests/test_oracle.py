"""The library against an independent brute-force oracle (``oracle.py``): plans, verifier, bounds, bytes.

``oracle.findings`` reads only the graph and plan JSON and decides CONTRACT.md's rules by explicit
happens-before closure and pair-by-pair overlap checks. Here (1) every plan ``memplan.plan`` returns,
over its solvers and options (streams, max_events, memory budget, devices, fused groups, cpsat/search
with small time limits), passes it, and its bound is sound (at most the brute-force optimum, at least
the per-node bound; OPTIMAL means the optimum); (2) ``memplan.verify`` accepts exactly what the oracle
accepts, on the planner's plans corrupted on purpose and on random placements; (3) plan JSON is
byte-identical across runs and across processes with different PYTHONHASHSEED.
"""

from __future__ import annotations

import copy
import glob
import json
import os
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import findings, optimal_arena, per_node_bound
from oracle_fuzz import MUTATIONS, corrupt, dags, random_placement
from strategies import fit_devices, graphs, schedules, view_chains

import memplan
from memplan import examples, generators

SCALE = int(os.environ.get("MEMPLAN_PROPERTY_SCALE", "1"))
SETTINGS = settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HERE = os.path.dirname(os.path.abspath(__file__))

#: option sets of ``memplan.plan``: every solver, streams, event caps, budgets, devices, fused groups
OPTIONS = [dict(), dict(streams=2), dict(streams=3, max_events=1), dict(streams="auto"),
           dict(streams="auto", max_events=0), dict(solver="greedy"), dict(solver="size"), dict(solver="ggml"),
           dict(solver="search", time_limit=0.05), dict(solver="cpsat", time_limit=0.05),
           dict(streams="auto", solver="search", time_limit=0.05), dict(streams=2, solver="cpsat", time_limit=0.05),
           dict(devices=2), dict(devices=3, streams=2), dict(devices=2, streams="auto", max_events=1),
           dict(fused_groups=True), dict(streams=2, fused_groups=True), dict(streams="auto", seed=5, workers=2)]


def small_examples() -> dict[str, memplan.Graph]:
    return {k: g for k, g in examples.bundled().items() if "1b" not in k}


def any_graph(max_nodes: int = 9):
    return st.one_of(dags(max_nodes), graphs(max_nodes), view_chains(max_nodes))


def accepted(graph: memplan.Graph, plan: dict, fused: bool = False) -> bool:
    try:
        memplan.verify(graph, plan, fused_groups=fused)
    except memplan.MemplanError:
        return False
    return True


def assert_sound(planned: memplan.Planned, opts: dict) -> None:
    """The returned plan is safe by the oracle, within budget, and its bound and status are true."""
    gd, pd = planned.graph.to_dict(), planned.plan.to_dict()
    fused = opts.get("fused_groups", False)
    assert findings(gd, pd, fused_groups=fused) == []
    assert per_node_bound(gd, pd) <= pd["lower_bound_bytes"] <= pd["arena_bytes"]
    if opts.get("memory_budget") is not None:
        assert pd["arena_bytes"] <= opts["memory_budget"]
    best = optimal_arena(gd, pd)   # the contract's bound holds for every safe plan of this schedule
    if best is not None:
        assert pd["lower_bound_bytes"] <= best
        best_here = optimal_arena(gd, pd, fused_groups=True) if fused else best
        assert best_here <= pd["arena_bytes"]
        if pd["solver"]["status"] == "OPTIMAL":
            assert pd["arena_bytes"] == best_here


# ---- the oracle itself must be able to fail -------------------------------------------------------------

def test_oracle_names_each_broken_rule():
    """Hand-made corruptions of a two-stream diamond plan break the rule they are meant to break."""
    g = examples.diamond()
    gd = g.to_dict()
    sched = memplan.schedule_with_events(g, ["a", "l", "r", "j"], {"a": 0, "l": 0, "r": 1, "j": 0})
    pd = memplan.plan(g, sched).to_dict()
    assert findings(gd, pd) == [] and pd["events"]

    def rules(mutate) -> set[int]:
        q = copy.deepcopy(pd)
        mutate(q)
        return {r for r, _ in findings(gd, q)}

    offs = {e["id"]: e for e in pd["tensors"]}
    assert 2 in rules(lambda q: q["events"].clear())                        # r reads ta unsynchronised
    assert rules(lambda q: q["order"].reverse()) >= {1}                     # readers before writers
    assert 4 in rules(lambda q: q.update(arena_bytes=q["arena_bytes"] - 1))
    assert 4 in rules(lambda q: q["tensors"][0].update(offset=q["tensors"][0]["offset"] + 1))

    def tl_onto_tr(q):   # the two concurrent branches share bytes
        for e in q["tensors"]:
            if e["id"] == "tl":
                e["offset"] = offs["tr"]["offset"]
    assert rules(tl_onto_tr) == {3}


def test_oracle_inplace_exception_and_zero_sizes():
    """An in-place pair may share bytes; the same pair without the in-place entry may not; empty ranges
    overlap nothing."""
    def graph(inplace: bool, size: int = 1024) -> memplan.Graph:
        b = memplan.GraphBuilder("ip")
        b.input("x", 1024)
        b.node("a", "OP", ["x"], b.intermediate("t", 1024))
        b.node("b", "OP", ["t"], b.output("y", size), inplace={"y": "t"} if inplace else None)
        return b.build()

    for inplace in (True, False):
        g = graph(inplace)
        pd = memplan.plan(g, solver="greedy").to_dict()
        for e in pd["tensors"]:
            e["offset"] = {"x": 0, "t": 1024, "y": 1024}[e["id"]]
        pd["arena_bytes"] = 2048
        assert (findings(g.to_dict(), pd) == []) is inplace
        assert accepted(g, pd) is inplace
    g = graph(False, size=0)
    pd = memplan.plan(g).to_dict()
    for e in pd["tensors"]:
        e["offset"] = {"x": 0, "t": 1024, "y": 1024}[e["id"]]
    pd["arena_bytes"] = 2048
    assert findings(g.to_dict(), pd) == [] and accepted(g, pd)


# ---- (1) every returned plan passes the oracle ------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(small_examples()))
def test_bundled_examples_pass_the_oracle(name):
    g = small_examples()[name]
    for opts in OPTIONS:
        assert_sound(memplan.plan_graph(g, **opts), opts)


def test_saved_plans_agree():
    """tests/data's plans: the oracle and the verifier both accept them against the bundled graphs."""
    by_name = {g.name: g for g in examples.bundled().values()}
    files = sorted(glob.glob(os.path.join(HERE, "data", "*.plan.json")))
    assert files
    for path in files:
        with open(path) as f:
            doc = json.load(f)
        g = by_name[doc["graph"]]
        assert findings(g.to_dict(), doc) == [], path
        assert accepted(g, doc), path


@SETTINGS
@given(st.data())
def test_returned_plans_pass_the_oracle(data):
    g = data.draw(any_graph(), label="graph")
    if data.draw(st.integers(0, 3), label="explicit schedule") == 0:
        order, stream_of = data.draw(schedules(g, 4), label="schedule")
        opts = dict(schedule=memplan.schedule_with_events(g, order, stream_of),
                    solver=data.draw(st.sampled_from(["auto", "greedy", "size", "search"])))
    else:
        opts = fit_devices(g, dict(data.draw(st.sampled_from(OPTIONS), label="options")))
    if data.draw(st.integers(0, 4), label="budget") == 0:
        serial, free = memplan.plan(g).arena_bytes, memplan.plan(g, streams="auto").arena_bytes
        opts = dict(streams="auto", memory_budget=data.draw(st.integers(min(serial, free), max(serial, free))))
    try:
        planned = memplan.plan_graph(g, **opts)
    except memplan.SolverError as exc:   # ggml on a multi-stream schedule: refused by name
        assert "ggml" in str(exc)
        return
    assert_sound(planned, opts)


# ---- (2) the verifier accepts exactly what the oracle accepts ---------------------------------------------

@SETTINGS
@given(st.data())
def test_verify_agrees_with_the_oracle_on_corrupted_plans(data):
    g = data.draw(any_graph(), label="graph")
    opts = fit_devices(g, dict(data.draw(st.sampled_from(OPTIONS), label="options")))
    opts.pop("solver", None), opts.pop("time_limit", None)
    planned = memplan.plan_graph(g, **opts)
    gd, pd = planned.graph.to_dict(), planned.plan.to_dict()
    fused = opts.get("fused_groups", False)
    rnd = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    for how in MUTATIONS:
        q = corrupt(gd, pd, how, rnd)
        if q is not None:
            oracle_ok = findings(gd, q, fused_groups=fused) == []
            assert accepted(planned.graph, q, fused) == oracle_ok, (how, findings(gd, q, fused_groups=fused))


@SETTINGS
@given(st.data())
def test_verify_agrees_with_the_oracle_on_random_placements(data):
    g = data.draw(any_graph(12), label="graph")
    if data.draw(st.integers(0, 3), label="devices") == 0:
        planned = memplan.plan_graph(g, **fit_devices(g, dict(devices=data.draw(st.integers(2, 3)), streams=2)))
        graph, pd = planned.graph, planned.plan.to_dict()
    else:
        order, stream_of = data.draw(schedules(g, 5), label="schedule")
        graph = g
        pd = memplan.plan(g, memplan.schedule_with_events(g, order, stream_of), solver="greedy").to_dict()
    gd = graph.to_dict()
    fused = data.draw(st.booleans(), label="fused")
    rnd = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    for _ in range(15):
        q = random_placement(gd, pd, rnd)
        oracle_ok = findings(gd, q, fused_groups=fused) == []
        assert accepted(graph, q, fused) == oracle_ok, findings(gd, q, fused_groups=fused)


# ---- (3) byte-identical plan JSON -------------------------------------------------------------------------

_CHILD = r"""
import json, sys
import memplan
from memplan import examples, generators
graphs = [memplan.graph_from_dict(d) for d in json.load(sys.stdin)]
graphs += [g for k, g in sorted(examples.bundled().items()) if "1b" not in k]
opts = [{}, {"streams": "auto"}, {"streams": 3, "max_events": 1}, {"devices": 2, "streams": 2},
        {"solver": "cpsat", "time_limit": 0.2}, {"solver": "search", "time_limit": 0.05, "streams": "auto"},
        {"streams": "auto", "memory_budget": 1 << 40, "fused_groups": True}]
print(json.dumps([memplan.plan_graph(g, **o).plan.to_json() for g in graphs for o in opts]))
"""


def test_plan_json_is_byte_identical_across_hash_seeds():
    """Two processes with different PYTHONHASHSEED (set and dict orders differ) write the same bytes, and
    so does a second run in this process."""
    rnd_graphs = [generators.fanout_join(40, seed=seed)[0].to_dict() for seed in range(3)]
    docs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=os.path.dirname(HERE))
        out = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(rnd_graphs), env=env,
                             capture_output=True, text=True, check=True, timeout=120)
        docs.append(json.loads(out.stdout))
    assert docs[0] == docs[1]
    g = memplan.graph_from_dict(rnd_graphs[0])
    assert memplan.plan(g, streams="auto").to_json() == memplan.plan(g, streams="auto").to_json()
