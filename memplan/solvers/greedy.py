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
quadratic (one node with thousands of outputs), one Occupancy of the placed buffers less those the
buffer's stream has already seen (``_sweep_seen``: memory per accessed or seen (buffer, stream) pair, not
per buffer x stream), or, when many seen buffers stay live, a sweep stream by stream.
"""

from __future__ import annotations

import heapq

import numpy as np

from .._gc import paused
from ..problem import BufferProblem, Solution, Status, arena_of
from .options import SolveOptions
from .placement import (
    BULK_BLOCKS,
    ArenaOver,
    CappedOffsets,
    Occupancy,
    Without,
    best_fit,
    bulk_arrays,
    bulk_ok,
    fit_arrays,
    fits_at,
    fits_at_arrays,
)

#: interval problems with more overlapping pairs than this per buffer keep an ``Occupancy``
DENSE_OVERLAPS = 16
#: multi-stream problems with more overlapping pairs than this, and than DENSE_HB_PER_BUFFER per
#: buffer, are not listed pairwise (``_sweep_seen``, else stream by stream): listing them costs more
DENSE_HB_PAIRS = 4_000_000
DENSE_HB_PER_BUFFER = 64
INF = 1 << 62
#: ``_sweep_seen`` gives way to ``_sweep_streams`` past this many steps per (buffer, stream) pair, about
#: what the per-stream sweep's Occupancy updates cost
SEEN_WORK = 4


@paused
def solve(problem: BufferProblem, options: SolveOptions = SolveOptions(), *, over: int | None = None) -> Solution:
    """``over``: raise ``placement.ArenaOver`` once the arena is known to exceed that many bytes (for
    ``solvers.heuristics_over``: the same placements, stopped at the first buffer that ends past it)."""
    n = len(problem)
    sizes = problem.sizes.tolist()
    offsets = [0] * n if over is None else CappedOffsets(n, sizes, over)
    inplace_of = {out: inp for out, inp in problem.inplace}
    order = problem.sweep_order().tolist()
    if problem.order is None:
        dense = problem.overlap_count() > DENSE_OVERLAPS * n
        (_sweep_intervals if dense else _sweep_live)(problem, order, sizes, offsets, inplace_of)
    else:
        dense = problem.overlap_count() > max(DENSE_HB_PAIRS, DENSE_HB_PER_BUFFER * n)
        sparse = _sparse_stream_times(problem) if dense else None
        if sparse is None:
            _sweep_conflicts(problem, order, sizes, offsets, inplace_of)
        else:   # (a plain list: this sweep may give up and start over, its partial offsets prove nothing)
            seen_offsets = [0] * n
            budget = SEEN_WORK * n * max(problem.order.first.shape[1], 1)
            if _seen_work_within(problem, sparse, order, sizes, budget) and _sweep_seen(
                    problem, sparse, order, sizes, seen_offsets, inplace_of, budget):
                offsets[:] = seen_offsets
            else:   # too many buffers seen and still live: the sweep stream by stream
                _sweep_streams(problem, sparse, order, sizes, offsets, inplace_of)
    off = np.asarray(offsets, dtype=np.int64)
    arena = arena_of(problem, off)
    if over is not None and arena > over:
        raise ArenaOver(-1)
    return Solution(off, arena, "greedy", Status.HEURISTIC, int(problem.lower_bound or 0))


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


def _place(occ: Occupancy | Without, src: int | None, size: int, sizes: list[int], offsets: list[int]) -> int:
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
    bulk = bulk_arrays(problem.sizes)
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        src = inplace_of.get(i)
        lo, hi = bounds[i], bounds[i + 1]
        if bulk is not None and hi - lo >= BULK_BLOCKS:   # (the same offset, in numpy: ``fit_arrays``)
            off_arr, size_arr = bulk
            js = a[lo:hi]
            starts = off_arr[js]
            ends = starts + size_arr[js]
            if bulk_ok(ends):
                if src is not None and size <= sizes[src] and fits_at_arrays(starts, ends, offsets[src], size):
                    offsets[i] = off_arr[i] = offsets[src]
                else:
                    offsets[i] = off_arr[i] = fit_arrays(starts, ends, size, alignment, best=True)
                continue
        blocks = [(offsets[j], offsets[j] + sizes[j]) for j in earlier[lo:hi]]
        if src is not None and size <= sizes[src] and fits_at(blocks, offsets[src], size):
            offsets[i] = offsets[src]
        else:
            offsets[i] = best_fit(blocks, size, alignment)
        if bulk is not None:
            bulk[0][i] = offsets[i]



def _sparse_stream_times(problem: BufferProblem):
    """What ``_sweep_streams`` reads: per buffer the streams that access it (``first``, as a dict {stream: time})
    and the streams that come to see all of its accesses (``seen``), its home stream (that of its first access)
    and whether it is regular; or None when the problem lacks stream times or they disagree with its intervals
    (then ``_sweep_conflicts``). Memory is proportional to those pairs, not buffers x streams: on 1024 streams
    dense tables took gigabytes for a graph of independent branches."""
    o = problem.order
    if o is None or o.stream_time is None or o.last_time is None or not (problem.upper > problem.lower).all():
        return None
    n, S = o.first.shape
    lens = np.array([len(t) for t in o.stream_time], dtype=np.int64)
    base = np.concatenate([[0], np.cumsum(lens)])[:-1]
    times = np.concatenate(o.stream_time) if S else np.zeros(0, dtype=np.int64)
    fb, fs = np.nonzero(o.first < lens)  # row-major: by buffer, then stream
    fv = times[base[fs] + o.first[fb, fs]] if len(fb) else fb
    vb, vs = np.nonzero((o.visible < lens) & ~o.has_end[:, None])
    vv = times[base[vs] + o.visible[vb, vs]] if len(vb) else vb
    by = np.lexsort((fs, fv, fb))  # by buffer, time, stream: each buffer's first entry is its home (argmin)
    fb_o = fb[by]
    head = by[np.concatenate([[True], fb_o[1:] != fb_o[:-1]])] if len(by) else by
    home = np.zeros(n, dtype=np.int64)
    fmin = np.full(n, INF, dtype=np.int64)
    home[fb[head]] = fs[head]
    fmin[fb[head]] = fv[head]
    regular = ~o.has_start & (fmin < INF)
    # what the sweep relies on, on the entries that are not INF (an INF entry passes them): a buffer's first
    # access is its interval's start, and no stream sees all of a buffer's accesses before its last one
    if not (fmin[regular] == problem.lower[regular]).all():
        return None
    if not (vv > o.last_time[vb]).all() or not (o.last_time[regular] >= problem.lower[regular]).all():
        return None
    first: list[dict[int, int]] = [{} for _ in range(n)]
    for b, s, t in zip(fb.tolist(), fs.tolist(), fv.tolist()):
        first[b][s] = t
    seen: list[dict[int, int]] = [{} for _ in range(n)]
    for b, s, t in zip(vb.tolist(), vs.tolist(), vv.tolist()):
        seen[b][s] = t
    return first, seen, home.tolist(), regular.tolist()


def _sweep_seen(problem: BufferProblem, sparse, order: list[int], sizes: list[int], offsets: list[int],
                inplace_of: dict[int, int], budget: int) -> bool:
    """``_sweep_streams``'s blocks, from one ``Occupancy`` of every placed buffer whose interval is not over
    less the few that do not block: memory and time proportional to the (buffer, stream) pairs that are
    accessed or seen, not buffers x streams. Returns False (offsets partly written) once more than
    ``budget`` steps went into those few; the caller then sweeps stream by stream.

    Placed buffer ``j`` (``upper[j] > now``) blocks ``i`` unless it is ``i``'s in-place partner or it
    precedes ``i``: every stream ``t`` that ``i`` accesses has seen all of ``j`` by ``i``'s first access
    there (``seen[j, t] <= first[i, t]``). On ``i``'s home stream that first access is now, so the
    buffers that may precede ``i`` are those its home stream has seen by now (``seen_by``, filled as the
    sweep reaches each seen time); each is tested on ``i``'s other streams and, if it precedes ``i``,
    left out of the Occupancy for ``i``'s query (``placement.Without``: read around, not removed and put
    back, which was two index updates per seen buffer and per placement)."""
    first, seen, home, regular = sparse
    n = len(sizes)
    lower = problem.lower.tolist()
    upper = problem.upper.tolist()
    partners: dict[int, list[int]] = {}
    for a, b in problem.compatible:
        partners.setdefault(a, []).append(b)
        partners.setdefault(b, []).append(a)
    occ = Occupancy(problem.alignment)
    gone: list[tuple[int, int]] = []          # (upper, j): the interval of placed j ends
    arrive: list[tuple[int, int, int]] = []   # (seen time, j, stream): the stream has seen all of j
    seen_by: dict[int, list[int]] = {}        # stream -> placed buffers it has seen (some maybe over)
    placed = np.zeros(n, dtype=bool)
    block: list[tuple[int, int]] = [(0, 0)] * n   # (offset, end) of each placed buffer
    starts = problem.order.has_start.tolist()
    past_inputs = False   # a buffer that is not an input has been placed
    work = 0
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        now = lower[i]
        while gone and gone[0][0] <= now:
            j = heapq.heappop(gone)[1]
            occ.remove(offsets[j], offsets[j] + sizes[j])
        while arrive and arrive[0][0] <= now:
            _, j, s = heapq.heappop(arrive)
            seen_by.setdefault(s, []).append(j)
        src = inplace_of.get(i)
        if not regular[i] and starts[i] and not past_inputs and not any(placed[j] for j in partners.get(i, ())):
            # an input while only inputs are placed (the sweep takes buffers by lower, inputs at 0): nothing
            # precedes an input and it precedes no other input, so it conflicts with every placed buffer,
            # all of which ``occ`` holds: listing them (``_place_listed``) was quadratic in the inputs
            offsets[i] = _place(occ, src, size, sizes, offsets)
        elif not regular[i]:  # inputs and never-accessed buffers: list the placed ones it conflicts with
            offsets[i] = _place_listed(problem, i, placed, now, src, sizes, offsets)
        else:
            h = home[i]
            others = [(t, f) for t, f in first[i].items() if t != h]
            out: set[int] = set()
            known = seen_by.get(h)
            if known:
                known = [j for j in known if upper[j] > now]
                seen_by[h] = known
                work += len(known) * (1 + len(others))
                if work > budget:
                    return False
                if others:
                    out.update(j for j in known if all(seen[j].get(t, INF) <= f for t, f in others))
                else:   # accessed on its home stream only: everything that stream has seen precedes it
                    out.update(known)
            out.update(j for j in partners.get(i, ()) if placed[j] and upper[j] > now)
            # the query as if ``out`` were taken out of ``occ``, without taking it out and putting it back
            offsets[i] = _place(Without(occ, [block[j] for j in out]) if out else occ, src, size, sizes, offsets)
        placed[i] = True
        past_inputs = past_inputs or not starts[i]
        block[i] = (offsets[i], offsets[i] + size)
        occ.add(*block[i])
        heapq.heappush(gone, (upper[i], i))
        for s, t in seen[i].items():
            if t < upper[i]:
                heapq.heappush(arrive, (t, i, s))
    return True


def _seen_work_within(problem: BufferProblem, sparse, order: list[int], sizes: list[int], budget: int) -> bool:
    """Whether ``_sweep_seen`` stays within ``budget`` steps, without placing anything. Why: its steps (the
    placed buffers each one's home stream has seen and that are still live) follow from the intervals and
    the seen times alone, never from offsets, so they can be counted first; a sweep that gives up did all
    its placements (an ``Occupancy`` query per buffer) for nothing before the stream-by-stream sweep started
    over (on 20,000 graph inputs and outputs over 8 streams, two thirds of greedy's time)."""
    first, seen, home, regular = sparse
    lower = problem.lower.tolist()
    upper = problem.upper.tolist()
    arrive: list[tuple[int, int, int]] = []
    seen_by: dict[int, list[int]] = {}
    work = 0
    for i in order:
        if sizes[i] == 0:
            continue
        now = lower[i]
        while arrive and arrive[0][0] <= now:
            _, j, s = heapq.heappop(arrive)
            seen_by.setdefault(s, []).append(j)
        if regular[i]:
            h = home[i]
            known = seen_by.get(h)
            if known:
                known = [j for j in known if upper[j] > now]
                seen_by[h] = known
                work += len(known) * (1 + len(first[i]) - (h in first[i]))   # (``_sweep_seen``'s 1 + others)
                if work > budget:
                    return False
        up = upper[i]
        for s, t in seen[i].items():
            if t < up:
                heapq.heappush(arrive, (t, i, s))
    return True


def _place_listed(problem: BufferProblem, i: int, placed: np.ndarray, now: int, src: int | None,
                  sizes: list[int], offsets: list[int]) -> int:
    """Buffer ``i``'s offset from the placed buffers it conflicts with, listed (the streams' sweeps take
    inputs and never-accessed buffers this way): its in-place source's offset if it fits there, else the
    best fit."""
    size = sizes[i]
    near = np.flatnonzero(placed & (problem.upper > now))
    near = near[problem._conflict_mask(np.full(len(near), i), near)].tolist()
    blocks = [(offsets[j], offsets[j] + sizes[j]) for j in near]
    if src is not None and size <= sizes[src] and fits_at(blocks, offsets[src], size):
        return offsets[src]
    return best_fit(blocks, size, problem.alignment)


def _take_gone(later: dict[tuple[int, int], list[tuple[int, int]]], taken: dict[tuple[int, int], int],
               room: dict[tuple[int, int], int], gone: list[int], key: tuple[int, int], now: int,
               seen: list[dict[int, int]], upper: list[int]) -> list[tuple[int, int]]:
    """``_sweep_streams``' heap ``later[key]`` (key: a stream and a later one, ``(s, t)``), having taken in the
    buffers gone from ``s`` since it was last read: those still live that ``t`` has not seen by ``now``.

    Why read time: a buffer gone from ``s`` went into the heap of every later stream ``t`` at once, buffers x
    streams^2 pushes, most into heaps never read (a 40,000-node transformer on 32 streams: 17.8 million entries, none
    read; 105 s of greedy's time and gigabytes). The heap answers the same: ``now`` only grows and every buffer read
    later first accesses ``t`` at or after it, so the entries left out (ended, or seen by ``t`` by ``now``) were
    never returned; a heap too long for its live entries drops the ones that have become so."""
    heap = later.setdefault(key, [])
    t = key[1]
    for j in gone[taken.get(key, 0):]:
        v = seen[j].get(t, INF)
        if upper[j] > now and v > now:
            heapq.heappush(heap, (-v, j))
    taken[key] = len(gone)
    if len(heap) > room.get(key, PRUNE_ROOM):   # twice what was left last time: a prune's cost is amortised
        heap[:] = [e for e in heap if -e[0] > now and upper[e[1]] > now]
        heapq.heapify(heap)
        room[key] = 2 * len(heap) + PRUNE_ROOM
    return heap


#: a ``later`` heap of ``_sweep_streams`` drops its dead entries (``_take_gone``) from this length on, then from twice
#: the entries it kept on
PRUNE_ROOM = 64


def _sweep_streams(problem: BufferProblem, times, order: list[int], sizes: list[int],
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
    first, seen, home, regular = times   # _sparse_stream_times(problem)
    o = problem.order
    assert o is not None
    n, S = o.first.shape
    lower = problem.lower.tolist()
    upper = problem.upper.tolist()
    need: set[tuple[int, int]] = set()  # (stream of first access, a later stream) pairs in use (not streams^2 flags)
    for i in range(n):
        if regular[i] and len(first[i]) > 1:
            need.update((home[i], s) for s in first[i] if s != home[i])
    partners: dict[int, list[int]] = {}
    for a, b in problem.compatible:
        partners.setdefault(a, []).append(b)
        partners.setdefault(b, []).append(a)
    occ = [Occupancy(problem.alignment) for _ in range(S)]
    # a placed buffer leaves stream s's Occupancy once s has seen it or its interval ends. Those seen before the
    # end wait in s's heap ``expiry[s]``; the rest leave every other stream at once, at the end (``ending``).
    # Why: a heap entry per buffer and stream was buffers x streams tuples (gigabytes at 20,000 nodes on 1,024
    # streams); the Occupancies hold the same blocks at every query, so the placements are the same.
    expiry: list[list[tuple[int, int]]] = [[] for _ in range(S)]
    ending: list[tuple[int, int]] = []   # (upper, j): j leaves every stream that has not seen it before
    early: dict[int, list[int]] = {}     # j -> the streams that see all of j before its interval ends
    later: dict[tuple[int, int], list[tuple[int, int]]] = {}  # max-heaps of (-seen[j, s], j)
    # the buffers gone from each stream while live, in order; each later heap takes them in when it is read
    # (``_take_gone``): pushing each into every later stream's heap as it went cost buffers x streams^2
    gone: list[list[int]] = [[] for _ in range(S)]
    taken: dict[tuple[int, int], int] = {}   # how much of ``gone[s]`` the heap ``(s, t)`` has taken in
    room: dict[tuple[int, int], int] = {}    # the length at which the heap ``(s, t)`` drops its dead entries
    placed = np.zeros(n, dtype=bool)
    starts = o.has_start.tolist()
    inputs = Occupancy(problem.alignment)   # every placed buffer while all are inputs (see _sweep_seen)
    past_inputs = False
    streams = range(S)
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        now = lower[i]
        while ending and ending[0][0] <= now:
            j = heapq.heappop(ending)[1]
            block = (offsets[j], offsets[j] + sizes[j])
            skip = early.pop(j, ())
            for s in streams:
                if s not in skip:
                    occ[s].remove(*block)
        for s in streams:
            heap = expiry[s]
            while heap and heap[0][0] <= now:
                d, j = heapq.heappop(heap)
                occ[s].remove(offsets[j], offsets[j] + sizes[j])
                gone[s].append(j)   # gone from s while live, maybe not yet seen by a stream accessed later
        src = inplace_of.get(i)
        if not regular[i] and starts[i] and not past_inputs and not any(placed[j] for j in partners.get(i, ())):
            offsets[i] = _place(inputs, src, size, sizes, offsets)
        elif not regular[i]:  # inputs and never-accessed buffers: list the placed ones it conflicts with
            offsets[i] = _place_listed(problem, i, placed, now, src, sizes, offsets)
        else:
            h = home[i]
            fi = first[i]
            extra: set[int] = set()
            for t in sorted(fi):
                if t == h or (h, t) not in need:
                    continue
                heap = _take_gone(later, taken, room, gone[h], (h, t), now, seen, upper)
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
            away = [j for j in partners.get(i, ()) if placed[j] and seen[j].get(h, INF) > now and upper[j] > now]
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
        past_inputs = past_inputs or not starts[i]
        if not past_inputs:
            inputs.add(offsets[i], offsets[i] + size)
        for s in streams:
            occ[s].add(offsets[i], offsets[i] + size)
        up = upper[i]
        soon = [s for s, t in seen[i].items() if t < up]
        for s in soon:
            heapq.heappush(expiry[s], (seen[i][s], i))
        if len(soon) < S:
            heapq.heappush(ending, (up, i))
            if soon:
                early[i] = set(soon)
