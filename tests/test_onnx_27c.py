"""ONNX importer, round 27c: a local function whose body uses a domain the model does not import (the
function's import is added to the inlining copy), ``ai.onnx.ml`` ops whose input rank onnxruntime refuses, and
LinearClassifier attributes onnxruntime refuses at load. Sizes asserted here are those onnxruntime 1.32 (CPU)
writes for the same models; the refusals are those it gives."""

from __future__ import annotations

import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
MS, ML = "com.microsoft", "ai.onnx.ml"


def _save(tmp_path, model):
    p = tmp_path / "m.onnx"
    onnx.save(model, str(p))
    return str(p)


def _sizes(g) -> dict[str, tuple[list, int]]:
    return {t.id: (t.attrs.get("shape"), t.size) for t in g.tensors}


def _fn_model(body, fn_imports, model_imports, fname="F"):
    fn = helper.make_function("local", fname, ["x"], ["y"], body, fn_imports)
    g = helper.make_graph([helper.make_node(fname, ["X"], ["Y"], domain="local", name="call")], "g",
                          [V("X", T.FLOAT, [2, 3])], [V("Y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=model_imports + [helper.make_opsetid("local", 1)], functions=[fn])


def test_function_body_domain_the_model_does_not_import(tmp_path):
    # onnxruntime runs it: Y [2, 3] float (Gelu), the body's MatMul-free intermediate t [2, 3] too
    body = [helper.make_node("Gelu", ["x"], ["t"], domain=MS), helper.make_node("Relu", ["t"], ["y"])]
    m = _fn_model(body, [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], [helper.make_opsetid("", 17)])
    before = m.SerializeToString()
    g = import_onnx(_save(tmp_path, m))
    sizes = _sizes(g)
    assert sizes["Y"] == ([2, 3], 24)
    assert any(t.size == 24 and t.kind == "intermediate" for t in g.tensors)   # the body's Gelu output
    assert [n.op for n in g.nodes] == ["Gelu", "Relu"]
    assert m.SerializeToString() == before   # the user's model is not modified


def test_function_domain_at_two_versions_is_refused_naming_both(tmp_path):
    f1 = helper.make_function("local", "F", ["x"], ["y"], [helper.make_node("Scaler", ["x"], ["y"], domain=ML,
                              scale=[2.0], offset=[0.0])], [helper.make_opsetid("", 17), helper.make_opsetid(ML, 1)])
    f2 = helper.make_function("local", "G", ["x"], ["y"], [helper.make_node("Scaler", ["x"], ["y"], domain=ML,
                              scale=[2.0], offset=[0.0])], [helper.make_opsetid("", 17), helper.make_opsetid(ML, 3)])
    g = helper.make_graph([helper.make_node("F", ["X"], ["A"], domain="local"),
                           helper.make_node("G", ["A"], ["Y"], domain="local")], "g",
                          [V("X", T.FLOAT, [2, 3])], [V("Y", T.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
                          functions=[f1, f2])
    with pytest.raises(GraphError, match=r"local functions local:[FG] and local:[FG] import domain 'ai.onnx.ml' "
                                         r"at versions"):
        import_onnx(_save(tmp_path, m))


def _ml_model(op, shape, outs=("Y",), **attrs):
    node = helper.make_node(op, ["X"], list(outs), domain=ML, name="n", **attrs)
    g = helper.make_graph([node], "g", [V("X", T.FLOAT, shape)],
                          [V(o, T.INT64 if o == "L" else T.FLOAT, None) for o in outs])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, 3)])


@pytest.mark.parametrize("op, attrs, shape, takes", [
    ("Normalizer", {"norm": "L2"}, [2, 4, 3], r"\[C\] or \[N, C\]"),
    ("Normalizer", {"norm": "L2"}, [], r"\[C\] or \[N, C\]"),
    ("LinearRegressor", {"coefficients": [1.0, 2.0, 3.0]}, [2, 4, 3], r"\[C\] or \[N, C\]"),
    ("Scaler", {"scale": [1.0], "offset": [0.0]}, [], "at least one dimension"),
    ("Imputer", {"imputed_value_floats": [0.0], "replaced_value_float": 1.0}, [], "at least one dimension"),
])
def test_ml_input_rank_onnxruntime_refuses(tmp_path, op, attrs, shape, takes):
    with pytest.raises(GraphError, match=rf"node 'n' \({op}\): its input 'X' has rank {len(shape)} .*takes {takes}"):
        import_onnx(_save(tmp_path, _ml_model(op, shape, **attrs)))


def test_ml_ranks_onnxruntime_runs_are_still_planned(tmp_path):
    # onnxruntime: Normalizer [2, 3] -> [2, 3]; LinearRegressor [3] -> [1, 1]; Scaler [2, 4, 3] -> [2, 4, 3]
    assert _sizes(import_onnx(_save(tmp_path, _ml_model("Normalizer", [2, 3], norm="L2"))))["Y"] == ([2, 3], 24)
    assert _sizes(import_onnx(_save(tmp_path, _ml_model("LinearRegressor", [3], coefficients=[1.0] * 3))))["Y"] \
        == ([1, 1], 4)
    assert _sizes(import_onnx(_save(tmp_path, _ml_model("Scaler", [2, 4, 3], scale=[1.0], offset=[0.0]))))["Y"] \
        == ([2, 4, 3], 96)


@pytest.mark.parametrize("attrs, why", [
    ({"coefficients": [1.0] * 6, "classlabels_ints": [0, 1]}, "it has no intercepts"),
    ({"coefficients": [1.0] * 3}, "it has no intercepts"),
    ({"coefficients": [1.0] * 3, "intercepts": [0.0], "classlabels_ints": [0, 1, 2]},
     r"it has one intercept \(binary\) but 3 \(classlabels_ints\) class labels, not 2"),
    ({"coefficients": [1.0] * 6, "intercepts": [0.0, 0.0]}, "its 2 intercepts define 2 classes but it has no class"),
    ({"coefficients": [1.0] * 9, "intercepts": [0.0] * 3, "classlabels_ints": [0, 1]},
     "its 3 intercepts define 3 classes but it has 2"),
    ({"coefficients": [1.0] * 9, "intercepts": [0.0] * 2, "classlabels_ints": [0, 1]},
     "its 9 coefficients are no multiple of its 2 classes"),
])
def test_linear_classifier_onnxruntime_refuses_at_load(tmp_path, attrs, why):
    with pytest.raises(GraphError, match=rf"node 'n' \(LinearClassifier\): {why}.*onnxruntime refuses"):
        import_onnx(_save(tmp_path, _ml_model("LinearClassifier", [2, 3], outs=("L", "Y"), **attrs)))


def test_linear_classifier_empty_intercepts_list_is_refused(tmp_path):
    m = _ml_model("LinearClassifier", [2, 3], outs=("L", "Y"), coefficients=[1.0] * 6, classlabels_ints=[0, 1])
    m.graph.node[0].attribute.append(onnx.AttributeProto(name="intercepts", type=onnx.AttributeProto.FLOATS))
    with pytest.raises(GraphError, match="it has no intercepts"):
        import_onnx(_save(tmp_path, m))


@pytest.mark.parametrize("attrs, scores", [
    ({"coefficients": [1.0] * 3, "intercepts": [0.0]}, 1),
    ({"coefficients": [1.0] * 3, "intercepts": [0.0], "classlabels_ints": [0, 1]}, 2),
    ({"coefficients": [1.0] * 6, "intercepts": [0.0, 0.0], "classlabels_ints": [0, 1, 2]}, 2),
])
def test_linear_classifier_onnxruntime_loads_is_planned(tmp_path, attrs, scores):
    # onnxruntime writes L [2] int64 and Y [2, scores] float for each of these
    sizes = _sizes(import_onnx(_save(tmp_path, _ml_model("LinearClassifier", [2, 3], outs=("L", "Y"), **attrs))))
    assert sizes["L"] == ([2], 16) and sizes["Y"] == ([2, scores], 8 * scores)
