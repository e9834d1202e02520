"""Schedules (issue order, stream per node, events) and the happens-before index over them.

The index stores one vector clock per node — ``clock[n, s]`` = how many nodes of stream ``s``
happen-before-or-equal ``n`` — so it costs O(nodes x streams) memory and answers ``a HB b`` in O(1)
(``clock[b, stream[a]] > seq[a]``). A reachability matrix would be O(n^2) and cannot hold 100k nodes.
Because every stream's clock column is monotone along any other stream, "from which node of stream
s on is X visible" is a binary search (``first_at_least``; lifetimes run the same search for all
buffers at once, over the clock columns laid end to end) that turns cross-stream visibility into
per-stream intervals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

from .errors import (
    ScheduleError,
    named_fields,
    named_method,
    named_options,
    not_an_index,
    plain_int,
    plain_str,
    some_of,
    unordered,
)
from .errors import short_repr as _short
from .graph import Graph, check_graph
from .planfile import MAX_STREAMS, Plan
from .values import by_value, derived


@by_value
@named_fields
@dataclass(frozen=True, slots=True)
class Event:
    """Recorded on ``after``'s stream right after ``after``; waited on before ``before``."""

    after: str
    before: str


@named_fields
@by_value
@dataclass(frozen=True)
class Schedule:
    """Issue order with a stream per entry, plus cross-stream events (contract rule 1 shape)."""

    order: tuple[str, ...]
    streams: tuple[int, ...]
    events: tuple[Event, ...] = ()

    def __post_init__(self) -> None:
        # lists given for the tuples are taken as tuples: schedules are compared and used as dict keys
        for name in ("order", "streams", "events"):
            v = getattr(self, name)
            if isinstance(v, np.ndarray) and v.ndim:   # (a 0-d array is no sequence: check_schedule names it)
                object.__setattr__(self, name, tuple(v.tolist()))   # Python ints, not numpy scalars
            elif isinstance(v, list):
                object.__setattr__(self, name, tuple(v))
        # numpy stream ids (which check_schedule accepts) as Python ints: they reached the plan's
        # ``streams`` and ``order``, which a plan file holds as JSON integers, and plan() failed at the end
        # naming a field the caller never wrote
        streams = self.streams
        if isinstance(streams, tuple) and any(type(x) is not int for x in streams):   # (any ``as_int`` takes)
            object.__setattr__(self, "streams", tuple(plain_int(x) for x in streams))
        # node ids of a str subclass as plain str (``errors.plain_str``), as the graph keeps its own: one whose
        # ``==`` differs from its characters' found a node the plan's JSON then did not name
        if isinstance(self.order, tuple) and any(t is not str and issubclass(t, str) for t in set(map(type, self.order))):
            object.__setattr__(self, "order", tuple(map(plain_str, self.order)))
        events = self.events
        if isinstance(events, tuple) and events and set(map(type, events)) == {Event}:
            if any(type(e.after) is not str or type(e.before) is not str for e in events):
                events = tuple(Event(plain_str(e.after), plain_str(e.before)) for e in events)
            # one event per (after, before), the first kept: the contract's happens-before is the same with a
            # repeat, but plan() wrote it twice, the runtime recorded and waited it twice, and max_events counted
            # it twice (a given schedule was refused for an event it holds once)
            try:
                events = tuple(dict.fromkeys(events))
            except TypeError:   # an Event of unhashable fields: check_schedule names it
                pass
            if len(events) != len(self.events) or any(a is not b for a, b in zip(events, self.events)):
                object.__setattr__(self, "events", events)

    @property
    @derived(ScheduleError, "streams")
    def num_streams(self) -> int:
        return (max(self.streams) + 1) if self.streams else 1

    @derived(ScheduleError, "order", "streams")
    def stream_of(self) -> dict[str, int]:
        return dict(zip(self.order, self.streams))


@named_options
def serial_schedule(graph: Graph) -> Schedule:
    """The listed order on one stream: what single-stream engines run."""
    check_graph(graph, "serial_schedule")
    return Schedule(tuple(n.id for n in graph.nodes), (0,) * len(graph.nodes), ())


def data_dependencies(graph: Graph, n: int) -> list[int]:
    """Nodes whose results node ``n`` reads: producers along each input's view chain (rule 2).

    ``Graph.writers`` follows the chain from producer to producer, so many readers of one deep view
    chain cost the producers they depend on, not the chain's depth each."""
    deps: list[int] = []
    for t in graph.node_inputs[n]:
        deps += graph.writers(t)
    return deps


