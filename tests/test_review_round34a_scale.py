"""Round 34 review (review34a): scale34's rewrites give the offsets the code before them gave.

``greedy._sweep_streams`` now fills a later stream's heap when it is read (``_take_gone``, pruned from
``PRUNE_ROOM`` entries) and ``rejoin`` reads conflict lists (``_Neighbours``) where it scanned every buffer. Both
are compared with the functions of the commit before them (7b5e87c, read with ``git show``; skipped where the
checkout has no such history) on random multi-stream problems, the prune forced at every read too."""

from __future__ import annotations

import random
import subprocess
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_fuzz import dags
from strategies import graphs, schedules

import memplan
from memplan.benchmarks.scale import inplace_graph, moe_graph, random_dag, transformer_graph
from memplan.lifetimes import buffer_problem, compute_lifetimes
from memplan.schedule import build_happens_before, schedule_with_events
from memplan.solvers import greedy, rejoin
from memplan.solvers.exact_pairs import inplace_targets

BEFORE = "7b5e87c"
ROOT = Path(__file__).resolve().parent.parent


def _old(module: str) -> types.ModuleType:
    """``memplan.solvers.<module>`` as commit ``BEFORE`` had it (its relative imports: today's package)."""
    try:
        src = subprocess.run(["git", "show", f"{BEFORE}:memplan/solvers/{module}.py"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no git history with commit {BEFORE} here")
    mod = types.ModuleType(f"memplan.solvers._{module}_{BEFORE}")
    mod.__package__ = "memplan.solvers"
    exec(compile(src, f"{BEFORE}:{module}.py", "exec"), mod.__dict__)
    return mod


@pytest.fixture(scope="module")
def old():
    return _old("greedy"), _old("rejoin")


def _sweep(mod, p) -> list[int]:
    offsets = [0] * len(p)
    # (each module's sweep reads its own stream times: the old one's dense ``_stream_times``, this one's sparse)
    times = getattr(mod, "_stream_times", mod._sparse_stream_times)(p)
    # (round 52: today's sweeps take each in-place output's input with its shift, the old one the input alone)
    inplace_of = inplace_targets(p) if mod is greedy else {o: i for o, i in p.inplace}
    mod._sweep_streams(p, times, p.sweep_order().tolist(), p.sizes.tolist(), offsets, inplace_of)
    return offsets


def _same(old, p) -> None:
    old_greedy, old_rejoin = old
    # (problems with in-place pairs: since rounds 52-53 today's sweep puts an in-place output exactly over its
    # placed input (its shift, and past its input's root: ``exact_pairs.over_input``) where 7b5e87c's took the
    # input's own offset or none, so the two differ there by design; session 57 met such a draw under CI's fixed
    # example stream (hypothesis 6.170.27: pair (10, 8), 256 against 0). Those problems are still compared through
    # rejoin below, and the in-place placement has its own tests (test_inplace_round51/52, test_search_round53).)
    if not p.inplace:
        assert _sweep(greedy, p) == _sweep(old_greedy, p)
    sol = greedy.solve(p)
    a, b = old_rejoin.rejoin_inplace(p, sol), rejoin.rejoin_inplace(p, sol)
    assert (a is None) == (b is None) and (a is None or a.offsets.tolist() == b.offsets.tolist())


def _problem(g, order, stream_of):
    hb = build_happens_before(g, schedule_with_events(g, order, stream_of))
    return buffer_problem(g, hb, compute_lifetimes(g, hb), clique=False)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_small_problems(old, data):
    g = data.draw(st.one_of(graphs(), dags()), label="graph")
    order, stream_of = data.draw(schedules(g, 4), label="schedule")
    p = _problem(g, order, stream_of)
    if p.order is not None and len(p):
        _same(old, p)


@pytest.mark.parametrize("seed", range(6))
def test_scale_shapes_on_many_streams(old, seed):
    rng = random.Random(seed)
    g = [transformer_graph(rng.randint(2, 12), seed=seed), moe_graph(1, experts=rng.randint(8, 48), seed=seed),
         random_dag(rng.randint(50, 300), window=rng.randint(4, 48), seed=seed),
         inplace_graph(rng.randint(10, 80), ("one", "spread", "views")[seed % 3], seed=seed)][seed % 4]
    streams = rng.randint(3, 16)
    order = [n.id for n in g.nodes]
    deal = rng.randint(1, 4)
    p = _problem(g, order, {nid: (k // deal) % streams for k, nid in enumerate(order)})
    if p.order is not None:
        _same(old, p)
    assert memplan.plan(g).arena_bytes > 0


def _view_made_on_another_stream():
    """``i`` is first accessed on stream 0 (its view ``vi`` made there), after stream 0 saw ``j``'s last reader
    on stream 1, but ``i`` itself is made on stream 2, which never sees that reader: ``j`` is gone from stream 0 and
    still live for stream 2, the case ``_sweep_streams``' later-stream heaps are for (the shapes above never
    reach it: with those heaps left empty their offsets stay the same)."""
    b = memplan.GraphBuilder("later-heap")
    x = b.input("x", 256)
    j = b.tensor("j", 1024)
    b.node("p0", "OP", [x], [j])
    k = b.tensor("k", 256)
    b.node("r1", "OP", [j], [k])
    m = b.tensor("m", 256)
    b.node("w0", "OP", [k], [m])
    i = b.tensor("i", 1024)
    vi = b.view("vi", i, 0, 512)
    b.node("q0", "OP", [m], [vi])
    b.node("q2", "OP", [x], [i])
    b.node("z", "OP", [i, vi, m], [b.tensor("y", 256, "output")])
    g = b.build()
    order = ["p0", "r1", "w0", "q0", "q2", "z"]
    return g, _problem(g, order, {"p0": 0, "r1": 1, "w0": 0, "q0": 0, "q2": 2, "z": 0})


def test_a_buffer_gone_from_one_stream_still_blocks_for_a_later_one(old):
    _, p = _view_made_on_another_stream()
    _same(old, p)
    off = dict(zip(p.names, _sweep(greedy, p)))
    size = dict(zip(p.names, p.sizes.tolist()))
    assert off["i"] >= off["j"] + size["j"] or off["j"] >= off["i"] + size["i"]   # (i over j: j's reader races i)
