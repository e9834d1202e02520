"""ONNX importer, round 45: models onnxruntime refuses to load or run are refused, naming what it refuses.

An LSTM, GRU or RNN with ``layout=1`` was planned, while onnxruntime refuses to create its kernel ("Batchwise
recurrent operations (layout == 1) are not supported"). A SequenceInsert at a known position outside its known
sequence (5 into a sequence of one tensor) was planned as an append; onnxruntime refuses to run it ("Invalid
sequence index"), and the error must name the SequenceInsert. A graph input, output or value_info declared a
tensor of element type 0 (UNDEFINED) was planned or refused with another message; onnxruntime refuses to load the
model ("Invalid tensor data type 0").
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_oracle import ort_refuses as _ort_refuses  # noqa: E402

from memplan.errors import GraphError, MemplanError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _model(nodes, inputs, outputs, inits=(), value_info=(), opset: int = 14, domains=()):
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits), value_info=list(value_info))
    return helper.make_model(g, opset_imports=opsets, ir_version=8)


def _rnn(op: str, layout: int):
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    hidden, inp = 5, 4
    x = V("X", T.FLOAT, [2, 3, inp])
    w = helper.make_tensor("W", T.FLOAT, [1, gates * hidden, inp], np.zeros(gates * hidden * inp).tolist())
    r = helper.make_tensor("R", T.FLOAT, [1, gates * hidden, hidden], np.zeros(gates * hidden * hidden).tolist())
    n = helper.make_node(op, ["X", "W", "R"], ["Y"], name="rnn1", hidden_size=hidden, layout=layout)
    return _model([n], [x], [V("Y", T.FLOAT, None)], [w, r])


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_batch_major_rnn_is_refused_naming_the_node(op):
    m = _rnn(op, 1)
    assert _ort_refuses(m)
    with pytest.raises(GraphError, match=rf"node 'rnn1' \({op}\) has layout=1"):
        import_onnx(m)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_sequence_major_rnn_is_still_planned(op):
    m = _rnn(op, 0)
    assert not _ort_refuses(m)
    g = import_onnx(m)
    y = next(t for t in g.tensors if t.id == "Y")
    assert y.size == 2 * 1 * 3 * 5 * 4   # [seq, directions, batch, hidden] float


def _seq_insert(pos: int, second=(2,)):
    x, x2 = V("X", T.FLOAT, [2]), V("X2", T.FLOAT, list(second))
    nodes = [helper.make_node("SequenceEmpty", [], ["s0"], name="empty", dtype=T.FLOAT),
             helper.make_node("SequenceInsert", ["s0", "X"], ["s1"], name="ins_ok"),
             helper.make_node("SequenceInsert", ["s1", "X2", "pos"], ["s2"], name="ins_bad"),
             helper.make_node("SequenceAt", ["s2", "zero"], ["Y"], name="at")]
    inits = [helper.make_tensor("pos", T.INT64, [], [pos]), helper.make_tensor("zero", T.INT64, [], [0])]
    return _model(nodes, [x, x2], [V("Y", T.FLOAT, None)], inits)


@pytest.mark.parametrize("pos,second", [(5, (2,)), (-3, (2,)), (5, (3,)), (2, (3,))])
def test_sequence_insert_outside_is_refused_naming_the_insert(pos, second):
    m = _seq_insert(pos, second)
    feeds = {"X": np.zeros(2, np.float32), "X2": np.zeros(second, np.float32)}
    assert _ort_refuses(m, feeds)
    with pytest.raises(GraphError, match=r"node 'ins_bad' \(SequenceInsert\): its position 'pos' is"):
        import_onnx(m)


@pytest.mark.parametrize("pos", [1, 0, -1])
def test_sequence_insert_inside_is_planned(pos):
    m = _seq_insert(pos, (3,))
    feeds = {"X": np.zeros(2, np.float32), "X2": np.zeros(3, np.float32)}
    y = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    g = import_onnx(m)
    assert next(t for t in g.tensors if t.id == "Y").size == y.nbytes


def test_sequence_erase_outside_is_refused_naming_the_erase():
    x = V("X", T.FLOAT, [2])
    nodes = [helper.make_node("SequenceConstruct", ["X", "X"], ["s"], name="mk"),
             helper.make_node("SequenceErase", ["s", "pos"], ["s2"], name="erase"),
             helper.make_node("SequenceAt", ["s2", "zero"], ["Y"], name="at")]
    inits = [helper.make_tensor("pos", T.INT64, [], [2]), helper.make_tensor("zero", T.INT64, [], [0])]
    m = _model(nodes, [x], [V("Y", T.FLOAT, None)], inits)
    assert _ort_refuses(m, {"X": np.zeros(2, np.float32)})
    with pytest.raises(GraphError, match=r"node 'erase' \(SequenceErase\): its position 'pos' is 2"):
        import_onnx(m)


@pytest.mark.parametrize("where", ["input", "output", "output-unshaped", "value_info", "custom-output"])
def test_undefined_element_type_is_refused_naming_the_value(where):
    x, y, vi = V("X", T.FLOAT, [2]), V("Y", T.FLOAT, [2]), []
    if where == "input":
        x = V("X", 0, [2])
    elif where in ("output", "custom-output"):
        y = V("Y", 0, [2])
    elif where == "output-unshaped":
        y = V("Y", 0, None)
    else:
        vi = [V("M", 0, [2])]
    custom = where == "custom-output"
    nodes = [helper.make_node("Relu", ["X"], ["M"], name="r"),
             helper.make_node("Foo" if custom else "Neg", ["M"], ["Y"], name="n", domain="my" if custom else "")]
    m = _model(nodes, [x], [y], value_info=vi, domains=["my"] if custom else ())
    assert _ort_refuses(m)
    name = {"input": "graph input 'X'", "value_info": "value_info 'M'"}.get(where, "graph output 'Y'")
    with pytest.raises(MemplanError, match=rf"{name} has dtype undefined, .* element type 0, UNDEFINED"):
        import_onnx(m)


@pytest.mark.parametrize("names,blamed", [(("ins", "ins"), "ins_1"), (("", ""), "SequenceInsert_2"),
                                          (("a", "SequenceInsert"), "SequenceInsert")])
def test_inference_error_names_the_node_at_fault(names, blamed):
    """onnx's inference names the node by its ONNX name: the first of two nodes named ``ins`` (valid) was blamed."""
    x, i = V("X", T.FLOAT, [2]), V("I", T.INT64, [2])
    nodes = [helper.make_node("SequenceEmpty", [], ["s0"], dtype=T.FLOAT),
             helper.make_node("SequenceInsert", ["s0", "X"], ["s1"], name=names[0]),
             helper.make_node("SequenceInsert", ["s1", "I"], ["s2"], name=names[1]),
             helper.make_node("SequenceAt", ["s2", "zero"], ["Y"])]
    m = _model(nodes, [x, i], [V("Y", T.FLOAT, None)], [helper.make_tensor("zero", T.INT64, [], [0])])
    assert _ort_refuses(m)
    # two nodes named alike are refused for that before inference (round 49), as onnxruntime refuses them
    at_fault = "both named 'ins'" if names == ("ins", "ins") else rf"node name: {blamed}\)"
    with pytest.raises(GraphError, match=at_fault):
        import_onnx(m)


def test_inference_error_after_a_large_constant_names_the_node_by_its_id():
    """A large Constant is left out of the inference copy, which shifted the ids of the nameless nodes after it."""
    big = helper.make_tensor("big", T.FLOAT, [70000], np.zeros(70000, np.float32).tobytes(), raw=True)
    nodes = [helper.make_node("Constant", [], ["c"], value=big),
             helper.make_node("Relu", ["X"], ["r"]),
             helper.make_node("Add", ["r", "I"], ["Y"])]
    m = _model(nodes, [V("X", T.FLOAT, [2]), V("I", T.INT64, [2])], [V("Y", T.FLOAT, None), V("c", T.FLOAT, None)])
    with pytest.raises(GraphError, match=r"node 'Add_2' \(Add\): input #1 'I' \(B\) is tensor\(int64\)"):
        import_onnx(m)
