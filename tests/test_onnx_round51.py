"""ONNX importer, round 51: each case held against what onnxruntime does with the same model.

1. A graph input declared with a negative dimension (``[-1, 3]``): onnxruntime takes it as a dimension of any length
   (fed ``[5, 3]``, it runs); the importer refused it as negative, also for an initializer listed as that input at
   IR 3, which onnxruntime runs as the initializer. Now the dimension is an unknown one: ``batch=N`` fixes a leading
   one, an IR-3 initializer is its own dims, and an overridable one (IR 4 on) is refused as for ``[None, 3]`` unless
   ``constant_initializers``.
2. Nodes listed out of topological order (a ``Constant`` after its reader, also one overriding an initializer of its
   name; any node after one it feeds): onnxruntime sorts the graph and runs it; the importer refused it. Now the nodes
   are sorted (the model's order kept wherever the edges allow) and keep their ids as listed; a cycle is refused.
"""

from __future__ import annotations

import numpy as np
import pytest
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


def _model(nodes, inputs, inits=(), *, outputs=("y",), opset=17, ir_version=8, functions=(), extra_opsets=()):
    outs = [onnx.ValueInfoProto(name=o) for o in outputs]
    g = helper.make_graph(nodes, "g", inputs, outs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), *extra_opsets],
                             ir_version=ir_version, functions=list(functions))


def _same_as_ort(model, feeds, **kw):
    graph = import_onnx(model, **kw)
    real = ort_sizes(model, feeds, strict=True)
    compared, bad = size_mismatches(graph, real)
    assert compared and not bad, bad
    memplan.plan(graph)   # (verified)
    return graph


# --- 1. a graph input declared with a negative dimension ------------------------------------------------------------

W = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")


@pytest.mark.parametrize("dim", [-1, -5])
def test_a_negative_input_dimension_is_one_of_any_length_as_onnxruntime_takes_it(dim):
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [V("x", T.FLOAT, [dim, 3])])
    x = np.ones((4, 3), np.float32)
    assert not ort_refuses(m, {"x": x})
    with pytest.raises(GraphError, match="graph input 'x' dimension 0 is unknown: pass batch=N"):
        import_onnx(m)
    g = _same_as_ort(m, {"x": x}, batch=4)
    assert g.tensor("x").size == g.tensor("y").size == 48


def test_an_ir3_initializer_listed_as_an_input_of_a_negative_dimension_is_its_own_dims():
    """IR 3 lists every initializer as a graph input; onnxruntime runs it as the constant (a feed is refused)."""
    m = _model([helper.make_node("Relu", ["w"], ["y"], name="r")], [V("w", T.FLOAT, [-1, 3])], [W], opset=8,
               ir_version=3)
    assert not ort_refuses(m, {})
    g = _same_as_ort(m, {})
    assert g.tensor("w").kind == "weight" and g.tensor("y").size == 24


def test_an_overridable_initializer_of_a_negative_dimension_is_an_open_one():
    """From IR 4 the initializer is a default a feed of any ``[n, 3]`` replaces: refused, as ``[None, 3]`` is, with
    the way out; taken as the constant it holds with ``constant_initializers``."""
    m = _model([helper.make_node("Relu", ["w"], ["y"], name="r")], [V("w", T.FLOAT, [-1, 3])], [W])
    assert not ort_refuses(m, {"w": np.ones((5, 3), np.float32)})
    with pytest.raises(GraphError, match=r"graph input 'w' is declared with shape \['\?', 3\].*constant_initializers"):
        import_onnx(m)
    g = _same_as_ort(m, {}, constant_initializers=True)
    assert g.tensor("w").kind == "weight" and g.tensor("y").size == 24


# --- 2. nodes out of topological order --------------------------------------------------------------------------------