@by_value
@named_fields
@dataclass(frozen=True)
class HappensBefore:
    """Vector clocks of a schedule, indexed by graph node index.

    ``pos[n]``: issue position; ``stream[n]``; ``seq[n]``: index of ``n`` within its stream;
    ``clock[n]``: per-stream count of nodes HB-or-equal ``n``; ``stream_nodes[s]``: the nodes of
    stream ``s`` in issue order.
    """

    pos: np.ndarray
    stream: np.ndarray
    seq: np.ndarray
    clock: np.ndarray
    stream_nodes: tuple[np.ndarray, ...]

    @property
    @derived(ScheduleError, "clock")
    def num_streams(self) -> int:
        return self.clock.shape[1]

    @named_method
    def hb(self, a: int, b: int) -> bool:
        """``a`` happens-before ``b`` (strict). Node indices: anything else (a negative one too, which indexing
        would wrap around to another node) is a ``ScheduleError`` naming it (``errors.not_an_index``)."""
        try:
            if a >= 0 and b >= 0:
                return a != b and bool(self.clock[b, self.stream[a]] > self.seq[a])
        except (TypeError, IndexError, ValueError, OverflowError):   # (2**64 beside a numpy bool: no C long)
            pass
        bad = b if type(a) is int and 0 <= a < len(self.stream) else a   # (the argument at fault, ``a`` first)
        raise not_an_index(ScheduleError, f"HappensBefore.hb: node {'b' if bad is b and bad is not a else 'a'}",
                           bad, len(self.stream))

    @named_method
    def first_at_least(self, s0: int, s: int, counts: np.ndarray) -> np.ndarray:
        """For each count c: the first seq on stream ``s0`` whose clock[s] >= c (len if none)."""
        try:
            if s0 >= 0 and s >= 0:
                col = self.clock[self.stream_nodes[s0], s]
                return np.searchsorted(col, counts, side="left")
        except (TypeError, IndexError, ValueError, OverflowError):
            pass
        bad = s if type(s0) is int and 0 <= s0 < len(self.stream_nodes) else s0
        raise not_an_index(ScheduleError, f"HappensBefore.first_at_least: stream {'s' if bad is s and bad is not s0 else 's0'}",
                           bad, len(self.stream_nodes))


@named_options
def build_happens_before(graph: Graph, schedule: Schedule) -> HappensBefore:
    """Check the schedule against the graph (contract rule 1) and build its vector clocks."""
    check_graph(graph, "build_happens_before")
    check_schedule(graph, schedule)
    waits: dict[int, list[int]] = {}
    for e in schedule.events:
        waits.setdefault(graph.node_index[e.before], []).append(graph.node_index[e.after])
    walk = _walk_clocks(graph, schedule.order, schedule.streams, schedule.num_streams,
                        lambda n, s, cur, stream, seq: waits.get(n, ()))
    pos = np.empty(len(graph.nodes), dtype=np.int64)
    for p, nid in enumerate(schedule.order):
        pos[graph.node_index[nid]] = p
    return HappensBefore(pos, np.asarray(walk.stream, dtype=np.int64), np.asarray(walk.seq, dtype=np.int64),
                         walk.clock, tuple(np.asarray(m, dtype=np.int64) for m in walk.members))


@dataclass
class _Clocks:
    clock: np.ndarray
    stream: list[int]
    seq: list[int]
    members: list[list[int]]


def _walk_clocks(graph: Graph, order: tuple[str, ...], streams: tuple[int, ...], S: int, joins) -> _Clocks:
    """The one vector-clock pass: in issue order, a node's clock is its stream's last clock joined with
    the clocks of the nodes ``joins(n, s, cur, stream, seq)`` yields. ``joins`` may be a generator that
    reads ``cur`` between yields (the event reduction asks whether a dependency is already implied)."""
    n_nodes = len(graph.nodes)
    # counts of nodes fit 32 bits (a graph of 2**31 nodes is far past any JSON file): half the memory of the
    # nodes x streams table, which is the largest one at many streams
    clock = np.zeros((n_nodes, S), dtype=np.int32)
    counts = [0] * S
    stream = [-1] * n_nodes
    seq = [-1] * n_nodes
    members: list[list[int]] = [[] for _ in range(S)]
    for nid, s in zip(order, streams):
        n = graph.node_index[nid]
        # built in place in n's row, from the clock of its stream's last node (a row of zeros for the
        # first): one row copy per node, not three (at 1024 streams the copies were most of the walk)
        cur = clock[n]
        if members[s]:
            cur[:] = clock[members[s][-1]]
        for a in joins(n, s, cur, stream, seq):
            np.maximum(cur, clock[a], out=cur)
        counts[s] += 1
        cur[s] = counts[s]
        stream[n], seq[n] = s, counts[s] - 1
        members[s].append(n)
    return _Clocks(clock, stream, seq, members)


