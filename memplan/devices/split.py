"""The device split as one step: stages, COPY nodes and one merged schedule with cross-device events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BudgetError, ScheduleError, as_int, literal, named_fields, named_options
from ..errors import short_repr as _short
from ..graph import Graph, check_graph
from ..optimize.cost import total_us
from ..planfile import INT64, MAX_STREAMS, Plan
from ..schedule import Event, Schedule, schedule_with_events
from ..values import by_value, derived
from .partition import partition
from .rewrite import crossing_bytes, cut_constraints, device_subgraph, insert_copies, shared_weights, units_of

if TYPE_CHECKING:  # for the annotations only: optimize/ loads on a call that needs it
    from ..optimize.cost import CostModelLike


@by_value
@named_fields
@dataclass(frozen=True)
class DeviceSplit:
    """A graph split over ``devices`` GPUs, with COPY nodes and one merged schedule.

    ``graph``: the transformed graph; every node and tensor has ``attrs["device"]``. ``node_device`` /
    ``tensor_device``: the same, by index of ``graph``. ``schedule``: device 0's nodes, then device 1's,
    ...; device ``d`` runs on the global streams ``range(*stream_ranges[d])``; its events include the
    cross-device ones (``cross_events``). ``stages``: the original graph's node index ranges
    ``(start, stop)`` per device (never empty: ``check_stages`` refuses more devices than stages). ``stage_cost_us`` and
    ``weight_bytes`` exclude copies; ``copy_bytes`` is what crosses devices per step.
    """

    graph: Graph
    devices: int
    schedule: Schedule
    node_device: tuple[int, ...]
    tensor_device: tuple[int, ...]
    stream_ranges: tuple[tuple[int, int], ...]
    stages: tuple[tuple[int, int], ...]
    stage_cost_us: tuple[float, ...]
    weight_bytes: tuple[int, ...]
    copies: int
    copy_bytes: int

    @property
    @derived(ScheduleError, "stage_cost_us")
    def balance(self) -> float:
        """Largest stage cost over the mean stage cost (1.0 is perfect balance)."""
        mean = total_us(self.stage_cost_us) / max(len(self.stage_cost_us), 1)
        return max(self.stage_cost_us, default=0.0) / mean if mean > 0 else 1.0

    @property
    @derived(ScheduleError, "graph", "schedule", "node_device")
    def cross_events(self) -> tuple[Event, ...]:
        idx, dev = self.graph.node_index, self.node_device
        return tuple(e for e in self.schedule.events if dev[idx[e.after]] != dev[idx[e.before]])



def max_stages(allowed: list[bool]) -> int:
    """The most non-empty pipeline stages a graph can be cut into: one, plus one per unit a stage may end
    after (``cut_constraints``) other than the last."""
    return 1 + sum(allowed[:-1])


#: why a graph may have fewer stages than nodes, as each refusal of too many devices says it
KEPT_ON_ONE_DEVICE = ("a fusion group, or a tensor written through a view such as a KV cache, keeps its nodes on one "
                      "device")


def stage_limit(graph: Graph) -> int:
    """The most devices ``graph`` can be split over, each given a node (``max_stages`` of its ``cut_constraints``):
    the limit ``check_stages`` refuses more devices than, for a caller that checks it before any split (``bench
    devices``, over several counts at once)."""
    return max_stages(cut_constraints(graph, units_of(graph))[0])


def check_stages(graph: Graph, n: int, allowed: list[bool]) -> None:
    """ScheduleError naming ``devices`` when ``graph`` cannot give each of ``n`` devices a node: ``plan(g,
    devices=1024)`` on a 49-node graph returned a "safe" plan of 988 empty devices (each an arena of 0 bytes,
    no stream, its weights nowhere), which a runtime would set up for nothing. A fusion group, or a tensor
    written through a view (a KV cache) with all its accesses, stays on one device, so a graph may have fewer
    stages than nodes. With at most ``max_stages`` devices, ``partition`` leaves no device empty."""
    most = max_stages(allowed)
    if n > most:
        nodes = len(graph.nodes)
        if not nodes:   # (it said "1 device(s) would run nothing" of 2, where neither has a node to run)
            raise ScheduleError.of(f"{{devices}}: graph {literal(_short(graph.name))} has no nodes, so no device "
                                   "would run anything; plan it on one device", devices=n)
        why = (f"it has {nodes} node{'s' * (nodes != 1)}" if most >= nodes else
               f"its {nodes} nodes can be cut into at most {most} stage{'s' * (most != 1)} ({KEPT_ON_ONE_DEVICE})")
        raise ScheduleError.of(f"{{devices}} is more than graph {literal(_short(graph.name))} can use: {why}, so "
                               f"{n - most} device(s) would run nothing; ask for at most {most}", devices=n)


def check_devices(n: Any) -> int:
    """The device count, or ScheduleError naming the bad value (the one place it is validated)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STREAMS:
        raise ScheduleError(f"devices must be an integer in 1..{MAX_STREAMS}, not {_short(n)}")
    return n