def test_a_constant_after_its_reader_overriding_an_initializer_is_imported_as_onnxruntime_runs_it():
    """onnxruntime folds every Constant into an initializer first (the latest given wins) and sorts the nodes."""
    c = numpy_helper.from_array(np.full((2, 3), 7, np.float32), "c")
    nodes = [helper.make_node("Add", ["x", "c"], ["y"], name="add"),
             helper.make_node("Constant", [], ["c"], name="k", value=numpy_helper.from_array(np.ones((2, 3), np.float32)))]
    for inits in ([c], []):
        m = _model(nodes, [V("x", T.FLOAT, [2, 3])], inits)
        g = _same_as_ort(m, {"x": np.ones((2, 3), np.float32)})
        assert g.tensor("c").kind == "weight" and [n.id for n in g.nodes] == ["add"]


def test_a_constant_of_other_dims_than_the_initializer_it_overrides_stays_refused():
    c = numpy_helper.from_array(np.ones((2, 3), np.float32), "c")
    nodes = [helper.make_node("Add", ["x", "c"], ["y"], name="add"),
             helper.make_node("Constant", [], ["c"], name="k", value=numpy_helper.from_array(np.ones((4, 3), np.float32)))]
    m = _model(nodes, [V("x", T.FLOAT, [2, 3])], [c])
    assert ort_refuses(m)
    with pytest.raises(GraphError, match=r"initializer 'c' is listed twice with different types or shapes"):
        import_onnx(m)


def test_nodes_out_of_order_are_sorted_and_keep_the_ids_they_are_listed_by():
    nodes = [helper.make_node("Mul", ["b", "s"], ["y"]),                      # Mul_0
             helper.make_node("Relu", ["a"], ["b"]),                          # Relu_1
             helper.make_node("Shape", ["x"], ["s0"], name="shape"),
             helper.make_node("Cast", ["s0"], ["s"], to=T.FLOAT),             # Cast_3
             helper.make_node("Neg", ["x"], ["a"])]                           # Neg_4
    m = _model(nodes, [V("x", T.FLOAT, [2, 2])])
    feeds = {"x": np.ones((2, 2), np.float32)}
    g = _same_as_ort(m, feeds)
    assert [n.id for n in g.nodes] == ["shape", "Cast_3", "Neg_4", "Relu_1", "Mul_0"]
    assert memplan.plan(g).arena_bytes > 0


def test_an_error_in_a_sorted_graph_names_the_node_as_listed():
    nodes = [helper.make_node("Transpose", ["a"], ["y"], perm=[0]),          # Transpose_0: perm too short
             helper.make_node("Relu", ["x"], ["a"])]
    m = _model(nodes, [V("x", T.FLOAT, [2, 3])])
    assert ort_refuses(m, {"x": np.ones((2, 3), np.float32)})
    with pytest.raises(GraphError, match="node 'Transpose_0'"):
        import_onnx(m)


def test_a_cycle_stays_refused_naming_the_node():
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="p"), helper.make_node("Relu", ["a"], ["b"], name="q"),
             helper.make_node("Relu", ["b"], ["y"], name="r")]
    m = _model(nodes, [V("x", T.FLOAT, [4])])
    assert ort_refuses(m)
    with pytest.raises(GraphError, match=r"node 'p' \(Add\) reads 'b' before its producer 'q' runs \(a cycle"):
        import_onnx(m)


def test_an_in_order_graph_imports_byte_identically():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["y"])]
    m = _model(nodes, [V("x", T.FLOAT, [2, 3])])
    g = import_onnx(m)
    assert [n.id for n in g.nodes] == ["Relu_0", "Neg_1"]


# --- 3. the --dim contradiction rule for onnxruntime's own ops ------------------------------------------------------

MS = helper.make_opsetid("com.microsoft", 1)
BIAS = numpy_helper.from_array(np.ones((4,), np.float32), "b")


def _contrib(op, declared):
    ins = ["x", "b"] if op in ("BiasGelu", "FastGelu") else ["x"]
    nodes = [helper.make_node(op, ins, ["h"], domain="com.microsoft", name="n"), helper.make_node("Relu", ["h"], ["y"])]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, ["n", 4])], [onnx.ValueInfoProto(name="y")],
                          [BIAS] if len(ins) == 2 else [], value_info=[V("h", T.FLOAT, declared)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), MS], ir_version=8)


