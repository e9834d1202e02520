"""Review of round 54's rules for onnxruntime's GPU-only ops: DequantizeWithOrder's ``to`` is float (1) or float16
(10) alone (its schema: "only support TensorProto_DataType_FLOAT (1) and TensorProto_DataType_FLOAT16"); its rule
also took int8 (3), so a ``to=3`` node onnxruntime refuses to load was planned at one byte an element (128 bytes for
``[4, 32]``). Now its rule sizes nothing there: the node is refused by name, as for any ``to`` it does not know."""

from __future__ import annotations

import pytest
from needs import need

need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from test_onnx_round54 import _model, _sizes  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

_INPUTS = [("x", T.INT8, [4, 32]), ("s", T.FLOAT, [])]


@pytest.mark.parametrize("to", [T.INT8, T.DOUBLE])
def test_dequantize_with_order_to_a_type_its_schema_refuses_is_refused_by_name(to):
    m = _model("DequantizeWithOrder", _INPUTS, 1, {"y0": (to, [4, 32])}, to=to, order_input=1, order_output=1)
    with pytest.raises(GraphError, match=r"node 'n' \(com.microsoft:DequantizeWithOrder\).*cannot size its output"):
        import_onnx(m)


@pytest.mark.parametrize("to,size", [(T.FLOAT, 512), (T.FLOAT16, 256)])
def test_dequantize_with_order_to_float_or_float16_is_sized(to, size):
    assert _sizes(_model("DequantizeWithOrder", _INPUTS, 1, to=to, order_input=1, order_output=1)) == {"y0": size}
