"""``memplan.plan()``: the one place that knows the whole pipeline.

graph -> schedule (optimize/, or the device split) -> happens-before -> lifetimes -> buffer problem(s)
-> checked solve -> Plan -> verify. ``solve_schedule`` is that pipeline for one schedule, written once:
one device or several, ``plan()``, the benchmarks and the device split all go through it. ``optimize/``
only proposes schedules; this module plans them, keeps the one that fits a memory budget and reports
the trade-off. Every plan ``plan()`` returns has passed the independent verifier.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ._gc import paused
from .errors import (
    BudgetError,
    GraphError,
    ScheduleError,
    SolverError,
    check_option_names,
    named_fields,
    named_options,
    positional_checked,
)
from .errors import short_repr as _short
from .graph import Graph, check_graph
from .lifetimes import buffer_problem, compute_lifetimes, issue_order_bound, with_clique_bound
from .planfile import Plan
from .problem import BufferProblem, Solution, Status, gap_of, same_problem
from .schedule import Schedule, build_happens_before, serial_schedule
from .solvers import (
    SOLVER_NAMES,
    SolveOptions,
    check_options,
    heuristics_of,
    heuristics_over,
    polishes,
    share_seconds,
    solve_from_default,
    work_seconds,
)
from .solvers import solve_marked as solve  # (a stop is warned of once, by plan_graph: ``warn_stopped``)
from .solvers.check import PAIRWISE_LIMIT
from .values import by_value
from .verify import verify

if TYPE_CHECKING:  # for the annotations only: devices/ and optimize/ load lazily, on a call that needs them
    from .devices.split import DeviceSplit
    from .optimize.cost import CostModelLike


@by_value
@named_fields
@dataclass(frozen=True)
class Planned:
    """A verified plan and the graph it refers to: the input graph, or the split graph (COPY nodes,
    replicas) when planned over several devices, with the split itself (``split``, else None)."""

    graph: Graph
    plan: Plan
    split: DeviceSplit | None = None


@positional_checked(lambda: _plan_options())
def plan(graph: Graph, schedule: Schedule | None = None, solver: str = "auto", **options: Any) -> Plan:
    """Plan arena offsets for ``graph`` under ``schedule`` (default: the serial schedule).

    ``solver``: "auto" (every heuristic, best kept; without ``time_limit``, on a problem of at most 64 buffers they
    leave above its bound (or of up to 200 they leave 5% or more above it), a short "search" of a fixed node budget, named in the solver block only where it found the
    smaller arena; the exact "search" and "cpsat" too when ``time_limit`` is given), "greedy", "size", "search", "cpsat" or "ggml" (the serial baseline,
    for comparison only). ``time_limit`` is a deterministic work budget for the whole plan (shared out over
    a memory budget's candidate schedules and over devices): the same input and options give the same plan
    (a wall-clock safety stop, reported in the solver block, is the exception). It bounds the exact solvers'
    search; the steps around it (schedules, ``streams="auto"``'s candidates, happens-before, lifetimes, the clique
    bound, the heuristics, the serial plan the report quotes, the verifier) are extra: a fixed cost F, what the same
    plan costs without ``time_limit``, which no limit changes. Measured (session 53b, CPU): F + ``time_limit``, plus
    up to ``search.SETUP_FREE_SECONDS`` (0.5 s) of the search's own setup (CP-SAT's overruns aside); F grows with
    the graph and the streams (``layered_graph(3000)``: 0.3 s serial, 2.3 s on 2 streams, 3.2 s on 4, 4.6 s with
    "auto", of it 2.1 s clique bound and 0.7 s candidates; so ``time_limit=0.5`` ran 1.6-9x 0.5 s in all; table:
    docs/architecture.md, "Budgets"). With a ``memory_budget`` F is more than that plan's without a limit, by what
    the exact probes of the candidates need before their share of the limit: each rejected candidate's clique bound
    (stopped at the budget; one search per schedule), and the fork give-backs' scores (their number sets each
    probe's share, so they are scored even where their issue order is over the budget, which a plan without a
    limit skips; there they are counted, not replayed or tried): measured (session 60, CPU, main -> budget60 on
    the loaded 2-core VM), ``random_dag(10000)`` on ``streams="auto"`` at its serial arena 7.2-7.6 s without a
    limit, 19.8-24.2 -> 14.2-18.6 s at ``time_limit=0.1`` with the wall-clock stop kept off (the same plan), most
    of what is left the forks' scores (docs/experiments/time_s60.txt); session 61 cut those 3.3-4.6 -> 2.5-2.8 s,
    the plan 12.9-15.6 -> 11.2-12.5 s, the same bytes (docs/experiments/forks_s61.txt). A memory
    budget's exact probes of candidate schedules stop at 4x the limit plus 10 s of wall clock (the rest by the
    heuristics, the plan marked ``stopped: wall_clock``): past that stop the schedule chosen, not only its offsets,
    can differ from an unstopped run's (a candidate only an exact probe fits is passed over for a slower one, or the
    serial plan), still within the budget and verified; where the stop falls depends on the machine's speed and load.
    It stops exact probes, not the whole plan: the heuristic test of each candidate left, the report's plans, the
    verifier and the listed serial schedule's last-resort exact solve (the whole limit, under its own stop of 4x the
    limit plus 10 s) still run after it (docs/architecture.md, "Budgets").
    ``streams`` (N, or "auto": up to 8) schedules with ``memplan.graph_optimize`` instead; ``memory_budget`` (bytes)
    gives concurrency back until the arena fits (BudgetError if no serial order tried fits either: the listed
    one, then a low-memory one, which is all ``memory_budget`` without ``streams`` may change); ``max_events``
    caps the events. A ``schedule`` given explicitly wins over ``streams``; ``streams`` (its declared streams at most
    N, or 8 for "auto"), ``memory_budget`` and ``max_events`` check it, never change it; a given schedule must order
    every read after its writers (``ScheduleError`` naming the event to add, ``check=False`` or not). The solver block's ``"schedule"`` entry reports simulated
    makespans and serial vs concurrent arenas.
    ``devices`` > 1 splits the graph into pipeline stages, one arena per device; the plan then refers
    to the split graph, which ``plan_graph`` returns with it. ``device_capacity`` bounds each device's
    weights plus arena (BudgetError naming the device): one number for every device, or a list of one per
    device (two different GPUs). A device over it is planned again before it is refused (each such replan spends
    the work budget again): one device, with or without ``streams``, with ``memory_budget`` set to what the
    capacity leaves after the weights (the caller's ``memory_budget`` where smaller; reported as the schedule
    block's ``memory_budget`` with ``"memory_budget_from": "device_capacity"``), so it never refuses what that
    budget plans, a given ``schedule`` aside (checked, never changed); a device of a split on several streams
    runs its stage serially, listed in the solver block's ``split.serial_devices``, and a serial device over it runs
    its stage in a low-memory order (``split.low_memory_devices``), as ``memory_budget`` does. All options: see
    ``plan_graph``.
    """
    check_option_names("plan", options, _plan_options())
    return plan_graph(graph, schedule, solver, **options).plan


def _plan_options() -> list[str]:
    """The keyword options ``plan(**options)`` forwards to ``plan_graph`` (its keyword-only parameters)."""
    return [k for k, p in inspect.signature(plan_graph).parameters.items() if p.kind is p.KEYWORD_ONLY]


@named_options
@paused
def plan_graph(graph: Graph, schedule: Schedule | None = None, solver: str = "auto", *,
               time_limit: float | None = None, seed: int = 0, workers: int = 1,
               progress: Callable[[str], None] | None = None,
               check: bool = True, streams: int | str | None = None, memory_budget: int | None = None,
               max_events: int | None = None, cost_model: CostModelLike | None = None, devices: int | None = None,
               device_capacity: int | Sequence[int] | None = None, fused_groups: bool = False,
               alignment: int | None = None) -> Planned:
    """``plan()``, returning the graph the plan refers to as well (the split graph for ``devices`` > 1).

    Every keyword option, as ``plan()`` takes it: ``time_limit`` (seconds, a deterministic work budget
    for the exact solvers), ``seed`` (the exact solvers' randomised choices), ``workers`` (CP-SAT threads;
    1 is deterministic), ``progress`` (a callable taking one progress message, as ``memplan plan
    --progress`` prints), ``check`` (False skips the final ``verify`` when the solvers' own check covered
    every pair: benchmarks timing the planner alone), ``streams``, ``memory_budget``, ``max_events``, ``cost_model`` (the scheduler's and the
    simulator's, ``memplan.CostModel`` by default), ``devices`` and ``device_capacity`` (see ``plan()``).
    ``fused_groups``: keep every tensor a fusion group touches live across the whole group, so a backend
    may run each group as one kernel that reads any member's input while it writes any member's output
    (the contract's rules are node by node; such a plan satisfies them too). ``alignment``: plan this run with a
    larger alignment than the graph's (``with_alignment``); the plan's ``alignment`` field records it."""
    from .devices import check_devices
    from .devices.split import check_capacity_arg, device_capacities
    from .errors import caller_stacklevel
    from .optimize.candidates import check_options as check_stream_options
    from .optimize.candidates import warn_one_stream
    from .solvers.unread import warn_stopped, warn_unread, warn_workers_alignment

    check_graph(graph, "plan")
    _check_schedule_arg(schedule)
    given = graph
    graph = with_alignment(graph, _one_alignment(alignment, devices))
    if not isinstance(check, bool):   # check=None or 0 would skip the verifier by accident
        raise SolverError(f"check must be True or False, not {_short(check)}")
    check_stream_options(streams, memory_budget, max_events, given=schedule is not None,   # before any work
                         split=isinstance(devices, int) and not isinstance(devices, bool) and devices > 1)
    check_capacity_arg(device_capacity)
    warn_one_stream(streams, max_events, schedule)
    t0 = time.perf_counter()
    options = SolveOptions(time_limit=time_limit, seed=seed, workers=workers, progress=progress,
                           fused_groups=fused_groups)
    warn_workers_alignment(solver, options, graph.alignment, alignment is not None)
    warn_unread(solver, options, stacklevel=caller_stacklevel())
    if devices is not None:
        check_devices(devices)
    device_capacities(device_capacity, devices or 1)   # one per device: said before any work
    if devices is not None and devices > 1:
        if schedule is not None or memory_budget is not None:
            raise ScheduleError(_no_split_options(schedule, memory_budget, device_capacity))
        planned = _plan_devices(graph, devices, solver, options, t0, streams=streams, max_events=max_events,
                                cost_model=cost_model, device_capacity=device_capacity)
    else:
        def one(budget: int | None, budget_from: str | None = None) -> Plan:
            return _plan_one_device(graph, schedule, solver, options, t0, streams=streams, memory_budget=budget,
                                    max_events=max_events, cost_model=cost_model, budget_from=budget_from)

        planned = Planned(graph, one(memory_budget))
        if device_capacity is not None:
            planned = Planned(graph, _within_capacity(graph, planned.plan, device_capacity, memory_budget,
                                                      None if schedule is not None else one))
    planned = _given_alignment(planned, graph, given)
    if check or _not_fully_checked(planned.plan):   # (against the graph's alignment too: rule 4 holds both)
        verify(planned.graph, planned.plan, fused_groups=fused_groups)
    warn_stopped(planned.plan.solver.get("stopped"), solver, options, stacklevel=caller_stacklevel())
    return planned


def _check_schedule_arg(schedule: Any) -> None:
    """ScheduleError naming the solver where ``schedule`` (the second positional argument) is a solver's name.
    Why: ``plan(graph, "greedy")`` reads as choosing the solver, but the second argument is the schedule; it was
    refused as "expected a memplan Schedule ..., not str", naming neither the argument nor ``solver=``."""
    if isinstance(schedule, str) and schedule in SOLVER_NAMES:
        raise ScheduleError(f"schedule {schedule!r} is a solver's name: the second positional argument of plan() is "
                            f"the schedule; choose the solver by name (plan(graph, solver={schedule!r}))")


def _no_split_options(schedule, memory_budget, device_capacity) -> str:
    """Why ``devices`` > 1 takes no ``schedule`` or ``memory_budget``, naming the ones given and what bounds a
    device instead. Why: "give neither a schedule nor a memory_budget (use device_capacity)" told a caller who gave
    only a schedule, or a budget beside a ``device_capacity``, to use the capacity."""
    given = " and ".join(n for n, v in (("the schedule", schedule), ("the memory_budget", memory_budget)) if v is not None)
    why = "devices > 1 plans its own per-device schedules"
    if memory_budget is None:
        return f"{why}: drop {given}"
    if device_capacity is None:
        return f"{why}: drop {given} (use device_capacity: each device's weights plus arena)"
    return f"{why}: drop {given} (the device_capacity given bounds each device's weights plus arena)"


def _within_capacity(graph: Graph, made: Plan, device_capacity, memory_budget: int | None,
                     replan: Callable[[int, str], Plan] | None) -> Plan:
    """``made`` if the graph's weights plus its arena fit ``device_capacity`` (one device); else, when ``plan``
    chose ``made``'s schedule (``replan``: None for a given one, checked, never changed), the plan ``replan`` makes
    with what the capacity leaves after the weights as its memory budget (the caller's ``memory_budget`` where that
    is smaller), whether or not ``streams`` was asked: concurrency given back, and then the low-memory serial order
    ``memory_budget`` tries; else BudgetError naming device 0. Why: a capacity is a memory budget plus the weights,
    and it refused what that budget plans (a concurrent arena larger than the serial one; without ``streams``, a
    listed order over it where a low-memory one fits)."""
    from .devices import check_capacity
    from .devices.split import device_capacities, weight_bytes

    try:
        check_capacity(graph, made, device_capacity)
        return made
    except BudgetError as exc:
        room = device_capacities(device_capacity, 1)[0] - weight_bytes(graph)
        if replan is None or room < 0:
            raise
        budget = room if memory_budget is None else min(room, memory_budget)
        try:
            again = replan(budget, "device_capacity")
        except BudgetError as none_fits:   # (both messages' options kept, for the caller to spell: ``NamesOptions``)
            raise BudgetError.of(f"{exc.phrased()}; planned again with the {budget} B it leaves after the weights as "
                                 f"a {{memory_budget!w}}: {none_fits.phrased()}",
                                 **{**exc.values, **none_fits.values}) from None
        check_capacity(graph, again, device_capacity)
        return again


def with_alignment(graph: Graph, alignment: int | None, *, below: bool = False) -> Graph:
    """``graph`` with ``alignment`` in place of its own (``graph`` itself for None or the same one). Why only a
    larger one (a power of two, so a multiple): the graph's ``alignment`` is a requirement of the graph (every
    root offset a multiple of it, contract rule 4), which a plan must meet whatever alignment it records; a
    plan at a smaller one would fail ``verify`` against the graph. ``below`` lets the split graph of a
    multi-device plan take its input's alignment back. GraphError (``check_alignment``'s text) otherwise."""
    from .graph import check_alignment

    if alignment is None:
        return graph
    check_alignment(alignment)   # (first: 256.0 is no alignment, though it equals the graph's 256)
    if alignment == graph.alignment:
        return graph
    if alignment < graph.alignment and not below:
        raise GraphError(f"alignment {alignment} is below the alignment {graph.alignment} of graph {graph.name!r}: "
                         "every offset must stay a multiple of the graph's (a plan may only raise it; to lower it, "
                         "edit the graph's alignment field)")
    try:
        return replace(graph, alignment=alignment)
    except GraphError as exc:   # (the graph's checks at the new alignment: its roots' total past 2**63 bytes)
        raise GraphError(f"graph {graph.name!r} at alignment {alignment} (its own is {graph.alignment}): {exc}") from None


def _one_alignment(alignment: Any, devices: Any) -> Any:
    """``alignment`` itself, or GraphError where it is a list or tuple (one per device, say): a split plan records
    one ``alignment`` field, which holds for every device's arena (docs/format.md, "Multi-device plans"), so
    there is no field for a per-device one. Why a message of its own: ``check_alignment`` said only "alignment
    [256, 4096] is not a positive power of two", as if the caller had mistyped a number."""
    if isinstance(alignment, (list, tuple)):
        raise GraphError(f"alignment {_short(alignment)}: give one power of two for every device (a plan, split over "
                         f"{devices if isinstance(devices, int) and devices > 1 else 'several'} devices or not, "
                         "records one alignment field, which holds for each device's arena)")
    return alignment


def _given_alignment(planned: Planned, graph: Graph, given: Graph) -> Planned:
    """``planned`` with the graph it hands back (and a split's graph) at ``given``'s own alignment, where the run
    was planned at a larger one (``graph``, ``with_alignment``): the plan's field holds the run's, the caller's
    graph (or the split of it) keeps its own, against which the plan verifies (rule 4 holds both)."""
    if graph is given:
        return planned
    back = given if planned.graph is graph else with_alignment(planned.graph, given.alignment, below=True)
    split = planned.split if planned.split is None else replace(planned.split, graph=back)
    return replace(planned, graph=back, split=split)


def _not_fully_checked(p: Plan) -> bool:
    """Whether the solvers' own check may have skipped pairs (general problems above its pairwise limit):
    then ``check=False`` cannot skip the verifier, or a solver bug could become a plan."""
    return sum(1 for _t, off, _s in p.tensors if off is not None) > PAIRWISE_LIMIT


@named_options
def plan_devices(graph: Graph, n: int, *, solver: str = "auto", options: SolveOptions | None = None,
                 device_capacity: int | Sequence[int] | None = None, streams: int | str | None = None,
                 max_events: int | None = None, cost_model: CostModelLike | None = None,
                 alignment: int | None = None) -> tuple[DeviceSplit, Plan]:
    """(split, plan) of ``graph`` over ``n`` devices; the plan refers to ``split.graph`` and is verified.
    (``split_devices`` validates ``n``.) ``solver`` and ``options`` (``SolveOptions``) plan each device's
    arena; ``device_capacity``, ``streams``, ``max_events`` and ``cost_model`` are ``split_devices``'.
    ``alignment``: as ``plan(graph, devices=n, alignment=N)`` takes it, one larger power of two for every device's
    arena; the plan's ``alignment`` field records it, ``split.graph`` keeps the graph's own."""
    from .devices import check_devices
    from .errors import caller_stacklevel
    from .optimize.candidates import warn_one_stream
    from .solvers.unread import warn_stopped, warn_unread, warn_workers_alignment

    check_graph(graph, "plan_devices")
    # the device count first, as ``plan_graph`` and ``split_devices`` check it: ``device_capacities`` (one per device)
    # and the ggml check read it before the split did, so ``plan_devices(g, 2.0, device_capacity=N)`` was a raw
    # TypeError ("can't multiply sequence by non-int of type 'float'"), ``n=10**30`` a raw OverflowError
    check_devices(n)
    warn_one_stream(streams, max_events, None)
    given = graph
    graph = with_alignment(graph, _one_alignment(alignment, n))
    options = SolveOptions() if options is None else options
    warn_workers_alignment(solver, options, graph.alignment, alignment is not None)
    warn_unread(solver, options, stacklevel=caller_stacklevel())
    planned = _plan_devices(graph, n, solver, options, time.perf_counter(), streams=streams,
                            max_events=max_events, cost_model=cost_model, device_capacity=device_capacity)
    planned = _given_alignment(planned, graph, given)
    verify(planned.graph, planned.plan, fused_groups=options.fused_groups)
    warn_stopped(planned.plan.solver.get("stopped"), solver, options, stacklevel=caller_stacklevel())
    return planned.split, planned.plan


# ---- the pipeline for one schedule ---------------------------------------------------------------------

@paused
def solve_schedule(graph: Graph, schedule: Schedule, solver: str = "auto",
                   options: SolveOptions = SolveOptions(), *, split=None, t0: float | None = None,
                   phases: dict[str, float] | None = None, over: int | None = None,
                   start: Solved | None = None, keep: list[Solved] | None = None,
                   solved: dict[int, tuple[BufferProblem, Solution]] | None = None,
                   built: Built | None = None) -> Plan | None:
    """The pipeline for one schedule: happens-before, lifetimes, one buffer problem per device, the
    checked solve, and the Plan (not yet verified). With ``split`` (a ``DeviceSplit`` whose graph and
    schedule these are) every device gets its own problem and arena. ``phases``, if given, receives
    the seconds of each step (for ``memplan bench scale``). ``over`` (one device): None, unsolved, when the
    problem's proven lower bound is above it: no plan of this schedule fits a memory budget of ``over``
    bytes (every solution is checked to be at least that bound), so the budget's search need not solve it;
    None too when ``solver`` runs heuristics only and each of them, stopped at its first buffer past ``over``
    bytes, would end over it (``solvers.heuristics_over``): the plan it would return does not fit either. So
    a plan is made only for a schedule that fits (the same plan as without ``over``).
    ``keep`` (one device): receives the problem solved and its solution (``Solved``); ``start``: such a record of an
    earlier ``auto`` solve of this schedule without a time limit (a memory budget's cheap solve), whose problem is
    solved again instead of being rebuilt, an exact solver starting from its plan (``default_start``): the same plan,
    without the happens-before, lifetimes, bounds and default solve made twice.
    ``solved`` (with ``split``): each device's problem and solution of an earlier call with the same options, kept
    up to date here; a device whose problem is the very same again takes its solution instead of a solve (see
    ``_plan_devices``).
    ``built`` (one device): a ``Built`` this call leaves its happens-before, lifetimes and buffer problem (before the
    clique bound) in, and takes them from where an earlier call of the same schedule and ``fused_groups`` left them
    (the caller keys it by schedule): the same problem, not built again. Why: a memory budget's exact probe of a
    candidate its cheap solve just rejected built all three again (a 64-expert MoE layer on ``streams="auto"`` with
    ``time_limit=1``: 39 probes, a third of the plan's time)."""
    t0 = time.perf_counter() if t0 is None else t0
    if start is not None:
        return _solve_started(graph, schedule, solver, options, start, t0=t0, over=over)
    clock = _Phases(phases)
    reuse = built if split is None and built is not None else None
    if over is not None and split is None and _order_bound(graph, schedule, reuse) > over:
        # no schedule of this issue order fits: its bound alone, before happens-before and lifetimes (a memory
        # budget's candidates on 1,024 streams were rejected by this very bound after 0.4-1 s of lifetimes each)
        return None
    if reuse is not None and reuse.hb is not None:
        hb, lt = reuse.hb
    else:
        hb = build_happens_before(graph, schedule)
        clock.lap("happens_before")
        lt = compute_lifetimes(graph, hb, fused_groups=check_options(options).fused_groups)
        clock.lap("lifetimes")
        if reuse is not None:
            reuse.hb = hb, lt
    parts = []
    groups: list = [(None, None)]
    if split is not None:
        # each device's roots in ``lt.roots`` order, in one pass (a pass per device: 1 s of a 512-device split)
        by_device: list[list[int]] = [[] for _ in range(split.devices)]
        for r in lt.roots:
            d = split.tensor_device[int(r)]
            if d is not None and 0 <= d < split.devices:
                by_device[d].append(int(r))
        groups = [(by_device[d], range(*split.stream_ranges[d])) for d in range(split.devices)]
    # fused_groups: the solvers get the stricter problem (the solver block's status and gap refer to its
    # bound, reported there), but the plan's lower_bound_bytes keeps the contract's meaning (a bound on
    # every safe plan of this schedule): the node-by-node lifetimes' bound
    plain = compute_lifetimes(graph, hb) if options.fused_groups else None
    bounds: list[int] | None = [] if plain is not None else None
    # with ``over`` and heuristics only, the clique bound (the costly part of a multi-stream problem's bound) waits
    # for the heuristics' verdict: they decide alone (a plan over the budget would be above any true bound too)
    deferred = over is not None and split is None and heuristics_of(solver, options) is not None
    # one work budget for the plan: several devices' problems share it equally (each took all of it, so
    # ``time_limit=L`` over four devices ran 4 L)
    each = replace(options, time_limit=share_seconds(work_seconds(solver, options), len(groups))) if (
        len(groups) > 1 and _exact(solver, options)) else options
    # after a Ctrl-C the devices left get the default's heuristics: ``solver`` and ``each`` are then others, and a
    # solve is the caller's where both are still what was asked (compared by value: ``solver is not given`` told
    # the switch's "auto" from a caller's "auto" read from the command line, another object, not from a literal)
    asked = (solver, each.time_limit)
    for device, (roots, streams) in enumerate(groups):
        kw = {} if roots is None else {"roots": roots, "streams": streams}
        clique = over is None or split is not None
        problem = reuse.problems.get(clique) if reuse is not None else None
        if problem is None:
            problem = buffer_problem(graph, hb, lt, clique=clique, **kw)
            if reuse is not None:
                reuse.problems[clique] = problem
        if split is None and plain is None:
            # one device, no second bound: nothing below reads the clocks or the lifetimes, and the problem holds
            # what it needs of them (``first`` and ``visible``). Why let go: their other (buffer x stream) tables
            # (``last``, ``live_from``, the clocks: 255 MiB for layered_graph(20000) on 1,024 streams) were held
            # through the solve, under greedy's own sets: the plan's peak (round 64)
            hb = lt = None
        # a small problem's default solve searches down to its bound (``auto.polish``): the bound it will be solved
        # with decides there, so ``heuristics_over``, which then solves it, must see that one too
        # (nor one with in-place pairs: ``heuristics_over`` solves it in full, and that solve is the plan's where it
        # fits, so it must be of the problem the plan is solved with; the bound decides nothing else there, as the
        # arena cannot pass below it)
        late = deferred and not (solver == "auto" and polishes(problem, options)) and not problem.inplace
        if over is not None and split is None and not late:
            # a bound past ``over`` rejects the schedule: its search may stop there (an exact solver's probe too: where
            # no clique passes ``over`` the search runs to the end, the same bound, and a memory budget's probes of
            # schedules rejected by their bound spent most of their time finding the heaviest clique past it)
            problem = _clique_bounded(problem, over, reuse)
        clock.lap("problem")
        made: list[Solution] = []   # (``heuristics_over``'s whole solve of ``problem``, where it ran one)
        if over is not None and split is None and (int(problem.lower_bound or 0) > over
                                                   or heuristics_over(problem, solver, options, over, made)):
            return None
        if late:
            problem = _clique_bounded(problem, None, reuse)
        before = solved.get(device) if solved is not None else None
        if before is not None and same_problem(before[0], problem):
            parts.append((problem, before[1]))
        elif made and each == options:   # (the very problem, solver and options: that solve again would repeat it)
            parts.append((problem, made[0]))
        else:
            parts.append((problem, solve(problem, solver, each)))
        if solved is not None:
            _keep_complete(solved, device, parts[-1], cut=(solver, each.time_limit) != asked)
        if parts[-1][1].info.get("interrupted"):
            # a Ctrl-C ended this device's exact solve: the devices after it get the default's heuristics, not
            # their share of the work budget (each solved in full, the Ctrl-C was lost to them)
            solver, each = "auto", replace(each, time_limit=None)
        if bounds is not None:
            bounds.append(int(buffer_problem(graph, hb, plain, **kw).lower_bound or 0))
        clock.lap("solve")
    if keep is not None and split is None:
        keep.append(Solved(*parts[0], None if bounds is None else bounds[0]))
    result = _assemble(graph, schedule, parts, split=split, seconds=time.perf_counter() - t0, bounds=bounds)
    clock.lap("assemble")
    return result


def _order_bound(graph: Graph, schedule: Schedule, reuse: Built | None) -> int:
    """``issue_order_bound(graph, schedule.order)``, kept in ``reuse`` (``solve_schedule(built=...)``): a memory
    budget's exact probe of a candidate its cheap solve rejected by this bound computed it again (22 of 44 calls of a
    budgeted ``random_dag(10000)``, 40 ms each)."""
    if reuse is None:
        return issue_order_bound(graph, schedule.order)
    if reuse.order_bound is None:
        reuse.order_bound = issue_order_bound(graph, schedule.order)
    return reuse.order_bound


def _clique_bounded(problem: BufferProblem, stop_above: int | None, reuse: Built | None) -> BufferProblem:
    """``with_clique_bound(problem, stop_above)``, kept in ``reuse`` (``solve_schedule(built=...)``) for the same
    problem and ``stop_above``: a pure function of both, so the same bound. Why: a memory budget's exact probe of a
    candidate its cheap solve just rejected searched the same conflict cliques again, stopped at the same budget
    (``plan(moe_layer(64), streams="auto", memory_budget=<serial arena>, time_limit=0.1)``: 104 clique searches for
    53 schedules, 2.3 of its 5 s)."""
    if reuse is None:
        return with_clique_bound(problem, stop_above=stop_above)
    kept = reuse.cliques.get(stop_above)
    if kept is None or kept[0] is not problem:
        kept = reuse.cliques[stop_above] = (problem, with_clique_bound(problem, stop_above=stop_above))
    return kept[1]


def _keep_complete(solved: dict[int, tuple[BufferProblem, Solution]], device: int,
                   part: tuple[BufferProblem, Solution], *, cut: bool) -> None:
    """Record ``part`` as ``device``'s solution for a later round to take where its problem is the same, only where
    it is the solve the caller asked for run to its end: not one a Ctrl-C ended (``interrupted``) or the wall-clock
    safety stop cut (``stopped``), nor one the default's heuristics made in its place after a Ctrl-C (``cut``); any
    earlier record of the device is dropped then. Why: a round after a Ctrl-C took the interrupted search's plan (or
    the heuristics' stand-in) as the device's finished solve, and a plan whose rounds gave back a Ctrl-C-ed device's
    concurrency said nothing of the Ctrl-C."""
    sol = part[1]
    if cut or sol.info.get("interrupted") or sol.info.get("stopped"):
        solved.pop(device, None)
    else:
        solved[device] = part


@dataclass
class Built:
    """What ``solve_schedule(built=...)`` keeps of one schedule (``key``, the caller's) for its next call: the
    happens-before and lifetimes, each clique flag's buffer problem, the issue order's bound, and each ``stop_above``'s
    clique-bounded problem with the problem it was made from. Mutable on purpose: the calls fill it in as they go, and
    a new schedule gets a new one, so nothing of another schedule's clocks is held."""

    key: tuple
    hb: tuple | None = None
    problems: dict[bool, BufferProblem] = field(default_factory=dict)
    order_bound: int | None = None
    cliques: dict[int | None, tuple[BufferProblem, BufferProblem]] = field(default_factory=dict)


@dataclass(frozen=True)
class Solved:
    """One device's buffer problem of a schedule and a solution of it (``solve_schedule(keep=...)``); ``bound``: the
    contract's lower bound where ``fused_groups`` made the problem stricter (``_assemble``), else None."""

    problem: BufferProblem
    solution: Solution
    bound: int | None = None


def _solve_started(graph: Graph, schedule: Schedule, solver: str, options: SolveOptions, start: Solved, *,
                   t0: float, over: int | None) -> Plan | None:
    """``solve_schedule`` of one device from ``start``: an ``auto`` solve of this schedule without a time limit, kept
    (``keep``) where a memory budget tried it cheaply. Its problem is this schedule's (the bound complete: a budget's
    stop at ``over`` only cut searches that passed it, and that solve then made no plan to keep), and its plan is
    the default solve an exact solver starts from (``SolveOptions.default_start``). ``over`` as ``solve_schedule`` takes it."""
    problem = start.problem
    if over is not None and (int(problem.lower_bound or 0) > over or heuristics_over(problem, solver, options, over)):
        return None
    parts = [(problem, solve_from_default(problem, solver, options, start.solution))]
    bounds = None if start.bound is None else [start.bound]
    return _assemble(graph, schedule, parts, seconds=time.perf_counter() - t0, bounds=bounds)


class _Phases:
    """Adds the seconds since the last lap to ``phases[name]`` (nothing when ``phases`` is None)."""

    def __init__(self, phases: dict[str, float] | None):
        self.phases, self.t = phases, time.perf_counter()

    def lap(self, name: str) -> None:
        if self.phases is not None:
            now = time.perf_counter()
            self.phases[name] = self.phases.get(name, 0.0) + now - self.t
            self.t = now


def _assemble(graph: Graph, schedule: Schedule, parts: list[tuple[BufferProblem, Solution]], *,
              split=None, seconds: float = 0.0, bounds: list[int] | None = None) -> Plan:
    """Root offsets to a Plan: views inherit their root's offset, weights get null. ``bounds``: the
    contract's lower bound per part where the problems solved were stricter (``fused_groups``); their own
    bounds then go to the solver block, beside the status and gap measured against them."""
    def bound(k: int, problem: BufferProblem) -> int:
        return int(problem.lower_bound or 0) if bounds is None else bounds[k]

    def fused(problem: BufferProblem) -> dict[str, Any]:
        return {} if bounds is None else {"fused_groups": {"lower_bound_bytes": int(problem.lower_bound or 0)}}

    root_off: dict[int, int] = {}
    for problem, sol in parts:
        for k, name in enumerate(problem.names or ()):
            root_off[graph.tensor_index[name]] = int(sol.offsets[k])
    tensors = []
    for t, tensor in enumerate(graph.tensors):
        r = graph.root[t]
        off = None if r not in root_off else root_off[r] + graph.root_offset[t]
        tensors.append((tensor.id, off, tensor.size))
    common = dict(graph=graph.name, alignment=graph.alignment, streams=schedule.num_streams,
                  order=tuple(zip(schedule.order, schedule.streams)),
                  events=tuple((e.after, e.before) for e in schedule.events), tensors=tuple(tensors))
    if split is None:
        problem, sol = parts[0]
        block: dict[str, Any] = {"name": sol.solver, "status": str(sol.status), "gap": gap_of(sol.arena, sol.lower_bound),
                                 **fused(problem), **{k: v for k, v in sol.info.items() if _jsonable(v)},
                                 "seconds": round(seconds, 4)}
        arena = max([o + s for _, o, s in tensors if o is not None] + [0])
        return Plan(arena_bytes=int(arena), lower_bound_bytes=bound(0, problem), solver=block, **common)
    dev_arena = [0] * split.devices
    for t, (_tid, off, size) in enumerate(tensors):
        if off is not None:
            d = split.tensor_device[t]
            dev_arena[d] = max(dev_arena[d], off + size)
    per_device = [{"device": d, "lower_bound_bytes": bound(d, p), **fused(p), "status": str(s.status),
                   "gap": gap_of(s.arena, s.lower_bound), **_proven(p, s), "arena_bytes": dev_arena[d],
                   "weight_bytes": split.weight_bytes[d], "streams": list(split.stream_ranges[d]),
                   "nodes": split.node_device.count(d), "stage_cost_us": split.stage_cost_us[d], **_stops([(p, s)])}
                  for d, (p, s) in enumerate(parts)]
    names = sorted({s.solver for _, s in parts})
    # the status and gap hold for every device: the weakest device's claim (OPTIMAL with FEASIBLE is FEASIBLE, an
    # exact solver's bound on each; any mix was HEURISTIC, a claim of none) and the largest device's gap, each
    # arena against its own bound, so that OPTIMAL goes with gap 0 (docs/format.md "Multi-device plans")
    weakest = min((s.status for _, s in parts), key=_STATUS_RANK.index, default=Status.OPTIMAL)
    block = {"name": names[0] if len(names) == 1 else "+".join(names), "status": str(weakest),
             "gap": max(p["gap"] for p in per_device), **_split_bound(per_device), "per_device": per_device,
             **_stops(parts), "seconds": round(seconds, 4)}
    node_dev = {graph.nodes[i].id: d for i, d in enumerate(split.node_device)}
    return Plan(arena_bytes=max(dev_arena, default=0),
                lower_bound_bytes=max((p["lower_bound_bytes"] for p in per_device), default=0), solver=block,
                devices=split.devices, node_devices=tuple(node_dev[nid] for nid in schedule.order),
                tensor_devices=tuple(split.tensor_device), device_arena_bytes=tuple(dev_arena), **common)


def _proven(problem: BufferProblem, sol: Solution) -> dict[str, Any]:
    """A device's ``bound``: the lower bound its solver proved, where it is above the bound of the problem it was given
    (the status and gap are measured against it), as a one-device block carries its solver's ``bound``; nothing
    where the two agree (such entries stay as they were). Why: an exact solver's search proves optima above the live
    bytes (alignment, fragmentation), and a split plan's device said ``OPTIMAL``, gap 0, at an arena above its
    ``lower_bound_bytes`` with no bound to show for it, so no reader could tell that claim from a hand edit
    (``show.solver_claim_warnings`` checks each device's claim against the bounds its entry records)."""
    proven = int(sol.lower_bound)
    return {"bound": proven} if proven > int(problem.lower_bound or 0) else {}


def _split_bound(per_device: list[dict[str, Any]]) -> dict[str, Any]:
    """A split plan's ``bound`` where a device records one (``_proven``): the largest of the devices' bounds, each the
    highest it states, a proven bound on ``arena_bytes`` (the largest device's arena is at least each device's), and
    the arena itself where every device is OPTIMAL. Why: the block said OPTIMAL beside a ``lower_bound_bytes`` below
    its ``arena_bytes`` and, at the top, nothing that proved it (``memplan show`` prints the block's line only);
    plans whose devices record none stay as they were."""
    if not any("bound" in p for p in per_device):
        return {}
    return {"bound": max(max(p.get("bound", 0), p["lower_bound_bytes"],
                             p.get("fused_groups", {}).get("lower_bound_bytes", 0)) for p in per_device)}


def _stops(parts: list[tuple[BufferProblem, Solution]]) -> dict[str, Any]:
    """What stopped the devices' solves early, as a one-device solver block says it (``interrupted``: a Ctrl-C;
    ``stopped``: the wall clock): a split plan's block kept neither, so a plan cut short read as a full one."""
    infos = [sol.info for _, sol in parts]
    out: dict[str, Any] = {}
    stopped = next((i["stopped"] for i in infos if i.get("stopped")), None)
    if stopped is not None:
        out["stopped"] = stopped
    if any(i.get("interrupted") for i in infos):
        out["interrupted"] = True
    return out


#: the statuses from the weakest claim to the strongest (``Status``)
_STATUS_RANK = (Status.HEURISTIC, Status.FEASIBLE, Status.OPTIMAL)


def _jsonable(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool, type(None), dict, list)) and not isinstance(v, np.ndarray)


