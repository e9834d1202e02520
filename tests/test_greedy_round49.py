"""Round 49b: greedy's stream-by-stream sweep fits each buffer in an ``Occupancy`` kept per stream, not by sorting
every conflicting placed block again (``placement.fit_arrays``): ``plan(wide_graph(20000), streams="auto")`` spent
56 of 69 s there. The offsets must stay exactly the old ones: the old sweep is kept here as the reference."""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import draw_scheduled
from test_scale_round44 import _dealt

import memplan
from memplan.benchmarks.scale import random_dag, wide_graph
from memplan.lifetimes import buffer_problem
from memplan.problem import find_collision
from memplan.solvers import greedy, placement
from memplan.solvers.exact_pairs import inplace_targets, over_input

# ---- the reference: ``_sweep_streams`` and ``_Unseen`` as they were before round 49b (fit_arrays every buffer) ----

class _OldUnseen:
    def __init__(self, sparse, upper, n):
        self.sparse, self.upper = sparse, upper
        self.placed = np.zeros(n, dtype=np.int64)
        self.count = 0
        self.ids, self.seen, self.taken = {}, {}, {}

    def place(self, i):
        self.placed[self.count] = i
        self.count += 1

    def at(self, s, now):
        new = self.placed[self.taken.get(s, 0):self.count]
        self.taken[s] = self.count
        ids, seen = self.ids.get(s), self.seen.get(s)
        if ids is None:
            ids, seen = new, self.sparse.seen_col(new, s)
        elif len(new):
            ids, seen = np.concatenate([ids, new]), np.concatenate([seen, self.sparse.seen_col(new, s)])
        keep = (seen > now) & (self.upper[ids] > now)
        ids, seen = ids[keep], seen[keep]
        self.ids[s], self.seen[s] = ids, seen
        return ids, seen

    def drop(self, s):
        self.ids.pop(s, None)
        self.seen.pop(s, None)


def _old_fit_listed(js, src, size, sizes, offsets, bulk, alignment):
    at = over_input(src, size, sizes, offsets)   # (round 52: the in-place output's exact place, a shift from src's)
    if bulk is not None and len(js) >= placement.BULK_BLOCKS:
        off_arr, size_arr = bulk
        starts = off_arr[js]
        ends = starts + size_arr[js]
        if placement.bulk_ok(ends):
            if at is not None and placement.fits_at_arrays(starts, ends, at, size):
                return at
            return placement.fit_arrays(starts, ends, size, alignment, best=True)
    blocks = [(offsets[j], offsets[j] + sizes[j]) for j in js.tolist()]
    if at is not None and placement.fits_at(blocks, at, size):
        return at
    return placement.best_fit(blocks, size, alignment)


def _old_sweep_streams(problem, times, order, sizes, offsets, inplace_of):
    first, home, regular = times.first, times.home, times.regular
    o = problem.order
    n = len(sizes)
    lower = problem.lower.tolist()
    partners = greedy._partners(problem)
    last_use = {}
    for i in order:
        if sizes[i] and regular[i]:
            for s in first[i]:
                last_use[s] = i
    unseen = _OldUnseen(times, problem.upper, n)
    placed = np.zeros(n, dtype=bool)
    starts = o.has_start.tolist()
    inputs = placement.Occupancy(problem.alignment)
    past_inputs = False
    bulk = placement.bulk_arrays(problem.sizes)
    # (round 53: every greedy sweep passes each place through the in-place guard, the same call everywhere; the
    # reference does too, so that it stays the reference of how the blocks are found)
    guard = greedy.ExactOrApart.of(problem, order, best=True)
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        now = lower[i]
        src = inplace_of.get(i)
        if not regular[i] and starts[i] and not past_inputs and not any(placed[j] for j in partners.get(i, ())):
            offsets[i] = greedy._mended(guard, i, greedy._place(inputs, src, size, sizes, offsets), offsets)
        elif not regular[i]:
            offsets[i] = greedy._mended(guard, i, greedy._place_listed(problem, i, placed, now, src, sizes, offsets),
                                        offsets)
        else:
            h = home[i]
            here = [unseen.at(h, now)[0]]
            for t, f in sorted(first[i].items()):
                if t == h:
                    continue
                ids, seen = unseen.at(t, now)
                ids = ids[seen > f]
                if len(ids):
                    here.append(ids[times.seen_col(ids, h) <= now])
            if len(here) > 2:
                here = [np.unique(np.concatenate(here[1:])), here[0]]
            js = np.concatenate(here) if len(here) > 1 else here[0]
            mine = partners.get(i)
            if mine:
                js = js[~np.isin(js, mine)]
            offsets[i] = greedy._mended(guard, i, _old_fit_listed(js, src, size, sizes, offsets, bulk,
                                                                  problem.alignment), offsets)
            for s in first[i]:
                if last_use.get(s) == i:
                    unseen.drop(s)
        if bulk is not None:
            bulk[0][i] = offsets[i]
        placed[i] = True
        past_inputs = past_inputs or not starts[i]
        if not past_inputs:
            inputs.add(offsets[i], offsets[i] + size)
        unseen.place(i)


