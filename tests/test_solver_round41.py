"""Round 41 (solvers): several CP-SAT workers that beat one, an honest one-worker budget, ratios that never read
1.0000 above their bound, and an honest comparison in ``solve_schedule``'s Ctrl-C bookkeeping.

3. ``memplan show`` printed ``ratio 1.0000`` for a plan bytes above its bound at huge arenas (as the gap read 0.0
   before ``problem.gap_of``); ``planfile.ratio_text`` keeps the digits that show the excess.
4. ``solve_schedule`` told a device's solve made after a Ctrl-C from the caller's by string identity
   (``solver is not given``): a caller's ``"auto"`` that was another object than the literal (one read from the
   command line) lost the reuse of an unchanged device's solve in the next capacity round.
"""

from __future__ import annotations

import importlib
import json

import pytest

import memplan
import memplan.examples
from memplan.cli import main
from memplan.graph import graph_from_dict
from memplan.planfile import ratio_text
from memplan.problem import Solution
from memplan.show import describe

PLAN_MODULE = importlib.import_module("memplan.plan")


# ---- 3. ratios above the bound never read as 1 -------------------------------------------------------------------

def _huge_graph() -> memplan.Graph:
    """Three tensors of about 2**48 B live together at alignment 256: greedy packs them 189 B above the optimum."""
    sizes = [2**48 - 1, 2**48 - 1, 2**48 - 3]
    doc = {"format": "memplan.graph/1", "name": "huge", "alignment": 256,
           "tensors": [{"id": "x", "size": 64, "kind": "input"}]
           + [{"id": f"t{i}", "size": s, "kind": "intermediate"} for i, s in enumerate(sizes)]
           + [{"id": "y", "size": 64, "kind": "output"}],
           "nodes": [{"id": "n", "inputs": ["x"], "outputs": ["t0", "t1", "t2"]},
                     {"id": "m", "inputs": ["t0", "t1", "t2"], "outputs": ["y"]}]}
    return graph_from_dict(doc)


@pytest.mark.parametrize("arena, bound, text", [
    (2**60 + 256, 2**60, "1.000000000000000222"),      # (the float ratio is 1.0 exactly)
    (1_000_049, 1_000_000, "1.0000490"),
    (2**63 - 1, 2**63 - 2, "1.000000000000000000108"),
])
def test_a_ratio_above_its_bound_keeps_the_digits_that_show_it(arena, bound, text):
    assert ratio_text(arena, bound) == text
    assert float(text) >= 1 and text != "1.0000"


@pytest.mark.parametrize("arena, bound", [(10, 10), (11, 10), (13, 7), (1_345_536, 1_048_576), (100_005, 100_000),
                                          (0, 0), (5, 0), (3, 7), (2**60, 2**60)])
def test_every_ratio_that_showed_its_excess_prints_as_before(arena, bound):
    before = f"{(arena / bound if bound else (1.0 if not arena else float('inf'))):.4f}"
    assert ratio_text(arena, bound) == before
    three = f"{(arena / bound if bound else (1.0 if not arena else float('inf'))):.3f}"
    assert ratio_text(arena, bound, 3) == three or (arena > bound and three == "1.000")


def test_show_cli_and_plan_never_print_ratio_1_above_the_bound(tmp_path, capsys):
    """greedy's plan of the huge graph is 189 B above its bound of about 3 * 2**48 B: ``memplan show`` read
    ``ratio 1.0000`` and ``memplan plan``'s summary ``(x1.000)`` beside HEURISTIC and a gap above 0."""
    p = memplan.plan(_huge_graph(), solver="greedy")
    assert p.arena_bytes > p.lower_bound_bytes and p.solver["gap"] > 0
    line = next(ln for ln in describe(p).splitlines() if ln.startswith("ratio"))
    assert line.split()[1] != "1.0000" and float(line.split()[1]) > 1 and line.split()[1].startswith("1.0000"), line
    graph = tmp_path / "huge.json"
    graph.write_text(json.dumps(_huge_graph().to_dict()))
    assert main(["plan", str(graph), "-o", str(tmp_path / "p.json"), "--solver", "greedy"]) == 0
    err = capsys.readouterr().err
    assert "(x1.000)" not in err and "(x1.000" in err, err
    # a met bound still reads 1.0000
    best = memplan.plan(_huge_graph(), solver="auto")
    assert best.arena_bytes == best.lower_bound_bytes
    assert "ratio        1.0000" in describe(best).splitlines()


# ---- 4. the Ctrl-C bookkeeping compares values ---------------------------------------------------------------------

def _solves_with_ctrl_c_first(monkeypatch) -> list[int]:
    """The sizes of the plan's solves from now on; the first ends as a Ctrl-C ends a search (marked ``interrupted``)."""
    calls: list[int] = []
    real = PLAN_MODULE.solve

    def solve_(problem, solver, options):
        calls.append(len(problem))
        sol = real(problem, solver, options)
        if len(calls) == 1:
            sol = Solution(sol.offsets, sol.arena, sol.solver, sol.status, sol.lower_bound,
                           {**sol.info, "interrupted": True})
        return sol

    monkeypatch.setattr(PLAN_MODULE, "solve", solve_)
    return calls


@pytest.mark.parametrize("solver", ["auto", "".join(["au", "to"])])   # (the second another object, as argv's is)
def test_the_ctrl_c_bookkeeping_compares_solvers_by_value(monkeypatch, solver):
    """moe over 3 devices, 1 B under device 2's need: a Ctrl-C in device 0's solve of the first round. Device 1's
    problem is the same in the second round, which reuses its solve (5 solves) for the literal ``"auto"``; an equal
    string of another object was told from the literal by ``is`` (6 solves: device 1 solved again)."""
    g = memplan.examples.moe()
    base = memplan.plan_graph(g, devices=3)
    needs = [a + w for a, w in zip(base.plan.device_arena_bytes, base.split.weight_bytes)]
    cap = [*needs[:2], needs[2] - 1]
    calls = _solves_with_ctrl_c_first(monkeypatch)
    planned = memplan.plan_graph(g, devices=3, device_capacity=cap, solver=solver)
    assert planned.plan.solver["split"]["low_memory_devices"] == [2]
    assert planned.plan.solver.get("interrupted") is True
    assert len(calls) == 5, calls
    memplan.verify(planned.graph, planned.plan)
