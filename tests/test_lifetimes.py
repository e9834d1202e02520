"""Lifetimes and the buffer problem: accesses, start/end, in-place compatibility, the lower bound."""

from __future__ import annotations

import handgraphs as H
import reference as ref

import memplan
from memplan import GraphBuilder, Schedule
from memplan.lifetimes import buffer_problem, compute_lifetimes, lower_bound
from memplan.schedule import build_happens_before


def setup(graph, schedule):
    hb = build_happens_before(graph, schedule)
    lt = compute_lifetimes(graph, hb)
    return hb, lt, buffer_problem(graph, hb, lt)


def names(graph, lt):
    return [graph.tensors[t].id for t in lt.roots]


def accesses(graph, lt, tid):
    b = names(graph, lt).index(tid)
    return {graph.nodes[n].id for n in lt.accesses(b)}


def test_buffers_are_arena_roots_only():
    g = H.views()
    _, lt, problem = setup(g, H.serial(g))
    assert names(g, lt) == ["x", "m", "sc", "ac", "y"]  # no views
    g = H.qkv()
    _, lt, problem = setup(g, H.serial(g))
    assert "wq" not in names(g, lt) and len(problem) == 7  # no weights
    g = H.kv_cache()
    _, lt, _ = setup(g, H.serial(g))
    assert names(g, lt) == ["x", "k", "qv", "y"]  # a view of a weight is not in the arena


def test_accesses_follow_views():
    # acc(m) = producer mm, scale (reads the view m3), cont (reads the view m2)
    g = H.views()
    _, lt, _ = setup(g, H.serial(g))
    assert accesses(g, lt, "m") == {"mm", "scale", "cont"}
    assert accesses(g, lt, "sc") == {"scale", "act"}
    assert accesses(g, lt, "x") == {"mm"}  # plus the virtual start
    acc = ref.accesses(g)
    for r in names(g, lt):
        assert accesses(g, lt, r) == set(acc[r]) - {ref.START, ref.END}


def test_view_producers_are_accesses():
    g = H.kv_cache()  # set writes kc, a view of a weight: no arena root gains an access
    _, lt, _ = setup(g, H.serial(g))
    assert accesses(g, lt, "k") == {"proj", "set"}
    b = GraphBuilder("writeview", alignment=1)
    b.input("x", 100)
    b.node("a", "OP", ["x"], b.intermediate("buf", 100))
    b.view("slot", "buf", 10, 90)
    b.node("w", "SET", ["x"], "slot")  # writes into buf without reading it
    b.node("r", "OP", ["buf"], b.output("y", 100))
    g = b.build()
    _, lt, _ = setup(g, H.serial(g))
    assert accesses(g, lt, "buf") == {"a", "w", "r"}


def test_start_and_end():
    b = GraphBuilder("ends", alignment=1)
    b.input("x", 100)
    b.node("a", "OP", ["x"], b.intermediate("t", 100))
    b.view("tail", "t", 10, 90, kind="output")  # an output view keeps t to the end
    b.node("c", "OP", ["t"], b.output("y", 100))
    g = b.build()
    _, lt, problem = setup(g, H.serial(g))
    n = names(g, lt)
    assert lt.has_start.tolist() == [t == "x" for t in n]
    assert lt.has_end.tolist() == [t in ("t", "y") for t in n]
    # t lives to the end: its interval reaches the end of the run, like y's
    i_t, i_y = n.index("t"), n.index("y")
    assert problem.upper[i_t] == problem.upper[i_y] == len(g.nodes) + 2
    assert problem.lower[n.index("x")] == 0


def test_inplace_compatible_only_when_legal():
    g = H.views()
    _, lt, problem = setup(g, H.serial(g))
    n = names(g, lt)
    assert [(n[a], n[b], g.nodes[k].id) for a, b, k in lt.compatible] == [("sc", "ac", "act")]
    assert problem.inplace == ((n.index("ac"), n.index("sc")),)
    assert not problem.conflicts(n.index("sc"), n.index("ac"))
    # same pair, but another stream still reads the input after the in-place node
    g = H.inplace(peek=True)
    for sch in (H.serial(g), H.streams(g, H.INPLACE_STREAMS)):
        _, lt, problem = setup(g, sch)
        n = names(g, lt)
        assert lt.compatible == ()
        assert problem.conflicts(n.index("x"), n.index("t"))


