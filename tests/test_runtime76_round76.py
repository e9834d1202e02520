"""Hostile and unusual input to the pycuda runtime's host side, round 76 (CPU only: the fake driver and the
emulator). Each case was a raw traceback, a silently wrong result or an option taken for what it is not; each
is now run correctly or refused naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

import memplan


def _weight_view_graph(root_shape) -> memplan.Graph:
    """A product whose f16 weight is a view of a root that carries ``root_shape`` as its ``shape`` attr (None: no
    attr): the kernels read the view's shape, so the root needs none."""
    b = memplan.GraphBuilder("weight-view")
    b.input("x", 4 * 16, shape=[1, 16], dtype="f32")
    attrs = {"dtype": "f16"} if root_shape is None else {"dtype": "f16", "shape": root_shape}
    b.weight("wroot", 2 * 2 * 8 * 16, **attrs)
    b.view("w0", "wroot", 2 * 8 * 16, 0, kind="weight", shape=[8, 16], dtype="f16")
    b.node("mm", "MUL_MAT", ["w0", "x"], b.output("y", 4 * 8, shape=[1, 8], dtype="f32"))
    return b.build()


@pytest.mark.parametrize("root_shape", [None, [], [256, 0], [2, 8, -16]])
def test_random_weights_of_a_root_with_no_fan_in_are_unscaled(monkeypatch, root_shape):
    """``Executor(random_weights_seed=...)`` read the fan-in of every f16 weight root from its ``shape`` attr: a root
    with none (read only through views, whose shapes the kernels read: valid per the contract) was a raw KeyError
    after the arena was allocated (``[]`` an IndexError, a last dimension 0 a ZeroDivisionError, a negative one NaN
    weights, silently). Such a root is now filled unscaled, as a cache is, and the step runs; a root with a fan-in
    keeps its scale."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.device_memory import fill_scale
    from runtime.executor import Executor

    x = np.ones((1, 16), np.float32)
    got = {}
    for shape in (root_shape, [2, 8, 16]):
        g = _weight_view_graph(shape)
        ex = Executor(g, memplan.plan(g), random_weights_seed=1, inputs={"x": x})
        ex.run()
        y = ex.read("y")
        assert np.all(np.isfinite(y)) and np.any(y != 0)
        w = ex.read("w0").astype(np.float64)   # (the view: a root shape holding no 256 elements is read refused)
        got[str(shape)] = (y, float(np.abs(w).max()))
        ex.free()
    assert fill_scale(_weight_view_graph(root_shape), "wroot") == 1.0
    assert fill_scale(_weight_view_graph([2, 8, 16]), "wroot") == pytest.approx(np.sqrt(3.0 / 16))
    (y0, m0), (y1, m1) = got[str(root_shape)], got["[2, 8, 16]"]
    assert 0.5 < m0 <= 1.0 and m1 <= np.sqrt(3.0 / 16) + 1e-3   # unscaled values, the shaped root's scaled
    np.testing.assert_allclose(y0 * np.sqrt(3.0 / 16), y1, rtol=2e-2, atol=2e-3)   # the same draws, scaled


def _product_graph(x_shape) -> memplan.Graph:
    b = memplan.GraphBuilder("bad-x-shape")
    b.input("x", 4 * 16, shape=x_shape, dtype="f32")
    b.weight("w", 2 * 8 * 16, shape=[8, 16], dtype="f16")
    b.node("mm", "MUL_MAT", ["w", "x"], b.output("y", 4 * 8, shape=[1, 8], dtype="f32"))
    return b.build()


@pytest.mark.parametrize("x_shape", [["a"], 16, [None, 16], [[1], 16], [1, "x"], "16"])
def test_a_weight_products_malformed_shape_is_a_kernel_error_in_plan_step_and_the_executor(monkeypatch, x_shape):
    """``plan_step`` and the executors' PDL policy (``pdl_policy="auto"``, the default) count a step's rows from its
    weight products' x (``ops.weight_product_rows``) by ``int()`` of each dim: a ``shape`` attr ['a'], 16, [None, 16]
    was a raw ValueError or TypeError there, before the registry's refusal naming the node; and '16' passed
    ``plan_step`` as the dims 1 and 6. Now the registry's KernelError, naming the node and the tensor."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor
    from runtime.kernels.ops import KernelError, weight_product_rows
    from runtime.step import plan_step

    g = _product_graph(x_shape)
    want = r"node 'mm': tensor 'x' has shape .*, not a list of positive integers"
    for call in (lambda: weight_product_rows(g), lambda: plan_step(g, batch=1),
                 lambda: Executor(g, memplan.plan(g), random_weights_seed=1)):
        with pytest.raises(KernelError, match=want):
            call()
    assert weight_product_rows(_product_graph([1, 16])) == 1


