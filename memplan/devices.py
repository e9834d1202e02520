"""Pipeline split over several GPUs: contiguous stages, explicit COPY nodes, one arena per device.

Why: users split a model's layers across GPUs (llama.cpp's ``--split-mode layer``). Each device then
needs its own arena, and the streams of one device must respect the events that carry data across
devices. llama.cpp keeps stream concurrency to one GPU because its pipeline ordering and its stream
ordering were never reconciled; here both are one schedule over one happens-before relation, so the
planner and the verifier treat a cross-device event like any other event.

How:

1. *Stages.* The graph's units (fusion groups, or single nodes) are split into ``n`` contiguous
   stages of the listed (topological) order, minimising the largest stage cost (node ``cost`` or the
   cost model of ``memplan.optimize``), then the largest stage weight bytes, with every stage's weights
   within ``device_capacity`` (``partition``; exact up to float rounding: a bisection over the cost
   threshold with a furthest-cut greedy, which is optimal for contiguous partitions). Among the splits
   whose largest stage is within one unit's cost of that optimum, the one crossing the fewest bytes
   is taken (a DP over stage ends): a boundary between layers copies one residual, a boundary inside
   a layer copies several activations.
   A stage boundary may not cut through a *pinned* root — any tensor written through a view (a KV
   cache written by SET_ROWS) — so such a root and all its accesses stay on one device: a buffer is
   never written on two devices. A read-only weight read on several devices (tied embeddings) is
   replicated: each later device loads its own ``name@devN`` (kind ``weight``, ``attrs.replica_of``),
   counted in that device's weight bytes; weights are never copied per step.
2. *Copies.* Every other tensor lives on the device of its producer (an ``input`` on the first device
   that reads it). A node reading a tensor that lives on an earlier device reads a copy instead: a
   ``COPY`` node whose output is a new ``intermediate`` tensor on the reader's device (one copy per
   tensor and destination device). Data flows only forward, from lower to higher devices.
3. *Where the copy runs.* A COPY node is issued on the **source** device's stream (a push, as
   ``cuMemcpyPeerAsync`` on the source stream). The source stream then orders the copy after the
   producer by itself, and the sent buffer is free for reuse on the source as soon as the copy is
   issued there; the destination waits on one cross-device event (COPY -> first reader). Issuing it
   on the destination instead would make the source buffer's last access a node of another device,
   which the source never waits for in a forward pipeline: the buffer would stay pinned to the end
   of the source's stage.
4. *Schedules.* Each device's nodes are scheduled alone (serial, or ``graph_optimize`` with the
   ``streams=`` semantics of ``plan()``); device ``d``'s streams get the contiguous global id range
   ``stream_ranges[d]``; the merged schedule issues device 0's nodes, then device 1's, ... and gets
   the fewest events the data needs (``schedule_with_events``), cross-device ones included.
5. *Arenas.* Happens-before and lifetimes are computed once over the merged schedule; each device's
   buffer problem keeps only that device's roots (``buffer_problem(..., roots=)``) and is solved on
   its own. Tensors on different devices never share an arena, so they never conflict. A device's
   buffer intervals are bounded by its own streams (a later device never waits back, so counting its
   streams would stretch every interval to the end of the run and make the conflict sweep quadratic).

Every function here is pure; the results are frozen dataclasses and deterministic.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .errors import BudgetError, ScheduleError, SolverError
from .graph import Graph, Node, Tensor
from .ops import COPY_OP
from .planfile import Plan
from .schedule import Event, Schedule, schedule_with_events

#: peer-to-peer bandwidth used for COPY node costs, bytes per microsecond (NVLink 4: ~400 GB/s)
LINK_BYTES_PER_US = 4.0e5
#: fixed latency of one peer copy (launch plus link), microseconds
COPY_FLOOR_US = 5.0


@dataclass(frozen=True)
class DeviceSplit:
    """A graph split over ``devices`` GPUs, with COPY nodes and one merged schedule.

    ``graph``: the transformed graph; every node and tensor has ``attrs["device"]``. ``node_device`` /
    ``tensor_device``: the same, by index of ``graph``. ``schedule``: device 0's nodes, then device 1's,
    ...; device ``d`` runs on the global streams ``range(*stream_ranges[d])``; its events include the
    cross-device ones (``cross_events``). ``stages``: the original graph's node index ranges
    ``(start, stop)`` per device (empty when a device got nothing). ``stage_cost_us`` and
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
    def balance(self) -> float:
        """Largest stage cost over the mean stage cost (1.0 is perfect balance)."""
        mean = sum(self.stage_cost_us) / max(len(self.stage_cost_us), 1)
        return max(self.stage_cost_us, default=0.0) / mean if mean > 0 else 1.0

    @property
    def cross_events(self) -> tuple[Event, ...]:
        idx, dev = self.graph.node_index, self.node_device
        return tuple(e for e in self.schedule.events if dev[idx[e.after]] != dev[idx[e.before]])


