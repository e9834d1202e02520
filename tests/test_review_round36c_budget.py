"""Round 36c review: a memory budget's shortcuts (the cheap solve's problem and plan handed to the exact solve of the
same schedule, exact probes' clique bound stopped at the budget) change no plan where the budget meets the other
options: ``fused_groups`` (the contract's bound kept beside the stricter problem's), ``alignment``, ``max_events``
and ``device_capacity`` (one device: the capacity left after the weights is the budget), for ``search``, ``cpsat``
and ``auto`` with a time limit (which takes the same road). Each case makes exact probes stopped at the budget and
an exact solve started from a cheap one (found by the review's 800-plan sweep against the pipeline without them,
all byte-identical)."""

from __future__ import annotations

import importlib
import random

import pytest
from test_budget_round36 import _unshared

import memplan
from memplan.generators import fanout_join

plan_module = importlib.import_module("memplan.plan")


def _graph(seed: int):
    return fanout_join(random.Random(seed).randint(20, 60), seed=seed, max_width=random.Random(seed + 1).randint(3, 8))[0]


def _planned(monkeypatch, g, opts: dict, patch):
    """``memplan.plan(g, **opts)`` with ``patch(m)`` applied to a monkeypatch context for this plan only."""
    with monkeypatch.context() as m:
        patch(m)
        return memplan.plan(g, **opts)


CASES = [   # (seed, solver, streams, extra, where the budget lies between the concurrent and serial arenas, capacity)
    (412, "search", 2, {"alignment": 256}, 2, True),
    (427, "search", 2, {"fused_groups": True, "alignment": 1024}, 2, True),
    (446, "search", 3, {"max_events": 4}, 4, True),
    (449, "search", 2, {"fused_groups": True}, 4, False),
    (403, "auto", 3, {"fused_groups": True}, 4, False),
    (440, "cpsat", "auto", {"alignment": 256}, 4, False),
]


@pytest.mark.parametrize("seed, solver, streams, extra, part, capacity", CASES)
def test_budgeted_exact_plans_are_those_of_the_pipeline_without_the_shortcuts(monkeypatch, seed, solver, streams,
                                                                             extra, part, capacity):
    if solver == "cpsat":
        pytest.importorskip("ortools")
    g = _graph(seed)
    own = {k: v for k, v in extra.items() if k != "max_events"}
    serial = memplan.plan(g, **own).arena_bytes
    concurrent = memplan.plan(g, streams=streams, **extra).arena_bytes
    lo, hi = min(serial, concurrent), max(serial, concurrent)
    budget = lo + (hi - lo) // part
    limit = {"device_capacity": budget, "devices": 1} if capacity else {"memory_budget": budget}
    opts = dict(solver=solver, time_limit=0.2, streams=streams, **extra, **limit)
    started: list = []
    real = plan_module._solve_started
    fast = _planned(monkeypatch, g, opts, lambda m: m.setattr(
        plan_module, "_solve_started", lambda *a, **k: started.append(1) or real(*a, **k)))
    slow = _planned(monkeypatch, g, opts, _unshared)
    if any(p.solver.get("stopped") for p in (fast, slow)):
        pytest.skip("a wall-clock stop (a loaded machine): such a plan may not repeat")
    assert started   # (the shortcut was taken)
    assert fast.arena_bytes <= budget
    assert fast.to_json() == slow.to_json()
