"""A lower bound from one *cut* of a multi-stream schedule: the roots that straddle a downward-closed set of nodes.

Why: the per-node bound and the issue-order sweep (``lifetimes.sweep_lower_bound``) only count roots that are live
together at one node, or across one prefix of the issue order. On concurrent streams the heaviest set of roots that
pairwise conflict is usually live across no single node and no single issue prefix: each stream is at its own
point of its work. A fan-out of 20,000 branches on 8 streams (``wide_graph(20000)``) had a bound 2.7 % below the
arena greedy found, and the conflict-clique search (``problem.clique_lower_bound``) ran out of its pair budget
before it got closer. Here each stream gets its own threshold.

Proof: let ``D`` be an ideal of happens-before (a set of nodes holding every node that happens-before one of its
members), with the virtual start access (inputs) in ``D`` and the virtual end access (outputs) outside it, and
``D'`` the ideal ``D`` plus a *frontier*: nodes, at most one a stream, whose predecessors all lie in ``D`` (so no
two are ordered). Call a root *straddling* when it has an access in ``D'`` and one outside ``D``. Two straddling
roots ``A != B`` conflict under contract rule 3: were every access of ``A`` to happen-before every access of ``B``,
``A``'s access outside ``D`` would happen-before ``B``'s access in ``D'``; were the latter in ``D``, so would be
the former; were it a frontier node, the former would be one of its predecessors, hence in ``D``. So the
straddling roots pairwise conflict, save an in-place pair at a frontier node (the one exception of rule 3), of
which the smaller member is left out. Each sits at an aligned offset: their sizes rounded up to the alignment,
less the largest rounding, is a bound of every safe plan of the schedule. With ``D`` a node's predecessors and
that node its frontier, this is the contract's per-node bound; with ``D`` an issue-order prefix, the sweep's.

A cut is a threshold ``t[s]`` per stream (``D`` holds its first ``t[s]`` nodes) and a bit ``e[s]`` (``D'`` holds
node ``t[s]`` too); vector clocks say which cuts are ideals. The search starts at the heaviest issue-order prefix
and raises the weight by moving one stream's threshold and bit at a time to the best place the others allow
(coordinate ascent; a move only when it adds weight, so it ends). Where each stream's work is independent of the
others' (fan-outs, experts, heads), the weight is a sum of per-stream terms and one round finds the heaviest cut.
It starts again from other issue prefixes (``QUANTILES``) and keeps the heaviest cut. Every cut it visits is a
valid bound: stopping early (the ``rounds``, ``max_cells`` and ``max_moves`` caps, counts, never the clock: the bound
repeats) only costs strength.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .problem import align_up

#: ``schedule.HappensBefore`` and ``lifetimes.Lifetimes``, named here only: lifetimes imports this module, and the
#: modules of memplan form no import circle (tests/test_walls.py)
HappensBefore = Lifetimes = Any

#: clock cells (nodes x streams) the ascent may read, each round reading them all once: past it (fewer starts and
#: rounds; none at 100,000 nodes on 1,024 streams) the bound is left to the sweep and the clique search
MAX_CELLS = 1 << 27
#: rounds of the coordinate ascent from one start (each moves every stream once, at most)
ROUNDS = 6
#: moves of one stream's threshold, over every start (each ~0.1 ms of numpy calls: at 1,024 streams a round is
#: 1,024 of them, so there the first starts alone run)
MAX_MOVES = 4096
#: besides the heaviest issue-order cuts, the ascent also starts at the issue prefixes k/QUANTILES of the way
QUANTILES = 8


def cut_lower_bound(hb: HappensBefore, lt: Lifetimes, sizes: np.ndarray, alignment: int = 1, *,
                    rounds: int = ROUNDS, max_cells: int = MAX_CELLS, max_moves: int = MAX_MOVES) -> int:
    """The heaviest cut the ascent finds (module docstring): a proven bound of every safe plan of ``hb``'s schedule,
    0 on one stream (where the sweep bound is this bound) or past ``max_cells``."""
    S = hb.num_streams
    B = len(lt.roots)
    lens = np.array([len(x) for x in hb.stream_nodes], dtype=np.int64)
    if S < 2 or B == 0 or int(lens.sum()) * S > max_cells // 2:
        return 0
    sizes = np.asarray(sizes, dtype=np.int64)
    weight = align_up(sizes, alignment) if alignment > 1 else sizes
    if float(weight.sum(dtype=np.float64)) >= 2.0 ** 62:   # (int64 sums would wrap: the other bounds cover it)
        return 0
    cut = _Cut(hb, lt, weight, lens)
    best = 0
    cells = max_cells // (int(lens.sum()) * S)   # rounds the clock reads allow, over every start
    left = min(cells * S, max_moves)              # moves (each reads its stream's clock rows)
    n = len(hb.pos)
    starts = [(False, None), (True, None)] + [(False, n * k // QUANTILES) for k in range(1, QUANTILES)]
    # the streams some root is accessed on, last first (a move of any other changes nothing, but counts against
    # ``left`` as before: in a split each device's problem sees every device's streams, and a 512-device split
    # spent 1.9 s calling ``move`` 2 million times on streams of other devices)
    busy = [s for s in range(S - 1, -1, -1) if len(cut.rows[s])]
    for frontier, at in starts:
        if left <= 0:
            break
        cut.start(frontier, at)
        for _ in range(rounds):
            moved = False
            for s in busy:
                if left - (S - 1 - s) <= 0:   # (the moves a round takes down to ``s``, one a stream)
                    break
                moved |= cut.move(s)
            left = max(left - S, 0)
            if not moved:
                break
        best = max(best, _value(cut.straddling(), sizes, alignment, lt.compatible))
    return best


def _value(on: np.ndarray, sizes: np.ndarray, alignment: int, compatible) -> int:
    """The bound the straddling roots ``on`` prove: in-place pairs that both straddle lose their smaller member (the
    rest pairwise conflict), then the larger of the raw sum and the aligned sum less the largest rounding."""
    on = on.copy()
    if compatible:   # (removing the smaller of each pair at once leaves more out than needed: still a clique)
        a, b = np.array([(x, y) for x, y, _n in compatible], dtype=np.int64).T
        both = on[a] & on[b]
        on[np.where((sizes[a] < sizes[b]) | ((sizes[a] == sizes[b]) & (a < b)), a, b)[both]] = False
    if not on.any():
        return 0
    raw = sizes[on]
    best = int(raw.sum())
    if alignment > 1:
        rounded = align_up(raw, alignment)
        best = max(best, int(rounded.sum()) - int((rounded - raw).max()))
    return best


class _Cut:
    """The ascent's state: thresholds ``t``, and per root how many of its per-stream access runs lie in the cut
    (``inside``, the virtual start counted) and outside it (``outside``, the virtual end counted)."""

    def __init__(self, hb: HappensBefore, lt: Lifetimes, weight: np.ndarray, lens: np.ndarray) -> None:
        self.hb, self.weight, self.lens = hb, weight, lens
        S = hb.num_streams
        # each stream's accessing roots (the tables' stored cells: a buffer's accessed streams), by stream and then
        # root, with their first access's seq and their last's + 1
        b, c, f = lt.first.cells()
        last = lt.last.cells()[2]
        o = np.argsort(c, kind="stable")            # by stream, roots ascending within each
        b, c = b[o].astype(np.int64), c[o]
        f, last = f[o].astype(np.int64), last[o].astype(np.int64)
        cuts = np.searchsorted(c, np.arange(S + 1))
        # (every stream's rows end to end, and where each stream's begin: ``_settled`` reads them at once)
        self.cells, self.cuts = (b, c.astype(np.int64), f, last), cuts
        self.rows = [b[cuts[s]:cuts[s + 1]] for s in range(S)]
        self.f = [f[cuts[s]:cuts[s + 1]] for s in range(S)]      # first access's seq on s
        self.l = [last[cuts[s]:cuts[s + 1]] for s in range(S)]   # last access's seq on s, + 1
        self.has_start = np.asarray(lt.has_start, dtype=bool)
        self.has_end = np.asarray(lt.has_end, dtype=bool)
        # every stream's nodes end to end, and where each stream's begin (``_count``'s ends at once)
        self.flat = (np.concatenate(hb.stream_nodes).astype(np.int64) if S else np.zeros(0, dtype=np.int64),
                     np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64))
        self.t = np.zeros(S, dtype=np.int64)   # the cut D: each stream's first t[s] nodes
        self.e = np.zeros(S, dtype=np.int64)   # 1: D's frontier node on s (seq t[s]) is in the cut D' too
        # each root's first and last issue time (start 0, a node p + 1, end len + 1), for the starting prefix
        end = len(hb.pos) + 1
        counts = np.diff(lt.acc_ptr)
        owners = np.repeat(np.arange(len(weight)), counts)
        lo = np.full(len(weight), end + 1, dtype=np.int64)
        hi = np.full(len(weight), -1, dtype=np.int64)
        if len(lt.acc_nodes):
            at = hb.pos[lt.acc_nodes].astype(np.int64) + 1
            np.minimum.at(lo, owners, at)
            np.maximum.at(hi, owners, at)
        lo[self.has_start] = 0
        hi[self.has_end] = end
        self.span = lo, hi, end
        # each root's accessing streams (``rows`` transposed), and which streams' ``move`` may answer otherwise than
        # it last did (``_touched``): every one after ``start``, then those a move of another stream reached
        o = np.argsort(b, kind="stable")
        self.root_ptr = np.concatenate(([0], np.cumsum(np.bincount(b, minlength=len(weight))))).astype(np.int64)
        self.root_streams = c[o].astype(np.int64)
        self.dirty = np.ones(S, dtype=bool)

    def start(self, frontier: bool, at: int | None = None) -> None:
        """Start at the heaviest issue-order cut: ``D`` the nodes at positions below ``p`` and, with ``frontier``,
        ``D'`` the node at ``p`` too (the sweep bound's cut: a local optimum the one-stream moves cannot leave, as
        when the heaviest clique is an output and the last reader of another, live together at a join). A root
        with issue times ``lo..hi`` (start 0, position ``q`` at ``q + 1``, end ``len + 1``) straddles ``D`` alone
        for ``lo <= p < hi``, and with the frontier for ``lo <= p + 1 <= hi``. ``at``: start at ``D`` the nodes at
        positions below ``at`` instead (a cut in the middle of every stream's work, which a start at the heaviest
        prefix, one stream not yet started, may not reach by one-stream moves)."""
        lo, hi, end = self.span
        ok = hi >= lo
        a, b, w = lo[ok], hi[ok], self.weight[ok]
        if frontier:
            a, b = np.maximum(a - 1, 0), b - 1    # p in [lo - 1, hi - 1]
        else:
            b = b - 1                             # p in [lo, hi - 1]
        keep = a <= b
        diff = np.zeros(end + 2, dtype=np.int64)
        np.add.at(diff, a[keep], w[keep])
        np.add.at(diff, b[keep] + 1, -w[keep])
        n_nodes = len(self.hb.pos)
        run = np.cumsum(diff)[:n_nodes if frontier else n_nodes + 1]
        p = (int(np.argmax(run)) if len(run) else 0) if at is None else at
        pos = self.hb.pos
        # each stream's nodes issued before p (a stream's nodes are in issue order): one count over every node, not
        # a search per stream (a split's device problems see every device's streams: 256 devices, 256 searches per
        # start, 9 starts per device, were 2.5 of the 23 s a 3,000-node chain's split took)
        self.t = np.bincount(self.hb.stream[pos < p], minlength=len(self.hb.stream_nodes)).astype(np.int64)
        self.e = np.zeros_like(self.t)
        if frontier and p < n_nodes:
            self.e[int(self.hb.stream[int(np.flatnonzero(pos == p)[0])])] = 1
        self._count()
        self.dirty = ~self._settled()

    def _settled(self) -> np.ndarray:
        """Per stream, whether every root on it that some place of its threshold could make straddle straddles now
        (``move``'s first test, for every stream at once): those streams' first moves of a start answer False, so
        they start clean. Why: each start's first round asked every busy stream in turn, most of them settled (a
        128-device split's device problems: 16,000 of 37,000 moves), each of those a handful of numpy calls."""
        b, c, f, last = self.cells
        t, e = self.t[c], self.e[c]
        fin, lout = f < t + e, last > t
        in_o, out_o = self.inside[b] - fin > 0, self.outside[b] - lout > 0
        w = self.weight[b]
        cuts = self.cuts

        def per_stream(x: np.ndarray) -> np.ndarray:
            # integer sums (float weights round above 2**53); a running sum may wrap past 2**63, but each stream's
            # difference is its own sum, below 2**62 (``cut_lower_bound``), and wrapping arithmetic keeps it exact
            run = np.concatenate(([0], np.cumsum(x, dtype=np.int64)))
            return run[cuts[1:]] - run[cuts[:-1]]

        now = per_stream(np.where((fin | in_o) & (lout | out_o), w, 0))
        could = per_stream(np.where(np.where(in_o, 0, f) <= np.where(out_o, self.lens[c], last - 1), w, 0))
        return now >= could

    def _count(self) -> None:
        # each stream's last node in D' (0 where none), at once: ``_end`` stream by stream took 2 s in a 512-device split
        k = self.t + self.e
        flat, first = self.flat
        self.ends = np.where(k > 0, flat[np.minimum(first + k - 1, max(len(flat) - 1, 0))] if len(flat) else 0, 0)
        self.inside = self.has_start.astype(np.int64)
        self.outside = self.has_end.astype(np.int64)
        for s, r in enumerate(self.rows):
            if len(r):   # (a stream none of these roots is accessed on: another device's, in a split)
                self.inside[r] += self.f[s] < self.t[s] + self.e[s]
                self.outside[r] += self.l[s] > self.t[s]

    def _end(self, s: int) -> None:
        k = int(self.t[s] + self.e[s])
        self.ends[s] = int(self.hb.stream_nodes[s][k - 1]) if k > 0 else 0

    def straddling(self) -> np.ndarray:
        return (self.inside > 0) & (self.outside > 0)

    def _range(self, s: int) -> tuple[int, int]:
        """The thresholds stream ``s`` may take with the others fixed: at least what the others' nodes in the cut
        (their frontier too) have seen of ``s``; its own nodes up to the frontier (``t + e``) no further than
        that, each seeing no more of another stream than that stream's threshold ``t`` (both stay ideals)."""
        hb, t, e = self.hb, self.t, self.e
        ends = self.ends[t + e > 0]    # (the D' nodes last on each stream: clocks grow along a stream)
        ends = ends[hb.stream[ends] != s]
        low = int(hb.clock[ends, s].max()) if len(ends) else 0
        over = hb.clock[hb.stream_nodes[s]] > t[None, :]
        over[:, s] = False
        bad = np.flatnonzero(over.any(axis=1))
        high = int(bad[0]) if len(bad) else int(self.lens[s])
        return low, high

    def _gain(self, a: np.ndarray, b: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
        """Per threshold ``0..n``: the weight of the roots straddling there (root ``k`` over ``[a[k], b[k]]``)."""
        ok = a <= b
        diff = np.zeros(n + 2, dtype=np.int64)
        np.add.at(diff, a[ok], w[ok])
        np.add.at(diff, b[ok] + 1, -w[ok])
        return np.cumsum(diff)[:n + 1]

    def move(self, s: int) -> bool:
        """Move stream ``s``'s threshold (and frontier) to the heaviest place allowed; True when that added
        weight."""
        r = self.rows[s]
        if not len(r) or not self.dirty[s]:   # (nothing it reads changed since it last found no better place)
            return False
        self.dirty[s] = False
        n = int(self.lens[s])
        f, last, cur, ce = self.f[s], self.l[s], int(self.t[s]), int(self.e[s])
        fin, lout = f < cur + ce, last > cur
        in_o = self.inside[r] - fin > 0
        out_o = self.outside[r] - lout > 0
        w = self.weight[r]
        # a root straddles while outside the cut at t < last (an access at seq >= t), and inside it once
        # t + e > f: at t > f without the frontier node, at t >= f with it
        b = np.where(out_o, n, last - 1)
        a1 = np.where(in_o, 0, f)
        # every place weighs at most the roots some place makes straddle (the frontier's intervals hold the others'):
        # where they all straddle now, none weighs more (so for 44 % of a 128-device split's moves, no gains and no
        # range are computed)
        now = int(w[(fin | in_o) & (lout | out_o)].sum())
        if now >= int(w[a1 <= b].sum()):
            return False
        gains = (self._gain(np.where(in_o, 0, f + 1), b, w, n), self._gain(a1, b, w, n))
        low, high = self._range(s)
        best, at = now, None
        for e, top in ((0, high), (1, min(high, n) - 1)):
            if top < low:
                continue
            g = gains[e][low:top + 1]
            peak = int(g.max())
            if peak > best or (at is not None and peak == best):
                # of the heaviest places, the nearest to the current one: a far move that only ties (stream 0 back
                # to its first node, its fork's outputs all outside) can shut every other stream out of the cut
                ks = low + np.flatnonzero(g == peak)
                k = int(ks[np.argmin(np.abs(ks - cur))])
                if at is None or peak > best or abs(k - cur) < abs(at[0] - cur):
                    best, at = peak, (k, e)
        if at is None:
            return False
        was_end = int(self.ends[s]) if cur + ce > 0 else -1
        self.t[s], self.e[s] = at
        self._end(s)
        now_in, now_out = f < at[0] + at[1], last > at[0]
        self.inside[r] += now_in.astype(np.int64) - fin
        self.outside[r] += now_out.astype(np.int64) - lout
        self._touched(s, r[(now_in != fin) | (now_out != lout)], cur, was_end)
        return True

    def _touched(self, s: int, roots: np.ndarray, was_t: int, was_end: int) -> None:
        """Mark the streams whose ``move`` may answer otherwise now that stream ``s`` moved from threshold ``was_t``
        (its last node in ``D'`` ``was_end``, -1: none): ``move(x)`` reads only the other streams' counts of the roots
        on ``x`` (``inside``, ``outside``) and ``_range(x)``, whose ``low`` reads each other stream's last node's clock
        at ``x`` and whose ``high`` the count of ``x``'s nodes each other stream's threshold admits. Why: a move that
        finds no better place changes nothing, and 98 % of them did not (a split's device problem sees every device's
        streams: 58,000 moves for 1,000 that moved, 7 of the 12 s a 3,000-node graph over 128 devices took); a stream
        none of this reaches would find none again. ``s`` itself is left clean: it is where the others let it be best."""
        hb, dirty = self.hb, self.dirty
        if len(roots):   # the streams that access a root whose count changed
            ptr = self.root_ptr
            for b in roots.tolist():
                dirty[self.root_streams[ptr[b]:ptr[b + 1]]] = True
        # ``low``: the streams where the last node's clock changed (no node: a row of zeros)
        k = int(self.t[s] + self.e[s])
        new_row = hb.clock[int(self.ends[s])] if k > 0 else None
        old_row = hb.clock[was_end] if was_end >= 0 else None
        if new_row is None and old_row is not None:
            dirty |= old_row != 0
        elif new_row is not None:
            dirty |= (new_row != old_row) if old_row is not None else (new_row != 0)
        # ``high``: the streams with a node whose clock at ``s`` lies between the old threshold and the new one
        t = int(self.t[s])
        if t != was_t:
            col = hb.clock[:, s]
            dirty[hb.stream[(col > min(t, was_t)) & (col <= max(t, was_t))]] = True
        dirty[s] = False
