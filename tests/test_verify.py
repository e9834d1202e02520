"""The verifier catches planted hazards.

Every case starts from a real plan that ``memplan.plan`` produced and ``verify`` accepts, then plants
one hazard and checks that ``verify`` raises ``UnsafePlan`` with the right rule number and a message
naming the offending node or tensor.
"""

from __future__ import annotations

import copy

import handgraphs as H
import pytest
from conftest import expect_unsafe

import memplan
from memplan import GraphBuilder, Schedule
from memplan.verify import check


def safe_doc(graph, schedule, solver="greedy") -> dict:
    p = memplan.plan(graph, schedule, solver=solver)
    doc = p.to_dict()
    memplan.verify(graph, doc)  # the starting point is safe (dict form)
    memplan.verify(graph, p)    # (and Plan form)
    assert check(graph, doc) == []
    return copy.deepcopy(doc)


def entry(doc, tid):
    return next(e for e in doc["tensors"] if e["id"] == tid)


def sharing(graph, taker, owner) -> dict:
    """The serial plan's safe doc, with ``taker`` moved onto ``owner``'s offset (the usual planted reuse)."""
    doc = safe_doc(graph, H.serial(graph))
    entry(doc, taker)["offset"] = entry(doc, owner)["offset"]
    return doc


def test_missing_event_is_rule_2():
    g = H.qkv()
    doc = safe_doc(g, H.streams(g, H.QKV_STREAMS))
    doc["events"] = [e for e in doc["events"] if e != {"after": "mm_k", "before": "attn"}]
    expect_unsafe(g, doc, 2, "attn", "k", "mm_k")


def test_missing_event_through_view_chain_is_rule_2():
    # attn reads window, a view of kc that set (on the other stream) writes: without set -> attn
    # the read races the cache write, though no arena byte is involved.
    g = H.kv_cache()
    doc = safe_doc(g, H.streams(g, H.KV_STREAMS))
    assert doc["events"] == [{"after": "set", "before": "attn"}]
    doc["events"] = []
    expect_unsafe(g, doc, 2, "attn", "window", "set")


def test_reuse_before_cross_stream_last_use_is_rule_3():
    # The serial plan lets t15 take s's bytes (s's last reader b3 is issued before j15). Run the same
    # offsets on three streams, where b3 (stream 2) still reads s while j15 (stream 0) writes t15.
    g = H.fanout15()
    serial = safe_doc(g, H.serial(g))
    assert entry(serial, "t15")["offset"] == entry(serial, "s")["offset"]
    doc = safe_doc(g, H.streams(g, H.FANOUT15_STREAMS))
    doc["tensors"] = serial["tensors"]
    doc["arena_bytes"] = max(doc["arena_bytes"], serial["arena_bytes"])
    expect_unsafe(g, doc, 3, "s", "t15")


def test_reuse_across_streams_without_event_is_rule_3():
    # Stream 1 reads x (peek) while stream 0 overwrites it in place (relu asks for in place, but
    # relu is not x's last access): moving t onto x is a race.
    g = H.inplace(peek=True)
    doc = safe_doc(g, H.streams(g, H.INPLACE_STREAMS))
    entry(doc, "t")["offset"] = entry(doc, "x")["offset"]
    expect_unsafe(g, doc, 3, "x", "t")


def test_read_before_its_producer_is_rule_1():
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    o = doc["order"]
    o[1], o[2] = o[2], o[1]  # op2 now issued before op1, which writes t1 that op2 reads
    expect_unsafe(g, doc, 1, "op2", "op1", "t1")


def test_wait_before_record_is_rule_1():
    # An event whose wait is issued before its record is a no-op in CUDA: plant attn -> mm_k
    # (attn on stream 0 is issued after mm_k on stream 1).
    g = H.qkv()
    doc = safe_doc(g, H.streams(g, H.QKV_STREAMS))
    doc["events"].append({"after": "attn", "before": "mm_k"})
    expect_unsafe(g, doc, 1, "attn", "mm_k")


