"""Round 39 (hostile): the API used as a user would, and plans edited by hand; findings of the round."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import memplan
from memplan.examples import diamond, moe


@pytest.fixture
def no_ortools(monkeypatch):
    """OR-Tools that does not import (an install with ``--no-deps``, a Python without its wheel)."""
    for name in [m for m in sys.modules if m == "ortools" or m.startswith("ortools.")] + ["ortools", "ortools.sat",
                                                                                          "ortools.sat.python"]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("graph", [diamond, moe])
def test_cpsat_without_ortools_is_a_solver_error_naming_what_to_install(no_ortools, graph):
    """``plan(g, solver="cpsat")`` without ortools raised a raw ModuleNotFoundError ("No module named 'ortools'")."""
    with pytest.raises(memplan.SolverError, match="solver 'cpsat' needs OR-Tools.*pip install ortools"):
        memplan.plan(graph(), solver="cpsat")


def test_cpsat_without_ortools_on_a_buffer_problem(no_ortools):
    from memplan.problem import BufferProblem
    from memplan.solvers import SolveOptions, solve

    p = BufferProblem(sizes=np.array([16, 16]), lower=np.array([0, 0]), upper=np.array([2, 2]), alignment=8)
    with pytest.raises(memplan.SolverError, match="needs OR-Tools"):
        solve(p, "cpsat", SolveOptions(time_limit=0.5))
    assert solve(p, "search", SolveOptions(time_limit=0.5)).arena == 32   # the other exact solver still plans


@pytest.mark.parametrize("argv", [["plan", "{g}", "-o", "{out}", "--solver", "cpsat"],
                                  ["csv", "{csv}", "-o", "{out}", "--solver", "cpsat"]], ids=["plan", "csv"])
def test_the_cli_cpsat_without_ortools_is_one_line(no_ortools, tmp_path, capsys, argv):
    """It was a traceback ending in ModuleNotFoundError."""
    from memplan.cli import main

    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    (tmp_path / "p.csv").write_text("id,lower,upper,size\na,0,2,16\nb,1,3,16\n")
    names = dict(g=str(tmp_path / "g.json"), csv=str(tmp_path / "p.csv"), out=str(tmp_path / "out"))
    assert main([a.format(**names) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs OR-Tools" in err and not (tmp_path / "out").exists()
