"""Hand-checked plans: exact lower bounds, arenas and (where the walk is short) greedy offsets.

Notation in the derivations: ``acc(X)`` are the accesses of root X (contract rule 3), ``A < B`` means
every access of A happens-before every access of B (so A and B may share bytes), ``A # B`` means
they conflict. "live at n" is the contract's lower-bound definition. All sizes are multiples of the
alignment (256) unless a test says otherwise, so alignment adds no padding.
"""

from __future__ import annotations

import sys

import handgraphs as H
import pytest
from conftest import byte_overlap

import memplan
from memplan import GraphBuilder, Schedule

SOLVERS = ("greedy", "size", "auto")
KB = 1024


def plans(graph, schedule):
    return {s: memplan.plan(graph, schedule, solver=s) for s in SOLVERS}


def assert_no_bad_overlap(plan, must_not_share):
    for a, b in must_not_share:
        assert not byte_overlap(plan, a, b), (a, b, plan.offsets())


# ---------------------------------------------------------------------------------------------------
# chain: x -> op0 -> t0 -> op1 -> t1 -> op2 -> t2 -> op3 -> y, all 1024 B
# acc(x) = {START, op0}, acc(t_i) = {op_i, op_{i+1}}, acc(y) = {op3, END}.
# Live at op_i: its input and its output (the input of op_{i-1} was last read before) -> 2048 at every
# node, so the bound is 2048, and ping-pong between two slots meets it.
# Greedy (issue order, best fit): x at 0; t0 meets x at op0 -> 1024; t1 meets only t0 -> the gap
# [0, 1024) -> 0; t2 -> 1024; y -> 0.
# ---------------------------------------------------------------------------------------------------

def test_chain_serial_exact_offsets():
    g = H.chain()
    sch = H.serial(g)
    assert sch.events == ()
    for solver, p in plans(g, sch).items():
        assert p.lower_bound_bytes == 2 * KB, solver
        assert p.arena_bytes == 2 * KB, solver
    p = memplan.plan(g, sch, solver="greedy")
    assert p.offsets() == {"x": 0, "t0": KB, "t1": 0, "t2": KB, "y": 0}


def test_chain_two_streams_one_event_same_arena():
    # op0, op1 on stream 0 and op2, op3 on stream 1: op2 reads t1 from op1, so exactly one event
    # op1 -> op2; happens-before is still a total order, so nothing changes for memory.
    g = H.chain()
    sch = H.streams(g, {"op0": 0, "op1": 0, "op2": 1, "op3": 1})
    assert [(e.after, e.before) for e in sch.events] == [("op1", "op2")]
    for solver, p in plans(g, sch).items():
        assert (p.lower_bound_bytes, p.arena_bytes) == (2 * KB, 2 * KB), solver
        assert p.streams == 2
    p = memplan.plan(g, sch, solver="greedy")
    assert p.offsets() == {"x": 0, "t0": KB, "t1": 0, "t2": KB, "y": 0}


def test_chain_alternating_streams_events_every_hop():
    g = H.chain()
    sch = H.streams(g, {"op0": 0, "op1": 1, "op2": 0, "op3": 1})
    assert [(e.after, e.before) for e in sch.events] == [("op0", "op1"), ("op1", "op2"), ("op2", "op3")]
    for p in plans(g, sch).values():
        assert (p.lower_bound_bytes, p.arena_bytes) == (2 * KB, 2 * KB)


def test_alignment_pads_roots():
    # sizes 100 with alignment 256: every root offset is a multiple of 256; the chain still needs
    # two slots, the second starting at 256, so the arena is 256 + 100 = 356.
    g = H.chain(size=100)
    for p in plans(g, H.serial(g)).values():
        assert p.arena_bytes == 356
        # the raw per-node bound is 200; two aligned live tensors need 256 + 100: proven optimal
        assert p.lower_bound_bytes == 356
        assert all(o % 256 == 0 for _, o, _ in p.tensors if o is not None)
        assert sum(1 for o in p.offsets().values() if o == 256) == 2  # t0 and t2


