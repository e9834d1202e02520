"""In-place pairs the default solver left apart are put back over their inputs (``solvers.rejoin``).

Why it matters: a runtime pays a copy per call for an in-place pair placed apart (the ATen executor moves the
input into the output's bytes before an in-place op with no out-of-place twin, e.g. Qwen2-MoE's
``index_put_``). ``size`` and the exact solvers ignore pairs, so an arena-equal packing that splits them was as
good as any. The pass may only join pairs: the arena, the safety of the plan and the pairs already joined stay.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules

import memplan
import memplan.solvers.rejoin as rejoin
from memplan.problem import BufferProblem, Solution, find_collision
from memplan.schedule import schedule_with_events
from memplan.solvers.rejoin import rejoin_inplace


def joined(graph: memplan.Graph, plan) -> int:
    off = plan.offsets()
    return sum(off[o] == off[i] for n in graph.nodes for o, i in n.inplace)


def problem(sizes, lower, upper, inplace) -> BufferProblem:
    comp = frozenset((min(o, i), max(o, i)) for o, i in inplace)
    return BufferProblem(sizes=np.array(sizes), lower=np.array(lower), upper=np.array(upper),
                         compatible=comp, inplace=tuple(inplace))


def test_a_pair_left_apart_is_joined_over_free_bytes():
    # in [0,2) at 0, out [1,3) apart at 16, c [0,1) at 32: in's bytes are free for out once in is done
    p = problem([16, 16, 32], [0, 1, 0], [2, 3, 1], [(1, 0)])
    sol = Solution(np.array([0, 16, 32]), 64, "size")
    got = rejoin_inplace(p, sol)
    assert got is not None and got.offsets.tolist() == [0, 0, 32]
    assert got.arena == 64 and got.info["rejoined"] == 1
    assert find_collision(p, got.offsets) is None


def test_a_pair_whose_input_bytes_another_buffer_holds_stays_apart():
    # d [2,3) sits at 0, over in's bytes, and lives beside out: out may not move there
    p = problem([16, 16, 16], [0, 1, 2], [2, 3, 3], [(1, 0)])
    assert rejoin_inplace(p, Solution(np.array([0, 16, 0]), 32, "size")) is None


def test_a_move_that_would_split_a_joined_pair_is_not_made():
    # in0 -> a (over in0) -> b (over a): a and b joined at 16; joining a with in0 would leave b apart
    p = problem([16, 16, 16], [0, 1, 2], [2, 3, 4], [(1, 0), (2, 1)])
    assert rejoin_inplace(p, Solution(np.array([0, 16, 16]), 32, "size")) is None


def test_a_move_past_the_arena_is_not_made():
    p = problem([8, 16], [0, 1], [2, 3], [(1, 0)])
    # in (8 bytes) at 24 ends the arena at 32 only with out below it: out at 24 would end at 40
    assert rejoin_inplace(p, Solution(np.array([24, 0]), 32, "size")) is None


def test_the_pass_is_skipped_above_its_work_bound(monkeypatch):
    monkeypatch.setattr(rejoin, "REJOIN_WORK", 2)
    p = problem([16, 16, 32], [0, 1, 0], [2, 3, 1], [(1, 0)])
    assert rejoin_inplace(p, Solution(np.array([0, 16, 32]), 64, "size")) is None


def test_the_default_plan_joins_an_input_overwritten_in_place():
    """A one-node graph the default plan used to leave apart (size's packing put t0 beside in0)."""
    b = memplan.GraphBuilder("g", alignment=8)
    b.input("in0", 1)
    b.input("in1", 0)
    b.input("in2", 2)
    b.node("n0", "OP", ["in0"], [b.tensor("t0", 1)], inplace={"t0": "in0"})
    g = b.build()
    p = memplan.plan(g)
    assert p.offsets()["t0"] == p.offsets()["in0"]
    assert p.arena_bytes == p.lower_bound_bytes == 9
    assert p.solver["rejoined"] == 1


def _both(graph, **kw):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(rejoin, "REJOIN_WORK", -1)
        before = memplan.plan(graph, **kw)
    return before, memplan.plan(graph, **kw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(max_nodes=8))
def test_rejoining_never_costs_bytes_or_pairs_serial(g):
    before, after = _both(g)
    assert after.arena_bytes == before.arena_bytes
    assert joined(g, after) >= joined(g, before)
    memplan.verify(g, after)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_rejoining_never_costs_bytes_or_pairs_multi_stream(st_data):
    g = st_data.draw(graphs(max_nodes=8))
    order, streams = st_data.draw(schedules(g))
    sched = schedule_with_events(g, order, streams)
    before, after = _both(g, schedule=sched)
    assert after.arena_bytes == before.arena_bytes
    assert joined(g, after) >= joined(g, before)
    memplan.verify(g, after)
