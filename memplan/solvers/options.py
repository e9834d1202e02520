"""Options shared by every solver; heuristics ignore the ones they have no use for.

Why budgets are work, not seconds: a solve cut by the wall clock depends on the machine and its load,
so the same input would give different plans run to run. ``time_limit`` is therefore turned into a
deterministic work budget (search nodes, CP-SAT's deterministic time) calibrated to take about that
many seconds here; the wall clock (``wall_limit``) is only a safety stop, and a solve it stops says so
(``info["stopped"] == "wall_clock"``) because that plan may not repeat.
"""

from __future__ import annotations

import contextvars
import math
import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from fractions import Fraction

import numpy as np

from ..errors import SolverError, as_int, named_fields, plain_bool, plain_int, uncallable_with
from ..errors import short_repr as _short
from ..problem import Solution

#: the longest time limit accepted (about 31 years: beyond it is a typo, not a budget)
MAX_SECONDS = 1e9
#: CP-SAT workers
MAX_WORKERS = 1024
#: seeds are below 2**31 (CP-SAT's random_seed is an int32)
SEED_LIMIT = 1 << 31
#: the rules of ``time_limit`` / ``wall_limit``, ``workers`` and ``seed``, in the words of every refusal: the
#: CLI's ``--time-limit``, ``--workers`` and ``--seed`` (``argtypes``) check the same bounds with the same text
SECONDS_RULE = f"a number of seconds above 0 and at most {MAX_SECONDS:g}"
WORKERS_RULE = f"an integer in 1..{MAX_WORKERS}"
SEED_RULE = "an integer in 0..2**31-1"
#: ``SearchParams`` bounds: each preorder is a copy of the search state; each rung a try per round;
#: node counts fit an int64 however long the time limit
PREORDER_LETTERS = "WATZ"
MAX_PREORDERS = 16
MAX_RUNGS = 1024
MAX_NODES = (1 << 63) - 1
MAX_NODES_PER_SECOND = 10 ** 9


class Objective(str, Enum):
    """MINIMIZE: the smallest arena. FIT: the first packing within ``problem.capacity``."""

    MINIMIZE = "minimize"
    FIT = "fit"


