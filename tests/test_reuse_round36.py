"""Round 36: ``memplan.ReuseIndex``: every tensor's ``Reuse`` under one plan from one build.

``reuse_after`` built the plan's happens-before and lifetimes for its one tensor, so an executor asking once per
tensor did quadratic work (a 20,000-node graph: 0.23 s a call, about 77 minutes for every tensor). An index built
once answers each tensor without rebuilding; ``reuse_after`` and ``reuse_table`` use it and keep their signatures
and answers. Checked against the round-34 implementation (copied here as it was) on random graphs and schedules."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_fuzz import dags
from strategies import graphs, schedules

import memplan
from memplan import examples as E
from memplan import reuse as R
from memplan.errors import OptionError, PlanMismatch, ScheduleError
from memplan.lifetimes import compute_lifetimes
from memplan.plan import plan_graph
from memplan.schedule import build_happens_before, schedule_of


def _old_table(graph, plan, fused_groups=False):
    """``reuse_table`` as round 35 left it (one happens-before and lifetimes build per call)."""
    hb = build_happens_before(graph, schedule_of(plan))
    lt = compute_lifetimes(graph, hb, fused_groups=fused_groups)
    device, streams_of = R._devices(plan, hb.num_streams)
    buf = {int(r): b for b, r in enumerate(lt.roots)}
    out = {}
    for t in graph.tensors:
        r = graph.root[graph.tensor_index[t.id]]
        b = buf.get(r)
        if b is None or lt.has_end[b]:
            out[t.id] = R.Reuse(t.id, graph.tensors[r].id, False, {}, {})
            continue
        per = {s: int(hb.stream_nodes[s][int(lt.last[b, s]) - 1]) for s in range(hb.num_streams) if lt.last[b, s] > 0}
        ends = R._maximal(hb, per)
        free_from = {s: graph.nodes[int(hb.stream_nodes[s][int(lt.visible[b, s])])].id
                     if int(lt.visible[b, s]) < len(hb.stream_nodes[s]) else None
                     for s in streams_of.get(device.get(graph.tensors[r].id, 0), ())}
        out[t.id] = R.Reuse(t.id, graph.tensors[r].id, True,
                            {int(hb.stream[n]): graph.nodes[n].id for n in ends}, free_from)
    return out


def _same_as_before(graph, plan, fused_groups=False):
    old = _old_table(graph, plan, fused_groups)
    index = memplan.ReuseIndex(graph, plan, fused_groups=fused_groups)
    assert index.table() == old
    assert memplan.reuse_table(graph, plan, fused_groups=fused_groups) == old
    for t in graph.tensors:
        assert index.after(t.id) == old[t.id], t.id
        assert memplan.reuse_after(graph, plan, t.id, fused_groups=fused_groups) == old[t.id], t.id


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_index_answers_as_reuse_after_did_on_random_graphs(data):
    g = data.draw(st.one_of(graphs(), dags()), label="graph")
    order, stream_of = data.draw(schedules(g, 3), label="schedule")
    plan = memplan.plan(g, memplan.schedule_with_events(g, order, stream_of))
    _same_as_before(g, plan, fused_groups=data.draw(st.booleans(), label="fused_groups"))


@pytest.mark.parametrize("name,devices", [("fanout_join15", 1), ("qkv_attention", 3), ("llama", 2)])
def test_index_answers_as_before_on_bundled_and_split_plans(name, devices):
    g = E.llama(E.LLAMA_TINY) if name == "llama" else getattr(E, name)()
    planned = plan_graph(g, streams=3) if devices == 1 else plan_graph(g, devices=devices, streams=2)
    _same_as_before(planned.graph, planned.plan)


def test_asking_for_every_tensor_builds_the_lifetimes_once(monkeypatch):
    """The quadratic cost was one happens-before and lifetimes build per question: an index builds each once."""
    calls = {"hb": 0, "lt": 0}

    def counted(key, f):
        def wrapper(*a, **k):
            calls[key] += 1
            return f(*a, **k)
        return wrapper

    monkeypatch.setattr(R, "build_happens_before", counted("hb", R.build_happens_before))
    monkeypatch.setattr(R, "compute_lifetimes", counted("lt", R.compute_lifetimes))
    g = E.fanout_join15()
    plan = memplan.plan(g, streams=3)
    index = memplan.ReuseIndex(g, plan)
    answers = [index.after(t.id) for t in g.tensors] + list(index.table().values())
    assert len(answers) == 2 * len(g.tensors)
    assert calls == {"hb": 1, "lt": 1}


def test_index_refuses_bad_input_by_name():
    g = E.qkv_attention()
    p = memplan.plan(g, streams=3)
    with pytest.raises(OptionError, match="fused_groups"):
        memplan.ReuseIndex(g, p, fused_group=True)
    with pytest.raises(ScheduleError, match="ReuseIndex: fused_groups"):
        memplan.ReuseIndex(g, p, fused_groups=1)
    with pytest.raises(ScheduleError, match="ReuseIndex needs a memplan Plan"):
        memplan.ReuseIndex(g, p.to_json())
    with pytest.raises(PlanMismatch, match="plan was made for graph 'qkv', not 'chain4'"):
        memplan.ReuseIndex(E.chain(), p)
    index = memplan.ReuseIndex(g, p)
    with pytest.raises(ScheduleError, match="ReuseIndex: graph .* has no tensor 'nope'"):
        index.after("nope")
    with pytest.raises(ScheduleError, match="not the one string 'xn'"):
        index.table("xn")
    with pytest.raises(ScheduleError, match="reuse_after: graph .* has no tensor 'nope'"):
        memplan.reuse_after(g, p, "nope")
