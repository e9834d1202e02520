"""Round 64: the conflict lists' memory, the precedence columns above the ledger's cap, the skyline caps' unit.

``BufferProblem.conflict_csr()`` (lists) turned every entry of the neighbour array into a new Python int (32 bytes
and a pointer), and ``conflict_lists`` / ``skyline.neighbours`` sliced that flat list into rows, every entry twice:
now the lists hold one shared int object a buffer and the rows are made piece by piece. ``HBOrder.first_csr`` larger
than the ledger's whole cap was built again on every conflict test: now it is kept alone until anything else is
kept."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from problems import problems_auto_solves, random_intervals
from test_quality_round60 import deep_skips

import memplan
from memplan import _csrcache
from memplan import problem as problem_mod
from memplan.benchmarks import scale
from memplan.problem import BufferProblem, HBOrder, clique_lower_bound
from memplan.solvers import auto, skyline
from memplan.solvers.check import packs


@pytest.fixture
def ledger(monkeypatch):
    """A ledger of this test's own (the process's one holds other tests' problems)."""
    fresh = _csrcache.CsrLedger()
    monkeypatch.setattr(_csrcache, "LEDGER", fresh)
    return fresh


def _reference(p: BufferProblem) -> tuple[list[int], list[int]]:
    """The CSR by the plain lexsort of every directed pair (what ``_conflict_csr`` computed before round 64)."""
    a, b = p.conflict_pairs()
    src, dst = np.concatenate([a, b]), np.concatenate([b, a])
    o = np.lexsort((dst, src))
    return np.searchsorted(src[o], np.arange(len(p) + 1)).tolist(), dst[o].tolist()


def _ordered(seed: int, n: int, streams: int) -> BufferProblem:
    rng = np.random.default_rng(seed)
    lower = rng.integers(0, 40, n)
    upper = lower + rng.integers(0, 12, n)
    order = HBOrder(first=rng.integers(0, 30, (n, streams)), visible=rng.integers(0, 30, (n, streams)),
                    has_start=rng.random(n) < 0.1, has_end=rng.random(n) < 0.1, last_time=lower + rng.integers(0, 6, n))
    return BufferProblem(sizes=rng.integers(0, 5, n) * rng.integers(1, 300, n), lower=lower, upper=upper, order=order)


# --- conflict_csr / conflict_lists ----------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 90), chunk=st.sampled_from([1, 2, 7, 1 << 20]),
       ordered=st.booleans())
def test_lists_and_rows_are_the_csr(seed, n, chunk, ordered):
    """The lists, the rows and the arrays are the lexsort's CSR, whatever the pieces they are made in (a row cut
    between two pieces, a piece of one entry, rows of no neighbour)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(problem_mod, "_LIST_CHUNK", chunk)
        p = _ordered(seed, n, 3) if ordered else random_intervals(seed=seed, n=n, horizon=max(n, 1))
        bounds, flat = _reference(p)
        assert p.conflict_csr() == (bounds, flat)
        arrays = p.conflict_csr(as_lists=False)
        assert arrays[0].tolist() == bounds and arrays[1].tolist() == flat
        assert p.conflict_lists() == [flat[bounds[i]:bounds[i + 1]] for i in range(n)]


def test_lists_share_one_int_a_buffer():
    """Every entry naming a buffer is the same int object (8 bytes an entry, not a new int of 32): before round 64
    ``dst.tolist()`` made a new one per entry."""
    p = random_intervals(seed=3, n=2000, horizon=400, max_length=80)
    _, flat = p.conflict_csr()
    rows = p.conflict_lists()
    for entries in (flat, [x for row in rows for x in row]):   # (one call's lists share them)
        seen: dict[int, int] = {}
        for x in entries:
            assert seen.setdefault(x, id(x)) == id(x)
        assert len(seen) > 1000


def test_rows_are_new_lists():
    """``skyline.neighbours`` appends the in-place pairs to its rows: a row handed out twice would change the next
    caller's."""
    p = random_intervals(seed=4, n=300)
    rows = p.conflict_lists()
    rows[5].append(-1)
    assert p.conflict_lists()[5] == _reference(p)[1][_reference(p)[0][5]:_reference(p)[0][6]]