# ---------------------------------------------------------------------------------------------------
# diamond: a: x -> ta; l: ta -> tl; r: ta -> tr; j: tl, tr -> y; 1024 B each.
# Serial a, l, r, j: live at r = {ta, tl, tr}, at j = {tl, tr, y} -> bound 3072; ta, tl, tr pairwise
# conflict (ta shares l and r with them, tl and tr share j), so 3072 is also necessary: arena 3072.
# Two streams (a, l, j on 0; r on 1): events a -> r (r reads ta) and r -> j (j reads tr). l and r are
# concurrent; live at l = {ta, tl} (tr's first access r does not happen-before l), at r = {ta, tr},
# at j = {tl, tr, y} = 3072. Same arena.
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stream_of", [None, {"a": 0, "l": 0, "r": 1, "j": 0}])
def test_diamond(stream_of):
    g = H.diamond()
    sch = H.serial(g) if stream_of is None else H.streams(g, stream_of)
    if stream_of:
        assert {(e.after, e.before) for e in sch.events} == {("a", "r"), ("r", "j")}
    for p in plans(g, sch).values():
        assert (p.lower_bound_bytes, p.arena_bytes) == (3 * KB, 3 * KB)
        assert_no_bad_overlap(p, [("ta", "tl"), ("ta", "tr"), ("tl", "tr"), ("tl", "y"), ("tr", "y"),
                                  ("x", "ta")])


# ---------------------------------------------------------------------------------------------------
# Q/K/V: x, xn, q, a, y are 4096 B; k, v 1024 B; weights are outside the arena (offset null).
# Serial: live at mm_v = {xn, q, k, v} = 10240, at attn = {q, k, v, a} = 10240 -> bound 10240.
# Three streams (norm, mm_q, attn, mm_o on 0; mm_k on 1; mm_v on 2): events norm -> mm_k,
# norm -> mm_v, mm_k -> attn, mm_v -> attn. xn # q (mm_q), xn # k, xn # v, and q, k, v share attn,
# so {xn, q, k, v} is a clique of 10240: arena >= 10240. Live at attn = {q, k, v, a} = 10240 too
# (xn is no longer live: all of mm_q, mm_k, mm_v happen-before attn). a may take xn's bytes (xn < a),
# y may take q's (q < y), x may share with q, k or v (x's accesses START, norm precede them).
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("multi", [False, True])
def test_qkv(multi):
    g = H.qkv()
    sch = H.streams(g, H.QKV_STREAMS) if multi else H.serial(g)
    if multi:
        assert {(e.after, e.before) for e in sch.events} == {
            ("norm", "mm_k"), ("norm", "mm_v"), ("mm_k", "attn"), ("mm_v", "attn")}
        assert sch.num_streams == 3
    for p in plans(g, sch).values():
        assert (p.lower_bound_bytes, p.arena_bytes) == (10240, 10240)
        offs = p.offsets()
        assert all(offs[w] is None for w in ("wq", "wk", "wv", "wo"))
        assert_no_bad_overlap(p, [("xn", "q"), ("xn", "k"), ("xn", "v"), ("q", "k"), ("q", "v"),
                                  ("k", "v"), ("a", "q"), ("a", "k"), ("a", "v"), ("a", "y"), ("x", "xn")])


def test_qkv_three_streams_greedy_offsets():
    # Greedy in issue order: x 0; xn meets x -> 4096; q meets xn -> 0 (x is dead after norm);
    # k meets xn, q -> 8192; v meets xn, q, k -> 9216; a meets q, k, v (xn < a) -> xn's 4096;
    # y meets a -> 0.
    g = H.qkv()
    p = memplan.plan(g, H.streams(g, H.QKV_STREAMS), solver="greedy")
    assert {k: v for k, v in p.offsets().items() if v is not None} == {
        "x": 0, "xn": 4096, "q": 0, "k": 8192, "v": 9216, "a": 4096, "y": 0}


