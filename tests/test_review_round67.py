"""Review of round 67: silent-wrong results in the round's merged changes (CPU).

1. ``value_reads._compiling`` took ``torch.compiler.is_compiling()``, which a non-strict export sets True for its
   whole trace of ``forward`` (``torch._export.utils._compiling_state_context``), not only while Dynamo traces a
   higher-order op's body: the value-read modes passed every call on, so ``x * T.tolist()[0] + T`` on a global ``T``
   baked ``T``'s numbers into the program and ``T.mul_(1.5)`` after compile changed eager's result, silently not the
   program's (tests/test_aten_round64c.py failed on main too). The modes now step aside only while Dynamo itself
   traces (``torch.compiler.is_dynamo_compiling()``, which is False outside Dynamo).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile, thread_reads, value_reads  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _export_flag():
    """The flag a non-strict export holds for its trace of ``forward`` (torch's own context where it has one)."""
    utils = pytest.importorskip("torch._export.utils")
    if not hasattr(utils, "_compiling_state_context"):
        pytest.skip("this torch's export sets no compiling flag")
    return utils._compiling_state_context()


def test_a_read_during_a_non_strict_exports_trace_is_recorded():
    t = torch.tensor([3.0])
    with value_reads.watch_value_reads(torch) as reads, _export_flag():
        assert torch.compiler.is_compiling()
        float(t)
    assert id(t) in reads


def test_the_threads_mode_records_during_a_non_strict_exports_trace_too():
    reads: dict = {}
    parent = value_reads._mode_class(torch)(torch, reads)   # (the export's mode, whose reads a thread carries)
    t = torch.tensor([2.0])
    with _export_flag():
        thread_reads._under(torch, parent, lambda: float(t))
    assert id(t) in reads


T = torch.tensor([1.5, -0.5])


class _GlobalTolist(nn.Module):
    def forward(self, x):
        return x * T.tolist()[0] + T


def test_a_global_read_as_numbers_and_changed_in_place_is_refused_not_the_exports_numbers():
    T.copy_(torch.tensor([1.5, -0.5]))
    m, x = _GlobalTolist(), torch.tensor([0.25, 2.0])
    c = compile(m, (x,), streams=2, cuda_graph=False, poison=True, device="cpu")
    assert torch.equal(c(x), m(x))
    T.mul_(1.5)
    try:
        with pytest.raises(AtenExecutorError, match="T.*changed since compile"):
            assert torch.equal(c(x), m(x)), "silently the export's numbers"
    finally:
        T.copy_(torch.tensor([1.5, -0.5]))


# 2. ``exact._linear`` ran ``addmm`` for every contiguous 3-D input and, from round 67, for a contiguous 1-D bias of
#    a contiguous input of more dimensions. Eager's ``linear`` (torch 2.11 and 2.14) takes ``addmm`` for a 2-D input,
#    and for a contiguous input of more dimensions only with a bias "likely fusable" (contiguous, one dimension once
#    squeezed); else ``matmul`` then ``add_``. In f16/bf16 on the CPU the two differ by an ulp: a 3-D input with a
#    strided bias (``B[::2]``) or a 0-D bias, and a 4-D one with a ``[1, N]`` bias, were computed otherwise than eager.
def _lowered_linear(x, w, b):
    from runtime.aten.exact import exact_lowering

    ref = torch.nn.functional.linear(x, w, b)
    out = torch.empty_like(ref, memory_format=torch.contiguous_format)
    found = exact_lowering(torch, "linear", {"input": x, "weight": w, "bias": b}, [out], "cpu")
    if found is None:   # (the generic path: ``linear.out``, matmul then add_ for more than 2 dimensions)
        torch.ops.aten.linear.out(x, w, b, out=out)
    else:
        found[1]()
    return out, ref


def _lowering_refuses(x, w, b):
    from runtime.aten.exact import exact_lowering

    out = torch.empty(*x.shape[:-1], w.shape[0], dtype=x.dtype)
    with pytest.raises(RuntimeError):
        found = exact_lowering(torch, "linear", {"input": x, "weight": w, "bias": b}, [out], "cpu")
        if found is None:
            torch.ops.aten.linear.out(x, w, b, out=out)
        else:
            found[1]()


_BIASES = {
    "[N]": lambda n, dt: torch.randn(n, dtype=dt),
    "strided [N]": lambda n, dt: torch.randn(2 * n, dtype=dt)[::2],
    "[1, N]": lambda n, dt: torch.randn(1, n, dtype=dt),
    "0-D": lambda n, dt: torch.randn((), dtype=dt),
    "[1]": lambda n, dt: torch.randn(1, dtype=dt),
    "stride-0 [N]": lambda n, dt: torch.randn(1, dtype=dt).expand(n),
    "[16, N]": lambda n, dt: torch.randn(16, n, dtype=dt),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("lead", [(64,), (1, 16), (4, 16), (2, 3, 16), (2, 2, 2, 16), (0, 3, 16)], ids=str)
@pytest.mark.parametrize("bias", list(_BIASES))
def test_the_lowered_linear_is_bitwise_eagers_for_every_bias_shape(dtype, lead, bias):
    torch.manual_seed(len(lead) * 7 + len(bias))
    k, n = 384, 96   # (a sum long enough that addmm and mm + add_ differ in f16/bf16 on the CPU)
    x, w, b = torch.randn(*lead, k, dtype=dtype), torch.randn(n, k, dtype=dtype), _BIASES[bias](n, dtype)
    try:
        torch.nn.functional.linear(x, w, b)
    except RuntimeError:   # (eager refuses this bias: so must the lowering, never a result)
        _lowering_refuses(x, w, b)
        return
    out, ref = _lowered_linear(x, w, b)
    assert torch.equal(out, ref)


# 3. ``infer._wide_slice_steps`` turned onnx's data propagation off for a Slice step past int32 given as a constant
#    alone: the same ``2**32`` step through a ``Concat``, ``Cast`` or ``Unsqueeze`` of the constant still ran it, and
#    it grew a list until the process held all its memory ("ONNX shape inference failed: std::bad_alloc" under a
#    3 GiB limit; without one, the machine's memory). onnxruntime runs the Slice (one element).
_CARRIED_STEP_CHILD = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import onnx_sweep_round67 as sweep
from onnx import helper
C, I = sweep._const, sweep._i
carriers = {"concat": [C("p0", I([2**32])), helper.make_node("Concat", ["p0"], ["p"], axis=0)],
            "cast": [C("p0", I([2**32])), helper.make_node("Cast", ["p0"], ["p"], to=7)],
            "unsqueeze": [C("p0", I(2**32)), C("ax", I([0])), helper.make_node("Unsqueeze", ["p0", "ax"], ["p"])],
            "identity-concat": [C("p1", I([2**62])), helper.make_node("Identity", ["p1"], ["p0"]),
                                helper.make_node("Concat", ["p0"], ["p"], axis=0)]}
for how, pre in carriers.items():
    nodes = [C("s", I([0])), C("e", I([5])), C("a", I([0])), *pre, helper.make_node("Slice", ["x", "s", "e", "a", "p"], ["y"])]
    print(how, sweep.compare(sweep._chain("carried", nodes, {"x": sweep._x((3,))}, ["y"], 13)), flush=True)
"""


def test_a_wide_slice_step_carried_through_concat_cast_or_unsqueeze_is_planned_without_exhausting_memory():
    import os
    import subprocess
    import sys

    pytest.importorskip("onnxruntime")
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(here), here, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _CARRIED_STEP_CHILD], capture_output=True, timeout=180, env=env,
                          text=True)
    assert done.returncode == 0, done.stdout[-400:] + done.stderr[-400:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.endswith("('agree (onnxruntime)', [])") for line in lines), done.stdout


def test_before_torch_2_10_the_lowering_keeps_that_torchs_rule(monkeypatch):
    # (torch 2.9 and before: any bias of a contiguous 3-D input, a 1-D one of more dimensions: pytorch#166071 changed it)
    from runtime.aten.exact import _eager_addmm

    x3, x4 = torch.randn(2, 3, 8), torch.randn(2, 2, 3, 8)
    strided, row = torch.randn(8)[::2], torch.randn(1, 4)
    assert not _eager_addmm(torch, x3, strided) and _eager_addmm(torch, x4, row)
    monkeypatch.setattr(torch, "__version__", torch.torch_version.TorchVersion("2.9.1"))
    assert _eager_addmm(torch, x3, strided) and _eager_addmm(torch, x3, row) and not _eager_addmm(torch, x4, row)
    assert _eager_addmm(torch, x4, strided) and _eager_addmm(torch, x4[0], strided)


# 4. ``kernels.check_gather_nd_batch`` counted the indices' batches over their first ``batch_dims`` dimensions;
#    onnxruntime counts slices over all leading ones (``indices.shape[:-1]``) and runs what that count divides by
#    the data's batches: data ``[4, 2, 3]`` by indices ``[2, 2, k]``, ``batch_dims=1``, was refused here.
#    Since round 68 what onnxruntime runs of unequal batch dimensions is refused too (the spec does not define it,
#    onnx's reference fails on it), naming its extension ("known refusal"); what it cannot divide, as before.
@pytest.mark.parametrize("data, idx, runs", [((4, 2, 3), (2, 2, 1), "known"), ((4, 2, 3), (2, 2, 0), "known"),
                                             ((6, 2, 3), (3, 2, 1), "known"), ((4, 2, 3), (2, 3, 1), False),
                                             ((2, 3, 4), (3, 1), False), ((2, 3, 4), (4, 1), "known"),
                                             ((4, 2, 3), (4, 2, 1), True)])
def test_gather_nd_batches_are_judged_as_onnxruntime_counts_them(data, idx, runs):
    import numpy as np

    pytest.importorskip("onnxruntime")
    sweep = pytest.importorskip("onnx_sweep_round67")
    from onnx import helper

    nodes = [sweep._const("i", np.zeros(idx, np.int64)), helper.make_node("GatherND", ["x", "i"], ["y"], batch_dims=1)]
    kind, lines = sweep.compare(sweep._chain("gnd", nodes, {"x": sweep._x(data)}, ["y"], 13))
    assert kind == ("known refusal" if runs == "known" else "agree (onnxruntime)" if runs else "both refuse"), lines


# 5. ``kernels.check_zero_point_shapes`` took any one-element zero point of MatMulInteger as a scalar: a
#    ``[1, 1, 1]`` one of a 2-D ``A`` or ``B`` (a rank above its operand's) was planned, while onnxruntime and onnx's
#    reference refuse to run it.
@pytest.mark.parametrize("a, b, which, zp, runs", [((3, 4), (4, 5), "a", (1, 1, 1), False),
                                                   ((3, 4), (4, 5), "b", (1, 1, 1), False),
                                                   ((2, 3, 4), (4, 5), "b", (1, 1, 1), False),
                                                   ((3, 4), (4, 5), "a", (1,), True),
                                                   ((3, 4), (4, 5), "b", (), True)])
def test_a_one_element_zero_point_of_a_rank_above_its_operands_is_refused(a, b, which, zp, runs):
    import numpy as np

    pytest.importorskip("onnxruntime")
    sweep = pytest.importorskip("onnx_sweep_round67")
    from onnx import helper

    ins = ["a", "b", "z"] if which == "a" else ["a", "b", "", "z"]
    nodes = [sweep._const("a", np.ones(a, np.uint8)), sweep._const("b", np.ones(b, np.uint8)),
             sweep._const("z", np.zeros(zp, np.uint8)), helper.make_node("MatMulInteger", ins, ["y"])]
    kind, lines = sweep.compare(sweep._chain("mmi", nodes, {"x": sweep._x((1,))}, ["y"], 13))
    assert kind == ("agree (onnxruntime)" if runs else "both refuse"), lines