@named_fields
@dataclass(frozen=True)
class SearchParams:
    """The exact search's switches, one per idea (as minimalloc's ``SolverParams``); defaults are the
    tuned setting. Turning one off is for measuring what it buys, never for correctness."""

    #: the static preorders searched side by side: W width, A area, T largest section total, Z size
    preorders: tuple[str, ...] = ("WAT", "TAW", "TWA")
    #: each round first tries the proven bound with a doubling node budget (and the opening's shots at the bound:
    #: ``opening``)
    bound_first: bool = True
    #: where the work budget affords only a few descents, the solve opens with shots of one preorder at a time, each of
    #: one descent's work, at the bound and one below the best (``search.FEW_DESCENTS``)
    opening: bool = True
    #: on problems of ``search_tree.FRONT_MIN_BUFFERS`` buffers or more, the opening repairs the best packing (its top
    #: buffers searched again, the rest kept: ``search_repair``) before its shots below the best
    repair: bool = True
    #: random capacities tried per round of the ladder, besides one below the best
    ladder_rungs: int = 8
    #: randomised restarts with perturbed preorder scores (node budget each, at least 4 per buffer)
    restarts: bool = True
    restart_nodes: int = 3000
    restart_jitter: float = 0.3
    #: a buffer with no unplaced neighbour that failed ends its siblings' tries too
    hatless_pruning: bool = True
    #: once no unplaced buffer spans a time cut, both sides are solved apart
    dynamic_decomposition: bool = True
    #: a node whose state (its subproblem's unplaced buffers and their minimum offsets) a failed subtree already
    #: searched from the same or a lower (offset, position) fails at once (``search_tree.PackingSearch._search``)
    memo: bool = True
    #: where nothing fits the capacity yet (``SolveOptions`` with a capacity the start passes), once each preorder's tree
    #: has searched ``search.FOCUS_AFTER_DESCENTS`` descents' nodes, the tree furthest into a packing (the most area
    #: placed at once) takes ``search.FOCUS_TURNS`` turns to each other tree's one (``search._round_robin``)
    focus: bool = True
    #: in the opening (``search.FEW_DESCENTS``), a preorder's shot below the best that packed a small step
    #: (``search.SMALL_STEP``) hands over to the next preorder while one has yet to shoot at the bound
    handover: bool = True
    #: on interval problems, a node whose child's subtree failed after ``search_tree.PROBE_AFTER_NODES`` nodes or more
    #: searches the sections on either side of that child's buffer apart, its buffers cut to them (a relaxation: fewer
    #: conflicts); where one side has no packing, the node fails, and so does each ancestor whose buffer lies outside
    #: that side (``search_tree.PackingSearch._side_proof``)
    side_proofs: bool = True
    #: side proofs on HB-filtered problems too (multi-stream graphs, in-place pairs): a side's buffers keep exactly
    #: their conflicts (``search_tree.PackingSearch._side_compatible``)
    hb_side_proofs: bool = False
    #: after a try of the three preorders packs (under a budget of work), the preorder whose tree packed shoots alone one
    #: below the new best arena, with as much work as that try took, for as long as its shots pack
    #: (``search._Minimiser.chase``)
    chase: bool = True
    #: work units per second of ``time_limit`` (the deterministic work budget), each ``search_tree.WORK_NS_PER_UNIT``
    #: estimated nanoseconds (a nominal node of 100 us; the name is from when a unit was one node). Why 12,000: the
    #: estimate (``search_tree.WORK_NODE`` ...) reads ~0.8 of the CPU it measures on most problems here, so the search
    #: lands at 0.8-1.35x its limit in CPU on the minimalloc set, tiled minimalloc problems, random interval problems and
    #: layered / random graphs on 1-4 streams (it was 1.1-2.2x on minimalloc A-I, up to 6x on tiled ones)
    nodes_per_second: int = 12_000

    def __post_init__(self) -> None:
        """Refuse, naming the field, a value the search would misuse: each switch is read deep inside a solve,
        where ``ladder_rungs=10**9`` drew a billion random capacities per round (a hang), 1.5 was a TypeError
        from ``range``, a preorder letter outside W, A, T, Z was skipped (the buffers taken in index order,
        silently), ``preorders=()`` searched nothing until the wall clock stopped it, and a string
        ``preorders="WAT"`` was three one-letter preorders."""
        order = self.preorders
        if isinstance(order, list):
            order = tuple(order)
            object.__setattr__(self, "preorders", order)
        if not isinstance(order, tuple) or not 1 <= len(order) <= MAX_PREORDERS:
            raise SolverError(f"SearchParams.preorders must be a tuple of 1..{MAX_PREORDERS} preorders such as "
                              f"('WAT', 'TAW'), not {_short(order)}")
        for key in order:
            if (not isinstance(key, str) or not key or set(key) - set(PREORDER_LETTERS)
                    or len(set(key)) != len(key)):
                raise SolverError(f"SearchParams.preorders: {_short(key)} is not a preorder (letters of "
                                  f"{PREORDER_LETTERS!r}, each at most once: W width, A area, T section total, Z size)")
        if len(set(order)) != len(order):
            raise SolverError(f"SearchParams.preorders: {_short(order)} lists a preorder twice")
        for name in ("bound_first", "opening", "repair", "restarts", "hatless_pruning", "dynamic_decomposition",
                     "memo", "focus", "handover", "side_proofs", "hb_side_proofs", "chase"):
            if not isinstance(getattr(self, name), bool):
                raise SolverError(f"SearchParams.{name} must be True or False, not {_short(getattr(self, name))}")
        for name, lo, hi in (("ladder_rungs", 0, MAX_RUNGS), ("restart_nodes", 1, MAX_NODES),
                             ("nodes_per_second", 1, MAX_NODES_PER_SECOND)):
            v = as_int(getattr(self, name))
            if v is None or not lo <= v <= hi:
                raise SolverError(f"SearchParams.{name} must be an integer in {lo}..{hi}, not "
                                  f"{_short(getattr(self, name))}")
            object.__setattr__(self, name, v)
        j = self.restart_jitter   # any real number, numpy's too (np.float32(0.2) was taken before this check)
        if isinstance(j, (bool, np.bool_)) or not isinstance(j, numbers.Real) or not 0 <= float(j) < math.inf:
            raise SolverError(f"SearchParams.restart_jitter must be a finite number >= 0, not {_short(j)}")
        object.__setattr__(self, "restart_jitter", float(j))


