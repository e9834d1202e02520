"""Round 78 (mut78): tests that kill hand-made mutants of the library's core (``verify``, ``lifetimes``) that every
existing test covering those modules let through. Each test checks a behaviour a user relies on -- the verifier's
fusion-group check finds two roots sharing even one byte, the issue-order sweep bound counts a root that only
one node ever touches, an in-place pair whose roots would meet before the pair is inexact, a plan read without its graph is refused for a node on the stream one past its last, a
tensor ending past the arena or at a negative offset, or an empty id, a candidate whose arena equals the memory budget is taken, a budget refusal whose bound equals the budget
says a packing may fit, every conflict test of ``BufferProblem`` gives one answer on a hand-built order, a ratio
a byte in a million above 1 prints 3 digits of its excess, unread aligned inputs get their padded bound, a count past the findings' cap says when it is a lower bound -- on a
graph small enough to work out by hand; the mutant each test kills is named in its docstring."""

from __future__ import annotations

import numpy as np
import pytest

import memplan
from memplan import GraphBuilder
from memplan.errors import PlanFormatError
from memplan.lifetimes import buffer_problem, compute_lifetimes, inplace_shifts, sweep_lower_bound
from memplan.planfile import Plan, check_plan_alone, plan_alone_problems, ratio_text
from memplan.problem import BufferProblem, HBOrder
from memplan.verify import MAX_REPORTED, check


def _fused_plan(y_at: int) -> Plan:
    """``x -> n1 -> t -> n2 -> y`` on one stream, ``n1`` and ``n2`` one fusion group, ``y`` placed at ``y_at``."""
    return Plan(graph="fused", alignment=1, arena_bytes=300, lower_bound_bytes=0, streams=1,
                order=(("n1", 0), ("n2", 0)), events=(),
                tensors=(("x", 0, 64), ("t", 200, 64), ("y", y_at, 64)))


def _fused_graph():
    b = GraphBuilder("fused", alignment=1)
    b.input("x", 64)
    b.node("n1", "UNARY", ["x"], b.tensor("t", 64), group="g")
    b.node("n2", "UNARY", ["t"], b.output("y", 64), group="g")
    return b.build()


def test_fused_group_check_finds_roots_that_share_a_single_byte():
    """Node by node, ``y`` may reuse ``x``'s bytes (``n1`` reads ``x`` before ``n2`` writes ``y``); run as one kernel,
    the group may write ``y`` while it still reads ``x``, so ``verify(fused_groups=True)`` refuses any shared byte:
    ``y`` at 63 shares byte 63 with ``x`` ([0, 64)), ``y`` at 64 shares none. Kills (round 78): ``_fused_overlaps``'
    address sweep missing an overlap of one byte (``lo < reach[1]`` -> ``lo < reach[1] - 1``): a plan whose kernel
    overwrites the last byte of its input before reading it was called safe."""
    g = _fused_graph()
    assert check(g, _fused_plan(63)) == []
    found = check(g, _fused_plan(63), fused_groups=True)
    assert [rule for rule, _ in found] == [3]
    assert "'x' and 'y' overlap" in found[0][1] and "fusion group 'g'" in found[0][1]
    assert check(g, _fused_plan(64), fused_groups=True) == []


def test_sweep_bound_counts_a_root_touched_at_one_point_of_the_order():
    """``d`` is written by ``b`` and read by nobody: its span is the single time of ``b``, where ``x`` (read by ``a``
    and ``b``) and ``ya`` (an output, from ``a`` on the other stream) are live too, so the sweep bound is
    8 + 100 + 300 = 408 B. Kills (round 78): ``sweep_lower_bound`` leaving out roots whose first and last access
    coincide (``hi >= lo`` -> ``hi > lo``: 108 B, ``d`` left out)."""
    b = GraphBuilder("dead", alignment=1)
    b.input("x", 8)
    b.node("a", "UNARY", ["x"], b.output("ya", 100))
    b.node("b", "UNARY", ["x"], b.tensor("d", 300))
    g = b.build()
    sch = memplan.schedule_with_events(g, ["a", "b"], {"a": 0, "b": 1})
    hb = memplan.build_happens_before(g, sch)
    assert sweep_lower_bound(hb, compute_lifetimes(g, hb), buffer_problem(g, hb).sizes) == 408