@pytest.mark.parametrize("const", ["RMS_EPS", "ROPE_BASE", "GEMV_NORM_OFF"])
def test_rule_ab_refuses_a_variant_of_a_constant_that_is_no_rule(capsys, const):
    """``runtime.tools.rule_ab`` times variants of the registry's rules, each run checked against its own serial
    plan. ``RMS_EPS=0.1`` passed as a rule: it changes what the step computes (and only where ``runtime.kernels.ops``
    reads it: the fused add+norm kernels kept 1e-5 through ``runtime.kernels.fused``'s own binding, a step of two
    epsilons, still "bitwise" to its serial plan), as does ``ROPE_BASE``; ``GEMV_NORM_OFF`` is read by no rule (the
    executors' default argument), so its variant timed the registry as it is under another name. Each is one line
    and exit 2 now, naming it, before any device work (no pycuda here: that would be the line otherwise)."""
    from runtime.tools import rule_ab

    assert rule_ab.main(["--variant", f"a:{const}=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"--variant a: {const} " in err and "not a rule" in err, err
    assert rule_ab.parse_variant("b:WG_FILL_MIN_ROWS=33,TC_STEP_CARVEOUT=50") == (
        "b", {"WG_FILL_MIN_ROWS": 33, "TC_STEP_CARVEOUT": 50})   # the rules still vary


def test_the_emulator_refuses_a_weight_root_the_host_cannot_hold():
    """A product reading a view of a few hundred bytes into a weight root of 2**47 bytes (a graph's own sizes, valid
    per the contract: a view lies inside its parent) was numpy's raw ``MemoryError: Unable to allocate 128 TiB``
    from the emulator's root allocation, where an arena past host memory is a BudgetError naming it; now the same,
    naming the weight."""
    from memplan.errors import BudgetError
    from runtime.emulate import emulate

    b = memplan.GraphBuilder("huge-root")
    b.input("x", 4 * 16, shape=[1, 16], dtype="f32")
    b.weight("big", 1 << 47, shape=[1 << 42, 16], dtype="f16")   # (the whole 47-bit user address space)
    b.view("w0", "big", 2 * 8 * 16, 0, kind="weight", shape=[8, 16], dtype="f16")
    b.node("mm", "MUL_MAT", ["w0", "x"], b.output("y", 4 * 8, shape=[1, 8], dtype="f32"))
    g = b.build()
    with pytest.raises(BudgetError, match=r"emulate: weight 'big' of 140737488355328 B \(plan of graph 'huge-root'\) "
                                          r"does not fit in host memory"):
        emulate(g, memplan.plan(g), {}, {"x": np.ones((1, 16), np.float32)})


def _kqv_shared_floats(d: int, threads: int) -> int:
    """Floats of ``__shared__ float sh[10 * 1024]`` that attn_kqv_f16 touches at head size d over ``threads``
    (llama.cu): S = threads / (d / 8) slices' rows of d, then G = ceil(S / 8) group sums of d past them."""
    s = threads // (d // 8)
    return s * d + (s + 7) // 8 * d


def test_attn_kqv_preconditions_keep_its_shared_memory_inside_its_array():
    """``ops.launch_problem`` (what the emulator asks of every launch it runs, and the launch-rule tests of every
    rule's result) took attn_kqv_f16 up to head size 8192, as llama.cu's comment said; past 2048 the kernel's slices
    and group sums overrun its ``float[10 * 1024]`` at some blocks (d 2568 over 963 threads: 10272 floats; 4096 over
    1024: 12288), past the array on the GPU while the emulator computed the right values. Every launch it passes now
    fits, at every block of whole d / 8 slices; the registry's choices are unchanged (it refuses d > 1024 itself)."""
    from runtime.kernels.ops import Launch, launch_problem

    passed = 0
    for d in range(8, 8193, 8):
        d8 = d // 8
        for threads in sorted({d8, (1024 // d8) * d8, 256 // d8 * d8, 512 // d8 * d8} - {0}):
            if threads > 1024:
                continue
            ln = Launch("attn_kqv_f16", (4, 1, 1), (threads, 1, 1), (1 << 20, 1 << 20, 1 << 20, 9, 1, 4, d))
            if launch_problem(ln) is None:
                passed += 1
                assert _kqv_shared_floats(d, threads) <= 10 * 1024, (d, threads)
    assert passed >= 128 * 3   # every d up to 1024 at its blocks


def _odd_f16_cont_graph(alignment: int) -> memplan.Graph:
    """An f16 tensor of 3 elements (6 bytes: no whole 32-bit words) copied by two CONTs, beside f32 work."""
    b = memplan.GraphBuilder("odd-cont", alignment=alignment)
    b.input("x", 4 * 8, shape=[8], dtype="f32")
    b.input("h", 2 * 3, shape=[1, 3], dtype="f16")
    b.node("s", "SILU", ["x"], b.intermediate("t", 32, shape=[8], dtype="f32"))
    b.node("c", "CONT", ["h"], b.intermediate("h2", 6, shape=[1, 3], dtype="f16"))
    b.node("a", "ADD", ["t", "x"], b.output("y", 32, shape=[8], dtype="f32"))
    b.node("c2", "CONT", ["h2"], b.output("h3", 6, shape=[1, 3], dtype="f16"))
    return b.build()


@pytest.mark.parametrize("alignment", [256, 2])
def test_a_cont_of_an_odd_number_of_f16_elements_is_a_byte_copy(monkeypatch, alignment):
    """A CONT of an f16 [1, 3] (6 bytes) was refused, "CONT needs equal sizes that are a multiple of 4 bytes": valid
    per the contract and the registry's own dtypes, but copy_u32 copies whole words. It is now a byte copy (the
    ``memcpy`` launch the registry already takes for a CONT off a word), in the emulator and on the executor alike;
    one whose output overlaps its input is refused naming the node (a byte copy must not overlap what it reads)."""
    import fake_cuda

    from runtime.emulate import emulate
    from runtime.kernels import MEMCPY
    from runtime.kernels.ops import KernelError, node_launches

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    g = _odd_f16_cont_graph(alignment)
    plan = memplan.plan(g)
    x, h = np.linspace(-2, 2, 8).astype(np.float32), np.array([[1.5, -0.25, 3.0]], np.float16)
    out = emulate(g, plan, {}, {"x": x, "h": h})[0]
    assert np.array_equal(out["h3"], h.astype(np.float32))
    np.testing.assert_allclose(out["y"], x / (1 + np.exp(-x)) + x, rtol=1e-6)
    ex = Executor(g, plan, inputs={"x": x, "h": h})
    ex.run()
    assert np.array_equal(ex.read("h3"), h) and np.array_equal(ex.read("y"), out["y"])
    ex.free()
    addr = {"h": 4096, "h2": 8192, "h3": 4096}.get
    assert [ln.kernel for ln in node_launches(g, addr, g.node_index["c"], 132)] == [MEMCPY]
    with pytest.raises(KernelError, match=r"node 'c2': CONT of 6 bytes, not whole words, with its output over its "
                                          r"input"):
        node_launches(g, {"h2": 4096, "h3": 4098}.get, g.node_index["c2"], 132)


def test_a_ctrl_c_in_a_runtime_tool_is_one_line_and_status_130(monkeypatch, capsys):
    """A Ctrl-C in a runtime tool (``compare_launches --emulate`` of a large config runs for minutes on the CPU,
    the GPU benchmarks longer) was Python's KeyboardInterrupt traceback through the tool's frames; every tool's
    ``__main__`` runs through ``tool_args.run_main``, which now gives it as the memplan command does: one line,
    ``PROG: error: interrupted``, and exit status 130."""
    from runtime.tool_args import run_main
    from runtime.tools import compare_launches

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt
    monkeypatch.setattr(compare_launches, "compare_plans", interrupted)
    try:
        rc = run_main(compare_launches.main, "compare_launches",
                      ["--config", "tiny", "--layers", "1", "--batches", "1", "--fuse", "norms"])
    except KeyboardInterrupt:   # (not left to end the test session)
        pytest.fail("the Ctrl-C left run_main as a KeyboardInterrupt")
    assert rc == 130
    out, err = capsys.readouterr()
    assert err == "compare_launches: error: interrupted\n" and out == ""


def test_the_llama_helpers_name_a_config_name_or_a_seed_they_cannot_take():
    """``runtime.models.llama``'s step helpers given a config's name for the config (``build_graph("tiny")``,
    ``make_inputs("1b")``: the one-word call a user tries first) were AttributeErrors from inside ("'str' object has
    no attribute 'batch'"), and a seed numpy's ``default_rng`` refuses (``"a"``, ``1.5``, ``-1``) numpy's own
    TypeError or ValueError; each is an ExecutorError naming the helper and the argument now (the graph argument
    memplan's GraphError). A numpy integer seed gives the int's values, as before."""
    from memplan.errors import ExecutorError, GraphError
    from runtime.models import llama as L

    cfg = L.config("tiny")
    g = L.build_graph(cfg)
    for call, says in ((lambda: L.build_graph("tiny"), r"build_graph: cfg 'tiny' is a str, not a LlamaConfig: "
                                                        r"config\('tiny'\) makes one"),
                       (lambda: L.make_inputs("1b"), r"make_inputs: cfg '1b' is a str"),
                       (lambda: L.dims(None), r"dims: cfg None is a NoneType, not a LlamaConfig"),
                       (lambda: L.reference_forward("tiny", {}, {}), r"reference_forward: cfg 'tiny' is a str"),
                       (lambda: L.kv_poison_ranges(g, 8), r"kv_poison_ranges: cfg 8 is a int"),
                       (lambda: L.make_inputs(cfg, seed="a"), r"make_inputs: seed 'a': expected an integer >= 0"),
                       (lambda: L.make_inputs(cfg, seed=-1), r"make_inputs: seed -1: expected an integer >= 0"),
                       (lambda: L.make_weights(g, cfg, seed=1.5), r"make_weights: seed 1.5: expected an integer")):
        with pytest.raises(ExecutorError, match=says):
            call()
    with pytest.raises(GraphError, match=r"make_weights needs a memplan Graph .* not LlamaConfig"):
        L.make_weights(cfg, g)
    a, b = L.make_inputs(cfg, seed=np.int64(3)), L.make_inputs(cfg, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_rule_ab_check_variants_names_a_variant_the_registry_cannot_build_the_step_with():
    """What ``a:ROPE_BASE=0`` reached before it was refused as no rule (round 28's case): a variant whose constants
    make the registry fail (``math.log2(0)``) is one ValueError naming the variant, config, batch and node."""
    from runtime.tools import rule_ab

    with pytest.raises(ValueError, match=r"--variant a: config tiny at batch 2: the registry cannot build the step "
                                         r"\(KernelError: node .* \(ROPE\): cannot build its kernel"):
        rule_ab.check_variants(["tiny"], [2], [("a", {"ROPE_BASE": 0.0})])
