"""GPU tests of the runtime (marker ``gpu``): conftest.py skips them without pycuda or a CUDA device.

What they prove on the device, for the tiny Llama config:
- the kernels compute the model: GPU logits and KV-cache rows match the float64 numpy reference
  (tolerances below), eager and CUDA-graph, one stream and several;
- the multi-stream result is bitwise the single-stream result (same kernels, deterministic reductions);
- under jitter (random spin delays before nodes, arena and written cache rows poisoned with NaN before
  every run) the verified multi-stream plan gives the same bits every time;
- at 8B layer sizes (2 layers, batch 1 and 16) multi-stream graphs give the serial bits too;
- both graph fusion modes (``fuse="norms"``: one kernel per node except RMS_NORM*w; ``fuse="runtime"``:
  fused add+norm, SwiGLU, ROPE+SET_ROWS and decode-attention kernels) pass the reference check, and at
  8B layer sizes the fused step's logits stay within 1e-4 (batch 1) of the unfused step's;
- the negative controls fail: the same jitter test on the plan with one required event removed, and on
  serial (ggml-style) lifetimes applied to the multi-stream schedule, sees corrupted outputs;
- programmatic dependent launches (PDL: a kernel starts while its predecessor runs and waits for it
  with ``griddepcontrol.wait``) keep the serial bits under jitter and at 8B sizes, batch 1 to 64; the
  same kernels built without the wait do not (negative control).

Tolerances (relative L2 error vs float64): batch 1 (GEMV, f32 activations, f16 weights/cache) 1e-4;
batches 3 and 40 (tensor-core path, 1 and 3 row tiles; it rounds activations to f16) 5e-3.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import llama_shapes

import memplan

pytestmark = pytest.mark.gpu

TOL = {1: 1e-4, 3: 5e-3, 16: 5e-3, 40: 5e-3}
JITTER_REPS = 30


@pytest.fixture(scope="module")
def lib():
    from runtime.kernels import KernelLibrary

    return KernelLibrary()


@pytest.fixture(scope="module")
def pdl_lib():
    """The same kernels launched with programmatic dependent launch (the executor picks which launches)."""
    from runtime.kernels import KernelLibrary

    return KernelLibrary(pdl=True)


#: a small config whose matrices are wide enough for the tensor-core GEMM's cluster splits (K 1024, 2048)
WIDE = {"hidden": 1024, "ffn": 2048, "heads": 8, "kv_heads": 2, "vocab": 256, "ctx": 32}


def _setup(batch: int, seed: int = 0, fuse: str | None = None, wide: bool = False):
    from runtime.models import llama as L

    cfg = L.config("tiny", batch=batch, **(WIDE if wide else {}))
    g = L.build_graph(cfg, fuse or L.DEFAULT_FUSE)
    w = L.make_weights(g, cfg, seed=seed)
    inp = L.make_inputs(cfg, seed=seed + 1)
    return L, cfg, g, w, inp


def _plans(g, L):
    serial = memplan.plan(g)
    multi = memplan.plan(g, L.multi_stream_schedule(g))
    assert multi.streams == 3 and multi.events
    return serial, multi


def _run(ex, mode: str, poison=None, jitter=None):
    if mode == "graph":
        ex.capture(poison=poison)
        ex.replay(2)
    else:
        ex.run(poison=poison, jitter=jitter)
    return ex.read("logits")


@pytest.mark.parametrize("fuse", ["norms", "runtime"])
@pytest.mark.parametrize("batch,wide", [(1, False), (3, False), (40, False), (16, True)])
def test_matches_numpy_reference(lib, batch, wide, fuse):
    """Batch 16 runs the wide config: gemm_tc split over clusters, gate/up in one pass (fused graph),
    attn_batch_f16 - against the float64 reference, not only against another run."""
    from runtime.executor import Executor, Poison

    L, cfg, g, w, inp = _setup(batch, fuse=fuse, wide=wide)
    ref, ref_caches = L.reference_forward(cfg, w, inp)
    serial, multi = _plans(g, L)
    results = {}
    for pname, plan in (("serial", serial), ("multi", multi)):
        ex = Executor(g, plan, weights=w, inputs=inp, library=lib)
        try:
            for mode in ("eager", "graph"):
                out = _run(ex, mode, poison=Poison(ranges=L.kv_poison_ranges(g, cfg)))
                err = L.rel_err(out, ref)
                assert err < TOL[batch], f"{pname}/{mode}: rel err {err:.3g}"
                results[(pname, mode)] = out
            for li in range(cfg.layers):
                for c in ("k", "v"):
                    tid = f"l{li}.{c}_cache"
                    got = ex.read(tid, np.float16)
                    rows = slice(cfg.ctx, cfg.ctx + batch)
                    e = L.rel_err(got[rows], ref_caches[tid][rows])
                    assert e < 10 * TOL[batch], f"{pname}: cache {tid} rel err {e:.3g}"
        finally:
            ex.free()
    base = results[("serial", "eager")]
    for key, out in results.items():
        assert np.array_equal(out, base), f"{key} differs from serial eager"


@pytest.mark.parametrize("batch", [4, 16])
def test_head_size_96_step_matches_the_reference(lib, batch):
    """Head size 96 (d / 8 = 12, not a power of two) at several tokens: the attention group runs as one
    generic attn_mma launch (it ran node by node before), in the serial and the 3-stream plan, eager and
    graph, KV rows poisoned first: within the tensor-core tolerance of the float64 reference and bitwise
    equal across plans and modes."""
    from runtime.executor import Executor, Poison
    from runtime.models import llama as L

    cfg = L.config("tiny", batch=batch, hidden=384, heads=4, kv_heads=2)
    g = L.build_graph(cfg, "runtime")
    w, inp = L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)
    ref = L.reference_forward(cfg, w, inp)[0]
    outs = {}
    for pname, plan in zip(("serial", "multi"), _plans(g, L), strict=True):
        ex = Executor(g, plan, weights=w, inputs=inp, library=lib)
        try:
            assert any(ln.kernel.startswith("attn_mma") for lns in ex.node_launches.values() for ln in lns)
            for mode in ("eager", "graph"):
                outs[(pname, mode)] = out = _run(ex, mode, poison=Poison(ranges=L.kv_poison_ranges(g, cfg)))
                assert L.rel_err(out, ref) < 5e-3, f"{pname}/{mode}: rel err {L.rel_err(out, ref):.3g}"
        finally:
            ex.free()
    base = outs[("serial", "eager")]
    assert all(np.array_equal(o, base) for o in outs.values())


#: shapes no bundled config has: hidden sizes and head sizes off the kernels' fast paths (80 = 5 x 16, 96 =
#: 3 x 32), an FFN and a vocabulary not multiples of 16, tiny caches
ODD = {"h80": dict(hidden=80, heads=5, kv_heads=1, ffn=200, vocab=1003, ctx=7),
       "h96": dict(hidden=96, heads=3, kv_heads=3, ffn=136, vocab=77, ctx=5),
       "h256": dict(hidden=256, heads=2, kv_heads=1, ffn=520, vocab=130, ctx=3),
       # one layer of the 1B: at 2-16 rows its down projection splits K over a cluster of 16 (ops.tc_choice)
       "1b-layer": dict(hidden=2048, heads=32, kv_heads=8, ffn=8192, vocab=1000, ctx=9, layers=1)}


@pytest.mark.parametrize("batch", [1, 5, 33])
@pytest.mark.parametrize("shape", list(ODD))
def test_odd_shapes_match_the_reference(pdl_lib, shape, batch):
    """Whatever kernels the registry picks for shapes off the fast paths (fallback GEMMs, odd head sizes,
    ragged vocabularies), the step is within tolerance of the float64 reference, serial and 3-stream
    plans (``plan_step``'s: an ordinary plan may overlap a fused group's tensors, and the registry then
    runs that group node by node, with other bits; the CPU test checks the kernels match), eager and
    graph, PDL by the default policy, KV rows poisoned first, bitwise equal across them."""
    from runtime.executor import Executor, Poison
    from runtime.models import llama as L
    from runtime.step import plan_step

    cfg = L.config("tiny", batch=batch, **ODD[shape])
    g = L.build_graph(cfg, "runtime")
    w, inp = L.make_weights(g, cfg, seed=7), L.make_inputs(cfg, seed=8)
    ref = L.reference_forward(cfg, w, inp)[0]
    outs = {}
    plans = {"serial": plan_step(g, batch=batch), "multi": plan_step(g, L.multi_stream_schedule(g), batch=batch)}
    for pname, plan in plans.items():
        ex = Executor(g, plan, weights=w, inputs=inp, library=pdl_lib)
        try:
            for mode in ("eager", "graph"):
                outs[(pname, mode)] = out = _run(ex, mode, poison=Poison(ranges=L.kv_poison_ranges(g, cfg)))
                err = L.rel_err(out, ref)
                assert np.isfinite(out).all() and err < (1e-4 if batch == 1 else 5e-3), f"{pname}/{mode}: {err:.3g}"
        finally:
            ex.free()
    base = outs[("serial", "eager")]
    assert all(np.array_equal(o, base) for o in outs.values())


@settings(max_examples=24, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(shape=llama_shapes(max_hidden=2048), batch=st.integers(1, 64), fuse=st.sampled_from(["norms", "runtime"]))
def test_random_llama_shapes_match_the_reference(pdl_lib, shape, batch, fuse):
    """Llama steps off the named configs (odd head sizes, grouped queries, ragged FFN widths and
    vocabularies, an empty cache, batches 1-64) on the device's own kernel choices: within tolerance of the
    float64 reference, serial and 3-stream plans, eager and graph, PDL by the default policy, arena and the
    step's cache rows poisoned with NaN first; every run bitwise equal to the serial eager one."""
    from runtime.executor import Executor, Poison
    from runtime.models import llama as L
    from runtime.step import plan_step

    cfg = L.config("tiny", batch=batch, **shape)
    g = L.build_graph(cfg, fuse)
    w, inp = L.make_weights(g, cfg, seed=11), L.make_inputs(cfg, seed=12)
    ref = L.reference_forward(cfg, w, inp)[0]
    outs = {}
    for pname, sched in (("serial", None), ("multi", L.multi_stream_schedule(g))):
        ex = Executor(g, plan_step(g, sched, batch=batch), weights=w, inputs=inp, library=pdl_lib)
        try:
            for mode in ("eager", "graph"):
                outs[(pname, mode)] = out = _run(ex, mode, poison=Poison(ranges=L.kv_poison_ranges(g, cfg)))
                err = L.rel_err(out, ref)
                assert err < (1e-4 if batch == 1 else 5e-3), f"{shape} batch {batch} {pname}/{mode}: {err:.3g}"
        finally:
            ex.free()
    base = outs[("serial", "eager")]
    assert all(np.array_equal(o, base) for o in outs.values()), f"{shape} batch {batch}"