# ---- 1. stages -------------------------------------------------------------------------------------

def partition(cost: Sequence[float], weight: Sequence[int], allowed_end: Sequence[bool], n: int,
              capacity: int | None = None, cut_bytes: Sequence[int] | None = None,
              slack: float | None = None) -> tuple[tuple[int, int], ...]:
    """Split units ``0..U-1`` into ``n`` contiguous stages ``(start, stop)``.

    Minimises the largest stage cost, then the largest stage weight, subject to every stage's weight
    being at most ``capacity``; a stage may end after unit ``i`` only where ``allowed_end[i]`` (the
    last unit always may). Stages are non-empty where the allowed ends permit; the rest are empty
    ``(U, U)`` at the end. Raises BudgetError (naming the device and both byte counts) when the
    weights cannot fit ``n`` stages of ``capacity``.

    With ``cut_bytes`` (bytes that cross a boundary after unit ``i``), any split whose largest stage
    cost is within ``slack`` (default: the largest unit's cost) of the optimum may be taken instead,
    and the one crossing the fewest bytes is (then the most even costs, then weights): a split at a
    layer boundary copies one residual, a split inside a layer copies several activations.
    """
    U = len(cost)
    if n < 1:
        raise ScheduleError(f"devices must be a positive integer, not {n!r}")
    if U == 0:
        return ((0, 0),) * n
    pc = [0.0] * (U + 1)
    pw = [0] * (U + 1)
    for i in range(U):
        pc[i + 1] = pc[i] + float(cost[i])
        pw[i + 1] = pw[i] + int(weight[i])
    prev_end = [-1] * U
    last = -1
    for i in range(U):
        if allowed_end[i] or i == U - 1:
            last = i
        prev_end[i] = last
    cap = pw[U] if capacity is None else int(capacity)

    def furthest(s: int, T: float, W: int) -> int:
        """The furthest allowed end of a stage starting at ``s`` within cost T and weight W, or -1."""
        i_c = bisect_right(pc, pc[s] + T * (1 + 1e-12) + 1e-12, lo=s) - 2
        i_w = bisect_right(pw, pw[s] + W, lo=s) - 2
        i = min(i_c, i_w, U - 1)
        if i < s:
            return -1
        e = prev_end[i]
        return e if e >= s else -1

    def greedy(T: float, W: int) -> list[int] | None:
        ends: list[int] = []
        s = 0
        while s < U:
            if len(ends) == n:
                return None
            e = furthest(s, T, W)
            if e < 0:
                return None
            ends.append(e)
            s = e + 1
        return ends

    if greedy(float("inf"), cap) is None:
        _capacity_error(pw, prev_end, U, n, cap, furthest)
    # the smallest feasible cost threshold, by bisection between a lower bound and the total
    lo, hi = max(max(float(c) for c in cost), pc[U] / n), pc[U]
    if greedy(lo, cap) is not None:
        hi = lo
    else:
        for _ in range(200):
            if hi - lo <= 1e-10 * max(hi, 1e-300):
                break
            mid = (lo + hi) / 2
            if greedy(mid, cap) is not None:
                hi = mid
            else:
                lo = mid
    ends = greedy(hi, cap)
    assert ends is not None
    t_star = max(pc[e + 1] - pc[s] for s, e in zip([0] + [x + 1 for x in ends[:-1]], ends))
    # then the smallest weight cap at that cost (integers: exact)
    wlo, whi = max(int(w) for w in weight), cap
    if greedy(t_star, wlo) is not None:
        whi = wlo
    while wlo < whi:
        mid = (wlo + whi) // 2
        if greedy(t_star, mid) is not None:
            whi = mid
        else:
            wlo = mid + 1
    ends = greedy(t_star, whi) or ends
    stages = [(s, e + 1) for s, e in zip([0] + [x + 1 for x in ends[:-1]], ends)]
    if cut_bytes is not None and U * U <= REFINE_MAX_UNITS ** 2:
        limit = t_star + (max(float(c) for c in cost) if slack is None else float(slack))
        refined = _fewest_bytes(pc, pw, allowed_end, n, limit, cap, cut_bytes)
        if refined is not None and len(refined) >= len(stages):
            stages = refined
    # use every device: split the costliest splittable stage at its most balanced allowed end
    while len(stages) < n:
        best = None
        for k, (s, t) in enumerate(stages):
            for e in range(s, t - 1):
                if allowed_end[e]:
                    a, b = pc[e + 1] - pc[s], pc[t] - pc[e + 1]
                    key = (-(pc[t] - pc[s]), max(a, b), k, e)
                    if best is None or key < best:
                        best = key
        if best is None:
            break
        k, e = best[2], best[3]
        s, t = stages[k]
        stages[k:k + 1] = [(s, e + 1), (e + 1, t)]
    stages += [(U, U)] * (n - len(stages))
    return tuple(stages)


