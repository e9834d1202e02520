"""Round 26: CP-SAT's time limit on large components (a deterministic model-cost rule), and the plan reader's
``solver`` field.

Each test names the input, what memplan did with it, and what it does now.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import memplan
from memplan import examples
from memplan.errors import PlanFormatError
from memplan.io.minimalloc import read_csv
from memplan.problem import BufferProblem
from memplan.solvers import SolveOptions, Status, cpsat, solve
from memplan.solvers.named import default_plan


def _tiled_a(minimalloc_dir: str, k: int = 12, in_place: bool = False) -> BufferProblem:
    """``k`` copies of minimalloc's A, each overlapping the next by half: one component of 1,850 buffers and
    about 120k overlapping pairs (``in_place``: one overlapping pair allowed to share, so the clique model)."""
    a = read_csv(os.path.join(minimalloc_dir, "challenging", "A.1048576.csv")).problem()
    half = int(a.upper.max()) // 2
    lower = np.concatenate([a.lower + i * half for i in range(k)])
    upper = np.concatenate([a.upper + i * half for i in range(k)])
    compatible = frozenset()
    if in_place:
        first, second = BufferProblem(sizes=np.tile(a.sizes, k), lower=lower, upper=upper).conflict_pairs()
        compatible = frozenset({(int(first[0]), int(second[0]))})
    return BufferProblem(sizes=np.tile(a.sizes, k), lower=lower, upper=upper, compatible=compatible)


@pytest.mark.parametrize("in_place", [False, True])
def test_cpsat_keeps_the_heuristic_plan_of_a_component_whose_model_outlasts_the_limit(minimalloc_dir, monkeypatch,
                                                                                      in_place):
    """One 10,000-buffer component (1.3M overlapping pairs) at ``time_limit=1`` ran 9.5 s (NoOverlap2D model) or
    25 s (clique model): building the model and CP-SAT's presolve count nothing in its deterministic budget, and
    the presolve spent the budget, so the heuristic plan came back all the same. A component whose estimated model
    cost (from its pair count alone: no clock) exceeds its share is now left with its heuristic offsets, said in
    ``skipped_components``, its status and gap honest; with a limit above the estimate CP-SAT runs on it as before.
    (CP-SAT is replaced by a recorder: the test times nothing.)"""
    calls: list[float] = []

    def recorder(cp_model, sub, hint, *, target, time_limit, **kw):
        calls.append(time_limit)
        return None, target, time_limit, None   # no better plan, no better bound, the whole share used

    monkeypatch.setattr(cpsat, "_solve_component", recorder)
    p = _tiled_a(minimalloc_dir, in_place=in_place)
    est = cpsat.model_seconds(p)
    assert p.is_interval != in_place and est >= cpsat.MODEL_COST_MIN_SECONDS
    start = default_plan(p, SolveOptions())   # (where a named cpsat starts: ``named.started``)
    sol = solve(p, "cpsat", SolveOptions(time_limit=est / 2))
    assert calls == [] and sol.info["skipped_components"] == 1 and sol.info["solved_components"] == 0
    assert np.array_equal(sol.offsets, start.offsets) and sol.status == Status.FEASIBLE
    assert sol.info["bound"] < sol.arena and sol.info["gap"] > 0
    sol = solve(p, "cpsat", SolveOptions(time_limit=est * 2))
    assert calls == [est * 2] and "skipped_components" not in sol.info and sol.info["solved_components"] == 1


def test_model_cost_rule_leaves_small_components_alone(minimalloc_dir):
    """A component estimated below ``MODEL_COST_MIN_SECONDS`` is always solved however short its share, so the plans
    of the minimalloc set (at most 454 buffers, 29k pairs) and of the bundled examples are what they were; the
    estimate grows with the model, and above the floor it is compared with the share."""
    a = read_csv(os.path.join(minimalloc_dir, "challenging", "A.1048576.csv")).problem()
    assert cpsat.model_seconds(a) < cpsat.MODEL_COST_MIN_SECONDS and not cpsat.too_costly(a, 1e-9)
    worst = BufferProblem(sizes=np.ones(454, dtype=np.int64), lower=np.zeros(454, dtype=np.int64),
                          upper=np.ones(454, dtype=np.int64))   # 454 buffers, every pair overlapping
    assert worst.overlap_count() == 454 * 453 // 2 and not cpsat.too_costly(worst, 1e-9)
    small, big = _tiled_a(minimalloc_dir, 6), _tiled_a(minimalloc_dir, 12)
    est = cpsat.model_seconds(small)
    assert cpsat.MODEL_COST_MIN_SECONDS <= est < cpsat.model_seconds(big)
    assert cpsat.too_costly(small, 0.99 * est) and not cpsat.too_costly(small, 1.01 * est)


def test_plan_from_dict_refuses_a_solver_field_that_is_no_object():
    """The contract's ``solver`` is an object; a list, string, number or null there was read as ``{}`` without a
    word (the block's content lost, and the plan written back said nothing of it). It is refused naming the field;
    a document without one still reads (as no solver block)."""
    doc = json.loads(memplan.plan(examples.bundled()["diamond"]).to_json())
    for bad in ([1, 2], "cpsat", 3, None):
        with pytest.raises(PlanFormatError, match="field 'solver' is not an object"):
            memplan.plan_from_dict({**doc, "solver": bad}, source="p.json")
    del doc["solver"]
    assert memplan.plan_from_dict(doc).solver == {}