# ---------------------------------------------------------------------------------------------------
# fan-out 1 -> 3, branches 1 and 2 join into "1.5", which joins branch 3; 1024 B each.
# Serial src, b1, b2, b3, j15, j: live at b3 = {s, t1, t2, t3} and at j15 = {t1, t2, t3, t15}: 4096.
# Greedy lets t15 reuse s (s's last reader b3 is issued before j15).
# Three streams (src, b1, j15, j on 0; b2 on 1; b3 on 2): events src -> b2, src -> b3, b2 -> j15,
# b3 -> j. Now b3 is concurrent with b1, b2 and j15, so s (read by b3) is still in use at j15:
# s, t1, t2, t3, t15 conflict pairwise (s # t15 because b3 and j15 are unordered; t3 # t1, t2 since
# b3 is concurrent with b1, b2; t3 # t15 share j): arena 5 x 1024 = 5120, while the contract's
# bound is still 4096 (live at j15 = {s, t1, t2, t15}; t3 is not, b3 does not happen-before j15).
# ---------------------------------------------------------------------------------------------------

def test_fanout15_serial_reuses_branch_source():
    g = H.fanout15()
    for p in plans(g, H.serial(g)).values():
        assert (p.lower_bound_bytes, p.arena_bytes) == (4 * KB, 4 * KB)
    p = memplan.plan(g, H.serial(g), solver="greedy")
    assert p.offsets()["t15"] == p.offsets()["s"]


def test_fanout15_three_streams_keeps_source_for_branch3():
    g = H.fanout15()
    sch = H.streams(g, H.FANOUT15_STREAMS)
    assert {(e.after, e.before) for e in sch.events} == {("src", "b2"), ("src", "b3"), ("b2", "j15"), ("b3", "j")}
    clique = ["s", "t1", "t2", "t3", "t15"]
    for p in plans(g, sch).values():
        assert p.lower_bound_bytes == 5 * KB  # the clique above proves it (the per-node bound is 4 KiB)
        assert p.arena_bytes == 5 * KB
        assert_no_bad_overlap(p, [(a, b) for i, a in enumerate(clique) for b in clique[i + 1:]])


def test_fanout15_alternative_order():
    # Issue j15 before b3 on one stream: src, b1, b2, j15, b3, j. Live at j15 = {s, t1, t2, t15}
    # (s still has b3 ahead), at b3 = {s, t15, t3}, at j = {t15, t3, y}: bound 4096 = arena.
    g = H.fanout15()
    order = ["src", "b1", "b2", "j15", "b3", "j"]
    sch = Schedule(tuple(order), (0,) * 6, ())
    for p in plans(g, sch).values():
        assert (p.lower_bound_bytes, p.arena_bytes) == (4 * KB, 4 * KB)
        assert [n for n, _ in p.order] == order


# ---------------------------------------------------------------------------------------------------
# MoE with 3 experts, size 256: h, d_e, s1, y 256 B; u_e, a_e 1024 B; act is in place (a_e over u_e).
# Serial (router, then each expert's up/act/down, then sums): live at e1.down = {h, d0, a1, d1}
# = 1792 (u1 is left out at e1.act: overwritten in place as its last access), at e2.up =
# {h, d0, d1, u2} = 1792, at e2.down = {d0, d1, a2, d2} = 1792 -> bound 1792, met by the arena.
# Experts on streams 1..3 (router and sums on 0): every expert runs concurrently with the others.
# h, a0, a1, a2, d0, d1, d2 conflict pairwise (h is read by every up; a_e # a_f and d_e # d_f across
# experts; a_e # d_e share e.down), so the arena is at least 4 x 256 + 3 x 1024 = 4096, and 4096
# is reached. The contract's bound only sees one node at a time: live at e0.down = {h, a0, d0} =
# 1536 is the largest.
# ---------------------------------------------------------------------------------------------------

