"""Round 50 (verify50): what ``cpsat`` does before its time limit starts, and hostile solver options.

``cpsat`` with ``time_limit=1`` on a 20,000-buffer interval problem (7.8M overlapping pairs) ran 26 s before this
round, all of it outside the limit: the conflict lists of the whole problem (a lexsort of 15.6M entries: 12 s) and a
union-find over them in Python (12 s), only to split the problem into components. The components now come from the
conflict pairs in bulk (``decompose._labels``) and the lists' sort is one key sort (8 s in all, most of it the
heuristic start every solve makes). Both give exactly what they gave (checked here against the old way on random
problems of every shape), so plans are byte-identical.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memplan
from memplan import examples
from memplan.errors import SolverError
from memplan.problem import BufferProblem, HBOrder
from memplan.solvers import SolveOptions, solve
from memplan.solvers.decompose import _labels, components

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
needs_ortools = pytest.mark.skipif(importlib.util.find_spec("ortools") is None, reason="needs ortools")
NEVER = 1 << 40


@st.composite
def problems(draw) -> BufferProblem:
    """Up to 40 buffers: zero sizes, empty intervals, an HB order on 1-3 streams, in-place pairs."""
    n = draw(st.integers(0, 40))
    sizes = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    lower = draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
    upper = [lo + draw(st.integers(0, 9)) for lo in lower]
    kw: dict = {}
    if n and draw(st.booleans()):
        s = draw(st.integers(1, 3))
        cell = st.one_of(st.integers(0, 40), st.just(NEVER))
        grid = st.lists(st.lists(cell, min_size=s, max_size=s), min_size=n, max_size=n)
        flags = st.lists(st.booleans(), min_size=n, max_size=n)
        kw["order"] = HBOrder(first=np.array(draw(grid), dtype=np.int64), visible=np.array(draw(grid), dtype=np.int64),
                              has_start=np.array(draw(flags)), has_end=np.array(draw(flags)))
    if n > 1 and draw(st.booleans()):
        pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] != p[1]),
                              max_size=6))
        kw["compatible"] = frozenset((min(a, b), max(a, b)) for a, b in pairs)
    return BufferProblem(sizes=np.array(sizes, dtype=np.int64), lower=np.array(lower, dtype=np.int64),
                         upper=np.array(upper, dtype=np.int64), **kw)


def _components_by_search(p: BufferProblem) -> list[list[int]]:
    """The conflict graph's components by a plain graph search over ``p.conflicts`` pair by pair (no memplan
    conflict lists), sized buffers only, ordered by their smallest index."""
    n = len(p)
    seen = [False] * n
    out = []
    for i in range(n):
        if seen[i] or p.sizes[i] == 0:
            continue
        seen[i], stack, comp = True, [i], []
        while stack:
            x = stack.pop()
            comp.append(x)
            for y in range(n):
                if not seen[y] and p.sizes[y] > 0 and p.conflicts(x, y):
                    seen[y] = True
                    stack.append(y)
        out.append(sorted(comp))
    return out


@SETTINGS
@given(problems())
def test_components_from_pairs_are_the_union_finds(p):
    want = _components_by_search(p)
    for got in (components(p), components(p, p.conflict_lists())):
        assert [c.tolist() for c in got] == want
        assert all(c.dtype == np.int64 for c in got)


@SETTINGS
@given(problems())
def test_conflict_csr_is_sorted_by_buffer_then_neighbour(p):
    bounds, flat = p.conflict_csr(as_lists=False)
    lists = p.conflict_lists()
    n = len(p)
    assert len(bounds) == n + 1 and bounds[0] == 0 and bounds[-1] == len(flat)
    for i in range(n):
        want = sorted(j for j in range(n) if j != i and p.conflicts(i, j))
        assert flat[bounds[i]:bounds[i + 1]].tolist() == want == lists[i]


def test_labels_of_a_long_path_and_a_star():
    n = 5000
    path = np.arange(n - 1, dtype=np.int64)
    shuffled = np.random.default_rng(1).permutation(n - 1)
    assert (_labels(n, path[shuffled] + 1, path[shuffled]) == 0).all()
    star = _labels(n, np.full(n - 2, n - 1), np.arange(1, n - 1))
    assert star[0] == 0 and (star[1:] == 1).all()
    assert _labels(3, np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == [0, 1, 2]


@needs_ortools
def test_cpsat_builds_no_conflict_lists_of_the_whole_problem(monkeypatch):
    """Its components come from the pairs: the lists of the whole problem (15.6M entries at 20,000 buffers, seconds
    of a 1 s limit) are not made; a component's model still makes its own."""
    rng = np.random.default_rng(3)
    n = 300
    lower = rng.integers(0, 100, n)
    p = BufferProblem(sizes=rng.integers(1, 50, n) * 8, lower=lower, upper=lower + rng.integers(1, 20, n))
    listed = []
    real = BufferProblem.conflict_lists

    def spy(self):
        listed.append(self is p)
        return real(self)

    monkeypatch.setattr(BufferProblem, "conflict_lists", spy)
    sol = solve(p, "cpsat", SolveOptions(time_limit=0.2))
    assert sol.arena >= int(p.lower_bound) and True not in listed, listed