@named_fields
@dataclass(frozen=True)
class SolveOptions:
    """``time_limit``: seconds of work for the exact solvers, as a deterministic budget (None: in ``auto`` the
    heuristics, and on a problem of at most 64 buffers they leave above its bound a short search of a fixed node
    budget (also on one of up to 200 buffers they leave 5% or more above it); a default budget when an exact solver is asked for by name). ``wall_limit``:
    the wall-clock safety stop (default: four times the time limit plus ten seconds; several CP-SAT workers run two
    phases of work, and each has this stop: ``cpsat.work_phases``). ``workers`` and
    ``seed`` make CP-SAT deterministic (several workers: one worker's search, then the interleaved workers' from its
    best, each with the budget: never a larger arena than one worker's); ``progress`` receives one-line progress messages. ``warm_start``: a packing
    of this problem for ``search`` / ``cpsat`` to start from; they start from the smaller of it and the default
    solve's plan (``solvers/start.py``), so the result is never above either (``auto`` ignores it).
    ``default_start``: that default solve's plan of this problem (``solve(problem, "auto")`` with these options less
    the time limit), where the caller already made it: ``search`` / ``cpsat`` take it instead of making it again
    (checked as a warm start is; one of another size is ignored). Why: a memory budget's search solves each
    candidate schedule that way first, and then the chosen one exactly, which ran the same default solve twice."""

    time_limit: float | None = None
    seed: int = 0
    workers: int = 1
    progress: Callable[[str], None] | None = None
    warm_start: Solution | None = None
    default_start: Solution | None = None
    objective: Objective = Objective.MINIMIZE
    wall_limit: float | None = None
    search: SearchParams = field(default_factory=SearchParams)
    fused_groups: bool = False

    def __post_init__(self) -> None:
        for name in ("time_limit", "wall_limit", "workers", "seed"):   # numpy integers as plain ints
            object.__setattr__(self, name, plain_int(getattr(self, name)))
        for name in ("time_limit", "wall_limit"):
            v = getattr(self, name)
            # np.float32(0.5) was "not a number above 0", and Decimal("0.5") too, though Fraction(1, 2) was taken
            if isinstance(v, (np.floating, Fraction, Decimal)) and not (isinstance(v, Decimal) and v.is_snan()):
                v = float(v)   # (a signalling NaN cannot be converted: it stays, and is refused below)
                object.__setattr__(self, name, v)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_SECONDS):
                raise SolverError(f"{name} must be {SECONDS_RULE}, not {_short(v)}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or not 1 <= self.workers <= MAX_WORKERS:
            raise SolverError(f"workers must be {WORKERS_RULE}, not {_short(self.workers)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < SEED_LIMIT:
            raise SolverError(f"seed must be {SEED_RULE}, not {_short(self.seed)}")
        object.__setattr__(self, "fused_groups", plain_bool(self.fused_groups))   # (np.True_ as True)
        if not isinstance(self.fused_groups, bool):
            raise SolverError(f"fused_groups must be True or False, not {_short(self.fused_groups)}")
        if not isinstance(self.search, SearchParams):   # read deep inside the search: an AttributeError there
            raise SolverError(f"search must be a memplan SearchParams, not {type(self.search).__name__} "
                              f"{_short(self.search)}")
        if not isinstance(self.objective, Objective):   # 'fit' is Objective.FIT; 'max' was a silent minimise
            try:
                object.__setattr__(self, "objective", Objective(self.objective))
            except (ValueError, TypeError):
                raise SolverError(f"objective must be one of {', '.join(o.value for o in Objective)}, not "
                                  f"{_short(self.objective)}") from None
        for name in ("warm_start", "default_start"):
            start = getattr(self, name)
            if start is not None and not isinstance(start, Solution):
                raise SolverError(f"{name} must be a memplan Solution or None, not {type(start).__name__}")
        if self.progress is not None and not callable(self.progress):   # first called deep in a solve
            raise SolverError(f"progress must be a callable taking one message or None, not {type(self.progress).__name__}")
        why = uncallable_with(self.progress, 1) if self.progress is not None else None
        if why:   # (lambda: None: a TypeError mid-solve)
            raise SolverError(f"progress must be a callable taking one message or None: {why}")

    def wall_seconds(self, work_seconds: float) -> float:
        """The wall-clock safety stop for a solve given ``work_seconds`` of work."""
        return self.wall_limit if self.wall_limit is not None else 4.0 * work_seconds + 10.0


#: the memory the exact solvers keep per overlapping pair (Python lists and sets), for their refusals' estimate
PAIR_BYTES = 150


def gib(nbytes: int) -> str:
    """``nbytes`` in GiB to one decimal (never "0 GiB" for 850 MB, as a floor division said of 5.7M pairs)."""
    return f"{nbytes / (1 << 30):.1f} GiB"


def share_seconds(work: float, parts: float) -> float:
    """One of ``parts`` equal shares of ``work`` seconds, never 0: a limit as small as floats allow (5e-324)
    divided by two rounds to 0.0, which ``SolveOptions`` refuses as a limit the caller never gave; the
    smallest positive float stops a solver as promptly."""
    return max(work / parts, math.ulp(0.0))


#: (solver, the caller's time limit, the share of it) while ``auto`` runs an exact solver on a share of the limit
_SHARE: contextvars.ContextVar[tuple[str, float, float] | None] = contextvars.ContextVar("memplan_limit_share",
                                                                                        default=None)


@contextmanager
def limit_share(solver: str, limit: float, share: float) -> Iterator[None]:
    """While ``auto`` runs ``solver`` with ``share`` seconds of the caller's ``time_limit=limit`` as its own limit:
    the solver's warnings about its time limit name the caller's (``limit_field``)."""
    token = _SHARE.set((solver, limit, share))
    try:
        yield
    finally:
        _SHARE.reset(token)


def limit_field(own: float, field: str | None = None) -> tuple[str, float]:
    """``(template field, value)`` for an ``UnusedOption`` about a solver's time limit ``own``: ``field`` (default
    ``{time_limit:<own>}``) and ``own``, or, where ``auto`` gave the solver a share of the caller's limit
    (``limit_share``), the caller's limit and a word on the share.

    Why: auto hands each exact solver a share of the limit as that solver's own ``time_limit``, and the solver's
    warning named that: ``memplan plan --time-limit 0.2`` on a problem whose search setup outlasts its share warned
    "--time-limit 0.18 had no effect", a value the user never gave. A context variable, not a warnings filter
    caught and re-issued: the warning is raised where it was, once, under the caller's filters."""
    shared = _SHARE.get()
    if shared is None:
        return (field if field is not None else "{time_limit:" + f"{own:g}" + "}"), own
    solver, limit, share = shared
    return "{time_limit:" + f"{limit:g}" + "}" + f" (auto gave {solver} {share:g}s of it)", limit