def test_inplace_over_output_is_not_compatible():
    # the input is an output: it must survive to the end, so nothing may overwrite it
    b = GraphBuilder("outin", alignment=1)
    b.input("x", 100)
    b.node("a", "OP", ["x"], b.output("keep", 100))
    b.node("b", "OP", ["keep"], b.output("y", 100), inplace={"y": "keep"})
    g = b.build()
    _, lt, problem = setup(g, H.serial(g))
    assert lt.compatible == ()
    p = memplan.plan(g)
    assert p.offsets()["y"] != p.offsets()["keep"]


def test_serial_problem_is_pure_interval_multi_stream_is_not():
    g = H.qkv()
    _, _, serial = setup(g, H.serial(g))
    assert serial.order is None and serial.is_interval
    _, _, multi = setup(g, H.streams(g, H.QKV_STREAMS))
    assert multi.order is not None and not multi.is_interval


def test_interval_disjoint_implies_ordered():
    # the interval filter is only a pre-check: whenever intervals are disjoint the pair is ordered
    for g, so in ((H.fanout15(), H.FANOUT15_STREAMS), (H.moe(), H.moe_streams()), (H.qkv(), H.QKV_STREAMS),
                  (H.views(), H.VIEWS_STREAMS), (H.kv_cache(), H.KV_STREAMS)):
        sch = H.streams(g, so)
        _, lt, problem = setup(g, sch)
        closure = ref.happens_before(list(zip(sch.order, sch.streams)), [(e.after, e.before) for e in sch.events])
        acc = ref.accesses(g)
        n = names(g, lt)
        for i in range(len(n)):
            for j in range(len(n)):
                if i != j and problem.upper[i] <= problem.lower[j]:
                    assert ref.all_before(closure, acc[n[i]], acc[n[j]]), (g.name, n[i], n[j])


def test_lower_bound_matches_hand_and_reference():
    cases = [
        (H.chain(), None, 2048), (H.diamond(), {"a": 0, "l": 0, "r": 1, "j": 0}, 3072),
        (H.qkv(), H.QKV_STREAMS, 10240), (H.fanout15(), None, 4096), (H.fanout15(), H.FANOUT15_STREAMS, 4096),
        (H.moe(), None, 1792), (H.moe(), H.moe_streams(), 1536), (H.views(), H.VIEWS_STREAMS, 8192),
        (H.kv_cache(), H.KV_STREAMS, 2048),
    ]
    for g, so, expected in cases:
        sch = H.serial(g) if so is None else H.streams(g, so)
        hb, lt, problem = setup(g, sch)
        assert lower_bound(g, hb, lt) == expected, g.name  # the contract's per-node bound
        # the problem's bound may be stronger on several streams (a conflict clique), never weaker
        if sch.num_streams == 1:
            assert problem.lower_bound == expected, g.name
        assert problem.lower_bound >= expected, g.name
        order, events = list(zip(sch.order, sch.streams)), [(e.after, e.before) for e in sch.events]
        assert ref.lower_bound(g, order, events) == expected, g.name
        # and a stronger bound is justified: pairwise-conflicting roots of at least that total exist
        assert problem.lower_bound <= max(expected, ref.max_clique_bound(g, order, events)), g.name


def test_lower_bound_counts_concurrent_branches_per_node():
    # two independent nodes: a1: x1 -> y1 and a2: x2 -> y2 (outputs), 100 B each.
    # On two streams without events: live at a1 = {x1, y1, x2} (x2's start access happens-before
    # a1, a2 does not) = 300; y2 is not live at a1 (none of its accesses happens-before a1).
    # But a1 and a2 are unordered, so all four conflict pairwise: arena 400 > bound 300.
    # Serially (a1 then a2): live at a1 = {x1, y1, x2}, at a2 = {x2, y2, y1} = 300, and y2 may take
    # x1's bytes (x1's accesses START, a1 precede a2): arena 300.
    b = GraphBuilder("two", alignment=1)
    for i in (1, 2):
        b.input(f"x{i}", 100)
        b.node(f"a{i}", "OP", [f"x{i}"], b.output(f"y{i}", 100))
    g = b.build()
    sch = Schedule(("a1", "a2"), (0, 1), ())
    hb, lt, problem = setup(g, sch)
    assert lower_bound(g, hb, lt) == 300
    assert problem.lower_bound == 400  # the four tensors conflict pairwise: the clique bound sees it
    assert memplan.plan(g, sch).arena_bytes == 400
    serial = memplan.plan(g)
    assert (serial.lower_bound_bytes, serial.arena_bytes) == (300, 300)
    assert serial.offsets()["y2"] == serial.offsets()["x1"]


