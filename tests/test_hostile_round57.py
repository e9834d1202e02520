"""Round 57's hostile-input fuzz (docs/experiments/hostile_s57.py): each defect it found, as a test that failed on the
code before the fix."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import memplan
from memplan.examples import qkv_attention


@pytest.fixture(scope="module")
def qkv_plan():
    graph = qkv_attention()
    return graph, memplan.plan(graph)


@pytest.mark.parametrize("solver", [None, 0, "", [], ()])
def test_plan_eq_with_a_solver_that_is_no_mapping(qkv_plan, solver):
    """``Plan(..., solver=None) == plan`` was a raw AttributeError ('NoneType' object has no attribute 'items'),
    where hash() and every reader answer or name the field: now just unequal."""
    _, plan = qkv_plan
    odd = dataclasses.replace(plan, solver=solver)
    assert odd != plan
    assert odd == dataclasses.replace(plan, solver=solver)
    with pytest.raises(memplan.PlanFormatError, match="solver"):
        odd.to_json()


@pytest.mark.parametrize("field", ["order", "tensors", "events", "device_arena_bytes", "node_devices"])
@pytest.mark.parametrize("value", [np.array([1, 2]), np.array([[1, 2]]), np.float64("nan")], ids=["array", "2d", "nan"])
def test_plan_eq_with_numpy_fields(qkv_plan, field, value):
    """A Plan built in code with a numpy array for an entry list made ``==`` a raw ValueError ("The truth value of
    an array with more than one element is ambiguous"); it compares by value now."""
    _, plan = qkv_plan
    odd = dataclasses.replace(plan, **{field: value})
    assert odd != plan
    assert odd == dataclasses.replace(plan, **{field: value})


def test_plan_eq_of_array_fields_by_value(qkv_plan):
    _, plan = qkv_plan
    assert dataclasses.replace(plan, order=np.array([list(o) for o in plan.order], dtype=object)) == plan
    assert dataclasses.replace(plan, events=np.array([])) == plan   # (no events either way)
