"""Hostile round 28, the library: what earlier rounds did not try."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from oracle import findings, optimal_arena

import memplan
from memplan import GraphBuilder


def _with_unread_inputs(sizes: list[int], alignment: int = 256, nodes: bool = True) -> memplan.Graph:
    """A chain of two nodes (unless ``nodes`` is False) and inputs of ``sizes`` that no node reads."""
    b = GraphBuilder("unread", alignment=alignment)
    for i, s in enumerate(sizes):
        b.input(f"u{i}", s)
    if nodes:
        b.input("x", 1024)
        b.node("n0", "OP", ["x"], b.intermediate("t", 1024))
        b.node("n1", "OP", ["t"], b.output("y", 1024))
    return b.build()


@pytest.mark.parametrize(("sizes", "alignment", "nodes"), [
    ([1 << 20], 256, True),        # one large unread input: the arena holds it, the per-node bound saw 2 KiB
    ([100, 100], 256, True),       # two unread inputs conflict (both hold host data at the start): 356 B
    ([8], 256, False),             # no nodes at all: the bound was 0
    ([300, 5, 0], 1, False),
    ([0], 256, False),             # nothing to hold: 0, and 0 is optimal
])
def test_inputs_no_node_reads_count_in_the_lower_bound(sizes, alignment, nodes):
    """Inputs all hold the host's data before the first node, so they need disjoint bytes; an input that no node
    reads was live at no node and left out of ``lower_bound_bytes`` (1 MiB + 1 KiB planned optimally was
    reported as 512 x its bound of 2 KiB, HEURISTIC; a graph of inputs alone had a bound of 0)."""
    g = _with_unread_inputs(sizes, alignment, nodes)
    for kw in ({}, {"streams": 2}, {"solver": "size"}):
        p = memplan.plan(g, **kw)
        gd, pd = g.to_dict(), json.loads(p.to_json())
        assert findings(gd, pd) == []
        best = optimal_arena(gd, pd)
        assert best is not None and p.lower_bound_bytes <= best   # still a proven bound
        assert p.lower_bound_bytes == p.arena_bytes == best, (kw, p.lower_bound_bytes, p.arena_bytes, best)
        assert p.solver["status"] == "OPTIMAL" and p.ratio == 1.0


def test_the_inputs_bound_is_never_above_a_safe_placement():
    """Inputs read by nodes and unread ones, at an alignment that rounds them: the bound is every input rounded
    up, less the largest rounding, and stays at or below the optimum of the schedule."""
    b = GraphBuilder("mixed", alignment=128)
    for i, s in enumerate([100, 300, 129, 0]):
        b.input(f"u{i}", s)
    b.input("x", 200)
    b.node("a", "OP", ["x"], b.output("t", 500))
    g = b.build()
    p = memplan.plan(g)
    gd, pd = g.to_dict(), json.loads(p.to_json())
    best = optimal_arena(gd, pd)
    assert best is not None and p.lower_bound_bytes <= best <= p.arena_bytes
    assert p.lower_bound_bytes >= (128 + 384 + 256 + 256) - 127


def test_a_zero_lower_bound_under_a_nonzero_arena_is_not_a_ratio_of_one():
    """``Plan.ratio`` said 1.0 ("optimal") for any plan whose ``lower_bound_bytes`` is 0, whatever its arena."""
    g = _with_unread_inputs([], nodes=True)
    p = memplan.plan(g)
    assert p.ratio == 1.0
    hand = replace(p, lower_bound_bytes=0)
    assert math.isinf(hand.ratio)
    empty = memplan.plan(GraphBuilder("empty").build())
    assert empty.arena_bytes == empty.lower_bound_bytes == 0 and empty.ratio == 1.0
