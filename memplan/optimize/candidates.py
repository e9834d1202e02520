"""The scheduling half of ``memplan.plan``: which schedules to plan, in which order, and their costs.

``candidates`` turns the user's options (a given schedule, or ``streams`` / ``max_events``) into the
schedule to plan first, with the cost vector and event latency that ``memplan.plan`` reports as
simulated makespans. When a memory budget is not met by that schedule, ``budget_tiers`` lists the
alternatives (``budget.py``: fewer streams, forks given back) for ``memplan.plan`` to plan in turn.
Nothing here solves offsets or touches a Plan: optimisation only proposes schedules.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from ..errors import BudgetError, ScheduleError, UnusedOption, caller_stacklevel, counted
from ..errors import short_repr as _short
from ..graph import Graph
from ..lifetimes import issue_order_bound
from ..planfile import INT64, MAX_STREAMS
from ..schedule import Schedule, check_reads_ordered, check_schedule, serial_schedule
from .budget import (
    Reduced,
    candidate_pool,
    give_back_order,
    limit_events_pool,
    low_memory_streams,
    own_and_give_backs,
    pool_rank,
    without_forks,
)
from .cost import CostModelLike, check_cost_model, event_latency, node_costs, total_us
from .memorder import LOW_MEMORY, memory_order
from .streams import Optimized, optimize, schedule_makespan

#: how many streams ``streams="auto"`` may use at most
AUTO_MAX_STREAMS = 8
#: with a memory budget, at most this many fork give-backs faster than the first fitting candidate
#: are planned
MAX_GIVE_BACK_PLANS = 24


def check_options(streams: Any, memory_budget: Any, max_events: Any, *, given: bool = False,
                  split: bool = False) -> int | None:
    """Validate the plan() options (``plan_graph``, ``plan_devices`` and ``split_devices`` alike); return the
    stream cap (None: keep the given/serial schedule).

    ``memory_budget`` and ``max_events`` lie below 2**63, as the CLI's options do: both are written into
    the plan's solver block, and every integer of a plan file fits an int64 (docs/format.md "Limits").
    ``given``: a schedule was given, whose events ``max_events`` checks (``candidates``) without ``streams``.
    ``split``: the plan is split over several devices, which ``max_events`` alone is refused for too, but whose
    plan is not serial and has events (the split's cross-device ones, never capped): the refusal said it was
    serial with none."""
    if memory_budget is not None and (isinstance(memory_budget, bool) or not isinstance(memory_budget, int)
                                      or not 0 <= memory_budget < INT64):
        raise BudgetError(f"memory_budget must be a non-negative byte count below 2**63, not {_short(memory_budget)}")
    if max_events is not None and (isinstance(max_events, bool) or not isinstance(max_events, int)
                                   or not 0 <= max_events < INT64):
        raise ScheduleError(f"max_events must be a non-negative integer below 2**63, not {_short(max_events)}")
    if streams is None:
        if max_events is not None and not given:   # alone it asked for nothing: the plan stayed serial, without events
            without = ("each device runs one stream, and max_events never caps the cross-device events of the split"
                       if split else "the plan is serial and has no events")
            raise ScheduleError(f"max_events={max_events!r} caps the events of the schedule that streams asks for: "
                                f"give streams=N or 'auto' too (without it {without})")
        return None
    if isinstance(streams, str) and streams == "auto":   # (an array compares elementwise)
        return AUTO_MAX_STREAMS
    if isinstance(streams, bool) or not isinstance(streams, int) or not 1 <= streams <= MAX_STREAMS:
        raise ScheduleError(f"streams must be an integer in 1..{MAX_STREAMS} or 'auto', not {_short(streams)}")
    return streams


def warn_one_stream(streams, max_events, schedule: Schedule | None) -> None:
    """Warn (``UnusedOption``) of ``max_events`` with ``streams=1`` and no schedule given: one stream (per device)
    has no cross-stream event to cap, so the plan is the one without it. Why: ``max_events`` without ``streams`` is
    refused (ScheduleError) for the same reason, while with ``streams=1`` it was taken silently, as if it had shaped
    the plan; a warning and not a refusal, as ``memplan plan --streams 1 --max-events N`` warns, so that a sweep over
    ``streams`` with one ``max_events`` runs its first case. A given schedule's events ``max_events`` does check.
    Called by the public entries (``plan``, ``plan_devices``, ``split_devices``), once each."""
    # (``type(streams) is int`` first: an array's ``== 1`` is elementwise, and ``plan_devices(g, 2, streams=np.array([1,
    # 2]))`` raised numpy's raw "truth value of an array" ValueError here, before ``check_options`` named the option)
    if type(streams) is int and streams == 1 and max_events is not None and schedule is None:
        warnings.warn(UnusedOption.of("{max_events} has no effect with {streams}: it caps cross-stream events, and "
                                      "one stream has none (the plan is serial on each device; a split's cross-device "
                                      "events are never capped); give {streams:N} (N > 1) or {streams:'auto'}; "
                                      "ignored", max_events=max_events, streams=streams),
                      stacklevel=caller_stacklevel())


@dataclass(frozen=True)
class Candidates:
    """The schedule to plan first and what the plan's report needs.

    ``method``: "given", "serial" or "graph_optimize"; ``first``: the preferred schedule (named, with
    its simulated makespan); ``optimized``: graph_optimize's result (None for a given or serial
    schedule), from which ``budget_tiers`` draws alternatives; ``cost`` / ``event_us``: the cost model's
    per-node microseconds and event latency for the simulated makespans.
    """

    method: str
    first: Reduced
    optimized: Optimized | None
    cost: tuple[float, ...]
    event_us: float
    #: ``candidate_pool(graph, optimized, max_events)`` where ``limit_events_pool`` built it for ``first``, with that
    #: ``max_events``: ``budget_tiers`` takes it rather than building it again
    pool: tuple[Reduced, ...] | None = None
    pool_max_events: int | None = None

    @property
    def serial_us(self) -> float:
        return total_us(self.cost)

    def makespan(self, graph: Graph, schedule: Schedule) -> float:
        return schedule_makespan(graph, schedule, self.cost, self.event_us)


def candidates(graph: Graph, *, schedule: Schedule | None = None, streams: int | str | None = None,
               memory_budget: int | None = None, max_events: int | None = None,
               cost_model: CostModelLike | None = None) -> Candidates:
    """The schedule ``memplan.plan`` plans first: ``schedule`` if given, else serial unless
    ``streams`` / ``max_events`` ask for ``graph_optimize`` (with at most ``max_events`` events)."""
    cap = check_options(streams, memory_budget, max_events, given=schedule is not None)
    model = check_cost_model(cost_model)
    if schedule is not None or (cap is None and max_events is None):
        method = "given" if schedule is not None else "serial"
        if schedule is not None:  # before it is planned: the plans are keyed by (hashing) its fields
            check_schedule(graph, schedule)
            # checked, never changed, as a memory budget is: a plan with more events than the cap its solver
            # block reports (max_events=0 beside 6 events) broke the caller's limit without a word
            if max_events is not None and len(schedule.events) > max_events:
                raise ScheduleError(f"graph {graph.name!r}: the given schedule has {counted(len(schedule.events), 'event')}, "
                                    f"over max_events={max_events} (a given schedule is checked, never changed)")
            # and against ``streams``, alike: a plan declaring 4 streams beside ``streams_requested: 2`` in its solver
            # block broke the caller's cap without a word (the plan's ``streams`` is the schedule's, by the contract)
            if cap is not None and schedule.num_streams > cap:
                raise ScheduleError(f"graph {graph.name!r}: the given schedule declares {schedule.num_streams} streams "
                                    f"(stream ids up to {schedule.num_streams - 1}), over streams={streams!r}"
                                    + (f" (at most {cap})" if streams == "auto" else "")
                                    + " (a given schedule is checked, never changed)")
            # every read ordered after its writers (rule 2), by name: it was left to the final ``verify`` (an
            # UnsafePlan of the caller's schedule), which ``check=False`` skips
            check_reads_ordered(graph, schedule)
        sched = schedule if schedule is not None else serial_schedule(graph)
        cost, event_us = tuple(node_costs(graph, model)), event_latency(model)
        # not simulated here: a given schedule is simulated once planned (``Candidates.makespan``)
        return Candidates(method, Reduced(sched, math.nan, 0, 0, method), None, cost, event_us)
    opt = optimize(graph, cap or 1, cost_model=model)
    if max_events is None:
        return Candidates("graph_optimize", Reduced(opt.schedule, opt.makespan_us, 0, 0, opt.chosen), opt,
                          tuple(opt.cost), float(opt.event_us))
    first, pool = limit_events_pool(graph, opt, max_events)
    return Candidates("graph_optimize", first, opt, tuple(opt.cost), float(opt.event_us), pool, max_events)


def budget_tiers(graph: Graph, cands: Candidates, max_events: int | None = None, *,
                 memory_budget: int | None = None
                 ) -> tuple[tuple[Reduced, ...], tuple[Reduced, ...], tuple[Reduced, ...]]:
    """Alternatives to ``cands.first`` when its arena is over a memory budget, in the order to plan them.

    (own, give_backs, last): the optimizer's own candidates (every stream count and strategy, fastest
    first: planned until one fits), then fork give-backs (fastest first: those faster than the fitting
    one are planned, at most ``MAX_GIVE_BACK_PLANS``), and the last resorts: the listed serial schedule,
    then a serial order that keeps fewer bytes live (``memorder``, where it differs from the listed one).

    ``memory_budget`` (a caller whose every plan of a schedule over its issue order's bound is rejected unsolved,
    ``plan.solve_schedule(over=...)``): the give-backs are left out where that bound of their one issue order
    (``budget.give_back_order``) is over it, as none of them could fit. Why: scoring the forks and replaying every
    prefix of them (a 5,000-node layered DAG on 1,024 streams: 13 s of a 50 s plan) made candidates that were
    then each rejected by that bound.
    """
    last = _last_resorts(graph, cands)
    if cands.optimized is None:
        return (), (), last
    forks = memory_budget is None or issue_order_bound(graph, give_back_order(graph, cands.optimized)) <= memory_budget
    if cands.pool is not None and cands.pool_max_events == max_events:   # (``limit_events_pool``'s: built once)
        pool = cands.pool if forks else without_forks(graph, cands.optimized, cands.pool)
    else:
        pool = candidate_pool(graph, cands.optimized, max_events, forks=forks)
    own = _with_low_memory(graph, cands.optimized, [r for r in pool if r.forks_total == 0], max_events)
    give_backs = tuple(r for r in pool if r.forks_total != 0 and r.name != "serial")
    return own, give_backs, last


def exact_budget_tiers(graph: Graph, cands: Candidates, max_events: int | None, memory_budget: int, *,
                       deadline: float | None = None
                       ) -> tuple[tuple[tuple[Reduced, ...], tuple[Reduced, ...], tuple[Reduced, ...]], int | None]:
    """``budget_tiers(graph, cands, max_events)`` for a memory budget's exact probes, and the number of its
    give-backs (which sets each probe's share of the limit, ``plan.PROBE_SHARE``). Where the issue order every
    give-back has (``budget.give_back_order``) is bounded over ``memory_budget`` (none of them can fit:
    ``plan.solve_schedule(over=...)`` rejects each by that bound), and no event cap drops any, the give-backs are
    counted (``budget.own_and_give_backs``) but neither replayed nor listed: the same own candidates, the same
    count, the same choice. Why: ``random_dag(10000)`` on ``streams="auto"`` at its serial arena with
    ``time_limit=0.1`` replayed 95 give-backs (4 s CPU) and made and bounded 24 schedules that its bound then
    rejected, where the same plan without a limit skips them all (``budget_tiers(memory_budget=...)``). The count is
    None where counting passed ``deadline`` (the budget's wall-clock stop: ``budget.own_and_give_backs``)."""
    opt = cands.optimized
    if opt is None or max_events is not None or (
            issue_order_bound(graph, give_back_order(graph, opt)) <= memory_budget):
        tiers = budget_tiers(graph, cands, max_events)
        return tiers, len(tiers[1])
    own, count = own_and_give_backs(graph, opt, deadline=deadline)
    return (_with_low_memory(graph, opt, own, max_events), (), _last_resorts(graph, cands)), count


def _with_low_memory(graph: Graph, opt: Optimized, own: list[Reduced], max_events: int | None) -> tuple[Reduced, ...]:
    """``own`` (the optimizer's candidates, fastest first) with ``budget.low_memory_streams``' concurrent schedules in
    their places (``pool_rank``; after their equals, and left out where ``own`` has the same schedule). Only a memory
    budget's tiers take them: a plan without one (``max_events`` alone included) keeps its candidates."""
    seen = {(r.schedule.order, r.schedule.streams) for r in own}
    ranked = [(pool_rank(r.makespan_us, r.schedule), 0, i, r) for i, r in enumerate(own)]
    for i, (name, s, ms) in enumerate(low_memory_streams(graph, opt, max_events)):
        if (s.order, s.streams) not in seen:
            seen.add((s.order, s.streams))
            ranked.append((pool_rank(ms, s), 1, i, Reduced(s, ms, 0, 0, name)))
    ranked.sort(key=lambda x: x[:3])
    return tuple(r for *_, r in ranked)


def _last_resorts(graph: Graph, cands: Candidates) -> tuple[Reduced, ...]:
    """``budget_tiers``' last tier: the listed serial schedule, then a low-memory serial order where it differs."""
    serial = serial_schedule(graph)
    low = memory_order(graph)
    return (Reduced(serial, cands.serial_us, 0, 0, "serial"),) + (
        (Reduced(low, cands.serial_us, 0, 0, LOW_MEMORY),) if low.order != serial.order else ())
