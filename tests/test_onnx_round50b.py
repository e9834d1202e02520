"""ONNX importer, round 50b: each case held against what onnxruntime does with the same model.

1. A negative dimension in a ``value_info`` (or graph output) declaration: onnxruntime drops the declaration and runs
   the model; the importer refused it. Now the declaration is cleared and the node's size planned.
2. One initializer listed twice with one dtype and dims: onnxruntime loads it and uses the last listing; the importer
   refused it. Listings of different dtype or dims stay refused, as onnxruntime refuses them.
3. ``Reshape(x, Identity(s))`` with ``s`` in external data: onnxruntime's constant folding carries ``s`` to the
   Reshape, whose inference cannot parse it, and refuses the model; the importer planned it. Now refused naming
   both nodes.
4. A com.microsoft op whose declared output contradicts the size onnxruntime writes: planned at onnxruntime's size,
   as for a standard op (it was refused).
5. An inlined function body node named in an external-data refusal: the function and its caller are named too.
"""

from __future__ import annotations

import numpy as np
import pytest
from cli_contract import run_memplan
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import ort_refuses, ort_sizes, size_mismatches  # noqa: E402
from test_onnx_round50 import _ort_loads, _save_external  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
X = np.ones((2, 3), np.float32)


def _model(nodes, inits=(), outputs=None, value_info=(), x=X, opsets=(("", 17),)):
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, list(x.shape))], outputs or [V("y", T.FLOAT, None)],
                          list(inits), value_info=list(value_info))
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], ir_version=8)


def _planned_as_ort_runs(model, feeds=None):
    feeds = feeds or {"x": X}
    assert not ort_refuses(model, feeds)
    graph = import_onnx(model)
    memplan.plan(graph)
    compared, bad = size_mismatches(graph, ort_sizes(model, feeds, strict=True))
    assert compared >= 1 and not bad, bad
    return graph


# -- 1: a negative declared dimension ---------------------------------------------------------------------------

@pytest.mark.parametrize("declared", [[-1, 3], [2, -5], [-7]])
@pytest.mark.parametrize("where", ["value_info", "output"])
def test_a_negative_declared_dimension_is_dropped_as_onnxruntime_drops_it(declared, where):
    # was: GraphError "dimension 0 is negative"; onnxruntime runs it and writes [2, 3]
    nodes = [helper.make_node("Relu", ["x"], ["t"], name="a"), helper.make_node("Relu", ["t"], ["y"], name="b")]
    vi = V("t", T.FLOAT, declared)
    if where == "value_info":
        model = _model(nodes, value_info=[vi])
    else:
        model = _model(nodes, outputs=[V("y", T.FLOAT, None), vi])
    before = model.SerializeToString()
    graph = _planned_as_ort_runs(model)
    assert graph.tensor("t").size == 24
    assert model.SerializeToString() == before   # (the caller's model is not modified)


def test_a_negative_declared_dimension_before_a_slice_does_not_abort():
    """onnx's Slice inference aborts the process on a negative input dimension: the declaration is cleared first."""
    nodes = [helper.make_node("Relu", ["x"], ["t"], name="a"),
             helper.make_node("Slice", ["t", "st", "en"], ["y"], name="s")]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "st"), numpy_helper.from_array(np.array([1], np.int64), "en")]
    graph = _planned_as_ort_runs(_model(nodes, inits, value_info=[V("t", T.FLOAT, [-4, 3])]))
    assert graph.tensor("y").size == 12


def test_a_negative_graph_input_dimension_is_still_refused_naming_it():
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="a")])
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -2
    # (round 51: onnxruntime takes it as a dimension of any length, and so does the importer: batch=N fixes it)
    with pytest.raises(GraphError, match=r"graph input 'x' dimension 0 is unknown: pass batch=N"):
        import_onnx(model)


# -- 2: an initializer listed twice ------------------------------------------------------------------------------

def test_an_initializer_listed_twice_alike_is_planned_once():
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    model = _model([helper.make_node("Add", ["x", "w"], ["y"], name="a")], [w, w])
    graph = _planned_as_ort_runs(model)
    assert [t.id for t in graph.tensors].count("w") == 1


def test_the_last_listing_of_an_initializer_is_the_one_folded_as_onnxruntime_does():
    # onnxruntime: "the model will use the latest encountered initializer": Reshape by [6, 1], not [3, 2]
    s1, s2 = (numpy_helper.from_array(np.array(v, np.int64), "s") for v in ([3, 2], [6, 1]))
    model = _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")], [s1, s2])
    graph = _planned_as_ort_runs(model)
    assert graph.tensor("y").attrs["shape"] == [6, 1]
    assert [t.name for t in model.graph.initializer] == ["s", "s"]


