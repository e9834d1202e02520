"""Round 42, ``graph_optimize``: the streams that know an input are looked up by how much they know.

``list_schedule``'s candidate index (``indexed_candidates``) lists, for each input of a unit, the streams that
synchronised with the input's writer or a later unit of its stream. It scanned every stream that ever knew the
input's stream (up to 1,024) for the few that knew that far: most of ``list_schedule``'s time on random DAGs at
1,024 streams (``random_dag(20000)``: 27 s of CPU against 4 s at 64; now 7.6 s). The streams are now kept by the
count they know, and the counts past the input's are looked up; the streams found are the same, so the schedules are.
"""

from __future__ import annotations

import pytest

from memplan.benchmarks.scale import random_dag
from memplan.optimize import streams as S
from memplan.optimize.cost import CostModel, node_costs


def units(n: int, window: int) -> S.Units:
    g = random_dag(n, window=window)
    return S.build_units(g, node_costs(g, CostModel()))


@pytest.mark.parametrize("kw", [dict(mode="eft"), dict(listed=True, twin=False)], ids=["eft", "listed"])
def test_the_index_looks_up_the_streams_past_an_input_not_every_knower(kw):
    """600 nodes of local reads on 1,024 streams (about 50 used): about 30 steps per unit find the streams that
    know its inputs (a count looked up, or a stream found); the scan of every knower of each input took 85."""
    U = units(600, 64)
    stats: dict[str, int] = {}
    S.list_schedule_twin(U, 1024, 2.0, stats=stats, **kw)
    assert stats["looked"] <= 50 * len(U.members), stats


@pytest.mark.parametrize("window", [8, 150])
def test_the_index_by_count_chooses_as_every_stream_does(window, monkeypatch):
    """The index alone on every unit (``INDEXED_CANDIDATES`` 0, no scan first) picks what trying every stream
    picks, twins included, on random DAGs narrow and wide, with events and free."""
    U = units(150, window)
    for kw in (dict(mode="eft"), dict(listed=True, twin=False)):
        for ev in (2.0, 0.0):
            with monkeypatch.context() as m:
                m.setattr(S, "INDEXED_CANDIDATES", 1 << 30)
                want = S.list_schedule_twin(U, 1024, ev, **kw)
            with monkeypatch.context() as m:
                m.setattr(S, "INDEXED_CANDIDATES", 0)
                m.setattr(S, "SCAN_ABOVE", 1 << 30)
                assert S.list_schedule_twin(U, 1024, ev, **kw) == want, (window, kw, ev)