@pytest.mark.parametrize("op", ["BiasGelu", "FastGelu", "Gelu"])
def test_a_contrib_output_declared_at_the_example_size_is_refused_where_dims_contradict_it(op):
    """As a standard op's is (``Relu`` declared ``[1, 4]`` of an ``['n', 4]`` input imported at n=3): the model was
    exported at its example's size and its own shapes hold there only."""
    m = _contrib(op, [1, 4])
    for kw in ({"dims": {"n": 3}}, {"batch": 3}):
        with pytest.raises(GraphError, match=rf"node 'n' \(com.microsoft:{op}\): its output 'h' is declared \[1, 4\], "
                                             r"which the dimensions fixed \(n=3\) contradict"):
            import_onnx(m, **kw)
    g = _same_as_ort(m, {"x": np.ones((1, 4), np.float32)}, dims={"n": 1})   # (at the example's size it holds)
    assert g.tensor("h").size == 16


def test_a_contrib_output_declared_as_its_kernel_writes_it_is_imported_at_the_dims_fixed():
    m = _contrib("BiasGelu", ["n", 4])
    g = _same_as_ort(m, {"x": np.ones((3, 4), np.float32)}, dims={"n": 3})
    assert g.tensor("h").size == 48


# --- 4. Dropout-7..9's mask read by another node ---------------------------------------------------------------------

