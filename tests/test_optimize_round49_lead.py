"""Round 49 (lead): ``list_schedule_twin`` turns its clocks dense only once more than ``DENSE_STREAMS`` streams are
in use, so a chain at 1,024 streams keeps the memory of 2 (``tests/test_optimize.py``'s chain test failed with the
width x width matrix made up front); the switch mid-run must not change a single choice."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import graphs
from test_optimize_round49 import _runs, _units

import memplan.optimize.streams as streams_module
from memplan.benchmarks.scale import layered_graph
from memplan.examples import chain


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(g=graphs(max_nodes=14))
def test_switching_to_dense_clocks_mid_run_makes_the_dict_clocks_schedules(g):
    """With ``DENSE_STREAMS`` at 1 the switch happens at the second stream used, with every kind of clock already
    made (shared rows, merged ones, empty ones): every family of runs gives the dict clocks' schedules and twins."""
    U = _units(g)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(streams_module, "DENSE_STREAMS", 1 << 30)
        expected = _runs(U, 8)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(streams_module, "DENSE_STREAMS", 1)
        assert _runs(U, 8) == expected


def test_a_chain_never_makes_dense_clocks(monkeypatch):
    """The matrix is made only when a 33rd stream is used: never on a chain, whatever the number of streams."""
    made = []
    real = streams_module._dense_clocks
    monkeypatch.setattr(streams_module, "_dense_clocks", lambda *a: made.append(1) or real(*a))
    U = _units(chain(300))
    streams_module.list_schedule_twin(U, 1024, 2.0)
    assert made == []

    streams_module.list_schedule_twin(_units(layered_graph(600)), 1024, 2.0)
    assert made == [1]


@pytest.mark.parametrize("switch_at", [1, 4, 32])
def test_switching_on_wide_graphs_makes_the_dict_clocks_schedules(monkeypatch, switch_at):
    """Graphs that use many streams, switched early (many clocks already merged) and at the default."""
    from memplan.benchmarks.scale import random_dag
    from memplan.examples import moe

    for g in (layered_graph(300), random_dag(300), moe()):
        U = _units(g)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(streams_module, "DENSE_STREAMS", 1 << 30)
            expected = _runs(U, 64)
        monkeypatch.setattr(streams_module, "DENSE_STREAMS", switch_at)
        assert _runs(U, 64) == expected, g.name
