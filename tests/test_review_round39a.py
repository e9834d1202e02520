"""Review of round 39's merged changes (review39a).

- cpsat's wall-clock safety stop is ``_run``'s own since solver39, and a solve it fired on was marked
  ``stopped: wall_clock`` whatever its status: a component CP-SAT had proven OPTIMAL (its optimum found and closed as
  the deadline passed: a progress consumer slow on that last solution, a loaded machine) was marked cut, a plan
  "that may not repeat", and ``_whole_over`` then took no verdict from it. A proven answer is the one an unstopped
  run gives, so it is not marked (as before solver39).
- hostile39 made cpsat without OR-Tools a SolverError, catching ImportError alone: an installed OR-Tools that fails
  with its own exception as it imports (protobuf's VersionError where the protobuf runtime is older than OR-Tools'
  generated code) was still a raw traceback from ``plan --solver cpsat`` and ended ``auto``'s time-limited solve.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from memplan.problem import BufferProblem, Status
from memplan.solvers import SolveOptions, cpsat, get_solver, solve

pytest.importorskip("ortools")

#: eight buffers over time; greedy packs them in 144 B, size in 152 B; CP-SAT finds and proves 112 B at once
FIRST_FIT_MISSES = BufferProblem(np.array([48, 40, 8, 8, 56, 56, 56, 40]), np.array([2, 3, 4, 5, 0, 0, 4, 5]),
                                 np.array([3, 5, 8, 7, 2, 4, 6, 7]), alignment=8)


def test_a_finished_solve_is_not_marked_cut_by_the_clock():
    reason = cpsat.stop_reason
    assert reason(finished=True, interrupted=False, deterministic_time=0.01, budget=0.15, wall_fired=True) is None
    assert reason(finished=False, interrupted=False, deterministic_time=0.2, budget=0.15, wall_fired=True) == \
        "wall_clock"


def test_an_optimum_proven_as_the_deadline_passes_is_not_marked_stopped():
    """The progress consumer takes 0.8 s over the optimal solution's message, past the 0.3 s wall limit; CP-SAT has
    proven that solution optimal by then (its bound is the problem's), and the plan is the unstopped one."""
    p = FIRST_FIT_MISSES
    pair = (solve(p, "greedy"), solve(p, "size"))
    assert min(s.arena for s in pair) > p.lower_bound == 112
    said: list[str] = []

    def slow(msg: str) -> None:
        said.append(msg)
        if "best arena 112," in msg:
            time.sleep(0.8)

    sol = get_solver("cpsat")(p, SolveOptions(time_limit=1.0, wall_limit=0.3, progress=slow), heuristics=pair)
    unstopped = get_solver("cpsat")(p, SolveOptions(time_limit=1.0), heuristics=pair)
    assert sol.status == Status.OPTIMAL and sol.arena == 112, sol.info
    assert "stopped" not in sol.info, sol.info
    assert not any("wall-clock safety stop" in m for m in said), said
    assert sol.offsets.tolist() == unstopped.offsets.tolist()


@pytest.fixture
def broken_ortools(monkeypatch, tmp_path):
    """OR-Tools that is installed but fails as it imports, as with a protobuf runtime older than its generated code
    (``google.protobuf.runtime_version.VersionError``, an Exception and no ImportError: "Detected incompatible
    Protobuf Gencode/Runtime versions when loading ortools/sat/cp_model.proto")."""
    import sys

    pkg = tmp_path / "ortools" / "sat" / "python"
    pkg.mkdir(parents=True)
    for d in (tmp_path / "ortools", tmp_path / "ortools" / "sat", pkg):
        (d / "__init__.py").write_text("")
    (pkg / "cp_model.py").write_text(
        "class VersionError(Exception):\n    pass\n\n"
        "raise VersionError('Detected incompatible Protobuf Gencode/Runtime versions when loading "
        "ortools/sat/cp_model.proto: gencode 6.31.1 runtime 5.29.3')\n")
    for name in [m for m in sys.modules if m == "ortools" or m.startswith("ortools.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_cpsat_with_an_ortools_that_fails_to_import_is_a_solver_error(broken_ortools):
    """hostile39 caught ImportError alone: a broken install's own error (protobuf's VersionError) was a raw
    traceback from ``plan --solver cpsat``, and ``auto`` with a time limit died of it where ``search`` could plan."""
    import memplan
    from memplan.examples import diamond

    with pytest.raises(memplan.SolverError, match=r"needs OR-Tools, which does not import \(VersionError: Detected"):
        memplan.plan(diamond(), solver="cpsat")
    with pytest.raises(memplan.SolverError, match="needs OR-Tools"):
        solve(FIRST_FIT_MISSES, "cpsat", SolveOptions(time_limit=0.3))


def test_the_cli_with_a_broken_ortools_is_one_line(broken_ortools, tmp_path, capsys):
    import memplan
    from memplan.cli import main
    from memplan.examples import diamond

    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    assert main(["plan", str(tmp_path / "g.json"), "-o", str(tmp_path / "p.json"), "--solver", "cpsat"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs OR-Tools" in err and "VersionError" in err, err
    assert not (tmp_path / "p.json").exists()
