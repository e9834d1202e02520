"""Review of session 27's core changes (rev27a).

- CP-SAT now solves in a worker thread (``cpsat._run``, for its Ctrl-C handling), so the progress callback runs
  there: before, with one worker, CP-SAT called it in the caller's thread, where it saw the caller's ContextVars.
  The worker now runs in a copy of the caller's context. A solve left by a second Ctrl-C is stopped even when
  both came before its search began.
- ``heuristics_over`` skipping candidates under a memory budget must change no plan and no refusal: checked
  against full planning (the shortcut turned off) on random graphs, stream counts and budgets.
"""

from __future__ import annotations

import contextvars
import importlib
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from needs import sigint_default
from problems import random_intervals
from strategies import graphs

import memplan
from memplan.errors import BudgetError
from memplan.solvers import SolveOptions, solve

plan_module = importlib.import_module("memplan.plan")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CALLER = contextvars.ContextVar("rev27a_caller", default="unset")


def test_cpsat_progress_callback_sees_the_callers_context_vars(monkeypatch):
    from memplan.solvers import auto

    # (a named exact solver starts from the default's plan, whose small search proves 60 buffers: round 34)
    monkeypatch.setattr(auto, "POLISH_BUFFERS", 0)
    monkeypatch.setattr(auto, "POLISH_WIDE_BUFFERS", 0)   # (round 59: its gap-gated tier too)
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


def test_a_solve_left_by_a_second_ctrl_c_before_its_search_began_still_stops():
    """A second Ctrl-C makes ``cpsat._run`` stop waiting (the plan comes back "interrupted") while the solve ends in
    the background. Both Ctrl-Cs before CP-SAT's search began (a large model still loading): the stop was asked
    of a solve not yet started, which CP-SAT does not keep, and nobody asked again, so the abandoned solve ran its
    whole wall-clock limit on the caller's cores. (A subprocess: real SIGINTs.)"""
    code = textwrap.dedent("""
        import os, signal, sys, threading, time
        sys.path.insert(0, "tests")
        from problems import random_intervals
        from ortools.sat.python import cp_model
        from memplan.solvers import SolveOptions, auto, solve
        auto.SKYLINE_BUFFERS = 0   # (round 60: the default's skyline walks, before CP-SAT, would take both Ctrl-Cs)
        solve(random_intervals(seed=3, n=5), "cpsat", SolveOptions(time_limit=5))   # (round 68: what the solve imports
        # on first use is imported now: on a loaded machine those imports outlasted 0.2 s and took the first Ctrl-C)
        real = cp_model.CpSolver.solve
        def slow(self, *a, **k):   # a model that takes a while to load: both Ctrl-Cs come before the search
            time.sleep(0.6)
            return real(self, *a, **k)
        cp_model.CpSolver.solve = slow
        def kicks():
            time.sleep(0.2); os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1); os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=kicks, daemon=True).start()
        sol = solve(random_intervals(seed=3, n=400), "cpsat", SolveOptions(time_limit=30))
        print("interrupted", sol.info.get("interrupted"), flush=True)
        deadline = time.time() + 4
        while time.time() < deadline and any(t.name == "memplan-cpsat" for t in threading.enumerate()):
            time.sleep(0.05)
        print("still solving", any(t.name == "memplan-cpsat" for t in threading.enumerate()), flush=True)
    """)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, preexec_fn=sigint_default, cwd=REPO, env=env)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-2000:])
    assert r.stdout.split("\n")[:2] == ["interrupted True", "still solving False"], r.stdout