@pytest.mark.parametrize("other", [np.ones((1, 2, 3), np.float32), np.ones((3,), np.float32),
                                   np.ones((2, 3), np.float64)], ids=["rank", "dims", "dtype"])
def test_an_initializer_listed_twice_unlike_is_refused_as_onnxruntime_refuses_it(tmp_path, capsys, other):
    w1, w2 = numpy_helper.from_array(np.ones((2, 3), np.float32), "w"), numpy_helper.from_array(other, "w")
    model = _model([helper.make_node("Add", ["x", "w"], ["y"], name="a")], [w1, w2])
    assert ort_refuses(model, {"x": X})
    with pytest.raises(GraphError, match=r"initializer 'w' is listed twice with different types or shapes"):
        import_onnx(model)
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path))
    code, _, err = run_memplan(capsys, ["import", str(path), "-o", str(tmp_path / "g.json")])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'w'" in err, err
    assert not (tmp_path / "g.json").exists()


# -- 3: a shape read through nodes onnxruntime removes -------------------------------------------------------------

X4 = np.ones((2, 3, 4, 4), np.float32)


def _reshape_through(chain, outputs=("y",)):
    """``y = Reshape(x, chain(s))`` with ``s = [6, 16]``: ``chain`` a list of (op, attrs), each reading the last."""
    nodes, last = [], "s"
    for i, (op, attrs) in enumerate(chain):
        nodes.append(helper.make_node(op, [last], [f"t{i}"], name=f"via{i}", **attrs))
        last = f"t{i}"
    nodes.append(helper.make_node("Reshape", ["x", last], ["y"], name="r"))
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3, 4, 4])], [onnx.ValueInfoProto(name=o) for o in outputs],
                          [numpy_helper.from_array(np.array([6, 16], np.int64), "s")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


ELIDED = {
    "identity": [("Identity", {})],
    "identity-twice": [("Identity", {}), ("Identity", {})],
    "cast-to-own-dtype": [("Cast", {"to": T.INT64})],
    "identity-then-cast": [("Identity", {}), ("Cast", {"to": T.INT64})],
}


@pytest.mark.parametrize("chain", list(ELIDED.values()), ids=list(ELIDED))
def test_a_shape_read_through_nodes_onnxruntime_removes_is_refused_as_it_refuses_it(tmp_path, capsys, chain):
    # was: planned; onnxruntime (default level) removes the Identity / no-op Cast, and the Reshape's inference then
    # cannot parse 's' from its external file
    path = _save_external(_reshape_through(chain), tmp_path)
    assert not _ort_loads(path)
    with pytest.raises(GraphError, match=r"node 'r' \(Reshape\) reads initializer 's' \(through "
                                         rf"{chain[0][0]} 'via0'.*'data\.bin'"):
        import_onnx(path)
    code, _, err = run_memplan(capsys, ["import", path, "-o", str(tmp_path / "g.json")])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'via0'" in err, err
    assert not (tmp_path / "g.json").exists()


KEPT = {
    "cast-to-another-dtype": ([("Cast", {"to": T.INT32}), ("Cast", {"to": T.INT64})], ("y",)),
    "abs": ([("Abs", {})], ("y",)),
    "identity-writing-an-output": ([("Identity", {})], ("y", "t0")),
}


@pytest.mark.parametrize("chain, outputs", list(KEPT.values()), ids=list(KEPT))
def test_a_shape_made_by_nodes_onnxruntime_keeps_still_imports(tmp_path, chain, outputs):
    """A Cast to another dtype, an Abs, an Identity writing a graph output: onnxruntime keeps the node (its output
    is folded in memory, or is the model's own) and loads the model; the importer plans it at onnxruntime's sizes."""
    model = _reshape_through(chain, outputs)
    path = _save_external(model, tmp_path)
    assert _ort_loads(path)
    graph = import_onnx(path)
    memplan.plan(graph)
    assert graph.tensor("y").attrs["shape"] == [6, 16]
    compared, bad = size_mismatches(graph, ort_sizes(model, {"x": X4}, strict=True))
    assert compared >= 2 and not bad, bad


# -- 5: an inlined function's node named in a refusal -------------------------------------------------------------

def _calling(body_name: str = "", nested: bool = False):
    """``y = F(x, s)`` (node 'call'), F's body ``Relu``, ``Reshape(b, sh)``; ``nested``: F calls G, whose body it is."""
    body = [helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Reshape", ["b", "sh"], ["c"], name=body_name)]
    inner = helper.make_function("loc", "G", ["a", "sh"], ["c"], body, [helper.make_opsetid("", 17)])
    outer = helper.make_function("loc", "F", ["a", "sh"], ["c"], [helper.make_node("G", ["a", "sh"], ["c"], domain="loc")],
                                 [helper.make_opsetid("", 17), helper.make_opsetid("loc", 1)])
    f = helper.make_function("loc", "F", ["a", "sh"], ["c"], body, [helper.make_opsetid("", 17)])
    g = helper.make_graph([helper.make_node("F", ["x", "s"], ["y"], domain="loc", name="call")], "g",
                          [V("x", T.FLOAT, [2, 3, 4, 4])], [V("y", T.FLOAT, None)],
                          [numpy_helper.from_array(np.array([6, 16], np.int64), "s")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("loc", 1)],
                             ir_version=8, functions=[outer, inner] if nested else [f])


@pytest.mark.parametrize("nested", [False, True], ids=["direct", "nested"])
def test_an_inlined_node_refused_is_named_with_its_function_and_caller(tmp_path, capsys, nested):
    # was: "node 'Reshape_1' (Reshape) reads initializer 's' ...", a name the model does not have
    model = _calling(nested=nested)
    path = _save_external(model, tmp_path)
    assert ort_refuses(onnx.load(path, load_external_data=False)) or not _ort_loads(path)
    where = ("node #1 (Reshape) of local function loc:G, called by node #0 (G) of local function loc:F, called by "
             "node 'call'") if nested else "node #1 (Reshape) of local function loc:F, called by node 'call'"
    with pytest.raises(GraphError, match=r"reads initializer 's' .*\(node 'Reshape_1' is " + where.replace("(", r"\(")
                       .replace(")", r"\)") + r"\)$"):
        import_onnx(path)
    code, _, err = run_memplan(capsys, ["import", path, "-o", str(tmp_path / "g.json")])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "local function loc:F" in err, err


def test_a_model_with_functions_still_imports_at_onnxruntime_s_sizes():
    model = _calling()
    graph = _planned_as_ort_runs(model, {"x": X4})
    assert graph.tensor("y").attrs["shape"] == [6, 16]


# -- 4: a com.microsoft op's declaration its kernel contradicts ---------------------------------------------------

def _fast_gelu(declared, where: str, elem=T.FLOAT):
    nodes = [helper.make_node("FastGelu", ["x"], ["t"], name="fg", domain="com.microsoft"),
             helper.make_node("Relu", ["t"], ["y"], name="r")]
    vi = V("t", elem, declared)
    outs = [V("y", T.FLOAT, None)] + ([vi] if where == "output" else [])
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3, 8])], outs, value_info=[vi] if where == "value_info" else [])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


