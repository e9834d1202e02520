"""Round 36c review: a ``ReuseIndex`` answers for the graph, plan and ``fused_groups`` it was built for, always.

Its answers come from one happens-before and lifetimes build; its ``graph``, ``plan`` and ``fused_groups`` were
plain attributes, so ``index.graph = other`` made ``after`` read the other graph's tensors against the old build (a
raw IndexError, or a stale ``Reuse`` for a tensor the new graph happens to share an index with), and
``index.fused_groups = True`` claimed a fused index that answered node by node."""

from __future__ import annotations

import pytest

import memplan
from memplan import examples as E
from memplan.errors import ScheduleError


def _index():
    g = E.fanout_join15()
    p = memplan.plan(g, streams=2)
    return g, p, memplan.ReuseIndex(g, p)


@pytest.mark.parametrize("name, value", [("graph", lambda: E.diamond()), ("plan", lambda: None),
                                         ("fused_groups", lambda: True), ("_hb", lambda: None)])
def test_an_index_refuses_a_new_graph_plan_or_fused_groups_by_name(name, value):
    g, p, index = _index()
    before = index.table()
    with pytest.raises(ScheduleError, match=f"ReuseIndex is read-only: '{name}'"):
        setattr(index, name, value())
    assert index.graph is g and index.plan is p and index.fused_groups is False
    assert index.table() == before == memplan.reuse_table(g, p)


def test_an_index_refuses_deleting_its_graph():
    _g, _p, index = _index()
    with pytest.raises(ScheduleError, match="read-only: 'graph'"):
        del index.graph
    assert index.table()   # (still answers)


def test_reuse_after_and_reuse_table_still_answer_as_the_index():
    g, p, index = _index()
    for t in g.tensors:
        assert memplan.reuse_after(g, p, t.id) == index.after(t.id)
