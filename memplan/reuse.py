"""When a tensor's bytes may be reused under a plan, for executors of their own.

The answer is the planner's own notion, read off the plan: its order, streams and events give the happens-before
(``schedule``), and ``compute_lifetimes`` of that schedule gives, per root and stream, the last access and the
first position every access happens before, which is what the contract's rule 3 frees on. Nothing is re-planned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ScheduleError, named_fields, named_method, named_options, plain_bool, plain_str, unordered
from .errors import short_repr as _short
from .graph import Graph, check_graph
from .lifetimes import compute_lifetimes
from .planfile import Plan, check_plan_for
from .schedule import HappensBefore, build_happens_before, schedule_of
from .values import by_value


@by_value
@named_fields
@dataclass(frozen=True)
class Reuse:
    """When the bytes of ``tensor`` (its ``root``'s: a view has no bytes of its own) may be reused under a plan.

    ``last``: stream -> the root's last access on that stream that no other access happens after; once all of
    them have finished, every access has (the contract's rule 3), so an executor that records an event after
    each and waits on them may hand the bytes to other work. ``free_from``: stream -> the first node of that
    stream that every access already happens before through the plan's own order and events (it and every
    later node of the stream may reuse the bytes with no wait of its own); None where no node of the stream is.
    In a multi-device plan ``free_from`` lists the streams of the root's own device only (each device has its own
    arena); ``last`` may name another device's stream (a COPY node writing this device's tensor).
    ``freed`` is False for an output, or a root with an output view (live until the run ends), and a weight
    (outside the arena): both dicts are empty then. The one exception rule 3 allows is not counted: a node that
    overwrites its input in place is that input's last access, and may write its output over it."""

    tensor: str
    root: str
    freed: bool
    last: dict[int, str]
    free_from: dict[int, str | None]


