"""Round 50: greedy's stream-by-stream sweep finds the blocks a buffer gets from its other streams (those its home
stream has seen all of, the other stream not) from an index per pair of streams (``greedy._Crossed``), not by
listing the other stream's whole set for every buffer: on ``wide_graph(20000)`` over 8 streams every branch result
is read on the join's stream, whose set holds nearly every placed buffer (678 million entries read, none kept).
The offsets must stay exactly those of round 49's sweep (``test_greedy_round49._old_sweep_streams``, the reference)
and of the pairwise sweep. Also: the dense route's second sweep with the buffers that start together grouped by
stream (``greedy._dense_best``) is never above the first, is collision-free and deterministic, and keeps ``over``'s
verdict; ``placement.Occupancy.of`` builds the state the adds build."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_greedy_round49 import _old_sweep_streams, _pairwise, _sweep, dealt_references
from test_properties import draw_scheduled
from test_scale_round44 import _dealt

import memplan
from memplan.benchmarks.scale import random_dag, wide_graph
from memplan.lifetimes import buffer_problem
from memplan.problem import arena_of, find_collision
from memplan.solvers import greedy, placement
from memplan.solvers.exact_pairs import inplace_targets


def _thresholds(monkeypatch, cross_min: int, payback: int, cap: int) -> None:
    monkeypatch.setattr(greedy, "CROSS_MIN", cross_min)
    monkeypatch.setattr(greedy, "CROSS_PAYBACK", payback)
    monkeypatch.setattr(greedy, "CROSS_CAP", cap)


def _checked_extra(monkeypatch) -> list[int]:
    """Every ``_Crossed.extra`` of the sweeps that follow checked against the brute-force set (``_brute``) of the
    buffers placed so far; returns a counter of the non-empty answers."""
    real = greedy._Crossed.extra
    found = [0]

    def checked(self, h, t, now, f):
        got = real(self, h, t, now, f)
        placed = self.unseen.placed[:self.unseen.count].tolist()
        assert sorted(got.tolist()) == _brute(self.times, self.up, placed, h, t, now, f), (h, t, now, f)
        found[0] += bool(len(got))
        return got

    monkeypatch.setattr(greedy._Crossed, "extra", checked)
    return found


# ---- the same offsets ----

@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data(), st.sampled_from([0, 1, 3]), st.sampled_from([1, 2]), st.sampled_from([0, 1, 64]),
       st.sampled_from([1, 256]))
def test_stream_sweep_places_as_round_49_on_random_graphs(data, cross_min, payback, cap, occ_min):
    """Random graphs (views, in-place pairs, fused groups, inputs, outputs) on random schedules of up to 4 streams,
    with every pair of streams indexed from its first query on, from its second, or never (``CROSS_CAP`` 0), and
    the home streams' Occupancies from their first block on or not at all: round 49's offsets, and the pairwise
    sweep's."""
    g, _order, _, sch = draw_scheduled(data, max_streams=4)
    p = buffer_problem(g, memplan.build_happens_before(g, sch))
    if p.order is None or greedy._sparse_stream_times(p) is None:
        return
    want = _sweep(p, _old_sweep_streams)
    saved = greedy.CROSS_MIN, greedy.CROSS_PAYBACK, greedy.CROSS_CAP, greedy.OCC_MIN, greedy.OCC_PAYBACK
    try:
        greedy.CROSS_MIN, greedy.CROSS_PAYBACK, greedy.CROSS_CAP = cross_min, payback, cap
        greedy.OCC_MIN, greedy.OCC_PAYBACK = occ_min, 1
        got = _sweep(p, greedy._sweep_streams)
    finally:
        greedy.CROSS_MIN, greedy.CROSS_PAYBACK, greedy.CROSS_CAP, greedy.OCC_MIN, greedy.OCC_PAYBACK = saved
    assert got == want == _pairwise(p)


