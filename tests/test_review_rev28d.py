"""Review rev28d: onnxruntime's TransposeMatMul / FusedMatMul of a 1-D input with its ``trans`` flag set. The kernel
ignores the flag (a vector has no axes to swap); memplan's rule refused the model as unsized. Every size asserted is
what onnxruntime 1.32 (CPU) writes for the same model, run here."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

from memplan.importers.onnx import import_onnx  # noqa: E402


def _model(op, a, b, **attrs):
    node = helper.make_node(op, ["A", "B"], ["Y"], domain="com.microsoft", name="n", **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", T.FLOAT, a),
                                        helper.make_tensor_value_info("B", T.FLOAT, b)],
                          [onnx.ValueInfoProto(name="Y")])   # (no declaration: memplan's rule alone sizes it)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


@pytest.mark.parametrize("op", ["TransposeMatMul", "FusedMatMul"])
@pytest.mark.parametrize(("a", "b", "attrs", "shape"), [
    ([1, 4, 1], [4], {"transA": 1, "transB": 1}, [1, 1]),
    ([3, 4], [4], {"transB": 1}, [3]),
    ([2], [3, 1, 2, 1], {"transA": 1}, [3, 1, 1]),
    ([4], [4], {"transA": 1, "transB": 1}, []),
])
def test_a_vector_with_its_trans_flag_is_sized_as_the_kernel_writes(op, a, b, attrs, shape):
    # refused before: "value 'Y' has no type or shape" (the rule gave none for a 1-D input with trans set)
    need("onnxruntime")
    import onnxruntime as ort

    model = _model(op, a, b, **attrs)
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = s.run(None, {"A": np.ones(a, np.float32), "B": np.ones(b, np.float32)})
    assert list(y.shape) == shape
    planned = {t.id: (t.attrs.get("shape"), t.size) for t in import_onnx(model).tensors}
    assert planned["Y"] == (shape, y.nbytes)
