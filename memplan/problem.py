"""The buffer problem: what an offset solver sees, and nothing more.

A buffer has a size and a time interval ``[lower, upper)``; two buffers *may* conflict only if their
intervals overlap. For a serial schedule (and for minimalloc/TelaMalloc CSV inputs) interval overlap
*is* the conflict relation. For a multi-stream schedule it is only a superset: ``order`` (an
``HBOrder``) then says which overlapping pairs are in fact ordered by happens-before and so may share
bytes, and ``compatible`` lists in-place pairs the contract allows to overlap. Solvers never see a
graph, which is what lets benchmark CSVs and graph plans share every solver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

import numpy as np

from . import _csrcache
from .errors import SolverError, as_int, named_fields, not_an_index, short_repr
from .streamtable import StreamTable
from .values import by_value, derived


def align_up(x, a: int):
    """``x`` rounded up to a multiple of ``a``: an int, or each element of an int array. The one place
    sizes and offsets are rounded to the alignment."""
    return -(-x // a) * a


#: the largest alignment a ``BufferProblem`` takes (``_check_fields``): offsets are int64
MAX_ALIGNMENT = 1 << 48
#: ``BufferProblem.conflict_csr`` keeps its arrays on the problem up to this many conflicting pairs (16 MiB, as much
#: as the pairs themselves, which ``conflict_pairs`` keeps; the most ``auto``'s wide skyline walks take, one walk each)
CSR_CACHE_PAIRS = 1 << 20
#: pair x stream tests per vectorised step of ``BufferProblem._precedes`` (bounds its temporary arrays)
_PRECEDES_CHUNK = 1 << 22


def _expand(cnt: np.ndarray, chunk: int):
    """Row ``k`` of a ragged list of ``cnt[k]`` entries, expanded in bulk: per piece of about ``chunk``
    entries (at least one row), ``(rows, offs)`` with row ``k`` repeated ``cnt[k]`` times beside
    ``0 .. cnt[k] - 1``. The one vectorised expansion of the pair sweeps here, bounded in memory."""
    csum = np.cumsum(cnt)
    start = 0
    while start < len(cnt):
        base = csum[start - 1] if start else 0
        stop = max(int(np.searchsorted(csum, base + chunk, side="right")), start + 1)
        c = cnt[start:stop]
        tot = int(c.sum())
        if tot:
            yield np.repeat(np.arange(start, stop), c), np.arange(tot) - np.repeat(np.cumsum(c) - c, c)
        start = stop


@by_value
@dataclass(frozen=True)
class HBOrder:
    """Happens-before summary per buffer, for deciding exact cross-stream conflicts.

    ``first[i, s]``: seq of buffer ``i``'s first access on stream ``s`` (a huge number if none): a dense integer
    array, or a ``StreamTable`` of the accessed cells alone (what ``buffer_problem`` builds: dense, it took 86 MiB
    at 20,000 buffers on 1,024 streams, nearly all of it the huge number);
    ``visible[i, s]``: first seq on stream ``s`` from which every access of ``i`` has happened-before.
    ``i`` precedes ``j`` (may hand its bytes to ``j``) iff ``i`` does not live to the end, ``j`` is not
    live from the start, and ``first[j] >= visible[i]`` on every stream.
    """

    first: np.ndarray | StreamTable
    visible: np.ndarray
    has_start: np.ndarray
    has_end: np.ndarray
    #: time of each buffer's last real access (same clock as ``lower``); a cheap pre-filter: ``i``
    #: cannot precede ``j`` while ``i`` is still accessed at or after ``j``'s first access
    last_time: np.ndarray | None = None
    #: per stream, the time (``lower``'s clock) of each of its positions: turns the per-stream
    #: thresholds into times, which lets greedy sweep dense problems stream by stream
    stream_time: tuple[np.ndarray, ...] | None = None

    def precedes(self, i: int, j: int) -> bool:
        if self.has_end[i] or self.has_start[j]:
            return False
        if isinstance(self.first, StreamTable):   # (a cell not stored holds NEVER, which passes every visible)
            cols, vals = self.first.row_cells(j)
            return bool((vals >= self.visible[i, cols]).all())
        return bool((self.first[j] >= self.visible[i]).all())

    def first_csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ptr, cols, vals)``: buffer ``j``'s entries ``first[j, s]`` that can fail ``first[j, s] >=
        visible[i, s]`` for some ``i`` (below the column's largest ``visible``), as CSR rows. Why: a buffer is
        accessed on few streams and ``first`` is NEVER elsewhere, so testing only these columns makes a
        precedence test cost the streams ``j`` touches, not every stream (1024 streams: the whole plan's
        time went to all-pass columns). Kept on the order under ``_csrcache.LEDGER``'s bound (why: every conflict
        test asks for them, 1,700 times in a plan of ``layered_graph(3000)`` on 4 streams, and outside the bound an
        order kept up to twice its ``first`` array for as long as it lived); taken off, they are built again. Larger
        than the whole cap they are kept alone, until anything else is kept (``CsrLedger.keep``'s ``alone``): built
        again per test they cost a pass over ``first`` each, twice a buffer in greedy (round 64)."""
        cached = self.__dict__.get(_csrcache.FIRST_ATTR)
        if cached is not None:
            _csrcache.LEDGER.used(self, _csrcache.FIRST_ATTR)
        else:
            B, S = self.first.shape
            if B and S:
                if isinstance(self.first, StreamTable):   # (its stored cells, in the same row-major order)
                    rows, cols, vals = self.first.cells()
                    on = vals < self.visible.max(axis=0)[cols]
                    rows, cols, vals = rows[on], cols[on], vals[on]
                else:
                    rows, cols = np.nonzero(self.first < self.visible.max(axis=0))
                    vals = self.first[rows, cols]
                ptr = np.zeros(B + 1, dtype=np.int64)
                np.cumsum(np.bincount(rows, minlength=B), out=ptr[1:])
            else:
                cols = vals = np.zeros(0, dtype=np.int64)
                ptr = np.zeros(B + 1, dtype=np.int64)
            cached = (ptr, cols.astype(np.int64), vals.astype(np.int64))
            for a in cached:
                a.setflags(write=False)   # (shared by every caller, as the conflict arrays are)
            _csrcache.LEDGER.keep(self, cached, attr=_csrcache.FIRST_ATTR, alone=True)
        return cached

    def __getstate__(self) -> dict:
        """The fields alone, for ``copy.copy`` and ``pickle`` (``BufferProblem.__getstate__``'s reason: the
        precedence columns are counted by ``_csrcache.LEDGER`` on the original only)."""
        names = {f.name for f in fields(self)}
        return {k: v for k, v in self.__dict__.items() if k in names}

    def ordered(self, i: int, j: int) -> bool:
        return self.precedes(i, j) or self.precedes(j, i)