def test_a_plan_alone_is_refused_for_a_node_on_the_stream_one_past_its_last():
    """A plan declaring 2 streams with node ``b`` on stream 2 contradicts itself (the verifier refuses it for any
    graph), so ``memplan show plan.json`` without its graph refuses it too, naming ``b``. Kills (round 78):
    ``plan_alone_problems``' fast path taking the order as in range up to ``streams`` itself (``max(streams) <
    plan.streams`` -> ``<=``: no finding, and the plan was summarised as sound)."""
    p = Plan(graph="g", alignment=1, arena_bytes=8, lower_bound_bytes=0, streams=2,
             order=(("a", 0), ("b", 2)), events=(), tensors=(("x", 0, 8),))
    assert plan_alone_problems(p, limit=5) == (["node 'b' runs on stream 2, outside 0..1 (the plan declares 2 streams)"], 1)
    with pytest.raises(PlanFormatError, match="node 'b' runs on stream 2, outside 0..1"):
        check_plan_alone(p)


def test_a_plan_alone_is_refused_for_a_tensor_ending_past_the_arena():
    """``y`` at [8, 16) in a 12-byte arena: refused without the graph, naming ``y`` and its bytes. Kills (round 78):
    ``plan_alone_problems``' fast path over the tensors dropping its ``max(ends) <= arena_bytes`` clause (no finding:
    every tensor was taken as inside the arena once the ids and offsets looked sound)."""
    p = Plan(graph="g", alignment=1, arena_bytes=12, lower_bound_bytes=0, streams=1,
             order=(("a", 0),), events=(), tensors=(("x", 0, 8), ("y", 8, 8)))
    assert plan_alone_problems(p, limit=5) == (["tensor 'y' [8, 16) ends past arena_bytes of 12 bytes"], 1)


def test_a_plan_alone_is_refused_for_a_tensor_at_a_negative_offset():
    """``x`` at offset -8 (its end, 0, inside the arena): refused without the graph. Kills (round 78):
    ``plan_alone_problems``' fast path over the tensors dropping its ``o >= 0`` clause (no finding)."""
    p = Plan(graph="g", alignment=1, arena_bytes=16, lower_bound_bytes=0, streams=1,
             order=(("a", 0),), events=(), tensors=(("x", -8, 8),))
    assert plan_alone_problems(p, limit=5) == (["tensor 'x' has offset -8, below 0"], 1)


def test_a_budget_refusal_whose_bound_equals_the_budget_says_a_packing_may_fit():
    """The budget refusal's tail (``plan._solver_short``): a serial bound of 265 B within a budget of 265 B means a
    packing that fits may exist (the docstring's case: ``size`` packed 266 B where ``greedy`` packs 265 B), so the
    refusal says so and names what to try; a bound of 266 B over it adds nothing. Kills (round 78): the bound compared
    as ``bound >= memory_budget`` (the hint dropped exactly where the bound meets the budget)."""
    from memplan.plan import _solver_short
    from memplan.solvers.options import SolveOptions

    tail = _solver_short(265, 265, "size", SolveOptions())
    assert "proven lower bound is 265 B, within the budget" in tail and "solver 'size' did not find" in tail
    assert _solver_short(266, 265, "size", SolveOptions()) == ""


def test_every_conflict_test_of_a_problem_reads_last_time_as_conflicts_does():
    """A hand-built order whose ``last_time`` disagrees with ``first``/``visible``: the tables say buffer 0 hands its
    bytes to buffer 1, but 0's last access (time 2) is at 1's first (``lower`` 2), so ``conflicts`` calls the pair a
    conflict (``_order_precedes``), and every other test of the pair must too: ``_conflicts_of`` from either side
    (the dense clique bound, ``exact_pairs``), ``conflict_pairs`` (the solvers' sweeps), ``ordered_test``. Kills
    (round 78): ``_conflicts_of``'s last-access pre-filter taken as ``<=`` on either side (``last_time[u] < lower[b]``
    or ``last_time[b] < lu``): it called the pair apart, two answers for one problem."""
    order = HBOrder(first=np.array([[0], [1]], dtype=np.int64), visible=np.array([[1], [2]], dtype=np.int64),
                    has_start=np.array([False, False]), has_end=np.array([False, False]),
                    last_time=np.array([2, 3], dtype=np.int64))
    p = BufferProblem(np.array([8, 8]), np.array([1, 2]), np.array([3, 4]), order=order)
    assert p.conflicts(0, 1) and p.conflicts(1, 0)
    assert p._conflicts_of(0, np.array([1])).tolist() == [True]
    assert p._conflicts_of(1, np.array([0])).tolist() == [True]
    assert [a.tolist() for a in p.conflict_pairs()] == [[0], [1]]
    assert not p.ordered_test()(0, 1)


