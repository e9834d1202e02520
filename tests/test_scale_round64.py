"""Round 64: a plan on many streams holds less at its peak, the same plan.

``layered_graph(20000)`` on 1,024 streams peaked at 994 MiB RSS, inside greedy's stream-by-stream sweep: its per-stream
sets (``greedy._Unseen``) held each placed buffer once per stream that had not seen it (13.4 million entries, ids and
times in int64 with room to double: 400 MiB), while ``plan.solve_schedule`` still held the lifetimes' and the clocks'
(buffer x stream) tables nothing read any more (``last``, ``live_from``, ``clock``: 255 MiB). Now the sets are int32
where ids and times fit and the tables are let go before the solve: 609 MiB, the same plan bytes. Structural tests:
what is held and in what type, never how long it took."""

from __future__ import annotations

import importlib
import random
import weakref

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import draw_scheduled
from test_scale_round44 import _dealt, _pairwise

import memplan
from memplan.benchmarks.scale import layered_graph, random_dag
from memplan.lifetimes import buffer_problem, compute_lifetimes
from memplan.schedule import build_happens_before
from memplan.solvers import greedy
from memplan.solvers.exact_pairs import inplace_targets

plan_mod = importlib.import_module("memplan.plan")   # (``memplan.plan`` the attribute is the function)


def _stream_sweep(p, monkeypatch=None, wide: bool = False) -> list[int]:
    """``greedy._sweep_streams``' offsets of ``p`` (its sets in int64 where ``wide``)."""
    if wide:
        monkeypatch.setattr(greedy, "_held_type", lambda sparse, n: (np.int64, greedy.INF))
    try:
        sparse = greedy._sparse_stream_times(p)
        assert sparse is not None
        offsets = [0] * len(p)
        greedy._sweep_streams(p, sparse, p.sweep_order().tolist(), p.sizes.tolist(), offsets, inplace_targets(p))
        return offsets
    finally:
        if wide:
            monkeypatch.undo()


# ---- greedy's per-stream sets: int32, the same placements ----

def test_unseen_sets_hold_int32_on_many_streams(monkeypatch):
    """Every set ``_Unseen`` grows on a 1,024-stream problem is int32, ids and times (4 bytes an entry each, was 8),
    and a time never reached is held as ``never``, above every time the sweep tests (INF wrapped into int32 read as
    0: every buffer seen at once, blocks lost). The same offsets as the int64 sets and as the pairwise sweep."""
    p = _dealt(random_dag(600, seed=3), 1024, seed=3)
    grown: list[tuple[np.dtype, np.dtype]] = []
    real = greedy._Unseen.update

    def spy(self, s, now):
        real(self, s, now)
        if s in self.ids:
            grown.append((self.ids[s].dtype, self.seen[s].dtype))
            length = self.length[s]
            assert (self.seen[s][:length] > now).all()   # held: not seen by now (a wrapped INF would be 0)

    monkeypatch.setattr(greedy._Unseen, "update", spy)
    got = _stream_sweep(p)
    monkeypatch.setattr(greedy._Unseen, "update", real)
    assert grown and {d for pair in grown for d in pair} == {np.dtype(np.int32)}
    assert got == _stream_sweep(p, monkeypatch, wide=True) == _pairwise(p)


@pytest.mark.parametrize("seed", range(4))
def test_int32_sets_place_as_int64_sets_on_dealt_graphs(monkeypatch, seed):
    """Random DAGs dealt over 2-64 streams: the int32 sets place every buffer where the int64 ones do."""
    rng = random.Random(seed)
    p = _dealt(random_dag(rng.randint(50, 300), seed=seed), rng.choice([2, 7, 64]), seed)
    assert _stream_sweep(p) == _stream_sweep(p, monkeypatch, wide=True)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_int32_sets_place_as_int64_sets_on_random_graphs(data):
    """Random graphs (views, in-place pairs, inputs, outputs) on random multi-stream schedules: the same offsets
    with the sets in int32 and in int64."""
    g, _order, _streams, s = draw_scheduled(data, max_streams=4)
    hb = build_happens_before(g, s)
    if hb.num_streams < 2:
        return
    p = buffer_problem(g, hb, compute_lifetimes(g, hb), clique=False)
    if len(p) == 0 or greedy._sparse_stream_times(p) is None:
        return
    mp = pytest.MonkeyPatch()
    try:
        assert _stream_sweep(p) == _stream_sweep(p, mp, wide=True)
    finally:
        mp.undo()


def test_held_type_falls_back_to_int64_past_int32_times():
    """Times at or past half int32's range (or more buffers than it counts) keep the sets in int64 with INF."""
    p = _dealt(random_dag(60, seed=1), 4, seed=1)
    sparse = greedy._sparse_stream_times(p)
    assert greedy._held_type(sparse, len(p)) == (np.int32, np.iinfo(np.int32).max)
    assert greedy._held_type(sparse, 1 << 31) == (np.int64, greedy.INF)
    sparse._times = np.where(sparse._times < greedy.INF, sparse._times + (1 << 30), sparse._times)
    assert greedy._held_type(sparse, len(p)) == (np.int64, greedy.INF)


# ---- solve_schedule: the lifetimes and clocks are let go before the solve ----

def test_one_device_solve_does_not_hold_the_lifetimes_or_clocks(monkeypatch):
    """While a one-device plan on many streams is solved, its lifetimes' ``last`` and ``live_from`` tables and its
    happens-before clocks are gone (255 MiB of layered_graph(20000) on 1,024 streams); the problem's own ``first``
    and ``visible`` stay. The same plan as before."""
    made: list[tuple[weakref.ref, ...]] = []
    real_lt, real_hb, real_solve = plan_mod.compute_lifetimes, plan_mod.build_happens_before, plan_mod.solve
    clocks: list[weakref.ref] = []

    def lifetimes(graph, hb, **kw):
        lt = real_lt(graph, hb, **kw)
        made.append((weakref.ref(lt.last), weakref.ref(lt.live_from)))
        return lt

    def happens_before(graph, schedule):
        hb = real_hb(graph, schedule)
        clocks.append(weakref.ref(hb.clock))
        return hb

    held: list[bool] = []

    def solve(problem, *a, **kw):
        if problem.order is not None:
            held.append(any(r() is not None for r in made[-1]) or clocks[-1]() is not None)
        return real_solve(problem, *a, **kw)

    g = layered_graph(400)
    want = memplan.plan(g, streams=16).to_json()
    monkeypatch.setattr(plan_mod, "compute_lifetimes", lifetimes)
    monkeypatch.setattr(plan_mod, "build_happens_before", happens_before)
    monkeypatch.setattr(plan_mod, "solve", solve)
    got = memplan.plan(g, streams=16).to_json()
    assert held and not any(held)
    assert got == want


def test_fused_groups_bound_still_reads_the_clocks():
    """With ``fused_groups`` the plan's contract bound is made after the solve from the clocks: kept for it."""
    g = layered_graph(200)
    p = memplan.plan(g, streams=4, fused_groups=True)
    assert p.lower_bound_bytes <= p.arena_bytes
