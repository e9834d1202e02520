"""Small graphs whose lifetimes, lower bounds and arenas the tests derive by hand.

They mirror the bundled examples but are built here, so a change to ``memplan.examples`` cannot
silently change what the hand derivations in the tests refer to. Every schedule is built through the
public API (``memplan.schedule_with_events`` or an explicit ``memplan.Schedule``).
"""

from __future__ import annotations

import memplan
from memplan import Graph, GraphBuilder

KB = 1024


def chain(n: int = 4, size: int = KB, alignment: int = 256) -> Graph:
    """x -> op0 -> t0 -> op1 -> t1 -> ... -> op{n-1} -> y."""
    b = GraphBuilder(f"chain{n}", alignment=alignment)
    prev = b.input("x", size)
    for i in range(n):
        out = b.output("y", size) if i == n - 1 else b.intermediate(f"t{i}", size)
        b.node(f"op{i}", "UNARY", [prev], out, cost=10.0)
        prev = out
    return b.build()


def diamond(size: int = KB) -> Graph:
    """x -> a -> ta; l: ta -> tl; r: ta -> tr; j: tl, tr -> y."""
    b = GraphBuilder("diamond")
    b.input("x", size)
    b.node("a", "UNARY", ["x"], b.intermediate("ta", size))
    b.node("l", "UNARY", ["ta"], b.intermediate("tl", size))
    b.node("r", "UNARY", ["ta"], b.intermediate("tr", size))
    b.node("j", "ADD", ["tl", "tr"], b.output("y", size))
    return b.build()


def qkv(hidden: int = 4096, kv: int = 1024) -> Graph:
    """norm -> {mm_q, mm_k, mm_v} -> attn -> mm_o: a 3-way fan-out and join."""
    b = GraphBuilder("qkv")
    b.input("x", hidden)
    for w in ("wq", "wk", "wv", "wo"):
        b.weight(w, 1 << 20)
    b.node("norm", "RMS_NORM", ["x"], b.intermediate("xn", hidden))
    b.node("mm_q", "MUL_MAT", ["wq", "xn"], b.intermediate("q", hidden))
    b.node("mm_k", "MUL_MAT", ["wk", "xn"], b.intermediate("k", kv))
    b.node("mm_v", "MUL_MAT", ["wv", "xn"], b.intermediate("v", kv))
    b.node("attn", "ATTN", ["q", "k", "v"], b.intermediate("a", hidden))
    b.node("mm_o", "MUL_MAT", ["wo", "a"], b.output("y", hidden))
    return b.build()


QKV_STREAMS = {"norm": 0, "mm_q": 0, "mm_k": 1, "mm_v": 2, "attn": 0, "mm_o": 0}


def fanout15(size: int = KB) -> Graph:
    """src -> {b1, b2, b3}; b1 and b2 join into j15 ("1.5"), which joins b3 in j."""
    b = GraphBuilder("fanout15")
    b.input("x", size)
    b.node("src", "UNARY", ["x"], b.intermediate("s", size))
    for i in (1, 2, 3):
        b.node(f"b{i}", "UNARY", ["s"], b.intermediate(f"t{i}", size))
    b.node("j15", "ADD", ["t1", "t2"], b.intermediate("t15", size))
    b.node("j", "ADD", ["t15", "t3"], b.output("y", size))
    return b.build()


FANOUT15_STREAMS = {"src": 0, "b1": 0, "b2": 1, "b3": 2, "j15": 0, "j": 0}


def moe(experts: int = 3, size: int = 256) -> Graph:
    """router -> experts (up, in-place act, down) -> a running sum: a wide fan-out."""
    b = GraphBuilder(f"moe{experts}")
    b.input("x", size)
    b.node("router", "MUL_MAT", ["x"], b.intermediate("h", size))
    for e in range(experts):
        b.weight(f"w{e}", 4 * size)
        b.node(f"e{e}.up", "MUL_MAT", [f"w{e}", "h"], b.intermediate(f"u{e}", 4 * size))
        b.node(f"e{e}.act", "SILU", [f"u{e}"], b.intermediate(f"a{e}", 4 * size), inplace={f"a{e}": f"u{e}"})
        b.node(f"e{e}.down", "MUL_MAT", [f"w{e}", f"a{e}"], b.intermediate(f"d{e}", size))
    acc = "d0"
    for e in range(1, experts):
        nxt = b.output("y", size) if e == experts - 1 else b.intermediate(f"s{e}", size)
        b.node(f"sum{e}", "ADD", [acc, f"d{e}"], nxt)
        acc = nxt
    return b.build()


def moe_streams(experts: int = 3) -> dict[str, int]:
    """Router and sums on stream 0, expert e on stream e + 1."""
    out = {"router": 0}
    for e in range(experts):
        for part in ("up", "act", "down"):
            out[f"e{e}.{part}"] = e + 1
    for e in range(1, experts):
        out[f"sum{e}"] = 0
    return out


