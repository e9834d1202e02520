"""Round 56: the search's opening under budgets of few descents (``search.FEW_DESCENTS``, ``_Minimiser.opening``) is a
chain of shots of one preorder at a time, each switch of ``SearchParams`` turns off its own idea, and
``info["opening"]`` says what the shots did (``docs/experiments/search_s56.txt``)."""
import os

import numpy as np
import pytest

from memplan.errors import SolverError
from memplan.io.minimalloc import read_csv
from memplan.problem import BufferProblem, interval_lower_bound
from memplan.solvers import SearchParams, SolveOptions, solve
from memplan.solvers.search_tree import PackingSearch

#: the bundled problems (tests/data/minimalloc, as a plain clone has them); MINIMALLOC names another copy
DATA = os.environ.get("MINIMALLOC", os.path.join(os.path.dirname(__file__), "data", "minimalloc", "challenging"))


def _minimalloc(name: str) -> BufferProblem:
    path = os.path.join(DATA, f"{name}.1048576.csv")
    if not os.path.exists(path):
        pytest.skip(f"no minimalloc benchmark at {path}")
    return read_csv(path).problem()


def _weak_bound(n: int = 300) -> tuple[BufferProblem, int]:
    """``n`` random intervals given half their interval bound as ``lower_bound`` (a true bound, not a tight one), and
    that bound: the opening's shot at it proves it unreachable (its tree exhausted in a few nodes)."""
    rng = np.random.default_rng(0)
    lower = rng.integers(0, n, n)
    sizes, upper = rng.integers(1, 1 << 12, n) * 256, lower + rng.integers(1, 50, n)
    weak = int(interval_lower_bound(sizes, lower, upper)) // 2
    return BufferProblem(sizes, lower, upper, alignment=256, lower_bound=weak), weak


def _caps_tried(monkeypatch) -> list[int]:
    """The capacities of every try the search makes (shots and interleaved tries alike), as they are made."""
    caps: list[int] = []
    steps = PackingSearch.feasible_steps

    def spy(self, cap, preorder, node_limit, *rest):   # (round 58: ``fixed`` and ``nodes`` follow)
        caps.append(cap)
        return steps(self, cap, preorder, node_limit, *rest)

    monkeypatch.setattr(PackingSearch, "feasible_steps", spy)
    return caps


def test_opening_says_when_its_shot_proved_the_bound_unreachable(no_skyline):
    """Round 55 said ``"bound"`` where its shot at the bound exhausted its tree (a proof that nothing fits there), and
    skipped its shot below the best: 20,799,744 bytes, the start. Now it says so, ``bound`` only where a shot packed
    the bound, and shoots on below the best."""
    p, weak = _weak_bound()
    s = solve(p, "search", SolveOptions(time_limit=0.1))
    outcomes = s.info["opening"].split(",")
    assert outcomes[0] == "bound-unreachable" and s.lower_bound > weak
    assert ("bound" in outcomes) == (s.arena == s.lower_bound)
    assert s.arena < 20799744


def test_bound_first_off_makes_no_shot_at_the_bound(monkeypatch, no_skyline):
    """``bound_first=False`` turned off the rounds' try at the bound but not the opening's shot there."""
    p, weak = _weak_bound()
    caps = _caps_tried(monkeypatch)
    s = solve(p, "search", SolveOptions(time_limit=0.1, search=SearchParams(bound_first=False)))
    assert "opening" in s.info and caps and weak not in caps
    assert "bound-unreachable" not in s.info["opening"]
    caps.clear()
    solve(p, "search", SolveOptions(time_limit=0.1))
    assert caps[0] == weak   # (on, the opening shoots at the bound first)


def test_opening_off_plans_as_before_the_opening(no_skyline):
    """``opening=False`` turns off the opening alone: minimalloc J at ``time_limit=0.5`` plans as before round 55
    (1,303,552 bytes in 2 tries: ``docs/experiments/search_s55.txt``), no ``info["opening"]``."""
    s = solve(_minimalloc("J"), "search", SolveOptions(time_limit=0.5, search=SearchParams(opening=False)))
    assert "opening" not in s.info
    assert (s.arena, s.info["tries"]) == (1303552, 2)


def test_opening_switch_is_checked():
    with pytest.raises(SolverError, match="SearchParams.opening"):
        SearchParams(opening=1)


def test_random_dag_1000_serial_reaches_its_bound_at_one_second(no_skyline):
    """``random_dag(1000)`` on one stream at ``time_limit=1`` (2.9 descents): round 55's first preorder stopped short
    at the bound and below the best, the rest went to the interleaved try at the bound, and the start came back
    (2,085,888 bytes; 2,057,216 before round 55); the second preorder's shot packs the bound. (From size's start, as
    written: since round 62 the default starts it at 2,067,456, skyline's repaired walk, and the first preorder's
    shots below the best then packed 2,064,384 and took the budget: docs/experiments/quality_s62.txt; since
    ``SearchParams.handover`` the bound again: tests/test_search_handover.py.)"""
    from memplan.benchmarks.scale import random_dag
    from memplan.lifetimes import buffer_problem
    from memplan.schedule import build_happens_before, serial_schedule

    g = random_dag(1000)
    p = buffer_problem(g, build_happens_before(g, serial_schedule(g)))
    s = solve(p, "search", SolveOptions(time_limit=1))
    assert s.arena == s.lower_bound == 2057216
    assert s.info["opening"] == "bound"


def test_shots_below_the_best_go_on_while_they_pack():
    """minimalloc J at ``time_limit=0.5``: round 55's one shot below the best packed 1,137,664 bytes in 0.4 of a
    descent and the rest of the budget went to the interleaved try at the bound (nothing); the shots go on."""
    s = solve(_minimalloc("J"), "search", SolveOptions(time_limit=0.5))
    assert s.info["opening"] == "gained"
    assert s.arena <= 1118208 and s.info["tries"] > 3


def test_opening_chain_is_deterministic():
    """Counts, not the clock: the same input and options give the same offsets and info, the chain's outcomes
    included."""
    p, _ = _weak_bound()
    a = solve(p, "search", SolveOptions(time_limit=0.1))
    b = solve(p, "search", SolveOptions(time_limit=0.1))
    assert a.info == b.info and a.info["opening"].startswith("bound-unreachable")
    assert np.asarray(a.offsets).tobytes() == np.asarray(b.offsets).tobytes()
