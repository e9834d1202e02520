"""Round 27 of the ONNX importer's hostile inputs: model-local functions that do not exist or are malformed, a
domain imported at two versions, ``ai.onnx.ml`` ops ONNX's inference leaves unsized, and a Resize whose size
runtimes disagree on. Every size asserted here is the one onnxruntime 1.32 produced for the same model."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _model(nodes, ins, outs, opsets=(("", 17),), functions=(), inits=()):
    g = helper.make_graph(nodes, "g", ins, outs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], ir_version=9,
                             functions=list(functions))


def _fn(name, ins, outs, body, opsets=(("", 17),)):
    return helper.make_function("local", name, ins, outs, body, [helper.make_opsetid(d, v) for d, v in opsets])


def _calls(fn, *, out_shape=(4,), extra_opsets=()):
    return _model([helper.make_node(fn.name if not isinstance(fn, str) else fn, ["x"], ["y"], domain="local")],
                  [V("x", T.FLOAT, [4])], [V("y", T.FLOAT, list(out_shape))],
                  opsets=(("", 17), ("local", 1), *extra_opsets), functions=[fn] if not isinstance(fn, str) else [])


def _sizes(g):
    return {t.id: (t.size, t.attrs.get("shape"), t.attrs.get("dtype")) for t in g.tensors}


# -- model-local functions ------------------------------------------------------------------------------

RELU = _fn("f", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])])


def test_a_call_of_a_local_function_the_model_does_not_define_is_refused_by_name():
    """It was imported as an op nobody defines, sized by the declared output alone (onnxruntime: "local:g is not
    a registered function/op")."""
    m = _model([helper.make_node("g", ["x"], ["y"], domain="local")], [V("x", T.FLOAT, [4])],
               [V("y", T.FLOAT, [4])], opsets=(("", 17), ("local", 1)), functions=[RELU])
    with pytest.raises(GraphError, match=r"node 'g_0' calls local:g, which is no local function of the model "
                                         r"\(its functions in domain 'local': f\)"):
        import_onnx(m)


def test_a_call_of_an_overload_the_model_does_not_define_is_refused_by_name():
    f = _fn("f", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])])
    f.overload = "one"
    call = helper.make_node("f", ["x"], ["y"], domain="local")
    call.overload = "two"
    m = _model([call], [V("x", T.FLOAT, [4])], [V("y", T.FLOAT, [4])], opsets=(("", 17), ("local", 1)), functions=[f])
    m.ir_version = 10
    with pytest.raises(GraphError, match=r"node 'f_0' calls local function local:f overload 'two', which the model "
                                         r"does not define \(its overloads: 'one'\)"):
        import_onnx(m)
    call.overload = "one"
    m.graph.node[0].overload = "one"
    assert _sizes(import_onnx(m))["y"][0] == 16


def test_a_local_function_returning_its_input_is_refused_naming_it_and_its_caller():
    """Inlined to nothing: "graph output 'y' is produced by no node", naming neither (onnxruntime refuses it)."""
    m = _calls(_fn("id", ["a"], ["a"], []))
    with pytest.raises(GraphError, match=r"local function local:id \(called by node 'id_0'\) returns its input 'a'"):
        import_onnx(m)


def test_a_local_function_whose_output_no_body_node_makes_is_refused():
    m = _calls(_fn("f", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["z"])]))
    with pytest.raises(GraphError, match=r"local function local:f \(called by node 'f_0'\): its output 'b' is made "
                                         "by no node of its body"):
        import_onnx(m)


def test_a_local_function_reading_its_callers_value_is_refused():
    """A body reading ``w``, which it does not define, was bound to the graph's ``w`` (functions have no outer
    scope; onnx's checker refuses it)."""
    f = _fn("f", ["a"], ["b"], [helper.make_node("Add", ["a", "w"], ["b"])])
    m = _model([helper.make_node("Relu", ["x"], ["w"]), helper.make_node("f", ["x"], ["y"], domain="local")],
               [V("x", T.FLOAT, [4])], [V("y", T.FLOAT, [4])], opsets=(("", 17), ("local", 1)), functions=[f])
    with pytest.raises(GraphError, match=r"local function local:f \(called by node 'f_1'\): its node #0 \(Add\) "
                                         "reads 'w', which is no input of the function"):
        import_onnx(m)