@pytest.mark.parametrize("launch", ["plain", "pdl"])
@pytest.mark.parametrize("batch", [1, 16, 40])
@pytest.mark.parametrize("fuse", ["norms", "runtime"])
def test_jitter_multi_stream_is_stable(lib, pdl_lib, fuse, batch, launch):
    """Batch 16 runs the wide config: its matrix products are tensor-core GEMMs split over clusters; batch
    40 too, and its runtime-fused graph carries f16 activations into gemm_ws (a producer warp, mbarriers).
    "pdl": every kernel that follows a kernel on its stream (jitter spins included) is a programmatic
    dependent launch, and the plain serial bits must still come out every time."""
    from runtime.executor import Executor, Jitter, Poison

    L, cfg, g, w, inp = _setup(batch, seed=5, fuse=fuse, wide=batch > 1)
    serial, multi = _plans(g, L)
    ex = Executor(g, serial, weights=w, inputs=inp, library=lib)
    base = _run(ex, "eager")
    ex.free()
    kw = {"library": pdl_lib, "pdl_policy": "chain"} if launch == "pdl" else {"library": lib}
    ex = Executor(g, multi, weights=w, inputs=inp, **kw)
    poison = Poison(ranges=L.kv_poison_ranges(g, cfg))
    # the same schedule planned with fused_groups (no staging copies before fused groups)
    fg = Executor(g, memplan.plan(g, L.multi_stream_schedule(g), fused_groups=True), weights=w, inputs=inp, **kw)
    try:
        for rep in range(JITTER_REPS):
            out = _run(ex, "eager", poison=poison, jitter=Jitter(seed=rep))
            assert np.array_equal(out, base), f"jitter rep {rep}: multi-stream output differs"
            if rep % 3 == 0:
                out = _run(fg, "eager", poison=poison, jitter=Jitter(seed=100 + rep))
                assert np.array_equal(out, base), f"jitter rep {rep}: the fused_groups plan's output differs"
    finally:
        ex.free()
        fg.free()


def _cluster_of_16(lib):
    """The tiny Llama with 1B's layer shapes at batch 4 (whose K GEMM splits over a cluster of 16 on Hopper), its
    weights and inputs, and the serial plan's bits: ``(cfg, g, w, inp, base)``."""
    from runtime.executor import Executor
    from runtime.models import llama as L
    from runtime.step import plan_step

    cfg = L.config("tiny", batch=4, **ODD["1b-layer"])
    g = L.build_graph(cfg, "runtime")
    w, inp = L.make_weights(g, cfg, seed=9), L.make_inputs(cfg, seed=10)
    ex = Executor(g, plan_step(g, batch=4), weights=w, inputs=inp, library=lib)
    try:
        base = _run(ex, "eager")
    finally:
        ex.free()
    return cfg, g, w, inp, base


@pytest.mark.parametrize("launch", ["plain", "pdl"])
def test_jitter_with_a_cluster_of_16(lib, pdl_lib, launch):
    """The 16-block clusters under jitter: one 1B layer at batch 4, whose down projection (fused with its
    add+norm) splits K over a cluster of 16 on Hopper (``ops.tc_choice``). The 3-stream plan under random
    delays, KV rows poisoned, plain or with every kernel after a kernel programmatic, gives the serial
    plan's bits every time."""
    from runtime.executor import Executor, Jitter, Poison
    from runtime.models import llama as L
    from runtime.step import plan_step

    cfg, g, w, inp, base = _cluster_of_16(lib)
    assert np.isfinite(base).all()
    kw = {"library": pdl_lib, "pdl_policy": "chain"} if launch == "pdl" else {"library": lib}
    ex = Executor(g, plan_step(g, L.multi_stream_schedule(g), batch=4), weights=w, inputs=inp, **kw)
    try:
        kernels = {ln.kernel for lns in ex.node_launches.values() for ln in lns}
        assert ("gemm_tc16m_f16_f32" in kernels) == lib.wgmma, sorted(kernels)
        poison = Poison(ranges=L.kv_poison_ranges(g, cfg))
        for rep in range(JITTER_REPS):
            out = _run(ex, "eager", poison=poison, jitter=Jitter(seed=300 + rep))
            assert np.array_equal(out, base), f"jitter rep {rep}: multi-stream output differs"
    finally:
        ex.free()


