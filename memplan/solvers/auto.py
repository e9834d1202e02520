"""The default: every fast heuristic first; with a time limit, the exact solvers after them.

Without ``options.time_limit`` this is the heuristics only (greedy, size; the smallest arena wins,
ties to the first listed, then ``slack_on_top`` may lift one buffer to the top) — fast and deterministic.
With a time limit, and only while the best plan
is above the proven bound, the exact solvers follow, each warm-started with the best plan so far:
on interval problems the minimalloc-style ``search`` first (90% of the time; it proves interval
packings that CP-SAT cannot) and CP-SAT on what is left; on multi-stream or in-place problems
CP-SAT first (60%; it states HB-filtered conflicts as they are and proves bounds), then the search.
So the result is never worse than the best heuristic, and the proven bound is the largest any of
them proved. Asked only to fit a capacity (``Objective.FIT``), it returns as soon as a packing fits.
Whatever ran, in-place pairs the chosen plan left apart are joined last where their bytes are free
(``rejoin.rejoin_inplace``: the arena stays, a runtime saves a copy per pair).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import BudgetError, SolverError, from_callback
from ..problem import BufferProblem, Solution, Status, align_up, arena_of
from .options import Objective, SolveOptions, share_seconds
from .placement import first_fit
from .rejoin import rejoin_inplace

HEURISTICS = ("greedy", "size")
#: With at least this many in-place pairs ``size`` is skipped once an earlier heuristic's arena meets the proven
#: bound: it could only tie, and a tie keeps the earlier plan. (Added when size scanned every placed buffer
#: beside each pair, 7 s for one node overwriting 8,000 inputs; that placement is now near-linear, and the skip
#: stays so that plans, whose solver block lists the heuristics tried, read as before.)
SIZE_SKIP_PAIRS = 4096
#: ``slack_on_top`` re-packs every buffer against its conflicting ones, about a second ``size`` run, to save under
#: one alignment: above this many conflicting pairs it is skipped. (Unbounded, it doubled the default solve of an
#: interval problem of 100,000 buffers and 3 million pairs, 3 s to 6 s, for no byte; at this many it costs about
#: 15 ms. The misses it mends were on graphs of a few dozen nodes.)
SLACK_PAIRS = 1 << 14


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
    if best.arena > lb:
        best = slack_on_top(problem, best) or best
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
    best = rejoin_inplace(problem, best) or best   # the arena is settled: join in-place pairs it left apart
    extra = {k: v for k, v in best.info.items() if k not in ("bound", "gap")}
    return Solution(best.offsets, best.arena, best.solver, status, int(bound), {**extra, **info, "tried": tried})


def slack_on_top(problem: BufferProblem, sol: Solution) -> Solution | None:
    """``sol`` with its buffer of most alignment slack moved to the top, when that ends the arena lower; else None.

    Why: offsets are aligned, so a buffer whose size is not a multiple of the alignment leaves its slack
    (``align_up(size) - size``) unused below whatever sits above it, and the arena ends where its top buffer
    ends. Greedy and size put the largest buffers lowest: a 1110-byte output under a 256-byte one at
    alignment 256 ends at 1536 where 256 + 1110 = 1366 bytes do (session 32 measured every default plan of
    small random graphs against the exhaustive optimum: most misses were only this). The other buffers are
    packed again first-fit in the order of their offsets (no offset rises), then that buffer first-fit.
    Kept only when the arena shrinks and stays within the same aligned top (``align_up(arena)``), so the
    result ends within one alignment of ``sol``'s: ``heuristics_over`` relies on it. Deterministic; nothing is
    done where no buffer has slack, or the top one already has the most, or listing the conflicting pairs
    would cost more than the heuristics did (``size.dense_route``), or more than the alignment it can save is
    worth (over ``SLACK_PAIRS`` conflicting pairs)."""
    from .size import dense_route

    n, align = len(problem), problem.alignment
    sizes = problem.sizes.astype(np.int64)
    slack = align_up(sizes, align) - sizes
    top = align_up(sol.arena, align)
    if (n == 0 or int(slack.max()) <= top - sol.arena or dense_route(problem) != "pairs"
            or len(problem.conflict_pairs()[0]) > SLACK_PAIRS):
        return None
    lifted = int(np.argmax(slack))   # the first buffer of the most slack
    offsets = np.asarray(sol.offsets, dtype=np.int64)
    bounds, flat = problem.conflict_csr()
    size_list = sizes.tolist()
    order = [i for i in np.lexsort((np.arange(n), offsets)).tolist() if i != lifted and size_list[i] > 0] + [lifted]
    # plain lists: indexing numpy arrays element by element in this loop cost several times the loop itself
    new = [0] * n
    placed = [False] * n
    for i in order:
        blocks = [(new[j], new[j] + size_list[j]) for j in flat[bounds[i]:bounds[i + 1]] if placed[j]]
        new[i] = first_fit(blocks, size_list[i], align)
        placed[i] = True
    packed = np.asarray(new, dtype=np.int64)
    arena = arena_of(problem, packed)
    if arena >= sol.arena or align_up(arena, align) != top:
        return None
    return replace(sol, offsets=packed, arena=arena, info={**sol.info, "slack_top": int(sol.arena)})