@pytest.mark.parametrize("n,streams,seed", [(400, 2, 0), (400, 4, 1), (300, 8, 2), (250, 64, 3)])
@pytest.mark.parametrize("cross_min,payback,cap", [(0, 1, 64), (4, 2, 2), (16, 1, 64)])
def test_stream_sweep_places_as_round_49_on_dealt_dags(monkeypatch, n, streams, seed, cross_min, payback, cap):
    """Random DAGs dealt over 2..64 streams, pairs indexed early (and only a few of them: ``CROSS_CAP`` 2)."""
    p, want, pairwise = dealt_references(n, streams, seed)   # (made once: round 49's test reads them too)
    _thresholds(monkeypatch, cross_min, payback, cap)
    _checked_extra(monkeypatch)
    got = _sweep(p, greedy._sweep_streams)
    assert got == want == pairwise
    assert find_collision(p, got) is None


@pytest.mark.parametrize("streams", [2, 3, 8, 64])
def test_wide_node_on_streams_places_as_round_49(monkeypatch, streams):
    """The report's shape: one node of many outputs, each read on a stream of its own, the results joined on one."""
    p = _dealt(wide_graph(600, seed=streams), streams, streams)
    want = _sweep(p, _old_sweep_streams)
    _thresholds(monkeypatch, 1, 1, 64)
    monkeypatch.setattr(greedy, "OCC_MIN", 16)
    monkeypatch.setattr(greedy, "OCC_PAYBACK", 2)
    assert _sweep(p, greedy._sweep_streams) == want == _pairwise(p)


# ---- the index against a brute-force reading, call by call ----

def _brute(sparse, upper, placed, h, t, now, f) -> list[int]:
    """Placed buffers whose interval is not over at ``now``, all of which ``h`` has seen by ``now`` and ``t`` not by
    ``f``: straight from the seen times."""
    return sorted(j for j in placed if upper[j] > now and sparse.seen_row(j)[h] <= now and sparse.seen_row(j)[t] > f)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("shrunk", [False, True])
def test_crossed_extra_is_the_brute_force_set(monkeypatch, seed, shrunk):
    """``_Crossed.extra`` asked for random pairs of streams and random ``f >= now`` along a sweep (a pair indexed from
    its first query, from its third, or never): exactly the brute-force set, each buffer once. ``shrunk``: every
    interval cut to half its length (still past its start), so that buffers a pair holds end while the other stream
    has not seen them (a graph's intervals never end before every stream that reads on sees them)."""
    rng = random.Random(seed)
    g = wide_graph(150, seed=seed) if seed % 2 else random_dag(200, seed=seed)
    p = _dealt(g, rng.choice([2, 3, 5]), seed)
    sparse = greedy._sparse_stream_times(p)
    assert sparse is not None
    S = p.order.visible.shape[1]
    _thresholds(monkeypatch, rng.choice([0, 2]), rng.choice([1, 3]), rng.choice([1, 64]))
    up = p.lower + (p.upper - p.lower) // 2 + 1 if shrunk else p.upper
    unseen = greedy._Unseen(sparse, up, len(p))
    crossed = greedy._Crossed(sparse, up, unseen)
    upper, lower, sizes = up.tolist(), p.lower.tolist(), p.sizes.tolist()
    horizon = max(upper) + 2
    placed: list[int] = []
    asked = indexed = 0
    for i in p.sweep_order().tolist():
        if not sizes[i]:
            continue
        now = lower[i]
        for _ in range(3):
            h, t = rng.sample(range(S), 2) if S > 1 else (0, 0)
            f = rng.choice([now, now + 1, rng.randint(now, horizon)])
            got = crossed.extra(h, t, now, f).tolist()
            assert len(got) == len(set(got))
            assert sorted(got) == _brute(sparse, upper, placed, h, t, now, f), (h, t, now, f)
            asked += 1
        unseen.place(i)
        crossed.place(i)
        placed.append(i)
        indexed = max(indexed, len(crossed.pairs))
    assert asked and indexed   # the index was made and asked