def test_moe_serial_uses_inplace_and_meets_bound():
    g = H.moe()
    for p in plans(g, H.serial(g)).values():
        assert (p.lower_bound_bytes, p.arena_bytes) == (1792, 1792)
    p = memplan.plan(g, H.serial(g), solver="greedy")
    offs = p.offsets()
    assert all(offs[f"a{e}"] == offs[f"u{e}"] for e in range(3))  # in place


def test_moe_wide_fanout_on_four_streams():
    g = H.moe()
    sch = H.streams(g, H.moe_streams())
    assert sch.num_streams == 4
    assert {(e.after, e.before) for e in sch.events} == {
        ("router", "e0.up"), ("router", "e1.up"), ("router", "e2.up"),
        ("e0.down", "sum1"), ("e1.down", "sum1"), ("e2.down", "sum2")}
    clique = ["h", "a0", "a1", "a2", "d0", "d1", "d2"]
    for p in plans(g, sch).values():
        # per-node bound 1536; the greedy conflict clique proves more, never past the optimum 4096
        assert 1536 < p.lower_bound_bytes <= p.arena_bytes == 4096
        assert_no_bad_overlap(p, [(a, b) for i, a in enumerate(clique) for b in clique[i + 1:]])
        offs = p.offsets()
        for e in range(3):  # still in place: e.act is u_e's last access on its own stream
            assert not any(byte_overlap(p, f"u{e}", f"u{f}") for f in range(3) if f != e)
        assert offs["y"] is not None


# ---------------------------------------------------------------------------------------------------
# views: x, m 4096 B; m2 = all of m (reshape); m3 = m2[2048:4096]; sc, ac, y 2048 B.
# acc(x) = {START, mm}; acc(m) = {mm, scale (reads m3), cont (reads m2)}; acc(sc) = {scale, act};
# acc(ac) = {act, cont}; acc(y) = {cont, END}. act is in place (ac over sc, act is sc's last access).
# Live at mm = {x, m} = 8192, at act = {m, ac} (sc left out), at cont = {m, ac, y} = 8192.
# Greedy: x 0; m 4096 (meets x); sc 0 (x is dead after mm); ac in place at 0; y meets m, ac -> the
# gap [2048, 4096) -> 2048. Views follow their parent: m2 = 4096, m3 = 4096 + 2048.
# Streams: mm, cont on 0 and the fused pair scale+act on 1: events mm -> scale, act -> cont.
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("multi", [False, True])
def test_views_inplace_and_fusion(multi):
    g = H.views()
    sch = H.streams(g, H.VIEWS_STREAMS) if multi else H.serial(g)
    if multi:
        assert {(e.after, e.before) for e in sch.events} == {("mm", "scale"), ("act", "cont")}
    for p in plans(g, sch).values():
        assert (p.lower_bound_bytes, p.arena_bytes) == (8192, 8192)
        offs = p.offsets()
        assert offs["m2"] == offs["m"] and offs["m3"] == offs["m"] + 2048
    p = memplan.plan(g, sch, solver="greedy")
    assert p.offsets() == {"x": 0, "m": 4096, "m2": 4096, "m3": 6144, "sc": 0, "ac": 0, "y": 2048}


def test_views_fusion_group_split_is_refused():
    g = H.views()
    with pytest.raises(memplan.ScheduleError, match="'f0'"):
        H.streams(g, {"mm": 0, "scale": 0, "act": 1, "cont": 0})


# ---------------------------------------------------------------------------------------------------
# KV cache: SET_ROWS writes the weight-kind cache through view kc; attn reads window (a view of kc).
# Serial proj, set, q, attn: live at proj = {x, k}, at q = {x, qv}, at attn = {qv, y}: 2048 = arena.
# Two streams (proj, set on 0; q, attn on 1): attn must wait for set (rule 2 along the view chain),
# so the only event is set -> attn. k # qv (proj/set vs q are unordered), x # k (proj), x # qv (q):
# a 3072 clique; y (after x and k) can take x's or k's bytes -> arena 3072, bound 2048.
# ---------------------------------------------------------------------------------------------------

