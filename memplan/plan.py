"""``memplan.plan()``: the one place that knows the whole pipeline.

graph -> schedule -> happens-before -> lifetimes -> buffer problem -> solver -> Plan -> verify.
Every plan returned has passed the independent verifier.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .errors import ScheduleError, SolverError
from .graph import Graph
from .lifetimes import buffer_problem, compute_lifetimes
from .planfile import Plan
from .problem import BufferProblem, Solution, find_collision
from .schedule import Schedule, build_happens_before
from .solvers import SolveOptions, get_solver
from .verify import verify


def plan(
    graph: Graph,
    schedule: Schedule | None = None,
    solver: str = "auto",
    *,
    time_limit: float | None = None,
    seed: int = 0,
    workers: int = 1,
    progress=None,
    check: bool = True,
    streams: int | str | None = None,
    memory_budget: int | None = None,
    max_events: int | None = None,
    cost_model=None,
    devices: int | None = None,
    device_capacity: int | None = None,
) -> Plan:
    """Plan arena offsets for ``graph`` under ``schedule`` (default: the serial schedule).

    ``solver``: "auto" (every heuristic, best kept; the exact "search" and "cpsat" too when
    ``time_limit`` is given), "greedy", "size", "search", "cpsat" or "ggml" (the serial baseline,
    for comparison only).
    ``streams`` (N or "auto") schedules with ``memplan.graph_optimize`` instead; ``memory_budget`` (bytes)
    gives concurrency back until the arena fits (BudgetError if even serial does not); ``max_events``
    caps the events. A ``schedule`` given explicitly wins over ``streams``. The solver block's
    ``"schedule"`` entry reports simulated makespans and serial vs concurrent arenas.
    ``devices`` > 1 splits the graph into pipeline stages, one arena per device (``memplan.devices``;
    the plan then refers to the split graph, ``memplan.devices.plan_devices`` returns both);
    ``device_capacity`` bounds each device's weights plus arena (BudgetError naming the device).
    """
    from .optimize.pipeline import choose_and_plan

    t0 = time.perf_counter()
    options = SolveOptions(time_limit=time_limit, seed=seed, workers=workers, progress=progress)
    if devices is not None and (isinstance(devices, bool) or not isinstance(devices, int) or devices < 1):
        raise ScheduleError(f"devices must be a positive integer, not {devices!r}")
    if devices is not None and devices > 1:
        from .devices import plan_devices

        if schedule is not None or memory_budget is not None:
            raise ScheduleError("devices > 1 plans its own per-device schedules: give neither a schedule nor "
                                "a memory_budget (use device_capacity)")
        split, result = plan_devices(graph, devices, solver=solver, options=options, streams=streams,
                                     max_events=max_events, cost_model=cost_model, device_capacity=device_capacity)
        if check:
            verify(split.graph, result)
        return result

    def solve(sched: Schedule) -> Plan:
        hb = build_happens_before(graph, sched)
        lt = compute_lifetimes(graph, hb)
        problem = buffer_problem(graph, hb, lt)
        sol = get_solver(solver)(problem, options)
        return assemble(graph, sched, problem, sol, seconds=time.perf_counter() - t0)

    result = choose_and_plan(graph, solve, schedule=schedule, streams=streams, memory_budget=memory_budget,
                             max_events=max_events, cost_model=cost_model)
    if check:
        verify(graph, result)
    if device_capacity is not None:
        from .devices import check_capacity

        check_capacity(graph, result, device_capacity)
    return result


def assemble(graph: Graph, schedule: Schedule, problem: BufferProblem, sol: Solution,
             seconds: float = 0.0, solver_extra: dict[str, Any] | None = None) -> Plan:
    """Turn root offsets into a Plan: views inherit offsets, weights get null."""
    clash = find_collision(problem, sol.offsets) if len(problem) <= 5000 else None
    if clash is not None:
        a, b = clash
        raise SolverError(f"solver {sol.solver!r} overlapped conflicting buffers "
                          f"{problem.name(a)!r} and {problem.name(b)!r} (a solver bug)")
    root_off: dict[int, int] = {}
    for k, t in enumerate(graph.tensor_index[name] for name in problem.names or ()):
        root_off[t] = int(sol.offsets[k])
    tensors = []
    for t, tensor in enumerate(graph.tensors):
        r = graph.root[t]
        if r not in root_off:
            off = None
        else:
            off = root_off[r] + graph.offset_in_root(t)
        tensors.append((tensor.id, off, tensor.size))
    arena = max([o + s for _, o, s in tensors if o is not None] + [0])
    solver_block: dict[str, Any] = {
        "name": sol.solver,
        "status": sol.status,
        "gap": round(sol.gap, 6),
        **{k: v for k, v in sol.info.items() if _jsonable(v)},
        **(solver_extra or {}),
        "seconds": round(seconds, 4),
    }
    return Plan(
        graph=graph.name,
        alignment=graph.alignment,
        arena_bytes=int(arena),
        lower_bound_bytes=int(problem.lower_bound or 0),
        streams=schedule.num_streams,
        order=tuple(zip(schedule.order, schedule.streams)),
        events=tuple((e.after, e.before) for e in schedule.events),
        tensors=tuple(tensors),
        solver=solver_block,
    )


def _jsonable(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool, type(None), dict, list)) and not isinstance(v, np.ndarray)
