"""Round 45: the planner's hot spots on many streams, each fast path checked against the path it replaces.

Correctness only (no timings): every fast path must give exactly what the old path gave, since plans must stay
byte-identical. The numbers are in CHANGELOG.md and docs/benchmarks.md."""

from __future__ import annotations

import dataclasses
import importlib
import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs, schedules

from memplan import lifetimes
from memplan import problem as problem_mod
from memplan.benchmarks.scale import chains_graph, random_dag, transformer_graph
from memplan.lifetimes import buffer_problem
from memplan.schedule import build_happens_before, schedule_with_events

verify_mod = importlib.import_module("memplan.verify")   # (``memplan.verify`` is also the function)


def _dealt(g, streams: int, seed: int, used: int | None = None):
    """``g``'s nodes in listed order, dealt at random over the first ``used`` of ``streams`` streams."""
    rng = random.Random(seed)
    order = [x.id for x in g.nodes]
    stream_of = {x: rng.randrange(used or streams) for x in order}
    stream_of[order[0]] = streams - 1   # every stream count is the one asked (some streams may stay empty)
    return schedule_with_events(g, order, stream_of)


def _tables(g, hb):
    """``first``, ``last`` and the node count ``_thresholds`` gets inside ``compute_lifetimes``."""
    seen = {}
    real = lifetimes._thresholds

    def spy(hb_, first, last, n_nodes, **kw):
        seen["args"] = (hb_, first, last, n_nodes)
        return real(hb_, first, last, n_nodes, **kw)

    lifetimes._thresholds = spy
    try:
        lifetimes.compute_lifetimes(g, hb)
    finally:
        lifetimes._thresholds = real
    return seen["args"]


def _routes_agree(g, hb) -> None:
    args = _tables(g, hb)
    sparse = lifetimes._thresholds(*args, route="sparse")
    for route in ("dense", "auto"):
        got = lifetimes._thresholds(*args, route=route)
        for want, have in zip(sparse, got):
            assert want.dtype == have.dtype and np.array_equal(want, have), route


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_threshold_routes_agree_on_random_graphs(data):
    """The dense pass (every pair looked up in a per-stream table, reduced per buffer) gives the sparse pass's
    ``visible`` and ``live_from`` cell for cell, on hypothesis graphs (views, in-place pairs, inputs, outputs,
    zero sizes) under random schedules."""
    g = data.draw(graphs(max_nodes=12))
    order, stream_of = data.draw(schedules(g, max_streams=5))
    _routes_agree(g, build_happens_before(g, schedule_with_events(g, order, stream_of)))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 160), streams=st.sampled_from([1, 2, 3, 7, 64, 300]), seed=st.integers(0, 10**6),
       spread=st.sampled_from([None, 1, 2]))
def test_threshold_routes_agree_on_dealt_dags(n, streams, seed, spread):
    """Random DAGs dealt over up to 300 streams (some left empty where ``spread`` deals over one or two), so the
    blocks of ``_dense_passes`` hold streams that are not consecutive too."""
    g = random_dag(n, seed=seed, window=8)
    _routes_agree(g, build_happens_before(g, _dealt(g, streams, seed, spread)))


def test_threshold_routes_agree_on_chains_and_layers(monkeypatch):
    """Independent chains on streams of their own (the sparse route's shape) and a transformer dealt over 32
    streams, with blocks of one and of three streams."""
    for cells in (1, 3 * 400):
        monkeypatch.setattr(lifetimes, "DENSE_BLOCK_CELLS", cells)
        g = chains_graph(40)
        _routes_agree(g, build_happens_before(g, _dealt(g, 64, 1)))
        g = transformer_graph(6, seed=2)
        _routes_agree(g, build_happens_before(g, _dealt(g, 32, 2)))


def _problem(g, schedule):
    hb = build_happens_before(g, schedule)
    return buffer_problem(g, hb, lifetimes.compute_lifetimes(g, hb), clique=False)


def _one_against_many_agree(p) -> None:
    everyone = np.arange(len(p), dtype=np.int64)
    for u in range(len(p)):
        want = p._conflict_mask(np.full(len(p), u, dtype=np.int64), everyone)
        assert np.array_equal(p._conflicts_of(u, everyone), want), u


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_conflicts_of_one_buffer_is_the_pairwise_mask(data):
    """``BufferProblem._conflicts_of(u, b)`` (the dense clique search's test) answers as ``_conflict_mask`` of the
    pairs ``(u, b[k])``: inputs, outputs, in-place pairs, empty intervals, zero sizes, on several streams."""
    g = data.draw(graphs(max_nodes=12))
    order, stream_of = data.draw(schedules(g, max_streams=4))
    _one_against_many_agree(_problem(g, schedule_with_events(g, order, stream_of)))


def test_conflicts_of_one_buffer_on_dealt_dags():
    """The same on random DAGs dealt over 7 and 300 streams (many columns per buffer on both sides)."""
    for streams, seed in ((7, 3), (300, 4)):
        g = random_dag(150, seed=seed, window=12)
        _one_against_many_agree(_problem(g, _dealt(g, streams, seed)))


def test_dense_clique_bound_is_unchanged():
    """The dense clique search (``_dense_clique``, past ``max_pairs``) finds the bound the pairwise mask found: the
    search with ``_conflicts_of`` swapped back for the general mask gives the same number."""
    g = random_dag(400, seed=5, window=16)
    p = _problem(g, _dealt(g, 64, 5))
    fast = problem_mod.clique_lower_bound(p, max_pairs=0)

    class Slow(type(p)):
        def _conflicts_of(self, u, b):
            return self._conflict_mask(np.full(len(b), u, dtype=np.int64), b)

    slow = dataclasses.replace(p)
    object.__setattr__(slow, "__class__", Slow)
    assert problem_mod.clique_lower_bound(slow, max_pairs=0) == fast > 0


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 60), S=st.sampled_from([1, 2, 5, 17, 40, 70]), seed=st.integers(0, 10**6))
def test_verifier_clocks_are_the_naive_vector_clocks(n, S, seed):
    """The verifier's shared numpy clocks (``verify._clocks``, read through ``_clock_reader``) count, for every node
    and stream, what a full vector clock per node counts: its stream's last clock joined with every node it waits
    on (the joins of up to 70 streams take over, share or copy clocks)."""
    rng = random.Random(seed)
    stream = [rng.randrange(S) for _ in range(n)]
    by_pos = list(range(n))
    waits = {v: rng.sample(range(v), rng.randint(0, min(v, 6))) for v in range(1, n) if rng.random() < 0.7}
    idx, rep = verify_mod._clocks(by_pos, stream, waits, list(range(n)), S)
    at = verify_mod._clock_reader(stream, idx, rep)
    full: list[list[int]] = []
    tip = [[0] * S for _ in range(S)]
    for v in by_pos:
        c = list(tip[stream[v]])
        for a in waits.get(v, ()):
            c = [max(x, y) for x, y in zip(c, full[a])]
        c[stream[v]] += 1
        full.append(c)
        tip[stream[v]] = c
    for v in range(n):
        assert idx[v] == full[v][stream[v]]
        assert [at(v, t) for t in range(S)] == full[v], v
