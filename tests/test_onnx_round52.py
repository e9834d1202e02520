"""ONNX importer, round 52: each case held against what onnxruntime (CPU) does with the same model.

1. Opsets onnxruntime cannot load: a domain imported past the newest opset onnxruntime registers for it
   (``ai.onnx.ml`` 6, ``com.microsoft.nchwc`` 2...: refused at load even where no node uses it), and a default-domain
   op whose version at an old opset (1 to 6) has no CPU kernel (Relu-1): refused, naming the domain or node, as an op
   onnxruntime cannot run is.
2. Col2Im: an input whose channels are no multiple of prod(block_shape), or whose column count is not the number of
   sliding blocks, or a stride below 1, was planned at ONNX's inferred size; onnxruntime refuses to run it.
3. A graph input no node reads, with a dimension not fixed: the error says it is unread and how to size it.
4. A graph output that is a graph input (no node between): planned as an output view of the input.
5. onnxruntime's shape inference of an int64 ConstantOfShape of a huge known shape materialized it (80 GB for
   ``[100000, 100000]``): it is sized without its data now.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import ort_refuses, ort_sizes, size_mismatches  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
ort.set_default_logger_severity(4)


def _model(nodes, inputs, inits=(), *, outputs=("y",), opset=17, ir_version=8, extra_opsets=()):
    outs = [onnx.ValueInfoProto(name=o) for o in outputs]
    g = helper.make_graph(nodes, "g", inputs, outs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), *extra_opsets], ir_version=ir_version)


def _ints(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


# --- 1. opsets onnxruntime cannot load ------------------------------------------------------------------------------

X = V("x", T.FLOAT, [2, 3])


@pytest.mark.parametrize("domain,version", [("ai.onnx.ml", 6), ("com.microsoft.nchwc", 2), ("org.pytorch.aten", 2),
                                            ("ai.onnx.preview", 3), ("com.microsoft.experimental", 9)])
def test_a_domain_imported_past_onnxruntimes_newest_opset_is_refused_naming_it(domain, version):
    """No node uses the domain: onnxruntime still refuses the model at load; it was planned."""
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [X],
               extra_opsets=[helper.make_opsetid(domain, version)])
    assert ort_refuses(m)
    with pytest.raises(GraphError, match=rf"imports domain '{domain}' at opset {version}; onnxruntime supports "
                                         r"opsets up to 1|5 of it"):
        import_onnx(m)
    ok = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [X],
                extra_opsets=[helper.make_opsetid(domain, 1)])
    assert not ort_refuses(ok)
    assert import_onnx(ok).tensor("y").size == 24


@pytest.mark.parametrize("op,opset,attrs,inputs", [("Relu", 5, {}, 1), ("Concat", 3, {"axis": 0}, 2),
                                                   ("Sigmoid", 1, {}, 1), ("Pad", 1, {"paddings": [0, 0, 0, 0]}, 1)])
def test_an_op_version_onnxruntime_has_no_cpu_kernel_for_is_refused_naming_the_node(op, opset, attrs, inputs):
    m = _model([helper.make_node(op, ["x"] * inputs, ["y"], name="n", **attrs)], [X], opset=opset, ir_version=3)
    assert ort_refuses(m, {"x": np.ones((2, 3), np.float32)})
    with pytest.raises(GraphError, match=rf"node 'n' \({op}\) is {op}-1 at the model's opset {opset}.*no CPU kernel"):
        import_onnx(m)


def test_an_op_version_with_a_kernel_at_an_old_opset_still_plans():
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [X], opset=6, ir_version=3)
    real = ort_sizes(m, {"x": np.ones((2, 3), np.float32)}, strict=True)
    assert real["y"] == import_onnx(m).tensor("y").size == 24


# --- 2. Col2Im ------------------------------------------------------------------------------------------------------

def _col2im(shape, image, block, **attrs):
    return _model([helper.make_node("Col2Im", ["x", "im", "bs"], ["y"], name="c", **attrs)],
                  [V("x", T.FLOAT, list(shape))], [_ints("im", image), _ints("bs", block)], opset=18)


@pytest.mark.parametrize("shape,image,block,attrs,why", [
    ((1, 5, 5), [5, 5], [2, 2], {}, r"5 channels x block elements.*not a positive multiple of prod\(block_shape"),
    ((1, 0, 9), [4, 4], [2, 2], {}, "not a positive multiple"),
    ((2, 12, 6), [5, 6], [2, 3], {"strides": [2, 1], "pads": [1, 0, 1, 0]}, "has 6 columns.*make 12 sliding blocks"),
    ((1, 4, 0), [4, 4], [2, 2], {}, "has 0 columns.*make 9 sliding blocks"),
    ((1, 4, 4), [3, 3], [2, 2], {"strides": [0, 1]}, r"strides \[0, 1\] are not all positive"),
])
def test_a_col2im_onnxruntime_refuses_is_refused(shape, image, block, attrs, why):
    m = _col2im(shape, image, block, **attrs)
    assert ort_refuses(m, {"x": np.ones(shape, np.float32)})
    with pytest.raises(GraphError, match=rf"node 'c' \(Col2Im\): .*{why}"):
        import_onnx(m)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 2), st.lists(st.integers(1, 3), min_size=2, max_size=2), st.lists(st.integers(2, 6), min_size=2,
       max_size=2), st.lists(st.integers(1, 2), min_size=2, max_size=2), st.lists(st.integers(1, 2), min_size=2,
       max_size=2), st.lists(st.integers(0, 1), min_size=4, max_size=4), st.integers(1, 2), st.integers(-1, 1))
def test_col2im_plans_what_onnxruntime_writes_or_refuses_what_it_refuses(n, block, image, strides, dil, pads, c,
                                                                         off):
    """Random Col2Im nodes, near and off the column count the attributes give: planned exactly where onnxruntime
    runs them (at its output's size), refused where it refuses."""
    r = 2
    count = 1
    for i in range(r):
        count *= max((image[i] + pads[i] + pads[i + r] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1, 0)
    shape = (n, c * block[0] * block[1] + (off if off < 0 else 0), max(count + (off if off > 0 else 0), 0))
    m = _col2im(shape, image, block, strides=strides, dilations=dil, pads=pads)
    feeds = {"x": np.ones(shape, np.float32)}
    if ort_refuses(m, feeds):
        with pytest.raises(GraphError):
            import_onnx(m)
        return
    graph = import_onnx(m)
    compared, bad = size_mismatches(graph, ort_sizes(m, feeds, strict=True))
    assert compared and not bad, bad
