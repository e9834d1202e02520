"""The pycuda runtime on the CPU emulator and the fake driver, round 78: graphs and plans valid per the contract (and
verified) that ran to a silently wrong result (NaN or stale bytes, a view op's output never written) or were refused
by name although a scratch copy makes them safe; each now runs as the serial numpy reference computes it."""

from __future__ import annotations

import numpy as np
import pytest

import memplan


def _silu(u):
    return u / (1 + np.exp(-u))


def _silu_squared(rng):
    """A SILU+MUL group whose MUL multiplies the SiLU output by itself: y = silu(g)^2."""
    B, H = 2, 8
    f = dict(shape=[B, H], dtype="f32")
    b = memplan.GraphBuilder("silu-squared")
    b.input("g", 4 * B * H, **f)
    b.node("si", "SILU", ["g"], b.intermediate("s", 4 * B * H, **f), group="sw")
    b.node("mu", "MUL", ["s", "s"], b.output("y", 4 * B * H, **f), group="sw")
    g = rng.standard_normal((B, H)).astype(np.float32)
    return b.build(), {}, {"g": g}, {"y": _silu(g) ** 2}


def _product_added_to_itself(rng):
    """A MUL_MAT+ADD+RMS_NORM+MUL group at one row whose ADD adds the product to itself: h = 2 p."""
    H = 16
    f = dict(shape=[1, H], dtype="f32")
    b = memplan.GraphBuilder("product-twice")
    b.input("x", 4 * H, **f)
    b.weight("W", 2 * H * H, shape=[H, H], dtype="f16")
    b.weight("w", 4 * H, shape=[H], dtype="f32")
    b.node("mm", "MUL_MAT", ["W", "x"], b.intermediate("p", 4 * H, **f), group="g")
    b.node("add", "ADD", ["p", "p"], b.output("h", 4 * H, **f), group="g")
    b.node("nrm", "RMS_NORM", ["h"], b.intermediate("n", 4 * H, **f), group="g")
    b.node("mul", "MUL", ["n", "w"], b.output("y", 4 * H, **f), group="g")
    x = rng.standard_normal((1, H)).astype(np.float32)
    W = (rng.standard_normal((H, H)) / 4).astype(np.float16)
    w = rng.standard_normal(H).astype(np.float32)
    h = 2 * (x @ W.astype(np.float32).T)
    return b.build(), {"W": W, "w": w}, {"x": x}, {"h": h, "y": h / np.sqrt((h * h).mean(-1, keepdims=True) + 1e-5) * w}


def _softmax_masked_by_its_scores(rng):
    """An attention group (KQ, SOFT_MAX, KQV) of one head whose softmax takes the scores as its mask too."""
    B, n, D = 1, 4, 8
    b = memplan.GraphBuilder("scores-as-mask")
    b.input("q", 4 * B * D, shape=[B, 1, D], dtype="f32")
    b.weight("K", 2 * n * D, shape=[n, 1, D], dtype="f16")
    b.weight("V", 2 * n * D, shape=[n, 1, D], dtype="f16")
    b.node("kq", "MUL_MAT", ["K", "q"], b.intermediate("s", 4 * B * n, shape=[B, 1, n], dtype="f32"), group="a")
    b.node("sm", "SOFT_MAX", ["s", "s"], b.intermediate("p", 4 * B * n, shape=[B, 1, n], dtype="f32"), group="a")
    b.node("kqv", "MUL_MAT", ["V", "p"], b.output("o", 4 * B * D, shape=[B, 1, D], dtype="f32"), group="a")
    q = rng.standard_normal((B, 1, D)).astype(np.float32)
    K, V = (rng.standard_normal((n, 1, D)).astype(np.float16) for _ in range(2))
    z = 2 * np.einsum("bhd,jhd->bhj", q, K.astype(np.float32)) / np.sqrt(D)
    e = np.exp(z - z.max(-1, keepdims=True))
    o = np.einsum("bhj,jhd->bhd", e / e.sum(-1, keepdims=True), V.astype(np.float32))
    return b.build(), {"K": K, "V": V}, {"q": q}, {"o": o}


