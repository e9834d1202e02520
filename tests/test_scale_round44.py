"""Round 44: greedy on a given schedule dealt over many streams, in memory near-linear in the buffers.

5,000 random-DAG nodes dealt over 1,024 streams took ~100 s and 2.6 GB in ``plan(graph, schedule, solver="greedy")``
(past 5 GB at 20,000): the seen sweep queued every (buffer, stream) pair a stream sees before it gave up, and the
stream-by-stream sweep then kept every placed buffer in an ``Occupancy`` of every stream. Now each stream lists only
the placed buffers it has not seen, when asked; the placements are the pairwise sweep's. Counted in bytes."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from memplan.benchmarks.scale import random_dag, transformer_graph
from memplan.lifetimes import buffer_problem, compute_lifetimes
from memplan.problem import find_collision
from memplan.schedule import build_happens_before, schedule_with_events
from memplan.solvers import greedy
from memplan.solvers.exact_pairs import inplace_targets


def _dealt(g, streams: int, seed: int = 0):
    """``g``'s nodes dealt at random over ``streams`` streams, with the events they need, as a buffer problem."""
    rng = random.Random(seed)
    order = [x.id for x in g.nodes]
    s = schedule_with_events(g, order, {x: rng.randrange(streams) for x in order})
    hb = build_happens_before(g, s)
    return buffer_problem(g, hb, compute_lifetimes(g, hb), clique=False)


def _pairwise(p) -> list[int]:
    offsets = [0] * len(p)
    greedy._sweep_conflicts(p, p.sweep_order().tolist(), p.sizes.tolist(), offsets, inplace_targets(p))
    return offsets


def test_dealt_over_1024_streams_greedy_memory_is_not_buffers_times_streams(monkeypatch):
    """604 buffers over 1,024 streams on the dense route (as 5,000 nodes take it): the peak was 16 MB (26 bytes a
    (buffer, stream) cell: seen dicts, queued pairs, an Occupancy per stream holding every buffer), now 2 MB."""
    p = _dealt(random_dag(600, seed=0), 1024)
    want = _pairwise(p)
    monkeypatch.setattr(greedy, "DENSE_HB_PAIRS", -1)
    monkeypatch.setattr(greedy, "DENSE_HB_PER_BUFFER", -1)
    tracemalloc.start()
    try:
        sol = greedy.solve(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * len(p) * 1024, peak
    assert sol.offsets.tolist() == want


def test_seen_sweep_gives_up_before_queueing_every_seen_pair():
    """``_seen_work_within`` counts the pairs the seen sweep would queue in bulk: past the budget it says no at
    once (it queued 3.9 million at 5,000 nodes before giving up), and the seen sweep gives up at the same budget."""
    p = _dealt(random_dag(300, seed=1), 256)
    sparse = greedy._sparse_stream_times(p)
    assert sparse is not None
    sizes, order = p.sizes.tolist(), p.sweep_order().tolist()
    pairs = greedy._seen_pairs(p, sparse, sizes)
    assert pairs > 10 * len(p)   # (this shape: streams see nearly every buffer)
    assert not greedy._seen_work_within(p, sparse, order, sizes, pairs - 1)
    assert not greedy._sweep_seen(p, sparse, order, sizes, [0] * len(p), {}, pairs - 1)


@pytest.mark.parametrize("shape,streams,seed", [("dag", 1024, 2), ("dag", 64, 3), ("dag", 5, 4), ("transformer", 32, 5)])
def test_stream_sweep_places_as_the_pairwise_sweep(shape, streams, seed):
    """The stream sweep, forced, gives the pairwise sweep's offsets (and a safe packing) on dealt schedules."""
    g = random_dag(250, seed=seed) if shape == "dag" else transformer_graph(8, seed=seed)
    p = _dealt(g, streams, seed)
    sparse = greedy._sparse_stream_times(p)
    assert sparse is not None
    offsets = [0] * len(p)
    greedy._sweep_streams(p, sparse, p.sweep_order().tolist(), p.sizes.tolist(), offsets,
                          inplace_targets(p))
    assert offsets == _pairwise(p)
    assert find_collision(p, offsets) is None
