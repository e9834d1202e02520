"""Review of round 77's changes (review77a): cases where a round-77 fix refused what onnxruntime runs one way only,
or missed the general case of what it fixed. Graphs built with ``onnx.helper``, checked against onnxruntime 1.32."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_oracle import ort_run  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402


def _ort_rows(model, n: int) -> set[int]:
    """The lengths of ``y`` onnxruntime's CPU provider writes for ``x`` of ``n`` elements: its graph optimizations
    off and on, ``x``'s dimension fixed and symbolic (what a run may take)."""
    out = set()
    for symbolic in (False, True):
        for optimized in (False, True):
            m = type(model)()
            m.CopyFrom(model)
            if symbolic:
                m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "n"
            out.add(next(iter(ort_run(m, {"x": np.zeros(n, np.float32)}, optimized).values())).shape[0])
    return out


def _shape_model(n: int, cast_to: int, divisor: float | None, chain) -> object:
    """``y = ConstantOfShape(chain(Cast(Shape(x), cast_to) [/ divisor]))`` for an ``x`` of ``n`` elements: ``chain``
    is ``(op, attrs)`` pairs, each reading the one before (a ``Mul`` by 1 of the value's own type)."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["v0"], to=cast_to),
             helper.make_node("Constant", [], ["k"], value=helper.make_tensor("k", cast_to, [], [divisor or 1.0]))]
    prev = "v0"
    if divisor is not None:
        nodes.append(helper.make_node("Div", ["v0", "k"], ["q"]))
        prev = "q"
    for i, (op, attrs) in enumerate(chain):
        nodes.append(helper.make_node(op, [prev, "k"] if op == "Mul" else [prev], [f"t{i}"], **attrs))
        prev = f"t{i}"
    nodes.append(helper.make_node("ConstantOfShape", [prev], ["y"],
                                  value=helper.make_tensor("one", T.FLOAT, [1], [1.0])))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [n])],
                          [helper.make_tensor_value_info("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _planned_rows(model) -> int:
    return import_onnx(model).tensor("y").size // 4


@pytest.mark.parametrize("chain", [
    [("Cast", {"to": T.INT64})],
    [("Identity", {}), ("Cast", {"to": T.INT64})],
    [("Cast", {"to": T.FLOAT}), ("Cast", {"to": T.INT64})],
    [("Cast", {"to": T.FLOAT}), ("Floor", {}), ("Cast", {"to": T.INT64})],
], ids=["cast", "identity-cast", "cast32-cast", "cast32-floor-cast"])
def test_a_shape_cast_to_float16_then_cast_again_is_planned_rounded_as_onnxruntime_runs_it(chain):
    # Cast(Div(Cast(Shape(x), FLOAT), 3), FLOAT16) of 6143 / 3 = 2047.67 rounds to 2048; then a Cast (onnxruntime has
    # float16 kernels for it, so the model's Cast stays) gives 2048 in every run. Round 77 followed the value
    # unrounded into the Cast too and refused the model ("depends on the float16 kernels"), which it had planned right
    model = _shape_model(6143, T.FLOAT, 3.0, [("Cast", {"to": T.FLOAT16})] + chain)
    assert _ort_rows(model, 6143) == {2048}
    assert _planned_rows(model) == 2048


@pytest.mark.parametrize("chain", [
    [("Mul", {}), ("Cast", {"to": T.INT64})],
    [("Floor", {}), ("Cast", {"to": T.INT64})],
    [("Identity", {}), ("Neg", {}), ("Neg", {}), ("Cast", {"to": T.INT64})],
], ids=["mul", "floor", "identity-neg-neg"])
def test_an_integer_shape_cast_to_float16_before_an_island_is_refused(chain):
    # Cast(Shape(x), FLOAT16) of a dimension of 4097 is 4096 by ONNX's float16 arithmetic, but onnxruntime drops that
    # Cast before its float32 island and computes 4097 (optimizations off, or a symbolic dimension): 4097 written where
    # 4096 were planned. Only a float input was followed unrounded
    model = _shape_model(4097, T.FLOAT16, None, chain)
    assert 4097 in _ort_rows(model, 4097)
    with pytest.raises(GraphError, match=r"computes 't\d' from float16 values.*\[4096\].*\[4097\]"):
        import_onnx(model)


def test_a_float_shape_cast_to_float16_then_identity_before_an_island_is_refused():
    # an Identity between the model's Cast to float16 and the island is removed by onnxruntime's optimizer: the value
    # flows on unrounded there (2047, 6143 / 3 floored) and rounded without it (2048)
    model = _shape_model(6143, T.FLOAT, 3.0, [("Cast", {"to": T.FLOAT16}), ("Identity", {}), ("Floor", {}),
                                              ("Cast", {"to": T.INT64})])
    assert _ort_rows(model, 6143) == {2047, 2048}
    with pytest.raises(GraphError, match=r"computes 't3' from float16 values"):
        import_onnx(model)
