"""ONNX importer, round 28 leftovers: SVMClassifier's outputs sized by its kernel's rule, ``ai.onnx.ml`` outputs
declared other than onnxruntime writes them, linear and SVM regressors of a type onnxruntime has no kernel for,
FusedConv / FusedGemm attributes ONNX's inference of the fused op refuses, MultiHeadAttention's ``qk`` declared
of a type no kernel writes, and onnxruntime's elementwise and MatMul-like ops its inference leaves to the
model's declaration. Every size asserted is what onnxruntime 1.32 (CPU) writes for the same model (run here
where onnxruntime is installed); every refusal is one onnxruntime gives too."""

from __future__ import annotations

import re

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
MS, ML = "com.microsoft", "ai.onnx.ml"


def _model(op, domain, ins, outs, inits=(), inputs=None, **attrs):
    """A one-node model: ``ins`` / ``outs`` are (name, elem, shape or None), ``inits`` (name, array)."""
    names = inputs if inputs is not None else [v for v, _, _ in ins] + [v for v, _ in inits]
    node = helper.make_node(op, names, [o for o, _, _ in outs], domain=domain, name="n", **attrs)
    g = helper.make_graph([node], "g", [V(*i) for i in ins], [V(*o) for o in outs],
                          [numpy_helper.from_array(a, v) for v, a in inits])
    imports = [helper.make_opsetid("", 17), helper.make_opsetid(domain, 3 if domain == ML else 1)]
    return helper.make_model(g, opset_imports=imports, ir_version=8)


def _planned(model) -> dict[str, tuple[list, int]]:
    return {t.id: (t.attrs.get("shape"), t.size) for t in import_onnx(model).tensors}


