"""Round 77, fix77: values ONNX's data propagation passes through a Cast unconverted (a static model, where no fold
round ran), checked against onnxruntime 1.32's CPU provider (optimizations off and on)."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402


def _model(n: int, casts: list, tail: int | None = None, symbolic: bool = False, like: bool = False):
    """``y = ConstantOfShape(Cast(Cast...(Shape(x), casts...), INT64))`` of ``x[n]``, or of ``tail - `` that value.
    ``like``: the first cast a CastLike of a constant of its type."""
    nodes = [helper.make_node("Shape", ["x"], ["s"])]
    cur = "s"
    for k, to in enumerate(casts):
        if like and k == 0:
            nodes.append(helper.make_node("Constant", [], ["l"], value=helper.make_tensor("lv", to, [1], [0])))
            nodes.append(helper.make_node("CastLike", [cur, "l"], [f"c{k}"]))
        else:
            nodes.append(helper.make_node("Cast", [cur], [f"c{k}"], to=to))
        cur = f"c{k}"
    nodes.append(helper.make_node("Cast", [cur], ["i"], to=T.INT64))
    cur = "i"
    if tail is not None:
        nodes += [helper.make_node("Constant", [], ["t"], value=helper.make_tensor("tv", T.INT64, [1], [tail])),
                  helper.make_node("Sub", ["t", "i"], ["p"])]
        cur = "p"
    nodes.append(helper.make_node("ConstantOfShape", [cur], ["y"],
                                  value=helper.make_tensor("v", T.FLOAT, [1], [1.0])))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, ["n"] if symbolic else [n])],
                          [helper.make_tensor_value_info("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _ort_lengths(model, n: int) -> set[int]:
    from onnx_oracle import ort_run

    return {next(iter(ort_run(model, {"x": np.zeros(n, np.float32)}, optimized).values())).shape[0]
            for optimized in (False, True)}


@pytest.mark.parametrize("n, casts, tail, like", [
    (4097, [T.FLOAT16], 4100, False),   # (the review's case: 4096, so 4 floats, planned 3: an overrun)
    (4097, [T.FLOAT16], None, False),   # (4096, planned 4097)
    (4097, [T.BFLOAT16], 4200, False),
    (4097, [T.FLOAT16], 5097, True),   # (a CastLike of a float16 constant: refused as two float16 values, 4096 both)
    (300, [T.FLOAT8E4M3FN], 400, False),   # (saturated to 288)
    (300, [T.INT8], None, False),   # (wrapped: 44)
    (65537, [T.INT16], None, False),
    (65537, [T.UINT16], None, False),
    (7, [T.BOOL], None, False),   # (1)
    (4097, [T.UINT32, T.FLOAT16], 4100, False),   # (4096 through two Casts)
])
@pytest.mark.parametrize("symbolic", [False, True])
def test_a_cast_of_a_known_value_sizes_what_follows_as_onnxruntime_converts_it(n, casts, tail, like, symbolic):
    """ONNX's data propagation passes a Cast's value on as it is, whatever type it casts to, and in a model whose
    every shape it made static no fold round ran: ``4100 - Cast(Cast(Shape(x[4097]), FLOAT16), INT64)`` was
    planned 3 floats where onnxruntime writes 4 (float16 holds no 4097), and a Cast to int8, uint16, bool or a
    float8 type was taken unconverted too. Now the fold computes each such Cast, and the plan holds what
    onnxruntime writes."""
    m = _model(n, casts, tail, symbolic, like)
    want = _ort_lengths(m, n)
    assert len(want) == 1
    g = import_onnx(m, dims={"n": n}) if symbolic else import_onnx(m)
    assert g.tensor("y").size // 4 == want.pop()


@pytest.mark.parametrize("n, casts, like", [
    (300, [T.BFLOAT16, T.UINT8], False),   # (onnxruntime: 44; onnx's evaluator: 0)
    (300, [T.FLOAT8E4M3FN, T.INT8], False),   # (288 into int8: -32 there)
    (4097, [T.FLOAT, T.UINT8], False),
    (4097, [T.FLOAT16, T.INT8], True),   # (a CastLike of a float16 constant first)
])
def test_a_float_cast_to_an_integer_type_it_overflows_is_refused(n, casts, like):
    """A float outside an integer type's range converts to what the machine makes (C++ leaves it undefined): the
    import followed ONNX's data propagation (the value unconverted), or a fold's own evaluator (0), where
    onnxruntime's kernel wrapped it. Now the size it makes is refused, naming the node it sizes."""
    with pytest.raises(GraphError, match=r"ConstantOfShape.*'y' dimension 0 is unknown"):
        import_onnx(_model(n, casts, like=like))