def test_backward_event_does_not_count_as_synchronisation():
    # Replace the forward event mm_k -> attn with a backward one: rule 1 for the backward event,
    # and the read of k is unsynchronised (rule 2): the record that comes later cannot be waited on.
    g = H.qkv()
    doc = safe_doc(g, H.streams(g, H.QKV_STREAMS))
    doc["events"] = [e for e in doc["events"] if e["after"] != "mm_k"]
    doc["events"].append({"after": "attn", "before": "mm_k"})
    expect_unsafe(g, doc, 1, "attn", "mm_k")
    expect_unsafe(g, doc, 2, "attn", "k")


def test_event_within_one_stream_is_rule_1():
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    doc["events"].append({"after": "op0", "before": "op2"})
    expect_unsafe(g, doc, 1, "op0", "op2")


def test_misaligned_offset_is_rule_4():
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    entry(doc, "t1")["offset"] += 8  # 8 is not a multiple of 256
    doc["arena_bytes"] += 8
    expect_unsafe(g, doc, 4, "t1")


def test_view_not_at_parent_plus_view_offset_is_rule_4():
    g = H.views()
    doc = safe_doc(g, H.serial(g))
    entry(doc, "m3")["offset"] = entry(doc, "m2")["offset"]  # view_offset 2048 forgotten
    expect_unsafe(g, doc, 4, "m3", "m2")


def test_view_moved_outside_its_parent_is_rule_4():
    g = H.views()
    doc = safe_doc(g, H.serial(g))
    entry(doc, "m3")["offset"] = entry(doc, "m")["offset"] + 4096  # past the end of m
    expect_unsafe(g, doc, 4, "m3")


def test_offset_past_arena_is_rule_4():
    g = H.qkv()
    doc = safe_doc(g, H.streams(g, H.QKV_STREAMS))
    entry(doc, "k")["offset"] = doc["arena_bytes"]  # aligned, but ends past arena_bytes
    expect_unsafe(g, doc, 4, "k")


def test_arena_shrunk_below_a_tensor_is_rule_4():
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    doc["arena_bytes"] -= 1
    doc["lower_bound_bytes"] = 0
    expect_unsafe(g, doc, 4, "t0")


def test_false_lower_bound_is_rule_4():
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    doc["lower_bound_bytes"] = doc["arena_bytes"] + 1
    expect_unsafe(g, doc, 4)


def test_weight_given_an_offset_is_rule_4():
    g = H.qkv()
    doc = safe_doc(g, H.serial(g))
    entry(doc, "wq")["offset"] = 0
    expect_unsafe(g, doc, 4, "wq")


def test_missing_and_unknown_tensors_are_rule_4():
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    doc["tensors"] = [e for e in doc["tensors"] if e["id"] != "t2"] + [{"id": "ghost", "offset": 0, "size": 1}]
    expect_unsafe(g, doc, 4, "t2")
    expect_unsafe(g, doc, 4, "ghost")


def test_size_mismatch_is_rule_4():
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    entry(doc, "t0")["size"] = 1
    expect_unsafe(g, doc, 4, "t0")


def test_fusion_group_split_across_streams_is_rule_1():
    g = H.views()
    doc = safe_doc(g, H.streams(g, H.VIEWS_STREAMS))
    for e in doc["order"]:
        if e["node"] == "act":
            e["stream"] = 0  # scale stays on 1: the fused pair is split
    doc["events"] = [{"after": "mm", "before": "scale"}, {"after": "scale", "before": "act"}]
    found = expect_unsafe(g, doc, 1, "f0")
    assert any("'scale'" in m or "'act'" in m for m in found), found


def test_fusion_group_interrupted_is_rule_1():
    # a node of the same stream issued between the two fused nodes
    b = GraphBuilder("fused")
    b.input("x", 256)
    b.node("f1", "A", ["x"], b.intermediate("a", 256), group="g")
    b.node("f2", "B", ["a"], b.intermediate("c", 256), group="g")
    b.node("other", "C", ["x"], b.intermediate("d", 256))
    b.node("end", "D", ["c", "d"], b.output("y", 256))
    g = b.build()
    doc = safe_doc(g, H.serial(g))
    o = doc["order"]
    o[1], o[2] = o[2], o[1]  # f1, other, f2, end: still topological
    expect_unsafe(g, doc, 1, "g", "other")


