"""Round 76 (dynamo76): patterns torch's dynamo ONNX exporter (``torch.onnx.export(..., dynamo=True)``) writes that
TorchScript exports never did, each built by hand with ``onnx.helper`` so the tests run without onnxscript.

Why: the dynamo exporter is torch's default since 2.9, and a valid model it writes must be planned (at no fewer bytes
than onnxruntime allocates), never refused."""

from __future__ import annotations

import pytest
from needs import need

need("onnx")
from onnx import TensorProto, helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402


def _resize_aa(antialias: int | None, mode: str = "linear"):
    """``F.interpolate(x, scale_factor=2, mode="bilinear", antialias=True)`` as the dynamo exporter writes it: a
    Resize (opset 18) of mode linear with ``antialias=1`` *and* ``exclude_outside=1``, sized by its ``sizes`` input."""
    attrs = {"mode": mode, "exclude_outside": 1, "coordinate_transformation_mode": "half_pixel",
             "keep_aspect_ratio_policy": "stretch", "cubic_coeff_a": -0.75, "nearest_mode": "floor",
             "extrapolation_value": 0.0}
    if antialias is not None:
        attrs["antialias"] = antialias
    n = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="rs", **attrs)
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 16, 16])],
                          [helper.make_tensor("sizes", TensorProto.INT64, [4], [2, 4, 16, 16])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def test_antialiased_linear_resize_with_exclude_outside_is_planned():
    """onnxruntime 1.32 loads and runs it ("exclude_outside can be set to 1 when (1) mode is CUBIC, or (2) mode is
    LINEAR when anti-aliasing is enabled"); the importer refused every non-cubic exclude_outside."""
    g = import_onnx(_resize_aa(1))
    assert {t.id: t.size for t in g.tensors}["y"] == 2 * 4 * 16 * 16 * 4


@pytest.mark.parametrize("antialias, mode", [(None, "linear"), (0, "linear"), (0, "nearest")])
def test_exclude_outside_without_antialias_still_refused(antialias, mode):
    with pytest.raises(GraphError, match=rf"node 'rs' \(Resize\): its exclude_outside 1 .* not '{mode}'"):
        import_onnx(_resize_aa(antialias, mode))