# ---- hostile options: a clear SolverError naming the option, from the library and the CLI ---------------------------

@pytest.mark.parametrize("kw, words", [
    ({"time_limit": 0}, "time_limit"), ({"time_limit": -1}, "time_limit"), ({"time_limit": float("nan")}, "time_limit"),
    ({"time_limit": float("inf")}, "time_limit"), ({"time_limit": True}, "time_limit"), ({"time_limit": "1"}, "time_limit"),
    ({"seed": -1}, "seed"), ({"seed": 2**31}, "seed"), ({"seed": 1.0}, "seed"),
    ({"workers": 0}, "workers"), ({"workers": 1025}, "workers"), ({"workers": 2.0}, "workers"),
])
@pytest.mark.parametrize("solver", ["cpsat", "search", "auto"])
def test_hostile_solver_options_are_refused_by_name(kw, words, solver):
    with pytest.raises(SolverError, match=words):
        memplan.plan(examples.diamond(), solver=solver, **kw)


def test_cpsat_without_ortools_imports_and_names_what_to_install():
    code = ("import sys; sys.modules['ortools'] = None\n"
            "import memplan\n"
            "from memplan.examples import qkv_attention\n"
            "g = qkv_attention()\n"
            "p = memplan.plan(g, solver='auto', time_limit=0.2, streams=3)\n"
            "print('auto', p.solver['status'])\n"
            "try:\n"
            "    memplan.plan(g, solver='cpsat', streams=3)\n"
            "except memplan.MemplanError as e:\n"
            "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "auto " in out.stdout and "SolverError solver 'cpsat' needs OR-Tools" in out.stdout, out.stdout


# ---- a problem too large for the search is refused before any work, with a true estimate ---------------------------

def _all_live(n: int) -> BufferProblem:
    """``n`` buffers live together (half of them one step longer): n (n - 1) / 2 overlapping pairs."""
    return BufferProblem(sizes=np.arange(1, n + 1) * 8, lower=np.zeros(n, dtype=np.int64),
                         upper=np.ones(n, dtype=np.int64) + np.arange(n) % 2)


def test_search_refuses_an_oversized_problem_before_the_default_solve(monkeypatch):
    """``plan(layered_graph(5000), streams=4, solver="search", time_limit=1)`` (5.7M pairs) ran the default solve it
    starts from for seconds, then refused the problem, as it refuses it whatever its start."""
    from memplan.solvers import named

    ran = []
    monkeypatch.setattr(named, "default_plan", lambda *a, **k: ran.append(1))
    with pytest.raises(SolverError, match=r"search: 3500 buffers with 6123250 overlapping pairs.*about 0\.9 GiB"):
        solve(_all_live(3500), "search", SolveOptions(time_limit=1))
    assert ran == []


def test_pair_limit_estimates_never_read_0_gib():
    """5.7M pairs at ~150 B each said "it would need about 0 GiB" (a floor division of 850 MB)."""
    from memplan.solvers.cpsat import check_size as cpsat_size
    from memplan.solvers.search import check_size

    with pytest.raises(SolverError, match=r"about 0\.9 GiB\)"):
        check_size(_all_live(3500))
    with pytest.raises(SolverError, match=r"cpsat: 5000 buffers .* about 1\.7 GiB\); use greedy or size"):
        cpsat_size(_all_live(5000))
