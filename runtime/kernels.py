"""The kernel registry: which CUDA kernel (grid, block, arguments) runs each memplan node.

Why a separate step: the executor only knows streams, events and addresses; this module knows ops.
``launches_for(graph, addr)`` maps every node to zero or more ``Launch`` records (views cost nothing),
and ``KernelLibrary`` compiles ``kernels/llama.cu`` once with pycuda's SourceModule and launches them.
Only ``KernelLibrary`` touches pycuda, and only when it is created.

Fusion groups: when a group's op sequence is one the kernels know (RMS_NORM+MUL, ADD+RMS_NORM+MUL,
MUL_MAT+ADD+RMS_NORM+MUL, MUL_MAT+MUL_MAT+SILU+MUL, SILU+MUL, ROPE+SET_ROWS, [ROPE+]KQ+SOFT_MAX+KQV[+CONT]),
the whole group runs as one kernel (or, for the groups that start with MUL_MATs above batch 1, the GEMMs
then one kernel)
launched on its *last* member (so the waits of every member precede it); other members get no launch. Any other group, or one whose fused kernel would write bytes that another of its threads
still reads (a planned overlap that is only safe between separate kernels), runs node by node.
``plan_launches`` also returns which groups were fused, so the executor can record the events of the
absorbed members after the fused launch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from memplan import Graph

KERNEL_SOURCE = Path(__file__).with_name("kernels") / "llama.cu"
RMS_EPS = 1e-5
ROPE_BASE = 10000.0
#: Executor default for ``gemv_norm_min``: the GEMV+add+RMS-norm kernel (last block normalises) is off,
#: since it measured 0.2-0.3% slower per 8B step on the H100 than a GEMV then the add+norm kernel
GEMV_NORM_OFF = 1 << 62
#: attn_fused_f16: blocks per (batch row, head) and most cache rows per block (AF_CL, AF_MAXCHUNK)
ATTN_CLUSTER = 8
ATTN_MAXCHUNK = 2048
#: ops that only reinterpret bytes (the graph gives them views): nothing to launch
VIEW_OPS = frozenset({"VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE", "NONE"})

#: pycuda ``prepare`` signatures: P pointer, i int32, q int64, Q uint64, f float32
SIGNATURES = {
    "rms_norm_f32": "PPPiif",
    "rms_norm4_f32": "PPPiif",
    "binary_f32": "PPPqqi",
    "silu_f32": "PPq",
    "copy_u32": "PPq",
    "rope_f32": "PPPiiif",
    "set_rows_f32_f16": "PPPii",
    "attn_kq_f16": "PPPiiiif",
    "softmax_mask_f32": "PPPii",
    "attn_kqv_f16": "PPPiiii",
    "attn_kqv_cl_f16": "PPPiiii",
    "add_rms_norm4_f32": "PPPPPiif",
    "swiglu_f32": "PPPq",
    "rope_set_rows_f16": "PPPPiiiif",
    "attn_fused_f16": "PPPPPPiiiiff",
    "gemv_f16_f32": "PPPiii",
    "gemv_add_rms_f16_f32": "PPPPPPPiiiiif",
    "gemv_swiglu_f16_f32": "PPPPiii",
    "gemm_wmma_f16_f32": "PPPiii",
    "gemm_naive_f16_f32": "PPPiii",
    "spin": "q",
    "l2_prefetch": "PqP",
    "fill_uniform_f16": "PQQf",
}


class KernelError(ValueError):
    """A node the registry has no kernel for (names the node)."""


@dataclass(frozen=True)
class Launch:
    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    args: tuple


def _shape(graph: Graph, tid: str) -> list[int]:
    t = graph.tensor(tid)
    if "shape" not in t.attrs:
        raise KernelError(f"tensor {tid!r} has no 'shape' attr: the runtime needs shapes")
    return [int(s) for s in t.attrs["shape"]]


def _dtype(graph: Graph, tid: str) -> str:
    return str(graph.tensor(tid).attrs.get("dtype", "f32"))


def _numel(shape: list[int]) -> int:
    return math.prod(shape) if shape else 1


def _ew_grid(n: int, block: int = 256) -> tuple[int, int, int]:
    return (max(1, min(math.ceil(n / block), 8192)), 1, 1)


def gemv_rows_per_block(n_rows: int, num_sms: int, k: int = 0) -> int:
    """Rows per 8-warp block: as many as still leave two blocks per SM (small N splits K instead);
    large matrices of many rows (8B's gate/up projections and LM head) stream best at 2 rows per block,
    8B's down projection (4096 rows of 14336) at 8 (measured on an H100, docs/runtime.md)."""
    if n_rows * k >= 32 * 2**20 and n_rows >= 8192 and (n_rows <= 16384 or n_rows * k >= 256 * 2**20):
        return 2
    for rpb in (8, 4, 2):
        if math.ceil(n_rows / rpb) >= 2 * num_sms:
            return rpb
    return 1


def mul_mat_launch(W: int, x: int, y: int, M: int, N: int, K: int, num_sms: int = 132) -> Launch:
    """f16 W [N, K] times f32 x [M, K] -> y [M, N]: GEMV at batch 1, tensor cores up to 64, else naive."""
    if M == 1 and K % 8 == 0:
        rpb = gemv_rows_per_block(N, num_sms, K)
        return Launch("gemv_f16_f32", (math.ceil(N / rpb), 1, 1), (256, 1, 1), (W, x, y, N, K, rpb))
    if 1 <= M <= 64 and N % 16 == 0 and K % 64 == 0:
        return Launch("gemm_wmma_f16_f32", (N // 16, 1, 1), (128, 1, 1), (W, x, y, M, N, K))
    return Launch("gemm_naive_f16_f32", (math.ceil(M * N / 128), 1, 1), (128, 1, 1), (W, x, y, M, N, K))


def launches_for(graph: Graph, addr: Callable[[str], int], *, num_sms: int = 132,
                 fuse_groups: bool = True, no_fuse: frozenset[str] = frozenset(), counters: int = 0,
                 scratch: Callable[[int], int] | None = None) -> list[list[Launch]]:
    """Per node (graph order): the kernels that compute it. ``addr(tensor_id)`` gives device pointers."""
    return plan_launches(graph, addr, num_sms=num_sms, fuse_groups=fuse_groups, no_fuse=no_fuse,
                         counters=counters, scratch=scratch)[0]


def counter_bytes(graph: Graph) -> int:
    """Bytes of the zeroed uint32 counters ``plan_launches(counters=...)`` may use (one per group)."""
    return 4 * max(1, len(graph.groups()))


def plan_launches(graph: Graph, addr: Callable[[str], int], *, num_sms: int = 132, fuse_groups: bool = True,
                  no_fuse: frozenset[str] = frozenset(), counters: int = 0, gemv_norm_min: int = 0,
                  scratch: Callable[[int], int] | None = None
                  ) -> tuple[list[list[Launch]], dict[int, tuple[int, ...]]]:
    """``launches_for`` plus the fused groups: last member index -> all member indices (listed order).
    Groups named in ``no_fuse`` run node by node. ``counters``: device address of ``counter_bytes(graph)``
    zeroed bytes (group k may use the uint32 at ``counters + 4 k``); 0 disables the kernels that need one
    (MUL_MAT+ADD+RMS_NORM+MUL then runs as a GEMV and the add+norm kernel: the same bits), and so does
    ``gemv_norm_min`` for weight matrices of fewer elements. ``scratch(nbytes)`` returns a fresh device
    buffer: a node whose in-place output starts *inside* its input at another address (the contract lets
    the planner do that; an element-wise kernel would then overwrite elements other threads have not read
    yet) first copies that input there and reads the copy. Without ``scratch`` such nodes run as planned."""
    out: list[list[Launch]] = [[] for _ in graph.nodes]
    fused: dict[int, tuple[int, ...]] = {}
    absorbed: set[int] = set()
    if fuse_groups:
        for k, (name, members) in enumerate(graph.groups().items()):
            if len(members) < 2 or name in no_fuse:
                continue
            try:
                lns = fused_launch(graph, addr, members, num_sms=num_sms, counter=counters + 4 * k if counters else 0,
                                   gemv_norm_min=gemv_norm_min)
            except (KeyError, IndexError, ValueError):
                lns = None
            if lns:
                out[members[-1]] = lns
                fused[members[-1]] = tuple(members)
                absorbed.update(members)
    for ni, node in enumerate(graph.nodes):
        if ni in absorbed:
            continue
        try:
            out[ni] = _launch(graph, addr, ni, num_sms)
            if scratch is not None and out[ni]:
                out[ni] = _stage_shifted_inplace(graph, addr, node, out[ni], scratch)
        except KernelError:
            raise
        except (KeyError, IndexError, ValueError) as exc:
            raise KernelError(f"node {node.id!r} ({node.op}): cannot build its kernel ({exc})") from None
    return out, fused


def _stage_shifted_inplace(graph: Graph, addr, node, lns: list[Launch], scratch) -> list[Launch]:
    for o, i in node.inplace:
        ao, ai = addr(o), addr(i)
        so, si = graph.tensor(o).size, graph.tensor(i).size
        if ao != ai and ao < ai + si and ai < ao + so:
            if si % 4:
                raise KernelError(f"node {node.id!r}: in-place input {i!r} of {si} bytes is not whole words")
            buf = scratch(si)
            lns = [Launch("copy_u32", _ew_grid(si // 4), (256, 1, 1), (ai, buf, si // 4))] + [
                replace(ln, args=tuple(buf if isinstance(a, int) and a == ai else a for a in ln.args)) for ln in lns]
    return lns


def _rows(graph: Graph, tid: str) -> int:
    shp = _shape(graph, tid)
    return _numel(shp) // shp[-1]


def _alias_ok(graph: Graph, addr, writes, reads) -> bool:
    """A fused kernel may write a tensor over one it reads only in place (same start address: the same
    thread reads an element before writing it); any other overlap is left to separate kernels."""
    for w in writes:
        aw, sw = addr(w), graph.tensor(w).size
        for r in reads:
            ar, sr = addr(r), graph.tensor(r).size
            if ar != aw and ar < aw + sw and aw < ar + sr:
                return False
    return True


def fused_launch(graph: Graph, addr, members, *, num_sms: int = 132, counter: int = 0,
                 gemv_norm_min: int = 0) -> list[Launch] | None:
    """The launches of a whole fusion group (one kernel, or a GEMM and one kernel), or None if its op
    sequence, shapes or planned overlaps are not supported."""
    nodes = [graph.nodes[m] for m in members]
    ops = tuple(n.op for n in nodes)
    if ops == ("MUL_MAT", "ADD", "RMS_NORM", "MUL"):
        return _mm_add_rms(graph, addr, nodes, num_sms, counter, gemv_norm_min)
    if ops == ("MUL_MAT", "MUL_MAT", "SILU", "MUL"):
        return _mm_swiglu(graph, addr, nodes, num_sms)
    ln = _fused_one(graph, addr, nodes, ops)
    return [ln] if ln is not None else None


def _mm_add_rms(graph: Graph, addr, nodes, num_sms: int, counter: int, gemv_norm_min: int = 0) -> list[Launch] | None:
    mm, add = nodes[0], nodes[1]
    if add.inputs[0] != mm.outputs[0] or len(mm.inputs) != 2:
        return None
    tail = _fused_one(graph, addr, nodes[1:], ("ADD", "RMS_NORM", "MUL"))
    if tail is None:
        return None
    Wt, xg = mm.inputs
    sw = _shape(graph, Wt)
    if len(sw) != 2 or _dtype(graph, Wt) != "f16" or _dtype(graph, xg) != "f32":
        return None
    N, K = sw
    M = _numel(_shape(graph, xg)) // K
    xa, r, h, w, y, H, nw, eps = tail.args
    nb = tail.block[0]
    if (counter and M == 1 and K % 8 == 0 and N == H and nb <= 256 and N * K >= gemv_norm_min
            and _alias_ok(graph, addr, [add.outputs[0]], [xg, add.inputs[1], Wt])):
        rpb = gemv_rows_per_block(N, num_sms, K)
        return [Launch("gemv_add_rms_f16_f32", (math.ceil(N / rpb), 1, 1), (256, 1, 1),
                       (addr(Wt), addr(xg), r, h, w, y, counter, N, K, rpb, nw, nb, eps))]
    return [mul_mat_launch(addr(Wt), addr(xg), addr(mm.outputs[0]), M, N, K, num_sms), tail]


def _mm_swiglu(graph: Graph, addr, nodes, num_sms: int) -> list[Launch] | None:
    mg, mu, si, mul = nodes
    (Wg, x), (Wu, xu) = mg.inputs, mu.inputs
    if (x != xu or si.inputs[0] != mg.outputs[0] or tuple(mul.inputs) != (si.outputs[0], mu.outputs[0])
            or _shape(graph, Wg) != _shape(graph, Wu) or len(_shape(graph, Wg)) != 2):
        return None
    if any(_dtype(graph, t) != "f16" for t in (Wg, Wu)) or _dtype(graph, x) != "f32":
        return None
    tail = _fused_one(graph, addr, nodes[2:], ("SILU", "MUL"))
    if tail is None:
        return None
    N, K = _shape(graph, Wg)
    M = _numel(_shape(graph, x)) // K
    y = mul.outputs[0]
    # rows per block as for one GEMV (then the sums are those of gemv_f16_f32 bit for bit), at least 2
    rpb = max(2, gemv_rows_per_block(N, num_sms, K))
    if M == 1 and K % 8 == 0 and _alias_ok(graph, addr, [y], [x]):
        return [Launch("gemv_swiglu_f16_f32", (math.ceil(2 * N / rpb), 1, 1), (256, 1, 1),
                       (addr(Wg), addr(Wu), addr(x), addr(y), N, K, rpb))]
    return [mul_mat_launch(addr(Wg), addr(x), addr(mg.outputs[0]), M, N, K, num_sms),
            mul_mat_launch(addr(Wu), addr(x), addr(mu.outputs[0]), M, N, K, num_sms), tail]


def _fused_one(graph: Graph, addr, nodes, ops) -> Launch | None:
    if ops == ("RMS_NORM", "MUL"):
        a, b = nodes
        # one block per row writes y after a block barrier: any overlap with its own row is safe
        if (len(b.inputs) == 2 and b.inputs[0] == a.outputs[0] and graph.tensor(b.inputs[1]).kind == "weight"
                and (_rows(graph, a.inputs[0]) == 1
                     or _alias_ok(graph, addr, [b.outputs[0]], [a.inputs[0], b.inputs[1]]))):
            return _rms_norm(graph, addr, a.inputs[0], b.inputs[1], b.outputs[0])
        return None
    if ops == ("ADD", "RMS_NORM", "MUL"):
        add, nrm, mul = nodes
        x, r = add.inputs
        h, w, y = add.outputs[0], mul.inputs[1], mul.outputs[0]
        if not (nrm.inputs[0] == h and mul.inputs[0] == nrm.outputs[0] and graph.tensor(w).kind == "weight"):
            return None
        shp = _shape(graph, x)
        H = shp[-1]
        rows = _numel(shp) // H
        nw = _numel(_shape(graph, w))
        if (_numel(_shape(graph, r)) != _numel(shp) or _numel(_shape(graph, h)) != _numel(shp) or H % 4
                or H // 4 > 4 * 1024 or nw % 4 or H % nw):
            return None
        if any(_dtype(graph, t) != "f32" for t in (x, r, h, w, y)):
            return None
        # h and y are written after the block barrier (one block per row: at one row they may overlap the
        # inputs anywhere); y must never overlap h, which outlives the kernel
        if not _alias_ok(graph, addr, [y], [h]) or (rows > 1 and not _alias_ok(graph, addr, [h, y], [x, r, w])):
            return None
        block = min(1024, max(32, 32 * math.ceil(H / 16 / 32)))
        return Launch("add_rms_norm4_f32", (rows, 1, 1), (block, 1, 1),
                      (addr(x), addr(r), addr(h), addr(w), addr(y), H, nw, RMS_EPS))
    if ops == ("SILU", "MUL"):
        si, mul = nodes
        g, u, y = si.inputs[0], mul.inputs[1], mul.outputs[0]
        n = _numel(_shape(graph, g))
        if mul.inputs[0] != si.outputs[0] or _numel(_shape(graph, u)) != n or _numel(_shape(graph, y)) != n:
            return None
        if any(_dtype(graph, t) != "f32" for t in (g, u, y)) or not _alias_ok(graph, addr, [y], [g, u]):
            return None
        return Launch("swiglu_f32", _ew_grid(n), (256, 1, 1), (addr(g), addr(u), addr(y), n))
    if ops == ("ROPE", "SET_ROWS"):
        ro, sr = nodes
        x, pos = ro.inputs
        src, idx = sr.inputs
        dst = sr.outputs[0]
        if src != ro.outputs[0]:
            return None
        B, heads, d = _shape(graph, x)
        ds = _shape(graph, dst)
        if (_dtype(graph, dst) != "f16" or ds[-1] != heads * d or _numel(_shape(graph, idx)) != B or d % 2
                or not _alias_ok(graph, addr, [dst], [x, pos, idx])):
            return None
        n = B * heads * d // 2
        return Launch("rope_set_rows_f16", (math.ceil(n / 256), 1, 1), (256, 1, 1),
                      (addr(x), addr(pos), addr(idx), addr(dst), B, heads, d, ds[0], math.log2(ROPE_BASE)))
    rope = nodes[0] if ops and ops[0] == "ROPE" else None
    core = nodes[1:] if rope is not None else nodes
    cont = core[-1] if core and core[-1].op == "CONT" else None
    if cont is not None:
        core = core[:-1]
    if tuple(n.op for n in core) != ("MUL_MAT", "SOFT_MAX", "MUL_MAT"):
        return None
    kq, sm, kqv = core
    Kt, qt = kq.inputs
    q_in, pos = (rope.inputs[0], rope.inputs[1]) if rope is not None else (qt, None)
    if rope is not None and rope.outputs[0] != qt:
        return None
    if sm.inputs[0] != kq.outputs[0] or kqv.inputs[1] != sm.outputs[0]:
        return None
    Vt, mask = kqv.inputs[0], sm.inputs[1]
    out = kqv.outputs[0]
    if cont is not None:
        if cont.inputs[0] != out or graph.tensor(cont.outputs[0]).size != graph.tensor(out).size:
            return None
        out = cont.outputs[0]
    sk, sv, sq = _shape(graph, Kt), _shape(graph, Vt), _shape(graph, q_in)
    if len(sk) != 3 or len(sq) != 3 or sk != sv or _dtype(graph, Kt) != "f16" or _dtype(graph, Vt) != "f16":
        return None
    n_kv, G, D = sk
    B, heads, Dq = sq
    d8 = D // 8
    if (Dq != D or D % 8 or d8 > 32 or d8 & (d8 - 1) or heads % G or math.ceil(n_kv / ATTN_CLUSTER) > ATTN_MAXCHUNK
            or _shape(graph, kq.outputs[0]) != [B, heads, n_kv] or _numel(_shape(graph, mask)) != B * n_kv
            or _dtype(graph, q_in) != "f32" or _dtype(graph, mask) != "f32" or _dtype(graph, out) != "f32"):
        return None
    reads = [q_in, Kt, Vt, mask] + ([pos] if pos else [])
    if not _alias_ok(graph, addr, [out], reads):
        return None
    return Launch("attn_fused_f16", (ATTN_CLUSTER * B * heads, 1, 1), (256, 1, 1),
                  (addr(q_in), addr(pos) if pos else 0, addr(Kt), addr(Vt), addr(mask), addr(out),
                   n_kv, G, heads, D, 1.0 / math.sqrt(D), math.log2(ROPE_BASE)))


def _rms_norm(graph: Graph, addr, x: str, w: str | None, y: str) -> Launch:
    shp = _shape(graph, x)
    H = shp[-1]
    rows = _numel(shp) // H
    nw = _numel(_shape(graph, w)) if w else 1
    args = (addr(x), addr(w) if w else 0, addr(y), H, nw, RMS_EPS)
    if H % 4 == 0 and H // 4 <= 4 * 1024 and nw % 4 == 0:   # float4 path, at most 4 float4 per thread
        block = min(1024, max(32, 32 * math.ceil(H / 16 / 32)))
        return Launch("rms_norm4_f32", (rows, 1, 1), (block, 1, 1), args)
    block = min(1024, max(32, 32 * math.ceil(H / 4 / 32)))
    return Launch("rms_norm_f32", (rows, 1, 1), (block, 1, 1), args)


def _launch(graph: Graph, addr, ni: int, num_sms: int) -> list[Launch]:
    node = graph.nodes[ni]
    op, ins, outs = node.op, node.inputs, node.outputs
    if op in VIEW_OPS:
        return []
    if op == "RMS_NORM":
        return [_rms_norm(graph, addr, ins[0], None, outs[0])]
    if op in ("ADD", "MUL"):
        _require_f32(graph, node.id, (*ins, outs[0]))
        n, nb = _numel(_shape(graph, ins[0])), _numel(_shape(graph, ins[1]))
        if nb == 0 or n % nb:
            raise KernelError(f"node {node.id!r}: cannot broadcast {nb} elements over {n}")
        return [Launch("binary_f32", _ew_grid(n), (256, 1, 1),
                       (addr(ins[0]), addr(ins[1]), addr(outs[0]), n, nb, 0 if op == "ADD" else 1))]
    if op == "SILU":
        n = _numel(_shape(graph, ins[0]))
        return [Launch("silu_f32", _ew_grid(n), (256, 1, 1), (addr(ins[0]), addr(outs[0]), n))]
    if op == "CONT":
        size = graph.tensor(outs[0]).size
        if size % 4 or graph.tensor(ins[0]).size != size:
            raise KernelError(f"node {node.id!r}: CONT needs equal sizes that are a multiple of 4 bytes")
        return [Launch("copy_u32", _ew_grid(size // 4), (256, 1, 1), (addr(ins[0]), addr(outs[0]), size // 4))]
    if op == "ROPE":
        B, heads, d = _shape(graph, ins[0])
        n = B * heads * d // 2
        return [Launch("rope_f32", (math.ceil(n / 256), 1, 1), (256, 1, 1),
                       (addr(ins[0]), addr(ins[1]), addr(outs[0]), B, heads, d, math.log2(ROPE_BASE)))]
    if op == "SET_ROWS":
        src, idx = ins
        rows = _numel(_shape(graph, idx))
        cols = _numel(_shape(graph, src)) // rows
        dst = _shape(graph, outs[0])
        if _dtype(graph, outs[0]) != "f16" or dst[-1] != cols:
            raise KernelError(f"node {node.id!r}: SET_ROWS needs an f16 destination with {cols} columns")
        return [Launch("set_rows_f32_f16", (math.ceil(cols / 256), rows, 1), (256, 1, 1),
                       (addr(src), addr(idx), addr(outs[0]), cols, dst[0]))]
    if op == "SOFT_MAX":
        shp = _shape(graph, ins[0])
        n = shp[-1]
        heads = shp[-2] if len(shp) >= 3 else 1
        # (one warp per row with an online max/sum measured 2.8x slower on the H100 at n=513)
        return [Launch("softmax_mask_f32", (_numel(shp) // n, 1, 1), (256, 1, 1),
                       (addr(ins[0]), addr(ins[1]), addr(outs[0]), n, heads))]
    if op == "MUL_MAT":
        return [_mul_mat(graph, addr, ni, num_sms)]
    raise KernelError(f"node {node.id!r}: no kernel for op {op!r}")


def _require_f32(graph: Graph, nid: str, tids) -> None:
    for t in tids:
        if _dtype(graph, t) != "f32":
            raise KernelError(f"node {nid!r}: tensor {t!r} is {_dtype(graph, t)}, the kernel needs f32")


def _mul_mat(graph: Graph, addr, ni: int, num_sms: int) -> Launch:
    node = graph.nodes[ni]
    a, b = node.inputs
    y = node.outputs[0]
    sa, sb, sy = _shape(graph, a), _shape(graph, b), _shape(graph, y)
    if _dtype(graph, a) != "f16" or _dtype(graph, b) != "f32":
        raise KernelError(f"node {node.id!r}: MUL_MAT needs f16 x f32 (got {_dtype(graph, a)} x {_dtype(graph, b)})")
    if len(sa) == 2:
        N, K = sa
        if _numel(sb) % K:
            raise KernelError(f"node {node.id!r}: x has {_numel(sb)} elements, not a multiple of K={K}")
        return mul_mat_launch(addr(a), addr(b), addr(y), _numel(sb) // K, N, K, num_sms)
    if len(sa) == 3 and len(sb) == 3 and len(sy) == 3:
        R, G, D = sa
        B, heads, X = sb
        if heads % G:
            raise KernelError(f"node {node.id!r}: {heads} heads do not group over {G} KV heads")
        kq = X == D and sy[-1] == R
        kqv = X == R and sy[-1] == D
        if kq and kqv:  # d == n_kv: the probabilities come out of a SOFT_MAX
            p = graph.producer[graph.tensor_index[b]]
            kq = not (p >= 0 and graph.nodes[p].op == "SOFT_MAX")
            kqv = not kq
        if (kq or kqv) and D % 8:
            raise KernelError(f"node {node.id!r}: head dim {D} must be a multiple of 8")
        if kq:
            return Launch("attn_kq_f16", (math.ceil(R / 8), B * G, 1), (256, 1, 1),
                          (addr(a), addr(b), addr(y), R, G, heads, D, 1.0 / math.sqrt(D)))
        if kqv:
            d8 = D // 8
            if D > 1024:
                raise KernelError(f"node {node.id!r}: head dim {D} is over 1024")
            if D <= 512 and 512 % d8 == 0:   # a cluster of 4 blocks per head (Hopper)
                return Launch("attn_kqv_cl_f16", (4 * B * heads, 1, 1), (512, 1, 1),
                              (addr(a), addr(b), addr(y), R, G, heads, D))
            return Launch("attn_kqv_f16", (B * heads, 1, 1), ((1024 // d8) * d8, 1, 1),
                          (addr(a), addr(b), addr(y), R, G, heads, D))
    raise KernelError(f"node {node.id!r}: no MUL_MAT kernel for shapes {sa} x {sb} -> {sy}")


_CTYPES = {"P": "c_void_p", "i": "c_int", "q": "c_longlong", "Q": "c_ulonglong", "f": "c_float"}


class KernelLibrary:
    """The compiled kernels (one cubin for this device's arch) and how to launch them.

    ``pdl=False``: pycuda prepared calls. ``pdl=True``: ``cuLaunchKernelEx`` (cuda.bindings) with
    programmatic stream serialization, so on Hopper each kernel's launch overlaps its predecessor's tail
    (the kernels wait for their predecessor with ``griddepcontrol.wait``; see llama.cu); CUDA graph
    capture keeps these as programmatic edges.
    """

    def __init__(self, arch: str | None = None, source: Path = KERNEL_SOURCE, *, pdl: bool = False):
        import pycuda.autoprimaryctx  # noqa: F401  (retains and pushes the primary context once)
        import pycuda.driver as cuda
        from pycuda.compiler import compile as nvcc_compile

        dev = cuda.Context.get_device()
        if arch is None:
            major, minor = dev.compute_capability()
            arch = f"sm_{major}{minor}"
        self.arch = arch
        self.pdl = pdl
        self.num_sms = dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT)
        self.cubin = nvcc_compile(source.read_text(), arch=arch, no_extern_c=True, options=["-O3"])
        self.module = cuda.module_from_buffer(self.cubin)
        self.funcs = {}
        for name, sig in SIGNATURES.items():
            f = self.module.get_function(name)
            f.prepare(sig)
            self.funcs[name] = f
        self._cu_funcs: dict = {}
        self._configs: dict = {}
        if pdl:
            import ctypes

            from cuda.bindings import driver as cu

            from .executor import check

            self._cu = cu
            self._cu_module = check(cu.cuModuleLoadData(self.cubin), "cuModuleLoadData")
            for name, sig in SIGNATURES.items():
                self._cu_funcs[name] = (check(cu.cuModuleGetFunction(self._cu_module, name.encode()),
                                              f"cuModuleGetFunction({name})"),
                                        tuple(getattr(ctypes, _CTYPES[c]) for c in sig))

    def with_pdl(self, pdl: bool) -> KernelLibrary:
        """The same kernels launched the other way (compiles again; cheap with pycuda's cache)."""
        return KernelLibrary(self.arch, pdl=pdl)

    def launch(self, ln: Launch, stream, pdl: bool = True) -> None:
        """Launch on ``stream``; with PDL only if this library uses it and ``pdl`` (the caller says
        whether the previous operation on the stream was a kernel: see Executor)."""
        if not (self.pdl and pdl):
            self.funcs[ln.kernel].prepared_async_call(ln.grid, ln.block, stream, *ln.args)
            return
        cu = self._cu
        key = (ln, stream.handle)
        cfg = self._configs.get(key)
        if cfg is None:
            c = cu.CUlaunchConfig()
            c.gridDimX, c.gridDimY, c.gridDimZ = ln.grid
            c.blockDimX, c.blockDimY, c.blockDimZ = ln.block
            c.sharedMemBytes = 0
            c.hStream = cu.CUstream(int(stream.handle))
            attr = cu.CUlaunchAttribute()
            attr.id = cu.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
            attr.value.programmaticStreamSerializationAllowed = 1
            c.attrs = [attr]
            c.numAttrs = 1
            func, types = self._cu_funcs[ln.kernel]
            cfg = self._configs[key] = (c, func, (ln.args, types))
        c, func, params = cfg
        err = cu.cuLaunchKernelEx(c, func, params, 0)[0]
        if err != cu.CUresult.CUDA_SUCCESS:
            from .executor import check

            check((err,), f"cuLaunchKernelEx({ln.kernel})")
