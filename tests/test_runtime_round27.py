"""The GPU runtime's CPU-side surface, round 27 (CPU only, no pycuda): launches past CUDA's grid limits, plans
of another graph, the device description the registry sizes launches for, the Python API without pycuda, a
tool's allocation failure, and property tests of the launch rules (``runtime.kernels.ops``) against the
kernels' stated preconditions (``ops.launch_problem``, from llama.cu's "Needs ..." comments)."""

from __future__ import annotations

import math
import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memplan
from memplan.errors import PlanMismatch
from runtime.binding import bind
from runtime.emulate import Memory, emulate, run_launch
from runtime.kernels import KernelError, Launch, launches_for, ops
from runtime.kernels.registry import launch_problem
from runtime.models import llama as L
from runtime.step import program_at

GRID_Y = ops.GRID_YZ_MAX


def _fake_alloc():
    nxt = iter(range(1 << 44, 1 << 62, 1 << 36))
    return lambda n, label: next(nxt)


def _within_limits(lns) -> None:
    for ln in lns:
        assert launch_problem(ln) is None, (ln.kernel, ln.grid, launch_problem(ln))


# --- launches past CUDA's grid limits ------------------------------------------------------------------------

def _set_rows_graph(rows: int, cols: int) -> memplan.Graph:
    b = memplan.GraphBuilder("set_rows")
    b.input("src", rows * cols * 4, shape=[rows, cols], dtype="f32")
    b.input("idx", rows * 4, shape=[rows], dtype="i32")
    b.node("n", "SET_ROWS", ["src", "idx"], b.output("dst", rows * cols * 2, shape=[rows, cols], dtype="f16"))
    return b.build()


def test_set_rows_past_65535_rows_is_split_and_writes_every_row():
    """Was one launch of grid (1, 70000): past CUDA's 65535 in y, a launch the GPU refuses mid-step, while the
    emulator (which ignores grids) wrote every row. Now one launch per 65535 rows, each over its rows of src
    and idx, and the emulation (which checks each launch) writes every row."""
    rows, cols = 70_000, 4
    g = _set_rows_graph(rows, cols)
    lns = launches_for(g, lambda t: 1 << 40)[0]
    assert [ln.grid[1] for ln in lns] == [GRID_Y, rows - GRID_Y]
    _within_limits(lns)
    rng = np.random.default_rng(0)
    src = rng.standard_normal((rows, cols)).astype(np.float32)
    idx = rng.permutation(rows).astype(np.int32)
    out, _, _ = emulate(g, memplan.plan(g), {}, {"src": src, "idx": idx})
    want = np.empty((rows, cols), np.float32)
    want[idx] = src.astype(np.float16).astype(np.float32)
    assert np.array_equal(out["dst"], want)


