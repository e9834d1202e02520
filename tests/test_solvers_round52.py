"""Round 52: auto's inner solvers' warnings name the caller's time limit (and the share auto gave), not the share."""

import os
import sys
import warnings

import pytest

from memplan.errors import UnusedOption
from memplan.io import minimalloc as mm
from memplan.solvers import search, solve
from memplan.solvers.options import SolveOptions

HERE = os.path.dirname(os.path.abspath(__file__))
A = os.path.join(HERE, "data", "minimalloc", "challenging", "A.1048576.csv")


def _a():
    if not os.path.exists(A):
        pytest.skip("minimalloc data not here")
    return mm.read_csv(A).problem()


def _unused(ws):
    return [w.message for w in ws if issubclass(w.category, UnusedOption)]


def test_auto_names_the_callers_time_limit(monkeypatch, polish_limit_64):
    """auto gives the search 90% of ``time_limit=0.2`` on an interval problem; a setup estimated past that share
    warned "time_limit=0.18 had no effect", a value never given. Now the warning names ``time_limit=0.2`` and says
    auto gave the search 0.18 s of it; spelt as flags (the CLI) it is ``--time-limit 0.2``."""
    p = _a()
    monkeypatch.setattr(search, "SETUP_PER_PAIR", 1.0)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        solve(p, "auto", SolveOptions(time_limit=0.2))
    msgs = [m for m in _unused(ws) if "setup" in str(m)]
    assert msgs, [str(m) for m in _unused(ws)]
    text = str(msgs[0])
    assert "time_limit=0.2 (auto gave search 0.18s of it)" in text, text
    assert "0.18 " not in text.replace("0.18s of it", "")
    assert msgs[0].values["time_limit"] == 0.2
    flags = msgs[0].spelled(lambda name, v: f"--{name.replace('_', '-')} {v}")
    assert flags.startswith("--time-limit 0.2 (auto gave search 0.18s of it) had no effect"), flags


def test_search_by_name_still_names_its_own_limit(monkeypatch):
    """The search asked for by name has the caller's limit as its own: its warning is as before."""
    p = _a()
    monkeypatch.setattr(search, "SETUP_PER_PAIR", 1.0)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        solve(p, "search", SolveOptions(time_limit=0.2))
    text = " ".join(str(m) for m in _unused(ws))
    assert "time_limit=0.2 had no effect" in text and "auto gave" not in text, text


def test_callers_error_filter_still_raises(monkeypatch, polish_limit_64):
    """A caller who turns UnusedOption into errors still gets it raised from auto, in the caller's words."""
    p = _a()
    monkeypatch.setattr(search, "SETUP_PER_PAIR", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusedOption)
        with pytest.raises(UnusedOption, match=r"time_limit=0\.2 \(auto gave search"):
            solve(p, "auto", SolveOptions(time_limit=0.2))


# ---- CP-SAT's clique model: the pairs its cliques cover, told by one AND -----------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from memplan.solvers import cpsat  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 90).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.sets(st.integers(0, n - 1), min_size=2, max_size=n).map(sorted).map(tuple),
                         max_size=12))), st.booleans())
def test_covered_pairs_are_the_cliques_pairs(case, as_sets):
    """``_covered(i, j)`` is whether some clique holds both buffers, through the clique bits (up to
    ``CLIQUE_BITSET_BUFFERS`` buffers) and the set of pairs above it alike (before, a set of every clique's pairs:
    10.5M of them, 11.6 of the 14.8 s of ``layered_graph(1000)``'s model on 4 streams)."""
    n, cliques = case
    covered = cpsat._covered(cliques, n) if not as_sets else _covered_as_sets(cliques, n)
    want = {(a, b) for c in cliques for k, a in enumerate(c) for b in c[k + 1:]}
    assert {(i, j) for i in range(n) for j in range(i + 1, n) if covered(i, j)} == want


def _covered_as_sets(cliques, n):
    saved = cpsat.CLIQUE_BITSET_BUFFERS
    cpsat.CLIQUE_BITSET_BUFFERS = 0
    try:
        return cpsat._covered(cliques, n)
    finally:
        cpsat.CLIQUE_BITSET_BUFFERS = saved


# ---- a memory budget's fitting candidate with in-place pairs is solved once --------------------------------------



@pytest.mark.parametrize("streams,frac", [(2, 1.0), ("auto", 1.3)])
def test_inplace_candidate_that_fits_is_solved_once(monkeypatch, streams, frac):
    """``heuristics_over`` decides a problem with in-place pairs by its whole solve; the candidate that fit was then
    solved in full again for its plan (the moe example under a budget: three auto solves, two of one problem). Now
    that solve is the plan's: no problem is solved twice, and the plan is the same (its JSON checked against one
    planned with every candidate's verdict solved apart: ``made`` dropped)."""
    import memplan
    from memplan import examples
    from memplan.problem import same_problem
    from memplan.solvers import auto

    g = examples.moe()
    budget = int(frac * memplan.plan(g).arena_bytes)
    seen = []
    orig = auto.solve

    def counted(problem, *a, **k):
        seen.append(problem)
        return orig(problem, *a, **k)

    monkeypatch.setattr(auto, "solve", counted)
    plan = memplan.plan(g, streams=streams, memory_budget=budget)
    assert any(p.inplace for p in seen)
    twice = [(i, j) for i in range(len(seen)) for j in range(i) if same_problem(seen[i], seen[j])]
    assert twice == [], f"{len(seen)} auto solves, the same problem twice: {twice}"
    import memplan.solvers as solvers
    real = solvers.heuristics_over
    monkeypatch.setattr(sys.modules["memplan.plan"], "heuristics_over", lambda problem, solver, options, over, made=None:
                        real(problem, solver, options, over))
    assert memplan.plan(g, streams=streams, memory_budget=budget).to_json() == plan.to_json()


def test_cpsat_warning_names_the_callers_limit_under_auto():
    """CP-SAT's "did not search" warning under auto's share names the caller's limit (and the share); called by
    name, its own limit as before."""
    from memplan.solvers.options import limit_share

    opts = SolveOptions(time_limit=0.05, workers=32)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        with limit_share("cpsat", 0.5, 0.05):
            cpsat._warn_unsolved(opts, 0.05, 1, 1)
        cpsat._warn_unsolved(opts, 0.05, 1, 1)
    shared, own = (str(m) for m in _unused(ws))
    assert shared.startswith("workers=32 with time_limit=0.5 (auto gave cpsat 0.05s of it) had no effect"), shared
    assert own.startswith("workers=32 with time_limit=0.05 had no effect"), own
