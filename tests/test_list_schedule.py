"""``list_schedule`` with its candidate index (only the streams a unit's start can differ on, and the
free-est of the others) agrees exactly with the same scheduler trying every stream in use (its path below
``INDEXED_CANDIDATES``), on random graphs with views, events free and not, both modes, listed."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from strategies import graphs

import memplan
from memplan.optimize import streams as S
from memplan.optimize.cost import CostModel, node_costs


def random_dag(seed: int, n: int) -> memplan.Graph:
    """A wide random DAG (fan-outs, joins, a few views and in-place writes) with uneven costs."""
    rng = random.Random(seed)
    b = memplan.GraphBuilder(f"dag{seed}")
    made = [b.input("x", 256)]
    for i in range(n):
        ins = rng.sample(made, min(len(made), rng.choice((1, 1, 2, 3))))
        out = b.tensor(f"t{i}", rng.choice((64, 256, 4096)))
        b.node(f"n{i}", rng.choice(("ADD", "MUL_MAT", "SOFTMAX")), ins, out, cost=rng.choice((0.0, 1.0, 3.0, 20.0)))
        made.append(out)
        if rng.random() < 0.1:
            v = b.view(f"v{i}", out, 64, 0)
            vo = b.tensor(f"w{i}", 64)
            b.node(f"m{i}", "ADD", [v], vo, cost=1.0)
            made.append(vo)
    b.output("y", 4)
    b.node("last", "ADD", made[-3:], "y")
    return b.build()


def every_stream(monkeypatch, U, k, ev, **kw):
    """``list_schedule`` trying every stream in use for every unit (the index never used)."""
    with monkeypatch.context() as mp:
        mp.setattr(S, "INDEXED_CANDIDATES", 1 << 30)
        return S.list_schedule(U, k, ev, **kw)


def _agree(g: memplan.Graph, ks, monkeypatch) -> None:
    U = S.build_units(g, node_costs(g, CostModel()))
    for k in ks:
        for kw in (dict(mode="eft"), dict(mode="est"), dict(listed=True)):
            for ev in (2.0, 0.0):
                want = every_stream(monkeypatch, U, k, ev, **kw)
                with monkeypatch.context() as mp:
                    mp.setattr(S, "INDEXED_CANDIDATES", 0)   # the index on every unit, whatever the stream count
                    assert S.list_schedule(U, k, ev, **kw) == want, (k, kw, ev)


@settings(max_examples=150, deadline=None)
@given(graphs(max_nodes=9))
def test_indexed_candidates_choose_as_every_stream_does(g):
    with pytest.MonkeyPatch.context() as mp:
        _agree(g, (1, 2, 3, 5), mp)


@pytest.mark.parametrize("seed", range(12))
def test_indexed_candidates_on_wide_random_dags(seed, monkeypatch):
    _agree(random_dag(seed, 120), (2, 7, 40), monkeypatch)


def test_a_run_of_costless_units_does_not_pile_up_in_the_stream_index(monkeypatch):
    """The index of streams by free time took one entry per placed unit; a costless unit leaves its
    stream's free time as it was, so a run of them (view ops: cost 0) on the free-est stream stacked
    live duplicates at the top, and every later unit reading that stream popped and pushed them all
    back: 8,000 costless units took 9.6 s, not 0.05. Counted in heap pops, not seconds."""
    import heapq

    b = memplan.GraphBuilder("costless")
    x = b.input("x", 64)
    outs = []
    for i in range(20):   # 20 busy streams, so that the index is used
        outs.append(b.tensor(f"b{i}", 64))
        b.node(f"b{i}", "ADD", [x], outs[-1], cost=100.0)
    prev = x
    for i in range(3000):
        out = b.tensor(f"c{i}", 64)
        b.node(f"c{i}", "ADD", [prev], out, cost=0.0)
        prev = out
    b.node("y", "ADD", outs + [prev], b.output("y", 64), cost=1.0)
    g = b.build()
    U = S.build_units(g, node_costs(g, CostModel()))
    want = every_stream(monkeypatch, U, 64, 2.0)
    pops = [0]

    class Counting:
        heapify, heappush = staticmethod(heapq.heapify), staticmethod(heapq.heappush)

        @staticmethod
        def heappop(h):
            pops[0] += 1
            return heapq.heappop(h)

    monkeypatch.setattr(S, "heapq", Counting)
    got = S.list_schedule(U, 64, 2.0)
    assert got == want
    assert pops[0] <= 4 * len(U.deps), pops[0]
