"""Round 62: in the opening, a preorder's shot below the best that packed a small step hands over to the next
preorder's shot at the bound (``SearchParams.handover``, ``search.SMALL_STEP``).

Before it, ``random_dag(1000)`` serial at ``time_limit=1`` from the default start (skyline's repaired walk,
2,067,456 bytes, 0.5% above its bound 2,057,216) ended at 2,064,384: the first preorder's shots below the best packed
steps of 1,024 bytes, a descent each, and took the budget before the second preorder's shot at the bound, which packs
it in one descent."""
from __future__ import annotations

import warnings

import pytest
from minimalloc_data import challenging

from memplan.errors import SolverError
from memplan.solvers import SearchParams, SolveOptions, search, solve

BOUND = 2057216


def _rdag1000():
    from memplan.benchmarks.scale import random_dag
    from memplan.lifetimes import buffer_problem
    from memplan.schedule import build_happens_before, serial_schedule

    g = random_dag(1000)
    return buffer_problem(g, build_happens_before(g, serial_schedule(g)))


def test_random_dag_1000_serial_reaches_its_bound_at_one_second_from_the_default_start():
    """From the DEFAULT start (not size's: ``test_search_round56`` pins that one). The time limit is a work budget
    (12,000 units a second): the work decides, not the clock (no wall-clock stop: ``info`` has no ``stopped``)."""
    p = _rdag1000()
    s = solve(p, "search", SolveOptions(time_limit=1))
    assert "stopped" not in s.info
    assert s.arena == s.lower_bound == BOUND
    assert s.info["opening"] == "gained,bound"   # (one small step, then the second preorder's shot packs the bound)
    off = solve(p, "search", SolveOptions(time_limit=1, search=SearchParams(handover=False)))
    assert off.arena == 2064384 and off.info["opening"] == "gained"   # (as before the handover)


def test_only_a_small_step_hands_over(monkeypatch):
    """The first preorder's step of 1,024 bytes (10% of the gap) is small at ``SMALL_STEP`` 8 and hands over to the
    second preorder's shot at the bound; at 20 (under 5% of the gap) it is not, and the first preorder's steps go on as
    before the handover."""
    p = _rdag1000()
    shots: list[tuple[int, int]] = []
    real = search._Minimiser.shot

    def spy(self, k, cap, node_limit, nodes=None):
        shots.append((k, cap))
        return real(self, k, cap, node_limit, nodes)

    monkeypatch.setattr(search._Minimiser, "shot", spy)
    solve(p, "search", SolveOptions(time_limit=1))
    assert [k for k, _ in shots] == [0, 0, 1] and shots[-1][1] == BOUND
    shots.clear()
    monkeypatch.setattr(search, "SMALL_STEP", 20)
    s = solve(p, "search", SolveOptions(time_limit=1))
    assert {k for k, _ in shots} == {0} and s.arena == 2064384


def test_no_handover_far_above_the_bound(monkeypatch):
    """Only from a best arena within 1 / ``NEAR_BOUND`` above the bound: at 1/500 (random_dag(1000)'s start is 1/200
    above) the first preorder's steps go on as before the handover. Why: minimalloc B, D, H, K at ``time_limit``
    0.25-0.5 (5-15% above their bound) ended 0.3-1.4% higher where each preorder's shot at the bound took a descent."""
    p = _rdag1000()
    monkeypatch.setattr(search, "NEAR_BOUND", 500)
    s = solve(p, "search", SolveOptions(time_limit=1))
    assert s.arena == 2064384 and s.info["opening"] == "gained"


def test_minimalloc_h_far_above_its_bound_keeps_its_steps():
    """minimalloc H at ``time_limit=0.25`` from the default start (8% above its bound): 1,133,568 with or without the
    handover (1,136,640 with a handover that did not look at the gap)."""
    p = challenging("H")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on = solve(p, "search", SolveOptions(time_limit=0.25))
        off = solve(p, "search", SolveOptions(time_limit=0.25, search=SearchParams(handover=False)))
    assert on.arena == off.arena == 1133568


def test_handover_switch_is_checked():
    with pytest.raises(SolverError, match="SearchParams.handover"):
        SearchParams(handover=1)