def _detects(lib, g, plan, w, inp, base, poison, late: tuple[str, ...] = (), **kw) -> int:
    """Runs with random jitter, then (``late``) runs that delay only those nodes: the count that differ. ``kw``:
    the Executor's launch options (``library``, ``pdl_policy``) where they are not ``lib``'s plain launches."""
    from runtime.executor import Executor, Jitter

    ex = Executor(g, plan, weights=w, inputs=inp, check_plan=False, **{"library": lib, **kw})
    bad = 0
    try:
        jitters = [Jitter(seed=1000 + rep) for rep in range(JITTER_REPS)]
        jitters += [Jitter(seed=2000 + rep, prob=1.0, only=late) for rep in range(10 if late else 0)]
        for jit in jitters:
            out = _run(ex, "eager", poison=poison, jitter=jit)
            bad += not np.array_equal(out, base)
    finally:
        ex.free()
    return bad


def _without_k_cache_event(g, multi):
    """``multi`` less the event K's cache write -> KQ, as (that event, the plan): ``verify`` must refuse it under
    rule 2 naming ``l0.kq`` and the writer; the negative controls then run it where jitter must see it."""
    from plan_mutators import plan_without_event

    ev = next(e for e in multi.events if e[1] == "l0.kq")
    broken = plan_without_event(multi, ev)
    said = rf"rule 2: node 'l0\.kq' reads '[^']+' but its writer '{re.escape(ev[0])}' does not happen-before"
    with pytest.raises(memplan.UnsafePlan, match=said):
        memplan.verify(g, broken)
    return ev, broken


@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("fuse", ["norms", "runtime"])
def test_negative_control_missing_event_is_detected(lib, fuse, batch):
    """One required event removed (K's cache write -> KQ): verify rejects it and the jitter test sees it
    (with fused kernels, the decode-attention kernel reads the K row before its ROPE+SET_ROWS wrote it)."""
    from runtime.executor import Executor, Poison

    L, cfg, g, w, inp = _setup(batch, seed=7, fuse=fuse, wide=batch > 1)
    serial, multi = _plans(g, L)
    ex = Executor(g, serial, weights=w, inputs=inp, library=lib)
    base = _run(ex, "eager")
    ex.free()
    ev, broken = _without_k_cache_event(g, multi)
    # in the fused graph the spins before the attention group's members all land before its one kernel,
    # so random jitter alone rarely makes K's branch late: 10 more runs delay that branch (stream 1) only
    bad = _detects(lib, g, broken, w, inp, base, Poison(ranges=L.kv_poison_ranges(g, cfg)),
                   late=("l0.mm_k", "l0.rope_k", "l0.set_k"))
    assert bad > 0, f"removing event {ev} went unnoticed in {JITTER_REPS} + 10 jittered runs"


@pytest.mark.parametrize("launch", ["plain", "pdl"])
@pytest.mark.parametrize("batch", [1, 40])
def test_negative_control_missing_event_is_detected_at_batch_40_and_under_pdl(lib, pdl_lib, batch, launch):
    """``test_jitter_multi_stream_is_stable``'s other settings (batch 40's gemm_ws, every kernel a programmatic
    dependent launch) with the K cache event removed: the same check (the serial bits under jitter, KV rows
    poisoned) must see it, or that test would pass with the event gone (PDL: a kernel may start before the one
    before it ends, so its waits are what the control tests)."""
    from runtime.executor import Executor, Poison

    L, cfg, g, w, inp = _setup(batch, seed=5, fuse="runtime", wide=batch > 1)
    serial, multi = _plans(g, L)
    ex = Executor(g, serial, weights=w, inputs=inp, library=lib)
    base = _run(ex, "eager")
    ex.free()
    ev, broken = _without_k_cache_event(g, multi)
    kw = {"library": pdl_lib, "pdl_policy": "chain"} if launch == "pdl" else {}
    bad = _detects(lib, g, broken, w, inp, base, Poison(ranges=L.kv_poison_ranges(g, cfg)),
                   late=("l0.mm_k", "l0.rope_k", "l0.set_k"), **kw)
    assert bad > 0, f"removing event {ev} went unnoticed in {JITTER_REPS} + 10 jittered {launch} runs"


@pytest.mark.parametrize("launch", ["plain", "pdl"])
def test_negative_control_a_cluster_of_16_without_its_k_cache_event_is_detected(lib, pdl_lib, launch):
    """``test_jitter_with_a_cluster_of_16`` with the K cache event removed from its 3-stream plan: the same check
    must see it (the serial plan's bits, KV rows poisoned, jittered), plain and programmatic."""
    from runtime.executor import Poison
    from runtime.models import llama as L
    from runtime.step import plan_step

    cfg, g, w, inp, base = _cluster_of_16(lib)
    multi = plan_step(g, L.multi_stream_schedule(g), batch=4)
    ev, broken = _without_k_cache_event(g, multi)
    kw = {"library": pdl_lib, "pdl_policy": "chain"} if launch == "pdl" else {}
    bad = _detects(lib, g, broken, w, inp, base, Poison(ranges=L.kv_poison_ranges(g, cfg)),
                   late=("l0.mm_k", "l0.rope_k", "l0.set_k"), **kw)
    assert bad > 0, f"removing event {ev} went unnoticed in {JITTER_REPS} + 10 jittered {launch} runs"


def test_negative_control_serial_lifetimes_on_streams(lib):
    """Offsets planned for the serial order (ggml's assumption) run on the multi-stream schedule. On the
    one-kernel-per-node graph: in the fused graph the overlaps this plan gets wrong (xa with kr and qr)
    are tensors inside fusion groups that the fused kernels never write, so nothing could go wrong."""
    from plan_mutators import plan_with_offsets_of

    from runtime.executor import Executor, Poison

    L, cfg, g, w, inp = _setup(1, seed=9, fuse="norms")
    serial, multi = _plans(g, L)
    ex = Executor(g, serial, weights=w, inputs=inp, library=lib)
    base = _run(ex, "eager")
    ex.free()
    broken = plan_with_offsets_of(multi, serial)
    with pytest.raises(memplan.UnsafePlan, match=r"rule 3: tensors '[^']+' and '[^']+' overlap in the arena"):
        memplan.verify(g, broken)
    bad = _detects(lib, g, broken, w, inp, base, Poison(ranges=L.kv_poison_ranges(g, cfg)))
    assert bad > 0, f"serial lifetimes on 3 streams went unnoticed in {JITTER_REPS} jittered runs"