@pytest.mark.parametrize("opset", [7, 8, 9, 10, 13])
@pytest.mark.parametrize("reader", ["Mul", "Concat", "Shape-Reshape"])
def test_a_dropout_mask_read_by_a_node_is_sized_as_onnxruntime_writes_it(opset, reader):
    """ONNX's inference of Dropout-7..9 leaves the mask (of the data's type ``T``) untyped: a node reading it was
    refused ("value 'z' has no shape"). From opset 10 it is bool."""
    d = helper.make_node("Dropout", ["x"], ["y", "mask"], name="d")
    tail = {"Mul": [helper.make_node("Mul", ["y", "mask"] if opset < 10 else ["y", "y"], ["z"])],
            "Concat": [helper.make_node("Concat", ["mask", "mask"], ["z"], axis=0)],
            "Shape-Reshape": [helper.make_node("Shape", ["mask"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["z"])]}
    m = _model([d, *tail[reader]], [V("x", T.DOUBLE, [2, 3])], outputs=("z", "mask"), opset=opset, ir_version=7)
    g = _same_as_ort(m, {"x": np.ones((2, 3), np.float64)})
    assert g.tensor("mask").size == (48 if opset < 10 else 6)


# --- 5. which of several functions of one name onnxruntime inlines first ------------------------------------------------

def _named_f(domain, made):
    return helper.make_function(domain, "F", ["i"], ["o"], [helper.make_node("Relu", ["i"], [made]),
                                                            helper.make_node("Neg", [made], ["o"])],
                                [helper.make_opsetid("", 17)])


def _two_fs(nodes, extra=()):
    opsets = [helper.make_opsetid(d, 1) for d in ("a", "b", "h")]
    return _model(nodes, [V("x", T.FLOAT, [2, 3])], functions=[_named_f("a", "p"), _named_f("b", "q"), *extra],
                  extra_opsets=opsets)


CLASH = helper.make_node("Relu", ["x"], ["_inlfunc_F_p"], name="c")   # a:F's body value p, as the first call names it


@pytest.mark.parametrize("order, refused", [
    ("a-then-b", True), ("b-then-a", False),
    ("b-listed-first-but-after-a", False),   # (listed order, not a topological one: b's call is inlined first)
    ("a-listed-first-but-after-b", True),
])
def test_the_first_listed_call_of_a_name_gives_its_function_the_plain_prefix(order, refused):
    """onnxruntime names the body of the first call it inlines of ``F`` (whichever domain) ``_inlfunc_F_...``: a graph
    value ``_inlfunc_F_p`` clashes with ``a:F``'s ``p`` only where ``a:F``'s call is listed first. Only names both
    functions make were checked: ``a:F``'s clash was planned, though onnxruntime refuses the model."""
    ca = lambda i, o: helper.make_node("F", [i], [o], domain="a", name="ca")   # noqa: E731
    cb = lambda i, o: helper.make_node("F", [i], [o], domain="b", name="cb")   # noqa: E731
    nodes = {"a-then-b": [CLASH, ca("_inlfunc_F_p", "u"), cb("u", "y")],
             "b-then-a": [CLASH, cb("_inlfunc_F_p", "u"), ca("u", "y")],
             "b-listed-first-but-after-a": [CLASH, cb("u", "y"), ca("_inlfunc_F_p", "u")],
             "a-listed-first-but-after-b": [CLASH, ca("u", "y"), cb("_inlfunc_F_p", "u")]}[order]
    m = _two_fs(nodes)
    feeds = {"x": np.ones((2, 3), np.float32)}
    assert ort_refuses(m, feeds) == refused
    if refused:
        with pytest.raises(GraphError, match=r"local function a:F \(of the local functions named a:F, b:F, the one "
                                             r"whose call onnxruntime inlines first\) \(called by node 'ca'\): "
                                             r"onnxruntime inlines its value 'p' as '_inlfunc_F_p'"):
            import_onnx(m)
    else:
        _same_as_ort(m, feeds)


@pytest.mark.parametrize("clash, refused", [("_inlfunc_F_p", False), ("_inlfunc_F_q", True)])
def test_a_call_in_a_body_is_inlined_a_pass_after_the_graphs_calls(clash, refused):
    """``h:H``'s body calls ``a:F``; the graph calls ``H`` and then ``b:F``: onnxruntime inlines the graph's calls first
    (``b:F`` gets the plain prefix), and ``a:F`` from ``H``'s body only in its next pass."""
    fh = helper.make_function("h", "H", ["i"], ["o"], [helper.make_node("F", ["i"], ["o"], domain="a")],
                              [helper.make_opsetid("", 17), helper.make_opsetid("a", 1)])
    nodes = [helper.make_node("Relu", ["x"], [clash], name="c"),
             helper.make_node("H", [clash], ["u"], domain="h", name="ch"),
             helper.make_node("F", ["u"], ["y"], domain="b", name="cb")]
    m = _two_fs(nodes, [fh])
    feeds = {"x": np.ones((2, 3), np.float32)}
    assert ort_refuses(m, feeds) == refused
    if refused:
        with pytest.raises(GraphError, match=r"local function b:F .*\(called by node 'cb'\): onnxruntime inlines its "
                                             r"value 'q' as '_inlfunc_F_q'"):
            import_onnx(m)
    else:
        _same_as_ort(m, feeds)


# --- hunt: Mod-28 of floats without fmod ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_a_floating_mod_without_fmod_runs_from_opset_28(dtype):
    """onnxruntime: "fmod attribute must be true for floating point types before opset 28"; Mod-28 floors floats."""
    tt = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    feeds = {"a": np.array([-4, 7, 5], dtype), "b": np.array([3, -3, 2], dtype)}
    for opset, runs in ((28, True), (17, False)):
        m = _model([helper.make_node("Mod", ["a", "b"], ["y"], name="m")], [V("a", tt, [3]), V("b", tt, [3])],
                   opset=opset)
        assert ort_refuses(m, feeds) != runs
        if runs:
            assert _same_as_ort(m, feeds).tensor("y").size == 3 * np.dtype(dtype).itemsize
        else:
            with pytest.raises(GraphError, match=r"node 'm' \(Mod\): it takes the remainder of floating values"):
                import_onnx(m)


# --- hunt: Reshape-1 (the target an attribute) --------------------------------------------------------------------------

@pytest.mark.parametrize("target, made", [([3, -1], (3, 2)), ([0, -1], (2, 3)), ([-1], (6,)), ([2, 3, 1], (2, 3, 1)),
                                          ([4, -1], None), ([0, 0, 0], None), ([-1, -1], None)])
def test_a_reshape_1_is_sized_as_onnxruntime_runs_it(target, made):
    """ONNX has no inference for Reshape-1 (opsets 1-4, ``shape`` an attribute): the model, which onnxruntime runs,
    was refused ("could not find its rank"); targets onnxruntime refuses stay refused."""
    nodes = [helper.make_node("Reshape", ["x"], ["t"], shape=target, name="r"),
             helper.make_node("Transpose", ["t"], ["y"], name="tr")]
    feeds = {"x": np.ones((2, 3), np.float32)}
    for x, kw in ((V("x", T.FLOAT, [2, 3]), {}), (V("x", T.FLOAT, ["n", 3]), {"dims": {"n": 2}})):
        m = _model(nodes, [x], opset=4, ir_version=3)
        assert ort_refuses(m, feeds) == (made is None)
        if made is None:
            with pytest.raises(GraphError, match="'t'"):
                import_onnx(m, **kw)
        else:
            g = _same_as_ort(m, feeds, **kw)
            assert tuple(g.tensor("t").attrs["shape"]) == made and g.tensor("t").view_of == "x"


# --- hunt: TreeEnsembleRegressor of ai.onnx.ml opset 1 ------------------------------------------------------------------

def _tree_regressor(shape, targets, ml_opset, dtype=T.DOUBLE):
    k = max(targets, 1)
    tree = helper.make_node("TreeEnsembleRegressor", ["x"], ["t"], domain="ai.onnx.ml", name="tree", n_targets=targets,
                            nodes_featureids=[0], nodes_modes=["LEAF"], nodes_nodeids=[0], nodes_treeids=[0],
                            nodes_values=[0.0], nodes_truenodeids=[0], nodes_falsenodeids=[0],
                            target_ids=list(range(k)), target_nodeids=[0] * k, target_treeids=[0] * k,
                            target_weights=[1.0] * k)
    return _model([tree, helper.make_node("Relu", ["t"], ["y"])], [V("x", dtype, shape)],
                  extra_opsets=[helper.make_opsetid("ai.onnx.ml", ml_opset)])


@pytest.mark.parametrize("ml_opset", [1, 3])
@pytest.mark.parametrize("shape, targets, made", [([4, 3], 3, (4, 3)), ([3], 2, (1, 2)), ([1, 3], 1, (1, 1))])
def test_a_tree_ensemble_regressor_is_sized_as_onnxruntime_writes_it(ml_opset, shape, targets, made):
    """ONNX has no inference for TreeEnsembleRegressor-1: the model was refused ("could not find its rank"); its
    output is float ``[N, n_targets]`` (a 1-D input one row), whatever its input's type."""
    m = _tree_regressor(shape, targets, ml_opset)
    if ml_opset == 3 and len(shape) == 1:   # (ONNX's inference of TreeEnsembleRegressor-3 takes rank 2 only: so does
        assert ort_refuses(m)                #  onnxruntime's loader, which runs it)
        return
    g = _same_as_ort(m, {"x": np.ones(shape, np.float64)})
    assert tuple(g.tensor("t").attrs["shape"]) == made and g.tensor("t").attrs["dtype"] == "float"


@pytest.mark.parametrize("ml_opset", [1, 3])
def test_a_tree_ensemble_regressor_onnxruntime_refuses_stays_refused(ml_opset):
    m = _tree_regressor([4, 3, 2], 1, ml_opset)
    assert ort_refuses(m, {"x": np.ones((4, 3, 2), np.float64)})
    with pytest.raises(GraphError, match=r"TreeEnsembleRegressor.*rank 3"):
        import_onnx(m)
    m = _tree_regressor([4, 3], 0, ml_opset)
    assert ort_refuses(m, {"x": np.ones((4, 3), np.float64)})
    with pytest.raises(GraphError, match=r"node 'tree' \(TreeEnsembleRegressor\): its attribute n_targets is 0"):
        import_onnx(m)


# --- hunt: a domain imported twice by the model -----------------------------------------------------------------------

@pytest.mark.parametrize("imports, axes_input", [
    ((("", 11), ("", 13)), True), ((("", 13), ("", 11)), False),
    ((("", 11), ("ai.onnx", 13)), True), ((("ai.onnx", 13), ("", 11)), False),
])
@pytest.mark.parametrize("as_input", [True, False])
def test_the_last_import_of_a_domain_is_the_one_its_ops_follow_as_onnxruntime_reads_them(imports, axes_input, as_input):
    """onnxruntime reads ``opset_import`` in order, a later entry of a domain replacing an earlier one, and runs the
    model: a Squeeze takes its axes as an input at the last one listed 13, as an attribute at 11. Refused before
    ("imports the default ONNX domain twice")."""
    node = (helper.make_node("Squeeze", ["x", "a"], ["y"], name="sq") if as_input
            else helper.make_node("Squeeze", ["x"], ["y"], name="sq", axes=[0]))
    inits = [numpy_helper.from_array(np.array([0], np.int64), "a")] if as_input else []
    g = helper.make_graph([node], "g", [V("x", T.FLOAT, [1, 3])], [onnx.ValueInfoProto(name="y")], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in imports], ir_version=8)
    feeds = {"x": np.ones((1, 3), np.float32)}
    assert ort_refuses(m, feeds) == (as_input != axes_input)
    if as_input == axes_input:
        assert _same_as_ort(m, feeds).tensor("y").attrs["shape"] == [3]
    else:
        with pytest.raises(GraphError, match="'sq'"):
            import_onnx(m)


