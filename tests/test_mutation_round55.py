"""Tests that kill mutants of the safety core that survived session 55's mutation run (docs/experiments/mutation_s55.py).

Each test names, in its docstring, the mutant it kills (module, line at the time, operator): a check in the verifier,
the lifetimes or the plan reader that the fast tests covering that module let a one-token slip through.
"""

from __future__ import annotations

import dataclasses

import pytest
from test_verify_round52 import _concurrent_chain  # the concurrently written view chain of round 52

import memplan
from memplan import GraphBuilder, plan_devices
from memplan.examples import LLAMA_TINY, llama
from memplan.lifetimes import compute_lifetimes
from memplan.schedule import build_happens_before, serial_schedule
from memplan.verify import check


@pytest.fixture(scope="module")
def two_devices():
    return plan_devices(llama(LLAMA_TINY), 2)


def test_valid_two_device_plan_has_no_findings(two_devices):
    """verify.py ``len(plan.device_arena_bytes) != D`` flipped to ``==``: every well-formed multi-device plan got a
    rule-4 finding and its device checks were skipped."""
    split, p = two_devices
    assert check(split.graph, p) == []


def test_negative_device_arena_is_its_own_finding(two_devices):
    """verify.py ``elif a < 0: bad(4, ...)`` skipped: a device arena of -5 bytes was only caught through the tensors
    it holds (a device holding none passed)."""
    split, p = two_devices
    bad = dataclasses.replace(p, device_arena_bytes=(p.device_arena_bytes[0], -5))
    assert (4, "device 1's arena of -5 bytes is negative") in check(split.graph, bad)


def test_node_on_device_past_the_last_is_a_finding_naming_the_range(two_devices):
    """verify.py ``not 0 <= d < D`` as ``not 0 <= d <= D`` (a node on device 2 of 2 accepted), and the message's
    ``D - 1`` as ``D`` ("outside 0..2")."""
    split, p = two_devices
    last = p.order[-1][0]
    bad = dataclasses.replace(p, node_devices=p.node_devices[:-1] + (2,))
    assert (1, f"node {last!r} runs on device 2, outside 0..1") in check(split.graph, bad)


@pytest.mark.parametrize(("k", "streams"), [(7, 3), (300, 20)])
def test_concurrent_writers_of_a_view_chain(k, streams):
    """verify.py ``if c == asked or step % _CHECKPOINT == 0`` without ``c == asked``: the chain fold kept only every
    256th view's latest writers, so asking for the last view of a chain crashed (KeyError) or read a stale set (the
    array form, taken once a chain's latest writers span 16 streams or more)."""
    g, doc = _concurrent_chain(k, streams, missing=-1)   # every stream's last writer waited for
    assert check(g, doc) == []
    g, doc = _concurrent_chain(k, streams, missing=1)
    found = check(g, doc)
    stream1 = {f"n{i}" for i in range(1, k) if i % streams == 1}   # no event from stream 1: each of its writers fails
    assert found and {r for r, _ in found} == {2}, found
    assert {m.split("writer '")[1].split("'")[0] for _, m in found} <= stream1, found
    assert found.total == len(stream1), (found.total, len(stream1))


def test_lifetimes_of_a_wrong_happens_before_is_a_schedule_error():
    """lifetimes.py ``check_happens_before``'s ``if not isinstance(hb, HappensBefore): raise`` skipped: None (or a
    schedule passed where its happens-before belongs) failed deep inside with an AttributeError; and one built for
    another graph is named as such."""
    small = llama(LLAMA_TINY)
    b = GraphBuilder("tiny")
    b.input("x", 64)
    b.node("a", "UNARY", ["x"], b.output("y", 64))
    other = b.build()
    hb = build_happens_before(other, serial_schedule(other))
    with pytest.raises(memplan.ScheduleError, match="built for another graph"):
        compute_lifetimes(small, hb)
    for wrong in (None, serial_schedule(small)):
        with pytest.raises(memplan.ScheduleError, match="needs a memplan HappensBefore"):
            compute_lifetimes(small, wrong)