def test_per_stream_tables_are_32_bit_and_match_the_hb_relation():
    """The buffers x streams and nodes x streams tables are the largest arrays of a plan at many streams
    (50,000 buffers on 1024 streams: 1.7 GB in int64), so they hold 32-bit positions: the vector clocks,
    first/last access per stream and both thresholds. Their meaning is unchanged: on every stream,
    ``visible`` is the first position whose node every access of the buffer happens-before
    (checked against ``hb.hb`` node by node on a 64-stream schedule of a graph with views and in-place)."""
    import numpy as np

    g = H.qkv()
    order = [n.id for n in g.nodes]
    # nodes spread over streams 0..63, the last on stream 63 (so every one of the 64 columns exists)
    streams = {n: (0 if i % 3 == 0 else (i * 29) % 64) for i, n in enumerate(order)}
    streams[order[-1]] = 63
    sched = memplan.schedule_with_events(g, order, streams)
    hb = build_happens_before(g, sched)
    lt = compute_lifetimes(g, hb)
    assert hb.clock.dtype == np.int32 and hb.num_streams == 64
    for a in (lt.first, lt.last, lt.visible, lt.live_from):
        assert a.dtype == np.int32 and a.shape == (len(lt.roots), 64)
    for b in range(len(lt.roots)):
        acc = [int(n) for n in lt.accesses(b)]
        for s in range(64):
            nodes = list(hb.stream_nodes[s])
            if lt.has_end[b]:
                want = None
            else:
                want = next((q for q, n in enumerate(nodes) if all(hb.hb(a, n) for a in acc)), len(nodes))
            if want is not None and not lt.has_start[b]:
                assert min(int(lt.visible[b, s]), len(nodes)) == want, (b, s)


def test_an_output_view_of_a_weight_keeps_no_arena_buffer_to_the_end():
    """An output view whose root is a weight marks no buffer has_end (not the last one by a -1 index)."""
    b = GraphBuilder("weight-output-view", alignment=1)
    b.input("x", 100)
    b.weight("cache", 1000)
    b.view("kc", "cache", 100, kind="output")
    b.node("proj", "OP", ["x"], b.intermediate("k", 100))
    b.node("set", "SET_ROWS", ["k"], "kc")
    b.node("use", "OP", ["x"], b.output("y", 100))
    b.output("y2", 100)
    b.node("mk", "OP", ["x"], b.intermediate("z", 300))  # the last arena root
    b.node("end", "OP", ["z"], "y2")
    g = b.build()
    sch = H.serial(g)
    hb, lt, _ = setup(g, sch)
    assert lt.has_end.tolist() == [t in ("y", "y2") for t in names(g, lt)]
    order, events = list(zip(sch.order, sch.streams)), [(e.after, e.before) for e in sch.events]
    assert lower_bound(g, hb, lt) == ref.lower_bound(g, order, events) == 500


def test_inputs_of_a_graph_without_nodes_get_overlapping_intervals():
    """With no nodes, each input's interval is still [0, 1) (the solvers keep the inputs apart); no node, no live set: bound 0."""
    b = GraphBuilder("no-nodes", alignment=1)
    b.input("x", 100)
    b.input("x2", 100)
    g = b.build()
    hb, lt, problem = setup(g, memplan.serial_schedule(g))
    assert lt.lower.tolist() == [0, 0] and lt.upper.tolist() == [1, 1]
    assert lower_bound(g, hb, lt) == ref.lower_bound(g, [], []) == 0
    p = memplan.plan(g)
    assert p.arena_bytes == 200
    memplan.verify(g, p)


def test_inplace_output_may_be_buffer_zero():
    """The in-place pair is found when the output's root is the first buffer (index 0 is a buffer, not "none")."""
    b = GraphBuilder("inplace-first", alignment=1)
    b.intermediate("t", 100)  # buffer 0
    b.input("x", 100)
    b.node("mk", "OP", ["x"], b.intermediate("u", 100))
    b.node("relu", "RELU", ["u"], "t", inplace={"t": "u"})
    b.node("end", "OP", ["t"], b.output("y", 100))
    g = b.build()
    hb, lt, problem = setup(g, H.serial(g))
    n = names(g, lt)
    assert n[0] == "t"
    assert [(n[a], n[b], g.nodes[k].id) for a, b, k in lt.compatible] == [("u", "t", "relu")]
    assert lower_bound(g, hb, lt) == 200  # at relu: x is done, u is overwritten in place