# ---- one device: candidates, budget, report -------------------------------------------------------------

def _plan_one_device(graph: Graph, schedule: Schedule | None, solver: str, options: SolveOptions, t0: float, *,
                     streams, memory_budget, max_events, cost_model, budget_from: str | None = None) -> Plan:
    """One device's plan; ``budget_from`` names the option ``memory_budget`` came from where the caller did not
    give it (``"device_capacity"``), reported beside it in the schedule block."""
    from .optimize.candidates import candidates
    from .optimize.cost import check_cost_model
    from .optimize.floor import arena_floor
    from .solvers import check_solver_name

    if memory_budget is not None and schedule is None:
        # a budget below what every schedule needs is refused before the search for one (a given schedule is planned
        # and its own arena quoted); a bad solver or cost model is named first, as it was
        check_solver_name(solver)
        check_cost_model(cost_model)
        floor = arena_floor(graph)
        if memory_budget < floor.bytes:
            raise _below_floor(graph, solver, options, t0, memory_budget, floor, searched=streams is not None)
    cands = candidates(graph, schedule=schedule, streams=streams, memory_budget=memory_budget,
                       max_events=max_events, cost_model=cost_model)
    if memory_budget is not None and schedule is None and _exact(solver, options):
        chosen, first, result, plans = _exact_budget(graph, cands, solver, options, t0, memory_budget, max_events)
    else:
        chosen, first, result, plans = _heuristic_budget(graph, cands, solver, options, t0, memory_budget,
                                                         max_events, given=schedule is not None)
    serial = _serial_plan(graph, chosen.schedule, plans, solver, options, t0)
    result = _with_marks(result, [first, serial, *plans.values()])
    block = _schedule_block(graph, cands, chosen, first, result, serial.arena_bytes, streams=streams,
                            schedule_given=schedule is not None, memory_budget=memory_budget, max_events=max_events,
                            budget_from=budget_from)
    solver_block = dict(result.solver)
    seconds = solver_block.pop("seconds", None)
    solver_block["schedule"] = block
    if seconds is not None:
        solver_block["seconds"] = seconds
    return replace(result, solver=solver_block)