def test_fusion_group_out_of_listed_order_is_rule_1():
    b = GraphBuilder("fused")
    b.input("x", 256)
    b.node("f1", "A", ["x"], b.intermediate("a", 256), group="g")
    b.node("f2", "B", ["x"], b.intermediate("c", 256), group="g")
    b.node("end", "D", ["a", "c"], b.output("y", 256))
    g = b.build()
    doc = safe_doc(g, H.serial(g))
    o = doc["order"]
    o[0], o[1] = o[1], o[0]
    expect_unsafe(g, doc, 1, "g")


def test_order_missing_or_duplicating_nodes_is_rule_1():
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    d1 = copy.deepcopy(doc)
    d1["order"] = d1["order"][:-1]
    expect_unsafe(g, d1, 1, "op3")
    d2 = copy.deepcopy(doc)
    d2["order"].append({"node": "op0", "stream": 0})
    expect_unsafe(g, d2, 1, "op0")
    d3 = copy.deepcopy(doc)
    d3["order"][0]["node"] = "ghost"
    expect_unsafe(g, d3, 1, "ghost")


@pytest.mark.parametrize("stream", [7, -1, 10 ** 12])
def test_stream_out_of_range_is_rule_1(stream):
    # (10**12 once made the verifier allocate a 10**12 x 10**12 clock table)
    g = H.diamond()
    doc = safe_doc(g, H.serial(g))
    doc["order"][1]["stream"] = stream
    expect_unsafe(g, doc, 1, "l")


def test_stream_count_of_zero_is_a_format_error():
    """``"streams": 0`` declares no stream for the order's stream 0: it was verified as one stream (the
    reference checker flags it); now a ``PlanFormatError`` naming the field, in a file or a dict."""
    g = H.diamond()
    doc = safe_doc(g, H.serial(g))
    doc["streams"] = 0
    with pytest.raises(memplan.PlanFormatError, match="'streams' is 0"):
        memplan.verify(g, doc)


def test_offsets_are_checked_against_the_plans_alignment_too():
    """Rule 4 holds every root offset to the plan's ``alignment`` as well as the graph's: a plan declaring
    512 whose offsets are only 256-aligned was verified safe (only the graph's alignment was read)."""
    b = GraphBuilder("two", alignment=256)
    b.input("x", 256)
    b.node("n", "UNARY", ["x"], b.output("y", 256))
    g = b.build()
    doc = safe_doc(g, H.serial(g))
    assert doc["alignment"] == 256
    odd = next(e for e in doc["tensors"] if e["offset"] == 256)  # x and y are both live at n
    doc["alignment"] = 512
    found = expect_unsafe(g, doc, 4, odd["id"])
    assert any("512" in m for m in found), found
    odd["offset"] = 512                                          # every offset a multiple of 512: safe
    doc["arena_bytes"] = 768
    assert check(g, doc) == []
    doc["alignment"] = 128                                       # a smaller one: the graph's still holds
    odd["offset"] = 384
    expect_unsafe(g, doc, 4, odd["id"])


def test_all_findings_are_listed():
    g = H.qkv()
    doc = safe_doc(g, H.streams(g, H.QKV_STREAMS))
    doc["events"] = []
    problems = check(g, doc)
    reads = sorted((m.split("'")[1], m.split("'")[3]) for r, m in problems if r == 2)
    # every unsynchronised read is reported, not just the first
    assert reads == [("attn", "k"), ("attn", "v"), ("mm_k", "xn"), ("mm_v", "xn")]
    # and a's bytes (xn's, in the safe plan) are now reused while mm_k / mm_v may still read xn
    assert [m for r, m in problems if r == 3] and all("'xn'" in m for r, m in problems if r == 3)
    with pytest.raises(memplan.UnsafePlan) as info:
        memplan.verify(g, doc)
    assert info.value.violations == problems


