"""ONNX importer, round 73 (onnx73): inputs nobody had shown the importer.

* A graph output naming a graph input or an initializer, declared with a type of its own: onnxruntime runs it by
  the input's declaration or the initializer's own type (as it runs a ``value_info`` of one, round 51) and returns
  that. Given to ONNX's inference, an output declaration of input ``x`` ``[2, 3]`` as a float of no shape (or of
  symbolic dims) replaced the input's shape there, and the Relu reading it was refused ("value 'y' has no shape");
  one of another rank or dtype over an initializer was refused as "ONNX shape inference failed", naming nothing.
  So was a declaration (graph output or ``value_info``) of a ``Constant``'s value of another dtype, which
  onnxruntime, turning the Constant into an initializer, ignores too.
* An external tensor's ``offset`` / ``length`` that onnxruntime cannot parse whatever the file holds (a space or a
  newline around the digits, an offset of 2**63 or more) was planned; it is refused as "no byte count", as ``"+0"``
  and ``"-4"`` were.
* ONNX's inference failing on a node a local function's body made (a MatMul of mismatched inputs) was refused naming
  ``MatMul_1``, the inlined node's id, a name the model as written does not have, and not the function or its call:
  the error now says where that node is, as errors naming it as ``node 'MatMul_1'`` did.
* MaxPool / AveragePool / LpPool with ``auto_pad`` ``SAME_*``, as onnxruntime 1.32's ``PoolAttributes`` counts their
  windows (a random sweep of pooling attributes against onnxruntime): a dilated kernel past a short input makes 1
  window or 0 where ONNX's rule (``ceil(in / stride)``) counts more, and was planned at ONNX's count (so was, at
  opsets 22 and later, any pool in ``ceil_mode`` of a kernel past its padded input: ONNX counts 1 window); a negative
  count ("Calculated output dimension is negative") and MLAS's pooling of a negative ``SAME_*`` padding (a stride
  longer than the kernel: "padding values must be non-negative") were planned though onnxruntime refuses to run
  them.
* Nodes onnxruntime's kernels refuse to run, found by the same sweep over other ops, were planned: an LRN of a
  non-4-D input, a MaxUnpool whose computed output is not positive along an axis, a GridSample of an input empty
  along a spatial axis, a Conv with ``auto_pad`` ``SAME_*`` of an input empty along a spatial axis. Each is refused
  naming the node. So is a ConvTranspose of an input empty along a spatial axis with an ``output_padding`` or an
  ``output_shape`` (onnxruntime's check computes the input back from the output dividing toward zero, and wants a
  positive input where ``output_shape`` is given).
* An ``ai.onnx.ml`` SVMClassifier / SVMRegressor without ``kernel_params`` (optional in ONNX's schema) was planned;
  onnxruntime's kernel reads it unconditionally and refuses to load the model. Refused naming the node.
* A node whose name holds a line break (``"bad\\nnode"``) that ONNX's inference fails on was refused with the first line
  of onnx's message, cut inside the name: the reason was lost. The name is given to inference escaped.
* A ``value_info`` of an If branch or a Loop body that onnxruntime's inference of the subgraph contradicts as it loads
  the model (a value of the subgraph's own of another element type; a value of the graph around it of another
  element type, rank, or fixed dimension of an initializer or graph input) was dropped by the expansion and the
  model planned; each is now held against the expanded graph, in the branch taken, the branch not taken and both
  branches of an If on a run-time condition, and refused naming the node and the declaration.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pytest
from needs import need

need("onnx")
need("onnxruntime")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _ort_bytes(model, feeds: dict) -> dict[str, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as e:
            # An older onnxruntime (1.30 on the GPU image) refuses opsets newer than its release ("Opset 28 is under
            # development"): the count to compare with is not there to read, which is no finding about memplan.
            if "under development" in str(e):
                pytest.skip(f"onnxruntime {ort.__version__} does not load this opset: {str(e)[-90:]}")
            raise
    return {o.name: np.asarray(v).nbytes for o, v in zip(sess.get_outputs(), sess.run(None, feeds))}


def _model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


# --- a graph output naming a graph input or an initializer, typed otherwise -------------------------------------------

_DECLS = {"no shape": (T.FLOAT, None), "symbolic": (T.FLOAT, ["a", "b"]), "another shape": (T.FLOAT, [3, 2]),
          "another rank": (T.FLOAT, [6]), "another dtype": (T.FLOAT16, [2, 3])}


@pytest.mark.parametrize("decl", sorted(_DECLS))
@pytest.mark.parametrize("of", ["graph input", "initializer"])
def test_output_declaration_of_an_input_or_initializer_is_ignored_as_onnxruntime_ignores_it(of, decl):
    elem, dims = _DECLS[decl]
    if of == "graph input":
        model = _model([helper.make_node("Relu", ["x"], ["y"])], [V("x", T.FLOAT, [2, 3])],
                       [V("y", T.FLOAT, None), V("x", elem, dims)])
        feeds, name = {"x": np.ones((2, 3), np.float32)}, "x"
    else:
        w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
        model = _model([helper.make_node("Relu", ["w"], ["y"])], [], [V("y", T.FLOAT, None), V("w", elem, dims)], [w])
        feeds, name = {}, "w"
    before = model.SerializeToString()
    want = _ort_bytes(model, feeds)
    g = import_onnx(model)
    assert model.SerializeToString() == before   # (the caller's model is not modified)
    assert g.tensor("y").size == want["y"] == 24
    out = g.tensor(f"{name}::output") if of == "graph input" else g.tensor(name)
    assert out.size == want[name] == 24 and out.attrs["shape"] == [2, 3] and out.attrs["dtype"] == "float"
    memplan.plan(g)



@pytest.mark.parametrize("where", ["graph output", "value_info"])
def test_a_constant_s_declaration_of_another_dtype_is_ignored_as_onnxruntime_ignores_it(where):
    k = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.ones((2, 3), np.float32)))
    decl = V("k", T.INT64, [2, 3])
    g = helper.make_graph([k, helper.make_node("Relu", ["k"], ["y"])], "g", [],
                          [V("y", T.FLOAT, None)] + ([decl] if where == "graph output" else []),
                          value_info=[decl] if where == "value_info" else [])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    want = _ort_bytes(model, {})
    got = import_onnx(model)
    assert got.tensor("y").size == want["y"] == 24 and got.tensor("k").size == 24
    assert got.tensor("k").attrs["dtype"] == "float"

def test_output_of_an_input_read_through_views_keeps_its_shape():
    """An Identity chain of the input, each link a graph output (a view of the input), the input listed last."""
    nodes = [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Identity", ["y"], ["z"])]
    model = _model(nodes, [V("x", T.FLOAT, [2, 3])], [V("y", T.FLOAT, None), V("z", T.FLOAT, None), V("x", T.FLOAT, None)])
    g = import_onnx(model)
    assert [g.tensor(v).size for v in ("y", "z", "x::output")] == [24, 24, 24]


# --- an external tensor's offset / length that onnxruntime cannot parse ---------------------------------------------

def _external_model(tmp_path, entries: list[tuple[str, str]]) -> str:
    t = onnx.TensorProto(name="w", data_type=T.FLOAT, dims=[4], data_location=onnx.TensorProto.EXTERNAL)
    for key, value in [("location", "w.bin"), *entries]:
        t.external_data.add(key=key, value=value)
    (tmp_path / "w.bin").write_bytes(bytes(16))
    path = os.path.join(tmp_path, "m.onnx")
    with open(path, "wb") as f:
        f.write(_model([helper.make_node("Add", ["x", "w"], ["y"])], [V("x", T.FLOAT, [4])], [V("y", T.FLOAT, None)],
                       [t]).SerializeToString())
    return path


def _ort_loads(path: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception:   # noqa: BLE001 (onnxruntime's own Fail)
        return False
    return True


@pytest.mark.parametrize("key, value", [("offset", " 0"), ("offset", "0 "), ("length", "16\n"), ("length", " 16"),
                                        ("offset", str(2**63)), ("offset", str(2**64))])
def test_an_offset_or_length_onnxruntime_cannot_parse_is_refused(tmp_path, key, value):
    path = _external_model(tmp_path, [(key, value)])
    assert not _ort_loads(path)
    want = re.escape(f"initializer 'w': its external data is not read: its {key} {value!r} in 'w.bin' is no byte count")
    with pytest.raises(GraphError, match=want):
        import_onnx(path)


@pytest.mark.parametrize("entries", [[("offset", "00")], [("offset", "0"), ("length", "16")]])
def test_a_byte_count_onnxruntime_parses_is_planned(tmp_path, entries):
    path = _external_model(tmp_path, entries)
    assert _ort_loads(path)
    assert import_onnx(path).tensor("w").size == 16


# --- inference failing in a local function's body names the function and the call ----------------------------------

def test_inference_error_in_a_function_body_names_the_function_and_the_call():
    body = [helper.make_node("Relu", ["a"], ["t"]), helper.make_node("MatMul", ["t", "b"], ["c"])]
    f = helper.make_function("my.dom", "MM", ["a", "b"], ["c"], body, [helper.make_opsetid("", 17)])
    g = helper.make_graph([helper.make_node("MM", ["x", "x"], ["y"], domain="my.dom", name="call")], "g",
                          [V("x", T.FLOAT, [2, 3])], [V("y", T.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.dom", 1)],
                          functions=[f], ir_version=8)
    with pytest.raises(GraphError, match=r"Incompatible dimensions .*\(node 'MatMul_1' is node #1 \(MatMul\) of "
                                         r"local function my.dom:MM, called by node 'call'\)"):
        import_onnx(m)


# --- SAME_* pooling as onnxruntime counts it ------------------------------------------------------------------------

def _pool(op, x, opset=19, dtype=T.FLOAT, outputs=("y",), **attrs):
    outs = [V(o, dtype if k == 0 else T.INT64, None) for k, o in enumerate(outputs)]
    g = helper.make_graph([helper.make_node(op, ["x"], list(outputs), name="pool", **attrs)], "g", [V("x", dtype, x)],
                          outs)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


_NP = {T.FLOAT: np.float32, T.DOUBLE: np.float64}


@pytest.mark.parametrize("op, x, attrs, opset, dtype, outputs", [
    # a dilated kernel past a short input: fewer windows than ONNX's ceil(in / stride)
    ("MaxPool", [1, 2, 4], dict(kernel_shape=[4], strides=[2], dilations=[2], auto_pad="SAME_LOWER"), 19, T.FLOAT, ("y",)),
    ("MaxPool", [2, 1, 2], dict(kernel_shape=[4], strides=[2], dilations=[2], auto_pad="SAME_UPPER", ceil_mode=1), 19,
     T.FLOAT, ("y",)),
    ("AveragePool", [2, 4, 1, 7], dict(kernel_shape=[2, 2], strides=[1, 3], dilations=[2, 1], auto_pad="SAME_LOWER",
                                       ceil_mode=1), 19, T.FLOAT, ("y",)),
    ("LpPool", [1, 4, 3], dict(kernel_shape=[4], strides=[1], dilations=[2], auto_pad="SAME_LOWER", ceil_mode=1), 18,
     T.FLOAT, ("y",)),
    # a stride longer than the kernel, which only MLAS's pooling refuses
    ("MaxPool", [1, 1, 3], dict(kernel_shape=[2], strides=[3], auto_pad="SAME_UPPER"), 12, T.DOUBLE, ("y",)),
    ("MaxPool", [1, 1, 3], dict(kernel_shape=[2], strides=[3], auto_pad="SAME_UPPER"), 12, T.FLOAT, ("y", "i")),
    ("AveragePool", [1, 1, 3], dict(kernel_shape=[2], strides=[3], auto_pad="SAME_UPPER"), 19, T.FLOAT, ("y",)),
    ("AveragePool", [1, 1, 5], dict(kernel_shape=[1], strides=[3], auto_pad="SAME_LOWER", ceil_mode=1,
                                    count_include_pad=1), 17, T.FLOAT, ("y",)),
    ("LpPool", [1, 1, 3], dict(kernel_shape=[2], strides=[3], auto_pad="SAME_UPPER"), 18, T.FLOAT, ("y",)),
    # ceil_mode from opset 22 (ONNX's rule counts 1 window of a kernel past the input; onnxruntime none)
    ("MaxPool", [1, 4, 2], dict(kernel_shape=[4], strides=[2], auto_pad="VALID", ceil_mode=1), 28, T.FLOAT, ("y",)),
    ("MaxPool", [2, 4, 1, 8], dict(kernel_shape=[4, 1], strides=[3, 3], ceil_mode=1), 28, T.FLOAT, ("y",)),
    ("AveragePool", [2, 2, 6, 1], dict(kernel_shape=[4, 3], strides=[3, 2], ceil_mode=1, count_include_pad=1), 27,
     T.FLOAT, ("y",)),
    ("LpPool", [2, 1, 3, 6], dict(kernel_shape=[4, 4], strides=[3, 2], dilations=[2, 2], ceil_mode=1), 22, T.FLOAT,
     ("y",)),
])
def test_same_pooling_is_planned_at_onnxruntime_s_count(op, x, attrs, opset, dtype, outputs):
    model = _pool(op, x, opset, dtype, outputs, **attrs)
    want = _ort_bytes(model, {"x": np.ones(x, _NP[dtype])})
    g = import_onnx(model)
    assert g.tensor("y").size == want["y"]
    memplan.plan(g)


@pytest.mark.parametrize("op, x, attrs, opset, why", [
    ("MaxPool", [1, 1, 1], dict(kernel_shape=[3], strides=[1], dilations=[2], auto_pad="SAME_UPPER"), 19,
     "makes -1 windows as onnxruntime counts them; onnxruntime refuses to run it"),
    ("LpPool", [1, 1, 2, 1], dict(kernel_shape=[1, 3], strides=[1, 1], dilations=[1, 2], auto_pad="SAME_LOWER"), 18,
     "along dimension 3 of its input 'x' .* makes -1 windows"),
    ("MaxPool", [1, 1, 3], dict(kernel_shape=[2], strides=[3], auto_pad="SAME_UPPER"), 12,
     r"pads dimension 2 of its input 'x' \(\[1, 1, 3\]\) by -1 .*padding values must be non-negative"),
    ("AveragePool", [1, 1, 4, 4], dict(kernel_shape=[1, 1], strides=[2, 2], auto_pad="SAME_LOWER"), 11,
     "pads dimension 2 .* by -1"),
    ("MaxPool", [1, 1, 1], dict(kernel_shape=[4], strides=[2], dilations=[2], pads=[0, 2], ceil_mode=1), 23,
     "pads 0 \\+ 2\\) makes -1 windows"),
])
def test_same_pooling_onnxruntime_refuses_is_refused(op, x, attrs, opset, why):
    model = _pool(op, x, opset, **attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        so = ort.SessionOptions()
        so.log_severity_level = 4   # (its error is the point: not logged)
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="negative"):
        sess.run(None, {"x": np.ones(x, np.float32)})
    with pytest.raises(GraphError, match=f"node 'pool' \\({op}\\): .*{why}"):
        import_onnx(model)


# --- kernels onnxruntime refuses to run ------------------------------------------------------------------------------

def _one(op, x, inits=(), ins=("x",), **attrs):
    g = helper.make_graph([helper.make_node(op, list(ins), ["y"], name="n", **attrs)], "g", [V("x", T.FLOAT, x)],
                          [V("y", T.FLOAT, None)], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


_W = numpy_helper.from_array


def _onnxruntime_fails_to_run(model, x) -> None:
    """Assert onnxruntime loads ``model`` and refuses to run it on ones of shape ``x`` (its kernel's Fail)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        so = ort.SessionOptions()
        so.log_severity_level = 4
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="Non-zero status code returned while running"):   # (onnxruntime's Fail)
        sess.run(None, {"x": np.ones(x, np.float32)})


