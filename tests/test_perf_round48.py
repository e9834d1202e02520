"""Round 48: ``events.Replay`` keeps dense clocks (a numpy row per clock) above ``DENSE_STREAMS`` streams.

``memplan.plan(g, streams=1024, max_events=500)`` on a layered random DAG (each node reading 1-3 outputs of the
layer before) spent nearly all its time in ``budget.score_forks``: almost every unit is a fork of its own, each
fork's give-back is replayed (``Replay.rescore`` / ``_run``), and every event merged a dict clock that knows
nearly every one of the streams entry by entry (O(streams) Python steps an event). A dense row merges in one
numpy step. The dict clocks stay below ``DENSE_STREAMS`` streams, and are the reference here: both give the same
events, makespans, pairs and plans. No times: the bound counts merge steps (``Replay.merge_steps``).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memplan
from memplan.generators import SIZES
from memplan.graph import GraphBuilder
from memplan.optimize import events as E
from memplan.optimize.cost import CostModel, node_costs
from memplan.optimize.events import Replay


def layered(layers: int, width: int, seed: int = 0, fanin: int = 3) -> memplan.Graph:
    """``layers`` layers of ``width`` nodes, each reading 1..``fanin`` random outputs of the layer before."""
    rng = random.Random(seed)
    b = GraphBuilder(f"layered-{layers}x{width}")
    prev = [b.input(f"x{i}", rng.choice(SIZES)) for i in range(width)]
    for L in range(layers):
        cur = []
        for i in range(width):
            ins = sorted({rng.choice(prev) for _ in range(rng.randint(1, fanin))})
            last = L == layers - 1
            t = b.output(f"y{i}", rng.choice(SIZES)) if last else b.intermediate(f"t{L}_{i}", rng.choice(SIZES))
            b.node(f"n{L}_{i}", "OP", ins, t, cost=float(rng.randint(2, 40)))
            cur.append(t)
        prev = cur
    return b.build()


def _dict_clocks(monkeypatch):
    """Every Replay made from here on keeps dict clocks (the code before dense rows)."""
    monkeypatch.setattr(E, "DENSE_STREAMS", 1 << 30)


def _topo(g: memplan.Graph) -> list[int]:
    return [g.node_index[n] for n in memplan.schedule.serial_schedule(g).order]


def _runs(g, order, streams, cost, ev, marks, moves):
    """(events, makespan, pairs) of a run, of ``rerun``/``branch`` from each mark, and ``rescore`` of each move."""
    rp = Replay(g, order, streams, cost, ev, marks, record=True)
    out = [(rp.events, rp.makespan, tuple(rp.pairs))]
    for p, new in moves:
        s2 = list(streams[:p]) + new
        out.append(rp.rerun(p, s2))
        br = rp.branch(p, s2)
        out.append((br.events, br.makespan, tuple(br.pairs)))
    for p, new in moves:   # (``rescore`` and ``rerun_window`` move nodes onto the run's own streams only)
        s2 = list(streams[:p]) + [s % (max(streams) + 1) for s in new]
        out.append(rp.rerun_window(p, min(len(order), p + 7), s2[p:p + 7]))
    win = Replay(g, order, streams, cost, ev, windows=True)
    for p, new in moves:
        new = [s % (max(streams) + 1) for s in new]
        moved = {order[q]: s for q, s in zip(range(p, len(order)), new) if s != streams[q]}
        for stop in (len(order), min(len(order), p + 5)):
            out.append(win.rescore(p, stop, {v: s for v, s in moved.items() if order.index(v) < stop}))
    return out, rp.dense


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.0, 2.0]), st.integers(2, 60))
def test_dense_replay_is_the_dict_replay(seed, ev, n_streams):
    """Random layered graphs on random streams: forced dense rows (``DENSE_STREAMS=0``) and dict clocks agree on
    every number and pair of a run, its reruns, branches, windows and rescores."""
    rng = random.Random(seed)
    g = layered(rng.randint(2, 6), rng.randint(2, 12), seed=seed)
    cost = node_costs(g, CostModel())
    order = _topo(g)
    drawn = [rng.randrange(n_streams) for _ in order]
    first = {x: i for i, x in reversed(list(enumerate(dict.fromkeys(drawn))))}
    streams = [first[x] for x in drawn]   # (ids by first use, as the optimizer numbers them)
    marks = sorted({rng.randrange(len(order)) for _ in range(3)})
    # (new streams up to n_streams + 3: past the run's rows, ``rerun`` and ``branch`` make a whole run)
    moves = [(p, [rng.randrange(n_streams + 3) if rng.random() < 0.3 else s for s in streams[p:]]) for p in marks]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(E, "DENSE_STREAMS", 0)
        dense, width = _runs(g, order, streams, cost, ev, marks, moves)
    with pytest.MonkeyPatch.context() as mp:
        _dict_clocks(mp)
        ref, none = _runs(g, order, streams, cost, ev, marks, moves)
    assert width == max(streams) + 1 and none == 0
    assert dense == ref


@pytest.mark.parametrize("kw, seeds", [({"streams": 1024, "max_events": 40}, (0,)), ({"streams": 64, "max_events": 5}, (1,)),
                                       ({"streams": 1024, "memory_budget": 0.9}, (1,)), ({"streams": 1024}, (0,))])
def test_plans_are_the_dict_clock_plans(monkeypatch, kw, seeds):
    """Plans of layered graphs with more than ``DENSE_STREAMS`` streams: byte-identical to the dict clocks'. (Each
    option set on one of the two graphs, each graph under two option sets: every option set on both graphs planned
    the same path twice, 4 s of CI.)"""
    widths = []
    real = E._dense_width
    monkeypatch.setattr(E, "_dense_width", lambda streams: widths.append(real(streams)) or widths[-1])
    for seed in seeds:
        g = layered(4, 60, seed=seed)
        kw = dict(kw)
        if "memory_budget" in kw:
            kw["memory_budget"] = int(memplan.plan(g).arena_bytes * kw["memory_budget"])
        new = memplan.plan(g, **kw).to_json()
        with pytest.MonkeyPatch.context() as mp:
            _dict_clocks(mp)
            old = memplan.plan(g, **kw).to_json()
        assert new == old
    assert max(widths) > E.DENSE_STREAMS   # (dense rows were made)


def test_many_streams_merge_one_row_per_event(monkeypatch):
    """The layered shape of the report at 2,000 nodes on ~100 streams: each event's merge is one row (at most one
    step an event, in the run and in every rescore), where the dict clocks took about one step per stream known."""
    g = layered(20, 100, seed=1)
    cost = node_costs(g, CostModel())
    order = _topo(g)
    rng = random.Random(0)
    streams = [i % 100 for i in range(len(order))]
    rp = Replay(g, order, streams, cost, 2.0, windows=True)
    assert rp.dense == 100
    assert 0 < rp.merge_steps <= rp.events
    steps = rp.merge_steps
    for p in sorted(rng.sample(range(len(order)), 20)):
        before = rp.merge_steps
        got = rp.rescore(p, len(order), {order[p]: (streams[p] + 1) % 100})
        assert rp.merge_steps - before <= got[0]
    _dict_clocks(monkeypatch)
    ref = Replay(g, order, streams, cost, 2.0, windows=True)
    assert ref.dense == 0 and (ref.events, ref.makespan) == (rp.events, rp.makespan)
    assert ref.merge_steps > 20 * steps   # (the cost the rows removed: ~50 entries an event here)


def test_foreign_stream_past_the_rows(monkeypatch):
    """A stream id past a dense Replay's rows: ``rerun`` and ``branch`` make a whole run (the dict clocks' numbers),
    ``rescore`` (which writes into the run's rows) is a ValueError naming it, never a wrong index."""
    g = layered(2, 40)
    order = _topo(g)
    cost = node_costs(g, CostModel())
    streams = list(range(len(order)))
    rp = Replay(g, order, streams, cost, 2.0, [3], record=True)
    assert rp.dense == len(order)
    s2 = streams[:3] + [len(order) + 5] * (len(order) - 3)
    got = rp.rerun(3, s2)
    br = rp.branch(3, s2)
    win = Replay(g, order, streams, cost, 2.0, windows=True)
    _dict_clocks(monkeypatch)
    ref = Replay(g, order, s2, cost, 2.0, record=True)
    assert got == (ref.events, ref.makespan) == (br.events, br.makespan) and br.pairs == ref.pairs
    with pytest.raises(ValueError, match="stream id"):
        win.rescore(3, len(order), {order[3]: len(order) + 5})


def test_bench_scale_layered_shape():
    """``memplan bench scale --layered N``: N nodes in layers of at most ``LAYER_WIDTH``, each node reading 1-3
    outputs of the layer before (the last layer's are the graph's outputs); one case runs as the others do."""
    from memplan.benchmarks import scale

    g = scale.layered_graph(205)   # (layers of 11: 18 of them, then 7)
    assert len(g.nodes) == 205 and len(g.tensors) == 205 + 11
    outs = [t for t in g.tensors if t.kind == "output"]
    assert len(outs) == 7 and all(1 <= len(g.node_inputs[i]) <= 3 for i in range(len(g.nodes)))
    assert len(scale.layered_graph(30_000).nodes) == 30_000
    row = scale.measure("layered", 200, "auto", streams=64)
    assert row["graph"] == "layered" and row["tensors"] == 200 + 10
    assert "layered" in scale.CASE_KINDS and "layered" in scale.FAMILIES
