"""The fewest events of a candidate schedule, on node indices: ``schedule_with_events`` for the optimizer.

``schedule.schedule_with_events`` (the public one) takes node ids, checks the schedule and keeps a dense
vector clock per node: one row of every stream for each node, copied and maxed with numpy. The optimizer
calls it for every candidate it scores and for every fork ``budget`` gives back, on schedules it built
itself (topological by construction, streams numbered by first use), where those costs were most of its
time. ``wait_pairs`` makes the same choices on indices with *sparse* clocks shared along a stream: a node
that waits on no event has the clock of the node before it on its stream (plus its own entry, kept
implicitly), so only an event copies a clock, and a copy holds only the streams it knows of. A clock's entry for
a stream is 1 + the issue position of the latest node of that stream it knows (not its count on that stream:
the same comparisons, but a node's position stays put when ``Replay.rescore`` moves other nodes between streams,
so a clock that comes out as it was stops the change there). Above ``DENSE_STREAMS`` streams a clock knows nearly all of them, and a copy is a numpy
row instead (merged in one step, not one per stream). ``tests/test_optimize_fast.py`` checks it against
``schedule_with_events``; ``tests/test_perf_round48.py`` checks the rows against the dicts.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..graph import Graph, WriterFold
from ..schedule import writers_by_stream

#: a node with more direct writers than this is replayed by ``Replay.rescore`` from its latest writer per stream
#: in the base run, corrected for the writers that moved (a join of 10,000 branches: its 10,000 writers once)
BIG_READER = 16
#: ``Replay.rescore`` replays the rest of a window in order, as ``_run`` does, once more than a ``SEQUENTIAL_SHARE``-th
#: of the positions left (at least ``SEQUENTIAL_AT`` of them) are due (a layer of a layered DAG given back: everything
#: after it is); its heap costs more per node than a plain replay
SEQUENTIAL_AT = 32
SEQUENTIAL_SHARE = 4
#: ``Replay.rescore`` finds the readers of a changed writer's views from an index (``_RescoreIndex.vreaders``) while
#: listing it takes at most this many times (nodes + inputs) steps; past that, it replays every view read with a
#: writer from the first moved position on
VIEW_READER_STEPS = 4
#: ``Replay``'s ``cap`` when none is given: more events than any run takes (``max_events`` lies below 2**63)
NO_CAP = 1 << 63
#: a ``Replay`` of more distinct streams than this keeps its clocks dense (a numpy row per clock, indexed by stream):
#: a clock then knows nearly every stream, and merging it entry by entry in a dict was O(streams) Python steps per
#: event (a 2,000-node layered DAG on 1,024 streams under ``max_events``: 38 s of ``score_forks``)
DENSE_STREAMS = 32
#: ... unless its rows could take more than this many cells (a row for every node that takes an event: 1 GiB of
#: int32), where the dict clocks (which hold only the streams a clock knows) stay
DENSE_MAX_CELLS = 1 << 28


def wait_pairs(graph: Graph, order: Sequence[int], streams: Sequence[int]) -> list[tuple[int, int]]:
    """The events ``schedule_with_events`` gives node indices ``order`` on ``streams`` (one per entry),
    as (after, before) node-index pairs in the same order. ``order`` must be a topological issue order
    (every read after its chain's writers) and keep fusion groups whole: it is not checked. One pass of
    ``Replay``'s loop (its simulated times unused), so the choice of events is written once."""
    return Replay(graph, order, streams, [0.0] * len(graph.nodes), 0.0, record=True).pairs


def _latest_writers(deps: dict[int, int], direct: Iterable[int], folded: Iterable[Mapping[int, int]], s: int,
                    stream: Sequence[int], pos: Sequence[int]) -> list[int]:
    """The writers a node on stream ``s`` waits for, latest first: the latest per other stream among ``deps`` (stream ->
    writer, taken as they are), the ``direct`` writers of its input and each view's writers per stream (``folded``).
    ``Replay._run`` and ``Replay.rescore`` take the same events through it, which keeps their numbers equal."""
    for w in direct:
        sw = stream[w]
        if sw not in deps or pos[w] > pos[deps[sw]]:
            deps[sw] = w
    for per in folded:
        for sw, w in per.items():
            if sw not in deps or pos[w] > pos[deps[sw]]:
                deps[sw] = w
    deps.pop(s, None)
    ds = list(deps.values())
    if len(ds) > 1:
        ds.sort(key=lambda d: -pos[d])
    return ds


Clock = dict[int, int] | np.ndarray   # a node's vector clock: a dict of the streams it knows, or a dense row


def _merge_clock(cur: Clock, other: Clock, sd: int, count: int, s: int, dense: bool, fresh: bool = False
                 ) -> tuple[Clock, int]:
    """Merge ``other`` (the clock of a node ``d`` on stream ``sd`` that the node being replayed, on stream ``s``, waits
    for) into ``cur``: the entry-wise max, then ``d``'s own entry (``count``: 1 + its issue position, more than any
    clock it is merged with held) and ``s``'s own entry implicit (0 in a dense row, absent from a dict). ``fresh``:
    ``cur`` is shared (another node's clock), so the merge goes into a new clock, else into ``cur`` itself (owned by the
    node being replayed). Returns (the merged clock, the merge steps taken, ``Replay.merge_steps``): one for a dense
    row, one per stream a dict clock knows. A fresh dense merge is one ``np.maximum`` into a new row, not a copy and
    then a maximum in place: the same row, one numpy call fewer per node that takes events (a 2,000-node layered DAG
    on 1,024 streams: 600,000 copies in ``budget.score_forks``).
    Why one function: ``_run`` and the rescoring replay must make the very same clocks, or their scores differ."""
    if dense:
        if fresh:
            cur = np.maximum(cur, other)
        else:
            np.maximum(cur, other, out=cur)
        cur[sd] = count
        cur[s] = 0
        return cur, 1
    if fresh:
        cur = dict(cur)
    for x, k in other.items():
        if k > cur.get(x, 0):
            cur[x] = k
    cur[sd] = count
    cur.pop(s, None)
    return cur, len(other)


class Replay:
    """``wait_pairs`` and the simulated run (``timeline.simulate_indices``) of one issue order, kept at
    marked positions, so that the same order with other streams from a marked position on is run from
    there only: ``budget.score_forks`` gives back one fork at a time, and everything issued before the
    fork's first unit keeps its stream, its events and its times.

    ``order``: node indices; ``streams``: one per entry (any stream ids: only which nodes share one
    matters); ``marks``: the positions ``rerun`` may start from. ``rerun(p, streams)`` gives (events,
    makespan) of the order on ``streams``, which must equal this run's streams before position ``p``.
    ``windows`` (default: with marks): keep the events and the latest end before every position, which only
    ``rerun_window`` reads; ``budget.candidate_pool``'s chains of branches never window, and two appends per
    node were a tenth of each replay. ``cap`` (``max_events``): the run (and each ``branch``) stops once it has
    taken more events (``capped_at``: the position after the node that went over), since ``candidate_pool`` drops
    such a run whatever its makespan; its marks past that position are not kept (``over_cap``).
    """

    def __init__(self, graph: Graph, order: Sequence[int], streams: Sequence[int], cost: Sequence[float],
                 event_us: float, marks: Sequence[int] = (), record: bool = False, windows: bool | None = None,
                 cap: int | None = None):
        n_nodes = len(graph.nodes)
        self.graph, self.order, self.cost, self.event_us = graph, list(order), cost, event_us
        self.reach: WriterFold | None = None   # (made by ``_inherited`` when first needed)
        self.pos = [0] * n_nodes
        for p, v in enumerate(order):
            self.pos[v] = p
        self.stream = [0] * n_nodes
        for v, s in zip(order, streams):
            self.stream[v] = s
        self.seq = [0] * n_nodes
        #: dense clocks (``DENSE_STREAMS``): the row length (every stream id lies below it), else 0 (dict clocks)
        self.dense = _dense_width(streams)
        self.empty = np.zeros(self.dense, dtype=np.int32) if self.dense else {}
        self.clock: list = [self.empty] * n_nodes
        self.end = [0.0] * n_nodes
        self.marks: dict[int, tuple] = {p: () for p in marks}
        #: with ``record``: the events taken, as (after, before) node-index pairs (``wait_pairs``)
        self.pairs: list[tuple[int, int]] | None = [] if record else None
        #: with ``windows``: the events taken and the latest end before each position (``rerun_window``)
        self.windows = bool(marks) if windows is None else windows
        self.events_at: list[int] = []
        self.top_at: list[float] = []
        #: with ``cap``: the run stops once it has taken more than ``cap`` events (``over_cap``)
        self.cap = NO_CAP if cap is None else cap
        self.capped_at = NO_CAP
        #: the Python steps of every clock merge this Replay made (``_run``, ``rescore``): an entry of a dict clock, a
        #: row of a dense one (for tests: operation counts, not times)
        self.merge_steps = 0
        self.events, self.makespan = self._run(0, self.stream, self.seq, self.clock, self.end, {}, {}, {}, 0, 0.0,
                                               self.marks, self.pairs)
        if self.windows:
            self.events_at.append(self.events)
            self.top_at.append(self.makespan)

    def rerun(self, p: int, streams: Sequence[int]) -> tuple[int, float]:
        if not self._fits(streams[p:]):   # (a stream past this run's dense rows: a whole run, the same numbers)
            full = Replay(self.graph, self.order, streams, self.cost, self.event_us)
            return full.events, full.makespan
        counts, last, free, events, top = self.marks[p]
        stream = list(self.stream)
        order = self.order
        for q in range(p, len(order)):
            stream[order[q]] = streams[q]
        return self._run(p, stream, list(self.seq), list(self.clock), list(self.end), dict(counts), dict(last),
                         dict(free), events, top, None, None)

    def branch(self, p: int, streams: Sequence[int], marks: Sequence[int] = ()) -> Replay:
        """The Replay of this order on ``streams`` (one per position, equal to this run's before position ``p``, one
        of its marks), run from ``p`` only, with ``marks`` of its own (those before ``p`` must be marks of this run
        too): its (``events``, ``makespan``) are a full
        ``Replay``'s, the same operations on the same state. Why: ``budget.candidate_pool`` scores each prefix of a
        fork list, and a prefix differs from the one before it only from its new forks' first unit on, so a chain
        of branches replays each prefix from there, not from the start. Its ``pairs`` (when this run records them)
        are a full run's: this run's before ``p``, then its own."""
        if not self._fits(streams[p:]):   # (a stream past this run's dense rows: a whole run, the same Replay)
            return Replay(self.graph, self.order, streams, self.cost, self.event_us, marks, self.pairs is not None,
                          self.windows, self.cap)
        counts, last, free, events, top = self.marks[p]
        new = object.__new__(Replay)
        new.graph, new.order, new.pos, new.cost, new.event_us = self.graph, self.order, self.pos, self.cost, self.event_us
        new.reach, new.windows = self.reach, self.windows   # (positions only: the same order)
        new.dense, new.empty = self.dense, self.empty
        new.cap, new.capped_at = self.cap, NO_CAP
        new.merge_steps = 0
        stream = new.stream = list(self.stream)
        order = self.order
        for q in range(p, len(order)):
            stream[order[q]] = streams[q]
        new.seq, new.clock, new.end = list(self.seq), list(self.clock), list(self.end)
        # a mark before ``p`` is this run's state there (the streams agree up to ``p``), which this run has
        new.marks = {q: () if q >= p else self.marks[q] for q in marks}
        # the events taken before ``p`` are this run's first ``events`` (they are listed in issue order)
        new.pairs = None if self.pairs is None else self.pairs[:events]
        new.events_at, new.top_at = self.events_at[:p], self.top_at[:p]   # (aligned: this run had marks; [] unless windows)
        new.events, new.makespan = new._run(p, stream, new.seq, new.clock, new.end, dict(counts), dict(last), dict(free),
                                            events, top, new.marks, new.pairs)
        if new.windows:
            new.events_at.append(new.events)
            new.top_at.append(new.makespan)
        return new

    def over_cap(self, p: int) -> bool:
        """Whether this run took more than its ``cap`` events before position ``p`` (one of its marks): then so does
        every run of the same streams before ``p``, whatever it does after (a run only adds events), and
        ``candidate_pool`` drops it unreplayed. A run stopped at the cap (``capped_at``) has no marks past it."""
        return p >= self.capped_at or self.marks[p][3] > self.cap

    def rerun_window(self, p: int, stop: int, streams: Sequence[int]) -> tuple[int, float]:
        """``rerun``'s (events, makespan) estimated from positions ``p`` to ``stop`` only (``streams``: one per
        position of that window): the events after ``stop`` are this run's, and the delay at ``stop`` (the
        window's latest end past this run's latest end there) is carried to the end; a window to the end is exact.

        Why: ``rerun`` replays everything after ``p`` and copies the per-node state, O(nodes) per give-back,
        so scoring every fork of a 10,000-node schedule replayed tens of millions of nodes (minutes under a
        ``memory_budget``). The window writes into this run's state and puts it back, O(window)."""
        assert self.windows, "rerun_window needs a Replay that keeps windows"
        counts, last, free, events, top = self.marks[p]
        nodes = self.order[p:stop]
        stream, seq, clock, end = self.stream, self.seq, self.clock, self.end
        self._check_width(streams)
        saved = [(stream[v], seq[v], clock[v], end[v]) for v in nodes]
        for v, s in zip(nodes, streams):
            stream[v] = s
        try:
            n_events, top = self._run(p, stream, seq, clock, end, dict(counts), dict(last), dict(free), events, top,
                                      None, None, stop, self._inherited(p))
        finally:
            for v, (s, q, c, e) in zip(nodes, saved):
                stream[v], seq[v], clock[v], end[v] = s, q, c, e
        if stop == len(self.order):   # nothing after the window: exactly ``rerun``'s
            return n_events, top
        return (n_events + self.events - self.events_at[stop],
                self.makespan + max(0.0, top - self.top_at[stop]))

    def rescore(self, p: int, stop: int, moved: dict[int, int], stats: dict[str, int] | None = None
                ) -> tuple[int, float]:
        """``rerun_window(p, stop, streams)`` (``rerun(p, streams)`` where ``stop`` is the end), ``streams`` being
        this run's but for ``moved`` (node -> its new stream, each node at a position in ``p .. stop - 1``): the
        same numbers, from replaying only the nodes whose result can differ from this run's.

        Why: a window replays every position in it, and a fork on one of 1,024 streams spans the whole issue order
        (its units are interleaved with every other stream's), so scoring each fork replayed every node
        (``fork_join(10000)`` under ``max_events``: 1,024 forks x 10,000 nodes, 50 s). Which nodes can differ: a
        node's events, clock and end follow from its stream predecessor's clock and end, its writers' streams,
        clocks and ends and, for a view read, the fold of the chain's writers; its position, the number its clock
        entries are made of (``_run``), never changes. So a node is replayed when it moved, when its predecessor
        on its stream is another node than in this run (a node before it left or joined its stream), or when its
        predecessor or a writer (along a view chain too) was replayed and came out *changed* (another stream,
        clock or end): a node that comes out as it was stops the change there. Any other node repeats this run's
        node exactly (by induction in issue order), and its events and end are this run's (``events_at``, the ends
        by position). Round 41 replayed every later node of each stream a moved node left or joined and each of
        their readers: the give-back of a fork onto the main stream replayed most of the rest of the order, fork
        after fork (quadratic: 1,000 nodes replayed per fork of a 2,000-node fan-out/join). A join of many writers
        finds its latest writer per stream from this run's, corrected for the moved writers (``BIG_READER``), not
        from all. ``stats`` (for tests: operation counts, not times): "replayed" is increased by the nodes
        replayed, "writers" by the writers they looked at."""
        assert self.windows, "rescore needs a Replay that keeps windows"
        ix = self._rescore_index()
        order, pos, cost, event_us = self.order, self.pos, self.cost, self.event_us
        writers, readers, vreaders = self.graph.input_writers, ix.readers, ix.vreaders
        stream, seq, clock, end = self.stream, self.seq, self.clock, self.end
        by_stream = ix.by_stream
        events_at = self.events_at
        old = {v: stream[v] for v, s in moved.items() if s != stream[v]}
        dense = self.dense
        self._check_width([moved[v] for v in old])
        merged = 0
        joined: dict[int, list[int]] = {}   # stream -> the positions of the nodes moved onto it, ascending
        for v in old:
            joined.setdefault(moved[v], []).append(pos[v])
        for at in joined.values():
            at.sort()
        # the nodes whose writers to wait for may differ from this run's (``waits_on``): the moved ones and their readers
        dirty = set(old)
        for v in old:
            dirty.update(readers[v])
        waits_on = ix.waits_on
        heap = [pos[v] for v in old]
        if vreaders is None:   # (no index of a view's readers by writer: every view read with a writer from p on)
            lo, hi = bisect_left(ix.viewed, p), bisect_left(ix.viewed, stop)
            heap += [q for q in ix.viewed[lo:hi] if ix.vreach[order[q]] >= p]
        queued = set(heap)
        struct = set(heap)   # (the queued positions to replay in full; the others only for their end)
        heap = list(queued)   # (each once: a moved node may read a view too)
        heapq.heapify(heap)
        moved_in: dict[int, set[int]] = {}   # a big reader -> its moved writers
        saved: list[tuple[int, int, Clock, float]] = []
        fold: WriterFold | None = None
        delta, top = 0, self.top_at[p]
        for v in old:
            stream[v] = moved[v]

        def pred(x: int, q: int) -> int:
            """The node before position ``q`` on stream ``x`` with the moved nodes on their new streams (-1: none)."""
            at = by_stream.get(x, ())
            i = bisect_left(at, q) - 1
            while i >= 0 and stream[order[at[i]]] != x:   # (moved away)
                i -= 1
            best = at[i] if i >= 0 else -1
            there = joined.get(x)
            if there:
                j = bisect_left(there, q) - 1
                if j >= 0 and there[j] > best:
                    best = there[j]
            return order[best] if best >= 0 else -1

        def push(q: int, structural: bool) -> None:
            """Queue position ``q`` (before ``stop``): ``structural``, to be replayed in full (its events or clock may
            differ), else for its end alone (its predecessor's or an event's writer's end changed)."""
            if q < stop:
                if structural:
                    struct.add(q)
                if q not in queued:
                    queued.add(q)
                    heapq.heappush(heap, q)

        def push_next(x: int, q: int, structural: bool = True) -> None:
            """Queue the node after position ``q`` on stream ``x`` (its predecessor changed)."""
            at = by_stream.get(x, ())
            i = bisect_right(at, q)
            while i < len(at) and at[i] < stop and stream[order[at[i]]] != x:
                i += 1
            nxt = at[i] if i < len(at) else stop
            there = joined.get(x)
            if there:
                j = bisect_right(there, q)
                if j < len(there) and there[j] < nxt:
                    nxt = there[j]
            push(nxt, structural)

        tpred, tev, tout, outmax = ix.tpred, ix.tev, ix.tout, ix.outmax

        def retimed(v: int) -> float:
            """The end of ``v`` with this run's events and stream predecessor (``tpred``, ``tev``) at the ends now."""
            w = tpred[v]
            start = end[w] if w >= 0 else 0.0
            for d in tev[v]:
                if end[d] + event_us > start:
                    start = end[d] + event_us
            return start + cost[v]

        rest_from = stop   # (where the run in order takes over, if it does)
        cut = after = stop   # (the positions ``cut`` .. ``after`` - 1 were timed in order, if any)
        whole = stop == len(order) and ix.exact
        earlier = False   # (whether a replayed node ends earlier than in this run)
        timed = 0
        try:
            while heap:
                if not struct:
                    # every node left is timed as in this run (its predecessor and its events)
                    q = cut = heap[0]
                    if whole and not earlier:   # no end came out earlier, in exact arithmetic: the base run's tails
                        m = float(ix.suffix_top[q])
                        for v, _, _, was_end in saved:
                            if end[v] > was_end:
                                m = max(m, end[v] + ix.tail_past(v, q, pos))
                        if m > top:
                            top = m
                        after = stop
                        break
                    # else from the first one queued on, in order, while an end that changed can still reach one
                    horizon = min(stop - 1, max(heap))
                    while q <= horizon:
                        v = order[q]
                        e = retimed(v)
                        timed += 1
                        if e != end[v]:
                            saved.append((v, seq[v], clock[v], end[v]))
                            end[v] = e
                            if e > top:
                                top = e
                            if outmax[v] > horizon:
                                horizon = min(stop - 1, outmax[v])
                        elif e > top:
                            top = e
                        q += 1
                    after = q
                    break
                if len(heap) * SEQUENTIAL_SHARE > stop - heap[0] >= SEQUENTIAL_AT:
                    rest_from = heap[0]
                    break
                q = heapq.heappop(heap)
                v = order[q]
                s = stream[v]
                v_moved = v in old
                if q not in struct:   # only an end before it changed: its events and clock are this run's
                    e = retimed(v)
                    timed += 1
                    if e != end[v]:
                        earlier = earlier or e < end[v]
                        saved.append((v, seq[v], clock[v], end[v]))
                        end[v] = e
                        push_next(s, q, False)
                        for r in tout[v]:
                            push(pos[r], False)
                    if e > top:
                        top = e
                    continue
                struct.discard(q)
                if v_moved:   # the next node of the stream it left follows another node now
                    push_next(old[v], q)
                direct, viewed = writers[v]
                ds = waits_on[v] if v not in dirty else None
                if ds is not None:   # (this run's: neither it nor a writer of it moved)
                    pass
                elif viewed or len(direct) > 1:   # (``_run``'s choice of writers, the same operations)
                    if not viewed and len(direct) > BIG_READER:
                        ds = _latest_writers(self._latest_moved(ix, v, moved_in.get(v), old), (), (), s, stream, pos)
                    else:
                        if viewed and fold is None:
                            fold = writers_by_stream(self.graph, pos, stream)
                            fold.known = self._inherited(p)
                        ds = _latest_writers({}, direct, (fold.of(t) for t in viewed),   # type: ignore[union-attr]
                                             s, stream, pos)
                elif direct and stream[direct[0]] != s:
                    ds = direct
                else:
                    ds = ()
                w = pred(s, q)
                cur, start = (clock[w], end[w]) if w >= 0 else (self.empty, 0.0)
                taken = 0
                copied = False
                for d in ds:
                    sd = stream[d]
                    if (cur[sd] if dense else cur.get(sd, 0)) <= pos[d]:
                        taken += 1
                        if end[d] + event_us > start:
                            start = end[d] + event_us
                        cur, steps = _merge_clock(cur, clock[d], sd, pos[d] + 1, s, dense, not copied)   # (``_run``'s)
                        copied = True
                        merged += steps
                saved.append((v, seq[v], clock[v], end[v]))
                e = start + cost[v]
                was = clock[v]
                changed = v_moved or not (cur is was or (_same_row(cur, was) if dense else cur == was))
                later = e != end[v]
                earlier = earlier or e < end[v]
                clock[v], end[v] = cur, e
                delta += taken - (events_at[q + 1] - events_at[q])
                if e > top:
                    top = e
                if changed:   # its stream's next node, its readers and its views' readers may differ too
                    push_next(s, q)
                    for r in readers[v]:
                        rq = pos[r]
                        if rq < stop and v_moved and len(writers[r][0]) > BIG_READER:
                            moved_in.setdefault(r, set()).add(v)
                        push(rq, True)
                    if vreaders is not None:
                        for rq in vreaders.get(v, ()):
                            push(rq, True)
                elif later:   # the same events and clock, a later end: its stream's next node and its events' readers
                    push_next(s, q, False)
                    for r in tout[v]:
                        push(pos[r], False)
                if stats is not None:
                    stats["replayed"] = stats.get("replayed", 0) + 1
                    stats["writers"] = stats.get("writers", 0) + (len(ds) if len(direct) > BIG_READER and not viewed
                                                                  else len(direct) + len(viewed))
            cut = min(cut, rest_from)
            rest = ix.ends[p:cut]   # every other node before ``cut`` ends as in this run
            mask = [pos[v] - p for v, *_ in saved if pos[v] < cut]
            if mask and len(rest):
                rest = rest.copy()
                rest[mask] = -np.inf
            if len(rest):
                m = float(rest.max())
                if m > top:
                    top = m
            if after < rest_from:   # (past the timed positions: as in this run)
                m = float(ix.ends[after:rest_from].max())
                if m > top:
                    top = m
            n_events = events_at[rest_from] + delta   # (the window's events before ``rest_from``)
            if rest_from < stop:
                # much of the rest is due: ``_run`` replays it all in order, from every stream's state there
                counts: dict[int, int] = {}
                last: dict[int, Clock] = {}
                free: dict[int, float] = {}
                for x in {stream[v] for v in order[rest_from:stop]}:
                    w = pred(x, rest_from)
                    if w >= 0:   # (``_run`` numbers its nodes from ``counts``: positions, not counts, decide)
                        counts[x], last[x], free[x] = seq[w] + 1, clock[w], end[w]
                saved += [(v, seq[v], clock[v], end[v]) for v in order[rest_from:stop]]
                if stats is not None:
                    stats["replayed"] = stats.get("replayed", 0) + stop - rest_from
                n_events, top = self._run(rest_from, stream, seq, clock, end, counts, last, free, n_events, top, None,
                                          None, stop, self._inherited(p), (waits_on, dirty))
        finally:
            self.merge_steps += merged
            if stats is not None:
                stats["timed"] = stats.get("timed", 0) + timed
            for v, sq, ck, en in reversed(saved):
                seq[v], clock[v], end[v] = sq, ck, en
            for v, s in old.items():
                stream[v] = s
        if stop == len(order):   # nothing after the window: exactly ``rerun``'s
            return n_events, top
        return (n_events + self.events - events_at[stop], self.makespan + max(0.0, top - self.top_at[stop]))

    def _fits(self, streams: Iterable[int]) -> bool:
        """Whether every stream of ``streams`` has a column in this run's dense clocks (always with dict clocks)."""
        return not self.dense or all(0 <= s < self.dense for s in streams)

    def _check_width(self, streams: Iterable[int]) -> None:
        """ValueError unless ``_fits(streams)``: ``rerun_window`` and ``rescore`` write into this run's clocks, so a
        window on a stream past its dense rows is refused (``rerun`` and ``branch`` make a whole run instead)."""
        if not self._fits(streams):
            raise ValueError(f"Replay: a stream id outside 0..{self.dense - 1}, the streams of this run's dense clocks")

    def _latest_moved(self, ix: _RescoreIndex, v: int, moved: set[int] | None, old: dict[int, int]) -> dict[int, int]:
        """{stream: latest direct writer} of node ``v`` with ``moved`` (its writers that changed stream; ``old``: their
        streams in this run) on their new streams: this run's map, redone for the streams they left or joined."""
        latest, by_stream = ix.big[v]
        deps = dict(latest)
        if moved:
            stream, pos = self.stream, self.pos
            for x in {old[w] for w in moved} | {stream[w] for w in moved}:
                best = next((w for w in by_stream.get(x, ()) if w not in moved), -1)
                for w in moved:
                    if stream[w] == x and (best < 0 or pos[w] > pos[best]):
                        best = w
                if best < 0:
                    deps.pop(x, None)
                else:
                    deps[x] = best
        return deps

    def _rescore_index(self) -> _RescoreIndex:
        """``rescore``'s index of this run, made on first use (from this run's streams, before any is moved)."""
        ix = self.__dict__.get("_ix")
        if ix is None:
            ix = self._ix = _RescoreIndex.of(self)
        return ix

    def _inherited(self, p: int) -> Callable[[int], dict[int, int] | None]:
        """``WriterFold.known`` for a run whose streams are this run's before position ``p``: this run's
        {stream: latest writer} of a view whose writers along its chain are all issued before ``p`` (the same
        writers on the same streams), else None. Why: ``rerun_window`` replays a window of ~128 positions, and
        a fresh fold walked each view chain read there up to its root: O(chain) per window, quadratic over the
        forks of a chain of written views (a 10,000-node view chain's pool: 10 s, 9.7M merges)."""
        if self.reach is None:   # per written tensor, the latest position of a writer along its chain
            self.reach = self.graph.fold_writers(self.pos.__getitem__, max)
        mine, reach = self.fold.memo, self.reach

        def known(j: int) -> dict[int, int] | None:
            return mine.get(j) if reach.of(j) < p else None
        return known

    def _run(self, p0: int, stream: list[int], seq: list[int], clock: list[dict[int, int]], end: list[float],
             counts: dict[int, int], last: dict[int, dict[int, int]], free: dict[int, float], events: int,
             top: float, marks: dict[int, tuple] | None, pairs: list[tuple[int, int]] | None,
             stop: int | None = None, known: Callable[[int], dict[int, int] | None] | None = None,
             same: tuple[list[Sequence[int] | None], set[int]] | None = None) -> tuple[int, float]:
        """Issue ``order`` from position ``p0`` on: latest writer per other stream, an event for each one
        the stream's clock does not already imply (latest first), clocks shared along a stream and copied
        only when an event merges another's in; times as ``timeline.simulate_indices`` gives them. A run of
        this Replay's own (``marks`` given) keeps its writer fold (``fold``) for ``_inherited``; ``known`` is
        one such fold's, for a window's run. ``same`` (``rescore``'s): (this run's writers to wait for per node,
        ``_RescoreIndex.waits_on``; the nodes whose list may differ now), so that any other node takes its list as
        it is, not made again."""
        graph, order, pos, cost, event_us = self.graph, self.order, self.pos, self.cost, self.event_us
        writers = graph.input_writers
        fold = writers_by_stream(graph, pos, stream)
        fold.known = known
        if marks is not None:
            self.fold = fold
        events_at, top_at = self.events_at, self.top_at
        windows = marks is not None and self.windows
        cap = self.cap if marks is not None else NO_CAP   # (a run of its own: ``rerun`` and windows never stop)
        empty = self.empty   # (a stream's first clock: shared, as every clock is copied before it changes)
        dense = self.dense
        merged = 0
        base_ds, dirty = same if same is not None else (None, set())
        hi = len(order) if stop is None else stop
        # the positions to keep the state at (before their node), each segment between them run without asking
        cuts = sorted(q for q in marks if p0 <= q < hi) if marks is not None else []
        cuts.append(hi)
        q0 = p0
        for cut in cuts:
            for v in order[q0:cut]:
                if windows:
                    events_at.append(events)
                    top_at.append(top)
                s = stream[v]
                ds = base_ds[v] if base_ds is not None and v not in dirty else None
                if ds is None:
                    direct, viewed = writers[v]
                    if viewed or len(direct) > 1:
                        # the latest writer per other stream (one writer on another stream, the common case, needs no dict)
                        ds = _latest_writers({}, direct, (fold.of(t) for t in viewed), s, stream, pos)
                    elif direct and stream[direct[0]] != s:
                        ds = direct
                    else:
                        ds = ()
                cur = last.get(s, empty)
                start = free.get(s, 0.0)
                if ds:
                    copied = False
                    for d in ds:
                        sd = stream[d]
                        if (cur[sd] if dense else cur.get(sd, 0)) <= pos[d]:  # not yet implied by the events taken so far
                            events += 1
                            if pairs is not None:
                                pairs.append((d, v))
                            if end[d] + event_us > start:
                                start = end[d] + event_us
                            if dense:
                                cur, steps = _merge_clock(cur, clock[d], sd, pos[d] + 1, s, dense, not copied)
                                copied = True
                                merged += steps
                            else:   # (``_merge_clock``'s dict merge written out: a call per event was a fifth of a window)
                                if not copied:
                                    cur = dict(cur)
                                    copied = True
                                other = clock[d]
                                get = cur.get
                                for x, k in other.items():
                                    if k > get(x, 0):
                                        cur[x] = k
                                cur[sd] = pos[d] + 1
                                merged += len(other)
                    if copied:
                        if not dense:
                            cur.pop(s, None)
                        last[s] = cur
                    if events > cap:   # over the cap: the rest cannot bring the count back under it
                        self.capped_at = pos[v] + 1
                        self.merge_steps += merged
                        return events, top
                c = counts.get(s, 0)
                seq[v] = c
                counts[s] = c + 1
                clock[v] = cur
                e = start + cost[v]
                end[v] = e
                free[s] = e
                if e > top:
                    top = e
            if cut < hi:
                marks[cut] = (dict(counts), dict(last), dict(free), events, top)
            q0 = cut
        if marks is not None and stop is None and len(order) in marks:   # the end: a branch of the same streams
            marks[len(order)] = (dict(counts), dict(last), dict(free), events, top)
        self.merge_steps += merged
        return events, top


def _same_row(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two dense clock rows (int32, one length: ``Replay.empty`` and copies) hold the same entries:
    ``np.array_equal``'s answer from their bytes, a fifth of its cost. Why: ``Replay.rescore`` asks it of every node it
    replays (260,000 rows of 1,024 streams scoring the forks of a 2,000-node layered DAG: a fifth of the scoring)."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _dense_width(streams: Sequence[int]) -> int:
    """The row length of dense clocks for a run on ``streams`` (1 + the largest id), or 0 for dict clocks: fewer
    than ``DENSE_STREAMS`` distinct streams (each clock a few entries), ids that are not small non-negative ints, or
    rows that could take more than ``DENSE_MAX_CELLS`` cells. (Counts fit int32: they are below ``len(streams)``.)"""
    ids = set(streams)
    if len(ids) <= DENSE_STREAMS or len(streams) >= 1 << 31:
        return 0
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in ids):
        return 0
    top = int(max(ids)) + 1
    return top if top <= 4 * len(ids) and top * len(streams) <= DENSE_MAX_CELLS else 0


@dataclass(frozen=True)
class _RescoreIndex:
    """What ``Replay.rescore`` looks up in the run it rescores: ``by_stream`` (stream -> the positions of its nodes,
    ascending), ``readers`` (node -> the nodes it is a direct writer of), ``viewed`` (the positions of nodes reading a
    view with a writer, ascending), ``vreach`` (node -> the latest position of a writer along the view chains it
    reads, -1: none), ``ends`` (each position's end), ``big`` (a node of more than ``BIG_READER`` direct writers
    -> ({stream: its latest one}, {stream: its writers there, latest first})) and ``vreaders`` (node -> the
    positions of the nodes reading a view it writes along the chain, or None where listing them would take more
    than ``VIEW_READER_STEPS`` times the nodes and their inputs: a chain of k written views, each read, is k^2 / 2;
    ``rescore`` then replays every view read with a writer from its first position on)."""

    by_stream: dict[int, list[int]]
    readers: list[list[int]]
    viewed: list[int]
    vreach: list[int]
    ends: np.ndarray
    big: dict[int, tuple[dict[int, int], dict[int, list[int]]]]
    vreaders: dict[int, list[int]] | None
    #: the run's times as a graph: ``tpred[v]`` (the node before ``v`` on its stream, -1: none), ``tev[v]`` (the
    #: writers it took an event from), ``tout[v]`` (the nodes that took an event from it) and ``outmax[v]`` (the last
    #: position of those and of its stream's next node, -1: none): ``v`` starts at the latest of its predecessor's
    #: end and each ``tev`` writer's end plus the event latency, as ``_run`` times it
    tpred: list[int]
    tev: list[tuple[int, ...]]
    tout: list[list[int]]
    outmax: list[int]
    #: whether every sum of costs and event latencies is exact in floats (integers, totalling below 2**53): then a
    #: longest path is the same number whatever the order of its additions, and ``rescore`` may use the tails below
    exact: bool
    #: ``suffix_top[q]``: the latest end of the positions from ``q`` on (-inf past the last)
    suffix_top: np.ndarray
    #: ``tnext[v]``: the node after ``v`` on its stream (-1: none); ``tail[v]``: the longest run of costs and event
    #: latencies after ``v`` ends, along the run's times graph; ``tout_pos[v]``, ``tout_top[v]``: the positions of
    #: ``tout[v]`` (ascending) and, from each one on, the longest event latency + cost + tail through one of them
    tnext: list[int]
    tail: list[float]
    tout_pos: list[list[int]]
    tout_top: list[list[float]]
    #: ``waits_on[v]``: the writers ``v`` waits for in this run, latest first (``_run``'s ``ds``; None for a view read,
    #: whose fold ``rescore`` makes again); the same list wherever neither ``v`` nor a direct writer of it moved
    waits_on: list[Sequence[int] | None]

    def tail_past(self, v: int, q: int, pos: Sequence[int]) -> float:
        """The longest path of the run's times graph after ``v`` ends through its edges into positions ``q`` and on
        (-inf: none)."""
        best = -math.inf
        x = self.tnext[v]
        if x >= 0 and pos[x] >= q:
            best = self.cost[x] + self.tail[x]
        at = self.tout_pos[v]
        i = bisect_left(at, q)
        if i < len(at) and self.tout_top[v][i] > best:
            best = self.tout_top[v][i]
        return best

    cost: Sequence[float] = ()

    @staticmethod
    def of(run: Replay) -> _RescoreIndex:
        graph, order, pos, stream = run.graph, run.order, run.pos, run.stream
        writers = graph.input_writers
        if run.reach is None:
            run.reach = graph.fold_writers(pos.__getitem__, max)
        reach = run.reach
        by_stream: dict[int, list[int]] = {}
        readers: list[list[int]] = [[] for _ in pos]
        viewed: list[int] = []
        vreach = [-1] * len(pos)
        big: dict[int, tuple[dict[int, int], dict[int, list[int]]]] = {}
        for q, v in enumerate(order):
            by_stream.setdefault(stream[v], []).append(q)
            direct, views = writers[v]
            for w in direct:
                readers[w].append(v)
            if views:
                viewed.append(q)
                vreach[v] = max(reach.of(t) for t in views)
            elif len(direct) > BIG_READER:
                groups: dict[int, list[int]] = {}
                for w in sorted(direct, key=lambda w: -pos[w]):
                    groups.setdefault(stream[w], []).append(w)
                big[v] = ({x: ws[0] for x, ws in groups.items()}, groups)
        ends = np.array([run.end[v] for v in order], dtype=np.float64)
        tpred = [-1] * len(pos)
        outmax = [-1] * len(pos)
        for at in by_stream.values():
            for a, b in zip(at, at[1:]):
                tpred[order[b]] = order[a]
                outmax[order[a]] = b
        pairs = run.pairs if run.pairs is not None else wait_pairs(graph, order, [stream[v] for v in order])
        tev_l: list[list[int]] = [[] for _ in pos]
        tout: list[list[int]] = [[] for _ in pos]
        for d, v in pairs:
            tev_l[v].append(d)
            tout[d].append(v)
            if pos[v] > outmax[d]:
                outmax[d] = pos[v]
        cost, ev = run.cost, run.event_us
        total = math.fsum(cost[v] for v in order) + ev * len(order)
        exact = (float(ev).is_integer() and ev >= 0 and all(float(cost[v]).is_integer() and cost[v] >= 0 for v in order)
                 and total < 2.0 ** 53)
        suffix_top = np.append(np.maximum.accumulate(ends[::-1])[::-1], -np.inf)
        tnext = [-1] * len(pos)
        for v, w in enumerate(tpred):
            if w >= 0:
                tnext[w] = v
        tail = [0.0] * len(pos)
        tout_pos: list[list[int]] = [[] for _ in pos]
        tout_top: list[list[float]] = [[] for _ in pos]
        if exact:
            for v in reversed(order):
                best = 0.0
                x = tnext[v]
                if x >= 0:
                    best = cost[x] + tail[x]
                tops = []
                m = -math.inf
                for r in reversed(tout[v]):   # (listed in issue order: positions ascending)
                    c = ev + cost[r] + tail[r]
                    if c > m:
                        m = c
                    tops.append(m)
                if tops:
                    tops.reverse()
                    tout_pos[v] = [pos[r] for r in tout[v]]
                    tout_top[v] = tops
                    if tops[0] > best:
                        best = tops[0]
                tail[v] = best
        return _RescoreIndex(by_stream, readers, viewed, vreach, ends, big, _view_readers(graph, order, viewed), tpred,
                             [tuple(x) for x in tev_l], tout, outmax, exact, suffix_top, tnext, tail, tout_pos,
                             tout_top, _waits_on(graph, stream, pos), cost)


def _waits_on(graph: Graph, stream: Sequence[int], pos: Sequence[int]) -> list[Sequence[int] | None]:
    """``_RescoreIndex.waits_on``: ``_run``'s choice of writers for every node on ``stream``, the same operations
    (``_latest_writers`` of its direct writers); None for a node reading a view with writers."""
    out: list[Sequence[int] | None] = []
    for v, (direct, viewed) in enumerate(graph.input_writers):
        s = stream[v]
        if viewed:
            out.append(None)
        elif len(direct) > 1:
            out.append(_latest_writers({}, direct, (), s, stream, pos))
        elif direct and stream[direct[0]] != s:
            out.append(direct)
        else:
            out.append(())
    return out


def _view_readers(graph: Graph, order: Sequence[int], viewed: Sequence[int]) -> dict[int, list[int]] | None:
    """``_RescoreIndex.vreaders``: writer -> the positions (``viewed``, ascending) of the nodes reading a view with it
    along the chain (``Graph.writers``), or None past ``VIEW_READER_STEPS`` x (nodes + inputs) steps."""
    limit = VIEW_READER_STEPS * (len(graph.nodes) + sum(map(len, graph.node_inputs)))
    steps = 0
    out: dict[int, list[int]] = {}
    writers = graph.input_writers
    for q in viewed:
        found: set[int] = set()
        for t in writers[order[q]][1]:
            chain = graph.writers(t)
            steps += len(chain)
            if steps > limit:
                return None
            found.update(chain)
        for w in found:
            out.setdefault(w, []).append(q)
    return out
