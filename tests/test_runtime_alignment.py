"""Alignment of the kernels' pointers (CPU only): llama.cu's vector loads and stores (float4, uint4, uint2,
float2, cp.async, TMA) fault on the GPU at an address off their width, and a user's graph may hand a kernel
a view at any byte offset of its root, or a plan of alignment under 16. The registry takes a kernel whose
accesses the addresses allow (the scalar norm, the naive products, a group node by node) or refuses the node
naming the tensor; the runtime's own graphs, at aligned addresses, launch exactly what they did."""

from __future__ import annotations

import numpy as np
import pytest

import memplan
from runtime.emulate import emulate
from runtime.kernels import KernelError, fused, ops
from runtime.models import llama as L
from runtime.step import plan_step, program_at

RNG = np.random.default_rng(7)


def _program(g, plan=None, **kw):
    nxt = iter(range(1 << 44, 1 << 62, 1 << 36))   # device-like addresses, each allocation 2^36 apart
    return program_at(g, plan or memplan.plan(g), lambda n, label: next(nxt), **kw)[0]


def _kernels(g, **kw) -> dict[str, list[str]]:
    prog = _program(g, **kw)
    return {nid: [ln.kernel for ln in lns] for nid, lns in prog.launches.items() if lns}


def _rows(prog, g):
    return [(n.id, ln.kernel, ln.grid, ln.block) for n in g.nodes for ln in prog.launches.get(n.id, ())]


def test_the_runtimes_llama_launches_are_what_they_were(monkeypatch):
    """Every config, batch, serial and multi-stream plan, with and without wgmma: the same kernels, grids
    and blocks as with the alignment rules switched off (their addresses are all aligned), and every launch
    meets its kernel's needs. Switched off is ``ops.aligned`` and ``fused.aligned`` answering True and
    ``ops.misaligned`` None; building each program, every call of them gave that very answer (recorded), so
    the program is, call for call, the one built with them switched off (building it a second time that way
    took half of this test's time)."""
    differed: list[tuple] = []

    def recorded(module, name: str, off):
        real = getattr(module, name)

        def rule(ln):
            got = real(ln)
            if got is not off:
                differed.append((module.__name__, name, ln.kernel, got))
            return got
        monkeypatch.setattr(module, name, rule)

    real_aligned = ops.aligned
    recorded(ops, "aligned", True)
    recorded(fused, "aligned", True)
    recorded(ops, "misaligned", None)
    for name in ("tiny", "1b", "8b"):
        for batch in (1, 16, 32, 64):
            g = L.build_graph(L.config(name, batch))
            for sched in (None, L.multi_stream_schedule(g)):
                p = plan_step(g, sched, batch=batch)
                for wg in (False, True):
                    differed.clear()   # (plan_step's own calls are not the program's: it ran unpatched before)
                    prog = _program(g, p, wgmma=wg)
                    assert not differed, (g.name, sched is None, wg, differed[:3])
                    assert all(real_aligned(ln) for lns in prog.launches.values() for ln in lns)


def test_every_kernel_the_registry_names_has_its_alignment():
    """A kernel without an entry would never be checked."""
    from runtime.kernels.library import SIGNATURES

    launched = set(ops.WRITES)
    assert launched <= set(ops.ALIGN), sorted(launched - set(ops.ALIGN))
    for name, need in ops.ALIGN.items():
        sig = SIGNATURES.get(name)
        if sig is not None:   # (the TMA kernels take tensor maps: no prepared signature)
            assert sig[:len(need)] == "P" * len(need), name
        assert all(n in (1, 2, 4, 8, 16, 32) for n in need), name


