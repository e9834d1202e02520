"""Round 79, budget79: a memory budget also tries concurrent schedules in the low-memory serial order.

Why: every other candidate of a memory budget issues in the optimizer's orders (every branch's first step before
any branch's last), and the fork give-backs keep that order: ``plan(examples.moe(8), streams="auto",
memory_budget=61440)`` fell back to the serial plan (49,152 B, 363 us simulated) while the low-memory order with the
experts spread over two streams needs 53,248 B and runs in 187 us (``budget.low_memory_streams``)."""

from __future__ import annotations

import pytest

import memplan
from memplan.examples import moe
from memplan.generators import fanout_join
from memplan.optimize.budget import low_memory_streams
from memplan.optimize.streams import optimize
from memplan.verify import verify


@pytest.mark.parametrize("options", [{}, {"solver": "search", "time_limit": 0.1}])   # (heuristic and exact tiers)
@pytest.mark.parametrize("streams", ["auto", 2])
def test_moe_budget_takes_the_two_stream_low_memory_schedule(streams, options):
    """moe(8) under 61,440 B: 187 us on 2 streams in 53,248 B (was the serial plan, 363 us), verified."""
    g = moe(8)
    p = memplan.plan(g, streams=streams, memory_budget=61440, **options)
    block = p.solver["schedule"]
    assert p.arena_bytes == 53248 <= 61440
    assert block["makespan_us"] == 187.0 < block["serial_makespan_us"] == 363.0
    assert block["candidate"] == "low-memory-k2" and p.streams == 2
    verify(g, p)


def test_moe_budget_between_arenas_is_never_slower_than_before():
    """moe(8) on 3 streams at 73,728 B took ``listed-k2`` (69,632 B, 191 us); the low-memory order on two streams
    is faster in less memory (187 us, 53,248 B)."""
    p = memplan.plan(moe(8), streams=3, memory_budget=73728)
    assert (p.arena_bytes, p.solver["schedule"]["makespan_us"]) == (53248, 187.0)


@pytest.mark.parametrize("seed", range(12))
def test_budget_plan_is_never_slower_than_a_fitting_low_memory_concurrent_schedule(seed):
    """Property over small random fork-join graphs: at a budget of each low-memory concurrent candidate's own arena,
    the budget's plan fits and is at most that candidate's makespan (the fastest fitting candidate is chosen)."""
    g = fanout_join(24 + seed, max_width=3 + seed % 4, seed=seed)[0]
    for streams in (2, 4):
        opt = optimize(g, streams)
        for _, s, ms in low_memory_streams(g, opt):
            arena = memplan.plan(g, schedule=s).arena_bytes
            p = memplan.plan(g, streams=streams, memory_budget=arena)
            assert p.arena_bytes <= arena
            assert p.solver["schedule"]["makespan_us"] <= ms + 1e-9


def test_low_memory_streams_respect_an_event_cap_and_stop_when_saturated():
    """Each candidate keeps the low-memory issue order, has at most ``max_events`` events, and a stream count whose
    schedule left a stream unused is the last (more streams would repeat it)."""
    g = moe(3)
    opt = optimize(g, 8)
    made = low_memory_streams(g, opt)
    assert [name for name, _, _ in made] == ["low-memory-k2", "low-memory-k3", "low-memory-k4"]
    orders = {s.order for _, s, _ in made}
    assert len(orders) == 1
    assert all(len(s.events) <= 2 for _, s, _ in low_memory_streams(g, opt, max_events=2))
