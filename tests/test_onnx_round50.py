"""ONNX importer, round 50: each case held against what onnxruntime does with the same model.

1. A node whose shape inference reads a tensor held in external data (a Reshape's shape saved with
   ``size_threshold=0``): onnxruntime's loader runs onnx's inference on its initializers and refuses the model
   ("Cannot parse data from external tensors"), whether the file is there or not; the importer read the small file
   itself and planned it. Now refused naming the node, the tensor and the file.
2. A declared shape (graph output, ``value_info``) of a value whose size follows a value ONNX's inference does not
   propagate (an ``Expand`` to a shape passed through ``Identity`` or ``Cast``): the declaration filled the gap, every
   shape looked static, no fold ran, and the declared size was planned unchecked (24 bytes where onnxruntime writes
   48). Now the folds run and the size the nodes make is planned.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from cli_contract import run_memplan
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import ort_refuses, ort_sizes, size_mismatches  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
X = np.ones((2, 3, 4, 4), np.float32)


def _model(nodes, inits, x=X, outputs=("y",), ir_version=8, inputs=()):
    xin = V("x", helper.np_dtype_to_tensor_dtype(x.dtype), list(x.shape))
    outs = [onnx.ValueInfoProto(name=o) for o in outputs]
    g = helper.make_graph(nodes, "g", [xin, *inputs], outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=ir_version)


def _save_external(model, folder) -> str:
    """``model`` saved in ``folder`` with every tensor in ``data.bin`` (``size_threshold=0``, as large exports save)."""
    path = os.path.join(str(folder), "m.onnx")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)   # (saving moves the data out of the model it saves)
    onnx.save_model(copy, path, save_as_external_data=True, all_tensors_to_one_file=True, location="data.bin",
                    size_threshold=0, convert_attribute=True)
    return path


def _ort_loads(path: str) -> bool:
    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's refusal is what is compared
        assert "Cannot parse data from external tensors" in str(exc), exc
        return False
    return True


I64 = lambda *v: np.array(v, np.int64)  # noqa: E731

#: (op, its inputs after x, their values, attributes): each op's inference parses the tensor at input 1
PARSING = [
    ("Reshape", [I64(6, 16)], {}),
    ("Expand", [I64(2, 3, 4, 4)], {}),
    ("Tile", [I64(1, 1, 1, 2)], {}),
    ("Slice", [I64(0), I64(1), I64(0)], {}),
    ("Pad", [I64(0, 0, 1, 1, 0, 0, 1, 1)], {}),
    ("Unsqueeze", [I64(0)], {}),
    ("ReduceSum", [I64(1)], {}),
    ("TopK", [I64(2)], {}),
]


@pytest.mark.parametrize("op, values, attrs", PARSING, ids=[p[0] for p in PARSING])
def test_an_op_that_parses_a_tensor_held_in_external_data_is_refused_as_onnxruntime_refuses_it(tmp_path, op, values,
                                                                                                attrs):
    names = [f"c{i}" for i in range(len(values))]
    outs = ["y", "i"] if op == "TopK" else ["y"]
    node = helper.make_node(op, ["x", *names], outs, name="n", **attrs)
    path = _save_external(_model([node], [numpy_helper.from_array(v, k) for v, k in zip(values, names)],
                                 outputs=outs), tmp_path)
    assert not _ort_loads(path)
    with pytest.raises(GraphError, match=rf"node 'n' \({op}\) reads initializer 'c0' as data its shape follows, but "
                                         r"that tensor's data lies in external file 'data\.bin': onnxruntime"):
        import_onnx(path)
    os.remove(tmp_path / "data.bin")   # (missing, it is refused the same: onnxruntime refuses it either way)
    with pytest.raises(GraphError, match=rf"node 'n' \({op}\) reads initializer 'c0' .*'data\.bin'"):
        import_onnx(path)


def test_a_constant_held_in_external_data_read_as_a_shape_is_refused_naming_it(tmp_path):
    shape = numpy_helper.from_array(I64(6, 16), "v")
    nodes = [helper.make_node("Constant", [], ["s"], name="k", value=shape),
             helper.make_node("Reshape", ["x", "s"], ["y"], name="r")]
    path = _save_external(_model(nodes, []), tmp_path)
    assert not _ort_loads(path)
    with pytest.raises(GraphError, match=r"node 'r' \(Reshape\) reads the 'value' tensor of Constant 'k' .*'data\.bin'"):
        import_onnx(path)


@pytest.mark.parametrize("op, shape", [("MatMul", (4, 5)), ("Add", (2, 3, 4, 4)), ("Mul", (4,))])
def test_a_weight_held_in_external_data_whose_values_size_nothing_still_imports(tmp_path, op, shape):
    """Only an op whose inference parses the tensor is refused: onnxruntime loads a MatMul of an external weight."""
    w = numpy_helper.from_array(np.ones(shape, np.float32), "w")
    model = _model([helper.make_node(op, ["x", "w"], ["y"], name="n")], [w])
    path = _save_external(model, tmp_path)
    assert _ort_loads(path)
    graph = import_onnx(path)
    memplan.plan(graph)
    compared, bad = size_mismatches(graph, ort_sizes(model, {"x": X}, strict=True))
    assert compared >= 1 and not bad, bad


def test_a_shape_computed_from_external_data_imports_at_the_size_onnxruntime_makes(tmp_path):
    """A double tensor Cast to the Reshape's shape: onnxruntime folds the Cast (its inference reads no data) and
    loads the model; the importer reads the small file and folds it too."""
    s = numpy_helper.from_array(np.array([6, 16], np.float64), "s")
    nodes = [helper.make_node("Cast", ["s"], ["si"], name="c", to=T.INT64),
             helper.make_node("Reshape", ["x", "si"], ["y"], name="r")]
    model = _model(nodes, [s])
    path = _save_external(model, tmp_path)
    assert _ort_loads(path)
    graph = import_onnx(path)
    assert graph.tensor("y").attrs["shape"] == [6, 16]
    compared, bad = size_mismatches(graph, ort_sizes(model, {"x": X}, strict=True))
    assert compared == 2 and not bad, bad


def test_an_overridable_initializer_held_in_external_data_is_not_refused_as_unparsable(tmp_path):
    """onnxruntime gives inference no data of an initializer the caller may override (a graph input too, IR 4 on),
    so it loads the model; the importer refuses the size as run-time data, as before, not as unparsable."""
    s = numpy_helper.from_array(I64(6, 16), "s")
    model = _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")], [s], inputs=[V("s", T.INT64, [2])])
    path = _save_external(model, tmp_path)
    assert _ort_loads(path)
    with pytest.raises(GraphError) as info:
        import_onnx(path)
    assert "reads initializer 's' as data" not in str(info.value) and "'s'" in str(info.value)


def test_ir3_initializers_listed_as_inputs_are_constants_whose_external_data_is_refused(tmp_path):
    """IR 3 lists every initializer among the graph inputs, as a constant: onnxruntime parses it, and refuses."""
    s = numpy_helper.from_array(I64(6, 16), "s")
    model = _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")], [s], ir_version=3,
                   inputs=[V("s", T.INT64, [2])])
    path = _save_external(model, tmp_path)
    assert not _ort_loads(path)
    with pytest.raises(GraphError, match=r"node 'r' \(Reshape\) reads initializer 's'"):
        import_onnx(path)


def test_the_command_line_refuses_it_in_one_line(tmp_path, capsys):
    path = _save_external(_model([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")],
                                 [numpy_helper.from_array(I64(6, 16), "s")]), tmp_path)
    code, _, err = run_memplan(capsys, ["import", path, "-o", tmp_path / "g.json"])
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "node 'r' (Reshape) reads initializer 's'" in err and "'data.bin'" in err
    assert not (tmp_path / "g.json").exists()


# -- 2: a declaration that fills a size the nodes leave to a fold -------------------------------------------------

def _expand_through(op: str, declared_as: str):
    """``E = Expand(x[1, 3], op(shp = [4, 3]))``, ``y = Relu(E)`` with ``E`` declared [2, 3] (``declared_as``: a graph
    output or ``value_info``): onnxruntime writes [4, 3]."""
    dtype = np.float64 if op == "Cast" else np.int64
    attrs = {"to": T.INT64} if op == "Cast" else {}
    nodes = [helper.make_node(op, ["shp"], ["t"], name="via", **attrs),
             helper.make_node("Expand", ["x", "t"], ["E"], name="ex"), helper.make_node("Relu", ["E"], ["y"], name="r")]
    declared = V("E", T.FLOAT, [2, 3])
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [1, 3])],
                          [declared, V("y", T.FLOAT, None)] if declared_as == "output" else [V("y", T.FLOAT, None)],
                          [numpy_helper.from_array(np.array([4, 3], dtype), "shp")],
                          value_info=[declared] if declared_as == "value_info" else [])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("declared_as", ["output", "value_info"])
@pytest.mark.parametrize("op", ["Identity", "Cast", "Abs"])
def test_a_declared_shape_the_nodes_contradict_once_folded_is_not_planned(op, declared_as):
    # was: E planned at the declared 24 bytes (every shape looked static, so no fold ran), onnxruntime writes 48
    model = _expand_through(op, declared_as)
    graph = import_onnx(model)
    assert graph.tensor("E").size == 48 and graph.tensor("y").size == 48
    compared, bad = size_mismatches(graph, ort_sizes(model, {"x": np.ones((1, 3), np.float32)}, strict=True))
    assert compared >= 3 and not bad, bad
    memplan.plan(graph)


def test_a_declared_shape_the_folds_confirm_is_planned_as_before():
    model = _expand_through("Identity", "output")
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.array([2, 3], np.int64), "shp"))
    assert import_onnx(model).tensor("E").size == 24


def test_a_declared_shape_contradicted_where_dims_were_fixed_is_refused_naming_it():
    """With ``--dim`` given, a contradicted declaration marks a model exported at its example's size: refused."""
    model = _expand_through("Identity", "output")
    model.graph.input[0].CopyFrom(V("x", T.FLOAT, ["b", 3]))
    with pytest.raises(GraphError, match=r"'E'"):
        import_onnx(model, dims={"b": 1})


