"""Review of round 33 (b): the default solver's lifts and small search (``auto.slack_on_top``, ``auto.polish``) against
the paths that assume the default is no better than what an exact solver starts from."""

from __future__ import annotations

import memplan


def two_outputs() -> memplan.Graph:
    """x 256 + small 256 + big 1110 at alignment 256: the default lifts big to the top (1622 B); greedy and size,
    where an exact solver starts, end at 1792."""
    b = memplan.GraphBuilder("tail", alignment=256)
    b.input("x", 256)
    b.node("a", "OP", ["x"], [b.tensor("big", 1110, "output")])
    b.node("b", "OP", ["x"], [b.tensor("small", 256, "output")])
    return b.build()


def test_an_exact_solver_with_a_budget_the_default_meets_returns_a_plan_within_it():
    """A memory budget with an exact solver judges each schedule by the default's cheap solve, then plans the one
    that fits with the exact solver; cpsat with a short limit ends at its start (1792), and the plan came back over
    the 1622 B budget it was chosen for, without a word."""
    g = two_outputs()
    assert memplan.plan(g).arena_bytes == 1622
    for streams in (None, "auto"):
        p = memplan.plan(g, solver="cpsat", time_limit=1e-3, memory_budget=1622, streams=streams)
        assert p.arena_bytes <= 1622, streams
