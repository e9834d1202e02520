"""The solvers' overlap check keeps the live offsets in a ``sortedcontainers`` SortedList.

``check.interval_collision`` kept them in a sorted Python list: each ``list.insert`` / ``del`` in the middle
moved every later entry, quadratic when most buffers are live at once (``scale.io_graph``: an input and an
output per node; 23 s of a 48 s plan at 100,000 nodes). Timing is never tested; instead these count the
work: every insert lands in a SortedList whose sublists (what one insert shifts) stay within
sortedcontainers' load, whatever the number live, with the answers unchanged. The counting test fails on the
plain-list code (no SortedList there to count through).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from sortedcontainers import SortedList

from memplan.problem import BufferProblem
from memplan.solvers import check

N = 10_000   # live at once: a plain list would shift ~N / 2 entries per insert


def _largest_shift(sl: SortedList) -> int:
    """The most entries one insert into ``sl`` can move: its longest sublist (sortedcontainers' ``_lists``)."""
    return max((len(sub) for sub in sl._lists), default=0)


class _Counted(SortedList):
    """A SortedList that records its adds, removes and the most entries any one insert could move."""

    made: list[_Counted] = []

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.adds = self.removes = self.shift = 0
        _Counted.made.append(self)

    def add(self, value) -> None:
        super().add(value)
        self.adds += 1
        self.shift = max(self.shift, _largest_shift(self))

    def remove(self, value) -> None:
        super().remove(value)
        self.removes += 1


def _nested(n: int, off: list[int], sizes: list[int] | None = None) -> tuple[BufferProblem, np.ndarray]:
    """``n`` buffers all live at time ``n`` (buffer ``i`` over ``[i, 2n - i)``), at offsets ``off``."""
    sz = np.array(sizes or [1] * n, dtype=np.int64)
    lo = np.arange(n, dtype=np.int64)
    return BufferProblem(sizes=sz, lower=lo, upper=2 * n - lo), np.array(off, dtype=np.int64)


def test_overlap_check_keeps_live_offsets_in_a_sorted_list(monkeypatch):
    """Offsets placed top down (each new one first in offset order: a plain list moved every live entry per
    insert): one add and one remove per buffer, each insert moving at most sortedcontainers' bounded sublist."""
    _Counted.made.clear()
    monkeypatch.setattr(check, "SortedList", _Counted)   # (raises on the old code: it had no SortedList)
    problem, off = _nested(N, [N - 1 - i for i in range(N)])
    assert check.overlap(problem, off) is None
    (live,) = _Counted.made
    assert (live.adds, live.removes, len(live)) == (N, N, 0)
    assert live.shift <= 2 * live._load < N // 4


def test_overlap_check_still_names_the_colliding_pair():
    """The same sweep, one buffer widened over its neighbour's bytes: that pair, lowest index first."""
    sizes = [1] * N
    sizes[N // 2] = 2                      # at offset N - 1 - N // 2, reaching the next buffer's byte
    problem, off = _nested(N, [N - 1 - i for i in range(N)], sizes)
    assert check.overlap(problem, off) == (N // 2 - 1, N // 2)


def test_setup_requires_sortedcontainers():
    """The solvers import it at module level: an install without it could not plan at all."""
    setup = (Path(__file__).resolve().parents[1] / "setup.py").read_text()
    requires = re.search(r"install_requires=\[([^\]]*)\]", setup)
    assert requires and '"sortedcontainers>=2.4"' in requires.group(1)