def test_onnxruntime_refuses_nothing_here():
    assert not ort_refuses(_expand_through("Cast", "output"), {"x": np.ones((1, 3), np.float32)})


# -- 3: names onnxruntime gives what it inlines -----------------------------------------------------------------

def _fn(name: str, nodes, outs=("b",), domain="local"):
    return helper.make_function(domain, name, ["a"], list(outs), nodes,
                                [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])


def _with_functions(nodes, functions, outputs=("z",), inputs=(), inits=()):
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3]), *inputs], [V(o, T.FLOAT, None) for o in outputs],
                          list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
                             functions=functions, ir_version=8)


F_BODY = [helper.make_node("Relu", ["a"], ["t"], name="r"), helper.make_node("Neg", ["t"], ["b"])]
CALL = helper.make_node("F", ["x"], ["y"], domain="local", name="call")
FEEDS = {"x": np.ones((2, 3), np.float32)}


@pytest.mark.parametrize("case", ["value", "value before", "graph input", "initializer", "node", "nested",
                                  "two functions", "omitted output"])
def test_a_name_onnxruntime_gives_an_inlined_value_or_node_that_the_graph_has_is_refused(case):
    """onnxruntime names the first inlined call of ``F``'s body value ``t`` ``_inlfunc_F_t`` and its node ``r``
    ``_inlfunc_F_r``; onnx's inliner (the importer's) keeps clear of the graph's names, so these were planned."""
    relu = helper.make_node("Relu", ["x"], ["_inlfunc_F_t"], name="other")
    add = helper.make_node("Add", ["y", "_inlfunc_F_t"], ["z"], name="add")
    functions, inputs, inits = [_fn("F", F_BODY)], [], []
    if case == "value":
        nodes, match = [CALL, relu, add], r"its value 't' as '_inlfunc_F_t', the name of value '_inlfunc_F_t' of node 'other'"
    elif case == "value before":
        nodes, match = [relu, CALL, add], r"value '_inlfunc_F_t' of node 'other'"
    elif case == "graph input":
        nodes, inputs, match = [CALL, add], [V("_inlfunc_F_t", T.FLOAT, [2, 3])], r"graph input '_inlfunc_F_t'"
    elif case == "initializer":
        nodes, match = [CALL, add], r"initializer '_inlfunc_F_t'"
        inits = [numpy_helper.from_array(np.ones((2, 3), np.float32), "_inlfunc_F_t")]
    elif case == "node":
        nodes = [CALL, helper.make_node("Relu", ["y"], ["z"], name="_inlfunc_F_r")]
        match = r"its node 'r' as '_inlfunc_F_r', the name of node '_inlfunc_F_r' of the graph"
    elif case == "nested":   # (G's first call, inlined from F's body, is G's first: '_inlfunc_G')
        functions = [_fn("F", [helper.make_node("G", ["a"], ["b"], domain="local")]), _fn("G", F_BODY)]
        nodes = [CALL, helper.make_node("Relu", ["x"], ["_inlfunc_G_t"], name="other"),
                 helper.make_node("Add", ["y", "_inlfunc_G_t"], ["z"], name="add")]
        match = r"local function local:G \(called by node 'G' of local function local:F\): .*'_inlfunc_G_t'"
    elif case == "two functions":   # (F 'a_b' makes 'c', F 'a' makes 'b_c': both '_inlfunc_a_b_c')
        functions = [_fn("a_b", [helper.make_node("Relu", ["a"], ["c"]), helper.make_node("Neg", ["c"], ["b"])]),
                     _fn("a", [helper.make_node("Relu", ["a"], ["b_c"]), helper.make_node("Neg", ["b_c"], ["b"])])]
        nodes = [helper.make_node("a_b", ["x"], ["y"], domain="local"), helper.make_node("a", ["y"], ["z"], domain="local")]
        match = r"as '_inlfunc_a_b_c', the name of value '(b_)?c' of local function local:a(_b)? as onnxruntime inlines"
    else:   # an output every call omits: '_inlfunc_F_c'
        functions = [_fn("F", [*F_BODY, helper.make_node("Abs", ["t"], ["c"])], outs=("b", "c"))]
        nodes = [helper.make_node("F", ["x"], ["y", ""], domain="local", name="call"),
                 helper.make_node("Relu", ["x"], ["_inlfunc_F_c"], name="other"),
                 helper.make_node("Add", ["y", "_inlfunc_F_c"], ["z"], name="add")]
        match = r"its value 'c' as '_inlfunc_F_c'"
    model = _with_functions(nodes, functions, inputs=inputs, inits=inits)
    assert ort_refuses(model, {**FEEDS, **({"_inlfunc_F_t": FEEDS["x"]} if inputs else {})})
    with pytest.raises(GraphError, match=match):
        import_onnx(model)


