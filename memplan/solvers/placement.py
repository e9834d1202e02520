"""Finding room for one buffer among the blocks it must not overlap: the step every heuristic shares."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Sequence

import numpy as np

from ..problem import align_up

#: a buffer with at least this many placed neighbours finds its room in bulk (``fit_arrays``): below it the
#: numpy calls cost more than the Python loop they replace
BULK_BLOCKS = 96
#: ``fit_arrays`` rounds ends in int64; past this an end could overflow there, and the Python loop takes it
_BULK_MAX_END = 1 << 62


class ArenaOver(Exception):
    """A heuristic given ``over`` stopped early: a buffer it placed ends past ``over`` bytes, so its finished
    arena would be over them too (``CappedOffsets``). Control flow between a heuristic and
    ``solvers.heuristics_over``, never a user's error."""


class CappedOffsets(list):
    """A heuristic's offset list that raises ``ArenaOver`` as soon as a buffer is placed past ``over`` bytes.

    Why: a memory budget plans candidate schedules until one fits, and most of them do not. The heuristics
    place every buffer once and never move it, so the arena (the highest end placed) only grows: the first
    buffer to end past the budget proves the finished plan over it, usually a few hundred buffers into tens of
    thousands. Writing through this list is the only change to a sweep, so its placements stay the same.
    A sweep that may start over (``greedy._sweep_seen``) gets a plain list instead."""

    def __init__(self, n: int, sizes: list[int], over: int) -> None:
        super().__init__([0] * n)
        self.sizes, self.over = sizes, over

    def __setitem__(self, i, value) -> None:   # (slices too: ``offsets[:] = ...`` resets a sweep)
        if isinstance(i, int) and value + self.sizes[i] > self.over:
            raise ArenaOver(i)
        super().__setitem__(i, value)


def gaps(blocks: list[tuple[int, int]], alignment: int) -> list[tuple[int, int]]:
    """Free aligned ``(start, end)`` gaps between ``(start, end)`` blocks; the last is open (end -1)."""
    blocks.sort()
    out = []
    cursor = 0
    for s, e in blocks:
        if s > cursor:
            out.append((cursor, s))
        cursor = max(cursor, align_up(e, alignment))
    out.append((cursor, -1))
    return out


def best_fit(blocks: list[tuple[int, int]], size: int, alignment: int) -> int:
    """Smallest interior gap that fits (lowest offset on ties), else the open tail (like ggml)."""
    best_off, best_len = -1, -1
    for s, e in gaps(blocks, alignment):
        if e < 0:
            return s if best_off < 0 else best_off
        length = e - s
        if length >= size and (best_off < 0 or length < best_len):
            best_off, best_len = s, length
    raise AssertionError("unreachable: gaps always ends with the open tail")


def first_fit(blocks: list[tuple[int, int]], size: int, alignment: int) -> int:
    """Lowest offset that fits (TFLite's greedy-by-size placement, generalised)."""
    for s, e in gaps(blocks, alignment):
        if e < 0 or e - s >= size:
            return s
    raise AssertionError("unreachable")


def fit_arrays(starts: np.ndarray, ends: np.ndarray, size: int, alignment: int, *, best: bool) -> int:
    """``best_fit`` (``best``) or ``first_fit`` over the blocks ``[starts[k], ends[k])`` (int64 arrays, ends
    below ``_BULK_MAX_END``), in numpy: the same offset, since ``gaps`` depends only on the blocks' order by
    start (blocks starting together leave no gap between them) and the running maximum of their aligned ends.
    Why: a buffer conflicting with thousands of placed ones (a multi-stream problem listed pair by pair, up to
    the solvers' pair caps) sorted and walked them in Python, ~1 us a pair: most of such a plan's time."""
    if not len(starts):
        return 0
    o, s = _by_start(starts)
    reach = np.maximum.accumulate(align_up(ends[o], alignment))
    before = np.empty_like(reach)
    before[0] = 0
    np.maximum(reach[:-1], 0, out=before[1:])
    interior = s > before
    gs, length = before[interior], s[interior] - before[interior]
    ok = np.flatnonzero(length >= size)
    if not len(ok):
        return max(int(reach[-1]), 0)
    if best:
        return int(gs[ok[np.argmin(length[ok])]])   # argmin: the first smallest, the lowest offset on ties
    return int(gs[ok[0]])


