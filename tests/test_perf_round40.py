"""Round 40, scale of ``graph_optimize`` at many streams: the stream choice costs what it must, not k per unit.

A fork to 5,000 branches on 1,024 streams took 47 s in ``graph_optimize`` (4 s with streams="auto"): once every
stream had waited for the fork's source, each branch's candidate index (``indexed_candidates``) listed every
stream, and emptied and refilled the index of streams by free time to find the free-est of the others. The
free-est stream, which knows the source too, wins every ranking, and ``scanned_candidates`` tries streams
free-est first and stops where no later one can win. These tests pin the work by operation counts (candidate
streams scored, heap pops), never by time, and the choice against the scheduler that tries every stream.
"""

from __future__ import annotations

import heapq
import random

import pytest
from hypothesis import given, settings
from strategies import graphs
from test_list_schedule import random_dag

import memplan
from memplan import GraphBuilder
from memplan.optimize import streams as S
from memplan.optimize.cost import CostModel, node_costs


def fork_join(width: int, name: str = "fork") -> memplan.Graph:
    """A source, ``width`` branches reading it (uneven costs) and one join of them all."""
    b = GraphBuilder(name, alignment=1)
    x = b.input("x", 16)
    src = b.tensor("src", 16)
    b.node("src", "OP", [x], src, cost=1.0)
    outs = []
    for i in range(width):
        outs.append(b.tensor(f"b{i}", 16))
        b.node(f"b{i}", "OP", [src], outs[-1], cost=float(1 + (3 * i) % 5))
    b.node("join", "OP", outs, b.output("y", 16), cost=1.0)
    return b.build()


def layered(width: int, layers: int, seed: int = 0) -> memplan.Graph:
    """``layers`` fork/join layers of ``width`` branches, some two units deep, some reading the layer before's
    branches too (joins of a few streams), with random costs: the knowers of a stream change every layer."""
    rng = random.Random(seed)
    b = GraphBuilder(f"layers{seed}", alignment=1)
    hub = b.input("x", 16)
    prev: list[str] = []
    for L in range(layers):
        outs = []
        for i in range(width):
            ins = [hub] + ([rng.choice(prev)] if prev and rng.random() < 0.3 else [])
            t = b.tensor(f"t{L}_{i}", 16)
            b.node(f"n{L}_{i}", "OP", ins, t, cost=float(rng.choice((0, 1, 2, 5))))
            if rng.random() < 0.3:
                t2 = b.tensor(f"u{L}_{i}", 16)
                b.node(f"m{L}_{i}", "OP", [t], t2, cost=float(rng.choice((1, 3))))
                t = t2
            outs.append(t)
        hub = b.tensor(f"h{L}", 16, "output" if L == layers - 1 else "intermediate")
        b.node(f"j{L}", "OP", outs, hub, cost=1.0)
        prev = outs
    return b.build()


def units(g: memplan.Graph) -> S.Units:
    return S.build_units(g, node_costs(g, CostModel()))


def run(mp: pytest.MonkeyPatch, U: S.Units, k: int, ev: float, how: str, **kw) -> tuple:
    """``list_schedule_twin``'s result with the candidate streams found ``how``: "every" (every stream in use,
    the reference), "index" (``indexed_candidates`` only), "scan" (``scanned_candidates`` only, never giving
    up), "mixed" (a scan that gives up after one stream, for the index)."""
    knobs = {"every": dict(INDEXED_CANDIDATES=1 << 30),
             "index": dict(INDEXED_CANDIDATES=0, SCAN_ABOVE=1 << 30),
             "scan": dict(INDEXED_CANDIDATES=0, SCAN_ABOVE=-1, SCAN_CANDIDATES=1 << 30),
             "mixed": dict(INDEXED_CANDIDATES=0, SCAN_ABOVE=-1, SCAN_CANDIDATES=1)}[how]
    with mp.context() as m:
        for name, value in knobs.items():
            m.setattr(S, name, value)
        return S.list_schedule_twin(U, k, ev, **kw)


def agree(mp: pytest.MonkeyPatch, g: memplan.Graph, ks, *, chains: bool = True) -> None:
    """Every way of finding candidates chooses what trying every stream chooses, twins included, in every mode."""
    U = units(g)
    kws: list[dict] = [dict(mode="eft"), dict(mode="est"), dict(listed=True, twin=False)]
    if chains:
        kws.append(dict(mode="eft", chain_pred=S.chain_cover(U, S.unit_succs(U, 1 << 30)), twin=False))
    for k in ks:
        for kw in kws:
            for ev in (2.0, 0.0):
                want = run(mp, U, k, ev, "every", **kw)
                for how in ("index", "scan", "mixed"):
                    assert run(mp, U, k, ev, how, **kw) == want, (g.name, k, kw, ev, how)


@settings(max_examples=120, deadline=None)
@given(graphs(max_nodes=12))
def test_scanned_candidates_choose_as_every_stream_does(g):
    with pytest.MonkeyPatch.context() as mp:
        agree(mp, g, (1, 2, 3, 6))


@pytest.mark.parametrize("seed", range(8))
def test_scanned_candidates_on_wide_random_dags(seed, monkeypatch):
    agree(monkeypatch, random_dag(seed, 150), (3, 20, 1024), chains=seed % 2 == 0)


@pytest.mark.parametrize("graph", [fork_join(300), layered(40, 4, 1), layered(70, 3, 2)], ids=lambda g: g.name)
def test_scanned_candidates_on_forks_and_layers(graph, monkeypatch):
    agree(monkeypatch, graph, (5, 17, 64, 1024))


def test_a_wide_fork_on_1024_streams_scores_a_few_streams_per_branch():
    """5,000 branches on 1,024 streams: each branch scored every stream (5.1M streams scored per run, 47 s for
    ``graph_optimize``); now the free-est stream and the next one, plus the join's streams."""
    g = fork_join(5000)
    U = units(g)
    for kw in (dict(mode="eft"), dict(mode="est"), dict(listed=True)):
        stats: dict[str, int] = {}
        S.list_schedule_twin(U, 1024, 2.0, stats=stats, **kw)
        assert stats["scored"] <= 4 * len(U.members) + 2 * 1024, (kw, stats)


def test_a_wide_fork_pops_the_stream_index_a_few_times_per_branch(monkeypatch):
    """The same in heap pops (a count the old code had too): with every stream knowing the source, each branch
    popped every stream off the index of free times to find one that did not, and pushed them all back."""
    pops = [0]

    class Counting:
        heapify, heappush = staticmethod(heapq.heapify), staticmethod(heapq.heappush)

        @staticmethod
        def heappop(h):
            pops[0] += 1
            return heapq.heappop(h)

    g = fork_join(2000)
    U = units(g)
    want = run(monkeypatch, U, 64, 2.0, "every")
    monkeypatch.setattr(S, "heapq", Counting)
    assert S.list_schedule_twin(U, 64, 2.0) == want
    assert pops[0] <= 6 * len(U.deps), pops[0]


def test_graph_optimize_on_a_wide_fork_is_the_every_stream_choice(monkeypatch):
    """The whole optimizer (every family and stream count up to 1,024) gives the schedule it gives when every
    unit tries every stream: byte-identical plans."""
    g = fork_join(400)
    got = memplan.graph_optimize(g, 1024)
    monkeypatch.setattr(S, "INDEXED_CANDIDATES", 1 << 30)
    assert memplan.graph_optimize(g, 1024) == got
