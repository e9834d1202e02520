"""Round 34: ``memplan.reuse_after`` / ``reuse_table``: when a tensor's bytes may be reused under a plan.

New query (README, "Driving your own executor"): per stream, the last accesses whose completion frees a tensor's
bytes, and the first node each stream may reuse them at through the plan's own order and events. Checked
against tests/reference.py's explicit happens-before (a transitive closure, no vector clocks) on random graphs,
schedules and extra events."""

from __future__ import annotations

import dataclasses

import pytest
import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_fuzz import dags
from strategies import graphs, schedules

import memplan
from memplan.errors import PlanMismatch, ScheduleError
from memplan.examples import qkv_attention


def _expected(graph, plan, tid):
    """(freed, last, free_from) from the contract, by brute force."""
    order = [(n, s) for n, s in plan.order]
    hb = ref.happens_before(order, [(a, b) for a, b in plan.events])
    root = ref.root_of(graph, tid)
    acc = ref.accesses(graph).get(root)
    if acc is None or ref.END in acc:   # a weight, or live to the end
        return False, {}, {}
    nodes = [a for a in acc if a != ref.START]
    stream = dict(order)
    maximal = [a for a in nodes if not any(hb(a, b) for b in nodes)]
    last = {stream[a]: a for a in maximal}
    free_from = {}
    for s in range(plan.streams):
        on = [n for n, t in order if t == s]
        free_from[s] = next((m for m in on if all(hb(a, m) for a in nodes)), None)
    return True, last, free_from


def _check(graph, plan):
    table = memplan.reuse_table(graph, plan)
    assert set(table) == {t.id for t in graph.tensors}
    for t in graph.tensors:
        r = table[t.id]
        assert r.root == ref.root_of(graph, t.id)
        assert (r.freed, r.last, r.free_from) == _expected(graph, plan, t.id), t.id
        assert memplan.reuse_after(graph, plan, t.id) == r


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_reuse_matches_the_contracts_happens_before(data):
    g = data.draw(st.one_of(graphs(), dags()), label="graph")
    order, stream_of = data.draw(schedules(g, 3), label="schedule")
    plan = memplan.plan(g, memplan.schedule_with_events(g, order, stream_of))
    _check(g, plan)
    # extra events (forward, across streams): more happens-before, never less
    pairs = [(a, b) for i, (a, sa) in enumerate(plan.order) for b, sb in plan.order[i + 1:] if sa != sb]
    if pairs:
        extra = data.draw(st.lists(st.sampled_from(pairs), max_size=3, unique=True), label="extra events")
        more = dataclasses.replace(plan, events=tuple(dict.fromkeys(tuple(plan.events) + tuple(extra))))
        _check(g, more)


def test_qkv_on_three_streams_reads_as_the_readme_says():
    g = qkv_attention()
    p = memplan.plan(g, streams=3)
    xn = memplan.reuse_after(g, p, "xn")   # read by the three projections, one per stream
    assert xn.freed and set(xn.last.values()) == {"mm_q", "mm_k", "mm_v"}
    assert xn.free_from[p.stream_of()["attn"]] == "attn"   # attn waits for all three: it may reuse xn's bytes
    assert not memplan.reuse_after(g, p, "y").freed and not memplan.reuse_after(g, p, "wq").freed


def test_views_answer_for_their_root_and_outputs_views_keep_it():
    b = memplan.GraphBuilder("v")
    x = b.input("x", 512)
    t = b.tensor("t", 512)
    b.node("a", "OP", [x], [t])
    v = b.view("v", t, 256)
    o = b.tensor("o", 256, "output")
    b.node("b", "OP", [v], [o])
    keep = b.tensor("k", 512)
    b.node("c", "OP", [o], [keep])
    kv = b.view("kv", keep, 256, kind="output")
    g = b.build()
    p = memplan.plan(g)
    r = memplan.reuse_after(g, p, "v")
    assert (r.root, r.freed, r.last, r.free_from) == ("t", True, {0: "b"}, {0: "c"})
    assert not memplan.reuse_after(g, p, "k").freed and not memplan.reuse_after(g, p, kv).freed


def test_bad_queries_are_named_errors():
    g = qkv_attention()
    p = memplan.plan(g, streams=3)
    with pytest.raises(ScheduleError, match="no tensor 'nope'"):
        memplan.reuse_after(g, p, "nope")
    with pytest.raises(ScheduleError, match="no tensor 'nope'"):
        memplan.reuse_table(g, p, ["x", "nope"])
    with pytest.raises(PlanMismatch, match="plan was made for graph 'qkv', not 'chain4'"):
        memplan.reuse_after(memplan.examples.chain(), p, "x")
    with pytest.raises(ScheduleError, match="needs a memplan Plan"):
        memplan.reuse_table(g, p.to_json())


def test_readme_reuse_block_runs(capsys):
    """README's "Driving your own executor": the reuse block runs as written and prints what it says."""
    from test_docs_round32 import block

    body = block("README.md", "# when may a tensor's bytes be reused? (the plan's own order, streams and events; "
                              "no re-planning)")
    scope: dict = {"__name__": "__readme__"}
    exec(compile(body, "README.md", "exec"), scope)
    r, graph, plan = scope["r"], scope["graph"], scope["plan"]
    assert capsys.readouterr().out.splitlines() == [str(r.last), str(r.free_from), "False"]
    assert set(r.last.values()) == {"mm_q", "mm_k", "mm_v"}
    assert (r.freed, r.last, r.free_from) == _expected(graph, plan, "xn")
