"""CPU tests of the runtime: everything that needs no GPU (CI runs these).

- ``import runtime`` and its CPU modules never import pycuda;
- the Llama graphs carry shapes for every tensor; multi-stream schedules verify, and their arena stays
  within 1.05x of the serial plan's (the issue's goal), for the tiny, 1B-like and 8B-like configs;
- the kernel registry maps every node of the step to kernels with the right arguments: the numpy
  emulation of those launches (runtime.emulate), over the planned arena with NaN poison, reproduces
  the independent float64 reference forward — serial and multi-stream plans, batch 1 and 3;
- the reference itself: causal mask, RoPE at position 0 is the identity, GQA head grouping;
- negative controls on the CPU side: an unsafe plan (event removed, serial offsets on 3 streams) is
  rejected by memplan.verify, and the emulation of a plan with an overlapping offset goes wrong;
- fusion (graphs built with ``fuse="runtime"``): every group of the planned 1B/8B batch-1 steps runs as
  one kernel, the emulated fused kernels reproduce the reference, a group that the plan's events would
  break is run node by node, and memplan's default graphs are unchanged by the option;
- the pycuda executor's own code (memory, streams, events, eager issue with poison and jitter, CUDA-graph
  capture and replay, timing) run on a fake driver (``tests/fake_cuda.py``) whose launches are the
  emulator's: the logits are the emulator's bit for bit.
"""

from __future__ import annotations

import functools
import importlib
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_mutators import plan_with_offsets_of, plan_without_event, required_events
from strategies import llama_shapes

import memplan
from memplan.errors import ExecutorError
from memplan.examples import LLAMA_TINY, llama
from runtime.emulate import emulate
from runtime.kernels import (
    ATTN_FUSED_NAMES,
    GEMM_TC_NAMES,
    GEMV_NORM_OFF,
    KernelError,
    gemv_rows_per_block,
    launches_for,
    mul_mat_launch,
    plan_launches,
)
from runtime.kernels import fused as fused_mod
from runtime.models import llama as L
from runtime.step import plan_step, program_at, unfusable_groups

#: the tensor-core matrix kernels (the WMMA one takes the tiny config's matrices, too narrow for gemm_tc)
TC_GEMMS = GEMM_TC_NAMES | {"gemm_wmma_f16_f32"}


def _tiny(batch=1, seed=0, fuse=L.DEFAULT_FUSE, f16_acts=None):
    cfg = L.config("tiny", batch=batch)
    g = L.build_graph(cfg, fuse, f16_acts)
    return cfg, g, L.make_weights(g, cfg, seed=seed), L.make_inputs(cfg, seed=seed + 1)


def test_import_runtime_does_not_import_pycuda():
    code = ("import sys, runtime, runtime.models.llama, runtime.kernels, runtime.executor, runtime.emulate, "
            "runtime.bench, runtime.cuda_core, runtime.cuda_util, runtime.step, runtime.layout, runtime.tools.profile, "
            "runtime.tools.attn_tune, runtime.tools.attn_bench, runtime.tools.gemm_bench, runtime.tools.pdl_check, "
            "runtime.tools.compare_launches; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pycuda', 'torch')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout  # neither pycuda nor torch was imported


@pytest.mark.parametrize("fuse", L.FUSE_MODES)
@pytest.mark.parametrize("name", ["tiny", "1b", "8b"])
@pytest.mark.parametrize("batch", [1, 16])
def test_graph_shapes_and_multi_stream_arena(name, batch, fuse):
    cfg = L.config(name, batch=batch)
    g = L.build_graph(cfg, fuse)
    for t in g.tensors:
        assert "shape" in t.attrs and "dtype" in t.attrs, t.id
        n = int(np.prod(t.attrs["shape"])) * {"f32": 4, "f16": 2, "i32": 4}[t.attrs["dtype"]]
        assert n == t.size, t.id
    serial = memplan.plan(g)
    multi = memplan.plan(g, L.multi_stream_schedule(g))
    memplan.verify(g, multi)
    # (the fused graph runs gate and up as one kernel: no gate/up stream pair, 2 events fewer)
    assert multi.streams == 3 and len(multi.events) == (4 if fuse == "runtime" else 6) * cfg.layers
    assert multi.arena_bytes <= 1.05 * serial.arena_bytes
    # every node gets a kernel (or none for views), with fake addresses
    launches = launches_for(g, lambda tid: 1 << 20, counters=1 << 30)
    absorbed = sum(len(m) - 1 for m in g.groups().values())
    views = sum(n.op in ("VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE", "NONE") for n in g.nodes)
    # above batch 1, a group that starts with MUL_MATs runs them as GEMMs, then one kernel
    gemms = sum(g.nodes[i].op == "MUL_MAT" for m in g.groups().values() if g.nodes[m[0]].op == "MUL_MAT" for i in m)
    assert sum(len(x) for x in launches) == len(g.nodes) - absorbed - views + (gemms if batch > 1 else 0)
    assert len(g.groups()) == (2 * cfg.layers + 1 if fuse == "norms" else 5 * cfg.layers + 1)


def test_llama_1b_config_is_the_issue_shape():
    c = L.config("1b")
    assert (c.layers, c.hidden, c.heads, c.kv_heads, c.ffn) == (16, 2048, 32, 8, 8192)
    c8 = L.config("8b")
    assert (c8.layers, c8.hidden, c8.ffn) == (32, 4096, 14336)


@pytest.mark.parametrize("fuse", L.FUSE_MODES)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("streams", ["serial", "multi"])
@pytest.mark.parametrize("gemv_norm", [False, True])
def test_emulated_kernels_match_reference(batch, streams, fuse, gemv_norm):
    cfg, g, w, inp = _tiny(batch, fuse=fuse)
    ref, ref_caches = L.reference_forward(cfg, w, inp)
    plan = memplan.plan(g) if streams == "serial" else memplan.plan(g, L.multi_stream_schedule(g))
    out, mem, addr = emulate(g, plan, w, inp, gemv_norm_min=0 if gemv_norm else GEMV_NORM_OFF)
    tol = 1e-5 if batch == 1 else 5e-3  # batch > 1 takes the tensor-core path (activations rounded to f16)
    assert L.rel_err(out["logits"], ref) < tol
    for li in range(cfg.layers):
        tid = f"l{li}.k_cache"
        got = mem.view(addr[tid], ref_caches[tid].size, np.float16).reshape(ref_caches[tid].shape)
        assert L.rel_err(got[cfg.ctx:cfg.ctx + batch], ref_caches[tid][cfg.ctx:cfg.ctx + batch]) < 10 * tol


@settings(max_examples=60, deadline=None, derandomize=True)
@given(shape=llama_shapes(), batch=st.integers(1, 64),
       fuse=st.sampled_from(L.FUSE_MODES), wgmma=st.booleans(), sms=st.sampled_from([132, 66, 8]))
def test_emulated_random_llama_shapes_match_reference(shape, batch, fuse, wgmma, sms):
    """Llama steps off the named configs (odd head sizes, grouped queries, ragged FFN widths and vocabularies,
    an empty cache, batches 1-64) on whatever launches the registry picks for the device's SMs and
    features: within tolerance of the float64 reference, and the 3-stream plan's bits equal the serial
    plan's. (Shapes the kernels cannot take, head sizes off multiples of 8, are not drawn: the registry
    refuses them by name, ``test_head_sizes_the_kernels_cannot_take_are_a_kernel_error``.)"""
    cfg = L.config("tiny", batch=batch, **shape)
    g = L.build_graph(cfg, fuse)
    w, inp = L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)
    ref = L.reference_forward(cfg, w, inp)[0]
    outs = [emulate(g, plan_step(g, sched, batch=batch), w, inp, wgmma=wgmma, num_sms=sms)[0]["logits"]
            for sched in (None, L.multi_stream_schedule(g))]
    assert L.rel_err(outs[0], ref) < (1e-4 if batch == 1 else 5e-3), shape
    assert np.array_equal(outs[0], outs[1]), shape


_HOPPER_BATCHES = (4, 16, 40)


def _hopper_cfg(batch):
    return L.config("tiny", batch=batch, hidden=2048, heads=32, kv_heads=8, ffn=8192, vocab=1000, ctx=9, layers=1)


@functools.lru_cache(maxsize=1)
def _hopper_weights_at_the_largest_batch() -> dict:
    """``make_weights`` of the Hopper test's 1B layer at its largest batch, made once for its three batches (3 x 27M
    random floats were most of each case's CPU time); ``_at_batch`` cuts them to each batch."""
    cfg = _hopper_cfg(max(_HOPPER_BATCHES))
    return L.make_weights(L.build_graph(cfg, "runtime"), cfg, seed=3)


def _at_batch(weights: dict, cfg) -> dict:
    """``make_weights(build_graph(cfg), cfg, seed)`` from the same call at a larger batch: only the KV caches' row
    count depends on the batch (``ctx + batch``), their rows past ``ctx`` are zero and the random draws do not depend
    on it (``test_weights_cut_to_a_smaller_batch_are_make_weights_at_it``). Fresh cache arrays (the step writes
    them); the matrices are shared, read only."""
    rows = cfg.ctx + cfg.batch
    return {k: (v[:rows].copy() if k.endswith("_cache") else v) for k, v in weights.items()}


@pytest.mark.parametrize("fuse", L.FUSE_MODES)
def test_weights_cut_to_a_smaller_batch_are_make_weights_at_it(fuse):
    """What lets the Hopper test share its weights: bit for bit ``make_weights`` at the smaller batch (on the tiny
    config at 1 and 3 rows, two layers, GQA), and the caches are copies, so one case's step writes reach no other."""
    small, big = L.config("tiny", batch=1), L.config("tiny", batch=3)
    want = L.make_weights(L.build_graph(small, fuse), small, seed=3)
    bigger = L.make_weights(L.build_graph(big, fuse), big, seed=3)
    got = _at_batch(bigger, small)
    assert sorted(got) == sorted(want) and any(k.endswith("_cache") for k in want)
    for k in want:
        assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k
        if k.endswith("_cache"):
            assert bigger[k].shape[0] > got[k].shape[0] and not np.shares_memory(got[k], bigger[k]), k


@pytest.mark.parametrize("batch", _HOPPER_BATCHES)
def test_emulated_hopper_kernels_match_reference(batch):
    """One layer of the 1B with the registry's Hopper choices (``wgmma``): the down projection in 16 K splits at
    4 and 16 rows (fused with its add+norm), the wgmma build at 40; serial and 3-stream plans from
    ``plan_step``, within the tensor cores' tolerance of the float64 reference, with the same kernels."""
    cfg = _hopper_cfg(batch)
    g = L.build_graph(cfg, "runtime")
    w, inp = _at_batch(_hopper_weights_at_the_largest_batch(), cfg), L.make_inputs(cfg, seed=4)
    ref = L.reference_forward(cfg, w, inp)[0]
    plans = {"serial": plan_step(g, batch=batch), "multi": plan_step(g, L.multi_stream_schedule(g), batch=batch)}
    kernels = {}
    for name, plan in plans.items():
        out, _, _ = emulate(g, plan, w, inp, wgmma=True)
        assert L.rel_err(out["logits"], ref) < 5e-3, name
        top = [1 << 40]

        def alloc(n: int, _label: str, top=top) -> int:   # distinct 256-aligned stand-in addresses
            top[0] += (n + 511) // 256 * 256
            return top[0]
        prog, _addr = program_at(g, plan, alloc, wgmma=True)
        kernels[name] = sorted(ln.kernel for lns in prog.launches.values() for ln in lns)
    assert kernels["serial"] == kernels["multi"]
    # 17-64 tokens: f16 activations into the products (gemm_ws, the SwiGLU pass writing f16 for down)
    want = ["gemm_tc16m_f16_f32"] if batch <= 16 else ["gemm_ws_f16x", "gemm_ws2_swiglu_f16x", "add_rms_norm4_f32_f16"]
    assert set(want) <= set(kernels["serial"]), kernels["serial"]


def test_emulation_detects_overlapping_offsets():
    """The CPU check can fail: move one live tensor onto another and the logits go wrong."""
    cfg, g, w, inp = _tiny(1)
    plan = memplan.plan(g)
    ref, _ = L.reference_forward(cfg, w, inp)
    offs = plan.offsets()
    # l0.k and its views (l0.k3) moved together: a view left behind is refused by name (runtime.binding.check_views)
    moved = {t.id for i, t in enumerate(g.tensors) if g.tensors[g.root[i]].id == "l0.k"}
    delta = offs["l0.xa"] - offs["l0.k"]
    bad = tuple((t, o + delta if t in moved else o, s) for t, o, s in plan.tensors)
    with pytest.raises(memplan.UnsafePlan, match=r"rule 3: tensors 'l0\.xa' and 'l0\.k' overlap"):
        memplan.verify(g, replace(plan, tensors=bad))
    out, _, _ = emulate(g, replace(plan, tensors=bad), w, inp)
    assert not L.rel_err(out["logits"], ref) < 1e-3