def test_kq_past_65535_token_heads_is_split_and_matches_numpy():
    """attn_kq_f16's grid y is tokens x KV heads: 33000 tokens over 2 KV heads were one launch of grid y
    66000. Now split by tokens, each launch over its rows of q and of the scores."""
    B, G, heads, D, n_kv = 33_000, 2, 4, 8, 3
    b = memplan.GraphBuilder("kq")
    b.weight("K", n_kv * G * D * 2, shape=[n_kv, G, D], dtype="f16")
    b.input("q", B * heads * D * 4, shape=[B, heads, D], dtype="f32")
    b.node("kq", "MUL_MAT", ["K", "q"], b.output("s", B * heads * n_kv * 4, shape=[B, heads, n_kv], dtype="f32"))
    g = b.build()
    lns = launches_for(g, lambda t: 1 << 40)[0]
    assert len(lns) == 2 and all(ln.kernel == "attn_kq_f16" and ln.grid[1] <= GRID_Y for ln in lns)
    _within_limits(lns)
    rng = np.random.default_rng(1)
    K = rng.standard_normal((n_kv, G, D)).astype(np.float16)
    q = rng.standard_normal((B, heads, D)).astype(np.float32)
    out, _, _ = emulate(g, memplan.plan(g), {"K": K}, {"q": q})
    grp = heads // G
    want = np.einsum("bhd,jhd->bhj", q.astype(np.float64), K.astype(np.float64)[:, np.arange(heads) // grp, :])
    assert np.allclose(out["s"], want / math.sqrt(D), rtol=1e-5, atol=1e-5)


def test_an_argument_past_a_32_bit_int_is_refused_by_name():
    """A softmax row of 2**31 elements: softmax_mask_f32 takes n as a 32-bit int (pycuda's pack raised
    struct.error at the launch). The registry names the node; nothing is allocated to find out."""
    n = 1 << 31
    b = memplan.GraphBuilder("wide")
    b.input("x", 4 * n, shape=[1, n], dtype="f32")
    b.input("m", 4 * n, shape=[1, n], dtype="f32")
    b.node("sm", "SOFT_MAX", ["x", "m"], b.output("y", 4 * n, shape=[1, n], dtype="f32"))
    with pytest.raises(KernelError, match=r"node 'sm'.*softmax_mask_f32.*argument 3 \(2147483648\).*32-bit int"):
        launches_for(b.build(), lambda t: 1 << 40)


def test_the_emulator_refuses_a_launch_the_gpu_would_not_run():
    """The emulation can fail on grids: one past CUDA's limits, and a gemm_tc grid that covers too few weight
    rows (the emulation would have computed them all)."""
    mem = Memory()
    a = mem.alloc(1 << 16)
    with pytest.raises(ValueError, match="past CUDA's limits"):
        run_launch(mem, Launch("set_rows_f32_f16", (1, GRID_Y + 1, 1), (256, 1, 1), (a, a, a, 4, 4)))
    good = ops.gemm_tc_launch(a, a, a, 4, 256, 256, 4, 1)
    assert launch_problem(good) is None
    with pytest.raises(ValueError, match="grid"):
        run_launch(mem, replace(good, grid=(good.grid[0] - 1, 1, 1)))


# --- plans of another graph, wrong kinds of argument, the device description ---------------------------------

def test_a_plan_of_another_graph_is_refused_by_bind_emulate_and_program_at():
    """Before: the batch-4 plan bound over the batch-1 graph (other sizes, so overlapping tensors) and the
    emulator and ``program_at`` ran it silently (they verify only when asked)."""
    c1, c4 = L.config("tiny", batch=1), L.config("tiny", batch=4)
    g1, g4 = L.build_graph(c1), L.build_graph(c4)
    p4 = memplan.plan(g4)
    for call in (lambda: bind(g1, p4), lambda: program_at(g1, p4, _fake_alloc()),
                 lambda: emulate(g1, p4, L.make_weights(g1, c1), L.make_inputs(c1))):
        with pytest.raises(PlanMismatch, match="plan was made for graph"):
            call()
    bind(g4, p4)   # its own graph binds


@pytest.mark.parametrize("graph,plan,words", [(None, "plan", "graph must be a memplan Graph, not NoneType"),
                                              ("graph", {}, "plan must be a memplan Plan .*not dict")])
def test_bind_names_an_argument_of_the_wrong_kind(graph, plan, words):
    """Was an AttributeError from deep inside ``bind`` (through ``program_at`` too)."""
    g = L.build_graph(L.config("tiny", batch=1))
    graph, plan = (g if graph == "graph" else graph), (memplan.plan(g) if plan == "plan" else plan)
    with pytest.raises(ValueError, match=words):
        program_at(graph, plan, _fake_alloc())


@pytest.mark.parametrize("kw,words", [(dict(num_sms=0), "num_sms 0"), (dict(num_sms=-3), "num_sms -3"),
                                      (dict(num_sms=1.5), "num_sms 1.5"), (dict(num_sms="132"), "num_sms '132'"),
                                      (dict(wgmma="no"), "wgmma 'no'")])
def test_the_device_description_is_checked(kw, words):
    """num_sms 0, -3 or 1.5 sized launches silently; '132' was a TypeError deep in a launch rule."""
    g = L.build_graph(L.config("tiny", batch=4))
    with pytest.raises(ValueError, match=words):
        program_at(g, memplan.plan(g), _fake_alloc(), **kw)


# --- the Python API without pycuda -----------------------------------------------------------------------------

def test_executors_without_pycuda_say_what_to_install(monkeypatch):
    """The docs' ``Executor(g, plan)`` snippet raised a bare "No module named 'pycuda'" from cuda_core.py. Now an
    ImportError still (``GpuStackMissing``), naming who needs it and what to install."""
    from runtime.cuda_util import GpuStackMissing
    from runtime.executor import Executor
    from runtime.kernels import KernelLibrary
    from runtime.multi_gpu import MultiGpuExecutor

    for name in ("pycuda", "pycuda.driver", "pycuda.autoprimaryctx"):
        monkeypatch.setitem(sys.modules, name, None)
    g = L.build_graph(L.config("tiny", batch=1))
    plan = memplan.plan(g)
    for who, make in (("Executor", lambda: Executor(g, plan)), ("KernelLibrary", KernelLibrary),
                      ("MultiGpuExecutor", lambda: MultiGpuExecutor(g, plan))):
        with pytest.raises(GpuStackMissing, match=rf"runtime: {who} needs pycuda .*pip install -e '\.\[cuda\]'"):
            make()
    assert issubclass(GpuStackMissing, ImportError)


def test_bench_scatter_that_cannot_allocate_is_one_line(capsys, monkeypatch):
    """``--big-mib 100000`` (within the option's range) was torch's allocator traceback on a smaller machine."""
    pytest.importorskip("torch")
    from runtime.aten import bench_scatter

    def no_memory(*_a, **_k):   # (what torch.randn raised for the 100 GB buffer on this machine)
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")
    monkeypatch.setattr(bench_scatter, "build_module", no_memory)
    assert bench_scatter.main(["--big-mib", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--big-mib 100000: cannot allocate" in err and "Traceback" not in err, err


# --- the launch rules against the kernels' preconditions -------------------------------------------------------

DIMS = st.one_of(st.integers(1, 300), st.sampled_from([8, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 14336]),
                 st.integers(1, 200).map(lambda v: 64 * v), st.integers(1, 40).map(lambda v: 256 * v))
SMS = st.sampled_from([1, 2, 8, 16, 66, 108, 132, 1000])
ADDR = st.integers(0, 64).map(lambda k: (1 << 40) + 2 * k)   # any f16 element offset


@settings(max_examples=400, deadline=None)
@given(M=st.integers(1, 80), N=DIMS, K=DIMS, sms=SMS, wgmma=st.booleans(), w=ADDR, x=ADDR, y=ADDR)
def test_every_product_launch_meets_its_kernels_preconditions(M, N, K, sms, wgmma, w, x, y):
    """``mul_mat_launch`` (any address) and ``product_launch`` (these addresses, f32 x and y on 4 bytes) over
    random shapes: every launch is one its kernel computes in full (grid, block, divisibility, shared
    memory), and ``product_launch``'s is aligned as its kernel needs, else the naive kernel."""
    x, y = x & ~3, y & ~3
    ln = ops.mul_mat_launch(0, 0, 0, M, N, K, sms, wgmma)
    assert launch_problem(ln) is None, (ln, launch_problem(ln))
    at = ops.product_launch(w, x, y, M, N, K, sms, wgmma)
    assert launch_problem(at) is None and ops.aligned(at), at
    if at.kernel != ln.kernel:
        assert at.kernel == "gemm_naive_f16_f32" and not ops.aligned(replace(ln, args=at.args))
    choice = ops.tc_choice(M, N, K, sms, wgmma) if 1 <= M <= 64 else None
    if choice is not None:
        assert ops.gemm_tc_fits(M, N, K, choice[1], choice[2], choice[0])
    sw = ops.gemm_tc_swiglu_launch(0, 0, 0, 0, M, N, K, sms, wgmma=wgmma) if 2 <= M <= 64 else None
    if sw is not None:
        assert launch_problem(sw) is None, (sw, launch_problem(sw))
    for f16x in (ops.mul_mat_f16x_launch(w & ~15, x & ~15, y, M, N, K, sms, wgmma),
                 ops.swiglu_f16x_launch(w & ~15, w & ~15, x & ~15, y, M, N, K, sms, wgmma)):
        assert launch_problem(f16x) is None, (f16x, launch_problem(f16x))


@settings(max_examples=300, deadline=None)
@given(B=st.integers(1, 64), G=st.integers(1, 9), grp=st.integers(1, 9), D=st.integers(1, 40).map(lambda v: 8 * v),
       n_kv=st.integers(1, 20_000), sms=SMS, tc=st.booleans(), out_f16=st.booleans())
def test_every_attention_launch_meets_its_kernels_preconditions(B, G, grp, D, n_kv, sms, tc, out_f16):
    """``attention_launch`` over random tokens, grouping, head sizes (multiples of 8 up to 320) and cache
    lengths: a launch its kernel computes in full (the attn_mma split and warps, attn_fused's chunk limit,
    attn_batch's head sizes), or a KernelError naming the shape; never a launch that would trap."""
    try:
        ln = ops.attention_launch(*(1 << 40,) * 6, B, n_kv, G, G * grp, D, sms, out_f16=out_f16, tensor_cores=tc)
    except KernelError as exc:
        assert "attention" in str(exc)
        return
    assert launch_problem(ln) is None, (ln, launch_problem(ln))
    if ln.kernel in ops.ATTN_MMA_NAMES or ln.kernel in ops.ATTN_MMA_H_NAMES:
        assert ops.dynamic_smem(ln) <= ops.SMEM_MAX


@settings(max_examples=200, deadline=None)
@given(tiles=st.integers(1, 5000), K=st.integers(1, 1 << 16), sms=SMS, N=st.integers(1, 1 << 17),
       units=st.integers(1, 4000), d=st.sampled_from([16, 32, 48, 64, 96, 128]))
def test_split_rules_stay_within_what_the_kernels_are_built_for(tiles, K, sms, N, units, d):
    """ws_cluster: a portable cluster (1..8); attn_mma_split: a compiled (cluster, warps) pair; the GEMV's
    rows per block one of 1, 2, 4, 8."""
    assert 1 <= ops.ws_cluster(tiles, K, sms) <= ops.PORTABLE_CLUSTER
    cl, warps = ops.attn_mma_split(units, K, sms, d)
    assert (cl, warps) in {(c, 4) for c in ops.ATTN_MMA} | {(c, 8) for c in ops.ATTN_MMA if d in ops.ATTN_MMA_DIMS}
    assert ops.gemv_rows_per_block(N, sms) in (1, 2, 4, 8)


@pytest.mark.parametrize("mutate", ["grid", "block", "K", "cluster_grid"])
def test_launch_problem_can_fail(mutate):
    """The precondition check is not vacuous: a gemm_tc launch with one block short, another block size, a K
    its split does not divide, or the attention grid of another cluster is refused."""
    tc = ops.gemm_tc_launch(0, 0, 0, 16, 512, 1024, 8, 2)
    mma = ops.attention_launch(*(0,) * 6, 16, 512, 8, 32, 128, 132)
    bad = {"grid": replace(tc, grid=(tc.grid[0] - 1, 1, 1)), "block": replace(tc, block=(128, 1, 1)),
           "K": replace(tc, args=tc.args[:5] + (1000,)), "cluster_grid": replace(mma, grid=(mma.grid[0] + 1, *mma.grid[1:]))}
    assert launch_problem(tc) is None and launch_problem(mma) is None
    assert launch_problem(bad[mutate]) is not None


@settings(max_examples=6, deadline=None)
@given(batch=st.sampled_from([1, 2, 3, 5, 7, 13, 17, 31, 37, 61, 64]), hidden_heads=st.sampled_from([(24, 3), (40, 5), (64, 8)]),
       vocab=st.sampled_from([7, 33, 101]), ffn=st.sampled_from([20, 72]), wgmma=st.booleans())
def test_odd_tiny_steps_emulate_as_the_reference(batch, hidden_heads, vocab, ffn, wgmma):
    """One layer, tiny hidden sizes with head size 8, K not a multiple of 16, a vocabulary that is a multiple of
    nothing, prime batches: the emulated step (every launch checked against its kernel's preconditions) is
    within tolerance of the float64 reference."""
    hidden, heads = hidden_heads
    cfg = L.config("tiny", batch=batch, hidden=hidden, heads=heads, kv_heads=1, ffn=ffn, vocab=vocab, layers=1, ctx=5)
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=1), L.make_inputs(cfg, seed=2)
    from runtime.step import plan_step

    out, _, _ = emulate(g, plan_step(g, L.multi_stream_schedule(g), batch=batch), w, inp, wgmma=wgmma, seed=batch)
    assert L.rel_err(out["logits"], L.reference_forward(cfg, w, inp)[0]) < (1e-4 if batch == 1 else 5e-3)