def test_a_plan_alone_is_refused_for_an_empty_node_or_tensor_id():
    """A node or tensor id ``''`` (which no graph has: ``graph._register_id`` refuses it) is named by its place in the
    plan, each one finding, with everything else about the plan sound. Kills (round 78): ``plan_alone_problems``' fast
    paths dropping their ``"" not in ...`` clause, of the order or of the tensors (no finding for that id)."""
    p = Plan(graph="g", alignment=1, arena_bytes=16, lower_bound_bytes=0, streams=1,
             order=(("", 0),), events=(), tensors=(("", 0, 8),))
    assert plan_alone_problems(p, limit=5) == ([
        "order[0] names node '', an empty id (a node id is a non-empty string)",
        "tensors[0] places tensor '', an empty id (a tensor id is a non-empty string)"], 2)


def _fan_of_sizes():
    """``x`` read by 4 branches, branch ``i`` a 100 * (i + 1)-byte intermediate read into an 8-byte output."""
    b = GraphBuilder("fan", alignment=1)
    b.input("x", 8)
    for i in range(4):
        b.node(f"a{i}", "UNARY", ["x"], b.tensor(f"t{i}", 100 * (i + 1)), cost=1000.0)
        b.node(f"b{i}", "UNARY", [f"t{i}"], b.output(f"y{i}", 8), cost=1000.0)
    return b.build()


def test_a_candidate_whose_arena_equals_the_memory_budget_is_taken():
    """Unbounded, the fan runs its 4 branches on 4 streams in 1,040 B; under a budget the planner gives concurrency
    back only as far as the budget needs: a budget of 1,032 B is met exactly by a 3-stream candidate, 1,024 B by a
    2-stream one, 740 B by another. Kills (round 78): the budget search's ``fits`` taking only arenas strictly below
    the budget (``<=`` -> ``<``): each budget got the next cheaper, slower candidate (1,032 B -> 1,024 B on 2 streams,
    740 B -> 432 B serial), though the one that meets the budget is the one the contract asks for."""
    g = _fan_of_sizes()
    got = {budget: memplan.plan(g, memory_budget=budget, streams=4) for budget in (1032, 1024, 740)}
    assert {budget: (p.arena_bytes, p.streams) for budget, p in got.items()} == {
        1032: (1032, 3), 1024: (1024, 2), 740: (740, 2)}


def test_an_inplace_pair_whose_roots_meet_before_it_is_inexact():
    """``n`` writes ``yv`` (bytes 16..32 of its 32-byte output ``Y``) over ``xv`` (bytes 16..32 of the input ``X``): the
    one shift that puts ``yv`` on ``xv`` (0) also lays ``Y``'s first 16 bytes, which ``n`` writes too, over ``X``'s,
    so the pair is inexact (``lifetimes.inexact_inplace``: the solvers keep such roots apart) and has no shift.
    Kills (round 78): ``_exact_shift`` checking only that the roots' shared bytes end within ``out``
    (``off_i <= lo`` dropped): shift 0 was called exact and ``Y`` could be placed over ``X`` whole."""
    b = GraphBuilder("shift", alignment=1)
    b.input("X", 32)
    b.view("xv", "X", 16, offset=16)
    b.tensor("Y", 32)
    b.view("yv", "Y", 16, offset=16)
    b.node("n", "UNARY", ["xv"], ["Y", "yv"], inplace={"yv": "xv"})
    b.node("m", "UNARY", ["Y"], [b.output("z", 4)])
    g = b.build()
    hb = memplan.build_happens_before(g, memplan.schedule_with_events(g, ["n", "m"], {"n": 0, "m": 0}))
    lt = compute_lifetimes(g, hb)
    assert [(a, b_) for a, b_, _n in lt.compatible] == [(0, 1)]
    assert inplace_shifts(g, lt) == ({}, frozenset({(1, 0)}), frozenset())