def _norm_graph(off: int, *, fused_w: bool, add: bool = False, ydt: str = "f32", H: int = 64, rows: int = 2):
    """x (and r) views at byte offset ``off`` of an input root; RMS_NORM (ADD first with ``add``), MUL by an
    f32 weight when ``fused_w``, in one fusion group."""
    n = rows * H
    b = memplan.GraphBuilder(f"norm-{off}-{fused_w}-{add}-{ydt}")
    b.tensor("xbuf", 4 * n + 64, "input", shape=[n + 16], dtype="f32")
    b.view("x", "xbuf", 4 * n, offset=off, shape=[rows, H], dtype="f32")
    grp = "g" if fused_w or add else None
    src = "x"
    if add:
        b.tensor("r", 4 * n, "input", shape=[rows, H], dtype="f32")
        b.node("a", "ADD", ["x", "r"], b.tensor("h", 4 * n, "output", shape=[rows, H]), group=grp)
        src = "h"
    last = "yo" if fused_w else "xn"
    b.node("n", "RMS_NORM", [src], b.tensor("xn", 4 * n, "intermediate" if fused_w else "output", shape=[rows, H]),
           group=grp)
    if fused_w:
        b.tensor("nw", 4 * H, "weight", shape=[H], dtype="f32")
        eb = {"f32": 4, "f16": 2}[ydt]
        b.node("m", "MUL", ["xn", "nw"], b.tensor("y", eb * n, "intermediate", shape=[rows, H], dtype=ydt), group=grp)
        b.node("c", "CONT", ["y"], b.tensor("yo", eb * n, "output", shape=[rows, H], dtype=ydt))
    return b.build(), last


def _norm_ref(x, r=None, nw=None):
    h = x if r is None else x + r
    y = h / np.sqrt((h.astype(np.float64) ** 2).mean(1, keepdims=True) + 1e-5)
    return y if nw is None else y * nw


