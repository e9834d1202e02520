"""Greedy best-fit in issue order — ggml's graph allocator, made safe for several streams.

ggml frees a block right after its last reader *in the serial order*. Here a block returns to the
pool for buffer ``i`` only if its owner does not conflict with ``i``: for multi-stream problems that
means every access of the owner happens-before every access of ``i`` (the problem's HB order), so a
reader still running on another stream keeps its bytes. In-place pairs (``problem.inplace``) take
the input's offset when the input is free for them and large enough.

How each buffer's blocks are found follows the problem's density, with the same placements every
way (tests/test_scale.py): the live list when few buffers are live at once; an incremental
``Occupancy`` of the live blocks on dense interval problems; on multi-stream problems the
conflicting pairs listed in bulk, or, when so many intervals overlap that listing them would be
quadratic (one node with thousands of outputs), a sweep stream by stream.
"""

from __future__ import annotations

import heapq

import numpy as np

from .._gc import paused
from ..problem import BufferProblem, Solution, Status, arena_of
from .options import SolveOptions
from .placement import Occupancy, best_fit, fits_at

#: interval problems with more overlapping pairs than this per buffer keep an ``Occupancy``
DENSE_OVERLAPS = 16
#: multi-stream problems with more overlapping pairs than this, and than DENSE_HB_PER_BUFFER per
#: buffer, sweep stream by stream: listing the pairs costs more than one Occupancy per stream
DENSE_HB_PAIRS = 4_000_000
DENSE_HB_PER_BUFFER = 64
INF = 1 << 62


@paused
def solve(problem: BufferProblem, options: SolveOptions = SolveOptions()) -> Solution:
    n = len(problem)
    sizes = problem.sizes.tolist()
    offsets = [0] * n
    inplace_of = {out: inp for out, inp in problem.inplace}
    order = problem.sweep_order().tolist()
    if problem.order is None:
        dense = problem.overlap_count() > DENSE_OVERLAPS * n
        (_sweep_intervals if dense else _sweep_live)(problem, order, sizes, offsets, inplace_of)
    else:
        times = _stream_times(problem) if problem.overlap_count() > max(DENSE_HB_PAIRS, DENSE_HB_PER_BUFFER * n) else None
        if times is not None:
            _sweep_streams(problem, times, order, sizes, offsets, inplace_of)
        else:
            _sweep_conflicts(problem, order, sizes, offsets, inplace_of)
    off = np.asarray(offsets, dtype=np.int64)
    return Solution(off, arena_of(problem, off), "greedy", Status.HEURISTIC, int(problem.lower_bound or 0))


def _sweep_live(problem: BufferProblem, order: list[int], sizes: list[int], offsets: list[int],
                inplace_of: dict[int, int]) -> None:
    """Interval conflicts with few buffers live at once: each buffer's blocks are the live ones (its
    in-place partners aside), listed; cheaper than an ``Occupancy`` when the lists are short."""
    compatible = problem.compatible
    alignment = problem.alignment
    live: dict[int, None] = {}
    for i, ended in _in_time_order(problem, order, sizes):
        for j in ended:
            live.pop(j, None)
        size = sizes[i]
        if compatible:
            blocks = [(offsets[j], offsets[j] + sizes[j]) for j in live if (min(i, j), max(i, j)) not in compatible]
        else:
            blocks = [(offsets[j], offsets[j] + sizes[j]) for j in live]
        src = inplace_of.get(i)
        if src is not None and size <= sizes[src] and fits_at(blocks, offsets[src], size):
            offsets[i] = offsets[src]
        else:
            offsets[i] = best_fit(blocks, size, alignment)
        live[i] = None


def _place(occ: Occupancy, src: int | None, size: int, sizes: list[int], offsets: list[int]) -> int:
    """Over its in-place input ``src`` when those bytes are free for it, else the best fit."""
    if src is not None and size <= sizes[src] and occ.fits_at(offsets[src], size):
        return offsets[src]
    return occ.best_fit(size)


def _in_time_order(problem: BufferProblem, order: list[int], sizes: list[int]):
    """Each non-empty buffer in placement order, with the buffers whose intervals ended before it starts
    (intervals are half-open). The caller places a buffer before asking for the next one."""
    lower = problem.lower.tolist()
    upper = problem.upper.tolist()
    active: list[tuple[int, int]] = []  # heap of (upper, i)
    for i in order:
        if sizes[i] == 0:
            continue
        ended = []
        while active and active[0][0] <= lower[i]:
            ended.append(heapq.heappop(active)[1])
        yield i, ended
        heapq.heappush(active, (upper[i], i))


