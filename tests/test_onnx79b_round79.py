"""ONNX importer, round 79 (second sweep): folded values that size a later tensor, against onnxruntime.

Why: a value the importer folds at import (``Shape`` -> arithmetic -> ``ConstantOfShape`` / ``Reshape`` / ``Range``)
sizes what follows; where the fold fails, the model onnxruntime runs is refused as unknown, and where it folds
another value than onnxruntime computes, the plan is wrong. Probes of each arithmetic op feeding a
``ConstantOfShape`` against onnxruntime's CPU provider (``tests/onnx_oracle.py``) found:

* a Mean whose first input is smaller than the broadcast result (``Mean([1, 3], [[3], [5]])``) was never folded:
  onnx's evaluator adds into a copy of the first input in place and raised, so the ConstantOfShape it sized was
  refused where onnxruntime writes 288 bytes.
"""

from __future__ import annotations

import numpy as np
from needs import need

need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import ort_sizes  # noqa: E402

from memplan.importers.onnx import import_onnx  # noqa: E402


def _sized_by(op: str, inputs: list, opset: int = 21):
    """A model whose ``ConstantOfShape`` output 'z' is sized by ``op`` of the constant ``inputs``, cast to int64."""
    inits = [numpy_helper.from_array(np.asarray(a), f"c{i}") for i, a in enumerate(inputs)]
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "flat"))
    nodes = [helper.make_node(op, [f"c{i}" for i in range(len(inputs))], ["y"]),
             helper.make_node("Cast", ["y"], ["yi"], to=T.INT64),
             helper.make_node("Reshape", ["yi", "flat"], ["yf"]),
             helper.make_node("ConstantOfShape", ["yf"], ["z"])]
    g = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("z", T.FLOAT, None)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def _planned(model) -> dict[str, int]:
    return {t.id: t.size for t in import_onnx(model).tensors if t.kind != "input"}


def test_mean_broadcast_past_its_first_input_is_folded_at_onnxruntimes_size():
    f32 = np.float32
    m = _sized_by("Mean", [np.array([1, 3], f32), np.array([[3], [5]], f32)])   # [[2, 3], [3, 4]]: 72 floats
    assert ort_sizes(m, {}, strict=True)["z"] == 288
    assert _planned(m)["z"] == 288


def test_mean_of_three_broadcast_inputs_in_float16_matches_onnxruntime():
    f16 = np.float16
    m = _sized_by("Mean", [np.array(1, f16), np.array([2, 4], f16), np.array([[3], [6]], f16)])
    assert _planned(m)["z"] == ort_sizes(m, {}, strict=True)["z"]
