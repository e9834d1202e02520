"""Round 43: greedy's stream-by-stream sweep on a schedule dealt over many streams, in memory proportional to the
(buffer, stream) pairs that are accessed or seen, not buffers x streams."""

from __future__ import annotations

import random
import tracemalloc

from memplan.benchmarks.scale import random_dag
from memplan.lifetimes import buffer_problem, compute_lifetimes
from memplan.problem import find_collision
from memplan.schedule import build_happens_before, schedule_with_events
from memplan.solvers import greedy
from memplan.solvers.exact_pairs import inplace_targets


def _dealt_problem(n: int, streams: int, seed: int = 0):
    """``random_dag(n)``'s nodes dealt at random over ``streams`` streams, with the events they need."""
    g = random_dag(n, seed=seed)
    rng = random.Random(seed)
    order = [x.id for x in g.nodes]
    s = schedule_with_events(g, order, {x: rng.randrange(streams) for x in order})
    hb = build_happens_before(g, s)
    return buffer_problem(g, hb, compute_lifetimes(g, hb), clique=False)


def test_stream_sweep_memory_is_not_buffers_times_streams():
    """5,000 nodes dealt over 1,024 streams went down this sweep and kept a dense buffers x streams table of
    times twice (numpy and Python lists of ints) and a heap entry per buffer and stream: past 5 GB at 20,000
    nodes. Here 204 buffers x 1,024 streams: the peak was 46 MB (~220 bytes a cell); now it is the pairs
    that are really accessed or seen and the live blocks per stream, 5 MB, with the pairwise sweep's placements."""
    p = _dealt_problem(200, 1024)
    cells = len(p) * 1024
    order = p.sweep_order().tolist()
    offsets = [0] * len(p)
    tracemalloc.start()
    try:
        greedy._sweep_streams(p, greedy._sparse_stream_times(p), order, p.sizes.tolist(), offsets,
                              inplace_targets(p))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * cells, (peak, cells)   # (about 220 bytes a cell before, 23 now)
    pairwise = [0] * len(p)
    greedy._sweep_conflicts(p, order, p.sizes.tolist(), pairwise, inplace_targets(p))
    assert offsets == pairwise
    assert find_collision(p, offsets) is None
