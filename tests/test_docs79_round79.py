"""Round 79 (docs79): what README.md and docs/ promise after round 79's changes, tried for real.

Each test is one promise of the docs that the code broke, checked as a user (or a tool reading plan files) would
meet it.
"""

from __future__ import annotations

import json

import pytest

import memplan
from memplan.cli import main


@pytest.mark.parametrize("time_limit", [[], ["--time-limit", "1"]])
def test_a_cpsat_plan_block_always_states_the_time_it_spent(tmp_path, capsys, time_limit):
    """docs/format.md: the solver block holds ``spent`` (auto's with a time_limit, "cpsat's always"): the seconds of the
    limit the exact solvers' counted work took. A cpsat plan whose heuristic start already met the bound (every
    bundled example: ``memplan plan qkv.json --solver cpsat``) left ``spent`` out, where ``auto`` with a time limit
    says 0.0, so a tool reading the field as documented met a KeyError; such a plan now says it spent 0.0."""
    pytest.importorskip("ortools")
    graph, out = tmp_path / "qkv.json", tmp_path / "p.json"
    from memplan.examples import qkv_attention
    memplan.save_graph(qkv_attention(), str(graph))
    assert main(["plan", str(graph), "-o", str(out), "--solver", "cpsat", *time_limit]) == 0
    capsys.readouterr()
    block = json.loads(out.read_text())["solver"]
    assert block["name"] == "cpsat" and block["status"] == "OPTIMAL"
    assert block["spent"] == 0.0


def test_a_cpsat_solve_skipped_below_the_bound_states_it_spent_nothing():
    """The same field where cpsat skips its search, asked to fit a capacity below the proven bound (no packing
    exists): the start came back as the refusal's best with no ``spent``; now it says 0.0."""
    from test_hostile_round64 import _intervals  # (300 intervals whose heuristic start is above their bound)

    from memplan.solvers import Objective, OverCapacity, SolveOptions, solve

    with pytest.raises(OverCapacity) as e:
        solve(_intervals()(1), "cpsat", SolveOptions(objective=Objective.FIT))
    assert e.value.best.info["skipped"] == "capacity" and e.value.best.info["spent"] == 0.0