def test_a_plan_in_code_missing_a_node_device_is_a_finding(two_devices):
    """verify.py ``if len(plan.node_devices) != len(plan.order) or ...: bad(4, ...)`` skipped: a Plan built in code
    with one node device too few was judged on the shorter list (its last node on no device at all)."""
    split, p = two_devices
    bad = dataclasses.replace(p, node_devices=p.node_devices[:-1])
    assert (4, "a multi-device plan needs a device for every order entry and every tensor") in check(split.graph, bad)


def _random_graph(seed: int, n: int, streams: int):
    """A random DAG of ``n`` UNARY/ADD nodes over earlier tensors, with a random stream per node (issue order: ids)."""
    import random
    rnd = random.Random(seed)
    b = GraphBuilder(f"rand{seed}")
    b.input("x", 64)
    made = ["x"]
    for i in range(n):
        ins = rnd.sample(made, min(len(made), rnd.choice([1, 1, 2])))
        out = b.output(f"t{i}", 64) if i == n - 1 else b.intermediate(f"t{i}", 64 * rnd.randint(1, 3))
        b.node(f"n{i}", "ADD" if len(ins) == 2 else "UNARY", ins, out)
        made.append(f"t{i}")
    g = b.build()
    return g, [f"n{i}" for i in range(n)], {f"n{i}": rnd.randrange(streams) for i in range(n)}


@pytest.mark.parametrize("streams", [3, 40])
@pytest.mark.parametrize("seed", range(6))
def test_inserted_events_are_enough_and_each_is_needed(seed, streams):
    """optimize/events.py (``wait_pairs``, the optimizer's pass that picks a schedule's events, and
    ``schedule_with_events``): checked against the verifier, which shares none of their code. Every plan of the events it picks is safe, and dropping any one of them leaves a read that
    does not see its data (rule 2): the events are enough and none is redundant. The mutants of its latest-writer
    fold and clock merge that survived (an implied dependency given an event, a needed one left out) fail one of
    the two; 40 streams take the dense-clock path, 3 the dict one."""
    from memplan.optimize.events import wait_pairs
    g, order, stream_of = _random_graph(seed, 40, streams)
    sched = memplan.schedule_with_events(g, order, stream_of)
    plan = memplan.plan(g, sched)   # verified before it is returned
    doc = plan.to_dict()
    assert check(g, doc) == []
    ids = [g.node_index[n] for n in order]
    pairs = wait_pairs(g, ids, [stream_of[n] for n in order])   # the optimizer's own pass: the same events
    assert [{"after": g.nodes[a].id, "before": g.nodes[b].id} for a, b in pairs] == doc["events"]
    assert doc["events"], "a random graph over several streams needs events"
    for k in range(len(doc["events"])):
        fewer = dict(doc, events=doc["events"][:k] + doc["events"][k + 1:])
        assert any(r == 2 for r, _ in check(g, fewer)), ("redundant event", doc["events"][k])


def test_plan_reader_tells_a_missing_field_from_a_wrong_one():
    """planfile.py ``if key not in doc: raise ... is missing`` flipped to ``in``: a field that is there but not an
    integer (``"streams": 2.0``) was reported as missing, and a missing one as ``None``."""
    from memplan.planfile import plan_from_dict
    doc = memplan.plan(llama(LLAMA_TINY)).to_dict()
    with pytest.raises(memplan.PlanFormatError, match=r"field 'streams' is 2\.0, not an integer"):
        plan_from_dict(dict(doc, streams=2.0))
    with pytest.raises(memplan.PlanFormatError, match="field 'streams' is missing"):
        plan_from_dict({k: v for k, v in doc.items() if k != "streams"})


def test_plan_alone_checks_split_plan_devices_and_passes_a_one_device_plan(two_devices):
    """planfile.py ``plan_alone_problems``: ``not 0 <= d < plan.devices`` as ``<= plan.devices`` (a node on device
    2 of 2 passed ``memplan show``'s check); sound plans of one and two devices have no problem."""
    from memplan.planfile import plan_alone_problems
    _split, p = two_devices
    last = p.order[-1][0]
    found, total = plan_alone_problems(dataclasses.replace(p, node_devices=p.node_devices[:-1] + (2,)), limit=5)
    assert any(f"node {last!r} runs on device 2, outside 0..1" in m for m in found), found
    assert plan_alone_problems(p) == ([], 0)
    assert plan_alone_problems(memplan.plan(llama(LLAMA_TINY), streams=2)) == ([], 0)


