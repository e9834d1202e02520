"""The refusal of a packing above a problem's capacity, shared by ``solve``'s check and the search, which refuses
itself (its capacity is a hard cap)."""

from __future__ import annotations

from ..errors import BudgetError
from ..problem import Solution


class OverCapacity(BudgetError):
    """``solve``'s refusal of a packing above ``problem.capacity``: a BudgetError, carrying the solver's best
    (checked, valid) packing as ``best``, so that a caller measuring solvers (``bench planners``' minimalloc rows)
    can still report how far above the capacity it ended. Not a plan: nothing fits."""

    def __init__(self, message: str, best: Solution | None = None):
        super().__init__(message)
        self.best = best
