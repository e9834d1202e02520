"""Round 55 review (review55): bugs found in this session's merged changes, each test failing before its fix.

The cost model's shape reading (``optimize/cost.py``, ``_matmul_flops``): a MUL_MAT whose weight's inner dim is 0
beside an output whose dims' product is finite but whose ``2 * M * N`` is not (``[10**154, 10**154]``) made
``inf * 0`` flops, a NaN run time, and ``plan(streams=2)`` refused a valid graph ("the run time nan"); ``shape``
attrs are free-form, and no graph is refused for one.
"""

from __future__ import annotations

import math

import memplan
from memplan.graph import graph_from_dict
from memplan.optimize.cost import CostModel


def _matmul(a_shape, y_shape):
    return graph_from_dict({"format": "memplan.graph/1", "name": "g", "tensors": [
        {"id": "a", "size": 256, "kind": "input", "attrs": {"shape": a_shape}},
        {"id": "w", "size": 256, "kind": "weight"},
        {"id": "y", "size": 256, "kind": "output", "attrs": {"shape": y_shape}}],
        "nodes": [{"id": "mm", "op": "MUL_MAT", "inputs": ["a", "w"], "outputs": ["y"]}]})


def test_an_empty_inner_dim_beside_a_huge_output_is_no_nan_run_time():
    """Before: ``node_us`` nan and ``plan(streams=2)`` a ScheduleError; now no multiply-add (K = 0): the node's
    bytes and floor decide, as for any MUL_MAT of an empty inner dim."""
    g = _matmul([4, 0], [10 ** 154, 10 ** 154])
    us = CostModel().node_us(g, 0)
    assert math.isfinite(us) and us == CostModel().node_us(_matmul([4, 0], [4, 4]), 0)
    p = memplan.plan(g, streams=2)
    assert p.arena_bytes >= 256
