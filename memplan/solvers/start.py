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

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace

import numpy as np

from ..errors import SolverError, as_int
from ..errors import short_repr as _short
from ..problem import BufferProblem, Solution
from .check import check_solution
from .options import SolveOptions


def best_start(problem: BufferProblem, options: SolveOptions,
               heuristics: tuple[Solution, Solution] | None = None) -> Solution:
    """Where an exact solver starts: the smaller of the default's plan (``options.default_start``: ``named.default_plan``) and the caller's warm
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
    default = _checked_start(problem, options.default_start, "default_start")
    if default is None:   # (the named solvers get it: ``named.started``; ``auto`` hands ``heuristics``)
        raise SolverError("an exact solver needs a start: call it through memplan.solvers.solve or get_solver, "
                          "which run the default solve first")
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
    """``start`` (the option ``name``), checked, where it is sized for this problem (one of another size is ignored),
    its offsets as int64 and its arena a plain int (``_integer_start``). Why checked: a caller's packing that
    overlaps was kept as the plan to beat, then blamed on the solver."""
    if not sized_for(problem, start):
        return None
    start = _integer_start(start, name)
    try:
        check_solution(problem, start, blame="")
    except SolverError as exc:
        raise SolverError(f"{name} is no packing of this problem: {exc}") from None
    return start


def sized_for(problem: BufferProblem, start: Solution | None) -> bool:
    """Whether ``start`` is a start of this problem's size (one of another size is ignored, not refused)."""
    return start is not None and _length(start.offsets) in (None, len(problem))


def _length(offsets) -> int | None:
    """``len(offsets)``, or None where it has none (a number: ``_offsets_of`` names it) or is no flat sequence of
    offsets (a string, bytes, a dict or a set, whose length says nothing of how many buffers it places: a string of
    7 characters was ignored as a start of another size; an array or list of rows, whose length counts rows: a
    start of shape (1, n) for n buffers was ignored as a start of one buffer, so the solver silently started
    without it, where ``_offsets_of`` names its shape)."""
    if isinstance(offsets, (str, bytes, bytearray, Mapping, AbstractSet)):
        return None
    if isinstance(offsets, np.ndarray) and offsets.ndim != 1:
        return None
    try:
        n = len(offsets)
    except TypeError:
        return None
    if (not isinstance(offsets, np.ndarray) or offsets.dtype == object) and any(_is_row(v) for v in offsets):
        return None   # (an object array holds rows as a list does: ragged ones, which numpy cannot stack)
    return n


def _is_row(value) -> bool:
    """Whether one entry of a caller's offsets is itself a sequence (a row of a nested list), not an offset."""
    return isinstance(value, np.ndarray) and value.ndim > 0 or isinstance(value, (list, tuple))


#: every byte offset and count of a plan lies below it (docs/format.md "Limits")
_INT64 = 1 << 63


def _integer_start(warm: Solution, name: str) -> Solution:
    """``warm`` with its offsets as an int64 array and its arena as a plain int; SolverError naming the option ``name`` where
    they are no integers (a 1-D sequence of ints, not floats, strings or bools, each below 2**63; the arena an int).
    Why: the check every solver's output passes reads offsets as int64, so a float ``16.9`` was taken as 16, strings
    as the numbers they spell, and a column of shape (n, 1) or an arena ``"32"`` was refused as "returned 2 offsets
    for 2 buffers" or "reported arena 32, but its offsets span 32 (a solver bug)", blaming a solver for the caller's
    start."""
    offsets = _offsets_of(warm.offsets)
    arena = as_int(warm.arena)
    why = offsets if isinstance(offsets, str) else None if arena is not None else \
        f"its arena is {_short(warm.arena)}, not an integer byte count"
    if why:
        raise SolverError(f"{name} is no packing of this problem: {why}")
    return replace(warm, offsets=offsets, arena=arena, info=_info_of(warm.info, name))


def _info_of(info, name: str) -> dict:
    """A caller's start's ``info`` as a dict (None: none); SolverError naming the option ``name`` where it is no
    mapping. Why: the start's info is read for its run marks (``interrupted``, ``stopped``: ``best_start``,
    ``started_interrupted``), so a ``default_start`` with ``info=None`` or a list, or a ``warm_start`` so that beat
    the default's plan, failed deep in the solver with a raw AttributeError."""
    if info is None:
        return {}
    if not isinstance(info, Mapping):
        raise SolverError(f"{name}'s info must be a dict (or None), not {type(info).__name__} {_short(info)}")
    return dict(info)


def _offsets_of(offsets) -> np.ndarray | str:
    """The caller's ``offsets`` as int64, one a buffer, or why they are none. Each value is read on its own
    (``as_int``) unless it comes as an integer array: numpy reads a list of an int64 beside a uint64 (or beside
    a plain int) as floats, and one of 2**63 as a float or no C long, so integers were refused as "float64" and a
    large one raised a raw OverflowError; a uint64 array of 2**63 wrapped around to a "negative offset"."""
    if isinstance(offsets, np.ndarray) and offsets.dtype != object:
        array = offsets
        if array.ndim == 1 and (array.dtype == bool or not np.issubdtype(array.dtype, np.integer)):
            return f"its offsets are {array.dtype} {_short(array.tolist())}, not integers (byte offsets)"
    else:
        try:   # (object: no promotion; a ragged list, an object numpy cannot take, raise)
            array = np.asarray(offsets, dtype=object)
        except Exception:
            return f"its offsets {_short(offsets)} are no sequence of integers"
    if array.ndim == 0:   # (a dict, set, string, bytes or generator: "its offsets have shape ()" named no shape given)
        return (f"its offsets are {type(offsets).__name__} {_short(offsets)}, not a sequence of integers (a list, tuple "
                "or 1-D array: one byte offset a buffer, in the problem's order)")
    if array.ndim != 1:
        return f"its offsets have shape {array.shape}: one integer a buffer is needed"
    values = [as_int(v) for v in array.tolist()]
    if any(v is None for v in values):
        return f"its offsets are {_short(array.tolist())}, not integers (byte offsets)"
    big = next((i for i, v in enumerate(values) if not -_INT64 <= v < _INT64), None)
    if big is not None:
        return f"its offset {values[big]} (buffer #{big}) is outside int64 (every byte offset lies below 2**63)"
    return np.asarray(values, dtype=np.int64)


def started_interrupted(start: Solution, options: SolveOptions,
                        heuristics: tuple[Solution, Solution] | None = None) -> bool:
    """Whether a Ctrl-C ended the ``named.default_plan`` run that made ``start`` (``best_start`` with the same arguments):
    the exact solver then keeps it and says so, as after a Ctrl-C in its own work, instead of spending its time
    limit after the caller's stop. A caller's warm start marked ``interrupted`` (an earlier solve's) is no stop of
    this one: only the default's own mark counts."""
    return heuristics is None and bool(start.info.get("interrupted"))


def started_stopped(start: Solution, options: SolveOptions,
                    heuristics: tuple[Solution, Solution] | None = None) -> bool:
    """Whether the wall clock stopped the ``named.default_plan`` run that made ``start`` (its small search's safety stop,
    ``auto.POLISH_WALL``): the exact solver's plan grew from that start, so it may not repeat either and says so
    (``info["stopped"]``), as a plan its own safety stop cut does."""
    return heuristics is None and bool(start.info.get("stopped"))


def known_bound(problem: BufferProblem, proven: int = 0) -> int:
    """The problem's lower bound, or the larger one another exact solver of this library proved for it
    (``proven``, from ``auto``; never a caller's warm start, whose bound is only a claim)."""
    return max(int(problem.lower_bound or 0), int(proven))
