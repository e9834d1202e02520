"""Round 33's runtime leftovers: an ADD/MUL whose broadcast operand comes first, and the runtime's bitwise checks.

Each test names the input, what happened, and what happens now.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import memplan


def _first_small(op: str, b_shape, x_shape, *, norm: bool = False, out_dtype: str = "f32"):
    """A graph computing ``op(b, x)`` with the smaller (broadcast) operand ``b`` FIRST: b an input, or with
    ``norm`` a f32 weight multiplying a RMS_NORM of x (both nodes in one fusion group)."""
    g = memplan.GraphBuilder("first_small")
    f32 = lambda shape: dict(shape=list(shape), dtype="f32")   # noqa: E731
    nx = 4 * math.prod(x_shape)
    g.input("x", nx, **f32(x_shape))
    group = {"group": "g"} if norm else {}
    src = "x"
    if norm:
        g.node("norm", "RMS_NORM", ["x"], g.intermediate("xn", nx, **f32(x_shape)), **group)
        src = "xn"
        g.weight("b", 4 * math.prod(b_shape), **f32(b_shape))
    else:
        g.input("b", 4 * math.prod(b_shape), **f32(b_shape))
    width = 2 if out_dtype == "f16" else 4
    g.node("n", op, ["b", src], g.output("y", width * math.prod(x_shape), shape=list(x_shape), dtype=out_dtype),
           **group)
    return g.build()


def _values(g, seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    arrays = {t.id: rng.standard_normal(t.attrs["shape"]).astype(np.float32) for t in g.tensors
              if t.kind in ("input", "weight")}
    return ({k: v for k, v in arrays.items() if g.tensor(k).kind == "input"},
            {k: v for k, v in arrays.items() if g.tensor(k).kind == "weight"})


def _numpy(op: str, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``op(b, x)`` in float32, in the graph's operand order, b repeated over x as ggml repeats it (each of its
    dimensions, leading 1s added, tiled to x's: numpy's broadcast where b's dimensions are 1 or x's)."""
    shape = [1] * (x.ndim - b.ndim) + list(b.shape)
    full = np.tile(b.reshape(shape), [a // c for a, c in zip(x.shape, shape)])
    return full + x if op == "ADD" else full * x


def _addresses(g):
    """Distinct 256-aligned fake addresses, one per tensor (enough for planning launches)."""
    return {t.id: 1 << 20 + i for i, t in enumerate(g.tensors)}.__getitem__


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


@pytest.mark.parametrize("op,b_shape,x_shape", [("ADD", [4], [3, 4]), ("MUL", [1], [3, 4]), ("MUL", [1, 4], [3, 4]),
                                                ("ADD", [1, 1], [2, 2, 4]), ("MUL", [2, 4], [3, 2, 4]),
                                                ("ADD", [2], [3, 4])])
def test_a_broadcast_operand_first_runs_as_numpy_broadcasts_it(op, b_shape, x_shape):
    """``ADD(b [4], x [3, 4])`` / ``MUL(s [1], x [3, 4])`` (the smaller operand first; ADD and MUL commute) was
    a KernelError (``output 'y' has 12 elements, the ADD kernel writes 4``): the kernel took its element count
    from the first operand and repeats only the second. Now the operands are passed swapped and the emulated
    step gives numpy's broadcast bit for bit."""
    from runtime.emulate import emulate

    g = _first_small(op, b_shape, x_shape)
    inputs, weights = _values(g)
    got = emulate(g, memplan.plan(g), weights, inputs)[0]["y"]
    want = _numpy(op, inputs["b"], inputs["x"])
    assert got.shape == want.shape
    assert np.array_equal(_bits(got), _bits(want))


def test_the_swapped_launch_repeats_the_smaller_operand():
    """The launch binary_f32 gets for ``ADD(b [4], x [3, 4])``: x's address first, b's second, 12 elements
    repeating 4; an operand pair of equal element counts keeps the graph's order (same launches as before)."""
    from runtime.kernels.ops import node_launches

    g = _first_small("ADD", [4], [3, 4])
    addr = _addresses(g)
    (ln,) = node_launches(g, addr, g.node_index["n"], 132)
    assert ln.kernel == "binary_f32"
    assert ln.args[:5] == (addr("x"), addr("b"), addr("y"), 12, 4)
    same = _first_small("MUL", [4, 3], [3, 4])
    addr2 = _addresses(same)
    (ln2,) = node_launches(same, addr2, same.node_index["n"], 132)
    assert ln2.args[:5] == (addr2("b"), addr2("x"), addr2("y"), 12, 12)


def test_a_weight_first_mul_after_a_norm_runs():
    """``MUL(w [8], RMS_NORM(x) [4, 8])`` in one fusion group (the weight first) fell back node by node to the
    refusal; it now runs (node by node) and equals numpy's norm times w."""
    from runtime.emulate import emulate

    g = _first_small("MUL", [8], [4, 8], norm=True)
    inputs, weights = _values(g, seed=3)
    got = emulate(g, memplan.plan(g), weights, inputs)[0]["y"]
    x = inputs["x"].astype(np.float64)
    want = weights["b"] * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_an_f16_output_of_a_broadcast_first_mul():
    """The f16-output twin (``binary_f32_f16``) takes the swapped operands too: numpy's f32 product rounded
    to f16, bit for bit."""
    from runtime.emulate import emulate

    g = _first_small("MUL", [4], [2, 4], out_dtype="f16")
    inputs, weights = _values(g, seed=5)
    got = emulate(g, memplan.plan(g), weights, inputs)[0]["y"]
    want = (inputs["b"] * inputs["x"]).astype(np.float16).astype(np.float32)
    assert np.array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("b_shape,x_shape", [([3, 1], [3, 4]), ([2, 2], [2, 4]), ([3], [3, 4])])
def test_a_broadcast_first_the_kernels_would_compute_otherwise_is_still_refused(b_shape, x_shape):
    """Swapped or not, a column ``[3, 1]`` over ``[3, 4]`` (each row by its own element) is no flat repeat of
    the operand's elements: still a KernelError naming the node and both shapes, never other values."""
    from runtime.emulate import emulate
    from runtime.kernels import KernelError

    g = _first_small("MUL", b_shape, x_shape)
    inputs, weights = _values(g)
    with pytest.raises(KernelError, match=rf"node 'n': 'b' of shape \[{', '.join(map(str, b_shape))}\] broadcasts "
                                          r"over 'x'"):
        emulate(g, memplan.plan(g), weights, inputs)


@pytest.mark.parametrize("op", ["SUB", "DIV"])
def test_sub_and_div_are_never_swapped(op):
    """SUB and DIV do not commute: the runtime has no kernel for them, and a broadcast operand first does not
    make one (a swap would compute x - b for b - x)."""
    from runtime.emulate import emulate
    from runtime.kernels import KernelError

    g = _first_small(op, [4], [3, 4])
    inputs, weights = _values(g)
    with pytest.raises(KernelError, match=f"node 'n': no kernel for op '{op}'"):
        emulate(g, memplan.plan(g), weights, inputs)


@pytest.mark.gpu
@pytest.mark.parametrize("op,b_shape,x_shape,out_dtype", [("ADD", [256], [64, 256], "f32"),
                                                          ("MUL", [1], [64, 256], "f32"),
                                                          ("MUL", [1, 256], [3, 256], "f16"),
                                                          ("ADD", [4, 256], [8, 4, 256], "f32")])
def test_a_broadcast_operand_first_on_the_gpu_equals_numpy(op, b_shape, x_shape, out_dtype):
    """On the GPU: ``op(b, x)`` with the broadcast operand first gives numpy's broadcast bit for bit (f16
    output: numpy's f32 result rounded to f16), infinities in the inputs included; a NaN input gives a NaN
    where numpy's does (its payload is the GPU's canonical one, not the operand's: "NaN payloads aside")."""
    from runtime.executor import Executor

    g = _first_small(op, b_shape, x_shape, out_dtype=out_dtype)
    inputs, _ = _values(g, seed=7)
    inputs["x"].reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
    ex = Executor(g, memplan.plan(g), inputs=inputs)
    ex.run()
    ex.synchronize()
    got = ex.read("y", np.float16 if out_dtype == "f16" else np.float32).astype(np.float32)
    want = _numpy(op, inputs["b"], inputs["x"]).astype(np.float16 if out_dtype == "f16" else np.float32)
    want = want.astype(np.float32)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan) and nan.any()
    assert np.array_equal(_bits(got)[~nan], _bits(want)[~nan])


_QNAN, _OTHER_NAN = np.uint32(0x7FC00000), np.uint32(0x7FC00001)


def _with_bits(values: np.ndarray, index: int, bits) -> np.ndarray:
    out = np.array(values, np.float32)
    out.view(np.uint32).reshape(-1)[index] = bits
    return out


@pytest.mark.parametrize("how,equal", [("same NaN", True), ("other NaN payload", False), ("-0.0 for 0.0", False),
                                       ("same", True)])
def test_compare_launches_compares_the_emulated_outputs_bit_for_bit(monkeypatch, capsys, how, equal):
    """``compare_launches --emulate``: two plans whose outputs hold the same NaN bits were reported
    ``"bitwise_equal": false`` and exited 1 (``np.array_equal``: NaN != NaN), and a -0.0 for a 0.0 (other bits)
    passed as equal. Now the bits are compared: equal exactly where they are."""
    import json

    from runtime import emulate as emulate_mod
    from runtime.tools import compare_launches

    real = emulate_mod.emulate

    def doctored(graph, plan, *args, **kw):
        outs, mem, addr = real(graph, plan, *args, **kw)
        v = np.zeros_like(outs["logits"])
        if "NaN" in how:
            v = _with_bits(v, 0, _QNAN)
        if plan.devices > 1:   # the split plan's outputs
            v = (_with_bits(v, 0, _OTHER_NAN) if how == "other NaN payload"
                 else _with_bits(v, 1, 0x80000000) if how == "-0.0 for 0.0" else v.copy())
        return {**outs, "logits": v}, mem, addr

    monkeypatch.setattr(emulate_mod, "emulate", doctored)
    argv = ["--config", "tiny", "--batches", "1", "--fuse", "norms", "--devices", "2", "--emulate"]
    assert compare_launches.main(argv) == (0 if equal else 1)
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["emulated"]["logits"]["bitwise_equal"] is equal


def test_same_bits_is_bit_equality():
    """``runtime.bits.same_bits`` / ``same_tensor_bits`` (what every "bitwise" check of the runtime now calls):
    the same NaN bits are equal, another payload, a signed zero, another shape or dtype are not."""
    from runtime.bits import same_bits

    a = _with_bits(np.arange(6, dtype=np.float32).reshape(2, 3), 2, _QNAN)
    assert same_bits(a, a.copy()) and not np.array_equal(a, a.copy())
    assert not same_bits(a, _with_bits(a, 2, _OTHER_NAN))
    assert not same_bits(np.zeros(3, np.float32), _with_bits(np.zeros(3, np.float32), 0, 0x80000000))
    assert not same_bits(a, a.reshape(3, 2)) and not same_bits(a, a.astype(np.float64))
    assert same_bits(np.float16([np.nan, -0.0]), np.float16([np.nan, -0.0]))
    assert same_bits(np.arange(4), np.arange(4)) and same_bits(np.float32(np.nan), np.float32(np.nan))


def test_same_tensor_bits_is_bit_equality():
    from needs import need

    torch = need("torch")
    from runtime.bits import same_tensor_bits

    a = torch.tensor([1.0, float("nan"), 0.0])
    assert same_tensor_bits(a, a.clone()) and not torch.equal(a, a.clone())
    assert not same_tensor_bits(a, torch.tensor([1.0, float("nan"), -0.0]))
    assert same_tensor_bits(a.to(torch.bfloat16), a.to(torch.bfloat16).clone())
    assert not same_tensor_bits(a, a.double()) and not same_tensor_bits(a, a[:2])
    assert same_tensor_bits(torch.tensor([True, False]), torch.tensor([True, False]))
    assert same_tensor_bits(torch.tensor(float("nan")), torch.tensor(float("nan")))


#: the runtime modules that report a "bitwise" equality: none may compare float values for it
_BITWISE_CLAIMS = ("runtime/bench.py", "runtime/bench_multi_gpu.py", "runtime/tools/pdl_check.py",
                   "runtime/tools/gemm_bench.py", "runtime/tools/compare_launches.py", "runtime/aten/bench.py",
                   "runtime/aten/bench_scatter.py")


@pytest.mark.parametrize("path", _BITWISE_CLAIMS)
def test_bitwise_claims_compare_bits_not_values(path):
    """``np.array_equal`` / ``torch.equal`` of float outputs in the checks that report "bitwise" (runtime.bench's
    ``same_logits_as_serial``, bench_multi_gpu's ``same_logits_*``, pdl_check's replay count, gemm_bench's
    ``bitwise_repeat``, the ATen benches' ``bitwise*``) said a run with the same NaN bits differed; they call
    ``runtime.bits`` now."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / path).read_text()
    assert "array_equal(" not in text and "torch.equal(" not in text
    assert "same_bits(" in text or "same_tensor_bits(" in text


def test_the_aten_sweep_calls_bitwise_only_the_same_bits():
    """``runtime.aten.sweep.compare`` masked NaNs and compared values: a -0.0 where eager gave 0.0 was
    "bitwise". Now only the same bits are "bitwise" (the same NaN bits included); the rest is "close" or WRONG."""
    from needs import need

    torch = need("torch")
    from runtime.aten.sweep import compare

    ref = torch.tensor([1.0, float("nan"), 0.0])
    assert compare((ref.clone(),), (ref,), torch.float32)[0] == "bitwise"
    assert compare((torch.tensor([1.0, float("nan"), -0.0]),), (ref,), torch.float32)[0] == "close"
    assert compare((torch.tensor([2.0, float("nan"), 0.0]),), (ref,), torch.float32)[0].startswith("WRONG")


@pytest.mark.parametrize("order", [["x", "b"], ["b", "x"]])
def test_an_output_written_over_its_repeated_operand_reads_a_copy(order):
    """``ADD(x [3, 4], b [4])`` with ``inplace {y: b}`` and y planned at b's very address: thread j wrote y[j]
    over b[j] while threads j + 4, j + 8 still read b[j] (a race on the GPU; the emulator reads every input
    before writing, so it never showed). Staging covered only an output shifted off its input; now an input
    smaller than its in-place output is copied to scratch first too, the operand order either way."""
    from runtime.kernels.ops import MEMCPY
    from runtime.step import program_at

    g = memplan.GraphBuilder("over_b", alignment=4)
    f32 = lambda shape: dict(shape=shape, dtype="f32")   # noqa: E731
    g.input("x", 48, **f32([3, 4]))
    g.input("w0", 16, **f32([4]))
    g.node("c", "CONT", ["w0"], g.intermediate("b", 16, **f32([4])))
    g.node("n", "ADD", order, g.output("y", 48, **f32([3, 4])), inplace={"y": "b"})
    graph = g.build()
    doc = json.loads(memplan.plan(graph).to_json())
    at = {t["id"]: t for t in doc["tensors"]}
    at["b"]["offset"], at["y"]["offset"] = 64, 64   # y exactly over b: the in-place pair the contract allows
    doc["arena_bytes"] = max(doc["arena_bytes"], 112)
    plan = memplan.plan_from_dict(doc)
    memplan.verify(graph, plan)
    space = iter(range(1 << 32, 1 << 40, 1 << 16))
    prog, addr = program_at(graph, plan, lambda nbytes, label=None: next(space))
    *copies, binary = prog.launches["n"]
    assert binary.kernel == "binary_f32" and binary.args[2] == addr["y"] == addr["b"]
    assert [c.kernel for c in copies] in (["copy_u32"], [MEMCPY]) and copies[0].args[0] == addr["b"]
    assert binary.args[1] == copies[0].args[1] != addr["b"]   # the repeated operand read from the copy
