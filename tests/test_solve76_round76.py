"""Round 76 (solve76): the offset solvers' claims on hostile buffer problems.

A ``BufferProblem``'s ``meta["inplace_shift"]`` (the offset of an in-place output's buffer less its input's that puts
the output exactly on its input) was read unchecked deep inside every solver: a string was a raw ValueError, 2**70 a
raw OverflowError, 2**63 - 4 put a 4-byte output at that offset (its end wrapped around int64) and every solver
called the arena of 8 bytes OPTIMAL, and a shift off the alignment was refused as a solver's bug. And the one check of
every packing (``check_solution``) took a buffer whose end passed 2**63 - 1: the arena and the overlap sweep added
offset and size in int64, so such a warm start read as a packing of 8 bytes.
"""

from __future__ import annotations

import numpy as np
import pytest

from memplan.errors import SolverError
from memplan.problem import BufferProblem, Solution
from memplan.solvers import SolveOptions, solve
from memplan.solvers.check import InvalidPacking, check_solution

try:   # (a dependency of the install, but a GPU image may lack it: cpsat's cases skip there, nothing else does)
    import ortools  # noqa: F401
    HAVE_ORTOOLS = True
except ImportError:
    HAVE_ORTOOLS = False
SOLVERS = ("greedy", "size", "auto", "search") + (("cpsat",) if HAVE_ORTOOLS else ())


def _pair(shift, alignment: int = 4, **meta) -> BufferProblem:
    """Buffer 1 (4 B) overwrites buffer 0 (4 B) in place, both live beside buffer 2 (4 B)."""
    return BufferProblem(np.array([4, 4, 4]), np.array([0, 1, 1]), np.array([2, 3, 3]), alignment=alignment,
                         compatible=frozenset({(0, 1)}), inplace=((1, 0),),
                         meta={"inplace_shift": {(1, 0): shift}, **meta})


@pytest.mark.parametrize("shift, words", [
    ("x", "is 'x', not an integer shift"),
    (2 ** 70, "not an integer shift of bytes within int64"),
    (2 ** 63 - 4, "outside -4..4"),
    (-(2 ** 62), "outside -4..4"),
    (2, "not a multiple of the alignment 4"),
])
def test_a_shift_the_solvers_cannot_take_is_refused_by_name(shift, words):
    """Each was a raw ValueError / OverflowError from every solver, an arena of 8 B called OPTIMAL with a buffer at
    2**63 - 4, or an InvalidPacking blaming greedy (checked to fail without the fix)."""
    with pytest.raises(SolverError, match=r"meta\['inplace_shift'\]") as err:
        _pair(shift)
    assert words in str(err.value)


def test_other_malformed_shift_tables_are_refused_by_name():
    for meta, words in (({"inplace_shift": [1]}, "must be a dict"), ({"inplace_shift": {(1, 5): 4}}, "key (1, 5)"),
                        ({"inplace_shift": {1: 4}}, "key 1 is not")):
        with pytest.raises(SolverError, match=r"meta\['inplace_shift'\]") as err:
            BufferProblem(np.array([4, 4, 4]), np.array([0, 1, 1]), np.array([2, 3, 3]), meta=meta)
        assert words in str(err.value)


@pytest.mark.parametrize("solver", SOLVERS)
def test_shifts_the_library_makes_still_plan(solver):
    """Aligned shifts within the buffers (numpy integers too), and an unaligned one for a pair kept apart
    (``inplace_inexact``, as ``lifetimes`` lists it), solve as before: every plan a packing, none below 8 B."""
    opts = SolveOptions(time_limit=0.05) if solver in ("search", "cpsat") else SolveOptions()
    for p in (_pair(4), _pair(-4), _pair(np.int64(0)), _pair(2, inplace_inexact=frozenset({(1, 0)})),
              _pair(3, alignment=1)):
        sol = solve(p, solver, opts)
        check_solution(p, sol)
        assert 8 <= sol.arena <= 12 and int(np.max(sol.offsets)) < 16


