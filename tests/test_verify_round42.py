"""Round 42: the verifier on plans of another graph, and its hazards against tests/oracle.py."""

from __future__ import annotations

import dataclasses

import memplan
from memplan import examples
from memplan.verify import check


def test_a_plan_of_another_graph_is_said_to_belong_to_it_first():
    """``verify(diamond, plan of chain4)`` said "order names unknown node 'op0'" and "order is missing node 'a' and 3
    more", as if a node had been dropped from a plan of the diamond. The first finding now says the plan does not
    belong to the graph, naming the graph it was made for and the first id that differs; every other finding is kept."""
    diamond, chain = examples.diamond(), examples.chain(4)
    found = check(diamond, memplan.plan(chain))
    assert found[0] == (1, "the plan does not belong to graph 'diamond' (it was made for graph 'chain4'): its order "
                           "names node 'op0', which the graph does not have")
    assert (1, "order names unknown node 'op0'") in found
    assert (1, "order is missing node 'a' and 3 more") in found


def test_a_foreign_plan_is_named_by_its_events_tensors_or_missing_nodes():
    g = examples.diamond()
    p = memplan.plan(g, streams=2)
    a, b = p.events[0]
    by_event = dataclasses.replace(p, events=((a, "zz"), *p.events[1:]))
    assert check(g, by_event)[0] == (1, "the plan does not belong to graph 'diamond': its events name node 'zz', "
                                        "which the graph does not have")
    by_tensor = dataclasses.replace(p, tensors=(("q", 0, 1024), *p.tensors[1:]))
    assert check(g, by_tensor)[0] == (4, "the plan does not belong to graph 'diamond': it places tensor 'q', which "
                                         "the graph does not have")
    subset = dataclasses.replace(p, graph="other", order=p.order[:-1])
    assert check(g, subset)[0] == (1, "the plan does not belong to graph 'diamond' (it was made for graph 'other'): "
                                      "its order has no node 'j' of the graph")


def test_a_plan_of_this_graph_under_another_name_or_with_a_node_dropped_gets_no_note():
    """The note is for plans of another graph: a renamed graph with the same ids verifies as before, and a plan of
    this graph with a node dropped is "order is missing node" alone."""
    g = examples.diamond()
    p = memplan.plan(g, streams=2)
    assert check(g, dataclasses.replace(p, graph="renamed")) == []
    assert check(g, dataclasses.replace(p, order=p.order[:-1])) == [(1, "order is missing node 'j'")]