#: the crossing-bytes refinement is quadratic in the units; larger graphs keep the minimax split
REFINE_MAX_UNITS = 3000


def _fewest_bytes(pc: list[float], pw: list[int], allowed_end: Sequence[bool], n: int, limit: float, cap: int,
                  cut_bytes: Sequence[int]) -> list[tuple[int, int]] | None:
    """Stages with cost <= limit and weight <= cap minimising (crossing bytes, sum of squared stage
    costs, sum of squared stage weights), with as many stages as possible up to ``n`` (a DP over ends)."""
    U = len(pc) - 1
    tol = limit * (1 + 1e-12) + 1e-12
    ok_end = [bool(allowed_end[i]) or i == U - 1 for i in range(U)]
    best: list[list[tuple | None]] = [[None] * U for _ in range(n + 1)]
    arg = [[-1] * U for _ in range(n + 1)]
    for i in range(U):
        c, w = pc[i + 1], pw[i + 1]
        if c > tol or w > cap:
            break
        if ok_end[i]:
            best[1][i] = (int(cut_bytes[i]) if i < U - 1 else 0, c * c, w * w)
    for k in range(2, n + 1):
        prev, cur, cur_arg = best[k - 1], best[k], arg[k]
        for i in range(U):
            if not ok_end[i]:
                continue
            cb = int(cut_bytes[i]) if i < U - 1 else 0
            for j in range(i - 1, -1, -1):  # the stage is units j+1..i; it only grows as j falls
                c, w = pc[i + 1] - pc[j + 1], pw[i + 1] - pw[j + 1]
                if c > tol or w > cap:
                    break
                p = prev[j]
                if p is None:
                    continue
                cand = (p[0] + cb, p[1] + c * c, p[2] + w * w)
                if cur[i] is None or cand < cur[i]:
                    cur[i], cur_arg[i] = cand, j
    for k in range(n, 0, -1):
        if best[k][U - 1] is not None:
            stages = []
            i = U - 1
            for kk in range(k, 0, -1):
                j = arg[kk][i] if kk > 1 else -1
                stages.append((j + 1, i + 1))
                i = j
            return stages[::-1]
    return None


def _capacity_error(pw: list[int], prev_end: list[int], U: int, n: int, cap: int, furthest) -> None:
    """Name the first device whose weights cannot fit, filling devices greedily from the front."""
    s = 0
    for d in range(n):
        e = furthest(s, float("inf"), cap) if d < n - 1 else -1
        if e < 0:
            if d == n - 1:
                end = U - 1
            else:
                end = next(i for i in range(s, U) if prev_end[i] >= s)
            raise BudgetError(f"device {d} needs {pw[end + 1] - pw[s]} B of weights (units {s}..{end}), "
                              f"over the device_capacity of {cap} B")
        s = e + 1
    raise BudgetError(f"the weights do not fit {n} devices of {cap} B")  # pragma: no cover


def units_of(graph: Graph) -> list[list[int]]:
    """Fusion groups as one unit each (they must run on one stream), other nodes alone, listed order."""
    units: list[list[int]] = []
    last: str | None = None
    for i, node in enumerate(graph.nodes):
        if node.group is not None and node.group == last:
            units[-1].append(i)
        else:
            units.append([i])
        last = node.group
    return units


