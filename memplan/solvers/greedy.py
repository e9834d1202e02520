"""Greedy best-fit in issue order — ggml's graph allocator, made safe for several streams.

ggml frees a block right after its last reader *in the serial order*. Here a block returns to the
pool for buffer ``i`` only if its owner does not conflict with ``i``: for multi-stream problems that
means every access of the owner happens-before every access of ``i`` (the problem's HB order), so a
reader still running on another stream keeps its bytes. In-place pairs (``problem.inplace``) take
the offset that puts the output exactly on its input (``exact_pairs.inplace_targets``: the input root's offset plus
the pair's shift, where the input is a view at an offset) when those bytes are free (the output's root may reach past
its input's); a place that lies over a partner off its place is moved exactly onto one, or clear of them all
(``exact_pairs.ExactOrApart``), so the packing needs no repair.

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
from functools import partial

import numpy as np
from sortedcontainers import SortedList

from .._gc import paused
from ..problem import BufferProblem, Solution, Status, arena_of
from ..streamtable import accessed_cells
from .exact_pairs import ExactOrApart, inplace_targets, over_input
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
#: ``_sweep_seen`` gives way to ``_sweep_streams`` past this many steps (seen pairs queued, seen buffers tested)
#: per buffer and accessed (buffer, stream) pair: linear, since the stream sweep no longer costs buffers x streams
#: (a budget of 4 x buffers x streams let the seen sweep queue 3.9 million pairs on 5,000 nodes over 1,024 streams)
SEEN_WORK = 16
#: ``_sweep_streams`` keeps a stream's unseen buffers as an ``Occupancy`` once this many are live (``_Unseen``), while
#: all of them hold at most OCC_CAP blocks per buffer when one is built (8: every stream of ``streams="auto"``); a
#: buffer is fitted there while its blocks from other streams are at most 1/OCC_EXTRA of its home stream's
OCC_MIN = 256
OCC_CAP = 8
OCC_EXTRA = 4
#: ... once it had this many sets that large fitted without one: an index update costs some 30 times a block listed
#: and fitted in numpy, so a stream home to fewer buffers (1,024 streams) would not pay its Occupancy back
OCC_PAYBACK = 32
#: ``_sweep_streams`` finds the blocks a buffer gets from one of its other streams ``t`` (those its home stream ``h``
#: has seen all of, ``t`` not) from a ``_Crossed`` index of the pair (h, t) once CROSS_PAYBACK queries of that pair
#: listed a set of ``t`` of CROSS_MIN buffers or more; at most CROSS_CAP pairs get one (once any has one, every buffer
#: placed reads its row of seen times, and is queued in the pairs of the streams that see it before its interval ends)
CROSS_MIN = 256
CROSS_PAYBACK = 8
CROSS_CAP = 64
#: a dense multi-stream problem is swept a second time with the buffers that start together grouped by stream
#: (``_grouped_order``) when its first arena is above the bound and the grouping moves at least one buffer in this many
GROUPED_MOVED = 8


@paused
def solve(problem: BufferProblem, options: SolveOptions = SolveOptions(), *, over: int | None = None) -> Solution:
    """``over``: raise ``placement.ArenaOver`` once the arena is known to exceed that many bytes (for
    ``solvers.heuristics_over``: the same placements, stopped at the first buffer that ends past it)."""
    n = len(problem)
    sizes = problem.sizes.tolist()
    offsets = [0] * n if over is None else CappedOffsets(n, sizes, over)
    inplace_of = inplace_targets(problem)
    order = problem.sweep_order().tolist()
    if problem.order is None:
        dense = problem.overlap_count() > DENSE_OVERLAPS * n
        (_sweep_intervals if dense else _sweep_live)(problem, order, sizes, offsets, inplace_of)
    else:
        dense = problem.overlap_count() > max(DENSE_HB_PAIRS, DENSE_HB_PER_BUFFER * n)
        sparse = _sparse_stream_times(problem) if dense else None
        if sparse is None:
            _sweep_conflicts(problem, order, sizes, offsets, inplace_of)
        else:
            offsets = _dense_best(problem, sparse, order, sizes, inplace_of, over)
    off = np.asarray(offsets, dtype=np.int64)
    arena = arena_of(problem, off)
    if over is not None and arena > over:
        raise ArenaOver(-1)
    return Solution(off, arena, "greedy", Status.HEURISTIC, int(problem.lower_bound or 0))


def _sweep_dense(problem: BufferProblem, sparse: StreamTimes, order: list[int], sizes: list[int], offsets: list[int],
                 inplace_of: dict[int, tuple[int, int]], seen: bool = True) -> bool:
    """The sweeps of a multi-stream problem too dense to list its pairs: ``_sweep_seen`` where its work stays within
    budget (and ``seen``), else ``_sweep_streams`` (the same placements); whether ``_sweep_seen`` placed them."""
    seen_offsets = [0] * len(sizes)   # (a plain list: this sweep may give up and start over, its partial offsets prove nothing)
    budget = SEEN_WORK * (len(sizes) + sparse.accessed)
    if seen and _seen_work_within(problem, sparse, order, sizes, budget) and _sweep_seen(
            problem, sparse, order, sizes, seen_offsets, inplace_of, budget):
        offsets[:] = seen_offsets
        return True
    # too many buffers seen and still live: the sweep stream by stream
    _sweep_streams(problem, sparse, order, sizes, offsets, inplace_of)
    return False


def _dense_best(problem: BufferProblem, sparse: StreamTimes, order: list[int], sizes: list[int],
                inplace_of: dict[int, tuple[int, int]], over: int | None) -> list[int]:
    """``_sweep_dense`` in ``order``, then, where that arena is above the proven bound, in ``_grouped_order`` too: the
    offsets of the smaller arena (the first on a tie). With ``over``: the first sweep that ends within ``over`` bytes
    (``ArenaOver`` when none does: the smaller arena would be over too).

    Why: a fork starts thousands of buffers at once, and ``order`` takes them by index, so each stream's branches
    lie spread among every other stream's; the bytes a branch frees are then reusable only in scattered holes of
    its own stream, and results that do not fit one go on top. ``plan(wide_graph(20000), streams="auto")``: 0.87 %
    above its proven bound, 0.05 % with the buffers that start together grouped by the stream that reads them last."""
    n = len(sizes)
    bound = int(problem.lower_bound or 0)
    best: list[int] | None = None
    best_arena = 0
    seen = True   # (the second sweep goes stream by stream where the first did: its seen work is nearly the same)
    for k in range(2):
        if k:
            if best is not None and (over is not None or best_arena <= bound):
                break
            grouped = _grouped_order(problem, sparse, order)
            if grouped is None:
                break
            order = grouped
        offsets = [0] * n if over is None else CappedOffsets(n, sizes, over)
        try:
            seen = _sweep_dense(problem, sparse, order, sizes, offsets, inplace_of, seen)
        except ArenaOver:
            continue
        arena = arena_of(problem, np.asarray(offsets, dtype=np.int64))
        if over is not None and arena > over:
            continue
        if best is None or arena < best_arena:
            best, best_arena = list(offsets), arena
    if best is None:
        raise ArenaOver(-1)
    return best


def _grouped_order(problem: BufferProblem, sparse: StreamTimes, order: list[int]) -> list[int] | None:
    """``order`` (by start, then index) with the buffers that start together taken by the stream that first accesses
    them last (the highest of ``sparse.first``; the stream whose reads free them), then by their last access, then by
    index; None where that moves fewer than one buffer in GROUPED_MOVED. Why not for fewer: the second sweep costs as
    much as the first, and a few buffers starting together (a node's outputs) seldom change its arena
    (``layered_graph(8000)`` on 1,024 streams: the same arena, 19.5 s of sweep -> 35.7 s). Deterministic, from the
    problem alone."""
    o = problem.order
    assert o is not None and o.last_time is not None
    n = len(problem)
    last_stream = np.array([max(f.items(), key=_time_then_stream)[0] if f else -1 for f in sparse.first],
                           dtype=np.int64)
    grouped = np.lexsort((np.arange(n), o.last_time, last_stream, problem.lower))
    moved = int(np.count_nonzero(grouped != np.asarray(order, dtype=np.int64)))
    return grouped.tolist() if moved * GROUPED_MOVED >= n and moved else None


def _time_then_stream(item: tuple[int, int]) -> tuple[int, int]:
    return item[1], item[0]


def _sweep_live(problem: BufferProblem, order: list[int], sizes: list[int], offsets: list[int],
                inplace_of: dict[int, tuple[int, int]]) -> None:
    """Interval conflicts with few buffers live at once: each buffer's blocks are the live ones (its
    in-place partners aside), listed; cheaper than an ``Occupancy`` when the lists are short."""
    compatible = problem.compatible
    alignment = problem.alignment
    guard = ExactOrApart.of(problem, order, best=True)
    live: dict[int, None] = {}
    for i, ended in _in_time_order(problem, order, sizes):
        for j in ended:
            live.pop(j, None)
        size = sizes[i]
        if compatible:
            blocks = [(offsets[j], offsets[j] + sizes[j]) for j in live if (min(i, j), max(i, j)) not in compatible]
        else:
            blocks = [(offsets[j], offsets[j] + sizes[j]) for j in live]
        at = over_input(inplace_of.get(i), size, sizes, offsets)
        if at is None or not fits_at(blocks, at, size):
            at = best_fit(blocks, size, alignment)
        offsets[i] = _mended(guard, i, at, offsets)
        live[i] = None


def _place(occ: Occupancy | Without, src: tuple[int, int] | None, size: int, sizes: list[int],
           offsets: list[int]) -> int:
    """Exactly over its in-place input (``src``: ``inplace_targets``) when those bytes are free for it, else the best
    fit."""
    at = over_input(src, size, sizes, offsets)
    if at is not None and occ.fits_at(at, size):
        return at
    return occ.best_fit(size)


def _mended(guard: ExactOrApart | None, i: int, at: int, offsets: list[int]) -> int:
    """``at``, or where ``guard`` moves it: exactly on a placed in-place partner or clear of them all, where ``at``
    overlaps one off its place (``exact_pairs.ExactOrApart``)."""
    return at if guard is None else guard.mend(i, at, offsets)


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
                     inplace_of: dict[int, tuple[int, int]]) -> None:
    """Interval conflicts: every live buffer blocks, so the live blocks are one ``Occupancy``.

    Blocks enter when placed and leave when their interval ends; an in-place partner (a compatible
    pair) leaves for the one query it may overlap. O(n log n) however many buffers are live at once.
    """
    partners: dict[int, list[int]] = {}
    for a, b in problem.compatible:
        partners.setdefault(a, []).append(b)
        partners.setdefault(b, []).append(a)
    occ = Occupancy(problem.alignment)
    guard = ExactOrApart.of(problem, order, best=True)
    live: set[int] = set()
    for i, ended in _in_time_order(problem, order, sizes):
        for j in ended:
            live.discard(j)
            occ.remove(offsets[j], offsets[j] + sizes[j])
        size = sizes[i]
        away = [j for j in partners.get(i, ()) if j in live]
        for j in away:
            occ.remove(offsets[j], offsets[j] + sizes[j])
        offsets[i] = _mended(guard, i, _place(occ, inplace_of.get(i), size, sizes, offsets), offsets)
        for j in away:
            occ.add(offsets[j], offsets[j] + sizes[j])
        occ.add(offsets[i], offsets[i] + size)
        live.add(i)


def _sweep_conflicts(problem: BufferProblem, order: list[int], sizes: list[int], offsets: list[int],
                     inplace_of: dict[int, tuple[int, int]]) -> None:
    """HB-filtered conflicts: the blocks of each buffer are its conflicting buffers placed before it,
    which ``conflict_pairs`` lists in bulk (the live buffers its accesses are ordered with drop out)."""
    a, b = problem.conflict_pairs()  # a placed before b
    o = np.argsort(b, kind="stable")
    a, b = a[o], b[o]
    bounds = np.searchsorted(b, np.arange(len(sizes) + 1), side="left").tolist()
    earlier = a.tolist()
    alignment = problem.alignment
    bulk = bulk_arrays(problem.sizes)
    guard = ExactOrApart.of(problem, order, best=True)
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        at = over_input(inplace_of.get(i), size, sizes, offsets)
        lo, hi = bounds[i], bounds[i + 1]
        if bulk is not None and hi - lo >= BULK_BLOCKS:   # (the same offset, in numpy: ``fit_arrays``)
            off_arr, size_arr = bulk
            js = a[lo:hi]
            starts = off_arr[js]
            ends = starts + size_arr[js]
            if bulk_ok(ends):
                if at is None or not fits_at_arrays(starts, ends, at, size):
                    at = fit_arrays(starts, ends, size, alignment, best=True)
                offsets[i] = off_arr[i] = _mended(guard, i, at, offsets)
                continue
        blocks = [(offsets[j], offsets[j] + sizes[j]) for j in earlier[lo:hi]]
        if at is None or not fits_at(blocks, at, size):
            at = best_fit(blocks, size, alignment)
        offsets[i] = _mended(guard, i, at, offsets)
        if bulk is not None:
            bulk[0][i] = offsets[i]



class StreamTimes:
    """What the many-stream sweeps read of a problem's stream times, without a (buffer, stream) table of their own.

    ``first[b]``: {stream: time of ``b``'s first access there} (the pairs really accessed, a few a buffer);
    ``home[b]``: the stream of its first access; ``regular[b]``: it is not an input and is accessed. When a stream
    sees all of ``b`` (``seen``) is read from the problem's ``visible`` table on demand, a row or a column at a
    time. Why: that relation holds nearly every (buffer, stream) pair once streams synchronise (5,000 nodes
    dealt over 1,024 streams: 3.9 million), and dicts and heap entries of it were gigabytes."""

    __slots__ = ("first", "home", "regular", "accessed", "_visible", "_lens", "_base", "_times", "_end", "_cols")

    def __init__(self, problem: BufferProblem, first: list[dict[int, int]], home: list[int], regular: list[bool],
                 accessed: int) -> None:
        o = problem.order
        assert o is not None and o.stream_time is not None
        self.first, self.home, self.regular, self.accessed = first, home, regular, accessed
        self._visible = o.visible
        self._lens = np.array([len(t) for t in o.stream_time], dtype=np.int64)
        # stream s's times at _base[s] .., then INF (position ``len``: never seen there)
        self._base = np.concatenate([[0], np.cumsum(self._lens + 1)])[:-1].astype(np.int64)
        self._times = np.concatenate([np.append(np.asarray(t, dtype=np.int64), INF) for t in o.stream_time]
                                     or [np.zeros(0, dtype=np.int64)])
        self._end = o.has_end
        self._cols: np.ndarray | None = None   # (``seen_col``'s table, made on its first call)

    def stream_times(self) -> np.ndarray:
        """Every stream's times, one after the other, each stream's followed by INF (read-only)."""
        view = self._times.view()
        view.flags.writeable = False
        return view

    def seen_row(self, b: int) -> np.ndarray:
        """When each stream has seen all of buffer ``b``'s accesses (INF: never; an output is never seen)."""
        if self._end[b]:
            return np.full(len(self._lens), INF, dtype=np.int64)
        return self._times[self._base + np.minimum(self._visible[b], self._lens)]

    def seen_rows(self, rows: np.ndarray) -> np.ndarray:
        """``seen_row`` of each buffer in ``rows`` (a 2-D array)."""
        out = self._times[self._base + np.minimum(self._visible[rows], self._lens)]
        out[self._end[rows]] = INF
        return out

    def seen_col(self, bs: np.ndarray, s: int) -> np.ndarray:
        """When stream ``s`` has seen all of each buffer in ``bs``."""
        cols = self._cols
        if cols is None:
            cols = self._cols = _seen_columns(self._visible, self._lens, self._end)
        return self._times[self._base[s] + cols[s][bs]]


def _seen_columns(visible: np.ndarray, lens: np.ndarray, end: np.ndarray | None = None, rows: int = 4096) -> np.ndarray:
    """``min(visible[b, s], lens[s])`` stream by stream, ``lens[s]`` (where stream ``s``'s times hold INF: never seen)
    for a buffer with ``end`` set: one contiguous row a stream, in the narrowest integer type that holds them (a byte a
    pair while no stream runs 256 nodes). Why: ``seen_col`` read a column of ``visible`` (a row a buffer) for each set
    of buffers a stream takes in, every entry a cache line of its own; on a 10-layer mesh over 1,024 streams those 11
    million scattered reads were a third of greedy's sweep."""
    n, S = visible.shape
    lo = min(int(visible.min()), 0) if visible.size else 0
    hi = int(lens.max()) if len(lens) else 0
    cols = np.empty((S, n), dtype=np.promote_types(np.min_scalar_type(lo), np.min_scalar_type(hi)))
    cap = lens.astype(visible.dtype) if hi <= np.iinfo(visible.dtype).max else None
    for a in range(0, n, rows):   # (in slices of rows: no whole-table temporary)
        part = visible[a:a + rows]
        cols[:, a:a + rows] = (np.minimum(part, cap) if cap is not None else np.minimum(part, lens)).T
    if end is not None and end.any():
        cols[:, end] = lens.astype(cols.dtype)[:, None]
    return cols


def _sparse_stream_times(problem: BufferProblem) -> StreamTimes | None:
    """What ``_sweep_streams`` and ``_sweep_seen`` read (``StreamTimes``), or None when the problem lacks stream
    times or they disagree with its intervals (then ``_sweep_conflicts``). Memory is proportional to the pairs
    accessed, not buffers x streams: on 1024 streams dense tables took gigabytes for a graph of independent
    branches, and the pairs seen (nearly all of them once streams synchronise) are read from ``visible``."""
    o = problem.order
    if o is None or o.stream_time is None or o.last_time is None or not (problem.upper > problem.lower).all():
        return None
    n, S = o.first.shape
    lens = np.array([len(t) for t in o.stream_time], dtype=np.int64)
    base = np.concatenate([[0], np.cumsum(lens)])[:-1]
    times = np.concatenate(o.stream_time) if S else np.zeros(0, dtype=np.int64)
    fb, fs, fq = accessed_cells(o.first, lens)   # by buffer, then stream
    fv = times[base[fs] + fq] if len(fb) else fb
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
    if not (o.last_time[regular] >= problem.lower[regular]).all():
        return None
    first: list[dict[int, int]] = [{} for _ in range(n)]
    for b, s, t in zip(fb.tolist(), fs.tolist(), fv.tolist()):
        first[b][s] = t
    st = StreamTimes(problem, first, home.tolist(), regular.tolist(), len(fb))
    for rows in _row_blocks(n, S):   # the earliest seen time of each buffer, a block of rows at a time
        if not (st.seen_rows(rows).min(axis=1, initial=INF) > o.last_time[rows]).all():
            return None
    return st


def _row_blocks(n: int, S: int, cells: int = 1 << 14):
    """Row ranges of an ``n`` x ``S`` table of about ``cells`` cells each: per-row work in numpy with bounded
    temporaries."""
    step = max(1, cells // max(S, 1))
    for lo in range(0, n, step):
        yield np.arange(lo, min(n, lo + step))


def _sweep_seen(problem: BufferProblem, sparse: StreamTimes, order: list[int], sizes: list[int], offsets: list[int],
                inplace_of: dict[int, tuple[int, int]], budget: int) -> bool:
    """``_sweep_streams``'s blocks, from one ``Occupancy`` of every placed buffer whose interval is not over
    less the few that do not block: memory and time proportional to the (buffer, stream) pairs that are
    accessed or seen, not buffers x streams. Returns False (offsets partly written) once more than
    ``budget`` steps (seen pairs queued and seen buffers tested) went into those few; the caller then sweeps
    stream by stream.

    Placed buffer ``j`` (``upper[j] > now``) blocks ``i`` unless it is ``i``'s in-place partner or it
    precedes ``i``: every stream ``t`` that ``i`` accesses has seen all of ``j`` by ``i``'s first access
    there (``seen[j, t] <= first[i, t]``). On ``i``'s home stream that first access is now, so the
    buffers that may precede ``i`` are those its home stream has seen by now (``seen_by``, filled as the
    sweep reaches each seen time); each is tested on ``i``'s other streams and, if it precedes ``i``,
    left out of the Occupancy for ``i``'s query (``placement.Without``: read around, not removed and put
    back, which was two index updates per seen buffer and per placement)."""
    first, home, regular = sparse.first, sparse.home, sparse.regular
    n = len(sizes)
    lower = problem.lower.tolist()
    upper = problem.upper.tolist()
    partners = _partners(problem)
    occ = Occupancy(problem.alignment)
    gone: list[tuple[int, int]] = []          # (upper, j): the interval of placed j ends
    arrive: list[tuple[int, int, int]] = []   # (seen time, j, stream): the stream has seen all of j
    seen_by: dict[int, list[int]] = {}        # stream -> placed buffers it has seen (some maybe over)
    placed = np.zeros(n, dtype=bool)
    block: list[tuple[int, int]] = [(0, 0)] * n   # (offset, end) of each placed buffer
    starts = problem.order.has_start.tolist()
    past_inputs = False   # a buffer that is not an input has been placed
    work = 0
    guard = ExactOrApart.of(problem, order, best=True)
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
            offsets[i] = _mended(guard, i, _place(occ, src, size, sizes, offsets), offsets)
        elif not regular[i]:  # inputs and never-accessed buffers: list the placed ones it conflicts with
            offsets[i] = _mended(guard, i, _place_listed(problem, i, placed, now, src, sizes, offsets), offsets)
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
                    ks = np.asarray(known, dtype=np.int64)
                    ok = np.ones(len(ks), dtype=bool)
                    for t, f in others:
                        ok &= sparse.seen_col(ks, t) <= f
                    out.update(ks[ok].tolist())
                else:   # accessed on its home stream only: everything that stream has seen precedes it
                    out.update(known)
            out.update(j for j in partners.get(i, ()) if placed[j] and upper[j] > now)
            # the query as if ``out`` were taken out of ``occ``, without taking it out and putting it back
            at = _place(Without(occ, [block[j] for j in out]) if out else occ, src, size, sizes, offsets)
            offsets[i] = _mended(guard, i, at, offsets)
        placed[i] = True
        past_inputs = past_inputs or not starts[i]
        block[i] = (offsets[i], offsets[i] + size)
        occ.add(*block[i])
        heapq.heappush(gone, (upper[i], i))
        work += _queue_seen(arrive, sparse.seen_row(i), i, upper[i])
        if work > budget:
            return False
    return True


def _queue_seen(arrive: list[tuple[int, int, int]], row: np.ndarray, i: int, up: int) -> int:
    """Queue ``(time, i, stream)`` for each stream that sees all of ``i`` before its interval ends; how many. The
    seen sweep's memory: counted as its work, so a problem whose streams see nearly every buffer gives up early."""
    soon = np.flatnonzero(row < up)
    for s, t in zip(soon.tolist(), row[soon].tolist()):
        heapq.heappush(arrive, (t, i, s))
    return len(soon)


def _seen_pairs(problem: BufferProblem, sparse: StreamTimes, sizes: list[int]) -> int:
    """How many ``(time, buffer, stream)`` entries ``_sweep_seen`` queues in all (a stream seeing a buffer of
    bytes before its interval ends), counted in numpy a block of rows at a time."""
    n, S = problem.order.visible.shape
    upper = problem.upper
    nonzero = problem.sizes > 0
    total = 0
    for rows in _row_blocks(n, S):
        rows = rows[nonzero[rows]]
        if len(rows):
            total += int(np.count_nonzero(sparse.seen_rows(rows) < upper[rows][:, None]))
    return total


def _seen_work_within(problem: BufferProblem, sparse: StreamTimes, order: list[int], sizes: list[int],
                      budget: int) -> bool:
    """Whether ``_sweep_seen`` stays within ``budget`` steps, without placing anything. Why: its steps (the
    pairs it queues, and the placed buffers each one's home stream has seen and that are still live) follow
    from the intervals and the seen times alone, never from offsets, so they can be counted first; a sweep
    that gives up did all its placements (an ``Occupancy`` query per buffer) for nothing before the
    stream-by-stream sweep started over (on 20,000 graph inputs and outputs over 8 streams, two thirds of
    greedy's time). The pairs queued are counted in bulk first: past the budget alone, it is not walked (5,000
    nodes dealt over 1,024 streams queued 3.9 million before it gave up)."""
    if _seen_pairs(problem, sparse, sizes) > budget:
        return False
    first, home, regular = sparse.first, sparse.home, sparse.regular
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
        work += _queue_seen(arrive, sparse.seen_row(i), i, upper[i])
        if work > budget:
            return False
    return True


def _partners(problem: BufferProblem) -> dict[int, list[int]]:
    """Each buffer's in-place partners (``problem.compatible``, both ways)."""
    partners: dict[int, list[int]] = {}
    for a, b in problem.compatible:
        partners.setdefault(a, []).append(b)
        partners.setdefault(b, []).append(a)
    return partners


def _place_listed(problem: BufferProblem, i: int, placed: np.ndarray, now: int, src: tuple[int, int] | None,
                  sizes: list[int], offsets: list[int]) -> int:
    """Buffer ``i``'s offset from the placed buffers it conflicts with, listed (the streams' sweeps take
    inputs and never-accessed buffers this way): its in-place source's offset if it fits there, else the
    best fit."""
    size = sizes[i]
    near = np.flatnonzero(placed & (problem.upper > now))
    near = near[problem._conflict_mask(np.full(len(near), i), near)].tolist()
    blocks = [(offsets[j], offsets[j] + sizes[j]) for j in near]
    at = over_input(src, size, sizes, offsets)
    if at is not None and fits_at(blocks, at, size):
        return at
    return best_fit(blocks, size, problem.alignment)


def _held_type(sparse: StreamTimes, n: int) -> tuple[type, int]:
    """(dtype, never) of ``_Unseen``'s sets over ``n`` buffers: int32 with its largest value for INF where every id
    and every time but INF fits with room to spare (times, and the ``now`` they are tested against, stay far below
    it), else int64 and INF itself."""
    times = sparse.stream_times()
    top = int(times[times < INF].max(initial=0))
    if n <= np.iinfo(np.int32).max and top < np.iinfo(np.int32).max // 2:
        return np.int32, int(np.iinfo(np.int32).max)
    return np.int64, INF


class _Unseen:
    """Per stream, the placed buffers it has not seen all of and whose intervals are not over, as of the last
    time it was asked (``at``): arrays of buffer ids and of when the stream sees each. Brought up to date only
    when asked, from the buffers placed since: those it has seen by then never enter. Why: every buffer in the
    ``Occupancy`` of every stream (then out again as each stream saw it) was buffers x streams index updates and
    heap entries; a stream that synchronises holds only the few it has not seen yet.

    A stream whose set is large when its buffers are fitted (``OCC_MIN`` or more) also keeps the set's blocks as an
    ``Occupancy`` (``occ``), updated with what ``update`` adds and drops. Why: those buffers are most of the blocks a
    buffer of that stream is fitted among, and sorting them all for every buffer (``fit_arrays``) was quadratic: one
    node of 20,000 outputs on 8 streams spent 56 of 69 s there. The Occupancies hold at most ``cap`` blocks in all."""

    __slots__ = ("sparse", "upper", "placed", "count", "ids", "seen", "length", "soon", "taken", "block", "occ",
                 "held", "cap", "alive", "dead", "over", "listed", "dtype", "never")

    def __init__(self, sparse: StreamTimes, upper: np.ndarray, n: int, block=None, cap: int = 0) -> None:
        self.sparse = sparse
        self.upper = upper
        self.placed = np.zeros(n, dtype=np.int64)   # buffers in placement order
        self.count = 0
        self.ids: dict[int, np.ndarray] = {}
        self.seen: dict[int, np.ndarray] = {}
        self.length: dict[int, int] = {}            # how much of ``ids`` and ``seen`` is held (the rest is room)
        self.soon: dict[int, int] = {}              # no held buffer is over before this time
        self.taken: dict[int, int] = {}             # how much of ``placed`` each stream has taken in
        self.block = block                          # j -> (offset, end) of placed j, for the Occupancies
        self.occ: dict[int, Occupancy] = {}         # the streams whose set is kept as an Occupancy too
        self.held = 0                               # blocks in those Occupancies, at most ``cap``
        self.cap = cap
        # for the streams with an Occupancy: which held positions are live, how many are not, and a heap of
        # (when each held buffer is over, its position)
        self.alive: dict[int, np.ndarray] = {}
        self.dead: dict[int, int] = {}
        self.over: dict[int, list[tuple[int, int]]] = {}
        self.listed: dict[int, int] = {}            # per stream, its large sets fitted without an Occupancy
        # ``ids`` and ``seen`` in 4 bytes an entry each where every buffer id and every time but INF fits (INF held as
        # ``never``, above every time: each test of a held time, against a time, comes out the same). Why: the sets
        # hold each placed buffer once per stream that has not seen it, O(streams x buffers) entries on a graph
        # whose streams rarely meet: layered_graph(20000) on 1,024 streams held 13.4 million, 400 MiB in int64 of
        # its 994 MiB peak (round 64)
        self.dtype, self.never = _held_type(sparse, n)

    def place(self, i: int) -> None:
        self.placed[self.count] = i
        self.count += 1

    def at(self, s: int, now: int) -> tuple[np.ndarray, np.ndarray]:
        """Stream ``s``'s placed buffers live at ``now`` (``upper > now``) that it has not seen all of by ``now``,
        with when it does (``never`` for never: INF, or above every time where held in int32). Read-only arrays,
        good until the next call for ``s``."""
        self.update(s, now)
        return self._held(s)

    def _held(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        length = self.length[s]
        ids, seen = self.ids[s][:length], self.seen[s][:length]
        alive = self.alive.get(s)
        if alive is not None and self.dead[s]:
            ids, seen = ids[alive[:length]], seen[alive[:length]]
        ids.flags.writeable = seen.flags.writeable = False
        return ids, seen

    def live(self, s: int) -> int:
        """How many buffers stream ``s`` holds (as the last ``update`` left it)."""
        return self.length.get(s, 0) - self.dead.get(s, 0)

    def update(self, s: int, now: int) -> None:
        """Bring stream ``s``'s set up to ``now``: take in the buffers placed since it was last asked (those it
        has not seen and whose intervals are not over), let go of those now seen or over.

        Held buffers are tested again only once one of them may be over (``soon``: the least of their seen times
        and interval ends), and those placed since are appended in place (room doubled when full). A stream kept
        as an Occupancy lets go of its buffers one by one from a heap of when each is over, marking them dead in
        place (compacted once half are). Why: testing and copying every held buffer at every call was quadratic on
        a wide node (20,000 buffers held, one over at nearly every call)."""
        new = self.placed[self.taken.get(s, 0):self.count]
        self.taken[s] = self.count
        fresh = self.sparse.seen_col(new, s)
        up = self.upper[new]
        add = (fresh > now) & (up > now)
        if not add.all():
            new, fresh, up = new[add], fresh[add], up[add]
        occ = self.occ.get(s)
        ids, seen = self.ids.get(s), self.seen.get(s)
        length = self.length.get(s, 0)
        if occ is not None:   # the heap says which are over
            over, alive = self.over[s], self.alive[s]
            dead = self.dead[s]
            block = self.block
            while over and over[0][0] <= now:
                k = heapq.heappop(over)[1]
                alive[k] = False
                dead += 1
                occ.remove(*block(int(ids[k])))
                self.held -= 1
            if dead and 2 * dead >= length:   # compact: keep the live half, heap again
                keep = alive[:length]
                kept_ids, kept_seen = ids[:length][keep], seen[:length][keep]
                length = len(kept_ids)
                ids[:length], seen[:length] = kept_ids, kept_seen
                alive[:length] = True
                dead = 0
                self.over[s] = over = self._heap(ids[:length], seen[:length], 0)
            self.dead[s] = dead
        elif ids is not None and self.soon[s] <= now:   # some held buffer may be over: keep the rest
            ids, seen = ids[:length], seen[:length]
            keep = (seen > now) & (self.upper[ids] > now)
            ids, seen = ids[keep], seen[keep]
            length = len(ids)
            self.soon[s] = min(self._least(seen), int(self.upper[ids].min(initial=INF)))
        if ids is None or length + len(new) > len(ids):   # (room for twice as many)
            room = max(2 * (length + len(new)), 16)
            grown_ids, grown_seen = np.empty(room, dtype=self.dtype), np.empty(room, dtype=self.dtype)
            if ids is not None:
                grown_ids[:length], grown_seen[:length] = ids[:length], seen[:length]
            ids, seen = grown_ids, grown_seen
            if occ is not None:
                grown = np.ones(room, dtype=bool)
                grown[:length] = self.alive[s][:length]
                self.alive[s] = grown
        if len(new):
            ids[length:length + len(new)] = new
            seen[length:length + len(new)] = np.minimum(fresh, self.never)
            if occ is not None:
                self.alive[s][length:length + len(new)] = True
                over = self.over[s]
                for k, t in enumerate(np.minimum(fresh, up).tolist(), start=length):
                    heapq.heappush(over, (t, k))
                for j in new.tolist():
                    occ.add(*self.block(j))
                self.held += len(new)
            else:
                self.soon[s] = min(self.soon.get(s, INF), int(fresh.min()), int(up.min()))
            length += len(new)
        self.ids[s], self.seen[s], self.length[s] = ids, seen, length
        self.soon.setdefault(s, INF)

    def _least(self, seen: np.ndarray) -> int:
        """The least of held times ``seen``, INF where there are none or all are ``never``."""
        least = int(seen.min()) if len(seen) else INF
        return INF if least >= self.never else least

    def _heap(self, ids: np.ndarray, seen: np.ndarray, base: int) -> list[tuple[int, int]]:
        """(when it is over, position) of each held buffer, as a heap."""
        over = list(zip(np.minimum(seen, self.upper[ids]).tolist(), range(base, base + len(ids))))
        heapq.heapify(over)
        return over

    def holds(self, s: int, js: np.ndarray) -> np.ndarray:
        """Which of ``js`` stream ``s`` holds (as the last ``update`` left it)."""
        return np.isin(js, self._held(s)[0]) if s in self.ids else np.zeros(len(js), dtype=bool)

    def occupancy(self, s: int, now: int) -> Occupancy | None:
        """``update`` stream ``s``, then its set as an ``Occupancy``: kept from then on when the set has ``OCC_MIN``
        blocks or more, the stream had ``OCC_PAYBACK`` sets that large fitted without one, and the cap allows; None
        when it is small (``fit_arrays`` is cheap there). Why the second: every buffer placed enters (and leaves) the
        Occupancy of every stream that has not seen it, an index update each, which a stream home to a few buffers
        only never pays back (``layered_graph(3000)`` on 1,024 streams: its sweep took 0.4 -> 0.8 s at 4)."""
        self.update(s, now)
        occ = self.occ.get(s)
        size = self.live(s)
        if occ is not None:
            if size >= OCC_MIN // 4:
                return occ
            ids, seen = self._held(s)   # shrunk: adding back and taking out each block costs more than fitting
            length = len(ids)
            self.ids[s][:length], self.seen[s][:length] = ids, seen
            self.length[s] = length
            self.soon[s] = min(self._least(seen), int(self.upper[ids].min(initial=INF)))
            del self.occ[s], self.over[s], self.alive[s], self.dead[s]
            self.held -= size
            return None
        if size < OCC_MIN:
            return None
        listed = self.listed[s] = self.listed.get(s, 0) + 1
        if listed < OCC_PAYBACK or self.held + size > self.cap:
            return None
        length = self.length[s]
        ids, seen = self.ids[s][:length], self.seen[s][:length]
        occ = self.occ[s] = Occupancy.of([self.block(j) for j in ids.tolist()], self.block.alignment)
        self.held += size
        self.alive[s] = np.ones(len(self.ids[s]), dtype=bool)
        self.dead[s] = 0
        self.over[s] = self._heap(ids, seen, 0)
        return occ

    def drop(self, s: int) -> None:
        """Stream ``s`` is asked no more."""
        size = self.live(s)
        for table in (self.ids, self.seen, self.soon, self.length, self.alive, self.dead, self.over):
            table.pop(s, None)
        if self.occ.pop(s, None) is not None:
            self.held -= size


class _Crossed:
    """For a buffer ``i`` homed on stream ``h`` and accessed on another stream ``t`` (first at ``f``, ``f >= now``):
    the placed buffers whose intervals are not over that ``h`` has seen all of by now and ``t`` has not by ``f``
    (``extra``). Those block ``i`` beside ``h``'s own set (``_Unseen``), and they are few: a buffer ``h`` has seen is
    usually seen by ``t`` too before ``t`` reads ``i``.

    Found by listing ``t``'s set (``_Unseen.at``) and keeping those ``h`` has seen, until CROSS_PAYBACK queries of the
    pair (h, t) listed a set of CROSS_MIN or more; then from an index of the pair (``_Pair``) that holds only the
    buffers ``h`` sees before ``t`` does and before their intervals end, ordered by when ``t`` sees them: the query
    reads those ``t`` sees after ``f``. Each buffer placed once a pair has an index is offered to the pairs of the
    streams that see it before its interval ends (``place``: one row of seen times, usually none of them). Why: on a
    fan-out of 20,000 branches over 8 streams every branch result is read on the join's stream, whose set holds
    nearly every placed buffer (it sees none before the join): listing it for each buffer was 678 million entries
    read to find none. The same buffers either way (``tests/test_greedy_round50.py``)."""

    __slots__ = ("times", "upper", "up", "unseen", "pairs", "by_home", "scans")

    def __init__(self, times: StreamTimes, upper: np.ndarray, unseen: _Unseen) -> None:
        self.times, self.upper, self.unseen = times, upper, unseen
        self.up = upper.tolist()
        self.pairs: dict[tuple[int, int], _Pair] = {}
        self.by_home: dict[int, list[_Pair]] = {}     # the indexed pairs of each home stream
        self.scans: dict[tuple[int, int], int] = {}   # per pair, its queries that listed a set of CROSS_MIN or more

    def extra(self, h: int, t: int, now: int, f: int) -> np.ndarray:
        """The placed buffers live at ``now`` that ``h`` has seen all of by ``now`` and ``t`` has not by ``f``: unique
        ids, in no particular order."""
        pair = self.pairs.get((h, t))
        if pair is not None:
            return pair.query(now, f, self.up)
        ids, seen = self.unseen.at(t, now)
        if len(ids) >= CROSS_MIN:
            k = self.scans[h, t] = self.scans.get((h, t), 0) + 1
            if k >= CROSS_PAYBACK and len(self.pairs) < CROSS_CAP:
                pair = self.pairs[h, t] = _Pair(self, h, t, now, ids, seen)
                self.by_home.setdefault(h, []).append(pair)
                return pair.query(now, f, self.up)
        ids = ids[seen > f]
        return ids[self.times.seen_col(ids, h) <= now] if len(ids) else ids

    def place(self, j: int) -> None:
        """Buffer ``j`` was placed: into the index of each pair (h, t) whose ``h`` sees it before its interval ends
        and before ``t`` does."""
        if not self.pairs:
            return
        row = self.times.seen_row(j)
        up = self.up[j]
        for h in np.flatnonzero(row < up).tolist():
            pairs = self.by_home.get(h)
            if pairs:
                seen_h = int(row[h])
                for pair in pairs:
                    seen_t = int(row[pair.t])
                    if seen_h < seen_t:
                        heapq.heappush(pair.later, (seen_h, seen_t, j))

    def drop(self, s: int) -> None:
        """Stream ``s`` is asked no more (as ``h`` or ``t``)."""
        for key in [key for key in self.pairs if s in key]:
            pair = self.pairs.pop(key)
            self.by_home[key[0]].remove(pair)


class _Pair:
    """``_Crossed``'s index of one pair of streams (h, t): ``ready`` holds ``(when t sees j, j)`` of each placed ``j``
    that ``h`` has seen by now, ``t`` has not and whose interval is not over (some whose interval ended may linger:
    left out when read, dropped then); ``later`` the ``(when h sees j, when t does, j)`` of those ``h`` sees later,
    before ``t`` does and before ``j``'s interval ends (the others never qualify): ``t``'s set when the index is made,
    then every buffer placed (``_Crossed.place``)."""

    __slots__ = ("t", "ready", "later")

    def __init__(self, crossed: _Crossed, h: int, t: int, now: int, ids: np.ndarray, seen_t: np.ndarray) -> None:
        self.t = t
        self.ready: SortedList = SortedList()
        up = crossed.upper[ids]
        seen_h = crossed.times.seen_col(ids, h)
        keep = (seen_t > now) & (up > now) & (seen_h < np.minimum(up, seen_t))
        self.later = list(zip(seen_h[keep].tolist(), seen_t[keep].tolist(), ids[keep].tolist()))
        heapq.heapify(self.later)

    def query(self, now: int, f: int, up: list[int]) -> np.ndarray:
        """``_Crossed.extra`` of this pair (``f >= now``; ``up``: each buffer's interval end)."""
        later, ready = self.later, self.ready
        while later and later[0][0] <= now:
            _, b, j = heapq.heappop(later)
            if b > now and up[j] > now:
                ready.add((b, j))
        while ready and ready[0][0] <= now:   # seen by ``t``: never asked again (every later ``f`` is past it)
            ready.pop(0)
        items = list(ready.islice(ready.bisect_left((f + 1, -1))))   # ``t`` sees them after ``f``
        hits = [j for _, j in items if up[j] > now]
        if len(hits) < len(items):   # over: never asked again
            for item in items:
                if up[item[1]] <= now:
                    ready.remove(item)
        return np.array(hits, dtype=np.int64)


class _Blocks:
    """``(offset, end)`` of each placed buffer, read from the sweep's offsets (never moved once placed)."""

    __slots__ = ("offsets", "sizes", "alignment")

    def __init__(self, offsets: list[int], sizes: list[int], alignment: int) -> None:
        self.offsets, self.sizes, self.alignment = offsets, sizes, alignment

    def __call__(self, j: int) -> tuple[int, int]:
        off = self.offsets[j]
        return off, off + self.sizes[j]


def _sweep_streams(problem: BufferProblem, times: StreamTimes, order: list[int], sizes: list[int],
                   offsets: list[int], inplace_of: dict[int, tuple[int, int]]) -> None:
    """HB-filtered conflicts when too many pairs overlap to list them (one node with thousands of
    outputs on several streams, or thousands of nodes dealt over many streams): the same blocks as
    ``_sweep_conflicts``, found stream by stream.

    Buffer ``j`` placed before ``i`` blocks it iff its interval is not over, it is not ``i``'s in-place partner
    and on some stream ``t`` that ``i`` accesses, ``t`` has not seen all of ``j``'s accesses by ``i``'s first
    access there (``seen[j, t] > first[i, t]``). ``first[i, t]`` is now on ``i``'s home stream and later on the
    others, so each such ``j`` is among the placed buffers ``t`` has not seen by now (``_Unseen``): those of the
    home stream block as they are, those of the others where ``t`` sees them after ``first[i, t]``. The blocks are
    listed and fitted as ``_sweep_conflicts`` fits them."""
    first, home, regular = times.first, times.home, times.regular
    o = problem.order
    assert o is not None
    n = len(sizes)
    lower = problem.lower.tolist()
    partners = _partners(problem)
    last_use: dict[int, int] = {}   # the last buffer (in sweep order) whose query asks each stream
    for i in order:
        if sizes[i] and regular[i]:
            for s in first[i]:
                last_use[s] = i
    unseen = _Unseen(times, problem.upper, n, _Blocks(offsets, sizes, problem.alignment), OCC_CAP * n + OCC_MIN)
    crossed = _Crossed(times, problem.upper, unseen)
    placed = np.zeros(n, dtype=bool)
    starts = o.has_start.tolist()
    inputs = Occupancy(problem.alignment)   # every placed buffer while all are inputs (see _sweep_seen)
    past_inputs = False
    bulk = bulk_arrays(problem.sizes)
    guard = ExactOrApart.of(problem, order, best=True)
    for i in order:
        size = sizes[i]
        if size == 0:
            continue
        now = lower[i]
        src = inplace_of.get(i)
        if not regular[i] and starts[i] and not past_inputs and not any(placed[j] for j in partners.get(i, ())):
            offsets[i] = _mended(guard, i, _place(inputs, src, size, sizes, offsets), offsets)
        elif not regular[i]:  # inputs and never-accessed buffers: list the placed ones it conflicts with
            offsets[i] = _mended(guard, i, _place_listed(problem, i, placed, now, src, sizes, offsets), offsets)
        else:
            h = home[i]
            occ = unseen.occupancy(h, now)
            # the blocks of i's other streams: those each such stream has not seen by i's first access there, less
            # those the home stream has not seen by now (in its set already)
            parts = [got for t, f in sorted(first[i].items()) if t != h and len(got := crossed.extra(h, t, now, f))]
            extra = None if not parts else parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))
            mine = partners.get(i)
            if occ is not None and (extra is None or len(extra) * OCC_EXTRA <= unseen.live(h)):
                at = _fit_occupied(occ, partial(unseen.holds, h), extra, mine, src, size, sizes, offsets)
                offsets[i] = _mended(guard, i, at, offsets)
            else:
                js = unseen.at(h, now)[0]
                if extra is not None:
                    js = np.concatenate([js, extra])
                if mine:
                    js = js[~np.isin(js, mine)]
                offsets[i] = _mended(guard, i, _fit_listed(js, src, size, sizes, offsets, bulk, problem.alignment),
                                     offsets)
            for s in first[i]:
                if last_use.get(s) == i:
                    unseen.drop(s)
                    crossed.drop(s)
        if bulk is not None:
            bulk[0][i] = offsets[i]
        placed[i] = True
        past_inputs = past_inputs or not starts[i]
        if not past_inputs:
            inputs.add(offsets[i], offsets[i] + size)
        unseen.place(i)
        crossed.place(i)


def _fit_occupied(occ: Occupancy, held, extra: np.ndarray | None, mine: list[int] | None, src: tuple[int, int] | None,
                  size: int, sizes: list[int], offsets: list[int]) -> int:
    """``_fit_listed`` over the blocks ``occ`` holds and those of ``extra``, less those of ``mine`` (``held(js)``: which
    of ``js`` ``occ`` holds): the few ``extra`` blocks go in for the query and the in-place partners out, then back.
    The same offset, since ``Occupancy`` answers ``best_fit`` and ``fits_at`` over the blocks it holds (offsets
    aligned)."""
    if extra is None:
        extra = np.zeros(0, dtype=np.int64)
    if mine:
        mine_arr = np.asarray(mine, dtype=np.int64)
        extra = extra[~np.isin(extra, mine_arr)]
        out = mine_arr[held(mine_arr)].tolist()
    else:
        out = []
    put = [(offsets[j], offsets[j] + sizes[j]) for j in extra.tolist()]
    took = [(offsets[j], offsets[j] + sizes[j]) for j in dict.fromkeys(out)]
    for b in put:
        occ.add(*b)
    for b in took:
        occ.remove(*b)
    try:
        return _place(occ, src, size, sizes, offsets)
    finally:
        for b in took:
            occ.add(*b)
        for b in put:
            occ.remove(*b)


def _fit_listed(js: np.ndarray, src: tuple[int, int] | None, size: int, sizes: list[int], offsets: list[int],
                bulk: tuple[np.ndarray, np.ndarray] | None, alignment: int) -> int:
    """The offset among the placed blocks of ``js`` as ``_sweep_conflicts`` finds it: over the in-place source
    ``src`` when it fits there, else the best fit; in numpy (``bulk``: every placed offset and size) for many."""
    at = over_input(src, size, sizes, offsets)
    if bulk is not None and len(js) >= BULK_BLOCKS:
        off_arr, size_arr = bulk
        starts = off_arr[js]
        ends = starts + size_arr[js]
        if bulk_ok(ends):
            if at is not None and fits_at_arrays(starts, ends, at, size):
                return at
            return fit_arrays(starts, ends, size, alignment, best=True)
    blocks = [(offsets[j], offsets[j] + sizes[j]) for j in js.tolist()]
    if at is not None and fits_at(blocks, at, size):
        return at
    return best_fit(blocks, size, alignment)
