"""Fusion groups as one kernel: the launches of a group whose op sequence a fused kernel implements.

Known sequences: RMS_NORM+MUL, ADD+RMS_NORM+MUL, MUL_MAT+ADD+RMS_NORM+MUL, MUL_MAT+MUL_MAT+SILU+MUL,
SILU+MUL, ROPE+SET_ROWS, [ROPE+]KQ+SOFT_MAX+KQV[+CONT]: one kernel (or, for the groups that start with
MUL_MATs above batch 1, the GEMMs then one kernel). ``fused_launch`` returns None for any other group, and
for one whose fused kernel would write bytes that another of its threads still reads (a planned overlap
that is only safe between separate kernels): that group then runs node by node. One exception, so that
the choice of kernels does not depend on the plan's offsets: an add+norm group over several rows whose
outputs overlap its inputs (the planner shifts the residual ADD's in-place output into its input) reads
those inputs from scratch copies (``scratch``) and still runs as one kernel (issue 16: a one-GPU and a
two-GPU plan of one graph then run the same kernels, and compute the same bits); so do a norm group, an
attention group and an f16 x's SwiGLU pass whose output overlaps an input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from memplan import Graph

from .ops import (
    ATTN_MMA_NAMES,
    RMS_EPS,
    ROPE_BASE,
    KernelError,
    Launch,
    _alias_ok,
    _dtype,
    _ew_grid,
    _f16_out_ok,
    _numel,
    _overlaps,
    _rms_norm,
    _rows,
    _shape,
    aligned,
    attention_launch,
    broadcast_problem,
    copy_launch,
    gemm_tc_swiglu_launch,
    gemv_rows_per_block,
    mul_mat_f16x_launch,
    over_inputs,
    product_launch,
    swiglu_f16x_launch,
)


def fused_launch(graph: Graph, addr, members, *, num_sms: int = 132, wgmma: bool = False, counter: int = 0,
                 gemv_norm_min: int = 0, scratch: Callable[[int], int] | None = None) -> list[Launch] | None:
    """The launches of a whole fusion group (one kernel, or a GEMM and one kernel), or None if its op
    sequence, shapes or planned overlaps are not supported, or if a pointer is not aligned as its kernels
    need (``ops.ALIGN``: a user's view at an odd offset; node by node, the registry then takes kernels that
    need less, or names the node no kernel computes). ``scratch(nbytes)``: a fresh device buffer, for the
    inputs of an add+norm group that its outputs overlap (see ``_stage_add_rms``); None: no staging."""
    lns = _fused_launch(graph, addr, members, num_sms, wgmma, counter, gemv_norm_min, scratch)
    return lns if lns is None or all(aligned(ln) for ln in lns) else None


def _fused_launch(graph: Graph, addr, members, num_sms: int, wgmma: bool, counter: int, gemv_norm_min: int,
                  scratch: Callable[[int], int] | None) -> list[Launch] | None:
    nodes = [graph.nodes[m] for m in members]
    ops = tuple(n.op for n in nodes)
    if ops == ("MUL_MAT", "ADD", "RMS_NORM", "MUL"):
        return _mm_add_rms(graph, addr, nodes, num_sms, counter, gemv_norm_min, scratch, wgmma)
    if ops == ("MUL_MAT", "MUL_MAT", "SILU", "MUL"):
        return _mm_swiglu(graph, addr, nodes, num_sms, wgmma, scratch)
    ln = _fused_one(graph, addr, nodes, ops, num_sms)
    if ln is None and ops == ("ADD", "RMS_NORM", "MUL"):
        return _stage_add_rms(graph, addr, nodes, scratch, internal=())
    if ln is None and ops == ("RMS_NORM", "MUL"):
        return _stage_norm(graph, addr, nodes, scratch)
    if ln is None and "SOFT_MAX" in ops:
        return _stage_attention(graph, addr, nodes, ops, scratch, num_sms)
    return [ln] if ln is not None else None


def _staged(graph: Graph, addr, staged, build, scratch, internal=()) -> list[Launch] | None:
    """The launch ``build(addr)`` makes when every tensor in ``staged`` is read from a fresh scratch copy, with
    a ``copy_u32`` into each copy before it (a bit-for-bit copy on the same stream, where the kernel would
    have read it) except for the tensors in ``internal`` (an earlier launch of the group writes that copy
    itself: the caller does that). Built first over stand-in addresses below every real one, so nothing is
    allocated for a launch that ``build`` refuses (None), then the stand-ins are swapped for the buffers."""
    if not staged or any(graph.tensor(t).size % 4 for t in staged):
        return None
    stand_in = {t: -(k + 1) << 48 for k, t in enumerate(staged)}
    ln = build(lambda t: stand_in.get(t) or addr(t))
    if ln is None:
        return None
    bufs = {stand_in[t]: scratch(graph.tensor(t).size) for t in staged}
    ln = replace(ln, args=tuple(bufs.get(a, a) if isinstance(a, int) else a for a in ln.args))
    return [copy_launch(addr(t), bufs[stand_in[t]], graph.tensor(t).size) for t in staged if t not in internal] + [ln]


def _stage_attention(graph: Graph, addr, nodes, ops, scratch, num_sms: int) -> list[Launch] | None:
    """An attention group whose output the plan overlaps with an input at another address (the planner may:
    q, and on a split graph the device's copies of pos and mask, can be dead once the group read them): the
    launches that read scratch copies of those inputs, made just before on the group's stream, so that every
    plan of a graph runs the same attention kernel (issue 16; the one-GPU and the split plan of the 1B at 32
    tokens differed here once its activations were f16). None if the group fails for another reason too."""
    if scratch is None:
        return None
    inside = {t for n in nodes for t in n.outputs}
    out = nodes[-1].outputs[0]
    reads = [t for t in dict.fromkeys(t for n in nodes for t in n.inputs) if t not in inside]
    staged = [t for t in reads if graph.in_arena(graph.tensor_index[t]) and _overlaps(graph, addr, out, t)]
    return _staged(graph, addr, staged, lambda a: _fused_one(graph, a, nodes, ops, num_sms), scratch)


def _stage_norm(graph: Graph, addr, nodes, scratch) -> list[Launch] | None:
    """RMS_NORM+MUL over several rows whose output y the plan put over its input x at another address, or at
    any address in f16 (its rows are half as wide: row r lands on x's row r / 2, which another block still
    reads; what a planner may do where x dies in the group, as the final norm's residual under an f16 ``fa``
    of ``llama(f16_acts=True)``): the copy of x to scratch and the norm reading it, so that every plan of a
    graph runs the same kernel (issue 16's rule). None if the group fails for another reason too."""
    a, b = nodes
    x, y = a.inputs[0], b.outputs[0]
    if scratch is None or _rows(graph, x) == 1 or not _overlaps(graph, addr, y, x):
        return None
    return _staged(graph, addr, [x], lambda ad: _fused_one(graph, ad, nodes, ("RMS_NORM", "MUL")), scratch)


def _stage_add_rms(graph: Graph, addr, nodes, scratch, internal) -> list[Launch] | None:
    """ADD+RMS_NORM+MUL over several rows whose outputs h or y overlap its inputs x or r at another address
    (block r would overwrite rows that other blocks still read): the launches that read those inputs from
    fresh scratch buffers instead (``_staged``; the inputs in ``internal`` are produced by an earlier launch
    of the group, which then writes the scratch buffer itself); and, at any number of rows, one whose y the
    plan put over an h that dies in the group: h then goes to a scratch buffer. Returns the copies then the
    add+norm launch, or None (no scratch, one row without y over h, or an overlap that staging does not remove)."""
    add, _nrm, mul = nodes
    h, y = add.outputs[0], mul.outputs[0]
    if scratch is None:
        return None
    # y over h: only where h dies in the group (the final norm's residual, under an f16 y that is no in-place
    # pair); then the kernel writes h into a scratch buffer that nothing reads after it. At one row too: the
    # block reads its inputs before its barrier, but writes h and y after it in no order between threads
    f16 = _dtype(graph, y) == "f16"
    away = not _alias_ok(graph, addr, [y], [h]) or (f16 and _overlaps(graph, addr, y, h))
    if away and not _dies_in(graph, h, nodes):
        return None
    one_row = _rows(graph, h) == 1   # (any overlap with the inputs is safe: nothing to stage; the norm's rows)
    if one_row and not away:
        return None
    staged = [t for t in dict.fromkeys(add.inputs) if not one_row
              and ((_overlaps(graph, addr, y, t) if f16 else not _alias_ok(graph, addr, [y], [t]))
                   or (not away and not _alias_ok(graph, addr, [h], [t])))]
    if away:
        staged, internal = [*staged, h], (*internal, h)
    return _staged(graph, addr, staged, lambda a: _fused_one(graph, a, nodes, ("ADD", "RMS_NORM", "MUL")), scratch,
                   internal)


def _dies_in(graph: Graph, t: str, nodes) -> bool:
    """Whether nothing outside ``nodes`` reads ``t`` or shares its bytes: a root of no view, not an output
    of the graph, read by the group's nodes alone."""
    ti = graph.tensor_index[t]
    members = {n.id for n in nodes}
    return (graph.tensor(t).kind == "intermediate" and graph.is_root(ti)
            and not any(graph.root[j] == ti and j != ti for j in range(len(graph.tensors)))
            and all(n.id in members for n in graph.nodes if t in n.inputs))


def _product_over_x(graph: Graph, addr, mm) -> bool:
    """Whether the plan put a product's output over an input (an in-place pair, or a view of the same root:
    ``ops.over_inputs``): its kernel would write rows of y while other blocks still read x; node by node, the
    registry copies the input first."""
    y = mm.outputs[0]
    return y in over_inputs(graph, mm) and any(_overlaps(graph, addr, y, t) for t in mm.inputs)


def _mm_add_rms(graph: Graph, addr, nodes, num_sms: int, counter: int, gemv_norm_min: int = 0,
                scratch: Callable[[int], int] | None = None, wgmma: bool = False) -> list[Launch] | None:
    mm, add = nodes[0], nodes[1]
    if add.inputs[0] != mm.outputs[0] or len(mm.inputs) != 2:
        return None
    Wt, xg = mm.inputs
    sw = _shape(graph, Wt)
    if len(sw) != 2 or _dtype(graph, Wt) != "f16" or _dtype(graph, xg) not in ("f32", "f16"):
        return None
    N, K = sw
    M = _numel(_shape(graph, xg)) // K
    mul_mat = mul_mat_f16x_launch if _dtype(graph, xg) == "f16" else product_launch
    if _product_over_x(graph, addr, mm):   # (node by node, where x is copied first)
        return None
    product = addr(mm.outputs[0])
    tail = _fused_one(graph, addr, nodes[1:], ("ADD", "RMS_NORM", "MUL"))
    if tail is None:
        # h or y overlap the product or the residual: the GEMM writes the scratch buffer the add+norm
        # reads, and the residual is read from a copy (``_stage_add_rms``)
        staged = _stage_add_rms(graph, addr, nodes[1:], scratch, internal=(mm.outputs[0],))
        if staged is None:
            return None
        *copies, tail = staged
        return [mul_mat(addr(Wt), addr(xg), tail.args[0], M, N, K, num_sms, wgmma), *copies, tail]
    xa, r, h, w, y, H, nw, eps = tail.args
    nb = tail.block[0]
    # (the GEMV's add+norm epilogue reads f32 x and writes f32 y: not for an f16 x or y, f16_acts or a user's)
    if (counter and M == 1 and K % 8 == 0 and mul_mat is product_launch and tail.kernel == "add_rms_norm4_f32"
            and N == H and nb <= 256 and N * K >= gemv_norm_min
            and _alias_ok(graph, addr, [add.outputs[0]], [xg, add.inputs[1], Wt])):
        rpb = gemv_rows_per_block(N, num_sms)
        one = Launch("gemv_add_rms_f16_f32", (math.ceil(N / rpb), 1, 1), (256, 1, 1),
                     (addr(Wt), addr(xg), r, h, w, y, counter, N, K, rpb, nw, nb, eps))
        if aligned(one):   # (else the product alone takes the naive kernel, ``product_launch``)
            return [one]
    return [mul_mat(addr(Wt), addr(xg), product, M, N, K, num_sms, wgmma), tail]


def _mm_swiglu(graph: Graph, addr, nodes, num_sms: int, wgmma: bool = False,
               scratch: Callable[[int], int] | None = None) -> list[Launch] | None:
    mg, mu, si, mul = nodes
    (Wg, x), (Wu, xu) = mg.inputs, mu.inputs
    if (x != xu or si.inputs[0] != mg.outputs[0] or tuple(mul.inputs) != (si.outputs[0], mu.outputs[0])
            or _shape(graph, Wg) != _shape(graph, Wu) or len(_shape(graph, Wg)) != 2):
        return None
    if any(_dtype(graph, t) != "f16" for t in (Wg, Wu)) or _dtype(graph, x) not in ("f32", "f16"):
        return None
    tail = _fused_one(graph, addr, nodes[2:], ("SILU", "MUL"))
    if tail is None:
        return None
    N, K = _shape(graph, Wg)
    M = _numel(_shape(graph, x)) // K
    y = mul.outputs[0]
    if _product_over_x(graph, addr, mg) or _product_over_x(graph, addr, mu):
        return None
    if _dtype(graph, x) == "f16":   # f16_acts: one pass writing f16 (gemm_ws), or two products and the tail
        if _dtype(graph, y) == "f16" and _f16_out_ok(graph, addr, y, [x]):
            return [swiglu_f16x_launch(addr(Wg), addr(Wu), addr(x), addr(y), M, N, K, num_sms, wgmma)]
        if _dtype(graph, y) == "f16" and scratch is not None:
            # y overlaps x (blocks would write y while others still read x): the pass reads a copy of x made
            # just before on its stream, so every plan of the graph runs the same kernel (issue 16's rule)
            staged = _staged(graph, addr, [x], lambda a: swiglu_f16x_launch(a(Wg), a(Wu), a(x), a(y), M, N, K, num_sms,
                                                                            wgmma), scratch)
            if staged is not None:
                return staged
        return [mul_mat_f16x_launch(addr(Wg), addr(x), addr(mg.outputs[0]), M, N, K, num_sms, wgmma),
                mul_mat_f16x_launch(addr(Wu), addr(x), addr(mu.outputs[0]), M, N, K, num_sms, wgmma), tail]
    if _dtype(graph, y) != "f32":   # the one-pass f32-x kernels write f32 y: two products, then the f16 tail
        return [product_launch(addr(Wg), addr(x), addr(mg.outputs[0]), M, N, K, num_sms, wgmma),
                product_launch(addr(Wu), addr(x), addr(mu.outputs[0]), M, N, K, num_sms, wgmma), tail]
    # rows per block as for one GEMV (then the sums are those of gemv_f16_f32 bit for bit), at least 2
    rpb = max(2, gemv_rows_per_block(N, num_sms))
    gemv = Launch("gemv_swiglu_f16_f32", (math.ceil(2 * N / rpb), 1, 1), (256, 1, 1),
                  (addr(Wg), addr(Wu), addr(x), addr(y), N, K, rpb))
    if M == 1 and K % 8 == 0 and _alias_ok(graph, addr, [y], [x]) and aligned(gemv):
        return [gemv]
    one = gemm_tc_swiglu_launch(addr(Wg), addr(Wu), addr(x), addr(y), M, N, K, num_sms, wgmma=wgmma)
    # (blocks write y while others still read x; operands off 16 bytes: the products take the naive kernel)
    if one is not None and not _overlaps(graph, addr, y, x) and aligned(one):
        return [one]   # both matrices in one pass: the GEMMs' bits then swiglu_f32's
    return [product_launch(addr(Wg), addr(x), addr(mg.outputs[0]), M, N, K, num_sms, wgmma),
            product_launch(addr(Wu), addr(x), addr(mu.outputs[0]), M, N, K, num_sms, wgmma), tail]


def _fused_one(graph: Graph, addr, nodes, ops, num_sms: int = 132) -> Launch | None:
    if ops == ("RMS_NORM", "MUL"):
        a, b = nodes
        # one block per row writes y after a block barrier: any overlap with its own row is safe
        # (the kernel reads f32 w, one copy per row: what binary_f32 would broadcast only if it tiles a row)
        if (len(b.inputs) == 2 and b.inputs[0] == a.outputs[0] and graph.tensor(b.inputs[1]).kind == "weight"
                and _dtype(graph, b.inputs[1]) == "f32" and _dtype(graph, b.outputs[0]) in ("f32", "f16")
                and _shape(graph, a.inputs[0])[-1] % _numel(_shape(graph, b.inputs[1])) == 0
                and broadcast_problem(graph, b.inputs[0], b.inputs[1]) is None
                and (_rows(graph, a.inputs[0]) == 1
                     or _alias_ok(graph, addr, [b.outputs[0]], [a.inputs[0], b.inputs[1]]))):
            ln = _rms_norm(graph, addr, a.inputs[0], b.inputs[1], b.outputs[0])
            if _dtype(graph, b.outputs[0]) != "f16":
                return ln
            # f16 y: the float4 kernel's f16 twin, over several rows never over its input (half-width rows
            # land on rows other blocks still read; one block holds its row in registers before its barrier)
            if ln.kernel != "rms_norm4_f32" or (_rows(graph, a.inputs[0]) > 1
                                                and not _f16_out_ok(graph, addr, b.outputs[0], [a.inputs[0]])):
                return None
            return replace(ln, kernel="rms_norm4_f32_f16")
        return None
    if ops == ("ADD", "RMS_NORM", "MUL"):
        add, nrm, mul = nodes
        x, r = add.inputs
        h, w, y = add.outputs[0], mul.inputs[1], mul.outputs[0]
        if not (nrm.inputs[0] == h and mul.inputs[0] == nrm.outputs[0] and graph.tensor(w).kind == "weight"):
            return None
        # the rows the norm normalises are its input's, h's: x's shape may split the same elements otherwise ([1, 16]
        # added into an h of [2, 8]), and the kernel normalised x's rows of 16 where RMS_NORM takes h's rows of 8
        shp = _shape(graph, h)
        H = shp[-1]
        rows = _numel(shp) // H
        nw = _numel(_shape(graph, w))
        if (_numel(_shape(graph, r)) != _numel(shp) or _numel(_shape(graph, x)) != _numel(shp) or H % 4
                or H // 4 > 4 * 1024 or nw % 4 or H % nw or broadcast_problem(graph, mul.inputs[0], w) is not None):
            return None
        half = _dtype(graph, y) == "f16"   # f16_acts: y feeds products only
        if any(_dtype(graph, t) != "f32" for t in (x, r, h, w)) or _dtype(graph, y) not in ("f32", "f16"):
            return None
        # h and y are written after the block barrier (one block per row: at one row they may overlap the
        # inputs anywhere); y must never overlap h, which outlives the kernel
        if not _alias_ok(graph, addr, [y], [h]) or (rows > 1 and not _alias_ok(graph, addr, [h, y], [x, r, w])):
            return None
        if half and (_overlaps(graph, addr, y, h) or (rows > 1 and not _f16_out_ok(graph, addr, y, [x, r, w]))):
            return None
        block = min(1024, max(32, 32 * math.ceil(H / 16 / 32)))
        ln = Launch("add_rms_norm4_f32_f16" if half else "add_rms_norm4_f32", (rows, 1, 1), (block, 1, 1),
                    (addr(x), addr(r), addr(h), addr(w), addr(y), H, nw, RMS_EPS))
        return ln if aligned(ln) else None   # (float4 rows: node by node, the scalar norm kernel)
    if ops == ("SILU", "MUL"):
        si, mul = nodes
        g, u, y = si.inputs[0], mul.inputs[1], mul.outputs[0]
        n = _numel(_shape(graph, g))
        if mul.inputs[0] != si.outputs[0] or _numel(_shape(graph, u)) != n or _numel(_shape(graph, y)) != n:
            return None
        half = _dtype(graph, y) == "f16"
        if any(_dtype(graph, t) != "f32" for t in (g, u)) or _dtype(graph, y) not in ("f32", "f16"):
            return None
        if not _alias_ok(graph, addr, [y], [g, u]) or (half and not _f16_out_ok(graph, addr, y, [g, u])):
            return None
        return Launch("swiglu_f32_f16" if half else "swiglu_f32", _ew_grid(n), (256, 1, 1), (addr(g), addr(u), addr(y), n))
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
        if cont.inputs[0] != out or _numel(_shape(graph, cont.outputs[0])) != _numel(_shape(graph, out)):
            return None
        out = cont.outputs[0]
    out_f16 = _dtype(graph, out) == "f16"   # f16_acts: the attention output feeds the o projection only
    sk, sv, sq = _shape(graph, Kt), _shape(graph, Vt), _shape(graph, q_in)
    if len(sk) != 3 or len(sq) != 3 or sk != sv or _dtype(graph, Kt) != "f16" or _dtype(graph, Vt) != "f16":
        return None
    n_kv, G, D = sk
    B, heads, Dq = sq
    # the KQV's output holds a row of d per token and head, as its kernel node by node needs (``ops._mul_mat``): the
    # kernel writes B x heads x d values whatever the graph says, so an output [B, heads, d / 2] (or a CONT of one)
    # was written past its bytes, over its arena neighbours, and read back as half of them
    sy = _shape(graph, kqv.outputs[0])
    if (Dq != D or _shape(graph, kq.outputs[0]) != [B, heads, n_kv] or _numel(_shape(graph, mask)) != B * n_kv
            or sy[-1] != D or _numel(sy) != B * heads * D
            # (node by node KQ takes its tokens and heads from q's shape as KQ reads it, KQV from p's: the kernel from q's)
            or _shape(graph, qt) != sq or _shape(graph, sm.outputs[0]) != [B, heads, n_kv]
            or _dtype(graph, q_in) != "f32" or _dtype(graph, mask) != "f32" or _dtype(graph, out) not in ("f32", "f16")):
        return None
    reads = [q_in, Kt, Vt, mask] + ([pos] if pos else [])
    if not _alias_ok(graph, addr, [out], reads) or (out_f16 and not _f16_out_ok(graph, addr, out, reads)):
        return None
    try:   # the head sizes, group and cache lengths some attention kernel takes (attention_launch decides)
        args = (addr(q_in), addr(pos) if pos else 0, addr(Kt), addr(Vt), addr(mask), addr(out),
                B, n_kv, G, heads, D, num_sms)
        ln = attention_launch(*args, out_f16=out_f16)
        if not aligned(ln) and not out_f16 and ln.kernel in ATTN_MMA_NAMES:   # (a q view on 4 bytes, not 8)
            ln = attention_launch(*args, tensor_cores=False)
        return ln
    except KernelError:
        return None
