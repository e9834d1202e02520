"""Round 43: the search's deterministic work budget counts the section tests that fail (they make no node)."""

from __future__ import annotations

import time

from problems import random_intervals

from memplan.problem import find_collision
from memplan.solvers import SolveOptions, get_solver


def test_search_budget_counts_failed_section_tests() -> None:
    """600 buffers over 300 steps, most candidates failing the section test over a ~300-section window: the search
    ran 11 s of CPU at ``time_limit=0.3`` (37x) before those tests counted against its budget; now ~1.3 s."""
    p = random_intervals(2, 600, horizon=300, max_size=9, unit=4, max_length=290)
    t = time.process_time()
    s = get_solver("search")(p, SolveOptions(time_limit=0.3))
    cpu = time.process_time() - t
    assert find_collision(p, s.offsets) is None
    assert s.arena >= p.lower_bound
    assert cpu < 0.3 * 15, f"search used {cpu:.1f}s of CPU at time_limit=0.3"


def test_search_budget_still_deterministic() -> None:
    """The same budget-limited solve twice gives the same plan (work units, not the clock)."""
    p = random_intervals(5, 600, horizon=300, max_size=9, unit=4, max_length=290)
    a = get_solver("search")(p, SolveOptions(time_limit=0.3))
    b = get_solver("search")(p, SolveOptions(time_limit=0.3))
    assert a.arena == b.arena and list(a.offsets) == list(b.offsets)
