"""The fewest events of a candidate schedule, on node indices: ``schedule_with_events`` for the optimizer.

``schedule.schedule_with_events`` (the public one) takes node ids, checks the schedule and keeps a dense
vector clock per node: one row of every stream for each node, copied and maxed with numpy. The optimizer
calls it for every candidate it scores and for every fork ``budget`` gives back, on schedules it built
itself (topological by construction, streams numbered by first use), where those costs were most of its
time. ``wait_pairs`` makes the same choices on indices with *sparse* clocks shared along a stream: a node
that waits on no event has the clock of the node before it on its stream (plus its own count, which is
its sequence number and is kept implicitly), so only an event copies a clock, and a copy holds only the
streams it knows of. Above ``DENSE_STREAMS`` streams a clock knows nearly all of them, and a copy is a numpy
row instead (merged in one step, not one per stream). ``tests/test_optimize_fast.py`` checks it against
``schedule_with_events``; ``tests/test_perf_round48.py`` checks the rows against the dicts.
"""

from __future__ import annotations

import heapq
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


def _merge_clock(cur: Clock, other: Clock, sd: int, count: int, s: int, dense: bool) -> int:
    """Merge ``other`` (the clock of a node ``d`` on stream ``sd`` that the node being replayed, on stream ``s``, waits
    for) into ``cur``, a clock that node owns: the entry-wise max, then ``d``'s own count (``count``: more than any
    clock it is merged with held) and ``s``'s own count implicit (0 in a dense row, absent from a dict). Returns the
    merge steps taken (``Replay.merge_steps``): one for a dense row, one per stream a dict clock knows.
    Why one function: ``_run`` and the rescoring replay must make the very same clocks, or their scores differ."""
    if dense:
        np.maximum(cur, other, out=cur)
        cur[sd] = count
        cur[s] = 0
        return 1
    for x, k in other.items():
        if k > cur.get(x, 0):
            cur[x] = k
    cur[sd] = count
    cur.pop(s, None)
    return len(other)


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
        node's events, clock and end follow from its stream's state before it, its writers' results and, for a
        view read, the fold of the chain's writers. So the nodes replayed are the moved ones, every later node of
        a stream a replayed node left or joined, every reader of a replayed node, and every reader of a view with
        a writer from ``p`` on; any other node repeats this run's node exactly (by induction in issue order), and
        its events and end are this run's (``events_at``, the ends by position). A join of many writers finds its
        latest writer per stream from this run's, corrected for the moved writers (``BIG_READER``), not from all.
        ``stats`` (for tests: operation counts, not times): "replayed" is increased by the nodes replayed, "writers"
        by the writers they looked at."""
        assert self.windows, "rescore needs a Replay that keeps windows"
        ix = self._rescore_index()
        order, pos, cost, event_us = self.order, self.pos, self.cost, self.event_us
        writers, readers = self.graph.input_writers, ix.readers
        stream, seq, clock, end = self.stream, self.seq, self.clock, self.end
        events_at = self.events_at
        old = {v: stream[v] for v, s in moved.items() if s != stream[v]}
        dense = self.dense
        self._check_width([moved[v] for v in old])
        merged = 0
        heap = [pos[v] for v in old]
        lo, hi = bisect_left(ix.viewed, p), bisect_left(ix.viewed, stop)
        heap += [q for q in ix.viewed[lo:hi] if ix.vreach[order[q]] >= p]   # (a view read with a writer from p on)
        queued = set(heap)
        heap = list(queued)   # (each once: a moved node may read a view too)
        heapq.heapify(heap)
        state: dict[int, tuple[int, dict[int, int], float]] = {}   # stream -> (count, clock, free) once replayed on
        moved_in: dict[int, set[int]] = {}   # a big reader -> its moved writers
        saved: list[tuple[int, int, dict[int, int], float]] = []
        fold: WriterFold | None = None
        delta, top = 0, self.top_at[p]
        for v in old:
            stream[v] = moved[v]
        rest_from = stop   # (where the run in order takes over, if it does)
        try:
            while heap:
                if len(heap) * SEQUENTIAL_SHARE > stop - heap[0] >= SEQUENTIAL_AT:
                    rest_from = heap[0]
                    break
                q = heapq.heappop(heap)
                v = order[q]
                s = stream[v]
                for x in (old.get(v, s), s):
                    if x not in state:   # from here on this stream's nodes may differ: all of them are replayed
                        state[x] = self._state_before(ix, x, q)
                        at = ix.by_stream.get(x, ())
                        for r in at[bisect_right(at, q):bisect_left(at, stop)]:
                            if r not in queued:
                                queued.add(r)
                                heapq.heappush(heap, r)
                direct, viewed = writers[v]
                if viewed or len(direct) > 1:   # (``_run``'s choice of writers, the same operations)
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
                c, cur, start = state[s]
                taken = 0
                copied = False
                for d in ds:
                    sd = stream[d]
                    if (cur[sd] if dense else cur.get(sd, 0)) <= seq[d]:
                        taken += 1
                        if end[d] + event_us > start:
                            start = end[d] + event_us
                        if not copied:
                            cur = cur.copy() if dense else dict(cur)
                            copied = True
                        merged += _merge_clock(cur, clock[d], sd, seq[d] + 1, s, dense)   # (``_run``'s merge)
                saved.append((v, seq[v], clock[v], end[v]))
                e = start + cost[v]
                seq[v], clock[v], end[v] = c, cur, e
                state[s] = (c + 1, cur, e)
                delta += taken - (events_at[q + 1] - events_at[q])
                if e > top:
                    top = e
                v_moved = v in old
                for r in readers[v]:
                    rq = pos[r]
                    if rq < stop:
                        if v_moved and len(writers[r][0]) > BIG_READER:
                            moved_in.setdefault(r, set()).add(v)
                        if rq not in queued:
                            queued.add(rq)
                            heapq.heappush(heap, rq)
                if stats is not None:
                    stats["replayed"] = stats.get("replayed", 0) + 1
                    stats["writers"] = stats.get("writers", 0) + (len(ds) if len(direct) > BIG_READER and not viewed
                                                                  else len(direct) + len(viewed))
            rest = ix.ends[p:rest_from]   # every other node before ``rest_from`` ends as in this run
            if len(saved) and len(rest):
                rest = rest.copy()
                rest[np.fromiter((pos[v] for v, *_ in saved), dtype=np.int64, count=len(saved)) - p] = -np.inf
            if len(rest):
                m = float(rest.max())
                if m > top:
                    top = m
            n_events = events_at[rest_from] + delta   # (the window's events before ``rest_from``)
            if rest_from < stop:
                # much of the rest is due: ``_run`` replays it all in order, from every stream's state there
                counts: dict[int, int] = {}
                last: dict[int, dict[int, int]] = {}
                free: dict[int, float] = {}
                for x in set(ix.by_stream) | set(state):
                    c, ck, f = state[x] if x in state else self._state_before(ix, x, rest_from)
                    if c:
                        counts[x], last[x], free[x] = c, ck, f
                saved += [(v, seq[v], clock[v], end[v]) for v in order[rest_from:stop]]
                if stats is not None:
                    stats["replayed"] = stats.get("replayed", 0) + stop - rest_from
                n_events, top = self._run(rest_from, stream, seq, clock, end, counts, last, free, n_events, top, None,
                                          None, stop, self._inherited(p))
        finally:
            self.merge_steps += merged
            for v, sq, ck, en in saved:
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

    def _state_before(self, ix: _RescoreIndex, x: int, q: int) -> tuple[int, dict[int, int], float]:
        """Stream ``x``'s (count, clock, free) in this run before position ``q``: its last node's before ``q``."""
        at = ix.by_stream.get(x, ())
        i = bisect_left(at, q)
        if not i:
            return 0, self.empty, 0.0
        w = self.order[at[i - 1]]
        return self.seq[w] + 1, self.clock[w], self.end[w]

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
             stop: int | None = None, known: Callable[[int], dict[int, int] | None] | None = None
             ) -> tuple[int, float]:
        """Issue ``order`` from position ``p0`` on: latest writer per other stream, an event for each one
        the stream's clock does not already imply (latest first), clocks shared along a stream and copied
        only when an event merges another's in; times as ``timeline.simulate_indices`` gives them. A run of
        this Replay's own (``marks`` given) keeps its writer fold (``fold``) for ``_inherited``; ``known`` is
        one such fold's, for a window's run."""
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
                        if (cur[sd] if dense else cur.get(sd, 0)) <= seq[d]:  # not yet implied by the events taken so far
                            events += 1
                            if pairs is not None:
                                pairs.append((d, v))
                            if end[d] + event_us > start:
                                start = end[d] + event_us
                            if not copied:
                                cur = cur.copy() if dense else dict(cur)
                                copied = True
                            merged += _merge_clock(cur, clock[d], sd, seq[d] + 1, s, dense)
                    if copied:
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
    reads, -1: none), ``ends`` (each position's end) and ``big`` (a node of more than ``BIG_READER`` direct writers
    -> ({stream: its latest one}, {stream: its writers there, latest first}))."""

    by_stream: dict[int, list[int]]
    readers: list[list[int]]
    viewed: list[int]
    vreach: list[int]
    ends: np.ndarray
    big: dict[int, tuple[dict[int, int], dict[int, list[int]]]]

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
        return _RescoreIndex(by_stream, readers, viewed, vreach, ends, big)