@pytest.mark.parametrize("case", ["LRN 3-D", "LRN 5-D", "MaxUnpool", "GridSample", "Conv SAME"])
def test_a_node_onnxruntime_s_kernel_refuses_is_refused(case):
    model, why = {
        "LRN 3-D": (_one("LRN", [1, 2, 3], size=3), "its input 'x' is 3-D .* takes only 4-D input"),
        "LRN 5-D": (_one("LRN", [1, 2, 3, 3, 3], size=3), "its input 'x' is 5-D"),
        "MaxUnpool": (_one("MaxUnpool", [1, 1, 1, 2], [_W(np.zeros([1, 1, 1, 2], np.int64), "i")], ("x", "i"),
                           kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1]),
                      "along dimension 2 .* make an output of 0; .*Computed output dimension is not positive"),
        "GridSample": (_one("GridSample", [1, 2, 0, 3], [_W(np.zeros([1, 2, 2, 2], np.float32), "g")], ("x", "g")),
                       "empty along spatial dimension 2; onnxruntime refuses"),
        "Conv SAME": (_one("Conv", [1, 1, 0], [_W(np.ones([1, 1, 1], np.float32), "w")], ("x", "w"),
                           auto_pad="SAME_UPPER"), "empty along dimension 2, which its auto_pad SAME_UPPER makes"),
    }[case]
    x = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    _onnxruntime_fails_to_run(model, x)
    with pytest.raises(GraphError, match=f"node 'n' \\({model.graph.node[0].op_type}\\): .*{why}"):
        import_onnx(model)


