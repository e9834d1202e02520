"""Offset solvers over a BufferProblem. Each module has ``solve(problem, options) -> Solution``.

Solvers never import graphs, schedules or lifetimes (DESIGN wall): they see sizes, intervals and the
conflict relation only.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import SolverError
from ..problem import BufferProblem, Solution
from .options import SolveOptions

Solver = Callable[[BufferProblem, SolveOptions], Solution]


def get_solver(name: str) -> Solver:
    """The solve function registered under ``name`` (imported lazily: cpsat needs ortools)."""
    if name == "greedy":
        from .greedy import solve
    elif name == "size":
        from .size import solve
    elif name == "auto":
        from .auto import solve
    elif name == "cpsat":
        from .cpsat import solve
    elif name == "ggml":
        from .ggml import solve
    elif name == "search":
        from .search import solve
    else:
        raise SolverError(f"unknown solver {name!r} (choose from {', '.join(SOLVER_NAMES)})")
    return solve


SOLVER_NAMES = ("auto", "greedy", "size", "cpsat", "ggml", "search")

__all__ = ["SolveOptions", "get_solver", "SOLVER_NAMES", "Solver"]
