"""A numpy emulation of the kernel launches: run a (graph, plan) on the CPU as the executors issue it.

Why: device time is scarce and CI has no GPU. Emulating each ``Launch`` over byte buffers, at addresses
bound by ``runtime.binding`` and in the issue order of ``runtime.step`` (the code the pycuda executors
run), checks everything between the plan and the kernels — arena offsets per device, views, in-place
aliasing, weight and cache addressing, fused groups and their moved events, COPY nodes, argument order,
op semantics — against the independent numpy reference, with no CUDA at all. Launches run one at a
time, in the plan's order or in a random order the issued events allow: a plan missing an event shows
up as wrong bits in some order; races inside one stream's overlap are the GPU jitter tests' job.
Semantics mirror ``kernels/llama.cu`` in float32.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

import numpy as np

import memplan
from memplan import Graph, Plan
from memplan.errors import BudgetError, ExecutorError

from .binding import (
    Binding,
    bind,
    check_views,
    check_weight_names,
    host_input,
    host_weight,
    read_inputs,
    read_spec,
    weight_source,
)
from .kernels import (
    ATTN_CLUSTER,
    ATTN_FUSED_NAMES,
    ATTN_MMA_NAMES,
    GEMM_TC,
    GEMM_TC_SWIGLU,
    GEMV_NORM_OFF,
    MEMCPY,
    Launch,
    counter_bytes,
)
from .kernels.ops import (
    ATTN_MMA_H_NAMES,
    NAIVE_F16X,
    NAIVE_SWIGLU_F16X,
    PORTABLE_CLUSTER,
    WS_BUILDS,
    WS_NAMES,
    WS_PLAIN_NAMES,
)
from .kernels.registry import launch_problem
from .step import host_order, program

_BASE = 1 << 32


class OutOfBounds(IndexError):
    """An access ``Memory`` refuses; ``addr``: where it starts."""

    def __init__(self, addr: int, message: str) -> None:
        super().__init__(message)
        self.addr = addr

    def __reduce__(self):
        """Pickled with ``addr`` as well as its message: ``Exception`` pickles ``args`` (the message alone) and calls
        the class with it, so a refusal raised in a worker process (``ProcessPoolExecutor``, ``multiprocessing.Pool``)
        failed to unpickle (a TypeError, "missing 1 required positional argument: 'message'") in place of itself.
        Notes ride along (``__dict__``)."""
        return type(self), (self.addr, str(self)), self.__dict__


class Memory:
    """Allocations at fake device addresses, each a uint8 buffer. ``bounds``: when set, the only byte ranges
    ``[start, end)`` an access may touch (``emulate`` sets each step's: its node's planned tensors, scratch
    and counters), so a launch that reads or writes past its tensors but inside the arena is refused instead
    of silently touching a neighbour's bytes."""

    def __init__(self) -> None:
        self.bufs: list[tuple[int, np.ndarray]] = []
        #: each buffer's base, in ``bufs``'s order; ``ascending`` while each buffer starts past the end of the one
        #: before (``alloc``'s gaps; a test may move ``next`` back), so ``view`` finds the only candidate by
        #: bisection: a step's launches made ~240k lookups a run of runtime.tools.bound over ~50 buffers
        self.bases: list[int] = []
        self.ascending = True
        self.next = _BASE
        self.bounds: list[tuple[int, int]] | None = None

    def alloc(self, nbytes: int, alignment: int = 1) -> int:
        """A fresh buffer of ``nbytes`` at an address that is a multiple of ``alignment`` (an arena's
        ``Binding.alignment``: fake addresses cost nothing, so the base is placed there, not padded to it)."""
        addr = -(-self.next // alignment) * alignment
        if self.bufs and addr <= self.bases[-1] + len(self.bufs[-1][1]):
            self.ascending = False
        self.bufs.append((addr, np.zeros(max(nbytes, 1), dtype=np.uint8)))
        self.bases.append(addr)
        self.next = addr + (max(nbytes, 1) + 4095) // 4096 * 4096 + 4096
        return addr

    def view(self, addr: int, count: int, dtype) -> np.ndarray:
        nbytes = count * np.dtype(dtype).itemsize
        if self.bounds is not None and not any(lo <= addr and addr + nbytes <= hi for lo, hi in self.bounds):
            raise OutOfBounds(addr, f"access [{addr:#x}, +{nbytes}) outside the planned bytes of the tensors it may touch")
        if self.ascending:   # the one buffer that can hold addr: the last starting at or before it
            i = bisect.bisect_right(self.bases, addr) - 1
            found = [self.bufs[i]] if i >= 0 else []
        else:
            found = self.bufs
        for base, buf in found:
            if base <= addr and addr + nbytes <= base + len(buf):
                return buf[addr - base: addr - base + nbytes].view(dtype)
        raise OutOfBounds(addr, f"access [{addr:#x}, +{nbytes}) outside every allocation")


def _f32(mem: Memory, a: int, n: int) -> np.ndarray:
    return mem.view(a, n, np.float32)


def _out(mem: Memory, a: int, n: int, half: bool) -> np.ndarray:
    """An output of n elements: f32, or f16 for the ``_f16`` twins (numpy rounds to nearest even, as
    ``__float2half_rn`` does)."""
    return mem.view(a, n, np.float16 if half else np.float32)


def check_ws_launch(ln: Launch) -> None:
    """ValueError unless a gemm_ws launch is one that llama.cu's gemm_ws_body computes in full: its block (128
    threads per consumer warpgroup and a producer warp: the kernel traps otherwise), a portable cluster that
    divides the grid, at most 64 rows of x (one 64-row box), 16-byte rows (K % 8: the tensor maps) and blocks
    of BN weight rows (SwiGLU: BN / 2 outputs) that cover N. The emulation computes every output; the kernel
    writes only what its blocks cover, so a launch rule that gave too few blocks would pass unseen."""
    nc, wt, _st = WS_BUILDS[ln.kernel]
    *_, M, N, K, cl = ln.args
    outs = 64 * wt * nc // (1 if ln.kernel in WS_PLAIN_NAMES else 2)   # outputs per block
    bad = ("its block" if tuple(ln.block) != (32 + 128 * nc, 1, 1)
           else f"cluster {cl}" if not 1 <= cl <= PORTABLE_CLUSTER or ln.grid[0] % cl or tuple(ln.grid[1:]) != (1, 1)
           else f"{M} rows" if not 1 <= M <= 64
           else f"K {K}" if K % 8
           else f"{ln.grid[0] // cl} blocks of {outs} outputs for N {N}" if ln.grid[0] // cl * outs < N
           else None)
    if bad is not None:
        raise ExecutorError(f"{ln.kernel} grid={ln.grid} block={ln.block} args {ln.args[-4:]}: {bad} is not a launch "
                            "gemm_ws_body computes in full")


def run_launch(mem: Memory, ln: Launch) -> None:
    k, a = ln.kernel, ln.args
    if k in WS_NAMES:
        check_ws_launch(ln)
    # the emulation computes every output whatever the grid; the kernel only what its launch covers, within
    # CUDA's limits: a launch it would not compute in full (or the GPU would refuse) must not pass here
    if (problem := launch_problem(ln)) is not None:
        raise ExecutorError(f"{k} grid={ln.grid} block={ln.block}: {problem}")
    half = k.endswith("_f32_f16")   # the f16-output twins of the norm, elementwise and SwiGLU kernels
    if k in ("rms_norm_f32", "rms_norm4_f32", "rms_norm4_f32_f16"):
        x, w, y, H, nw, eps = a
        rows = ln.grid[0]
        xv = _f32(mem, x, rows * H).reshape(rows, H).copy()
        out = xv / np.sqrt(np.mean(xv * xv, axis=1, keepdims=True) + np.float32(eps))
        if w:
            out = out * np.tile(_f32(mem, w, nw), H // nw + 1)[:H]
        _out(mem, y, rows * H, half)[:] = out.reshape(-1)
    elif k in ("binary_f32", "binary_f32_f16"):
        x, b, y, n, nb, op = a
        u = _f32(mem, x, n).copy()
        v = np.tile(_f32(mem, b, nb), n // nb)
        _out(mem, y, n, half)[:] = u + v if op == 0 else u * v
    elif k in WS_PLAIN_NAMES or k == NAIVE_F16X:   # f16 x (f16_acts graphs)
        W, x, y, M, N, K = a[:6]
        Wv = mem.view(W, N * K, np.float16).reshape(N, K).astype(np.float32)
        xv = mem.view(x, M * K, np.float16).reshape(M, K).astype(np.float32)
        _f32(mem, y, M * N)[:] = (xv @ Wv.T).reshape(-1)
    elif k in WS_NAMES or k == NAIVE_SWIGLU_F16X:   # f16 x, gate and up in one pass, f16 y
        Wg, Wu, x, y, M, N, K = a[:7]
        xv = mem.view(x, M * K, np.float16).reshape(M, K).astype(np.float32)
        g = xv @ mem.view(Wg, N * K, np.float16).reshape(N, K).astype(np.float32).T
        u = xv @ mem.view(Wu, N * K, np.float16).reshape(N, K).astype(np.float32).T
        _out(mem, y, M * N, True)[:] = (g / (1.0 + np.exp(-g)) * u).reshape(-1)
    elif k == "silu_f32":
        x, y, n = a
        u = _f32(mem, x, n).copy()
        _f32(mem, y, n)[:] = u / (1.0 + np.exp(-u))
    elif k == "copy_u32":
        x, y, n = a
        mem.view(y, n, np.uint32)[:] = mem.view(x, n, np.uint32).copy()
    elif k == MEMCPY:
        x, y, n = a
        mem.view(y, n, np.uint8)[:] = mem.view(x, n, np.uint8).copy()
    elif k == "rope_f32":
        x, pos, y, B, heads, d, log2_base = a
        xv = _f32(mem, x, B * heads * d).reshape(B, heads, d).copy()
        p = mem.view(pos, B, np.int32).astype(np.float32)
        th = p[:, None, None] * np.exp2(-(2.0 * np.arange(d // 2) / d) * log2_base)[None, None, :]
        c, s = np.cos(th), np.sin(th)
        out = np.empty_like(xv)
        out[..., 0::2] = xv[..., 0::2] * c - xv[..., 1::2] * s
        out[..., 1::2] = xv[..., 0::2] * s + xv[..., 1::2] * c
        _f32(mem, y, B * heads * d)[:] = out.reshape(-1)
    elif k == "set_rows_f32_f16":
        src, idx, dst, cols, nrows = a
        rows = ln.grid[1]
        sv = _f32(mem, src, rows * cols).reshape(rows, cols)
        iv = mem.view(idx, rows, np.int32)
        dv = mem.view(dst, nrows * cols, np.float16).reshape(nrows, cols)
        for r in range(rows):
            if 0 <= iv[r] < nrows:
                dv[iv[r]] = sv[r].astype(np.float16)
    elif k == "attn_kq_f16":
        K, q, out, n_kv, G, heads, D, scale = a
        BH = ln.grid[1] // G * heads
        Kv = mem.view(K, n_kv * G * D, np.float16).reshape(n_kv, G, D).astype(np.float32)
        qv = _f32(mem, q, BH * D).reshape(BH, D)
        g = (np.arange(BH) % heads) // (heads // G)
        _f32(mem, out, BH * n_kv)[:] = (np.einsum("bd,jbd->bj", qv, Kv[:, g, :]) * np.float32(scale)).reshape(-1)
    elif k == "softmax_mask_f32":
        x, m, y, n, heads = a
        rows = ln.grid[0]
        xv = _f32(mem, x, rows * n).reshape(rows, n).copy()
        mv = _f32(mem, m, (rows // heads) * n).reshape(-1, n)[np.arange(rows) // heads]
        z = xv + mv
        e = np.exp(z - z.max(axis=1, keepdims=True))
        _f32(mem, y, rows * n)[:] = (e / e.sum(axis=1, keepdims=True)).reshape(-1)
    elif k in ("attn_kqv_f16", "attn_kqv_cl_f16"):
        V, p, out, n_kv, G, heads, D = a
        BH = ln.grid[0] // (4 if k == "attn_kqv_cl_f16" else 1)
        Vv = mem.view(V, n_kv * G * D, np.float16).reshape(n_kv, G, D).astype(np.float32)
        pv = _f32(mem, p, BH * n_kv).reshape(BH, n_kv)
        g = (np.arange(BH) % heads) // (heads // G)
        _f32(mem, out, BH * D)[:] = np.einsum("bj,jbd->bd", pv, Vv[:, g, :]).reshape(-1)
    elif k in ("gemv_f16_f32", "gemm_wmma_f16_f32", "gemm_naive_f16_f32") or k in GEMM_TC.values():
        if k == "gemv_f16_f32":
            W, x, y, N, K, _ = a
            M = 1
        else:
            W, x, y, M, N, K = a[:6]
        Wv = mem.view(W, N * K, np.float16).reshape(N, K).astype(np.float32)
        xv = _f32(mem, x, M * K).reshape(M, K)
        if k == "gemm_wmma_f16_f32" or k in GEMM_TC.values():   # tensor cores: x rounded to f16
            xv = xv.astype(np.float16).astype(np.float32)
        _f32(mem, y, M * N)[:] = (xv @ Wv.T).reshape(-1)
    elif k in ("add_rms_norm4_f32", "add_rms_norm4_f32_f16"):
        x, r, h, w, y, H, nw, eps = a
        rows = ln.grid[0]
        hv = (_f32(mem, x, rows * H) + _f32(mem, r, rows * H)).reshape(rows, H)
        out = hv / np.sqrt(np.mean(hv * hv, axis=1, keepdims=True) + np.float32(eps))
        out = out * np.tile(_f32(mem, w, nw), H // nw)
        _f32(mem, h, rows * H)[:] = hv.reshape(-1)
        _out(mem, y, rows * H, half)[:] = out.reshape(-1)
    elif k == "gemv_add_rms_f16_f32":
        W, x, r, h, w, y, _counter, N, K, _rpb, nw, _nb, eps = a
        Wv = mem.view(W, N * K, np.float16).reshape(N, K).astype(np.float32)
        hv = _f32(mem, x, K) @ Wv.T + _f32(mem, r, N)
        out = hv / np.sqrt(np.mean(hv * hv) + np.float32(eps)) * np.tile(_f32(mem, w, nw), N // nw)
        _f32(mem, h, N)[:] = hv
        _f32(mem, y, N)[:] = out
    elif k == "gemv_swiglu_f16_f32" or k in GEMM_TC_SWIGLU.values():
        if k == "gemv_swiglu_f16_f32":
            Wg, Wu, x, y, N, K, _rpb = a
            M = 1
        else:
            Wg, Wu, x, y, M, N, K = a
        xv = _f32(mem, x, M * K).reshape(M, K)
        if k != "gemv_swiglu_f16_f32":   # tensor cores: x rounded to f16
            xv = xv.astype(np.float16).astype(np.float32)
        g = xv @ mem.view(Wg, N * K, np.float16).reshape(N, K).astype(np.float32).T
        u = xv @ mem.view(Wu, N * K, np.float16).reshape(N, K).astype(np.float32).T
        _f32(mem, y, M * N)[:] = (g / (1.0 + np.exp(-g)) * u).reshape(-1)
    elif k in ("swiglu_f32", "swiglu_f32_f16"):
        g, u, y, n = a
        gv = _f32(mem, g, n).copy()
        _out(mem, y, n, half)[:] = gv / (1.0 + np.exp(-gv)) * _f32(mem, u, n)
    elif k == "rope_set_rows_f16":
        x, pos, idx, dst, B, heads, d, nrows, log2_base = a
        xv = _rope32(_f32(mem, x, B * heads * d).reshape(B, heads, d), mem.view(pos, B, np.int32), log2_base)
        iv = mem.view(idx, B, np.int32)
        dv = mem.view(dst, nrows * heads * d, np.float16).reshape(nrows, heads * d)
        for b in range(B):
            if 0 <= iv[b] < nrows:
                dv[iv[b]] = xv[b].reshape(-1).astype(np.float16)
    elif k == "cast_f32_f16":
        x, y, n = a
        _out(mem, y, n, True)[:] = _f32(mem, x, n)
    elif k in ("attn_batch_f16", "attn_batch1_f16") or k in ATTN_MMA_NAMES or k in ATTN_MMA_H_NAMES or k in ATTN_FUSED_NAMES:
        if k in ATTN_FUSED_NAMES:
            q, pos, K, V, m, out, n_kv, G, heads, D, scale, log2_base = a
            B = ln.grid[0] // ATTN_CLUSTER // heads
        else:
            q, pos, K, V, m, out, B, n_kv, G, heads, D, scale, log2_base = a
        qv = _f32(mem, q, B * heads * D).reshape(B, heads, D)
        if pos:
            qv = _rope32(qv, mem.view(pos, B, np.int32), log2_base)
        g = np.arange(heads) // (heads // G)
        Kv = mem.view(K, n_kv * G * D, np.float16).reshape(n_kv, G, D).astype(np.float32)[:, g, :]
        Vv = mem.view(V, n_kv * G * D, np.float16).reshape(n_kv, G, D).astype(np.float32)[:, g, :]
        tc = k in ATTN_MMA_NAMES or k in ATTN_MMA_H_NAMES   # tensor cores: q (scaled first), probabilities f16
        if tc:
            z = np.einsum("bhd,jhd->bhj", (qv * np.float32(scale)).astype(np.float16).astype(np.float32), Kv)
        else:
            z = np.einsum("bhd,jhd->bhj", qv, Kv) * np.float32(scale)
        z = z + _f32(mem, m, B * n_kv).reshape(B, 1, n_kv)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        s = e.sum(axis=-1, keepdims=True)
        p = (e.astype(np.float16).astype(np.float32) if tc else e) / s
        _out(mem, out, B * heads * D, k in ATTN_MMA_H_NAMES)[:] = np.einsum("bhj,jhd->bhd", p, Vv).reshape(-1)
    elif k in ("spin", "weight_stream"):   # no outputs (weight_stream only reads weights)
        pass
    else:
        raise NotImplementedError(k)


def _whose(graph: Graph, addr: Mapping[str, int], start: int) -> str:
    """The tensors whose planned bytes a refused access starts in: the neighbour it would have read or
    overwritten."""
    hit = sorted(t.id for t in graph.tensors if addr[t.id] <= start < addr[t.id] + t.size)
    return f"it starts in {', '.join(map(repr, hit))}" if hit else "it starts in no tensor"


def _rope32(x: np.ndarray, pos: np.ndarray, log2_base: float) -> np.ndarray:
    """ROPE (ggml normal mode) of x [B, heads, d] in float32, as rope_f32 computes it."""
    B, heads, d = x.shape
    th = pos.astype(np.float32)[:, None, None] * np.exp2(-(2.0 * np.arange(d // 2) / d) * log2_base)[None, None, :]
    c, s = np.cos(th), np.sin(th)
    out = np.empty_like(x)
    out[..., 0::2] = x[..., 0::2] * c - x[..., 1::2] * s
    out[..., 1::2] = x[..., 0::2] * s + x[..., 1::2] * c
    return out


def _arena(mem: Memory, graph: Graph, device: int, nbytes: int, alignment: int) -> int:
    """Device ``device``'s arena of ``nbytes`` in ``mem``, or BudgetError naming it where the host cannot hold it, as
    the executors refuse an arena the GPU cannot (``DeviceOutOfMemory``): an unverified or hand-edited plan's
    ``arena_bytes`` of 2**40 was numpy's raw MemoryError ("Unable to allocate 1.00 TiB")."""
    return _host_alloc(mem, graph, f"device {device}'s arena", nbytes, alignment)


def _host_alloc(mem: Memory, graph: Graph, what: str, nbytes: int, alignment: int = 1) -> int:
    """``mem.alloc(nbytes, alignment)``, or BudgetError naming ``what`` (an arena, a weight root) where the host cannot
    hold it: a weight or cache root of a graph's own size (a view of a few KiB into a 64 TiB root) was numpy's raw
    MemoryError, where the arenas were refused by name."""
    try:
        return mem.alloc(nbytes, alignment)
    except MemoryError:
        raise BudgetError(f"emulate: {what} of {nbytes} B (plan of graph {graph.name!r}) does not fit "
                          "in host memory") from None


def _tensor_spans(graph: Graph, binding: Binding, device: int) -> list[tuple[int, int]]:
    """The byte ranges ``[lo, hi)`` of device ``device``'s arena that its tensors occupy (merged, in order, each
    widened to whole f32 words): the only bytes a step may touch (``Memory.bounds``), so the only ones worth
    poisoning. Why not the whole arena: a plan whose ``arena_bytes`` is far above its tensors' (verify takes it)
    wrote NaN over every byte, host pages the zeroed allocation had only reserved (16 GiB of NaN for an arena of 2**34
    holding a few KiB of tensors)."""
    spans = sorted((p.offset // 4 * 4, -(-(p.offset + graph.tensor(tid).size) // 4) * 4)
                   for tid, p in binding.places.items()
                   if p.in_arena and p.device == device and graph.tensor(tid).size)
    out: list[tuple[int, int]] = []
    for lo, hi in spans:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    arena = binding.arena_bytes[device] // 4 * 4   # (the old fill's last whole word: a span never passes it)
    return [(lo, min(hi, arena)) for lo, hi in out if lo < arena]


def emulate(graph: Graph, plan: Plan, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray], *,
            seed: int | None = None, poison: bool = True, check: bool = False,
            gemv_norm_min: int = GEMV_NORM_OFF, num_sms: int = 132,
            wgmma: bool = False) -> tuple[dict[str, np.ndarray], Memory, dict[str, int]]:
    """Run one step of ``plan`` (one device or several) on the CPU as the pycuda executors issue it: one
    arena per device (NaN-poisoned unless ``poison`` is False) and one allocation per own root, bound by
    ``runtime.binding``; the launches and issue order of ``runtime.step.program`` (fused groups, COPY
    nodes as byte copies); in the plan's order, or with ``seed`` in a random order that the issued events
    allow. ``weights`` by tensor id (a replica, ``attrs.replica_of``, gets its original's); ``check``
    verifies the plan first. ``num_sms`` and ``wgmma`` describe the device the registry picks kernels for
    (``KernelLibrary.num_sms``, ``.wgmma``: on Hopper the wgmma build and clusters of 16), so its choices
    there run here too. Returns the output tensors (f32; an i32 output int32, as ``Executor.read`` gives it; each
    shaped by its ``shape`` attr), the memory and every tensor's address."""
    for what, v, kind in (("graph", graph, Graph), ("plan", plan, Plan), ("weights", weights, Mapping),
                          ("inputs", inputs, Mapping)):
        if not isinstance(v, kind):   # (None was an AttributeError from deep inside)
            raise ExecutorError(f"emulate: {what} must be a {kind.__name__}, not {type(v).__name__}")
    # (as the executors check theirs: poison="no" or check="yes" decided by truthiness, a string gemv_norm_min
    # was a TypeError from the registry's comparison, a float seed reordered silently as another seed)
    for what, v in (("poison", poison), ("check", check)):
        if not isinstance(v, bool):
            raise ExecutorError(f"emulate: {what} {v!r}: expected True or False")
    for what, v, none_ok in (("gemv_norm_min", gemv_norm_min, False), ("seed", seed, True)):
        if not (none_ok and v is None) and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
            raise ExecutorError(f"emulate: {what} {v!r}: expected an integer{' or None' if none_ok else ''}")
    if check:
        memplan.verify(graph, plan)
    binding = bind(graph, plan)
    check_views(graph, plan, binding)
    mem = Memory()
    arenas = [_arena(mem, graph, d, b, binding.alignment) for d, b in enumerate(binding.arena_bytes)]
    if poison:
        for d, a in enumerate(arenas):
            for lo, hi in _tensor_spans(graph, binding, d):
                mem.view(a + lo, (hi - lo) // 4, np.float32)[:] = np.nan
    roots = {}
    # as the executors: a name that is no weight (a typo) is not silently left zero, nor a replica's array dropped
    check_weight_names(graph, binding, weights)
    for rid, size in binding.own_roots:
        roots[rid] = _host_alloc(mem, graph, f"weight {rid!r}", size)
        src = weight_source(graph, rid)
        if src in weights:
            mem.view(roots[rid], size, np.uint8)[:] = host_weight(graph, rid, weights[src]).view(np.uint8).reshape(-1)
    addr = {t.id: binding.address(t.id, arenas, roots) for t in graph.tensors}
    for tid, arr in inputs.items():
        a = host_input(graph, binding, tid, arr)
        mem.view(addr[tid], a.nbytes, np.uint8)[:] = a.view(np.uint8).reshape(-1)
    counters = [mem.alloc(counter_bytes(graph)) for _ in arenas]
    prog = program(graph, plan, binding, addr.__getitem__, counters=counters, scratch=(mem.alloc,),
                   gemv_norm_min=gemv_norm_min, num_sms=(num_sms,), wgmma=(wgmma,))
    # as the executors, once the graph is known to run: an input not given ran on the poison (or, with
    # poison=False, on zeros: silently)
    needed = read_inputs(graph, binding)
    if missing := [t for t in binding.inputs if t in needed and t not in inputs]:
        raise ExecutorError(f"emulate: input {missing[0]!r} of graph {graph.name!r} not given ({len(missing)} missing)")
    # how each output is read back, as the executors' ``read`` reads it: refused before any launch where it cannot be
    out_specs = {t: read_spec(graph, t, hint=" (the emulator returns each output in its own dtype)")
                 for t in binding.outputs}
    # each step's launches may touch only its node's (a fused group's: every member's) planned tensors, and
    # the buffers that are no arena and no weight root (group counters, scratch copies)
    planned = {a for a, _ in mem.bufs[:len(arenas) + len(roots)]}
    private = [(a, a + len(buf)) for a, buf in mem.bufs if a not in planned]
    members: dict[str, list[str]] = {}
    for m, last in prog.finished_by.items():
        members.setdefault(last, []).append(m)
    for step in host_order(prog.steps, seed):
        tids = dict.fromkeys(t for m in members.get(step.node, ()) for t in (*graph.node(m).inputs, *graph.node(m).outputs))
        mem.bounds = [(addr[t], addr[t] + graph.tensor(t).size) for t in tids] + private
        try:
            for ln in prog.launches[step.node]:
                run_launch(mem, ln)
        except OutOfBounds as exc:
            raise ExecutorError(f"node {step.node!r}: {ln.kernel} grid={ln.grid}: {exc} "
                                f"({_whose(graph, addr, exc.addr)})") from None
        finally:
            mem.bounds = None
    # (an f16 output, as a MUL may now write: its values as f32, not its bytes read as half as many f32; an i32 one
    # as int32, not its bits read as f32)
    outs = {}
    for t, (dt, n, shape) in out_specs.items():
        v = mem.view(addr[t], n, dt)
        outs[t] = (v.astype(np.float32) if dt == np.float16 else v.copy()).reshape(shape if shape is not None else -1)
    return outs, mem, addr