def _unknown_ids(order: tuple, graph: Graph) -> list:
    """The entries of ``order`` that name no node of ``graph``, each id once (an entry that is no string, which may
    be unhashable, as it is), in order: for the message, made only once one is found."""
    seen: set[str] = set()
    out = []
    for x in order:
        if not isinstance(x, str):
            out.append(x)
        elif x not in graph.node_index and x not in seen:
            seen.add(x)
            out.append(x)
    return out


def check_schedule(graph: Graph, schedule: Schedule) -> None:
    """Raise ScheduleError unless the schedule is a well-formed, topological one for ``graph``.

    Stream ids lie in ``0 .. MAX_STREAMS - 1``: the vector clocks take one column per stream id (a
    stream 10**9 would allocate gigabytes), and a plan file declares at most ``MAX_STREAMS`` streams
    (a plan using stream 2000 could be written but not read back)."""
    if not isinstance(schedule, Schedule):
        raise ScheduleError(f"expected a memplan Schedule (memplan.schedule_with_events builds one), "
                            f"not {type(schedule).__name__}")
    order, streams = schedule.order, schedule.streams
    if not isinstance(order, tuple) or not isinstance(streams, tuple) or not isinstance(schedule.events, tuple):
        raise ScheduleError("schedule: order, streams and events must be tuples (or lists)")
    if len(order) != len(streams):
        raise ScheduleError("schedule: order and streams differ in length")
    pos: dict[str, int] = {}
    for p, (nid, s) in enumerate(zip(order, streams)):
        if not isinstance(nid, str) or nid not in graph.node_index:
            # (every unknown id, the first few and a count: a list of typos named one per run)
            raise ScheduleError(f"schedule names {some_of(_unknown_ids(order[p:], graph), 'unknown node', _short)}")
        if nid in pos:
            raise ScheduleError(f"schedule lists node {nid!r} twice")
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or not 0 <= s < MAX_STREAMS:
            raise ScheduleError(f"node {nid!r}: stream {_short(s)} is not an integer in 0..{MAX_STREAMS - 1}")
        pos[nid] = p
    if len(pos) != len(graph.nodes):
        missing = [n.id for n in graph.nodes if n.id not in pos]
        raise ScheduleError(f"schedule is missing {some_of(missing, 'node')}")
    # each read comes after its chain's latest-issued writer (one number per view, each from the one
    # above it: listing every writer for every read is quadratic on a chain of written views); the
    # writers are listed only to name the first one out of order
    at = [pos[n.id] for n in graph.nodes]
    last_issued = graph.fold_writers(at.__getitem__, max)
    for ni, n in enumerate(graph.nodes):
        for t in graph.node_inputs[ni]:
            last = last_issued.of(t)
            if last is not None and last > at[ni]:
                d = next(d for d in data_dependencies(graph, ni) if at[d] > at[ni])
                raise ScheduleError(f"node {n.id!r} is issued before {graph.nodes[d].id!r}, whose result it reads")
    stream_of = dict(zip(order, streams))
    for k, e in enumerate(schedule.events):
        if not isinstance(e, Event) or not isinstance(e.after, str) or not isinstance(e.before, str):
            raise ScheduleError(f"schedule event #{k} is not an Event(after, before) of two node ids: "
                                f"{type(e).__name__} {_short(e)}")
        for end in (e.after, e.before):
            if end not in pos:
                raise ScheduleError(f"event {e.after!r}->{e.before!r} names unknown node {end!r}")
        if stream_of[e.after] == stream_of[e.before]:
            raise ScheduleError(
                f"event {e.after!r}->{e.before!r} joins a stream to itself (stream {stream_of[e.after]})"
            )
        if pos[e.after] >= pos[e.before]:
            raise ScheduleError(
                f"event {e.after!r}->{e.before!r} is waited before it is recorded (a silent race in CUDA)"
            )
    groups = graph.groups()
    # each stream's nodes in issue order, and each node's place there: the nodes of a group's stream issued
    # between its first and last members are a slice of that list, scanned up to the first outsider (the
    # whole issue order between them was quadratic: 512 groups issued round-robin over 512 streams)
    on_stream: dict[int, list[str]] = {}
    place: dict[str, int] = {}
    for nid, s in (zip(order, streams) if groups else ()):
        seq = on_stream.setdefault(s, [])
        place[nid] = len(seq)
        seq.append(nid)
    for gname, members in groups.items():
        ids = [graph.nodes[m].id for m in members]
        ss = {stream_of[i] for i in ids}
        if len(ss) != 1:
            raise ScheduleError(f"fusion group {gname!r} is split across streams {sorted(ss)}")
        ps = [pos[i] for i in ids]
        if ps != sorted(ps):
            raise ScheduleError(f"fusion group {gname!r} is not issued in its listed order")
        s = ss.pop()
        inside = set(ids)  # a set: a list made this check quadratic in the group's length
        seq = on_stream[s]
        for k in range(place[ids[0]], place[ids[-1]] + 1):
            if seq[k] not in inside:
                raise ScheduleError(f"fusion group {gname!r} is interrupted by node {seq[k]!r} on stream {s}")