# ---- helpers ----

def _sweep(p, sweep) -> list[int]:
    sparse = greedy._sparse_stream_times(p)
    assert sparse is not None
    offsets = [0] * len(p)
    sweep(p, sparse, p.sweep_order().tolist(), p.sizes.tolist(), offsets, inplace_targets(p))
    return offsets


def _pairwise(p) -> list[int]:
    offsets = [0] * len(p)
    greedy._sweep_conflicts(p, p.sweep_order().tolist(), p.sizes.tolist(), offsets, inplace_targets(p))
    return offsets


# ---- the same offsets ----

@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data(), st.sampled_from([1, 2, 3, 256]), st.sampled_from([0, 1, 4, 1 << 30]))
def test_stream_sweep_places_as_the_old_one_on_random_graphs(data, occ_min, extra):
    """Random graphs (views, in-place pairs, fused groups, inputs, outputs) on random schedules of up to 4 streams:
    with every stream's set kept as an Occupancy from its first block on (``OCC_MIN`` 1), or never, and the extra
    blocks of other streams taken in or sent to the old fit, the sweep places as the old sweep and the pairwise one."""
    g, _order, _, sch = draw_scheduled(data, max_streams=4)
    p = buffer_problem(g, memplan.build_happens_before(g, sch))
    if p.order is None or greedy._sparse_stream_times(p) is None:
        return
    want = _sweep(p, _old_sweep_streams)
    saved = greedy.OCC_MIN, greedy.OCC_EXTRA, greedy.OCC_PAYBACK
    try:
        greedy.OCC_MIN, greedy.OCC_EXTRA, greedy.OCC_PAYBACK = occ_min, extra, 1
        got = _sweep(p, greedy._sweep_streams)
    finally:
        greedy.OCC_MIN, greedy.OCC_EXTRA, greedy.OCC_PAYBACK = saved
    assert got == want
    assert got == _pairwise(p)


@functools.cache
def dealt_references(n: int, streams: int, seed: int):
    """``random_dag(n, seed)`` dealt over ``streams`` streams, with the old sweep's offsets and the pairwise sweep's
    (the references: neither reads the ``OCC_*`` or ``CROSS_*`` thresholds that the tests here and in
    ``test_greedy_round50`` turn), made once for every threshold setting those tests try on it (read only)."""
    p = _dealt(random_dag(n, seed=seed), streams, seed)
    return p, _sweep(p, _old_sweep_streams), _pairwise(p)