def test_a_well_formed_identity_function_still_imports_as_a_view():
    m = _calls(_fn("f", ["a"], ["b"], [helper.make_node("Identity", ["a"], ["b"])]))
    y = next(t for t in import_onnx(m).tensors if t.id == "y")
    assert (y.size, y.view_of) == (16, "x")


# -- one version per domain -----------------------------------------------------------------------------

def test_a_custom_domain_imported_twice_at_two_versions_is_refused():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [V("x", T.FLOAT, [4])], [V("y", T.FLOAT, [4])],
               opsets=(("", 17), ("ai.onnx.ml", 1), ("ai.onnx.ml", 3)))
    # (round 51: the model's imports are read as onnxruntime reads them, the last of a domain: it runs the model;
    # a local function's are still refused, below)
    assert _sizes(import_onnx(m))["y"][0] == 16
    m.opset_import[2].version = 1   # the same version twice names one version
    assert _sizes(import_onnx(m))["y"][0] == 16


def test_a_function_importing_a_domain_twice_is_refused():
    f = _fn("f", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])], opsets=(("", 17), ("cust", 1), ("cust", 2)))
    with pytest.raises(GraphError, match=r"local function local:f imports domain 'cust' twice, at opsets 1 and 2"):
        import_onnx(_calls(f))


def _label_encoder_fn(version):
    return _fn("f", ["a"], ["b"], [helper.make_node("LabelEncoder", ["a"], ["c"], domain="ai.onnx.ml", keys_int64s=[1],
                                                    values_int64s=[5]), helper.make_node("Relu", ["c"], ["b"])],
               opsets=(("", 17), ("ai.onnx.ml", version)))


def _ml_call(fn_version, model_version):
    return _model([helper.make_node("f", ["x"], ["y"], domain="local")], [V("x", T.INT64, [2, 3])],
                  [V("y", T.INT64, None)], opsets=(("", 17), ("ai.onnx.ml", model_version), ("local", 1)),
                  functions=[_label_encoder_fn(fn_version)])


def test_a_function_whose_op_changed_between_its_domain_version_and_the_models_is_refused():
    """LabelEncoder-2 in the function, -4 at the model's ai.onnx.ml 4: its body would be sized by rules it was not
    written for (onnx.proto: the two versions must give the same schema)."""
    with pytest.raises(GraphError, match=r"local function local:f imports domain 'ai.onnx.ml' at version 2 and the "
                                         r"model at version 4, .* follows ai.onnx.ml:LabelEncoder-2 in the function "
                                         "but -4 in the model"):
        import_onnx(_ml_call(2, 4))


def test_a_function_whose_domain_version_gives_the_same_schemas_is_inlined():
    """ai.onnx.ml 2 and 3 both give LabelEncoder-2: the spec allows it, but onnx's inliner left such a call as one
    node (refused as "could not be inlined"); the body is now planned (onnxruntime: 48 bytes each)."""
    m = _ml_call(2, 3)
    before = m.SerializeToString()
    sizes = _sizes(import_onnx(m))
    assert sizes["y"][0] == 48 and any(k.startswith("c") and v[0] == 48 for k, v in sizes.items())
    assert m.SerializeToString() == before   # the caller's model is never modified


def test_a_custom_op_in_a_function_at_another_version_is_refused():
    f = _fn("f", ["a"], ["b"], [helper.make_node("Foo", ["a"], ["b"], domain="cust")], opsets=(("", 17), ("cust", 2)))
    with pytest.raises(GraphError, match=r"node 'Foo' \(cust:Foo\) has no schema onnx defines at both versions"):
        import_onnx(_calls(f, extra_opsets=(("cust", 1),)))


# -- ai.onnx.ml ops without inference -------------------------------------------------------------------

def _ml(op, shape, elem=T.FLOAT, extra=(), **attrs):
    ins = ["x"] + [name for name, _ in extra]
    return _model([helper.make_node(op, ins, ["y"], domain="ai.onnx.ml", **attrs)], [V("x", elem, shape)],
                  [helper.make_value_info("y", onnx.TypeProto())], opsets=(("", 17), ("ai.onnx.ml", 3)),
                  inits=[numpy_helper.from_array(a, name) for name, a in extra])


