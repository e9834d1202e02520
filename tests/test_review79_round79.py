"""Round 79 (review79): defects found reviewing round 78's change, each checked against a reference.

* An integer ``ReduceLogSum`` that drops its reduced axis (``keepdims=0``, a scalar): round 78 folded it as
  onnxruntime computes it (the float64 reduction truncated), but numpy's ``trunc`` of a 0-d array is a numpy scalar,
  which the fold drops as no value, so what it sized stayed refused as unknown, where onnxruntime runs the model.
  Oracle: onnxruntime's sizes (``onnx_oracle.ort_sizes``).
* A Loop that runs no iteration, whose scan output its body computes from a value of the graph around (``Identity(x)``)
  otherwise than it declares: round 78 refuses a body whose nodes compute another shape than declared (onnxruntime's
  empty output then takes another shape), but inferred the body alone, x untyped, so the declaration stood and what a
  ``Shape`` of it sized was planned smaller than onnxruntime wrote. The body is now inferred with the outer types.
* ``device_capacity``'s value refusals (a bad byte count, a list of another length than the devices) named the option
  as fixed text, where its over-capacity refusals carry it as ``errors.NamesOptions`` fields: each caller spells it
  (the library's own text stays the same to the letter).
* ``runtime.binding.Binding.address`` refused a base whose allocation runs past 2**64 (round 78) but returned 2**64
  itself for an empty arena's tensors: no 64-bit address (a pointer argument wraps it around to 0).
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

import memplan
from memplan import examples
from memplan.errors import BudgetError


def _reduce_log_sum_scalar_model(shape: list[int]):
    """``x -> Shape -> ReduceLogSum(keepdims=0) -> Unsqueeze -> ConstantOfShape -> y``: y holds
    ``trunc(log(sum(shape)))`` floats."""
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    zero = numpy_helper.from_array(np.array([0], np.int64), "zero")
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ReduceLogSum", ["s"], ["r"], keepdims=0),
             helper.make_node("Unsqueeze", ["r", "zero"], ["r1"]),
             helper.make_node("ConstantOfShape", ["r1"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, shape)],
                          [helper.ValueInfoProto(name="y")], initializer=[zero])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("shape", [[4, 2, 3], [3, 3, 3, 3], [1, 1]])
def test_an_integer_reduce_log_sum_to_a_scalar_is_planned_at_onnxruntimes_size(shape):
    # (was refused: "its input 'r1' sizes it by its values, which the importer does not know")
    need("onnx")
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    from memplan.importers.onnx import import_onnx

    model = _reduce_log_sum_scalar_model(shape)
    real = ort_sizes(model, {"x": np.zeros(shape, np.float32)}, strict=True)
    planned = {t.id: t.size for t in import_onnx(model).tensors}
    assert planned["y"] == real["y"] == 4 * int(np.log(sum(shape)))


def _zero_trip_loop_model(declared: list[int], reads: str = "x"):
    """A Loop of trip count 0 whose body's one scan output is ``Identity(reads)`` of a value of the graph around (the
    input x of [4], or ``x2 = Relu(x)``), declared of element shape ``declared``; then ``y = ConstantOfShape(10 -
    ReduceSum(Shape(scan)))``."""
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Identity", [reads], ["s"])], "body",
        [helper.make_tensor_value_info("i", T.INT64, []), helper.make_tensor_value_info("c", T.BOOL, [])],
        [helper.make_tensor_value_info("c_out", T.BOOL, []), helper.make_tensor_value_info("s", T.FLOAT, declared)])
    inits = [numpy_helper.from_array(np.array(0, np.int64), "M"), numpy_helper.from_array(np.array(True), "C"),
             numpy_helper.from_array(np.array([10], np.int64), "K")]
    nodes = [helper.make_node("Relu", ["x"], ["x2"]), helper.make_node("Loop", ["M", "C"], ["scan"], body=body),
             helper.make_node("Shape", ["scan"], ["sh"]), helper.make_node("ReduceSum", ["sh"], ["n"], keepdims=1),
             helper.make_node("Sub", ["K", "n"], ["m"]), helper.make_node("ConstantOfShape", ["m"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [4])],
                          [helper.ValueInfoProto(name="y")], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("reads", ["x", "x2"])
def test_a_zero_trip_loops_scan_output_computed_from_the_graph_around_otherwise_than_declared_is_refused(reads):
    # (was planned [0, 2, 2] from the declaration: y of 6 floats, 24 bytes, where onnxruntime wrote 10 floats)
    need("onnx")
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    from memplan.errors import GraphError
    from memplan.importers.onnx import import_onnx

    x = {"x": np.ones(4, np.float32)}
    model = _zero_trip_loop_model([2, 2], reads)
    assert ort_sizes(model, x, strict=True)["y"] == 40
    with pytest.raises(GraphError, match=r"'Loop_1' \(Loop\): it runs no iteration .* element shape \[2, 2\], but its "
                                         r"nodes compute \[4\]"):
        import_onnx(model)
    agreed = _zero_trip_loop_model([4], reads)   # (declared as computed: planned at onnxruntime's size)
    planned = {t.id: t.size for t in import_onnx(agreed).tensors}
    assert planned["y"] == ort_sizes(agreed, x, strict=True)["y"] == 24


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"device_capacity": -1}, "device_capacity must be a non-negative byte count below 2**63, or a list of them (one "
                              "per device), not -1"),
    ({"device_capacity": [1 << 40, "{b}"], "devices": 2},
     "device_capacity[1] (device 1) must be a non-negative byte count below 2**63, not '{b}'"),
    ({"device_capacity": [1 << 40] * 3, "devices": 2},
     "device_capacity lists 3 capacities for 2 devices: give one per device (or one number, each device's)"),
])
def test_device_capacity_value_refusals_carry_the_option_for_each_caller_to_spell(kwargs, text):
    # (the library's text unchanged, a value holding braces kept as it is; the option a field ``spelled`` respells)
    with pytest.raises(BudgetError) as info:
        memplan.plan(examples.llama(examples.LLAMA_TINY), **kwargs)
    exc = info.value
    assert str(exc) == text
    assert exc.spelled(lambda name, value: "?") == text
    assert exc.spelled(memplan.errors.OptionSpelling(str, str, lambda name: "CAP")) == text.replace("device_capacity", "CAP")


def test_an_empty_arena_based_at_two_to_the_64_has_no_address():
    # (round 78 refused a base whose allocation runs past 2**64, but returned 2**64 itself for an empty arena's
    # tensors, which a 64-bit pointer argument wraps around to 0)
    from memplan.errors import ExecutorError
    from runtime.binding import bind

    b = memplan.GraphBuilder("empty-arena", alignment=4)
    b.input("x", 0, shape=[0], dtype="f32")
    b.node("c0", "CONT", ["x"], b.output("y", 0, shape=[0], dtype="f32"))
    g = b.build()
    binding = bind(g, memplan.plan(g))
    assert binding.arena_bytes == (0,)
    assert binding.address("y", [(1 << 64) - 256], {}) == (1 << 64) - 256
    with pytest.raises(ExecutorError, match=r"arena_base\[0\] = 18446744073709551616 puts device 0's 0-byte arena "
                                            r"past the end of the 64-bit address space"):
        binding.address("y", [1 << 64], {})


def test_a_zero_trip_loops_scan_output_of_another_rank_than_declared_is_refused_though_its_dims_are_names():
    # (x of [N]: the body computes [N], a rank 1 where [2, 2] is declared, which no fixed shape compared; planned
    # [0, 2, 2] with N = 4, 24 bytes for y, where onnxruntime's empty output is [0] and y 40 bytes)
    need("onnx")
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    from memplan.errors import GraphError
    from memplan.importers.onnx import import_onnx

    model = _zero_trip_loop_model([2, 2])
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    assert ort_sizes(model, {"x": np.ones(4, np.float32)}, strict=True)["y"] == 40
    with pytest.raises(GraphError, match=r"element shape \[2, 2\], but its nodes compute \[N\]"):
        import_onnx(model, dims={"N": 4})
    same_rank = _zero_trip_loop_model([3])   # (onnxruntime's [0, 3], as declared: planned so)
    same_rank.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    planned = {t.id: t.size for t in import_onnx(same_rank, dims={"N": 4}).tensors}
    assert planned["y"] == ort_sizes(same_rank, {"x": np.ones(4, np.float32)}, strict=True)["y"] == 28