def _sweep_intervals(problem: BufferProblem, order: list[int], sizes: list[int], offsets: list[int],
                     inplace_of: dict[int, int]) -> None:
    """Interval conflicts: every live buffer blocks, so the live blocks are one ``Occupancy``.

    Blocks enter when placed and leave when their interval ends; an in-place partner (a compatible
    pair) leaves for the one query it may overlap. O(n log n) however many buffers are live at once.
    """
    partners: dict[int, list[int]] = {}
    for a, b in problem.compatible:
        partners.setdefault(a, []).append(b)
        partners.setdefault(b, []).append(a)
    occ = Occupancy(problem.alignment)
    live: set[int] = set()
    for i, ended in _in_time_order(problem, order, sizes):
        for j in ended:
            live.discard(j)
            occ.remove(offsets[j], offsets[j] + sizes[j])
        size = sizes[i]
        away = [j for j in partners.get(i, ()) if j in live]
        for j in away:
            occ.remove(offsets[j], offsets[j] + sizes[j])
        offsets[i] = _place(occ, inplace_of.get(i), size, sizes, offsets)
        for j in away:
            occ.add(offsets[j], offsets[j] + sizes[j])
        occ.add(offsets[i], offsets[i] + size)
        live.add(i)


def _sweep_conflicts(problem: BufferProblem, order: list[int], sizes: list[int], offsets: list[int],
                     inplace_of: dict[int, int]) -> None:
    """HB-filtered conflicts: the blocks of each buffer are its conflicting buffers placed before it,
    which ``conflict_pairs`` lists in bulk (the live buffers its accesses are ordered with drop out)."""
    a, b = problem.conflict_pairs()  # a placed before b
    o = np.argsort(b, kind="stable")
    a, b = a[o], b[o]
    bounds = np.searchsorted(b, np.arange(len(sizes) + 1), side="left").tolist()
    earlier = a.tolist()
    alignment = problem.alignment
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        blocks = [(offsets[j], offsets[j] + sizes[j]) for j in earlier[bounds[i]:bounds[i + 1]]]
        src = inplace_of.get(i)
        if src is not None and size <= sizes[src] and fits_at(blocks, offsets[src], size):
            offsets[i] = offsets[src]
        else:
            offsets[i] = best_fit(blocks, size, alignment)


def _stream_times(problem: BufferProblem) -> tuple[np.ndarray, np.ndarray] | None:
    """``(first, seen)``: per buffer and stream, the time of its first access there and the time
    from which that stream has seen all of its accesses (INF: none / never), or None when the
    problem lacks stream times or they disagree with its intervals (then ``_sweep_conflicts``)."""
    o = problem.order
    if o is None or o.stream_time is None or o.last_time is None or not (problem.upper > problem.lower).all():
        return None
    n, S = o.first.shape
    first = np.full((n, S), INF, dtype=np.int64)
    seen = np.full((n, S), INF, dtype=np.int64)
    for s, times in enumerate(o.stream_time):
        m = len(times)
        if m == 0:
            continue
        f, v = o.first[:, s], o.visible[:, s]
        first[:, s] = np.where(f < m, times[np.minimum(f, m - 1)], INF)
        seen[:, s] = np.where(v < m, times[np.minimum(v, m - 1)], INF)
    seen[o.has_end] = INF
    regular = ~o.has_start & (first.min(axis=1) < INF)
    # what the sweep relies on: a buffer's first access is its interval's start, and no stream sees
    # all of a buffer's accesses before its last one (both hold for every graph's lifetimes)
    if not (first.min(axis=1)[regular] == problem.lower[regular]).all():
        return None
    if not (seen > o.last_time[:, None]).all() or not (o.last_time[regular] >= problem.lower[regular]).all():
        return None
    return first, seen