def _below_floor(graph: Graph, solver: str, options: SolveOptions, t0: float, memory_budget: int, floor,
                 *, searched: bool) -> BudgetError:
    """The BudgetError of a memory budget below ``optimize.floor.arena_floor``, which no schedule can meet: the
    serial arenas a refusal quotes (the listed order's, and the low-memory order's where it differs), planned as
    ever, and the floor with the node (or the inputs, the outputs) that needs it. Why not search: every candidate
    was scheduled, bounded or planned first (a 20,000-branch fan-out on 1,024 streams: 40-55 s to refuse)."""
    from .optimize.memorder import memory_order

    serial = serial_schedule(graph)
    low = memory_order(graph)
    # the serial plan as without a budget; the low-memory order, as a budget's last resort, with a probe's share of an
    # exact solver's work (``PROBE_SHARE``): 1.5 limits at most, as a budget's search
    work = work_seconds(solver, options) if _exact(solver, options) else None
    made = [solve_schedule(graph, serial, solver, options, t0=t0)]
    if low.order != serial.order:
        made.append(solve_schedule(graph, low, solver, options if work is None else
                                   replace(options, time_limit=share_seconds(work * PROBE_SHARE, 1)), t0=t0))
    if any(p.solver.get("interrupted") for p in made):   # a Ctrl-C: the caller's stop, as in a budget's search
        raise KeyboardInterrupt
    arena = made[0].arena_bytes
    note = "" if len(made) == 1 else f" (a low-memory serial order needs {made[1].arena_bytes} B)"
    return BudgetError(f"graph {graph.name!r}: {'no schedule tried fits: ' if searched else ''}the serial plan needs "
                       f"an arena of {arena} B, over the memory budget of {memory_budget} B{note}; no schedule can "
                       f"need less than {floor.bytes} B: {floor.what}")


