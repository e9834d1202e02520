"""Round 34 review (review34a): findings in this session's new ``reuse_after`` / ``reuse_table``.

A fusion group runs as one kernel on a backend that fuses (``plan(..., fused_groups=True)``, ``runtime/``): no
event can be recorded between its members and none of them finishes before the last, so a reuse point inside a
group handed an executor bytes the kernel still read. And ``tensors`` given as one string was read letter by
letter: answers for other tensors, with no error."""

from __future__ import annotations

import pytest

import memplan
from memplan.errors import ScheduleError
from memplan.examples import qkv_attention


def _grouped():
    """x -> [a (group f), b (group f)] -> c: x is read by a, the first member of the fused group."""
    b = memplan.GraphBuilder("fused")
    x = b.input("x", 1024)
    t = b.tensor("t", 1024)
    u = b.tensor("u", 1024)
    y = b.tensor("y", 1024, "output")
    b.node("a", "OP", [x], [t], group="f")
    b.node("b", "OP", [t], [u], group="f")
    b.node("c", "OP", [u], [y])
    return b.build()


def test_fused_groups_free_after_the_whole_group():
    g = _grouped()
    p = memplan.plan(g, fused_groups=True)
    r = memplan.reuse_after(g, p, "x", fused_groups=True)
    assert (r.last, r.free_from) == ({0: "b"}, {0: "c"})
    assert memplan.reuse_table(g, p, fused_groups=True)["t"].free_from == {0: "c"}
    # node by node (the contract's rules, the default) the answer is the one before
    assert memplan.reuse_after(g, p, "x").free_from == {0: "b"}


def test_fused_groups_option_is_checked():
    g = _grouped()
    p = memplan.plan(g)
    with pytest.raises(ScheduleError, match="fused_groups"):
        memplan.reuse_table(g, p, fused_groups=1)
    with pytest.raises(memplan.errors.OptionError, match="fused_groups"):
        memplan.reuse_after(g, p, "x", fused_group=True)


def test_tensors_as_one_string_is_refused_not_spelt_out():
    g = qkv_attention()
    p = memplan.plan(g, streams=2)
    with pytest.raises(ScheduleError, match="'xn'"):
        memplan.reuse_table(g, p, "xn")
    assert set(memplan.reuse_table(g, p, ["xn"])) == {"xn"}


def _expected_fused(graph, plan, tid):
    """(freed, last, free_from) by brute force, each access by a member of a fusion group also made by the
    group's last member (``verify(fused_groups=True)``'s reading)."""
    import reference as ref

    order = list(plan.order)
    hb = ref.happens_before(order, list(plan.events))
    root = ref.root_of(graph, tid)
    acc = ref.accesses(graph).get(root)
    if acc is None or ref.END in acc:
        return False, {}, {}
    ends = {}
    for n in graph.nodes:
        if n.group is not None:
            ends[n.group] = n.id
    group = {n.id: n.group for n in graph.nodes}
    nodes = {a for a in acc if a != ref.START}
    nodes |= {ends[group[a]] for a in nodes if group[a] is not None}
    stream = dict(order)
    last = {stream[a]: a for a in nodes if not any(hb(a, b) for b in nodes)}
    free_from = {s: next((m for m, t in order if t == s and all(hb(a, m) for a in nodes)), None)
                 for s in range(plan.streams)}
    return True, last, free_from


def test_fused_groups_match_the_brute_force_reading():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from strategies import graphs, schedules

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        g = data.draw(graphs(), label="graph")
        order, stream_of = data.draw(schedules(g, 3), label="schedule")
        p = memplan.plan(g, memplan.schedule_with_events(g, order, stream_of), fused_groups=True)
        table = memplan.reuse_table(g, p, fused_groups=True)
        for t in g.tensors:
            r = table[t.id]
            assert (r.freed, r.last, r.free_from) == _expected_fused(g, p, t.id), t.id

    check()