def test_kv_cache_writes_through_view_of_weight():
    g = H.kv_cache()
    p = memplan.plan(g, H.serial(g))
    assert (p.lower_bound_bytes, p.arena_bytes) == (2048, 2048)
    assert all(p.offsets()[t] is None for t in ("cache", "kc", "window"))
    sch = H.streams(g, H.KV_STREAMS)
    assert [(e.after, e.before) for e in sch.events] == [("set", "attn")]
    for p in plans(g, sch).values():
        assert (p.lower_bound_bytes, p.arena_bytes) == (3072, 3072)  # x, k, qv pairwise conflict
        assert_no_bad_overlap(p, [("x", "k"), ("x", "qv"), ("k", "qv"), ("qv", "y")])


# ---------------------------------------------------------------------------------------------------
# in-place: legal and illegal cases
# ---------------------------------------------------------------------------------------------------

def test_inplace_over_input_when_last_access():
    # acc(x) = {START, relu}, acc(t) = {relu, out}: relu is x's last access and t's producer, so t may
    # take x's bytes. Live at relu = {t} (x left out), at out = {t, y}: bound 2048 = arena.
    g = H.inplace()
    for p in plans(g, H.serial(g)).values():
        assert (p.lower_bound_bytes, p.arena_bytes) == (2 * KB, 2 * KB)
    p = memplan.plan(g, H.serial(g), solver="greedy")
    assert p.offsets()["t"] == p.offsets()["x"]


def test_inplace_refused_when_another_stream_still_reads():
    # peek reads x on stream 1, unordered with relu on stream 0: relu is not x's last access, so
    # t must not overlap x even though the node asks for in place. Serially (peek after relu) the
    # same holds: peek reads x after relu wrote t.
    g = H.inplace(peek=True)
    for sch in (H.serial(g), H.streams(g, H.INPLACE_STREAMS)):
        for p in plans(g, sch).values():
            assert not byte_overlap(p, "t", "x")
            assert p.arena_bytes == p.lower_bound_bytes == 3 * KB  # x, t, p live at peek


def test_inplace_ok_when_other_reader_finishes_first():
    # peek is issued first on stream 1 and relu waits for it (explicit event peek -> relu): now
    # every access of x happens-before relu, so t may take x's bytes.
    g = H.inplace(peek=True)
    sch = Schedule(("peek", "relu", "out"), (1, 0, 0), (memplan.Event("peek", "relu"), memplan.Event("peek", "out")))
    p = memplan.plan(g, sch, solver="greedy")
    assert p.offsets()["t"] == p.offsets()["x"]
    memplan.verify(g, p)


def test_inplace_outputs_sharing_one_input_counted_once_in_bound():
    # split writes y1 over x[0:100] and y2 over x[100:200], both in place; x is left out once at
    # split, so live at split = {y1, y2} = 200 (regression: the bound subtracted x twice, giving 0).
    b = GraphBuilder("split", alignment=1)
    b.input("x", 200)
    b.view("xa", "x", 100, 0)
    b.view("xb", "x", 100, 100)
    b.node("split", "SPLIT", ["xa", "xb"], [b.output("y1", 100), b.output("y2", 100)],
           inplace={"y1": "xa", "y2": "xb"})
    g = b.build()
    for p in plans(g, H.serial(g)).values():
        assert p.lower_bound_bytes == 200
        assert p.arena_bytes == 200
        assert not byte_overlap(p, "y1", "y2")


def test_zero_size_tensors_take_no_room():
    b = GraphBuilder("zeros")
    b.input("x", 0)
    b.node("a", "OP", ["x"], b.intermediate("e", 0))
    b.node("b", "OP", ["e"], b.output("y", 512))
    g = b.build()
    for p in plans(g, H.serial(g)).values():
        assert p.arena_bytes == 512 and p.lower_bound_bytes == 512