def test_inplace_exception_needs_producer_of_out_root():
    # n writes its output through a view w of a root r that another node produced; inplace {w: x}
    # does not let r share x's bytes (the documented reading: n must produce out's root).
    b = GraphBuilder("inplace-view", alignment=1)
    b.input("x", 100)
    b.node("make", "OP", [], b.intermediate("r", 100))
    b.view("w", "r", 100)
    b.node("n", "OP", ["x", "r"], "w", inplace={"w": "x"})
    b.node("use", "OP", ["w"], b.output("y", 100))
    g = b.build()
    doc = safe_doc(g, H.serial(g))
    assert entry(doc, "r")["offset"] != entry(doc, "x")["offset"]
    entry(doc, "r")["offset"] = entry(doc, "x")["offset"]
    entry(doc, "w")["offset"] = entry(doc, "x")["offset"]
    expect_unsafe(g, doc, 3, "x", "r")


def test_output_view_keeps_root_to_the_end():
    # y is an output view into t's root: t must survive to the end, so z (produced after t's last
    # access) may not take t's bytes, although t's accesses all precede z's (b reads x, not t: were it
    # t's reader, b would access both roots and the overlap would be refused without the output's end).
    b = GraphBuilder("outview", alignment=1)
    b.input("x", 100)
    b.node("a", "OP", ["x"], b.intermediate("t", 100))
    b.view("y", "t", 50, 50, kind="output")
    b.node("b", "OP", ["x"], b.intermediate("z", 100))
    b.node("c", "OP", ["z"], b.output("o", 100))
    g = b.build()
    doc = safe_doc(g, H.serial(g))
    for t in ("z", "o"):
        assert not (entry(doc, t)["offset"] < entry(doc, "t")["offset"] + 100
                    and entry(doc, "t")["offset"] < entry(doc, t)["offset"] + 100)
    entry(doc, "z")["offset"] = entry(doc, "t")["offset"]
    expect_unsafe(g, doc, 3, "t", "z")


def test_explicit_schedule_gives_the_same_plan_as_schedule_with_events():
    g = H.fanout15()
    doc = safe_doc(g, H.serial(g))
    sch = Schedule(tuple(e["node"] for e in doc["order"]), (0,) * 6, ())
    assert memplan.plan(g, sch, solver="greedy").to_dict() == doc


def test_first_node_listed_twice_is_named_as_a_duplicate():
    """Rule 1: a duplicate of the node at issue position 0 is reported (pos 0 is a real position, not "unset")."""
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    doc["order"].append({"node": "op0", "stream": 0})
    found = expect_unsafe(g, doc, 1, "op0")
    assert any("appears twice" in m for m in found), found


def test_missing_nodes_are_named_and_counted():
    """Rule 1: a node absent from order is reported as missing (with how many more), not by a side effect."""
    g = H.chain()
    doc = safe_doc(g, H.serial(g))
    one = copy.deepcopy(doc)
    one["order"] = one["order"][:-1]
    assert check(g, one) == [(1, "order is missing node 'op3'")]
    two = copy.deepcopy(doc)
    two["order"] = two["order"][:-2]
    assert check(g, two) == [(1, "order is missing 2 nodes: 'op2', 'op3'")]


def test_stream_equal_to_the_declared_count_is_rule_1():
    """Rule 1 edge: streams run 0..streams-1, so a node on stream == plan.streams is outside the plan."""
    g = H.diamond()
    doc = safe_doc(g, H.serial(g))
    assert doc["streams"] == 1
    doc["order"][1]["stream"] = 1
    found = expect_unsafe(g, doc, 1, "l")
    assert any("outside 0..0" in m for m in found), found


def test_findings_are_capped_at_max_reported():
    """The findings list stops at exactly MAX_REPORTED entries, however many rules break."""
    from memplan.verify import MAX_REPORTED
    g = H.chain(n=MAX_REPORTED + 50)
    doc = safe_doc(g, H.serial(g))
    for e in doc["tensors"]:
        e["offset"] += 8   # every root misaligned: one rule 4 finding each
    doc["arena_bytes"] += 8
    assert len(check(g, doc)) == MAX_REPORTED


