"""Round 49 (opt49): graph_optimize's options and the memory-budget path of ``memplan.plan``."""

from __future__ import annotations

import warnings

import pytest

import memplan
from memplan.errors import UnusedOption
from memplan.examples import qkv_attention


def test_graph_optimize_one_stream_warns_of_max_events():
    """``graph_optimize(g, 1, max_events=3)`` was taken silently (as if the cap shaped the schedule), while
    ``plan(streams=1, max_events=3)`` and ``memplan plan --streams 1 --max-events 3`` warn: now it warns too,
    naming the option, and returns the one-stream schedule."""
    g = qkv_attention()
    with pytest.warns(UnusedOption, match=r"max_events=3 has no effect with max_streams=1"):
        sched = memplan.graph_optimize(g, 1, max_events=3)
    assert sched == memplan.graph_optimize(g, 1)
    assert sched.num_streams == 1 and not sched.events


def test_graph_optimize_warning_points_at_the_caller():
    g = qkv_attention()
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        memplan.graph_optimize(g, 1, max_events=0)
    assert [w.category for w in got] == [UnusedOption]
    assert got[0].filename == __file__


def test_graph_optimize_no_warning_where_the_cap_applies():
    g = qkv_attention()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(memplan.graph_optimize(g, 3, max_events=0).events) == 0
        memplan.graph_optimize(g, 1)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", float("nan")])
def test_graph_optimize_one_stream_bad_max_events_refused_first(bad):
    """A bad cap is a ScheduleError naming ``max_events`` (before the warning of one stream)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(memplan.errors.ScheduleError, match="max_events"):
            memplan.graph_optimize(qkv_attention(), 1, max_events=bad)