@named_options
def split_devices(graph: Graph, n: int, *, cost_model: CostModelLike | None = None,
                  device_capacity: int | Sequence[int] | None = None,
                  streams: int | str | None = None, max_events: int | None = None) -> DeviceSplit:
    """Split ``graph`` into ``n`` pipeline stages, one per device, and schedule each device.

    ``streams`` / ``max_events`` mean what they mean for ``plan()``, per device (None: each device runs
    its nodes serially, in listed order). ``device_capacity`` bounds each device's weight bytes: one number
    for every device, or a list of one per device (BudgetError naming the device otherwise). ``cost_model`` (default ``memplan.CostModel``) gives the node
    costs the stages are balanced by and the per-device schedules are made with.
    """
    from ..optimize.candidates import warn_one_stream

    warn_one_stream(streams, max_events, None)
    return split_with_serial(graph, n, cost_model=cost_model, device_capacity=device_capacity, streams=streams,
                             max_events=max_events)


def split_with_serial(graph: Graph, n: int, *, cost_model: CostModelLike | None = None,
                      device_capacity: int | Sequence[int] | None = None,
                      streams: int | str | None = None, max_events: int | None = None,
                      serial_devices: frozenset[int] = frozenset(),
                      low_memory_devices: frozenset[int] = frozenset()) -> DeviceSplit:
    """``split_devices``, with the devices in ``serial_devices`` run serially whatever ``streams`` asks, and those in
    ``low_memory_devices`` serially in the greedy low-memory order of their stage (``memory_order``) instead of
    the listed one: how ``plan()`` gives a device's concurrency back, and then its listed order, when its arena is
    over its ``device_capacity``, as ``memory_budget`` does on one device (the stages do not depend on the streams
    or the orders, so they stay the same)."""
    from ..optimize import graph_optimize, node_costs
    from ..optimize.candidates import check_options
    from ..optimize.cost import check_cost_model
    from ..optimize.memorder import memory_order

    check_graph(graph, "split_devices")
    check_devices(n)
    caps = device_capacities(device_capacity, n)
    cap = check_options(streams, None, max_events, split=n > 1)
    units = units_of(graph)
    allowed, weight = cut_constraints(graph, units)
    check_stages(graph, n, allowed)
    cost = node_costs(graph, check_cost_model(cost_model))
    ucost = [total_us(cost[m] for m in ms) for ms in units]
    stages_u = partition(ucost, weight, allowed, n, caps, cut_bytes=crossing_bytes(graph, units),
                         shared=shared_weights(graph, units))
    node_dev = [0] * len(graph.nodes)
    stages: list[tuple[int, int]] = []
    for d, (a, b) in enumerate(stages_u):
        ms = [m for u in range(a, b) for m in units[u]]
        for m in ms:
            node_dev[m] = d
        stages.append((ms[0], ms[-1] + 1) if ms else (len(graph.nodes), len(graph.nodes)))
    stage_cost = tuple(round(total_us(ucost[a:b]), 6) for a, b in stages_u)

    split, ndev, tdev, copy_tensors = insert_copies(graph, node_dev, n)
    wb = [0] * n
    for i, t in enumerate(split.tensors):
        if t.kind == "weight" and split.root[i] == i:
            wb[tdev[i]] += t.size
    wbytes = tuple(wb)
    for d in range(n):
        if caps is not None and wbytes[d] > caps[d]:
            raise BudgetError.of(f"device {d} needs {wbytes[d]} B of weights (with weights also read on earlier "
                                 "devices, replicated), over {device_capacity!n} B", device_capacity=caps[d])
    members: list[list[int]] = [[] for _ in range(n)]
    for i, d in enumerate(ndev):
        members[d].append(i)
    order: list[str] = []
    stream_of: dict[str, int] = {}
    ranges: list[tuple[int, int]] = []
    base = 0
    for d in range(n):
        if not members[d]:
            ranges.append((base, base))
            continue
        if d in low_memory_devices:
            sched = memory_order(device_subgraph(split, members[d]))
        elif cap is None or d in serial_devices:
            sched = Schedule(tuple(split.nodes[m].id for m in members[d]), (0,) * len(members[d]))
        else:
            # ``streams`` is per device, but stream ids are the plan's, numbered on across devices, and a plan
            # holds at most MAX_STREAMS: a device gets no more than leaves one for each later device (2 devices
            # with streams=1024 and 600 branches each failed with "stream 1024 is not an integer in 0..1023")
            later = sum(1 for e in range(d + 1, n) if members[e])
            k = min(cap, MAX_STREAMS - base - later)
            # (one stream has no event to cap: the caller warned of streams=1 once, and graph_optimize would warn again)
            sched = graph_optimize(device_subgraph(split, members[d]), k, cost_model=cost_model,
                                   max_events=max_events if k > 1 else None)
        for nid, s in zip(sched.order, sched.streams):
            order.append(nid)
            stream_of[nid] = base + int(s)
        ranges.append((base, base + sched.num_streams))
        base += sched.num_streams
    schedule = schedule_with_events(split, order, stream_of)
    return DeviceSplit(
        graph=split, devices=n, schedule=schedule, node_device=tuple(ndev), tensor_device=tuple(tdev),
        stream_ranges=tuple(ranges), stages=tuple(stages), stage_cost_us=stage_cost, weight_bytes=wbytes,
        copies=len(copy_tensors), copy_bytes=sum(split.tensors[t].size for t in copy_tensors),
    )



