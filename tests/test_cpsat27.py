"""Round 27: how a CP-SAT solve that ended early is reported (no clock read, Ctrl-C caught by memplan), and the
optimizer's shortcuts that made a ``memory_budget`` plan faster (each checked against the code it replaces).

Each test names the input, what memplan did with it, and what it does now. None of them times anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from needs import sigint_default
from strategies import graphs, view_chains

from memplan.generators import fanout_join
from memplan.io.minimalloc import read_csv
from memplan.optimize import optimize
from memplan.optimize.budget import candidate_pool
from memplan.optimize.streams import schedule_makespan
from memplan.problem import BufferProblem
from memplan.solvers import SolveOptions, Status, cpsat, solve

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_stop_reason_from_the_responses_measured():
    """The responses of CP-SAT measured on a 10,011-buffer NoOverlap2D model (minimalloc D tiled 47 times): at
    ``time_limit=3`` (0.45 deterministic seconds) one run stopped after its presolve, UNKNOWN, 0.06 deterministic
    seconds, 12.6 s of its 22 s wall limit (CP-SAT's time limit predicts the next step from the longest so far: one
    9.5 s step merging NoOverlaps), which ``cpsat`` took for a Ctrl-C ("interrupted": it then skipped its other
    components and ``auto`` its search). Now only a Ctrl-C that memplan caught is "interrupted", any other stop short
    of the budget is the wall-clock safety stop, and no clock is read to tell them apart."""
    reason = cpsat.stop_reason
    assert reason(finished=False, interrupted=False, deterministic_time=0.0598, budget=0.45) == "wall_clock"
    assert reason(finished=False, interrupted=False, deterministic_time=0.1502, budget=0.15) is None   # budget spent
    assert reason(finished=False, interrupted=False, deterministic_time=0.7504, budget=0.75) is None
    assert reason(finished=True, interrupted=False, deterministic_time=0.01, budget=0.45) is None     # optimal early
    assert reason(finished=False, interrupted=True, deterministic_time=0.01, budget=0.45) == "interrupted"
    assert reason(finished=True, interrupted=True, deterministic_time=0.01, budget=0.45) == "interrupted"


def _two_components(minimalloc_dir: str) -> BufferProblem:
    """minimalloc's A twice, one copy after the other in time: two components, each above the proven bound."""
    a = read_csv(os.path.join(minimalloc_dir, "challenging", "A.1048576.csv")).problem()
    span = int(a.upper.max()) + 1
    return BufferProblem(sizes=np.tile(a.sizes, 2), lower=np.concatenate([a.lower, a.lower + span]),
                         upper=np.concatenate([a.upper, a.upper + span]))


def test_an_early_stop_that_is_no_ctrl_c_is_not_reported_interrupted(minimalloc_dir, monkeypatch):
    """CP-SAT stopping before its budget on its own (here made to, deterministically, by
    ``stop_after_first_solution``: the stand-in for its wall-clock limit firing in a presolve) was reported as a
    Ctrl-C, and the remaining components were skipped. Now it is reported as the wall-clock stop, which it is, and
    every component is still solved."""
    real_run = cpsat._run

    def early(solver, model, callback, **kw):
        solver.parameters.stop_after_first_solution = True
        return real_run(solver, model, callback, **kw)

    monkeypatch.setattr(cpsat, "_run", early)
    p = _two_components(minimalloc_dir)
    sol = solve(p, "cpsat", SolveOptions(time_limit=2))
    assert sol.info["components"] == 2 and sol.info["solved_components"] == 2
    assert "interrupted" not in sol.info and sol.info["stopped"] == "wall_clock"
    assert sol.status == Status.FEASIBLE and sol.info["gap"] > 0 and sol.lower_bound < sol.arena


def test_ctrl_c_stops_cpsat_and_python_still_handles_the_next_one():
    """A Ctrl-C during a CP-SAT solve was caught by CP-SAT's own handler, which then reset SIGINT to SIG_DFL: the
    next Ctrl-C anywhere in the process killed it outright (exit 130: no KeyboardInterrupt, no plan kept, for a
    second component, an ``auto`` search after CP-SAT, or the caller's own code). memplan now catches it for the
    solve: the plan comes back marked "interrupted" and a later Ctrl-C is a KeyboardInterrupt again. (A subprocess:
    the old behaviour would kill the test run.)"""
    code = textwrap.dedent("""
        import os, signal, time
        import memplan
        from memplan.benchmarks.scale import random_dag
        g = random_dag(100, seed=1)   # (the default's plan ends above its bound: a named solver works)
        sent = []
        def progress(msg):   # called on CP-SAT's first solution: a Ctrl-C then
            if not sent:
                sent.append(msg)
                os.kill(os.getpid(), signal.SIGINT)
        p = memplan.plan(g, solver="cpsat", time_limit=2, progress=progress)
        print("interrupted", p.solver.get("interrupted"), "stopped", p.solver.get("stopped"), flush=True)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            print("no KeyboardInterrupt")
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
    """)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, preexec_fn=sigint_default, cwd=REPO, env=env)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-2000:])
    assert r.stdout.split("\n")[:2] == ["interrupted True stopped None", "KeyboardInterrupt"], r.stdout


# ---- the optimizer's shortcuts (a 50,000-node memory_budget plan) ---------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.one_of(graphs(max_nodes=12), view_chains()))
def test_input_writers_are_the_writers_looked_up_per_input(g):
    """``Graph.input_writers`` (made once per graph for ``events.Replay``) splits each node's inputs as the replay
    loop looked them up on every pass: the producer of an input written at its root, or the input itself when a
    view on its chain is written (its writers then come from ``fold_writers``)."""
    for v, (direct, viewed) in enumerate(g.input_writers):
        want_direct, want_viewed = [], []
        for t in g.node_inputs[v]:
            j = g.written[t]
            if j < 0:
                continue
            if g.tensors[j].view_of is None:
                want_direct.append(g.producer[j])
            else:
                want_viewed.append(t)
        assert list(direct) == list(dict.fromkeys(want_direct)) and list(viewed) == want_viewed


@pytest.mark.parametrize("n,width,seed", [(60, 4, 0), (200, 8, 1), (400, 3, 2)])
def test_give_back_makespans_are_the_simulated_ones(n, width, seed):
    """``candidate_pool`` took each fork give-back's makespan from a second pass (``schedule_makespan``: ids mapped
    back to indices, then simulated); it now comes from the pass that finds the events (``scored_schedule``). Every
    candidate's makespan is the simulated one, bit for bit (they order the candidates)."""
    g, _ = fanout_join(n, max_width=width, seed=seed)
    opt = optimize(g, 4)
    pool = candidate_pool(g, opt)
    assert any(r.forks_total for r in pool)
    for r in pool:
        assert r.makespan_us == schedule_makespan(g, r.schedule, opt.cost, opt.event_us), r.name