@pytest.mark.parametrize("declared", [[2, 3, 4], [2, 3], [2, 3, 8, 1], [6, 8], [2, 3, 16]])
@pytest.mark.parametrize("where", ["value_info", "output"])
def test_a_contrib_op_s_contradicted_shape_is_planned_at_onnxruntime_s_size(declared, where):
    # was: GraphError "value 't' is declared float [2, 3, 4], but onnxruntime's shape inference makes it float
    # [2, 3, 8]"; onnxruntime runs the model and writes [2, 3, 8], as the importer plans for a standard op
    graph = _planned_as_ort_runs(_fast_gelu(declared, where), {"x": np.ones((2, 3, 8), np.float32)})
    assert graph.tensor("t").size == graph.tensor("y").size == 192


@pytest.mark.parametrize("elem", [T.FLOAT16, T.INT64])
def test_a_contrib_op_s_contradicted_type_is_still_refused_as_onnxruntime_refuses_it(tmp_path, capsys, elem):
    model = _fast_gelu([2, 3, 8], "value_info", elem)
    assert ort_refuses(model, {"x": np.ones((2, 3, 8), np.float32)})
    with pytest.raises(GraphError, match=r"node 'fg' \(com.microsoft:FastGelu\): value 't' is declared .*Type Error"):
        import_onnx(model)
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path))
    code, _, err = run_memplan(capsys, ["import", str(path), "-o", str(tmp_path / "g.json")])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'fg'" in err, err


# -- 2b: one initializer given as dense, sparse and by a Constant node ---------------------------------------------

