"""Hostile round 29, the library: what earlier rounds did not try."""

from __future__ import annotations

import numpy as np
import pytest

import memplan
from memplan import GraphBuilder


def _parallel(n: int = 6) -> memplan.Graph:
    """``n`` nodes that each read ``x`` and write an output of their own: any order of them is topological."""
    b = GraphBuilder("par")
    b.input("x", 256)
    for i in range(n):
        b.node(f"n{i}", "OP", ["x"], b.output(f"y{i}", 256 * (i + 1)))
    return b.build()


@pytest.mark.parametrize("make", [set, frozenset])
def test_an_unordered_collection_is_no_issue_order(make):
    """A set of node ids iterates in an order that depends on the process's string hash seed, so
    ``schedule_with_events(g, {ids}, ...)`` took a different issue order in every run, and ``plan()`` wrote a
    different plan for the same call (4 hash seeds, 4 plans). An order must be given as a sequence."""
    g = _parallel()
    ids = make(n.id for n in g.nodes)
    with pytest.raises(memplan.ScheduleError, match="order .*no order"):
        memplan.schedule_with_events(g, ids, {n.id: 0 for n in g.nodes})


def test_ordered_collections_are_still_issue_orders():
    g = _parallel(3)
    streams = {"n2": 0, "n0": 1, "n1": 0}
    for order in (list(streams), tuple(streams), streams.keys(), iter(list(streams)), np.array(list(streams)), streams):
        s = memplan.schedule_with_events(g, order, streams)
        assert s.order == ("n2", "n0", "n1")


def test_a_zero_dimensional_array_is_no_issue_order():
    """``np.array("n0")`` passes ``isinstance(x, Iterable)`` (ndarray has ``__iter__``), and iterating it
    raised a raw TypeError ("iteration over a 0-d array")."""
    g = _parallel(1)
    with pytest.raises(memplan.ScheduleError, match="order must be a sequence.*0-d array"):
        memplan.schedule_with_events(g, np.array("n0"), {"n0": 0})


@pytest.mark.parametrize("where", ["inputs", "outputs"])
def test_a_builder_node_takes_no_set_of_tensor_ids(where):
    """``GraphBuilder.node(..., {"a", "b"}, ...)`` kept the set's hash-seed order: the node's operands (which a
    MUL_MAT or SUB reads in order) and the graph's JSON changed from run to run."""
    b = GraphBuilder("g")
    b.input("a", 256)
    b.input("b", 256)
    b.output("y", 256)
    b.output("z", 256)
    ins, outs = ({"a", "b"}, ["y", "z"]) if where == "inputs" else (["a", "b"], {"y", "z"})
    with pytest.raises(memplan.GraphError, match=f"node 'n': {where} .*no order"):
        b.node("n", "SUB", ins, outs)


@pytest.mark.parametrize(("field", "value"), [
    ("order", 5), ("order", (("n0",),)), ("events", (1,)), ("events", None), ("tensors", ((1, 2),)),
    ("tensors", np.array(3)), ("devices", None), ("devices", "2"), ("devices", np.array([1, 2])),
])
def test_a_plan_built_in_code_with_a_malformed_field_is_named_by_to_dict(field, value):
    """``Plan.to_dict`` / ``to_json`` of a Plan made in code whose ``order``, ``events`` or ``tensors`` is no
    list of entries, or whose ``devices`` is no integer, raised a raw TypeError or ValueError ("'int' object is
    not iterable", "'>' not supported between instances of 'NoneType' and 'int'") naming no field; ``save``
    named it (``check_plan_fields``), and so does ``to_dict`` now."""
    from dataclasses import replace

    g = _parallel(2)
    p = replace(memplan.plan(g), **{field: value})
    for write in (p.to_dict, p.to_json):
        with pytest.raises(memplan.PlanFormatError, match=field):
            write()


def test_a_plan_built_from_lists_keeps_none_of_the_callers_lists():
    """``Plan(order=[...], tensors=[[id, off, size], ...])`` (a plan written in code, or from JSON-like lists) kept the
    caller's lists: after ``verify`` passed, editing them (an offset moved onto a live neighbour, a node moved to
    another stream) changed the verified Plan, so its ``save`` wrote a plan no one had verified. The Graph already takes lists as tuples; the Plan now does too."""
    g = _parallel(2)
    good = memplan.plan(g)
    order = [list(e) for e in good.order]
    tensors = [list(e) for e in good.tensors]
    events = [list(e) for e in good.events]
    devices = [0] * len(order)
    p = memplan.Plan(good.graph, good.alignment, good.arena_bytes, good.lower_bound_bytes, good.streams,
                     order, events, tensors, node_devices=devices)
    memplan.verify(g, p)
    tensors[1][1] = tensors[2][1]   # y0 onto y1: both outputs, live together
    order[0][1] = 7
    tensors.append(["ghost", 0, 1])
    devices[0] = 5
    assert p.tensors == good.tensors and p.order == good.order and p.node_devices == (0, 0)
    memplan.verify(g, p)