@named_fields
@by_value
@dataclass(frozen=True)
class BufferProblem:
    """Sizes, time intervals and the conflict relation of a set of buffers.

    ``lower_bound`` is a promise: no packing is smaller. The solvers stop when they reach it and call that
    packing OPTIMAL, so a caller who passes one must have proven it (None: the library's own interval bound
    for interval problems, else 0). Graph plans pass the happens-before-aware bound ``memplan.lifetimes``
    proves; a warm start's bound is never taken (``memplan.solvers.start``)."""

    sizes: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alignment: int = 1
    names: tuple[str, ...] | None = None
    order: HBOrder | None = None
    compatible: frozenset[tuple[int, int]] = frozenset()
    inplace: tuple[tuple[int, int], ...] = ()
    lower_bound: int | None = None
    capacity: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("sizes", "lower", "upper"):
            object.__setattr__(self, name, _int_column(self, name))
        n = len(self.sizes)
        if len(self.lower) != n or len(self.upper) != n:
            raise SolverError("buffer problem: sizes, lower and upper differ in length")
        _check_fields(self)
        if self.lower_bound is None:
            # the peak of live bytes is a bound only when overlap in time means conflict: HB-ordered or
            # in-place pairs may share bytes (graph plans pass their own, HB-aware bound)
            object.__setattr__(self, "lower_bound", aligned_interval_bound(self.sizes, self.lower, self.upper,
                                                                           self.alignment) if self.is_interval else 0)

    def __len__(self) -> int:
        return len(self.sizes)

    def name(self, i: int) -> str:
        try:
            if i >= 0:   # (a negative index would name another buffer: ``not_an_index``)
                self.sizes[i]   # (numpy refuses a float and a past-the-end index)
                return self.names[i] if self.names is not None else str(int(i))
        except (TypeError, IndexError, ValueError):
            pass
        raise not_an_index(SolverError, "BufferProblem.name: buffer", i, len(self.sizes))

    def name_of(self, i: int) -> str:
        """``name(i)`` quoted for an error message, before ``names`` itself is known to be well formed."""
        names = self.names
        ok = isinstance(names, tuple) and i < len(names) and isinstance(names[i], str)
        return repr(names[i]) if ok else f"#{i}"

    @property
    def is_interval(self) -> bool:
        """True when interval overlap alone decides conflicts (no HB filter, no in-place pairs)."""
        return self.order is None and not self.compatible

    def conflicts(self, i: int, j: int) -> bool:
        """Whether buffers ``i`` and ``j`` must not share any byte."""
        try:
            if i < 0 or j < 0:   # (numpy would wrap it around to another buffer: ``not_an_index``)
                raise IndexError
            if i == j or self.sizes[i] == 0 or self.sizes[j] == 0:
                return False
        except (TypeError, IndexError, ValueError):
            bad = j if type(i) is int and 0 <= i < len(self.sizes) else i
            raise not_an_index(SolverError, f"BufferProblem.conflicts: buffer {'j' if bad is j and bad is not i else 'i'}",
                               bad, len(self.sizes)) from None
        if self.lower[i] >= self.upper[j] or self.lower[j] >= self.upper[i]:
            return False
        if self.lower[i] == self.upper[i] or self.lower[j] == self.upper[j]:   # [t, t) is live at no time
            return False
        if (min(i, j), max(i, j)) in self.compatible:
            return False
        if self.order is not None and (self._order_precedes(i, j) or self._order_precedes(j, i)):
            return False
        return True

    def _order_precedes(self, i: int, j: int) -> bool:
        """``order.precedes(i, j)`` with the last-access pre-filter ``ordered_test`` and ``_conflict_mask`` apply
        (``i`` is still accessed at or after ``j``'s start: not before it). Why: on a hand-built order whose
        ``last_time`` disagrees with ``first``/``visible``, ``conflicts`` alone skipped it and called a pair
        apart that the solvers and ``find_collision`` keep apart: two answers for one problem."""
        last = self.order.last_time
        if last is not None and int(last[i]) >= int(self.lower[j]):
            return False
        return self.order.precedes(i, j)

    def ordered_test(self):
        """A fast ``ordered(i, j)`` over plain tuples, or None for pure interval problems.

        Per-pair numpy calls would dominate sweeps over 100k buffers; tuples of ints do not.
        """
        order = self.order
        if order is None:
            return None
        vis = order.visible
        ptr, cols, vals = order.first_csr()
        ptr_l = ptr.tolist()
        has_start = order.has_start.tolist()
        has_end = order.has_end.tolist()
        last = order.last_time.tolist() if order.last_time is not None else None
        lower = self.lower.tolist()

        def precedes(a: int, b: int) -> bool:
            # only b's columns that can fail (HBOrder.first_csr), converted on demand: a list of tuples
            # for every buffer costs ~400 MB at 1M
            if has_end[a] or has_start[b] or (last is not None and last[a] >= lower[b]):
                return False
            lo, hi = ptr_l[b], ptr_l[b + 1]
            if lo == hi:
                return True
            cs = cols[lo:hi]
            return not bool((vals[lo:hi] < vis[a, cs]).any())

        return lambda i, j: precedes(i, j) or precedes(j, i)

    def sweep_order(self) -> np.ndarray:
        """Buffers by (lower, index): the order every interval sweep here and in the solvers uses."""
        return np.lexsort((np.arange(len(self)), self.lower))

    def _live_sweep(self) -> np.ndarray:
        """``sweep_order`` less the buffers that conflict with nothing: no bytes, or an empty interval
        (``lower == upper``). Why the second: the sweeps pair a buffer with every later-starting one that
        starts before it ends, so an empty interval starting inside another's was paired with it, a
        conflict ``conflicts`` denies; the exact solvers then proved bounds of a stricter problem and
        called a packing above the true optimum OPTIMAL."""
        idx = self.sweep_order()
        return idx[(self.sizes[idx] > 0) & (self.upper[idx] > self.lower[idx])]

    def overlap_count(self) -> int:
        """How many pairs of non-empty buffers have overlapping intervals (O(n log n), no pairs built, nothing kept).

        The sweep's count (``_conflict_pairs``' ``cnt`` summed) without its order: in sweep order buffer ``a`` at
        position ``k`` overlaps the live buffers starting before it ends less the ``k + 1`` up to itself (all of
        them start no later than ``a``, so before it ends), and those ``k`` sum to ``m (m - 1) / 2`` whatever the
        order. So two sorts of plain columns, where the sweep's order is a lexsort by two keys: 0.08 s at a million
        buffers where it took 0.34 s. Why not kept: at that cost it needs no cache (round 63 took the last caches
        outside ``_csrcache.LEDGER`` off the problem), and a plan asks it about five times per problem."""
        live = (self.sizes > 0) & (self.upper > self.lower)
        starts = np.sort(self.lower[live])
        m = len(starts)
        ends = np.searchsorted(starts, np.sort(self.upper[live]), side="left")
        return int(ends.sum()) - m * (m + 1) // 2

    def conflict_count(self, stop_above: int | None = None, chunk: int = 1 << 20) -> int:
        """``len(conflict_pairs()[0])`` without listing the pairs: read off the pairs or CSR arrays kept on the
        problem, else counted by one pass of the same sweep and filter (``_conflict_mask``) in pieces of ``chunk``
        overlapping pairs. ``stop_above``: the count may stop once it passes it (the number returned is then above
        ``stop_above``, not the count, and nothing is kept); at or below it, it is the count, and the pairs it found
        are kept as ``conflict_pairs(chunk)`` keeps them (the callers list them next where they are that few: the
        in-place rejoin filtered every overlapping pair twice, once to count and once to list). Without a bound,
        nothing is kept. Why: the solvers that ask only
        whether the pairs are few enough to list (``size``, ``slack_on_top``, the in-place rejoin) listed them all to
        take their length, 16 bytes a pair, and a problem too large for the ledger listed them again each time."""
        chunk = _chunk_arg(chunk, "conflict_count")
        if stop_above is not None and as_int(stop_above) is None:
            raise SolverError(f"BufferProblem.conflict_count: stop_above must be an integer or None, not "
                              f"{type(stop_above).__name__} {short_repr(stop_above)}")
        stop_above = None if stop_above is None else as_int(stop_above)
        cached = self.__dict__.get(_csrcache.PAIRS_ATTR)
        if cached is not None:
            _csrcache.LEDGER.used(self, _csrcache.PAIRS_ATTR)
            return len(cached[1][0])
        csr = self.__dict__.get(_csrcache.ATTR)
        if csr is not None:
            _csrcache.LEDGER.used(self)
            return len(csr[1]) // 2   # (each pair listed from both ends)
        count = 0
        out_a: list[np.ndarray] = []
        out_b: list[np.ndarray] = []
        for a, b in self._overlapping(chunk):
            keep = self._conflict_mask(a, b)
            count += int(np.count_nonzero(keep))
            if stop_above is not None:
                if count > stop_above:
                    return count
                out_a.append(a[keep])
                out_b.append(b[keep])
        if stop_above is not None:
            # (at or below the bound the caller lists them next, as ``conflict_pairs`` would: kept, so the listing is
            # no second pass of the filter; the bound is the caller's own, so no more memory than that listing)
            empty = np.zeros(0, dtype=np.int64)
            pairs = (np.concatenate(out_a), np.concatenate(out_b)) if out_a else (empty, empty.copy())
            for arr in pairs:
                arr.setflags(write=False)
            _csrcache.LEDGER.keep(self, pairs, attr=_csrcache.PAIRS_ATTR, value=(chunk, pairs))
        return count

    def conflict_pairs(self, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
        """Every conflicting pair once, as arrays ``(a, b)`` with ``a`` before ``b`` in sweep order.

        The interval sweep, vectorised: in sweep order the buffers whose intervals overlap buffer
        ``a``'s from the right are a contiguous run (those starting before ``a`` ends), so the
        overlapping pairs come out of one ``searchsorted``; the HB order and in-place pairs then
        filter them in bulk, ``chunk`` pairs at a time. Cost is proportional to the overlapping
        pairs, in numpy, with no per-pair Python work; the same relation as ``conflicts``. Kept on
        the problem once computed (greedy and size both ask; a problem is immutable).
        """
        chunk = _chunk_arg(chunk, "conflict_pairs")
        # (kept under a name of its own: stored as ``_conflict_pairs`` it hid that method, and asking again with another
        # chunk raised "'tuple' object is not callable")
        # (counted by ``_csrcache.LEDGER`` with the CSR arrays: kept unbounded, 50 held problems of 706,241 pairs each
        # kept 544 MiB of pairs beside the ledger's 33 MiB of CSR arrays)
        cached = self.__dict__.get(_csrcache.PAIRS_ATTR)
        if cached is not None and cached[0] == chunk:
            _csrcache.LEDGER.used(self, _csrcache.PAIRS_ATTR)
            return cached[1]
        pairs = self._conflict_pairs(chunk)
        for a in pairs:
            a.setflags(write=False)   # (shared by every caller: one that wrote into them changed the next one's)
        _csrcache.LEDGER.keep(self, pairs, attr=_csrcache.PAIRS_ATTR, value=(chunk, pairs))
        return pairs

    def __getstate__(self) -> dict:
        """The fields alone, for ``copy.copy`` and ``pickle``: every other entry of ``__dict__`` is a cache, a pure
        function of the fields, built again on demand. Why: a copy carried the conflict arrays (tens of MiB) that
        ``_csrcache.LEDGER`` counts on the original only, so copies escaped its bound, and a pickle wrote them out."""
        names = {f.name for f in fields(self)}
        return {k: v for k, v in self.__dict__.items() if k in names}   # (a half-made one copies as it is)

    def _overlapping(self, chunk: int):
        """The pairs of non-empty buffers whose intervals overlap, as arrays ``(a, b)`` with ``a`` before ``b`` in
        sweep order, in pieces of about ``chunk`` pairs: what ``_conflict_pairs`` filters and ``conflict_count``
        counts (one sweep for both, so the count is the pairs' length)."""
        idx = self._live_sweep()
        m = len(idx)
        lo = self.lower[idx]
        ends = np.searchsorted(lo, self.upper[idx], side="left")
        cnt = np.maximum(ends - np.arange(m) - 1, 0)
        for rows, offs in _expand(cnt, chunk):
            yield idx[rows], idx[rows + 1 + offs]

    def _conflict_pairs(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        out_a: list[np.ndarray] = []
        out_b: list[np.ndarray] = []
        for a, b in self._overlapping(chunk):
            keep = self._conflict_mask(a, b)
            out_a.append(a[keep])
            out_b.append(b[keep])
        if not out_a:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        return np.concatenate(out_a), np.concatenate(out_b)

    def _conflict_mask(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Which of the overlapping pairs ``(a[k], b[k])`` conflict (not ordered, not in-place, neither interval
        empty: ``lower == upper`` is live at no time, though it lies inside the other's interval)."""
        lower, upper = self.lower, self.upper
        keep = (lower[a] < upper[a]) & (lower[b] < upper[b])
        if self.compatible:
            n = max(len(self), 1)
            keys = np.minimum(a, b) * n + np.maximum(a, b)
            ck = self._compatible_keys()   # sorted: a binary search, not np.isin's hashing of both per call
            at = np.minimum(np.searchsorted(ck, keys), len(ck) - 1)
            keep &= ck[at] != keys
        order = self.order
        if order is not None:
            keep &= ~(self._precedes(a, b) | self._precedes(b, a))
        return keep

    def _conflicts_of(self, u: int, b: np.ndarray) -> np.ndarray:
        """``_conflict_mask(np.full(len(b), u), b)``: which buffers of ``b`` conflict with the one buffer ``u`` among
        the overlapping pairs, the same answer with ``u``'s side read once. Why: the dense clique search asks it
        once per clique member (tens of thousands of calls on a 20,000-buffer problem on 1,024 streams), and the
        general mask's ~20 array steps for every pair's ``u`` were most of the bound's time there."""
        lower, upper = self.lower, self.upper
        if not lower[u] < upper[u]:
            return np.zeros(len(b), dtype=bool)
        keep = lower[b] < upper[b]
        if self.compatible:
            n = max(len(self), 1)
            keys = np.minimum(b, u) * n + np.maximum(b, u)
            ck = self._compatible_keys()
            at = np.minimum(np.searchsorted(ck, keys), len(ck) - 1)
            keep &= ck[at] != keys
        order = self.order
        if order is None:
            return keep
        ptr, cols, vals = order.first_csr()
        lu = self.lower[u]
        # u precedes b: b's columns that can fail, against u's row of ``visible``
        if not order.has_end[u]:
            ok = ~order.has_start[b]
            if order.last_time is not None:
                ok &= order.last_time[u] < lower[b]
            sel = np.flatnonzero(ok & keep)
            if len(sel):
                bs = b[sel]
                cnt = ptr[bs + 1] - ptr[bs]
                at = np.repeat(ptr[bs] - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))
                bad = vals[at] < order.visible[u][cols[at]]
                owner = np.repeat(np.arange(len(bs)), cnt)
                fails = np.zeros(len(bs), dtype=bool)
                fails[owner[bad]] = True
                keep[sel[~fails]] = False
        # b precedes u: u's columns that can fail, against b's rows
        if not order.has_start[u]:
            ok = ~order.has_end[b]
            if order.last_time is not None:
                ok &= order.last_time[b] < lu
            sel = np.flatnonzero(ok & keep)
            if len(sel):
                uc, uv = cols[ptr[u]:ptr[u + 1]], vals[ptr[u]:ptr[u + 1]]
                if len(uc):
                    fails = (uv < order.visible[b[sel][:, None], uc]).any(axis=1)
                    keep[sel[~fails]] = False
                else:
                    keep[sel] = False
        return keep

    def _compatible_keys(self) -> np.ndarray:
        """The in-place pairs as sorted keys ``x n + y`` (x < y), kept on the problem under ``_csrcache.LEDGER``'s
        bound (taken off, built again): ``_conflict_mask`` runs per chunk, clique step, seed and placed buffer."""
        cached = self.__dict__.get(_csrcache.KEYS_ATTR)
        if cached is not None:
            _csrcache.LEDGER.used(self, _csrcache.KEYS_ATTR)
            return cached[0]
        n = max(len(self), 1)
        keys = np.array(sorted(x * n + y for x, y in self.compatible), dtype=np.int64)
        keys.setflags(write=False)
        _csrcache.LEDGER.keep(self, (keys,), attr=_csrcache.KEYS_ATTR)
        return keys

    def _precedes(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``order.precedes`` over arrays (with ``ordered_test``'s last-access pre-filter)."""
        order = self.order
        assert order is not None
        ok = ~order.has_end[a] & ~order.has_start[b]
        if order.last_time is not None:
            ok &= order.last_time[a] < self.lower[b]
        sel = np.flatnonzero(ok)
        if len(sel) == 0:
            return ok
        # only b's columns that can fail (HBOrder.first_csr), pairs in pieces of about _PRECEDES_CHUNK tests
        ptr, cols, vals = order.first_csr()
        a, b = a[sel], b[sel]
        bad = np.zeros(len(sel), dtype=bool)
        for rows, offs in _expand(ptr[b + 1] - ptr[b], _PRECEDES_CHUNK):
            pos = ptr[b[rows]] + offs
            bad[rows[vals[pos] < order.visible[a[rows], cols[pos]]]] = True
        ok[sel[bad]] = False
        return ok

    def conflict_csr(self, as_lists: bool = True):
        """The conflict graph as ``(bounds, flat)``: buffer ``i``'s neighbours, sorted, are
        ``flat[bounds[i]:bounds[i + 1]]`` (from ``conflict_pairs``); Python lists, or with
        ``as_lists=False`` numpy arrays. The arrays are kept
        on the problem up to ``CSR_CACHE_PAIRS`` conflicting pairs (why: size, skyline's walks, slack_on_top and
        rejoin each built them again, a sort of every pair: 0.15 s of a 0.6 s default solve of 370,000 pairs), and on all
        live problems together up to ``_csrcache.CSR_CACHE_BYTES``, the least recently used taken off first (why: a
        caller holding many problems held every one's arrays).

        The list ``flat`` holds one shared int object per buffer (``_index_objects``), 8 bytes an entry where
        ``flat.tolist()`` made a new int of 32 bytes for every entry: 14.9M entries (100,000 buffers) peaked at
        685 MiB, most of it those ints (round 64)."""
        bounds, dst = self._csr_arrays()
        if not as_lists:
            return bounds, dst
        flat: list[int] = []
        ids = _index_objects(len(self), len(dst))
        for at in range(0, len(dst), _LIST_CHUNK):   # (in pieces: one object array of every entry is 8 bytes more each)
            flat += ids[dst[at:at + _LIST_CHUNK]].tolist() if ids is not None else dst[at:at + _LIST_CHUNK].tolist()
        return bounds.tolist(), flat

    def _csr_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``conflict_csr(as_lists=False)``: the kept arrays, else made (and kept where they are few enough)."""
        cached = self.__dict__.get(_csrcache.ATTR)
        if cached is None:
            cached = self._conflict_csr()
            if len(cached[1]) <= 2 * CSR_CACHE_PAIRS:
                _csrcache.LEDGER.keep(self, cached)
        else:
            _csrcache.LEDGER.used(self)
        return cached

    def _conflict_csr(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.conflict_pairs()
        n, h = len(self), len(a)
        if n * (n + 1) < 1 << 62:
            # one sort of the keys ``src n + dst`` (each pair once: no ties), the same order as a lexsort by (src, dst)
            # and a sixth of its time: 11.7 s of the 15.6M directed pairs of 20,000 buffers, where the key sort takes
            # 1.8 s. Made in one array, sorted in place and turned into ``dst`` in place, ``bounds`` searched on the
            # keys themselves (``src < i`` iff ``key < i n``): the pairs and one array of keys at the peak, where the
            # keys, ``src``, ``dst``, their sorted copies and quotients were up to six arrays of every entry at once
            key = np.empty(2 * h, dtype=np.int64)
            np.multiply(a, n, out=key[:h])
            key[:h] += b
            np.multiply(b, n, out=key[h:])
            key[h:] += a
            del a, b   # (the pairs go now unless the ledger keeps them: not beside the sort)
            key.sort()
            bounds = np.searchsorted(key, np.arange(n + 1, dtype=np.int64) * n, side="left")
            np.remainder(key, n, out=key)
            dst = key
        else:
            src = np.concatenate([a, b])
            dst = np.concatenate([b, a])
            o = np.lexsort((dst, src))
            src, dst = src[o], dst[o]
            bounds = np.searchsorted(src, np.arange(n + 1), side="left")
        bounds.setflags(write=False)
        dst.setflags(write=False)
        return bounds, dst

    def conflict_lists(self) -> list[list[int]]:
        """Adjacency lists of the conflict graph, each sorted (from ``conflict_pairs``); new lists on every call (a
        caller may change its own).

        Cost is proportional to the number of overlapping interval pairs, not n^2. Built row by row from the
        arrays, with one shared int object per buffer (``_index_objects``): 8 bytes an entry, where the flat list of
        ``conflict_csr()`` sliced into rows held a new int of 32 bytes an entry and each entry twice (round 64)."""
        return self._conflict_rows()

    def _conflict_rows(self) -> list[list[int]]:
        """``conflict_lists``' rows (``skyline.neighbours`` asks here: a walk's lists are no solver's whole-problem
        listing, which tests watch ``conflict_lists`` for)."""
        bounds, dst = self._csr_arrays()
        ids = _index_objects(len(self), len(dst))
        ends = bounds.tolist()
        rows: list[list[int]] = []
        i, n = 0, len(self)
        while i < n:
            # rows ``i .. j - 1``: about ``_LIST_CHUNK`` entries (at least one row), as one object array sliced
            j = max(int(np.searchsorted(bounds, ends[i] + _LIST_CHUNK, side="right")) - 1, i + 1)
            j = min(j, n)
            base = ends[i]
            part = (ids[dst[base:ends[j]]] if ids is not None else dst[base:ends[j]]).tolist()
            rows += [part[ends[k] - base:ends[k + 1] - base] for k in range(i, j)]
            i = j
        return rows


#: entries turned into Python lists per step (``conflict_csr``, ``conflict_lists``): bounds the temporary object array
_LIST_CHUNK = 1 << 20


def _index_objects(n: int, entries: int) -> np.ndarray | None:
    """An object array of the ints ``0 .. n - 1``: indexed by a neighbour array, ``.tolist()`` gives lists of these
    very objects, 8 bytes an entry (a pointer), where ``int64`` arrays' ``.tolist()`` made an int object of 32 bytes
    for every entry. None where there are no more ``entries`` than buffers (their own ints cost no more than the
    buffers' would: a problem of a million buffers and few conflicts made a million ints for a short list). Equal
    values either way: callers see the same lists."""
    return np.arange(n, dtype=np.int64).astype(object) if entries > n else None


def _chunk_arg(chunk: Any, what: str) -> int:
    """``chunk`` as an int of at least 1, or SolverError naming ``BufferProblem.<what>``'s argument (a str or None
    raised deep in the sweep; 0 or less made no pieces)."""
    if as_int(chunk) is None or as_int(chunk) < 1:
        raise SolverError(f"BufferProblem.{what}: chunk must be an integer of at least 1, not "
                          f"{type(chunk).__name__} {short_repr(chunk)}")
    return as_int(chunk)


def same_problem(a: BufferProblem, b: BufferProblem) -> bool:
    """Whether two problems are the same in everything a solver reads (``meta`` too), so that one's solution is the
    other's: a dataclass ``==`` cannot compare the numpy columns. For ``plan(devices=N, device_capacity=C)``, whose
    rounds keep the solution of a device whose problem another device's round left as it was.

    The HB columns of a stream on which neither problem's buffers are accessed (``first`` never there: another
    device's stream) are compared by shape only: the rounds change them (another device's order moves when that
    stream sees this device's copies) and nothing reads them. A precedence test (``HBOrder.first_csr``) keeps only
    entries below a column's largest ``visible``, never a never-accessed ``first``; greedy's stream sweeps place
    each buffer by the streams that access it (its ``home`` and ``first`` entries) and skip the checks an entry
    never-accessed passes; the other solvers read the conflicts alone."""
    if not (a.alignment == b.alignment and a.names == b.names and a.compatible == b.compatible
            and a.inplace == b.inplace and a.lower_bound == b.lower_bound and a.capacity == b.capacity
            and a.meta == b.meta and all(np.array_equal(x, y) for x, y in ((a.sizes, b.sizes), (a.lower, b.lower),
                                                                             (a.upper, b.upper)))):
        return False
    x, y = a.order, b.order
    if x is None or y is None:
        return x is y
    if x.first.shape != y.first.shape or x.first.dtype != y.first.dtype or x.visible.shape != y.visible.shape:
        return False
    if (x.last_time is None) != (y.last_time is None) or (x.stream_time is None) != (y.stream_time is None):
        return False
    xf, yf = x.first, y.first
    if isinstance(xf, StreamTable) != isinstance(yf, StreamTable):   # (one built in code: compared dense)
        xf, yf = np.asarray(xf), np.asarray(yf)
    if isinstance(xf, StreamTable):
        if not xf.same(yf):
            return False
        used = np.zeros(xf.shape[1], dtype=bool)
        used[xf.cols[xf.vals != xf.fill]] = True
        arrays = []
    else:
        never = np.iinfo(xf.dtype).max if xf.dtype.kind in "iu" else np.inf
        used = ((xf != never).any(axis=0) | (yf != never).any(axis=0)) if xf.size else np.zeros(
            xf.shape[1], dtype=bool)
        arrays = [(xf, yf)]
    arrays += [(x.visible[:, used], y.visible[:, used]), (x.has_start, y.has_start),
              (x.has_end, y.has_end)]
    if x.last_time is not None:
        arrays.append((x.last_time, y.last_time))
    if x.stream_time is not None:
        if len(x.stream_time) != len(y.stream_time) or len(x.stream_time) != len(used):
            return False
        arrays += [(p, q) for p, q, u in zip(x.stream_time, y.stream_time, used.tolist()) if u]
        arrays.append((np.array([len(t) for t in x.stream_time]), np.array([len(t) for t in y.stream_time])))
    return all(p.shape == q.shape and np.array_equal(p, q) for p, q in arrays)


def clique_lower_bound(problem: BufferProblem, *, seeds: int = 256, max_buffers: int = 50_000,
                       exact_buffers: int = 2_000, exact_budget: int = 20_000, max_pairs: int = 2_000_000,
                       pair_budget: int = 20_000_000, stop_above: int | None = None) -> int:
    """A heavy clique of the conflict graph, found greedily: its total size is a proven bound.

    Buffers that pairwise conflict must occupy disjoint bytes. For multi-stream schedules this is
    much stronger than "largest total live at one node", which never counts two concurrent branches
    together (neither's accesses happen-before the other's node). Seeds are the largest buffers;
    each grows a clique through its neighbours, largest first; on problems of up to
    ``exact_buffers`` a budgeted branch and bound then looks for a heavier one. Skipped (returns 0)
    on problems too large for the conflict sweep. Problems with more than ``max_pairs`` overlapping
    pairs (one node with thousands of outputs) never build the conflict graph: ``_dense_clique``
    grows the same greedy cliques by testing candidates in bulk, within ``pair_budget`` pair tests.

    ``stop_above``: return as soon as a clique weighs more than it (a bound above it, not the heaviest found). Why:
    a memory budget only asks whether a candidate schedule's bound passes the budget, and the search for the
    heaviest clique was most of a budgeted plan of a small multi-stream graph (50 candidates, 28 ms each). Where
    no clique passes it, the same searches run to the end: the bound is the one found without it.
    """
    n = len(problem)
    if n == 0 or n > max_buffers:
        return 0
    if problem.overlap_count() > max_pairs:
        return _dense_clique(problem, seeds, pair_budget, stop_above)
    adj = problem.conflict_lists()
    sizes = problem.sizes.tolist()
    a = problem.alignment
    rounded = [align_up(s, a) for s in sizes]  # all but the highest clique member pad to alignment
    best = max(sizes)
    order = sorted(range(n), key=lambda i: (-sizes[i], i))[:seeds]
    # up to BITSET_BUFFERS the candidates are bits of one Python int per buffer: narrowing them is a word-wise AND,
    # where intersecting sets cost a hash probe per candidate, O(clique^2) per seed (14 s of a 19 s plan of one
    # node reading 1,900 buffers on three streams). Same cliques, same order either way
    bitsets = n <= BITSET_BUFFERS
    nbr: list = _neighbour_bits(adj, n) if bitsets else [set(x) for x in adj]
    for v in order:
        cand = nbr[v]
        total, pad = rounded[v], rounded[v] - sizes[v]
        for u in sorted(adj[v], key=lambda i: (-sizes[i], i)):
            if (cand >> u & 1) if bitsets else (u in cand):
                total += rounded[u]
                pad = max(pad, rounded[u] - sizes[u])
                cand = cand & nbr[u]
        best = max(best, total - pad)
        if _passed(best, stop_above):
            return best
    if n <= exact_buffers:
        best = max(best, _clique_search(adj, sizes, rounded, best, budget=exact_budget, stop_above=stop_above))
    return best


#: ``subset_lower_bound`` looks at every subset of the conflicting buffers of a problem of at most this many buffers
#: (2^12 subsets, ~1 ms on the 2-core machine; 14 took 7 ms, 16 30 ms: it runs once per schedule planned)
SUBSET_BUFFERS = 12


def subset_lower_bound(problem: BufferProblem, max_buffers: int = SUBSET_BUFFERS) -> int:
    """A bound of a small problem stronger than any clique's where its conflict graph is not perfect (an in-place pair
    or concurrent streams leave a 5-cycle without a chord): the most, over every subset ``S`` of its conflicting
    buffers, of ``w(S) / alpha(S)``, ``alpha`` the most buffers of ``S`` no two of which conflict; 0 on a problem of
    more than ``max_buffers`` buffers.

    Proof: at any byte of a packing, the buffers of ``S`` that hold it pairwise do not conflict (conflicting buffers
    share no byte), so at most ``alpha(S)`` of them do, and summing over the arena's bytes ``w(S) <= alpha(S) * A``.
    With alignment ``a``, each buffer's range rounded up to ``a`` (``[offset, offset + align_up(size))``) still
    meets no conflicting buffer's (the next offset is aligned) and ends by ``align_up(A)``: so ``align_up(A) >=
    align_up(ceil(r(S) / alpha(S)))``, and ``A`` is more than that less ``a``. A clique is ``alpha(S) = 1``.
    Why: in-place pairs (two buffers that may share bytes) and concurrent streams leave conflict graphs no clique
    bound is tight on (a chordless 5-cycle of 100-byte buffers: cliques of 200 B, this bound 250), and a serial
    problem's bound was the per-node one alone, though an in-place pair lets three buffers conflict pairwise with no
    node where all are live (``tests/test_plan75_round75.py``: 1,048 B for an optimum of 1,280, this bound). Of 6,000
    problems of small random graphs, 7 bounds rose (all serial with in-place pairs); where the gap is the packing's
    (no contiguous placement reaches the heaviest clique), this bound is no stronger."""
    n = len(problem)
    if n == 0 or n > max_buffers:   # (before the conflict lists: a large problem pays nothing)
        return 0
    adj = problem.conflict_lists()
    keep = [i for i in range(n) if adj[i] and int(problem.sizes[i]) > 0]
    if not keep or len(keep) > max_buffers:
        return 0
    index = {b: k for k, b in enumerate(keep)}
    nbr = [sum(1 << index[j] for j in adj[b] if j in index) for b in keep]
    w = [int(problem.sizes[b]) for b in keep]
    a = int(problem.alignment)
    r = [int(align_up(x, a)) for x in w]
    alpha, raw, rounded = [0] * (1 << len(keep)), [0] * (1 << len(keep)), [0] * (1 << len(keep))
    best_raw = best_rounded = 0
    for subset in range(1, 1 << len(keep)):
        v = (subset & -subset).bit_length() - 1
        rest = subset & ~(1 << v)
        # (the most independent buffers of the subset: without its lowest buffer, or with it and none of its neighbours)
        alpha[subset] = max(alpha[rest], 1 + alpha[rest & ~nbr[v]])
        raw[subset], rounded[subset] = raw[rest] + w[v], rounded[rest] + r[v]
        best_raw = max(best_raw, -(-raw[subset] // alpha[subset]))
        best_rounded = max(best_rounded, -(-rounded[subset] // alpha[subset]))
    return max(best_raw, int(align_up(best_rounded, a)) - a + 1 if a > 1 else best_rounded)


def _passed(best: int, stop_above: int | None) -> bool:
    """Whether a clique search may stop: ``best`` is above ``stop_above`` (``clique_lower_bound``)."""
    return stop_above is not None and best > stop_above


def _dense_clique(problem: BufferProblem, seeds: int, budget: int, stop_above: int | None = None) -> int:
    """``clique_lower_bound``'s greedy cliques without adjacency lists (O(pairs) memory otherwise).

    From each seed (largest first) the candidates are its conflicting buffers, largest first; the
    first candidate joins and the rest are filtered by one vectorised conflict test against it. Each
    step is a clique, so stopping when ``budget`` pair tests are spent only weakens the bound.
    """
    sizes, lower, upper = problem.sizes, problem.lower, problem.upper
    rounded = align_up(sizes, problem.alignment)
    by_size = np.lexsort((np.arange(len(problem)), -sizes))
    best = int(sizes.max())
    rows = _ConflictRows(problem) if len(problem) <= DENSE_ROW_BUFFERS else None
    for v in by_size[:seeds].tolist():
        if budget <= 0:
            break
        cand = by_size[(sizes[by_size] > 0) & (lower[by_size] < upper[v]) & (upper[by_size] > lower[v])]
        cand = cand[cand != v]
        budget -= len(cand)
        cand = cand[rows.of(v)[cand]] if rows is not None else cand[problem._conflicts_of(v, cand)]
        total, pad = int(rounded[v]), int(rounded[v] - sizes[v])
        while len(cand) and budget > 0:
            u, rest = int(cand[0]), cand[1:]
            total += int(rounded[u])
            pad = max(pad, int(rounded[u] - sizes[u]))
            budget -= len(rest)
            if rows is not None:
                cand = rest[rows.of(u)[rest]]
                continue
            rest = rest[(lower[rest] < upper[u]) & (upper[rest] > lower[u])]
            cand = rest[problem._conflicts_of(u, rest)]
        best = max(best, total - pad)
        if _passed(best, stop_above):
            break
    return best


#: ``_dense_clique`` keeps each clique member's conflict row (n bytes, one per buffer it meets) up to this many
#: buffers (64 MiB at most), and tests candidates against it
DENSE_ROW_BUFFERS = 8192


class _ConflictRows:
    """Buffers' conflict rows (``row[b]``: ``b`` conflicts with the buffer), each made once, on first use, by one
    overlap test and one ``_conflicts_of`` over every buffer. Why: ``_dense_clique`` asked ``_conflicts_of`` once per
    clique member per seed, about 20 numpy steps on a few candidates each time: 61,000 calls and 2.1 of 4.8 s of
    ``layered_graph(3000)``'s plan on its own streams (2.4M pairs), where the same 3,150 buffers' rows recur from seed
    to seed. The same relation, so the same cliques and the same bound."""

    def __init__(self, problem: BufferProblem):
        self.problem = problem
        self.rows: dict[int, np.ndarray] = {}

    def of(self, u: int) -> np.ndarray:
        row = self.rows.get(u)
        if row is None:
            p = self.problem
            idx = np.flatnonzero((p.lower < p.upper[u]) & (p.upper > p.lower[u]))
            idx = idx[idx != u]
            row = np.zeros(len(p), dtype=bool)
            row[idx[p._conflicts_of(u, idx)]] = True
            self.rows[u] = row
        return row


#: ``clique_lower_bound`` keeps each buffer's neighbours as an n-bit int up to this many buffers (n^2 / 8 bytes:
#: 2 MiB), as sets above it
BITSET_BUFFERS = 4096


def _neighbour_bits(adj: list[list[int]], n: int) -> list[int]:
    """Each buffer's neighbours in the conflict graph as the set bits of one int (bit ``u`` for buffer ``u``)."""
    out = []
    row = np.zeros(n, dtype=bool)
    for nb in adj:
        row[nb] = True
        out.append(int.from_bytes(np.packbits(row, bitorder="little").tobytes(), "little"))
        row[nb] = False
    return out


def _clique_search(nbr: Sequence[Iterable[int]], sizes: list[int], rounded: list[int], incumbent: int,
                   budget: int, stop_above: int | None = None) -> int:
    """Branch and bound for the heaviest clique (value: rounded sizes less the largest rounding).

    Every clique it meets is a valid bound, so running out of ``budget`` expansions only costs
    strength, never soundness. Candidates are taken heaviest first; a branch is cut when even all
    of its candidates could not beat the incumbent. ``nbr[i]``: buffer ``i``'s neighbours.

    Each expansion narrows the candidates and sums their room in numpy (a row of a boolean adjacency
    matrix, at most ``exact_buffers`` squared bytes): the same branches in the same order as the Python
    loops it replaces, which spent O(candidates) interpreted steps per expansion, up to 20,000 x 2,000 per
    problem (10 s of each plan of a 1,000-output node, once per schedule a memory budget tried).
    """
    best = incumbent
    expansions = 0
    n = len(sizes)
    order = np.array(sorted((i for i in range(n) if sizes[i] > 0), key=lambda i: (-rounded[i], i)), dtype=np.int64)
    adjacent = np.zeros((n, n), dtype=bool)
    for i, nb in enumerate(nbr):
        adjacent[i, list(nb)] = True
    # int64 sums unless the rounded sizes together could pass it (then Python ints, still summed in C)
    weight = np.array(rounded, dtype=np.int64 if sum(rounded) < 1 << 63 else object)

    # an explicit stack, not recursion: a clique of a few thousand buffers (one node reading all of them on
    # several streams) nests one level per member, past Python's recursion limit. Each frame is
    # [total, pad, candidates, next index, room]; it visits the branches in the order the recursion did.
    def enter(total: int, pad: int, cand: np.ndarray) -> list:
        nonlocal best
        best = max(best, total - pad)
        return [total, pad, cand, 0, int(weight[cand].sum())]

    stack = [enter(0, 0, order)]
    while stack and not _passed(best, stop_above):
        frame = stack[-1]
        total, pad, cand, k, room = frame
        if k >= len(cand) or expansions >= budget or total + room - pad <= best:
            stack.pop()
            continue
        v = int(cand[k])
        expansions += 1
        frame[3], frame[4] = k + 1, room - rounded[v]
        after = cand[k + 1:]
        stack.append(enter(total + rounded[v], max(pad, rounded[v] - sizes[v]), after[adjacent[v, after]]))
    return best


def _int_column(problem: BufferProblem, name: str) -> np.ndarray:
    """``problem.<name>`` as a 1-D int64 array of non-negative integers, or SolverError naming the field and
    the first bad buffer: a float size was truncated (1.5 bytes planned as 1), a string parsed, NaN or
    2**63 raised numpy's ValueError or OverflowError, and a negative size blamed the solver."""
    values = getattr(problem, name)
    if not isinstance(values, np.ndarray):   # a list from code: its items as given (numpy would make 2**63 a float)
        try:
            items = list(values)
        except TypeError:
            raise SolverError(f"buffer problem: {name} must be a list of integers, not {short_repr(values)}") from None
        for k, v in enumerate(items):
            whole = isinstance(v, (int, np.integer)) or (isinstance(v, (float, np.floating)) and float(v).is_integer())
            if not whole or isinstance(v, (bool, np.bool_)) or not 0 <= v < 1 << 63:
                raise SolverError(f"buffer problem: {name}[{k}] ({problem.name_of(k)}) is {short_repr(v)}, not an "
                                  "integer in 0..2**63-1")
        return np.array([int(v) for v in items], dtype=np.int64)
    a = values
    if a.ndim != 1:
        raise SolverError(f"buffer problem: {name} must be a flat list of integers (it has shape {a.shape})")
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    if a.dtype.kind == "f":   # whole numbers in a float array (np.zeros(k)) are integers; 1.5 or NaN is not
        bad = np.flatnonzero(~np.isfinite(a) | (a != np.floor(a)) | (a < 0) | (a >= 2.0 ** 63))
        if len(bad):
            k = int(bad[0])
            raise SolverError(f"buffer problem: {name}[{k}] ({problem.name_of(k)}) is {a[k].item()!r}, not an "
                              "integer in 0..2**63-1")
        return a.astype(np.int64)
    if a.dtype.kind not in "iu":   # bool, str, object, ...
        raise SolverError(f"buffer problem: {name} must be integers, not an array of {a.dtype}")
    if a.dtype.kind == "u" and int(a.max()) >= 1 << 63:
        k = int(np.argmax(a))
        raise SolverError(f"buffer problem: {name}[{k}] ({problem.name_of(k)}) is {int(a[k])}, over 2**63-1")
    a = a.astype(np.int64, copy=False)
    if int(a.min()) < 0:
        k = int(np.argmin(a))
        raise SolverError(f"buffer problem: {name}[{k}] ({problem.name_of(k)}) is negative ({int(a[k])})")
    return a


def _check_fields(p: BufferProblem) -> None:
    """SolverError naming the first field of ``p`` (built in code, a public class) the solvers cannot take:
    each used to fail inside a solver (an IndexError, a TypeError) or plan silently wrong."""
    n = len(p.sizes)

    def count(v: Any) -> bool:
        return as_int(v) is not None

    a = as_int(p.alignment)
    if a is None or a <= 0 or a & (a - 1) or a > MAX_ALIGNMENT:
        raise SolverError(f"buffer problem: alignment {short_repr(p.alignment)} is not a power of two up to 2**48")
    object.__setattr__(p, "alignment", a)
    bad = np.flatnonzero(p.lower > p.upper)
    if len(bad):
        k = int(bad[0])
        raise SolverError(f"buffer problem: buffer {k} ({p.name_of(k)}) ends at {int(p.upper[k])}, before its "
                          f"lower {int(p.lower[k])}")
    # the total might pass int64: add it up exactly (each size as rounded up to the alignment: 70 sizes of 2**63 // 70
    # at alignment 2**20 passed a test of the sizes alone, and their packings wrapped around, e.g. skyline's to
    # 9,091,609,579,197,645,268 B, below the bound)
    if n and int(p.sizes.max()) + a - 1 > (((1 << 63) - 1) // n):
        total = sum(int(x) + (-int(x)) % p.alignment for x in p.sizes.tolist())
        if total >= 1 << 63:
            raise SolverError(f"buffer problem: the sizes add up to {total} bytes (rounded up to the alignment), "
                              "over the 2**63-byte limit of every offset")
    for name in ("capacity", "lower_bound"):
        v = getattr(p, name)
        if v is not None and (not count(v) or not 0 <= as_int(v) < 1 << 63):
            raise SolverError(f"buffer problem: {name} {short_repr(v)} is not a byte count in 0..2**63-1")
        if v is not None:
            object.__setattr__(p, name, as_int(v))
    if p.names is not None and (not isinstance(p.names, tuple) or len(p.names) != n
                                or not all(isinstance(x, str) for x in p.names)):
        raise SolverError(f"buffer problem: names must be a tuple of {n} strings (one per buffer)")
    for name in ("compatible", "inplace"):
        pairs = getattr(p, name)
        try:
            iter(pairs)
        except TypeError:
            pairs = None
        if pairs is None or isinstance(pairs, (str, bytes)):   # None, 3 or a 0-d array was a TypeError
            raise SolverError(f"buffer problem: {name} must be a collection of (i, j) pairs of buffer indices, "
                              f"not {short_repr(getattr(p, name))}")
        pairs = tuple(pairs)   # (a generator is read twice below)
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(count(i) and 0 <= i < n for i in pair)):
                raise SolverError(f"buffer problem: {name} entry {short_repr(pair)} is not a pair of buffer indices "
                                  f"in 0..{n - 1}")
        if name == "compatible":
            # unordered, each pair once, as ``conflicts`` reads it: a (1, 0) was a partner to the heuristics
            # and a conflict to the checker ("overlapped conflicting buffers: a solver bug"), and (0, 1) beside
            # (1, 0) listed one partner twice to the size planner's window index (an AssertionError)
            object.__setattr__(p, name, frozenset((min(i, j), max(i, j)) for i, j in
                                                  ((as_int(x), as_int(y)) for x, y in pairs)))
        else:
            object.__setattr__(p, name, pairs)
    _check_order(p.order, n)
    # free-form, but read by the solvers: ``meta.get`` (the in-place rejoin) raised a raw AttributeError on None or a
    # list, and a ``meta["inplace_inexact"]`` that holds no pairs a TypeError from ``in``
    if not isinstance(p.meta, Mapping):
        raise SolverError(f"buffer problem: meta must be a dict, not {type(p.meta).__name__} {short_repr(p.meta)}")
    # (round 76: ``inplace_resized`` too, and each present one, None included: ``rejoin`` takes the union of the two,
    # a raw TypeError from auto, search and cpsat on a list or None; and indices past the buffers, taken before,
    # turned a problem into a "stricter" copy of itself whose proven bound the claim then dropped: FEASIBLE, not OPTIMAL)
    for key in ("inplace_inexact", "inplace_resized"):
        if key not in p.meta:
            continue
        pairs = p.meta[key]
        if not (isinstance(pairs, (set, frozenset)) and all(
                isinstance(x, tuple) and len(x) == 2 and all(as_int(i) is not None and 0 <= as_int(i) < n for i in x)
                for x in pairs)):
            raise SolverError(f"buffer problem: meta[{key!r}] must be a set of (output, input) pairs of buffer "
                              f"indices in 0..{n - 1}, not {short_repr(pairs)}")
    _check_shifts(p, n)


def _check_shifts(p: BufferProblem, n: int) -> None:
    """SolverError naming ``meta['inplace_shift']`` (built in code: ``lifetimes`` makes it only of integers that are
    multiples of the alignment) where the solvers cannot take it: not a dict of ``(output, input)`` pairs of buffer
    indices to integers, a shift that puts the output's buffer off its input's (``lifetimes``' shifts are a view's
    offset in its root less another's: from minus the output's size to the input's), or a shift off the alignment for
    a pair not kept apart (``inplace_inexact``).

    Why: it is read deep inside every solver. A shift ``"x"`` was a raw ValueError from ``int()`` and one of 2**70 a
    raw OverflowError from numpy, from greedy, size, auto, search and cpsat alike; one of 2**63 - 4 put a 4-byte output
    at that offset, its end wrapped around int64, and every solver called the arena of 8 B OPTIMAL; a shift of 2 at
    alignment 4 put the output at its input's offset plus 2, and the checker refused that packing as a solver's bug
    ("solver 'greedy' placed '1' at offset 2, not a multiple of the alignment 4"): no aligned offsets put an output
    there, which is why ``lifetimes`` lists such a pair in ``inplace_inexact`` (kept apart) instead."""
    shift = p.meta.get("inplace_shift")
    if shift is not None and not isinstance(shift, Mapping):
        raise SolverError(f"buffer problem: meta['inplace_shift'] must be a dict of (output, input) pairs of buffer "
                          f"indices to integer shifts, not {type(shift).__name__} {short_repr(shift)}")
    shift = shift or {}
    inexact = p.meta.get("inplace_inexact") or frozenset()
    for pair, d in shift.items():
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(
                as_int(i) is not None and 0 <= as_int(i) < n for i in pair)):
            raise SolverError(f"buffer problem: meta['inplace_shift'] key {short_repr(pair)} is not an (output, input) "
                              f"pair of buffer indices in 0..{n - 1}")
        v = as_int(d)
        if v is None or not -(1 << 63) < v < 1 << 63:
            raise SolverError(f"buffer problem: meta['inplace_shift'][{short_repr(pair)}] is {short_repr(d)}, not an "
                              "integer shift of bytes within int64")
        out, inp = (as_int(i) for i in pair)
        if not -int(p.sizes[out]) <= v <= int(p.sizes[inp]):
            raise SolverError(f"buffer problem: meta['inplace_shift'][{short_repr(pair)}] is {v}, outside "
                              f"-{int(p.sizes[out])}..{int(p.sizes[inp])}: the output (buffer {out}, "
                              f"{int(p.sizes[out])} B) would lie off its input's buffer ({inp}, {int(p.sizes[inp])} B)")
        if v % p.alignment and pair not in inexact:
            raise SolverError(f"buffer problem: meta['inplace_shift'][{short_repr(pair)}] is {v}, not a multiple of "
                              f"the alignment {p.alignment}: no aligned offsets put the output there (list the pair "
                              "in meta['inplace_inexact'] to keep it apart)")
    # one join per pair of buffers: an entry each way ((0, 1) and (1, 0), which no graph makes: each would be produced
    # by the node that last reads the other) at two shifts asks for two places at once; the solvers took one of them
    # (``exact_pairs.pair_shifts``: the last) and ``rejoin`` the other, then reported the arena of the first
    # ("solver 'greedy' reported arena 260, but its offsets span 256 (a solver bug)", from auto, search and cpsat)
    joins: dict[tuple[int, int], tuple[int, tuple[int, int]]] = {}
    for pair in p.inplace:
        o, i = as_int(pair[0]), as_int(pair[1])
        d = as_int(shift.get(pair, 0))
        rel = d if o > i else -d   # (the offset of the larger index less the smaller's when joined)
        key = (min(o, i), max(o, i))
        seen = joins.setdefault(key, (rel, (o, i)))
        if seen[0] != rel:
            raise SolverError(f"buffer problem: inplace entries {seen[1]} and {(o, i)} join buffers {key[0]} and "
                              f"{key[1]} at two places (buffer {key[1]} less buffer {key[0]}: {seen[0]} and {rel}, "
                              "meta['inplace_shift'] or 0): an in-place output lies exactly on its input at one place")


def _check_order(order: Any, n: int) -> None:
    """SolverError naming the field of ``order`` (an ``HBOrder`` built in code) the solvers cannot read: ``first`` and
    ``visible`` integer arrays of one row a buffer and one column a stream, ``has_start`` and ``has_end`` bool arrays of
    one entry a buffer, ``last_time`` (if given) integers one a buffer, ``stream_time`` (if given) one integer array a
    stream. Why: each was read only deep inside a solver, so a row short, a column more in ``visible``, an int
    ``has_end`` or a list raised numpy's raw IndexError, ValueError or UFuncTypeError from every solver."""
    if order is None:
        return
    if not isinstance(order, HBOrder):
        raise SolverError(f"buffer problem: order must be a memplan HBOrder or None, not {type(order).__name__} "
                          f"{short_repr(order)}")

    def what(a: Any) -> str:
        return f"an array of shape {a.shape} ({a.dtype})" if isinstance(a, np.ndarray) else \
            f"{type(a).__name__} {short_repr(a)}"

    first = order.first
    streams = first.shape[1] if isinstance(first, (np.ndarray, StreamTable)) and first.ndim == 2 else None
    for name in ("first", "visible"):
        a = getattr(order, name)
        if not (isinstance(a, np.ndarray) or (name == "first" and isinstance(a, StreamTable))) or not (
                a.dtype.kind in "iu" and a.ndim == 2 and a.shape == (n, streams)):
            raise SolverError(f"buffer problem: order.{name} must be an integer array of shape ({n}, streams), one row "
                              f"a buffer and one column a stream" + (f" ({streams} in first)" if name == "visible"
                                                                     and streams is not None else "")
                              + f", not {what(a)}")
    for name in ("has_start", "has_end"):
        a = getattr(order, name)
        if not (isinstance(a, np.ndarray) and a.dtype == bool and a.shape == (n,)):
            raise SolverError(f"buffer problem: order.{name} must be a bool array of {n} entries (one a buffer), not "
                              f"{what(a)}")
    a = order.last_time
    if a is not None and not (isinstance(a, np.ndarray) and a.dtype.kind in "iu" and a.shape == (n,)):
        raise SolverError(f"buffer problem: order.last_time must be None or an integer array of {n} entries (one a "
                          f"buffer), not {what(a)}")
    times = order.stream_time
    if times is not None and not (isinstance(times, tuple) and len(times) == streams and all(
            isinstance(t, np.ndarray) and t.dtype.kind in "iu" and t.ndim == 1 for t in times)):
        raise SolverError(f"buffer problem: order.stream_time must be None or a tuple of {streams} integer arrays (one "
                          f"a stream), not {short_repr(times)}")


def interval_lower_bound(sizes: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> int:
    """Largest total size live at one time step (the bound minimalloc's benchmarks use)."""
    if len(sizes) == 0:
        return 0
    times = np.concatenate([lower, upper])
    deltas = np.concatenate([sizes, -sizes])
    o = np.lexsort((deltas, times))  # at equal times, ends (negative) first
    run = np.cumsum(deltas[o])
    return int(max(0, run.max()))


#: the most roundings ``padded_bound`` tries as the largest of a set (each one more pass of the bound it sharpens)
PAD_TRIES = 8


def padded_bound(total_of: Callable[[np.ndarray], int], sizes: np.ndarray, alignment: int,
                 among: np.ndarray | None = None) -> int:
    """A bound ``total_of(weights)`` (the heaviest set of pairwise conflicting roots, each root's weight from a
    full-length array) sharpened by alignment: the most, over a rounding ``r``, of ``total_of`` of each size rounded
    up to ``alignment`` but by at most ``r`` bytes, less ``r``; ``r`` tried among the roundings of ``sizes`` (of the
    roots in ``among``), all of them where there are at most ``PAD_TRIES``, else that many spread over them, the
    largest always. Never below the bound of the rounded sizes less the largest rounding in the graph.

    Why: tensors that must be pairwise disjoint start at aligned offsets, so all but the highest take their size
    rounded up: the set needs its rounded sizes less the largest rounding *of the set* (docs/format.md). The
    bounds took the largest rounding of the whole graph instead: one 1-byte tensor anywhere (a rounding of 255 at
    256) cut a node's three live tensors of 100, 100 and 256 bytes from 612 B to 513 B (greedy's 768 B plan: a gap of
    0.332 for 0.203), and left plans at their optimum FEASIBLE where no exact solver proved it. Proof: for a set and
    its highest member ``h``, the weights (``min(rounded, size + r)``) of the others are at most their rounded sizes,
    and ``h``'s at most its size plus ``r``, so the total less ``r`` is at most the set's need, for any ``r`` >= 0;
    at ``r`` = the set's largest rounding it is exactly that need. One ``total_of`` pass per rounding tried."""
    if alignment <= 1 or not len(sizes):
        return 0
    sizes = np.asarray(sizes, dtype=np.int64)
    rounded = align_up(sizes, alignment)
    pads = (rounded - sizes)[(sizes > 0) if among is None else (among & (sizes > 0))]
    pads = np.unique(pads[pads > 0])
    if len(pads) > PAD_TRIES:
        pads = pads[np.linspace(0, len(pads) - 1, PAD_TRIES).round().astype(np.int64)]
    return max((total_of(np.minimum(rounded, sizes + int(r))) - int(r) for r in pads.tolist()), default=0)


def aligned_interval_bound(sizes: np.ndarray, lower: np.ndarray, upper: np.ndarray, alignment: int) -> int:
    """``interval_lower_bound`` sharpened by alignment (``padded_bound``): the buffers live at one time step conflict
    pairwise, so all but the highest take their size rounded up to ``alignment``. Why: an interval problem's own
    bound (a minimalloc CSV's, ``memplan csv``) added raw sizes, so three 4-byte buffers live together at alignment
    256 had a bound of 12 B where every packing needs 516 B: the heuristics called their optimal 516 B packing
    HEURISTIC, and a capacity of 515 was "not found by the greedy heuristic (it proves nothing)", where no packing
    exists. A graph plan's bound (``lifetimes.aligned_lower_bound``) was sharpened so already."""
    return max(interval_lower_bound(sizes, lower, upper),
               padded_bound(lambda w: interval_lower_bound(w, lower, upper), sizes, alignment))


class Status(str, Enum):
    """How good a solution is known to be (the plan JSON's ``solver.status``).

    HEURISTIC: a heuristic's packing, no claim. FEASIBLE: an exact solver stopped at its budget with a
    proven bound below the arena. OPTIMAL: the arena equals a proven lower bound.
    """

    HEURISTIC = "HEURISTIC"
    FEASIBLE = "FEASIBLE"
    OPTIMAL = "OPTIMAL"

    def __str__(self) -> str:
        return self.value


@named_fields
@by_value
@dataclass(frozen=True)
class Solution:
    """Offsets for every buffer of a problem, with how they were found."""

    offsets: np.ndarray
    arena: int
    solver: str
    status: Status = Status.HEURISTIC
    lower_bound: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    @derived(SolverError, "arena", "lower_bound")
    def gap(self) -> float:
        """Relative distance to the lower bound (0.0 means proven optimal)."""
        return 0.0 if self.arena <= self.lower_bound else (self.arena - self.lower_bound) / max(self.arena, 1)


#: the decimals a reported gap keeps (``gap_of``)
GAP_DECIMALS = 6


def gap_of(arena: int, bound: int) -> float:
    """The gap a plan reports for ``arena`` against its proven ``bound``: ``(arena - bound) / arena`` to
    ``GAP_DECIMALS`` decimals, 0.0 only where the arena meets the bound (the OPTIMAL claim); a gap that rounds to 0
    there though the arena is above the bound keeps 3 significant digits instead (``2.22e-16``).

    Why: rounded to 6 decimals, any gap below 5e-7 read 0.0, the optimal gap: at arenas near 2**50 bytes and above,
    a plan hundreds of bytes above its bound (greedy's 189 B over the optimum of three tensors of about 2**48 B
    at alignment 256; CP-SAT's 27 B over ``1,681,152,776,458,593,189`` B) printed ``gap 0.0`` beside FEASIBLE or
    HEURISTIC. Gaps of 5e-7 and more are rounded as before, so such plans keep their bytes. The exact distance is
    the plan's own integers (``arena_bytes`` and the bound)."""
    arena, bound = int(arena), int(bound)
    if arena <= bound:
        return 0.0
    gap = (arena - bound) / max(arena, 1)   # (exact integers divided: correctly rounded, never 0 here)
    rounded = round(gap, GAP_DECIMALS)
    return rounded if rounded > 0 else float(f"{gap:.3g}")


def arena_of(problem: BufferProblem, offsets: np.ndarray) -> int:
    if len(problem) == 0:
        return 0
    return int(max(0, int((np.asarray(offsets) + problem.sizes).max())))


def find_collision(problem: BufferProblem, offsets: np.ndarray) -> tuple[int, int] | None:
    """The smallest pair ``(i, j)`` of conflicting buffers whose byte ranges overlap, or None.

    A solver-side self-check (the graph verifier is the independent one); it also is the whole
    check for raw CSV problems, which have no graph. Pairs overlapping in bytes come out of a sweep
    over offsets (few in a sound plan), then the time overlap and the conflict relation filter them.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    sizes = problem.sizes
    idx = np.lexsort((np.arange(len(problem)), offsets))
    idx = idx[sizes[idx] > 0]
    off = offsets[idx]
    ends = np.searchsorted(off, off + sizes[idx], side="left")
    cnt = np.maximum(ends - np.arange(len(idx)) - 1, 0)
    tot = int(cnt.sum())
    if tot == 0:
        return None
    rows = np.repeat(np.arange(len(idx)), cnt)
    a = idx[rows]
    b = idx[rows + 1 + np.arange(tot) - np.repeat(np.cumsum(cnt) - cnt, cnt)]
    lower, upper = problem.lower, problem.upper
    keep = (lower[a] < upper[b]) & (lower[b] < upper[a])
    a, b = a[keep], b[keep]
    keep = problem._conflict_mask(a, b)
    if not keep.any():
        return None
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    k = np.lexsort((hi, lo))[0]
    return (int(lo[k]), int(hi[k]))
