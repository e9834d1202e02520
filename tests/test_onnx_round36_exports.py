"""ONNX importer, round 36: model kinds not tried before, each checked against onnxruntime 1.32.

Each either plans at the sizes onnxruntime allocates (``onnx_oracle``: every node output exposed) with a plan that
verifies, or is one ``memplan.errors`` error naming the node or value and why:
- control flow (If / Loop / Scan / SequenceMap, hand-built and exported by ``torch.onnx`` from scripted code):
  refused naming the node (memplan does not plan subgraphs);
- Sequence and Optional values (SequenceConstruct, SplitToSequence, SequenceInsert/Erase, ConcatFromSequence,
  Optional / OptionalHasElement / OptionalGetElement); a ConcatFromSequence of tensors that differ off its axis,
  which onnxruntime refuses, was refused as a dimension "ONNX's inference could not derive": it now says why;
- quantized models (``quantize_static`` QDQ at 8, 16 and 4 bits and QOperator, ``quantize_dynamic``,
  DynamicQuantizeLinear + MatMulInteger, QLinearConv, ConvInteger);
- float16 models (a torch export of a ``.half()`` module; a float model converted by hand) and bfloat16 casts;
- string tensors (refused naming the value: no fixed byte size), int4 / uint4 / int2 / float8 values.

The oracle compared a model holding an int4 or float8 value (which numpy cannot hold, so ``run`` cannot return it)
by its graph outputs alone, and counted an empty optional as 8 bytes: it now sizes tensors by the bytes onnxruntime
allocated (``OrtValue.tensor_size_in_bytes``)."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402
from onnx_oracle import ort_sizes, size_mismatches  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
X = V("x", T.FLOAT, [2, 3])
FX = {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}


def _model(nodes, inputs, outputs, inits=(), opset: int = 18, ir: int = 9):
    g = helper.make_graph(nodes, "g", inputs, [o if not isinstance(o, str) else V(o, T.FLOAT, None) for o in outputs],
                          list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)


def _i64(value, name: str):
    return nh.from_array(np.array(value, np.int64), name)


def _planned_as_onnxruntime_runs(model, feeds: dict, **options) -> int:
    """Import ``model``, check every value against onnxruntime's and that the plan verifies; the count compared."""
    g = import_onnx(model, **options)
    real = ort_sizes(model, feeds, strict=True)
    compared, bad = size_mismatches(g, real)
    assert not bad, bad
    memplan.verify(g, memplan.plan(g))
    return compared


def _outputs(model) -> int:
    return len({o for n in model.graph.node for o in n.output if o})


# -- control flow --------------------------------------------------------------------------------------------------

def _if():
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [V("t", T.FLOAT, [2, 3])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [V("e", T.FLOAT, [2, 3])])
    return _model([helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0), helper.make_node("Greater", ["s", "z"], ["c"]),
                   helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="if0")],
                  [X], ["y"], [nh.from_array(np.array(0, np.float32), "z")])


def _loop():
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "x"], ["v_out"])],
        "body", [V("i", T.INT64, []), V("cond_in", T.BOOL, []), V("v_in", T.FLOAT, [2, 3])],
        [V("cond_out", T.BOOL, []), V("v_out", T.FLOAT, [2, 3])])
    return _model([helper.make_node("Loop", ["n", "", "x"], ["y"], body=body, name="loop0")], [X], ["y"], [_i64(3, "n")])


def _scan():
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "xi"], ["s_out"]), helper.make_node("Identity", ["s_out"], ["yo"])],
        "body", [V("s_in", T.FLOAT, [3]), V("xi", T.FLOAT, [3])], [V("s_out", T.FLOAT, [3]), V("yo", T.FLOAT, [3])])
    return _model([helper.make_node("Scan", ["s0", "x"], ["sf", "ys"], body=body, num_scan_inputs=1, name="scan0")],
                  [X], ["sf", "ys"], [nh.from_array(np.zeros(3, np.float32), "s0")])


def _sequence_map():
    body = helper.make_graph([helper.make_node("Relu", ["t"], ["u"])], "body", [V("t", T.FLOAT, [3])],
                             [V("u", T.FLOAT, [3])])
    seq = helper.make_tensor_sequence_value_info
    return _model([helper.make_node("SplitToSequence", ["x"], ["sq"], axis=0, keepdims=0),
                   helper.make_node("SequenceMap", ["sq"], ["sm"], body=body, name="map0"),
                   helper.make_node("ConcatFromSequence", ["sm"], ["y"], axis=0)], [X], ["y", seq("sm", T.FLOAT, None)])


