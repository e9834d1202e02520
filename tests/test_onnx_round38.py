"""ONNX importer, round 38: onnxruntime's own ops whose output size follows run-time values.

The standard ops whose output shape follows an input's values (``SHAPE_INPUTS``: a Reshape's shape, a Range's
limit...) or the data itself (NonZero, Unique...) were refused where those values come from a graph input, but
onnxruntime's ``com.microsoft`` ops were not looked at (Unique aside): a CropAndResize whose ``crop_size``, a Pad
whose ``pads``, a Range whose limit is computed from a graph input, and a DynamicTimeWarping (its path length is
the costs'), were planned at the size the model declares, a traced example's, and onnxruntime then wrote more
than that into the slot (CropAndResize: 600 bytes into 384). They are now refused naming the node and value, as
the standard ops are; the same ops on constants are planned as before, at onnxruntime's sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402
from onnx_oracle import ort_sizes, size_mismatches  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
F = T.FLOAT
ROIS = np.array([[0, 0, 0.5, 0.5], [0.1, 0.1, 0.9, 0.9]], np.float32)


def _ms(op: str, names: list[str], inputs, inits=(), elem: int = F, declared=None, attrs=None):
    """A model of one ``com.microsoft`` node ``op`` (output ``y``, declared ``declared`` where given) and an
    Identity of it (``z``, the graph output)."""
    nodes = [helper.make_node(op, names, ["y"], domain="com.microsoft", **(attrs or {})),
             helper.make_node("Identity", ["y"], ["z"])]
    vi = [V("y", elem, declared)] if declared is not None else []
    g = helper.make_graph(nodes, "g", inputs, [V("z", elem, None)], list(inits), value_info=vi)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def _crop(crop_from_input: bool, declared=None):
    inputs = [V("x", F, [1, 3, 8, 8]), V("rois", F, [2, 4]), V("bi", T.INT32, [2])]
    inits = []
    if crop_from_input:
        inputs.append(V("cs", T.INT32, [2]))
    else:
        inits.append(nh.from_array(np.array([5, 5], np.int32), "cs"))
    feeds = {"x": np.ones((1, 3, 8, 8), np.float32), "rois": ROIS, "bi": np.zeros(2, np.int32)}
    if crop_from_input:
        feeds["cs"] = np.array([5, 5], np.int32)
    return _ms("CropAndResize", ["x", "rois", "bi", "cs"], inputs, inits, declared=declared), feeds


def test_crop_and_resize_of_a_run_time_crop_size_is_refused_not_planned_as_declared():
    model, feeds = _crop(True, declared=[2, 3, 4, 4])
    real = ort_sizes(model, feeds, strict=True)
    assert real["y"] == 2 * 3 * 5 * 5 * 4   # what onnxruntime writes: more than the declared 384 bytes
    with pytest.raises(GraphError, match=r"CropAndResize.*'y'.*run time"):
        import_onnx(model)


def test_crop_and_resize_of_a_constant_crop_size_is_planned_as_onnxruntime_writes():
    model, feeds = _crop(False)
    g = import_onnx(model)
    compared, bad = size_mismatches(g, ort_sizes(model, feeds, strict=True))
    assert compared == 2 and not bad, bad
    memplan.verify(g, memplan.plan(g))


def test_ort_pad_of_run_time_pads_is_refused():
    model = _ms("Pad", ["x", "p"], [V("x", F, [2, 3]), V("p", T.INT64, [4])], declared=[2, 3])
    feeds = {"x": np.ones((2, 3), np.float32), "p": np.array([1, 1, 1, 1], np.int64)}
    assert ort_sizes(model, feeds, strict=True)["y"] == 80   # declared 24
    with pytest.raises(GraphError, match=r"Pad_0.*'y'.*run time"):
        import_onnx(model)


def test_ort_pad_of_constant_pads_still_planned():
    model = _ms("Pad", ["x", "p"], [V("x", F, [2, 3])], [nh.from_array(np.array([1, 1, 1, 1], np.int64), "p")])
    g = import_onnx(model)
    compared, bad = size_mismatches(g, ort_sizes(model, {"x": np.ones((2, 3), np.float32)}, strict=True))
    assert compared == 2 and not bad, bad


def test_ort_range_of_a_limit_computed_from_an_input_is_refused():
    """The limit comes from an input through another node (Abs): the mark is carried, not only the direct input."""
    nodes = [helper.make_node("Abs", ["b"], ["lim"]),
             helper.make_node("Range", ["a", "lim"], ["y"], domain="com.microsoft"),
             helper.make_node("Identity", ["y"], ["z"])]
    g = helper.make_graph(nodes, "g", [V("a", T.INT64, []), V("b", T.INT64, [])], [V("z", T.INT64, None)],
                          value_info=[V("y", T.INT64, [4]), V("lim", T.INT64, [])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=8)
    feeds = {"a": np.array(0, np.int64), "b": np.array(9, np.int64)}
    assert ort_sizes(model, feeds, strict=True)["y"] == 72   # declared 32
    with pytest.raises(GraphError, match=r"Range_1.*'y'.*run time"):
        import_onnx(model)


def test_dynamic_time_warping_path_is_data_dependent():
    """Its path's length is decided by the costs (``max(M, N) <= x < M + N``): no declaration of it is planned."""
    model = _ms("DynamicTimeWarping", ["x"], [V("x", F, [1, 4, 5])], elem=T.INT32, declared=[2, 3])
    feeds = {"x": np.random.default_rng(0).random((1, 4, 5)).astype(np.float32)}
    assert ort_sizes(model, feeds, strict=True)["y"] > 2 * 3 * 4   # longer than declared
    with pytest.raises(GraphError, match=r"DynamicTimeWarping.*'y'.*run time"):
        import_onnx(model)
