"""The pycuda runtime's host side at its edges, round 77 (CPU only: the emulator and the fake driver). Each case was
a silently wrong result or a raw error for a graph or plan that is valid per the contract; each now runs as the
serial reference computes it, or is refused naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

import memplan


def _silu(u):
    return u / (1 + np.exp(-u))


def _rms(x):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + np.float32(1e-5))


def _swiglu_with_its_silu_an_output(B: int, H: int):
    """gate/up products, SILU (in place over the gate product) and MUL in one fusion group; the SILU's output is
    also a graph output."""
    f = dict(shape=[B, H], dtype="f32")
    b = memplan.GraphBuilder("swiglu-silu-out")
    b.input("x", 4 * B * H, **f)
    b.weight("wg", 2 * H * H, shape=[H, H], dtype="f16")
    b.weight("wu", 2 * H * H, shape=[H, H], dtype="f16")
    b.node("mg", "MUL_MAT", ["wg", "x"], b.intermediate("g", 4 * B * H, **f), group="ffn")
    b.node("mu", "MUL_MAT", ["wu", "x"], b.intermediate("u", 4 * B * H, **f), group="ffn")
    b.node("si", "SILU", ["g"], b.output("s", 4 * B * H, **f), group="ffn", inplace={"s": "g"})
    b.node("gl", "MUL", ["s", "u"], b.output("y", 4 * B * H, **f), group="ffn")
    rng = np.random.default_rng(B)
    x = rng.standard_normal((B, H)).astype(np.float32)
    w = {k: (rng.standard_normal((H, H)) / 4).astype(np.float16) for k in ("wg", "wu")}
    s = _silu(x @ w["wg"].astype(np.float32).T)
    return b.build(), w, {"x": x}, {"s": s, "y": s * (x @ w["wu"].astype(np.float32).T)}


def _add_norm_with_its_norm_an_output(B: int, H: int):
    """ADD, RMS_NORM (in place over the ADD's h) and MUL in one fusion group; the norm's output is also a graph
    output."""
    f = dict(shape=[B, H], dtype="f32")
    b = memplan.GraphBuilder("addnorm-norm-out")
    b.input("x", 4 * B * H, **f)
    b.input("r", 4 * B * H, **f)
    b.weight("w", 4 * H, shape=[H], dtype="f32")
    b.node("add", "ADD", ["x", "r"], b.intermediate("h", 4 * B * H, **f), group="an")
    b.node("nrm", "RMS_NORM", ["h"], b.output("a", 4 * B * H, **f), group="an", inplace={"a": "h"})
    b.node("mul", "MUL", ["a", "w"], b.output("y", 4 * B * H, **f), group="an")
    rng = np.random.default_rng(B + 10)
    x, r = (rng.standard_normal((B, H)).astype(np.float32) for _ in range(2))
    w = rng.standard_normal(H).astype(np.float32)
    a = _rms(x + r)
    return b.build(), {"w": w}, {"x": x, "r": r}, {"a": a, "y": a * w}


@pytest.mark.parametrize("make", [_swiglu_with_its_silu_an_output, _add_norm_with_its_norm_an_output])
@pytest.mark.parametrize("B", [1, 4])
def test_a_fused_groups_unstored_output_read_outside_it_runs_node_by_node(monkeypatch, make, B):
    """A fused group stores only some of its members' outputs; one that the graph outputs (or a node outside the
    group reads) makes the group run node by node. The check went by address: a SILU's (a norm's) output planned in
    place over the gate product (the ADD's h), which the fused launches do store, passed as stored, so the group
    fused and the output held the gate product (h) instead of its SiLU (norm), in the emulator and on the GPU alike,
    with a verified plan. Now such a group runs node by node and every output is the reference's."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor

    # (H = 12, not a multiple of 8: at B = 1 an H of 16 took the one-kernel GEMV swiglu, which stores y alone, so
    # the group ran node by node without the check too; at 12 the group's products store the gate product)
    g, weights, inputs, want = make(B, 12)
    plan = memplan.plan(g)
    offsets = plan.offsets()
    assert offsets["a" if "a" in want else "s"] == offsets["h" if "a" in want else "g"]   # the in-place pair
    outs = emulate(g, plan, weights, inputs, check=True)[0]
    for t, v in want.items():
        np.testing.assert_allclose(outs[t], v, rtol=1e-3, atol=1e-3, err_msg=t)
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, weights=weights, inputs=inputs)
    ex.run()
    for t, v in want.items():
        np.testing.assert_allclose(ex.read(t), v, rtol=1e-3, atol=1e-3, err_msg=t)
    assert ex.program.fused_groups == 0
    ex.free()