#: (round 64: an If on a run-time condition is refused as such; a Loop of a constant trip count is unrolled, below;
#: round 69: a Scan is unrolled too, and an If on a run-time condition is planned both branches, below)
CONTROL = {"SequenceMap": (_sequence_map, "map0")}


@pytest.mark.parametrize("op", sorted(CONTROL))
def test_control_flow_is_one_error_naming_the_node(op):
    build, name = CONTROL[op]
    with pytest.raises(GraphError, match=rf"node {name!r} \({op}\)(:| has a subgraph| is control flow).*not supported"):
        import_onnx(build())
    assert ort_sizes(build(), FX) is not None   # (onnxruntime runs it: the refusal is memplan's limit, said so)


def test_a_loop_of_a_constant_trip_count_is_planned_as_onnxruntime_runs_it():
    """Round 64: unrolled at import (``control_flow``), each value sized as onnxruntime's run makes it."""
    g = import_onnx(_loop())
    real = ort_sizes(_loop(), FX, strict=True)
    assert not size_mismatches(g, real)[1]
    assert [n.op for n in g.nodes] == ["Identity", "Add"] * 3 or [n.op for n in g.nodes] == ["Add"] * 3
    memplan.verify(g, memplan.plan(g))


def test_an_if_on_a_run_time_condition_is_planned_as_onnxruntime_runs_it():
    """Round 69: both branches planned, the output a Where between them, each value at onnxruntime's size."""
    g = import_onnx(_if())
    real = ort_sizes(_if(), FX, strict=True)
    assert not size_mismatches(g, real)[1]
    assert {n.id for n in g.nodes} >= {"if0/then/Relu_0", "if0/else/Neg_0", "if0/select_0"}
    memplan.verify(g, memplan.plan(g))


def test_a_scan_is_planned_as_onnxruntime_runs_it():
    """Round 69: unrolled over its scan input's length (``control_flow``), each value sized as onnxruntime's run."""
    g = import_onnx(_scan())
    real = ort_sizes(_scan(), FX, strict=True)
    assert not size_mismatches(g, real)[1]
    memplan.verify(g, memplan.plan(g))


