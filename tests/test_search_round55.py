"""Round 55: where the work budget affords only a few descents, the search opens with one descent of the first
preorder alone at the bound, then one below the best arena, before its rounds (``search.FEW_DESCENTS``,
``_Minimiser.open``, since round 56 ``_Minimiser.opening``): the three preorders' first try at the bound shared the whole budget and the start came back."""
import os

import numpy as np
import pytest

from memplan.io.minimalloc import read_csv
from memplan.problem import BufferProblem
from memplan.solvers import Objective, SolveOptions, search, solve
from memplan.solvers.named import default_plan

#: the bundled problems (tests/data/minimalloc, as a plain clone has them); MINIMALLOC names another copy
DATA = os.environ.get("MINIMALLOC", os.path.join(os.path.dirname(__file__), "data", "minimalloc", "challenging"))


def _minimalloc(name: str) -> BufferProblem:
    path = os.path.join(DATA, f"{name}.1048576.csv")
    if not os.path.exists(path):
        pytest.skip(f"no minimalloc benchmark at {path}")
    return read_csv(path).problem()


def _random_intervals(n: int) -> BufferProblem:
    """``n`` short-lived buffers (``tests/test_search_round53.py``'s): greedy's arena is above the bound."""
    rng = np.random.default_rng(0)
    lower = rng.integers(0, n, n)
    return BufferProblem(rng.integers(1, 1 << 12, n) * 256, lower, lower + rng.integers(1, 50, n), alignment=256)


def test_few_descents_open_below_the_best_and_gain():
    """minimalloc J (409 buffers) at ``time_limit=0.5`` affords ~3.6 descents: the opening packs one below the start
    (1,303,552 before, the start returned after two tries at the bound and the ladder) and the solve ends below it."""
    p = _minimalloc("J")
    s = solve(p, "search", SolveOptions(time_limit=0.5))
    assert s.info["opening"] == "gained"
    assert s.arena < 1303552


def test_opening_is_deterministic(no_skyline):
    """Counts, not the clock: the same input and options give the same offsets and info, opening included."""
    p = _minimalloc("I")
    a = solve(p, "search", SolveOptions(time_limit=0.5))
    b = solve(p, "search", SolveOptions(time_limit=0.5))
    assert a.info == b.info and a.info.get("opening") == "gained"
    assert np.asarray(a.offsets).tobytes() == np.asarray(b.offsets).tobytes()


def test_a_budget_of_many_descents_does_not_open(no_skyline):
    """minimalloc A at ``time_limit=1`` affords ~19 descents: no opening, no ``info["opening"]``, its plan as before
    (arena 1,169,408 in 4 tries: ``docs/experiments/search_tries_s54.txt``; 1,183,744 since round 59, whose tries
    start and sort cheaper, so stop elsewhere: ``docs/experiments/search_s59.txt``; 1,169,408 again since round 60,
    whose try at the bound pauses at its share's end: ``docs/experiments/search_s60.txt``; 1,129,472 in 9 since round
    64, whose ladder rung that packs chases below it: ``SearchParams.chase``, ``docs/experiments/search_s64.txt``)."""
    s = solve(_minimalloc("A"), "search", SolveOptions(time_limit=1))
    assert "opening" not in s.info
    assert (s.arena, s.info["tries"]) == (1129472, 9)


def test_three_thousand_intervals_reach_their_bound_at_one_second():
    """3,000 random intervals at ``time_limit=1`` (less than one descent of each of three interleaved preorders): the
    one try at the bound returned the start, 23,570,944 bytes; the opening's single preorder packs the bound."""
    s = solve(_random_intervals(3000), "search", SolveOptions(time_limit=1))
    assert s.info["opening"] == "bound"
    assert s.arena == s.lower_bound == 22198528


def test_fit_and_node_budgets_never_open():
    """The opening is for minimising under a work budget: a node budget (``auto.polish``'s) keeps its tries as they
    were, and so does asking only to fit a capacity."""
    p = _minimalloc("J")
    start = default_plan(p, SolveOptions())
    s = search.solve(p, SolveOptions(time_limit=0.5, default_start=start), nodes=3000)
    assert "opening" not in s.info
    fit = BufferProblem(p.sizes, p.lower, p.upper, alignment=p.alignment, capacity=int(start.arena) - 1)
    f = solve(fit, "search", SolveOptions(time_limit=0.5, objective=Objective.FIT))
    assert "opening" not in f.info and f.arena < start.arena
