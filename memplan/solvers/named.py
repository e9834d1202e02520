"""The exact solvers as a caller gets them by name: started from the default solve's plan.

``search`` and ``cpsat`` start from the best plan they are handed (``start.best_start``). ``auto`` hands them its
own heuristics' plans; a caller who names one (``solve(problem, "search")``, ``plan(..., solver="cpsat")``) hands
nothing, so the default solve runs first and its plan goes in as ``options.default_start``. Why here and not in
``start``: the default solve is ``auto``, which runs the exact solvers itself; asking for it from below them made
the solvers import each other in a circle (start -> auto -> search -> start). Here it sits above all three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..errors import as_int
from ..problem import BufferProblem, Solution
from .auto import solve as auto
from .options import SolveOptions
from .start import sized_for


def default_plan(problem: BufferProblem, options: SolveOptions) -> Solution:
    """The default solve's plan (``auto`` without a time limit: greedy's and size's best, buffers of alignment
    slack lifted to the top, a small problem searched a little, in-place pairs joined), where an exact solver is
    called by name. Why: from greedy's and size's plans alone, ``solver="search"`` or ``"cpsat"`` with a short time
    limit ended above ``plan(graph)`` (212 of ~1,200 runs of round 34's sweep, e.g. 5,549 bytes against 5,508):
    naming an exact solver and giving it time must never buy a larger arena than naming none.
    A Ctrl-C in the default's small search (``auto.polish``) comes back as its plan so far, ``info["interrupted"]``
    set (``start.started_interrupted``): raised, it lost the plan that ``auto`` with the same time limit keeps."""
    return auto(problem, replace(options, time_limit=None, warm_start=None, default_start=None), keep_interrupt=True)


def started(exact: Callable[..., Solution], problem: BufferProblem, options: SolveOptions = SolveOptions(), *, proven: int = 0,
            heuristics: tuple[Solution, Solution] | None = None, deadline: float | None = None,
            check: Callable[[BufferProblem], None] | None = None) -> Solution:
    """``exact(problem, options, ...)`` with the default's plan as ``options.default_start`` where the caller handed
    no plans (neither ``heuristics`` nor a ``default_start`` of this problem's size: a memory budget's cheap solve
    passes the plan it already made, ``plan._exact_budget``). The bound that run proved goes on as ``proven``: its
    small search (``auto.polish``) may prove its arena optimal, and from the problem's own bound alone ``cpsat`` with a
    short time limit called FEASIBLE (gap > 0) the very arena ``auto`` had proven OPTIMAL (26 of 72 small interval
    problems the polish solved). Only a run made here counts: a caller's ``default_start`` or warm start is a plan,
    and its ``info["bound"]`` a claim (``start.best_start``).
    ``check``: ``exact``'s refusal of a problem too large for it whatever its start (``search.check_size``), run
    before the default solve: ``plan(g, solver="search", time_limit=1)`` of 5,250 buffers on 4 streams (5.7M
    overlapping pairs) spent seconds on the default's plan and then refused the problem anyway."""
    if check is not None:
        check(problem)
    if heuristics is None and not sized_for(problem, options.default_start):
        default = default_plan(problem, options)
        options = replace(options, default_start=default)
        proven = max(proven, as_int(default.info.get("bound")) or 0)
    return exact(problem, options, proven=proven, heuristics=heuristics, deadline=deadline)
