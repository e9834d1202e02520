"""ONNX importer, round 28: linear ``ai.onnx.ml`` models with fewer coefficients than their kernel reads, SVM ranks,
MultiHeadAttention's ``qk`` scores, SparseAttention's cache that onnxruntime requires shared, and local functions
whose body uses a domain the function does not import. Every size asserted here is what onnxruntime 1.32 (CPU)
writes for the same model; every refusal is one onnxruntime gives too (at load or at run)."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
MS, ML = "com.microsoft", "ai.onnx.ml"


def _sizes(g) -> dict[str, tuple[list, int]]:
    return {t.id: (t.attrs.get("shape"), t.size) for t in g.tensors}


def _ml_model(op, shape, outs=("Y",), **attrs):
    node = helper.make_node(op, ["X"], list(outs), domain=ML, name="n", **attrs)
    g = helper.make_graph([node], "g", [V("X", T.FLOAT, shape)],
                          [V(o, T.INT64 if o == "L" else T.FLOAT, None) for o in outs])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ML, 3)], ir_version=8)


# -- linear models: onnxruntime's kernels read classes (targets) x features coefficients -----------------------

@pytest.mark.parametrize("op, shape, attrs, rows", [
    # "coefficients size (4) is less than class_count (2) * num_features (3)" when run
    ("LinearClassifier", [2, 3], {"coefficients": [1.0] * 4, "intercepts": [0.0] * 2, "classlabels_ints": [0, 1]},
     "2 classes"),
    ("LinearClassifier", [3], {"coefficients": [1.0] * 4, "intercepts": [0.0] * 2, "classlabels_ints": [0, 1]},
     "2 classes"),
    ("LinearClassifier", [2, 3], {"coefficients": [1.0] * 6, "intercepts": [0.0] * 3, "classlabels_ints": [0, 1, 2]},
     "3 classes"),
    ("LinearClassifier", [2, 3], {"coefficients": [1.0] * 2, "intercepts": [0.0], "classlabels_ints": [0, 1]},
     "1 classes"),
    # "coefficients length (3) must be at least targets (2) * features (3)"
    ("LinearRegressor", [2, 3], {"coefficients": [1.0] * 3, "targets": 2}, "2 targets"),
    ("LinearRegressor", [2, 3], {"coefficients": [1.0] * 2}, "1 targets"),
])
def test_linear_model_with_too_few_coefficients_is_refused(op, shape, attrs, rows):
    outs = ("L", "Y") if op == "LinearClassifier" else ("Y",)
    with pytest.raises(GraphError, match=rf"node 'n' \({op}\): it has \d+ coefficients, fewer than its {rows}.* times "
                                         rf"the 3 features of its input 'X'.*onnxruntime refuses"):
        import_onnx(_ml_model(op, shape, outs=outs, **attrs))


@pytest.mark.parametrize("op, attrs, y", [
    # more coefficients than read: onnxruntime runs it (the rest unread)
    ("LinearClassifier", {"coefficients": [1.0] * 6, "intercepts": [0.0] * 2, "classlabels_ints": [0, 1]}, [2, 2]),
    ("LinearClassifier", {"coefficients": [1.0] * 8, "intercepts": [0.0] * 2, "classlabels_ints": [0, 1]}, [2, 2]),
    ("LinearClassifier", {"coefficients": [1.0] * 3, "intercepts": [0.0], "classlabels_ints": [0, 1]}, [2, 2]),
    ("LinearRegressor", {"coefficients": [1.0] * 6, "targets": 2}, [2, 2]),
    ("LinearRegressor", {"coefficients": [1.0] * 8, "targets": 2}, [2, 2]),
])
def test_linear_model_onnxruntime_runs_is_planned(op, attrs, y):
    outs = ("L", "Y") if op == "LinearClassifier" else ("Y",)
    assert _sizes(import_onnx(_ml_model(op, [2, 3], outs=outs, **attrs)))["Y"] == (y, 4 * y[0] * y[1])


_SVR = {"kernel_type": "LINEAR", "kernel_params": [0.001, 0.0, 3.0], "n_supports": 2, "support_vectors": [1.0] * 6,
        "coefficients": [1.0, 1.0], "rho": [0.0]}


@pytest.mark.parametrize("shape", [[], [2, 2, 3]])
def test_svm_regressor_rank_onnxruntime_refuses(shape):
    # "Input shape must have 1 or 2 dimensions. Dims=0" (=3) when run; was "could not find its rank"
    with pytest.raises(GraphError, match=rf"node 'n' \(SVMRegressor\): its input 'X' has rank {len(shape)} .*takes "
                                         r"\[C\] or \[N, C\]"):
        import_onnx(_ml_model("SVMRegressor", shape, **_SVR))


def test_svm_regressor_ranks_onnxruntime_runs_are_planned():
    assert _sizes(import_onnx(_ml_model("SVMRegressor", [3], **_SVR)))["Y"] == ([1, 1], 4)
    assert _sizes(import_onnx(_ml_model("SVMRegressor", [2, 3], **_SVR)))["Y"] == ([2, 1], 8)


# -- onnxruntime's ops ----------------------------------------------------------------------------------------

def _ms_model(nodes, ins, outs, inits=()):
    g = helper.make_graph(nodes, "g", ins, outs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], ir_version=8)


B, S, N, H, L, P = 2, 3, 2, 8, 4, 5


def test_multi_head_attention_qk_scores_are_sized():
    need("onnxruntime")   # (its shape inference sizes onnxruntime's ops)
    mha = helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["o", "pk", "pv", "qk"], domain=MS, num_heads=N)
    m = _ms_model([mha], [V("q", T.FLOAT, [B, S, H]), V("k", T.FLOAT, [B, L, H]), V("v", T.FLOAT, [B, L, H])],
                  [V(o, T.FLOAT, None) for o in ("o", "pk", "pv", "qk")])
    # onnxruntime: qk [B, N, S, L] float, 192 bytes (was refused: "has no shape")
    assert _sizes(import_onnx(m))["qk"] == ([B, N, S, L], 4 * B * N * S * L)
    past = helper.make_node("MultiHeadAttention", ["q", "k", "v", "", "", "", "pastk", "pastv"], ["o", "", "", "qk"],
                            domain=MS, num_heads=N)
    m = _ms_model([past], [V("q", T.FLOAT, [B, S, H]), V("k", T.FLOAT, [B, S, H]), V("v", T.FLOAT, [B, S, H]),
                           V("pastk", T.FLOAT, [B, N, P, H // N]), V("pastv", T.FLOAT, [B, N, P, H // N])],
                  [V("o", T.FLOAT, None), V("qk", T.FLOAT, None)])
    assert _sizes(import_onnx(m))["qk"] == ([B, N, S, P + S], 4 * B * N * S * (P + S))   # 384 bytes


@pytest.mark.parametrize("declared, nbytes", [(T.FLOAT16, 2), (T.FLOAT, 4)])
def test_multi_head_attention_qk_takes_its_declared_type(declared, nbytes):
    # qk has its own type parameter: a float16 model's qk declared float is written as float (192 bytes, not 96)
    need("onnxruntime")
    mha = helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["o", "", "", "qk"], domain=MS, num_heads=N)
    m = _ms_model([mha], [V(x, T.FLOAT16, [B, S if x == "q" else L, H]) for x in "qkv"],
                  [V("o", T.FLOAT16, None), V("qk", declared, None)])
    sizes = _sizes(import_onnx(m))
    assert sizes["qk"] == ([B, N, S, L], nbytes * B * N * S * L) and sizes["o"] == ([B, S, H], 2 * B * S * H)


def _sparse_attention(M=32):
    KV, h = 1, 16
    node = helper.make_node("SparseAttention", ["q", "k", "v", "pk", "pv", "rows", "cols", "tot", "ktot"],
                            ["o", "presk", "presv"], domain=MS, num_heads=2, kv_num_heads=KV, sparse_block_size=16,
                            name="sa")
    inits = [numpy_helper.from_array(np.array([[0, 1, 3]], np.int32), "rows"),
             numpy_helper.from_array(np.array([[0, 0, 1]], np.int32), "cols"),
             numpy_helper.from_array(np.array(3, np.int32), "tot"), numpy_helper.from_array(np.array([3], np.int32), "ktot")]
    ins = [V("q", T.FLOAT, [1, 3, 2 * h]), V("k", T.FLOAT, [1, 3, KV * h]), V("v", T.FLOAT, [1, 3, KV * h]),
           V("pk", T.FLOAT, [1, KV, M, h]), V("pv", T.FLOAT, [1, KV, M, h])]
    return _ms_model([node], ins, [V(o, T.FLOAT, None) for o in ("o", "presk", "presv")], inits)


def test_sparse_attention_present_shares_the_past_buffer():
    # onnxruntime's kernel refuses to run unless present and past are one buffer
    # ("past_key->DataRaw() == present_key->DataRaw() ... was false"): two slots were planned
    need("onnxruntime")
    g = import_onnx(_sparse_attention())
    for present, past in (("presk", "pk"), ("presv", "pv")):
        t = g.tensor(present)
        assert t.view_of == past and t.view_offset == 0 and t.size == g.tensor(past).size == 2048
    plan = memplan.plan(g, solver="greedy")
    memplan.verify(g, plan)
    offsets = {t["id"]: t["offset"] for t in plan.to_dict()["tensors"]}
    assert offsets["presk"] == offsets["pk"] and offsets["presv"] == offsets["pv"] and offsets["pk"] != offsets["pv"]


# -- local functions: a body binds its ops by the function's own imports ----------------------------------------

def _fn_model(body, fn_imports, model_imports, funcs=()):
    fn = helper.make_function("local", "F", ["x"], ["y"], body, fn_imports)
    g = helper.make_graph([helper.make_node("F", ["X"], ["Y"], domain="local", name="call")], "g",
                          [V("X", T.FLOAT, [2, 3])], [V("Y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=model_imports + [helper.make_opsetid("local", 1)],
                             functions=[fn, *funcs], ir_version=10)


_GELU = [helper.make_node("Gelu", ["x"], ["t"], domain=MS), helper.make_node("Relu", ["t"], ["y"])]
_G = helper.make_function("local", "G", ["x"], ["y"], _GELU, [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])


@pytest.mark.parametrize("body, fn_imports, model_imports, funcs, domain, node", [
    # neither imports com.microsoft: was onnx's "No opset import for domain com.microsoft" naming neither
    (_GELU, [("", 17)], [("", 17)], (), "com.microsoft", r"#0 \(com.microsoft:Gelu\)"),
    # the model imports it, the function does not: was planned
    (_GELU, [("", 17)], [("", 17), (MS, 1)], (), "com.microsoft", r"#0 \(com.microsoft:Gelu\)"),
    # a call of another local function whose domain the caller does not import: was planned
    ([helper.make_node("G", ["x"], ["y"], domain="local", name="g")], [("", 17)], [("", 17)], (_G,), "local",
     r"'g' \(local:G\)"),
    # the default domain not imported by the function: was planned
    ([helper.make_node("Relu", ["x"], ["y"])], [(MS, 1)], [("", 17)], (), "ai.onnx", r"#0 \(Relu\)"),
])
def test_function_node_of_a_domain_the_function_does_not_import_is_refused(body, fn_imports, model_imports, funcs,
                                                                          domain, node):
    # onnxruntime: "No opset registered for domain com.microsoft in function F"
    m = _fn_model(body, [helper.make_opsetid(d, v) for d, v in fn_imports],
                  [helper.make_opsetid(d, v) for d, v in model_imports], funcs)
    with pytest.raises(GraphError, match=rf"local function local:F \(called by node 'call'\): its node {node} is of "
                                         rf"domain '{domain}', which the function does not import"):
        import_onnx(m)


def test_function_importing_what_its_body_uses_is_planned():
    # onnxruntime runs both: Y [2, 3] float
    m = _fn_model(_GELU, [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], [helper.make_opsetid("", 17)])
    assert _sizes(import_onnx(m))["Y"] == ([2, 3], 24)
    m = _fn_model([helper.make_node("G", ["x"], ["y"], domain="local")],
                  [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)], [helper.make_opsetid("", 17)], (_G,))
    assert _sizes(import_onnx(m))["Y"] == ([2, 3], 24)


# -- onnxruntime's fusions of a standard op with an activation: sized as that op ----------------------------------

_r = np.random.default_rng(0)


@pytest.mark.parametrize("op, attrs, x, w, y", [
    ("FusedConv", {"activation": "Relu", "strides": [2, 2], "pads": [1, 1, 1, 1], "kernel_shape": [3, 3]},
     ["N", 4, 9, 9], [6, 4, 3, 3], [2, 6, 5, 5]),
    ("FusedConv", {"activation": "LeakyRelu", "activation_params": [0.1], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
     ["N", 4, 9, 9], [6, 4, 3, 3], [2, 6, 5, 5]),
    ("FusedConv", {"activation": "Sigmoid", "group": 2, "dilations": [2, 1]}, ["N", 4, 9, 8], [6, 2, 3, 3],
     [2, 6, 5, 6]),
    ("FusedGemm", {"activation": "Relu", "transB": 1}, ["N", 4], [6, 4], [2, 6]),
    ("FusedGemm", {"activation": "LeakyRelu", "activation_alpha": 0.1, "transA": 1}, [4, "N"], [4, 6], [2, 6]),
])
def test_fused_conv_and_gemm_are_sized_as_the_standard_op(op, attrs, x, w, y):
    # what onnxruntime's optimizer saves from a model of symbolic batch: the declared output [N, ...] cannot be
    # fixed by batch (it is inferred), and onnxruntime's inference has no rule for these ops: was refused as unsized
    need("onnxruntime")
    node = helper.make_node(op, ["x", "w"], ["y"], domain=MS, name="f", **attrs)
    decl = ["N"] + [None] * (len(y) - 1)
    m = _ms_model([node], [V("x", T.FLOAT, x)], [V("y", T.FLOAT, decl)],
                  [numpy_helper.from_array(_r.random(w).astype(np.float32), "w")])
    # onnxruntime writes y of these shapes (float) for x of batch 2
    assert _sizes(import_onnx(m, dims={"N": 2}))["y"] == (y, 4 * int(np.prod(y)))


# -- a graph node of a domain the model does not import ----------------------------------------------------------

def _one_node(node, imports):
    g = helper.make_graph([node], "g", [V("X", T.FLOAT, [2, 3])], [V("Y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in imports], ir_version=10)


def test_com_microsoft_node_the_model_does_not_import_is_planned():
    # onnxruntime runs it (com.microsoft at its one version): Y [2, 3] float; was refused with onnx's
    # "No opset import for domain com.microsoft"
    m = _one_node(helper.make_node("Gelu", ["X"], ["Y"], domain=MS, name="gg"), [("", 17)])
    before = m.SerializeToString()
    assert _sizes(import_onnx(m))["Y"] == ([2, 3], 24)
    assert m.SerializeToString() == before   # the import is added to a copy


@pytest.mark.parametrize("node, imports, op, domain", [
    (helper.make_node("Relu", ["X"], ["Y"], name="r"), [(MS, 1)], "Relu", "ai.onnx"),
    (helper.make_node("Normalizer", ["X"], ["Y"], domain=ML, name="r", norm="L2"), [("", 17)], "ai.onnx.ml:Normalizer",
     "ai.onnx.ml"),
])
def test_node_of_a_domain_of_unknown_version_is_refused_naming_it(node, imports, op, domain):
    with pytest.raises(GraphError, match=rf"node 'r' \({op}\) is of domain '{domain}', which the model does not import"):
        import_onnx(_one_node(node, imports))