def _sweep_streams(problem: BufferProblem, times: tuple[np.ndarray, np.ndarray], order: list[int], sizes: list[int],
                   offsets: list[int], inplace_of: dict[int, int]) -> None:
    """HB-filtered conflicts when too many pairs overlap to list them (one node with thousands of
    outputs on several streams): the same blocks as ``_sweep_conflicts``, found stream by stream.

    Buffer ``j`` placed before ``i`` blocks it iff on some stream ``s`` that ``i`` accesses, ``s``
    has not seen all of ``j``'s accesses by ``i``'s first access there (``seen[j, s] > first[i, s]``).
    On the stream of ``i``'s first access that is "``j`` still live on ``s`` now", so each stream keeps
    its live blocks in an ``Occupancy`` (blocks leave when the stream has seen them). The few blocks
    already gone there but not yet seen where ``i`` is accessed later come from a heap per pair of
    streams, keyed by when the later stream sees them, read only above ``i``'s threshold.
    """
    first, seen = times   # _stream_times(problem)
    o = problem.order
    assert o is not None
    n, S = first.shape
    lower = problem.lower.tolist()
    upper = problem.upper.tolist()
    regular = (~o.has_start & (first.min(axis=1) < INF)).tolist()
    home = first.argmin(axis=1).tolist()
    first_l = first.tolist()
    seen_l = seen.tolist()
    need = [[False] * S for _ in range(S)]  # (stream of first access, a later stream) pairs in use
    for i in np.flatnonzero(((first < INF).sum(axis=1) > 1) & np.asarray(regular)).tolist():
        for s in range(S):
            if first_l[i][s] < INF and s != home[i]:
                need[home[i]][s] = True
    partners: dict[int, list[int]] = {}
    for a, b in problem.compatible:
        partners.setdefault(a, []).append(b)
        partners.setdefault(b, []).append(a)
    occ = [Occupancy(problem.alignment) for _ in range(S)]
    expiry: list[list[tuple[int, int]]] = [[] for _ in range(S)]
    later: dict[tuple[int, int], list[tuple[int, int]]] = {}  # max-heaps of (-seen[j, s], j)
    placed = np.zeros(n, dtype=bool)
    alignment = problem.alignment
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        now = lower[i]
        for s in range(S):
            heap = expiry[s]
            while heap and heap[0][0] <= now:
                d, j = heapq.heappop(heap)
                occ[s].remove(offsets[j], offsets[j] + sizes[j])
                if upper[j] > d:  # gone from s, maybe not yet seen by a stream accessed later
                    sj = seen_l[j]
                    for t in range(S):
                        if need[s][t] and sj[t] > d:
                            heapq.heappush(later.setdefault((s, t), []), (-sj[t], j))
        src = inplace_of.get(i)
        if not regular[i]:  # inputs and never-accessed buffers: list the placed ones it conflicts with
            near = np.flatnonzero(placed & (problem.upper > now))
            near = near[problem._conflict_mask(np.full(len(near), i), near)].tolist()
            blocks = [(offsets[j], offsets[j] + sizes[j]) for j in near]
            if src is not None and size <= sizes[src] and fits_at(blocks, offsets[src], size):
                offsets[i] = offsets[src]
            else:
                offsets[i] = best_fit(blocks, size, alignment)
        else:
            h = home[i]
            fi = first_l[i]
            extra: set[int] = set()
            for t in range(S):
                if t == h or fi[t] >= INF or not need[h][t]:
                    continue
                heap = later.get((h, t), ())
                stack = [0]
                while stack:  # every entry seen by t after i's first access on t
                    k = stack.pop()
                    if k < len(heap) and -heap[k][0] > fi[t]:
                        j = heap[k][1]
                        if upper[j] > now:
                            extra.add(j)
                        stack.append(2 * k + 1)
                        stack.append(2 * k + 2)
            here = occ[h]
            away = [j for j in partners.get(i, ()) if placed[j] and seen_l[j][h] > now and upper[j] > now]
            extra.difference_update(partners.get(i, ()))
            for j in away:
                here.remove(offsets[j], offsets[j] + sizes[j])
            for j in extra:
                here.add(offsets[j], offsets[j] + sizes[j])
            offsets[i] = _place(here, src, size, sizes, offsets)
            for j in extra:
                here.remove(offsets[j], offsets[j] + sizes[j])
            for j in away:
                here.add(offsets[j], offsets[j] + sizes[j])
        placed[i] = True
        si = seen_l[i]
        for s in range(S):
            occ[s].add(offsets[i], offsets[i] + size)
            heapq.heappush(expiry[s], (min(si[s], upper[i]), i))