def test_reads_of_the_graphs_first_tensor_are_checked():
    """Rules 1 and 2 for a read of tensor index 0 (produced): index 0 is a real writer, not "no writer"."""
    b = GraphBuilder("first-tensor")
    b.intermediate("t", 256)  # tensor index 0, produced by p
    b.input("x", 256)
    b.node("p", "OP", ["x"], "t")
    b.node("q", "OP", ["x"], b.intermediate("u", 256))
    b.node("r", "OP", ["t", "u"], b.output("y", 256))
    g = b.build()
    assert g.tensor_index["t"] == 0
    doc = safe_doc(g, H.streams(g, {"p": 1, "q": 0, "r": 0}))
    assert doc["events"] == [{"after": "p", "before": "r"}]
    no_event = copy.deepcopy(doc)
    no_event["events"] = []
    expect_unsafe(g, no_event, 2, "r", "t", "p")
    late = copy.deepcopy(doc)
    late["events"] = []
    late["order"] = late["order"][1:] + late["order"][:1]  # q, r, then p: r reads t before p is issued
    expect_unsafe(g, late, 1, "r", "p", "t")


def test_event_naming_an_unknown_node_is_rule_1():
    """Rule 1: an event whose after or before names no node of the graph is a finding, not a crash."""
    g = H.qkv()
    doc = safe_doc(g, H.streams(g, H.QKV_STREAMS))
    for ev in ({"after": "ghost", "before": "attn"}, {"after": "mm_k", "before": "ghost"}):
        d = copy.deepcopy(doc)
        d["events"].append(ev)
        expect_unsafe(g, d, 1, "ghost")


def test_offset_of_minus_one_is_rule_4_at_alignment_one():
    """Rule 4 edge: at alignment 1 every offset is aligned, so -1 is refused as negative (not by alignment)."""
    b = GraphBuilder("neg", alignment=1)
    b.input("x", 100)
    b.node("n", "UNARY", ["x"], b.output("y", 100))
    g = b.build()
    doc = safe_doc(g, H.serial(g))
    entry(doc, "x")["offset"] = -1
    found = expect_unsafe(g, doc, 4, "x")
    assert any("non-negative" in m for m in found), found


@pytest.mark.parametrize("members", [2, 3])
def test_fused_group_late_members_read_is_not_moved_to_the_groups_first_member(members):
    """fused_groups: x, read only by the group's last member, is read by the kernel, issued at that member's place
    after its wait on p3 (runtime.step): v (stream 1), done before p3, may take x's bytes. Round 49: it was counted
    as read at the first member a, which v does not reach, and the safe plan was refused (rule 3)."""
    b = GraphBuilder("fused-first", alignment=1)
    b.input("i", 100)
    b.node("p1", "OP", ["i"], b.intermediate("v", 100))
    b.node("p2", "OP", ["v"], b.intermediate("w", 100))
    b.node("p3", "OP", ["i"], b.intermediate("x", 100))
    b.node("a", "OP", ["i"], b.intermediate("ta", 100), group="g")
    if members == 3:
        b.node("b", "OP", ["ta"], b.intermediate("tb", 100), group="g")
    b.node("c", "OP", ["tb" if members == 3 else "ta", "x", "w"], b.output("y", 100), group="g")
    g = b.build()
    ids = [n.id for n in g.nodes]
    sched = Schedule(tuple(ids), (1, 1, 1) + (0,) * members, (memplan.Event("p3", ids[4]),))
    doc = memplan.plan(g, sched, solver="greedy", fused_groups=True).to_dict()
    assert entry(doc, "x")["offset"] != entry(doc, "v")["offset"]
    entry(doc, "x")["offset"] = entry(doc, "v")["offset"]
    memplan.verify(g, doc)
    memplan.verify(g, doc, fused_groups=True)


