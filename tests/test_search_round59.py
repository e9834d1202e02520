"""Round 59: the search's time partitions made once (``search_tree._time_partitions``) and its decompositions' parts in
bulk (``search_tree._split_parts``), each charged what it takes (``docs/experiments/search_s59.txt``)."""

import random
import warnings

import numpy as np
import pytest
from problems import exhaustive as _exhaustive

from memplan.problem import BufferProblem, Solution, arena_of
from memplan.solvers import SolveOptions, search_tree, solve
from memplan.solvers.check import check_solution
from memplan.solvers.options import SearchParams


def _partitions_recomputed(s: search_tree.PackingSearch) -> list[tuple[int, int, list[int]]]:
    """The time partitions as every try found them up to session 58 (a ``searchsorted`` per active buffer)."""
    if s.nsec == 0:
        return []
    bounds = [0] + [k + 1 for k in np.flatnonzero(s.cuts0 == 0).tolist()] + [s.nsec]
    members: dict[int, list[int]] = {}
    starts = np.asarray(bounds[:-1])
    for i in s.active:
        p = int(np.searchsorted(starts, s.slo[i], side="right")) - 1
        members.setdefault(p, []).append(i)
    return [(bounds[p], bounds[p + 1], members[p]) for p in sorted(members)]


def _random_problem(rng: random.Random, n: int, compatible: bool) -> BufferProblem:
    """Buffers of random sizes (some empty) over random intervals (some empty), gaps in time; in-place pairs too."""
    lo = [rng.randint(0, 3 * n) for _ in range(n)]
    up = [v + rng.choice((0, 1, 2, 5, 20)) for v in lo]
    sz = [rng.choice((0, 1, 7, 256, 1000)) for _ in range(n)]
    comp = frozenset((i, j) for i in range(n) for j in range(i + 1, n) if compatible and rng.random() < 0.05)
    return BufferProblem(sizes=sz, lower=lo, upper=up, compatible=comp, alignment=rng.choice((1, 256)))


@pytest.mark.parametrize("seed", range(40))
def test_the_partitions_made_once_are_those_each_try_found(seed):
    """Cache consistency: the partitions ``__init__`` makes once are, on random problems (interval and clique
    sections, empty buffers and intervals, gaps in time), those the former per-try recomputation found."""
    rng = random.Random(seed)
    p = _random_problem(rng, rng.randint(0, 60), compatible=seed % 2 == 1)
    s = search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**6, 1e9))
    assert [(a, z, list(m)) for a, z, m in s._partitions()] == _partitions_recomputed(s)


def _python_parts(s: search_tree.PackingSearch, bufs, points):
    return [(r_lo, r_hi, [x for x in bufs if s.asg[x] < 0 and s.slo[x] < r_hi and r_lo < s.shi[x]])
            for r_lo, r_hi in zip(points, points[1:])]


def _checked_split(monkeypatch, searches: list):
    """Every bulk split from now on also checked against the Python filter on the search's state then."""
    real = search_tree._split_parts
    calls = [0]

    def checked(bufs, placed, slo, points):
        out = real(bufs, placed, slo, points)
        s = next((x for x in searches if x.placed is placed), None)
        if s is None:   # (a side proof's own search, ``PackingSearch._side_proof``: its state is not at hand here)
            return out
        assert out == _python_parts(s, bufs.tolist(), points)
        calls[0] += 1
        return out
    monkeypatch.setattr(search_tree, "_split_parts", checked)
    return calls


