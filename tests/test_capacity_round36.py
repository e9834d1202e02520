"""Round 36 (cap36): ``device_capacity`` on one device is one rule whatever ``streams`` is. A capacity is a memory
budget plus the weights; a plan over it was made again with that budget only when it ran on several streams, so
without ``streams`` (the serial listed order) a capacity was refused at once although ``memory_budget`` with the
same room plans a low-memory serial order that fits (review36b: ``wide_graph(60)`` at its serial arena minus one
byte planned under ``streams="auto"``, refused without). Now a plan over the capacity is made again with
``memory_budget = min(given budget, capacity - weights)`` either way (a given schedule is still checked, never
changed), the schedule block says where that budget came from (``memory_budget_from``), and plans that fit at
once are byte for byte what they were. Oracles: ``plan(memory_budget=...)`` of the same room, planned apart, and
``oracle.findings`` (the contract's rules, written apart from ``memplan.verify``).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import findings
from strategies import graphs

import memplan
import memplan.examples
from memplan import BudgetError
from memplan.benchmarks.scale import wide_graph
from memplan.show import describe

#: graphs whose listed serial order needs more than a low-memory serial order (moe has weights, wide60 none)
GRAPHS = {"wide60": lambda: wide_graph(60), "moe": memplan.examples.moe}


def _weights(g: memplan.Graph) -> int:
    return sum(t.size for i, t in enumerate(g.tensors) if t.kind == "weight" and g.root[i] == i)


def _without_source(p: memplan.Plan) -> dict:
    """``p``'s document with the schedule block's ``memory_budget_from`` left out (the one key a capacity adds)."""
    d = p.to_dict()
    d["solver"]["schedule"].pop("memory_budget_from", None)
    return d


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("streams", [None, "auto"])
def test_a_capacity_the_serial_listed_order_is_over_plans_what_its_memory_budget_plans(name, streams):
    """Before: BudgetError "device 0 needs ... over the device_capacity" without ``streams``, while
    ``memory_budget`` = capacity - weights planned a low-memory serial order within it."""
    g = GRAPHS[name]()
    serial = memplan.plan(g).arena_bytes
    cap = _weights(g) + serial - 1
    p = memplan.plan(g, device_capacity=cap, streams=streams)
    assert _weights(g) + p.arena_bytes <= cap
    assert findings(g.to_dict(), p.to_dict()) == []
    block = p.solver["schedule"]
    assert block["memory_budget"] == serial - 1 and block["memory_budget_from"] == "device_capacity"
    budgeted = memplan.plan(g, memory_budget=serial - 1, streams=streams)
    assert "memory_budget_from" not in budgeted.solver["schedule"]   # the caller's own budget: no source
    assert _without_source(p) == budgeted.to_dict()


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("streams", [None, "auto"])
def test_a_capacity_that_fits_at_once_changes_nothing(name, streams):
    g = GRAPHS[name]()
    free = memplan.plan(g, streams=streams)
    capped = memplan.plan(g, device_capacity=_weights(g) + free.arena_bytes, streams=streams)
    assert capped.to_json() == free.to_json()


def test_the_callers_smaller_budget_is_kept_and_a_larger_one_gives_way_to_the_capacity():
    g = memplan.examples.moe()
    w, serial = _weights(g), memplan.plan(g).arena_bytes
    low = memplan.plan(g, memory_budget=serial - 1).arena_bytes   # the low-memory serial order's arena
    # a budget the listed order is over: the first plan already fits the capacity, so it is the caller's plan
    own = memplan.plan(g, memory_budget=serial - 1, device_capacity=w + serial)
    assert own.to_json() == memplan.plan(g, memory_budget=serial - 1).to_json()
    # a budget larger than the room the capacity leaves: the room is the budget
    p = memplan.plan(g, memory_budget=serial * 4, device_capacity=w + low)
    assert p.solver["schedule"]["memory_budget"] == low and p.arena_bytes <= low
    assert p.solver["schedule"]["memory_budget_from"] == "device_capacity"


@pytest.mark.parametrize("streams", [None, "auto"])
def test_a_capacity_no_serial_order_fits_is_refused_naming_the_device_and_the_budget(streams):
    g = memplan.examples.moe()
    w = _weights(g)
    low = memplan.plan(g, memory_budget=memplan.plan(g).arena_bytes - 1).arena_bytes
    with pytest.raises(BudgetError, match=rf"device 0 needs .* over the device_capacity of {w + low - 1} B; "
                                          rf"planned again with the {low - 1} B .* memory_budget"):
        memplan.plan(g, device_capacity=w + low - 1, streams=streams)


def test_a_given_serial_schedule_over_the_capacity_is_refused_not_changed():
    g = wide_graph(60)
    s = memplan.serial_schedule(g)
    serial = memplan.plan(g, s).arena_bytes
    with pytest.raises(BudgetError, match=r"device 0 needs .* over the device_capacity") as info:
        memplan.plan(g, s, device_capacity=serial - 1)
    assert "planned again" not in str(info.value)


def test_show_says_where_the_budget_came_from():
    g = wide_graph(60)
    serial = memplan.plan(g).arena_bytes
    text = describe(memplan.plan(g, device_capacity=serial - 1))
    assert f"budget {serial - 1} B (from device_capacity)" in text
    own = describe(memplan.plan(g, memory_budget=serial - 1))
    assert f"budget {serial - 1} B" in own and "from device_capacity" not in own


def test_cli_plans_a_capacity_without_streams(tmp_path):
    """``memplan plan --device-capacity`` without ``--streams``: exit 0 and a plan within it (was exit 2)."""
    from memplan.cli import main

    g = wide_graph(60)
    serial = memplan.plan(g).arena_bytes
    src, out = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(g, src)
    assert main(["plan", str(src), "-o", str(out), "--device-capacity", str(serial - 1), "-q"]) == 0
    p = memplan.load_plan(out)
    assert p.arena_bytes <= serial - 1 and p.solver["schedule"]["memory_budget_from"] == "device_capacity"


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(g=graphs(max_nodes=12), streams=st.sampled_from([None, 2, "auto"]), slack=st.integers(-64, 0),
       data=st.data())
def test_random_graphs_a_capacity_plans_exactly_when_its_memory_budget_does(g, streams, slack, data):
    """``device_capacity`` never refuses what ``memory_budget`` with the room it leaves plans, nor plans what that
    budget refuses (greedy: cheap and deterministic)."""
    w = _weights(g)
    serial = memplan.plan(g, solver="greedy").arena_bytes
    room = max(0, serial + slack)
    try:
        budgeted = memplan.plan(g, memory_budget=room, streams=streams, solver="greedy")
    except BudgetError:
        budgeted = None
    try:
        capped = memplan.plan(g, device_capacity=w + room, streams=streams, solver="greedy")
    except BudgetError:
        capped = None
    assert (capped is None) == (budgeted is None)
    if capped is not None:
        assert w + capped.arena_bytes <= w + room
        assert findings(g.to_dict(), capped.to_dict()) == []