@pytest.mark.parametrize("n,streams,seed", [(400, 2, 0), (400, 4, 1), (300, 8, 2), (250, 64, 3)])
@pytest.mark.parametrize("occ_min,cap,payback", [(1, 4, 1), (8, 4, 1), (8, 8, 4), (8, 0, 1)])
def test_stream_sweep_places_as_the_old_one_on_dealt_dags(monkeypatch, n, streams, seed, occ_min, cap, payback):
    """Random DAGs dealt over 2..64 streams, with small Occupancy thresholds (and none allowed: ``OCC_CAP`` 0)."""
    p, want, pairwise = dealt_references(n, streams, seed)
    monkeypatch.setattr(greedy, "OCC_MIN", occ_min)
    monkeypatch.setattr(greedy, "OCC_CAP", cap)
    monkeypatch.setattr(greedy, "OCC_PAYBACK", payback)
    got = _sweep(p, greedy._sweep_streams)
    assert got == want == pairwise
    assert find_collision(p, got) is None


def test_wide_node_on_streams_places_as_the_old_sweep(monkeypatch):
    """The shape of the report: one node of many outputs, each read on a stream of its own choosing, the results
    joined; in-place pairs on top (every OP overwrites its input), the path that takes partners out of the index."""
    g = wide_graph(700, seed=3)
    p = _dealt(g, 8, 3)
    monkeypatch.setattr(greedy, "OCC_MIN", 16)
    monkeypatch.setattr(greedy, "OCC_PAYBACK", 2)
    assert _sweep(p, greedy._sweep_streams) == _sweep(p, _old_sweep_streams) == _pairwise(p)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 12)), min_size=0, max_size=30), st.data())
def test_fit_occupied_is_the_listed_fit(blocks, data):
    """``_fit_occupied`` (an Occupancy of the home blocks, extra blocks put in and partners taken out for the query)
    answers what the listed fit answers over home + extra - partners, in-place source first."""
    alignment = data.draw(st.sampled_from([1, 4, 8]), label="alignment")
    n = len(blocks) + 1
    offsets = [align * alignment for align, _ in blocks] + [0]
    sizes = [s for _, s in blocks] + [data.draw(st.integers(1, 40), label="size")]
    i = n - 1
    where = [data.draw(st.sampled_from("hex"), label=f"where{j}") for j in range(n - 1)]
    home = np.array([j for j in range(n - 1) if where[j] == "h"], dtype=np.int64)
    extra = np.array([j for j in range(n - 1) if where[j] == "e"], dtype=np.int64)
    mine = data.draw(st.lists(st.integers(0, n - 1), max_size=4), label="partners") or None
    src = data.draw(st.one_of(st.none(), st.integers(0, n - 2)), label="src") if n > 1 else None
    src = None if src is None else (src, 0)   # (round 52: the input with its shift)
    occ = placement.Occupancy(alignment)
    for j in home.tolist():
        occ.add(offsets[j], offsets[j] + sizes[j])
    before = (list(occ.pts), list(occ.cov), list(occ.gaps))
    js = np.concatenate([extra, home])
    if mine:
        js = js[~np.isin(js, mine)]
    want = _old_fit_listed(js, src, sizes[i], sizes, offsets, None, alignment)
    got = greedy._fit_occupied(occ, lambda a: np.isin(a, home), extra, mine, src, sizes[i], sizes, offsets)
    assert got == want
    assert (occ.pts, occ.cov, occ.gaps) == before   # the index is left as it was


# ---- the operations counted ----

def test_wide_stream_sweep_no_longer_sorts_every_conflicting_block(monkeypatch):
    """Blocks handed to the listed fits (``fit_arrays``, ``best_fit``) by the stream sweep on a wide node of 1,500
    outputs dealt over 8 streams: the old sweep handed every live conflicting block for every buffer (quadratic,
    ~2.3 M here); now a stream's large set lives in its Occupancy and only small sets (and a stream's first few large
    ones) are listed."""
    p = _dealt(wide_graph(1500, seed=1), 8, 1)
    handed = [0]

    def counting(fn, arg):
        def wrapped(*a, **k):
            handed[0] += len(a[arg])
            return fn(*a, **k)
        return wrapped

    monkeypatch.setattr(placement, "fit_arrays", counting(placement.fit_arrays, 0))
    monkeypatch.setattr(placement, "best_fit", counting(placement.best_fit, 0))
    monkeypatch.setattr(greedy, "fit_arrays", placement.fit_arrays)
    monkeypatch.setattr(greedy, "best_fit", placement.best_fit)
    old = _sweep(p, _old_sweep_streams)
    before, handed[0] = handed[0], 0
    new = _sweep(p, greedy._sweep_streams)
    assert new == old
    assert before > 500 * len(p), before            # (the old sweep: quadratic)
    # now: the sets listed while a stream's is below OCC_MIN, then its first OCC_PAYBACK large ones: linear
    assert handed[0] < 200 * len(p), (handed[0], before)