@pytest.mark.parametrize("case", ["LRN 4-D", "MaxUnpool", "GridSample", "Conv SAME"])
def test_the_same_nodes_onnxruntime_runs_are_planned(case):
    model = {
        "LRN 4-D": _one("LRN", [1, 2, 3, 3], size=3),
        "MaxUnpool": _one("MaxUnpool", [1, 1, 2, 2], [_W(np.zeros([1, 1, 2, 2], np.int64), "i")], ("x", "i"),
                          kernel_shape=[2, 2], strides=[1, 1], pads=[1, 1, 1, 1]),
        "GridSample": _one("GridSample", [1, 2, 3, 3], [_W(np.zeros([1, 0, 2, 2], np.float32), "g")], ("x", "g")),
        "Conv SAME": _one("Conv", [0, 1, 3], [_W(np.ones([1, 1, 1], np.float32), "w")], ("x", "w"), auto_pad="SAME_UPPER"),
    }[case]
    x = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    want = _ort_bytes(model, {"x": np.ones(x, np.float32)})
    assert import_onnx(model).tensor("y").size == want["y"]


# --- a subgraph's value_info onnxruntime's inference contradicts ----------------------------------------------------

def _if_model(vi, cond):
    """An If whose then_branch declares ``vi``; ``cond``: "fed" (a graph input), True or False (an initializer)."""
    then = helper.make_graph([helper.make_node("Add", ["x", "w"], ["a"]), helper.make_node("Neg", ["a"], ["a2"])],
                             "then", [], [V("a2", T.FLOAT, None)], value_info=vi)
    other = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["b"])], "else", [], [V("b", T.FLOAT, [2, 3])])
    inits = [numpy_helper.from_array(np.ones((2, 3), np.float32), "w")]
    inputs = [V("x", T.FLOAT, [2, 3])]
    if cond == "fed":
        inputs.insert(0, V("c", T.BOOL, []))
    else:
        inits.append(numpy_helper.from_array(np.array(cond), "c"))
    return _model([helper.make_node("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other)], inputs,
                  [V("y", T.FLOAT, None)], inits)


_REFUSED_VI = {"own dtype": ([V("a", T.INT64, [2, 3])], "declares 'a' tensor\\(int64\\), but its value"),
               "outer rank": ([V("x", T.FLOAT, [5])], "declares 'x', a value of the graph around it, \\[5\\], but "
                                                      "that value is \\[2, 3\\]"),
               "outer dims": ([V("x", T.FLOAT, [3, 2])], "'x', a value of the graph around it, \\[3, 2\\]"),
               "outer dtype": ([V("x", T.INT64, [2, 3])], "'x', a value of the graph around it, tensor\\(int64\\)"),
               "initializer dims": ([V("w", T.FLOAT, [5, 5])], "'w', a value of the graph around it, \\[5, 5\\]")}


@pytest.mark.parametrize("cond", ["fed", True, False])
@pytest.mark.parametrize("case", sorted(_REFUSED_VI))
def test_a_subgraph_value_info_onnxruntime_refuses_is_refused(case, cond):
    vi, why = _REFUSED_VI[case]
    model = _if_model(vi, cond)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        so = ort.SessionOptions()
        so.log_severity_level = 4
        with pytest.raises(Exception, match="Graph attribute inferencing failed"):
            ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    if case == "own dtype" and cond is False:   # (the branch not taken: ONNX's inference of it names the node)
        why = "its then_branch \\(not taken\\): its node 'Add_0': ONNX's inference fails"
    with pytest.raises(GraphError, match=f"node 'if' \\(If\\): .*{why}"):
        import_onnx(model)


@pytest.mark.parametrize("cond", ["fed", True, False])
@pytest.mark.parametrize("vi", [[V("a", T.FLOAT, [5])], [V("x", T.FLOAT, ["n", 3])], [V("x", T.FLOAT, [2, 3])],
                                [V("a", T.FLOAT, None), V("w", T.FLOAT, [2, "m"])]])
def test_a_subgraph_value_info_onnxruntime_merges_is_planned(vi, cond):
    model = _if_model(vi, cond)
    feeds = {"x": np.ones((2, 3), np.float32)} | ({"c": np.array(True)} if cond == "fed" else {})
    assert import_onnx(model).tensor("y").size == _ort_bytes(model, feeds)["y"] == 24


def test_a_loop_body_value_info_of_an_outer_value_is_held_against_it():
    body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Add", ["v", "x"], ["v2"])],
                             "body", [V("i", T.INT64, []), V("c_in", T.BOOL, []), V("v", T.FLOAT, None)],
                             [V("c_out", T.BOOL, []), V("v2", T.FLOAT, None)], value_info=[V("x", T.FLOAT, [7])])
    n = numpy_helper.from_array(np.array(3, np.int64), "n")
    model = _model([helper.make_node("Loop", ["n", "", "x"], ["vf"], name="loop", body=body)], [V("x", T.FLOAT, [2, 3])],
                   [V("vf", T.FLOAT, None)], [n])
    with pytest.raises(GraphError, match=r"node 'loop' \(Loop\): its body's value_info declares 'x', a value of the "
                                         r"graph around it, \[7\], but that value is \[2, 3\]"):
        import_onnx(model)


@pytest.mark.parametrize("x, attrs", [
    ([2, 1, 0], dict(strides=[2], output_padding=[1])),
    ([2, 2, 0], dict(strides=[3], auto_pad="VALID", output_padding=[1])),
    ([1, 2, 0], dict(strides=[1], auto_pad="SAME_UPPER", output_shape=[2])),
])
def test_a_conv_transpose_of_an_empty_input_onnxruntime_refuses_is_refused(x, attrs):
    w = numpy_helper.from_array(np.ones([x[1], 1, 3], np.float32), "w")
    model = _one("ConvTranspose", x, [w], ("x", "w"), **attrs)
    _onnxruntime_fails_to_run(model, x)
    with pytest.raises(GraphError, match=r"node 'n' \(ConvTranspose\): .*onnxruntime refuses to run it"):
        import_onnx(model)


@pytest.mark.parametrize("name", ["bad\nnode", "a\u2028b", "x\ry"])
def test_an_inference_error_on_a_node_named_over_lines_keeps_its_reason(name):
    model = _model([helper.make_node("MatMul", ["x", "x"], ["o"], name=name)], [V("x", T.FLOAT, [2, 3])],
                   [V("o", T.FLOAT, None)])
    with pytest.raises(GraphError) as err:
        import_onnx(model)
    text = str(err.value)
    assert len(text.splitlines()) == 1 and f"node name: {repr(name)[1:-1]})" in text
    assert "Incompatible dimensions for matrix multiplication" in text


@pytest.mark.parametrize("op", ["SVMClassifier", "SVMRegressor"])
@pytest.mark.parametrize("kernel_params", [None, [0.1, 0.0, 3.0]])
def test_an_svm_without_kernel_params_is_refused_as_onnxruntime_refuses_it(op, kernel_params):
    kw = dict(coefficients=[1.0], support_vectors=[1.0, 1.0, 1.0], rho=[0.0], kernel_type="LINEAR")
    kw.update(dict(vectors_per_class=[1, 0], classlabels_ints=[0, 1]) if op == "SVMClassifier" else dict(n_supports=1))
    if kernel_params is not None:
        kw["kernel_params"] = kernel_params
    outs = ["label", "y"] if op == "SVMClassifier" else ["y"]
    g = helper.make_graph([helper.make_node(op, ["x"], outs, name="svm", domain="ai.onnx.ml", **kw)], "g",
                          [V("x", T.FLOAT, [4, 3])], [onnx.ValueInfoProto(name=o) for o in outs])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
                              ir_version=8)
    if kernel_params is None:
        so = ort.SessionOptions()
        so.log_severity_level = 4
        with pytest.raises(Exception, match="No attribute with this name is defined"):
            ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        with pytest.raises(GraphError, match=f"node 'svm' \\({op}\\): it has no kernel_params attribute"):
            import_onnx(model)
    else:
        assert import_onnx(model).tensor("y").size == _ort_bytes(model, {"x": np.ones((4, 3), np.float32)})["y"]
