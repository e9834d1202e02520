"""Offset solvers over a BufferProblem, and the one checked way to run them.

Each solver module has ``solve(problem, options) -> Solution``; callers use ``solve(problem, name,
options)`` here, which runs it and checks its output once (``check.py``). Solvers never import graphs,
schedules or lifetimes (DESIGN wall): they see sizes, intervals and the conflict relation only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

from ..errors import SolverError, as_int, caller_stacklevel, named_options
from ..errors import short_repr as _short
from ..problem import BufferProblem, Solution, Status, align_up
from .auto import HEURISTICS, exact_parts, exact_spent, polishes, skyline_runs, skyline_within
from .capacity import OverCapacity, alone_over
from .check import check_solution, packs
from .exact_pairs import contract_claim, separate, shifted_pairs, strict_pairs, without_pairs
from .named import default_plan, started
from .options import Objective, SearchParams, SolveOptions, share_seconds
from .placement import ArenaOver
from .unread import warn_stopped, warn_workers_alignment

Solver = Callable[[BufferProblem, SolveOptions], Solution]

SOLVER_NAMES = ("auto", "greedy", "size", "cpsat", "ggml", "search")
#: the solvers that prove bounds and use ``time_limit`` as their work budget
EXACT = ("search", "cpsat")


def check_solver_name(name: object) -> str:
    """``name`` itself, or SolverError naming it when no solver is registered under it (callers that do work before
    they solve check it first: the ATen executor's ``compile`` before its export)."""
    if not isinstance(name, str) or name not in SOLVER_NAMES:   # (a numpy array compared elementwise)
        raise SolverError(f"unknown solver {_short(name)} (choose from {', '.join(SOLVER_NAMES)})")
    return name


def get_solver(name: str) -> Solver:
    """The unchecked solve function registered under ``name`` (imported lazily: cpsat needs ortools); the exact
    ones start from the default solve's plan where their caller hands none (``named.started``)."""
    check_solver_name(name)
    if name == "greedy":
        from .greedy import solve
    elif name == "size":
        from .size import solve
    elif name == "auto":
        from .auto import solve
    elif name == "cpsat":
        from .cpsat import solve

        return partial(started, solve)
    elif name == "ggml":
        from .ggml import solve
    else:
        from .search import check_size, solve

        return partial(started, solve, check=check_size)
    return solve


def check_options(options) -> SolveOptions:
    """``options`` itself, or SolverError naming what it is instead of a SolveOptions."""
    if not isinstance(options, SolveOptions):
        raise SolverError(f"options must be a memplan SolveOptions, not {type(options).__name__} {_short(options)}")
    return options


@named_options
def solve(problem: BufferProblem, solver: str = "auto", options: SolveOptions = SolveOptions()) -> Solution:
    """Offsets for ``problem`` from the named solver, checked once: SolverError names two overlapping
    buffers (a solver bug). A problem with a ``capacity`` (minimalloc's: a packing above it is infeasible) gets a
    packing within it from every solver, whichever the objective (``Objective.FIT``: the first found;
    ``MINIMIZE``: the smallest found), or a BudgetError (``OverCapacity`` where a packing was found above it)
    naming the capacity, the best arena and the lower bound (a heuristic proves nothing: its error says so)."""
    _check_problem(problem)
    # CP-SAT's one thread above an alignment of 2**30 B, said as ``plan`` and ``solve_table`` say it (round 79: said
    # nowhere here, so ``solve(p, "cpsat", SolveOptions(workers=4))`` at 2**31 ran one thread in silence)
    warn_workers_alignment(solver, options, int(problem.alignment), False, "problem")
    sol = _solve(problem, solver, options)
    warn_stopped(sol.info.get("stopped"), solver, options, stacklevel=caller_stacklevel())
    return sol


def solve_marked(problem: BufferProblem, solver: str = "auto", options: SolveOptions = SolveOptions()) -> Solution:
    """``solve`` with a wall-clock stop only marked in the solution's ``info["stopped"]``, not warned of: for a
    caller that gathers several solves into one result and warns of a stop once (``memplan.plan``)."""
    _check_problem(problem)
    return _solve(problem, solver, options)


def _check_problem(problem: object) -> None:
    """SolverError naming what ``problem`` is where it is no BufferProblem (else a TypeError or AttributeError deep
    inside a solver)."""
    if not isinstance(problem, BufferProblem):
        raise SolverError(f"problem must be a memplan BufferProblem, not {type(problem).__name__} {_short(problem)}"
                          + (" (a minimalloc CSV table: pass table.problem())" if hasattr(problem, "problem") else ""))


def solve_from_default(problem: BufferProblem, solver: str, options: SolveOptions, default: Solution) -> Solution:
    """``solve`` with ``default`` as the default solve an exact solver starts from (``options.default_start``), and
    the bound that solve proved (``info["bound"]``) passed on as ``proven``. Only for a default solve the library made
    itself of this very problem: a memory budget's cheap ``auto`` solve (``plan._solve_started``). Why: a
    ``default_start`` alone is taken as a caller's plan, whose bound is a claim (``named.started``), so there the
    proof of that solve's small search was dropped: ``cpsat`` with a short time limit called FEASIBLE under a budget
    the arena it called OPTIMAL without one."""
    options = replace(check_options(options), default_start=default)
    proven = (as_int(default.info.get("bound")) or 0) if solver in EXACT else 0
    return _solve(problem, solver, options, proven)


def _solve(problem: BufferProblem, solver: str, options: SolveOptions, proven: int = 0) -> Solution:
    """``solve``'s work, its arguments checked; ``proven``: a bound the library proved itself (exact solvers)."""
    check_options(options)
    run = get_solver(solver)
    strict = strict_pairs(problem)   # in-place pairs a runtime cannot run in place: conflicts (``exact_pairs``)
    # in-place pairs (``problem.inplace``: a graph's, a kernel writes them) overlap only exactly; a problem listing
    # ``compatible`` pairs alone keeps their meaning (minimalloc's and hand-made problems): any bytes may be shared
    exact = bool(problem.inplace)
    fallback: Solution | None = None
    left: SolveOptions | None = options   # each round's options: what the rounds before left of the limit
    while True:
        if left is None:   # the limit spent: the round is the default solve's plan, which the search starts from
            sol = default_plan(strict, options)
        else:
            opts = _starts_of(problem, strict, left) if strict is not problem else left
            sol = _round(run, strict, opts, proven, stricter=strict is not problem)
        check_solution(strict, sol)
        shifted = shifted_pairs(strict, sol.offsets) if exact else []
        if not shifted:
            break
        moved = separate(strict, sol, shifted)
        if moved is not None and packs(strict, moved):   # outputs overlapped off their inputs: onto them, or
            sol = moved                                      # into free bytes, the same arena
            break
        if fallback is None:
            fallback = _in_place_default(strict, solver, options)
        if left is not None:
            left = _budget_left(strict, solver, left, sol)
        strict = without_pairs(strict, shifted)   # else apart as conflicts, solved again
    if fallback is not None and fallback.arena < sol.arena:
        sol = fallback
    if left is not None and left is not options and "spent" in sol.info:
        # the last round's count, the rounds before it added: what the whole solve spent of the one limit
        sol = replace(sol, info={**sol.info, "spent": _spent_before(solver, options, left) + sol.info["spent"]})
    if strict is not problem:
        sol = contract_claim(problem, sol)
    _check_fits(problem, solver, options, sol)
    if sol.status != Status.OPTIMAL and sol.arena <= int(problem.lower_bound or 0):
        # the arena meets a proven bound: optimal whoever found it (a heuristic said HEURISTIC with gap 0)
        sol = replace(sol, status=Status.OPTIMAL)
    return sol


def _round(run: Solver, strict: BufferProblem, options: SolveOptions, proven: int, *, stricter: bool) -> Solution:
    """``run``'s solution of ``strict``; where ``strict`` is the problem made stricter (``stricter``: in-place pairs
    apart, ``exact_pairs``) and ``run`` refused its capacity (``OverCapacity``: the search's capacity is a hard cap),
    its best packing instead, which ``_solve`` weighs against the default's plan and checks against the capacity of
    the problem itself. Why: the refusal's "none exists" and bound were the stricter problem's: 12 buffers with in-place
    pairs that ``auto`` packs in 426 B were refused at capacity 426 ("none exists; best arena 534, lower bound 492"),
    the search's first plan having shifted a pair and its second solve, with the pair apart, proved 492 of that
    problem alone."""
    try:
        return run(strict, options, proven=proven) if proven else run(strict, options)
    except OverCapacity as exc:
        if not stricter or exc.best is None:
            raise
        return exc.best


def _budget_left(problem: BufferProblem, solver: str, options: SolveOptions, sol: Solution) -> SolveOptions | None:
    """``options`` with the time limit ``sol`` (``solver``'s solve of ``problem`` with them) left, for ``_solve``'s
    next round; None where it left none. Why: each round of the same problem (its shifted in-place pairs apart) ran
    with the caller's whole limit, so ``solve(p, "search", SolveOptions(time_limit=0.05))`` searched 1,200 work units
    of the limit's 600 where two rounds spent theirs (a round per pair set apart: up to that many times the limit);
    ``cpsat`` and ``auto`` with a time limit too (round 79: CP-SAT's second round of 18 buffers at ``time_limit=0.1``
    got 0.1 s again after its first spent 0.018 s). Each solver's own deterministic count says what a round spent
    (``auto.exact_spent``); a solver with no work budget (the heuristics, ``auto`` without a time limit) keeps its
    options. None also where what is left would not search at all (``_searches``): that round would search nothing,
    warning that a limit the caller never gave (``3.5e-18`` s: 0.05 less 600 units' worth) had no effect, or refusing
    a capacity "within a work budget" of it."""
    work = work_seconds(solver, options)
    if work is None:
        return options
    rest = work - exact_spent(problem, solver, options, sol)
    return replace(options, time_limit=rest) if _searches(problem, solver, options, rest) else None


def _spent_before(solver: str, options: SolveOptions, left: SolveOptions) -> float:
    """The seconds of ``options``' time limit that ``_solve``'s rounds before the one given ``left`` spent (what
    ``_budget_left`` took off it)."""
    return float(work_seconds(solver, options) or 0.0) - float(left.time_limit or 0.0)


def _searches(problem: BufferProblem, solver: str, options: SolveOptions, limit: float) -> bool:
    """Whether ``solver`` (an exact one, or ``auto`` with a time limit) searches ``problem`` at all given
    ``time_limit=limit``: the search where its setup leaves one unit of work (``search.search_seconds``), CP-SAT where
    its split leaves a component a share (``cpsat.searches``), ``auto`` where either of them does on its part
    (``auto.exact_parts``)."""
    if limit <= 0:
        return False
    if solver == "search":
        from .search import search_seconds

        return search_seconds(problem, limit) * options.search.nodes_per_second >= 1
    if solver == "cpsat":
        from .cpsat import searches

        return searches(problem, limit)
    return any(_searches(problem, name, options, limit * part) for name, part in exact_parts(problem))


def _in_place_default(problem: BufferProblem, solver: str, options: SolveOptions) -> Solution | None:
    """The default solve's plan of ``problem`` (``named.default_plan``) where it puts every in-place output exactly
    on its input (or apart), for an exact solver (or ``auto`` with a time limit) whose plan shifted a pair that no
    move puts right; None for any other solver, or where that plan shifts one too. Why: the problem was then solved
    again with the pair apart, and every solver does worse there: ``plan(moe(8, 5000), solver="search")`` planned
    76,064 B, ``cpsat`` with a 0.2 s limit on ``moe(6, 1000)`` over 2 streams 19,432 B, against 61,064 B and 15,336 B
    from the default, from which they start (naming an exact solver must never buy a larger arena than naming none).
    The default keeps such a plan (``auto.keeps_pairs``) wherever greedy's or size's is one."""
    if solver not in EXACT and not (solver == "auto" and options.time_limit is not None):
        return None
    default = default_plan(problem, options)
    if default.info.get("interrupted") or shifted_pairs(problem, default.offsets) or not packs(problem, default):
        return None
    return default


def _starts_of(problem: BufferProblem, strict: BufferProblem, options: SolveOptions) -> SolveOptions:
    """``options`` less a warm or default start that packs ``problem`` but not ``strict`` (``problem`` with in-place
    pairs turned into conflicts: ``exact_pairs``): the solve starts without it, as if none was given. A start that
    packs neither is kept, for the solver to refuse or ignore as ever."""
    kept = {}
    for name in ("warm_start", "default_start"):
        start = getattr(options, name)
        if start is None or not packs(problem, start) or packs(strict, start):
            continue
        kept[name] = None
    return replace(options, **kept) if kept else options


def _check_fits(problem: BufferProblem, solver: str, options: SolveOptions, sol: Solution) -> None:
    """``OverCapacity``, naming the capacity, the best arena found and the bound, where ``sol`` ends above
    ``problem.capacity``, whatever the objective; nothing where the problem has no capacity.

    Why every solver: ``search`` raises this itself and ``cpsat`` was checked here, but ``auto``, ``greedy``,
    ``size`` and ``ggml`` returned their plan above the capacity as a success (``solve(problem_with_capacity_200,
    "auto", SolveOptions(objective=Objective.FIT))`` gave arena 250, status OPTIMAL): a caller asking for a fit
    read a plan that does not fit. Why whatever the objective: minimising, ``search`` raised (its capacity is a hard
    cap) while ``cpsat`` and the heuristics returned 12 bytes at capacity 11 as OPTIMAL; the capacity is part of the
    problem (minimalloc's ``Problem.capacity``: a solution above it is infeasible), so one answer for all."""
    cap = problem.capacity
    if cap is None or sol.arena <= cap:
        return
    bound = int(sol.info.get("bound", sol.lower_bound or 0))
    bound = max(bound, int(problem.lower_bound or 0))
    work = work_seconds(solver, options)
    if bound > cap:
        why = " (none exists)" + alone_over(problem, cap)
    elif work is None and solver == "auto":
        why = " by the auto heuristics (they prove nothing: a time limit runs the exact solvers)"
    elif work is None:   # (a time limit changes nothing for greedy, size or ggml: the exact solvers may fit it)
        why = f" by the {solver} heuristic (it proves nothing: the search or cpsat solver may find one)"
    else:
        why = f" within a work budget of {work:g}s"
    raise OverCapacity(f"{solver}: no packing within capacity {cap} found{why}; best arena {sol.arena}, "
                       f"lower bound {min(bound, sol.arena)}", sol)


def work_seconds(solver: str, options: SolveOptions) -> float | None:
    """The seconds of work ``solve(problem, solver, options)`` may spend beyond its heuristics: the time limit, or
    the exact solver's own default without one; None where it runs heuristics only (greedy, size, ggml, auto
    without a time limit). Callers that solve several problems for one plan share this out, so that the plan
    keeps the limit (``memplan.plan``)."""
    if solver == "search":
        from .search import DEFAULT_TIME_LIMIT
    elif solver == "cpsat":
        from .cpsat import DEFAULT_TIME_LIMIT
    elif solver == "auto" and options.time_limit is not None:
        return options.time_limit
    else:
        return None
    return options.time_limit if options.time_limit is not None else DEFAULT_TIME_LIMIT



def heuristics_of(solver: str, options: SolveOptions) -> tuple[str, ...] | None:
    """The heuristics ``solve(problem, solver, options)`` keeps the best of, where it runs nothing else ("greedy",
    "size", "auto" without a time limit); None for any other solver (an exact one, or ggml)."""
    if not isinstance(solver, str):   # (``solve`` names what it is instead)
        return None
    if solver == "auto" and options.time_limit is None:
        return HEURISTICS
    return (solver,) if solver in ("greedy", "size") else None


def heuristics_over(problem: BufferProblem, solver: str, options: SolveOptions, over: int,
                    made: list[Solution] | None = None) -> bool | None:
    """Whether ``solve(problem, solver, options)`` would return an arena above ``over`` bytes, found cheaply:
    True or False where ``solver`` runs heuristics only ("greedy", "size", or "auto" without a time limit,
    which keeps the smaller of greedy's and size's arenas (or of ``skyline``'s walks: ``auto.skyline_runs``), then may lift a buffer or two to the top: ``auto.slack_on_top``,
    and on a small problem search a little: ``auto.polish``), None for any other (an exact solver may still fit)
    and where the wall clock cut auto's whole solve (``_whole_over``: no verdict, the schedule is solved in full).

    Why: a memory budget plans candidate schedules until one fits, and only the one that fits is kept. Each
    heuristic runs with ``over`` (``placement.CappedOffsets``) and stops at the first buffer it places past it,
    usually early: a candidate that does not fit costs a fraction of its solve. Nothing is returned to keep;
    the schedule that fits is solved in full, as before, so the plan is the same.

    ``made``: receives the solution where the verdict came from ``solve(problem, solver, options)`` itself (a problem
    with in-place pairs), for a caller about to solve that very problem so with the same options to take instead of
    solving it again (the same solution: the solve is deterministic). Why: a memory budget's fitting candidate with
    in-place pairs was solved twice in full, once for the verdict and once for its plan."""
    check_options(options)
    names = heuristics_of(solver, options)
    if names is None:
        return None
    if problem.inplace:
        # ``_solve`` moves a packing's in-place output that sits off its input, or solves again with the pair apart,
        # and so may end above or below what the capped heuristics found: the whole solve decides
        sol = _solve(problem, solver, options)
        if made is not None:
            made.append(sol)
        return sol.arena > over
    walked: dict[str, int] = {}   # (skyline's arena, for both verdicts: ``auto.skyline_within``)
    if not _all_over(problem, names, options, over, walked):
        return False
    if names == HEURISTICS and polishes(problem, options):
        # a small problem's search (``auto.polish``) may end anywhere down to the bound: the whole solve decides
        return _whole_over(problem, options, over)
    # auto may still lift buffers to the top (``auto.slack_on_top``), ending within one alignment below the
    # aligned top of the heuristics' best arena: only a best arena up to ``over`` rounded up to the alignment
    # can come back under ``over`` (never when ``over`` is aligned), and then the whole solve decides
    ceiling = align_up(over, problem.alignment)
    if names == HEURISTICS and ceiling > over and not _all_over(problem, names, options, ceiling, walked):
        return _whole_over(problem, options, over)
    return True


def _whole_over(problem: BufferProblem, options: SolveOptions, over: int) -> bool | None:
    """Whether ``auto``'s whole solve ends above ``over`` bytes; None (no verdict) where its wall-clock safety stop
    cut it (``info["stopped"]``: a small search stopped, ``auto.POLISH_WALL``). Why: True dropped the solve, and its
    mark with it, so a memory budget passed over a schedule that an unpaused run fits, and the plan of the schedule
    chosen instead said nothing; with no verdict the schedule is solved in full, and that plan says what stopped it."""
    sol = get_solver("auto")(problem, options)
    if sol.info.get("stopped"):
        return None
    return sol.arena > over


def _all_over(problem: BufferProblem, names: tuple[str, ...], options: SolveOptions, over: int,
              walked: dict[str, int] | None = None) -> bool:
    """Whether every one of the heuristics ``names`` ends above ``over`` bytes (each stopped at its first
    buffer past it)."""
    for name in names:
        try:
            get_solver(name)(problem, options, over=over)
        except ArenaOver:
            continue
        return False
    # auto walks ``skyline`` where both end above the bound: they do here (above ``over``, and a bound over it
    # rejected the problem before), so its walks decide too
    return not (names == HEURISTICS and skyline_runs(problem) and skyline_within(problem, over, walked))


__all__ = ["EXACT", "Objective", "OverCapacity", "SOLVER_NAMES", "SearchParams", "SolveOptions", "Solver", "Status",
           "check_options", "check_solution", "get_solver", "heuristics_of", "heuristics_over", "polishes", "solve",
           "solve_marked",
           "share_seconds", "work_seconds"]