def test_stream_sweep_places_as_the_old_one_past_the_bulk_range(monkeypatch):
    """A wide node's sizes scaled to add up to nearly 2^63 bytes: ends past ``fit_arrays``' int64 range, where the
    old sweep fitted in Python; the Occupancies hold Python ints, with the same offsets."""
    import dataclasses

    p = _dealt(wide_graph(300, seed=5), 4, 5)
    al = p.alignment
    total = sum(-(-int(s) // al) * al for s in p.sizes.tolist())
    factor = ((1 << 63) - 1) // total // al * al
    q = dataclasses.replace(p, sizes=np.array([int(s) * factor for s in p.sizes.tolist()], dtype=np.int64))
    monkeypatch.setattr(greedy, "OCC_MIN", 4)
    monkeypatch.setattr(greedy, "OCC_PAYBACK", 1)
    got = _sweep(q, greedy._sweep_streams)
    assert got == _sweep(q, _old_sweep_streams) == _pairwise(q)
    assert max(o + int(s) for o, s in zip(got, q.sizes.tolist())) > 1 << 62


@pytest.mark.parametrize("seed", range(6))
def test_unseen_sets_and_occupancies_follow_the_old_sets(monkeypatch, seed):
    """``_Unseen`` against the old one, asked at random streams along a sweep: the same held set at every call,
    and a stream's Occupancy (built, kept through heap-driven let-goes and compactions, given up when the set
    shrinks below ``OCC_MIN // 4`` as the threshold moves) holds exactly the held set's blocks."""
    rng = random.Random(seed)
    p = _dealt(random_dag(250, seed=seed), rng.choice([2, 3, 5]), seed)
    sparse = greedy._sparse_stream_times(p)
    n, S = len(p), p.order.visible.shape[1]
    sizes = p.sizes.tolist()
    offsets = [rng.randrange(0, 64) * 8 for _ in range(n)]
    new = greedy._Unseen(sparse, p.upper, n, greedy._Blocks(offsets, sizes, 8), 1 << 40)
    old = _OldUnseen(sparse, p.upper, n)
    lower = p.lower.tolist()
    kinds = set()
    for i in p.sweep_order().tolist():
        if not sizes[i]:
            continue
        now = lower[i]
        for s in rng.sample(range(S), rng.randint(1, S)):
            monkeypatch.setattr(greedy, "OCC_MIN", rng.choice([1, 4, 40, 4000]))
            had = s in new.occ
            if rng.random() < 0.7:   # (else only ``at``: the set brought up to date without being fitted)
                kinds.add((had, new.occupancy(s, now) is not None))
            got, want = new.at(s, now), old.at(s, now)
            assert sorted(got[0].tolist()) == sorted(want[0].tolist())
            # (a time never reached is held as ``new.never``, INF where the sets are int64: round 64)
            seen = [greedy.INF if x >= new.never else x for x in got[1].tolist()]
            assert dict(zip(got[0].tolist(), seen)) == dict(zip(*[a.tolist() for a in want]))
            assert new.live(s) == len(want[0])
            if s in new.occ:
                ref = placement.Occupancy(8)
                for j in want[0].tolist():
                    ref.add(offsets[j], offsets[j] + sizes[j])
                assert (new.occ[s].pts, new.occ[s].cov, sorted(new.occ[s].gaps)) == (ref.pts, ref.cov, sorted(ref.gaps))
        new.place(i)
        old.place(i)
    assert new.held == sum(new.live(s) for s in new.occ)
    assert {(False, True), (True, True), (True, False)} <= kinds   # built, kept, given up