@pytest.mark.parametrize("off", [4, 8, 12, 16])
@pytest.mark.parametrize("shape", ["lone", "fused", "fused_f16", "add"])
def test_norms_over_a_view_at_any_word_offset(off, shape):
    """The float4 norm kernels (rms_norm4_f32 and its f16 twin, add_rms_norm4_f32) need x, w and y on 16
    bytes: off them the scalar rms_norm_f32 runs (a group node by node: add+norm's norm then reads the ADD's
    aligned output by float4s); the values are numpy's."""
    g, last = _norm_graph(off, fused_w=shape != "lone", add=shape == "add", ydt="f16" if shape == "fused_f16" else "f32")
    plan = memplan.plan(g, fused_groups=True)   # (no overlap in the group: nothing is staged through scratch)
    flat = [k for v in _kernels(g, plan=plan).values() for k in v]
    if off % 16 and shape == "add":   # node by node: the ADD reads x by words, the norm reads h (aligned)
        assert flat[:3] == ["binary_f32", "rms_norm4_f32", "binary_f32"], flat
    elif off % 16:
        assert "rms_norm_f32" in flat and not any(k.startswith(("rms_norm4", "add_rms")) for k in flat), flat
    else:
        assert any(k.startswith(("rms_norm4", "add_rms")) for k in flat) and "rms_norm_f32" not in flat, flat
    rows, H = 2, 64
    xbuf = RNG.standard_normal(rows * H + 16).astype(np.float32)
    inp = {"xbuf": xbuf}
    w = {}
    x = xbuf[off // 4: off // 4 + rows * H].reshape(rows, H)
    r = nw = None
    if shape == "add":
        inp["r"] = r = RNG.standard_normal((rows, H)).astype(np.float32)
    if shape != "lone":
        w["nw"] = nw = RNG.standard_normal(H).astype(np.float32)
    out = emulate(g, plan, w, inp)[0][last]
    want = _norm_ref(x, r, nw)
    assert np.abs(out - want).max() < (2e-3 if shape == "fused_f16" else 1e-5) * np.abs(want).max()


def test_an_add_norm_group_reading_scratch_copies_is_aligned_by_them():
    """An add+norm group whose outputs the plan overlaps with its inputs reads scratch copies of them
    (``fused._stage_add_rms``): copied by words, the copies (fresh allocations) are aligned, so the float4
    kernel still runs over a view at a word offset; the values are numpy's."""
    g, last = _norm_graph(4, fused_w=True, add=True)
    plan = memplan.plan(g)
    prog = _program(g, plan)
    lns = [ln for lns in prog.launches.values() for ln in lns]
    assert any(ln.kernel == "add_rms_norm4_f32" for ln in lns) and all(ops.aligned(ln) for ln in lns)
    xbuf = RNG.standard_normal(2 * 64 + 16).astype(np.float32)
    r = RNG.standard_normal((2, 64)).astype(np.float32)
    nw = RNG.standard_normal(64).astype(np.float32)
    out = emulate(g, plan, {"nw": nw}, {"xbuf": xbuf, "r": r})[0][last]
    want = _norm_ref(xbuf[1:129].reshape(2, 64), r, nw)
    assert np.abs(out - want).max() < 1e-5 * np.abs(want).max()


def _mm_graph(M: int, xoff: int, woff: int = 0, xdt: str = "f32", N: int = 64, K: int = 64):
    """y = x W^T with x a view at byte ``xoff`` of an input root and W one at byte ``woff`` of a weight root."""
    eb = {"f32": 4, "f16": 2}[xdt]
    b = memplan.GraphBuilder(f"mm-{M}-{xoff}-{woff}-{xdt}")
    b.tensor("xbuf", eb * M * K + 64, "input", shape=[M * K + 64 // eb], dtype=xdt)
    b.view("x", "xbuf", eb * M * K, offset=xoff, shape=[M, K], dtype=xdt)
    b.tensor("wbuf", 2 * N * K + 64, "weight", shape=[N * K + 32], dtype="f16")
    b.view("w", "wbuf", 2 * N * K, offset=woff, kind="weight", shape=[N, K], dtype="f16")
    b.node("mm", "MUL_MAT", ["w", "x"], b.tensor("y", 4 * M * N, "output", shape=[M, N]))
    return b.build()


@pytest.mark.parametrize("M,xdt,NK,sms,wgmma,fast", [(1, "f32", 64, 132, False, "gemv_f16_f32"),
                                                  (8, "f32", 64, 132, False, "gemm_wmma_f16_f32"),
                                                  (8, "f32", 256, 132, False, "gemm_tc_f16_f32"),
                                                  (48, "f32", 1024, 4, True, "gemm_tcg_f16_f32"),
                                                  (40, "f16", 256, 132, True, "gemm_ws_f16x")])
@pytest.mark.parametrize("xoff,woff", [(0, 0), (4, 0), (8, 0), (0, 2), (0, 8), (0, 16), (12, 6)])
def test_products_over_views_at_any_element_offset(M, xdt, NK, sms, wgmma, fast, xoff, woff):
    """The GEMV, gemm_tc (register and wgmma builds: cp.async, TMA) and gemm_ws (TMA) read W and x 16 bytes
    at a time, gemm_wmma's W 32 (load_matrix_sync): off that, the naive kernel of the same x dtype runs; the
    values are numpy's."""
    N = K = NK
    eb = {"f32": 4, "f16": 2}[xdt]
    g = _mm_graph(M, xoff, woff, xdt, N=N, K=K)
    k = _kernels(g, wgmma=wgmma, num_sms=sms)["mm"]
    naive = "gemm_naive_f16x" if xdt == "f16" else "gemm_naive_f16_f32"
    off = xoff % 16 or woff % (32 if fast == "gemm_wmma_f16_f32" else 16)
    assert k == [naive if off else fast], k
    xbuf = RNG.standard_normal(M * K + 64 // eb).astype(np.float16 if xdt == "f16" else np.float32)
    wbuf = (RNG.standard_normal(N * K + 32) * 0.1).astype(np.float16)
    out = emulate(g, memplan.plan(g), {"wbuf": wbuf}, {"xbuf": xbuf}, wgmma=wgmma, num_sms=sms)[0]["y"]
    x = xbuf[xoff // eb: xoff // eb + M * K].reshape(M, K).astype(np.float64)
    W = wbuf[woff // 2: woff // 2 + N * K].reshape(N, K).astype(np.float64)
    want = x @ W.T
    assert np.abs(out - want).max() < 1e-2 * np.abs(want).max()


def _swiglu_graph(M: int, xoff: int, N: int = 64, K: int = 64):
    b = memplan.GraphBuilder(f"swiglu-{M}-{xoff}")
    b.tensor("xbuf", 4 * M * K + 64, "input", shape=[M * K + 16], dtype="f32")
    b.view("x", "xbuf", 4 * M * K, offset=xoff, shape=[M, K], dtype="f32")
    for w in ("wg", "wu"):
        b.tensor(w, 2 * N * K, "weight", shape=[N, K], dtype="f16")

    def act(t):
        return b.tensor(t, 4 * M * N, "intermediate", shape=[M, N])
    b.node("mg", "MUL_MAT", ["wg", "x"], act("g"), group="s")
    b.node("mu", "MUL_MAT", ["wu", "x"], act("u"), group="s")
    b.node("si", "SILU", ["g"], act("ga"), group="s")
    b.node("mul", "MUL", ["ga", "u"], b.tensor("y", 4 * M * N, "output", shape=[M, N]), group="s")
    return b.build()


@pytest.mark.parametrize("M,one", [(1, "gemv_swiglu_f16_f32"), (8, "gemm_tc_swiglu_f16_f32")])
@pytest.mark.parametrize("xoff", [0, 4, 8])
def test_the_gate_up_pass_over_a_view_off_16_bytes_runs_the_naive_products(M, one, xoff):
    """gemv_swiglu_f16_f32 (batch 1) and the gemm_tc SwiGLU pass read x by float4 / cp.async: off 16 bytes
    the two products run naive, then swiglu_f32 (still one group's launches); the values are numpy's."""
    N = K = 256
    g = _swiglu_graph(M, xoff, N=N, K=K)
    plan = memplan.plan(g, fused_groups=True)
    ks = [k for v in _kernels(g, plan=plan).values() for k in v]
    assert ks == (["gemm_naive_f16_f32", "gemm_naive_f16_f32", "swiglu_f32"] if xoff else [one]), ks
    xbuf = RNG.standard_normal(M * K + 16).astype(np.float32)
    w = {k: (RNG.standard_normal((N, K)) * 0.1).astype(np.float16) for k in ("wg", "wu")}
    out = emulate(g, plan, w, {"xbuf": xbuf})[0]["y"]
    x = xbuf[xoff // 4: xoff // 4 + M * K].reshape(M, K).astype(np.float64)
    gs, us = x @ w["wg"].astype(np.float64).T, x @ w["wu"].astype(np.float64).T
    want = gs / (1 + np.exp(-gs)) * us
    assert np.abs(out - want).max() < 1e-2 * np.abs(want).max()


def test_an_element_off_its_own_alignment_is_refused_naming_node_and_tensor():
    """No kernel reads an f32 two bytes past a word (every access would fault): KernelError names the node,
    the tensor, where it sits and what the kernel needs."""
    b = memplan.GraphBuilder("odd")
    b.tensor("buf", 4 * 65, "input", shape=[65], dtype="f32")
    b.view("a", "buf", 4 * 64, offset=2, shape=[64], dtype="f32")
    b.tensor("c", 4 * 64, "input", shape=[64], dtype="f32")
    b.node("add", "ADD", ["c", "a"], b.tensor("y", 4 * 64, "output", shape=[64]))
    g = b.build()
    with pytest.raises(KernelError, match=r"node 'add' \(ADD\): tensor 'a' \(a view at byte offset 2 of 'buf'\) is at "
                                          r"byte offset 2 from a 4-byte boundary; the binary_f32 kernel needs 4-byte"):
        _program(g)
    with pytest.raises(KernelError, match="node 'mm'.*tensor 'x'.*4-byte"):
        _program(_mm_graph(8, 2))
    with pytest.raises(KernelError, match="node 'mm'.*tensor 'x'.*2-byte"):
        _program(_mm_graph(48, 1, xdt="f16"), wgmma=True)
    with pytest.raises(KernelError, match="node 'n'.*tensor 'x'"):   # a lone norm: the scalar kernel's words
        _program(_norm_graph(6, fused_w=False)[0])


def _attn_graph(koff: int, voff: int, B: int = 1, heads: int = 4, G: int = 2, D: int = 64, n_kv: int = 32,
                qoff: int = 0):
    """[ROPE-less] KQ, SOFT_MAX, KQV of q over K and V views of one cache root, as one fusion group."""
    b = memplan.GraphBuilder(f"attn-{koff}-{voff}-{qoff}-{B}")
    kv = 2 * n_kv * G * D
    b.tensor("cache", 2 * kv + 64, "weight", shape=[(2 * kv + 64) // 2], dtype="f16")
    b.view("K", "cache", kv, offset=koff, kind="weight", shape=[n_kv, G, D], dtype="f16")
    b.view("V", "cache", kv, offset=kv + voff if voff >= 0 else 0, kind="weight", shape=[n_kv, G, D], dtype="f16")
    b.tensor("qbuf", 4 * B * heads * D + 64, "input", shape=[B * heads * D + 16], dtype="f32")
    b.view("q", "qbuf", 4 * B * heads * D, offset=qoff, shape=[B, heads, D], dtype="f32")
    b.tensor("mask", 4 * B * n_kv, "input", shape=[B, n_kv], dtype="f32")
    b.node("kq", "MUL_MAT", ["K", "q"], b.tensor("s", 4 * B * heads * n_kv, shape=[B, heads, n_kv]), group="a")
    b.node("sm", "SOFT_MAX", ["s", "mask"], b.tensor("p", 4 * B * heads * n_kv, shape=[B, heads, n_kv]), group="a")
    b.node("kqv", "MUL_MAT", ["V", "p"], b.tensor("o", 4 * B * heads * D, "output", shape=[B, heads, D]), group="a")
    return b.build()


def _attn_ref(cache, qbuf, mask, koff, voff, qoff, B, heads, G, D, n_kv):
    kv = n_kv * G * D
    K = cache[koff // 2: koff // 2 + kv].reshape(n_kv, G, D).astype(np.float64)
    V = cache[kv + voff // 2: kv + voff // 2 + kv].reshape(n_kv, G, D).astype(np.float64)
    q = qbuf[qoff // 4: qoff // 4 + B * heads * D].reshape(B, heads, D).astype(np.float64)
    gi = np.arange(heads) // (heads // G)
    z = np.einsum("bhd,jhd->bhj", q, K[:, gi]) / np.sqrt(D) + mask[:, None, :]
    e = np.exp(z - z.max(-1, keepdims=True))
    return np.einsum("bhj,jhd->bhd", e / e.sum(-1, keepdims=True), V[:, gi])


@pytest.mark.parametrize("B,qoff", [(1, 0), (1, 4), (4, 0), (4, 8), (4, 4), (4, 12)])
def test_attention_over_aligned_caches_and_a_q_at_any_word(B, qoff):
    """A q view at any word: attn_fused reads q by words, attn_mma by pairs (8 bytes): a q on 4 bytes but not
    8 that attn_mma would take runs attn_fused instead, still one kernel; the values are numpy's."""
    heads, G, D, n_kv = 4, 2, 64, 32
    g = _attn_graph(0, 0, B=B, heads=heads, G=G, D=D, n_kv=n_kv, qoff=qoff)
    plan = memplan.plan(g, fused_groups=True)
    ks = [k for v in _kernels(g, plan=plan).values() for k in v]
    assert ks == [ops.ATTN_FUSED[D] if B == 1 or qoff % 8 else "attn_mma_d64w8_f16"], ks
    cache = RNG.standard_normal(2 * n_kv * G * D + 32).astype(np.float16)
    qbuf = RNG.standard_normal(B * heads * D + 16).astype(np.float32)
    mask = np.zeros((B, n_kv), np.float32)
    out = emulate(g, plan, {"cache": cache}, {"qbuf": qbuf, "mask": mask})[0]["o"]
    want = _attn_ref(cache, qbuf, mask, 0, 0, qoff, B, heads, G, D, n_kv)
    assert np.abs(out - want).max() < 1e-2 * np.abs(want).max()


@pytest.mark.parametrize("koff,voff,node,tensor,need", [(0, 8, "kqv", "V", 16), (4, 0, "kq", "K", 8),
                                                        (2, 0, "kq", "K", 8)])
def test_attention_over_a_cache_view_off_16_bytes_is_refused_by_name(koff, voff, node, tensor, need):
    """Every attention kernel reads K and V rows 16 bytes at a time (attn_kq_f16: K by 8): for such a cache
    the group runs node by node, and the node that no kernel computes is named, with its tensor."""
    g = _attn_graph(koff, voff)
    with pytest.raises(KernelError, match=rf"node '{node}' \(MUL_MAT\): tensor '{tensor}' \(a view at byte offset "
                                          rf"\d+ of 'cache'\) is at byte offset \d+ from a {need}-byte boundary; "
                                          rf"the attn_kq"):
        _program(g, memplan.plan(g, fused_groups=True))


def test_attention_over_a_k_view_on_8_bytes_runs_node_by_node():
    """K on 8 bytes but not 16: the fused kernels would fault, attn_kq_f16 reads K rows by 8 bytes: the group
    runs node by node; the values are numpy's."""
    heads, G, D, n_kv = 4, 2, 64, 32
    g = _attn_graph(8, 0)
    plan = memplan.plan(g, fused_groups=True)
    assert _kernels(g, plan=plan) == {"kq": ["attn_kq_f16"], "sm": ["softmax_mask_f32"], "kqv": ["attn_kqv_cl_f16"]}
    cache = RNG.standard_normal(2 * n_kv * G * D + 32).astype(np.float16)
    qbuf = RNG.standard_normal(heads * D + 16).astype(np.float32)
    mask = RNG.standard_normal((1, n_kv)).astype(np.float32)
    out = emulate(g, plan, {"cache": cache}, {"qbuf": qbuf, "mask": mask})[0]["o"]
    want = _attn_ref(cache, qbuf, mask, 8, 0, 0, 1, heads, G, D, n_kv)
    assert np.abs(out - want).max() < 1e-3 * np.abs(want).max()


def test_a_plan_of_word_alignment_runs_the_kernels_its_offsets_allow():
    """alignment 4 (allowed: any power of two): the planner may put a tensor at any word; whatever it chose,
    every launch is aligned as its kernel needs and the step computes numpy's values."""
    b = memplan.GraphBuilder("align4", alignment=4)
    rows, H = 3, 64
    b.tensor("x", 4 * rows * H, "input", shape=[rows, H], dtype="f32")
    b.tensor("r", 4 * rows * H, "input", shape=[rows, H], dtype="f32")
    b.tensor("nw", 4 * H, "weight", shape=[H], dtype="f32")
    b.tensor("pad", 4, "input", shape=[1], dtype="f32")
    b.node("p", "SILU", ["pad"], b.tensor("pad2", 4, "output", shape=[1]))
    b.node("a", "ADD", ["x", "r"], b.tensor("h", 4 * rows * H, "intermediate", shape=[rows, H]), group="g")
    b.node("n", "RMS_NORM", ["h"], b.tensor("hn", 4 * rows * H, "intermediate", shape=[rows, H]), group="g")
    b.node("m", "MUL", ["hn", "nw"], b.tensor("y", 4 * rows * H, "output", shape=[rows, H]), group="g")
    g = b.build()
    plan = memplan.plan(g)
    prog = _program(g, plan)
    assert all(ops.aligned(ln) for lns in prog.launches.values() for ln in lns)
    x, r = RNG.standard_normal((2, rows, H)).astype(np.float32)
    nw = RNG.standard_normal(H).astype(np.float32)
    out = emulate(g, plan, {"nw": nw}, {"x": x, "r": r, "pad": np.ones(1, np.float32)})[0]["y"]
    want = _norm_ref(x, r, nw)
    assert np.abs(out - want).max() < 1e-5 * np.abs(want).max()


def test_executor_read_takes_the_tensors_own_dtype(monkeypatch):
    """``Executor.read`` of an f16 tensor read its bytes as f32 (half as many values, garbage) unless
    ``dtype=np.float16`` was passed: it now reads the tensor's dtype attr (f32 without one)."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    b = memplan.GraphBuilder("cast")
    b.tensor("x", 4 * 64, "input", shape=[64], dtype="f32")
    b.node("c", "CONT", ["x"], b.tensor("y", 2 * 64, "output", shape=[64], dtype="f16"))
    b.node("s", "SILU", ["x"], b.tensor("z", 4 * 64, "output", shape=[64]))
    g = b.build()
    x = RNG.standard_normal(64).astype(np.float32)
    ex = Executor(g, memplan.plan(g), inputs={"x": x})
    ex.run()
    y = ex.read("y")
    assert y.dtype == np.float16 and np.array_equal(y, x.astype(np.float16))
    assert ex.read("z").dtype == np.float32 and ex.read("x").dtype == np.float32
    assert np.array_equal(ex.read("y", np.uint16), x.astype(np.float16).view(np.uint16))   # an explicit dtype wins
    ex.free()


@pytest.mark.parametrize("off", [0, 2, 4])
def test_a_cont_of_f16_off_a_word_is_a_device_copy(off):
    """copy_u32 moves words: an f16 CONT whose input or output is off 4 bytes is a device-to-device copy
    (any alignment) where they do not overlap; the bytes are the input's."""
    b = memplan.GraphBuilder(f"cont-{off}")
    b.tensor("buf", 2 * 64 + 8, "input", shape=[68], dtype="f16")
    b.view("x", "buf", 2 * 64, offset=off, shape=[64], dtype="f16")
    b.node("c", "CONT", ["x"], b.tensor("y", 2 * 64, "output", shape=[64], dtype="f16"))
    g = b.build()
    assert _kernels(g) == {"c": ["memcpy" if off % 4 else "copy_u32"]}
    buf = RNG.standard_normal(68).astype(np.float16)
    out = emulate(g, memplan.plan(g), {}, {"buf": buf})[0]["y"]
    assert np.array_equal(out, buf[off // 2: off // 2 + 64].astype(np.float32))
