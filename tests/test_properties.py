"""Property tests: random graphs x random multi-stream schedules against a brute-force contract reading.

``reference`` (in this directory) decides happens-before, conflicts, the lower bound and plan safety
by brute force straight from CONTRACT.md; here memplan's planner, lower bound, conflict relation and
verifier must agree with it on random fan-out/join graphs with views, in-place pairs, fusion groups,
inputs, weights and outputs, under random stream assignments with the events their cross-stream
edges need (``schedule_with_events``). Example counts are kept modest so the file runs in well under
a minute on two cores.
"""

from __future__ import annotations

import copy
import os

import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules

import memplan
from memplan import lifetimes
from memplan.lifetimes import buffer_problem, compute_lifetimes
from memplan.problem import align_up
from memplan.schedule import build_happens_before
from memplan.verify import check

#: MEMPLAN_PROPERTY_SCALE=20 runs twenty times the examples (a longer bug hunt than CI's)
SCALE = int(os.environ.get("MEMPLAN_PROPERTY_SCALE", "1"))
SETTINGS = settings(max_examples=100 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOLVERS = ("greedy", "size", "auto")


def draw_scheduled(data, max_streams: int = 3):
    """A random graph, a random issue order and stream per node, and the schedule with the events
    its cross-stream edges need."""
    g = data.draw(graphs(), label="graph")
    order, stream_of = data.draw(schedules(g, max_streams), label="schedule")
    return g, order, stream_of, memplan.schedule_with_events(g, order, stream_of)


def as_lists(schedule: memplan.Schedule):
    return list(zip(schedule.order, schedule.streams)), [(e.after, e.before) for e in schedule.events]


def assert_proven_bound(reported: int, graph, order, events) -> None:
    """The reported bound is at least the contract's per-node bound and is justified by a proof the
    brute force can check: the per-node bound itself, or a set of roots that pairwise conflict."""
    per_node = ref.lower_bound(graph, order, events)
    assert reported >= per_node
    if reported > per_node:
        assert reported <= ref.max_clique_bound(graph, order, events)


def no_reuse_arena(graph: memplan.Graph) -> int:
    return sum(align_up(t.size, graph.alignment) for t in graph.tensors
               if t.view_of is None and t.kind != "weight")


def thresholds_one_stream_pair_at_a_time(hb, lt):
    """``visible`` / ``live_from`` as lifetimes computed them before they searched all pairs at once: per
    pair of streams, every buffer (streams^2 x buffers: minutes for 1024 streams)."""
    import numpy as np

    from memplan.lifetimes import NEVER

    B, S = lt.first.shape
    visible = np.zeros((B, S), dtype=np.int64)
    live_from = np.full((B, S), NEVER, dtype=np.int64)
    for s0 in range(S):
        n_s0 = len(hb.stream_nodes[s0])
        for s in range(S):
            if s == s0:
                vis, lf = lt.last[:, s], np.minimum(lt.first[:, s], n_s0)
            else:
                vis = hb.first_at_least(s0, s, lt.last[:, s])
                lf = hb.first_at_least(s0, s, np.minimum(lt.first[:, s], NEVER - 1) + 1)
            np.maximum(visible[:, s0], vis, out=visible[:, s0])
            np.minimum(live_from[:, s0], lf, out=live_from[:, s0])
    live_from[lt.has_start] = 0
    visible[lt.has_end] = NEVER
    return visible, live_from


@SETTINGS
@given(st.data())
def test_thresholds_match_the_pairwise_search(data):
    g, _, _, sch = draw_scheduled(data, max_streams=5)
    hb = build_happens_before(g, sch)
    lt = compute_lifetimes(g, hb)
    visible, live_from = thresholds_one_stream_pair_at_a_time(hb, lt)
    assert (lt.visible == visible).all() and (lt.live_from == live_from).all()


@SETTINGS
@given(st.data())
def test_thresholds_on_many_streams_match_the_pairwise_search(data):
    """As above with up to 12 streams, most of them seeing few others: the searched (buffer, stream) pairs
    are counted per pair of streams from each stream's pairs sorted by access; most pairs are never searched."""
    g = data.draw(graphs(max_nodes=16), label="graph")
    order, stream_of = data.draw(schedules(g, 12), label="schedule")
    hb = build_happens_before(g, memplan.schedule_with_events(g, order, stream_of))
    lt = compute_lifetimes(g, hb)
    visible, live_from = thresholds_one_stream_pair_at_a_time(hb, lt)
    assert (lt.visible == visible).all() and (lt.live_from == live_from).all()


@SETTINGS
@given(st.data())
def test_every_plan_is_safe_and_above_the_bound(data):
    g, order, _, sch = draw_scheduled(data)
    o, ev = as_lists(sch)
    bound = ref.lower_bound(g, o, ev)
    hb = memplan.build_happens_before(g, sch)
    assert lifetimes.lower_bound(g, hb, lifetimes.compute_lifetimes(g, hb)) == bound  # exactly the contract's
    for solver in SOLVERS:
        p = memplan.plan(g, sch, solver=solver)
        doc = p.to_dict()
        assert ref.check_plan(g, doc) == set(), solver          # brute force agrees it is safe
        assert check(g, doc) == []
        # the plan may prove more (a conflict clique), never less than the contract's bound
        assert_proven_bound(p.lower_bound_bytes, g, o, ev)
        assert p.arena_bytes >= p.lower_bound_bytes, solver
        assert [n for n, _ in p.order] == list(order)
        assert p.arena_bytes <= no_reuse_arena(g), solver        # reuse never costs memory


@SETTINGS
@given(st.data())
def test_serial_plans_never_exceed_no_reuse_arena(data):
    g, _, _, sch = draw_scheduled(data, max_streams=1)
    assert sch.events == ()
    for solver in SOLVERS:
        p = memplan.plan(g, sch, solver=solver)
        assert p.streams == 1
        assert p.lower_bound_bytes <= p.arena_bytes <= no_reuse_arena(g)


@SETTINGS
@given(st.data())
def test_conflict_relation_and_hb_match_brute_force(data):
    g, _, _, sch = draw_scheduled(data)
    o, ev = as_lists(sch)
    hb = build_happens_before(g, sch)
    closure = ref.happens_before(o, ev)
    for a in g.nodes:
        for b in g.nodes:
            ia, ib = g.node_index[a.id], g.node_index[b.id]
            assert hb.hb(ia, ib) == closure(a.id, b.id), (a.id, b.id)
    problem = buffer_problem(g, hb, compute_lifetimes(g, hb))
    acc = ref.accesses(g)
    assert sorted(problem.names) == sorted(ref.arena_roots(g))
    adj = problem.conflict_lists()
    for i in range(len(problem)):
        for j in range(len(problem)):
            if i == j or problem.sizes[i] == 0 or problem.sizes[j] == 0:
                continue
            a, b = problem.names[i], problem.names[j]
            expected = not ref.may_overlap(g, closure, acc, a, b)
            assert problem.conflicts(i, j) == expected, (a, b)
            assert (j in adj[i]) == expected, (a, b)
    assert_proven_bound(problem.lower_bound, g, o, ev)  # a conflict clique may prove more


@SETTINGS
@given(st.data())
def test_extra_events_keep_plans_safe(data):
    # Redundant or extra forward events (an explicit Schedule, not schedule_with_events) only add
    # happens-before edges: plans stay safe and the bound matches the brute force.
    g, order, stream_of, base = draw_scheduled(data)
    extra = []
    for _ in range(data.draw(st.integers(0, 3))):
        if len(order) < 2:
            break
        i = data.draw(st.integers(0, len(order) - 2))
        j = data.draw(st.integers(i + 1, len(order) - 1))
        if stream_of[order[i]] != stream_of[order[j]]:
            extra.append(memplan.Event(order[i], order[j]))
    sch = memplan.Schedule(base.order, base.streams, base.events + tuple(extra))
    o, ev = as_lists(sch)
    p = memplan.plan(g, sch, solver=data.draw(st.sampled_from(SOLVERS)))
    assert ref.check_plan(g, p.to_dict()) == set()
    assert p.arena_bytes >= p.lower_bound_bytes
    assert_proven_bound(p.lower_bound_bytes, g, o, ev)


def _mutate(data, g, doc):
    kind = data.draw(st.sampled_from(["drop_event", "move_root", "move_any", "stream", "swap",
                                      "shrink_arena", "add_event"]), label="mutation")
    if kind == "drop_event" and doc["events"]:
        doc["events"].pop(data.draw(st.integers(0, len(doc["events"]) - 1)))
    elif kind == "move_root":  # move a root and its views together, growing the arena to fit
        roots = [e for e in doc["tensors"] if e["offset"] is not None and g.tensor(e["id"]).view_of is None]
        if roots:
            e = data.draw(st.sampled_from(roots))
            new = data.draw(st.integers(0, doc["arena_bytes"] // g.alignment)) * g.alignment
            delta = new - e["offset"]
            for f in doc["tensors"]:
                if f["offset"] is not None and ref.root_of(g, f["id"]) == e["id"]:
                    f["offset"] += delta
            doc["arena_bytes"] = max(f["offset"] + f["size"] for f in doc["tensors"] if f["offset"] is not None)
    elif kind == "move_any":  # move one tensor (root or view) anywhere
        e = data.draw(st.sampled_from(doc["tensors"]))
        if e["offset"] is not None:
            e["offset"] = data.draw(st.integers(0, doc["arena_bytes"] + 8))
    elif kind == "stream":
        e = data.draw(st.sampled_from(doc["order"]))
        e["stream"] = data.draw(st.integers(0, doc["streams"] - 1))
    elif kind == "swap" and len(doc["order"]) > 1:
        i = data.draw(st.integers(0, len(doc["order"]) - 2))
        doc["order"][i], doc["order"][i + 1] = doc["order"][i + 1], doc["order"][i]
    elif kind == "shrink_arena":
        doc["arena_bytes"] = data.draw(st.integers(0, doc["arena_bytes"]))
    elif kind == "add_event" and len(doc["order"]) > 1:
        a = data.draw(st.sampled_from(doc["order"]))["node"]
        b = data.draw(st.sampled_from(doc["order"]))["node"]
        doc["events"].append({"after": a, "before": b})


@settings(max_examples=300 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_verifier_agrees_with_brute_force_on_mutated_plans(data):
    g, _, _, sch = draw_scheduled(data)
    doc = copy.deepcopy(memplan.plan(g, sch, solver=data.draw(st.sampled_from(SOLVERS))).to_dict())
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(data, g, doc)
    expected = ref.check_plan(g, doc)
    found = check(g, doc)
    assert bool(found) == bool(expected), (expected, found)
    assert {r for r, _ in found} <= expected | {1}
    if found:
        try:
            memplan.verify(g, doc)
        except memplan.UnsafePlan as exc:
            assert exc.violations == found
        else:
            raise AssertionError("verify accepted a plan check() rejects")
    else:
        memplan.verify(g, doc)


@settings(max_examples=30 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_same_input_same_bytes(data):
    g, order, stream_of, sch = draw_scheduled(data)
    solver = data.draw(st.sampled_from(SOLVERS))
    a = memplan.plan(g, sch, solver=solver).to_json()
    g2 = memplan.graph_from_dict(g.to_dict())  # a fresh, equal graph object
    b = memplan.plan(g2, memplan.schedule_with_events(g2, order, dict(stream_of)), solver=solver).to_json()
    assert a == b