# ---- the operations counted ----

def test_wide_stream_sweep_no_longer_lists_the_join_streams_set(monkeypatch):
    """Entries of other streams' sets listed to find a buffer's blocks from them (``_Unseen.at`` inside
    ``_Crossed.extra``) on a wide node of 1,600 outputs dealt over 8 streams: round 49's sweep listed the join's
    stream's whole set for every branch result (quadratic, ~4 M here); now a pair's set is listed only for its first
    CROSS_PAYBACK large queries (and while it is small), then the pair's index answers."""
    p = _dealt(wide_graph(1600, seed=2), 8, 2)
    listed = [0]
    inside = [False]
    real_at, real_extra = greedy._Unseen.at, greedy._Crossed.extra

    def counting_at(self, s, now):
        ids, seen = real_at(self, s, now)
        listed[0] += len(ids) if inside[0] else 0
        return ids, seen

    def marked_extra(self, *a):
        inside[0] = True
        try:
            return real_extra(self, *a)
        finally:
            inside[0] = False

    monkeypatch.setattr(greedy._Unseen, "at", counting_at)
    monkeypatch.setattr(greedy._Crossed, "extra", marked_extra)
    _thresholds(monkeypatch, 256, 8, 64)
    got = _sweep(p, greedy._sweep_streams)
    new = listed[0]
    _thresholds(monkeypatch, 256, 8, 0)   # no index: round 49's listing
    listed[0] = 0
    assert _sweep(p, greedy._sweep_streams) == got == _pairwise(p)
    old = listed[0]
    assert old > 300 * len(p), old      # quadratic: every branch result lists the join's set
    assert new < 60 * len(p), (new, old)   # each pair's first CROSS_PAYBACK large sets: 14 pairs x 8 x < 1,600


# ---- round 50, item 3: the dense sweeps also try the buffers that start together grouped by stream ----

def _dense(monkeypatch) -> None:
    """Every multi-stream problem on the dense route (``_sparse_stream_times`` permitting)."""
    monkeypatch.setattr(greedy, "DENSE_HB_PAIRS", -1)
    monkeypatch.setattr(greedy, "DENSE_HB_PER_BUFFER", -1)


def _natural(p) -> tuple[list[int], int]:
    """The dense sweep in sweep order alone (round 49's greedy on the dense route): offsets and arena."""
    sparse = greedy._sparse_stream_times(p)
    offsets = [0] * len(p)
    greedy._sweep_dense(p, sparse, p.sweep_order().tolist(), p.sizes.tolist(), offsets, inplace_targets(p))
    return offsets, arena_of(p, np.asarray(offsets, dtype=np.int64))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_dense_greedy_is_never_above_the_sweep_order_and_stays_safe(monkeypatch_module, data):
    """Random graphs on random schedules, forced onto the dense route: greedy's arena is at most the sweep-order
    sweep's, its offsets are those where that one meets the bound or the grouped order does no better, and no two
    conflicting buffers share a byte."""
    g, _order, _, sch = draw_scheduled(data, max_streams=4)
    p = buffer_problem(g, memplan.build_happens_before(g, sch))
    if p.order is None or greedy._sparse_stream_times(p) is None:
        return
    want, arena = _natural(p)
    sol = greedy.solve(p)
    assert find_collision(p, sol.offsets.tolist()) is None
    assert sol.arena <= arena
    if sol.arena == arena:
        assert sol.offsets.tolist() == want
    assert greedy.solve(p).offsets.tolist() == sol.offsets.tolist()   # deterministic
    # the grouped order's second sweep goes stream by stream where the first did: the same placements either way
    sparse = greedy._sparse_stream_times(p)
    grouped = greedy._grouped_order(p, sparse, p.sweep_order().tolist())
    if grouped is not None:
        both = [[0] * len(p), [0] * len(p)]
        for offsets, seen in zip(both, (True, False)):
            greedy._sweep_dense(p, sparse, grouped, p.sizes.tolist(), offsets, inplace_targets(p), seen)
        assert both[0] == both[1]


