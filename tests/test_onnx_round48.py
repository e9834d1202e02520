"""ONNX importer, round 48: sizes onnxruntime's kernels write where its rules and ONNX's inference part ways, and
models onnxruntime refuses to run, refused naming the node.

ConvTranspose with an ``output_shape`` smaller than its input's spatial size: ONNX's inference gave up half-way and
left a shape of the batch and channel dimensions alone, which was planned (``[1, 1]``, 4 bytes, where onnxruntime
writes ``[1, 1, 3]``: 12); a declared output or a Concat after it failed the import in shape inference. A
ConvTranspose onnxruntime refuses (an ``output_padding`` not below the stride, an ``output_shape`` past what the input
makes, an output of no element) was planned at ONNX's size.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import ort_sizes  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _model(nodes, inputs, outputs, inits=(), value_info=(), opset: int = 18):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits), value_info=list(value_info))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _out(name: str):
    return helper.ValueInfoProto(name=name)   # untyped: onnxruntime returns the value as it makes it


def _ort_run(model, feeds):
    """Each output's bytes as onnxruntime makes them, or None where it refuses to load or run the model."""
    try:
        so = ort.SessionOptions()
        so.log_severity_level = 4
        s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return {o.name: np.asarray(v).nbytes for o, v in zip(s.get_outputs(), s.run(None, feeds))}
    except Exception:  # noqa: BLE001 - any refusal
        return None


def _size(graph, name: str) -> int:
    return next(t.size for t in graph.tensors if t.id == name)


# ---------------------------------------------------------------------------------------------- ConvTranspose
def _convt(x, k, cout=1, declared=None, after=None, **attrs):
    w = numpy_helper.from_array(np.ones([x[1], cout, *k], np.float32), "w")
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="ct", **attrs)]
    outs = [_out("y")]
    if after == "relu":
        nodes.append(helper.make_node("Relu", ["y"], ["z"], name="relu"))
        outs = [_out("z")]
    elif after == "concat":   # a skip connection: onnx's rank-2 shape failed here
        nodes.append(helper.make_node("Concat", ["y", "skip"], ["z"], name="cat", axis=1))
        outs = [_out("z")]
    vi = [V("y", T.FLOAT, declared)] if declared else []
    inputs = [V("x", T.FLOAT, list(x))] + ([V("skip", T.FLOAT, [x[0], 2, *attrs["output_shape"]])]
                                           if after == "concat" else [])
    return _model(nodes, inputs, outs, [w], vi)


@pytest.mark.parametrize("x, k, out, attrs", [
    ((1, 1, 5), (3,), [3], {"strides": [2]}),
    ((1, 1, 5), (3,), [1], {"strides": [2]}),
    ((1, 1, 6), (1,), [2], {}),
    ((1, 1, 5), (3,), [4], {"strides": [2], "auto_pad": "SAME_UPPER"}),
    ((1, 1, 5), (3,), [3], {"strides": [2], "output_padding": [1]}),
    ((1, 1, 4), (3,), [1], {"strides": [2], "dilations": [2], "pads": [0, 0]}),
    ((2, 1, 5, 6), (3, 2), [3, 4], {"strides": [2, 1]}),
])
@pytest.mark.parametrize("how", ["plain", "declared", "relu", "concat"])
def test_a_conv_transpose_to_a_smaller_output_shape_is_sized_as_onnxruntime_writes_it(x, k, out, attrs, how):
    # (a Concat of onnx's rank-2 shape fails onnxruntime's own load, which runs onnx's inference, unless the model
    # declares the ConvTranspose's output, as exporters do: then onnxruntime runs it, and memplan plans it)
    declared = [x[0], 1, *out] if how in ("declared", "concat") else None
    m = _convt(x, k, declared=declared, after=how if how in ("relu", "concat") else None, output_shape=out, **attrs)
    feeds = {"x": np.ones(x, np.float32)}
    if how == "concat":
        feeds["skip"] = np.ones([x[0], 2, *out], np.float32)
    real = ort_sizes(m, feeds, strict=True)
    g = import_onnx(m)
    assert _size(g, "y") == real["y"] == 4 * x[0] * int(np.prod(out))
    assert next(t for t in g.tensors if t.id == "y").attrs["shape"] == [x[0], 1, *out]
    if how in ("relu", "concat"):
        assert _size(g, "z") == real["z"]
    memplan.verify(g, memplan.plan(g, streams="auto"))


@pytest.mark.parametrize("attrs, says", [
    ({"strides": [2], "output_shape": [13]}, r"output_shape \[13\] makes a spatial dimension 0 of 13, from which "
                                             r"onnxruntime computes back an input of 6, not its input's 5"),
    ({"strides": [1], "output_padding": [1]}, r"output_padding 1 along spatial dimension 0 is not less than "
                                              r"max\(stride, dilation\) \(1\)"),
    ({"strides": [2], "dilations": [3], "output_padding": [2]}, r"output_padding \[2\] makes a spatial dimension"),
    ({"pads": [4, 4]}, r"its output would be -2 long|dimension 2 is negative"),
    ({"pads": [3, 3]}, r"its output would be 0 long along spatial dimension 0"),
])
def test_a_conv_transpose_onnxruntime_refuses_is_refused_naming_it(attrs, says):
    m = _convt((1, 1, 5), (2,), **attrs)
    assert _ort_run(m, {"x": np.ones((1, 1, 5), np.float32)}) is None
    with pytest.raises(GraphError, match=r"node 'ct' \(ConvTranspose\)|value 'y'"):
        import_onnx(m)
    with pytest.raises(GraphError, match=says):
        import_onnx(m)


def test_random_conv_transposes_are_sized_or_refused_as_onnxruntime_runs_them():
    """1-D ConvTransposes of random attributes (output_shape, output_padding, pads, auto_pad, strides, dilations):
    each is planned at exactly the bytes onnxruntime writes, or refused where onnxruntime refuses to run it."""
    rng = random.Random(48)
    planned = refused = 0
    for _ in range(120):
        n, k, s, d = rng.randint(1, 6), rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 3)
        attrs = {"strides": [s], "dilations": [d]}
        adj = rng.choice([0, 0, 1, 2])
        if adj:
            attrs["output_padding"] = [adj]
        auto_pad = rng.choice(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
        if auto_pad != "NOTSET":
            attrs["auto_pad"] = auto_pad
        elif rng.random() < 0.6:
            attrs["pads"] = [rng.randint(0, 3), rng.randint(0, 3)]
        if rng.random() < 0.5:
            attrs["output_shape"] = [rng.randint(1, (n - 1) * s + (k - 1) * d + 1 + adj + 3)]
        m = _convt((1, 1, n), (k,), cout=2, **attrs)
        real = _ort_run(m, {"x": np.ones((1, 1, n), np.float32)})
        if real is None:
            with pytest.raises(GraphError):
                import_onnx(m)
            refused += 1
        else:
            assert _size(import_onnx(m), "y") == real["y"], attrs
            planned += 1
    assert planned > 30 and refused > 30
