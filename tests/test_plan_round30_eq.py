"""Plan equality follows the plan JSON: two runs of ``plan`` on the same input are equal plans.

``==`` compared the solver block with its wall-clock ``seconds``, so ``plan(g) == plan(g)`` was False though both
plans write byte-identical files; a difference in what the JSON says (an offset, the solver's status) still makes
plans unequal."""

from __future__ import annotations

import dataclasses

import memplan
from memplan import examples


def test_two_runs_are_equal_plans_and_hash_alike():
    g = examples.diamond()
    a, b = memplan.plan(g), memplan.plan(g)
    assert "seconds" in a.solver
    a = dataclasses.replace(a, solver={**a.solver, "seconds": 1.0})
    b = dataclasses.replace(b, solver={**b.solver, "seconds": 2.0})
    assert a.to_json() == b.to_json()
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


def test_what_the_json_says_still_tells_plans_apart():
    g = examples.diamond()
    a = memplan.plan(g)
    other_status = dataclasses.replace(a, solver={**a.solver, "status": "FEASIBLE"})
    assert a != other_status
    tid, off, size = a.tensors[0]
    moved = dataclasses.replace(a, tensors=((tid, (off or 0) + 64, size), *a.tensors[1:]))
    assert a != moved
    assert a != "not a plan" and (a == object()) is False