def _sparse_w(dims=(2, 3), dtype=np.float32):
    return helper.make_sparse_tensor(numpy_helper.from_array(np.array([5], dtype), "w"),
                                     numpy_helper.from_array(np.array([1], np.int64), "wi"), list(dims))


def _adding(inits=(), sparse=(), pre=()):
    g = helper.make_graph([*pre, helper.make_node("Add", ["x", "w"], ["y"], name="a")], "g", [V("x", T.FLOAT, [2, 3])],
                          [V("y", T.FLOAT, None)], list(inits), sparse_initializer=list(sparse))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


W = numpy_helper.from_array(np.full((2, 3), 2, np.float32), "w")


def test_a_dense_and_a_sparse_initializer_alike_are_planned_once():
    # was: "initializer 'w' is declared twice, as a dense and as a sparse initializer"; onnxruntime uses the sparse
    graph = _planned_as_ort_runs(_adding([W], [_sparse_w()]))
    assert [t.id for t in graph.tensors].count("w") == 1


def test_a_constant_writing_an_initializer_s_name_is_what_its_readers_read_as_in_onnxruntime():
    # was: "node 'Constant_0' writes initializer 's'"; onnxruntime uses the Constant's [6, 1], met last
    nodes = [helper.make_node("Constant", [], ["s"], value=numpy_helper.from_array(np.array([6, 1], np.int64), "v")),
             helper.make_node("Reshape", ["x", "s"], ["y"], name="r")]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3])], [V("y", T.FLOAT, None)],
                          [numpy_helper.from_array(np.array([3, 2], np.int64), "s")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert _planned_as_ort_runs(model).tensor("y").attrs["shape"] == [6, 1]
    k = helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(np.full((2, 3), 7, np.float32), "v"))
    _planned_as_ort_runs(_adding([W], [], [k]))


UNLIKE = {
    "dense-sparse-dims": ([W], [_sparse_w((3,))], []),
    "dense-sparse-dtype": ([W], [_sparse_w(dtype=np.float64)], []),
    "dense-constant-dims": ([W], [], [helper.make_node("Constant", [], ["w"], value_floats=[1.0, 2.0, 3.0])]),
    "sparse-twice": ([], [_sparse_w(), _sparse_w()], []),
}


@pytest.mark.parametrize("case", list(UNLIKE))
def test_an_initializer_given_twice_as_onnxruntime_refuses_it_is_refused_naming_it(case):
    model = _adding(*UNLIKE[case])
    assert ort_refuses(model, {"x": X})
    with pytest.raises(GraphError, match=r"initializer 'w' is (listed|declared) twice"):
        import_onnx(model)


# -- a shape passed through a Dropout in inference mode -----------------------------------------------------------

@pytest.mark.parametrize("opset, mode, mask", [(12, None, False), (13, False, True), (13, None, True), (9, None, False), (7, None, False)])
def test_a_shape_through_an_inference_dropout_is_folded_as_onnxruntime_folds_it(opset, mode, mask):
    # was: "node 'r' (Reshape): value 'y' has no shape" (Dropout never folded); onnxruntime runs it at [6, 16]
    ins = ["f"] if mode is None else ["f", "", "tm"]
    nodes = [helper.make_node("Cast", ["s"], ["f"], to=T.FLOAT),
             helper.make_node("Dropout", ins, ["d", "m"] if mask else ["d"], name="drop"),
             helper.make_node("Cast", ["d"], ["t"], to=T.INT64), helper.make_node("Reshape", ["x", "t"], ["y"], name="r")]
    inits = [numpy_helper.from_array(np.array([6, 16], np.int64), "s")]
    if mode is not None:
        inits.append(numpy_helper.from_array(np.array(mode), "tm"))
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3, 4, 4])], [V("y", T.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    assert _planned_as_ort_runs(model, {"x": X4}).tensor("y").attrs["shape"] == [6, 16]


def test_a_shape_through_a_training_dropout_is_still_refused_as_unknown():
    nodes = [helper.make_node("Cast", ["s"], ["f"], to=T.FLOAT), helper.make_node("Dropout", ["f", "", "tm"], ["d"]),
             helper.make_node("Cast", ["d"], ["t"], to=T.INT64), helper.make_node("Reshape", ["x", "t"], ["y"], name="r")]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3, 4, 4])], [V("y", T.FLOAT, None)],
                          [numpy_helper.from_array(np.array([6, 16], np.int64), "s"),
                           numpy_helper.from_array(np.array(True), "tm")])
    with pytest.raises(GraphError, match=r"'r'"):
        import_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8))