def test_an_import_onnxruntime_refuses_stays_refused_where_a_later_one_replaces_it():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [V("x", T.FLOAT, [2])])
    m.opset_import.insert(0, helper.make_opsetid("", 99))
    assert ort_refuses(m)
    with pytest.raises(GraphError, match="opset 99 of the default ONNX domain"):
        import_onnx(m)


# --- hunt: declarations onnxruntime ignores ---------------------------------------------------------------------------

RELU2 = [helper.make_node("Relu", ["x"], ["h"], name="r1"), helper.make_node("Relu", ["h"], ["y"], name="r2")]


def _declared(outputs=("y",), value_info=(), inits=()):
    g = helper.make_graph(RELU2, "g", [V("x", T.FLOAT, [2, 3])],
                          [o if isinstance(o, onnx.ValueInfoProto) else onnx.ValueInfoProto(name=o) for o in outputs],
                          list(inits), value_info=list(value_info))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("case", ["input's shape", "input's rank", "input's dtype", "initializer's shape",
                                  "initializer's dtype", "two shapes", "output and value_info", "output twice"])
def test_a_declaration_onnxruntime_ignores_is_ignored(case):
    """A value_info naming a graph input or an initializer (onnxruntime runs by the input's declaration, the
    initializer's own type), and two shapes declared for a value an op onnx defines makes (onnxruntime merges each
    into what the node makes): refused before ("declared twice with different types or shapes", or inference)."""
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    m = {"input's shape": lambda: _declared(value_info=[V("x", T.FLOAT, [3, 2])]),
         "input's rank": lambda: _declared(value_info=[V("x", T.FLOAT, [6])]),
         "input's dtype": lambda: _declared(value_info=[V("x", T.DOUBLE, [2, 3])]),
         "initializer's shape": lambda: _declared(outputs=("y", "w"), value_info=[V("w", T.FLOAT, [3, 2])], inits=[w]),
         "initializer's dtype": lambda: _declared(outputs=("y", "w"), value_info=[V("w", T.INT64, [2, 3])], inits=[w]),
         "two shapes": lambda: _declared(value_info=[V("h", T.FLOAT, [3, 2]), V("h", T.FLOAT, [4, 4])]),
         "output and value_info": lambda: _declared(outputs=("y", V("h", T.FLOAT, [4, 4])),
                                                    value_info=[V("h", T.FLOAT, [3, 2])]),
         "output twice": lambda: _declared(outputs=(V("y", T.FLOAT, [2, 3]), V("y", T.FLOAT, [6])))}[case]()
    g = _same_as_ort(m, {"x": np.ones((2, 3), np.float32)})
    assert g.tensor("h").size == g.tensor("y").size == 24