def _exact(solver: str, options: SolveOptions) -> bool:
    """Whether ``solver`` spends a work budget on each schedule it plans: the exact solvers, and ``auto`` with a
    time limit (which runs them after its heuristics)."""
    return isinstance(solver, str) and work_seconds(solver, options) is not None


def _key(s: Schedule) -> tuple:
    return (s.order, s.streams, s.events)


#: ``plans.get``'s answer for a schedule not yet tried (None there means: tried, over the budget)
_UNSOLVED = object()


def _select(tiers, fits, fits_last):
    """The candidate a memory budget settles on, or None, from ``budget_tiers``' (own, give_backs, last): the
    optimizer's own candidates until one ``fits``, then the fork give-backs faster than it (at most
    ``MAX_GIVE_BACK_PLANS``), then the last resorts (serial, a low-memory serial order), tried with ``fits_last``.
    One order for every solver (docs/scheduling.md, "Memory vs concurrency")."""
    from .optimize.candidates import MAX_GIVE_BACK_PLANS

    own, give_backs, last = tiers
    found = next((r for r in own if fits(r.schedule)), None)
    limit = found.makespan_us if found is not None else float("inf")
    faster = [r for r in give_backs if r.makespan_us < limit][:MAX_GIVE_BACK_PLANS]
    found = next((r for r in faster if fits(r.schedule)), found)
    return found or next((r for r in last if fits_last(r.schedule)), None)