def test_reference_semantics():
    cfg, g, w, inp = _tiny(3)
    m = inp["mask"]
    assert m.shape == (3, cfg.ctx + 3)
    assert np.isneginf(m[0, cfg.ctx + 1:]).all() and (m[2] == 0).all()
    x = np.random.default_rng(0).standard_normal((1, 2, 8))
    assert np.allclose(L._rope(x, np.array([0])), x)
    r = L._rope(x, np.array([5]))
    assert np.allclose(np.linalg.norm(r.reshape(1, 2, 4, 2), axis=-1), np.linalg.norm(x.reshape(1, 2, 4, 2), axis=-1))
    # changing a token's own new key changes its logits; changing a masked-out (future) row does not
    logits, _ = L.reference_forward(cfg, w, inp)
    inp2 = dict(inp, inp=inp["inp"].copy())
    inp2["inp"][2] += 1.0
    logits2, _ = L.reference_forward(cfg, w, inp2)
    assert np.allclose(logits[:2], logits2[:2]) and not np.allclose(logits[2], logits2[2])


def test_unsafe_plans_are_rejected():
    cfg, g, _, _ = _tiny(1)
    serial = memplan.plan(g)
    multi = memplan.plan(g, L.multi_stream_schedule(g))
    req = list(required_events(g, multi))
    assert ("l0.set_k", "l0.kq") in req and len(req) == len(multi.events)
    said = r"rule 2: node 'l0\.kq' reads '[^']+' but its writer 'l0\.set_k' does not happen-before"
    with pytest.raises(memplan.UnsafePlan, match=said):
        memplan.verify(g, plan_without_event(multi, ("l0.set_k", "l0.kq")))
    with pytest.raises(memplan.UnsafePlan, match=r"rule 3: tensors '[^']+' and '[^']+' overlap in the arena"):
        memplan.verify(g, plan_with_offsets_of(multi, serial))
    with pytest.raises(ValueError):
        plan_without_event(multi, ("nope", "l0.kq"))


def test_registry_choices_and_errors():
    assert mul_mat_launch(1, 2, 3, 1, 4096, 4096).kernel == "gemv_f16_f32"
    # up to 16 rows, a matrix neither wide nor small: 32 x 32 warp tiles in 4-warp blocks, K split as far as
    # two blocks per SM allow (32 tiles x 8 = 256 <= 264)
    for M in (2, 8, 16):
        mid = mul_mat_launch(1, 2, 3, M, 4096, 4096)
        assert mid.kernel == "gemm_tc8m_f16_f32" and mid.block[0] == 128 and mid.grid[0] == 256, (M, mid)
    assert mul_mat_launch(1, 2, 3, 16, 4096, 4096, 114).kernel == "gemm_tc4m_f16_f32"   # 256 > 2 x 114
    # ... unless even the most splits leave SMs idle (K/V: 8 tiles x 8 = 64 blocks): the narrow build
    narrow = mul_mat_launch(1, 2, 3, 16, 1024, 4096)
    assert narrow.kernel == "gemm_tc8_f16_f32" and narrow.grid[0] >= 0.9 * 132   # (nearly) every SM streams
    # above 16 rows, matrices that are not wide take the narrow build in groups of 16 rows (a block per
    # weight tile, group and cluster rank)
    for M, N in ((17, 4096), (64, 4096), (64, 1024), (40, 2048)):
        grouped = mul_mat_launch(1, 2, 3, M, N, 4096)
        cl = int(grouped.kernel.split("_")[1][2:] or 1)
        assert grouped.kernel in GEMM_TC_NAMES and grouped.kernel[-10] in "c2468", (M, N)
        assert grouped.grid[0] == N // (grouped.block[0] // 2) * cl * -(-M // 16), (M, N)
    # wide ones (3 16-row tiles per SM) 32 weight rows per warp: x 32 rows at a time ("m"), or on the widest
    # (6 32-row tiles per SM) all 64 ("t")
    assert mul_mat_launch(1, 2, 3, 33, 14336, 4096).kernel == "gemm_tcm_f16_f32"
    assert mul_mat_launch(1, 2, 3, 33, 14336, 4096).grid[0] == 14336 // 256 * 2   # two groups, >= 0.8 x 132
    assert mul_mat_launch(1, 2, 3, 32, 14336, 4096).kernel == "gemm_tc2m_f16_f32"  # 56 blocks: split in two
    for M in (17, 32):
        assert mul_mat_launch(1, 2, 3, M, 128256, 4096).kernel == "gemm_tcm_f16_f32"
    for M in (33, 64):
        assert mul_mat_launch(1, 2, 3, M, 128256, 4096).kernel == "gemm_tct_f16_f32"
        assert mul_mat_launch(1, 2, 3, M, 6400, 4096).kernel.endswith("m_f16_f32")   # 400 tiles >= 3 x 132
    # the 32-row builds need whole 4-warp tiles (128 weight rows): a wide matrix of 64-row tiles takes the
    # narrow groups
    odd = mul_mat_launch(1, 2, 3, 64, 64 * 99, 4096)
    assert odd.kernel in GEMM_TC_NAMES and odd.kernel[-10] in "c2468", odd
    assert mul_mat_launch(1, 2, 3, 16, 128256, 4096).kernel == "gemm_tcm_f16_f32"   # LM heads: 32 rows per warp
    assert mul_mat_launch(1, 2, 3, 16, 14336, 4096).kernel == "gemm_tc_f16_f32"
    assert mul_mat_launch(1, 2, 3, 16, 96, 64).kernel == "gemm_wmma_f16_f32"   # no gemm_tc tile fits 96 rows
    assert mul_mat_launch(1, 2, 3, 16, 4095, 4096).kernel == "gemm_naive_f16_f32"
    assert mul_mat_launch(1, 2, 3, 65, 4096, 4096).kernel == "gemm_naive_f16_f32"
    assert gemv_rows_per_block(512, 132) == 1 and gemv_rows_per_block(128256, 132) == 8
    assert gemv_rows_per_block(14336, 132) == 8 and gemv_rows_per_block(4096, 132) == 8
    assert gemv_rows_per_block(1024, 132) == 2 and gemv_rows_per_block(2048, 132) == 4
    assert gemv_rows_per_block(32000, 132) == 8 and gemv_rows_per_block(8192, 132) == 8
    b = memplan.GraphBuilder("bad")
    b.input("x", 16, shape=[4], dtype="f32")
    b.node("n", "FROB", ["x"], b.output("y", 16, shape=[4], dtype="f32"))
    with pytest.raises(KernelError, match="'n'"):
        launches_for(b.build(), lambda t: 0)


def test_schedules_hand_and_optimize():
    cfg, g, _, _ = _tiny(1)
    s = L.multi_stream_schedule(g, "hand")
    assert s.num_streams == 3
    o = L.multi_stream_schedule(g, "optimize")
    assert o.num_streams > 1
    memplan.verify(g, memplan.plan(g, o))
    with pytest.raises(ExecutorError, match="unknown schedule method 'nope'"):
        L.multi_stream_schedule(g, "nope")


def _addresses(g, plan):
    """Executor-like addresses without a GPU: arena base + plan offset; weights apart."""
    offs, wptr, addr, nxt = plan.offsets(), {}, {}, 1 << 44
    for t in g.tensors:
        if t.kind == "weight" and t.view_of is None:
            wptr[t.id] = nxt
            nxt += t.size + 4096
    for ti, t in enumerate(g.tensors):
        root = g.tensors[g.root[ti]]
        if root.kind == "weight":
            addr[t.id] = wptr[root.id] + g.offset_in_root(ti)
        else:
            addr[t.id] = (1 << 40) + offs[t.id]
    return addr


@pytest.mark.parametrize("name", ["tiny", "1b", "8b"])
def test_every_group_fuses_at_batch_1(name):
    """The planned batch-1 steps run every fusion group as one kernel: 9 launches per layer instead of 21."""
    cfg = L.config(name)
    g = L.build_graph(cfg, "runtime")
    for plan in (memplan.plan(g), memplan.plan(g, L.multi_stream_schedule(g))):
        assert not unfusable_groups(g, plan)
        per_node, fused = plan_launches(g, _addresses(g, plan).__getitem__, counters=1 << 30)
        assert len(fused) == len(g.groups())
        assert sum(map(len, per_node)) == 9 * cfg.layers + 2
        kernels = {ln.kernel for lns in per_node for ln in lns}
        assert {"gemv_add_rms_f16_f32", "gemv_swiglu_f16_f32", "rope_set_rows_f16"} <= kernels
        assert kernels & ATTN_FUSED_NAMES
        assert not kernels & {"attn_kq_f16", "softmax_mask_f32", "silu_f32", "rope_f32", "copy_u32",
                              "add_rms_norm4_f32", "binary_f32", "swiglu_f32"}
        counters = [ln.args[6] for lns in per_node for ln in lns if ln.kernel == "gemv_add_rms_f16_f32"]
        assert len(set(counters)) == len(counters) == 2 * cfg.layers   # one counter per fused launch


def test_fused_emulation_close_to_unfused():
    outs = {}
    for fuse in L.FUSE_MODES:
        cfg, g, w, inp = _tiny(1, seed=3, fuse=fuse)
        outs[fuse] = emulate(g, memplan.plan(g, L.multi_stream_schedule(g)), w, inp)[0]["logits"]
    assert L.rel_err(outs["runtime"], outs["norms"]) < 1e-5


def test_group_broken_by_plan_events_runs_unfused():
    """An event out of a group's first member to a node issued before the group's last member: the group
    cannot be one kernel launched on its last member, so it runs node by node."""
    b = memplan.GraphBuilder("g")
    b.input("x", 16, shape=[4], dtype="f32")
    b.node("a", "SILU", ["x"], b.intermediate("t", 16, shape=[4], dtype="f32"), group="G")
    b.node("c", "MUL", ["t", "x"], b.intermediate("v", 16, shape=[4], dtype="f32"), group="G")
    b.node("side", "SILU", ["t"], b.intermediate("u", 16, shape=[4], dtype="f32"))
    b.node("j", "ADD", ["u", "v"], b.output("y", 16, shape=[4], dtype="f32"))
    g = b.build()
    streams = {"a": 0, "side": 1, "c": 0, "j": 0}
    plan = memplan.plan(g, memplan.schedule_with_events(g, ["a", "side", "c", "j"], streams))
    assert ("a", "side") in plan.events and unfusable_groups(g, plan) == {"G"}
    per_node, fused = plan_launches(g, _addresses(g, plan).__getitem__, no_fuse=unfusable_groups(g, plan))
    assert not fused
    assert [ln.kernel for lns in per_node for ln in lns] == ["silu_f32", "binary_f32", "silu_f32", "binary_f32"]
    # without that event the group could launch on its last member, but ``side`` reads ``t``, which the one
    # SILU+MUL kernel never writes: it still runs node by node (groups that fuse: tests/test_binding.py)
    plan2 = memplan.plan(g, memplan.schedule_with_events(g, ["a", "c", "side", "j"], streams))
    assert not unfusable_groups(g, plan2)
    per_node, fused = plan_launches(g, _addresses(g, plan2).__getitem__)
    assert not fused and [ln.kernel for ln in per_node[0]] == ["silu_f32"]
    g2 = memplan.Graph(g.name, g.tensors, tuple(replace(n, inputs=("x",)) if n.id == "side" else n for n in g.nodes),
                       g.alignment)
    plan3 = memplan.plan(g2, memplan.schedule_with_events(g2, ["a", "c", "side", "j"], streams))
    per_node, fused = plan_launches(g2, _addresses(g2, plan3).__getitem__)
    assert fused == {1: (0, 1)} and per_node[0] == [] and per_node[1][0].kernel == "swiglu_f32"


def test_fuse_option_keeps_default_graphs():
    """memplan's default graphs do not change: fuse="norms" is the default; "runtime" only adds groups and
    reorders the cache writes before Q's ROPE (same nodes, tensors and data dependencies)."""
    base = llama(LLAMA_TINY)
    assert base.to_dict() == llama(LLAMA_TINY, fuse="norms").to_dict()
    rt = llama(LLAMA_TINY, fuse="runtime")
    assert {n.id: (n.op, n.inputs, n.outputs) for n in base.nodes} == {n.id: (n.op, n.inputs, n.outputs) for n in rt.nodes}
    assert {t.id: (t.size, t.kind, t.view_of) for t in base.tensors} == {t.id: (t.size, t.kind, t.view_of) for t in rt.tensors}
    assert llama(LLAMA_TINY, fuse_norms=False, fuse="runtime").to_dict() == llama(LLAMA_TINY, fuse_norms=False).to_dict()
    with pytest.raises(ValueError, match="fuse"):
        llama(LLAMA_TINY, fuse="all")


def _pre_round51_planner(monkeypatch) -> None:
    """memplan's planner as it was before round 51: in-place outputs over any byte of their input's root, shifted
    too (the contract allows such plans; the runtime must still run them, staging copies)."""
    import memplan.solvers as solvers
    from memplan.solvers import exact_pairs

    monkeypatch.setattr(solvers, "shifted_pairs", lambda *_a: [])
    monkeypatch.setattr(solvers, "strict_pairs", lambda problem: problem)
    # and before round 53, whose greedy/size put an in-place partner exactly on its input or apart in the first pass
    monkeypatch.setattr(exact_pairs.ExactOrApart, "of", classmethod(lambda cls, *_a, **_k: None))
    # whose auto also kept a heuristic plan with every pair in place over a smaller one shifting a pair
    monkeypatch.setattr(importlib.import_module("memplan.solvers.auto"), "keeps_pairs", lambda *_a: True)