def _ort_run(model, ins) -> list[tuple[list, int]] | None:
    """(shape, bytes) of each output as onnxruntime's CPU kernels write them; None where it is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {v: np.ones(shape, helper.tensor_dtype_to_np_dtype(e)) for v, e, shape in ins}
    return [(list(r.shape), r.nbytes) for r in s.run(None, feeds)]


# -- SVMClassifier: labels [N], scores [N, classes] or one per pair of classes ------------------------------------

_SVC = {"kernel_type": "LINEAR", "kernel_params": [0.001, 0.0, 3.0]}


def _svc(shape, **attrs):
    return _model("SVMClassifier", ML, [("X", T.FLOAT, shape)], [("L", T.INT64, None), ("Y", T.FLOAT, None)],
                  **_SVC, **attrs)


@pytest.mark.parametrize("attrs, width", [
    # linear (no support vectors): one score per class, whatever post_transform
    ({"classlabels_ints": [0, 1, 2], "coefficients": [1.0] * 9, "rho": [0.0] * 3}, 3),
    ({"classlabels_ints": [7], "coefficients": [1.0] * 3, "rho": [0.0]}, 1),
    ({"classlabels_ints": [0, 1], "coefficients": [1.0] * 6, "rho": [0.0] * 2, "post_transform": "SOFTMAX"}, 2),
    # support vectors, no probabilities: one score per pair of classes (two for two classes)
    ({"classlabels_ints": [0, 1, 2, 3], "vectors_per_class": [1] * 4, "support_vectors": [1.0] * 12,
      "coefficients": [1.0] * 12, "rho": [0.0] * 6}, 6),
    ({"classlabels_ints": [0, 1], "vectors_per_class": [1, 1], "support_vectors": [1.0] * 6,
      "coefficients": [1.0] * 2, "rho": [0.0]}, 2),
    # with probabilities: one per class
    ({"classlabels_ints": [0, 1, 2, 3], "vectors_per_class": [1] * 4, "support_vectors": [1.0] * 12,
      "coefficients": [1.0] * 12, "rho": [0.0] * 6, "prob_a": [1.0] * 6, "prob_b": [0.0] * 6}, 4),
    ({"classlabels_ints": [0, 1, 2], "vectors_per_class": [1] * 3, "support_vectors": [1.0] * 9,
      "coefficients": [1.0] * 6, "rho": [0.0] * 3, "post_transform": "SOFTMAX"}, 3),
])
@pytest.mark.parametrize("shape", [[2, 3], [3]])
def test_svm_classifier_outputs_are_sized_as_onnxruntime_writes_them(attrs, width, shape):
    # was "value 'L' has no shape: shape inference could not find its rank"
    model = _svc(shape, **attrs)
    rows = shape[0] if len(shape) == 2 else 1
    expect = {"L": ([rows], 8 * rows), "Y": ([rows, width], 4 * rows * width)}
    sizes = _planned(model)
    assert {k: sizes[k] for k in expect} == expect
    real = _ort_run(model, [("X", T.FLOAT, shape)])
    assert real is None or real == [expect["L"], expect["Y"]]


@pytest.mark.parametrize("attrs, why", [
    ({"coefficients": [1.0] * 3, "rho": [0.0]}, r"it has no class labels \(classlabels_ints or classlabels_strings\)"),
    ({"classlabels_ints": [0, 1, 2], "vectors_per_class": [1, 1], "support_vectors": [1.0] * 6,
      "coefficients": [1.0] * 4, "rho": [0.0] * 3}, r"its vectors_per_class has 2 entries, not one per class \(3\)"),
    ({"classlabels_ints": [0, 1], "coefficients": [1.0] * 6, "rho": [0.0], "prob_a": [1.0]},
     r"its prob_a has 1 entries and its prob_b 0"),
])
def test_svm_classifier_onnxruntime_refuses_is_refused(attrs, why):
    with pytest.raises(GraphError, match=rf"node 'n' \(SVMClassifier\): {why}; onnxruntime refuses"):
        import_onnx(_svc([2, 3], **attrs))


# -- ai.onnx.ml outputs declared other than the kernel writes them ---------------------------------------------

@pytest.mark.parametrize("op, attrs, declared, real", [
    ("LinearRegressor", {"coefficients": [1.0] * 6, "targets": 2}, [2, 1], [2, 2]),
    ("Normalizer", {}, [2, 2], [2, 3]),
    ("Scaler", {"scale": [1.0], "offset": [0.0]}, [2, 2], [2, 3]),
    ("SVMRegressor", {**_SVC, "n_supports": 2, "support_vectors": [1.0] * 6, "coefficients": [1.0] * 2,
                      "rho": [0.0]}, [2, 2], [2, 1]),
])
def test_ml_output_declared_other_than_written_is_refused(op, attrs, declared, real):
    # planned as declared: the LinearRegressor's [2, 1] was 8 bytes, onnxruntime writes 16
    model = _model(op, ML, [("X", T.FLOAT, [2, 3])], [("Y", T.FLOAT, declared)], **attrs)
    with pytest.raises(GraphError, match=rf"node 'n' \({op}\): value 'Y' is declared {re.escape(str(declared))}, but "
                                         rf"onnxruntime's {op} writes it {re.escape(str(real))}"):
        import_onnx(model)
    undeclared = _model(op, ML, [("X", T.FLOAT, [2, 3])], [("Y", T.FLOAT, None)], **attrs)
    assert _planned(undeclared)["Y"][0] == real
    assert _ort_run(undeclared, [("X", T.FLOAT, [2, 3])]) in (None, [(real, 4 * real[0] * real[1])])


def test_svm_classifier_scores_declared_per_class_where_written_per_pair_is_refused():
    model = _model("SVMClassifier", ML, [("X", T.FLOAT, [2, 3])], [("L", T.INT64, [2]), ("Y", T.FLOAT, [2, 4])],
                   **_SVC, classlabels_ints=[0, 1, 2, 3], vectors_per_class=[1] * 4, support_vectors=[1.0] * 12,
                   coefficients=[1.0] * 12, rho=[0.0] * 6)
    with pytest.raises(GraphError, match=r"value 'Y' is declared \[2, 4\], but onnxruntime's SVMClassifier writes it "
                                         r"\[2, 6\]"):
        import_onnx(model)


# -- regressors onnxruntime runs on float only; LinearRegressor's targets -----------------------------------------

@pytest.mark.parametrize("op, attrs", [
    ("LinearRegressor", {"coefficients": [1.0] * 6, "targets": 2}),
    ("SVMRegressor", {**_SVC, "n_supports": 2, "support_vectors": [1.0] * 6, "coefficients": [1.0] * 2,
                      "rho": [0.0]}),
])
@pytest.mark.parametrize("elem, name", [(T.INT64, "int64"), (T.INT32, "int32"), (T.DOUBLE, "double")])
def test_regressor_of_a_type_onnxruntime_has_no_kernel_for_is_refused(op, attrs, elem, name):
    # planned; onnxruntime: "Could not find an implementation for LinearRegressor(1) node with name 'n'"
    with pytest.raises(GraphError, match=rf"node 'n' \({op}\): its input 'X' is {name}, but onnxruntime runs {op} on "
                                         "float only"):
        import_onnx(_model(op, ML, [("X", elem, [2, 3])], [("Y", T.FLOAT, None)], **attrs))


@pytest.mark.parametrize("targets", [0, -1])
def test_linear_regressor_of_no_targets_is_refused_naming_the_attribute(targets):
    # was "value 'Y' has no shape: shape inference could not find its rank"
    with pytest.raises(GraphError, match=rf"node 'n' \(LinearRegressor\): its attribute targets is {targets}, but it "
                                         "must be at least 1"):
        import_onnx(_model("LinearRegressor", ML, [("X", T.FLOAT, [2, 3])], [("Y", T.FLOAT, None)],
                           coefficients=[1.0] * 6, targets=targets))


# -- FusedConv / FusedGemm: ONNX's inference of the op they fuse -------------------------------------------------

@pytest.mark.parametrize("attrs, declared, why", [
    ({"pads": [1, 1]}, None, "Attribute pads has incorrect size"),
    ({"pads": [1, 1]}, [1, 3, 5, 5], "Attribute pads has incorrect size"),   # (was planned)
    ({"strides": [1]}, None, "Attribute strides has incorrect size"),
    ({"dilations": [0, 1]}, None, "Attribute dilations must only contain positive values"),
    ({"pads": [-1, 0, 0, 0]}, None, "Attribute pads must not contain negative values"),
])
def test_fused_conv_attributes_conv_refuses_are_refused_naming_the_node(attrs, declared, why):
    # was "value 'Y' has no shape: ... neither onnx's nor onnxruntime's shape inference could size here"
    need("onnxruntime")
    model = _model("FusedConv", MS, [("X", T.FLOAT, [1, 2, 5, 5])], [("Y", T.FLOAT, declared)],
                   [("W", np.ones((3, 2, 3, 3), np.float32))], activation="Relu", **attrs)
    with pytest.raises(GraphError, match=rf"node 'n' \(FusedConv\): ONNX's inference of the Conv it fuses refuses it: "
                                         rf".*{why}"):
        import_onnx(model)


def test_fused_gemm_of_mismatched_inner_dimension_is_refused():
    # declared [2, 4], it was planned; onnxruntime: "GEMM: Dimension mismatch, W: {4,4} K: 3 N:4"
    need("onnxruntime")
    model = _model("FusedGemm", MS, [("X", T.FLOAT, [2, 3])], [("Y", T.FLOAT, [2, 4])],
                   [("W", np.ones((4, 4), np.float32))], activation="Relu")
    with pytest.raises(GraphError, match=r"node 'n' \(FusedGemm\): ONNX's inference of the Gemm it fuses refuses"):
        import_onnx(model)


# -- MultiHeadAttention's qk: float or float16 only --------------------------------------------------------------

def _mha(elem, qk_elem):
    ins = [(v, elem, [1, 4, 8]) for v in ("Q", "K", "Vv")]
    model = _model("MultiHeadAttention", MS, ins, [("Y", elem, None), ("QK", qk_elem, None)],
                   inputs=["Q", "K", "Vv"], num_heads=2)
    model.graph.node[0].output[:] = ["Y", "", "", "QK"]   # (no present key / value)
    return model


@pytest.mark.parametrize("elem, qk_elem, qk_bytes", [
    (T.FLOAT, T.FLOAT, 128), (T.FLOAT16, T.FLOAT, 128), (T.FLOAT16, T.FLOAT16, 64),
    (T.FLOAT, T.FLOAT16, 64),   # CUDA's kernel (float, float16) writes it; onnxruntime's CPU refuses it
])
def test_mha_qk_of_a_type_a_kernel_writes_is_planned(elem, qk_elem, qk_bytes):
    need("onnxruntime")
    model = _mha(elem, qk_elem)
    assert _planned(model)["QK"] == ([1, 2, 4, 4], qk_bytes)


@pytest.mark.parametrize("elem, name", [(T.FLOAT, "float"), (T.FLOAT16, "float16")])
def test_mha_qk_declared_bfloat16_is_refused(elem, name):
    # planned (as bfloat16); onnxruntime: "Tensor type mismatch", and no provider registers a bfloat16 QK
    need("onnxruntime")
    model = _mha(elem, T.BFLOAT16)
    with pytest.raises(GraphError, match=rf"node 'n' \(com.microsoft:MultiHeadAttention\): value 'QK' is declared "
                                         rf"bfloat16, but onnxruntime's MultiHeadAttention kernels write it only as "
                                         rf"float or float16 .*for an input of {name}\)"):
        import_onnx(model)


# -- onnxruntime ops its inference leaves to the declaration --------------------------------------------------------

_U8 = [("xs", np.array(0.1, np.float32)), ("xz", np.array(0, np.uint8)), ("ys", np.array(0.1, np.float32)),
       ("yz", np.array(0, np.uint8))]
_ORT_OPS = [
    ("QLinearSigmoid", [("X", T.UINT8, [2, 3, 4])], _U8, {}, [2, 3, 4], 24),
    ("QLinearLeakyRelu", [("X", T.UINT8, [2, 3, 4])], _U8, {}, [2, 3, 4], 24),
    ("QLinearSoftmax", [("X", T.UINT8, [2, 3, 4])], _U8, {"opset": 13, "axis": 1}, [2, 3, 4], 24),
    ("Inverse", [("X", T.FLOAT, [2, 3, 3])], [], {}, [2, 3, 3], 72),
    ("Trilu", [("X", T.FLOAT, [2, 3, 4])], [], {}, [2, 3, 4], 96),
    ("TransposeMatMul", [("A", T.FLOAT, [2, 3, 4]), ("B", T.FLOAT, [2, 3, 5])], [], {"transA": 1}, [2, 4, 5], 160),
    ("DynamicQuantizeMatMul", [("A", T.FLOAT, [3, 4])], [("B", np.ones((2, 4, 5), np.uint8)),
                                                         ("bs", np.array(0.1, np.float32)),
                                                         ("bz", np.array(0, np.uint8))], {}, [2, 3, 5], 120),
    ("MatMulIntegerToFloat", [("A", T.UINT8, [2, 3, 4])], [("B", np.ones((4, 5), np.uint8)),
                                                           ("as", np.array(0.1, np.float32)),
                                                           ("bs", np.array(0.1, np.float32))], {}, [2, 3, 5], 120),
    ("CDist", [("A", T.FLOAT, [4, 3]), ("B", T.FLOAT, [5, 3])], [], {}, [4, 5], 80),
    ("ExpandDims", [("X", T.FLOAT, [2, 3])], [("ax", np.array(-3, np.int32))], {}, [1, 2, 3], 24),
]


@pytest.mark.parametrize("op, ins, inits, attrs, shape, nbytes", _ORT_OPS, ids=[c[0] for c in _ORT_OPS])
def test_onnxruntime_op_is_sized_whatever_its_declaration_says(op, ins, inits, attrs, shape, nbytes):
    # unsized without a declaration, and a wrong one was planned as given (QLinearSigmoid declared [2, 3, 2]: 12
    # bytes where the kernel writes 24)
    need("onnxruntime")
    elem = T.FLOAT if op in ("DynamicQuantizeMatMul", "MatMulIntegerToFloat") else ins[0][1]
    model = _model(op, MS, ins, [("Y", elem, None)], inits, **attrs)
    assert _planned(model)["Y"] == (shape, nbytes)
    assert _ort_run(model, ins) == [(shape, nbytes)]
    # (round 50b: a declaration one short is not refused; onnxruntime runs it at the kernel's size, planned so)
    wrong = _model(op, MS, ins, [("Y", elem, shape[:-1] + [shape[-1] - 1])], inits, **attrs)
    assert _planned(wrong)["Y"] == (shape, nbytes)
    assert _ort_run(wrong, ins) == [(shape, nbytes)]