@pytest.mark.parametrize("fuse", ["norms", "runtime"])
@pytest.mark.parametrize("batch", [1, 16, 64])
def test_streams_match_serial_at_scale(lib, pdl_lib, batch, fuse):
    """8B-sized layers (2 of them): multi-stream CUDA graphs give the serial eager bits, arena and written
    cache rows poisoned before every replay; so do the serial and multi-stream graphs with programmatic
    dependent launches (policy "chain", at every batch, not only where "auto" takes it; with L2 prefetches
    and with the GEMV+add+norm kernel too), and an executor left to its defaults (its own library, policy
    "auto")."""
    from runtime.executor import Executor, Poison
    from runtime.models import llama as L

    plain = lib
    cfg = L.config("8b", batch=batch, layers=2)
    g = L.build_graph(cfg, fuse)
    inp = L.make_inputs(cfg, seed=3)
    serial, multi = memplan.plan(g), memplan.plan(g, L.multi_stream_schedule(g))
    # planned with fused_groups (runtime.step.plan_step where that changes the kernels): no group stages an input in a scratch copy
    fg_serial, fg_multi = (memplan.plan(g, fused_groups=True),
                            memplan.plan(g, L.multi_stream_schedule(g), fused_groups=True))
    poison = Poison(ranges=L.kv_poison_ranges(g, cfg))
    base_ex = Executor(g, serial, inputs=inp, random_weights_seed=3, library=plain)
    exes = []
    try:
        base_ex.run(poison=poison)
        base = base_ex.read("logits")
        assert np.all(np.isfinite(base))
        pf = L.prefetch_plan(g, cfg)
        # the last one runs the (opt-in) GEMV+add+norm kernel, whose bits equal a GEMV then add+norm
        cases = [(plain, serial, (), None), (plain, multi, (), None), (plain, multi, pf, None), (plain, multi, (), 0),
                 (pdl_lib, serial, (), None), (pdl_lib, multi, (), None), (pdl_lib, multi, pf, None),
                 (pdl_lib, multi, (), 0), (None, multi, (), None), (plain, fg_serial, (), None),
                 (pdl_lib, fg_multi, (), None), (None, fg_multi, (), None)]
        for klib, plan, prefetch, gn in cases:
            kw = {} if gn is None else {"gemv_norm_min": gn}
            if klib is not None:
                kw.update(library=klib, pdl_policy="chain")
            ex = Executor(g, plan, inputs=inp, weights_from=base_ex, prefetch=prefetch, **kw)
            exes.append(ex)
            ex.capture(poison=poison)
            pdl = ex.lib.pdl and ex.pdl_on
            for rep in range(5 if pdl else 3):
                ex.replay(1)
                out = ex.read("logits")
                assert np.array_equal(out, base), (
                    f"graph on {plan.streams} stream(s), pdl={pdl}, default={klib is None}, "
                    f"prefetch={bool(prefetch)}, gemv_norm={gn}, replay {rep} differs")
    finally:
        for ex in exes:
            ex.free()
        base_ex.free()


@pytest.mark.parametrize("batch", [1, 16, 40])
def test_negative_control_pdl_without_wait_is_detected(lib, batch):
    """The same kernels compiled without ``griddepcontrol.wait`` (``-DPDL_NO_WAIT``): launched plainly
    they still give the serial bits (so the build is not what differs); launched as programmatic
    dependents under the policy the check above uses ("chain"), on the serial and the multi-stream plan,
    with the arena poisoned before every replay, they must not: that check can see a missing wait."""
    from runtime.executor import Executor, Poison
    from runtime.kernels import KernelLibrary
    from runtime.models import llama as L

    broken = KernelLibrary(pdl=True, options=("-DPDL_NO_WAIT",))
    cfg = L.config("8b", batch=batch, layers=2)
    g = L.build_graph(cfg)
    inp = L.make_inputs(cfg, seed=3)
    plans = {"serial": memplan.plan(g), "multi": memplan.plan(g, L.multi_stream_schedule(g))}
    poison = Poison(ranges=L.kv_poison_ranges(g, cfg))
    base_ex = Executor(g, plans["serial"], inputs=inp, random_weights_seed=3, library=lib)
    exes = []
    try:
        base_ex.run(poison=poison)
        base = base_ex.read("logits")
        plain = Executor(g, plans["serial"], inputs=inp, library=broken, weights_from=base_ex, pdl_policy="off")
        exes.append(plain)
        plain.run(poison=poison)
        assert np.array_equal(plain.read("logits"), base), "the no-wait build differs even without PDL"
        for name, plan in plans.items():
            ex = Executor(g, plan, inputs=inp, library=broken, weights_from=base_ex, pdl_policy="chain")
            exes.append(ex)
            ex.capture(poison=poison)
            bad = 0
            for _ in range(5):
                ex.replay(1)
                bad += not np.array_equal(ex.read("logits"), base)
            assert bad > 0, f"{name}: kernels that never wait for their predecessor gave the serial bits in 5 replays"
    finally:
        for ex in exes:
            ex.free()
        base_ex.free()


def _kernel_node_carveouts(graph) -> list[int]:
    """The preferred shared-memory split of every kernel node of a captured CUDA graph."""
    from cuda.bindings import driver as cu

    from runtime.cuda_util import check

    n = check(cu.cuGraphGetNodes(graph, 0), "cuGraphGetNodes")[1]
    nodes = check(cu.cuGraphGetNodes(graph, n), "cuGraphGetNodes")[0]
    kernel = cu.CUgraphNodeType.CU_GRAPH_NODE_TYPE_KERNEL
    attr = cu.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT
    return [int(check(cu.cuGraphKernelNodeGetAttribute(nd, attr), "cuGraphKernelNodeGetAttribute").sharedMemCarveout)
            for nd in nodes if check(cu.cuGraphNodeGetType(nd), "cuGraphNodeGetType") == kernel]


@pytest.mark.parametrize("batch", [1, 16])
def test_captured_graphs_keep_each_launchs_carveout(lib, pdl_lib, batch):
    """The split a launch asks (``Launch.carveout``: every kernel of a tensor-core step but its GEMVs) is a
    property of its node in the captured CUDA graph, plain and PDL launches alike; a batch-1 step asks none."""
    from runtime.executor import Executor
    from runtime.kernels import ops

    L, cfg, g, w, inp = _setup(batch, wide=True)
    _serial, multi = _plans(g, L)
    for library in (lib, pdl_lib):
        ex = Executor(g, multi, weights=w, inputs=inp, library=library)
        try:
            ex.capture()
            asked = [ln.carveout for lns in ex.node_launches.values() for ln in lns if ln.kernel != ops.MEMCPY]
            got = [c for (graph, _exe) in ex._graphs.values() for c in _kernel_node_carveouts(graph)]
            assert len(got) >= len(asked) and got.count(ops.TC_STEP_CARVEOUT) == asked.count(ops.TC_STEP_CARVEOUT)
            assert (asked.count(ops.TC_STEP_CARVEOUT) > 0) == (batch > 1)
        finally:
            ex.free()


@pytest.mark.parametrize("batch", [1, 16])
def test_fused_close_to_unfused_at_scale(batch):
    """8B-sized layers (2 of them), same weights: the fused step's logits are within 1e-4 (batch 1) /
    5e-3 (batch 16, tensor-core GEMMs round activations to f16) of the one-kernel-per-node step's."""
    from runtime.executor import Executor
    from runtime.kernels import KernelLibrary
    from runtime.models import llama as L

    lib = KernelLibrary()
    cfg = L.config("8b", batch=batch, layers=2)
    inp = L.make_inputs(cfg, seed=4)
    outs = {}
    for fuse in ("norms", "runtime"):
        g = L.build_graph(cfg, fuse)
        ex = Executor(g, memplan.plan(g, L.multi_stream_schedule(g)), inputs=inp, random_weights_seed=4, library=lib)
        try:
            if fuse == "runtime":
                assert ex.fused_groups == len(g.groups()) or batch > 1
            ex.capture()
            ex.replay(1)
            outs[fuse] = ex.read("logits")
        finally:
            ex.free()
    assert np.all(np.isfinite(outs["runtime"]))
    err = L.rel_err(outs["runtime"], outs["norms"])
    assert err < (1e-4 if batch == 1 else 5e-3), f"fused vs unfused rel err {err:.3g}"


