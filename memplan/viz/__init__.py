"""Pictures of plans: the arena memory map (``memmap``) and a Perfetto/Chrome trace (``trace``).

Both need the same two facts about a plan: when each node runs (issue position, or simulated time) and
from which first to which last access each root tensor occupies its bytes. They are computed here once,
from the graph and the plan alone, so the pictures show what the plan says rather than what a planner
believed. matplotlib is imported only by ``memmap`` when a picture is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import MemplanError, PlanFormatError, counted
from ..files import atomic_write_bytes  # noqa: F401  (viz writers use the one atomic writer)
from ..graph import Graph, check_graph
from ..planfile import Plan, check_plan_for
from ..show import check_plan_arg


@dataclass(frozen=True)
class Span:
    """A root tensor's bytes ``[offset, offset + size)`` held from ``x0`` to ``x1`` (by its accesses)."""

    tensor: str
    offset: int
    size: int
    x0: float
    x1: float
    stream: int
    #: the device whose arena holds the bytes (0 on one device): each device of a split plan has its own arena,
    #: so two spans overlap only when they are on the same device
    device: int = 0


def check_pairing(graph: Graph, plan: Plan, what: str = "check_pairing") -> None:
    """The plan must be made for the graph (``planfile.check_plan_for``; safety is the verifier's job), and
    both must be memplan's (a None or a dict was an AttributeError naming neither argument nor ``what``)."""
    check_graph(graph, what)
    check_plan_arg(plan, what)
    check_plan_for(graph, plan)


def root_spans(graph: Graph, plan: Plan, x0: Mapping[str, float], x1: Mapping[str, float],
               x_start: float, x_end: float) -> list[Span]:
    """One Span per arena root: from its first access's ``x0`` to its last access's ``x1``.

    Inputs start at ``x_start`` (written before the run), outputs end at ``x_end`` (read after it).
    The colour stream is the stream of the root's first access. The callers (``trace_events``,
    ``memory_map_figure``) have checked that the plan is made for the graph (``check_pairing``); it is
    checked again for a direct caller, whose ``x0``/``x1`` that miss a node are named (KeyErrors before).
    """
    check_pairing(graph, plan, "root_spans")
    for what, xs in (("x0", x0), ("x1", x1)):
        if not isinstance(xs, Mapping):
            raise MemplanError(f"root_spans: {what} must be a mapping of node id to position, not {type(xs).__name__}")
        missing = next((n.id for n in graph.nodes if n.id not in xs), None)
        if missing is not None:
            raise MemplanError(f"root_spans: {what} gives no position for node {missing!r}")
    offsets = plan.offsets()
    stream_of = plan.stream_of()
    device_of = tensor_devices(plan)
    root = graph.root
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    first_stream: dict[int, tuple[float, int]] = {}
    for ni, n in enumerate(graph.nodes):
        a, b, s = x0[n.id], x1[n.id], stream_of[n.id]
        for t in graph.node_inputs[ni] + graph.node_outputs[ni]:
            r = root[t]
            if r not in lo or a < lo[r]:
                lo[r] = a
            if r not in hi or b > hi[r]:
                hi[r] = b
            if r not in first_stream or a < first_stream[r][0]:
                first_stream[r] = (a, s)
    # a buffer overwritten in place is free once its last node starts. The contract lets the output take any bytes
    # of the input's there, not only its offset: an output at another offset that still overlapped the input
    # (an output of 512 B at 0 over an input at 256) was drawn over it at that node, and counted twice in the
    # trace's live bytes (768 B live in an arena of 512)
    for n in graph.nodes:
        for o_id, i_id in n.inplace:
            ri, ro = root[graph.tensor_index[i_id]], root[graph.tensor_index[o_id]]
            oi, oo = offsets.get(graph.tensors[ri].id), offsets.get(graph.tensors[ro].id)
            shared = (ri != ro and oi is not None and oo is not None
                      and oi < oo + graph.tensors[ro].size and oo < oi + graph.tensors[ri].size)
            if shared and hi.get(ri) == x1[n.id]:
                hi[ri] = x0[n.id]
    ends = {root[t] for t, tensor in enumerate(graph.tensors) if tensor.kind == "output"}
    spans = []
    for t in graph.arena_roots():
        tensor = graph.tensors[t]
        off = offsets.get(tensor.id)
        if off is None:
            raise PlanFormatError(f"plan gives no offset for arena tensor {tensor.id!r}")
        start = x_start if tensor.kind == "input" else lo.get(t, x_start)
        end = x_end if t in ends else hi.get(t, start)
        spans.append(Span(tensor.id, off, tensor.size, start, end, first_stream.get(t, (0, 0))[1],
                          device_of.get(tensor.id, 0)))
    return spans


def tensor_devices(plan: Plan) -> dict[str, int]:
    """Each tensor's device by id (empty on one device: every tensor is on device 0). A split plan's offsets
    are into its own device's arena, so a picture or a live-bytes count that mixed devices showed tensors of
    two devices at one offset as overlapping, and summed bytes that no one arena holds."""
    if plan.devices <= 1:
        return {}
    # (unverified: a split plan from code without a device per tensor drew every tensor in device 0's band and
    # summed all devices in its counter; without a device arena each, the picture was a raw IndexError)
    if len(plan.tensor_devices) != len(plan.tensors):
        raise PlanFormatError(f"plan of {plan.devices} devices gives {counted(len(plan.tensor_devices), 'tensor device')} for "
                              f"its {counted(len(plan.tensors), 'tensor')} (field 'tensor_devices': one per tensor)")
    if len(plan.device_arena_bytes) != plan.devices:
        raise PlanFormatError(f"plan of {plan.devices} devices gives {counted(len(plan.device_arena_bytes), 'device arena')} "
                              f"(field 'device_arena_bytes': one per device)")
    for t, d in zip(plan.tensors, plan.tensor_devices):   # (unverified: a device 5 of 2, or -1, has no arena)
        if not 0 <= d < plan.devices:
            raise PlanFormatError(f"plan puts tensor {t[0]!r} on device {d}, not one of its {plan.devices} devices "
                                  f"(0..{plan.devices - 1})")
    return {t[0]: d for t, d in zip(plan.tensors, plan.tensor_devices)}


