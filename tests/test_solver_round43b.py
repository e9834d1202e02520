"""Round 43 (second helper): a component of a decomposed problem keeps its order's ``last_time``, and the search's
work budget holds on a crowded problem whose candidates mostly fail their section tests."""

from __future__ import annotations

import time

import numpy as np

from memplan.problem import BufferProblem, find_collision
from memplan.solvers import solve
from memplan.solvers.options import SolveOptions


def _crowded(seed: int = 7, n: int = 400, steps: int = 100) -> BufferProblem:
    """400 buffers over 100 steps, long-lived: dozens of candidates per node fail the section test, each reading
    ~140 sections (``_sections_pass_at``), and none of that was a node of the budget."""
    r = np.random.default_rng(seed)
    lo = r.integers(0, steps, n)
    length = r.integers(1, steps, n)
    return BufferProblem(sizes=r.integers(1, 1000, n), lower=lo, upper=lo + length)


def test_failed_section_tests_count_against_the_budget():
    """Before: ``time_limit=0.3`` took 23 s of CPU (2,304 nodes, each with ~24 failed section tests). Now within a
    generous factor of the limit (the heuristic start and the tables included)."""
    p = _crowded()
    t = time.process_time()
    s = solve(p, "search", SolveOptions(time_limit=0.3, wall_limit=120))
    spent = time.process_time() - t
    assert spent < 4.0, f"search used {spent:.1f}s of CPU on time_limit=0.3"
    assert "stopped" not in s.info           # the work budget stopped it, not the wall clock
    assert find_collision(p, np.asarray(s.offsets)) is None


def _inconsistent_order() -> BufferProblem:
    """Buffer 0 lives [0, 2), buffer 1 [1, 3), one stream: ``first``/``visible`` say 0 hands its bytes to 1, but
    ``last_time`` says 0 is still accessed at time 2, after 1's first time (1)."""
    from memplan.problem import HBOrder

    order = HBOrder(first=np.array([[0], [5]]), visible=np.array([[3], [9]]), has_start=np.zeros(2, dtype=bool),
                    has_end=np.zeros(2, dtype=bool), last_time=np.array([2, 2]))
    return BufferProblem(sizes=np.array([4, 4]), lower=np.array([0, 1]), upper=np.array([2, 3]), order=order)


def test_conflicts_agrees_with_the_solvers_on_last_time():
    """Before: ``conflicts(0, 1)`` was False (it skipped ``last_time``) while ``conflict_pairs``, ``find_collision`` and
    every solver kept the two apart. Now one relation."""
    p = _inconsistent_order()
    a, b = p.conflict_pairs()
    assert [(int(x), int(y)) for x, y in zip(a, b)] == [(0, 1)]
    assert p.conflicts(0, 1) and p.conflicts(1, 0)
    assert find_collision(p, np.array([0, 0])) == (0, 1)
    s = solve(p, "greedy")
    assert s.arena == 8


def test_a_component_keeps_the_orders_last_time():
    """Before: ``decompose.subproblem`` rebuilt the ``HBOrder`` without ``last_time``, so in a component the two
    buffers above no longer conflicted; ``auto`` at ``time_limit=0.05`` with a capacity below the optimum (CP-SAT
    solving component by component) packed both at 0 and failed with InvalidPacking "solver 'cpsat' overlapped
    conflicting buffers '0' and '1'". Now the component keeps ``last_time`` and the relation."""
    from memplan.solvers.decompose import subproblem

    p = _inconsistent_order()
    sub = subproblem(p, np.array([0, 1]))
    a, b = sub.conflict_pairs()
    assert [(int(x), int(y)) for x, y in zip(a, b)] == [(0, 1)]
    assert sub.order is not None and list(sub.order.last_time) == [2, 2]

