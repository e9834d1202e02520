"""Round 37 (hostile): a split's device whose serial stage is over its ``device_capacity`` runs a low-memory order.

Session 36 made one device's capacity plan what ``memory_budget = capacity - weights`` plans (concurrency given
back, then a low-memory serial order); a split over several devices gave concurrency back only, so a device whose
stage ran serially in listed order was refused where a low-memory order of the same stage fits: ``moe`` on 2
devices at one byte under device 1's listed-order need was refused ("device 1 needs 2097152 B of weights plus an
arena of 49152 B"), though that stage needs 28672 B in a low-memory order. Oracle: ``oracle.findings`` (the
contract's rules, written apart from ``memplan.verify``) and each device's weights plus arena against the capacity.
"""

from __future__ import annotations

import pytest
from oracle import findings

import memplan
import memplan.examples
from memplan import BudgetError
from memplan.benchmarks.scale import wide_graph

GRAPHS = {"moe": memplan.examples.moe, "wide60": lambda: wide_graph(60)}


def _needs(planned) -> list[int]:
    return [a + w for a, w in zip(planned.plan.device_arena_bytes, planned.split.weight_bytes)]


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("streams", [None, "auto"])
def test_a_device_its_listed_order_is_over_plans_a_low_memory_order(name, streams):
    g = GRAPHS[name]()
    cap = max(_needs(memplan.plan_graph(g, devices=2))) - 1   # one byte under the listed order's largest need
    planned = memplan.plan_graph(g, devices=2, device_capacity=cap, streams=streams)
    assert max(_needs(planned)) <= cap
    assert findings(planned.graph.to_dict(), planned.plan.to_dict()) == []
    split = planned.plan.solver["split"]
    assert split["low_memory_devices"]
    assert ("serial_devices" in split) == (streams is not None)   # (no concurrency to give back without streams)


def test_a_capacity_no_order_fits_names_what_was_given_back():
    """Lowered a byte under each plan's largest need in turn, the capacity is refused once no order fits, saying
    that the device ran a low-memory order (the arena quoted is that order's, not the listed one's)."""
    g = memplan.examples.moe()
    cap = max(_needs(memplan.plan_graph(g, devices=2))) - 1
    for _ in range(4):
        try:
            cap = max(_needs(memplan.plan_graph(g, devices=2, device_capacity=cap))) - 1
        except BudgetError as exc:
            assert "(on one stream in a low-memory order, tried after its listed one)" in str(exc)
            return
    pytest.fail("no capacity refused")


@pytest.mark.parametrize("streams", [None, "auto"])
def test_a_split_that_fits_at_once_is_unchanged(streams):
    g = memplan.examples.moe()
    free = memplan.plan(g, devices=2, streams=streams)
    capped = memplan.plan_graph(g, devices=2, streams=streams, device_capacity=max(_needs(
        memplan.plan_graph(g, devices=2, streams=streams))))
    assert capped.plan.to_json() == free.to_json()
    assert "low_memory_devices" not in capped.plan.solver["split"]
