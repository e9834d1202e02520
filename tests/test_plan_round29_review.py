"""Review of round 29's Plan ownership (``Plan.__post_init__`` takes lists as tuples): the neighbouring containers."""

from __future__ import annotations

import memplan
from memplan import GraphBuilder


class Entries(tuple):
    """A tuple class of the caller's own (a NamedTuple-like record list)."""


def _graph() -> memplan.Graph:
    b = GraphBuilder("par")
    b.input("x", 256)
    for i in range(2):
        b.node(f"n{i}", "OP", ["x"], b.output(f"y{i}", 256 * (i + 1)))
    return b.build()


def test_a_tuple_subclass_of_lists_is_owned_too():
    """``Plan(tensors=Entries([[id, off, size], ...]))``: a tuple, but not ``tuple`` itself, so the lists in it were
    kept (and ``check_plan_fields`` passes list entries as they are): an edit after ``verify`` moved an output onto
    a live neighbour in the verified plan, and ``save`` wrote what no one had verified."""
    g = _graph()
    good = memplan.plan(g)
    tensors = [list(e) for e in good.tensors]
    order = [list(e) for e in good.order]
    p = memplan.Plan(good.graph, good.alignment, good.arena_bytes, good.lower_bound_bytes, good.streams,
                     Entries(order), good.events, Entries(tensors))
    memplan.verify(g, p)
    tensors[1][1] = tensors[2][1]   # y0 onto y1: outputs, live together
    order[0][1] = 7
    assert p.tensors == good.tensors and p.order == good.order
    memplan.verify(g, p)


def test_list_subclass_entries_are_owned_at_construction():
    """A tuple of entries of a list class: taken as tuples by ``Plan(...)`` itself, as plain lists are (not only
    later, by ``verify``'s field check), so the Plan equals, and hashes as, the one built from tuples."""
    class Row(list):
        pass

    g = _graph()
    good = memplan.plan(g)
    p = memplan.Plan(good.graph, good.alignment, good.arena_bytes, good.lower_bound_bytes, good.streams,
                     good.order, good.events, tuple(Row(e) for e in good.tensors), solver=good.solver)
    assert p == good and all(type(e) is tuple for e in p.tensors)
    assert hash(p.tensors) == hash(good.tensors)
