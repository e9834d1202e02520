"""The solver options a solver never reads, as ``UnusedOption`` warnings: one source for the library and the CLI.

Only the exact solvers (``search``, ``cpsat``; ``auto`` runs both with a ``time_limit``) take a work budget and
draw random numbers, and only CP-SAT runs threads; the heuristics (``greedy``, ``size``, ``ggml``, and ``auto``
without a time limit) make one pass. Why here: ``memplan plan --solver greedy --seed 3`` warned, while
``memplan.plan(g, solver="greedy", seed=3)`` (and ``solve_table``) ignored the option in silence; the command now
prints the library's warning, spelt as flags (``UnusedOption.spelled``), and adds none of its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection

from ..errors import UnusedOption, WallClockStop
from .options import SolveOptions

#: the solvers that read ``time_limit`` and ``seed`` (``auto`` with a ``time_limit`` too)
_EXACT = ("search", "cpsat")
_KNOWN = ("auto", "greedy", "size", "cpsat", "ggml", "search")


def unread_options(solver: object, options: object, given: Collection[str] | None = None) -> list[UnusedOption]:
    """The warnings for ``options`` (a ``SolveOptions``) that ``solver`` never reads: ``time_limit``, ``seed`` and
    ``workers``. ``given``: the names to warn of whatever their value (the command line's ``--seed 0`` was typed,
    though 0 is the default); None warns of those that differ from ``SolveOptions()``'s default, all a library
    caller's value can say. An unknown solver or options that are no ``SolveOptions`` give none (refused, naming
    them, where they are read)."""
    from .auto import POLISH_BUFFERS, POLISH_WIDE_BUFFERS

    if not isinstance(solver, str) or solver not in _KNOWN or not isinstance(options, SolveOptions):
        return []
    limit = options.time_limit
    exact = solver in _EXACT or (solver == "auto" and limit is not None)
    cpsat = solver == "cpsat" or (solver == "auto" and limit is not None)
    where = "with {solver}" + (" without {time_limit:S}" if solver == "auto" else "")
    heuristic = (f"it runs the heuristics, then on a problem of at most {POLISH_BUFFERS} buffers "
                 f"(up to {POLISH_WIDE_BUFFERS} where they end 5% or more above its bound) a short search of a "
                 "fixed node budget and seed (auto adds the exact solvers search and cpsat with {time_limit:S})"
                 if solver == "auto" else f"{solver} is a heuristic, one pass with no budget, randomness or progress")
    default = SolveOptions()

    def asked(name: str) -> bool:
        return name in given if given is not None else getattr(options, name) != getattr(default, name)

    found = []
    if asked("time_limit") and limit is not None and not exact:
        found.append(("time_limit", "it is the exact solvers' work budget; " + heuristic))
    if asked("seed") and not exact:
        found.append(("seed", "it seeds the exact solvers' random choices; " + heuristic))
    if asked("workers") and not cpsat:
        found.append(("workers", "it is CP-SAT's thread count ({solver:cpsat}, or auto with {time_limit:S}); "
                      + (heuristic if not exact else "the search runs on one thread")))
    values = {"solver": solver, "time_limit": limit, "seed": options.seed, "workers": options.workers}
    shown = {"time_limit": f"{limit:g}" if limit is not None else "None", "seed": str(options.seed),
             "workers": str(options.workers)}   # (as typed: 60, not the float's 60.0)
    return [UnusedOption.of("{" + name + ":" + shown[name] + "} has no effect " + where + ": " + why + "; ignored",
                            **values) for name, why in found]


def warn_unread(solver: object, options: object, stacklevel: int = 2) -> None:
    """Warn (``UnusedOption``) of each option ``unread_options`` finds at a value other than its default."""
    for warning in unread_options(solver, options):
        warnings.warn(warning, stacklevel=stacklevel + 1)


def warn_workers_alignment(solver: str, options, alignment: int, given: bool, what: str = "graph") -> None:
    """Warn (``UnusedOption``) of ``workers`` > 1 for CP-SAT (``solver="cpsat"``, or "auto" with a time limit) where
    the run's ``alignment`` is above ``solvers.cpsat.INTERLEAVE_MAX_ALIGNMENT``: CP-SAT then runs one thread whatever
    ``workers`` says (several gave false optima at such alignments). ``given``: the alignment is the caller's option
    (``alignment=``), else the ``what``'s own (a graph's, a minimalloc CSV's ``alignment`` column). Why here: the
    command warned of ``--workers`` there itself, while ``plan(g, solver="cpsat", workers=4, alignment=2**31)``
    ignored it in silence; one source for both now, and for ``solve_table`` (``memplan csv``), whose CSV may give an
    alignment column since round 77 and which ignored ``--workers 2`` there in silence (round 78)."""
    from ..errors import caller_stacklevel
    from .cpsat import INTERLEAVE_MAX_ALIGNMENT

    if not isinstance(options, SolveOptions):   # (refused, naming it, where the options are read)
        return
    workers = options.workers
    cpsat = isinstance(solver, str) and (solver == "cpsat" or (solver == "auto" and options.time_limit is not None))
    if not (cpsat and isinstance(workers, int) and workers > 1 and alignment > INTERLEAVE_MAX_ALIGNMENT):
        return
    where = "with {alignment}" if given else f"on a {what} of alignment {alignment}"
    warnings.warn(UnusedOption.of("{workers} has no effect " + where + ": CP-SAT runs one thread at an alignment "
                                  "above 2**30 B (several gave false optima there); ignored", workers=workers,
                                  alignment=alignment), stacklevel=caller_stacklevel())


def stop_warning(solver: str, options: SolveOptions) -> WallClockStop:
    """The warning for a solve of ``solver`` with ``options`` that the wall-clock safety stop cut short
    (``info["stopped"] == "wall_clock"``), naming the budget it was cut short of and the stop."""
    limit = options.time_limit
    if options.wall_limit is not None:
        wall = "the wall-clock safety stop ({wall_limit:" + f"{options.wall_limit:g}" + "})"
    elif limit is not None:
        wall = "the wall-clock safety stop (4 x the time limit + 10 s)"
    else:   # (a named exact solver's default budget, or auto's small search of a fixed node budget)
        wall = "a wall-clock safety stop"
    budget = ("{time_limit:" + f"{limit:g}" + "}" if limit is not None else
              "the small search of the default solve" if solver == "auto" else "the default work budget of {solver}")
    return WallClockStop.of(f"{wall} cut the solve short of {budget}: the plan is the best found by then, but where "
                            "the stop fell depends on the machine's speed and load, so it may not repeat run to run",
                            time_limit=limit, wall_limit=options.wall_limit, solver=solver)


def warn_stopped(stopped: object, solver: str, options: SolveOptions, stacklevel: int = 2) -> None:
    """Warn (``WallClockStop``) where ``stopped`` (a solution's ``info["stopped"]`` or a plan's solver block's) says the
    wall clock cut the solve. Why: the mark sat in the solver block alone, so a library caller (``memplan.plan``,
    ``solvers.solve``, ``solve_table``) got a plan that may not repeat with no word of it."""
    if stopped == "wall_clock":
        warnings.warn(stop_warning(solver, options), stacklevel=stacklevel + 1)