def test_two_shapes_of_a_custom_op_s_value_stay_refused():
    """Sized by its declaration alone, which of the two onnxruntime's registration of the op would take is unknown."""
    nodes = [helper.make_node("MyOp", ["x"], ["h"], domain="my.dom", name="c"), RELU2[1]]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3])], [onnx.ValueInfoProto(name="y")],
                          value_info=[V("h", T.FLOAT, [2, 3]), V("h", T.FLOAT, [6, 6])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.dom", 1)],
                          ir_version=8)
    with pytest.raises(GraphError, match=r"value 'h' is declared twice with different types or shapes"):
        import_onnx(m)


# --- hunt: an Expand to a computed shape onnxruntime refuses ----------------------------------------------------------

def _expanded_to(k, x_shape, via_float=False):
    c = numpy_helper.from_array(np.array(k, np.float32 if via_float else np.int64), "k")
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Neg", ["s"], ["n"])]
    if via_float:
        nodes += [helper.make_node("Cast", ["n"], ["f"], to=T.FLOAT), helper.make_node("Mul", ["f", "k"], ["g"]),
                  helper.make_node("Cast", ["g"], ["t"], to=T.INT64)]
    else:
        nodes += [helper.make_node("Mul", ["n", "k"], ["t"])]
    nodes.append(helper.make_node("Expand", ["x", "t"], ["y"], name="ex"))
    return _model(nodes, [V("x", T.FLOAT, x_shape)], [c])