@named_fields
class ReuseIndex:
    """Every tensor's ``Reuse`` under one plan, from one happens-before and one lifetimes build.

    Why: ``reuse_after`` builds the plan's happens-before and lifetimes, linear in the graph, for its one tensor:
    an executor asking once per tensor paid that per call (a 20,000-node graph: 0.23 s a call, over an hour in
    all). Build a ``ReuseIndex(graph, plan)`` once and ask it (``after``, ``table``) as often as needed; it holds
    the graph and plan it was built for, read-only (``graph``, ``plan``, ``fused_groups``: a new one is a new
    index), and no state of its own beyond them (nothing global). ``fused_groups``:
    as ``reuse_after`` takes it."""

    def __init__(self, graph: Graph, plan: Plan, *, fused_groups: bool = False) -> None:
        self._build(graph, plan, fused_groups, "ReuseIndex")

    @classmethod
    def _named(cls, graph: Graph, plan: Plan, fused_groups: bool, who: str) -> ReuseIndex:
        """An index whose errors name ``who`` (``reuse_after``, ``reuse_table``: the function the caller called)."""
        index = cls.__new__(cls)
        index._build(graph, plan, fused_groups, who)
        return index

    def _build(self, graph: Graph, plan: Plan, fused_groups: bool, who: str) -> None:
        check_graph(graph, who)
        fused_groups = plain_bool(fused_groups)   # (``ReuseIndex(...)`` is a class: no ``named_options`` wrapper)
        if not isinstance(fused_groups, bool):
            raise ScheduleError(f"{who}: fused_groups must be True or False, not {_short(fused_groups)}")
        if not isinstance(plan, Plan):
            raise ScheduleError(f"{who} needs a memplan Plan (memplan.plan, load_plan), not {type(plan).__name__}")
        check_plan_for(graph, plan)   # a plan of another graph: PlanMismatch, not answers about the wrong nodes
        hb = build_happens_before(graph, schedule_of(plan))
        # the planner's own lifetimes of the plan's schedule: per root and stream the last access (``last``) and
        # the first position that every access happens before (``visible``); an output's root, or one with an
        # output view, lives to the end (``has_end``); weights are no buffer
        lt = compute_lifetimes(graph, hb, fused_groups=fused_groups)
        device, streams_of = _devices(plan, hb.num_streams)
        # set once, read-only after (``__setattr__``)
        self.__dict__.update(graph=graph, plan=plan, fused_groups=fused_groups, _who=who, _hb=hb, _lt=lt,
                             _device=device, _streams_of=streams_of,
                             _buf={int(r): b for b, r in enumerate(lt.roots)})

    def __setattr__(self, name: str, value: object) -> None:
        """Refused: the answers come from the happens-before and lifetimes built for the graph, plan and
        ``fused_groups`` given, so ``index.graph = other`` (or ``index.fused_groups = True``) made ``after`` answer
        from the old build (a stale ``Reuse``, or a raw IndexError), as if of the new one."""
        raise ScheduleError(f"ReuseIndex is read-only: {name!r} cannot be set or deleted; build a new "
                            f"ReuseIndex(graph, plan, fused_groups=...) for another graph, plan or fused_groups")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    @named_method
    def after(self, tensor: str) -> Reuse:
        """``reuse_after(graph, plan, tensor)`` of the index's graph and plan, without rebuilding anything."""
        graph = self.graph
        # an id of a str subclass by its characters (``plain_str``), as the graph holds its ids: one whose ``==`` and
        # ``hash`` differ from its characters (case-blind) was answered for another tensor ("XN" for the graph's "xn")
        tensor = plain_str(tensor)
        if not isinstance(tensor, str) or tensor not in graph.tensor_index:
            raise ScheduleError(f"{self._who}: graph {graph.name!r} has no tensor {_short(tensor)}")
        r = graph.root[graph.tensor_index[tensor]]
        b = self._buf.get(r)
        hb, lt = self._hb, self._lt
        if b is None or lt.has_end[b]:
            return Reuse(tensor, graph.tensors[r].id, False, {}, {})
        per = {s: int(hb.stream_nodes[s][q - 1]) for s, q in zip(*(x.tolist() for x in lt.last.row_cells(b)))}
        ends = _maximal(hb, per)
        free_from = {s: graph.nodes[int(hb.stream_nodes[s][int(lt.visible[b, s])])].id
                     if int(lt.visible[b, s]) < len(hb.stream_nodes[s]) else None
                     for s in self._streams_of.get(self._device.get(graph.tensors[r].id, 0), ())}
        return Reuse(tensor, graph.tensors[r].id, True, {int(hb.stream[n]): graph.nodes[n].id for n in ends}, free_from)

    @named_method
    def table(self, tensors: Iterable[str] | None = None) -> dict[str, Reuse]:
        """``reuse_table(graph, plan, tensors)`` of the index's graph and plan. Every id is checked before any
        answer, so an unknown one is refused whatever its place in ``tensors``. A set of ids is answered in the
        graph's tensor order (``_in_graph_order``)."""
        if isinstance(tensors, str):
            raise ScheduleError(f"{self._who}: tensors is a collection of tensor ids, not the one string "
                                f"{_short(tensors)} (use reuse_after for one, or [{_short(tensors)}])")
        if tensors is not None and not _id_collection(tensors):
            raise ScheduleError(f"{self._who}: tensors is a collection of tensor ids (a list, tuple or set of "
                                f"strings), not {type(tensors).__name__} {_short(tensors)}")
        ids = [t.id for t in self.graph.tensors] if tensors is None else [plain_str(t) for t in tensors]
        if unordered(tensors):
            ids = _in_graph_order(self.graph, ids)
        for tid in ids:
            if not isinstance(tid, str) or tid not in self.graph.tensor_index:
                raise ScheduleError(f"{self._who}: graph {self.graph.name!r} has no tensor {_short(tid)}")
        return {tid: self.after(tid) for tid in ids}