def _refuse(graph: Graph, cands, last, memory_budget: int, plan_of, solver: str, options: SolveOptions
            ) -> BudgetError:
    """The BudgetError of a memory budget no schedule tried meets, quoting the arena of ``plan_of(schedule)`` for the
    last resorts (the serial plan, and the low-memory serial order's where it differs), and, where the serial plan's
    proven lower bound is within the budget, that bound and that the solver is why. Why the bound: with
    ``solver="size"`` and a budget of a random graph's own serial arena (265 B, its bound 265 B; "size" packed 266 B,
    "greedy", "ggml" and "auto" 265 B) the refusal read "the serial plan needs an arena of 266 B" alone, as if no
    plan could fit, where another solver plans it."""
    serial, *low = last
    note = "".join(f" (a low-memory serial order needs {plan_of(r.schedule).arena_bytes} B)" for r in low)
    # the serial arenas only: "even the serial plan needs N" said no schedule tried needed less, while a
    # candidate stopped at the budget (its bound, or ``heuristics_over``) has no arena, and one may have
    # needed less than N; planning them to the end for the message would undo that shortcut
    what, others = ("no schedule tried fits: the serial plan", "; the other candidates tried are over it "
                    "too (each may be stopped once past the budget, so their arenas are not quoted)"
                    ) if cands.optimized is not None else ("the serial plan", "")
    made = plan_of(serial.schedule)
    return BudgetError(f"graph {graph.name!r}: {what} needs an arena of {made.arena_bytes} B, "
                       f"over the memory budget of {memory_budget} B{note}{others}"
                       f"{_solver_short(made.lower_bound_bytes, memory_budget, solver, options)}")