@pytest.mark.parametrize("members", [2, 3])
def test_fused_group_early_members_read_ends_with_the_kernel_that_records_its_event(members):
    """fused_groups: u, read only by the group's first member a: a -> q lets z (stream 1) take u's bytes node by
    node, and fused too, since the kernel records a's event after it (runtime.step), so q waits for the whole
    group. Round 49: u was counted as read at the last member, which q does not wait for, and the safe plan was
    refused (rule 3)."""
    b = GraphBuilder("fused-last", alignment=1)
    b.input("i", 100)
    b.node("p0", "OP", ["i"], b.intermediate("u", 100))
    b.node("a", "OP", ["u"], b.intermediate("ta", 100), group="g")
    if members == 3:
        b.node("b", "OP", ["ta"], b.intermediate("tb", 100), group="g")
    b.node("c", "OP", ["tb" if members == 3 else "ta"], b.output("y", 100), group="g")
    b.node("q", "OP", ["i"], b.intermediate("z", 100))
    b.node("r", "OP", ["z"], b.output("y2", 100))
    g = b.build()
    ids = [n.id for n in g.nodes]
    sched = Schedule(tuple(ids), (0,) * (members + 1) + (1, 1), (memplan.Event("a", "q"),))
    doc = memplan.plan(g, sched, solver="greedy", fused_groups=True).to_dict()
    assert entry(doc, "z")["offset"] != entry(doc, "u")["offset"]
    entry(doc, "z")["offset"] = entry(doc, "u")["offset"]
    memplan.verify(g, doc)
    memplan.verify(g, doc, fused_groups=True)


def test_output_is_live_to_the_end_though_its_accesses_precede_the_other_roots():
    """An output's bytes are never handed on: z after y's only access still may not take them."""
    b = GraphBuilder("output-end", alignment=1)
    b.input("x", 100)
    b.node("a", "OP", ["x"], b.output("y", 100))
    b.node("b", "OP", ["x"], b.intermediate("z", 100))
    b.node("c", "OP", ["z"], b.output("o", 100))
    g = b.build()
    doc = sharing(g, "z", "y")
    expect_unsafe(g, doc, 3, "y", "z")


def test_two_inputs_may_not_share_bytes_though_their_reads_are_ordered():
    """Inputs are all written by the host before the run: x2, read only after x1's last read, may not take x1's bytes."""
    b = GraphBuilder("inputs-start", alignment=1)
    b.input("x1", 100)
    b.input("x2", 100)
    b.node("a", "OP", ["x1"], b.intermediate("t", 100))
    b.node("b", "OP", ["x2", "t"], b.output("o", 100))
    g = b.build()
    doc = sharing(g, "x2", "x1")
    expect_unsafe(g, doc, 3, "x1", "x2")


def test_inplace_exception_does_not_hand_on_an_outputs_bytes():
    """inplace {z: y} with y an output: z may not take y's bytes, y must survive to the end."""
    b = GraphBuilder("inplace-output", alignment=1)
    b.input("x", 100)
    b.node("p", "OP", ["x"], b.output("y", 100))
    b.node("n", "OP", ["y"], b.intermediate("z", 100), inplace={"z": "y"})
    b.node("c", "OP", ["z"], b.output("o", 100))
    g = b.build()
    doc = sharing(g, "z", "y")
    expect_unsafe(g, doc, 3, "y", "z")


def test_a_zero_byte_root_overlaps_nothing_and_a_one_byte_root_is_painted():
    """Rule 3 on sizes 0 and 1: an empty root inside a live one is safe; two live 1-byte roots on one byte are not."""
    b = GraphBuilder("tiny", alignment=1)
    b.input("x", 100)
    b.node("a", "OP", ["x"], [b.intermediate("e", 0), b.intermediate("p", 1)])
    b.node("b", "OP", ["x", "e"], b.intermediate("q", 1))
    b.node("c", "OP", ["p", "q"], b.output("y", 100))
    g = b.build()
    doc = safe_doc(g, H.serial(g))
    entry(doc, "e")["offset"] = entry(doc, "x")["offset"] + 50
    assert check(g, doc) == []
    entry(doc, "q")["offset"] = entry(doc, "p")["offset"]
    expect_unsafe(g, doc, 3, "p", "q")