@pytest.mark.parametrize("initializer", [False, True])
@pytest.mark.parametrize("value, to", [(300, T.INT8), (2**32 + 5, T.INT32), (4097, T.FLOAT16)])
def test_a_cast_of_a_constant_sizes_what_follows_as_onnxruntime_converts_it(value, to, initializer):
    """The same of an int64 constant (a Constant node or an initializer, which ONNX's data propagation starts from
    too): ``ConstantOfShape(Cast(Cast([300], INT8), INT64))`` was planned 300 floats where onnxruntime writes 44,
    a Cast to int32 of ``2**32 + 5`` 2**32 + 5 floats where it writes 5."""
    nodes = [helper.make_node("Cast", ["s"], ["c"], to=to), helper.make_node("Cast", ["c"], ["i"], to=T.INT64),
             helper.make_node("ConstantOfShape", ["i"], ["y"], value=helper.make_tensor("v", T.FLOAT, [1], [1.0]))]
    inits = [helper.make_tensor("s", T.INT64, [1], [value])] if initializer else []
    if not initializer:
        nodes.insert(0, helper.make_node("Constant", [], ["s"], value=helper.make_tensor("sv", T.INT64, [1], [value])))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [3])],
                          [helper.make_tensor_value_info("y", T.FLOAT, None)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    want = _ort_lengths(m, 3)
    assert len(want) == 1
    assert import_onnx(m).tensor("y").size // 4 == want.pop()


def _in_a_branch_or_body(kind: str):
    """``4100 - Cast(Cast(Shape(x[4097]), FLOAT16), INT64)`` floats made inside an If's then-branch (its condition a
    graph input; the else-branch makes 4) or a Loop's body (two iterations, a scan output)."""
    inner = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["f"], to=T.FLOAT16),
             helper.make_node("Cast", ["f"], ["i"], to=T.INT64),
             helper.make_node("Constant", [], ["c"], value=helper.make_tensor("cv", T.INT64, [1], [4100])),
             helper.make_node("Sub", ["c", "i"], ["p"]),
             helper.make_node("ConstantOfShape", ["p"], ["yb"], value=helper.make_tensor("v", T.FLOAT, [1], [1.0]))]
    yb = helper.make_tensor_value_info("yb", T.FLOAT, None)
    inputs = [helper.make_tensor_value_info("x", T.FLOAT, [4097])]
    if kind == "if":
        other = helper.make_graph([helper.make_node("ConstantOfShape", ["k"], ["ye"])], "else", [],
                                  [helper.make_tensor_value_info("ye", T.FLOAT, None)])
        nodes = [helper.make_node("Constant", [], ["k"], value=helper.make_tensor("kv", T.INT64, [1], [4])),
                 helper.make_node("If", ["cond"], ["y"], then_branch=helper.make_graph(inner, "then", [], [yb]),
                                  else_branch=other)]
        inputs.append(helper.make_tensor_value_info("cond", T.BOOL, []))
    else:
        body = helper.make_graph(inner + [helper.make_node("Identity", ["cin"], ["cout"])], "body",
                                 [helper.make_tensor_value_info("it", T.INT64, []),
                                  helper.make_tensor_value_info("cin", T.BOOL, [])],
                                 [helper.make_tensor_value_info("cout", T.BOOL, []), yb])
        nodes = [helper.make_node("Constant", [], ["M"], value=helper.make_tensor("mv", T.INT64, [], [2])),
                 helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("cv2", T.BOOL, [], [True])),
                 helper.make_node("Loop", ["M", "cond"], ["y"], body=body)]
    g = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


@pytest.mark.parametrize("kind, floats", [("if", 4), ("loop", 8)])
def test_a_cast_of_a_known_value_in_a_branch_or_loop_body_sizes_as_onnxruntime_converts_it(kind, floats):
    """Inside an If's branch or a Loop's body alike: the If (4 floats either way) was refused as making two shapes
    (3 and 4), the Loop's [2, 4] planned 6 floats (an overrun)."""
    m = _in_a_branch_or_body(kind)
    feeds = {"x": np.zeros(4097, np.float32), **({"cond": np.array(True)} if kind == "if" else {})}
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.run(None, feeds)[0].size == floats
    assert import_onnx(m).tensor("y").size // 4 == floats