def _solver_short(bound: int, memory_budget: int, solver: str, options: SolveOptions) -> str:
    """The tail of a budget's refusal where the serial schedule's proven lower bound is within the budget: a packing
    that fits may exist, and what to try for it (another solver, a time limit); "" where the bound is over it."""
    if bound > memory_budget:
        return ""
    if solver != "auto":
        how = "solver 'auto' tries every heuristic, and with a time limit the exact solvers too"
    elif options.time_limit is None:
        how = "a time limit adds the exact solvers"
    else:
        how = "a longer time limit may find it"
    return (f"; the serial schedule's proven lower bound is {bound} B, within the budget: a packing that fits may "
            f"exist that solver {solver!r} did not find ({how})")


def _heuristic_budget(graph: Graph, cands, solver: str, options: SolveOptions, t0: float, memory_budget,
                      max_events, *, given: bool):
    """(chosen candidate, the first schedule's plan, the chosen one's plan, the plans made by schedule key): every
    candidate a memory budget tries is planned with the caller's solver and options (cheap for heuristic solvers,
    and for any solver without a budget, where only the first schedule is planned)."""
    from .optimize.candidates import budget_tiers
    from .optimize.memorder import LOW_MEMORY

    plans: dict[tuple, Plan | None] = {}   # None: not solved, its lower bound is over the budget (``fits``)

    def planned(s: Schedule) -> Plan:
        key = _key(s)
        if plans.get(key) is None:
            plans[key] = solve_schedule(graph, s, solver, options, t0=t0)
        return plans[key]

    def fits(s: Schedule) -> bool:
        """Whether ``s``'s plan fits the memory budget. A schedule whose proven lower bound is over it is not
        solved (``over``): a budget no candidate meets solved every one of them (21 solves of a 2,000-output
        fan whose bound alone is over the budget, 30 s, for the one serial arena the refusal quotes). Nor is
        one whose heuristics pass the budget (``heuristics_over``): planning 24 give-backs in full that did
        not fit was most of a budgeted 50,000-node plan. ``planned`` solves such a schedule in full if its
        plan is needed after all (the refusal's serial arena)."""
        key = _key(s)   # (looked up once: hashing a key hashes every event, 30,000 of them)
        made = plans.get(key, _UNSOLVED)
        if made is _UNSOLVED:
            made = plans[key] = solve_schedule(graph, s, solver, options, t0=t0, over=memory_budget)
        return made is not None and made.arena_bytes <= memory_budget

    chosen = cands.first
    first = planned(chosen.schedule)
    if memory_budget is not None and first.arena_bytes > memory_budget:
        if given:   # checked, never changed
            raise BudgetError(f"graph {graph.name!r}: the given schedule needs an arena of {first.arena_bytes} B, "
                              f"over the memory budget of {memory_budget} B")
        # the last resorts are planned in full: a refusal quotes both arenas, a low-memory order's report the
        # serial one, so ``fits`` stopping at the budget would only make them be planned twice
        # (``fits`` rejects a schedule over its issue order's bound unsolved: the give-backs, which share one order,
        # are left out where it is over the budget)
        tiers = budget_tiers(graph, cands, max_events, memory_budget=memory_budget)
        found = _select(tiers, fits, lambda s: planned(s).arena_bytes <= memory_budget)
        if found is None:
            raise _refuse(graph, cands, tiers[2], memory_budget, planned, solver, options)
        chosen = found
    result = planned(chosen.schedule)
    if chosen.name == LOW_MEMORY:   # the report's serial arena is the listed order's, solved as ever (``fits``
        planned(serial_schedule(graph))   # may have stopped at its bound)
    return chosen, first, result, plans


#: with a memory budget that the first schedule's heuristics do not meet, the share of the exact solvers' work
#: budget the candidates' own exact solves get together (each an equal part); the schedule chosen gets the rest
PROBE_SHARE = 0.5


