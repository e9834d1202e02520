"""Where the exact solvers start: the best heuristic plan as the arena to beat, and the best bound known.

``search`` and ``cpsat`` both begin from the smaller of the default solve's plan (``auto`` without a time limit)
and the caller's warm start (when it is sized for this problem) where they are called by name, or from the best
plans ``auto`` hands them where it runs them; and from the problem's lower bound raised to any
bound another exact solver of this library already proved (``proven``: ``auto`` runs them one after the
other and hands the first one's bound on). A warm start's own ``info["bound"]`` or ``lower_bound`` is never
read: it is the caller's claim, and a claim above the true optimum made a heuristic packing "OPTIMAL" (the
solve stopped at once, its gap 0) — a status and gap must rest only on bounds this library proved.
Written once here, so that the two prove and compare against the same numbers.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import SolverError, as_int
from ..errors import short_repr as _short
from ..problem import BufferProblem, Solution
from .check import check_solution
from .options import SolveOptions


def best_start(problem: BufferProblem, options: SolveOptions,
               heuristics: tuple[Solution, Solution] | None = None) -> Solution:
    """Where an exact solver starts: the smaller of the default's plan (``default_plan``) and the caller's warm
    start (when it is sized for this problem; the default's on ties), so a named exact solver never ends above
    either. ``heuristics``: greedy's and size's plans, handed on by ``auto``, which runs the exact solvers itself
    with its own best plan as the warm start: then the smallest of those three (the first listed on ties), and no
    default run (it would be ``auto`` inside ``auto``; each of them ran greedy and size again, the larger part of a
    time-limited solve of 20,000 buffers). ``options.default_start``: the default's plan of this very problem where
    the caller already made it (a memory budget's cheap solve of the schedule, ``plan._exact_budget``), used instead
    of running the default again (the same plan: the default is deterministic, its options those of this solve
    without a time limit).

    Why the default's plan beside a caller's start: from the caller's start (and greedy's and size's plans) alone,
    ``solver="search"`` or ``"cpsat"`` with a short time limit ended above the default's arena (44 of 800 seeded
    runs warm-started from greedy's or size's plan, up to 1.12x; session 34 had mended only the case without a
    warm start). The start returned carries the default run's own ``interrupted`` / ``stopped`` marks and no
    others (``started_interrupted``): a caller's start from an earlier interrupted solve is a plan, not a stop."""
    warm = _caller_start(problem, options)
    if heuristics is not None:
        return min([*heuristics, *([warm] if warm is not None else [])], key=lambda c: c.arena)
    default = _checked_start(problem, options.default_start, "default_start") or default_plan(problem, options)
    if warm is None or warm.arena >= default.arena:
        return default
    marks = {k: default.info[k] for k in _RUN_MARKS if k in default.info}
    kept = {k: v for k, v in warm.info.items() if k not in _RUN_MARKS}
    return replace(warm, info={**kept, **marks})


#: the marks a solve's ``info`` carries when its run was cut short (a Ctrl-C, the wall-clock safety stop)
_RUN_MARKS = ("interrupted", "stopped")


def _caller_start(problem: BufferProblem, options: SolveOptions) -> Solution | None:
    """The caller's warm start, checked, where it is sized for this problem (one of another size is ignored)."""
    return _checked_start(problem, options.warm_start, "warm_start")


def _checked_start(problem: BufferProblem, start: Solution | None, name: str) -> Solution | None:
    """``start`` (the option ``name``), checked, where it is sized for this problem (one of another size is ignored).
    Why checked: a caller's packing that overlaps was kept as the plan to beat, then blamed on the solver."""
    if start is None or _length(start.offsets) not in (None, len(problem)):
        return None
    why = _not_integers(start)
    if why:
        raise SolverError(f"{name} is no packing of this problem: {why}")
    try:
        check_solution(problem, start, blame="")
    except SolverError as exc:
        raise SolverError(f"{name} is no packing of this problem: {exc}") from None
    return start


def _length(offsets) -> int | None:
    """``len(offsets)``, or None where it has none (a number: ``_not_integers`` names it)."""
    try:
        return len(offsets)
    except TypeError:
        return None


def _not_integers(warm: Solution) -> str | None:
    """Why a caller's ``warm`` start holds no byte offsets and arena, or None: the offsets one integer a buffer
    (a 1-D sequence of ints, not floats, strings or bools), the arena an int. Why: the check every solver's output
    passes reads offsets as int64, so a float ``16.9`` was taken as 16, strings as the numbers they spell, and a
    column of shape (n, 1) or an arena ``"32"`` was refused as "returned 2 offsets for 2 buffers" or "reported
    arena 32, but its offsets span 32 (a solver bug)", blaming a solver for the caller's start."""
    try:
        off = np.asarray(warm.offsets)
    except Exception:   # (a ragged list, an object numpy cannot take)
        return f"its offsets {_short(warm.offsets)} are no sequence of integers"
    if off.ndim != 1:
        return f"its offsets have shape {off.shape}: one integer a buffer is needed"
    if off.size and (off.dtype == bool or not (np.issubdtype(off.dtype, np.integer)
                                               or (off.dtype == object and all(as_int(v) is not None for v in off)))):
        return f"its offsets are {off.dtype} {_short(off.tolist())}, not integers (byte offsets)"
    if as_int(warm.arena) is None:
        return f"its arena is {_short(warm.arena)}, not an integer byte count"
    return None


def default_plan(problem: BufferProblem, options: SolveOptions) -> Solution:
    """The default solve's plan (``auto`` without a time limit: greedy's and size's best, buffers of alignment
    slack lifted to the top, a small problem searched a little, in-place pairs joined), where an exact solver is
    called by name (beside the caller's warm start, ``best_start``). Why: from greedy's and size's plans alone, ``solver="search"`` or
    ``"cpsat"`` with a short time limit ended above ``plan(graph)`` (212 of ~1,200 runs of round 34's sweep, e.g.
    5,549 bytes against 5,508): naming an exact solver and giving it time must never buy a larger arena than
    naming none. Not when ``auto`` calls them: it hands its own plans on (``heuristics`` or ``warm_start``).
    A Ctrl-C in the default's small search (``auto.polish``) comes back as its plan so far, ``info["interrupted"]``
    set (``started_interrupted``): raised, it lost the plan that ``auto`` with the same time limit keeps."""
    from .auto import solve as auto

    return auto(problem, replace(options, time_limit=None, warm_start=None, default_start=None), keep_interrupt=True)


def started_interrupted(start: Solution, options: SolveOptions,
                        heuristics: tuple[Solution, Solution] | None = None) -> bool:
    """Whether a Ctrl-C ended the ``default_plan`` run that made ``start`` (``best_start`` with the same arguments):
    the exact solver then keeps it and says so, as after a Ctrl-C in its own work, instead of spending its time
    limit after the caller's stop. A caller's warm start marked ``interrupted`` (an earlier solve's) is no stop of
    this one: only the default's own mark counts."""
    return heuristics is None and bool(start.info.get("interrupted"))


def started_stopped(start: Solution, options: SolveOptions,
                    heuristics: tuple[Solution, Solution] | None = None) -> bool:
    """Whether the wall clock stopped the ``default_plan`` run that made ``start`` (its small search's safety stop,
    ``auto.POLISH_WALL``): the exact solver's plan grew from that start, so it may not repeat either and says so
    (``info["stopped"]``), as a plan its own safety stop cut does."""
    return heuristics is None and bool(start.info.get("stopped"))


def known_bound(problem: BufferProblem, proven: int = 0) -> int:
    """The problem's lower bound, or the larger one another exact solver of this library proved for it
    (``proven``, from ``auto``; never a caller's warm start, whose bound is only a claim)."""
    return max(int(problem.lower_bound or 0), int(proven))