def test_neighbours_peak_is_a_few_words_an_entry(ledger):
    """``skyline.neighbours`` (and ``conflict_lists``) of ~400,000 entries peak (tracemalloc) under 40 bytes an
    entry, the pairs and kept arrays included; slicing one flat list of new ints peaked at about 64."""
    p = random_intervals(seed=1, n=20_000, horizon=20_000, max_length=20)
    p.conflict_pairs()
    entries = len(p.conflict_csr(as_lists=False)[1])
    assert entries > 300_000
    tracemalloc.start()
    try:
        rows = skyline.neighbours(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(map(len, rows)) == entries
    assert peak < 40 * entries, peak / entries


# --- first_csr above the cap ----------------------------------------------------------------------------------------

def _builds(monkeypatch) -> list[int]:
    """Counts ``HBOrder.first_csr``'s builds (a call that finds no kept columns on its order)."""
    count = [0]
    real = HBOrder.first_csr

    def counted(self):
        count[0] += _csrcache.FIRST_ATTR not in self.__dict__
        return real(self)

    monkeypatch.setattr(HBOrder, "first_csr", counted)
    return count


def test_first_csr_above_the_cap_is_built_once_per_run_of_tests(ledger, monkeypatch):
    """Columns larger than the whole cap are kept alone (before: built again on every conflict test, 145 builds and
    194 s of a dense clique bound on 20,000 buffers x 600 streams, now 1 and 1.4 s), and go once anything else is
    kept, so the ledger holds at most one such entry."""
    p = _ordered(seed=2, n=400, streams=6)
    q = random_intervals(seed=2, n=30)
    nbytes = sum(a.nbytes for a in p.order.first_csr())
    ledger.clear()
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", nbytes // 2)
    builds = _builds(monkeypatch)
    want = clique_lower_bound(p, max_pairs=0)   # (dense: a conflict test per clique member)
    assert builds[0] == 1 and ledger.live_bytes() == nbytes
    for u in range(0, 400, 37):
        p._conflicts_of(u, np.arange(400))
    assert builds[0] == 1
    q.conflict_csr(as_lists=False)   # (anything else kept takes them off)
    assert _csrcache.FIRST_ATTR not in p.order.__dict__ and ledger.live_bytes() <= nbytes // 2
    assert clique_lower_bound(p, max_pairs=0) == want and builds[0] == 2


def test_a_cap_of_0_keeps_nothing_alone(ledger, monkeypatch):
    p = _ordered(seed=3, n=200, streams=4)
    monkeypatch.setattr(_csrcache, "CSR_CACHE_BYTES", 0)
    p.order.first_csr()
    assert _csrcache.FIRST_ATTR not in p.order.__dict__ and ledger.live_bytes() == 0


# --- the skyline caps' unit: pairs a walk visits ---------------------------------------------------------------------

def _multi_stream(g, **opts) -> BufferProblem:
    """The problem of the most buffers ``auto`` solves planning ``g`` with ``opts``."""
    return max(problems_auto_solves(lambda: memplan.plan(g, **opts)), key=lambda p: (p.order is not None, len(p)))


@pytest.mark.parametrize("streams", [1, 3])
def test_the_walk_work_is_what_a_walk_visits(streams):
    """``auto._walk_work`` is the pairs a walk visits (its neighbour lists, each pair from both ends): on a serial
    problem the overlapping intervals, on a multi-stream one the conflicting pairs, fewer (a layered graph of 250
    nodes on 3 streams: 17,557 overlapping, 15,368 conflicting); rounds 60-63 counted the overlaps on both."""
    p = _multi_stream(scale.layered_graph(250, seed=6), streams=streams)
    visited = sum(map(len, skyline.neighbours(p))) // 2
    assert auto._walk_work(p) == visited
    if streams > 1:
        assert p.order is not None and p.overlap_count() > visited


def test_in_place_pairs_count_as_the_walks_visit_them():
    """The walks keep in-place pairs apart (``skyline.neighbours`` adds them as conflicts): they count too."""
    g = memplan.load_graph(_example("moe"))
    p = _multi_stream(g, streams=2)
    assert p.compatible
    assert auto._walk_work(p) >= sum(map(len, skyline.neighbours(p))) // 2


def _example(name: str) -> str:
    """The file ``memplan example -o DIR`` writes for ``name``: the CLI's main in-process (a fresh ``python -m memplan``
    cost 1-3 s on CI's loaded cores; what is read here is the file, not the process)."""
    import os
    import tempfile

    from cli_contract import run_captured

    out = tempfile.mkdtemp()
    code, _out, err = run_captured("example", "-o", out)
    assert code == 0, err
    return os.path.join(out, f"{name}.json")


def test_a_multi_stream_seed_gets_its_walks_back():
    """Round 63's narrow cap, counted in overlapping intervals, cut this problem's promotions and repair (17,557
    pairs a walk counted, 15,368 visited): its plan went from 0.44% to 1.02% above the bound. Counted in what the
    walks visit, it is back at 1,619,968 B, within the cap in pairs really visited, and verifies."""
    g = scale.layered_graph(250, seed=6)
    plan = memplan.plan(g, streams=3)
    memplan.verify(g, plan)
    assert (plan.arena_bytes, plan.lower_bound_bytes) == (1_619_968, 1_612_800)


def test_the_tiers_are_chosen_by_overlapping_intervals():
    """A random DAG of 600 nodes (seed 6) on 3 streams: 47,501 overlapping pairs a walk, 31,164 visited. Its tier is
    still the wide one (counted in conflicts it moved to the narrow tier, which does not repair size's packing, and
    its plan went from 1.69% to 1.98% above the bound); its caps count the 31,164."""
    g = scale.random_dag(600, seed=6)
    p = _multi_stream(g, streams=3)
    assert auto._walk_work(p) * auto.SKYLINE_NARROW_WALKS <= auto.SKYLINE_NARROW_WORK < p.overlap_count() * 8
    assert not auto._narrow(p) and auto.skyline_keys(p) == auto.SKYLINE_WIDE_KEYS
    plan = memplan.plan(g, streams=3)
    memplan.verify(g, plan)
    assert plan.arena_bytes == 2_524_160 and plan.solver.get("name") == "skyline"


def test_the_narrow_tier_visits_at_most_its_cap_in_pairs(monkeypatch):
    """The walks, promotions, extra walks and repair of a multi-stream narrow-tier problem visit at most
    ``SKYLINE_NARROW_WORK`` pairs (each neighbour list entry is half a pair), counted as the walks visit them."""
    p = _multi_stream(scale.layered_graph(250, seed=6), streams=3)
    assert auto._narrow(p)
    visits: list[int] = []
    real_walk, real_rewalk = skyline.walk, skyline.rewalk

    def walk(sizes, nbrs, *args, **kwargs):
        visits.append(sum(len(row) for row in nbrs))
        return real_walk(sizes, nbrs, *args, **kwargs)

    def rewalk(sizes, nbrs, alignment, rank, by_rank, offsets, free):
        visits.append(len(free) + sum(len(nbrs[i]) for i in free))
        return real_rewalk(sizes, nbrs, alignment, rank, by_rank, offsets, free)
    monkeypatch.setattr(skyline, "walk", walk)
    monkeypatch.setattr(skyline, "rewalk", rewalk)
    sol = auto.skyline_below(p, 2 * int(p.lower_bound))
    assert sol is not None and packs(p, sol)
    assert auto.SKYLINE_NARROW_WORK * 0.9 < sum(visits) / 2 <= auto.SKYLINE_NARROW_WORK


# --- the start repair: only where size is at most the best walk -----------------------------------------------------

def _start_repairs(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = skyline.repaired

    def spy(sizes, nbrs, alignment, columns, offsets, top, walks, bound=0, keys=skyline.REPAIR_KEYS):
        if keys == skyline.START_KEYS:
            calls.append(top)
        return real(sizes, nbrs, alignment, columns, offsets, top, walks, bound, keys)
    monkeypatch.setattr(skyline, "repaired", spy)
    return calls


def test_the_start_repair_runs_only_where_size_is_at_most_the_best_walk(monkeypatch):
    """A chain with long skips of 10,000 nodes repaired size's packing (8,323,072 B) to 8,257,536 B, above the best
    walk's 7,995,392 B: 0.08 s a plan for nothing. Now a start above the best walk is not repaired; one at it is."""
    p = random_intervals(seed=7, n=400, horizon=300, max_length=40)
    best = skyline.solve(p, keys=skyline.KEYS)
    calls = _start_repairs(monkeypatch)
    above = (np.asarray(best.offsets) + 64).tolist()   # (a legal packing 64 bytes above the best walk's)
    skyline.solve(p, keys=skyline.KEYS, start=(above, best.arena + 64), start_repair=3)
    assert calls == []
    skyline.solve(p, keys=skyline.KEYS, start=(best.offsets.tolist(), best.arena), start_repair=3)
    assert calls == [best.arena]


def test_the_plan_of_a_deep_chain_is_the_same_without_the_start_repair():
    """deepskips10k's default plan: the walks' (7,995,392 B), as before the gate."""
    g = deep_skips(10000, span=1000)
    plan = memplan.plan(g)
    assert plan.arena_bytes == 7_995_392 and plan.solver.get("name") == "skyline"