def pinned_roots(graph: Graph) -> set[int]:
    """Roots that must stay on one device with all their accesses: tensors written through a view (a
    view of theirs is some node's output: a KV cache). Read-only weights are replicated instead."""
    pinned: set[int] = set()
    for outs in graph.node_outputs:
        for t in outs:
            if graph.root[t] != t:
                pinned.add(graph.root[t])
    return pinned


def cut_constraints(graph: Graph, units: list[list[int]]) -> tuple[list[bool], list[int]]:
    """Per unit: whether a stage may end after it, and the weight bytes it brings (a weight's bytes
    count at its first accessing unit; unread weights at unit 0; replicas on later devices are not
    counted here: ``split_devices`` checks the capacity again with them)."""
    U = len(units)
    unit_of = [0] * len(graph.nodes)
    for u, ms in enumerate(units):
        for m in ms:
            unit_of[m] = u
    pinned = pinned_roots(graph)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for n in range(len(graph.nodes)):
        u = unit_of[n]
        for t in graph.node_inputs[n] + graph.node_outputs[n]:
            r = graph.root[t]
            if r in pinned or graph.tensors[r].kind == "weight":
                first.setdefault(r, u)
                last[r] = u
    blocked = [0] * (U + 1)
    for r, f in first.items():
        if r in pinned and last[r] > f:
            blocked[f] += 1
            blocked[last[r]] -= 1
    allowed = [True] * U
    run = 0
    for u in range(U):
        run += blocked[u]
        allowed[u] = run == 0
    weight = [0] * max(U, 1)
    for t, tensor in enumerate(graph.tensors):
        if tensor.kind == "weight" and graph.root[t] == t:
            weight[first.get(t, 0)] += tensor.size
    return allowed, weight[:U] if U else []


def crossing_bytes(graph: Graph, units: list[list[int]]) -> list[int]:
    """Per unit ``i``: bytes of arena roots that a stage boundary after unit ``i`` would copy (written at
    or before ``i`` — or, for inputs, first read there — and read after it)."""
    U = len(units)
    unit_of = [0] * len(graph.nodes)
    for u, ms in enumerate(units):
        for m in ms:
            unit_of[m] = u
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for m in range(len(graph.nodes)):
        u = unit_of[m]
        for t in graph.node_inputs[m] + graph.node_outputs[m]:
            r = graph.root[t]
            if graph.tensors[r].kind != "weight":
                first.setdefault(r, u)
                last[r] = u
    diff = [0] * (U + 1)
    for r, f in first.items():
        if last[r] > f:
            diff[f] += graph.tensors[r].size
            diff[last[r]] -= graph.tensors[r].size
    out, run = [], 0
    for u in range(U):
        run += diff[u]
        out.append(run)
    return out


# ---- 2. copies -------------------------------------------------------------------------------------

def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken:
        name, k = f"{base}#{k}", k + 1
    taken.add(name)
    return name


def copy_cost_us(nbytes: int) -> float:
    return round(max(COPY_FLOOR_US, nbytes / LINK_BYTES_PER_US), 3)


