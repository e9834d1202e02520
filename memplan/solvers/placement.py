"""Finding room for one buffer among the blocks it must not overlap: the step every heuristic shares."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort


def _align(x: int, a: int) -> int:
    return -(-x // a) * a


def gaps(blocks: list[tuple[int, int]], alignment: int) -> list[tuple[int, int]]:
    """Free aligned ``(start, end)`` gaps between ``(start, end)`` blocks; the last is open (end -1)."""
    blocks.sort()
    out = []
    cursor = 0
    for s, e in blocks:
        if s > cursor:
            out.append((cursor, s))
        cursor = max(cursor, _align(e, alignment))
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
        end = _align(end, self.alignment)
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

    def add(self, start: int, end: int) -> None:
        self._change(start, end, 1)

    def remove(self, start: int, end: int) -> None:
        """Drop one block added before with the same bounds."""
        self._change(start, end, -1)

    def best_fit(self, size: int) -> int:
        """``best_fit`` over the blocks held: smallest interior gap that fits, else the open tail."""
        k = bisect_left(self.gaps, (size, -1))
        return self.gaps[k][1] if k < len(self.gaps) else self.pts[-1]

    def fits_at(self, offset: int, size: int) -> bool:
        """``fits_at`` over the blocks held (``offset`` aligned)."""
        k = bisect_right(self.pts, offset) - 1
        return self.cov[k] == 0 and (k + 1 == len(self.pts) or self.pts[k + 1] >= offset + size)


class WindowFit:
    """First fit among placed blocks whose time intervals meet a window, without listing them.

    For greedy-by-size on interval problems with many buffers live at once (one node with 40,000
    outputs): a segment tree over the distinct interval ends, where each node keeps the union of
    the blocks stored at it (``cover``: intervals whose canonical decomposition uses the node) and
    the union of those stored anywhere below it (``sub``). The blocks meeting a window are exactly
    those in ``sub`` of the window's canonical nodes and in ``cover`` of their ancestors, so
    ``first_fit`` leapfrogs over O(log n) disjoint-interval unions instead of sorting every
    overlapping block, and ``first_fit`` returns what ``placement.first_fit`` would over them.
    Blocks are never removed (greedy-by-size only adds).
    """

    def __init__(self, times, alignment: int) -> None:
        self.coords = sorted(set(times))
        self.rank = {t: k for k, t in enumerate(self.coords)}
        size = 1
        while size < max(len(self.coords), 1):
            size *= 2
        self.leaves = size
        self.alignment = alignment
        self.cover: dict[int, tuple[list[int], list[int]]] = {}
        self.sub: dict[int, tuple[list[int], list[int]]] = {}

    def _nodes(self, lower: int, upper: int) -> tuple[list[int], set[int]]:
        """Canonical nodes of ``[lower, upper)`` and their proper ancestors."""
        lo, hi = self.rank[lower] + self.leaves, self.rank[upper] + self.leaves
        canon = []
        while lo < hi:
            if lo & 1:
                canon.append(lo)
                lo += 1
            if hi & 1:
                hi -= 1
                canon.append(hi)
            lo >>= 1
            hi >>= 1
        anc: set[int] = set()
        for c in canon:
            c >>= 1
            while c and c not in anc:
                anc.add(c)
                c >>= 1
        return canon, anc

    @staticmethod
    def _union_add(u: tuple[list[int], list[int]], a: int, b: int) -> None:
        starts, ends = u
        k = bisect_left(ends, a)
        m = bisect_right(starts, b)
        if k < m:
            a = min(a, starts[k])
            b = max(b, ends[m - 1])
        starts[k:m] = [a]
        ends[k:m] = [b]

    def add(self, lower: int, upper: int, start: int, end: int) -> None:
        end = _align(end, self.alignment)
        canon, anc = self._nodes(lower, upper)
        for c in canon:
            self._union_add(self.cover.setdefault(c, ([], [])), start, end)
            self._union_add(self.sub.setdefault(c, ([], [])), start, end)
        for a in anc:
            self._union_add(self.sub.setdefault(a, ([], [])), start, end)

    def first_fit(self, lower: int, upper: int, size: int) -> int:
        canon, anc = self._nodes(lower, upper)
        sets = [self.sub[c] for c in canon if c in self.sub] + [self.cover[a] for a in anc if a in self.cover]
        x = 0
        moved = True
        while moved:
            moved = False
            for starts, ends in sets:
                k = bisect_left(starts, x + size) - 1   # the last union block starting before x + size
                if k >= 0 and ends[k] > x:
                    x = ends[k]
                    moved = True
        return x
