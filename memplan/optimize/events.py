"""The fewest events of a candidate schedule, on node indices: ``schedule_with_events`` for the optimizer.

``schedule.schedule_with_events`` (the public one) takes node ids, checks the schedule and keeps a dense
vector clock per node: one row of every stream for each node, copied and maxed with numpy. The optimizer
calls it for every candidate it scores and for every fork ``budget`` gives back, on schedules it built
itself (topological by construction, streams numbered by first use), where those costs were most of its
time. ``wait_pairs`` makes the same choices on indices with *sparse* clocks shared along a stream: a node
that waits on no event has the clock of the node before it on its stream (plus its own count, which is
its sequence number and is kept implicitly), so only an event copies a clock, and a copy holds only the
streams it knows of. ``tests/test_optimize_fast.py`` checks it against ``schedule_with_events``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..graph import Graph, WriterFold
from ..schedule import writers_by_stream


def wait_pairs(graph: Graph, order: Sequence[int], streams: Sequence[int]) -> list[tuple[int, int]]:
    """The events ``schedule_with_events`` gives node indices ``order`` on ``streams`` (one per entry),
    as (after, before) node-index pairs in the same order. ``order`` must be a topological issue order
    (every read after its chain's writers) and keep fusion groups whole: it is not checked. One pass of
    ``Replay``'s loop (its simulated times unused), so the choice of events is written once."""
    return Replay(graph, order, streams, [0.0] * len(graph.nodes), 0.0, record=True).pairs


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
    node were a tenth of each replay.
    """

    def __init__(self, graph: Graph, order: Sequence[int], streams: Sequence[int], cost: Sequence[float],
                 event_us: float, marks: Sequence[int] = (), record: bool = False, windows: bool | None = None):
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
        self.clock: list[dict[int, int]] = [{}] * n_nodes
        self.end = [0.0] * n_nodes
        self.marks: dict[int, tuple] = {p: () for p in marks}
        #: with ``record``: the events taken, as (after, before) node-index pairs (``wait_pairs``)
        self.pairs: list[tuple[int, int]] | None = [] if record else None
        #: with ``windows``: the events taken and the latest end before each position (``rerun_window``)
        self.windows = bool(marks) if windows is None else windows
        self.events_at: list[int] = []
        self.top_at: list[float] = []
        self.events, self.makespan = self._run(0, self.stream, self.seq, self.clock, self.end, {}, {}, {}, 0, 0.0,
                                               self.marks, self.pairs)
        if self.windows:
            self.events_at.append(self.events)
            self.top_at.append(self.makespan)

    def rerun(self, p: int, streams: Sequence[int]) -> tuple[int, float]:
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
        counts, last, free, events, top = self.marks[p]
        new = object.__new__(Replay)
        new.graph, new.order, new.pos, new.cost, new.event_us = self.graph, self.order, self.pos, self.cost, self.event_us
        new.reach, new.windows = self.reach, self.windows   # (positions only: the same order)
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
        empty: dict[int, int] = {}   # (a stream's first clock: shared, as every clock is copied before it changes)
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
                    deps: dict[int, int] = {}
                    for w in direct:
                        sw = stream[w]
                        if sw not in deps or pos[w] > pos[deps[sw]]:
                            deps[sw] = w
                    for t in viewed:
                        for sw, w in fold.of(t).items():
                            if sw not in deps or pos[w] > pos[deps[sw]]:
                                deps[sw] = w
                    if s in deps:
                        del deps[s]
                    ds = list(deps.values())
                    if len(ds) > 1:
                        ds.sort(key=lambda d: -pos[d])
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
                        if cur.get(sd, 0) <= seq[d]:  # not yet implied by the events taken so far
                            events += 1
                            if pairs is not None:
                                pairs.append((d, v))
                            if end[d] + event_us > start:
                                start = end[d] + event_us
                            if not copied:
                                cur = dict(cur)
                                copied = True
                            for x, c in clock[d].items():
                                if c > cur.get(x, 0):
                                    cur[x] = c
                            cur[sd] = seq[d] + 1   # (d's own count: more than any clock it is merged with held)
                            cur.pop(s, None)       # (v's own count is implicit)
                    if copied:
                        last[s] = cur
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
        return events, top
