"""Round 43 (fix43b): ONNX importer checks.

- A Unique along an axis whose length is not 0 while the dimensions after it multiply to 0 kills onnxruntime's
  process (SIGABRT); memplan planned it silently. It is refused, naming the node (onnxruntime is never run on it
  here: it would abort the test process).
"""
from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402


def _unique_model(shape: tuple[int, ...], axis: int | None, constant: bool):
    """A Unique (four outputs) of ``x`` of ``shape``, an initializer or a graph input, followed by a Relu."""
    n = helper.make_node("Unique", ["x"], ["y", "i", "v", "c"], **({} if axis is None else {"axis": axis}))
    nodes = [n, helper.make_node("Relu", ["y"], ["w"])]
    out = [helper.ValueInfoProto(name="w")]
    if constant:
        g = helper.make_graph(nodes, "g", [], out, [nh.from_array(np.zeros(shape, np.float32), "x")])
    else:
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, shape)], out)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("shape, axis", [((3, 0), 0), ((2, 0, 2), 0), ((2, 0, 2), -3), ((2, 3, 0), 1)])
@pytest.mark.parametrize("constant", [True, False])
def test_a_unique_onnxruntime_aborts_on_is_refused_naming_the_node(shape, axis, constant):
    """Before: the constant one was planned (y 0 bytes, indices 8, inverse 24...) and onnxruntime aborts on it."""
    with pytest.raises(GraphError, match=r"Unique_0.*onnxruntime cannot run it"):
        import_onnx(_unique_model(shape, axis, constant))


@pytest.mark.parametrize("shape, axis", [((3, 0), None), ((0, 3), 0), ((3, 0), 1), ((2, 0, 3), 2), ((0, 0), 0)])
def test_a_unique_of_an_empty_input_onnxruntime_runs_is_still_planned(shape, axis):
    sizes = {t.id: t.size for t in import_onnx(_unique_model(shape, axis, True)).tensors}
    assert sizes["y"] == sizes["w"] == 0