@pytest.mark.parametrize("case", ["second call", "node named like the prefix", "two domains", "unused initializer",
                                  "graph output only"])
def test_names_onnxruntime_may_give_otherwise_are_not_refused(case):
    """Only certain clashes are refused: a second call's prefix follows a counter (``_inlfunc_F_token_0``), a node
    named ``_inlfunc_F`` moves the first one there too, two functions of one name are inlined in an order onnxruntime
    picks, and an initializer nothing reads is dropped before inlining."""
    functions = [_fn("F", F_BODY)]
    relu = helper.make_node("Relu", ["x"], ["_inlfunc_F_t"], name="other")
    add = helper.make_node("Add", ["y", "_inlfunc_F_t"], ["z"], name="add")
    inits, outputs = [], ("z",)
    if case == "second call":
        nodes = [CALL, helper.make_node("F", ["y"], ["y2"], domain="local"),
                 helper.make_node("Relu", ["y2"], ["z"], name="_inlfunc_F_token_7_r")]
    elif case == "node named like the prefix":
        nodes = [helper.make_node("Relu", ["x"], ["u"], name="_inlfunc_F"),
                 helper.make_node("F", ["u"], ["y"], domain="local", name="call"), relu, add]
    elif case == "two domains":
        functions.append(_fn("F", [helper.make_node("Abs", ["a"], ["t"]), helper.make_node("Neg", ["t"], ["b"])],
                             domain="other"))
        nodes = [CALL, helper.make_node("F", ["y"], ["y2"], domain="other"), helper.make_node("Relu", ["y2"], ["z"])]
    elif case == "unused initializer":
        nodes, inits = [helper.make_node("F", ["x"], ["z"], domain="local")], [
            numpy_helper.from_array(np.ones((2, 3), np.float32), "_inlfunc_F_t")]
    else:
        nodes, outputs = [CALL, helper.make_node("Relu", ["x"], ["_inlfunc_F_tt"])], ("y", "_inlfunc_F_tt")
    model = _with_functions(nodes, functions, outputs=outputs, inits=inits)
    if case == "two domains":
        model.opset_import.append(helper.make_opsetid("other", 1))
    graph = import_onnx(model)
    memplan.plan(graph)
    if case != "second call":   # (onnxruntime's counter: token_7 is no clash there)
        compared, bad = size_mismatches(graph, ort_sizes(model, FEEDS, strict=True))
        assert compared >= 1 and not bad, bad


