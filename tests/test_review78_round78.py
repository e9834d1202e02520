"""Round 78 (review78): defects found while reviewing round 77's library changes.

1. A minimalloc CSV with a ``gaps`` column makes a problem of compatible pairs, whose packings ``check.overlap``
   checks pairwise up to ``PAIRWISE_LIMIT`` (5,000) buffers and not at all past it: ``format_csv`` wrote a table of
   5,001 rows, one with a gap, with buffers live at one time at one offset as a solution, and ``solve_table`` took
   any packing of such a table. Both now check the buffers' live spans by the interval sweep, at any size.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import memplan.io.minimalloc as mm
from memplan.errors import SolverError


def _gapped_table(n: int) -> mm.CsvTable:
    """``n - 1`` buffers in turn over time steps 0, 1, ..., and ``g`` over all of them, live at steps 0 and 1 alone
    (a gap from 2 on): ``g`` may share bytes with all but ``b0`` and ``b1``."""
    rows = ["id,lower,upper,size,gaps", *(f"b{i},{i},{i + 1},4," for i in range(n - 1)), f"g,0,{n},4,2-{n}"]
    return mm.parse_csv("\n".join(rows), "gaps.csv")


def test_format_csv_refuses_overlapping_live_buffers_of_a_gapped_table_past_the_pairwise_limit():
    table = _gapped_table(5001)
    assert not table.problem().is_interval   # (the problem of compatible pairs the check skipped past 5,000)
    with pytest.raises(SolverError, match="offsets overlap buffers 'b0' and 'g', which are live at the same time"):
        mm.format_csv(table, np.zeros(5001, dtype=np.int64))
    good = np.zeros(5001, dtype=np.int64)
    good[-1] = 4   # (g beside the others: every b shares offset 0 in turn, as g does its gap's)
    assert mm.format_csv(table, good).count("\n") == 5002


def test_solve_table_refuses_a_solvers_overlapping_packing_of_a_gapped_table(monkeypatch):
    table = _gapped_table(4)
    real = mm.solve

    def overlapping(problem, solver, options):   # (a solver bug: every buffer at offset 0)
        sol = real(problem, solver, options)
        return dataclasses.replace(sol, offsets=np.zeros(len(problem), dtype=np.int64), arena=4)

    assert mm.solve_table(table).arena == 8
    monkeypatch.setattr(mm, "solve", overlapping)
    with pytest.raises(SolverError, match="solver 'search' overlapped buffers 'b0' and 'g'.*a solver bug"):
        mm.solve_table(table)
