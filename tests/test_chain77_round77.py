"""Round 77 (chain77): ``optimize.streams.chain_cover`` on dense graphs (an all-to-all layer, an MoE router fan)."""

from __future__ import annotations

import pytest
from line_counts import lines_run

import memplan
import memplan.optimize.streams as S
from memplan import GraphBuilder
from memplan.benchmarks.scale import layered_graph, random_dag
from memplan.optimize.cost import CostModel, node_costs
from memplan.schedule import check_schedule


def _all_to_all(width: int) -> memplan.Graph:
    """A layer of ``width`` nodes, each read by every node of the next layer of ``width`` (width^2 edges)."""
    b = GraphBuilder("all-to-all", alignment=64)
    x = b.input("x", 64)
    a = [b.intermediate(f"a{i}", 64) for i in range(width)]
    for i in range(width):
        b.node(f"A{i}", "U", [x], a[i], cost=float(1 + i % 3))
    for i in range(width):
        b.node(f"B{i}", "U", a, b.output(f"b{i}", 64), cost=float(1 + i % 5))
    return b.build()


def _units(g):
    U = S.build_units(g, node_costs(g, CostModel()))
    return U, S.unit_succs(U, S.CHAIN_COVER_STEPS * (len(U.deps) + sum(map(len, U.deps))))


def _matched(succs, pred) -> int:
    """The size of the matching ``pred`` (checked: along ``succs``, each unit the predecessor of at most one)."""
    taken = set()
    for v, u in enumerate(pred):
        if u >= 0:
            assert v in succs[u] and u not in taken, (u, v)
            taken.add(u)
    return len(taken)


def _cover_lines(g, limit: int) -> tuple[int, list[int]]:
    """Lines run in ``streams`` by ``chain_cover`` on ``g``'s units (AssertionError past ``limit``), and its result."""
    U, succs = _units(g)
    lines, pred = lines_run(S.__file__, lambda: S.chain_cover(U, succs), limit, "chain_cover")
    assert _matched(succs, pred) == len(g.nodes) // 2   # every A has a B: the minimum cover, width chains
    return lines, pred


def test_chain_cover_of_an_all_to_all_layer_is_linear_in_its_edges(monkeypatch):
    """Kuhn's augmenting paths grew with the matching on a dense layer (each search walked past every unit matched
    before it): units x edges steps, 10 s for 5,000 units of 450k edges, hours for a complete 2 x 2,500 layer, on
    every graph of up to 5,000 units ``graph_optimize`` sees. Past its work bound (``CHAIN_COVER_WORK``, 2 M steps, set
    to 0 here to see it at a size a tracer can count) the matching is finished by a greedy pass and Hopcroft-Karp
    phases: linear in the edges, the same (maximum) size."""
    monkeypatch.setattr(S, "CHAIN_COVER_WORK", 0, raising=False)
    small, _ = _cover_lines(_all_to_all(40), 10**7)
    big, pred = _cover_lines(_all_to_all(80), 10**7)
    assert big < 5 * small, (small, big)   # 4x the edges: 4x the lines (7.4x before)
    assert big < 30 * 80 * 80, big         # 14 lines per edge (99 before)
    _, again = _cover_lines(_all_to_all(80), 10**7)
    assert again == pred                   # deterministic


@pytest.mark.parametrize("cut", [0, 50, 1000])
def test_chain_cover_past_its_work_bound_is_still_a_maximum_matching(monkeypatch, cut):
    """Wherever Kuhn's search is cut off, the greedy pass and Hopcroft-Karp (given the steps they need) reach the
    maximum matching Kuhn's reaches (a minimum chain cover); and under the default bound these graphs keep Kuhn's
    very matching (their chain-pinned schedules, so their plans, are unchanged)."""
    graphs = [random_dag(300), random_dag(200, window=8, seed=2), layered_graph(300), _all_to_all(12),
              memplan.examples.moe(), memplan.examples.llama(memplan.examples.LlamaConfig(layers=2))]
    full = []
    for g in graphs:
        U, succs = _units(g)
        with monkeypatch.context() as m:
            m.setattr(S, "CHAIN_COVER_WORK", 10**12, raising=False)
            kuhn = S.chain_cover(U, succs)
        assert S.chain_cover(U, succs) == kuhn, g.name
        full.append((U, succs, _matched(succs, kuhn)))
    hopcroft_karp = S._hopcroft_karp
    monkeypatch.setattr(S, "CHAIN_COVER_WORK", cut)
    monkeypatch.setattr(S, "CHAIN_COVER_EDGE_WORK", 0)
    monkeypatch.setattr(S, "_hopcroft_karp", lambda adj, roots, ms, mp, budget: hopcroft_karp(adj, roots, ms, mp, 10**9))
    for g, (U, succs, size) in zip(graphs, full):
        assert _matched(succs, S.chain_cover(U, succs)) == size, g.name


def test_chain_cover_past_both_bounds_is_maximal_and_its_schedules_valid(monkeypatch):
    """With no steps at all the cover stays a valid (maximal) matching, and ``graph_optimize``'s chain-pinned
    candidates built on it are valid schedules."""
    monkeypatch.setattr(S, "CHAIN_COVER_WORK", 0)
    monkeypatch.setattr(S, "CHAIN_COVER_EDGE_WORK", 0)
    g = random_dag(150, seed=1)
    U, succs = _units(g)
    pred = S.chain_cover(U, succs)
    _matched(succs, pred)
    for u in range(len(U.members)):   # maximal: no unit without a chain successor has a free successor
        if u not in pred:
            assert all(pred[v] >= 0 for v in succs[u]), u
    opt = S.optimize(g, 4)
    chains = [c for c in opt.pool if c.name.startswith("chains-")]
    assert chains
    for c in chains:
        check_schedule(g, c.schedule)
