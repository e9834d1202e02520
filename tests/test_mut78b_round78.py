"""Round 78 (mut78b): tests that kill hand-made mutants of the library's core that the existing tests covering those
modules let through (continuing ``tests/test_mut78_round78.py``). Each test checks a behaviour a user relies on on a
plan or graph small enough to work out by hand; the mutant each test kills is named in its docstring."""

from __future__ import annotations

import memplan
from memplan import GraphBuilder
from memplan.lifetimes import compute_lifetimes, inplace_shifts
from memplan.planfile import Plan, plan_alone_problems


def _split_plan(device_arenas: tuple[int, ...]) -> Plan:
    """Two devices, one node each on its own stream, ``arena_bytes`` 100, ``a`` and ``b`` at offset 0."""
    return Plan(graph="split", alignment=1, arena_bytes=100, lower_bound_bytes=0, streams=2,
                order=(("n0", 0), ("n1", 1)), events=(), tensors=(("a", 0, 10), ("b", 0, 10)),
                devices=2, node_devices=(0, 1), tensor_devices=(0, 1), device_arena_bytes=device_arenas)


def test_plan_alone_refuses_a_device_arena_larger_than_arena_bytes():
    """``arena_bytes`` is the largest device's arena, so a device arena of 101 B under ``arena_bytes`` 100 is a
    corrupt plan (its total understated); 100 B is sound. Kills (round 78, F8): ``plan_alone_problems`` dropping its
    device-arena range check."""
    assert plan_alone_problems(_split_plan((100, 50)))[0] == []
    found = plan_alone_problems(_split_plan((101, 50)))[0]
    assert any("device 0's arena of 101 bytes" in f for f in found), found


def test_one_node_asking_two_shifts_of_one_root_pair_is_inexact():
    """``n`` writes ``ya`` (bytes 0..8 of ``Y``) over ``xb`` (bytes 8..16 of ``X``), asking ``Y`` at ``X`` + 8, and
    ``yb`` (bytes 8..16) over ``xa`` (bytes 0..8), asking ``Y`` at ``X`` - 8: no one placement of the roots meets
    both, so the root pair is inexact (the solvers keep the roots apart) and has no shift. Kills (round 78, L15):
    ``inplace_shifts`` dropping its two-shifts check (``shift[key] = d``): the last pair's -8 was taken as exact
    and the other pair's kernel would write ``ya`` 16 bytes away from ``xb``."""
    b = GraphBuilder("two_shifts", alignment=1)
    b.input("X", 16)
    b.view("xa", "X", 8, offset=0)
    b.view("xb", "X", 8, offset=8)
    b.tensor("Y", 16)
    b.view("ya", "Y", 8, offset=0)
    b.view("yb", "Y", 8, offset=8)
    b.node("n", "UNARY", ["xa", "xb"], ["Y", "ya", "yb"], inplace={"ya": "xb", "yb": "xa"})
    b.node("m", "UNARY", ["Y"], b.output("z", 16))
    g = b.build()
    hb = memplan.build_happens_before(g, memplan.schedule_with_events(g, ["n", "m"], {"n": 0, "m": 0}))
    lt = compute_lifetimes(g, hb)
    assert inplace_shifts(g, lt) == ({}, frozenset({(1, 0)}), frozenset())


def test_verify_calls_an_event_from_a_node_to_itself_a_wait_before_its_record():
    """An event ``n1 -> n1`` waits where it records: its wait is not after its record in issue order, which the
    verifier says (rule 1) beside its joining stream 0 to itself. Kills (round 78, V40): the record-before-wait
    test ``pos[a] >= pos[b]`` flipped to ``>``: a node waiting on itself was let into the happens-before clocks."""
    from memplan.verify import check
    b = GraphBuilder("self_event", alignment=1)
    b.input("x", 8)
    b.node("n1", "UNARY", ["x"], b.output("y", 8))
    g = b.build()
    plan = Plan(graph="self_event", alignment=1, arena_bytes=16, lower_bound_bytes=0, streams=1,
                order=(("n1", 0),), events=(("n1", "n1"),), tensors=(("x", 0, 8), ("y", 8, 8)))
    found = check(g, plan)
    assert [rule for rule, _ in found] == [1, 1], found
    assert any("the wait comes before the record" in text for _, text in found), found


def test_buffers_whose_spans_only_touch_do_not_conflict_either_way():
    """Spans are half-open: ``a`` live over [0, 2) and ``b`` over [2, 4) are never live at once, so they may share
    bytes whichever is asked first; ``c`` over [1, 3) meets both. Kills (round 78, rerun): ``BufferProblem.conflicts``
    with either span test flipped (``lower[i] >= upper[j]`` or ``lower[j] >= upper[i]`` to ``>``): buffers that
    merely touch were called conflicting, so a packing reusing ``a``'s bytes for ``b`` was refused."""
    import numpy as np

    from memplan.problem import BufferProblem
    p = BufferProblem(np.array([8, 8, 8]), np.array([0, 2, 1]), np.array([2, 4, 3]))
    assert not p.conflicts(0, 1) and not p.conflicts(1, 0)
    assert p.conflicts(0, 2) and p.conflicts(2, 0) and p.conflicts(1, 2) and p.conflicts(2, 1)