@pytest.mark.parametrize("k, via_float", [([2], False), ([1, -1], False), ([2.0], True)])
def test_an_expand_to_a_computed_negative_shape_is_refused_as_onnxruntime_refuses_it(k, via_float):
    """``[5, 3]`` expanded to ``Mul(Neg(Shape(x)), 2)`` = ``[-10, -6]``: ONNX's inference broadcast the negative
    entries as if they fitted and the model was planned at ``[5, 3]``; onnxruntime: "invalid expand shape"."""
    m = _expanded_to(k, [5, 3], via_float)
    feeds = {"x": np.ones((5, 3), np.float32)}
    assert ort_refuses(m, feeds)
    with pytest.raises(GraphError, match=r"node 'ex' \(Expand\): its shape 't' is \[-\d+, -?\d+\].*invalid expand shape"):
        import_onnx(m)


def test_an_expand_to_a_computed_shape_that_fits_is_still_planned():
    m = _expanded_to([-2, -1], [1, 1])    # (-[1, 1] * [-2, -1] = [2, 1])
    g = _same_as_ort(m, {"x": np.ones((1, 1), np.float32)})
    assert g.tensor("y").attrs["shape"] == [2, 1]


# --- hunt: Gather indices and OneHot depths computed from shapes ------------------------------------------------------

def test_a_gather_by_indices_computed_from_shapes_past_its_data_is_refused():
    """Indices ``Shape(x)`` = ``[4, 6]`` into a first axis of 4: ONNX's data propagation computed them, no fold ran,
    and the indices check never saw them; onnxruntime: "indices element out of data bounds"."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["x", "s"], ["y"], axis=0, name="g")]
    m = _model(nodes, [V("x", T.FLOAT, [4, 6])])
    assert ort_refuses(m, {"x": np.ones((4, 6), np.float32)})
    with pytest.raises(GraphError, match=r"node 'g' \(Gather\)"):
        import_onnx(m)
    ok = _model([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Sub", ["s", "c"], ["t"]),
                 helper.make_node("Gather", ["x", "t"], ["y"], axis=0)], [V("x", T.FLOAT, [4, 6])],
                [numpy_helper.from_array(np.array([1, 3], np.int64), "c")])   # ([3, 3]: inside)
    _same_as_ort(ok, {"x": np.ones((4, 6), np.float32)})


@pytest.mark.parametrize("depth, dtype, refused", [(0, np.int64, True), (0.5, np.float32, True), ([0], np.int64, True),
                                                    (1, np.int64, False), (2.7, np.float32, False)])
def test_a_onehot_of_a_depth_onnxruntime_refuses_is_refused(depth, dtype, refused):
    """onnxruntime reads the depth as an integer (2.7 is 2) and refuses one below 1 ("Depth is negative", for 0 too);
    ONNX's inference sized ``[2, 0]`` and the model was planned."""
    inits = [numpy_helper.from_array(np.array(depth, dtype), "d"),
             numpy_helper.from_array(np.array([0.0, 1.0], np.float32), "v")]
    m = _model([helper.make_node("OneHot", ["i", "d", "v"], ["y"], name="oh")], [V("i", T.INT64, [2])], inits)
    feeds = {"i": np.zeros(2, np.int64)}
    assert ort_refuses(m, feeds) == refused
    if refused:
        with pytest.raises(GraphError, match=r"node 'oh' \(OneHot\): its depth 'd' is .*not a positive length"):
            import_onnx(m)
    else:
        _same_as_ort(m, feeds)