def check_capacity(graph: Graph, plan: Plan, device_capacity: int | Sequence[int]) -> None:
    """Single-device ``device_capacity``: the graph's weights plus the plan's arena must fit."""
    (cap,) = device_capacities(device_capacity, 1)
    weights = weight_bytes(graph)
    if weights + plan.arena_bytes > cap:
        raise BudgetError.of(over_capacity(0, weights, plan.arena_bytes, cap), device_capacity=cap)


def over_capacity(device: int, weights: int, arena: int, cap: int) -> str:
    """What a device over its capacity ``cap`` needs, as the template of a ``BudgetError.of(..., device_capacity=cap)``
    (``errors.NamesOptions``). Weights over it alone are said so: no order or solver can help there, and "weights
    plus an arena = total" left the user to find that out from the sum."""
    if weights > cap:
        return (f"device {device} needs {weights} B of weights alone, over {{device_capacity!n}} B "
                f"(its arena needs {arena} B more)")
    return (f"device {device} needs {weights} B of weights plus an arena of {arena} B = {weights + arena} B, "
            "over {device_capacity!n} B")


def weight_bytes(graph: Graph) -> int:
    """The bytes of ``graph``'s weights (roots only: a view of a weight takes none of its own)."""
    return sum(t.size for i, t in enumerate(graph.tensors) if t.kind == "weight" and graph.root[i] == i)


def _is_byte_count(v: Any) -> bool:
    """A non-negative integer below 2**63 to Python (``as_int``: a numpy integer too, in a list as alone)."""
    i = as_int(v)
    return i is not None and 0 <= i < INT64


def _as_sequence(device_capacity: Any) -> Any:
    """A 1-D numpy array of capacities as a list (one per device, as a list of them is); anything else as it is."""
    if isinstance(device_capacity, np.ndarray) and device_capacity.ndim == 1:
        return device_capacity.tolist()
    return device_capacity


def check_capacity_arg(device_capacity: Any) -> None:
    """``device_capacity`` is None, a byte count below 2**63 (each device's, as ``memory_budget`` and the CLI's
    ``--device-capacity`` are), or a list or tuple of such, one per device (two different GPUs: one number
    was every device's). ``plan()`` checks it on entry (a single-device plan checked it only after the whole
    solve, so ``device_capacity=-1`` with a time limit spent that limit first, and 2**100 was taken); how many
    a sequence holds is ``device_capacities``' check, once the device count is known."""
    if device_capacity is None or _is_byte_count(device_capacity):
        return
    device_capacity = _as_sequence(device_capacity)
    if not isinstance(device_capacity, (list, tuple)) or not device_capacity:
        raise BudgetError.of("{device_capacity!w} must be a non-negative byte count below 2**63, or a list of them "
                             f"(one per device), not {literal(_short(device_capacity))}")
    for d, v in enumerate(device_capacity):
        if not _is_byte_count(v):
            raise BudgetError.of(f"{{device_capacity!w}}[{d}] (device {d}) must be a non-negative byte count below "
                                 f"2**63, not {literal(_short(v))}")


def device_capacities(device_capacity: Any, n: int) -> tuple[int, ...] | None:
    """``device_capacity`` as one byte count per device of ``n`` (a single number: every device's), or None;
    BudgetError naming the device of a bad value, or the count where a sequence is not one per device."""
    check_capacity_arg(device_capacity)
    if device_capacity is None:
        return None
    if _is_byte_count(device_capacity):
        return (as_int(device_capacity),) * n
    device_capacity = _as_sequence(device_capacity)
    if len(device_capacity) != n:
        k = len(device_capacity)
        raise BudgetError.of(f"{{device_capacity!w}} lists {k} capacit{'y' if k == 1 else 'ies'} for {n} device"
                             f"{'s' * (n != 1)}: give one per device (or one number, each device's)")
    return tuple(as_int(v) for v in device_capacity)   # plain ints: numpy ones wrap around in int64 sums