def test_an_unread_input_may_share_bytes_with_the_first_nodes_output():
    """Inputs are painted before everything (the first node's output is checked against them, not the reverse)."""
    b = GraphBuilder("unread-input", alignment=1)
    b.node("n0", "OP", [], b.intermediate("t", 100))  # t is listed before x
    b.input("x", 100)
    b.node("n1", "OP", ["t"], b.output("y", 100))
    g = b.build()
    doc = sharing(g, "t", "x")
    assert check(g, doc) == []


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_partly_overwritten_root_keeps_its_uncovered_bytes(side):
    """Painting keeps the left and right remnants of a root that a later root covers only partly."""
    # A is handed on to B (A's accesses come first), which covers one end of A; C, on another stream
    # with no event, sits on A's other end only: an unordered overlap of A and C.
    b = GraphBuilder("remnants", alignment=1)
    b.input("x", 10)
    b.node("n1", "OP", ["x"], b.intermediate("A", 100))
    b.node("n2", "OP", ["A"], b.intermediate("D", 10))
    b.node("n3", "OP", ["x"], b.intermediate("B", 100))
    b.node("m1", "OP", ["x"], b.intermediate("C", 50))
    b.node("n4", "OP", ["B", "D"], b.output("y", 10))
    b.node("m2", "OP", ["C"], b.output("z", 10))
    g = b.build()
    doc = safe_doc(g, H.streams(g, {"n1": 0, "n2": 0, "n3": 0, "m1": 1, "n4": 0, "m2": 1}))
    offsets = {"x": 0, "D": 1000, "y": 1100, "z": 1200}
    offsets.update({"A": 10, "B": 60, "C": 10} if side == "left" else {"A": 60, "B": 10, "C": 110})
    for t, off in offsets.items():
        entry(doc, t)["offset"] = off
    doc["arena_bytes"] = max(doc["arena_bytes"], 1210)
    assert [r for r, _ in check(g, doc)] == [3]
    expect_unsafe(g, doc, 3, "A", "C")
    entry(doc, "C")["offset"] = 300  # and without C the hand-over of A to B is safe
    assert check(g, doc) == []


def test_written_views_of_the_graphs_first_tensor_are_checked():
    """Rules 1 and 2 through view chains whose root is tensor index 0, walked and then memoized (index 0 is a writer)."""
    b = GraphBuilder("first-root", alignment=1)
    b.intermediate("t", 100)  # tensor index 0, produced by p
    b.input("x", 100)
    b.view("w1", "t", 50, 0)
    b.view("w2", "t", 50, 50)
    b.node("p", "OP", ["x"], "t")
    b.node("s1", "SET", ["x"], "w1")
    b.node("r1", "OP", ["w1"], b.output("y1", 100))
    b.node("s2", "SET", ["x"], "w2")
    b.node("r2", "OP", ["w2"], b.output("y2", 100))
    g = b.build()
    assert g.tensor_index["t"] == 0
    doc = safe_doc(g, H.streams(g, {"p": 1, "s1": 0, "r1": 0, "s2": 0, "r2": 0}))
    assert doc["events"] == [{"after": "p", "before": "r1"}]
    no_event = copy.deepcopy(doc)
    no_event["events"] = []
    expect_unsafe(g, no_event, 2, "r1", "w1", "p")
    expect_unsafe(g, no_event, 2, "r2", "w2", "p")  # w2's chain meets t already memoized


def test_an_interrupted_fusion_group_is_one_finding():
    """A group interrupted by two nodes of its stream is reported once, naming the first."""
    b = GraphBuilder("fused2", alignment=1)
    b.input("x", 10)
    b.node("f1", "A", ["x"], b.intermediate("a", 10), group="g")
    b.node("f2", "B", ["a"], b.intermediate("c", 10), group="g")
    b.node("o1", "C", ["x"], b.intermediate("d", 10))
    b.node("o2", "C", ["x"], b.intermediate("e", 10))
    b.node("end", "D", ["c", "d", "e"], b.output("y", 10))
    g = b.build()
    doc = safe_doc(g, H.serial(g))
    doc["order"] = [doc["order"][i] for i in (0, 2, 3, 1, 4)]  # f1, o1, o2, f2, end
    assert [m for r, m in check(g, doc) if r == 1] == [
        "fusion group 'g' is interrupted by 'o1' on stream 0"]