@pytest.mark.parametrize("fuse", L.FUSE_MODES)
def test_shifted_inplace_output_reads_a_staged_copy(fuse, monkeypatch):
    """The planner may start an in-place output inside its input at another address (tiny batch 16:
    ``l0.down`` and ``l0.out`` of the residual ADD). An element-wise kernel would then overwrite input
    elements other threads still have to read, so the registry copies the input to scratch first; the
    emulation of the staged launches still reproduces the reference. In the fused graph the ADD belongs to
    an add+norm group: that group still runs as one kernel, its GEMM writing the scratch buffer the add+norm
    kernel reads (issue 16: the kernels do not depend on the plan's offsets)."""
    cfg, g, w, inp = _tiny(16, fuse=fuse)
    # a plan the default solver made before it joined in-place pairs (``solvers.rejoin``) shifts this one
    import memplan.solvers.rejoin as rejoin
    monkeypatch.setattr(rejoin, "REJOIN_WORK", -1)
    _pre_round51_planner(monkeypatch)
    plan = memplan.plan(g)
    addr = _addresses(g, plan)
    shifted = [n.id for n in g.nodes for o, i in n.inplace
               if addr[o] != addr[i] and addr[o] < addr[i] + g.tensor(i).size and addr[i] < addr[o] + g.tensor(o).size]
    assert "l0.res2" in shifted
    bufs = []

    def scratch(nbytes):
        bufs.append(nbytes)
        return (1 << 50) + 4096 * len(bufs)

    plain = launches_for(g, addr.__getitem__)
    staged = launches_for(g, addr.__getitem__, scratch=scratch)
    ni = g.node_index["l0.res2"]
    assert [ln.kernel for ln in plain[ni]] == ["binary_f32"]
    if fuse == "norms":
        copy, op = staged[ni]
        assert copy.kernel == "copy_u32" and copy.args[0] == addr["l0.down"] and copy.args[1] >= 1 << 50
        assert op.args[0] == copy.args[1] and op.args[2] == addr["l0.out"]
    else:
        assert staged[ni] == [] and ni in _absorbed(g, addr)   # node by node without scratch, fused with it
        last = g.node_index["l1.norm_w"]
        assert g.nodes[ni].group == g.nodes[last].group and last not in _absorbed(g, addr, staged=False)
        gemm, norm = staged[last]
        assert gemm.kernel in TC_GEMMS and gemm.args[2] >= 1 << 50
        assert norm.kernel == "add_rms_norm4_f32" and norm.args[0] == gemm.args[2] and norm.args[2] == addr["l0.out"]
    assert len(bufs) == len(set(shifted) - {g.nodes[m].id for m in _absorbed(g, addr, staged=False)})
    ref, _ = L.reference_forward(cfg, w, inp)
    out, _, _ = emulate(g, plan, w, inp)
    assert L.rel_err(out["logits"], ref) < 5e-3


@pytest.mark.parametrize("f16_acts", [False, True])
def test_overlapped_add_norm_group_reads_a_copied_residual(f16_acts, monkeypatch):
    """Tiny batch 32, 3-stream plan: an add+norm group whose output overlaps its residual input (another
    address) still fuses, reading a scratch copy of the residual made just before on its stream; the
    emulation gives the serial plan's bits, in the plan's order and in random orders, and the reference.
    With f16 activations (the runtime's graph at 17-64 tokens) the same, the norm writing f16."""
    cfg, g, w, inp = _tiny(32, seed=2, fuse="runtime", f16_acts=f16_acts)
    _pre_round51_planner(monkeypatch)   # (memplan's plans overlap such pairs only exactly since round 51)
    multi = memplan.plan(g, L.multi_stream_schedule(g))
    addr = _addresses(g, multi)
    bufs = []
    per_node, fused = plan_launches(g, addr.__getitem__, scratch=lambda n: bufs.append(n) or (1 << 50) + 8192 * len(bufs))
    assert len(fused) == len(g.groups())
    norm = "add_rms_norm4_f32_f16" if f16_acts else "add_rms_norm4_f32"
    gemms = TC_GEMMS | {"gemm_naive_f16x"}   # (no wgmma here: the f16-x product is the naive one)
    staged = [lns for lns in per_node if [ln.kernel for ln in lns][1:] == ["copy_u32", norm]
              and lns[0].kernel in gemms]
    assert staged
    for gemm, copy, norm in staged:
        assert copy.args[1] >= 1 << 50 and norm.args[1] == copy.args[1] and norm.args[0] == gemm.args[2]
    want = emulate(g, memplan.plan(g), w, inp)[0]["logits"]
    for seed in (None, 0, 1, 2):
        assert np.array_equal(emulate(g, multi, w, inp, seed=seed)[0]["logits"], want), seed
    assert L.rel_err(want, L.reference_forward(cfg, w, inp)[0]) < 5e-3