def _exact_budget(graph: Graph, cands, solver: str, options: SolveOptions, t0: float, memory_budget: int,
                  max_events):
    """``_heuristic_budget`` for a solver that spends a work budget on each schedule (``_exact``), within one such
    budget for the whole plan. Planning each candidate exactly with the whole limit multiplied the limit by the
    candidates tried: ``plan(wide_graph(300), streams="auto", memory_budget=<serial arena>, time_limit=1)`` ran
    166 s with ``auto``, 323 s with ``search``.

    The heuristics (greedy, size, stopped once past the budget: ``heuristics_over``) are tried first on each
    candidate: an exact solver starts from their plan, so a schedule that fits under them fits under it. When the
    first schedule fits so, it is planned with the whole limit, as without a budget (the same plan as before).
    Otherwise the candidates are tried in the usual order (``_select``), and one the heuristics do not fit is
    planned exactly with an equal part of ``PROBE_SHARE`` of the limit (the first schedule always: the report
    quotes its arena); the first that fits is chosen: planned with the rest of the limit when the heuristics fit
    it, else kept as its part planned it. The listed serial schedule, a last resort, is the exception: when
    neither fits it, it is planned with the whole limit, as without a budget, so that a budget at that plan's
    arena is met (the plan's exact work is then at most 1.5 limits). Every share is fixed in advance (by the
    number of candidates), so the plan repeats; a candidate that only a longer exact solve would fit may be passed
    over for a slower one (a budget that may cost makespan, never safety)."""
    from .optimize.candidates import MAX_GIVE_BACK_PLANS, exact_budget_tiers

    cheap = replace(options, time_limit=None)
    heuristic: dict[tuple, Plan | None] = {}   # None: over the budget (its bound, or its heuristics)
    cut: list[bool] = []   # a Ctrl-C ended an exact solve: what is left is planned by the default's heuristics
    tried: list[Plan | None] = []   # every cheap plan made, for the marks of the plan chosen
    # each cheap plan's problem and default solve, where one was made: an exact solve of the same schedule starts from
    # it (``solve_schedule(start=...)``) instead of building the problem and running the default solve again
    solved: dict[tuple, Solved] = {}
    # the happens-before, lifetimes and problem of the schedule tried last (``solve_schedule(built=...)``): its exact
    # probe follows its cheap solve at once and takes them; one schedule's at a time (each holds clocks of the graph)
    last_built: list[Built] = []

    def built(key: tuple) -> Built:
        if not last_built or last_built[0].key != key:
            last_built[:] = [Built(key)]
        return last_built[0]

    def fits_cheaply(s: Schedule) -> bool:
        key = _key(s)
        if key not in heuristic:
            kept: list[Solved] = []
            try:
                made = solve_schedule(graph, s, "auto", cheap, t0=t0, over=memory_budget, keep=kept, built=built(key))
            except KeyboardInterrupt:
                # a Ctrl-C in the default's small search (``auto.polish``) of a candidate: a cut as in an exact probe,
                # not the end of the plan (raised, it lost a candidate that already fitted, which a Ctrl-C a moment
                # later, in that probe, keeps); a second Ctrl-C (the cheap solves after a cut) is raised on
                if cut:
                    raise
                cut.append(True)
                return False
            # (the plan's own arena, not only ``over``'s verdict: a small search the wall clock stopped in the second
            # solve, ``auto.POLISH_WALL``, ends above the first one's)
            heuristic[key] = made if made is not None and made.arena_bytes <= memory_budget else None
            if kept:
                solved[key] = kept[0]
            tried.append(made)   # (one over the budget too: a stop in it decided the candidate's probe, ``_with_marks``)
        return heuristic[key] is not None

    first_schedule = cands.first.schedule
    if fits_cheaply(first_schedule):
        key = _key(first_schedule)
        first = _within(solve_schedule(graph, first_schedule, solver, options, t0=t0, start=solved.get(key)),
                        heuristic[key], memory_budget)
        first = _with_marks(first, tried)
        return cands.first, first, first, {key: first}
    work = work_seconds(solver, options)
    wall = _budget_wall(t0, options, work)   # past it, exact solves end: the default's heuristics plan the rest
    late: list[bool] = []   # (``stopped: wall_clock``)
    # (give-backs that cannot fit are counted, not listed: ``exact_budget_tiers``; a count the stop cut short, None, is
    # read by no probe: each is left to the heuristics)
    tiers, give_backs = exact_budget_tiers(graph, cands, max_events, memory_budget, deadline=wall)
    if give_backs is None:
        late.append(True)
    own, _, last = tiers
    probe = replace(options, time_limit=share_seconds(
        work * PROBE_SHARE, 1 + len(own) + min(give_backs or 0, MAX_GIVE_BACK_PLANS) + len(last)))
    probes: dict[tuple, Plan | None] = {}   # None: its lower bound is over the budget, not solved

    def exact(s: Schedule, opts: SolveOptions, over: int | None = None, *, last_resort: bool = False) -> Plan | None:
        """``s`` planned with ``solver`` and ``opts``; after a Ctrl-C, with the default's heuristics (``cheap``): an
        exact solve keeps its best plan on Ctrl-C, and the candidates after it were each solved with their share,
        so the Ctrl-C was lost to them. Likewise once the whole plan's wall-clock safety stop has passed
        (``_budget_wall``): each exact solve's own stop starts after its setup, so a budget's candidates ran
        the setup of one exact solve each (bounds, the default's plan it starts from, the search's tables) past
        any limit. Not the listed serial schedule's last-resort solve (``last_resort``): a plan without a budget is
        made by its exact solve (under its own safety stop), and a budget at that arena must be met; left to the
        heuristics, such a budget was refused as "the serial plan needs" the heuristics' larger arena."""
        if not cut and not late and time.perf_counter() > wall:
            late.append(True)
        if late and not last_resort and over is not None and heuristic.get(_key(s), _UNSOLVED) is None:
            return None   # (``fits_cheaply`` made this very solve: over the budget)
        if cut or (late and not last_resort):
            # (a schedule ``fits_cheaply`` fitted already has this very plan: the default's solve ran to its end; solved
            # again, the chosen candidate's plan cost a second default solve past the stop)
            fitted = heuristic.get(_key(s))
            return fitted if fitted is not None else solve_schedule(graph, s, "auto", cheap, t0=t0, over=over)
        if not last_resort:
            opts = _clipped(opts, wall)
        made = solve_schedule(graph, s, solver, opts, t0=t0, over=over, start=solved.get(_key(s)),
                              built=built(_key(s)))
        if made is not None and made.solver.get("interrupted"):
            cut.append(True)
        return made

    def probed(s: Schedule, over: int | None = None) -> Plan | None:
        key = _key(s)
        if probes.get(key) is None and (key not in probes or over is None):
            probes[key] = exact(s, probe, over)
        return probes[key]

    def fits(s: Schedule) -> bool:
        if fits_cheaply(s):
            return True
        p = probed(s, memory_budget)
        return p is not None and p.arena_bytes <= memory_budget

    serial_key = _key(last[0].schedule)

    def fits_last(s: Schedule) -> bool:
        """``fits``, but the listed serial schedule gets the whole limit: a plan without a budget is made so, and a
        budget at its arena (the common way to ask for "as fast as fits in the serial arena") must be met."""
        if _key(s) != serial_key or fits_cheaply(s):
            return fits(s)
        if probes.get(serial_key) is None or probes[serial_key].arena_bytes > memory_budget:
            probes[serial_key] = exact(s, options, last_resort=True)
        return probes[serial_key].arena_bytes <= memory_budget

    def made_plans(exact_plans: dict[tuple, Plan | None]) -> dict[tuple, Plan | None]:
        """The plans made, by schedule key, for the caller (the report's serial plan, ``_serial_plan``): the exact ones,
        and the cheap ones that fitted where no exact one was made (the default's solve run to its end: the same plan
        as solved again; left out, a serial schedule ``fits_cheaply`` fitted was solved a second time for the report)."""
        made = {k: v for k, v in heuristic.items() if v is not None}
        made.update((k, v) for k, v in exact_plans.items() if v is not None or k not in made)
        return made

    first = probed(first_schedule)
    found = cands.first if first.arena_bytes <= memory_budget else _select(tiers, fits, fits_last)
    if _key(first_schedule) == serial_key:   # (a budget without streams: the first schedule is the serial one)
        first = probes[serial_key]
    if found is None:
        if cut:   # a Ctrl-C stopped the exact solves before one fitted: the caller's stop, not "nothing fits"
            raise KeyboardInterrupt
        raise _refuse(graph, cands, last, memory_budget, probed, solver, options)
    key = _key(found.schedule)
    if probes.get(key) is not None and probes[key].arena_bytes <= memory_budget:
        return found, first, _with_marks(probes[key], tried, cut=bool(cut), late=bool(late)), made_plans(probes)
    result = exact(found.schedule, replace(options, time_limit=share_seconds(work * (1 - PROBE_SHARE), 1)))
    result = _with_marks(_within(result, heuristic.get(key), memory_budget), (), cut=bool(cut), late=bool(late))
    return found, first, _with_marks(result, tried), made_plans({**probes, key: result})


def _budget_wall(t0: float, options: SolveOptions, work: float) -> float:
    """When (``time.perf_counter``) a memory budget's search over candidate schedules stops its exact solves:
    ``options.wall_seconds(work)`` (four times the limit plus ten seconds, or ``SolveOptions.wall_limit``) after
    the plan began. Why: ``wide_graph(300)`` at its serial arena with ``time_limit=1`` ran 46-52 s here, most of
    it the setup of 38 exact probes of a few milliseconds' share each; the rest is planned by the default's
    heuristics and the plan says ``stopped: wall_clock`` (docs/architecture.md, "Budgets")."""
    return t0 + options.wall_seconds(work)


def _clipped(options: SolveOptions, wall: float) -> SolveOptions:
    """``options`` for a budget's exact probe begun before the whole plan's stop ``wall`` (``_budget_wall``), its own
    wall-clock safety stop (``SolveOptions.wall_seconds`` of its share, at least ten seconds) ending there at the
    latest: the same options where that stop ends first. Why: the budget's stop only kept probes from starting, so a
    probe begun just before it could run to its own stop, ten seconds or more past the plan's (a probe's share of
    ``time_limit=0.5`` is a few milliseconds: its own stop 10 s, the plan's 12 s). Only the safety stop moves: a
    probe that ends within the plan's stop is the same solve."""
    left = wall - time.perf_counter()
    if options.time_limit is None or left >= options.wall_seconds(options.time_limit):
        return options
    return replace(options, wall_limit=max(left, 1e-6))


def _interrupted(made: Plan, cut: bool) -> Plan:
    """``made``, its solver block marked ``interrupted`` when a Ctrl-C ended an exact solve of the plan (of another
    candidate, perhaps): the plan is then not what the time limit would have made, and a plan says so."""
    return replace(made, solver={**made.solver, "interrupted": True}) if cut else made


def _within(made: Plan, cheap: Plan | None, memory_budget: int) -> Plan:
    """``made``, an exact solver's plan of a schedule chosen because its cheap plan ``cheap`` (``auto`` without a time
    limit) fits ``memory_budget``; that cheap plan where ``made`` ends over the budget. Why: the exact solvers started
    from greedy's and size's plans, not from the default's lifts and small search (``auto.slack_on_top``,
    ``auto.polish``), so a short limit (cpsat) could end above the cheap plan: the plan came back over the budget
    it was chosen to meet, without a word. A Ctrl-C that ended ``made`` (in the default's run it starts from,
    which left it over the budget) marks the cheap plan too: dropped with ``made``, the mark was lost."""
    if cheap is not None and made.arena_bytes > memory_budget:
        return _interrupted(cheap, bool(made.solver.get("interrupted")))
    return made


def _serial_plan(graph: Graph, chosen: Schedule, plans: dict[tuple, Plan | None], solver: str, options: SolveOptions,
                 t0: float) -> Plan:
    """The serial schedule's plan (the listed order on one stream), for the report's arena: from a plan already made,
    else from a heuristic solve (never a second exact solve: with a time limit that would double the work for one
    number). ``chosen`` is that schedule only when its order is the listed one: a schedule on one stream in
    another order (a give-back of every fork, an optimizer's candidate that used one stream, a given one) has
    another arena, and reporting it as the serial one made ``arena_vs_serial`` 1.0 beside a smaller arena."""
    s = serial_schedule(graph)
    key = (s.order, s.streams, s.events)
    if (chosen.order, chosen.streams, chosen.events) == key:
        return plans[key]
    if plans.get(key) is not None:   # (None: its bound was over a memory budget, never solved)
        return plans[key]
    if not _exact(solver, options):
        return solve_schedule(graph, s, solver, options, t0=t0)
    try:
        return solve_schedule(graph, s, "auto", replace(options, time_limit=None), t0=t0)
    except KeyboardInterrupt:
        # after the exact solve, a Ctrl-C in this one for the report (its small search, ``auto.polish``) lost the plan
        # that the solve's own Ctrl-C keeps: greedy's serial arena (one pass) stands in, and the plan says interrupted
        return _interrupted(solve_schedule(graph, s, "greedy", replace(options, time_limit=None), t0=t0), True)


