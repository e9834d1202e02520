"""Session 34, scale: passes whose work grew faster than the graph, checked by counting that work (never by timing),
and against the code they replace where the result must not change."""

from __future__ import annotations

import numpy as np
from problems import ordered_inplace_chain

from memplan.problem import BufferProblem, find_collision
from memplan.solvers.exact_pairs import inplace_targets
from memplan.solvers.rejoin import rejoin_inplace


def test_rejoin_reads_each_pairs_conflicts_not_every_buffer(monkeypatch):
    """Each pair left apart scanned all n buffers and tested the time-overlapping byte sharers' conflicts (one
    ``_conflict_mask`` call per pair: n x pairs in all, 0.26 s of a 10,000-node transformer's 0.45 s default solve);
    now the conflict lists, which ``size`` has listed already, give each pair its output's conflicts."""
    p, sol = ordered_inplace_chain(600)
    calls = []
    real = BufferProblem._conflict_mask
    monkeypatch.setattr(BufferProblem, "_conflict_mask", lambda self, a, b: calls.append(len(a)) or real(self, a, b))
    got = rejoin_inplace(p, sol)
    assert got is not None and got.info["rejoined"] == 300
    assert find_collision(p, got.offsets) is None
    assert len(calls) <= 2   # listing the conflicting pairs (one chunk here); it was 300, one per pair


def test_rejoin_by_conflict_lists_runs_where_the_scan_was_over_its_bound(monkeypatch):
    """The bound was buffers x pairs apart (the scan's work), so from about 20,000 nodes of a transformer the pass
    joined no pair at all; by conflict lists its work is the conflicts read (none here) plus a look per pair."""
    from memplan.solvers import rejoin

    p, sol = ordered_inplace_chain(600)
    monkeypatch.setattr(rejoin, "REJOIN_WORK", 10_000)   # the scan's 600 x 300 is over it, the lists' 300 is not
    got = rejoin_inplace(p, sol)
    assert got is not None and got.info["rejoined"] == 300
    assert find_collision(p, got.offsets) is None


def _round_robin_problem(layers: int, streams: int) -> BufferProblem:
    """A transformer's buffer problem with its nodes dealt round robin over ``streams`` streams (events as needed)."""
    from memplan.benchmarks.scale import transformer_graph
    from memplan.lifetimes import buffer_problem, compute_lifetimes
    from memplan.schedule import build_happens_before, schedule_with_events

    g = transformer_graph(layers)
    order = [n.id for n in g.nodes]
    sched = schedule_with_events(g, order, {nid: k % streams for k, nid in enumerate(order)})
    hb = build_happens_before(g, sched)
    return buffer_problem(g, hb, compute_lifetimes(g, hb), clique=False)


def test_greedy_stream_sweep_fills_only_the_heaps_it_reads(monkeypatch):
    """``_sweep_streams`` pushed every buffer gone from a stream into the heap of every later stream at once
    (buffers x streams^2; 17.8 million entries, none read, on a 40,000-node transformer over 32 streams: 105 s and
    gigabytes). Now a heap takes them in when it is read, leaving out those no read can return: on this graph
    18,758 such pushes before (besides the 5,824 of the expiry heaps, one per buffer and stream), about a third
    now. Entries are counted by their key: the later heaps' keys are negative (``-seen``)."""
    from memplan.solvers import greedy

    p = _round_robin_problem(10, 32)
    real = greedy.heapq.heappush
    pushes = {"later": 0, "expiry": 0}

    def counting(heap, item):
        pushes["later" if item[0] < 0 else "expiry"] += 1
        real(heap, item)

    monkeypatch.setattr(greedy.heapq, "heappush", counting)
    times = greedy._sparse_stream_times(p)
    assert times is not None
    offsets = [0] * len(p)
    greedy._sweep_streams(p, times, p.sweep_order().tolist(), p.sizes.tolist(), offsets,
                          inplace_targets(p))
    monkeypatch.undo()
    assert pushes["expiry"] <= len(p) * 32   # (one per buffer and stream that sees it before its end, or one at its end)
    assert pushes["later"] <= 9000, pushes
    off = np.asarray(offsets, dtype=np.int64)
    assert find_collision(p, off) is None


def test_bench_scale_measures_the_session_34_shapes():
    """``memplan bench scale --transformer L --moe-blocks B`` (one case each, in-process): 20 L + 1 and 770 B nodes,
    every plan verified by the bench itself."""
    from memplan.benchmarks.scale import measure, moe_graph, transformer_graph

    assert len(transformer_graph(3).nodes) == 61
    assert len(moe_graph(1).nodes) == 770
    for kind, n in (("transformer", 3), ("moe256", 1)):
        row = measure(kind, n, "auto", streams=4)
        assert row["arena"] >= row["lower_bound"] > 0 and "verify_s" in row