@pytest.mark.parametrize("batch, shift", [(32, 0), (32, 256), (1, 0)])
def test_final_norm_writes_f16_over_its_dying_residual(batch, shift):
    """An f16 ``fa`` (f16_acts graphs) that a plan puts over the final residual (its last reader is the final
    norm, in ``fa``'s own group: safe by the contract, and what a planner may do) at the same address or
    partly over it: the group still runs as one kernel, writing the residual into a scratch buffer nothing
    reads (its f16 rows would land on residual rows other blocks still read; at one row the block's threads
    write h and y after its barrier in no order); the emulation gives the serial plan's bits. A residual
    that a later node reads is never sent away. (At one row the 8B's serial one-GPU plan of
    ``llama(f16_acts=True)`` ran this group node by node, its 3-device split as one kernel.)"""
    cfg, g, w, inp = _tiny(batch, seed=3, fuse="runtime", f16_acts=True)
    last = f"l{cfg.layers - 1}.out"
    base = memplan.plan(g)
    offs = base.offsets()
    end = -(-base.arena_bytes // 256) * 256   # (the logits apart, so that only fa moves onto the residual)
    at = {"fa": offs[last] + shift, "logits": end}
    tensors = tuple((tid, at.get(tid, off), size) for tid, off, size in base.tensors)
    plan = replace(base, tensors=tensors, arena_bytes=end + g.tensor("logits").size)
    memplan.verify(g, plan)
    addr = _addresses(g, plan)
    bufs = []
    per_node, fused = plan_launches(g, addr.__getitem__, scratch=lambda n: bufs.append(n) or (1 << 50) + 8192 * len(bufs))
    assert g.node_index["out_norm_w"] in fused
    if batch > 1:   # (one row of f16 attention output has no fused kernel: node by node in every plan)
        assert len(fused) == len(g.groups())
    lns = per_node[g.node_index["out_norm_w"]]
    norm = lns[-1]
    assert norm.kernel == "add_rms_norm4_f32_f16" and norm.args[4] == addr["fa"]
    assert norm.args[2] >= 1 << 50 and norm.args[2] != addr[last]   # the residual sent to scratch
    assert "copy_u32" not in [ln.kernel for ln in lns]                # and nothing copied into it
    want = emulate(g, base, w, inp)[0]["logits"]
    assert np.array_equal(emulate(g, plan, w, inp)[0]["logits"], want)
    # (a layer's residual outlives its group: never sent away)
    h = "l0.out"
    assert not fused_mod._dies_in(g, h, [g.nodes[m] for m in g.groups()["l0.res2_f"]])
    assert fused_mod._dies_in(g, last, [g.nodes[m] for m in g.groups()[g.nodes[g.node_index["out_norm_w"]].group]])


@pytest.mark.parametrize("batch, shift", [(32, 0), (32, 256), (1, 0)])
def test_final_norm_group_fuses_under_an_f16_output_over_its_input(batch, shift):
    """Norm fusion only (``fuse="norms"``, f16 activations): a plan that puts the f16 ``fa`` over the final
    residual, the norm's input x, which dies in the group. Over several rows the norm kernel reads a copy of
    x (its half-width rows of y would land on rows of x other blocks still read); at one row it reads x
    itself (the block holds its row in registers before its barrier); either way the group runs as one
    kernel, as in the plans that keep them apart, and the emulation gives the serial plan's bits. (The 8B's
    serial one-GPU plan ran it node by node and its 3-device split as one kernel.)"""
    cfg, g, w, inp = _tiny(batch, seed=3, fuse="norms", f16_acts=True)
    last = f"l{cfg.layers - 1}.out"
    base = memplan.plan(g)
    offs = base.offsets()
    end = -(-base.arena_bytes // 256) * 256
    at = {"fa": offs[last] + shift, "logits": end}
    plan = replace(base, tensors=tuple((tid, at.get(tid, off), size) for tid, off, size in base.tensors),
                   arena_bytes=end + g.tensor("logits").size)
    memplan.verify(g, plan)
    addr = _addresses(g, plan)
    bufs = []
    per_node, fused = plan_launches(g, addr.__getitem__, scratch=lambda n: bufs.append(n) or (1 << 50) + 8192 * len(bufs))
    assert g.node_index["out_norm_w"] in fused
    lns = per_node[g.node_index["out_norm_w"]]
    assert lns[-1].kernel == "rms_norm4_f32_f16" and lns[-1].args[2] == addr["fa"]
    if batch > 1:
        assert [ln.kernel for ln in lns] == ["copy_u32", "rms_norm4_f32_f16"]
        assert lns[0].args[:2] == (addr[last], lns[-1].args[0]) and lns[-1].args[0] >= 1 << 50
    else:
        assert len(lns) == 1 and lns[0].args[0] == addr[last]
    want = emulate(g, base, w, inp)[0]["logits"]
    assert np.array_equal(emulate(g, plan, w, inp)[0]["logits"], want)


@pytest.mark.parametrize("f16_acts", [False, True])
def test_a_norm_group_run_node_by_node_sums_as_its_fused_kernel(f16_acts):
    """Issue 16: a lone RMS_NORM (a norm group run node by node) uses the float4 kernel at the block size of
    the fused add+norm and norm kernels, so its sum of squares runs in their order (it used the scalar
    kernel, 1024 threads at 8B sizes: a group that fused in one plan and not in another gave other bits).
    With f16 activations the norm's MUL rounds to f16 as the fused kernel's f16 twin does."""
    cfg = L.config("8b", batch=32)
    g = L.build_graph(cfg, "runtime", f16_acts)
    plan = memplan.plan(g)
    addr = _addresses(g, plan).__getitem__
    fused = plan_launches(g, addr, scratch=lambda n: 1 << 50)[0]
    alone = plan_launches(g, addr, no_fuse=frozenset({"l16.res2_f"}))[0]
    (norm,) = alone[g.node_index["l17.norm"]]
    gemm, add_norm = fused[g.node_index["l17.norm_w"]]
    sfx = "_f16" if f16_acts else ""
    assert norm.kernel == "rms_norm4_f32" and add_norm.kernel == "add_rms_norm4_f32" + sfx
    assert (norm.grid, norm.block) == (add_norm.grid, add_norm.block) and norm.args[1] == 0
    assert [ln.kernel for ln in alone[g.node_index["l17.norm_w"]]] == ["binary_f32" + sfx]
    assert gemm.kernel in (GEMM_TC_NAMES | {"gemm_naive_f16x"})


def test_weight_product_rows_counts_weight_streams_only():
    """``PDL_OFF_ROWS`` is about weight streaming: a view of a weight counts as the weight (64 rows here,
    so "auto" leaves PDL off), a KV cache that SET_ROWS writes does not (its product is attention, whatever
    its batch x heads rows), a 1-D x is one row, and a tensor without a shape is skipped (the registry
    rejects it with its own error) instead of crashing."""
    from runtime.kernels.ops import weight_product_rows

    b = memplan.GraphBuilder("rows")
    w = b.weight("w", 2 * 64 * 32, shape=[64, 32], dtype="f16")
    wv = b.view("wv", w, 2 * 32 * 32, 0, shape=[32, 32], dtype="f16")
    cache = b.weight("cache", 2 * 8 * 32, shape=[8, 32], dtype="f16")
    x = b.input("x", 4 * 64 * 32, shape=[64, 32])
    x1 = b.input("x1", 4 * 32, shape=[32])
    q = b.input("q", 4 * 96 * 32, shape=[96, 32])   # more rows than any weight product
    xs = b.input("xs", 4 * 32)
    idx = b.input("idx", 4, shape=[1], dtype="i32")
    kc = b.view("kc", cache, 2 * 8 * 32, 0, shape=[8, 32], dtype="f16")   # as examples.llama writes its caches
    b.node("set", "SET_ROWS", [x1, idx], kc)
    b.node("mm_view", "MUL_MAT", [wv, x], b.output("y", 4 * 64 * 32, shape=[64, 32]))
    b.node("mm_1d", "MUL_MAT", [w, x1], b.output("y1", 4 * 64, shape=[64]))
    b.node("kq", "MUL_MAT", [kc, q], b.output("s", 4 * 96 * 8, shape=[96, 8]))
    b.node("mm_noshape", "MUL_MAT", [w, xs], b.output("y2", 4 * 64, shape=[64]))
    g = b.build()
    assert weight_product_rows(g) == 64
    only_1d = memplan.GraphBuilder("one")
    w = only_1d.weight("w", 2 * 64 * 32, shape=[64, 32], dtype="f16")
    only_1d.node("mm", "MUL_MAT", [w, only_1d.input("x", 128, shape=[32])], only_1d.output("y", 256, shape=[64]))
    assert weight_product_rows(only_1d.build()) == 1


@pytest.mark.parametrize("batch,policy,want_pdl", [(1, "auto", "chain"), (24, "auto", "off"), (40, "auto", "chain"),
                                                   (1, "off", "off"), (24, "chain", "chain"), (1, "always", "always")])
def test_pdl_launches_on_a_fake_driver(monkeypatch, batch, policy, want_pdl):
    """A PDL library under each ``pdl_policy``, in a poisoned, jittered step with L2 prefetches: "auto"
    takes PDL at 1 and 40 rows of x and not at 24 (in ``PDL_OFF_ROWS``); under "chain" exactly the launches
    that follow a kernel on their stream are programmatic (never the first after an event wait, a copy or
    a memset; jitter spins follow the same rule), under "always" every one but the prefetches (always
    plain: they wait for nothing but their fork event); the logits are the emulator's bits, eager and
    replayed. (The fake driver runs everything in issue order: this checks which launches are
    programmatic, not that they are race-free; the GPU tests do that.)"""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor, Jitter, Poison
    from runtime.kernels import KernelLibrary
    from runtime.kernels.ops import PDL_OFF_ROWS, weight_product_rows

    cfg, g, w, inp = _tiny(batch, seed=6, f16_acts=False)   # (f16 activations take PDL at every row count)
    assert (weight_product_rows(g) in PDL_OFF_ROWS) == (batch == 24)
    plan = memplan.plan(g, L.multi_stream_schedule(g))
    want = emulate(g, plan, w, inp)[0]["logits"]
    ex = Executor(g, plan, weights=w, inputs=inp, library=KernelLibrary(pdl=True), pdl_policy=policy,
                  prefetch=L.prefetch_plan(g, cfg))
    start = len(drv.trace)
    ex.run(poison=Poison(ranges=L.kv_poison_ranges(g, cfg)), jitter=Jitter(seed=3, prob=0.5))
    assert np.array_equal(ex.read("logits"), want)
    kernels = ("launch", "launch_pdl")
    others = ("wait", "dtod", "htod", "memset_d8", "memset_d16", "memset_d32")
    ops = [t for t in drv.trace[start:] if t[1] in kernels + others]
    assert {"wait", "dtod"} <= {t[1] for t in ops} and any(t[3] == "spin" for t in ops if t[1] in kernels)
    prev: dict[int, str] = {}   # stream handle -> the last operation issued on it
    for t in ops:
        stream = t[2]
        if t[1] in kernels:
            after_kernel = prev.get(stream) in kernels
            expect = {"off": False, "always": t[3] != "l2_prefetch", "chain": after_kernel}[want_pdl]
            assert (t[1] == "launch_pdl") == expect, f"{t[3]} after {prev.get(stream)}: {t[1]}"
        prev[stream] = t[1]
    assert any(t[1] == "launch_pdl" for t in ops) == (want_pdl != "off")
    assert any(t[3] == "l2_prefetch" for t in ops if t[1] in kernels)
    ex.capture()
    ex.replay(2)
    assert np.array_equal(ex.read("logits"), want)
    ex.free()


def test_auto_pdl_policy_takes_pdl_for_f16_activations_at_every_row_count():
    """"auto" leaves PDL off at 17-32 rows of f32 x only: the runtime's f16-activation graph at 24 tokens
    (gemm_ws streams its weights before its PDL wait) launches with PDL; the f32 graph does not."""
    from runtime.kernels.ops import pdl_by_default, weight_product_rows, weight_products_read_f16

    for f16, want in ((True, True), (False, False)):
        _cfg, g, _w, _inp = _tiny(24, f16_acts=f16)
        assert weight_products_read_f16(g) == f16
        assert pdl_by_default(weight_product_rows(g), weight_products_read_f16(g)) == want
    assert not weight_products_read_f16(_tiny(1)[1]) and pdl_by_default(1)


def test_gemm_ws_launch_rules_give_launches_the_kernel_computes_in_full():
    """Every gemm_ws launch the registry's rules give (plain 64- and 256-row builds, SwiGLU 128 and 256; K
    and V split in two, wide products over K) for rows 1-64, N no multiple of a block's rows and K no
    multiple of 64, on GPUs of 1 to 132 SMs, is one llama.cu's gemm_ws_body computes in full
    (``emulate.check_ws_launch``: block, cluster, rows, blocks covering N); no cluster splits K into more
    parts than it has 64-k stages. The check refuses a launch one block short, or of another build's block."""
    from runtime.emulate import check_ws_launch
    from runtime.kernels.ops import WS_NAMES, mul_mat_f16x_launch, swiglu_f16x_launch

    seen = set()
    for sms in (1, 8, 132):
        for M in (1, 17, 64):
            for N in (8, 200, 1000, 8448, 8449, 20000):
                for K in (8, 72, 200, 4104):
                    for ln in (mul_mat_f16x_launch(16, 32, 48, M, N, K, sms, True),
                               swiglu_f16x_launch(16, 32, 48, 64, M, N, K, sms, True)):
                        assert ln.kernel in WS_NAMES, ln
                        check_ws_launch(ln)
                        assert ln.args[-1] <= -(-K // 64), ln
                        seen.add((ln.kernel, ln.args[-1] > 1))
    assert {k for k, _ in seen} == WS_NAMES - {"gemm_ws2_f16x"} and (("gemm_ws4_f16x", True) in seen)
    ln = mul_mat_f16x_launch(16, 32, 48, 40, 20000, 4104, 132, True)
    assert ln.kernel == "gemm_ws4_f16x"
    for bad in (replace(ln, grid=(ln.grid[0] - ln.args[-1], 1, 1)), replace(ln, block=(160, 1, 1))):
        with pytest.raises(ValueError, match="gemm_ws4_f16x"):
            check_ws_launch(bad)


def test_registry_wgmma_rule():
    """With the wgmma build (``KernelLibrary.wgmma``), 33..64 rows of x take it on matrices whose K splits
    over enough blocks (0.4 per SM, 8 stages of 64 k each at least): a matrix of few tiles in as many blocks
    as one wave of clusters holds, a wider one in the fewest splits; 17..32 rows only on few tiles with 16
    stages per block; never at 16 rows or fewer, never without the flag; the gate/up pass of wgmma GEMMs is
    the wgmma twin in their split (its bits are its own), and a register-build GEMM never gets a wgmma pass."""
    from runtime.kernels.ops import gemm_tc_swiglu_launch

    def mm(M, N, K, wg=True, sms=132):
        return mul_mat_launch(1, 2, 3, M, N, K, sms, wg).kernel

    for M in (33, 48, 64):
        assert mm(M, 128256, 4096) == "gemm_tcg_f16_f32"        # 501 tiles of 256 rows: unsplit
        assert mm(M, 4096, 14336) == "gemm_tc6g_f16_f32"        # 16 tiles (few) x 6: 96 blocks, one wave
        assert mm(M, 4096, 4096) == "gemm_tc6g_f16_f32"         # 10 or 11 stages per block
        assert mm(M, 2048, 8192) == "gemm_tc8g_f16_f32"         # 8 tiles x 8
        assert mm(M, 4096, 14336, sms=100) == "gemm_tc3g_f16_f32"   # 16 tiles > 0.125 x 100: fewest, 48 >= 40
        assert mm(M, 512, 4096, sms=16) == "gemm_tc6g_f16_f32"   # 2 x 8 = 16 blocks > 0.75 x 16: one wave of 6
        assert mm(M, 4096 * 3, 4096) == "gemm_tc2g_f16_f32"     # 48 tiles (many): the fewest splits, 96
        assert mm(M, 4096, 64 * 13) == mm(M, 4096, 64 * 13, False)   # 13 stages: 1 split, 16 blocks, too few
        assert mm(M, 1024, 4096) == mm(M, 1024, 4096, False)    # K/V: 4 tiles x 8 = 32 blocks, too few
        assert mm(M, 2048, 2048) == mm(M, 2048, 2048, False)    # 8 splits would stream 4 stages each
        assert mm(M, 4096, 4096, sms=16) == "gemm_tcg_f16_f32"  # fewer SMs, fewer splits
        assert mm(M, 4096 + 128, 4096) == mm(M, 4096 + 128, 4096, False)   # not whole 256-row tiles
    for M in (2, 16):
        assert mm(M, 128256, 4096) == mm(M, 128256, 4096, False) and "g_" not in mm(M, 4096, 14336)
    for M in (17, 32):   # few tiles and long streams only: 37 and 16 stages per block; q/o 10, LM head many tiles
        assert mm(M, 4096, 14336) == "gemm_tc6g_f16_f32" and mm(M, 2048, 8192) == "gemm_tc8g_f16_f32"
        assert mm(M, 4096, 4096) == mm(M, 4096, 4096, False) and mm(M, 128256, 4096) == mm(M, 128256, 4096, False)
    assert "g_" not in mm(64, 128256, 4096, False)
    for N, K, want in ((14336, 4096, "gemm_tcg_swiglu_f16_f32"), (8192, 2048, "gemm_tc2g_swiglu_f16_f32")):
        one = gemm_tc_swiglu_launch(1, 2, 3, 4, 64, N, K, 132, wgmma=True)
        assert one.kernel == want and one.grid[0] == N // 128 * (2 if "2g" in want else 1), one
        assert mm(64, N, K).replace("_f16", "_swiglu_f16") == want   # the GEMMs' split
    plain = gemm_tc_swiglu_launch(1, 2, 3, 4, 32, 14336, 4096, 132, wgmma=True)
    assert plain.kernel in GEMM_TC_NAMES and "g_" not in plain.kernel


def test_registry_splits_a_long_small_product_in_16():
    """With Hopper's features (``wgmma``), a register-build product the rule splits in 8 takes 16 (a
    non-portable cluster) when 8 leave SMs without a block and each block streams 1024 k or more: the 1B down
    projection at 2..16 rows of x; nothing else among the Llama matrices, nothing above 16 rows (not measured
    there), nothing without the flag, and the gate/up pass keeps its GEMMs' split."""
    from runtime.kernels import ops

    def pick(M, N, K, wg=True, sms=132):
        return mul_mat_launch(1, 2, 3, M, N, K, sms, wg)

    for M in (2, 4, 8, 16):
        ln = pick(M, 2048, 8192)
        assert ln.kernel == "gemm_tc16m_f16_f32" and ln.grid[0] == 2048 // 128 * 16 and ln.block[0] == 128, ln
        assert pick(M, 2048, 8192, wg=False).kernel == "gemm_tc8m_f16_f32"
        assert pick(M, 2048, 4096).kernel == "gemm_tc8m_f16_f32"           # 512 k per block: a short chain
        assert pick(M, 2048, 8192, sms=100).kernel == "gemm_tc8m_f16_f32"  # 128 blocks fill 100 SMs
    for M in (1, 17, 33, 64):
        assert "c16" not in pick(M, 2048, 8192).kernel
        assert "c16" not in pick(M, 512, 16384).kernel and "c16" in pick(16, 512, 16384).kernel   # measured to 16 rows
    shapes = [(2048, 2048), (512, 2048), (8192, 2048), (32000, 2048), (4096, 4096), (1024, 4096), (14336, 4096),
              (4096, 14336), (128256, 4096)]
    for M in range(2, 65):
        for N, K in shapes:
            assert "c16" not in pick(M, N, K).kernel, (M, N, K)
            sw = ops.gemm_tc_swiglu_launch(1, 2, 3, 4, M, N, K, 132, wgmma=True)
            assert sw is None or "c16" not in sw.kernel
    assert ops.NONPORTABLE_CLUSTER_NAMES == {n for (c, _w), n in (*ops.GEMM_TC.items(), *ops.GEMM_TC_SWIGLU.items())
                                             if c > 8} and "gemm_tc16m_f16_f32" in ops.NONPORTABLE_CLUSTER_NAMES


def test_cluster_of_16_launches_through_cuda_bindings(monkeypatch):
    """A kernel built for a cluster of 16 (non-portable) runs only once the driver allows its cluster size:
    the library sets that attribute on exactly those kernels and launches them through cuLaunchKernelEx
    (plain or PDL), never through pycuda's call, whose function handle lacks the attribute; the product is the
    emulator's (x rounded to f16), eager and captured. Without cuda.bindings such a launch is refused by name."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    import pycuda.driver as cuda

    from runtime.cuda_util import capture_graph, launch_graph
    from runtime.kernels import KernelLibrary, gemm_tc_launch, ops

    M, N, K = 5, 128, 2048 * 8
    rng = np.random.default_rng(4)
    W = (rng.standard_normal((N, K)) / 64).astype(np.float16)
    xh = rng.standard_normal((M, K)).astype(np.float32)
    dW, dx = cuda.to_device(W), cuda.to_device(xh)
    y = cuda.mem_alloc(M * N * 4)
    ref = xh.astype(np.float16).astype(np.float64) @ W.astype(np.float64).T
    ln = gemm_tc_launch(int(dW), int(dx), int(y), M, N, K, 4, 16, "m")
    assert ln.kernel == "gemm_tc16m_f16_f32"
    for pdl in (False, True):
        lib = KernelLibrary(pdl=pdl)
        allowed = {f for (f, a), v in drv.func_attrs.items() if a == "non_portable" and v == 1}
        assert allowed == set(ops.NONPORTABLE_CLUSTER_NAMES)
        s = cuda.Stream()
        for captured in (False, True):
            cuda.memset_d32(y, 0x7FC00000, M * N)
            before = len(drv.carveouts)   # one entry per cuLaunchKernelEx
            if captured:
                _graph, exe = capture_graph(s, lambda lib=lib, s=s: lib.launch(ln, s, pdl=False))
                launch_graph(exe, s)
            else:
                lib.launch(ln, s, pdl=False)
            assert [k for k, _ in drv.carveouts[before:]] == [ln.kernel]
            got = np.empty((M, N), np.float32)
            cuda.memcpy_dtoh(got, y)
            assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-5, (pdl, captured)
    lib._cu = None
    with pytest.raises(KernelError, match="gemm_tc16m_f16_f32.*cuda.bindings"):
        lib.launch(ln, s)
    # a device that cannot schedule a cluster of 16 gets no Hopper cluster features at all: the registry then
    # picks neither 16 splits nor the wgmma build, so nothing it plans fails to launch
    drv.max_clusters = 0
    assert not KernelLibrary().wgmma
    drv.max_clusters = 7
    assert KernelLibrary().wgmma
    from runtime.tools.gemm_bench import candidates

    assert any("c16" in c.kernel for c in candidates(2, 2048, 8192, 132, wgmma=True))
    assert not any("c16" in c.kernel for c in candidates(2, 2048, 8192, 132, wgmma=False))


@pytest.mark.parametrize("swiglu", [False, True])
def test_wgmma_launch_passes_tensor_maps(monkeypatch, swiglu):
    """On Hopper the library launches the wgmma build through cuda.bindings with tensor maps by value (one
    per weight matrix: [N, K] f16 in 128-byte-swizzled boxes of 64 k; one for x: [M, K] f32) then y, M, N, K;
    the fake driver reads the maps back, checks their shapes and runs the emulator: the product (x rounded
    to f16) within float error, in eager and captured launches, with and without PDL."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    import pycuda.driver as cuda

    from runtime.cuda_util import capture_graph, launch_graph
    from runtime.kernels import KernelLibrary, gemm_tc_launch
    from runtime.kernels.ops import gemm_tc_swiglu_launch

    M, N, K = 40, 256, 1024
    rng = np.random.default_rng(2)
    Wg, Wu = ((rng.standard_normal((N, K)) / 32).astype(np.float16) for _ in range(2))
    xh = rng.standard_normal((M, K)).astype(np.float32)
    dWg, dWu, dx = (cuda.to_device(a) for a in (Wg, Wu, xh))
    y = cuda.mem_alloc(M * N * 4)
    xr = xh.astype(np.float16).astype(np.float64)
    gv, uv = xr @ Wg.astype(np.float64).T, xr @ Wu.astype(np.float64).T
    ref = gv / (1 + np.exp(-gv)) * uv if swiglu else gv
    if swiglu:
        ln = gemm_tc_swiglu_launch(int(dWg), int(dWu), int(dx), int(y), M, N, K, 132, ("g", 8, 2))
    else:
        ln = gemm_tc_launch(int(dWg), int(dx), int(y), M, N, K, 8, 2, "g")
    assert ln.kernel == ("gemm_tc2g_swiglu_f16_f32" if swiglu else "gemm_tc2g_f16_f32")
    for pdl in (False, True):
        lib = KernelLibrary(pdl=pdl)
        assert lib.wgmma and lib.arch == "sm_90a"
        s = cuda.Stream()
        for captured in (False, True):
            cuda.memset_d32(y, 0x7FC00000, M * N)
            if captured:
                _graph, exe = capture_graph(s, lambda lib=lib, s=s: lib.launch(ln, s, pdl=True))
                launch_graph(exe, s)
            else:
                lib.launch(ln, s, pdl=True)
            got = np.empty((M, N), np.float32)
            cuda.memcpy_dtoh(got, y)
            assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-5, (pdl, captured)
    with pytest.raises(KernelError, match="WG_STAGES"):   # the Python side sizes the build, not nvcc options
        KernelLibrary(options=("-DWG_STAGES=6",))
    monkeypatch.setattr(KernelLibrary, "__init__", lambda self: None)
    off = KernelLibrary()
    off.wgmma = False
    with pytest.raises(KernelError, match="sm_90a"):
        KernelLibrary.launch(off, ln, s)


def test_pdl_library_without_cuda_bindings_says_so(monkeypatch):
    """``KernelLibrary(pdl=True)`` where ``cuda.bindings`` cannot be imported: a KernelError that names the
    package and the option, not an ImportError from deep inside; ``pdl_supported()`` says False, which is
    what ``Executor`` and ``runtime.bench`` check before they ask for PDL."""
    import sys

    import fake_cuda

    fake_cuda.install(monkeypatch)
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", None)   # import now raises ImportError
    from runtime.kernels import KernelError, KernelLibrary
    from runtime.kernels.library import pdl_supported

    assert not pdl_supported()
    with pytest.raises(KernelError, match=r"pdl=True.*pip install -e '\.\[graphs\]'"):
        KernelLibrary(pdl=True)
    assert not KernelLibrary().pdl


def _absorbed(g, addr, staged=True):
    scratch = (lambda n: 1 << 50) if staged else None
    return {m for ms in plan_launches(g, addr.__getitem__, scratch=scratch)[1].values() for m in ms}


@pytest.mark.parametrize("streams", ["serial", "multi"])
def test_executor_on_a_fake_driver_computes_the_emulated_bits(monkeypatch, streams):
    """``runtime.executor.Executor`` itself, on a fake pycuda whose launches are the emulator's: eager with
    poison and jitter, a captured graph replayed twice, with prefetches, then timed; the logits are the
    emulator's bit for bit, and a second executor sharing the weights gets them too."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor, Jitter, Poison

    cfg, g, w, inp = _tiny(1, seed=5)
    plan = memplan.plan(g) if streams == "serial" else memplan.plan(g, L.multi_stream_schedule(g))
    want = emulate(g, plan, w, inp)[0]["logits"]
    poison = Poison(ranges=L.kv_poison_ranges(g, cfg))
    ex = Executor(g, plan, weights=w, inputs=inp, prefetch=L.prefetch_plan(g, cfg))
    ex.run(poison=poison, jitter=Jitter(seed=1, prob=1.0))
    assert np.array_equal(ex.read("logits"), want)
    ex.capture(poison=poison)
    ex.replay(2)
    assert np.array_equal(ex.read("logits"), want)
    assert ex.captured and len(ex.time_steps("graph", steps=2, repeats=2, warmup=1)) == 2
    other = Executor(g, plan, inputs=inp, weights_from=ex)
    other.run()
    assert np.array_equal(other.read("logits"), want)
    assert ex.fused_groups == len(g.groups())
    # one kernel launch per launch of the program, on the node's plan stream
    launched = [t for t in drv.trace if t[1] in ("launch", "launch_pdl") and t[3] not in ("spin", "l2_prefetch")]
    assert len(launched) >= sum(map(len, ex.node_launches.values()))
    other.free()
    ex.free()
    with pytest.raises(ValueError, match="pdl_policy 'sometimes'"):
        Executor(g, plan, pdl_policy="sometimes")


def test_capture_holds_off_the_garbage_collector(monkeypatch):
    """An unreachable cycle holding device memory (an earlier executor's, a tool's buffer) must not be
    collected inside a stream capture: its free there invalidates the capture (H200: the 8B batch-64 bench
    capture failed after three other batches). With the collector set to run at every allocation, a capture
    frees nothing; the same cycle is collected afterwards."""
    import gc

    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    import pycuda.driver as cuda

    from runtime.executor import Executor

    cfg, g, w, inp = _tiny(1, seed=5)
    ex = Executor(g, memplan.plan(g), weights=w, inputs=inp)
    launch, made = ex.lib.launch, []

    def launch_making_garbage(*args, **kw):   # the first launch inside the capture leaves a cycle behind
        if drv.capturing is not None and not made:
            cycle = [cuda.mem_alloc(256)]
            cycle.append(cycle)
            made.append(int(cycle[0]))
            del cycle
            _ = [[] for _ in range(100)]   # allocations: a collection is due
        return launch(*args, **kw)

    monkeypatch.setattr(ex.lib, "launch", launch_making_garbage)
    old = gc.get_threshold()
    gc.set_threshold(1)
    try:
        ex.capture()
    finally:
        gc.set_threshold(*old)
    assert made and drv.freed_in_capture == []
    gc.collect()
    assert ("free", made[0]) in [t[1:3] for t in drv.trace]   # collected after the capture
    ex.free()


def test_capture_restores_the_garbage_collector_on_every_exit(monkeypatch):
    """``capture_graph`` turns the cyclic collector back on however the capture ends: ``issue`` raising, the
    capture invalidated (a device free inside it: the fake driver fails its end, as CUDA does), or a clean
    capture; a collector the caller had turned off stays off."""
    import gc

    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    import pycuda.driver as cuda

    from runtime.cuda_util import CudaError, capture_graph

    s = cuda.Stream()
    buf = cuda.mem_alloc(256)

    def boom():
        assert not gc.isenabled()
        raise ValueError("boom")

    assert gc.isenabled()
    with pytest.raises(ValueError, match="boom"):
        capture_graph(s, boom)
    assert gc.isenabled() and drv.capturing is None
    with pytest.raises(CudaError, match="INVALIDATED"):
        capture_graph(s, buf.free)
    assert gc.isenabled() and drv.capturing is None
    capture_graph(s, lambda: None)
    assert gc.isenabled()
    gc.disable()
    try:
        capture_graph(s, lambda: None)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_captures_in_two_threads_keep_the_collector_off_until_both_end():
    """Two threads capturing at once (the collector is process-wide): the first to end must not turn it back
    on under the other; the last one does."""
    import gc
    import threading

    from runtime.cuda_util import _gc_held

    first_in, first_out, states = threading.Event(), threading.Event(), []

    def first():
        with _gc_held():
            first_in.set()
            first_out.wait(5)

    assert gc.isenabled()
    t = threading.Thread(target=first)
    t.start()
    first_in.wait(5)
    with _gc_held():
        first_out.set()
        t.join(5)
        states.append(gc.isenabled())   # the first hold has ended, this one has not
    states.append(gc.isenabled())
    assert states == [False, True]


def test_gate_and_up_run_as_one_tensor_core_pass_above_batch_one():
    """Batch 16 on matrices wide enough for gemm_tc: each layer's gate/up group is one launch reading both
    matrices (no gate or up tensor written, no swiglu_f32), in the serial and the 3-stream plan, and the
    emulated step stays within the tensor-core tolerance of the float64 reference."""
    cfg = L.config("tiny", batch=16, hidden=1024, ffn=2048, heads=8, kv_heads=2, vocab=256, ctx=32)
    g = L.build_graph(cfg, "runtime")
    w, inp = L.make_weights(g, cfg, seed=3), L.make_inputs(cfg, seed=4)
    ref = L.reference_forward(cfg, w, inp)[0]
    for plan in (memplan.plan(g), memplan.plan(g, L.multi_stream_schedule(g))):
        addr = _addresses(g, plan)
        per_node, _ = plan_launches(g, addr.__getitem__, scratch=lambda n: 1 << 50)
        kernels = [ln.kernel for lns in per_node for ln in lns]
        assert sum(k.endswith("_swiglu_f16_f32") for k in kernels) == cfg.layers and "swiglu_f32" not in kernels
        assert L.rel_err(emulate(g, plan, w, inp)[0]["logits"], ref) < 5e-3


@pytest.mark.parametrize("batch,grouped", [(1, True), (64, True), (65, False)])
def test_gate_and_up_share_a_group_while_one_kernel_takes_them(batch, grouped):
    """The runtime graph groups gate/up with their SwiGLU up to 64 tokens (the GEMV / gemm_tc_swiglu pass);
    above that they are two GEMMs, left to two streams as before."""
    g = L.build_graph(L.config("tiny", batch=batch), "runtime")
    gate, up, glu = (g.node(f"l0.{n}") for n in ("mm_gate", "mm_up", "glu"))
    assert (gate.group == up.group == glu.group) is grouped and glu.group is not None


@settings(max_examples=300, deadline=None)
@given(M=st.integers(1, 80), N=st.integers(1, 40).map(lambda k: 32 * k), K=st.integers(1, 64).map(lambda k: 64 * k),
       sms=st.sampled_from([8, 16, 66, 114, 132]), wgmma=st.booleans())
def test_every_tensor_core_launch_meets_its_kernels_needs(M, N, K, sms, wgmma):
    """Whatever rows, matrix and SM count: a gemm_tc launch the registry makes (plain or gate/up) meets what
    llama.cu's gemm_tc_body assumes - whole warp tiles (16 or 32 weight rows), whole super-tiles per cluster block, a grid
    that is a whole number of clusters, x's super-tile an integral number of float4 per thread, the
    partial tile within the shared memory it asks for, and that within the limit the library sets. The wgmma
    build only where the device has it, above 16 rows, each block streaming 8 stages at least (16 below 33
    rows), and the gate/up pass wgmma exactly when its GEMMs are (its bits are its own)."""
    from runtime.kernels.ops import (
        GEMM_TC_SWIGLU,
        SMEM_LIMITS,
        TC_BUILD,
        TC_MAX_ROWS,
        TC_SMEM_MAX,
        TC_ST,
        TC_WARP_ROWS,
        dynamic_smem,
        gemm_tc_swiglu_launch,
        tc_groups,
    )

    plain = mul_mat_launch(1 << 20, 2 << 20, 3 << 20, M, N, K, sms, wgmma)
    swiglu = gemm_tc_swiglu_launch(1 << 20, 4 << 20, 2 << 20, 3 << 20, M, N, K, sms, wgmma=wgmma)
    assert (plain.kernel in GEMM_TC_NAMES) == (swiglu is not None) or M == 1
    if swiglu is not None and plain.kernel in GEMM_TC_NAMES:
        # the pass may take another build or warps, never another K split: its bits are the GEMMs' then
        assert swiglu.kernel.split("_")[1][2:].rstrip("wtmg") == plain.kernel.split("_")[1][2:].rstrip("wtmg")
        assert (TC_BUILD[swiglu.kernel] == "g") == (TC_BUILD[plain.kernel] == "g"), (plain, swiglu)
    for ln, width in ((plain, N), (swiglu, N)):
        if ln is None or ln.kernel not in GEMM_TC_NAMES:
            continue
        cl = int(ln.kernel.split("_")[1][2:].rstrip("wtmg") or 1)
        build = TC_BUILD[ln.kernel]
        assert build != "g" or (wgmma and M > 16 and ln.block[0] == 256 and K // TC_ST["g"] // cl >= (8 if M > 32 else 16))
        if build == "g" and ln is plain and N // 256 <= 0.125 * sms:   # few tiles: one wave of clusters
            assert N // 256 * cl <= (sms if cl <= 2 else 0.75 * sms)
            assert M > 32 or K // TC_ST["g"] // cl >= 16
        groups = tc_groups(M, build)                       # blocks per weight tile, one per 16 or 64 rows of x
        mb = min(M, TC_MAX_ROWS[build])                    # rows of x one block takes
        nt, rows = ln.block[0], ln.block[0] // 32 * TC_WARP_ROWS[build]   # threads; W rows per block
        is_swiglu = ln.kernel in GEMM_TC_SWIGLU.values()
        assert 2 <= M <= 64 and nt in (128, 256) and ln.grid[0] % (cl * groups) == 0
        assert ln.grid[0] // (cl * groups) * (rows // 2 if is_swiglu else rows) == width
        if build == "g":                                   # stages split as evenly as they go
            assert K % TC_ST[build] == 0 and K // TC_ST[build] // cl >= 8
        else:
            assert K % (TC_ST[build] * cl) == 0 and K // cl >= TC_ST[build]
        mp = 16 * -(-mb // 16)
        assert mp * TC_ST[build] // 4 % nt == 0                      # NX whole
        assert -(-mb // 8) <= TC_MAX_ROWS[build] // 8                # n8 tiles within the build
        assert mb * rows * 4 <= dynamic_smem(ln) <= TC_SMEM_MAX      # the cluster's partial tile fits
        assert dynamic_smem(ln) <= SMEM_LIMITS[ln.kernel] <= 227 * 1024   # within the kernel's limit


@settings(max_examples=60, deadline=None)
@given(B=st.integers(1, 70), kv=st.sampled_from([1, 2, 4]), grp=st.sampled_from([1, 2, 4, 8]),
       d=st.sampled_from([8, 16, 24, 64, 128, 256]), ctx=st.integers(1, 1200), sms=st.sampled_from([16, 66, 132]))
def test_every_attention_launch_meets_its_kernels_needs(B, kv, grp, d, ctx, sms):
    """Whatever batch, heads, head size, cache length and SM count, the registry's attention launch meets
    what its kernel assumes: attn_mma (tensor cores) exactly when there are 2+ tokens, a KV head has at
    least 8 query rows and d is a multiple of 16 up to 128, 16 query rows per block; 8 warps (the kernels
    that know d) while their grid fits one wave of clusters, else 4 warps with the cache rows split over a
    cluster only while every warp keeps a 16-row step and the grid stays within one block per SM; the
    kernel that knows d at compile time where there is one, and its dynamic shared memory within the limit
    the library sets."""
    from runtime.kernels import ATTN_MMA, ATTN_MMA_NAMES
    from runtime.kernels.ops import (
        ATTN_MMA_DIMS,
        ATTN_MMA_H_NAMES,
        ATTN_MMA_SMEM,
        ATTN_MMA_SPEC,
        ATTN_MMA_W8,
        ATTN_MMA_W8_WAVE,
        SMEM_LIMITS,
        dynamic_smem,
    )

    heads = kv * grp
    cfg = L.config("tiny", batch=B, heads=heads, kv_heads=kv, hidden=heads * d, ctx=ctx, layers=1, ffn=64, vocab=32)
    g = L.build_graph(cfg, "runtime")
    plan = memplan.plan(g)
    per_node, _ = plan_launches(g, _addresses(g, plan).__getitem__, num_sms=sms, counters=1 << 30,
                                scratch=lambda n: 1 << 50)
    fused = {"attn_batch_f16", "attn_batch1_f16", *ATTN_MMA_NAMES, *ATTN_MMA_H_NAMES, *ATTN_FUSED_NAMES}
    attn = [ln for lns in per_node for ln in lns if ln.kernel in fused]
    if not attn:   # the group runs node by node (a planned overlap its one kernel cannot take, or an f16
        # output where the tensor-core kernel does not apply)
        assert {ln.kernel for lns in per_node for ln in lns} >= {"attn_kq_f16", "softmax_mask_f32"}
        return
    assert len(attn) == 1
    ln = attn[0]
    # the f16-activation graph (17-64 tokens) takes the f16-output twin: the same launch otherwise
    assert (ln.kernel in ATTN_MMA_H_NAMES) == (g.tensor("l0.attn").attrs["dtype"] == "f16"), ln.kernel
    if ln.kernel in ATTN_MMA_H_NAMES:
        ln = replace(ln, kernel=ln.kernel[:-1])
    n_kv = ctx + B
    wants_mma = B >= 2 and B * grp >= 8 and d % 16 == 0 and d <= 128
    assert (ln.kernel in ATTN_MMA_NAMES) == wants_mma, ln.kernel
    if not wants_mma:
        return
    qblocks = -(-B * grp // 16)
    w8 = {name: c for (c, dd), name in ATTN_MMA_W8.items() if dd == d}
    if ln.kernel in w8:   # 8 warps: only for a d with its own kernels, the grid within one wave of clusters
        cl = w8[ln.kernel]
        assert d in ATTN_MMA_DIMS and ln.block == (256, 1, 1)
        assert qblocks * kv * cl <= (sms if cl <= 2 else ATTN_MMA_W8_WAVE * sms)
        assert cl == 1 or -(-n_kv // cl) >= 64
        assert dynamic_smem(ln) == 2 * ATTN_MMA_SMEM <= SMEM_LIMITS[ln.kernel] <= 227 * 1024 - 8192
    else:   # 4 warps: only once even unsplit 8-warp blocks would not fit one wave
        names = {name: c for (c, dd), name in ATTN_MMA_SPEC.items() if dd == d} if d in ATTN_MMA_DIMS else {
            name: c for c, name in ATTN_MMA.items()}
        cl = names[ln.kernel]
        assert d not in ATTN_MMA_DIMS or qblocks * kv > sms
        assert ln.block == (128, 1, 1)
        if cl > 1:
            assert -(-n_kv // cl) >= 64 and qblocks * kv * cl <= sms
        assert dynamic_smem(ln) == ATTN_MMA_SMEM <= SMEM_LIMITS[ln.kernel] <= 227 * 1024 - 8192
    assert ln.grid == (cl * qblocks, kv, 1)
    assert ln.args[6:11] == (B, n_kv, kv, heads, d)


@pytest.mark.parametrize("d,B,sms,kernel", [
    (128, 4, 132, "attn_mma8_d128w8_f16"), (128, 16, 132, "attn_mma2_d128w8_f16"),
    (128, 32, 132, "attn_mma2_d128w8_f16"), (128, 64, 132, "attn_mma_d128w8_f16"),
    (64, 16, 132, "attn_mma2_d64w8_f16"), (64, 64, 132, "attn_mma_d64w8_f16"),
    (128, 16, 64, "attn_mma2_d128w8_f16"), (128, 64, 64, "attn_mma_d128_f16"), (128, 64, 120, "attn_mma_d128_f16"),
    (96, 16, 132, "attn_mma4_f16"), (128, 1, 132, "attn_fused_d128_f16"), (64, 1, 132, "attn_fused_d64_f16"),
    (32, 1, 132, "attn_fused_f16")])
def test_registry_attention_on_h200_shapes(d, B, sms, kernel):
    """The registry's attention kernel for the 8B (d 128) and 1B (d 64) decode shapes (32 heads over 8 KV
    heads, ctx 512): the kernel that knows d where there is one, with 8 warps per block in the widest
    cluster whose 256-thread blocks fit one wave (H200, 132 SMs: 8B batch 16 10.0 us in clusters of 2, 16 in
    clusters of 4, whose 128 blocks exceed the 120 a wave holds); 4 warps when even unsplit blocks exceed
    the SMs (batch 64 on 64 or 120 SMs), their cache rows split while the grid keeps one block per SM;
    other head sizes the generic kernel, batch 1 attn_fused (likewise)."""
    from runtime.kernels.ops import attention_launch

    ln = attention_launch(*range(1, 7), B, 512 + B, 8, 32, d, sms)
    assert ln.kernel == kernel
    assert ln.block == ((256 if kernel.endswith("w8_f16") else 128) if "mma" in kernel else 256, 1, 1)


@pytest.mark.parametrize("B,G,heads,d,n_kv", [(1, 8, 32, 24, 100), (1, 8, 32, 0, 100), (2, 16, 32, 96, 100),
                                               (1, 8, 32, 128, 17000), (4, 3, 32, 64, 100), (0, 8, 32, 64, 100),
                                               (1, 8, 32, 264, 100)])
def test_attention_launch_refuses_shapes_no_kernel_takes(B, G, heads, d, n_kv):
    """``attention_launch`` raises KernelError for a shape none of its kernels takes (batch 1 with d / 8 not a
    power of two or past attn_fused's cache chunks, 2 tokens x 4 heads below attn_mma's 8 query rows at d
    96, heads not a multiple of the KV heads, d 0 or past 256, no tokens) rather than return a launch that
    traps; the same shapes with a kernel pass."""
    from runtime.kernels.ops import attention_launch

    said = (rf"attention: (head size {d} at {B} tokens and {n_kv} cache rows|no kernel for {B} tokens, {heads}"
            rf" heads over {G} KV heads of size {d} and {n_kv} cache rows)")
    with pytest.raises(KernelError, match=said):
        attention_launch(*range(1, 7), B, n_kv, G, heads, d, 132)
    for ok in ((1, 8, 32, 128, 100), (2, 8, 32, 96, 100), (2, 8, 32, 128, 17000), (1, 8, 32, 32, 16384)):
        attention_launch(*range(1, 7), *ok[:1], ok[4], *ok[1:4], 132)


@pytest.mark.parametrize("d,ctx", [(96, 40), (16, 17000)])
def test_attention_group_fuses_wherever_the_tensor_core_kernel_takes_it(d, ctx):
    """attn_mma takes any head size that is a multiple of 16 up to 128 and any cache length, so the fused
    attention group runs as one attn_mma launch for head size 96 (d / 8 = 12, not a power of two) and for
    more cache rows than attn_fused's chunks hold (17000 > 8 x 2048): both ran node by node before. The
    step stays within the tensor-core tolerance of the float64 reference."""
    cfg = L.config("tiny", batch=4, hidden=4 * d, heads=4, kv_heads=2, ctx=ctx, layers=1, ffn=64, vocab=32)
    g = L.build_graph(cfg, "runtime")
    plan = memplan.plan(g)
    per_node, _ = plan_launches(g, _addresses(g, plan).__getitem__, counters=1 << 30, scratch=lambda n: 1 << 50)
    kernels = [ln.kernel for lns in per_node for ln in lns]
    assert any(k.startswith("attn_mma") for k in kernels) and "attn_kq_f16" not in kernels, kernels
    w, inp = L.make_weights(g, cfg, seed=3), L.make_inputs(cfg, seed=4)
    assert L.rel_err(emulate(g, plan, w, inp)[0]["logits"], L.reference_forward(cfg, w, inp)[0]) < 5e-3


@pytest.mark.parametrize("batch", [2, 5, 16])
def test_tensor_core_attention_step_stays_close_to_the_reference(batch):
    """A step whose attention runs on attn_mma (q and the probabilities rounded to f16, as its emulation
    models) stays within the tensor-core tolerance of the float64 reference, in the serial and the
    3-stream plan."""
    cfg = L.config("tiny", batch=batch, hidden=256, heads=8, kv_heads=2, ctx=40)
    g = L.build_graph(cfg, "runtime")
    w, inp = L.make_weights(g, cfg, seed=7), L.make_inputs(cfg, seed=8)
    ref = L.reference_forward(cfg, w, inp)[0]
    for plan in (memplan.plan(g), memplan.plan(g, L.multi_stream_schedule(g))):
        per_node, _ = plan_launches(g, _addresses(g, plan).__getitem__, counters=1 << 30, scratch=lambda n: 1 << 50)
        assert any(ln.kernel.startswith("attn_mma") for lns in per_node for ln in lns)
        assert L.rel_err(emulate(g, plan, w, inp)[0]["logits"], ref) < 5e-3


@pytest.mark.parametrize("fuse", L.FUSE_MODES)
@pytest.mark.parametrize("hidden,d", [(96, 12), (48, 6)])
def test_head_sizes_the_kernels_cannot_take_are_a_kernel_error(fuse, hidden, d):
    """Head sizes off the multiples of 8 the attention kernels load in: plan_launches refuses each with a
    KernelError naming the attention node and the head size, not a wrong run. (A config with more heads than
    hidden units, head size 0, is refused by ``LlamaConfig`` itself.) The random-shape tests draw only the
    sizes the kernels take."""
    cfg = L.config("tiny", batch=2, heads=8, kv_heads=2, hidden=hidden, ctx=10, layers=1, ffn=64, vocab=32)
    g = L.build_graph(cfg, fuse)
    with pytest.raises(KernelError, match=rf"'l0\.kq'.*head dim {d}\b"):
        plan_launches(g, _addresses(g, memplan.plan(g)).__getitem__, counters=1 << 30, scratch=lambda n: 1 << 50)


def _split_args(s: str) -> list[str]:
    """A macro call's arguments, split at top-level commas (``(256, 2)`` stays one argument)."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    return [*out, cur.strip()]


def _kernels_defined(src: str) -> set[str]:
    """The ``extern "C" __global__`` functions llama.cu defines: written out, or through its function-like
    macros (expanded with ``##`` pasting, nested calls too) invoked at top level."""
    import re

    text = re.sub(r"//[^\n]*", "", src.replace("\\\n", " "))
    macros = {m[1]: ([a.strip() for a in m[2].split(",")], m[3])
              for m in re.finditer(r"^#define (\w+)\(([^)]*)\)(.*)$", text, re.M)}
    call = re.compile(r"\b(\w+)\(((?:[^()]|\([^()]*\))*)\)")

    def expand(name: str, args: str, depth: int = 0) -> str:
        params, body = macros[name]
        for p, a in zip(params, _split_args(args), strict=True):
            body = re.sub(rf"(?<!\w){p}(?!\w)", a, body)
        body = body.replace("##", "")
        return call.sub(lambda m: expand(m[1], m[2], depth + 1) if m[1] in macros and depth < 4 else m[0], body)

    top = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    top = call.sub(lambda m: expand(m[1], m[2]) if m[1] in macros else m[0], top)
    names = set()
    for m in re.finditer(r'extern "C" __global__ void', top):
        names |= {next(n for n in re.findall(r"(\w+)\s*\(", top[m.end():m.end() + 400]) if not n.startswith("__"))}
    return names


def test_every_step_kernel_says_what_it_writes():
    """Every kernel a step can launch has its written arguments in ``ops.WRITES``: a fused group whose kernel
    is missing there silently runs node by node (``_materialises_what_others_read`` sees nothing written),
    as a trial attention kernel did before it was listed. Only the test and measurement helpers are exempt."""
    from runtime.kernels.library import SIGNATURES
    from runtime.kernels.ops import WRITES

    assert set(SIGNATURES) - set(WRITES) == {"fill_uniform_f16", "l2_prefetch", "spin", "weight_stream"}


def test_every_kernel_the_library_loads_is_defined():
    """Every kernel name the library loads (the registry's launches use no others) is a kernel llama.cu
    defines: a cluster size or build added to ``ops`` without its kernel fails here, not on a GPU."""
    from runtime.kernels.library import KERNEL_SOURCE, SIGNATURES
    from runtime.kernels.ops import GEMM_WG_NAMES

    defined = _kernels_defined(KERNEL_SOURCE.read_text())
    assert {"gemv_f16_f32", "attn_fused_f16", "gemm_tc3g_swiglu_f16_f32", "gemm_tcw_f16_f32"} <= defined
    missing = (set(SIGNATURES) | GEMM_WG_NAMES) - defined
    assert not missing, f"kernels without a definition in llama.cu: {sorted(missing)}"


@pytest.mark.parametrize("name", ["tiny", "1b", "8b"])
def test_plan_step_uses_fused_groups_above_one_row(name):
    """``runtime.step.plan_step``: at one row the ordinary plan (every fused kernel tolerates overlaps there: the same
    launches); above it no add+norm group needs a staging copy: a ``fused_groups`` plan, proven so by the
    verifier, where the ordinary plan of the same schedule needs some (the reason for the option), else the
    ordinary plan."""
    from itertools import count

    for batch in (1, 16):
        cfg = L.config(name, batch=batch)
        g = L.build_graph(cfg, "runtime")
        sched = L.multi_stream_schedule(g)
        step, plain = plan_step(g, sched, batch=batch), memplan.plan(g, sched)
        if batch == 1:
            assert step.to_json() == plain.to_json()
            continue
        if step.to_json() != plain.to_json():
            memplan.verify(g, step, fused_groups=True)
        copies = []
        for p in (step, plain):
            nxt = count(1 << 50, 1 << 30)
            per_node, _ = plan_launches(g, _addresses(g, p).__getitem__, counters=1 << 30,
                                        scratch=lambda n, it=nxt: next(it))
            copies.append(sum(ln.kernel == "copy_u32" for lns in per_node for ln in lns))
        assert copies[0] == 0
        if name == "1b":
            assert copies[1] > 0, "the ordinary plan stages nothing: the option would buy nothing here"
            assert step.to_json() != plain.to_json()


def test_products_of_written_weights_never_start_early():
    """A kernel that reads weights before its PDL wait (the GEMV's first loads) must not start before the node
    that writes that weight-kind tensor ends: the registry marks it ``early=False`` (the executor then launches
    it plainly), and leaves the product of a weight nothing writes early."""
    import handgraphs as H

    g = H.cache_product()
    plan = memplan.plan(g)
    per_node, _ = plan_launches(g, _addresses(g, plan).__getitem__)
    by = {g.nodes[i].id: lns for i, lns in enumerate(per_node)}
    assert [ln.kernel for ln in by["mm"]] == ["gemv_f16_f32"] and not by["mm"][0].early
    assert by["mm_w"][0].kernel == "gemv_f16_f32" and by["mm_w"][0].early
    assert all(ln.early for ln in by["set"])
    # the llama steps: their caches are read by attention kernels, which wait first: nothing is marked
    for name, batch in (("tiny", 1), ("tiny", 16)):
        gl = L.build_graph(L.config(name, batch=batch))
        pl = memplan.plan(gl)
        lns, _ = plan_launches(gl, _addresses(gl, pl).__getitem__, counters=1 << 30)
        assert all(ln.early for n in lns for ln in n)


def test_products_of_written_f16_intermediates_never_start_early():
    """The same for an f16 intermediate that SET_ROWS writes: every written root counts, not only weight-kind
    ones (an input read early is fine: inputs are copied in before the step's first kernel)."""
    b = memplan.GraphBuilder("f16-intermediate")
    b.tensor("x", 4 * 1024, "input", shape=[1, 1024], dtype="f32")
    b.tensor("idx", 4, "input", shape=[1], dtype="i32")
    b.tensor("m", 64 * 1024 * 2, "intermediate", shape=[64, 1024], dtype="f16")
    b.node("mk", "SET_ROWS", ["x", "idx"], "m")    # (the node that produces m writes its row idx)
    b.node("mm", "MUL_MAT", ["m", "x"], b.tensor("s", 64 * 4, "output", shape=[1, 64], dtype="f32"))
    g = b.build()
    plan = memplan.plan(g)
    per_node, _ = plan_launches(g, _addresses(g, plan).__getitem__)
    mm = per_node[[n.id for n in g.nodes].index("mm")]
    assert mm[0].kernel == "gemv_f16_f32" and not mm[0].early


@pytest.mark.parametrize("name,batch", [("1b", 64), ("tiny", 4), ("tiny", 16)])
def test_plan_step_pays_for_fused_groups_only_where_a_group_would_stage(name, batch):
    """Where the ordinary plan runs the same kernels (1B at batch 64: it stages no add+norm input), a
    ``fused_groups`` plan buys nothing and costs arena (1B batch 64: 12.2 MB serial / 13.1 MB 3-stream
    against 8.7 MB): ``runtime.step.plan_step`` then returns the ordinary plan. (The f32-activation graph:
    with f16 activations the 1B's ordinary plan at 64 happens to overlap an attention output with its input,
    and the fused plan is the one that runs every group as one kernel.)"""
    cfg = L.config(name, batch=batch)
    g = L.build_graph(cfg, "runtime", f16_acts=False)
    for sched in (None, L.multi_stream_schedule(g)):
        step, plain = plan_step(g, sched, batch=batch), memplan.plan(g, sched)
        assert step.to_json() == plain.to_json()


def test_executor_launches_a_product_of_a_written_weight_plainly(monkeypatch):
    """The executor honours ``Launch.early``: under any PDL policy the GEMV by the cache SET_ROWS writes is a
    plain launch, its neighbours stay programmatic (fake driver: which launches, not their timing)."""
    import fake_cuda
    import handgraphs as H

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor
    from runtime.kernels import KernelLibrary

    g = H.cache_product(rows=64, d=64, k=1024)
    inp = {"xin": np.ones((1, 1024), np.float32), "idx": np.array([3], np.int32)}
    ex = Executor(g, memplan.plan(g), inputs=inp, random_weights_seed=1, library=KernelLibrary(pdl=True),
                  pdl_policy="always")
    start = len(drv.trace)
    ex.run()
    gemvs = [t[1] for t in drv.trace[start:] if t[1] in ("launch", "launch_pdl") and t[3] == "gemv_f16_f32"]
    assert gemvs == ["launch_pdl", "launch", "launch_pdl"]   # mk, mm (reads the written cache early), mm_w
    ex.free()


def test_steps_on_tensor_cores_ask_one_carveout_for_their_kernels(monkeypatch):
    """A step whose products run on tensor cores asks every kernel but its GEMVs and copies for the same
    L1/shared-memory split (``ops.TC_STEP_CARVEOUT``), so neighbours may share an SM; a batch-1 step (GEMVs
    that read x through L1) leaves the split to the driver, and so does -1."""
    from runtime.kernels import ops

    def marks(batch):
        g = L.build_graph(L.config("tiny", batch=batch))
        lns, _ = plan_launches(g, _addresses(g, memplan.plan(g)).__getitem__, counters=1 << 30)
        return [(ln.kernel, ln.carveout) for n in lns for ln in n]

    b16 = marks(16)
    assert any(k in ops.GEMM_TC_NAMES for k, _ in b16) and any(k.startswith("attn_mma") for k, _ in b16)
    assert all(c == (-1 if k.startswith("gemv") or k == ops.MEMCPY else ops.TC_STEP_CARVEOUT) for k, c in b16)
    assert 0 <= ops.TC_STEP_CARVEOUT <= 100
    assert {c for _, c in marks(1)} == {-1}
    monkeypatch.setattr(ops, "TC_STEP_CARVEOUT", -1)
    assert {c for _, c in marks(16)} == {-1}


@pytest.mark.parametrize("pdl", [False, True])
def test_executor_passes_the_carveout_with_every_launch(monkeypatch, pdl):
    """The executor hands each launch's split to the driver (``cuLaunchKernelEx``'s carveout attribute), also
    for launches that are not programmatic; the results do not change (fake driver)."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor
    from runtime.kernels import KernelLibrary, ops

    cfg = L.config("tiny", batch=16)
    g = L.build_graph(cfg)
    ex = Executor(g, memplan.plan(g), inputs=L.make_inputs(cfg), random_weights_seed=1, library=KernelLibrary(pdl=pdl))
    start = len(drv.carveouts)
    ex.run()
    launched = [ln for nid, _ in ex.plan.order for ln in ex.node_launches[nid] if ln.kernel != ops.MEMCPY]
    assert drv.carveouts[start:] == [(ln.kernel, ln.carveout) for ln in launched]
    assert {c for _, c in drv.carveouts[start:]} == {ops.TC_STEP_CARVEOUT}
    ex.free()


def test_without_cuda_bindings_the_carveout_is_dropped_not_the_launch(monkeypatch):
    """Without cuda.bindings (pycuda's prepared calls cannot carry a split) the launches go as before and
    give the same logits as with the split (fake driver)."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor
    from runtime.kernels import KernelLibrary, library

    cfg = L.config("tiny", batch=16)
    g = L.build_graph(cfg)
    outs = []
    for bindings in (True, False):
        monkeypatch.setattr(library, "pdl_supported", lambda b=bindings: b)
        ex = Executor(g, memplan.plan(g), inputs=L.make_inputs(cfg), random_weights_seed=1, library=KernelLibrary())
        start = len(drv.carveouts)
        ex.run()
        assert (len(drv.carveouts) > start) == bindings
        outs.append(ex.read("logits"))
        ex.free()
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize("batch", [0, -1, "2", 1.0, True])
def test_plan_step_refuses_a_batch_that_is_not_a_positive_row_count(batch):
    """``plan_step(batch=0)`` was taken as one row and ``batch="2"`` a raw TypeError: both name the value."""
    g = L.build_graph(L.config("tiny", batch=1))
    with pytest.raises(ValueError, match="batch"):
        plan_step(g, batch=batch)


@pytest.mark.parametrize("kw", [dict(hidden=96, heads=3, kv_heads=3, ffn=136, vocab=77, ctx=5),
                                dict(hidden=256, heads=2, kv_heads=1, ffn=520, vocab=130, ctx=3)])
@pytest.mark.parametrize("batch", [1, 5, 17, 33])
def test_plan_step_gives_serial_and_multi_stream_plans_the_same_kernels(kw, batch):
    """Multi-stream bits equal the serial bits only if both plans run the same kernels. On these shapes the
    ordinary 3-stream plan overlaps a fused attention group's tensors at 17-33 rows, so the registry runs
    that group node by node (other bits: seen on the H200), where the serial plan runs it as one kernel;
    ``plan_step`` chooses ``fused_groups`` there and the kernel lists agree."""
    from runtime.step import _kernels

    g = L.build_graph(L.config("tiny", batch=batch, **kw), "runtime")
    sched = L.multi_stream_schedule(g)
    assert _kernels(g, plan_step(g, batch=batch)) == _kernels(g, plan_step(g, sched, batch=batch))


def test_kv_poison_ranges_refuse_another_configs_graph():
    """A jitter test poisons the cache rows the step writes; ranges from another config (a larger batch,
    a longer context) would fall past the cache and the poison would test nothing."""
    cfg, g, _w, _inp = _tiny(2, seed=1)
    assert {r.tensor for r in L.kv_poison_ranges(g, cfg)} == {f"l{i}.{c}_cache" for i in range(cfg.layers)
                                                              for c in "kv"}
    for other in (replace(cfg, batch=cfg.batch + cfg.ctx), replace(cfg, ctx=cfg.ctx * 4),
                  replace(cfg, layers=cfg.layers + 1)):
        with pytest.raises(ValueError, match="poison range"):
            L.kv_poison_ranges(g, other)


def test_f16_activation_kernels_load_when_a_step_needs_them(monkeypatch):
    """The f16-activation kernels (``library.ON_DEMAND``) are not loaded with the library (loading them
    slowed the 1B batch-1 3-stream step by 2.8% on the H200, same launches and code) but when an executor
    builds a step that launches them, before any run or capture; a batch-1 step never loads them."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor
    from runtime.kernels import KernelLibrary
    from runtime.kernels.library import ON_DEMAND

    def loaded(lib):
        return (set(lib.funcs) | set(lib._cu_funcs)) & ON_DEMAND

    for batch in (24, 1):
        lib = KernelLibrary(pdl=True)
        assert not loaded(lib)
        cfg, g, w, inp = _tiny(batch, seed=4)
        ex = Executor(g, memplan.plan(g, L.multi_stream_schedule(g)), weights=w, inputs=inp, library=lib)
        used = {ln.kernel for lns in ex.node_launches.values() for ln in lns} & ON_DEMAND
        assert bool(used) == (batch == 24) and loaded(lib) == used
        ex.capture()
        ex.replay(1)
        assert np.array_equal(ex.read("logits"), emulate(g, ex.plan, w, inp)[0]["logits"])
        assert loaded(lib) == used
        ex.free()


def test_llama_f16_acts_graph():
    """``memplan.examples.llama(f16_acts=True)``: the activations that only feed weight products (``xa``,
    ``ha``, ``attn``, ``gu``, the final norm's ``fa``) are f16 and written by MULs/CONTs without in-place pairs
    (an f16 element over an f32 one is no in-place update), the name says so; serial and 3-stream plans
    verify; a non-bool value is refused."""
    cfg = L.config("tiny", batch=24)
    g = llama(cfg, fuse="runtime", f16_acts=True)
    assert g.name.endswith("-f16x") and not llama(cfg, fuse="runtime").name.endswith("-f16x")
    f16 = {t.id for t in g.tensors if t.kind == "intermediate" and t.view_of is None and t.attrs.get("dtype") == "f16"}
    assert f16 == {f"l{i}.{n}" for i in range(cfg.layers) for n in ("xa", "ha", "attn", "gu")} | {"fa"}
    for n in g.nodes:
        assert not (set(n.outputs) & f16 and n.inplace), n.id
    for sched in (None, L.multi_stream_schedule(g)):
        memplan.verify(g, memplan.plan(g, sched))
    with pytest.raises(ValueError, match="f16_acts"):
        llama(cfg, f16_acts="yes")


def _product_group(kind: str, M: int, xdt: str, ydt: str, *, inplace: bool = False) -> memplan.Graph:
    """A user's fusion group that starts with weight products (N = K = 64): ``swiglu`` (gate and up of x, SILU,
    MUL) or ``addnorm`` (product, ADD of r, RMS_NORM, MUL by nw), its last output ``y`` in ``ydt`` copied to
    an output without a shape (read back as bytes); ``inplace``: addnorm's product over its x."""
    N = K = 64
    eb = {"f32": 4, "f16": 2}
    b = memplan.GraphBuilder(f"{kind}-{M}-{xdt}-{ydt}")
    b.tensor("x", eb[xdt] * M * K, "input", shape=[M, K], dtype=xdt)

    def act(tid, dt="f32"):
        return b.tensor(tid, eb[dt] * M * N, "intermediate", shape=[M, N], dtype=dt)
    if kind == "swiglu":
        for w in ("wg", "wu"):
            b.tensor(w, 2 * N * K, "weight", shape=[N, K], dtype="f16")
        b.node("mg", "MUL_MAT", ["wg", "x"], act("g"), group="s")
        b.node("mu", "MUL_MAT", ["wu", "x"], act("u"), group="s")
        b.node("si", "SILU", ["g"], act("ga"), group="s", inplace={"ga": "g"})
        b.node("mul", "MUL", ["ga", "u"], act("y", ydt), group="s")
    else:
        b.tensor("r", 4 * M * N, "input", shape=[M, N], dtype="f32")
        b.tensor("w", 2 * N * K, "weight", shape=[N, K], dtype="f16")
        b.tensor("nw", 4 * N, "weight", shape=[N], dtype="f32")
        b.node("mm", "MUL_MAT", ["w", "x"], act("o"), group="s", inplace={"o": "x"} if inplace else None)
        b.node("add", "ADD", ["o", "r"], act("h"), group="s", inplace={"h": "o"})
        b.node("nrm", "RMS_NORM", ["h"], act("hn"), group="s")
        b.node("mul", "MUL", ["hn", "nw"], act("y", ydt), group="s")
    b.node("c", "CONT", ["y"], b.tensor("out", eb[ydt] * M * N, "output", dtype=ydt))
    return b.build()


def _run_product_group(kind: str, g, plan, **kw):
    """The group's ``y`` by the emulator and by numpy (float64 over the same f16-rounded operands)."""
    rng = np.random.default_rng(3)
    M = g.tensor("x").attrs["shape"][0]
    x = rng.standard_normal((M, 64)).astype(g.tensor("x").attrs["dtype"] == "f16" and np.float16 or np.float32)
    w = {k: (rng.standard_normal((64, 64)) * 0.1).astype(np.float16) for k in (("wg", "wu") if kind == "swiglu" else ("w",))}
    inp = {"x": x}
    xd = x.astype(np.float64)
    if kind == "swiglu":
        gs, us = xd @ w["wg"].astype(np.float64).T, xd @ w["wu"].astype(np.float64).T
        want = gs / (1 + np.exp(-gs)) * us
    else:
        w["nw"] = rng.standard_normal(64).astype(np.float32)
        inp["r"] = rng.standard_normal((M, 64)).astype(np.float32)
        h = xd @ w["w"].astype(np.float64).T + inp["r"]
        want = h / np.sqrt((h * h).mean(1, keepdims=True) + 1e-5) * w["nw"]
    _, mem, addr = emulate(g, plan, w, inp, **kw)
    dt = np.float16 if g.tensor("out").attrs["dtype"] == "f16" else np.float32
    return mem.view(addr["out"], want.size, dt).astype(np.float64).reshape(want.shape), want


@pytest.mark.parametrize("kind,M,gemv_norm", [("swiglu", 1, False), ("swiglu", 17, False), ("addnorm", 1, True)])
@pytest.mark.parametrize("xdt", ["f32", "f16"])
def test_product_groups_with_an_f16_output_write_f16(kind, M, gemv_norm, xdt):
    """A user's gate/up+SwiGLU or product+add+norm group whose last output is f16: with an f32 x the group's
    one-pass kernels (``gemv_swiglu_f16_f32``, ``gemm_tc_swiglu``, ``gemv_add_rms_f16_f32``) write f32 y, so
    they are not chosen (they were once the f16 tails existed: f32 elements over an f16 tensor, past its
    end); every device's choice gives the numpy values."""
    g = _product_group(kind, M, xdt, "f16")
    plan = memplan.plan(g, fused_groups=True)
    for wgmma in (False, True):
        got, want = _run_product_group(kind, g, plan, wgmma=wgmma, gemv_norm_min=0 if gemv_norm else GEMV_NORM_OFF)
        assert np.abs(got - want).max() < 1e-2 * np.abs(want).max(), wgmma


@pytest.mark.parametrize("xdt", ["f32", "f16"])
def test_a_product_over_its_own_x_reads_a_copy(xdt, monkeypatch):
    """A product the plan puts in place over its x (a user's in-place pair, here at the same address): every
    product kernel writes rows of y while other blocks still read x, so x is copied to scratch first and the
    product reads the copy (its group, product+add+norm, then runs node by node); the values are numpy's.
    (The emulator cannot race: the check is on the launches' arguments.)"""
    kind = "addnorm"
    g = _product_group(kind, 17, xdt, "f32", inplace=True)
    _pre_round51_planner(monkeypatch)   # (an f16 x is smaller than y: kept apart since round 51)
    plan = memplan.plan(g)
    y = g.node("mm").outputs[0]
    for wgmma in (False, True):
        nxt = iter(range(1 << 44, 1 << 62, 1 << 36))
        prog, addr = program_at(g, plan, lambda n, label, nxt=nxt: next(nxt), wgmma=wgmma)
        assert addr[y] == addr["x"]   # (the premise: the plan does put the product over x)
        reads = [ln.args[1] for lns in prog.launches.values() for ln in lns if ln.kernel in TC_GEMMS
                 or ln.kernel.startswith(("gemm", "gemv"))]
        assert reads and addr["x"] not in reads, (wgmma, reads)
        got, want = _run_product_group(kind, g, plan, wgmma=wgmma)
        assert np.abs(got - want).max() < 1e-2 * np.abs(want).max(), wgmma


def test_a_fused_norm_takes_only_an_f32_weight_that_tiles_its_rows():
    """RMS_NORM+MUL as one kernel reads w as f32, one copy per row: an f16 w (read past its end) or one that
    broadcasts over more than a row (binary_f32 tiles it over the flattened rows) is left to the nodes, which
    refuse the first by name and compute the second as the graph says."""
    def graph(wdt, nw):
        b = memplan.GraphBuilder(f"norm-{wdt}-{nw}")
        b.tensor("x", 4 * 2 * 64, "input", shape=[2, 64], dtype="f32")
        b.tensor("nw", {"f32": 4, "f16": 2}[wdt] * nw, "weight", shape=[nw], dtype=wdt)
        b.node("n", "RMS_NORM", ["x"], b.tensor("xn", 4 * 128, "intermediate", shape=[2, 64]), group="g")
        b.node("m", "MUL", ["xn", "nw"], b.tensor("y", 4 * 128, "output", shape=[2, 64]), group="g")
        return b.build()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 64)).astype(np.float32)
    g = graph("f16", 64)
    with pytest.raises(KernelError, match="'m'.*'nw' is f16"):
        emulate(g, memplan.plan(g), {"nw": np.ones(64, np.float16)}, {"x": x})
    g = graph("f32", 128)
    nw = rng.standard_normal(128).astype(np.float32)
    out = emulate(g, memplan.plan(g), {"nw": nw}, {"x": x})[0]["y"]
    want = (x / np.sqrt((x * x).mean(1, keepdims=True) + 1e-5)).reshape(-1) * nw
    assert np.allclose(out.reshape(-1), want, rtol=1e-5, atol=1e-6)


def test_weight_products_read_f16_leaves_a_malformed_shape_to_the_registry():
    """``weight_products_read_f16`` runs before the registry checks the graph (the executor's 'auto' PDL
    rule): a weight's shape attr that is no list is the registry's KernelError naming the node, not a
    TypeError from this query."""
    from runtime.kernels.ops import weight_products_read_f16

    b = memplan.GraphBuilder("bad-shape")
    b.node("mm", "MUL_MAT", [b.weight("w", 2 * 64 * 32, shape=5, dtype="f16"), b.input("x", 2 * 4 * 32, shape=[4, 32], dtype="f16")],
           b.output("y", 4 * 4 * 64, shape=[4, 64]))
    g = b.build()
    assert weight_products_read_f16(g) is False
    with pytest.raises(KernelError, match="'mm'.*'w'"):
        launches_for(g, lambda t: 1 << 20)


def test_emulate_returns_an_f16_output_as_its_values():
    """A user's graph whose output is f16 (a MUL may write one now): ``emulate`` returns its values as f32
    in its shape (it read the bytes as half as many f32 and failed to shape them)."""
    b = memplan.GraphBuilder("f16-out")
    b.node("m", "MUL", [b.input("a", 4 * 24, shape=[2, 12]), b.input("c", 4 * 12, shape=[12])],
           b.output("y", 2 * 24, shape=[2, 12], dtype="f16"))
    g = b.build()
    a, c = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 12), np.linspace(0.5, 2, 12, dtype=np.float32)
    out = emulate(g, memplan.plan(g), {}, {"a": a, "c": c})[0]["y"]
    assert out.dtype == np.float32 and np.array_equal(out, (a * c).astype(np.float16).astype(np.float32))