def merge_latest(pos, a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    """Two maps {stream: its latest-issued writer} (``pos``: issue position by node), merged."""
    out = dict(a)
    for s, w in b.items():
        if s not in out or pos[w] > pos[out[s]]:
            out[s] = w
    return out


def writers_by_stream(graph: Graph, pos, stream):
    """Per tensor, {stream: the latest-issued writer along its view chain} (``Graph.fold_writers``; ``pos`` and
    ``stream`` by node index): the writers an event may have to wait for, one per stream. Shared by
    ``schedule_with_events`` and ``optimize.events.Replay``, which must choose the same events."""
    return graph.fold_writers(lambda w: {stream[w]: w}, partial(merge_latest, pos))


@named_options
def schedule_with_events(graph: Graph, order: Iterable[str], stream_of: Mapping[str, int]) -> Schedule:
    """A schedule for the given order and streams with the fewest events its data needs.

    Each cross-stream dependency gets an event unless happens-before already implies it (the
    transitive reduction, decided on the vector clocks as they are built). Dependencies are tried
    latest-first, since an event from the latest producer often covers the earlier ones.

    Only each stream's latest dependency is tried, found per view from the one above it
    (``Graph.fold_writers``), so a chain of k written views costs O(k), not O(k^2). The events are
    the same as trying them all: an earlier one ``d`` on stream ``sd`` is issued before the latest,
    ``d*``, so tried after it; once ``d*`` is tried (same stream, implied, or joined by its event)
    the clock counts past ``d*`` on ``sd``, so ``d`` is found implied and given no event.
    """
    check_graph(graph, "schedule_with_events")
    why = unordered(order)
    if isinstance(order, str) or not isinstance(order, Iterable) or why:  # a str would be read as its characters
        raise ScheduleError(f"order must be a sequence of node ids, not {type(order).__name__} {_short(order)}"
                            + (f" ({why})" if why else ""))
    try:   # an iterable that cannot be iterated (a 0-d torch tensor, as a 0-d numpy array above): named, not raw
        order = tuple(map(plain_str, order))   # ids of a str subclass by their characters, as the graph keeps its own
    except TypeError as exc:
        raise ScheduleError(f"order must be a sequence of node ids, not {type(order).__name__} {_short(order)} "
                            f"({_short(exc)})") from None
    if not isinstance(stream_of, Mapping):
        raise ScheduleError(f"stream_of must map node ids to streams, not {type(stream_of).__name__}")
    # check the raw values first: a missing node or a stream of 1.5, "1" or True is a ScheduleError
    # naming the node, not a KeyError or a silent int() rounding
    raw = tuple(stream_of.get(n) if isinstance(n, str) else None for n in order)
    unmapped = next((n for n, s in zip(order, raw) if s is None and isinstance(n, str) and n in graph.node_index
                     and n not in stream_of), None)
    if unmapped is not None:   # (it read "stream None is not an integer", as if the mapping held a None)
        # (a key no node has is likely the typo that left it unmapped: named with it)
        stray = [k for k in stream_of if not (isinstance(k, str) and plain_str(k) in graph.node_index)]
        hint = f"; stream_of names {some_of(stray, 'key', _short)} that no node has" if stray else ""
        raise ScheduleError(f"stream_of gives no stream for node {unmapped!r} (it must map every node of order)"
                            + hint)
    check_schedule(graph, Schedule(order, raw, ()))
    _refuse_unknown_keys(graph, stream_of)
    streams = tuple(int(s) for s in raw)
    S = (max(streams) + 1) if streams else 1
    node_pos = {graph.node_index[nid]: p for p, nid in enumerate(order)}
    node_stream = {graph.node_index[nid]: s for nid, s in zip(order, streams)}
    events: list[Event] = []
    later = partial(merge_latest, node_pos)
    latest_on = writers_by_stream(graph, node_pos, node_stream)

    def needed(n: int, s: int, cur: np.ndarray, stream: list[int], seq: list[int]):
        deps: dict[int, int] = {}
        for t in graph.node_inputs[n]:
            on = latest_on.of(t)
            if on is not None:
                deps = later(deps, on)
        for d in sorted(deps.values(), key=lambda d: -node_pos[d]):
            sd = stream[d]
            if sd != s and cur[sd] <= seq[d]:  # not yet implied by the events taken so far
                events.append(Event(graph.nodes[d].id, graph.nodes[n].id))
                yield d

    _walk_clocks(graph, order, streams, S, needed)
    return Schedule(order, streams, tuple(events))


def _refuse_unknown_keys(graph: Graph, stream_of: Mapping) -> None:
    """ScheduleError naming the keys of ``stream_of`` that are no node of ``graph`` (the first few and a count:
    ``errors.some_of``), for an order already checked to list every node once. Why: such keys were ignored, so a
    typo'd id (``{"mm_k": 1, "rope_kk": 1}``) left the node it meant on the stream a default or another key gave it,
    and the schedule came back without a word; a key the graph does not have is a mistake, never a no-op."""
    if len(stream_of) == len(graph.nodes):   # (every node of the order is a key: no key to spare)
        return
    known = graph.node_index
    unknown = [k for k in stream_of if not (isinstance(k, str) and plain_str(k) in known)]
    if unknown:
        raise ScheduleError(f"stream_of names {some_of(unknown, 'key', _short)} that no node of graph "
                            f"{_short(graph.name)} has (a typo'd node id? every key must be a node of order)")


def check_reads_ordered(graph: Graph, schedule: Schedule) -> None:
    """Raise ScheduleError naming the first read (in issue order) whose writer does not happen-before it under
    ``schedule`` (contract rule 2: a cross-stream read needs an event from its writer), for a checked schedule
    (``check_schedule``). Why: ``plan(graph, schedule)`` planned a hand-built schedule short of an event and
    only the final ``verify`` refused the plan (an ``UnsafePlan`` of the caller's schedule), while
    ``plan(..., check=False)``, which skips that ``verify`` where the solvers checked every pair of buffers,
    returned the racing plan. One clock walk, as ``schedule_with_events`` makes: each stream's latest writer of
    each input (``writers_by_stream``; an earlier one on its stream happens-before it) against the reader's clock."""
    idx = graph.node_index
    pos = {idx[nid]: p for p, nid in enumerate(schedule.order)}
    node_stream = {idx[nid]: int(s) for nid, s in zip(schedule.order, schedule.streams)}
    latest_on = writers_by_stream(graph, pos, node_stream)
    waits: dict[int, list[int]] = {}
    for e in schedule.events:
        waits.setdefault(idx[e.before], []).append(idx[e.after])
    found: list[tuple[int, int, int]] = []

    def joins(n: int, s: int, cur: np.ndarray, stream: list[int], seq: list[int]):
        yield from waits.get(n, ())
        if found:
            return
        for t in graph.node_inputs[n]:
            for d in (latest_on.of(t) or {}).values():
                # (a writer on n's own stream is issued before it: check_schedule; n itself writes nothing it reads)
                if d != n and stream[d] != s and cur[stream[d]] <= seq[d]:
                    found.append((n, t, d))
                    return

    _walk_clocks(graph, schedule.order, schedule.streams, schedule.num_streams, joins)
    if found:
        n, t, d = found[0]
        r, w = graph.nodes[n].id, graph.nodes[d].id
        raise ScheduleError(f"schedule: node {r!r} reads {graph.tensors[t].id!r} but its writer {w!r} (stream "
                            f"{node_stream[d]}) does not happen-before it (stream {node_stream[n]}): add "
                            f"Event({w!r}, {r!r}), or build the schedule with memplan.schedule_with_events, which adds "
                            "every event the reads need")


def schedule_of(plan: Plan) -> Schedule:
    """A Plan's issue order, streams and events as a Schedule (nothing else of the plan is read)."""
    return Schedule(tuple(n for n, _ in plan.order), tuple(s for _, s in plan.order),
                    tuple(Event(a, b) for a, b in plan.events))
