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


def _late_last_time_problem():
    """Two buffers on one stream, [0, 4) and [2, 6): ``first``/``visible`` say the first precedes the second, but
    its ``last_time`` (3) is at or after the second's start (2)."""
    import numpy as np

    from memplan.problem import BufferProblem, HBOrder

    order = HBOrder(first=np.array([[0], [2]]), visible=np.array([[1], [3]]), has_start=np.zeros(2, bool),
                    has_end=np.zeros(2, bool), last_time=np.array([3, 5]))
    return BufferProblem(sizes=np.array([8, 8]), lower=np.array([0, 2]), upper=np.array([4, 6]), order=order)


def test_conflicts_applies_last_time_like_the_solvers() -> None:
    """``conflicts(0, 1)`` was False (it skipped ``last_time``) while ``find_collision`` and the solvers kept the
    pair apart; now every view of the relation agrees: a conflict."""
    import numpy as np

    from memplan.problem import find_collision

    p = _late_last_time_problem()
    assert p.conflicts(0, 1) and p.conflicts(1, 0)
    assert p.ordered_test()(0, 1) is False
    assert find_collision(p, np.array([0, 0])) == (0, 1)
    for name in ("greedy", "search", "auto"):
        s = get_solver(name)(p, SolveOptions())
        assert find_collision(p, s.offsets) is None and s.arena == 16, name


def test_auto_one_wall_clock_stop_for_both_exact_solvers(monkeypatch) -> None:
    """``auto`` at ``time_limit=0.3, wall_limit=0.4`` with both exact solvers running into the wall clock: each had a
    0.4 s stop of its own (0.8 s in all); now they share one, and the second is not started once it has fired."""
    import memplan.solvers as solvers
    from memplan.problem import Solution, Status

    real = solvers.get_solver
    walls: list[tuple[str, float]] = []

    def fake(name):
        if name not in ("search", "cpsat"):
            return real(name)

        def solve(problem, options, **_):
            walls.append((name, options.wall_limit))
            time.sleep(options.wall_limit)   # a solve its wall-clock stop cuts
            ws = options.warm_start
            return Solution(ws.offsets, ws.arena, name, Status.FEASIBLE, ws.lower_bound, {"stopped": "wall_clock"})
        return solve

    monkeypatch.setattr(solvers, "get_solver", fake)
    p = random_intervals(2, 200, horizon=300, max_size=9, unit=4, max_length=290)
    s = real("auto")(p, SolveOptions(time_limit=0.3, wall_limit=0.4))
    assert walls and walls[0][1] <= 0.4
    assert sum(w for _, w in walls) <= 0.4 + 1e-9, walls
    assert s.info.get("stopped") == "wall_clock"
    assert find_collision(p, s.offsets) is None