def _views_of_one_root(op: str, n: int):
    """SILU(x) -> R, then ``op`` reading one view of R and writing another view of R that overlaps it (no in-place
    pair: the two views share a root, which rule 3 of the contract leaves alone), then R copied out. Returns the
    graph, its inputs and R's expected values (every input read before any output is written)."""
    b = memplan.GraphBuilder(f"views-{op.lower()}")
    b.input("x", 4 * 2 * n, shape=[2 * n], dtype="f32")
    b.node("s", "SILU", ["x"], b.intermediate("R", 4 * 2 * n, shape=[2 * n], dtype="f32"))
    x = np.random.default_rng(n).standard_normal(2 * n).astype(np.float32)
    R = _silu(x)
    want = R.copy()
    if op == "CONT":   # rows [n/2, 3n/2) moved to [0, n) (a cache's rows moved within it)
        b.view("A", "R", 4 * n, 4 * (n // 2), kind="intermediate", shape=[n], dtype="f32")
        b.view("B", "R", 4 * n, 0, kind="intermediate", shape=[n], dtype="f32")
        b.node("op", "CONT", ["A"], "B")
        want[:n] = R[n // 2: n // 2 + n]
    elif op == "ADD":   # [0, n) doubled into [n/2, 3n/2)
        b.view("A", "R", 4 * n, 0, kind="intermediate", shape=[n], dtype="f32")
        b.view("B", "R", 4 * n, 4 * (n // 2), kind="intermediate", shape=[n], dtype="f32")
        b.node("op", "ADD", ["A", "A"], "B")
        want[n // 2: n // 2 + n] = R[:n] + R[:n]
    else:   # a product of the first row written over that row
        b.weight("w", 2 * n * n, shape=[n, n], dtype="f16")
        b.view("A", "R", 4 * n, 0, kind="intermediate", shape=[1, n], dtype="f32")
        b.view("B", "R", 4 * n, 0, kind="intermediate", shape=[1, n], dtype="f32")
        b.node("op", "MUL_MAT", ["w", "A"], "B")
    b.node("o", "CONT", ["R"], b.output("O", 4 * 2 * n, shape=[2 * n], dtype="f32"))
    return b.build(), {"x": x}, want


@pytest.mark.parametrize("op", ["CONT", "ADD", "MUL_MAT"])
def test_a_node_writing_a_view_over_a_view_it_reads_reads_a_copy(monkeypatch, op):
    """A node whose output is a view of the root one of its inputs views, overlapping it (valid per the contract,
    and verified: rule 3 is about two roots) ran its kernel straight over its own input: ``copy_u32`` moving
    rows of a root within it, ``binary_f32`` into a shifted view, a GEMV writing y over the x it still reads. On the
    GPU blocks then overwrite elements other blocks have yet to read (the emulator reads every input first, so only
    the launches show it). Such an input is now copied to scratch first and the kernel reads the copy, as for an
    in-place pair; the emulator and the fake driver give the reference's values."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor
    from runtime.step import program_at

    n = 64 if op == "MUL_MAT" else 1024
    g, inputs, want = _views_of_one_root(op, n)
    plan = memplan.plan(g)
    memplan.verify(g, plan)
    labels: dict[int, str] = {}
    nxt = iter(range(1 << 44, 1 << 62, 1 << 36))

    def alloc(nbytes: int, label: str) -> int:
        a = next(nxt)
        labels[a] = label
        return a

    prog, addr = program_at(g, plan, alloc)
    out_lo, out_hi = addr["B"], addr["B"] + g.tensor("B").size
    *copies, main = prog.launches["op"]
    assert copies and all(ln.kernel == "copy_u32" for ln in copies), prog.launches["op"]
    for ln in copies:   # each copy reads the input's planned bytes into a scratch buffer
        assert labels.get(ln.args[1] & ~((1 << 36) - 1), "").startswith("scratch"), ln
    reads = [a for a in main.args[:3] if isinstance(a, int) and a >= 1 << 44 and a != addr["B"]
             and not labels.get(a, "").startswith(("w", "counters"))]
    assert reads and not any(out_lo <= a < out_hi for a in reads), (main, out_lo, out_hi)
    weights = {"w": (np.random.default_rng(1).standard_normal((n, n)) / 8).astype(np.float16)} if op == "MUL_MAT" else {}
    outs = emulate(g, plan, weights, inputs, check=True)[0]
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, inputs=inputs, weights=weights)
    ex.run()
    got = ex.read("O")
    ex.free()
    np.testing.assert_array_equal(got, outs["O"])
    if op == "MUL_MAT":
        want[:n] = want[:n] @ weights["w"].astype(np.float32).T
    np.testing.assert_allclose(outs["O"], want, rtol=1e-5, atol=1e-5)


def _view_op_into_its_own_tensor(op: str, out_size: int = 32):
    """SILU(x) -> t, ``op`` (a view op) t -> u where u is an intermediate of its own (no view of t), SILU(u) -> y."""
    b = memplan.GraphBuilder(f"view-op-{op.lower()}")
    b.input("x", 32, shape=[8], dtype="f32")
    b.node("s", "SILU", ["x"], b.intermediate("t", 32, shape=[8], dtype="f32"))
    b.node("r", op, ["t"], b.intermediate("u", out_size, shape=[2, out_size // 8], dtype="f32"))
    b.node("s2", "SILU", ["u"], b.output("y", out_size, shape=[2, out_size // 8], dtype="f32"))
    return b.build()


@pytest.mark.parametrize("op", ["RESHAPE", "VIEW", "NONE"])
def test_a_view_op_whose_output_is_no_view_copies_its_input(monkeypatch, op):
    """A view op launches nothing: its output is its input's bytes. One whose output is a tensor of its own (valid per
    the contract, which leaves op semantics to the backend) was launched nothing as well, so that output was never
    written: its reader read the bytes a plan had given it, here the input ``x`` that the plan reused them from, and
    the step computed silu(x) for silu(silu(x)) with a verified plan, in the emulator and the pycuda executors alike.
    Such an output is now a byte copy of the input; one of another size is a KernelError naming the node."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor
    from runtime.kernels.ops import KernelError

    g = _view_op_into_its_own_tensor(op)
    plan = memplan.plan(g)
    x = np.linspace(-2, 3, 8, dtype=np.float32)
    want = _silu(_silu(x)).reshape(2, 4)
    np.testing.assert_allclose(emulate(g, plan, {}, {"x": x}, check=True)[0]["y"], want, rtol=1e-6)
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, inputs={"x": x})
    ex.run()
    np.testing.assert_allclose(ex.read("y"), want, rtol=1e-6)
    ex.free()
    g = _view_op_into_its_own_tensor(op, out_size=64)
    with pytest.raises(KernelError, match=f"node 'r': {op} writes nothing, and its output 'u' is no view of its input"):
        emulate(g, memplan.plan(g), {}, {"x": x})


def test_a_fused_add_norm_normalises_the_rows_of_the_norms_input(monkeypatch):
    """ADD(x [1, 16], r [1, 16]) -> h [2, 8], RMS_NORM(h), MUL by w [8], as one fusion group: RMS_NORM normalises h's
    rows of 8 (node by node it does), but the fused add+norm kernel took its rows from the ADD's first input, one row of
    16, so the group's output differed from the same graph without the group (0.38 off), silently. The fused kernel
    now normalises h's rows."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor

    rng = np.random.default_rng(5)
    x, r = (rng.standard_normal((1, 16)).astype(np.float32) for _ in range(2))
    w = rng.standard_normal(8).astype(np.float32)
    want = _rms((x + r).reshape(2, 8)) * w
    for group in ("an", None):
        b = memplan.GraphBuilder("add-norm-rows")
        b.input("x", 64, shape=[1, 16], dtype="f32")
        b.input("r", 64, shape=[1, 16], dtype="f32")
        b.weight("w", 32, shape=[8], dtype="f32")
        kw = {"group": group} if group else {}
        b.node("add", "ADD", ["x", "r"], b.intermediate("h", 64, shape=[2, 8], dtype="f32"), **kw)
        b.node("nrm", "RMS_NORM", ["h"], b.intermediate("a", 64, shape=[2, 8], dtype="f32"), **kw)
        b.node("mul", "MUL", ["a", "w"], b.output("y", 64, shape=[2, 8], dtype="f32"), **kw)
        g = b.build()
        plan = memplan.plan(g)
        out = emulate(g, plan, {"w": w}, {"x": x, "r": r}, check=True)[0]["y"]
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6, err_msg=str(group))
        with monkeypatch.context() as m:
            fake_cuda.install(m)
            ex = Executor(g, plan, weights={"w": w}, inputs={"x": x, "r": r})
            ex.run()
            np.testing.assert_allclose(ex.read("y"), want, rtol=1e-5, atol=1e-6, err_msg=str(group))
            assert ex.program.fused_groups == (1 if group else 0)
            ex.free()


@pytest.mark.parametrize("width,cont,p_shape", [(8, False, None), (8, True, None), (4, True, None), (16, False, [2, 1, 8])])
def test_a_fused_attention_group_whose_kqv_output_is_not_d_wide_is_refused(monkeypatch, width, cont, p_shape):
    """KQ, SOFT_MAX, KQV (and a CONT) as one fusion group whose KQV output is [B, heads, width] for a head size d of
    16: node by node no kernel computes such a KQV (a KernelError naming it), but the group fused and its attention
    kernel wrote B x heads x d values from the output's start, past its bytes over its arena neighbours: the emulator
    named the out-of-bounds access without the CONT and returned a wrong output with it, and the pycuda executors ran
    it. Now the group runs node by node and the KQV is refused by name, before anything is allocated. So is a group
    whose probabilities p split the tokens and heads otherwise than q ([2, 1, n_kv] for 2 heads over 2 KV heads): node
    by node the KQV takes them from p's shape (1 head, which 2 KV heads do not group), the fused kernel from q's."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor
    from runtime.kernels.ops import KernelError

    B, heads, D, n_kv = 1, 2, 16, 8
    G = 2 if p_shape else 1
    b = memplan.GraphBuilder("attention-width")
    b.input("q", 4 * B * heads * D, shape=[B, heads, D], dtype="f32")
    b.input("mask", 4 * B * n_kv, shape=[B, n_kv], dtype="f32")
    b.weight("K", 2 * n_kv * G * D, shape=[n_kv, G, D], dtype="f16")
    b.weight("V", 2 * n_kv * G * D, shape=[n_kv, G, D], dtype="f16")
    f = dict(shape=[B, heads, n_kv], dtype="f32")
    b.node("kq", "MUL_MAT", ["K", "q"], b.intermediate("s", 4 * B * heads * n_kv, **f), group="a")
    b.node("sm", "SOFT_MAX", ["s", "mask"], b.intermediate("p", 4 * B * heads * n_kv, **dict(f, shape=p_shape or f["shape"])),
           group="a")
    o = dict(shape=[B, heads, width], dtype="f32")
    if cont:
        b.node("kqv", "MUL_MAT", ["V", "p"], b.intermediate("o", 4 * B * heads * width, **o), group="a")
        b.node("c", "CONT", ["o"], b.output("y", 4 * B * heads * width, shape=[B, heads * width], dtype="f32"),
               group="a")
    else:
        b.node("kqv", "MUL_MAT", ["V", "p"], b.output("y", 4 * B * heads * width, **o), group="a")
    g = b.build()
    plan = memplan.plan(g)
    rng = np.random.default_rng(width)
    w = {k: rng.standard_normal((n_kv, G, D)).astype(np.float16) for k in ("K", "V")}
    inp = {"q": rng.standard_normal((B, heads, D)).astype(np.float32), "mask": np.zeros((B, n_kv), np.float32)}
    said = r"node 'kqv': (no MUL_MAT kernel for shapes|1 heads do not group over 2 KV heads)"
    with pytest.raises(KernelError, match=said):
        emulate(g, plan, w, inp, check=True)
    fake_cuda.install(monkeypatch)
    with pytest.raises(KernelError, match=said):
        Executor(g, plan, weights=w, inputs=inp)


@pytest.mark.parametrize("between", ["view", "cont"])
def test_a_kqv_of_reshaped_or_copied_probabilities_is_no_kq_where_d_equals_the_cache_rows(between):
    """A 3-D MUL_MAT whose head size d equals its cache rows has the shapes of KQ and of KQV alike; the registry took
    it for KQV only where its second operand's producer is the SOFT_MAX, so probabilities reshaped into a view (a
    RESHAPE, as ggml's graphs do) or copied (a CONT) on their way were multiplied as KQ: another result, silently
    (a decode step whose cache length happens to equal the head size). The probabilities are now followed back through
    view ops, CONTs and views to their SOFT_MAX."""
    from runtime.emulate import emulate

    B, heads, D = 1, 2, 16
    n_kv = D
    f = dict(shape=[B, heads, n_kv], dtype="f32")
    outs = {}
    for via in (None, between):
        b = memplan.GraphBuilder("kqv-ambiguous")
        b.input("q", 4 * B * heads * D, shape=[B, heads, D], dtype="f32")
        b.input("mask", 4 * B * n_kv, shape=[B, n_kv], dtype="f32")
        b.weight("K", 2 * n_kv * D, shape=[n_kv, 1, D], dtype="f16")
        b.weight("V", 2 * n_kv * D, shape=[n_kv, 1, D], dtype="f16")
        b.node("kq", "MUL_MAT", ["K", "q"], b.intermediate("s", 4 * B * heads * n_kv, **f))
        b.node("sm", "SOFT_MAX", ["s", "mask"], b.intermediate("p", 4 * B * heads * n_kv, **f))
        src = "p"
        if via == "view":
            b.view("p2", "p", 4 * B * heads * n_kv, 0, kind="intermediate", **f)
            b.node("rs", "RESHAPE", ["p"], "p2")
            src = "p2"
        elif via == "cont":
            b.node("ct", "CONT", ["p"], b.intermediate("p2", 4 * B * heads * n_kv, **f))
            src = "p2"
        b.node("kqv", "MUL_MAT", ["V", src], b.output("y", 4 * B * heads * D, shape=[B, heads, D], dtype="f32"))
        g = b.build()
        rng = np.random.default_rng(3)
        w = {k: rng.standard_normal((n_kv, 1, D)).astype(np.float16) for k in ("K", "V")}
        q = rng.standard_normal((B, heads, D)).astype(np.float32)
        outs[via] = emulate(g, memplan.plan(g), w, {"q": q, "mask": np.zeros((B, n_kv), np.float32)}, check=True)[0]["y"]
    s = np.einsum("bhd,jd->bhj", q, w["K"][:, 0].astype(np.float32)) / np.sqrt(D)
    p = np.exp(s - s.max(-1, keepdims=True))
    want = np.einsum("bhj,jd->bhd", p / p.sum(-1, keepdims=True), w["V"][:, 0].astype(np.float32))
    np.testing.assert_allclose(outs[None], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(outs[between], outs[None])


@pytest.mark.parametrize("op", ["RMS_NORM", "SILU"])
def test_an_output_view_of_a_fused_groups_internal_tensor_is_written(monkeypatch, op):
    """A fusion group (RMS_NORM+MUL by a weight, SILU+MUL) whose first member's output has a view of kind ``output``:
    the group's outputs that the graph outputs must be stored by its fused kernel, but only a root of kind output
    counted, not a view of kind output, so the group fused and the output view read bytes no kernel wrote (NaN in the
    emulator's poisoned arena, old bytes on the GPU). Now the group runs node by node and the view holds its values."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.executor import Executor

    B, H = 2, 16
    f = dict(shape=[B, H], dtype="f32")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((B, H)).astype(np.float32)
    b = memplan.GraphBuilder(f"output-view-{op.lower()}")
    b.input("x", 4 * B * H, **f)
    if op == "RMS_NORM":
        b.weight("w", 4 * H, shape=[H], dtype="f32")
        other, weights, inputs = "w", {"w": rng.standard_normal(H).astype(np.float32)}, {"x": x}
        a = _rms(x)
        want_y = a * weights["w"]
    else:
        b.input("u", 4 * B * H, **f)
        other, weights, inputs = "u", {}, {"x": x, "u": rng.standard_normal((B, H)).astype(np.float32)}
        a = _silu(x)
        want_y = a * inputs["u"]
    b.node("first", op, ["x"], b.intermediate("a", 4 * B * H, **f), group="g")
    b.view("o", "a", 4 * H, 4 * H, kind="output", shape=[H], dtype="f32")   # a's second row
    b.node("mul", "MUL", ["a", other], b.output("y", 4 * B * H, **f), group="g")
    g = b.build()
    plan = memplan.plan(g)
    outs = emulate(g, plan, weights, inputs, check=True)[0]
    np.testing.assert_allclose(outs["o"], a[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs["y"], want_y, rtol=1e-5, atol=1e-6)
    fake_cuda.install(monkeypatch)
    ex = Executor(g, plan, weights=weights, inputs=inputs)
    ex.run()
    np.testing.assert_allclose(ex.read("o"), a[1], rtol=1e-5, atol=1e-6)
    assert ex.program.fused_groups == 0
    ex.free()
