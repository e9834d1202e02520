"""Round 60: the file entry points (``load_graph``, ``save_graph``, ``load_plan``, ``save_plan``, ``load_safe_pair``)
refuse a call's mistakes as every other public entry point does: an ``OptionError`` naming the argument. Before,
``memplan.save_plan(plan)`` was Python's own "missing 1 required positional argument" and a misspelt keyword
"got an unexpected keyword argument", no memplan error (round 60's review)."""

from __future__ import annotations

from pathlib import Path

import pytest

import memplan
from memplan.errors import OptionError
from memplan.examples import bundled

_MINIMALLOC_A = Path(__file__).resolve().parent / "data" / "minimalloc" / "challenging" / "A.1048576.csv"


def _pair():
    g = next(iter(bundled().values()))
    return g, memplan.plan(g)


@pytest.mark.parametrize("call, names", [
    (lambda g, p, d: memplan.save_plan(p), "'path'"),
    (lambda g, p, d: memplan.save_plan(path=str(d / "p.json")), "'plan'"),
    (lambda g, p, d: memplan.save_graph(g, str(d / "g.json"), path=str(d / "h.json")), "'path' twice"),
    (lambda g, p, d: memplan.load_graph(), "'path'"),
    (lambda g, p, d: memplan.load_plan(pth=str(d / "p.json")), "'pth'"),
    (lambda g, p, d: memplan.save_plan(p, str(d / "p.json"), timing=True), "'timing'"),
])
def test_file_entry_points_name_a_wrong_call(tmp_path, call, names):
    g, p = _pair()
    with pytest.raises(OptionError, match=names):
        call(g, p, tmp_path)
    assert list(tmp_path.iterdir()) == []          # nothing written on a refused call


def test_file_entry_points_still_round_trip(tmp_path):
    g, p = _pair()
    memplan.save_graph(g, str(tmp_path / "g.json"))
    memplan.save_plan(p, path=str(tmp_path / "p.json"))
    assert memplan.load_plan(str(tmp_path / "p.json")).to_json() == p.to_json()
    assert memplan.load_graph(path=str(tmp_path / "g.json")).name == g.name


def test_solver_warnings_point_at_the_callers_line(monkeypatch):
    """The exact solvers' "had no effect" warnings (``search``'s setup past its limit here) used a fixed stacklevel
    (3 or 4), which pointed inside memplan (``solvers/__init__.py``, ``plan.py``) whether ``solve`` or ``plan`` was
    called; now both point at the caller (``errors.caller_stacklevel``)."""
    import warnings

    from memplan.benchmarks.scale import random_dag
    from memplan.errors import UnusedOption
    from memplan.io.minimalloc import read_csv
    from memplan.solvers import SolveOptions, search, solve

    monkeypatch.setattr(search, "SETUP_PER_PAIR", 1.0)   # (every setup estimated past its limit)
    g = random_dag(300, seed=1)                          # (its heuristics' plan is above its bound: a search runs)
    p = read_csv(_MINIMALLOC_A).problem()
    calls = [lambda: memplan.plan(g, solver="search", time_limit=0.2),
             lambda: solve(p, "search", SolveOptions(time_limit=0.2))]
    for call in calls:
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            call()
        ours = [w for w in ws if issubclass(w.category, UnusedOption) and "setup" in str(w.message)]
        assert ours and all(w.filename == __file__ for w in ours), [(w.filename, str(w.message)[:60]) for w in ws]