@pytest.mark.parametrize("make", [_silu_squared, _product_added_to_itself, _softmax_masked_by_its_scores])
@pytest.mark.parametrize("fused_groups", [False, True])
def test_a_group_reading_a_value_its_kernel_keeps_in_registers_twice_runs_node_by_node(monkeypatch, make,
                                                                                         fused_groups):
    """A fused kernel passes each intermediate value of its group in registers to the one operand that consumes it
    and stores some of them or none; the pattern matchers checked that operand only. A group whose member read such
    a value a second time (``MUL(s, s)``, ``ADD(p, p)`` under the GEMV+add+norm kernel, a softmax masked by its own
    scores) fused, and that read took bytes no kernel wrote: NaN in the emulator, stale bytes on the GPU, from a
    verified plan. Such a group now runs node by node, as the reference computes it, on the emulator and on the
    executor (fake driver)."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor

    g, weights, inputs, want = make(np.random.default_rng(7))
    plan = memplan.plan(g, fused_groups=fused_groups)
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, weights=weights, inputs=inputs, gemv_norm_min=0)
    ex.run()
    got = [emulate(g, plan, weights, inputs, check=True, gemv_norm_min=0)[0], {t: ex.read(t) for t in want}]
    ex.free()
    for outs in got:
        for t, v in want.items():
            np.testing.assert_allclose(outs[t].reshape(v.shape), v, rtol=2e-3, atol=2e-3, err_msg=t)


@pytest.mark.parametrize("op", ["ADD", "MUL", "CONT"])
def test_an_f32_node_into_f16_planned_in_place_over_its_input_reads_a_copy(monkeypatch, op):
    """An ADD, MUL or CONT from f32 into f16 (f16 activations) with ``inplace {y: x}``: memplan plans y at x's offset,
    and the runtime refused the verified plan ("its f16 output 'y' overlaps an f32 input"), since its kernel writes
    half-width elements over ones other threads have yet to read. The input is now copied to scratch first, as for
    a product over its input, and the step computes the reference on the emulator and the executor (fake driver)."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor

    B, H = 2, 8
    b = memplan.GraphBuilder("f16-in-place")
    b.input("x", 4 * B * H, shape=[B, H], dtype="f32")
    b.input("x2", 4 * B * H, shape=[B, H], dtype="f32")
    b.weight("W", 2 * H * H, shape=[H, H], dtype="f16")
    ins = ["x"] if op == "CONT" else ["x", "x2"]
    b.node("a", op, ins, b.intermediate("y", 2 * B * H, shape=[B, H], dtype="f16"), inplace={"y": "x"})
    b.node("m", "MUL_MAT", ["W", "y"], b.output("o", 4 * B * H, shape=[B, H], dtype="f32"))
    g = b.build()
    plan = memplan.plan(g)
    assert plan.offsets()["y"] == plan.offsets()["x"]
    rng = np.random.default_rng(3)
    x, x2 = rng.standard_normal((2, B, H)).astype(np.float32)
    W = (rng.standard_normal((H, H)) / 4).astype(np.float16)
    y = {"ADD": x + x2, "MUL": x * x2, "CONT": x}[op].astype(np.float16).astype(np.float32)
    want = y @ W.astype(np.float32).T
    weights, inputs = {"W": W}, {"x": x, "x2": x2}
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, weights=weights, inputs=inputs)
    ex.run()
    for got in (emulate(g, plan, weights, inputs, check=True, seed=1)[0]["o"], ex.read("o")):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    ex.free()


def _product_in_place_over_odd_f16(K: int) -> memplan.Graph:
    """One row of f16 x ([1, K], K odd: 2K bytes, not whole words) times a [1, K] weight, ``inplace {y: x}``."""
    b = memplan.GraphBuilder("odd-f16-product", alignment=4)
    b.input("x0", 2 * K, shape=[1, K], dtype="f16")
    b.node("c", "CONT", ["x0"], b.intermediate("x", 2 * K, shape=[1, K], dtype="f16"))
    b.weight("W", 2 * K, shape=[1, K], dtype="f16")
    b.node("m", "MUL_MAT", ["W", "x"], b.intermediate("y", 4, shape=[1, 1], dtype="f32"), inplace={"y": "x"})
    b.node("s", "SILU", ["y"], b.output("z", 4, shape=[1, 1], dtype="f32"))
    return b.build()


@pytest.mark.parametrize("K", [3, 5, 7])
def test_a_product_in_place_over_an_odd_count_of_f16_elements_reads_a_byte_copy(monkeypatch, K):
    """memplan plans y over x's bytes, and the runtime, which copies an input a product overwrites to scratch first,
    could copy whole words only, so the verified plan was refused (KernelError "overlaps its input 'x' of 10 bytes,
    not whole words"). The copy is now a byte copy where words do not fit, and the step computes the reference on
    the emulator and the executor (fake driver)."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor

    g = _product_in_place_over_odd_f16(K)
    plan = memplan.plan(g)
    offsets = plan.offsets()
    assert offsets["x"] <= offsets["y"] < offsets["x"] + 2 * K   # y over x's bytes
    rng = np.random.default_rng(K)
    x, W = (rng.standard_normal((1, K)).astype(np.float16) for _ in range(2))
    want = _silu(x.astype(np.float32) @ W.astype(np.float32).T)
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, weights={"W": W}, inputs={"x0": x})
    ex.run()
    for got in (emulate(g, plan, {"W": W}, {"x0": x}, check=True)[0]["z"], ex.read("z")):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    ex.free()


def test_compare_launches_counts_a_byte_copy_into_scratch_as_staging():
    """``runtime.tools.compare_launches`` leaves staging copies out of its launch table (a bit-for-bit copy read
    instead of the planned bytes, which one plan of a graph makes and another need not): it knew ``copy_u32`` only,
    so the byte copy staging an odd-size input showed up as a launch, a difference between two plans that compute
    the same bits. It is counted as staging now, and the product reads its source's name."""
    from runtime.tools.compare_launches import launch_table

    g = _product_in_place_over_odd_f16(5)
    table = launch_table(g, memplan.plan(g))
    assert table.staging == 1
    assert [r.kernel for r in table.rows if r.node == "m"] == ["gemm_naive_f16x"]   # (the CONT before: a MEMCPY)
    product = next(r for r in table.rows if r.node == "m")
    assert ("x", 10) in product.reads