def insert_copies(graph: Graph, node_dev: Sequence[int], n: int) -> tuple[Graph, list[int], list[int], list[int]]:
    """The graph with COPY nodes for tensors read on a later device (read-only weights are replicated
    instead: ``name@devN``, kind ``weight``, ``attrs.replica_of``); the devices of its nodes and
    tensors; the indices of the copy tensors.

    Stage ``d``'s nodes keep their listed order and are followed by the COPY nodes that send from
    ``d`` (push design: issued on the source device), ordered by source tensor and destination.
    """
    T = len(graph.tensors)
    home = [-1] * T
    for m in range(len(graph.nodes)):  # writers decide (pinned roots have all writers on one device)
        for t in graph.node_outputs[m]:
            r = graph.root[t]
            if home[r] < 0:
                home[r] = node_dev[m]
            elif home[r] != node_dev[m]:
                raise ScheduleError(f"tensor {graph.tensors[r].id!r} would be written on devices {home[r]} "
                                    f"and {node_dev[m]} (a stage cut splits its writers)")
    for m in range(len(graph.nodes)):  # unwritten roots (inputs, weights): the first device that reads
        for t in graph.node_inputs[m]:  # them (devices never decrease along the listed order)
            r = graph.root[t]
            if home[r] < 0:
                home[r] = node_dev[m]
    home = [h if h >= 0 else 0 for h in home]
    tdev = [home[graph.root[t]] for t in range(T)]

    taken_t = {t.id for t in graph.tensors}
    taken_n = {nd.id for nd in graph.nodes}
    copy_of: dict[tuple[int, int], str] = {}
    sends: list[tuple[int, int, int]] = []  # (source device, tensor, destination device)

    def with_device(attrs: Mapping[str, Any], d: int, **more: Any) -> dict[str, Any]:
        out = dict(attrs)
        out["device"] = d
        out.update(more)
        return out

    replicas: list[Tensor] = []
    replica_dev: list[int] = []

    def replicate(t: int, d: int) -> str:
        """A read-only weight (or a view of one) read on device ``d``: the same bytes loaded there too."""
        if (t, d) in copy_of:
            return copy_of[(t, d)]
        orig = graph.tensors[t]
        rid = copy_of[(t, d)] = _unique(f"{orig.id}@dev{d}", taken_t)
        if orig.view_of is None:
            replicas.append(Tensor(rid, orig.size, "weight", attrs=with_device(orig.attrs, d, replica_of=orig.id)))
        else:
            parent = replicate(graph.tensor_index[orig.view_of], d)
            replicas.append(Tensor(rid, orig.size, "intermediate", view_of=parent, view_offset=orig.view_offset,
                                   attrs=with_device(orig.attrs, d, replica_of=orig.id)))
        replica_dev.append(d)
        return rid

    for m, node in enumerate(graph.nodes):
        d = node_dev[m]
        for t in graph.node_inputs[m]:
            src = tdev[t]
            if src == d or (t, d) in copy_of:
                continue
            if graph.tensors[graph.root[t]].kind == "weight":
                replicate(t, d)
                continue
            if src > d:
                raise ScheduleError(f"node {node.id!r} on device {d} reads {graph.tensors[t].id!r} from the "
                                    f"later device {src} (a stage cut splits a pinned tensor's accesses)")
            copy_of[(t, d)] = _unique(f"{graph.tensors[t].id}@dev{d}", taken_t)
            sends.append((src, t, d))

    tensors = [replace(t, attrs=with_device(t.attrs, tdev[i])) for i, t in enumerate(graph.tensors)] + replicas
    new_tdev = list(tdev) + replica_dev
    first_copy = len(tensors)
    copy_nodes: dict[int, list[tuple[Node, int]]] = {}
    for src, t, d in sorted(sends, key=lambda x: (x[0], graph.producer[graph.root[x[1]]], x[1], x[2])):
        orig = graph.tensors[t]
        cid = copy_of[(t, d)]
        tensors.append(Tensor(cid, orig.size, "intermediate",
                              attrs=with_device(orig.attrs, d, copy_of=orig.id)))
        new_tdev.append(d)
        node = Node(_unique(f"copy:{orig.id}@dev{d}", taken_n), COPY_OP, (orig.id,), (cid,),
                    cost=copy_cost_us(orig.size), attrs={"device": src, "src_device": src, "dst_device": d})
        copy_nodes.setdefault(src, []).append((node, src))

    nodes: list[Node] = []
    ndev: list[int] = []
    by_dev: dict[int, list[int]] = {}
    for m in range(len(graph.nodes)):
        by_dev.setdefault(node_dev[m], []).append(m)
    for d in range(n):
        for m in by_dev.get(d, ()):
            node = graph.nodes[m]
            ren = {graph.tensors[t].id: copy_of[(t, d)] for t in graph.node_inputs[m] if (t, d) in copy_of}
            nodes.append(replace(
                node, inputs=tuple(ren.get(i, i) for i in node.inputs),
                inplace=tuple((o, ren.get(i, i)) for o, i in node.inplace), attrs=with_device(node.attrs, d)))
            ndev.append(d)
        for node, src in copy_nodes.get(d, ()):
            nodes.append(node)
            ndev.append(src)
    split = Graph(graph.name, tuple(tensors), tuple(nodes), graph.alignment)
    return split, ndev, new_tdev, list(range(first_copy, len(tensors)))


# ---- 3. schedules ----------------------------------------------------------------------------------