def test_check_solution_refuses_an_end_past_int64():
    """A buffer at 2**63 - 4 (4 B) wrapped its end to -2**63: the arena read 8 and nothing overlapped it; a warm start
    so was kept as a packing (checked to fail without the fix). An end at 2**63 - 4 itself is still a packing."""
    p = BufferProblem(np.array([4, 4, 4]), np.array([0, 0, 1]), np.array([2, 2, 3]),
                      compatible=frozenset({(0, 2), (1, 2)}))
    wrapped = Solution(np.array([0, 2 ** 63 - 4, 4]), 8, "mine")
    with pytest.raises(InvalidPacking, match=r"'1' at offset 9223372036854775804, its end past 2\*\*63 - 1"):
        check_solution(p, wrapped, blame="")
    with pytest.raises(SolverError, match="warm_start is no packing"):
        solve(p, "search", SolveOptions(time_limit=0.05, warm_start=wrapped))
    check_solution(p, Solution(np.array([0, 2 ** 63 - 8, 4]), 2 ** 63 - 4, "mine"))


@pytest.mark.parametrize("key, value", [("inplace_resized", [(1, 0)]), ("inplace_resized", None),
                                        ("inplace_inexact", None), ("inplace_inexact", frozenset({(7, 9)})),
                                        ("inplace_resized", {(1, 5)})])
def test_in_place_pair_sets_the_solvers_cannot_take_are_refused_by_name(key, value):
    """``rejoin`` takes the union of both sets: a list or None was a raw TypeError from auto, search and cpsat; pairs
    past the buffers were taken, and turned the problem into a "stricter" copy of itself whose proven bound the claim
    then dropped (FEASIBLE at the optimum) (checked to fail without the fix)."""
    with pytest.raises(SolverError, match=rf"meta\['{key}'\] must be a set of \(output, input\) pairs of buffer "
                                          r"indices in 0\.\.2"):
        BufferProblem(np.array([4, 4, 4]), np.array([0, 1, 1]), np.array([2, 3, 3]), compatible=frozenset({(0, 1)}),
                      inplace=((1, 0),), meta={key: value})


@pytest.mark.parametrize("solver", SOLVERS)
def test_in_place_pair_sets_in_range_still_plan(solver):
    opts = SolveOptions(time_limit=0.05) if solver in ("search", "cpsat") else SolveOptions()
    p = BufferProblem(np.array([4, 4, 4]), np.array([0, 1, 1]), np.array([2, 3, 3]), compatible=frozenset({(0, 1)}),
                      inplace=((1, 0),), meta={"inplace_inexact": frozenset(), "inplace_resized": {(1, 0)}})
    assert solve(p, solver, opts).arena == 8


def test_one_pair_of_buffers_joined_at_two_places_is_refused_by_name():
    """``inplace`` (0, 1) at shift 0 beside (1, 0) at -160 (no graph makes both: each output would be produced by the
    node that last reads the other): the solvers joined the pair at one place and ``rejoin`` at the other, and auto,
    search and cpsat failed with "solver 'greedy' reported arena 260, but its offsets span 256 (a solver bug)"
    (checked to fail without the fix). Both ways at one place still plan."""
    def pair(meta) -> BufferProblem:
        return BufferProblem(np.array([100, 256]), np.array([1, 0]), np.array([4, 2]), alignment=4,
                             compatible=frozenset({(0, 1)}), inplace=((0, 1), (1, 0)), meta=meta)

    with pytest.raises(SolverError, match=r"inplace entries \(0, 1\) and \(1, 0\) join buffers 0 and 1 at two places"):
        pair({"inplace_shift": {(1, 0): -160}})
    for meta in ({}, {"inplace_shift": {(1, 0): -80, (0, 1): 80}}):
        p = pair(meta)
        for solver in SOLVERS:
            sol = solve(p, solver, SolveOptions(time_limit=0.05) if solver in ("search", "cpsat") else SolveOptions())
            check_solution(p, sol)
            assert sol.arena == 256
