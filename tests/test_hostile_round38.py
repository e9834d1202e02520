"""Round 38 (hostile): a warm start given as rows, and other findings of the round."""

from __future__ import annotations

import numpy as np
import pytest

import memplan


def _three_buffers():
    from memplan.problem import BufferProblem

    return BufferProblem(sizes=np.array([16, 16, 8]), lower=np.array([0, 0, 0]), upper=np.array([3, 3, 1]),
                         alignment=8)


@pytest.mark.parametrize("offsets, said", [
    (np.array([[0, 16, 32]]), "shape (1, 3)"),     # was ignored as a start of one buffer (its len is 1)
    ([[0, 16, 32]], "shape (1, 3)"),               # (the same as a nested list)
    ([[0, 16], [32]], "not integers"),             # ragged rows: was ignored as a start of two buffers
    (np.array([[0], [16], [32]]), "shape (3, 1)"),  # (refused before too: its len is the problem's)
], ids=["row-array", "row-list", "ragged", "column"])
@pytest.mark.parametrize("solver", ["search", "cpsat"])
def test_a_warm_start_of_rows_is_refused_naming_its_shape(solver, offsets, said):
    """``SolveOptions(warm_start=Solution(np.array([[0, 16, 32]]), 40, "mine"))`` for three buffers: its length is 1
    (one row), so it was taken as a start of another problem's size and silently ignored; the solve ran as if none
    had been given."""
    from memplan.problem import Solution
    from memplan.solvers import SolveOptions, solve

    warm = Solution(offsets, 40, "mine")
    with pytest.raises(memplan.SolverError, match="^warm_start is no packing of this problem: ") as e:
        solve(_three_buffers(), solver, SolveOptions(warm_start=warm, time_limit=0.5))
    assert said in str(e.value)


@pytest.mark.parametrize("offsets", [[0, 16, 32], (0, 16, 32), np.array([0, 16, 32]), [np.int64(0), 16, 32],
                                     [0, 16], np.array([0, 16, 32, 48])])
def test_a_flat_warm_start_is_taken_or_ignored_by_its_size_as_before(offsets):
    from memplan.problem import Solution
    from memplan.solvers import SolveOptions, solve

    sol = solve(_three_buffers(), "search", SolveOptions(warm_start=Solution(offsets, 40, "mine"), time_limit=0.5))
    assert sol.arena == 40


@pytest.mark.parametrize("call", [lambda g: memplan.plan(g, devices=2, max_events=0),
                                  lambda g: memplan.split_devices(g, 2, max_events=1)], ids=["plan", "split_devices"])
def test_max_events_alone_over_devices_does_not_call_the_plan_serial(call):
    """``plan(g, devices=2, max_events=0)`` was refused "(without it the plan is serial and has no events)": a split
    plan has the cross-device events of its stages (moe over 2 devices: 4), which ``max_events`` never caps."""
    from memplan.examples import moe

    with pytest.raises(memplan.ScheduleError, match="give streams=N or 'auto' too") as e:
        call(moe())
    assert "serial and has no events" not in str(e.value) and "cross-device events" in str(e.value)
    with pytest.raises(memplan.ScheduleError, match="the plan is serial and has no events"):
        memplan.plan(moe(), max_events=0)


def test_the_cli_max_events_alone_over_devices_does_not_call_the_plan_serial(tmp_path, capsys):
    from memplan.cli import main
    from memplan.examples import moe

    memplan.save_graph(moe(), str(tmp_path / "g.json"))
    argv = ["plan", str(tmp_path / "g.json"), "-o", str(tmp_path / "p.json"), "--max-events", "1"]
    assert main([*argv, "--devices", "2", "--graph-out", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "serial" not in err and "cross-device events" in err
    assert main(argv) == 2 and "the plan is serial and has no events" in capsys.readouterr().err