def views(size: int = 4096) -> Graph:
    """A reshape view, a slice of the reshape, a fused pair with an in-place op."""
    b = GraphBuilder("views")
    b.input("x", size)
    b.node("mm", "MUL_MAT", ["x"], b.intermediate("m", size))
    b.view("m2", "m", size)                    # reshape: all of m
    b.view("m3", "m2", size // 2, size // 2)  # the upper half of the reshape
    b.node("scale", "SCALE", ["m3"], b.intermediate("sc", size // 2), group="f0")
    b.node("act", "SILU", ["sc"], b.intermediate("ac", size // 2), group="f0", inplace={"ac": "sc"})
    b.node("cont", "CONT", ["ac", "m2"], b.output("y", size // 2))
    return b.build()


VIEWS_STREAMS = {"mm": 0, "scale": 1, "act": 1, "cont": 0}


def kv_cache(size: int = 1024) -> Graph:
    """SET_ROWS writes the cache (a weight: outside the arena) through a view; attention reads a
    window of that view, so it must wait for the write (rule 2 along the view chain)."""
    b = GraphBuilder("kvcache")
    b.input("x", size)
    b.weight("cache", 8 * size)
    b.view("kc", "cache", 8 * size)
    b.view("window", "kc", 4 * size)
    b.node("proj", "MUL_MAT", ["x"], b.intermediate("k", size))
    b.node("set", "SET_ROWS", ["k"], "kc")
    b.node("q", "MUL_MAT", ["x"], b.intermediate("qv", size))
    b.node("attn", "ATTN", ["qv", "window"], b.output("y", size))
    return b.build()


KV_STREAMS = {"proj": 0, "set": 0, "q": 1, "attn": 1}


def inplace(peek: bool = False, size: int = KB) -> Graph:
    """relu writes t in place over its input x. With ``peek``, another node also reads x and an ADD
    joins t and p: relu is then x's last access only if peek is ordered before it."""
    b = GraphBuilder("inplace")
    b.input("x", size)
    b.node("relu", "RELU", ["x"], b.intermediate("t", size), inplace={"t": "x"})
    if peek:
        b.node("peek", "UNARY", ["x"], b.intermediate("p", size))
        b.node("out", "ADD", ["t", "p"], b.output("y", size))
    else:
        b.node("out", "UNARY", ["t"], b.output("y", size))
    return b.build()


INPLACE_STREAMS = {"relu": 0, "peek": 1, "out": 0}  # peek unordered with relu


def serial(graph: Graph) -> memplan.Schedule:
    return memplan.schedule_with_events(graph, [n.id for n in graph.nodes], {n.id: 0 for n in graph.nodes})


def streams(graph: Graph, stream_of: dict[str, int], order: list[str] | None = None) -> memplan.Schedule:
    return memplan.schedule_with_events(graph, order or [n.id for n in graph.nodes], stream_of)


def two_stream_plan(graph):
    """A simple branch assignment over two streams: a node keeps its first producer's stream unless a
    sibling took it; schedule_with_events adds the events."""
    stream_of: dict[str, int] = {}
    taken: set[tuple[str, int]] = set()
    nxt = 0
    for i, n in enumerate(graph.nodes):
        deps = [graph.producer[t] for t in graph.node_inputs[i] if graph.producer[t] >= 0]
        s = None
        if deps:
            p = graph.nodes[deps[0]].id
            if (p, stream_of[p]) not in taken:
                s = stream_of[p]
                taken.add((p, s))
        if s is None:
            s, nxt = nxt % 2, nxt + 1
        stream_of[n.id] = s
    return memplan.plan(graph, memplan.schedule_with_events(graph, [n.id for n in graph.nodes], stream_of))


def cache_product(rows: int = 2048, d: int = 128, k: int = 65536) -> Graph:
    """A long product ``mk`` (a [d, k] weight: tens of microseconds) makes the row that SET_ROWS writes into a
    weight-kind cache, then a 2-D MUL_MAT by that cache (ggml's KQ for one head), beside a MUL_MAT by a
    weight nothing writes. Under PDL the writer starts (and lets its dependents start) long before it can
    write: a product reading the cache before its own wait would see the old row."""
    b = GraphBuilder("cache-product")
    b.tensor("xin", 4 * k, "input", shape=[1, k], dtype="f32")
    b.tensor("idx", 4, "input", shape=[1], dtype="i32")
    b.tensor("w0", d * k * 2, "weight", shape=[d, k], dtype="f16")
    b.tensor("cache", rows * d * 2, "weight", shape=[rows, d], dtype="f16")
    b.tensor("w", rows * d * 2, "weight", shape=[rows, d], dtype="f16")
    b.view("cv", "cache", rows * d * 2, shape=[rows, d], dtype="f16")
    b.node("mk", "MUL_MAT", ["w0", "xin"], b.tensor("x", 4 * d, "intermediate", shape=[1, d], dtype="f32"))
    b.node("set", "SET_ROWS", ["x", "idx"], "cv")
    b.node("mm", "MUL_MAT", ["cv", "x"], b.tensor("s", rows * 4, "output", shape=[1, rows], dtype="f32"))
    b.node("mm_w", "MUL_MAT", ["w", "x"], b.tensor("t", rows * 4, "output", shape=[1, rows], dtype="f32"))
    return b.build()
