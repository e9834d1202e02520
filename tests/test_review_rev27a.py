"""Review of session 27's core changes (rev27a).

- CP-SAT now solves in a worker thread (``cpsat._run``, for its Ctrl-C handling), so the progress callback runs
  there: before, with one worker, CP-SAT called it in the caller's thread, where it saw the caller's ContextVars.
  The worker now runs in a copy of the caller's context.
- ``heuristics_over`` skipping candidates under a memory budget must change no plan and no refusal: checked
  against full planning (the shortcut turned off) on random graphs, stream counts and budgets.
"""

from __future__ import annotations

import contextvars
import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from problems import random_intervals
from strategies import graphs

import memplan
from memplan.errors import BudgetError
from memplan.solvers import SolveOptions, solve

plan_module = importlib.import_module("memplan.plan")

_CALLER = contextvars.ContextVar("rev27a_caller", default="unset")


def test_cpsat_progress_callback_sees_the_callers_context_vars():
    seen: list[str] = []
    token = _CALLER.set("caller")
    try:
        solve(random_intervals(seed=3, n=60), "cpsat",
              SolveOptions(time_limit=0.5, progress=lambda *a: seen.append(_CALLER.get())))
    finally:
        _CALLER.reset(token)
    assert seen and set(seen) == {"caller"}, seen


def _plan_or_refusal(graph, **kw):
    try:
        return memplan.plan(graph, **kw).to_json()
    except BudgetError as exc:
        return f"BudgetError: {exc}"


@settings(max_examples=60, deadline=None)
@given(graph=graphs(max_nodes=10), streams=st.sampled_from([None, 2, 3, "auto"]),
       solver=st.sampled_from(["auto", "greedy", "size"]), frac=st.floats(0.3, 1.3))
def test_a_budget_gives_the_plan_or_refusal_of_full_planning(graph, streams, solver, frac):
    """The same bytes (or the same refusal) with ``heuristics_over`` as with every candidate planned in full."""
    serial = memplan.plan(graph, solver=solver).arena_bytes
    kw = dict(solver=solver, streams=streams, memory_budget=int(serial * frac))
    fast = _plan_or_refusal(graph, **kw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plan_module, "heuristics_over", lambda *a: None)
        full = _plan_or_refusal(graph, **kw)
    assert fast == full
