"""Round 47: solver claims cross-checked against an exact brute force on tiny interval problems.

A solution reported OPTIMAL must be optimal; a reported lower bound must never exceed the true optimum; the
reported gap must agree with the bound and the arena; every plan must be conflict-free and aligned."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needs import need

from memplan.problem import BufferProblem, Status
from memplan.solvers import SolveOptions, solve

#: cpsat too: without ortools (a core dependency) its case is skipped, failed under CI (``need``), not dropped unseen
SOLVERS = ["auto", "search", "cpsat"]


def _conflicts(lower, upper) -> list[tuple[int, int]]:
    n = len(lower)
    return [(i, j) for i in range(n) for j in range(i + 1, n) if lower[i] < upper[j] and lower[j] < upper[i]]


def _fits(sizes, conflicts, align: int, arena: int) -> bool:
    """Exact: is there an aligned placement within ``arena``? DFS over offsets on the alignment grid."""
    n = len(sizes)
    order = sorted(range(n), key=lambda i: -sizes[i])
    offs: dict[int, int] = {}
    nbr = {i: set() for i in range(n)}
    for i, j in conflicts:
        nbr[i].add(j)
        nbr[j].add(i)

    def dfs(k: int) -> bool:
        if k == n:
            return True
        i = order[k]
        for o in range(0, arena - sizes[i] + 1, align):
            if all(o + sizes[i] <= offs[j] or offs[j] + sizes[j] <= o for j in nbr[i] if j in offs):
                offs[i] = o
                if dfs(k + 1):
                    return True
                del offs[i]
        return False

    return dfs(0)


def _optimum(sizes, conflicts, align: int) -> int:
    if not len(sizes):
        return 0
    arena = max(sizes)
    while not _fits(sizes, conflicts, align, arena):
        arena += 1
    return arena


@st.composite
def _problems(draw):
    n = draw(st.integers(1, 5))
    align = draw(st.sampled_from([1, 2, 4, 8]))
    sizes = [draw(st.integers(1, 12)) for _ in range(n)]
    lower = [draw(st.integers(0, 4)) for _ in range(n)]
    upper = [lo + draw(st.integers(1, 4)) for lo in lower]
    return sizes, lower, upper, align


@pytest.mark.parametrize("solver", SOLVERS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=_problems())
def test_claims_match_brute_force(solver, p):
    if solver == "cpsat":
        need("ortools")
    sizes, lower, upper, align = p
    prob = BufferProblem(sizes=np.array(sizes), lower=np.array(lower), upper=np.array(upper), alignment=align)
    sol = solve(prob, solver, SolveOptions(time_limit=2.0))
    conflicts = _conflicts(lower, upper)
    offs = [int(o) for o in sol.offsets]
    assert all(o % align == 0 and o >= 0 for o in offs)
    for i, j in conflicts:
        assert offs[i] + sizes[i] <= offs[j] or offs[j] + sizes[j] <= offs[i], (i, j, offs)
    assert sol.arena >= max(o + s for o, s in zip(offs, sizes))
    best = _optimum(sizes, conflicts, align)
    assert sol.lower_bound <= best, (sol.lower_bound, best)
    assert sol.arena >= best
    if sol.status == Status.OPTIMAL:
        assert sol.arena == best, (sol.arena, best, offs)
    assert (sol.gap == 0.0) == (sol.arena <= sol.lower_bound)


def test_same_offsets_across_hash_seeds():
    """Same problem and options: identical offsets and arena in fresh processes under different PYTHONHASHSEEDs."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from memplan.problem import BufferProblem\n"
        "from memplan.solvers import SolveOptions, solve\n"
        "r = np.random.default_rng(3); n = 40; lo = r.integers(0, 20, n)\n"
        "p = BufferProblem(sizes=r.integers(1, 500, n) * 4, lower=lo, upper=lo + r.integers(1, 8, n), alignment=16,"
        " names=tuple(f'b{i}' for i in range(n)))\n"
        "s = solve(p, 'auto', SolveOptions(time_limit=2.0))\n"
        "print(s.arena, s.status, s.lower_bound, s.offsets.tolist())\n"
    )
    outs = []
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert outs[0] == outs[1] and outs[0]


@pytest.mark.parametrize("solver", ["auto", "search", "greedy", "size", "ggml", "cpsat"])
def test_a_capacity_under_one_buffer_names_that_buffer(solver):
    """Failed before: "no packing within capacity 3 found (none exists)" named no buffer; the cause is the one
    buffer that alone is over the capacity, named now (the first of the largest), by every solver."""
    from memplan.solvers import OverCapacity

    p = BufferProblem(np.array([4, 5, 5]), np.array([0, 0, 2]), np.array([1, 1, 3]), names=("a", "big", "c"),
                      capacity=3)
    with pytest.raises(OverCapacity, match=r"\(none exists\) \(buffer 'big' alone is 5 B\)"):
        solve(p, solver)
    fits_alone = BufferProblem(p.sizes, p.lower, p.upper, names=p.names, capacity=6)
    with pytest.raises(OverCapacity) as e:
        solve(fits_alone, solver)
    assert "alone" not in str(e.value)
