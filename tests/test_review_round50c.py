"""Review of round 50 (review50c): adversarial inputs against what the session merged.

ONNX import: onnxruntime names the body of the first inlined call of local function ``F`` ``_inlfunc_F_...`` by the
op's *name* alone, so with two functions ``F`` (two domains, or overloads) whichever it inlines first clashes with
a graph value ``_inlfunc_F_t`` where both bodies make ``t``; the check skipped every name several functions share,
and such a model (onnxruntime: "Duplicate definition of name (_inlfunc_F_t)") was planned.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_oracle import ort_refuses  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
FEEDS = {"x": np.ones((2, 3), np.float32)}


def _fn(domain: str, first_op: str, made: str = "t", overload: str = ""):
    f = helper.make_function(domain, "F", ["a"], ["b"],
                             [helper.make_node(first_op, ["a"], [made]), helper.make_node("Neg", [made], ["b"])],
                             [helper.make_opsetid("", 17)])
    if overload:
        f.overload = overload
    return f


def _model():
    """``F`` of domain ``local`` and ``F`` of domain ``other`` (bodies of other ops), both called; the graph has a
    value ``_inlfunc_F_t``."""
    nodes = [helper.make_node("Relu", ["x"], ["_inlfunc_F_t"], name="other_relu"),
             helper.make_node("F", ["_inlfunc_F_t"], ["y"], domain="local", name="call"),
             helper.make_node("F", ["y"], ["z"], domain="other", name="call2")]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3])], [V("z", T.FLOAT, [2, 3])])
    return helper.make_model(g, functions=[_fn("local", "Relu"), _fn("other", "Abs")], ir_version=8,
                             opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1),
                                            helper.make_opsetid("other", 1)])


def test_two_functions_of_one_name_that_both_make_the_clashing_value_are_refused():
    model = _model()
    assert ort_refuses(model, FEEDS)
    # (round 51: the one onnxruntime inlines first, the first listed call's, is named)
    with pytest.raises(GraphError, match=r"local function local:F \(of the local functions named local:F, other:F, "
                                         r"the one whose call onnxruntime inlines first\) \(called by node 'call'\): "
                                         r"onnxruntime inlines its value 't' as '_inlfunc_F_t', the name of value "
                                         r"'_inlfunc_F_t' of node 'other_relu'"):
        import_onnx(model)



# ---- Replay.rescore with dense clocks (rows, not dicts), and with no index of the view readers ----

def test_rescore_with_dense_clocks_and_no_view_reader_index_is_the_plain_replay(monkeypatch):
    """``tests/test_optimize_round50.py`` draws at most 5 streams, so its runs keep dict clocks; here every run is
    dense (``DENSE_STREAMS`` 1: a numpy row per clock, clock entries issue positions stored as int32) and the view
    readers are found by the fallback (``VIEW_READER_STEPS`` 0), with integer (tails) and fractional costs: the
    plain replay's numbers, the run left as it was."""
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st
    from strategies import graphs, schedules, view_chains

    from memplan.optimize import events
    from memplan.optimize.events import Replay

    monkeypatch.setattr(events, "DENSE_STREAMS", 1)
    monkeypatch.setattr(events, "VIEW_READER_STEPS", 0)
    ran = [0]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data(), st.sampled_from([0.0, 1.0, 0.5]), st.booleans())
    def check(data, ev, whole):
        g = data.draw(st.one_of(graphs(max_nodes=14), view_chains(max_nodes=14)))
        n = len(g.nodes)
        cost = data.draw(st.lists(st.integers(0, 9) if whole else st.sampled_from([0.0, 0.1, 0.25, 1.0]),
                                  min_size=n, max_size=n))
        order, stream_of = data.draw(schedules(g, max_streams=6))
        assume(len({stream_of[x] for x in order}) >= 2)   # (one stream: no dense clocks)
        ran[0] += 1
        o = [g.node_index[x] for x in order]
        s = [stream_of[x] for x in order]
        replay = Replay(g, o, s, cost, ev, range(len(o) + 1), record=data.draw(st.booleans()), windows=True)
        assert replay.dense
        base = (replay.events, replay.makespan, list(replay.end), [c.copy() for c in replay.clock])
        for _ in range(3):
            p = data.draw(st.integers(0, len(o) - 1))
            stop = len(o) if data.draw(st.booleans()) else data.draw(st.integers(p, len(o)))
            moved = {o[q]: data.draw(st.integers(0, replay.dense - 1))
                     for q in data.draw(st.lists(st.integers(p, max(p, stop - 1)), max_size=5)) if q < stop}
            window = [moved.get(v, s[q]) for q, v in enumerate(o)]
            got = replay.rescore(p, stop, moved)
            assert got == replay.rerun_window(p, stop, window[p:stop])
            if stop == len(o):
                full = Replay(g, o, window, cost, ev)
                assert got == (full.events, full.makespan)
            assert (replay.events, replay.makespan, list(replay.end)) == base[:3]
            assert all(np.array_equal(a, b) for a, b in zip(base[3], replay.clock))

    check()
    assert ran[0] >= 30, ran