@pytest.mark.parametrize("seed", range(12))
def test_bulk_parts_equal_the_python_filter_at_every_split(monkeypatch, seed):
    """Consistency on random problems: at every decomposition of a search (the bulk path forced on every size), the
    bulk parts are the Python filter's, the same buffers in the same order, on the search's state of that moment."""
    monkeypatch.setattr(search_tree, "SPLIT_BULK_BUFFERS", 0)
    rng = random.Random(100 + seed)
    p = _random_problem(rng, rng.randint(20, 80), compatible=seed % 3 == 0)
    s = search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**9, 1e9))
    calls = _checked_split(monkeypatch, [s])
    greedy = solve(p, "greedy").arena
    for cap in (greedy, greedy - 1, (greedy + s.largest) // 2):
        try:
            res = s.feasible(cap, "TWZ", 20_000)
        except search_tree.Abort:
            continue
        if res is not None:
            off = np.asarray(res, dtype=np.int64)
            check_solution(p, Solution(off, arena_of(p, off), "search"))
            assert arena_of(p, off) <= cap
    assert calls[0] > 0


@pytest.mark.parametrize("seed", range(30))
def test_bounds_stay_true_with_the_bulk_split_on_tiny_problems(monkeypatch, seed):
    """A proven bound is true: with every split in bulk, the solve's bound is at most the exhaustive optimum, its
    arena at least it, and an OPTIMAL solve packs it exactly."""
    monkeypatch.setattr(search_tree, "SPLIT_BULK_BUFFERS", 0)
    rng = random.Random(200 + seed)
    n = rng.randint(1, 6)
    lo = [rng.randint(0, 5) for _ in range(n)]
    up = [v + rng.randint(1, 4) for v in lo]
    sz = [rng.randint(1, 9) for _ in range(n)]
    comp = frozenset((i, j) for i in range(n) for j in range(i + 1, n) if seed % 2 and rng.random() < 0.25)
    p = BufferProblem(sizes=sz, lower=lo, upper=up, compatible=comp, alignment=rng.choice((1, 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = solve(p, "search", SolveOptions(time_limit=0.2))
    best = _exhaustive(p)
    assert s.lower_bound <= best <= s.arena
    if s.status.name == "OPTIMAL":
        assert s.arena == best


def test_a_try_start_no_longer_charges_the_partitions():
    """A try's start on 3,000 buffers was charged 11 ms (2,900 ns a buffer and section: the partitions found again,
    ~10 ms measured); made once, the start's arrays are charged ~0.5 ms."""
    rng = np.random.default_rng(0)
    lower = rng.integers(0, 3000, 3000)
    p = BufferProblem(rng.integers(1, 1 << 12, 3000) * 256, lower, lower + rng.integers(1, 50, 3000), alignment=256)
    budget = search_tree.WorkBudget(10**6, 1e9)
    s = search_tree.PackingSearch(p, SearchParams(), budget)
    left = budget.left
    assert s.feasible(s.largest - 1, "TWZ", 10**6) is None   # (returns at once: the largest buffer does not fit)
    s._flush()
    assert left - budget.left < 1_000_000


def test_large_solves_repeat_exactly():
    """Byte-identical solves: a graph problem whose decompositions split in bulk, twice at the same budget."""
    from memplan.benchmarks import scale
    from memplan.lifetimes import buffer_problem
    from memplan.optimize import graph_optimize
    from memplan.schedule import build_happens_before

    g = scale.random_dag(1200)
    p = buffer_problem(g, build_happens_before(g, graph_optimize(g, 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = solve(p, "search", SolveOptions(time_limit=0.3))
        b = solve(p, "search", SolveOptions(time_limit=0.3))
    assert a.info == b.info and np.array_equal(a.offsets, b.offsets) and a.lower_bound == b.lower_bound
    check_solution(p, a)



@pytest.mark.parametrize("seed", range(10))
def test_bulk_keys_order_small_subproblems_as_python_did(monkeypatch, seed):
    """From ``KEYS_BULK_BUFFERS`` (128) buffers a subproblem's preorder is sorted in bulk: on random problems, every
    preorder, with and without a restart's noise, the very order of the Python keys (so the same tree)."""
    rng = random.Random(400 + seed)
    n = rng.randint(200, 400)
    lo = [rng.randint(0, n) for _ in range(n)]
    up = [v + rng.randint(1, 30) for v in lo]
    sz = [rng.choice((1, 7, 256, 1000, rng.randint(1, 5000))) for _ in range(n)]
    comp = frozenset((i, i + 1) for i in range(0, n - 1, 7) if seed % 2)
    p = BufferProblem(sizes=sz, lower=lo, upper=up, compatible=comp, alignment=rng.choice((1, 256)))
    s = search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**9, 1e9))
    s.total = s.total0.copy()
    bufs = sorted(rng.sample(s.active, min(len(s.active), rng.randint(search_tree.KEYS_BULK_BUFFERS, 300))))
    assert len(bufs) >= search_tree.KEYS_BULK_BUFFERS and s.key_bulk
    for noise in (None, [rng.uniform(0.5, 1.5) for _ in range(s.n)]):
        s.noise = noise
        for order in SearchParams().preorders:
            s.order_key = order
            bulk = s._keys(bufs)
            monkeypatch.setattr(search_tree, "KEYS_BULK_BUFFERS", 10**9)
            assert s._keys(bufs) == bulk
            monkeypatch.setattr(search_tree, "KEYS_BULK_BUFFERS", 128)


def test_a_subproblem_of_a_few_hundred_buffers_is_charged_its_bulk_keys():
    """minimalloc J's 409 buffers: each try's preorder was charged 3,000 ns a buffer (Python's keys, ~2 us a buffer
    measured); sorted in bulk now (~0.4 us a buffer), it is charged ``WORK_FRONT_SUBPROBLEM_PER_BUFFER``."""
    rng = np.random.default_rng(5)
    lower = rng.integers(0, 400, 400)
    p = BufferProblem(rng.integers(1, 1 << 12, 400) * 256, lower, lower + rng.integers(1, 40, 400), alignment=256)
    budget = search_tree.WorkBudget(10**6, 1e9)
    s = search_tree.PackingSearch(p, SearchParams(), budget)
    s.cap, s.order_key, s.total, s.work = 1 << 40, "TWZ", s.total0.copy(), 0
    assert len(s.active) == 400 and len(s._partitions()) == 1
    gen = s._sub_solve(0, s.nsec, s.active)
    gen.send(None)   # (the subproblem's preorder made and charged; its first node is handed to the trampoline)
    gen.close()
    assert s.work == search_tree.WORK_SUBPROBLEM + search_tree.WORK_FRONT_SUBPROBLEM_PER_BUFFER * 400


def test_repairs_push_the_start_down_once(monkeypatch):
    """``random_dag(3000)`` on 8 streams at ``time_limit=0.5``: its repairs find nothing below the start, and each
    pushed the same start down again (~300 units of the budget a time, 13% of it at ``time_limit=1``); now once."""
    from test_search_round58 import random_dag_3000_on_8_streams

    from memplan.solvers import search_repair

    p = random_dag_3000_on_8_streams()   # (built once a process: round 58's test solves it too)
    real, seen = search_repair.pushed_down, []

    def counted(bounds, adj, sizes, align, offsets, active):
        assert not any(offsets is x for x in seen)
        seen.append(offsets)
        return real(bounds, adj, sizes, align, offsets, active)
    monkeypatch.setattr(search_repair, "pushed_down", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = solve(p, "search", SolveOptions(time_limit=0.5))
    assert len(seen) == 1 and s.info["tries"] > 2
    check_solution(p, s)