def device_subgraph(graph: Graph, members: Sequence[int]) -> Graph:
    """The nodes ``members`` alone (for scheduling): tensors produced elsewhere become inputs."""
    keep = set(members)
    touched: set[int] = set()
    for m in members:
        touched.update(graph.node_inputs[m])
        touched.update(graph.node_outputs[m])
    stack = list(touched)
    while stack:
        parent = graph.tensors[stack.pop()].view_of
        if parent is not None:
            p = graph.tensor_index[parent]
            if p not in touched:
                touched.add(p)
                stack.append(p)
    tensors = []
    for t in sorted(touched):
        tensor = graph.tensors[t]
        if tensor.view_of is None and tensor.kind in ("intermediate", "output") and graph.producer[t] not in keep:
            tensor = replace(tensor, kind="input")
        tensors.append(tensor)
    return Graph(graph.name, tuple(tensors), tuple(graph.nodes[m] for m in members), graph.alignment)


def split_devices(graph: Graph, n: int, *, cost_model=None, device_capacity: int | None = None,
                  streams: int | str | None = None, max_events: int | None = None) -> DeviceSplit:
    """Split ``graph`` into ``n`` pipeline stages, one per device, and schedule each device.

    ``streams`` / ``max_events`` mean what they mean for ``plan()``, per device (None: each device runs
    its nodes serially, in listed order). ``device_capacity`` bounds each device's weight bytes
    (BudgetError naming the device otherwise).
    """
    from .optimize import graph_optimize, node_costs
    from .optimize.pipeline import check_options

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ScheduleError(f"devices must be a positive integer, not {n!r}")
    _check_capacity_arg(device_capacity)
    cap = check_options(streams, None, max_events)
    cost = node_costs(graph, cost_model)
    units = units_of(graph)
    allowed, weight = cut_constraints(graph, units)
    ucost = [sum(cost[m] for m in ms) for ms in units]
    stages_u = partition(ucost, weight, allowed, n, device_capacity, cut_bytes=crossing_bytes(graph, units))
    node_dev = [0] * len(graph.nodes)
    stages: list[tuple[int, int]] = []
    for d, (a, b) in enumerate(stages_u):
        ms = [m for u in range(a, b) for m in units[u]]
        for m in ms:
            node_dev[m] = d
        stages.append((ms[0], ms[-1] + 1) if ms else (len(graph.nodes), len(graph.nodes)))
    stage_cost = tuple(round(sum(ucost[a:b]), 6) for a, b in stages_u)

    split, ndev, tdev, copy_tensors = insert_copies(graph, node_dev, n)
    wb = [0] * n
    for i, t in enumerate(split.tensors):
        if t.kind == "weight" and split.root[i] == i:
            wb[tdev[i]] += t.size
    wbytes = tuple(wb)
    for d in range(n):
        if device_capacity is not None and wbytes[d] > device_capacity:
            raise BudgetError(f"device {d} needs {wbytes[d]} B of weights (with weights also read on earlier "
                              f"devices, replicated), over the device_capacity of {device_capacity} B")
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
        if cap is None and max_events is None:
            sched = Schedule(tuple(split.nodes[m].id for m in members[d]), (0,) * len(members[d]))
        else:
            sched = graph_optimize(device_subgraph(split, members[d]), cap or 1, cost_model=cost_model,
                                   max_events=max_events)
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


# ---- 4. arenas -------------------------------------------------------------------------------------

