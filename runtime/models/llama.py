"""The Llama-style decode/prefill step the runtime executes, its inputs, weights and a numpy reference.

The graph is ``memplan.examples.llama`` unchanged (tensor attrs carry shape and dtype), so what runs on
the GPU is exactly what the planner planned; ``fuse="runtime"`` (the default here) asks it for the
fusion groups the runtime runs as single kernels, ``fuse="norms"`` for memplan's default graph. This module adds what execution needs and the planner
does not: random weights, the step's inputs (positions, KV rows to write, causal mask), stream
assignments for multi-stream schedules, and an independent float64 reference forward written from
the model's definition (not from the graph) to check the kernels against.

Op semantics shared with ``runtime/kernels/llama.cu``:
- RMS_NORM: ``x / sqrt(mean(x^2) + 1e-5)``; MUL/ADD broadcast the second operand over rows.
- MUL_MAT(W [N, K] f16, x [M, K] f32) = ``x @ W.T``; attention MUL_MATs read the f16 KV cache.
- ROPE: ggml's normal mode, adjacent pairs rotated by ``pos * 10000^(-2i/d)``.
- KQ carries the ``1/sqrt(d)`` scale (ggml applies it inside soft_max_ext; the graph has no op params);
  SOFT_MAX adds the mask ``[B, n_kv]`` (0 or -inf) before the softmax; KQV sums over cache rows.
- SET_ROWS writes ``f16(src[b])`` into cache row ``kv_idx[b]``.
No CUDA here: this module imports numpy and memplan only.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from memplan import Graph, Schedule, graph_optimize, schedule_with_events
from memplan.errors import ExecutorError
from memplan.examples import LLAMA_8B, LLAMA_TINY, LlamaConfig, llama
from memplan.graph import check_graph
from memplan.optimize.streams import check_max_streams

RMS_EPS = 1e-5
ROPE_BASE = 10000.0

#: 1B-like: 16 layers, hidden 2048, 32 heads, 8 KV heads, FFN 8192 (memplan's LLAMA_1B).
LLAMA_1B = LlamaConfig(layers=16, hidden=2048, heads=32, kv_heads=8, ffn=8192, vocab=32000, name="llama1b")
CONFIGS: dict[str, LlamaConfig] = {
    "tiny": replace(LLAMA_TINY, name="llama-tiny"),
    "1b": LLAMA_1B,
    "8b": replace(LLAMA_8B, name="llama8b"),
}

_NP = {"f32": np.float32, "f16": np.float16, "i32": np.int32}


def config(name: str, batch: int = 1, **overrides) -> LlamaConfig:
    """A named config ("tiny", "1b", "8b") at a batch size."""
    try:
        base = CONFIGS[name]
    except (KeyError, TypeError):   # (a list name was a raw "unhashable type")
        raise ExecutorError(f"unknown llama config {name!r} (choose from {', '.join(CONFIGS)})") from None
    return replace(base, batch=batch, **overrides)


def _cfg(fn: str, cfg) -> LlamaConfig:
    """``cfg`` if it is a LlamaConfig, else ExecutorError naming ``fn`` and what was given: a config's name
    (``build_graph("tiny")``, ``make_inputs("1b")``) was an AttributeError from inside ("'str' object has no
    attribute 'batch'")."""
    if not isinstance(cfg, LlamaConfig):
        hint = f": config({cfg!r}) makes one" if isinstance(cfg, str) and cfg in CONFIGS else ""
        raise ExecutorError(f"{fn}: cfg {cfg!r:.80} is a {type(cfg).__name__}, not a LlamaConfig{hint}")
    return cfg


def _seed(fn: str, seed) -> int:
    """``seed`` as the plain int numpy's ``default_rng`` takes, else ExecutorError naming ``fn``: a string or a float
    was numpy's "SeedSequence expects int or sequence of ints", a negative one its "expected non-negative integer"."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ExecutorError(f"{fn}: seed {seed!r:.80}: expected an integer >= 0")
    return int(seed)


#: fusion groups of the graphs the runtime builds: "runtime" (residual ADD + RMS_NORM*w, SwiGLU,
#: ROPE+SET_ROWS of K, ROPE of Q + attention + CONT: one kernel each) or "norms" (RMS_NORM*w only)
DEFAULT_FUSE = "runtime"
FUSE_MODES = ("norms", "runtime")


#: token counts whose runtime-fused graphs carry f16 activations into the products (``build_graph``)
F16_ACTS_ROWS = range(17, 65)


def build_graph(cfg: LlamaConfig, fuse: str = DEFAULT_FUSE, f16_acts: bool | None = None) -> Graph:
    """The memplan graph of one step with the given fusion groups (``memplan.examples.llama``).
    ``f16_acts`` None: f16 activations into the products (``llama(f16_acts=True)``) for runtime-fused
    graphs of 17-64 tokens, where gemm_ws streams them (H200, 1B at 64 rows: the layer's four products
    46.9 us against 65.7 with f32 activations; docs/runtime_log.md session 22); at 1-16 tokens the GEMV and
    the register builds read f32 x as fast, and the batch-1 step stays as it was."""
    _cfg("build_graph", cfg)
    if f16_acts is None:
        f16_acts = fuse == "runtime" and cfg.batch in F16_ACTS_ROWS
    return llama(cfg, fuse=fuse, f16_acts=f16_acts)


def dims(cfg: LlamaConfig) -> dict[str, int]:
    """The step's sizes: tokens ``B``, hidden ``H``, head size ``d``, KV width ``kvd``, attended rows ``n_kv``, cache rows."""
    _cfg("dims", cfg)
    d = cfg.hidden // cfg.heads
    return {"B": cfg.batch, "H": cfg.hidden, "d": d, "kvd": cfg.kv_heads * d, "n_kv": cfg.ctx + cfg.batch,
            "cache_rows": cfg.ctx + max(cfg.batch, 1)}


def make_inputs(cfg: LlamaConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of one step: embeddings of B new tokens at positions ctx..ctx+B-1, their cache rows, mask."""
    _cfg("make_inputs", cfg)
    seed = _seed("make_inputs", seed)
    dm = dims(cfg)
    B, ctx, n_kv = dm["B"], cfg.ctx, dm["n_kv"]
    rng = np.random.default_rng(seed)
    pos = (ctx + np.arange(B)).astype(np.int32)
    mask = np.zeros((B, n_kv), dtype=np.float32)
    for b in range(B):
        mask[b, ctx + b + 1:] = -np.inf
    return {
        "inp": rng.standard_normal((B, dm["H"])).astype(np.float32),
        "pos": pos,
        "kv_idx": pos.copy(),
        "mask": mask,
    }


def make_weights(graph: Graph, cfg: LlamaConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Random host weights for every weight tensor (small configs: the tiny one is checked on them).

    Matrices are uniform with std 1/sqrt(K) so activations stay near unit scale; norm weights are
    near 1; cache rows below ``ctx`` hold earlier tokens' keys/values, rows from ``ctx`` on are zero
    (the step writes them).
    """
    check_graph(graph, "make_weights")
    _cfg("make_weights", cfg)
    seed = _seed("make_weights", seed)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for t in graph.tensors:
        if t.kind != "weight" or t.view_of is not None:
            continue
        shape = tuple(t.attrs["shape"])
        dt = _NP[t.attrs["dtype"]]
        if t.id.endswith("_cache"):
            if shape[0] < cfg.ctx:   # (a numpy broadcast error before)
                raise ExecutorError(f"make_weights: cache {t.id!r} of graph {graph.name!r} has {shape[0]} rows, fewer "
                                    f"than config {cfg.name!r}'s ctx {cfg.ctx} (a graph of another config?)")
            a = np.zeros(shape, dtype=dt)
            a[:cfg.ctx] = rng.standard_normal((cfg.ctx, shape[1]))
        elif len(shape) == 1:
            a = (1.0 + 0.1 * rng.standard_normal(shape)).astype(dt)
        else:
            k = shape[-1]
            a = rng.uniform(-np.sqrt(3.0 / k), np.sqrt(3.0 / k), shape).astype(dt)
        out[t.id] = a
    return out


# ---------------------------------------------------------------------------------------------
# Schedules


def stream_assignment(graph: Graph, *, qkv: bool = True, gate_up: bool = True) -> dict[str, int]:
    """Hand-made streams: per layer K's branch (mm_k, rope_k, set_k) on 1, V's (mm_v, set_v) on 2,
    the up-projection on 1 beside the gate (unless a fusion group holds it with the gate: a group runs
    on one stream, its first member's); everything else on 0."""
    check_graph(graph, "stream_assignment")   # (a str was an AttributeError)
    for what, flag in (("qkv", qkv), ("gate_up", gate_up)):   # (qkv="no" was taken as True)
        if not isinstance(flag, (bool, np.bool_)):
            raise ExecutorError(f"stream_assignment: {what}={flag!r:.80}, expected True or False")
    side = {}
    if qkv:
        side.update({"mm_k": 1, "rope_k": 1, "set_k": 1, "mm_v": 2, "set_v": 2})
    if gate_up:
        side["mm_up"] = 1
    out = {}
    for n in graph.nodes:
        suffix = n.id.rsplit(".", 1)[-1]
        out[n.id] = side.get(suffix, 0) if n.id.startswith("l") and "." in n.id else 0
    for members in graph.groups().values():
        for m in members[1:]:
            out[graph.nodes[m].id] = out[graph.nodes[members[0]].id]
    return out


def multi_stream_schedule(graph: Graph, method: str = "hand", max_streams: int = 3) -> Schedule:
    """A multi-stream schedule: "hand" (``stream_assignment`` + the fewest events) or "optimize"
    (``memplan.graph_optimize``), on at most ``max_streams`` streams."""
    check_graph(graph, "multi_stream_schedule")
    if method == "hand":
        # at most ``max_streams`` streams (the side streams folded onto the last one allowed: K's and V's branches
        # and the up-projection share stream 1 on two, all on stream 0 on one): the option was ignored, and
        # ``multi_stream_schedule(g, "hand", max_streams=1)`` gave the 3-stream schedule without a word
        top = check_max_streams(max_streams) - 1
        streams = {nid: min(s, top) for nid, s in stream_assignment(graph).items()}
        return schedule_with_events(graph, [n.id for n in graph.nodes], streams)
    if method == "optimize":
        return graph_optimize(graph, max_streams=max_streams)
    raise ExecutorError(f"unknown schedule method {method!r}")


def prefetch_plan(graph: Graph, cfg: LlamaConfig) -> tuple[tuple[str, str, int], ...]:
    """L2 prefetches for ``Executor(prefetch=...)``: each layer's output projection, started when ``mm_q``
    is done, so it overlaps ROPE and attention (latency-bound kernels that stream almost nothing from
    HBM). ``mm_q`` is in no fusion group, so the same plan serves both fusion modes. (Prefetching the
    next layer's Q projection and the gate projection as well measured slower on the H100.)"""
    check_graph(graph, "prefetch_plan")
    _cfg("prefetch_plan", cfg)
    return tuple((f"l{li}.mm_q", f"l{li}.wo", graph.tensor(f"l{li}.wo").size) for li in range(cfg.layers))


def _in_cache(graph: Graph, tid: str, end: int, row: int) -> bool:
    """Whether ``graph`` has a tensor ``tid`` (a KV cache) of ``end`` bytes or more, in rows of ``row`` bytes: a config of
    more layers or a longer cache named tensors the graph lacks, or bytes past their end; one of other heads byte ranges
    inside the cache that are not the step's rows (narrower or wider)."""
    t = graph.tensors[graph.tensor_index[tid]] if tid in graph.tensor_index else None
    shape = t.attrs.get("shape") if t is not None else None
    return t is not None and end <= t.size and (not shape or len(shape) < 2 or t.size // max(int(shape[0]), 1) == row)


def kv_prefetch_plan(graph: Graph, cfg: LlamaConfig) -> tuple[tuple[str, str, int], ...]:
    """L2 prefetches of each layer's cached K and V rows (those written before this step), started when
    ``mm_k`` / ``mm_v`` are done, so the latency-bound attention kernel finds them in L2."""
    check_graph(graph, "kv_prefetch_plan")
    _cfg("kv_prefetch_plan", cfg)
    row = dims(cfg)["kvd"] * 2
    nbytes = cfg.ctx * row
    out = tuple((f"l{li}.mm_{c}", f"l{li}.{c}_cache", nbytes) for li in range(cfg.layers) for c in ("k", "v"))
    for _after, tid, n in out:
        if not _in_cache(graph, tid, n, row):
            raise ExecutorError(f"kv_prefetch_plan: {n} bytes of {tid!r} do not lie inside graph {graph.name!r}'s "
                                f"tensors (config {cfg.name!r}: ctx {cfg.ctx}, {cfg.layers} layers; a graph of another "
                                "config?)")
    return out


# ---------------------------------------------------------------------------------------------
# Reference forward (float64), written from the model definition.


def _rms(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + RMS_EPS)


def _rope(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """x: [B, heads, d]; adjacent pairs rotate by pos * base^(-2i/d)."""
    d = x.shape[-1]
    inv = ROPE_BASE ** (-(2.0 * np.arange(d // 2)) / d)
    th = pos.astype(np.float64)[:, None, None] * inv[None, None, :]
    c, s = np.cos(th), np.sin(th)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def _weight_shapes(cfg: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """The shape of each weight ``reference_forward`` reads (a cache: its least rows, the step's attended ones)."""
    dm = dims(cfg)
    H, kvd, F = dm["H"], dm["kvd"], cfg.ffn
    out: dict[str, tuple[int, ...]] = {}
    for li in range(cfg.layers):
        p = f"l{li}."
        out.update({p + "attn_norm": (H,), p + "wq": (H, H), p + "wk": (kvd, H), p + "wv": (kvd, H), p + "wo": (H, H),
                    p + "ffn_norm": (H,), p + "w_gate": (F, H), p + "w_up": (F, H), p + "w_down": (H, F),
                    p + "k_cache": (dm["n_kv"], kvd), p + "v_cache": (dm["n_kv"], kvd)})
    out.update({"out_norm": (H,), "w_out": (cfg.vocab, H)})
    return out


def reference_forward(cfg: LlamaConfig, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Logits [B, vocab] (float64) and the KV caches after the step (f16, as the GPU stores them)."""
    _cfg("reference_forward", cfg)
    dm = dims(cfg)
    B, H, d, n_kv = dm["B"], dm["H"], dm["d"], dm["n_kv"]
    nh, nkv = cfg.heads, cfg.kv_heads
    if d % 2:   # (a numpy broadcast error from _rope before; the kernels refuse such a ROPE too)
        raise ExecutorError(f"reference_forward: config {cfg.name!r} has an odd head size {d} (hidden {H} / heads {nh}): "
                            "ROPE rotates pairs of elements")
    want = {"inp": (B, H), "pos": (B,), "kv_idx": (B,), "mask": (B, n_kv)}
    for k, shape in want.items():   # (inputs of another batch were a numpy reshape error)
        got = np.shape(inputs[k]) if k in inputs else None
        if got != shape:
            raise ExecutorError(f"reference_forward: input {k!r} has shape {got}, config {cfg.name!r} at batch {B} "
                                f"needs {shape} (inputs of another config?)")
    if not isinstance(weights, Mapping):   # (None was an AttributeError)
        raise ExecutorError(f"reference_forward: weights must be a mapping of tensor id to array, not "
                            f"{type(weights).__name__}")
    # weights of another config were a KeyError naming only the tensor or a numpy reshape error; float cache indices
    # an IndexError from numpy's fancy indexing
    for k, shape in _weight_shapes(cfg).items():
        got = np.shape(weights[k]) if k in weights else None
        cache = k.endswith("_cache")
        if got is None or len(got) != len(shape) or (got[0] < shape[0] if cache else got[0] != shape[0]) \
                or got[1:] != shape[1:]:
            need = f"({'at least ' if cache else ''}{shape[0]}{', ' if len(shape) > 1 else ','}" \
                   f"{', '.join(map(str, shape[1:]))})"
            raise ExecutorError(f"reference_forward: weight {k!r} has shape {got}, config {cfg.name!r} needs {need} "
                                "(weights of another config?)")
    for k in ("pos", "kv_idx"):
        if not np.issubdtype(np.asarray(inputs[k]).dtype, np.integer):
            raise ExecutorError(f"reference_forward: input {k!r} is {np.asarray(inputs[k]).dtype}, expected integers")
    grp = nh // nkv
    f64 = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items() if not k.endswith("_cache")}
    caches = {k: np.array(v, dtype=np.float16, copy=True) for k, v in weights.items() if k.endswith("_cache")}
    x = np.asarray(inputs["inp"], dtype=np.float64)
    pos, idx, mask = inputs["pos"], np.asarray(inputs["kv_idx"]), np.asarray(inputs["mask"], dtype=np.float64)
    for li in range(cfg.layers):
        p = f"l{li}."
        xa = _rms(x) * f64[p + "attn_norm"]
        q = (xa @ f64[p + "wq"].T).reshape(B, nh, d)
        k = (xa @ f64[p + "wk"].T).reshape(B, nkv, d)
        v = xa @ f64[p + "wv"].T
        q, k = _rope(q, pos), _rope(k, pos)
        kc, vc = caches[p + "k_cache"], caches[p + "v_cache"]
        # an index outside the cache's rows writes nothing, as in the kernels and the emulator (numpy wrapped a -1,
        # a padded batch row's index, onto the last row, and raised IndexError past the end)
        keep = (idx >= 0) & (idx < len(kc))
        kc[idx[keep]] = k.reshape(B, -1)[keep].astype(np.float16)
        vc[idx[keep]] = v[keep].astype(np.float16)
        K = kc[:n_kv].astype(np.float64).reshape(n_kv, nkv, d)
        V = vc[:n_kv].astype(np.float64).reshape(n_kv, nkv, d)
        Kh = np.repeat(K, grp, axis=1)            # [n_kv, nh, d]
        Vh = np.repeat(V, grp, axis=1)
        s = np.einsum("bhd,jhd->bhj", q, Kh) / np.sqrt(d) + mask[:, None, :]
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        attn = np.einsum("bhj,jhd->bhd", s, Vh).reshape(B, H)
        h = attn @ f64[p + "wo"].T + x
        ha = _rms(h) * f64[p + "ffn_norm"]
        g = ha @ f64[p + "w_gate"].T
        u = ha @ f64[p + "w_up"].T
        x = (g / (1.0 + np.exp(-g)) * u) @ f64[p + "w_down"].T + h
    logits = (_rms(x) * f64["out_norm"]) @ f64["w_out"].T
    return logits, caches


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """||a - ref|| / ||ref|| (inf when a has NaN)."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if a.size != ref.size:   # (numpy broadcast them: one token's logits against a batch's passed, or a ValueError)
        raise ExecutorError(f"rel_err: result of shape {a.shape} and reference of shape {ref.shape} differ in size")
    a = a.reshape(ref.shape)
    if not np.all(np.isfinite(a)):
        return float("inf")
    return float(np.linalg.norm(a - ref) / max(np.linalg.norm(ref), 1e-30))


def weight_bytes(graph: Graph) -> int:
    """Bytes of weights one step streams (matrices and norms; the KV cache is counted apart)."""
    check_graph(graph, "weight_bytes")
    return sum(t.size for t in graph.tensors
               if t.kind == "weight" and t.view_of is None and not t.id.endswith("_cache"))


@dataclass(frozen=True)
class PoisonRange:
    """Bytes of a weight-kind tensor the jitter test fills with NaN before each run (the cache rows a
    step writes), so a read that does not wait for its SET_ROWS sees NaN instead of last run's data."""

    tensor: str
    offset: int
    nbytes: int


def kv_poison_ranges(graph: Graph, cfg: LlamaConfig) -> tuple[PoisonRange, ...]:
    """The cache rows ``cfg``'s step writes, checked against ``graph``: a range past its cache tensor (a
    graph built from another config) would poison a neighbour's bytes or none at all, and a jitter test
    would then pass without having tested the cache reads."""
    check_graph(graph, "kv_poison_ranges")
    _cfg("kv_poison_ranges", cfg)
    dm = dims(cfg)
    row = dm["kvd"] * 2
    out = tuple(PoisonRange(f"l{li}.{c}_cache", cfg.ctx * row, cfg.batch * row)
                for li in range(cfg.layers) for c in ("k", "v"))
    for r in out:
        if not _in_cache(graph, r.tensor, r.offset + r.nbytes, row):
            raise ExecutorError(f"poison range {r} does not lie inside tensor {r.tensor!r} of graph {graph.name!r}")
    return out
