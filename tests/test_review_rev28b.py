"""Review of round 28's importer and runtime changes (rev28b): SparseAttention's cache, written in place, may be
read by no one else."""

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
MS = "com.microsoft"
KV, HD, M = 1, 16, 32


def _sa(name, pk, pv, outs):
    return helper.make_node("SparseAttention", ["q", "k", "v", pk, pv, "rows", "cols", "tot", "ktot"], outs, domain=MS,
                            num_heads=2, kv_num_heads=KV, sparse_block_size=16, name=name)


_INITS = [numpy_helper.from_array(np.array([[0, 1, 3]], np.int32), "rows"),
          numpy_helper.from_array(np.array([[0, 0, 1]], np.int32), "cols"),
          numpy_helper.from_array(np.array(3, np.int32), "tot"), numpy_helper.from_array(np.array([3], np.int32), "ktot")]
_QKV = [V("q", T.FLOAT, [1, 3, 2 * HD]), V("k", T.FLOAT, [1, 3, KV * HD]), V("v", T.FLOAT, [1, 3, KV * HD])]
_CACHE = [V("pk", T.FLOAT, [1, KV, M, HD]), V("pv", T.FLOAT, [1, KV, M, HD])]
_OUT3 = ["o", "presk", "presv"]


def _model(nodes, ins, outs, inits=()):
    g = helper.make_graph(nodes, "g", ins, [V(o, T.FLOAT, None) for o in outs], initializer=_INITS + list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], ir_version=8)


_ZEROS = np.zeros((1, KV, M, HD), np.float32)
_RELU = helper.make_node("Relu", ["pk"], ["r"], name="relu")


@pytest.mark.parametrize("nodes, ins, outs, inits, why", [
    # the cache an initializer: present was a view of a weight, the node writing into the model's constants
    ([_sa("sa", "pk", "pv", _OUT3)], _QKV, _OUT3,
     [numpy_helper.from_array(_ZEROS, "pk"), numpy_helper.from_array(_ZEROS, "pv")],
     r"its input 'pk', which is an initializer or Constant"),
    # another node reads the old cache, after or before the overwrite: unordered against it on other streams
    ([_sa("sa", "pk", "pv", _OUT3), _RELU], _QKV + _CACHE, _OUT3 + ["r"], [],
     r"node 'relu' \(Relu\) also reads 'pk', the old bytes"),
    ([_RELU, _sa("sa", "pk", "pv", _OUT3)], _QKV + _CACHE, _OUT3 + ["r"], [],
     r"node 'relu' \(Relu\) also reads 'pk', the old bytes"),
    # two SparseAttentions on one cache: the second read what the first overwrote, and overwrote its present
    ([_sa("sa", "pk", "pv", _OUT3), _sa("sb", "pk", "pv", ["o2", "presk2", "presv2"])], _QKV + _CACHE,
     _OUT3 + ["o2"], [], r"'presk2' into the buffer of its input 'pk', which node 'sa' \(SparseAttention\) also"),
    # one tensor as past key and past value: both presents written into one buffer
    ([_sa("sa", "pk", "pk", _OUT3)], _QKV + _CACHE[:1], _OUT3, [], r"'presv' into the buffer of its input 'pk', "
     r"which node 'sa' \(SparseAttention\) also writes"),
    # the cache (made by a node) is also a graph output: it would end holding present
    ([helper.make_node("Relu", ["pk0"], ["pk"], name="mk"), _sa("sa", "pk", "pv", _OUT3)],
     _QKV + [V("pk0", T.FLOAT, [1, KV, M, HD]), _CACHE[1]], _OUT3 + ["pk"], [], r"graph output 'pk' is the old bytes"),
])
def test_sparse_attention_cache_read_elsewhere_is_refused(nodes, ins, outs, inits, why):
    # each was planned and verified: the contract orders no read of a buffer before a write of a view of it
    need("onnxruntime")
    with pytest.raises(GraphError, match=rf"node 's[ab]' \(SparseAttention\): .*{why}"):
        import_onnx(_model(nodes, ins, outs, inits))


def test_sparse_attention_cache_read_by_it_alone_is_planned():
    need("onnxruntime")
    # the cache made by a node (read by the node making it), present read by a later node: still planned
    m = _model([helper.make_node("Relu", ["pk0"], ["pk"], name="mk"), _sa("sa", "pk", "pv", _OUT3),
                helper.make_node("Relu", ["presk"], ["r"], name="relu")],
               _QKV + [V("pk0", T.FLOAT, [1, KV, M, HD]), _CACHE[1]], ["o", "presv", "r"])
    g = import_onnx(m)
    assert g.tensor("presk").view_of == "pk" and g.tensor("presv").view_of == "pv"
    memplan.verify(g, memplan.plan(g, solver="greedy"))


# -- Conv / FusedConv: what onnxruntime's ConvAttributes refuses, ONNX's inference sized ----------------------------

