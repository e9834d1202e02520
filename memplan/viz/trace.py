"""A Chrome/Perfetto trace of a plan's simulated schedule (``memplan trace``).

Why: a plan's streams and events are easiest to judge on a timeline. Open the JSON in
https://ui.perfetto.dev or chrome://tracing: one track per stream with a slice per node (args: op,
bytes, and the arena offset of each tensor it writes), a flow arrow per event from the recording node to
the waiting one, and a counter track of the arena bytes live at each moment (never above the arena for a
safe plan: overlapping tensors are ordered by happens-before, so their simulated time spans cannot
overlap).

Format: the Trace Event Format's JSON object form — ``{"traceEvents": [...]}`` with ``X`` (complete)
slices, ``s``/``f`` flow pairs sharing an ``id`` (``bp: "e"`` binds the arrow head to the slice
enclosing it), ``C`` counters and ``M`` metadata naming the process and the stream tracks.
"""

from __future__ import annotations

import json
from typing import Any

from ..graph import Graph
from ..planfile import Plan
from ..show import check_plan_arg
from ..simulate import simulate
from . import root_spans

PID = 1
#: outputs listed (tensor -> arena offset) in a slice's args; more are left out to keep traces small
MAX_LISTED = 8


def _r(x: float) -> float:
    return round(float(x), 3)


def trace_events(graph: Graph, plan: Plan) -> dict[str, Any]:
    """The trace as a JSON-ready dict (deterministic for the same graph and plan). A Plan only, refused first
    (``check_plan_arg``): ``simulate`` also takes a Schedule, which then reached ``plan.graph`` below as a raw
    AttributeError (``trace_json(g, memplan.serial_schedule(g))``)."""
    check_plan_arg(plan, "trace_events")
    tm = simulate(graph, plan)   # refuses a plan made for another graph (check_plan_for)
    stream_of = plan.stream_of()
    ev: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": PID, "tid": 0,
         "args": {"name": f"memplan {plan.graph or graph.name}"}},
    ]
    for s in sorted(set(stream_of.values())):
        ev.append({"name": "thread_name", "ph": "M", "pid": PID, "tid": s, "args": {"name": f"stream {s}"}})
        ev.append({"name": "thread_sort_index", "ph": "M", "pid": PID, "tid": s, "args": {"sort_index": s}})
    sizes = [t.size for t in graph.tensors]
    offsets = plan.offsets()
    for nid, s in plan.order:
        ni = graph.node_index[nid]
        node = graph.nodes[ni]
        # the slice's end is its rounded end time: rounding its start and its length apart put a node's end up to
        # 1 ns past the start of the next on its stream (12 slices of a 16-layer Llama decode under the
        # roofline costs), which trace viewers take for slices that do not nest
        t0, t1 = _r(tm.start_us[nid]), _r(tm.end_us[nid])
        ev.append({
            "name": nid, "cat": node.op, "ph": "X", "ts": t0, "dur": _r(t1 - t0), "pid": PID, "tid": s,
            "args": {"op": node.op, "bytes": sum(sizes[t] for t in graph.node_outputs[ni]),
                     "read_bytes": sum(sizes[t] for t in set(graph.node_inputs[ni])),
                     "writes": {graph.tensors[t].id: offsets.get(graph.tensors[t].id)
                                for t in graph.node_outputs[ni][:MAX_LISTED]}},
        })
    # each distinct event once: a repeated entry restates the same happens-before edge (docs/format.md), as ``show``
    # counts and ``simulate`` waits on it once; drawn per entry, a plan listing one event 500,000 times made a 100 MB
    # trace of a million arrows on one pair of slices (11 s), where its plan file was 18 MB
    for k, (a, b) in enumerate(dict.fromkeys(map(tuple, plan.events)), start=1):
        ts_a = (tm.start_us[a] + tm.end_us[a]) / 2  # inside the recording slice
        ev.append({"name": "event", "cat": "event", "ph": "s", "id": k, "ts": _r(ts_a), "pid": PID,
                   "tid": stream_of[a], "args": {"after": a, "before": b}})
        ev.append({"name": "event", "cat": "event", "ph": "f", "bp": "e", "id": k, "ts": _r(tm.start_us[b]),
                   "pid": PID, "tid": stream_of[b]})
    ev.extend(_live_counter(graph, plan, tm.start_us, tm.end_us, tm.makespan_us))
    return {
        "traceEvents": ev,
        "displayTimeUnit": "ms",
        "otherData": {"graph": graph.name, "arena_bytes": plan.arena_bytes,
                      "lower_bound_bytes": plan.lower_bound_bytes, "streams": plan.streams,
                      "makespan_us": _r(tm.makespan_us), "serial_us": _r(tm.serial_us)},
    }


def _live_counter(graph: Graph, plan: Plan, start: dict[str, float], end: dict[str, float],
                  makespan: float) -> list[dict[str, Any]]:
    """Counter events: total bytes of root tensors between their first and last access, one counter per device
    of a split plan ("arena live bytes (device d)"): each device has its own arena, and one sum over all of them
    went past the (largest) arena a safe plan's live bytes never exceed."""
    deltas: dict[int, dict[float, int]] = {}
    for sp in root_spans(graph, plan, start, end, 0.0, makespan):
        if sp.size == 0:
            continue
        a, b = _r(sp.x0), _r(sp.x1)
        delta = deltas.setdefault(sp.device, {})
        delta[a] = delta.get(a, 0) + sp.size
        delta[b] = delta.get(b, 0) - sp.size  # a release at t comes before an acquire at t (summed)
    out = []
    for d in sorted(deltas):
        name = "arena live bytes" if plan.devices <= 1 else f"arena live bytes (device {d})"
        live = 0
        for t in sorted(deltas[d]):
            live += deltas[d][t]
            out.append({"name": name, "ph": "C", "ts": t, "pid": PID, "tid": 0, "args": {"live": live}})
    return out


def trace_json(graph: Graph, plan: Plan) -> str:
    return json.dumps(trace_events(graph, plan), separators=(",", ":")) + "\n"


def save_trace(graph: Graph, plan: Plan, path: str) -> None:
    from ..files import atomic_write_text

    atomic_write_text(path, trace_json(graph, plan))
