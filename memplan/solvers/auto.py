"""The default: every fast heuristic first; with a time limit, the exact solvers after them.

Without ``options.time_limit`` this is the heuristics only (greedy, size; the smallest arena wins,
ties to the first listed) — fast and deterministic. With a time limit, and only while the best plan
is above the proven bound, the exact solvers follow, each warm-started with the best plan so far:
on interval problems the minimalloc-style ``search`` first (90% of the time; it proves interval
packings that CP-SAT cannot) and CP-SAT on what is left; on multi-stream or in-place problems
CP-SAT first (60%; it states HB-filtered conflicts as they are and proves bounds), then the search.
So the result is never worse than the best heuristic, and the proven bound is the largest any of
them proved. Asked only to fit a capacity (``Objective.FIT``), it returns as soon as a packing fits.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import BudgetError, SolverError, from_callback
from ..problem import BufferProblem, Solution, Status
from .options import Objective, SolveOptions, share_seconds

HEURISTICS = ("greedy", "size")
#: With at least this many in-place pairs ``size`` is skipped once an earlier heuristic's arena meets the proven
#: bound: it could only tie, and a tie keeps the earlier plan. (Added when size scanned every placed buffer
#: beside each pair, 7 s for one node overwriting 8,000 inputs; that placement is now near-linear, and the skip
#: stays so that plans, whose solver block lists the heuristics tried, read as before.)
SIZE_SKIP_PAIRS = 4096


def solve(problem: BufferProblem, options: SolveOptions = SolveOptions()) -> Solution:
    from . import get_solver

    best: Solution | None = None
    tried: dict[str, int] = {}
    made: dict[str, Solution] = {}
    for name in HEURISTICS:
        if (name == "size" and best is not None and best.arena <= int(problem.lower_bound or 0)
                and len(problem.compatible) >= SIZE_SKIP_PAIRS):
            continue
        sol = made[name] = get_solver(name)(problem, options)
        tried[name] = sol.arena
        if best is None or sol.arena < best.arena:
            best = sol
    assert best is not None
    lb = int(problem.lower_bound or 0)
    bound = lb
    info: dict = {}
    cap = problem.capacity
    fit = options.objective == Objective.FIT and cap is not None

    def done() -> bool:
        return best.arena <= bound or (fit and best.arena <= cap)

    # greedy's and size's plans go on to the exact solvers, which start from them and made both again
    handed = {"heuristics": (made["greedy"], made["size"])} if "greedy" in made and "size" in made else {}
    if options.time_limit is not None and not done():
        # interval problems: the search is strongest (section inference is exact there); otherwise
        # CP-SAT states the HB-filtered conflicts as they are and proves bounds, the search follows.
        # Shares of the work budget are fixed (not what the clock left), so the result repeats.
        exact = ("search", "cpsat") if problem.is_interval else ("cpsat", "search")
        first_share = 0.9 if problem.is_interval else 0.6
        for k, name in enumerate(exact):
            if done():
                break
            share = share_seconds(options.time_limit * (first_share if k == 0 else 1.0 - first_share), 1)
            try:
                # the largest bound an exact solver proved so far goes on as ``proven`` (the library's own, passed
                # beside the warm start: a warm start's bound is never read, it may be a caller's claim) -- also
                # when that solver found no better plan (``best.info`` then had no bound, and 0 was handed on)
                sol = get_solver(name)(problem, replace(options, time_limit=share, warm_start=best),
                                       proven=int(bound), **handed)
            except (BudgetError, SolverError) as exc:
                if from_callback(exc):   # the caller's progress callback raised it: theirs, not the solver's
                    raise
                info[f"{name}_error"] = str(exc)
                continue
            tried[name] = sol.arena
            bound = max(bound, int(sol.info.get("bound", sol.lower_bound)))
            if sol.arena < best.arena:
                best = sol
            if sol.info.get("stopped"):
                info["stopped"] = sol.info["stopped"]
            if sol.info.get("interrupted"):
                info["interrupted"] = True
                break
    bound = min(bound, best.arena)
    ran_exact = any(k in tried for k in ("search", "cpsat"))
    status = Status.OPTIMAL if best.arena <= bound else (Status.FEASIBLE if ran_exact else best.status)
    if status == Status.OPTIMAL or "bound" in best.info or options.time_limit is not None:
        info.update({"bound": int(bound), "gap": round((best.arena - bound) / max(best.arena, 1), 6)})
    extra = {k: v for k, v in best.info.items() if k not in ("bound", "gap")}
    return Solution(best.offsets, best.arena, best.solver, status, int(bound), {**extra, **info, "tried": tried})