@pytest.mark.parametrize("kind", ["loop", "if"])
def test_a_scripted_torch_export_with_control_flow_is_refused_naming_the_node(tmp_path, kind):
    torch = need("torch")

    class Loop(torch.nn.Module):
        def forward(self, x, n: int):
            for _ in range(n):
                x = x * 2 + 1
            return x

    class Cond(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x.relu()
            return -x

    module, args = (Loop(), (torch.ones(2, 3), 3)) if kind == "loop" else (Cond(), (torch.ones(2, 3),))
    path = str(tmp_path / "m.onnx")
    torch.onnx.export(torch.jit.script(module), args, path, dynamo=False, opset_version=17)
    if kind == "if":   # (round 69: both branches planned, the output as onnxruntime makes it)
        g = import_onnx(path)
        y = next(t for t in g.tensors if t.kind == "output")
        assert (y.attrs["shape"], y.size) == ([2, 3], 24)
        return
    with pytest.raises(GraphError, match=r"node '/Loop' \(Loop\): its (trip count|condition) .* not a constant "
                                         r"known at import.*control flow on run-time values"):
        import_onnx(path)


# -- sequences and optionals ---------------------------------------------------------------------------------------

def _seq(nodes, inits=(), outputs=("y",), opset: int = 18):
    return _model(nodes, [X], list(outputs), inits, opset)


SEQUENCES = {
    "construct, length, concat": lambda: _seq(
        [helper.make_node("SequenceConstruct", ["x", "x"], ["sq"]), helper.make_node("SequenceLength", ["sq"], ["n"]),
         helper.make_node("ConcatFromSequence", ["sq"], ["y"], axis=0)], outputs=["y", V("n", T.INT64, None)]),
    "split unevenly, erase, concat": lambda: _seq(
        [helper.make_node("SplitToSequence", ["x", "sp"], ["sq"], axis=1), helper.make_node("SequenceAt", ["sq", "one"], ["a"]),
         helper.make_node("SequenceErase", ["sq"], ["sq2"]), helper.make_node("ConcatFromSequence", ["sq2"], ["y"], axis=1)],
        [_i64(1, "one"), _i64([1, 2], "sp")], ["y", "a"]),
    "split by a scalar, new axis": lambda: _seq(
        [helper.make_node("SplitToSequence", ["x"], ["sq"], axis=1, keepdims=0),
         helper.make_node("SequenceAt", ["sq", "last"], ["a"]),
         helper.make_node("ConcatFromSequence", ["sq"], ["y"], axis=-1, new_axis=1)], [_i64(-1, "last")], ["y", "a"]),
    "empty, insert at a negative position": lambda: _seq(
        [helper.make_node("SequenceEmpty", [], ["e"], dtype=T.FLOAT), helper.make_node("SequenceInsert", ["e", "x"], ["s1"]),
         helper.make_node("SequenceInsert", ["s1", "x", "neg"], ["s2"]),
         helper.make_node("ConcatFromSequence", ["s2"], ["y"], axis=0)], [_i64(-1, "neg")]),
    "an optional tensor": lambda: _seq(
        [helper.make_node("Optional", ["x"], ["o"]), helper.make_node("OptionalHasElement", ["o"], ["h"]),
         helper.make_node("OptionalGetElement", ["o"], ["g"]), helper.make_node("Relu", ["g"], ["y"])],
        outputs=["y", V("h", T.BOOL, None)]),
    "an empty optional": lambda: _seq(
        [helper.make_node("Optional", [], ["o"], type=helper.make_tensor_type_proto(T.FLOAT, [2, 3])),
         helper.make_node("OptionalHasElement", ["o"], ["h"]), helper.make_node("Relu", ["x"], ["y"])],
        outputs=["y", V("h", T.BOOL, None)]),
    "an optional sequence": lambda: _seq(
        [helper.make_node("SequenceConstruct", ["x", "x"], ["sq"]), helper.make_node("Optional", ["sq"], ["o"]),
         helper.make_node("OptionalHasElement", ["o"], ["h"]), helper.make_node("OptionalGetElement", ["o"], ["s2"]),
         helper.make_node("ConcatFromSequence", ["s2"], ["y"], axis=0)], outputs=["y", V("h", T.BOOL, None)]),
}


@pytest.mark.parametrize("case", sorted(SEQUENCES))
def test_sequences_and_optionals_are_planned_as_onnxruntime_runs_them(case):
    model = SEQUENCES[case]()
    assert _planned_as_onnxruntime_runs(model, FX) == _outputs(model)


def test_a_concat_of_unlike_tensors_says_why_onnxruntime_refuses_it():
    """Split 5 columns by 2 ([2, 2], [2, 2], [2, 1]) and join on axis 0: it said the dimension was one "ONNX's
    inference could not derive", blaming onnx for a model no runtime runs."""
    x = V("x", T.FLOAT, [2, 5])
    model = _model([helper.make_node("SplitToSequence", ["x", "k"], ["sq"], axis=1, name="split"),
                    helper.make_node("ConcatFromSequence", ["sq"], ["y"], axis=0, name="cat")], [x], ["y"], [_i64(2, "k")])
    with pytest.raises(GraphError, match=r"node 'cat' \(ConcatFromSequence\): its sequence holds tensors of shapes "
                                         r"\[\[2, 2\], \[2, 2\], \[2, 1\]\], that differ off axis 0"):
        import_onnx(model)
    assert ort_sizes(model, {"x": np.ones((2, 5), np.float32)}) is None


# -- quantized models ----------------------------------------------------------------------------------------------

def _float_cnn(path: str) -> None:
    rng = np.random.default_rng(0)
    inits = [nh.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "W"),
             nh.from_array(np.zeros(4, np.float32), "B"), nh.from_array(rng.standard_normal((64, 5)).astype(np.float32), "W2")]
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"), helper.make_node("MatMul", ["f", "W2"], ["y"], name="mm")]
    onnx.save(_model(nodes, [V("x", T.FLOAT, [1, 3, 8, 8])], [V("y", T.FLOAT, [1, 5])], inits, opset=17, ir=8), path)


CNN_FEEDS = {"x": np.random.default_rng(1).random((1, 3, 8, 8)).astype(np.float32)}


