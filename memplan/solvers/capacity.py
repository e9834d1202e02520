"""The refusal of a packing above a problem's capacity, shared by ``solve``'s check and the search, which refuses
itself (its capacity is a hard cap)."""

from __future__ import annotations

from ..errors import BudgetError
from ..problem import BufferProblem, Solution


class OverCapacity(BudgetError):
    """``solve``'s refusal of a packing above ``problem.capacity``: a BudgetError, carrying the solver's best
    (checked, valid) packing as ``best``, so that a caller measuring solvers (``bench planners``' minimalloc rows)
    can still report how far above the capacity it ended. Not a plan: nothing fits."""

    def __init__(self, message: str, best: Solution | None = None):
        super().__init__(message)
        self.best = best


def alone_over(problem: BufferProblem, cap: int) -> str:
    """`` (buffer 'x' alone is 5 B)`` where the largest buffer cannot fit under ``cap`` by itself, else ``""``.

    Why: the refusal said only "none exists; best arena 9, lower bound 9", and a caller with a thousand buffers had
    to find for themselves the one that no packing could ever fit, the cause worth naming first."""
    sizes = problem.sizes
    if len(sizes) == 0:
        return ""
    i = int(sizes.argmax())   # (the first of equal largest: deterministic)
    if int(sizes[i]) <= cap:
        return ""
    name = problem.names[i] if problem.names is not None and i < len(problem.names) else f"#{i}"
    return f" (buffer {name!r} alone is {int(sizes[i])} B)"
