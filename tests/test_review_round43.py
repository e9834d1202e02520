"""Round 43's review: bugs found in the round's merged changes, each test failing before its fix."""

from __future__ import annotations

from memplan.planfile import Plan
from memplan.show import describe


def test_show_plan_of_several_streams_and_no_nodes():
    """The per-stream table's widths (round 43) took ``max(7, *rows)``: a plan of 2 streams and no nodes (a valid
    file) was a raw "TypeError: 'int' object is not iterable" from ``memplan show``."""
    p = Plan(graph="g", alignment=256, arena_bytes=0, lower_bound_bytes=0, streams=2, order=(), events=(), tensors=())
    text = describe(p)
    assert "streams      2  (no nodes)" in text
    assert "per stream:" in text
