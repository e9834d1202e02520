"""Round 51, ``graph_optimize``: the streams that know an input, found without a whole column per unit; hostile
options and graphs refused by name.

``list_schedule_twin`` with dense clocks (above 32 streams) found the streams that know a unit's input by scanning
the input's stream's column of the clock matrix: every stream in use, per input, per unit. On a wide fork at 1,024
streams every branch reads the fork's source, which every stream knows: F x 1,024 cells to learn "more than 62".
Now a column every stream knows is remembered per stream (clocks only grow), and the others are read by blocks of
``KNOW_BLOCK`` streams whose largest count passes the input's. The streams found are the same, so the schedules are.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs

from memplan.benchmarks.scale import layered_graph, random_dag, wide_graph
from memplan.optimize import streams as S
from memplan.optimize.cost import CostModel, node_costs


def units(g) -> S.Units:
    return S.build_units(g, node_costs(g, CostModel()))


def test_a_wide_fork_does_not_read_every_stream_per_branch():
    """3,000 branches of one fork on 1,024 streams: about one step per branch finds that more than 62 streams know
    the source (the column scan took one per stream in use: 3 million)."""
    U = units(wide_graph(3000))
    stats: dict[str, int] = {}
    S.list_schedule_twin(U, 1024, 2.0, stats=stats)
    assert stats["looked"] <= 4 * len(U.members), stats


@pytest.mark.parametrize("make", [lambda: random_dag(400, window=8), lambda: random_dag(400, window=150),
                                  lambda: layered_graph(600), lambda: wide_graph(300)],
                         ids=["random-narrow", "random-wide", "layered", "wide"])
@pytest.mark.parametrize("block", [1, 4, 32])
def test_the_block_index_chooses_as_dict_clocks_do(make, block, monkeypatch):
    """Dense clocks with the block index (any block size, the index alone on every unit or the scan first) pick
    what dict clocks pick, twins included, with events and free."""
    U = units(make())
    for k in (64, 1024):
        for kw in (dict(mode="eft"), dict(listed=True, twin=False)):
            for ev in (2.0, 0.0):
                with monkeypatch.context() as m:
                    m.setattr(S, "DENSE_STREAMS", 1 << 30)
                    want = S.list_schedule_twin(U, k, ev, **kw)
                for indexed in (True, False):
                    with monkeypatch.context() as m:
                        m.setattr(S, "KNOW_BLOCK", block)
                        m.setattr(S, "DENSE_STREAMS", 2)
                        if indexed:
                            m.setattr(S, "INDEXED_CANDIDATES", 0)
                            m.setattr(S, "SCAN_ABOVE", 1 << 30)
                        got = S.list_schedule_twin(U, k, ev, **kw)
                    assert got == want, (k, kw, ev, indexed)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(max_nodes=14), st.integers(2, 40), st.sampled_from([0.0, 2.0]), st.booleans())
def test_random_graphs_dense_blocks_and_dict_clocks_agree(g, k, ev, listed):
    """On random graphs (views, groups, in-place), dense clocks from the second stream on, read by blocks of one
    stream with the index alone, schedule as dict clocks do."""
    U = units(g)
    kw = dict(listed=True, twin=False) if listed else dict(mode="eft")
    saved = S.DENSE_STREAMS, S.KNOW_BLOCK, S.INDEXED_CANDIDATES, S.SCAN_ABOVE
    try:
        S.DENSE_STREAMS = 1 << 30
        want = S.list_schedule_twin(U, k, ev, **kw)
        S.DENSE_STREAMS, S.KNOW_BLOCK, S.INDEXED_CANDIDATES = 1, 1, 0
        for scan_above in (1 << 30, 3):
            S.SCAN_ABOVE = scan_above
            assert S.list_schedule_twin(U, k, ev, **kw) == want, scan_above
    finally:
        S.DENSE_STREAMS, S.KNOW_BLOCK, S.INDEXED_CANDIDATES, S.SCAN_ABOVE = saved
