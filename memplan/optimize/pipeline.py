"""The scheduling half of ``memplan.plan``: pick the schedule, respect budgets, report the trade-off.

``plan()`` hands in ``solve(schedule) -> Plan`` (its solver pipeline, unverified); this module decides
which schedule to plan — the given one, the serial one, or ``graph_optimize``'s, reduced to fit an
event cap and a memory budget — and records in the plan's solver block (key ``"schedule"``) the
simulated makespans and the serial vs concurrent arenas, so ``memplan show`` can print them from the
plan file alone. Every value there is deterministic (no wall clock).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..errors import BudgetError, ScheduleError
from ..graph import Graph
from ..planfile import Plan
from ..schedule import Schedule, serial_schedule
from .budget import fit_budget, limit_events
from .cost import CostModel, CostModelLike, node_costs
from .streams import optimize, schedule_makespan

#: how many streams ``streams="auto"`` may use at most
AUTO_MAX_STREAMS = 8


def _r(x: float) -> float:
    return round(float(x), 3)


def check_options(streams: Any, memory_budget: Any, max_events: Any) -> int | None:
    """Validate the plan() options; return the stream cap (None: keep the given/serial schedule)."""
    if memory_budget is not None and (isinstance(memory_budget, bool) or not isinstance(memory_budget, int)
                                      or memory_budget < 0):
        raise BudgetError(f"memory_budget must be a non-negative byte count, not {memory_budget!r}")
    if max_events is not None and (isinstance(max_events, bool) or not isinstance(max_events, int)
                                   or max_events < 0):
        raise ScheduleError(f"max_events must be a non-negative integer, not {max_events!r}")
    if streams is None:
        return None
    if streams == "auto":
        return AUTO_MAX_STREAMS
    if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
        raise ScheduleError(f"streams must be a positive integer or 'auto', not {streams!r}")
    return streams


def choose_and_plan(graph: Graph, solve: Callable[[Schedule], Plan], *, schedule: Schedule | None = None,
                    streams: int | str | None = None, memory_budget: int | None = None,
                    max_events: int | None = None, cost_model: CostModelLike | None = None) -> Plan:
    """Plan ``graph``: under ``schedule`` if given, else serial unless ``streams``/``max_events`` ask
    for ``graph_optimize``; fit ``memory_budget`` or raise BudgetError."""
    cap = check_options(streams, memory_budget, max_events)
    model = cost_model if cost_model is not None else CostModel()
    plans: dict[tuple, Plan] = {}

    def planned(s: Schedule) -> Plan:
        key = (s.order, s.streams, s.events)
        if key not in plans:
            plans[key] = solve(s)
        return plans[key]

    if schedule is not None or (cap is None and max_events is None):
        sched = schedule if schedule is not None else serial_schedule(graph)
        cost = node_costs(graph, model)
        event_us = float(model.event_us)
        p = planned(sched)
        serial_arena = p.arena_bytes if sched.num_streams == 1 else planned(serial_schedule(graph)).arena_bytes
        if memory_budget is not None and p.arena_bytes > memory_budget:
            what = "the given schedule" if schedule is not None else "the serial plan"
            raise BudgetError(f"graph {graph.name!r}: {what} needs an arena of {p.arena_bytes} B, over the "
                              f"memory budget of {memory_budget} B")
        ms = schedule_makespan(graph, sched, cost, event_us)
        block = {"method": "given" if schedule is not None else "serial", "concurrent_arena_bytes": p.arena_bytes,
                 "concurrent_makespan_us": _r(ms), "forks_given_back": 0, "candidate": "given" if schedule
                 is not None else "serial"}
    else:
        opt = optimize(graph, cap or 1, cost_model=model)
        cost, event_us = list(opt.cost), opt.event_us
        sched = opt.schedule
        given_back = 0
        if max_events is not None:
            red = limit_events(graph, opt, max_events)
            sched, given_back = red.schedule, red.forks_serialised
        chosen = red.name if max_events is not None else opt.chosen
        concurrent = planned(sched)
        block = {"method": "graph_optimize", "concurrent_arena_bytes": concurrent.arena_bytes,
                 "concurrent_makespan_us": _r(schedule_makespan(graph, sched, cost, event_us))}
        serial_arena = planned(serial_schedule(graph)).arena_bytes
        if memory_budget is not None:
            red = fit_budget(graph, opt, memory_budget, lambda s: planned(s).arena_bytes, max_events)
            sched, given_back, chosen = red.schedule, red.forks_serialised, red.name
        block["forks_given_back"] = given_back
        block["candidate"] = chosen
        p = planned(sched)
        ms = schedule_makespan(graph, sched, cost, event_us)
    serial_us = float(sum(cost))
    block.update({
        "streams_requested": streams if streams is not None else (1 if schedule is None else None),
        "memory_budget": memory_budget,
        "max_events": max_events,
        "event_us": _r(event_us),
        "makespan_us": _r(ms),
        "serial_makespan_us": _r(serial_us),
        "speedup": round(serial_us / ms, 4) if ms > 0 else 1.0,
        "serial_arena_bytes": int(serial_arena),
        "arena_vs_serial": round(p.arena_bytes / serial_arena, 4) if serial_arena else 1.0,
    })
    solver_block = dict(p.solver)
    seconds = solver_block.pop("seconds", None)
    solver_block["schedule"] = block
    if seconds is not None:
        solver_block["seconds"] = seconds
    return replace(p, solver=solver_block)
