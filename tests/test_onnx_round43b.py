"""ONNX importer, round 43b: differential hunts against what onnxruntime really writes.

- a Resize (18+) kept in aspect ratio to an empty dimension (``[1, 7, 2, 6]`` to ``sizes=[1, 1]`` over axes
  ``[2, 3]``, ``not_larger``) was refused (ONNX's inference leaves the 0 unknown); it is planned as onnxruntime
  writes it;

- random chains of shape ops (``test_onnx_round43._random_chain``) whose int64 parameters are computed from the
  input's shape (known only by folding), never planned smaller than onnxruntime writes;
- random Resizes (scales, sizes, sizes kept in aspect ratio over some axes, tf_crop_and_resize), likewise;
- ``_nonzero_unique`` (sizes) and ``_ort_unique`` (folded values) agree on a Unique of an empty input, along
  every axis, with what onnxruntime writes where it runs (it aborts on ``[2, 0]`` along axis 0: not run here).
"""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from needs import need

need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402
from memplan.importers.onnx.fold import _nonzero_unique, _ort_unique  # noqa: E402

V = helper.make_tensor_value_info


def _under(model, feeds) -> list:
    """The planned tensors smaller than onnxruntime writes them (a refusal is allowed: an empty list)."""
    from onnx_oracle import ort_sizes

    real = ort_sizes(model, feeds)
    if real is None:   # (a model onnxruntime refuses to run: a reflect Pad of a short axis, a Resize's sizes)
        return []
    try:
        graph = import_onnx(model)
    except GraphError:
        return []
    return [(t.id, t.size, real[t.id]) for t in graph.tensors if t.id in real and t.size < real[t.id]]


def _computed_parameters(model, seed: int):
    """``model`` with each int64 initializer ``c`` replaced by ``c + (sum(Shape(x)) - sum(Shape(x)))``: the same
    value, known only once the importer folds the shape computation."""
    r = random.Random(seed)
    g = model.graph
    names = [t.name for t in g.initializer if t.data_type == T.INT64 and r.random() < .7]
    pre = [helper.make_node("Shape", ["x"], ["_s"]), helper.make_node("ReduceSum", ["_s"], ["_a"], keepdims=0),
           helper.make_node("Sub", ["_a", "_a"], ["_z"])]
    for t in g.initializer:
        if t.name in names:
            t.name += "_c"
    pre += [helper.make_node("Add", [name + "_c", "_z"], [name]) for name in names]
    nodes = pre + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return model


@pytest.mark.parametrize("seed", range(100, 115))
def test_random_shape_op_chains_of_computed_parameters_are_never_planned_smaller(seed):
    need("onnxruntime")
    from test_onnx_round43 import _random_chain

    model, feeds = _random_chain(seed)
    assert not _under(_computed_parameters(model, seed), feeds)


def _random_resize(r: random.Random):
    """A model of one Resize (opset 19) of a random input, and its feeds."""
    rank = r.randint(1, 4)
    shape = [r.randint(1, 7) for _ in range(rank)]
    kind = r.choice(["scales", "sizes", "kept", "roi"])
    attrs: dict = {"mode": r.choice(["nearest", "linear"]) if rank <= 2 else "nearest"}
    if kind in ("scales", "roi"):
        scales = np.array([r.choice([1.0, 0.5, 1.5, 0.3333, 2.7, 0.9999, 1.0001]) for _ in shape], np.float32)
        inits = [nh.from_array(scales, "s")]
        ins = ["x", "", "s"]
        if kind == "roi":
            roi = [r.choice([0.0, 0.2]) for _ in shape] + [r.choice([1.0, 0.7]) for _ in shape]
            inits.append(nh.from_array(np.array(roi, np.float32), "roi"))
            ins[1] = "roi"
            attrs["coordinate_transformation_mode"] = "tf_crop_and_resize"
    else:
        axes = sorted(r.sample(range(rank), r.randint(1, rank))) if kind == "kept" or r.random() < .5 else None
        sizes = [r.randint(1, 9) for _ in (axes or shape)]
        inits, ins = [nh.from_array(np.array(sizes, np.int64), "z")], ["x", "", "", "z"]
        attrs.update({"axes": axes} if axes else {})
        attrs.update({"keep_aspect_ratio_policy": r.choice(["not_larger", "not_smaller"])} if kind == "kept" else {})
    g = helper.make_graph([helper.make_node("Resize", ins, ["y"], **attrs)], "g", [V("x", T.FLOAT, shape)],
                          [helper.ValueInfoProto(name="y")], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    return model, {"x": np.ones(shape, np.float32)}


@pytest.mark.parametrize("seed", range(4))
def test_random_resizes_are_never_planned_smaller_than_onnxruntime_writes(seed):
    need("onnxruntime")
    r = random.Random(seed)
    for _ in range(25):
        model, feeds = _random_resize(r)
        assert not _under(model, feeds), helper.printable_graph(model.graph)


@pytest.mark.parametrize("shape, axis, sizes", [
    ((0, 3), 0, [(0, 3), (0,), (0,), (0,)]),
    ((0, 3), 1, [(0, 1), (1,), (3,), (1,)]),
    ((2, 0), 1, [(2, 0), (0,), (0,), (0,)]),
    ((0,), None, [(0,), (0,), (0,), (0,)]),
    ((0,), 0, [(0,), (0,), (0,), (0,)]),
    ((2, 0, 3), 1, [(2, 0, 3), (0,), (0,), (0,)]),
    ((2, 0, 3), 2, [(2, 0, 1), (1,), (3,), (1,)]),
    ((0, 0), 0, [(0, 0), (0,), (0,), (0,)]),
])
def test_unique_of_an_empty_input_is_sized_and_folded_as_onnxruntime_writes_it(shape, axis, sizes):
    """(``sizes``: the shapes onnxruntime 1.x writes for Y, indices, inverse_indices, counts.)"""
    n = helper.make_node("Unique", ["x"], ["y", "i", "v", "c"], **({} if axis is None else {"axis": axis}))
    a = np.zeros(shape, np.float32)
    assert [_nonzero_unique(n, shape, 1, a)[o][0] for o in "yivc"] == sizes
    assert [x.shape for x in _ort_unique(n, a)] == sizes


@pytest.mark.parametrize("shape, sizes, axes, policy, out", [
    ([1, 7, 2, 6], [1, 1], [2, 3], "not_larger", [1, 7, 0, 1]),    # scale 1/6: round(2/6) = 0
    ([7, 1], [3, 3], [0, 1], "not_larger", [3, 0]),                 # scale 3/7: round(3/7) = 0
    ([7, 4, 1, 1], [1, 6, 5], [0, 1, 2], "not_larger", [1, 1, 0, 1]),
])
def test_a_resize_kept_in_aspect_ratio_to_an_empty_dimension_is_planned_as_onnxruntime_writes_it(
        shape, sizes, axes, policy, out):
    """ONNX's inference leaves the 0 it computes unknown: the model was refused as not derivable."""
    n = helper.make_node("Resize", ["x", "", "", "z"], ["y"], axes=axes, keep_aspect_ratio_policy=policy)
    g = helper.make_graph([n, helper.make_node("Relu", ["y"], ["w"])], "g", [V("x", T.FLOAT, shape)],
                          [helper.ValueInfoProto(name="w")], [nh.from_array(np.array(sizes, np.int64), "z")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    sizes_of = {t.id: t.size for t in import_onnx(model).tensors}
    assert sizes_of["y"] == sizes_of["w"] == 0
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    assert ort_sizes(model, {"x": np.ones(shape, np.float32)}, strict=True)["y"] == 4 * math.prod(out) == 0
