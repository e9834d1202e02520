"""Large ``Constant`` nodes stay out of the copy the ONNX importer gives shape inference (typed by their dims, as
large initializers are): the import's memory no longer holds several copies of constant weights, and the
imported graph is the same as when the constants were copied in."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_patch import patch_importer  # noqa: E402

import memplan.importers.onnx as mo  # noqa: E402
from memplan.importers.onnx import infer  # noqa: E402


def _model(n_big: int = 3):
    """Constant weights of 512 x 512 floats (a MatMul chain), one also read by Shape -> Reshape, and a small
    Constant shape tensor."""
    nodes, prev = [], "x"
    for i in range(n_big):
        w = numpy_helper.from_array(np.full((512, 512), i, np.float32), f"w{i}")
        nodes.append(helper.make_node("Constant", [], [f"w{i}"], value=w))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Shape", ["w0"], ["s"], start=1))   # [512]
    nodes.append(helper.make_node("Constant", [], ["neg"], value=numpy_helper.from_array(np.array([-1], np.int64))))
    nodes.append(helper.make_node("Concat", ["neg", "s"], ["shape"], axis=0))
    nodes.append(helper.make_node("Reshape", [prev, "shape"], ["y"]))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [4, 512])],
                          [helper.make_tensor_value_info("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_only_large_constants_are_stood_in_for():
    model = _model()
    stood = infer._large_constants(onnx, model.graph)
    names = sorted(vi.name for vi in stood.values())
    assert names == ["w0", "w1", "w2"]   # 262144 elements each; not the 1-element shape constant
    assert all(model.graph.node[k].op_type == "Constant" for k in stood)


@pytest.mark.parametrize("batch", [None, 3])
def test_the_graph_is_the_same_as_with_the_constants_copied_in(monkeypatch, batch):
    model = _model()
    if batch is not None:   # a symbolic batch: the stand-ins are no graph inputs --batch applies to
        model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    patch_importer(monkeypatch, "LARGE_CONSTANT", 1 << 12)
    stood = mo.import_onnx(model, batch=batch).to_dict()
    patch_importer(monkeypatch, "LARGE_CONSTANT", 1 << 40)
    copied = mo.import_onnx(model, batch=batch).to_dict()
    assert stood == copied
    assert {t["id"]: t["size"] for t in stood["tensors"]}["y"] == (batch or 4) * 512 * 4