@pytest.mark.parametrize("attrs, x, w, why", [
    # "Dilation not supported for AutoPadType::SAME_UPPER or AutoPadType::SAME_LOWER"
    ({"auto_pad": "SAME_UPPER", "dilations": [2, 1]}, [2, 6, 9, 8], [6, 6, 3, 2], r"auto_pad SAME_UPPER with dilations"),
    ({"auto_pad": "SAME_LOWER", "dilations": [1, 3], "strides": [2, 3]}, [2, 6, 9, 8], [6, 6, 3, 2],
     r"auto_pad SAME_LOWER with dilations"),
    # "Input channels C is not equal to kernel channels * group"
    ({"group": 4}, [2, 6, 9, 8], [6, 2, 3, 3], r"input 'x' has 6 channels, not its weight 'w''s 2 per group times group 4"),
    ({}, [2, 6, 9, 8], [6, 3, 3, 3], r"6 channels, not its weight 'w''s 3 per group times group 1"),
    # "Output channels M is not divisible by group"
    ({"group": 2}, [2, 6, 9, 8], [5, 3, 3, 3], r"weight 'w' has 5 output channels, not divisible by group 2"),
    # "kernel_shape is not compatible with W shape"
    ({"kernel_shape": [2, 2]}, [2, 6, 9, 8], [6, 6, 3, 3], r"kernel_shape \[2, 2\] is not its weight's \[3, 3\]"),
    # "Invalid input shape: {2,2}": an input smaller than the (dilated) kernel, planned as a zero-sized output
    ({}, [2, 6, 2, 2], [6, 6, 3, 3], r"padded, 2 along dimension 2, smaller than its kernel's 3"),
    ({"dilations": [1, 3], "pads": [0, 1, 0, 1]}, [2, 6, 4, 4], [6, 6, 3, 3], r"padded, 6 along dimension 3, smaller "
     r"than its kernel's 7"),
    ({"auto_pad": "VALID", "pads": [1, 1, 1, 1]}, [2, 6, 2, 2], [6, 6, 3, 3], r"smaller than its kernel's 3"),
])
@pytest.mark.parametrize("op, domain", [("Conv", ""), ("FusedConv", MS)])
def test_conv_onnxruntime_refuses_is_refused(op, domain, attrs, x, w, why):
    need("onnxruntime")
    if op == "FusedConv":
        attrs = {**attrs, "activation": "Relu"}
    if attrs.get("auto_pad") == "VALID":
        attrs = {k: v for k, v in attrs.items() if k != "pads"}
    node = helper.make_node(op, ["x", "w"], ["y"], domain=domain, name="c", **attrs)
    g = helper.make_graph([node], "g", [V("x", T.FLOAT, x)], [V("y", T.FLOAT, None)],
                          initializer=[numpy_helper.from_array(np.ones(w, np.float32), "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], ir_version=8)
    with pytest.raises(GraphError, match=rf"node 'c' \({op}\): its .*{why}.*onnxruntime refuses to run it"):
        import_onnx(m)


@pytest.mark.parametrize("attrs, x, w, y", [
    # onnxruntime runs each: y of these shapes
    ({"group": 3, "auto_pad": "SAME_UPPER", "strides": [2, 3]}, [2, 6, 9, 8], [6, 2, 3, 2], [2, 6, 5, 3]),
    ({"dilations": [2, 1], "pads": [1, 0, 2, 1]}, [2, 6, 9, 8], [6, 6, 3, 2], [2, 6, 8, 8]),
    ({"auto_pad": "VALID"}, [2, 6, 3, 3], [6, 6, 3, 3], [2, 6, 1, 1]),
    ({"pads": [1, 1, 1, 1]}, [2, 6, 1, 1], [6, 6, 3, 3], [2, 6, 1, 1]),
])
def test_conv_onnxruntime_runs_is_planned(attrs, x, w, y):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs)
    g = helper.make_graph([node], "g", [V("x", T.FLOAT, x)], [V("y", T.FLOAT, None)],
                          initializer=[numpy_helper.from_array(np.ones(w, np.float32), "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert import_onnx(m).tensor("y").attrs["shape"] == y


# -- SVMs: onnxruntime's kernel takes exactly its support vectors' (or linear coefficients') feature count --------

_K = dict(kernel_type="LINEAR", kernel_params=[0.001, 0.0, 3.0], rho=[0.0])
_SVR = dict(_K, n_supports=2, support_vectors=[1.0] * 6, coefficients=[1.0, 1.0])
_SVR_LINEAR = dict(_K, n_supports=0, coefficients=[1.0] * 3)
_SVC = dict(_K, vectors_per_class=[1, 1], support_vectors=[1.0] * 6, coefficients=[1.0, 1.0], classlabels_ints=[0, 1])
_SVC_LINEAR = dict(_K, coefficients=[1.0] * 6, classlabels_ints=[0, 1], rho=[0.0, 0.0])


def _svm(op, shape, attrs):
    outs = ["Y"] if op == "SVMRegressor" else ["L", "Y"]
    decl = {"L": [shape[0] if len(shape) == 2 else 1], "Y": [shape[0] if len(shape) == 2 else 1, 2]}
    node = helper.make_node(op, ["X"], outs, domain="ai.onnx.ml", name="n", **attrs)
    g = helper.make_graph([node], "g", [V("X", T.FLOAT, shape)],
                          [V(o, T.INT64 if o == "L" else T.FLOAT, decl[o] if op == "SVMClassifier" else None)
                           for o in outs])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
                             ir_version=8)


@pytest.mark.parametrize("op, attrs, whence", [("SVMRegressor", _SVR, "its 2 support vectors have"),
                                               ("SVMRegressor", _SVR_LINEAR, r"its coefficients \(a linear SVM\) take"),
                                               ("SVMClassifier", _SVC, "its 2 support vectors have"),
                                               ("SVMClassifier", _SVC_LINEAR, r"its coefficients \(a linear SVM\) take")])
@pytest.mark.parametrize("shape", [[2, 2], [2, 4], [4]])
def test_svm_of_another_feature_count_is_refused(op, attrs, whence, shape):
    # onnxruntime: "Invalid input for SVMRegressor: expected feature_count=3, actual num_features=4" when run
    with pytest.raises(GraphError, match=rf"node 'n' \({op}\): {whence} 3 features, but its input 'X' .* has "
                                         rf"{shape[-1]}; onnxruntime refuses"):
        import_onnx(_svm(op, shape, attrs))


@pytest.mark.parametrize("op, attrs", [("SVMRegressor", _SVR), ("SVMRegressor", _SVR_LINEAR), ("SVMClassifier", _SVC),
                                       ("SVMClassifier", _SVC_LINEAR)])
@pytest.mark.parametrize("shape", [[2, 3], [3]])
def test_svm_of_its_feature_count_is_planned(op, attrs, shape):
    # onnxruntime runs each: Y [N, 1] (regressor) or [N, 2] (classifier)
    y = import_onnx(_svm(op, shape, attrs)).tensor("Y").attrs["shape"]
    assert y == [shape[0] if len(shape) == 2 else 1, 1 if op == "SVMRegressor" else 2]


# -- domains: com.microsoft exists at opset 1 alone; a local function's domain must be imported to be called ------

def _gelu_model(imports, funcs=(), node=None):
    node = node or helper.make_node("Gelu", ["X"], ["Y"], domain=MS, name="gg")
    g = helper.make_graph([node], "g", [V("X", T.FLOAT, [2, 3])], [V("Y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in imports], functions=list(funcs),
                             ir_version=10)


@pytest.mark.parametrize("version", [0, 2])
def test_com_microsoft_at_another_opset_is_refused(version):
    # onnxruntime: "Current official support for domain com.microsoft is till opset 1" (2); "com.microsoft:Gelu(-1)
    # is not a registered function/op" (0); both were sized by its opset-1 rules
    # (opset 2 is refused by round 52's load-time check, past onnxruntime's newest opset of the domain)
    msg = r"defines only opset 1" if version == 0 else r"supports opsets up to 1 of it and refuses to load the model"
    with pytest.raises(GraphError, match=rf"the model imports domain 'com.microsoft' at opset {version}; onnxruntime "
                                         + msg):
        import_onnx(_gelu_model([("", 17), (MS, version)]))
    fn = helper.make_function("local", "F", ["x"], ["y"], [helper.make_node("Gelu", ["x"], ["y"], domain=MS)],
                              [helper.make_opsetid("", 17), helper.make_opsetid(MS, version)])
    with pytest.raises(GraphError, match=rf"local function local:F imports domain 'com.microsoft' at opset {version}"):
        import_onnx(_gelu_model([("", 17), ("local", 1)], [fn], helper.make_node("F", ["X"], ["Y"], domain="local")))


def test_call_of_a_local_function_whose_domain_the_model_does_not_import_is_refused():
    # onnxruntime: "No opset import for domain 'local'"; inlined, it was planned
    fn = helper.make_function("local", "F", ["x"], ["y"], [helper.make_node("Relu", ["x"], ["y"])],
                              [helper.make_opsetid("", 17)])
    call = helper.make_node("F", ["X"], ["Y"], domain="local", name="call")
    with pytest.raises(GraphError, match=r"node 'call' \(local:F\) calls a model-local function of domain 'local', "
                                         r"which the model does not import"):
        import_onnx(_gelu_model([("", 17)], [fn], call))
    assert import_onnx(_gelu_model([("", 17), ("local", 1)], [fn], call)).tensor("Y").attrs["shape"] == [2, 3]