@pytest.mark.parametrize("how", ["QDQ uint8", "QDQ int8", "QDQ int16", "QDQ int4", "QOperator uint8", "dynamic"])
def test_an_onnxruntime_quantized_model_is_planned_as_onnxruntime_runs_it(tmp_path, how):
    q = need("onnxruntime.quantization")
    fmt, _, bits = how.partition(" ")
    float_path, path = str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx")
    _float_cnn(float_path)
    if fmt == "dynamic":
        q.quantize_dynamic(float_path, path, weight_type=q.QuantType.QUInt8)
    else:
        types = {"uint8": (q.QuantType.QUInt8, q.QuantType.QInt8), "int8": (q.QuantType.QInt8, q.QuantType.QInt8),
                 "int16": (q.QuantType.QInt16, q.QuantType.QInt8), "int4": (q.QuantType.QInt4, q.QuantType.QInt4)}[bits]

        class Calibration(q.CalibrationDataReader):
            def __init__(self):
                rng = np.random.default_rng(2)
                self.feeds = iter([{"x": rng.random((1, 3, 8, 8)).astype(np.float32)} for _ in range(3)])

            def get_next(self):
                return next(self.feeds, None)

        q.quantize_static(float_path, path, Calibration(), quant_format=getattr(q.QuantFormat, fmt),
                          activation_type=types[0], weight_type=types[1],
                          extra_options={"UseQDQContribOps": bits == "int16"})
    model = onnx.load(path)
    ops = {n.op_type for n in model.graph.node}
    assert ops & {"QuantizeLinear", "QLinearConv", "DynamicQuantizeLinear"}, ops
    assert _planned_as_onnxruntime_runs(model, CNN_FEEDS) == _outputs(model)


def _quantized_by_hand(kind: str):
    if kind == "DynamicQuantizeLinear + MatMulInteger":
        return _model([helper.make_node("DynamicQuantizeLinear", ["a"], ["aq", "as", "az"], name="dql"),
                       helper.make_node("MatMulInteger", ["aq", "bq", "az", "bz"], ["mi"], name="mmi"),
                       helper.make_node("Cast", ["mi"], ["mf"], to=T.FLOAT, name="cast"),
                       helper.make_node("Mul", ["mf", "as"], ["y"], name="mul")],
                      [V("a", T.FLOAT, ["N", 4])], ["y"],
                      [nh.from_array(np.ones((4, 6), np.uint8), "bq"), nh.from_array(np.array([1, 2, 3, 4, 5, 6], np.uint8), "bz")])
    scalar = nh.from_array
    return _model([helper.make_node("QLinearConv", ["xq", "xs", "xz", "wq", "ws", "wz", "ys", "yz"], ["yq"], name="qc",
                                    pads=[1, 1, 1, 1]),
                   helper.make_node("ConvInteger", ["xq", "wu", "xz"], ["ci"], name="ci"),
                   helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], name="dq")],
                  [V("xq", T.UINT8, [1, 3, 5, 5])], ["y", V("ci", T.INT32, None)],
                  [scalar(np.array(0.1, np.float32), "xs"), scalar(np.array(128, np.uint8), "xz"),
                   scalar(np.ones((2, 3, 3, 3), np.int8), "wq"), scalar(np.array(0.1, np.float32), "ws"),
                   scalar(np.array(0, np.int8), "wz"), scalar(np.array(0.2, np.float32), "ys"),
                   scalar(np.array(128, np.uint8), "yz"), scalar(np.ones((2, 3, 3, 3), np.uint8), "wu")], opset=17, ir=8)


def test_hand_built_quantized_ops_are_planned_as_onnxruntime_runs_them():
    m = _quantized_by_hand("DynamicQuantizeLinear + MatMulInteger")
    assert _planned_as_onnxruntime_runs(m, {"a": np.random.default_rng(3).random((5, 4), np.float32)}, dims={"N": 5}) == 6
    m = _quantized_by_hand("QLinearConv")
    assert _planned_as_onnxruntime_runs(m, {"xq": np.full((1, 3, 5, 5), 130, np.uint8)}) == 3


# -- float16, bfloat16 ---------------------------------------------------------------------------------------------