def test_empty_graph():
    g = GraphBuilder("empty").build()
    p = memplan.plan(g)
    assert p.arena_bytes == 0 and p.lower_bound_bytes == 0 and p.order == ()
    memplan.verify(g, p)


def test_unknown_solver_is_a_solver_error():
    g = H.chain()
    with pytest.raises(memplan.SolverError, match="nope"):
        memplan.plan(g, solver="nope")


def _all_at_zero(problem, options):
    import numpy as np

    from memplan.problem import Solution

    off = np.zeros(len(problem), dtype=np.int64)
    return Solution(off, int(problem.sizes.max(initial=0)), "broken")


def test_solver_bug_is_caught_before_a_plan_is_returned(monkeypatch):
    # a solver that stacks every buffer at offset 0: the solver-side self-check refuses it
    solvers = sys.modules["memplan.solvers"]  # the one checked solve looks solvers up there

    monkeypatch.setattr(solvers, "get_solver", lambda name: _all_at_zero)
    g = H.qkv()
    with pytest.raises(memplan.SolverError, match="broken"):
        memplan.plan(g, H.streams(g, H.QKV_STREAMS))


def test_independent_verifier_is_the_last_line(monkeypatch):
    # even with the solver-side self-check gone, plan() runs the independent verifier
    solvers = sys.modules["memplan.solvers"]

    monkeypatch.setattr(solvers, "get_solver", lambda name: _all_at_zero)
    monkeypatch.setattr(solvers, "check_solution", lambda problem, sol: None)
    g = H.qkv()
    with pytest.raises(memplan.UnsafePlan, match="lower_bound_bytes"):  # 10240 cannot fit in 4096
        memplan.plan(g, H.streams(g, H.QKV_STREAMS))
    p = memplan.plan(g, H.streams(g, H.QKV_STREAMS), check=False)  # only when asked not to check
    doc = p.to_dict()
    doc["lower_bound_bytes"] = 0
    with pytest.raises(memplan.UnsafePlan) as info:
        memplan.verify(g, doc)
    assert any(r == 3 and "'xn'" in m and "'q'" in m for r, m in info.value.violations)


@pytest.mark.parametrize("stem", ["chain", "diamond", "qkv", "fanout15", "moe", "views", "llama-tiny"])
@pytest.mark.parametrize("streams", [2, 4, "auto"])
def test_scheduled_examples_are_safe_by_brute_force(stem, streams):
    # plans over graph_optimize's schedules, judged by the brute-force reading of the contract
    import reference as ref

    from memplan.examples import bundled

    g = bundled()[stem]
    p = memplan.plan(g, streams=streams)
    doc = p.to_dict()
    assert ref.check_plan(g, doc) == set()
    order = [(e["node"], e["stream"]) for e in doc["order"]]
    events = [(e["after"], e["before"]) for e in doc["events"]]
    per_node = ref.lower_bound(g, order, events)
    assert per_node <= p.lower_bound_bytes <= p.arena_bytes
    if p.lower_bound_bytes > per_node:
        assert p.lower_bound_bytes <= ref.max_clique_bound(g, order, events)


def test_ggml_inplace_output_smaller_than_its_input_keeps_the_tail_until_the_node_ends():
    """An in-place output smaller than its input: the input's tail is still read by the node, so the
    node's other output may not be cut from it (ggml freed the tail at once and put ``t7`` over ``x``
    while ``n`` read ``x``: SolverError "overlapped conflicting buffers (a solver bug)")."""
    b = GraphBuilder("g")
    b.input("x", 512)
    b.node("n", "OP", ["x"], [b.intermediate("t6", 256), b.intermediate("t7", 256)], inplace={"t6": "x"})
    b.node("m", "OP", ["t6", "t7"], b.output("y", 256))
    g = b.build()
    p = memplan.plan(g, solver="ggml")
    assert p.offsets()["t6"] == p.offsets()["x"]
    assert not byte_overlap(p, "x", "t7")
