"""Round 61: the search's table of failed states (``SearchParams.memo``) and the fullest sections' refused candidates
left out of its scans (``PackingSearch._candidates``' ``thin``).

Each test failed before its change (no ``SearchParams.memo``; minimalloc A's TWA tree took 4,920 nodes and 11,118 units
to its packing, H's TAW tree 6,740 units, each refused candidate listed and looped over).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
from minimalloc_data import challenging, challenging_path
from packing_tries import check_packing, one_try

from memplan.problem import BufferProblem
from memplan.solvers import search_tree
from memplan.solvers.options import SearchParams

CAP = 1048576


def _minimalloc(name: str) -> BufferProblem:
    return challenging(name)


def test_failed_states_cut_minimalloc_a_to_its_packing():
    """minimalloc A at its bound with TWA: 4,920 nodes and 11,118 units to the packing, where 262 of its states are
    ones a failed subtree had searched from the same or a lower (offset, position); cut there, 3,695 nodes within
    9,000 units. Without the table the try stops short of it."""
    p = _minimalloc("A")
    res, s, units = one_try(p, CAP, "TWA", 9000)
    assert res != "abort" and res is not None
    check_packing(p, res, CAP)
    assert s.nodes < 4000 and units < 9000 and s.memo_hits > 0
    off, s0, _ = one_try(p, CAP, "TWA", 9000, memo=False)
    assert off == "abort" and s0.memo_hits == 0


def test_the_table_finds_the_first_packing_and_proves_what_the_full_tree_proves():
    """A failed state's subtree holds no packing, so the table only skips work: on small interval problems (some
    aligned) each try packs the same offsets with and without it, in no more nodes, and an exhausted one proves no less
    (``above``), nor anything a try without the table below its proof finds a packing in."""
    for seed in range(40):
        rng = random.Random(seed)
        n, horizon = rng.randint(8, 24), rng.randint(4, 12)
        lower = [rng.randrange(horizon) for _ in range(n)]
        upper = [rng.randint(a + 1, horizon) for a in lower]
        sizes = [rng.choice([1, 2, 2, 3, 4, 5, 8]) * (2 if seed % 4 == 0 else 1) for _ in range(n)]
        p = BufferProblem(np.array(sizes), np.array(lower), np.array(upper), alignment=2 if seed % 4 == 0 else 1)
        lb = int(p.lower_bound)
        for preorder in ("WAT", "TWA"):
            for cap in range(lb, lb + 4):
                r1, s1, _ = one_try(p, cap, preorder, 20000)
                r0, s0, _ = one_try(p, cap, preorder, 20000, memo=False)
                assert r1 == r0 and s1.nodes <= s0.nodes
                if r1 is None and s1.above < search_tree.NO_CAPACITY:
                    assert s1.above >= s0.above
                    assert one_try(p, s1.above - 1, preorder, 20000, memo=False)[0] is None


def test_the_table_keeps_to_aligned_capacities():
    """At a capacity that is not a multiple of the alignment, a section with nothing unplaced can fail on its floor
    (an aligned top past the capacity), which the table's states leave out: there it is not kept (nor under a budget
    of nodes)."""
    p = BufferProblem(np.array([256, 512, 256]), np.array([0, 0, 1]), np.array([2, 1, 3]), alignment=256)
    s = search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**6, 1e9))
    assert s.feasible(1024, "WAT", 1000) is not None and s.memo_on
    assert s.feasible(1023, "WAT", 1000) is not None and not s.memo_on
    assert s.feasible(1023, "WAT", 1000) is not None
    s = search_tree.PackingSearch(p, SearchParams(memo=False), search_tree.WorkBudget(10**6, 1e9))
    assert s.feasible(1024, "WAT", 1000) is not None and not s.memo_on
    # (nor under a budget of nodes, ``auto.polish``'s: the default plans stay what they were)
    s = search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**6, 1e9, by_nodes=True))
    assert s.feasible(1024, "WAT", 1000) is not None and not s.memo_on


def test_refused_candidates_are_not_listed_but_the_first():
    """minimalloc H at its bound with TAW: 200,254 of its 206,070 candidates were refused by the fullest sections'
    test (their offset plus those sections' total passes the capacity) after being listed in batches, 6,740 units for
    1,291 nodes. Left out of the scans (all but the first, whose need is the least), the same 1,291 nodes pack the
    same offsets in under 4,500 units."""
    p = _minimalloc("H")
    res, s, units = one_try(p, CAP, "TAW", 6000)
    assert res != "abort" and res is not None
    check_packing(p, res, CAP)
    assert s.nodes == 1291 and s.memo_hits == 0 and units < 4500


def test_a_solve_repeats_across_hash_seeds():
    """The table's keys are bytes looked up, never iterated: a solve gives the same plan whatever PYTHONHASHSEED."""
    code = ("import warnings, hashlib; from memplan.io.minimalloc import read_csv; from memplan.solvers import "
            "SolveOptions, solve; warnings.simplefilter('ignore'); "
            f"p = read_csv({challenging_path('C')!r}).problem(); "
            "s = solve(p, 'search', SolveOptions(time_limit=0.3)); "
            "print(s.arena, hashlib.sha1(s.offsets.astype('int64').tobytes()).hexdigest())")
    outs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout)
    assert len(outs) == 1


def test_a_failed_tests_need_is_read_off_its_own_terms():
    """A failed window test's need (``_need_of``) is ``_sections_pass_at``'s, read off the test's own per-section
    terms instead of the window's entries again (or None where a section's unplaced buffers all reach the capacity)."""
    rng = np.random.default_rng(7)
    cap, seen = 1000, 0
    for _ in range(500):
        k = int(rng.integers(1, 20))
        sizes = rng.integers(1, 6, k)
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        m = int(sizes.sum())
        moeff = rng.integers(0, 1100, m)
        placed = rng.random(m) < 0.4
        moeff[placed] = cap
        floor = rng.integers(0, 1000, k)
        total = rng.integers(-8, 400, k)
        o = int(rng.integers(0, 900))
        least = np.minimum.reduceat(moeff, starts)
        need = np.maximum(np.maximum(floor, least), o) + total
        got = search_tree._need_of(need, least, floor, total, o, cap)
        if got is not None:
            seen += 1
            assert got == search_tree._sections_pass_at(floor, moeff, placed, starts, o, total)
    assert seen > 50


def test_failed_tests_are_charged_what_they_read():
    """minimalloc J at its bound (989,184, which nothing packs) with TWA: most candidates fail the window test, each
    charged 35,000 ns and its entries read again (1,176 nodes in 10,000 units); read off the test's own terms, 1,826."""
    p = _minimalloc("J")
    res, s, units = one_try(p, 989184, "TWA", 10000, side_proofs=False)   # (round 63's side proofs take work of their own)
    assert res == "abort" and s.nodes > 1700
