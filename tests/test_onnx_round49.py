"""ONNX importer, round 49: each case held against what onnxruntime does with the same model.

Duplicate node names: onnxruntime refuses a model with two nodes of one name ("two nodes with same node name"),
also two of one name in the body of a local function it inlines; the importer renamed the second (``n`` ->
``n_1``, pushing a node really named ``n_1`` to ``n_2``), so graph and plan named nodes the model does not have.
Now refused naming the name and both nodes; a ``Constant`` (folded into an initializer, as onnxruntime does before
it checks names) may share a name, and the node that really has the name keeps it as its id.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import ort_refuses, ort_sizes, size_mismatches  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _model(nodes, inputs, outputs, inits=(), opset: int = 18, functions=(), extra_opsets=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    ops = [helper.make_opsetid("", opset), *[helper.make_opsetid(d, 1) for d in extra_opsets]]
    return helper.make_model(g, opset_imports=ops, ir_version=8, functions=list(functions))


def _x_feeds(shape=(2,)):
    return {"x": np.ones(shape, np.float32)}


# ------------------------------------------------------------------------------------------ duplicate names
def _relu_chain(names):
    nodes, prev = [], "x"
    for k, nm in enumerate(names):
        out = "y" if k == len(names) - 1 else f"v{k}"
        nodes.append(helper.make_node("Relu", [prev], [out], name=nm))
        prev = out
    return _model(nodes, [V("x", T.FLOAT, [2])], [V("y", T.FLOAT, [2])])


@pytest.mark.parametrize("names", [["n", "n"], ["n", "n_1", "n"], ["a", "", "b", "a"], ["", "", "x1", "x1", "z"]])
def test_repeated_node_name_refused_as_onnxruntime_refuses(names):
    m = _relu_chain(names)
    assert ort_refuses(m, _x_feeds())
    dup = next(x for i, x in enumerate(names) if x and x in names[:i])
    with pytest.raises(GraphError, match=rf"both named {dup!r}: onnxruntime refuses the model"):
        import_onnx(m)


@pytest.mark.parametrize("names", [["n", "n_1", "m"], ["", "", ""], ["", "Relu_0", "Relu_1_1"]])
def test_unique_names_kept_as_ids(names):
    """Every named node keeps its ONNX name as its id (a generated name never takes one a node has)."""
    m = _relu_chain(names)
    assert not ort_refuses(m, _x_feeds())
    ids = [n.id for n in import_onnx(m).nodes]
    assert len(set(ids)) == len(ids)
    assert all(i == nm for i, nm in zip(ids, names) if nm)


def test_constant_may_share_a_name_and_the_node_keeps_it():
    """onnxruntime folds the Constant into an initializer first and runs the model; the Add, the only node of
    the plan, was imported as ``n_1``, a name the model does not have."""
    c = helper.make_node("Constant", [], ["c"], name="n", value=helper.make_tensor("v", T.FLOAT, [2], [1, 2]))
    m = _model([c, helper.make_node("Add", ["x", "c"], ["y"], name="n")], [V("x", T.FLOAT, [2])],
               [V("y", T.FLOAT, [2])])
    assert not ort_refuses(m, _x_feeds())
    assert [n.id for n in import_onnx(m).nodes] == ["n"]


def _fn_model(body, callers, tail="m"):
    f = helper.make_function("loc", "F", ["i"], ["o"], body, [helper.make_opsetid("", 18)])
    nodes, prev = [], "x"
    for k, nm in enumerate(callers):
        nodes.append(helper.make_node("F", [prev], [f"a{k}"], name=nm, domain="loc"))
        prev = f"a{k}"
    nodes.append(helper.make_node("Relu", [prev], ["y"], name=tail))
    return _model(nodes, [V("x", T.FLOAT, [2])], [V("y", T.FLOAT, [2])], functions=[f], extra_opsets=["loc"])


def _two_relus(a="n", b="n"):
    return [helper.make_node("Relu", ["i"], ["t"], name=a), helper.make_node("Relu", ["t"], ["o"], name=b)]


def test_repeated_name_in_a_called_function_body_refused():
    m = _fn_model(_two_relus(), ["c"])
    assert ort_refuses(m, _x_feeds())
    with pytest.raises(GraphError, match=r"of local function loc:F \(called by node 'c'\) are both named 'n'"):
        import_onnx(m)


def test_repeated_name_in_an_uncalled_function_body_is_no_error():
    m = _fn_model(_two_relus(), [])
    assert not ort_refuses(m, _x_feeds())
    assert [n.id for n in import_onnx(m).nodes] == ["m"]


@pytest.mark.parametrize("callers,tail,refused", [(["c", "c"], "m", True), (["c"], "c", True), (["c", "e"], "m", False)])
def test_function_callers_named_alike(callers, tail, refused):
    m = _fn_model(_two_relus("p", "q"), callers, tail)
    assert ort_refuses(m, _x_feeds()) == refused
    if refused:
        with pytest.raises(GraphError, match=r"of the graph are both named 'c'"):
            import_onnx(m)
    else:
        g = import_onnx(m)
        assert len({n.id for n in g.nodes}) == len(g.nodes) == 5


# ------------------------------------------------------------------- kernels refusing what inference sizes
def _i64(name, vals, shape=None):
    a = np.array(vals, np.int64)
    return numpy_helper.from_array(a if shape is None else a.reshape(shape), name)


def _f32(name, vals):
    return numpy_helper.from_array(np.asarray(vals, np.float32), name)


X4 = V("x", T.FLOAT, [1, 2, 3, 5])


def _resize(scales=None, sizes=None, opset=18):
    ins, inits = ["x", "", "sc" if scales is not None else ""], []
    if scales is not None:
        inits.append(_f32("sc", scales))
    if sizes is not None:
        ins.append("sz")
        inits.append(_i64("sz", sizes))
    while ins[-1] == "":
        ins.pop()
    return _model([helper.make_node("Resize", ins, ["y"], name="rs")], [X4], [_out("y")], inits, opset=opset)


def _out(name):
    return helper.ValueInfoProto(name=name)


def _upsample(scales, opset):
    if opset < 9:
        node, inits = helper.make_node("Upsample", ["x"], ["y"], name="up", scales=scales), []
    else:
        node, inits = helper.make_node("Upsample", ["x", "sc"], ["y"], name="up"), [_f32("sc", scales)]
    m = _model([node], [X4], [_out("y")], inits, opset=opset)
    m.ir_version = 3 if opset < 9 else 4
    return m


def _resize10(scales):
    return _model([helper.make_node("Resize", ["x", "sc"], ["y"], name="rs")], [X4], [_out("y")], [_f32("sc", scales)],
                  opset=10)


def _topk1(k):
    m = _model([helper.make_node("TopK", ["x"], ["v", "i"], name="tk", axis=3, k=k)], [X4], [_out("v"), _out("i")],
               opset=1)
    m.ir_version = 3
    return m


def _topk(k, opset=18):
    return _model([helper.make_node("TopK", ["x", "k"], ["v", "i"], name="tk", axis=-1)], [X4], [_out("v"), _out("i")],
                  [_i64("k", [k])], opset=opset)


def _cos(value_dims, vals):
    value = helper.make_tensor("v", T.INT8, value_dims, vals)
    node = helper.make_node("ConstantOfShape", ["s"], ["y"], name="cs", value=value)
    return _model([node], [], [_out("y")], [_i64("s", [5])])


REFUSED = [
    ("resize scale 0", _resize([1, 1, 0, 1]), r"node 'rs' \(Resize\): its scales \[1.0, 1.0, 0.0, 1.0\].*greater than 0"),
    ("resize sizes 0", _resize(sizes=[1, 2, 0, 9]), r"node 'rs' \(Resize\): its scales .* hold 0.0"),
    ("resize10 scale 0", _resize10([1, 1, 0, 2]), r"node 'rs' \(Resize\): its scales"),
    ("upsample9 0.5", _upsample([1, 1, 0.5, 1.5], 9), r"node 'up' \(Upsample\): its scales .* hold 0.5, .* at least 1"),
    ("upsample7 0.5", _upsample([1.0, 1.0, 1.0, 0.5], 7), r"node 'up' \(Upsample\): its scales .* hold 0.5"),
    ("topk-1 k past axis", _topk1(7), r"node 'tk' \(TopK\): its k 7 is more than the 5 elements along axis 3"),
    ("topk k negative", _topk(-1), r"node 'tk' \(TopK\): its k -1 is negative"),
    ("constantofshape value of 2", _cos([2], [3, 4]), r"node 'cs' \(ConstantOfShape\): its value attribute is a tensor of shape \[2\]"),
    ("constantofshape value empty", _cos([0], []), r"node 'cs' \(ConstantOfShape\): its value attribute is a tensor of shape \[0\]"),
]


@pytest.mark.parametrize("label,m,match", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_as_onnxruntime_refuses(label, m, match):
    assert ort_refuses(m, {"x": np.ones([1, 2, 3, 5], np.float32)} if m.graph.input else {})
    with pytest.raises(GraphError, match=match):
        import_onnx(m)


RUN = [("resize scale 0.1", _resize([1, 1, 0.1, 1])), ("resize10 scale 0.5", _resize10([1, 1, 0.5, 0.7])),
       ("upsample9 1", _upsample([1, 1, 1, 2], 9)), ("upsample7 2", _upsample([1.0, 1.0, 2.0, 1.0], 7)),
       ("topk-1 k=5", _topk1(5)), ("topk k=5", _topk(5)), ("cos [1]", _cos([1], [3]))]


@pytest.mark.parametrize("label,m", RUN, ids=[r[0] for r in RUN])
def test_near_misses_planned_at_onnxruntime_sizes(label, m):
    real = ort_sizes(m, {"x": np.ones([1, 2, 3, 5], np.float32)} if m.graph.input else {}, strict=True)
    compared, bad = size_mismatches(import_onnx(m), real)
    assert compared and not bad


# ------------------------------------------------------------------------- RNN / GRU / LSTM operand shapes
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
XS = V("x", T.FLOAT, [5, 2, 3])   # [seq, batch, input]


def _recurrent(op, h, w, r, b=None, sl=None, ih=None, p=None, direction="forward"):
    ins, inits = ["x", "w", "r"], [_f32("w", np.ones(w)), _f32("r", np.ones(r))]
    for nm, shp in (("b", b), ("sl", sl), ("ih", ih), ("ic", None), ("p", p)):
        if shp is None:
            ins.append("")
            continue
        ins.append(nm)
        inits.append(numpy_helper.from_array(np.full(shp, 5, np.int32), nm) if nm == "sl" else _f32(nm, np.zeros(shp)))
    while ins[-1] == "":
        ins.pop()
    node = helper.make_node(op, ins, ["y", "yh"], name="rec", hidden_size=h, direction=direction)
    return _model([node], [XS], [_out("y"), _out("yh")], inits)


def _recurrent_cases():
    bad, good = [], []
    for op, g in GATES.items():
        good.append((f"{op} forward", _recurrent(op, 4, (1, g * 4, 3), (1, g * 4, 4), b=(1, 2 * g * 4), sl=(2,),
                                                 ih=(1, 2, 4))))
        good.append((f"{op} bidirectional", _recurrent(op, 4, (2, g * 4, 3), (2, g * 4, 4), direction="bidirectional")))
        bad += [(f"{op} W of another hidden size", _recurrent(op, 5, (1, g * 4, 3), (1, g * 5, 5)), "W 'w'"),
                (f"{op} W of another input size", _recurrent(op, 4, (1, g * 4, 2), (1, g * 4, 4)), "W 'w'"),
                (f"{op} R", _recurrent(op, 4, (1, g * 4, 3), (1, g * 4, 5)), "R 'r'"),
                (f"{op} B", _recurrent(op, 4, (1, g * 4, 3), (1, g * 4, 4), b=(1, g * 4)), "B 'b'"),
                (f"{op} sequence_lens", _recurrent(op, 4, (1, g * 4, 3), (1, g * 4, 4), sl=(3,)), "sequence_lens 'sl'"),
                (f"{op} initial_h", _recurrent(op, 4, (1, g * 4, 3), (1, g * 4, 4), ih=(1, 3, 4)), "initial_h 'ih'"),
                (f"{op} one direction's weights, bidirectional",
                 _recurrent(op, 4, (1, g * 4, 3), (1, g * 4, 4), direction="bidirectional"), "W 'w'")]
    good.append(("LSTM peepholes", _recurrent("LSTM", 4, (1, 16, 3), (1, 16, 4), p=(1, 12))))
    bad.append(("LSTM peepholes", _recurrent("LSTM", 4, (1, 16, 3), (1, 16, 4), p=(1, 8)), "P 'p'"))
    return bad, good


BAD_REC, GOOD_REC = _recurrent_cases()


@pytest.mark.parametrize("label,m,operand", BAD_REC, ids=[c[0] for c in BAD_REC])
def test_recurrent_operand_of_another_shape_refused(label, m, operand):
    feeds = {"x": np.ones([5, 2, 3], np.float32)}
    assert ort_refuses(m, feeds)
    with pytest.raises(GraphError, match=rf"node 'rec' \((RNN|GRU|LSTM)\): its {operand} is .* require .*onnxruntime refuses"):
        import_onnx(m)


@pytest.mark.parametrize("label,m", GOOD_REC, ids=[c[0] for c in GOOD_REC])
def test_recurrent_operands_of_their_shapes_planned_at_onnxruntime_sizes(label, m):
    real = ort_sizes(m, {"x": np.ones([5, 2, 3], np.float32)}, strict=True)
    compared, bad = size_mismatches(import_onnx(m), real)
    assert compared == 2 and not bad


# ------------------------------------------------- declared shapes the nodes contradict (onnxruntime runs them)
X23 = V("x", T.FLOAT, [2, 3])


def _declared(vi=(), out=None, extra=()):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"), helper.make_node("Neg", ["a"], ["b"], name="neg"),
             *extra]
    last = extra[-1].output[0] if extra else "b"
    g = helper.make_graph(nodes, "g", [X23], [out if out is not None else _out(last)], list(extra and [_i64("s", [3, 2])]),
                          value_info=list(vi))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


LENIENT = [
    ("value_info of other dims", _declared([V("a", T.FLOAT, [3, 2])])),
    ("value_info smaller", _declared([V("a", T.FLOAT, [1, 3])])),
    ("value_info of another rank", _declared([V("a", T.FLOAT, [6])])),
    ("value_info partly symbolic", _declared([V("a", T.FLOAT, ["n", 7])])),
    ("graph output of other dims", _declared(out=V("b", T.FLOAT, [3, 3]))),
    ("graph output smaller", _declared(out=V("b", T.FLOAT, [1]))),
    ("two values, then a Reshape", _declared([V("a", T.FLOAT, [1, 1]), V("b", T.FLOAT, [9, 9])],
                                             extra=[helper.make_node("Reshape", ["b", "s"], ["c"], name="rs")])),
]


@pytest.mark.parametrize("label,m", LENIENT, ids=[c[0] for c in LENIENT])
def test_contradicted_shape_declarations_planned_at_the_sizes_onnxruntime_writes(label, m):
    """onnxruntime merges a declared shape the nodes contradict leniently ("Falling back to lenient merge") and
    runs the model at every opset, its kernels writing what the nodes make; ONNX's strict inference refused it
    ("Inferred shape and existing shape differ"), and so did the import."""
    real = ort_sizes(m, _x_feeds((2, 3)), strict=True)
    compared, bad = size_mismatches(import_onnx(m), real)
    assert compared >= 2 and not bad


@pytest.mark.parametrize("vi,out", [([V("a", T.DOUBLE, [2, 3])], None), ([], V("b", T.INT64, [2, 3])),
                                    ([V("a", T.DOUBLE, [3, 3])], None)])
def test_contradicted_element_type_still_refused(vi, out):
    m = _declared(vi, out)
    assert ort_refuses(m, _x_feeds((2, 3)))
    with pytest.raises(GraphError, match=r"Inferred elem type differs"):
        import_onnx(m)


def test_contradicted_shape_under_fixed_dims_still_explained():
    """Where --dim/--batch fixed a dimension the declaration contradicts, the model most likely holds its
    example's size inside (a torch.export specialization): still refused, with the hint to import at that size."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Neg", ["r"], ["y"], name="neg")]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, ["N", 4])], [_out("y")],
                          value_info=[V("r", T.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    with pytest.raises(GraphError, match=r"which the dimensions fixed \(N=2\) contradict"):
        import_onnx(m, dims={"N": 2})


def test_a_contradicted_declaration_sizes_no_dimension_the_nodes_leave_open():
    """A declaration found wrong in one dimension is not trusted for another the nodes leave open (onnxruntime's
    merge makes both unknown; its kernel writes what it computes): ``a = Concat(x[2, 3], y[2, n])`` declared
    ``[5, 9]`` is merged to ``[2, ?]``, not ``[2, 9]``."""
    from memplan.importers.onnx.infer import _merge_contradicted_shapes

    g = helper.make_graph([helper.make_node("Concat", ["x", "y"], ["a"], axis=1)], "g",
                          [X23, V("y", T.FLOAT, [2, "n"])], [_out("a")], value_info=[V("a", T.FLOAT, [5, 9])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    assert _merge_contradicted_shapes(onnx, m, True)
    dims = m.graph.value_info[0].type.tensor_type.shape.dim
    assert dims[0].dim_value == 2 and not dims[1].HasField("dim_value") and not dims[1].dim_param


# ------------------------------------------------ IR 3 models whose initializers are not among the graph inputs
def _ir3(node, inits, opset, x_shape=(2, 3)):
    g = helper.make_graph([node], "g", [V("x", T.FLOAT, list(x_shape))], [_out("y")], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=3)


IR3 = [
    ("Tile-6", _ir3(helper.make_node("Tile", ["x", "t"], ["y"]), [_i64("t", [2, 3])], 6)),
    ("Gather-1", _ir3(helper.make_node("Gather", ["x", "i"], ["y"], axis=1), [_i64("i", [[0, 2]])], 1)),
    ("MatMul-1 of a vector", _ir3(helper.make_node("MatMul", ["v", "x"], ["y"]), [_f32("v", [1, 1])], 1)),
    ("Sum-8 broadcast", _ir3(helper.make_node("Sum", ["x", "b"], ["y"]), [_f32("b", [1, 2, 3])], 8)),
    ("Where-9", _ir3(helper.make_node("Where", ["c", "x", "b"], ["y"]),
                     [numpy_helper.from_array(np.array([[True], [False]]), "c"), _f32("b", np.ones((1, 3)))], 9)),
    ("Reshape-5", _ir3(helper.make_node("Reshape", ["x", "s"], ["y"]), [_i64("s", [3, -1])], 5)),
]


@pytest.mark.parametrize("label,m", IR3, ids=[c[0] for c in IR3])
def test_ir3_initializer_not_listed_as_an_input_is_sized_as_onnxruntime_runs_it(label, m):
    """IR 3 required every initializer among the graph inputs; onnxruntime runs a model that leaves one out, but
    ONNX's inference types such an initializer only through its input, so what it feeds was refused as unsized
    ("shape inference could not find its rank")."""
    real = ort_sizes(m, _x_feeds((2, 3)), strict=True)
    compared, bad = size_mismatches(import_onnx(m), real)
    assert compared and not bad


# ----------------------------------------------- Sum / Mean / Max / Min before opset 8 take one shape for all
@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
@pytest.mark.parametrize("b_shape,first", [((3,), "x"), ((1, 3), "x"), ((2, 1), "x"), ((3,), "b"), ((2, 3), "x")])
def test_old_variadic_ops_of_other_shapes_refused_as_onnxruntime_refuses(op, b_shape, first):
    ins = ["x", "b"] if first == "x" else ["b", "x"]
    m = _ir3(helper.make_node(op, ins, ["y"], name="v"), [_f32("b", np.ones(b_shape))], 6)
    feeds = _x_feeds((2, 3))
    if b_shape == (2, 3):
        compared, bad = size_mismatches(import_onnx(m), ort_sizes(m, feeds, strict=True))
        assert compared and not bad
        return
    assert ort_refuses(m, feeds)
    with pytest.raises(GraphError, match=rf"node 'v' \({op}\): its inputs .* differ in shape, which {op} broadcasts "
                                         r"only from opset 8"):
        import_onnx(m)


# ------------------------------------------------------- outputs ONNX's inference leaves without a shape
def _attention(shapes, outs=("y", "pk", "pv"), **attrs):
    node = helper.make_node("Attention", ["q", "k", "v"], list(outs), name="att", **attrs)
    m = _model([node], [V(k, T.FLOAT, list(s)) for k, s in shapes.items()], [_out(o) for o in outs], opset=23)
    m.ir_version = 10
    return m, {k: np.ones(s, np.float32) for k, s in shapes.items()}


UNSHAPED = [
    ("GatherND to a scalar", _model([helper.make_node("GatherND", ["x", "i"], ["y"])], [X23], [_out("y")],
                                    [_i64("i", [1, 2])]), _x_feeds((2, 3))),
    ("GatherND to a scalar per batch", _model([helper.make_node("GatherND", ["x", "i"], ["y"], batch_dims=1)], [X23],
                                              [_out("y")], [_i64("i", [[1], [2]])]), _x_feeds((2, 3))),
    ("Attention presents, 4-D", *_attention({"q": (1, 2, 3, 4), "k": (1, 2, 5, 4), "v": (1, 2, 5, 6)},
                                            ("y", "pk", "pv", "qk"))),
    ("Attention presents, 3-D", *_attention({"q": (1, 3, 8), "k": (1, 5, 8), "v": (1, 5, 12)}, q_num_heads=2,
                                            kv_num_heads=2)),
    ("Attention presents, grouped", *_attention({"q": (1, 3, 8), "k": (1, 5, 4), "v": (1, 5, 6)}, q_num_heads=4,
                                                kv_num_heads=2)),
]


@pytest.mark.parametrize("label,m,feeds", UNSHAPED, ids=[c[0] for c in UNSHAPED])
def test_outputs_onnx_leaves_unshaped_planned_at_onnxruntime_sizes(label, m, feeds):
    """ONNX's inference sets no shape for a GatherND whose output is a scalar, nor for Attention-23's present key and
    value without a past cache; both were refused as of no known rank, and onnxruntime runs them."""
    real = ort_sizes(m, feeds, strict=True)
    compared, bad = size_mismatches(import_onnx(m), real)
    assert compared >= 1 and not bad


# ------------------------------------------------------------ inputs read as lists of integers, by rank
X10 = V("x", T.FLOAT, [10])
X110 = V("x", T.FLOAT, [1, 10])


def _one(op, inputs, inits, x=X10, **attrs):
    return _model([helper.make_node(op, inputs, ["y"], name="n", **attrs)], [x], [_out("y")], inits)


def _i64s(name, value):
    return numpy_helper.from_array(np.array(value, np.int64), name)


NOT_VECTORS = [
    ("Slice 0-D ends", _one("Slice", ["x", "s", "e"], [_i64s("s", [0]), _i64s("e", 5)]), "ends 'e' has shape \\[\\]"),
    ("Slice 2-D starts", _one("Slice", ["x", "s", "e"], [_i64s("s", [[0]]), _i64s("e", [[5]])]), "starts 's'"),
    ("Slice 0-D axes", _one("Slice", ["x", "s", "e", "a"], [_i64s("s", [1]), _i64s("e", [5]), _i64s("a", 0)]), "axes 'a'"),
    ("Slice 0-D steps", _one("Slice", ["x", "s", "e", "a", "p"], [_i64s("s", [1]), _i64s("e", [5]), _i64s("a", [0]),
                                                                  _i64s("p", 2)]), "steps 'p'"),
    ("Reshape 0-D shape", _one("Reshape", ["x", "s"], [_i64s("s", 10)]), "shape 's'"),
    ("Reshape 2-D shape", _one("Reshape", ["x", "s"], [_i64s("s", [[10]])]), "shape 's'"),
    ("Squeeze 0-D axes", _one("Squeeze", ["x", "a"], [_i64s("a", 0)], X110), "axes 'a'"),
    ("Unsqueeze 2-D axes", _one("Unsqueeze", ["x", "a"], [_i64s("a", [[0]])]), "axes 'a' .* only a 0-D or 1-D tensor"),
    ("ReduceSum 0-D axes", _one("ReduceSum", ["x", "a"], [_i64s("a", 0)], X110), "axes 'a'"),
    ("ReduceMax 2-D axes", _one("ReduceMax", ["x", "a"], [_i64s("a", [[0]])], X110), "axes 'a'"),
    ("Split 0-D split", _one("Split", ["x", "s"], [_i64s("s", 10)]), "split 's'"),
    ("Pad 0-D axes", _one("Pad", ["x", "p", "", "a"], [_i64s("p", [1, 1]), _i64s("a", 0)]), "axes 'a'"),
    ("ConstantOfShape 0-D shape", _model([helper.make_node("ConstantOfShape", ["s"], ["y"], name="n")], [], [_out("y")],
                                         [_i64s("s", 3)]), "shape 's' .* only a tensor of at least one dimension"),
]


@pytest.mark.parametrize("label,m,match", NOT_VECTORS, ids=[c[0] for c in NOT_VECTORS])
def test_list_input_of_another_rank_refused_as_onnxruntime_refuses(label, m, match):
    feeds = {"x": np.ones([d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim], np.float32)} \
        if m.graph.input else {}
    assert ort_refuses(m, feeds)
    with pytest.raises(GraphError, match=rf"node 'n' \({m.graph.node[0].op_type}\): its {match}.*refuses to run"):
        import_onnx(m)


RESIZE_ANY_RANK = [
    ("Unsqueeze 0-D axes", _one("Unsqueeze", ["x", "a"], [_i64s("a", 0)])),
    ("ConstantOfShape 2-D shape", _model([helper.make_node("ConstantOfShape", ["s"], ["y"])], [], [_out("y")],
                                         [_i64s("s", [[3, 2]])])),
    ("Resize 0-D scales", _one("Resize", ["x", "", "s"], [_f32("s", 2.0)])),
    ("Resize 2-D scales", _one("Resize", ["x", "", "s"], [_f32("s", [[2.0]])])),
    ("Resize 0-D sizes", _one("Resize", ["x", "", "", "s"], [_i64s("s", 20)])),
    ("Resize 2-D sizes", _one("Resize", ["x", "", "", "s"], [_i64s("s", [[20]])])),
    ("Resize 2-D sizes kept", _one("Resize", ["x", "", "", "s"], [_i64s("s", [[20]])], keep_aspect_ratio_policy="not_larger")),
]


@pytest.mark.parametrize("label,m", RESIZE_ANY_RANK, ids=[c[0] for c in RESIZE_ANY_RANK])
def test_inputs_onnxruntime_reads_in_any_rank_planned_at_its_sizes(label, m):
    """A Resize's scales or sizes of 0 or 2 dimensions, which onnxruntime reads by their elements, failed the import
    with a raw TypeError ("len() of unsized object", "only 0-dimensional arrays can be converted")."""
    feeds = {"x": np.ones([10], np.float32)} if m.graph.input else {}
    compared, bad = size_mismatches(import_onnx(m), ort_sizes(m, feeds, strict=True))
    assert compared and not bad


# ------------------------------------------------------------- Split's num_outputs against its outputs
def _split(num_outputs, outputs):
    node = helper.make_node("Split", ["x"], [f"y{j}" for j in range(outputs)], name="sp", axis=1, num_outputs=num_outputs)
    return _model([node], [V("x", T.FLOAT, [2, 5])], [_out(f"y{j}") for j in range(outputs)])


def _child_cases() -> dict:
    """case -> model, for every test here whose model ONNX's shape inference kills the process on (SIGABRT, SIGSEGV)
    or never returns from: imported in a child, so a regression fails the test instead of killing or hanging the run.
    One child imports them all in turn (each in its own child cost a Python start with memplan and onnx imported,
    ~1.8 s of CPU, 7 times)."""
    cases = {"split 1 of 3": _split(1, 3)}
    for data, indices, batch_dims in _GATHER_ND_NEGATIVE:
        node = helper.make_node("GatherND", ["x", "i"], ["y"], name="g", batch_dims=batch_dims)
        cases[f"gather_nd {data} {indices} {batch_dims}"] = _model(
            [node], [V("x", T.FLOAT, list(data))], [_out("y")], [_i64("i", np.zeros(indices, np.int64))])
    for equation in _EINSUM_INFERENCE_NEVER_RETURNS:
        cases[f"einsum {equation}"] = _einsum(equation)
    return cases


@pytest.fixture(scope="module")
def refused_in_a_child(tmp_path_factory):
    """case -> the GraphError message of importing its model (``_child_cases``) in one child process; a case the
    child did not reach (it died or hung on an earlier one) or that raised no GraphError fails its own test, saying
    how the child ended."""
    import json
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("children49")
    paths = {}
    for i, (name, model) in enumerate(_child_cases().items()):
        paths[name] = str(folder / f"m{i}.onnx")
        (folder / f"m{i}.onnx").write_bytes(model.SerializeToString())
    code = ("import json, sys\nfrom memplan.importers.onnx import import_onnx\nfrom memplan.errors import GraphError\n"
            "for name, path in json.loads(sys.argv[1]).items():\n    try:\n        import_onnx(path)\n"
            "    except GraphError as e:\n        print(json.dumps([name, str(e)]), flush=True)\n"
            "    else:\n        print(json.dumps([name, None]), flush=True)\n")
    try:
        done = subprocess.run([sys.executable, "-c", code, json.dumps(paths)], capture_output=True, text=True,
                              timeout=60)
        out, ended = done.stdout, f"exit {done.returncode}: {done.stderr[-500:]}"
    except subprocess.TimeoutExpired as exc:   # (a hang: the cases it reached still count)
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        ended = "killed after 60 s (hung)"
    got = dict(json.loads(line) for line in out.splitlines() if line.startswith("["))

    def refused(name: str) -> str:
        assert name in got, f"the child never finished importing case {name!r}: {ended}"
        assert got[name] is not None, f"case {name!r} was imported, not refused"
        return got[name]
    return refused


def test_split_of_fewer_num_outputs_than_outputs_is_refused_not_a_crash(refused_in_a_child):
    """ONNX's shape inference aborts the process on it (a failed C++ assertion, SIGABRT: the import killed its
    caller)."""
    assert "node 'sp' (Split): its num_outputs is 1 but it has 3 output(s)" in refused_in_a_child("split 1 of 3")


_GATHER_ND_NEGATIVE = [((2, 0), (2, 0), -1), ((4, 0, 3), (4, 1), -2), ((2, 3), (2, 1), -1)]


@pytest.mark.parametrize("data,indices,batch_dims", _GATHER_ND_NEGATIVE)
def test_gather_nd_of_negative_batch_dims_is_refused_not_a_crash(refused_in_a_child, data, indices, batch_dims):
    """ONNX's shape inference crashed the process (a segmentation fault) on an empty input, and sized nonsense
    otherwise (``[2, 2, 3]`` for a ``[2, 3]`` by ``[2, 1]``); onnxruntime's loader crashes alike."""
    said = refused_in_a_child(f"gather_nd {data} {indices} {batch_dims}")
    assert f"node 'g' (GatherND): its batch_dims is {batch_dims}" in said


@pytest.mark.parametrize("num_outputs,outputs", [(3, 1), (3, 2), (4, 2)])
def test_split_of_more_num_outputs_than_outputs_refused_as_onnxruntime_refuses(num_outputs, outputs):
    m = _split(num_outputs, outputs)
    assert ort_refuses(m, _x_feeds((2, 5)))
    with pytest.raises(GraphError, match=rf"node 'sp' \(Split\): its num_outputs is {num_outputs} but it has {outputs}"):
        import_onnx(m)


@pytest.mark.parametrize("n", [2, 3, 5, 6])
def test_split_of_as_many_num_outputs_as_outputs_planned_at_onnxruntime_sizes(n):
    m = _split(n, n)
    compared, bad = size_mismatches(import_onnx(m), ort_sizes(m, _x_feeds((2, 5)), strict=True))
    assert compared == n and not bad


# --------------------------------------------------------------- Range of start/limit/delta not scalars
@pytest.mark.parametrize("dtype,opset", [(np.float16, 27), (np.int16, 21)])
@pytest.mark.parametrize("shapes", [((4,), (), ()), ((), (2, 3), ()), ((1,), (1,), (1,)), ((), (), ())])
def test_range_of_non_scalar_inputs_is_no_crash(dtype, opset, shapes):
    """A float16 Range of a ``[4]`` start failed the import with numpy's broadcasting ValueError, and one of ``[1]``
    inputs with a TypeError; an int16 one of a ``[4]`` start was planned from its first element. onnxruntime refuses
    inputs of more than one element ("should be scalar like tensor") and runs scalar-like ones."""
    vals = [np.zeros(shapes[0], dtype), np.full(shapes[1], 5, dtype), np.ones(shapes[2], dtype)]
    m = _model([helper.make_node("Range", ["a", "b", "c"], ["y"], name="r")], [], [_out("y")],
               [numpy_helper.from_array(v, k) for v, k in zip(vals, "abc")], opset=opset)
    m.ir_version = 13 if opset > 23 else 10
    if all(math.prod(s) == 1 for s in shapes):
        assert import_onnx(m).tensor("y").size == 5 * np.dtype(dtype).itemsize
        if dtype == np.int16:
            compared, bad = size_mismatches(import_onnx(m), ort_sizes(m, {}, strict=True))
            assert compared and not bad
    else:
        with pytest.raises(GraphError, match="node 'r' \\(Range\\)"):
            import_onnx(m)


# ------------------------------------------------- BatchNormalization's statistics outputs (opsets 7-13)
def _batch_norm(opset, outputs, **attrs):
    params = [_f32("s", [1, 1, 1]), _f32("b", [0, 0, 0]), _f32("m", [0, 0, 0]), _f32("v", [1, 1, 1])]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], list(outputs), name="bn", **attrs)
    m = _model([node], [V("x", T.FLOAT, [2, 3, 4])], [_out(o) for o in outputs if o], params, opset=opset)
    m.ir_version = 4 if opset < 10 else 8
    return m


@pytest.mark.parametrize("opset,outputs,attrs", [(7, "y rm rv sm sv", {}), (9, "y rm rv sm sv", {}),
                                                  (14, "y rm rv", {"training_mode": 1}),
                                                  (15, "y rm rv", {"training_mode": 1})])
def test_batch_norm_statistics_planned_at_onnxruntime_sizes(opset, outputs, attrs):
    """ONNX's inference leaves BatchNormalization-7/9's four statistics outputs unsized, and the model was refused
    ("value 'rm' has no shape"); onnxruntime runs it, writing one value per channel for each."""
    m = _batch_norm(opset, outputs.split(), **attrs)
    compared, bad = size_mismatches(import_onnx(m), ort_sizes(m, _x_feeds((2, 3, 4)), strict=True))
    assert compared == len(outputs.split()) and not bad


def test_batch_norm_of_an_omitted_statistic_in_between_stays_refused():
    """onnxruntime 1.32 exits the process running one (outputs ``y, "", "", sm, sv``): nothing is planned for it."""
    with pytest.raises(GraphError, match=r"node 'bn' \(BatchNormalization\): value 'sm' has no shape"):
        import_onnx(_batch_norm(9, ["y", "", "", "sm", "sv"]))


# ------------------------------------------------------------- external data entries onnxruntime refuses
def _external_model(tmp_path, extra):
    t = numpy_helper.from_array(np.ones(100, np.float32), "w")
    raw = t.raw_data
    t.ClearField("raw_data")
    t.data_location = T.EXTERNAL
    for k, v in (("location", "w.bin"), *extra):
        e = t.external_data.add()
        e.key, e.value = k, v
    (tmp_path / "w.bin").write_bytes(raw)
    m = _model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [V("x", T.FLOAT, [100])], [_out("y")], [t])
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    return str(path), m


def _ort_loads(path) -> bool:
    try:
        ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - any refusal
        return False
    return True


@pytest.mark.parametrize("extra,match", [
    ((("location", "../x.bin"),), r"names 2 locations \('w.bin', '../x.bin'\)"),
    ((("location", "w.bin"),), r"names 2 locations"),
    ((("basepath", "."),), r"has an entry 'basepath'"),
    ((("LOCATION", "w.bin"),), r"has an entry 'LOCATION'"),
])
def test_external_data_entries_onnxruntime_refuses_are_refused(tmp_path, extra, match):
    path, m = _external_model(tmp_path, extra)
    assert not _ort_loads(path)
    with pytest.raises(GraphError, match=rf"initializer 'w': its external data {match}.*onnxruntime refuses"):
        import_onnx(path)
    with pytest.raises(GraphError, match=match):   # (a ModelProto without its folder too)
        import_onnx(onnx.load(path, load_external_data=False))


@pytest.mark.parametrize("extra", [(), (("offset", "0"), ("length", "400")), (("checksum", "x"),),
                                   (("offset", "0"), ("offset", "0"))])
def test_external_data_entries_onnxruntime_reads_are_planned(tmp_path, extra):
    path, _ = _external_model(tmp_path, extra)
    assert _ort_loads(path)
    assert import_onnx(path).tensor("y").size == 400


@pytest.mark.parametrize("axis,refused", [(2, True), (-3, True), (1, False), (-2, False)])
def test_layer_norm_axis_outside_its_input_refused_as_onnxruntime_refuses(axis, refused):
    """ONNX's inference sizes Y as X whatever the axis, and the node was planned; onnxruntime refuses an axis outside
    X's rank ("Unexpected axis value (2) rank of first input is 2")."""
    m = _model([helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln", axis=axis)], [X23], [_out("y")],
               [_f32("s", np.ones((2, 3)[axis:] if axis >= 0 else (2, 3)[axis:]))])
    feeds = _x_feeds((2, 3))
    assert ort_refuses(m, feeds) == refused
    if refused:
        with pytest.raises(GraphError, match=rf"node 'ln' \(LayerNormalization\): its axis {axis} is outside|"
                                             r"node name: ln\): .*Unexpected axis value"):   # (-3: ONNX's inference)
            import_onnx(m)
    else:
        compared, bad = size_mismatches(import_onnx(m), ort_sizes(m, feeds, strict=True))
        assert compared and not bad


@pytest.mark.parametrize("through_identity", [False, True])
def test_element_of_an_empty_optional_refused_as_onnxruntime_refuses(through_identity):
    none = helper.make_node("Optional", [], ["o"], name="opt", type=helper.make_tensor_type_proto(T.FLOAT, [2]))
    nodes = [none, *([helper.make_node("Identity", ["o"], ["o2"], name="id")] if through_identity else []),
             helper.make_node("OptionalGetElement", ["o2" if through_identity else "o"], ["y"], name="get")]
    m = _model(nodes, [X23], [_out("y")])
    assert ort_refuses(m, _x_feeds((2, 3)))
    with pytest.raises(GraphError, match=r"node 'get' \(OptionalGetElement\): it takes the element of optional .* holds none"):
        import_onnx(m)


def test_element_of_a_full_optional_and_the_emptiness_of_an_empty_one_are_planned():
    none = helper.make_node("Optional", [], ["o"], type=helper.make_tensor_type_proto(T.FLOAT, [2]))
    nodes = [none, helper.make_node("OptionalHasElement", ["o"], ["h"]), helper.make_node("Optional", ["x"], ["f"]),
             helper.make_node("OptionalGetElement", ["f"], ["y"])]
    m = _model(nodes, [X23], [_out("h"), _out("y")])
    compared, bad = size_mismatches(import_onnx(m), ort_sizes(m, _x_feeds((2, 3)), strict=True))
    assert compared and not bad


# ------------------------------------------------------------------------------- malformed Einsum equations
def _einsum(equation):
    ins = ["x"] * (equation.split("->")[0].count(",") + 1)
    return _model([helper.make_node("Einsum", ins, ["y"], name="es", equation=equation)], [X23], [_out("y")])


_EINSUM_INFERENCE_NEVER_RETURNS = ["i.j->i", "ij-", "i......j->i"]


@pytest.mark.parametrize("equation", _EINSUM_INFERENCE_NEVER_RETURNS)
def test_einsum_equation_inference_never_returns_on_is_refused(refused_in_a_child, equation):
    """ONNX's shape inference never returns on these (the import hung; onnxruntime's loader hangs too): refused
    before inference. Run in a child with a timeout, so that a regression fails instead of hanging the test run."""
    assert f"node 'es' (Einsum): its equation {equation!r} is malformed" in refused_in_a_child(f"einsum {equation}")


@pytest.mark.parametrize("equation", ["ij->jj", "ij->i->j", "ij->ij,", "ij->>"])
def test_malformed_einsum_equation_refused_as_onnxruntime_refuses(equation):
    m = _einsum(equation)
    assert ort_refuses(m, _x_feeds((2, 3)))
    with pytest.raises(GraphError, match=r"node 'es' \(Einsum\): its equation .* is malformed"):
        import_onnx(m)


@pytest.mark.parametrize("equation", ["ij->ji", "i j -> j i", "IJ->JI", "...", "...ij->...ji", "ij...->", "a...b->", "ij",
                                      "ij,ij->ij", "...i,...i->..."])
def test_well_formed_einsum_equations_planned_at_onnxruntime_sizes(equation):
    m = _einsum(equation)
    compared, bad = size_mismatches(import_onnx(m), ort_sizes(m, _x_feeds((2, 3)), strict=True))
    assert compared and not bad
