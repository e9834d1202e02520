"""Round 76 (opt76), ``graph_optimize`` on hostile DAGs.

A unit reading a view waits for every writer along the view's chain (``Units``: the latest one per stream). On a
chain of view ops whose views are each read (an ONNX Reshape/Identity chain imported as views, ggml VIEW nodes) at
1,024 streams with free events, the writers spread over every stream, so each reader had about a thousand of them,
and ``list_schedule_twin`` looped over all of them for each of up to a thousand candidate streams, and read one clock
column per writer in ``related``: ``plan(g, streams=1024)`` of a 4,001-node such chain ran for over five minutes (a
hang to the user), 2,001 nodes 13 s. Above ``WIDE_READS`` writers, each on its own stream, numpy now does the same
comparisons and float maxima for every candidate stream at once: the same schedules.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs

from memplan import GraphBuilder
from memplan.optimize import streams as S
from memplan.optimize.cost import CostModel, node_costs


def units(g) -> S.Units:
    return S.build_units(g, node_costs(g, CostModel()))


def view_chain(n: int):
    """``n`` view ops, each viewing the one before (a root made first), each view read by a 1 us node."""
    b = GraphBuilder("viewchain", alignment=64)
    b.input("x", 64)
    cur = b.intermediate("r", 4096)
    b.node("mk", "U", ["x"], cur, cost=1.0)
    for i in range(n):
        v = b.view(f"v{i}", cur, 4096)
        b.node(f"n{i}", "VIEW", [cur], v, cost=0.0)
        b.node(f"r{i}", "U", [v], b.output(f"o{i}", 64), cost=1.0)
        cur = v
    return b.build()


def _run(U, k, ev, wide_reads, monkeypatch, **kw):
    stats: dict[str, int] = {}
    with monkeypatch.context() as m:
        m.setattr(S, "WIDE_READS", wide_reads)
        out = S.list_schedule_twin(U, k, ev, stats=stats, **kw)
    return out, stats


def test_readers_of_a_view_chain_on_many_streams_are_placed_by_numpy(monkeypatch):
    """The free-event runs of a 120-view chain at 1,024 streams use a stream per reader; the readers of views deep
    in the chain are placed by numpy (``stats["wide"]``), where the loops found the streams that know their writers
    one column per writer, and choose as the loops do."""
    U = units(view_chain(120))
    for kw in (dict(mode="eft"), dict(mode="est"), dict(listed=True, twin=False)):
        want, slow = _run(U, 1024, 0.0, 1 << 30, monkeypatch, **kw)
        got, fast = _run(U, 1024, 0.0, S.WIDE_READS, monkeypatch, **kw)
        assert got == want, kw
        assert max(want[1]) + 1 > S.WIDE_READS, "the writers did not spread over the streams"
        assert fast.get("wide", 0) > 0 and "wide" not in slow, (fast, slow)
        assert fast["looked"] < slow["looked"] / 2, (fast, slow)


def test_numpy_placement_chooses_as_the_loops_on_chains_and_saturated_streams(monkeypatch):
    """Every unit placed by numpy where it can be (``WIDE_READS`` 0) and none (``1 << 30``): the same orders, streams
    and twins, with events and free, with all streams in use (48 streams, 80 views) and not."""
    for g, ks in ((view_chain(80), (33, 48, 1024)), (view_chain(20), (40,))):
        U = units(g)
        for k in ks:
            for kw in (dict(mode="eft"), dict(mode="est"), dict(listed=True, twin=False)):
                for ev in (0.0, 2.0):
                    want, _ = _run(U, k, ev, 1 << 30, monkeypatch, **kw)
                    got, _ = _run(U, k, ev, 0, monkeypatch, **kw)
                    assert got == want, (g.name, k, kw, ev)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(graphs(max_nodes=14), st.integers(33, 40), st.sampled_from([0.0, 2.0]), st.booleans())
def test_random_graphs_numpy_placement_and_loops_agree(monkeypatch, g, k, ev, listed):
    """On random graphs (views written into roots made later, groups, in-place pairs) with dense clocks from the
    second stream on, numpy placement of every unit it can place schedules as the loops do."""
    U = units(g)
    kw = dict(listed=True, twin=False) if listed else dict(mode="eft")
    with monkeypatch.context() as m:
        m.setattr(S, "DENSE_STREAMS", 1)
        want, _ = _run(U, k, ev, 1 << 30, m, **kw)
        got, _ = _run(U, k, ev, 0, m, **kw)
    assert got == want
