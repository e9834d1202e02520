"""Round 77 (mut77): tests that kill mutants of the lower bounds (``memplan.problem``'s clique and interval bounds)
that the fast tests covering them let through. Each checks a property a user relies on -- a bound is at most the
exhaustive optimum, and the exact clique search finds the heaviest clique -- on tiny problems of any alignment,
where a clique's members pad to the alignment (the existing tests' sizes were multiples of it, so a rounding slip
was invisible). The mutants each test kills are named in its docstring."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memplan import problem as problem_mod
from memplan.problem import BufferProblem, align_up, clique_lower_bound, interval_lower_bound


def _problem(sizes, lower, upper, alignment, compatible) -> BufferProblem:
    return BufferProblem(np.array(sizes, dtype=np.int64), np.array(lower, dtype=np.int64),
                         np.array(upper, dtype=np.int64), alignment, compatible=frozenset(compatible))


def _heaviest_clique(sizes, conflict, alignment) -> int:
    """Every subset that pairwise conflicts: its rounded sizes less its largest rounding (a singleton: its size)."""
    n, best = len(sizes), 0
    for mask in range(1, 1 << n):
        members = [i for i in range(n) if mask >> i & 1]
        if all(conflict[i][j] for i in members for j in members if i < j):
            r = [align_up(sizes[i], alignment) for i in members]
            best = max(best, sum(r) - max(x - sizes[i] for x, i in zip(r, members)))
    return best


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_every_clique_route_is_a_bound_of_the_exhaustive_optimum_at_any_alignment(data):
    """The clique bound on its exact route is the heaviest clique (rounded sizes less the largest rounding); its greedy
    route (no search budget) and its dense route (past ``max_pairs``; with and without the cached conflict rows) lie
    between the largest buffer and that clique; and none passes the optimum a brute force over every placement finds.
    Kills (round 77): ``_clique_search`` keeping the *smallest* rounding of a clique (``max(pad, ..)`` -> ``min``: a
    bound above the optimum wherever sizes are not multiples of the alignment); ``_dense_clique``'s overlap filter of
    its row-less route taking touching intervals as overlapping (``<`` -> ``<=``: two buffers that never live together
    counted as a clique)."""
    from buffer_oracle import conflict_matrix, optimum, tiny_problem

    sizes, lower, upper, alignment, compatible = tiny_problem(data, 6)
    p = _problem(sizes, lower, upper, alignment, compatible)
    conflict = conflict_matrix(sizes, lower, upper, compatible=compatible)
    heaviest = _heaviest_clique(sizes, conflict, alignment)
    best = optimum(sizes, conflict, alignment)
    assert heaviest <= best
    assert clique_lower_bound(p) == heaviest
    routes = {"greedy": clique_lower_bound(p, exact_budget=0), "dense": clique_lower_bound(p, max_pairs=0)}
    real = problem_mod.DENSE_ROW_BUFFERS
    problem_mod.DENSE_ROW_BUFFERS = 0   # (the route of a problem past 8,192 buffers: no cached rows)
    try:
        routes["dense, no rows"] = clique_lower_bound(_problem(sizes, lower, upper, alignment, compatible), max_pairs=0)
    finally:
        problem_mod.DENSE_ROW_BUFFERS = real
    for route, bound in routes.items():
        assert max(sizes) <= bound <= heaviest, (route, bound, heaviest)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(1, 5), st.integers(0, 1000)), min_size=1, max_size=8))
def test_the_interval_bound_is_the_most_bytes_live_at_one_time(buffers):
    """``interval_lower_bound`` (a BufferProblem's default ``lower_bound``, minimalloc CSVs' bound) is the largest total
    size live at one time step, counted directly (half-open intervals: a buffer ending at t and one starting at t are
    not live together). Kills (round 77): its empty-problem test inverted (``== 0`` -> ``!= 0``: every bound 0)."""
    sizes = np.array([s for _, _, s in buffers], dtype=np.int64)
    lower = np.array([lo for lo, _, _ in buffers], dtype=np.int64)
    upper = lower + np.array([d for _, d, _ in buffers], dtype=np.int64)
    live = max(int(sizes[(lower <= t) & (t < upper)].sum()) for t in range(int(upper.max()) + 1))
    assert interval_lower_bound(sizes, lower, upper) == live
    assert _problem(sizes, lower, upper, 1, ()).lower_bound == live


def test_happens_before_names_argument_a_when_both_are_the_same_bad_index():
    """``HappensBefore.hb(-1, -1)``: both arguments are bad, and the error names ``a`` (the first at fault), as it does
    for ``hb(-1, 0)``; ``hb(0, -1)`` names ``b``. Kills (round 77): the naming test's ``and`` -> ``or`` (``node b``)."""
    import pytest

    import memplan
    from memplan.errors import ScheduleError

    b = memplan.GraphBuilder("two")
    b.input("x", 8)
    b.node("n0", "OP", ["x"], b.output("y", 8))
    g = b.build()
    hb = memplan.build_happens_before(g, memplan.serial_schedule(g))
    for a, z, named in ((-1, -1, "node a"), (-1, 0, "node a"), (0, -1, "node b")):
        with pytest.raises(ScheduleError, match=named):
            hb.hb(a, z)