@pytest.mark.parametrize("nested", [False, True])
def test_a_call_listing_fewer_outputs_than_its_function_returns_is_refused(nested):
    """onnxruntime refuses it ("output index 1 is out of range"); onnx's inliner named the missing output, and the
    importer planned it (48 bytes nothing reads). An output named "" is an omitted optional one, and imports."""
    g_fn = _fn("G", [helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Concat", ["a", "a"], ["c"], axis=0)],
               outs=("b", "c"))
    if nested:
        functions = [_fn("F", [helper.make_node("G", ["a"], ["b"], domain="local", name="inner")]), g_fn]
        who = r"node 'inner' of local function local:F"
    else:
        functions, who = [g_fn], r"node 'call'"
    nodes = [helper.make_node("F" if nested else "G", ["x"], ["z"], domain="local", name="call")]
    model = _with_functions(nodes, functions)
    assert ort_refuses(model, FEEDS)
    with pytest.raises(GraphError, match=rf"{who} calls local function local:G with 1 outputs; it returns 2"):
        import_onnx(model)
    if not nested:
        model.graph.node[0].output.append("")
        assert not ort_refuses(model, FEEDS)
        assert {t.id for t in import_onnx(model).tensors} >= {"x", "z"}


def test_a_call_with_too_few_outputs_in_a_function_nothing_calls_is_not_refused():
    functions = [_fn("F", [helper.make_node("G", ["a"], ["b"], domain="local")]),
                 _fn("G", [helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Relu", ["a"], ["c"])],
                     outs=("b", "c"))]
    model = _with_functions([helper.make_node("Relu", ["x"], ["z"])], functions)
    assert not ort_refuses(model, FEEDS)
    assert import_onnx(model).tensor("z").size == 24


def test_an_offset_past_the_end_of_a_data_file_without_a_length_says_so(tmp_path):
    """The message said "(offset 4096, length -4080)": a length the model never gave, computed from the offset."""
    s = numpy_helper.from_array(np.array([6, 16], np.float64), "s")
    nodes = [helper.make_node("Cast", ["s"], ["si"], name="c", to=T.INT64),
             helper.make_node("Reshape", ["x", "si"], ["y"], name="r")]
    path = _save_external(_model(nodes, [s]), tmp_path)
    model = onnx.load(path, load_external_data=False)
    entries = model.graph.initializer[0].external_data
    kept = [(e.key, e.value) for e in entries if e.key == "location"]
    del entries[:]
    for key, value in [*kept, ("offset", "4096")]:
        entries.add(key=key, value=value)
    onnx.save_model(model, path)
    with pytest.raises(GraphError, match=r"initializer 's', not read \(its data file 'data\.bin' ends at byte 16, "
                                         r"before its offset 4096\)"):
        import_onnx(path)


def test_a_slice_of_external_starts_and_constant_ends_is_refused_as_onnxruntime_refuses_it(tmp_path):
    """ONNX's Slice inference parses its starts only where its ends are known too; onnxruntime knows a Constant's
    ``value_ints`` (an initializer to it), so it parses the external starts, and refuses the model."""
    nodes = [helper.make_node("Constant", [], ["e"], name="k", value_ints=[1]),
             helper.make_node("Slice", ["x", "s", "e"], ["y"], name="sl")]
    path = _save_external(_model(nodes, [numpy_helper.from_array(I64(0), "s")]), tmp_path)
    assert not _ort_loads(path)
    with pytest.raises(GraphError, match=r"node 'sl' \(Slice\) reads initializer 's' .*'data\.bin'"):
        import_onnx(path)