def _with_marks(made: Plan, solved: Iterable[Plan | None], *, cut: bool = False, late: bool = False) -> Plan:
    """``made`` marked ``stopped`` (its solver block) where the wall clock stopped any solve this plan read, and
    ``interrupted`` where a Ctrl-C cut one: a memory budget's probe of another candidate schedule (which then did
    not fit, so another was chosen), the first schedule's or the serial one's plan the report quotes. Why: such a
    plan may not repeat, as one whose own solve was stopped, and its block said nothing (a small search,
    ``auto.POLISH_WALL``, stopped in one candidate's probe chose another schedule with no word of it). ``cut``: a
    Ctrl-C ended an exact solve of the budget's search; ``late``: the budget's wall-clock stop (``_budget_wall``)
    left candidates to the heuristics (``stopped: wall_clock``)."""
    made_ = [p for p in solved if p is not None]
    stopped = "wall_clock" if late else made.solver.get("stopped") or next(
        (p.solver["stopped"] for p in made_ if p.solver.get("stopped")), None)
    cut = cut or bool(made.solver.get("interrupted")) or any(p.solver.get("interrupted") for p in made_)
    marks = {**({"stopped": stopped} if stopped else {}), **({"interrupted": True} if cut else {})}
    return made if all(made.solver.get(k) == v for k, v in marks.items()) else replace(
        made, solver={**made.solver, **marks})


def _r(x: float) -> float:
    return round(float(x), 3)


def _schedule_block(graph: Graph, cands, chosen, first: Plan, result: Plan, serial_arena: int, *, streams,
                    schedule_given: bool, memory_budget, max_events, budget_from: str | None = None) -> dict[str, Any]:
    """The solver block's ``"schedule"`` entry: deterministic numbers only (no wall clock). ``memory_budget_from``
    follows ``memory_budget`` only where ``budget_from`` is given: plans with the caller's own budget, or none,
    stay byte for byte what they were."""
    ms = cands.makespan(graph, chosen.schedule)
    if cands.method == "graph_optimize":
        block: dict[str, Any] = {"method": "graph_optimize", "concurrent_arena_bytes": first.arena_bytes,
                                 "concurrent_makespan_us": _r(cands.makespan(graph, cands.first.schedule)),
                                 "forks_given_back": chosen.forks_serialised, "candidate": chosen.name}
    else:
        block = {"method": cands.method, "concurrent_arena_bytes": first.arena_bytes, "concurrent_makespan_us": _r(ms),
                 "forks_given_back": 0, "candidate": chosen.name}
    serial_us = cands.serial_us
    block.update({
        "streams_requested": streams if streams is not None else (1 if not schedule_given else None),
        "memory_budget": memory_budget,
        **({"memory_budget_from": budget_from} if budget_from is not None else {}),
        "max_events": max_events,
        "event_us": _r(cands.event_us),
        "makespan_us": _r(ms),
        "serial_makespan_us": _r(serial_us),
        "speedup": round(serial_us / ms, 4) if ms > 0 else 1.0,
        "serial_arena_bytes": int(serial_arena),
        "arena_vs_serial": round(result.arena_bytes / serial_arena, 4) if serial_arena else 1.0,
    })
    return block


# ---- several devices ---------------------------------------------------------------------------------

def _plan_devices(graph: Graph, n: int, solver: str, options: SolveOptions, t0: float, *, streams, max_events,
                  cost_model, device_capacity) -> Planned:
    from .devices.split import device_capacities, over_capacity, split_with_serial
    from .optimize.cost import CostModel, event_latency, node_costs, total_us
    from .optimize.streams import schedule_makespan
    from .solvers import check_solver_name

    # the solver's name before any work reads it, as ``_plan_one_device`` checks it: an array (``==`` elementwise) was
    # numpy's raw "truth value of an array is ambiguous" here, and a list the split's whole work before "unknown solver"
    check_solver_name(solver)
    if solver == "ggml" and n > 1:
        # before the split: the solver refused it only after all of it, as "this problem has several streams",
        # to a user who had asked for none
        raise SolverError(f"solver 'ggml' plans one serial stream, and a split over {n} devices has several: each "
                          "device's own, and its COPY nodes write the next device's arena from the sending device's "
                          "stream (use greedy, size, search or cpsat)")
    caps = device_capacities(device_capacity, n)
    serial: frozenset[int] = frozenset()
    low: frozenset[int] = frozenset()
    # each device's last problem and solution: a round that gives back one device's concurrency or order solved
    # every device again (2 n + 1 solves of each in the worst case), where only the problems that changed need it
    solved: dict[int, tuple[BufferProblem, Solution]] = {}
    cut = False   # a Ctrl-C ended a device's exact solve: the rounds after it get the default's heuristics
    while True:
        split = split_with_serial(graph, n, cost_model=cost_model, device_capacity=device_capacity, streams=streams,
                                  max_events=max_events, serial_devices=serial, low_memory_devices=low)
        g = split.graph
        # after a Ctrl-C the next round is the default's heuristics, as the devices after it in its own round: solved
        # in full with the work budget, a round lost the Ctrl-C (and the plan said nothing of it)
        how, opts = ("auto", replace(options, time_limit=None)) if cut else (solver, options)
        result = solve_schedule(g, split.schedule, how, opts, split=split, t0=t0,
                                solved=solved if _repeatable(solver, options) else None)
        cut = cut or bool(result.solver.get("interrupted"))
        over = _over_capacity(result, split, caps)
        # a device over its capacity on several streams gives its concurrency back (runs serially), as a
        # ``memory_budget`` does on one device (which the error for it with devices > 1 says to use this for): the
        # concurrent arena can be larger than the serial one, and a capacity the serial one fits was refused
        more = frozenset(d for d in over if split.stream_ranges[d][1] - split.stream_ranges[d][0] > 1) - serial
        if more:
            serial |= more
            continue
        # then a serial device over it runs its stage in a low-memory order, as ``memory_budget`` does on one device:
        # the listed order was refused where that one fits (moe on 2 devices at 1 B under its listed order's need)
        more = frozenset(over) - low
        if not more:
            break
        low |= more
    if over and cut:   # a Ctrl-C stopped the exact solves before every device fitted: the caller's stop, not "over"
        raise KeyboardInterrupt
    for d in over[:1]:
        arena, weights = result.device_arena_bytes[d], split.weight_bytes[d]
        raise BudgetError.of(over_capacity(d, weights, arena, caps[d]) + _given_back(d in serial, d in low),
                             device_capacity=caps[d])
    model = cost_model if cost_model is not None else CostModel()
    block = dict(result.solver)
    if cut:   # (the round that met the Ctrl-C may have been given back: its devices solved again)
        block["interrupted"] = True
    seconds = block.pop("seconds")
    block["split"] = {
        "balance": round(split.balance, 4),
        "copies": split.copies,
        "copy_bytes": split.copy_bytes,
        "cross_device_events": len(split.cross_events),
        "makespan_us": round(schedule_makespan(g, split.schedule, node_costs(g, model), event_latency(model)), 3),
        "serial_makespan_us": round(total_us(node_costs(graph, model)), 3),
        "event_us": _r(event_latency(model)),   # what ``simulate`` reproduces the makespan with
    }
    if serial:   # (only then: plans whose devices all fit as asked stay byte for byte what they were)
        block["split"]["serial_devices"] = sorted(serial)
    if low:
        block["split"]["low_memory_devices"] = sorted(low)
    block["seconds"] = seconds
    return Planned(g, replace(result, solver=block), split)


def _repeatable(solver: str, options: SolveOptions) -> bool:
    """Whether solving one problem again with these options gives the same solution, so that a device whose problem
    did not change may keep its solution: the heuristics, the default's short search, and ``search`` (its time limit
    is a node budget; a solve its wall-clock stop ended, ``info["stopped"]``, is solved again): not ``cpsat``'s or
    ``auto``'s timed work, which a second run may end elsewhere (``_exact``)."""
    return solver == "search" or not _exact(solver, check_options(options))   # (named, not an AttributeError)


def _given_back(serial: bool, low: bool) -> str:
    """What a device refused for its capacity already gave back: its concurrency (``serial``), then its listed
    order (``low``: planned in a low-memory serial order), so that the numbers quoted are read as those of it."""
    if low:
        return f" (on one stream in a low-memory order, tried after {'its concurrent schedule and ' * serial}its listed one)"
    return " (on one stream: its concurrency given back)" if serial else ""


def _over_capacity(result: Plan, split, caps: tuple[int, ...] | None) -> list[int]:
    """The devices whose weights plus arena exceed their capacity, in device order (none without capacities)."""
    if caps is None:
        return []
    return [d for d, (arena, weights) in enumerate(zip(result.device_arena_bytes, split.weight_bytes))
            if arena + weights > caps[d]]
