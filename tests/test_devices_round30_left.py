"""Device split, round 30 leftovers: what a COPY node of no bytes costs the split's cost model and simulate."""

from __future__ import annotations

import pytest

import memplan
from memplan import GraphBuilder
from memplan.devices import COPY_FLOOR_US, COPY_OP, copy_cost_us
from memplan.simulate import simulate


def _two_stages(h_bytes: int):
    """n1 -> h (``h_bytes``) -> n2, each node with its own weight, so a split over 2 devices copies h."""
    b = GraphBuilder("z")
    b.input("x", 1024)
    b.weight("w1", 1 << 20)
    b.weight("w2", 1 << 20)
    b.tensor("h", h_bytes)
    b.output("y", 1024)
    b.node("n1", "ADD", ["x", "w1"], ["h"], cost=10.0)
    b.node("n2", "ADD", ["h", "w2"], ["y"], cost=10.0)
    return b.build()


def test_a_zero_byte_copy_costs_nothing():
    """The runtime issues no transfer for it; the floor charged it 5 us (makespan 27 us, not 22)."""
    assert copy_cost_us(0) == 0.0
    assert copy_cost_us(1) == COPY_FLOOR_US   # one byte still pays the launch and link latency
    planned = memplan.plan_graph(_two_stages(0), devices=2)
    (copy,) = [n for n in planned.graph.nodes if n.op == COPY_OP]
    assert copy.cost == 0.0
    block = planned.plan.solver["split"]
    assert block["copy_bytes"] == 0 and block["cross_device_events"] == 1
    # n1, the cross-device event (2 us), n2: the makespan the plan reports is the one simulate finds
    assert block["makespan_us"] == 22.0 == simulate(planned.graph, planned.plan).makespan_us


@pytest.mark.parametrize("h_bytes, copy_us", [(256, COPY_FLOOR_US), (4_000_000, 10.0)])
def test_a_copy_of_bytes_keeps_its_cost(h_bytes, copy_us):
    """Unchanged: the floor for a small copy, the link time for a large one."""
    planned = memplan.plan_graph(_two_stages(h_bytes), devices=2)
    (copy,) = [n for n in planned.graph.nodes if n.op == COPY_OP]
    assert copy.cost == copy_us
    assert planned.plan.solver["split"]["makespan_us"] == 22.0 + copy_us == simulate(planned.graph,
                                                                                    planned.plan).makespan_us
