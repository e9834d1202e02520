"""Bundled example graphs: small hand-checkable shapes and a Llama-style decode/prefill step.

They serve the README's first command (``memplan example``), the tests and the benchmarks. Tensor
``attrs`` carry ``shape`` and ``dtype`` so the GPU runtime can execute the same graphs; node costs are
a roofline estimate (microseconds on an H100-class GPU) for the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import GraphError, as_int, named_fields, named_options
from .errors import short_repr as _short
from .graph import Graph, GraphBuilder
from .ops import roofline_us

F32, F16 = 4, 2


def _fold(b: GraphBuilder, first: str, size: int, steps: list[tuple[str, str, tuple[str, ...], str, float]]) -> None:
    """Nodes ``(id, op, more inputs, output name, cost)`` each reading the previous one's output; the
    last writes the graph output ``y``."""
    prev = first
    for k, (nid, op, more, name, cost) in enumerate(steps):
        out = b.output("y", size) if k == len(steps) - 1 else b.intermediate(name, size)
        b.node(nid, op, [prev, *more], out, cost=cost)
        prev = out


#: the most nodes ``chain`` and ``moe`` build (``argtypes.MAX_NODES``, the benchmarks' own bound): ``chain(10**12)``
#: and ``moe(2**40)`` built nodes until memory ran out, where ``LlamaConfig.layers`` is bounded (``MAX_LAYERS``)
MAX_NODES = 10 ** 7
#: nodes ``moe`` builds per expert (up, act, down, and the sum that adds it)
MOE_NODES_PER_EXPERT = 4


def _whole(func: str, name: str, value: object, least: int, most: int | None = None, unit: str = "") -> int:
    """``value`` as a plain int if it is an integer >= ``least``, else GraphError naming the argument: a count or
    size of another type was a raw TypeError from ``range`` or arithmetic (``chain(2.5)``, ``views_inplace(None)``),
    ``moe(0)`` an IndexError, and ``chain(0)`` a graph without its output ``y``. A bad ``size`` was refused
    only by the builder, naming tensor ``x`` rather than the argument the caller gave."""
    v = as_int(value)
    if v is None or v < least:
        raise GraphError(f"{func}: {name} must be an integer >= {least}, not {_short(value)}")
    if most is not None and v > most:   # (``most``: the graph's node bound, ``unit`` what one counts)
        raise GraphError(f"{func}: {name} must be at most {most} ({unit}; the graph is held to {MAX_NODES} nodes), "
                         f"not {_short(v)}")
    return v


@named_options
def chain(n: int = 4, size: int = 1024) -> Graph:
    n, size = _whole("chain", "n", n, 1, MAX_NODES, "a node each"), _whole("chain", "size", size, 0)
    b = GraphBuilder(f"chain{n}")
    _fold(b, b.input("x", size), size, [(f"op{i}", "UNARY", (), f"t{i}", 10.0) for i in range(n)])
    return b.build()


@named_options
def diamond(size: int = 1024) -> Graph:
    size = _whole("diamond", "size", size, 0)
    b = GraphBuilder("diamond")
    b.input("x", size)
    b.node("a", "UNARY", ["x"], b.intermediate("ta", size), cost=10.0)
    b.node("l", "UNARY", ["ta"], b.intermediate("tl", size), cost=10.0)
    b.node("r", "UNARY", ["ta"], b.intermediate("tr", size), cost=10.0)
    b.node("j", "ADD", ["tl", "tr"], b.output("y", size), cost=10.0)
    return b.build()


@named_options
def qkv_attention(hidden: int = 4096, kv: int = 1024) -> Graph:
    """Norm, then Q/K/V projections fanning out and joining in attention."""
    hidden, kv = _whole("qkv_attention", "hidden", hidden, 0), _whole("qkv_attention", "kv", kv, 0)
    b = GraphBuilder("qkv")
    b.input("x", hidden)
    for w, n in (("wq", hidden), ("wk", kv), ("wv", kv), ("wo", hidden)):
        b.weight(w, n * hidden // 4)
    b.node("norm", "RMS_NORM", ["x"], b.intermediate("xn", hidden), cost=2.0)
    b.node("mm_q", "MUL_MAT", ["wq", "xn"], b.intermediate("q", hidden), cost=20.0)
    b.node("mm_k", "MUL_MAT", ["wk", "xn"], b.intermediate("k", kv), cost=20.0)
    b.node("mm_v", "MUL_MAT", ["wv", "xn"], b.intermediate("v", kv), cost=20.0)
    b.node("attn", "ATTN", ["q", "k", "v"], b.intermediate("a", hidden), cost=10.0)
    b.node("mm_o", "MUL_MAT", ["wo", "a"], b.output("y", hidden), cost=20.0)
    return b.build()


@named_options
def fanout_join15(size: int = 1024) -> Graph:
    """1 -> 3 fan-out; branches 1 and 2 join into "1.5", which then joins branch 3."""
    size = _whole("fanout_join15", "size", size, 0)
    b = GraphBuilder("fanout15")
    b.input("x", size)
    b.node("src", "UNARY", ["x"], b.intermediate("s", size), cost=5.0)
    for i, c in ((1, 30.0), (2, 20.0), (3, 40.0)):
        b.node(f"b{i}", "UNARY", ["s"], b.intermediate(f"t{i}", size), cost=c)
    b.node("j15", "ADD", ["t1", "t2"], b.intermediate("t15", size), cost=10.0)
    b.node("j", "ADD", ["t15", "t3"], b.output("y", size), cost=5.0)
    return b.build()


@named_options
def moe(experts: int = 8, size: int = 4096) -> Graph:
    """A router fanning out to independent experts whose outputs are summed."""
    experts = _whole("moe", "experts", experts, 1, MAX_NODES // MOE_NODES_PER_EXPERT,
                     f"{MOE_NODES_PER_EXPERT} nodes each")
    size = _whole("moe", "size", size, 0)
    b = GraphBuilder(f"moe{experts}")
    b.input("x", size)
    b.node("router", "MUL_MAT", ["x"], b.intermediate("h", size), cost=5.0)
    outs = []
    for e in range(experts):
        b.weight(f"w_up{e}", size * 64)
        b.weight(f"w_down{e}", size * 64)
        b.node(f"e{e}.up", "MUL_MAT", [f"w_up{e}", "h"], b.intermediate(f"u{e}", 4 * size), cost=20.0)
        b.node(f"e{e}.act", "SILU", [f"u{e}"], b.intermediate(f"a{e}", 4 * size), cost=3.0,
               inplace={f"a{e}": f"u{e}"})
        b.node(f"e{e}.down", "MUL_MAT", [f"w_down{e}", f"a{e}"], b.intermediate(f"d{e}", size), cost=20.0)
        outs.append(f"d{e}")
    _fold(b, outs[0], size, [(f"sum{e}", "ADD", (outs[e],), f"s{e}", 2.0) for e in range(1, experts)])
    return b.build()


@named_options
def views_inplace(size: int = 4096) -> Graph:
    """Reshape/permute view chains, an in-place op and a fused pair."""
    size = _whole("views_inplace", "size", size, 0)
    b = GraphBuilder("views")
    b.input("x", size)
    b.node("mm", "MUL_MAT", ["x"], b.intermediate("m", size), cost=10.0)
    b.view("m2", "m", size)                    # reshape
    b.view("m3", "m2", size // 2, size // 2)  # slice of the reshape
    b.node("scale", "SCALE", ["m3"], b.intermediate("sc", size // 2), cost=2.0, group="f0")
    b.node("act", "SILU", ["sc"], b.intermediate("ac", size // 2), cost=2.0, group="f0",
           inplace={"ac": "sc"})
    b.node("cont", "CONT", ["ac", "m2"], b.output("y", size // 2), cost=2.0)
    return b.build()


#: the most decoder layers a ``LlamaConfig`` may have (real models have at most a few hundred): the graph has
#: ~23 nodes per layer, so ``layers=10**9`` built nodes until memory ran out. ``memplan bench``'s ``--layers``
#: (``argtypes.MAX_LAYERS``) has the same bound
MAX_LAYERS = 1024


@named_fields
@dataclass(frozen=True)
class LlamaConfig:
    layers: int = 16
    hidden: int = 2048
    heads: int = 32
    kv_heads: int = 8
    ffn: int = 8192
    vocab: int = 32000
    ctx: int = 512          # KV-cache positions already filled
    batch: int = 1          # tokens in this step (1: decode; >1: prefill or batched decode)
    name: str = "llama"

    def __post_init__(self) -> None:
        """Refuse a shape no Llama has, by field: heads=0 divided by zero deep in the builder, a hidden size
        that is no multiple of the heads built attention views that do not cover the projections."""
        least = {"layers": 0, "hidden": 1, "heads": 1, "kv_heads": 1, "ffn": 1, "vocab": 1, "ctx": 0, "batch": 1}
        for name, lo in least.items():
            v = as_int(getattr(self, name))   # a numpy integer as the plain int it equals
            if v is None or v < lo:
                raise GraphError(f"LlamaConfig.{name} must be an integer >= {lo}, not {getattr(self, name)!r}")
            if name == "layers" and v > MAX_LAYERS:
                raise GraphError(f"LlamaConfig.layers must be at most {MAX_LAYERS}, not {_short(v)}")
            object.__setattr__(self, name, v)
        if self.heads % self.kv_heads:
            raise GraphError(f"LlamaConfig: {self.heads} heads do not group over {self.kv_heads} KV heads "
                             "(heads must be a multiple of kv_heads)")
        if self.hidden % self.heads:
            raise GraphError(f"LlamaConfig: hidden {self.hidden} is not a multiple of heads {self.heads} "
                             "(the head size is hidden / heads)")
        if not isinstance(self.name, str):
            raise GraphError(f"LlamaConfig.name must be a string, not {_short(self.name)}")


LLAMA_1B = LlamaConfig()
LLAMA_8B = LlamaConfig(layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336, vocab=128256)
LLAMA_TINY = LlamaConfig(layers=2, hidden=64, heads=4, kv_heads=2, ffn=128, vocab=96, ctx=8)


@named_options
def llama(cfg: LlamaConfig = LLAMA_1B, *, fuse_norms: bool = True, fuse: str = "norms",
          f16_acts: bool = False) -> Graph:
    """One forward step of a Llama-style model at ggml granularity.

    Per layer: RMS_NORM*w, Q/K/V MUL_MAT, ROPE on Q and K, SET_ROWS of K and V into the persistent
    cache (a weight-kind tensor: outside the arena) through views, KQ, SOFT_MAX, KQV, CONT, output
    projection, residual ADD, then the FFN (gate/up MUL_MAT, SILU, MUL, down MUL_MAT, ADD).
    Attention reads the cache through the views SET_ROWS wrote, so it waits for those writes.

    Fusion groups (``fuse_norms=False``: none): ``fuse="norms"`` groups each RMS_NORM with its MUL by
    the norm weight. ``fuse="runtime"`` (what the GPU runtime fuses into single kernels) also groups
    each projection MUL_MAT that feeds a residual ADD (``mm_o``, ``mm_down``) with that ADD and the
    RMS_NORM*w after it, SILU with the gating MUL and (up to 64 tokens) the gate and up MUL_MATs (one
    kernel reading both matrices), ROPE of K with its SET_ROWS, and ROPE of Q with KQ,
    SOFT_MAX, KQV and CONT (one decode-attention kernel); to keep those groups contiguous it lists K's
    and V's cache writes before Q's ROPE. The ops, tensors and
    data dependencies are the same in every mode.

    ``f16_acts``: the layers' activations that only feed weight products (the normed ``xa`` and ``ha``, the
    attention output ``attn``, the SwiGLU output ``gu``) are f16, as the products round them anyway: a product then streams half the
    activation bytes (the GPU runtime's choice at 17-64 tokens). Their MULs then write a fresh tensor, not
    their f32 input in place (an f16 element over an f32 one is no in-place update), and the graph's name
    says ``-f16x``. The final norm's ``fa`` stays f32: its residual input dies in its group, so a plan may
    put ``fa`` over it, which a kernel writing half-width rows could not do.
    """
    # GraphError (a ValueError too): a plain ValueError was no memplan error, so the CLI and callers catching
    # MemplanError missed it; a config of another kind was an AttributeError, fuse_norms="no" fused
    if not isinstance(cfg, LlamaConfig):
        raise GraphError(f"llama: cfg must be a LlamaConfig, not {type(cfg).__name__} {_short(cfg)}")
    if not isinstance(fuse, str) or fuse not in ("norms", "runtime"):
        raise GraphError(f"llama: fuse={_short(fuse)}, expected 'norms' or 'runtime'")
    # (numpy's bool is a bool: ``fuse_norms=np.True_``, from a config array, was taken before these checks)
    for name, flag in (("fuse_norms", fuse_norms), ("f16_acts", f16_acts)):
        if not isinstance(flag, (bool, np.bool_)):
            raise GraphError(f"llama: {name}={_short(flag)}, expected True or False")
    fuse_norms, f16_acts = bool(fuse_norms), bool(f16_acts)
    xdt = "f16" if f16_acts else "f32"

    def over(out: str, inp: str) -> dict[str, str] | None:
        """The in-place pair of a MUL whose output may be an f16 activation."""
        return None if f16_acts else {out: inp}
    rt = fuse_norms and fuse == "runtime"
    carry: str | None = None   # runtime fusion: the group of the previous residual ADD
    B, H, nh, nkv = cfg.batch, cfg.hidden, cfg.heads, cfg.kv_heads
    d = H // nh
    kvd = nkv * d
    n_kv = cfg.ctx + B
    cache_rows = cfg.ctx + max(B, 1)
    b = GraphBuilder(f"{cfg.name}-L{cfg.layers}-b{B}" + ("-f16x" if f16_acts else ""))

    def act(tid: str, shape: list[int], dtype: str = "f32", kind: str = "intermediate") -> str:
        return b.tensor(tid, _nbytes(shape, dtype), kind, shape=shape, dtype=dtype)

    def weight(tid: str, shape: list[int], dtype: str = "f16") -> str:
        return b.tensor(tid, _nbytes(shape, dtype), "weight", shape=shape, dtype=dtype)

    def mm_cost(k: int, n: int, m: int) -> float:
        return roofline_us(2.0 * k * n * m, k * n * F16 + (k + n) * m * F32)

    def ew_cost(nbytes: int) -> float:
        return roofline_us(0, nbytes)

    x = act("inp", [B, H], kind="input")
    act("pos", [B], "i32", kind="input")
    act("kv_idx", [B], "i32", kind="input")
    act("mask", [B, n_kv], "f32", kind="input")
    for li in range(cfg.layers):
        p = f"l{li}."
        weight(p + "attn_norm", [H], "f32")
        weight(p + "wq", [H, H])
        weight(p + "wk", [kvd, H])
        weight(p + "wv", [kvd, H])
        weight(p + "wo", [H, H])
        weight(p + "ffn_norm", [H], "f32")
        weight(p + "w_gate", [cfg.ffn, H])
        weight(p + "w_up", [cfg.ffn, H])
        weight(p + "w_down", [H, cfg.ffn])
        weight(p + "k_cache", [cache_rows, kvd], "f16")
        weight(p + "v_cache", [cache_rows, kvd], "f16")
        g = (carry or p + "attn_norm_f") if fuse_norms else None
        b.node(p + "norm", "RMS_NORM", [x], act(p + "xn", [B, H]), cost=ew_cost(2 * B * H * F32), group=g)
        b.node(p + "norm_w", "MUL", [p + "xn", p + "attn_norm"], act(p + "xa", [B, H], xdt),
               cost=ew_cost(2 * B * H * F32), group=g, inplace=over(p + "xa", p + "xn"))
        b.node(p + "mm_q", "MUL_MAT", [p + "wq", p + "xa"], act(p + "q", [B, H]), cost=mm_cost(H, H, B))
        b.node(p + "mm_k", "MUL_MAT", [p + "wk", p + "xa"], act(p + "k", [B, kvd]), cost=mm_cost(H, kvd, B))
        b.node(p + "mm_v", "MUL_MAT", [p + "wv", p + "xa"], act(p + "v", [B, kvd]), cost=mm_cost(H, kvd, B))
        b.view(p + "q3", p + "q", B * H * F32, shape=[B, nh, d], dtype="f32")
        b.view(p + "k3", p + "k", B * kvd * F32, shape=[B, nkv, d], dtype="f32")
        ga = p + "attn_f" if rt else None

        def rope_q(p=p, ga=ga):
            b.node(p + "rope_q", "ROPE", [p + "q3", "pos"], act(p + "qr", [B, nh, d]),
                   cost=ew_cost(2 * B * H * F32), inplace={p + "qr": p + "q3"}, group=ga)
        if not rt:
            rope_q()
        g = p + "rope_set_k" if rt else None
        b.node(p + "rope_k", "ROPE", [p + "k3", "pos"], act(p + "kr", [B, nkv, d]),
               cost=ew_cost(2 * B * kvd * F32), inplace={p + "kr": p + "k3"}, group=g)
        b.view(p + "kc", p + "k_cache", cache_rows * kvd * F16, shape=[cache_rows, kvd], dtype="f16")
        b.view(p + "vc", p + "v_cache", cache_rows * kvd * F16, shape=[cache_rows, kvd], dtype="f16")
        b.node(p + "set_k", "SET_ROWS", [p + "kr", "kv_idx"], p + "kc", cost=ew_cost(B * kvd * 6), group=g)
        b.node(p + "set_v", "SET_ROWS", [p + "v", "kv_idx"], p + "vc", cost=ew_cost(B * kvd * 6))
        b.view(p + "kview", p + "kc", n_kv * kvd * F16, shape=[n_kv, nkv, d], dtype="f16")
        b.view(p + "vview", p + "vc", n_kv * kvd * F16, shape=[n_kv, nkv, d], dtype="f16")
        if rt:
            rope_q()
        attn_bytes = n_kv * kvd * F16 + B * nh * n_kv * F32
        b.node(p + "kq", "MUL_MAT", [p + "kview", p + "qr"], act(p + "kq_s", [B, nh, n_kv]),
               cost=roofline_us(2.0 * B * nh * n_kv * d, attn_bytes), group=ga)
        b.node(p + "softmax", "SOFT_MAX", [p + "kq_s", "mask"], act(p + "kq_p", [B, nh, n_kv]),
               cost=ew_cost(2 * B * nh * n_kv * F32), inplace={p + "kq_p": p + "kq_s"}, group=ga)
        b.node(p + "kqv", "MUL_MAT", [p + "vview", p + "kq_p"], act(p + "kqv_o", [B, nh, d]),
               cost=roofline_us(2.0 * B * nh * n_kv * d, attn_bytes), group=ga)
        b.node(p + "cont", "CONT", [p + "kqv_o"], act(p + "attn", [B, H], xdt), cost=ew_cost(2 * B * H * F32),
               group=ga)
        g = p + "ffn_norm_f" if fuse_norms else None
        b.node(p + "mm_o", "MUL_MAT", [p + "wo", p + "attn"], act(p + "o", [B, H]), cost=mm_cost(H, H, B),
               group=g if rt else None)
        b.node(p + "res1", "ADD", [p + "o", x], act(p + "h", [B, H]), cost=ew_cost(3 * B * H * F32),
               inplace={p + "h": p + "o"}, group=g if rt else None)
        b.node(p + "ffn_norm", "RMS_NORM", [p + "h"], act(p + "hn", [B, H]), cost=ew_cost(2 * B * H * F32),
               group=g)
        b.node(p + "ffn_norm_w", "MUL", [p + "hn", p + "ffn_norm"], act(p + "ha", [B, H], xdt),
               cost=ew_cost(2 * B * H * F32), group=g, inplace=over(p + "ha", p + "hn"))
        F = cfg.ffn
        g = p + "swiglu_f" if rt else None
        # up to 64 tokens gate and up read their weights in one kernel (the runtime's GEMV / gemm_tc SwiGLU
        # pass); above that they are ordinary GEMMs that gain more from running on two streams
        gm = g if B <= 64 else None
        b.node(p + "mm_gate", "MUL_MAT", [p + "w_gate", p + "ha"], act(p + "gate", [B, F]), cost=mm_cost(H, F, B),
               group=gm)
        b.node(p + "mm_up", "MUL_MAT", [p + "w_up", p + "ha"], act(p + "up", [B, F]), cost=mm_cost(H, F, B),
               group=gm)
        b.node(p + "silu", "SILU", [p + "gate"], act(p + "gact", [B, F]), cost=ew_cost(2 * B * F * F32),
               inplace={p + "gact": p + "gate"}, group=g)
        b.node(p + "glu", "MUL", [p + "gact", p + "up"], act(p + "gu", [B, F], xdt), cost=ew_cost(3 * B * F * F32),
               inplace=over(p + "gu", p + "gact"), group=g)
        carry = p + "res2_f" if rt else None
        b.node(p + "mm_down", "MUL_MAT", [p + "w_down", p + "gu"], act(p + "down", [B, H]), cost=mm_cost(F, H, B),
               group=carry)
        x = act(p + "out", [B, H])
        b.node(p + "res2", "ADD", [p + "down", p + "h"], x, cost=ew_cost(3 * B * H * F32),
               inplace={x: p + "down"}, group=carry)
    weight("out_norm", [H], "f32")
    weight("w_out", [cfg.vocab, H])
    g = carry or "final_norm"
    b.node("out_norm", "RMS_NORM", [x], act("fn", [B, H]), cost=ew_cost(2 * B * H * F32), group=g)
    b.node("out_norm_w", "MUL", ["fn", "out_norm"], act("fa", [B, H], xdt), cost=ew_cost(2 * B * H * F32),
           group=g, inplace=over("fa", "fn"))
    b.node("lm_head", "MUL_MAT", ["w_out", "fa"], act("logits", [B, cfg.vocab], kind="output"),
           cost=mm_cost(H, cfg.vocab, B))
    return b.build()


def _nbytes(shape: list[int], dtype: str) -> int:
    n = 1
    for s in shape:
        n *= s
    return n * {"f32": 4, "f16": 2, "i32": 4}[dtype]


@named_options
def bundled() -> dict[str, Graph]:
    """The graphs ``memplan example`` writes, by file stem."""
    return {
        "chain": chain(),
        "diamond": diamond(),
        "qkv": qkv_attention(),
        "fanout15": fanout_join15(),
        "moe": moe(),
        "views": views_inplace(),
        "llama-1b-decode": llama(LLAMA_1B),
        "llama-1b-prefill": llama(LlamaConfig(batch=32, name="llama-prefill")),
        "llama-tiny": llama(LLAMA_TINY),
    }