@named_options
def reuse_after(graph: Graph, plan: Plan, tensor: str, *, fused_groups: bool = False) -> Reuse:
    """When ``tensor``'s bytes may be reused under ``plan`` (a Plan made for ``graph``): see ``Reuse``.

    Why: a runtime engineer driving their own executor (a caching allocator sharing the arena, a step that frees
    early) asks which nodes' completion frees a tensor. The answer comes from the plan's own order, streams and
    events (the contract's happens-before, as ``verify`` reads it) and the graph's accesses, never from the
    planner. Each call builds the plan's happens-before and lifetimes (linear in the graph): to ask about many
    tensors, build a ``ReuseIndex(graph, plan)`` once and call its ``after``, or use ``reuse_table``.

    ``fused_groups``: for a backend that runs each fusion group as one kernel (``plan(..., fused_groups=True)``,
    ``runtime/``; as ``verify`` takes it): an access by a member of a group counts as one by its last member, since
    no member finishes, and no event is recorded, before the kernel does. Node by node (the default) the first
    node after a group's first member is inside the kernel still reading the bytes."""
    return ReuseIndex._named(graph, plan, fused_groups, "reuse_after").after(tensor)


@named_options
def reuse_table(graph: Graph, plan: Plan, tensors: Iterable[str] | None = None, *,
                fused_groups: bool = False) -> dict[str, Reuse]:
    """``reuse_after`` for each of ``tensors`` (default: every tensor of the graph), by id, from one
    ``ReuseIndex``. ``tensors`` is a collection of ids: one id as a string was read letter by letter (answers for
    other tensors, or none). ``fused_groups``: as ``reuse_after`` takes it."""
    return ReuseIndex._named(graph, plan, fused_groups, "reuse_table").table(tensors)


def _in_graph_order(graph: Graph, ids: list) -> list:
    """``ids`` (of a set) in ``graph``'s tensor order, those it does not have after them by their repr. Why: a set
    iterates in an order that depends on the process's string hash seed, so ``reuse_table(g, p, {"x", "q"})`` listed
    its answers (and a set of two unknown ids named its refusal) in another order in each run (round 79)."""
    index = graph.tensor_index
    return sorted(ids, key=lambda t: (0, index[t], "") if isinstance(t, str) and t in index else (1, 0, repr(t)))


def _id_collection(tensors: object) -> bool:
    """Whether ``tensors`` can be a collection of ids: iterable, and not bytes, whose items are ints. Why: ``table(5)``
    raised a raw TypeError ("'int' object is not iterable"), and ``table(b"x")`` named a tensor 120."""
    return (isinstance(tensors, Iterable) and not isinstance(tensors, (bytes, bytearray, memoryview))
            and getattr(tensors, "ndim", None) != 0)   # (a 0-d array claims ``__iter__``: "iteration over a 0-d array")


def _devices(plan: Plan, num_streams: int) -> tuple[dict[str, int], dict[int, list[int]]]:
    """(tensor id -> its device, device -> its streams) of ``plan``. Why: in a multi-device plan each device has its
    own arena, so only a stream of the tensor's own device can reuse its bytes (``free_from``); a stream of
    another device was listed as free to reuse device 0's bytes. A stream's device is that of its nodes (each stream
    runs on one device: docs/format.md, "Multi-device plans"); a stream that runs no node is on none. A one-device
    plan: every stream, as before."""
    if plan.devices <= 1:
        return {}, {0: list(range(num_streams))}
    of_stream = {s: d for (_, s), d in zip(plan.order, plan.node_devices)}
    streams: dict[int, list[int]] = {}
    for s in range(num_streams):
        if s in of_stream:
            streams.setdefault(of_stream[s], []).append(s)
    return {t[0]: d for t, d in zip(plan.tensors, plan.tensor_devices)}, streams


def _maximal(hb: HappensBefore, per_stream: dict[int, int]) -> list[int]:
    """The accesses of ``per_stream`` (one a stream) that no other one happens after, in stream order."""
    ends = sorted(per_stream.values(), key=lambda n: int(hb.stream[n]))
    return [a for a in ends if not any(hb.hb(a, b) for b in ends)]