def plan_devices(graph: Graph, n: int, *, solver: str = "auto", options=None, device_capacity: int | None = None,
                 streams: int | str | None = None, max_events: int | None = None,
                 cost_model=None) -> tuple[DeviceSplit, Plan]:
    """Split, schedule and plan one arena per device; the Plan refers to ``split.graph`` (unverified:
    ``memplan.plan`` verifies it). Each device's buffer problem is solved on its own, so a solver time
    limit in ``options`` applies per device."""
    from .lifetimes import buffer_problem, compute_lifetimes
    from .optimize import node_costs
    from .optimize.cost import CostModel
    from .optimize.streams import schedule_makespan
    from .problem import find_collision
    from .schedule import build_happens_before
    from .solvers import SolveOptions, get_solver

    t0 = time.perf_counter()
    split = split_devices(graph, n, cost_model=cost_model, device_capacity=device_capacity, streams=streams,
                          max_events=max_events)
    g = split.graph
    options = options if options is not None else SolveOptions()
    solve = get_solver(solver)
    hb = build_happens_before(g, split.schedule)
    lt = compute_lifetimes(g, hb)
    root_off: dict[int, int] = {}
    per_device: list[dict[str, Any]] = []
    statuses: list[str] = []
    names: list[str] = []
    for d in range(n):
        roots = [int(r) for r in lt.roots if split.tensor_device[int(r)] == d]
        problem = buffer_problem(g, hb, lt, roots=roots, streams=range(*split.stream_ranges[d]))
        sol = solve(problem, options)
        clash = find_collision(problem, sol.offsets) if len(problem) <= 5000 else None
        if clash is not None:
            a, b = clash
            raise SolverError(f"solver {sol.solver!r} overlapped conflicting buffers {problem.name(a)!r} and "
                              f"{problem.name(b)!r} on device {d} (a solver bug)")
        for k, name in enumerate(problem.names or ()):
            root_off[g.tensor_index[name]] = int(sol.offsets[k])
        statuses.append(sol.status)
        names.append(sol.solver)
        per_device.append({"device": d, "lower_bound_bytes": int(problem.lower_bound or 0),
                           "status": sol.status, "gap": round(sol.gap, 6)})
    tensors: list[tuple[str, int | None, int]] = []
    dev_arena = [0] * n
    for t, tensor in enumerate(g.tensors):
        r = g.root[t]
        off = None if r not in root_off else root_off[r] + g.offset_in_root(t)
        tensors.append((tensor.id, off, tensor.size))
        if off is not None:
            d = split.tensor_device[t]
            dev_arena[d] = max(dev_arena[d], off + tensor.size)
    for d in range(n):
        per_device[d].update({
            "arena_bytes": dev_arena[d], "weight_bytes": split.weight_bytes[d],
            "streams": list(split.stream_ranges[d]), "nodes": split.node_device.count(d),
            "stage_cost_us": split.stage_cost_us[d],
        })
        if device_capacity is not None and dev_arena[d] + split.weight_bytes[d] > device_capacity:
            raise BudgetError(f"device {d} needs {split.weight_bytes[d]} B of weights plus an arena of "
                              f"{dev_arena[d]} B = {split.weight_bytes[d] + dev_arena[d]} B, over the "
                              f"device_capacity of {device_capacity} B")
    model = cost_model if cost_model is not None else CostModel()
    makespan = schedule_makespan(g, split.schedule, node_costs(g, model), float(model.event_us))
    solver_block: dict[str, Any] = {
        "name": names[0] if len(set(names)) == 1 else "+".join(sorted(set(names))),
        "status": statuses[0] if len(set(statuses)) == 1 else "HEURISTIC",
        "gap": max(p["gap"] for p in per_device),
        "per_device": per_device,
        "split": {
            "balance": round(split.balance, 4),
            "copies": split.copies,
            "copy_bytes": split.copy_bytes,
            "cross_device_events": len(split.cross_events),
            "makespan_us": round(makespan, 3),
            "serial_makespan_us": round(sum(node_costs(graph, model)), 3),
        },
        "seconds": round(time.perf_counter() - t0, 4),
    }
    pos_dev = {g.nodes[i].id: d for i, d in enumerate(split.node_device)}
    result = Plan(
        graph=g.name, alignment=g.alignment, arena_bytes=max(dev_arena, default=0),
        lower_bound_bytes=max((p["lower_bound_bytes"] for p in per_device), default=0),
        streams=split.schedule.num_streams,
        order=tuple(zip(split.schedule.order, split.schedule.streams)),
        events=tuple((e.after, e.before) for e in split.schedule.events),
        tensors=tuple(tensors), solver=solver_block, devices=n,
        node_devices=tuple(pos_dev[nid] for nid in split.schedule.order),
        tensor_devices=tuple(split.tensor_device), device_arena_bytes=tuple(dev_arena),
    )
    return split, result


def check_capacity(graph: Graph, plan: Plan, device_capacity: int) -> None:
    """Single-device ``device_capacity``: the graph's weights plus the plan's arena must fit."""
    _check_capacity_arg(device_capacity)
    weights = sum(t.size for i, t in enumerate(graph.tensors) if t.kind == "weight" and graph.root[i] == i)
    if weights + plan.arena_bytes > device_capacity:
        raise BudgetError(f"device 0 needs {weights} B of weights plus an arena of {plan.arena_bytes} B = "
                          f"{weights + plan.arena_bytes} B, over the device_capacity of {device_capacity} B")


def _check_capacity_arg(device_capacity: Any) -> None:
    if device_capacity is not None and (isinstance(device_capacity, bool) or not isinstance(device_capacity, int)
                                        or device_capacity < 0):
        raise BudgetError(f"device_capacity must be a non-negative byte count, not {device_capacity!r}")