def test_fused_group_may_place_an_empty_tensor_inside_another_root():
    """verify.py ``_fused_overlaps``' ``tensors[r].size > 0`` as ``>= 0``: a zero-byte tensor of a fusion group, placed
    inside another root the group touches, was reported as sharing bytes with it (it has none to share)."""
    b = GraphBuilder("fz", alignment=1)
    b.input("x", 64)
    b.node("a", "UNARY", ["x"], [b.intermediate("t", 64), b.intermediate("z", 0)], group="g")
    b.node("b", "ADD", ["t", "z"], b.output("y", 64), group="g")
    g = b.build()
    doc = memplan.plan(g, fused_groups=True).to_dict()
    t = next(e for e in doc["tensors"] if e["id"] == "t")
    next(e for e in doc["tensors"] if e["id"] == "z")["offset"] = t["offset"] + 8
    assert check(g, doc, fused_groups=True) == []


def test_wide_reuse_finding_names_the_access_that_is_not_ordered():
    """verify.py ``unordered``'s ``if floor is not None and floor[s] >= last: continue`` without ``floor[s] >= last``:
    for a root read on 16 streams or more (compared by its floor) every stream was skipped, and the rule-3 finding
    said "their accesses are not ordered" instead of naming the reader on the stream no event comes from."""
    S = 17
    b = GraphBuilder("wide", alignment=1)
    b.input("x", 8)
    b.node("p", "UNARY", ["x"], b.intermediate("a", 8))
    for i in range(S):
        b.node(f"r{i}", "UNARY", ["a"], b.output(f"o{i}", 8))
    b.node("q", "UNARY", ["x"], b.intermediate("c", 8))
    b.node("z", "UNARY", ["c"], b.output("y", 8))
    g = b.build()
    order = ([{"node": "p", "stream": 0}] + [{"node": f"r{i}", "stream": i} for i in range(S)]
             + [{"node": "q", "stream": 0}, {"node": "z", "stream": 0}])
    events = ([{"after": "p", "before": f"r{i}"} for i in range(1, S)]
              + [{"after": f"r{i}", "before": "q"} for i in range(1, S - 1)])   # none from r16's stream
    offs = {"x": 0, "a": 8, "c": 8, "y": 16} | {f"o{i}": 24 + 8 * i for i in range(S)}
    doc = {"format": "memplan.plan/1", "graph": "wide", "alignment": 1, "arena_bytes": 24 + 8 * S,
           "lower_bound_bytes": 0, "streams": S, "order": order, "events": events,
           "tensors": [{"id": t.id, "offset": offs[t.id], "size": t.size} for t in g.tensors]}
    assert check(g, doc) == [(3, "tensors 'a' and 'c' overlap in the arena but not every access of one happens-before "
                                 "every access of the other: node 'r16', which accesses 'a', does not happen-before "
                                 "node 'q', which accesses 'c'")]


def test_two_device_plan_with_the_unsplit_graph_gets_the_split_hint(two_devices):
    """planfile.py ``split_graph_hint``'s ``plan.devices < 2`` as ``<= 2``: a two-device plan paired with the graph it
    was planned from lost the finding that names the split graph to use instead."""
    from memplan.planfile import split_graph_hint
    g = llama(LLAMA_TINY)
    _split, p = two_devices
    assert split_graph_hint(g, p).startswith("the plan is split over 2 devices")
    assert check(g, p)[0][1].startswith("the plan is split over 2 devices")


def test_a_plan_of_this_graph_has_no_mismatch():
    """planfile.py ``plan_mismatches``' ``plan.graph and plan.graph != graph.name`` without its second half: every
    plan naming its graph was told it "was made for graph ..., not ... (wrong graph?)"."""
    from memplan.planfile import plan_mismatches
    g = llama(LLAMA_TINY)
    p = memplan.plan(g, streams=2)
    assert p.graph == g.name and plan_mismatches(g, p) == []
