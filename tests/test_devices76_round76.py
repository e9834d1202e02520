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