@pytest.mark.parametrize("cl", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("warps", [4, 8])
def test_tensor_core_gemm_matches_numpy(lib, cl, warps):
    """Every gemm_tc build and cluster size at rows 1..64 of x (the narrow build above 16 rows in groups
    of 16), on fresh random inputs with the output poisoned: within 1e-5 of float64 on the same
    f16-rounded operands, every row < M written and nothing past it, two runs bitwise equal (the cluster's
    partial sums are added in rank order), and both builds giving the same bits (the same k order)."""
    import pycuda.driver as cuda

    from runtime.kernels import dynamic_smem, gemm_tc_launch
    from runtime.kernels.ops import GEMM_TC, PORTABLE_CLUSTER, TC_BUILDS, gemm_tc_fits

    if cl > PORTABLE_CLUSTER and not lib.wgmma:
        pytest.skip("clusters of 16 need Hopper and cuda.bindings (KernelLibrary.wgmma)")

    rng = np.random.default_rng(cl * 10 + warps)
    # K: several super-tiles per block, and fewest (one of the narrow build, two of the 64-row one)
    N, Ks = 32 * warps, (256 * cl * 3, 256 * cl)
    Whs = {K: (rng.standard_normal((N, K)) / np.sqrt(K)).astype(np.float16) for K in Ks}
    Ws = {K: cuda.to_device(w) for K, w in Whs.items()}
    fence = 256
    y = cuda.mem_alloc((64 * N + fence) * 4)
    s = cuda.Stream()
    x = None
    try:
        for M, K in [(M, K) for M in (1, 2, 7, 8, 9, 16, 17, 33, 50, 64) for K in Ks]:
            Wh = Whs[K]
            W = Ws[K]
            xh = (rng.standard_normal((M, K)) * 3).astype(np.float32)
            if x is not None:
                x.free()
            x = cuda.to_device(xh)   # exactly M rows: a read past row M - 1 is out of bounds (compute-sanitizer)
            ref = xh.astype(np.float16).astype(np.float64) @ Wh.astype(np.float64).T
            by_build = {}
            # the wgmma build (8-warp blocks of 256 weight rows; sm_90a) adds k in its own order: its own bits
            for build in [b for b in TC_BUILDS if (cl, b) in GEMM_TC and (b != "g" or (lib.wgmma and warps == 8))]:
                assert gemm_tc_fits(M, N, K, warps, cl, build)
                ln = gemm_tc_launch(int(W), int(x), int(y), M, N, K, warps, cl, build)
                assert dynamic_smem(ln) > 0
                outs = []
                for _ in range(2):
                    cuda.memset_d32(y, 0x7FC00000, 64 * N + fence)
                    lib.launch(ln, s, pdl=False)
                    s.synchronize()
                    got = np.empty(64 * N + fence, np.float32)
                    cuda.memcpy_dtoh(got, y)
                    outs.append(got)
                out = outs[0][:M * N].reshape(M, N)
                assert np.all(np.isfinite(out)), f"M={M} ({ln.kernel}): unwritten outputs"
                assert np.all(np.isnan(outs[0][M * N:])), f"M={M} ({ln.kernel}): wrote past row M"
                err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
                assert err < 1e-5, f"M={M} ({ln.kernel}): rel err {err:.3g}"
                assert np.array_equal(outs[0], outs[1], equal_nan=True), f"M={M} ({ln.kernel}): two runs differ"
                by_build[build] = outs[0]
            for build in set(by_build) - {"", "g"}:
                assert np.array_equal(by_build[""], by_build[build], equal_nan=True), f"M={M}: build {build!r} differs"
    finally:
        for b in (*Ws.values(), x, y):
            if b is not None:
                b.free()


@pytest.mark.parametrize("cl", [1, 2, 3, 4, 5, 6, 8])
def test_wgmma_build_splits_k_unevenly(lib, cl):
    """The wgmma build at every cluster size, K's 64-k stages split as evenly as they go: K of 5 cl + 1
    stages (ranks of 5 and 6), of 2 cl + 1 (2 and 3: fewer than the ring holds) and of cl (one each), rows
    1..64, plain and gate/up SwiGLU: within 1e-5 of float64 on the f16-rounded operands, nothing written past
    row M, two runs bitwise equal, and the pass bit for bit the two GEMMs then swiglu_f32 (the registry
    gives the pass its GEMMs' split for that). A rank that skipped or repeated a stage would be off by a
    whole stage's share of every product."""
    import pycuda.driver as cuda

    from runtime.kernels import Launch, gemm_tc_launch
    from runtime.kernels.ops import gemm_tc_fits, gemm_tc_swiglu_launch

    if not lib.wgmma:
        pytest.skip("the wgmma build needs sm_90a and cuda.bindings")
    rng = np.random.default_rng(cl)
    N, fence = 256, 256
    y, gy, uy, sy = (cuda.mem_alloc((64 * N + fence) * 4) for _ in range(4))
    s = cuda.Stream()
    bufs = [y, gy, uy, sy]

    def run(ln, out=y):
        cuda.memset_d32(out, 0x7FC00000, 64 * N + fence)
        lib.launch(ln, s, pdl=False)
        s.synchronize()
        got = np.empty(64 * N + fence, np.float32)
        cuda.memcpy_dtoh(got, out)
        return got

    try:
        for K in (64 * (5 * cl + 1), 64 * (2 * cl + 1), 64 * cl):
            Wg, Wu = ((rng.standard_normal((N, K)) / np.sqrt(K)).astype(np.float16) for _ in range(2))
            dg, du = cuda.to_device(Wg), cuda.to_device(Wu)
            bufs += [dg, du]
            for M in (1, 17, 33, 64):
                xh = (rng.standard_normal((M, K)) * 3).astype(np.float32)
                x = cuda.to_device(xh)
                bufs.append(x)
                xr = xh.astype(np.float16).astype(np.float64)
                g, u = xr @ Wg.astype(np.float64).T, xr @ Wu.astype(np.float64).T
                assert gemm_tc_fits(M, N, K, 8, cl, "g")
                plain = gemm_tc_launch(int(dg), int(x), int(y), M, N, K, 8, cl, "g")
                sw = gemm_tc_swiglu_launch(int(dg), int(du), int(x), int(y), M, N, K, 132, choice=("g", 8, cl))
                for ln, ref in ((plain, g), (sw, g / (1 + np.exp(-g)) * u)):
                    assert isinstance(ln, Launch) and ln.grid[0] == (N // 256 if ln is plain else N // 128) * cl
                    outs = [run(ln), run(ln)]
                    out = outs[0][:M * N].reshape(M, N)
                    err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
                    assert err < 1e-5, f"{ln.kernel} K={K} M={M}: rel err {err:.3g}"
                    assert np.all(np.isnan(outs[0][M * N:])), f"{ln.kernel} K={K} M={M}: wrote past row M"
                    assert np.array_equal(outs[0], outs[1], equal_nan=True), f"{ln.kernel}: two runs differ"
                # the pass = gate GEMM, up GEMM, swiglu_f32, bit for bit
                run(gemm_tc_launch(int(dg), int(x), int(gy), M, N, K, 8, cl, "g"), gy)
                run(gemm_tc_launch(int(du), int(x), int(uy), M, N, K, 8, cl, "g"), uy)
                two = run(Launch("swiglu_f32", (max(1, -(-M * N // 256)), 1, 1), (256, 1, 1),
                                 (int(gy), int(uy), int(sy), M * N)), sy)
                one = run(sw)
                assert np.array_equal(one[:M * N], two[:M * N]), f"{sw.kernel} K={K} M={M}: the pass differs"
    finally:
        for b in bufs:
            b.free()


def _attention_case(B: int, d: int, ctx: int, seed: int, heads: int = 32, G: int = 8):
    """Random q, cache (ctx cached rows plus the B new ones) and a causal mask for a decode-attention
    kernel, and the kernels' trailing scalar arguments (B, n_kv, G, heads, d, scale, log2 ROPE base)."""
    rng = np.random.default_rng(seed)
    n_kv = ctx + B
    q = rng.standard_normal((B, heads, d)).astype(np.float32)
    K = rng.standard_normal((n_kv, G, d)).astype(np.float16)
    V = rng.standard_normal((n_kv, G, d)).astype(np.float16)
    pos = (ctx + np.arange(B)).astype(np.int32)
    mask = np.zeros((B, n_kv), np.float32)
    for b in range(B):
        mask[b, ctx + b + 1:] = -np.inf
    return (q, pos, K, V, mask), (B, n_kv, G, heads, d, 1.0 / np.sqrt(d), float(np.log2(10000.0)))


def _emulated(kernel: str, grid, block, arrays, tail, n_out: int) -> np.ndarray:
    """What runtime.emulate computes for one attention launch on these inputs (float64)."""
    from runtime.emulate import Memory, run_launch
    from runtime.kernels import Launch

    mem = Memory()
    host = [mem.alloc(a.nbytes) for a in arrays] + [mem.alloc(n_out * 4)]
    for a, h in zip(arrays, host, strict=False):
        mem.view(h, a.size, a.dtype)[:] = a.reshape(-1)
    run_launch(mem, Launch(kernel, grid, block, tuple(host) + tail))
    return mem.view(host[-1], n_out, np.float32).astype(np.float64)


def _run_attention(lib, arrays, launch_for, n_out: int, runs: int = 1) -> list[np.ndarray]:
    """Each ``launch_for(device args)`` launch run ``runs`` times on the device, output NaN-poisoned first."""
    import pycuda.driver as cuda

    dev = [cuda.to_device(a) for a in arrays]
    out = cuda.mem_alloc(n_out * 4)
    s = cuda.Stream()
    try:
        ln = launch_for(tuple(int(x) for x in dev) + (int(out),))
        got = []
        for _ in range(runs):
            cuda.memset_d32(out, 0x7FC00000, n_out)
            lib.launch(ln, s, pdl=False)
            s.synchronize()
            got.append(np.empty(n_out, np.float32))
            cuda.memcpy_dtoh(got[-1], out)
        return got
    finally:
        for b in (*dev, out):
            b.free()


@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("B", [1, 2, 16, 64])
def test_batched_attention_kernels_match_numpy(lib, B, d):
    """The decode-attention kernels for several tokens (attn_batch_f16: cache rows split over a cluster of
    4; attn_batch1_f16: unsplit) and the batch-1-tuned attn_fused_f16 compute the same function: within
    1e-5 of the numpy emulation of it, on random q, cache and a causal mask, output poisoned first. The
    attn_fused kernel that knows d at compile time gives the generic one's bits."""
    from runtime.kernels import ATTN_CLUSTER, ATTN_FUSED, Launch

    heads, G = 32, 8
    arrays, tail = _attention_case(B, d, 200, seed=B)
    n_out, qb = B * heads * d, -(-B * (heads // G) // 16)
    ref = _emulated("attn_batch_f16", (4 * qb, G, 1), (256, 1, 1), arrays, tail, n_out)
    shapes = {"attn_fused_f16": ((ATTN_CLUSTER * B * heads, 1, 1), (256, 1, 1), tail[1:]),
              ATTN_FUSED[d]: ((ATTN_CLUSTER * B * heads, 1, 1), (256, 1, 1), tail[1:]),
              "attn_batch_f16": ((4 * qb, G, 1), (256, 1, 1), tail),
              "attn_batch1_f16": ((qb, G, 1), (256, 1, 1), tail)}
    outs = {}
    for name, (grid, block, scalars) in shapes.items():
        got = outs[name] = _run_attention(lib, arrays, lambda ptrs, n=name, gr=grid, bl=block, sc=scalars: Launch(n, gr, bl, ptrs + sc),
                                          n_out)[0]
        assert np.all(np.isfinite(got)), f"{name}: unwritten outputs"
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        assert err < 1e-5, f"{name} at batch {B}: rel err {err:.3g}"
    assert np.array_equal(outs[ATTN_FUSED[d]], outs["attn_fused_f16"]), f"{ATTN_FUSED[d]}: not the generic kernel's bits"


@pytest.mark.parametrize("d,ctx", [(128, 200), (64, 37), (128, 1000), (96, 77)])
@pytest.mark.parametrize("B", [1, 3, 16, 40, 64])
def test_tensor_core_attention_matches_numpy(lib, B, d, ctx):
    """attn_mma (tensor cores; cache rows split over clusters of 1, 2, 4 and 8 blocks) computes the decode
    attention of the other kernels: within 1e-3 of the numpy emulation that rounds q and the probabilities
    to f16 as its mma operands, on random q, cache and a causal mask, output poisoned first; rows of a
    cluster's last block past the cache (ctx not a multiple of 16 x 4 x CL) masked, two runs bitwise equal.
    The kernels that know d at compile time (d = 64, 128) give the generic kernel's bits; their 8-warp
    twins pass the same checks. d = 96 takes the copy loop for head sizes whose 16-byte chunks do not
    divide a warp. A planted bug in any fragment layout gives errors of order 1."""
    from runtime.kernels import ATTN_MMA, Launch
    from runtime.kernels.ops import attn_mma_kernel

    heads, G = 32, 8
    arrays, tail = _attention_case(B, d, ctx, seed=1000 * B + d)
    n_out, qb = B * heads * d, -(-B * (heads // G) // 16)
    ref = _emulated(ATTN_MMA[1], (qb, G, 1), (128, 1, 1), arrays, tail, n_out)

    def check(name: str, cl: int, threads: int, runs: int = 2) -> np.ndarray:
        got = _run_attention(lib, arrays, lambda ptrs: Launch(name, (cl * qb, G, 1), (threads, 1, 1), ptrs + tail),
                             n_out, runs=runs)
        assert np.all(np.isfinite(got[0])), f"{name} at batch {B}: unwritten outputs"
        err = np.linalg.norm(got[0] - ref) / np.linalg.norm(ref)
        assert err < 1e-3, f"{name} at batch {B}, d {d}: rel err {err:.3g}"
        assert np.array_equal(got[0], got[-1]), f"{name}: two runs differ"
        return got[0]

    for cl, name in ATTN_MMA.items():
        base = check(name, cl, 128)
        spec = attn_mma_kernel(cl, d)
        if spec != name:
            assert np.array_equal(check(spec, cl, 128, runs=1), base), f"{spec} at batch {B}: not the bits of {name}"
            check(attn_mma_kernel(cl, d, 8), cl, 256)   # 8 warps: its own bits (another split), deterministic


@pytest.mark.parametrize("d", [64, 128])
def test_tensor_core_attention_takes_queries_beyond_f16(lib, d):
    """attn_mma rounds q to f16 after scaling it by 1/sqrt(d): a query of magnitude 2e5 (beyond f16's
    65504 unscaled) still gives finite outputs, within 1e-3 of the emulation (which scales first too).
    Rounding before scaling made every output of that head inf or NaN."""
    from runtime.kernels import ATTN_MMA, Launch

    heads, G, B = 32, 8, 3
    arrays, tail = _attention_case(B, d, 100, seed=d)
    arrays[0][1, 5] *= 2e5 / np.abs(arrays[0][1, 5]).max()
    n_out, qb = B * heads * d, -(-B * (heads // G) // 16)
    ref = _emulated(ATTN_MMA[1], (qb, G, 1), (128, 1, 1), arrays, tail, n_out)
    assert np.all(np.isfinite(ref))
    for cl, name in ATTN_MMA.items():
        got = _run_attention(lib, arrays, lambda ptrs, n=name, c=cl: Launch(n, (c * qb, G, 1), (128, 1, 1), ptrs + tail),
                             n_out)[0]
        assert np.all(np.isfinite(got)), f"{name}: {np.sum(~np.isfinite(got))} non-finite outputs"
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        assert err < 1e-3, f"{name}, d {d}: rel err {err:.3g}"


@pytest.mark.parametrize("sms,K", [(None, 1024), (16, 4096)])
@pytest.mark.parametrize("M", [2, 16, 17, 64])
def test_gate_up_pass_gives_the_bits_of_two_gemms_and_swiglu(lib, M, sms, K):
    """The one-pass gate/up kernel equals gemm_tc on each matrix (same build and K split) then swiglu_f32
    bit for bit, which is what lets a plan fuse the group or not without changing the step's result: for
    the registry's choice and for every build, unsplit and split in two. With the device's SM count the
    small matrices split over clusters (one super-tile per block); told of 16 SMs, they take the 8B FFN's
    paths (unsplit narrow build up to 16 rows, 32 weight rows per warp above)."""
    import pycuda.driver as cuda

    from runtime.kernels import Launch
    from runtime.kernels.ops import TC_BUILDS, gemm_tc_fits, gemm_tc_launch, gemm_tc_swiglu_launch, tc_choice

    rng = np.random.default_rng(M)
    N, num_sms = 2048, sms or lib.num_sms
    Wg = (rng.standard_normal((N, K)) / 32).astype(np.float16)
    Wu = (rng.standard_normal((N, K)) / 32).astype(np.float16)
    xh = rng.standard_normal((M, K)).astype(np.float32)
    bufs = [cuda.to_device(a) for a in (Wg, Wu, xh)] + [cuda.mem_alloc(M * N * 4) for _ in range(4)]
    dWg, dWu, dx, g, u, y1, y2 = (int(b) for b in bufs)
    s = cuda.Stream()
    xr = xh.astype(np.float16).astype(np.float64)
    gv, uv = xr @ Wg.astype(np.float64).T, xr @ Wu.astype(np.float64).T
    ref = (gv / (1 + np.exp(-gv)) * uv).reshape(-1)
    try:
        chosen = tc_choice(M, N, K, num_sms)
        # told of 16 SMs the matrices are wide: up to 16 rows unsplit 8-warp blocks over 16-32 super-tiles
        # (the 8B FFN's path), above that 32 weight rows per warp in 8-warp blocks (8 x groups of them)
        assert sms is None or chosen == {2: ("", 8, 1), 16: ("", 8, 1), 17: ("m", 8, 2), 64: ("m", 8, 1)}[M]
        builds = [b for b in TC_BUILDS if b != "g" or lib.wgmma]   # the wgmma pass against the wgmma GEMMs too
        others = [(b, 8, cl) for b in builds for cl in (1, 2) if gemm_tc_fits(M, N, K, 8, cl, b)]
        assert len(others) == 2 * len(builds)
        for pick in [None, chosen, *others]:   # None: the registry's pass (its own build and warps, the GEMMs' split)
            one = gemm_tc_swiglu_launch(dWg, dWu, dx, y1, M, N, K, num_sms, pick)
            build, warps, cl = pick or chosen
            apart = [gemm_tc_launch(dWg, dx, g, M, N, K, warps, cl, build),
                     gemm_tc_launch(dWu, dx, u, M, N, K, warps, cl, build),
                     Launch("swiglu_f32", (max(1, -(-M * N // 256)), 1, 1), (256, 1, 1), (g, u, y2, M * N))]
            for b in (y1, y2):
                cuda.memset_d32(b, 0x7FC00000, M * N)
            for ln in [one, *apart]:
                lib.launch(ln, s, pdl=False)
            s.synchronize()
            a, b = np.empty(M * N, np.float32), np.empty(M * N, np.float32)
            cuda.memcpy_dtoh(a, y1)
            cuda.memcpy_dtoh(b, y2)
            assert np.all(np.isfinite(a)) and np.array_equal(a, b), f"{one.kernel} differs from {apart[0].kernel} + swiglu"
            assert np.linalg.norm(a - ref) / np.linalg.norm(ref) < 1e-5, one.kernel
    finally:
        for buf in bufs:
            buf.free()


@pytest.mark.parametrize("batch", [1, 16])
def test_norm_weight_before_the_wait_keeps_the_bits(pdl_lib, batch):
    """The add+norm kernels read their norm weight before the PDL wait (NORM_W_EARLY): the build without it
    gives the same logits bit for bit, both under PDL (policy "chain"), serial and on 3 streams."""
    from runtime.executor import Executor
    from runtime.kernels import KernelLibrary

    late = KernelLibrary(pdl=True, options=("-DNORM_W_EARLY=0",))
    L, cfg, g, w, inp = _setup(batch, seed=11, fuse="runtime", wide=batch > 1)
    for plan in _plans(g, L):
        outs = []
        for lib in (pdl_lib, late):
            ex = Executor(g, plan, weights=w, inputs=inp, library=lib, pdl_policy="chain")
            try:
                outs.append(_run(ex, "graph"))
            finally:
                ex.free()
        assert np.all(np.isfinite(outs[0])) and np.array_equal(outs[0], outs[1])


def _cache_product_runs(lib, early_marks: bool, replays: int):
    """The step of ``handgraphs.cache_product`` (a long product, SET_ROWS of it into a cache, then a GEMV by the
    cache) as a CUDA graph with PDL ("chain"), the written cache row poisoned with NaN before every replay;
    ``early_marks`` False leaves the registry's marks out (the negative control). Returns the plain
    reference and every replay."""
    import handgraphs as H

    from runtime.cuda_core import Poison
    from runtime.executor import Executor
    from runtime.kernels import registry
    from runtime.models.llama import PoisonRange

    rows, d, k = 1024, 4096, 4096   # K = d large enough for the GEMV's loads before its wait
    g = H.cache_product(rows, d, k)
    plan = memplan.plan(g)
    rng = np.random.default_rng(5)
    weights = {"cache": (rng.standard_normal((rows, d)) / 4).astype(np.float16),
               "w": (rng.standard_normal((rows, d)) / 16).astype(np.float16),
               "w0": (rng.standard_normal((d, k)) / 256).astype(np.float16)}
    inputs = {"xin": rng.standard_normal((1, k)).astype(np.float32), "idx": np.array([rows - 1], np.int32)}
    poison = Poison(ranges=(PoisonRange("cache", (rows - 1) * d * 2, d * 2),))
    ref = Executor(g, plan, weights=weights, inputs=inputs, library=lib.with_pdl(False))
    try:
        ref.capture(poison=poison)
        ref.replay(1)
        want = ref.read("s")
    finally:
        ref.free()
    saved = registry._no_early_reads_of_written_tensors
    if not early_marks:
        registry._no_early_reads_of_written_tensors = lambda *a: None
    try:
        ex = Executor(g, plan, weights=weights, inputs=inputs, library=lib, pdl_policy="chain")
    finally:
        registry._no_early_reads_of_written_tensors = saved
    got = []
    try:
        ex.capture(poison=poison)
        for _ in range(replays):
            ex.replay(1)
            got.append(ex.read("s"))
    finally:
        ex.free()
    return want, got


def test_product_of_a_weight_written_in_the_step_waits_for_its_writer(pdl_lib):
    """A GEMV by a cache that SET_ROWS writes in the same step (ggml's KQ for one head) starts only when the
    writer ends: its first weight loads come before its PDL wait, so the registry launches it plainly. Every
    replay gives the plain launches' bits, the written row poisoned before each."""
    want, got = _cache_product_runs(pdl_lib, True, 30)
    assert np.all(np.isfinite(want))
    for rep, out in enumerate(got):
        assert np.array_equal(out, want), f"replay {rep}"


def test_negative_control_early_product_of_a_written_weight(pdl_lib):
    """Negative control: the same GEMV launched as a programmatic dependent of the writer reads the row before
    it is written (NaN, poisoned) in some replay."""
    want, got = _cache_product_runs(pdl_lib, False, 30)
    assert any(not np.array_equal(out, want) for out in got), "the early GEMV never read a stale row"


@pytest.mark.parametrize("cl", [1, 2, 3, 4, 8])
def test_ws_gemm_matches_numpy(lib, cl):
    """gemm_ws (f16 x, sm_90a) at cluster sizes 1-8, plain and both SwiGLU builds, on widths that are no
    multiple of a block's rows and K that is no multiple of 64 (the tensor maps' zero fill), rows 1-64, with
    the output poisoned and fenced: within 1e-5 (SwiGLU, f16 out: 2e-3) of float64 on the same f16 operands,
    every row < M written and nothing past it, two runs bitwise equal (partial tiles added in rank order)."""
    import pycuda.driver as cuda

    from runtime.kernels import Launch
    from runtime.kernels.ops import WS_BUILDS, WS_PLAIN_NAMES

    if not lib.wgmma:
        pytest.skip("gemm_ws needs sm_90a and cuda.bindings")
    rng = np.random.default_rng(40 + cl)
    fence = 512
    s = cuda.Stream()
    bufs = []
    try:
        for N, K in ((200, 64 * 2 * cl + 8), (1000, 2048), (64, 64 * 3 * cl)):
            Wg, Wu = ((rng.standard_normal((N, K)) / np.sqrt(K)).astype(np.float16) for _ in range(2))
            dg, du = cuda.to_device(Wg), cuda.to_device(Wu)
            y = cuda.mem_alloc(64 * N * 4 + fence * 4)
            bufs += [dg, du, y]
            for M in (1, 17, 33, 64):
                xh = (rng.standard_normal((M, K)) * 2).astype(np.float16)
                x = cuda.to_device(xh)
                bufs.append(x)
                xr = xh.astype(np.float64)
                g, u = xr @ Wg.astype(np.float64).T, xr @ Wu.astype(np.float64).T
                for name, (nc, wt, _st) in WS_BUILDS.items():
                    sw = name not in WS_PLAIN_NAMES
                    rows = 64 * wt * nc
                    tiles = -(-(2 * N if sw else N) // rows)
                    args = (int(dg), int(du)) if sw else (int(dg),)
                    ln = Launch(name, (tiles * cl, 1, 1), (32 + 128 * nc, 1, 1), (*args, int(x), int(y), M, N, K, cl))
                    ref, nbytes, dt = (g / (1 + np.exp(-g)) * u, 2, np.float16) if sw else (g, 4, np.float32)
                    outs = []
                    for _ in range(2):
                        cuda.memset_d32(y, 0xFFFFFFFF, 64 * N + fence)   # all-ones: NaN in f32 and in f16
                        lib.launch(ln, s, pdl=False)
                        s.synchronize()
                        got = np.empty((64 * N + fence) * 4 // nbytes, dt)
                        cuda.memcpy_dtoh(got, y)
                        outs.append(got)
                    out = outs[0][:M * N].reshape(M, N).astype(np.float64)
                    what = f"{name} CL{cl} M={M} N={N} K={K}"
                    assert np.all(np.isfinite(out)), f"{what}: unwritten outputs"
                    assert np.all(np.isnan(outs[0][M * N:].astype(np.float32))), f"{what}: wrote past row M"
                    err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
                    assert err < (2e-3 if sw else 1e-5), f"{what}: rel err {err:.3g}"
                    assert np.array_equal(outs[0], outs[1], equal_nan=True), f"{what}: two runs differ"
    finally:
        for b in bufs:
            b.free()


def test_f16_activation_step_uses_gemm_ws(lib):
    """The runtime's graph at 17-64 tokens carries f16 activations into its products: on the H200 the step's
    products are gemm_ws launches (the SwiGLU pass writing f16 for down), its logits within the tensor
    cores' tolerance of the float64 reference and bit for bit those of the 3-stream plan."""
    from runtime.executor import Executor
    from runtime.step import plan_step

    if not lib.wgmma:
        pytest.skip("gemm_ws needs sm_90a and cuda.bindings")
    L, cfg, g, w, inp = _setup(48, seed=11, fuse="runtime", wide=True)
    assert g.tensor("l0.ha").attrs["dtype"] == "f16" and g.tensor("l0.gu").attrs["dtype"] == "f16"
    ref = L.reference_forward(cfg, w, inp)[0]
    outs = []
    for sched in (None, L.multi_stream_schedule(g)):
        ex = Executor(g, plan_step(g, sched, batch=48), weights=w, inputs=inp, library=lib)
        try:
            kernels = {ln.kernel for lns in ex.node_launches.values() for ln in lns}
            assert {"gemm_ws_f16x", "gemm_ws2_swiglu_f16x", "add_rms_norm4_f32_f16"} <= kernels, sorted(kernels)
            outs.append(_run(ex, "graph"))
        finally:
            ex.free()
    assert L.rel_err(outs[0], ref) < 5e-3
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize("H", [64, 2048, 4096])
def test_one_row_norms_write_f16_over_their_own_inputs(lib, H):
    """The one-row cases the registry fuses with an f16 y over the group's input (``runtime.kernels.fused``:
    a plan's final ``fa`` over the residual, ``llama(f16_acts=True)`` at one token): rms_norm4_f32_f16 with y
    at x, and add_rms_norm4_f32_f16 with y at its first input and h in a buffer of its own (the scratch the
    registry sends a dying h to) give the bits of the same launches into separate buffers, every time: the
    block holds its row in registers before its barrier and writes only after it."""
    import math

    import pycuda.driver as cuda

    from runtime.kernels import Launch
    from runtime.kernels.ops import RMS_EPS

    rng = np.random.default_rng(H)
    block = (min(1024, max(32, 32 * math.ceil(H / 16 / 32))), 1, 1)
    a, r = (rng.standard_normal(H).astype(np.float32) for _ in range(2))
    w = cuda.to_device(rng.standard_normal(H).astype(np.float32))
    da, dr, dh, dy = cuda.to_device(a), cuda.to_device(r), cuda.mem_alloc(4 * H), cuda.mem_alloc(2 * H)
    s = cuda.Stream()
    bufs = [w, da, dr, dh, dy]
    try:
        for kernel, args in (("rms_norm4_f32_f16", lambda x, y: (x, int(w), y, H, H, RMS_EPS)),
                             ("add_rms_norm4_f32_f16", lambda x, y: (x, int(dr), int(dh), int(w), y, H, H, RMS_EPS))):
            cuda.memcpy_htod(da, a)
            lib.launch(Launch(kernel, (1, 1, 1), block, args(int(da), int(dy))), s, pdl=False)
            s.synchronize()
            want = np.empty(H, np.float16)
            cuda.memcpy_dtoh(want, dy)
            for _ in range(20):
                cuda.memcpy_htod(da, a)
                lib.launch(Launch(kernel, (1, 1, 1), block, args(int(da), int(da))), s, pdl=False)
                s.synchronize()
                got = np.empty(H, np.float16)
                cuda.memcpy_dtoh(got, da)
                assert np.array_equal(got, want), kernel
    finally:
        for b in bufs:
            b.free()