def _by_start(starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(an order of the blocks by start, the starts in it) for ``fit_arrays``. Not a stable argsort: blocks starting
    together leave the same gaps in any order, and sorting (start, position) packed in one int64 is some 4 times
    faster than a stable argsort (on a 1,024-stream mesh each buffer sorts the 5,600 blocks its stream has not
    seen); numpy's default argsort where they do not fit one."""
    starts = starts.astype(np.int64, copy=False)
    k = len(starts)
    bits = k.bit_length()
    if int(starts.min()) >= 0 and int(starts.max()) < 1 << (62 - bits):
        key = (starts << bits) | np.arange(k, dtype=np.int64)
        key.sort()
        return key & ((1 << bits) - 1), key >> bits
    o = np.argsort(starts)
    return o, starts[o]


def bulk_arrays(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(offsets, sizes)`` as int64 arrays for a sweep that fits some buffers in bulk (offsets all 0, the sweep
    fills them in as it places), or None when a size is past int64 (the sweep then stays in Python)."""
    try:
        size_arr = np.asarray(sizes, dtype=np.int64)
    except (OverflowError, TypeError, ValueError):
        return None
    if len(size_arr) and int(size_arr.max()) >= _BULK_MAX_END:
        return None
    return np.zeros(len(size_arr), dtype=np.int64), size_arr


def fits_at_arrays(starts: np.ndarray, ends: np.ndarray, offset: int, size: int) -> bool:
    """``fits_at`` over the blocks ``[starts[k], ends[k])``."""
    end = offset + size
    return bool(((ends <= offset) | (starts >= end)).all())


def bulk_ok(ends: np.ndarray) -> bool:
    """Whether ``fit_arrays`` may take these blocks (no end near int64's range)."""
    return not len(ends) or int(ends.max()) < _BULK_MAX_END


def fits_at(blocks: list[tuple[int, int]], offset: int, size: int) -> bool:
    end = offset + size
    return all(e <= offset or s >= end for s, e in blocks)


class Occupancy:
    """A multiset of ``[start, end)`` blocks with the free gaps of their union kept sorted.

    The incremental form of ``gaps``/``best_fit``/``fits_at`` for sweeps that add and drop blocks
    one at a time (greedy's live set): each block is stored as ``[start, align_up(end))``, exactly
    what ``gaps`` sees, so ``best_fit`` answers what ``best_fit(blocks, ...)`` would over the same
    blocks, in O(log n) instead of sorting every live block for every buffer. Blocks may overlap
    (a coverage count per segment); starts are expected aligned, as every solver's offsets are.
    """

    __slots__ = ("alignment", "pts", "cov", "gaps")

    def __init__(self, alignment: int = 1) -> None:
        self.alignment = alignment
        self.pts = [0]          # segment boundaries; segment k is [pts[k], pts[k+1]), the last is open
        self.cov = [0]          # blocks covering each segment; adjacent segments never have equal cover
        self.gaps: list[tuple[int, int]] = []  # (length, start) of every interior segment with cover 0

    def _gap(self, k: int, add: bool) -> None:
        pts = self.pts
        if k + 1 < len(pts) and self.cov[k] == 0:
            g = (pts[k + 1] - pts[k], pts[k])
            if add:
                insort(self.gaps, g)
            else:
                del self.gaps[bisect_left(self.gaps, g)]

    def _change(self, start: int, end: int, delta: int) -> None:
        pts, cov = self.pts, self.cov
        end = align_up(end, self.alignment)
        if end <= start:
            return
        lo = max(bisect_right(pts, start) - 2, 0)       # one segment of context on each side
        hi = min(bisect_right(pts, end), len(pts) - 1)
        for k in range(lo, hi + 1):
            self._gap(k, False)
        for p in (start, end):
            k = bisect_right(pts, p) - 1
            if pts[k] != p:
                pts.insert(k + 1, p)
                cov.insert(k + 1, cov[k])
                hi += 1
        k = bisect_left(pts, start)
        while pts[k] < end:
            cov[k] += delta
            k += 1
        k = max(lo, 1)
        while k <= hi and k < len(pts):
            if cov[k] == cov[k - 1]:
                del pts[k]
                del cov[k]
                hi -= 1
            else:
                k += 1
        for k in range(lo, min(hi, len(pts) - 1) + 1):
            self._gap(k, True)

    @classmethod
    def of(cls, blocks: Sequence[tuple[int, int]], alignment: int = 1) -> Occupancy:
        """An Occupancy holding ``blocks``: the state ``add`` of each one leaves (boundaries where the cover changes,
        the gaps of cover 0), built in one sorted pass. Why: a sweep that starts an index over thousands of live
        blocks (``greedy._Unseen.occupancy``) paid a bisect and list inserts per block."""
        occ = cls(alignment)
        delta: dict[int, int] = {}
        for start, end in blocks:
            end = align_up(end, alignment)
            if end > start:
                delta[start] = delta.get(start, 0) + 1
                delta[end] = delta.get(end, 0) - 1
        pts, cov = occ.pts, occ.cov
        c = 0
        for x in sorted(delta):
            d = delta[x]
            if not d:
                continue
            c += d
            if x == pts[-1]:      # (only at 0, the first boundary)
                cov[-1] = c
            elif c != cov[-1]:
                pts.append(x)
                cov.append(c)
        occ.gaps = sorted((pts[k + 1] - pts[k], pts[k]) for k in range(len(pts) - 1) if cov[k] == 0)
        return occ

    def add(self, start: int, end: int) -> None:
        pts, cov = self.pts, self.cov
        end = align_up(end, self.alignment)
        k = bisect_right(pts, start) - 1
        last = len(pts) - 1
        if end <= start or (k < last and pts[k + 1] < end):
            self._change(start, end, 1)
            return
        if cov[k]:
            # inside one covered segment [p, q) (not the tail: its cover is 0): [p, start) c, [start, end)
            # c + 1, [end, q) c, merged with a neighbour of cover c + 1; no gap changes (every cover >= 1)
            c, p, q = cov[k], pts[k], pts[k + 1]
            seg_pts: list[int] = []
            seg_cov: list[int] = []
            if p < start:
                seg_pts += [p, start]
                seg_cov += [c, c + 1]
            elif not (k > 0 and cov[k - 1] == c + 1):
                seg_pts.append(start)
                seg_cov.append(c + 1)
            hi = k + 1
            if end < q:
                seg_pts.append(end)
                seg_cov.append(c)
            elif cov[k + 1] == c + 1:
                hi = k + 2
            pts[k:hi] = seg_pts
            cov[k:hi] = seg_cov
            return
        # the common case: the block lands inside one free segment [p, q) (q: none for the tail)
        p = pts[k]
        gaps = self.gaps
        new_pts, new_cov = [], []
        if p < start:
            new_pts.append(p)
            new_cov.append(0)
            insort(gaps, (start - p, p))
        if not (p == start and k > 0 and cov[k - 1] == 1):  # else the block extends the run before
            new_pts.append(start)
            new_cov.append(1)
        span = 1
        if k < last:
            q = pts[k + 1]
            del gaps[bisect_left(gaps, (q - p, p))]
            if end < q:
                new_pts.append(end)
                new_cov.append(0)
                insort(gaps, (q - end, end))
            elif cov[k + 1] == 1:  # the run after starts where the block ends: one run
                span = 2
        else:
            new_pts.append(end)
            new_cov.append(0)
        pts[k:k + span] = new_pts
        cov[k:k + span] = new_cov

    def remove(self, start: int, end: int) -> None:
        """Drop one block added before with the same bounds."""
        pts, cov = self.pts, self.cov
        end = align_up(end, self.alignment)
        k = bisect_right(pts, start) - 1
        last = len(pts) - 1
        if end <= start or k == last or pts[k + 1] < end:
            self._change(start, end, -1)
            return
        # the common case (greedy takes out the blocks that may share bytes and puts them back): the block
        # lies inside one segment [p, q) of cover c >= 1, which becomes [p, start) c, [start, end) c - 1,
        # [end, q) c, merged with a neighbour of cover c - 1; only a new cover 0 changes the gaps
        c, p, q = cov[k], pts[k], pts[k + 1]
        new, gaps = c - 1, self.gaps
        seg_pts: list[int] = []
        seg_cov: list[int] = []
        gstart = start
        if p < start:
            seg_pts.append(p)
            seg_cov.append(c)
            seg_pts.append(start)
            seg_cov.append(new)
        elif k > 0 and cov[k - 1] == new:   # extends the segment before (interior: k - 1 < last)
            gstart = pts[k - 1]
            if new == 0:
                del gaps[bisect_left(gaps, (p - gstart, gstart))]
        else:
            seg_pts.append(start)
            seg_cov.append(new)
        hi = k + 1
        gend: int | None = q
        if end < q:
            gend = end
            seg_pts.append(end)
            seg_cov.append(c)
        elif cov[k + 1] == new:             # runs on into the segment after: its start goes
            hi = k + 2
            if k + 1 == last:               # the open tail: no gap, the tail starts earlier
                gend = None
            else:
                gend = pts[k + 2]
                if new == 0:
                    del gaps[bisect_left(gaps, (gend - q, q))]
        pts[k:hi] = seg_pts
        cov[k:hi] = seg_cov
        if new == 0 and gend is not None:
            insort(gaps, (gend - gstart, gstart))

    def best_fit(self, size: int) -> int:
        """``best_fit`` over the blocks held: smallest interior gap that fits, else the open tail."""
        k = bisect_left(self.gaps, (size, -1))
        return self.gaps[k][1] if k < len(self.gaps) else self.pts[-1]

    def fits_at(self, offset: int, size: int) -> bool:
        """``fits_at`` over the blocks held (``offset`` aligned)."""
        k = bisect_right(self.pts, offset) - 1
        return self.cov[k] == 0 and (k + 1 == len(self.pts) or self.pts[k + 1] >= offset + size)


class Without:
    """An ``Occupancy`` as if some of its blocks were taken out, for one query, without taking them out.

    Why: greedy's many-stream sweep asks, for each buffer, the best fit among every placed block less the
    few dozen its stream has seen; removing and re-adding those blocks cost two index updates each and was
    most of the sweep at 1024 streams. Here only the bytes under the left-out blocks are looked at: where
    the index's cover there equals the left-out blocks' own cover the bytes become free, and those runs,
    joined with the free segments they touch, are the only gaps that differ from the index's. ``best_fit``
    and ``fits_at`` answer exactly what the index would after ``remove`` of each block (each block must be
    held by it; a block listed twice is taken out twice).
    """

    __slots__ = ("occ", "runs", "dropped", "tail")

    def __init__(self, occ: Occupancy, blocks: list[tuple[int, int]]) -> None:
        self.occ = occ
        pts, cov = occ.pts, occ.cov
        ends = [(s, align_up(e, occ.alignment)) for s, e in blocks]
        events = sorted([(s, 1) for s, e in ends if e > s] + [(e, -1) for s, e in ends if e > s])
        freed: list[list[int]] = []   # maximal runs of newly free bytes, in order
        depth, prev = 0, 0
        for x, d in events:
            if depth and x > prev:   # the left-out blocks cover [prev, x) ``depth`` times
                k = bisect_right(pts, prev) - 1
                while pts[k] < x:
                    lo, hi = max(pts[k], prev), min(pts[k + 1], x)
                    assert cov[k] >= depth, "a left-out block the index does not hold"
                    if cov[k] == depth:
                        if freed and freed[-1][1] == lo:
                            freed[-1][1] = hi
                        else:
                            freed.append([lo, hi])
                    k += 1
            depth += d
            prev = x
        runs: list[tuple[int, int]] = []   # the changed interior free runs, joined with what they touch
        self.dropped: set[int] = set()     # starts of the index's gaps inside one of them
        self.tail = pts[-1]
        last = len(pts) - 1
        for lo, hi in freed:
            k = bisect_right(pts, lo - 1) - 1 if lo > 0 else -1
            if k >= 0 and cov[k] == 0 and pts[k + 1] == lo:   # a free segment of the index just before
                lo = pts[k]
                self.dropped.add(lo)
            end: int | None = hi
            k = bisect_right(pts, hi) - 1
            if pts[k] == hi and cov[k] == 0:                  # a free segment of the index just after
                if k == last:
                    end = None
                else:
                    self.dropped.add(hi)
                    end = pts[k + 1]
            if runs and runs[-1][1] >= lo:   # two runs that meet (across a free segment both took in)
                lo = runs.pop()[0]
            if end is None:
                self.tail = lo
                break
            runs.append((lo, end))
        self.runs = runs

    def best_fit(self, size: int) -> int:
        """``Occupancy.best_fit`` after the blocks were taken out: smallest gap that fits, else the tail."""
        gaps, dropped = self.occ.gaps, self.dropped
        k = bisect_left(gaps, (size, -1))
        while k < len(gaps) and gaps[k][1] in dropped:
            k += 1
        best = gaps[k] if k < len(gaps) else None
        for lo, hi in self.runs:
            g = (hi - lo, lo)
            if g[0] >= size and (best is None or g < best):
                best = g
        return best[1] if best is not None else self.tail

    def fits_at(self, offset: int, size: int) -> bool:
        """``Occupancy.fits_at`` after the blocks were taken out (``offset`` aligned)."""
        if offset >= self.tail or self.occ.fits_at(offset, size):
            return True
        return any(lo <= offset < hi and hi >= offset + size for lo, hi in self.runs)


class WindowFit:
    """First fit among placed blocks whose time intervals meet a window, without listing them.

    For greedy-by-size on interval problems with many buffers live at once (one node with 40,000
    outputs). A block meets the window ``[lo, hi)`` iff it is live at ``lo`` or starts inside
    ``(lo, hi)``. Two trees over the distinct interval ends keep unions of placed blocks (sorted
    disjoint byte ranges): ``cover`` is a segment tree (a block in the union of each node of its
    interval's canonical decomposition, so the unions on the path to ``lo`` hold the blocks live at
    ``lo``), ``point`` a tree over start times (a block in the union of its start's leaf and every
    ancestor, so the canonical nodes of ``(lo, hi)`` hold those starting inside). ``first_fit``
    leapfrogs over these O(log n) unions and returns what ``placement.first_fit`` would over the
    blocks themselves. Blocks are never removed (greedy-by-size only adds).

    ``first_fit(..., without=...)`` leaves some placed blocks out (a buffer's in-place partners, which it
    may overlap). Each block meeting the window lies in exactly one union the query reads (the one
    canonical node on the path to ``lo``, or of ``(lo, hi)``, that holds it), so only those unions change:
    with ``counted``, every node also keeps how many blocks cover each byte (``_count_add``), and the
    bytes that only left-out blocks cover there become holes in that union. Listing every placed block
    beside each partner instead was quadratic on a node with thousands of in-place pairs.
    """

    def __init__(self, times, alignment: int, counted: bool = False) -> None:
        coords = sorted(set(times))
        self.rank = {t: k for k, t in enumerate(coords)}
        size = 1
        while size < max(len(coords), 1):
            size *= 2
        self.leaves = size
        self.alignment = alignment
        self.cover: dict[int, tuple[list[int], list[int]]] = {}
        self.point: dict[int, tuple[list[int], list[int]]] = {}
        # with ``counted``: per node, cover counts as (boundaries, blocks covering [pts[k], pts[k + 1]))
        self.cover_n: dict[int, tuple[list[int], list[int]]] | None = {} if counted else None
        self.point_n: dict[int, tuple[list[int], list[int]]] | None = {} if counted else None

    def add(self, lower: int, upper: int, start: int, end: int) -> None:
        end = align_up(end, self.alignment)
        lo, hi = self.rank[lower] + self.leaves, self.rank[upper] + self.leaves
        cover, point, cover_n, point_n = self.cover, self.point, self.cover_n, self.point_n
        v = lo
        while lo < hi:
            if lo & 1:
                _union_add(cover, lo, start, end)
                if cover_n is not None:
                    _count_add(cover_n, lo, start, end)
                lo += 1
            if hi & 1:
                hi -= 1
                _union_add(cover, hi, start, end)
                if cover_n is not None:
                    _count_add(cover_n, hi, start, end)
            lo >>= 1
            hi >>= 1
        while v:
            _union_add(point, v, start, end)
            if point_n is not None:
                _count_add(point_n, v, start, end)
            v >>= 1

    def first_fit(self, lower: int, upper: int, size: int,
                  without: Sequence[tuple[int, int, int, int]] = (), start: int = 0) -> int:
        """Lowest aligned offset from ``start`` on (aligned) clear of every placed block meeting ``[lower, upper)``
        except those in ``without`` (``(lower, upper, start, end)`` of blocks added before; needs ``counted``)."""
        if without:
            return self._first_fit_without(lower, upper, size, without, start)
        cover, point = self.cover, self.point
        lo, hi = self.rank[lower] + self.leaves, self.rank[upper] + self.leaves
        sets = []
        v = lo
        while v:
            if v in cover:
                sets.append(cover[v])
            v >>= 1
        lo += 1
        while lo < hi:
            if lo & 1:
                if lo in point:
                    sets.append(point[lo])
                lo += 1
            if hi & 1:
                hi -= 1
                if hi in point:
                    sets.append(point[hi])
            lo >>= 1
            hi >>= 1
        sets.sort(key=_span_key)  # the unions ending lowest first (measured: fewest passes on wide nodes)
        x = start
        moved = True
        budget = LEAPFROG_PASSES * len(sets)   # union checks before the merged scan takes over
        while moved:  # until one pass finds every union clear of [x, x + size)
            moved = False
            for starts, ends in sets:
                j = bisect_left(starts, x + size) - 1   # the last range starting before x + size
                while j >= 0 and ends[j] > x:
                    x = ends[j]
                    moved = True
                    j = bisect_left(starts, x + size, j + 1) - 1
            budget -= len(sets)
            if moved and budget <= 0 and 0 < size and sets[-1][1][-1] + size < _BULK_MAX_END:   # (int64 in numpy)
                return _merged_fit(sets, x, size)
        return x

    def _first_fit_without(self, lower: int, upper: int, size: int,
                           without: Sequence[tuple[int, int, int, int]], start: int = 0) -> int:
        """``first_fit`` with the unions that hold ``without`` blocks read less their holes."""
        cover, point = self.cover, self.point
        lo, hi = self.rank[lower] + self.leaves, self.rank[upper] + self.leaves
        keys: list[tuple[bool, int]] = []   # (point?, node) of each union read, as first_fit reads them
        v = lo
        while v:
            if v in cover:
                keys.append((False, v))
            v >>= 1
        plo, phi = lo + 1, hi
        while plo < phi:
            if plo & 1:
                if plo in point:
                    keys.append((True, plo))
                plo += 1
            if phi & 1:
                phi -= 1
                if phi in point:
                    keys.append((True, phi))
            plo >>= 1
            phi >>= 1
        holes = self._holes(lo, hi, keys, without)
        sets = [(point if p else cover)[v] + (holes.get((p, v)),) for p, v in keys]
        sets.sort(key=_span_key)
        x = start
        moved = True
        while moved:
            moved = False
            for starts, ends, gone in sets:
                if gone is not None:   # a union less the bytes only left-out blocks cover
                    y = _blocked_to(starts, ends, gone, x, size)
                    while y is not None:
                        x, moved = y, True
                        y = _blocked_to(starts, ends, gone, x, size)
                    continue
                j = bisect_left(starts, x + size) - 1
                while j >= 0 and ends[j] > x:
                    x = ends[j]
                    moved = True
                    j = bisect_left(starts, x + size, j + 1) - 1
        return x

    def _holes(self, lo: int, hi: int, keys: list[tuple[bool, int]],
               without: Sequence[tuple[int, int, int, int]]) -> dict[tuple[bool, int], tuple[list[int], list[int]]]:
        """Per union read by a query over leaves ``[lo, hi)``: the bytes that only ``without`` blocks cover
        there, as sorted disjoint, non-touching ``(starts, ends)``."""
        assert self.cover_n is not None and self.point_n is not None, "first_fit(without=...) needs counted=True"
        read = set(keys)
        left_out: dict[tuple[bool, int], list[tuple[int, int]]] = {}
        for lower, upper, start, end in without:
            end = align_up(end, self.alignment)
            if end <= start:
                continue
            a, b = self.rank[lower] + self.leaves, self.rank[upper] + self.leaves
            if a <= lo < b:      # live at lo: in the one canonical node of [a, b) above leaf lo
                key = (False, _canonical_above(a, b, lo))
            elif lo < a < hi:    # starts inside (lo, hi): in the one canonical node of (lo, hi) above it
                key = (True, _canonical_above(lo + 1, hi, a))
            else:                # outside the window: not an obstacle anyway
                continue
            assert key in read, "a left-out block that was never added"
            left_out.setdefault(key, []).append((start, end))
        out = {}
        for key, blocks in left_out.items():
            pts, cov = (self.point_n if key[0] else self.cover_n)[key[1]]
            events = sorted([(s, 1) for s, _ in blocks] + [(e, -1) for _, e in blocks])
            hs: list[int] = []
            he: list[int] = []
            depth, prev = 0, 0
            for x, d in events:
                if depth and x > prev:   # the left-out blocks cover [prev, x) ``depth`` times
                    k = bisect_right(pts, prev) - 1   # >= 0: the node holds these blocks
                    while k < len(pts) and pts[k] < x:
                        c = cov[k]
                        assert k >= 0 and c >= depth, "a left-out block the union does not hold"
                        if c == depth:
                            s = max(pts[k], prev)
                            e = min(pts[k + 1], x)   # not the last segment: its cover is 0
                            if he and he[-1] == s:
                                he[-1] = e
                            else:
                                hs.append(s)
                                he.append(e)
                        k += 1
                depth += d
                prev = x
            if hs:
                out[key] = (hs, he)
        return out


#: ``WindowFit.first_fit`` leapfrogs over its unions at most this many passes before ``_merged_fit`` takes over
LEAPFROG_PASSES = 2
#: ``_merged_fit``'s first window past ``x + size``: this many times ``size`` (then four times the last)
MERGED_WINDOW = 16
#: ``_merged_fit`` scans a window of at most this many ranges in Python: numpy's fixed cost per window (~40 us) was
#: most of the size solver's time on wide nodes, whose windows hold about one range (wide_graph(20000), 1,024 streams)
MERGED_SMALL = 64


def _merged_fit(sets: Sequence[tuple[list[int], list[int]]], x: int, size: int) -> int:
    """The lowest ``y >= x`` with ``[y, y + size)`` clear of every range of the unions ``sets``, where every point
    below ``x`` is not clear (``size > 0``): ``WindowFit.first_fit``'s answer, from the ranges of all unions merged in
    numpy a window at a time, not by leapfrogging from union to union.

    Why: where the unions' gaps interleave, each leapfrog moves ``x`` past one range of one union and the next pass
    checks every union again: a 20,000-node layered DAG's plan on 1,024 streams took 142 passes per buffer on
    average (3M passes, 6 s of the size solver). The same answer: both find the least clear point, which lies at
    ``x`` or at a range's end (a lower one would be clear of the range whose end it skipped, whose start is below
    it plus ``size``). A window ``[x, limit)`` reads the ranges starting below ``limit`` and ending after ``x``; a
    gap between their running reach and the next start of at least ``size`` is clear (the ranges starting at or
    past ``limit`` cannot meet it), and where none is, nothing below the reach is clear and the window grows."""
    span = MERGED_WINDOW * size
    while True:
        limit = x + size + span
        los: list[int] = []
        his: list[int] = []
        for starts, ends in sets:
            j0 = bisect_right(ends, x)          # the first range ending after x
            j1 = bisect_left(starts, limit, j0)  # past the last one starting below limit
            if j0 < j1:
                los += starts[j0:j1]
                his += ends[j0:j1]
        if not los:
            return x
        if len(los) <= MERGED_SMALL:   # a few ranges (most windows): a Python scan, not numpy's fixed cost
            y = _scan_window(sorted(zip(los, his)), x, size)
            if y is not None:
                return y
            x = max(x, max(his))
            if x + size <= limit:
                return x
            span *= 4
            continue
        lo, hi = np.array(los, dtype=np.int64), np.array(his, dtype=np.int64)
        o = np.argsort(lo, kind="stable")
        lo, hi = lo[o], hi[o]
        reach = np.maximum.accumulate(np.maximum(hi, x))
        before = np.empty_like(reach)
        before[0] = x
        before[1:] = reach[:-1]
        ok = np.flatnonzero(lo - before >= size)
        if len(ok):
            return int(before[ok[0]])
        x = int(reach[-1])
        if x + size <= limit:
            return x
        span *= 4


def _scan_window(ranges: list[tuple[int, int]], x: int, size: int) -> int | None:
    """``_merged_fit``'s numpy step over a few ``(start, end)`` ranges sorted by start: the first gap of at least
    ``size`` between the running reach (from ``x``) and the next start, or None where there is none."""
    reach = x
    for lo, hi in ranges:
        if lo - reach >= size:
            return reach
        if hi > reach:
            reach = hi
    return None


def _span_key(u: tuple) -> int:
    return u[1][-1]


def _canonical_above(a: int, b: int, leaf: int) -> int:
    """The node of the canonical decomposition of leaves ``[a, b)`` that holds ``leaf`` (``a <= leaf < b``)."""
    while a < b:
        if a & 1:
            if _holds(a, leaf):
                return a
            a += 1
        if b & 1:
            b -= 1
            if _holds(b, leaf):
                return b
        a >>= 1
        b >>= 1
    raise AssertionError("unreachable: the leaf lies in [a, b)")


def _holds(node: int, leaf: int) -> bool:
    """``node`` is ``leaf`` or one of its ancestors."""
    shift = leaf.bit_length() - node.bit_length()
    return shift >= 0 and leaf >> shift == node


def _blocked_to(starts: list[int], ends: list[int], gone: tuple[list[int], list[int]], x: int, size: int) -> int | None:
    """Where ``[x, x + size)`` next could start past the union's ranges less the holes ``gone``: the end of
    the covered piece holding the highest covered byte in ``[x, x + size)``, or None if there is none."""
    hs, he = gone
    j = bisect_left(starts, x + size) - 1
    while j >= 0 and ends[j] > x:
        lo, hi = max(x, starts[j]), min(x + size, ends[j])
        y = hi - 1                               # the highest byte of range j in [x, x + size)
        k = bisect_right(hs, y) - 1
        if k >= 0 and he[k] > y:                 # inside a hole: the byte just below it (holes never touch)
            y = hs[k] - 1
        if y >= lo:
            k = bisect_right(hs, y)
            return min(hs[k], ends[j]) if k < len(hs) else ends[j]
        j -= 1
    return None


def _count_add(counts: dict, node: int, a: int, b: int) -> None:
    """Add ``[a, b)`` to the cover counts ``counts[node]`` (boundaries, blocks covering each segment;
    nothing before the first boundary or after the last)."""
    u = counts.get(node)
    if u is None:
        counts[node] = ([a, b], [1, 0])
        return
    pts, cov = u
    if a >= pts[-1]:   # past every block (first fit packs upward): the common case
        if a == pts[-1]:
            cov[-1] = 1
            pts.append(b)
            cov.append(0)
        else:
            pts += [a, b]
            cov += [1, 0]
        return
    k = bisect_right(pts, a) - 1
    if k < 0:
        pts.insert(0, a)
        cov.insert(0, 0)
        k = 0
    elif pts[k] != a:
        pts.insert(k + 1, a)
        cov.insert(k + 1, cov[k])
        k += 1
    m = bisect_left(pts, b, k)
    if m == len(pts) or pts[m] != b:
        pts.insert(m, b)
        cov.insert(m, cov[m - 1])
    for t in range(k, m):
        cov[t] += 1


def _union_add(unions: dict, node: int, a: int, b: int) -> None:
    """Add ``[a, b)`` to the sorted disjoint ranges ``unions[node]``, merging what it meets or touches."""
    u = unions.get(node)
    if u is None:
        unions[node] = ([a], [b])
        return
    starts, ends = u
    if a > ends[-1]:
        starts.append(a)
        ends.append(b)
        return
    k = bisect_left(ends, a)
    m = bisect_right(starts, b)
    if k < m:
        if starts[k] < a:
            a = starts[k]
        if ends[m - 1] > b:
            b = ends[m - 1]
    starts[k:m] = [a]
    ends[k:m] = [b]