@pytest.mark.parametrize("op", ["CONT", "COPY"])
def test_moving_an_odd_count_of_f16_elements_within_one_buffer_copies_them_first(monkeypatch, op):
    """A CONT or COPY from one view of a buffer into an overlapping view of it (5 f16 elements moved 2 down: 10
    bytes, not whole words), valid per the contract and verified: the runtime refused it ("CONT of 10 bytes, not
    whole words, with its output over its input"; the COPY: "input 'v1' of 10 bytes ... is not whole words"), since a
    byte copy must not overlap what it reads. The source is now copied to scratch first (a byte copy), as for a
    product over its input, and the moved elements are the reference's on the emulator and the executor."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor

    n = 5
    b = memplan.GraphBuilder("move-f16", alignment=4)
    b.input("x", 4 * n, shape=[2 * n], dtype="f16")
    b.node("c0", "CONT", ["x"], b.intermediate("R", 4 * n, shape=[2 * n], dtype="f16"))
    b.view("v1", "R", 2 * n, 4, shape=[n], dtype="f16")   # elements [2, 7)
    b.view("v2", "R", 2 * n, 0, shape=[n], dtype="f16")   # elements [0, 5)
    b.node("mv", op, ["v1"], ["v2"])
    b.node("c1", "CONT", ["v2"], b.output("o", 2 * n, shape=[n], dtype="f16"))
    g = b.build()
    plan = memplan.plan(g)
    x = np.arange(2 * n).astype(np.float16)
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, inputs={"x": x})
    ex.run()
    for got in (emulate(g, plan, {}, {"x": x}, check=True)[0]["o"], ex.read("o")):
        assert np.array_equal(got, x[2:2 + n].astype(got.dtype))
    ex.free()


@pytest.mark.parametrize("op,off_in,off_out,n", [("RESHAPE", 4, 0, 2), ("RESHAPE", 0, 16, 4), ("VIEW", 0, 16, 4),
                                                 ("VIEW", 8, 4, 3)])
def test_a_view_op_whose_output_lies_at_other_bytes_of_its_inputs_root_copies_its_input(monkeypatch, op, off_in,
                                                                                         off_out, n):
    """A view op whose output is a view of its input's root at other bytes than its input's (neither range holding
    the other: ``RESHAPE(R[1:3]) -> R[0:2]``, valid per the contract) launched nothing, as if the graph said they were
    the same bytes, so its readers read the root's old bytes there ([0, 1] where the reshape of [1, 2] is [1, 2]),
    silently. Such an output is now a byte copy of its input, as one of another root is (round 77), staged where they
    overlap; on the emulator and the executor (fake driver). An output inside its input stays a view (no launch)."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor
    from runtime.step import program_at

    b = memplan.GraphBuilder("view-op-elsewhere", alignment=4)
    b.input("x", 32, shape=[8], dtype="f32")
    b.node("c0", "CONT", ["x"], b.intermediate("R", 32, shape=[8], dtype="f32"))
    b.view("v1", "R", 4 * n, off_in, shape=[n], dtype="f32")
    b.view("v2", "R", 4 * n, off_out, shape=[n], dtype="f32")
    b.view("inner", "v1", 4, 4, shape=[1], dtype="f32")   # (inside its input: no launch)
    b.node("rs", op, ["v1"], ["v2"])
    b.node("in", "VIEW", ["v1"], ["inner"])
    b.node("c1", "CONT", ["v2"], b.output("o", 4 * n, shape=[n], dtype="f32"))
    g = b.build()
    plan = memplan.plan(g)
    x = np.arange(8).astype(np.float32)
    want = x[off_in // 4: off_in // 4 + n]
    nxt = iter(range(1 << 44, 1 << 62, 1 << 36))
    assert program_at(g, plan, lambda k, _label: next(nxt))[0].launches["in"] == ()
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, inputs={"x": x})
    ex.run()
    for got in (emulate(g, plan, {}, {"x": x}, check=True, seed=2)[0]["o"], ex.read("o")):
        assert np.array_equal(got, want)
    ex.free()
