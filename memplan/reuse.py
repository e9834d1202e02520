"""When a tensor's bytes may be reused under a plan, for executors of their own.

The answer is the planner's own notion, read off the plan: its order, streams and events give the happens-before
(``schedule``), and ``compute_lifetimes`` of that schedule gives, per root and stream, the last access and the
first position every access happens before, which is what the contract's rule 3 frees on. Nothing is re-planned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ScheduleError, named_options
from .errors import short_repr as _short
from .graph import Graph, check_graph
from .lifetimes import compute_lifetimes
from .planfile import Plan, check_plan_for
from .schedule import HappensBefore, build_happens_before, schedule_of


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


@named_options
def reuse_after(graph: Graph, plan: Plan, tensor: str, *, fused_groups: bool = False) -> Reuse:
    """When ``tensor``'s bytes may be reused under ``plan`` (a Plan made for ``graph``): see ``Reuse``.

    Why: a runtime engineer driving their own executor (a caching allocator sharing the arena, a step that frees
    early) asks which nodes' completion frees a tensor. The answer comes from the plan's own order, streams and
    events (the contract's happens-before, as ``verify`` reads it) and the graph's accesses, never from the
    planner. ``reuse_table`` answers for every tensor at once (one happens-before build).

    ``fused_groups``: for a backend that runs each fusion group as one kernel (``plan(..., fused_groups=True)``,
    ``runtime/``; as ``verify`` takes it): an access by a member of a group counts as one by its last member, since
    no member finishes, and no event is recorded, before the kernel does. Node by node (the default) the first
    node after a group's first member is inside the kernel still reading the bytes."""
    if not isinstance(tensor, str) or tensor not in check_graph(graph, "reuse_after").tensor_index:
        raise ScheduleError(f"reuse_after: graph {graph.name!r} has no tensor {_short(tensor)}")
    return reuse_table(graph, plan, (tensor,), fused_groups=fused_groups)[tensor]


@named_options
def reuse_table(graph: Graph, plan: Plan, tensors: Iterable[str] | None = None, *,
                fused_groups: bool = False) -> dict[str, Reuse]:
    """``reuse_after`` for each of ``tensors`` (default: every tensor of the graph), by id. ``tensors`` is a
    collection of ids: one id as a string was read letter by letter (answers for other tensors, or none).
    ``fused_groups``: as ``reuse_after`` takes it."""
    check_graph(graph, "reuse_table")
    if not isinstance(fused_groups, bool):
        raise ScheduleError(f"reuse_table: fused_groups must be True or False, not {_short(fused_groups)}")
    if isinstance(tensors, str):
        raise ScheduleError(f"reuse_table: tensors is a collection of tensor ids, not the one string "
                            f"{_short(tensors)} (use reuse_after for one, or [{_short(tensors)}])")
    if not isinstance(plan, Plan):
        raise ScheduleError(f"reuse_table needs a memplan Plan (memplan.plan, load_plan), not {type(plan).__name__}")
    check_plan_for(graph, plan)   # a plan of another graph: PlanMismatch, not answers about the wrong nodes
    hb = build_happens_before(graph, schedule_of(plan))
    ids = [t.id for t in graph.tensors] if tensors is None else list(tensors)
    index = graph.tensor_index
    for tid in ids:
        if not isinstance(tid, str) or tid not in index:
            raise ScheduleError(f"reuse_table: graph {graph.name!r} has no tensor {_short(tid)}")
    # the planner's own lifetimes of the plan's schedule: per root and stream the last access (``last``) and the
    # first position that every access happens before (``visible``); an output's root, or one with an output view,
    # lives to the end (``has_end``); weights are no buffer
    lt = compute_lifetimes(graph, hb, fused_groups=fused_groups)
    device, streams_of = _devices(plan, hb.num_streams)
    buf = {int(r): b for b, r in enumerate(lt.roots)}
    out = {}
    for tid in ids:
        r = graph.root[index[tid]]
        b = buf.get(r)
        if b is None or lt.has_end[b]:
            out[tid] = Reuse(tid, graph.tensors[r].id, False, {}, {})
            continue
        per = {s: int(hb.stream_nodes[s][int(lt.last[b, s]) - 1]) for s in range(hb.num_streams) if lt.last[b, s] > 0}
        ends = _maximal(hb, per)
        free_from = {s: graph.nodes[int(hb.stream_nodes[s][int(lt.visible[b, s])])].id
                     if int(lt.visible[b, s]) < len(hb.stream_nodes[s]) else None
                     for s in streams_of.get(device.get(graph.tensors[r].id, 0), ())}
        out[tid] = Reuse(tid, graph.tensors[r].id, True, {int(hb.stream[n]): graph.nodes[n].id for n in ends}, free_from)
    return out


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
