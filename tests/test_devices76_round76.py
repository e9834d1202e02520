"""Round 76 (devices76): multi-device splits attacked with unusual graphs; each test failed before its fix."""

from __future__ import annotations

import memplan
from memplan.ops import COPY_OP
from memplan.verify import check


def _view_and_root_read_late() -> memplan.Graph:
    """``r`` and two views of it (``v`` inside ``r``, ``v2`` inside ``v``), all read by the last node."""
    b = memplan.GraphBuilder("view_and_root", alignment=64)
    b.input("x", 256)
    b.tensor("v", 128, "intermediate", view_of="r", view_offset=64)
    b.tensor("v2", 32, "intermediate", view_of="v", view_offset=32)
    b.node("a", "OP", ["x"], [b.intermediate("y", 256)], cost=5)
    b.node("b", "OP", ["y"], [b.intermediate("r", 256)], cost=5)
    b.node("c", "OP", ["r", "v", "v2"], [b.output("o", 256)], cost=5)
    return b.build()


def _copies(split: memplan.Graph) -> list[memplan.Node]:
    return [n for n in split.nodes if n.op == COPY_OP]


def test_a_view_read_beside_its_root_on_a_later_device_is_a_view_of_the_roots_copy():
    """A view and its root read on one later device were sent as separate COPYs: the view's bytes crossed the link
    twice and took a second buffer there (416 B sent for a 256 B root). The view is now a view of the root's copy,
    at the same offset, and only the root is sent."""
    g = _view_and_root_read_late()
    planned = memplan.plan_graph(g, devices=2)
    split, plan = planned.graph, planned.plan
    assert check(split, plan) == []
    assert [(n.inputs, n.outputs) for n in _copies(split)] == [(("r",), ("r@dev1",))]
    assert planned.split.copies == 1 and planned.split.copy_bytes == 256 == plan.solver["split"]["copy_bytes"]
    v, v2 = split.tensor("v@dev1"), split.tensor("v2@dev1")
    assert (v.view_of, v.view_offset, v.attrs["copy_of"], v.attrs["device"]) == ("r@dev1", 64, "v", 1)
    assert (v2.view_of, v2.view_offset, v2.attrs["copy_of"]) == ("r@dev1", 96, "v2")
    offset = {t: off for t, off, _ in plan.tensors}
    assert offset["v@dev1"] == offset["r@dev1"] + 64 and offset["v2@dev1"] == offset["r@dev1"] + 96
    assert split.nodes[-1].inputs == ("r@dev1", "v@dev1", "v2@dev1")


def test_a_view_read_alone_on_a_device_is_still_copied_as_its_own_bytes():
    """Where a later device reads a view but not its root, the COPY still moves the view's bytes alone; where it
    reads a view and a view inside it, only the outer one is sent."""
    b = memplan.GraphBuilder("views_apart", alignment=64)
    b.input("x", 256)
    b.tensor("v", 128, "intermediate", view_of="r", view_offset=64)
    b.tensor("v2", 32, "intermediate", view_of="v", view_offset=32)
    b.node("a", "OP", ["x"], [b.intermediate("r", 256)], cost=5)
    b.node("b", "OP", ["v", "v2"], [b.intermediate("s", 256)], cost=5)
    b.node("c", "OP", ["s", "v2"], [b.output("o", 256)], cost=5)
    g = b.build()
    planned = memplan.plan_graph(g, devices=3)
    split, plan = planned.graph, planned.plan
    assert check(split, plan) == []
    sent = sorted((n.inputs[0], n.outputs[0]) for n in _copies(split))
    assert sent == [("s", "s@dev2"), ("v", "v@dev1"), ("v2", "v2@dev2")]
    assert (split.tensor("v2@dev1").view_of, split.tensor("v2@dev1").view_offset) == ("v@dev1", 32)
    assert planned.split.copy_bytes == 128 + 32 + 256


def test_the_bundled_views_example_sends_each_byte_once_over_two_devices():
    """``memplan example``'s views graph on two devices sent ``m3`` (a view of ``m2``) beside ``m2`` itself: two
    COPYs, 6,144 B and two cross-device events per step, where one COPY of 4,096 B carries both."""
    from memplan.examples import views_inplace

    planned = memplan.plan_graph(views_inplace(), devices=2, streams="auto")
    assert check(planned.graph, planned.plan) == []
    block = planned.plan.solver["split"]
    assert (block["copies"], block["copy_bytes"], block["cross_device_events"]) == (1, 4096, 1)
    assert planned.graph.tensor("m3@dev1").view_of == "m2@dev1"


def _small_view_of_a_big_buffer_read_last() -> memplan.Graph:
    """A 1 MiB buffer ``R`` read by the next node, and a 64-byte view of it read by the last: four nodes of equal
    cost, so the balanced boundaries (after ``b`` or ``c``) copy that view and a 4 KiB activation."""
    b = memplan.GraphBuilder("small_view", alignment=64)
    b.input("x", 4096)
    b.node("a", "OP", ["x"], [b.intermediate("R", 1 << 20)], cost=10)
    b.tensor("Rv", 64, "intermediate", view_of="R", view_offset=0)
    b.node("b", "OP", ["R"], [b.intermediate("s", 4096)], cost=10)
    b.node("c", "OP", ["s"], [b.intermediate("u", 4096)], cost=10)
    b.node("d", "OP", ["u", "Rv"], [b.output("y", 4096)], cost=10)
    return b.build()


def test_the_split_counts_a_view_read_after_a_boundary_as_its_own_bytes():
    """The stage boundary is chosen by the bytes it copies; a view read after it counted its whole root's (1 MiB
    for a 64-byte view), so the split took the boundary after ``a`` (stages of 10 and 30 us) and sent all of ``R``
    (1,048,576 B), where the one after ``b`` balances (20 and 20 us) and sends 4,160 B."""
    from memplan.devices import crossing_bytes, units_of

    g = _small_view_of_a_big_buffer_read_last()
    assert crossing_bytes(g, units_of(g)) == [1 << 20, 4096 + 64, 4096 + 64, 0]
    planned = memplan.plan_graph(g, devices=2)
    assert check(planned.graph, planned.plan) == []
    assert planned.split.stage_cost_us == (20.0, 20.0)
    assert planned.split.copy_bytes == 4096 + 64
    assert sorted(n.inputs[0] for n in _copies(planned.graph)) == ["Rv", "s"]


def test_crossing_bytes_of_a_long_view_chain_is_linear():
    """A chain of 20,000 views each read once, the outermost last (a walk up the chain per read is quadratic): a
    boundary after the producer copies that outermost view alone, which holds every other (and the input)."""
    import time

    b = memplan.GraphBuilder("deep_views", alignment=1)
    b.input("x", 8)
    b.node("p", "OP", ["x"], [b.intermediate("r", 20_001)])
    parent, prev = "r", "x"
    for i in range(20_000):
        parent = b.tensor(f"v{i}", 20_000 - i, "intermediate", view_of=parent, view_offset=1)
    for i in range(19_999, -1, -1):   # the innermost view first: each later reader reads a larger one
        prev = b.node(f"n{i}", "OP", [f"v{i}", prev] if i % 2 else [f"v{i}"], [b.intermediate(f"o{i}", 1)])
    g = b.build()
    from memplan.devices import crossing_bytes, units_of

    t0 = time.perf_counter()
    out = crossing_bytes(g, units_of(g))
    assert time.perf_counter() - t0 < 2.0
    assert out[0] == 20_000 + 8   # v0 (not its root r, 20,001 B) and x