def test_a_onehot_depth_computed_to_0_is_refused():
    """``Where(Less(Mod(Shape(x), -2), 1), ..)`` sliced: 0, which the fold computes (no data propagation through Where)."""
    c = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)   # noqa: E731
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Mod", ["s", "m"], ["r"]),
             helper.make_node("Less", ["r", "one"], ["lt"]), helper.make_node("Where", ["lt", "r", "one"], ["w"]),
             helper.make_node("Slice", ["w", "z", "one"], ["d"]),
             helper.make_node("OneHot", ["i", "d", "v"], ["y"], name="oh")]
    inits = [c("m", [-2, -2]), c("one", [1]), c("z", [0]), c("i", [0, 1]),
             numpy_helper.from_array(np.array([0.0, 1.0], np.float32), "v")]
    m = _model(nodes, [V("x", T.FLOAT, [4, 6])], inits)
    assert ort_refuses(m, {"x": np.ones((4, 6), np.float32)})
    with pytest.raises(GraphError, match=r"node 'oh' \(OneHot\): its depth 'd' is \[?0\]?"):
        import_onnx(m)


# --- hunt: an intermediate of more elements than a float holds ----------------------------------------------------------

def test_an_intermediate_too_large_for_a_float_is_refused_as_absurd_not_a_raw_overflow(tmp_path, capsys):
    """An Expand of ``[1] * 17`` to ``[2**62] * 17``: its element count (2**1054) overflowed the float of its node's
    cost estimate ("OverflowError: int too large to convert to float", a raw traceback from the CLI)."""
    s = numpy_helper.from_array(np.array([2**62] * 17, np.int64), "s")
    m = _model([helper.make_node("Expand", ["x", "s"], ["y"], name="ex")], [V("x", T.FLOAT, [1] * 17)], [s])
    with pytest.raises(GraphError, match=r"node 'ex' \(Expand\): tensor 'y': size \d+\.* is absurd"):
        import_onnx(m)
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    from cli_contract import run_memplan
    code, _out, err = run_memplan(capsys, ["import", str(path), "-o", str(tmp_path / "g.json")])
    assert code == 2 and "is absurd" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g.json").exists()


# --- hunt: an integer division by a known 0 -----------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Div", "Mod"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_an_integer_division_by_a_known_zero_is_refused(op, dtype):
    """onnxruntime refuses the model at session start ("Integer division by zero"); it was planned."""
    tt = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    z = numpy_helper.from_array(np.array([0, 1], dtype), "z")
    m = _model([helper.make_node(op, ["a", "z"], ["y"], name="d")], [V("a", tt, [2])], [z])
    feeds = {"a": np.ones(2, dtype)}
    assert ort_refuses(m, feeds)
    with pytest.raises(GraphError, match=r"node 'd' \(" + op + r"\): its divisor 'z' holds 0"):
        import_onnx(m)
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.array([3, 1], dtype), "z"))
    _same_as_ort(m, feeds)