def test_inplace_into_a_weights_view_pairs_no_buffer():
    """inplace {kc: u} with kc a view of a weight: no compatible pair (not the last buffer by a -1 index)."""
    b = GraphBuilder("inplace-weight", alignment=1)
    b.input("x", 100)
    b.weight("cache", 1000)
    b.view("kc", "cache", 100)
    b.output("y", 100)
    b.node("mk", "OP", ["x"], b.intermediate("u", 100))
    b.node("set", "SET_ROWS", ["u"], ["kc", b.intermediate("z", 100)], inplace={"kc": "u"})  # z: the last buffer
    b.node("end", "OP", ["z", "kc"], "y")
    g = b.build()
    sch = H.serial(g)
    hb, lt, problem = setup(g, sch)
    assert names(g, lt)[-1] == "z" and lt.compatible == () and problem.inplace == ()
    order, events = list(zip(sch.order, sch.streams)), [(e.after, e.before) for e in sch.events]
    assert lower_bound(g, hb, lt) == ref.lower_bound(g, order, events) == 200


def test_serial_intervals_are_first_access_to_the_next_node():
    """Serial intervals: lower = first access time (inputs 0); upper = the next node's time (n + 1 after the last node), n + 2 for outputs."""
    for g in (H.chain(), H.views(), H.inplace()):
        sch = H.serial(g)
        _, lt, _ = setup(g, sch)
        n = len(g.nodes)
        acc = ref.accesses(g)
        time = {nid: p + 1 for p, nid in enumerate(sch.order)}
        for b, r in enumerate(names(g, lt)):
            real = [time[x] for x in acc[r] if x in time]
            lower = 0 if ref.START in acc[r] else min(real)
            upper = n + 2 if ref.END in acc[r] else max(real) + 1 if real else 1
            assert (int(lt.lower[b]), int(lt.upper[b])) == (lower, max(upper, lower + 1)), (g.name, r)


def test_live_tables_and_bound_match_brute_force_on_fan_out_joins():
    """live_from / visible per (root, stream) and the per-node bound, against the reference's explicit HB on fan-out/join DAGs."""
    from memplan.generators import fanout_join
    from memplan.lifetimes import NEVER

    for seed in range(12):
        g, sch = fanout_join(24, max_width=4, streams=3, seed=seed)
        hb, lt, _ = setup(g, sch)
        order, events = list(zip(sch.order, sch.streams)), [(e.after, e.before) for e in sch.events]
        closure = ref.happens_before(order, events)
        acc = ref.accesses(g)
        for b, r in enumerate(names(g, lt)):
            real = [x for x in acc[r] if x not in (ref.START, ref.END)]
            for s0, nodes in enumerate(hb.stream_nodes):
                ids = [g.nodes[int(n)].id for n in nodes]
                lf = 0 if ref.START in acc[r] else next(
                    (q for q, m in enumerate(ids) if any(x == m or closure(x, m) for x in real)), len(ids))
                vis = NEVER if ref.END in acc[r] else next(  # every access strictly before
                    (q for q, m in enumerate(ids) if all(closure(x, m) for x in real)), len(ids))
                assert (min(int(lt.live_from[b, s0]), len(ids)), int(lt.visible[b, s0])) == (lf, vis), (seed, r, s0)
        assert lower_bound(g, hb, lt) == ref.lower_bound(g, order, events), seed



def test_alignment_two_sharpens_the_bound():
    """At alignment 2, three live 1-byte roots need 5 bytes (2 + 2 + 1), which the bound proves and a plan meets."""
    b = GraphBuilder("align2", alignment=2)
    b.input("x", 1)
    b.node("a", "OP", ["x"], b.intermediate("t", 1))
    b.node("b", "OP", ["x", "t"], b.output("y", 1))
    g = b.build()
    hb, lt, problem = setup(g, H.serial(g))
    assert lower_bound(g, hb, lt) == 3 and problem.lower_bound == 5
    assert memplan.plan(g).arena_bytes == 5


def test_restricted_upper_falls_back_when_a_foreign_access_comes_later():
    """restrict_lifetimes keeps the all-streams upper when a kept buffer is accessed on another stream after these streams begin."""
    import numpy as np

    from memplan.lifetimes import restrict_lifetimes

    b = GraphBuilder("foreign-late", alignment=1)
    b.input("x", 100)
    b.node("n0", "OP", ["x"], b.intermediate("t", 100))
    b.node("n1", "OP", ["t"], b.intermediate("u", 100))
    b.node("n2", "OP", ["x"], b.intermediate("v", 100))
    b.node("n3", "OP", ["u", "v"], b.output("y", 100))
    g = b.build()
    sch = H.streams(g, {"n0": 1, "n1": 0, "n2": 1, "n3": 1})
    hb, lt, _ = setup(g, sch)
    keep = np.ones(len(lt.roots), dtype=bool)
    assert restrict_lifetimes(lt, keep, hb, [1]).upper.tolist() == lt.upper.tolist()
