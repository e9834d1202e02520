"""Round 77 (opt77): ``graph_optimize`` / ``memplan/optimize`` on hostile DAGs."""

from __future__ import annotations

from line_counts import lines_run

from memplan import GraphBuilder
from memplan.optimize import memorder


def _wide_reader(n: int):
    """``n`` inputs, each read by its own node, and one node listed last reading all of them into a huge output: it is
    ready from the start, and each input's share of its live bytes changes as that input's other reader is issued."""
    b = GraphBuilder("wide-reader", alignment=64)
    xs = [b.input(f"x{i}", 64) for i in range(n)]
    for i in range(n):
        b.node(f"n{i}", "U", [xs[i]], b.output(f"o{i}", 64), cost=1.0)
    b.node("J", "SUM", xs, b.output("y", 1 << 40), cost=1.0)
    return b.build()


def _memorder_lines(graph, limit: int) -> int:
    """Lines run in ``memorder`` by ``memory_order(graph)``, stopping (AssertionError) past ``limit``."""
    return lines_run(memorder.__file__, lambda: memorder.memory_order(graph), limit, "memory_order")[0]


def test_low_memory_order_is_linear_in_a_reader_of_many_roots():
    """The low-memory serial order (a memory budget's last resort, built by every budgeted plan under the serial
    arena) summed a ready unit's delta over all its roots again each time one of them changed: a node reading 8,000
    inputs that each have another reader cost 8,000^2 steps (10 s of ``plan(g, memory_budget=<serial arena - 1>)``).
    Now each change moves the delta by that root's share alone: the same order, linear work."""
    small, big = _memorder_lines(_wide_reader(200), 10**7), _memorder_lines(_wide_reader(800), 10**7)
    assert big < 6 * small, (small, big)   # 4x the nodes: 4x the lines (16x before)
    order = memorder.memory_order(_wide_reader(5)).order
    assert order == ("n0", "n1", "n2", "n3", "n4", "J")