def test_a_float16_torch_export_is_planned_as_onnxruntime_runs_it(tmp_path):
    torch = need("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4 * 6 * 6, 5)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).flatten(1)).softmax(-1)

    path = str(tmp_path / "m.onnx")
    torch.onnx.export(Net().eval().half(), (torch.ones(2, 3, 8, 8, dtype=torch.float16),), path, dynamo=False,
                      opset_version=17, input_names=["x"], dynamic_axes={"x": {0: "N"}})
    model = onnx.load(path)
    assert model.graph.input[0].type.tensor_type.elem_type == T.FLOAT16
    feeds = {"x": np.ones((3, 3, 8, 8), np.float16)}
    assert _planned_as_onnxruntime_runs(model, feeds, batch=3) == _outputs(model)


def _to_float16(model):
    """``model`` with every float initializer, graph input and output made float16 (what onnxconverter-common's
    ``convert_float_to_float16`` does for a model of ops that all take float16), value_info dropped."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for i, t in enumerate(m.graph.initializer):
        if t.data_type == T.FLOAT:
            m.graph.initializer[i].CopyFrom(nh.from_array(nh.to_array(t).astype(np.float16), t.name))
    for v in (*m.graph.input, *m.graph.output):
        if v.type.tensor_type.elem_type == T.FLOAT:
            v.type.tensor_type.elem_type = T.FLOAT16
    del m.graph.value_info[:]
    return m


def test_a_model_converted_to_float16_by_hand_is_planned_at_half_the_bytes(tmp_path):
    _float_cnn(str(tmp_path / "f.onnx"))
    f32 = onnx.load(str(tmp_path / "f.onnx"))
    f16 = _to_float16(f32)
    compared = _planned_as_onnxruntime_runs(f16, {"x": CNN_FEEDS["x"].astype(np.float16)})
    assert compared == _outputs(f16)
    g32, g16 = import_onnx(f32), import_onnx(f16)
    assert all(g16.tensor(t.id).size * 2 == t.size for t in g32.tensors)


def test_bfloat16_casts_are_planned_as_onnxruntime_runs_them():
    m = _model([helper.make_node("Cast", ["x"], ["b"], to=T.BFLOAT16, name="cb"),
                helper.make_node("Cast", ["b"], ["y"], to=T.FLOAT, name="cf")], [X], ["y"])
    assert _planned_as_onnxruntime_runs(m, FX) == 2
    assert import_onnx(m).tensor("b").size == 12


# -- string, sub-byte and float8 values ----------------------------------------------------------------------------

STRINGS = {
    "a string input": (lambda: _model([helper.make_node("Identity", ["s"], ["y"], name="id")], [V("s", T.STRING, [2])],
                                      [V("y", T.STRING, None)]), r"graph input 's' has dtype string"),
    "a Cast to string and back": (lambda: _model([helper.make_node("Cast", ["x"], ["s"], to=T.STRING, name="tostr"),
                                                  helper.make_node("Cast", ["s"], ["y"], to=T.FLOAT, name="back")],
                                                 [X], ["y"]), r"node 'tostr' \(Cast\): value 's' has dtype string"),
    "a string Constant": (lambda: _model([helper.make_node("Constant", [], ["c"], name="k", value=helper.make_tensor(
        "v", T.STRING, [2], [b"a", b"b"])), helper.make_node("Shape", ["c"], ["y"], name="sh")], [],
        [V("y", T.INT64, None)]), r"node 'k' \(Constant\): value 'c' has dtype string"),
}


@pytest.mark.parametrize("case", sorted(STRINGS))
def test_a_string_tensor_is_one_error_naming_the_value(case):
    build, says = STRINGS[case]
    with pytest.raises(GraphError, match=rf"{says}, which has no fixed byte size"):
        import_onnx(build())


NARROW = [("int4", T.INT4, 21), ("uint4", T.UINT4, 21), ("int2", T.INT2, 25), ("uint2", T.UINT2, 25),
          ("float8e4m3fn", T.FLOAT8E4M3FN, 19), ("float8e5m2", T.FLOAT8E5M2, 19),
          ("float8e4m3fnuz", T.FLOAT8E4M3FNUZ, 19), ("float8e5m2fnuz", T.FLOAT8E5M2FNUZ, 19)]


@pytest.mark.parametrize("name,dtype,opset", NARROW, ids=[n for n, _, _ in NARROW])
def test_a_narrow_value_is_planned_as_onnxruntime_allocates_it(name, dtype, opset):
    """Quantized to ``dtype`` and back, and a weight of ``dtype`` dequantized: 5 int4 values take 3 bytes. The
    oracle compared only the float output of these models, being unable to fetch the narrow value."""
    ir = 11 if opset >= 23 else 10 if opset >= 21 else 9
    scale = nh.from_array(np.array(0.5, np.float32), "s")
    zero = helper.make_tensor("z", dtype, [], [0])
    m = _model([helper.make_node("QuantizeLinear", ["v", "s", "z"], ["q"], name="ql"),
                helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dql"),
                helper.make_node("DequantizeLinear", ["w", "s", "z"], ["wd"], name="dqw"),
                helper.make_node("MatMul", ["d", "wd"], ["y"], name="mm")], [V("v", T.FLOAT, [1, 5])], ["y"],
               [scale, zero, helper.make_tensor("w", dtype, [5, 3], [1] * 15)], opset=opset, ir=ir)
    assert _planned_as_onnxruntime_runs(m, {"v": np.ones((1, 5), np.float32)}) == 4
    bits = 2 if name.endswith("int2") else 4 if name.endswith("int4") else 8
    assert import_onnx(m).tensor("q").size == -(-5 * bits // 8)