@pytest.fixture
def monkeypatch_module(monkeypatch):
    """The dense route, and the grouped order tried wherever it moves a buffer at all."""
    _dense(monkeypatch)
    monkeypatch.setattr(greedy, "GROUPED_MOVED", 1 << 40)
    return monkeypatch


@pytest.mark.parametrize("streams,seed", [(2, 0), (4, 1), (8, 2), (16, 3)])
def test_dense_greedy_groups_a_forks_branches_by_stream(monkeypatch, streams, seed):
    """A wide fork dealt over streams, on the dense route: the sweep order spreads each stream's branches among the
    others' and ends well above the bound; grouped by the stream that reads them it ends closer to it (what took
    ``plan(wide_graph(20000), streams="auto")`` from 0.87 % above its bound to 0.05 %)."""
    _dense(monkeypatch)
    p = _dealt(wide_graph(800, seed=seed), streams, seed)
    _, natural = _natural(p)
    sol = greedy.solve(p)
    assert find_collision(p, sol.offsets.tolist()) is None
    bound = int(p.lower_bound)
    assert natural > bound
    assert sol.arena < natural
    assert sol.arena - bound <= (natural - bound) // 2, (sol.arena, natural, bound)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_dense_greedy_over_says_what_the_whole_solve_returns(monkeypatch_module, data):
    """``solve(p, over=X)`` (a memory budget's early stop) raises ``ArenaOver`` exactly when ``solve(p)`` ends above
    ``X`` bytes, now that it may sweep twice."""
    g, _order, _, sch = draw_scheduled(data, max_streams=4)
    p = buffer_problem(g, memplan.build_happens_before(g, sch))
    if p.order is None or greedy._sparse_stream_times(p) is None:
        return
    arena = greedy.solve(p).arena
    natural = _natural(p)[1]
    for over in {arena - 1, arena, natural - 1, natural, int(p.lower_bound or 0), data.draw(st.integers(0, 2 * arena + 1))}:
        if over < 0:
            continue
        try:
            greedy.solve(p, over=over)
            stopped = False
        except placement.ArenaOver:
            stopped = True
        assert stopped == (arena > over), (over, arena, natural)


def test_wide_plan_groups_the_fork_and_stays_verified():
    """``plan(wide_graph(3000), streams=8)``: on the dense route, verified, deterministic, and closer to its bound
    than the sweep order's 1 %+ (a whole plan, as users get it)."""
    g = wide_graph(3000)
    a = memplan.plan(g, streams=8, solver="greedy")
    b = memplan.plan(g, streams=8, solver="greedy")
    assert a.to_json() == b.to_json()
    memplan.verify(g, a)
    assert a.arena_bytes <= a.lower_bound_bytes * 1.005, (a.arena_bytes, a.lower_bound_bytes)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 12)), max_size=40), st.sampled_from([1, 4, 8]))
def test_occupancy_of_blocks_is_the_one_adds_build(blocks, alignment):
    """``Occupancy.of`` (the bulk build ``_Unseen.occupancy`` starts a stream's index with) leaves exactly the state
    that adding each block leaves: boundaries, covers and gaps (blocks repeated, empty, touching, nested)."""
    pairs = [(a * alignment, a * alignment + n) for a, n in blocks]
    one = placement.Occupancy(alignment)
    for b in pairs:
        one.add(*b)
    bulk = placement.Occupancy.of(pairs, alignment)
    assert (bulk.pts, bulk.cov, bulk.gaps) == (one.pts, one.cov, one.gaps)
    for size in (1, 3, 8, 100):
        assert bulk.best_fit(size) == one.best_fit(size)