def test_a_ratio_whose_excess_is_a_power_of_ten_of_its_bound_prints_three_digits_of_it():
    """1,000,001 B over a bound of 1,000,000 B reads ``1.0000`` at 4 decimals, so ``ratio_text`` prints as many as show
    3 significant digits of the excess (its first at the 6th decimal): ``1.00000100``. Kills (round 78): the search for
    the excess's first digit stepping past a place where ``excess * 10**first`` equals the bound (``<`` -> ``<=``:
    ``1.000001000``, a digit too many)."""
    assert ratio_text(10**6 + 1, 10**6) == "1.00000100"


def test_unread_inputs_of_an_aligned_graph_are_bounded_by_their_padded_sizes():
    """Two 100-byte inputs no node reads, alignment 256: both hold the host's data at the start, so every plan
    places them apart at aligned offsets: 256 + 100 = 356 B, the arena planned, proven OPTIMAL. Kills (round 78):
    ``lifetimes._inputs_bound`` summing the raw sizes (200 B: the plan reported above its bound, not optimal)."""
    b = GraphBuilder("ins", alignment=256)
    b.input("a", 100)
    b.input("b", 100)
    p = memplan.plan(b.build())
    assert (p.arena_bytes, p.lower_bound_bytes, p.solver["status"]) == (356, 356, "OPTIMAL")


def test_a_racy_read_of_a_written_view_past_the_cap_makes_the_total_a_lower_bound():
    """``MAX_REPORTED`` readers of ``Q`` on stream 1, none waiting for its writer ``w`` on stream 0, fill rule 2's
    findings; the last reader ``rv`` reads the view ``v`` (written by ``pv``) of ``R`` (written by ``p``) and waits for
    neither: past the cap it is counted once, not walked, so ``total`` (201) is a lower bound of the 202 failing
    writers and ``exact`` must say so (``UnsafePlan`` then reads "at least"). Kills (round 78): ``past_cap``
    leaving ``exact`` True for a read whose nearest written tensor is a view (its writers further up uncounted)."""
    b = GraphBuilder("cap", alignment=1)
    b.input("x", 8)
    b.node("w", "UNARY", ["x"], [b.tensor("Q", 8)])
    b.node("p", "UNARY", ["x"], [b.tensor("R", 16)])
    b.view("v", "R", 8, offset=8)
    b.node("pv", "UNARY", ["x"], ["v"])
    for i in range(MAX_REPORTED):
        b.node(f"r{i}", "UNARY", ["Q"], [b.output(f"o{i}", 1)])
    b.node("rv", "UNARY", ["v"], [b.output("ov", 1)])
    g = b.build()
    plan = Plan(graph="cap", alignment=1, arena_bytes=33 + MAX_REPORTED, lower_bound_bytes=0, streams=2,
                order=(("w", 0), ("p", 0), ("pv", 0)) + tuple((f"r{i}", 1) for i in range(MAX_REPORTED)) + (("rv", 1),),
                events=(), tensors=(("x", 0, 8), ("Q", 8, 8), ("R", 16, 16), ("v", 24, 8), ("ov", 32, 1))
                + tuple((f"o{i}", 33 + i, 1) for i in range(MAX_REPORTED)))
    found = check(g, plan)
    assert (len(found), found.total, found.exact) == (MAX_REPORTED, MAX_REPORTED + 1, False)


def test_the_sweep_bound_pads_its_roots_to_the_alignment():
    """Outputs of 100 B and 300 B on two streams and their 8-byte input, alignment 256: at aligned offsets the three
    take 256 + 256 + 512 B less the largest padding (248 B) = 776 B, not the raw 408 B. Kills (round 78):
    ``sweep_lower_bound`` skipping its pass over the rounded sizes (408 B)."""
    b = GraphBuilder("two", alignment=256)
    b.input("x", 8)
    b.node("a", "UNARY", ["x"], b.output("ya", 100))
    b.node("b", "UNARY", ["x"], b.output("yb", 300))
    g = b.build()
    hb = memplan.build_happens_before(g, memplan.schedule_with_events(g, ["a", "b"], {"a": 0, "b": 1}))
    assert sweep_lower_bound(hb, compute_lifetimes(g, hb), buffer_problem(g, hb).sizes, 256) == 776
