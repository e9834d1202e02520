"""One bounded packing try of the search (``search_tree.PackingSearch.feasible``) and the check of what it packed.

Why a module: rounds 61 (failed-state memo) and 63 (side proofs) each measure a try with one rule on and off by the
same two helpers; written once, a ``SearchParams`` knob such tests turn is passed the same way everywhere.
"""

from __future__ import annotations

import numpy as np

from memplan.problem import BufferProblem, Solution, arena_of
from memplan.solvers import search_tree
from memplan.solvers.check import check_solution
from memplan.solvers.options import SearchParams


def one_try(p: BufferProblem, cap: int, preorder: str, units: int, *, memo: bool = True, side_proofs: bool = True):
    """One try (``feasible``) with a limit of ``units``: (offsets, None or "abort"), the search, the units it took."""
    budget = search_tree.WorkBudget(10**9, 1e9)
    s = search_tree.PackingSearch(p, SearchParams(memo=memo, side_proofs=side_proofs), budget)
    try:
        res = s.feasible(cap, preorder, units)
    except search_tree.Abort:
        res = "abort"
    return res, s, (budget.taken + s.work) // search_tree.WORK_NS_PER_UNIT


def check_packing(p: BufferProblem, offsets: list[int], cap: int) -> None:
    """``offsets`` is a valid solution of ``p`` (the solver's checker) within ``cap`` bytes."""
    off = np.asarray(offsets, dtype=np.int64)
    check_solution(p, Solution(off, arena_of(p, off), "search"))
    assert arena_of(p, off) <= cap