# (model, expected (bytes, shape, dtype) of y): each as onnxruntime 1.32 made it on random inputs
ML_CASES = [
    ("Normalizer [2,3]", _ml("Normalizer", [2, 3], norm="L2"), (24, [2, 3], "float")),
    ("Normalizer of int64 [3]", _ml("Normalizer", [3], T.INT64, norm="L1"), (12, [3], "float")),
    ("Normalizer of double [0,3]", _ml("Normalizer", [0, 3], T.DOUBLE, norm="MAX"), (0, [0, 3], "float")),
    ("Scaler of int32 [2,3,2]", _ml("Scaler", [2, 3, 2], T.INT32, scale=[2.0], offset=[1.0]), (48, [2, 3, 2], "float")),
    ("Scaler of double [3]", _ml("Scaler", [3], T.DOUBLE, scale=[2.0], offset=[1.0]), (12, [3], "float")),
    ("Imputer int64 [2,3,2]", _ml("Imputer", [2, 3, 2], T.INT64, imputed_value_int64s=[0], replaced_value_int64=1),
     (96, [2, 3, 2], "int64")),
    ("LinearRegressor [2,3]", _ml("LinearRegressor", [2, 3], coefficients=[1.0] * 6, targets=2), (16, [2, 2], "float")),
    ("LinearRegressor [3]", _ml("LinearRegressor", [3], coefficients=[1.0] * 6, targets=2), (8, [1, 2], "float")),
    ("SVMRegressor [3]", _ml("SVMRegressor", [3], coefficients=[1.0, 1.0], support_vectors=[0.5] * 6, n_supports=2,
                             rho=[0.1], kernel_type="LINEAR", kernel_params=[0.1, 0.0, 1.0]), (4, [1, 1], "float")),
    ("FeatureVectorizer [2,3,2]", _ml("FeatureVectorizer", [2, 3, 2], inputdimensions=[4]), (32, [2, 4], "float")),
    ("FeatureVectorizer [3]", _ml("FeatureVectorizer", [3], inputdimensions=[5]), (20, [1, 5], "float")),
    ("ArrayFeatureExtractor [3]", _ml("ArrayFeatureExtractor", [3], extra=[("i", np.array([0, 0, 1], np.int64))]),
     (12, [1, 3], "float")),
    ("ArrayFeatureExtractor scalar index", _ml("ArrayFeatureExtractor", [2, 3, 2], extra=[("i", np.array(1, np.int64))]),
     (24, [2, 3, 1], "float")),
]


@pytest.mark.parametrize("model, expected", [c[1:] for c in ML_CASES], ids=[c[0] for c in ML_CASES])
def test_ml_ops_without_an_inference_function_are_sized_as_onnxruntime_makes_them(model, expected):
    """They were refused ("shape inference could not find its rank"). Normalizer and Scaler return float whatever
    they read; a regressor's or FeatureVectorizer's 1-D input is one row."""
    assert _sizes(import_onnx(model))["y"] == expected


def test_ml_ops_outside_the_ranks_runtimes_take_stay_refused():
    """A Normalizer of rank 3 and a LinearRegressor of rank 3 fail in onnxruntime: refused, saying why."""
    for m in (_ml("Normalizer", [2, 3, 2], norm="L2"), _ml("LinearRegressor", [2, 3, 2], coefficients=[1.0] * 4)):
        with pytest.raises(GraphError, match=r"its input 'x' has rank 3 \(\[2, 3, 2\]\), but \w+ takes \[C\] or "):
            import_onnx(m)


# -- found in the hunt ----------------------------------------------------------------------------------

def _resize(axes):
    sizes = numpy_helper.from_array(np.array([7, 4], np.int64), "z")
    return _model([helper.make_node("Resize", ["x", "", "", "z"], ["y"], axes=axes, keep_aspect_ratio_policy="not_larger")],
                  [V("x", T.FLOAT, [1, 1, 3, 5])], [V("y", T.FLOAT, None)], opsets=(("", 18),), inits=[sizes])


def test_a_resize_keeping_its_aspect_ratio_over_negative_axes_is_refused():
    """ONNX's inference made it [1, 1, 2, 4] (32 bytes); onnxruntime writes [1, 1, 3, 5] (60 bytes): an overrun."""
    with pytest.raises(GraphError, match=r"node 'Resize_0' \(Resize\) keeps the aspect ratio \('not_larger'\) over "
                                         r"negative axes \[-2, -1\]"):
        import_onnx(_resize([-2, -1]))
    assert _sizes(import_onnx(_resize([2, 3])))["y"] == (32, [1, 1, 2, 4], "float")   # as onnxruntime makes it
