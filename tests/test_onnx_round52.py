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

import memplan  # noqa: E402
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
        with pytest.raises(GraphError, match=r"node 'c' \(Col2Im\): .*; onnxruntime refuses to run it$"):
            import_onnx(m)
        return
    graph = import_onnx(m)
    compared, bad = size_mismatches(graph, ort_sizes(m, feeds, strict=True))
    assert compared and not bad, bad


# --- 3. a graph input no node reads, of a dimension not fixed ------------------------------------------------------

@pytest.mark.parametrize("dims,match", [
    (["n", 4], r"graph input 'u' dimension 0 is symbolic \('n'\) and not fixed: pass dims=\{'n': VALUE\} or batch=N "
               r"\(no node reads this input.*any value plans every other tensor alike"),
    ([4, None], r"graph input 'u' dimension 1 is unknown: the model gives it neither a size nor a name \(no node "
                r"reads this input.*declare one \(a name can then be fixed with dims=\{'NAME': VALUE\}\), or remove"),
])
def test_an_unread_input_of_a_dimension_not_fixed_says_how_to_size_it(dims, match):
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [X, V("u", T.FLOAT, dims)])
    with pytest.raises(GraphError, match=match):
        import_onnx(m)


def test_an_unread_input_of_a_symbolic_dimension_plans_with_its_dim_as_onnxruntime_runs_it():
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [X, V("u", T.FLOAT, ["n", 4])])
    feeds = {"x": np.ones((2, 3), np.float32), "u": np.ones((5, 4), np.float32)}
    assert not ort_refuses(m, feeds)
    g = import_onnx(m, dims={"n": 5})
    assert g.tensor("u").size == 80 and g.tensor("u").kind == "input"
    compared, bad = size_mismatches(g, ort_sizes(m, feeds, strict=True))
    assert compared and not bad, bad
    memplan.plan(g)


# --- 4. a graph output that is a graph input ------------------------------------------------------------------------

@pytest.mark.parametrize("outputs", [("y", "x"), ("x",)])
def test_a_graph_input_returned_as_an_output_is_an_output_view_of_it_as_onnxruntime_returns_it(outputs):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")] if "y" in outputs else []
    m = _model(nodes, [X], outputs=outputs)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    back = dict(zip(outputs, sess.run(None, {"x": x})))
    assert np.array_equal(back["x"], x)   # (onnxruntime returns the fed value itself)
    g = import_onnx(m)
    out = g.tensor("x::output")
    assert (out.kind, out.view_of, out.view_offset, out.size) == ("output", "x", 0, 24)
    assert out.attrs["graph_output"] == "x" and g.tensor("x").kind == "input"
    plan = memplan.plan(g)   # (verified)
    offs = plan.offsets()
    assert offs["x::output"] == offs["x"]
    if "y" in outputs:   # x lives to the end, as an output: y cannot take its bytes
        assert abs(offs["y"] - offs["x"]) >= 24


def test_the_output_view_of_a_returned_input_takes_a_name_no_value_has():
    nodes = [helper.make_node("Relu", ["x"], ["x::output"], name="a"), helper.make_node("Relu", ["x::output"], ["y"],
                                                                                       name="b")]
    g = import_onnx(_model(nodes, [X], outputs=("y", "x")))
    assert g.tensor("x::output").kind == "intermediate"
    assert g.tensor("x::output1").view_of == "x" and g.tensor("x::output1").kind == "output"


# --- 5. onnxruntime's shape inference of a huge int64 ConstantOfShape ----------------------------------------------

def test_onnxruntimes_inference_never_materializes_a_large_constant_of_shape():
    """An int64 ConstantOfShape of a known ``[2000, 2000]`` beside a ``com.microsoft`` op: onnxruntime's shape inference
    built its 32 MB value (``[100000, 100000]``: 80 GB, the process killed); now sized from the shape alone."""
    import tracemalloc

    def model(n):
        nodes = [helper.make_node("Gelu", ["x"], ["g"], domain="com.microsoft", name="gelu"),
                 helper.make_node("ConstantOfShape", ["s"], ["c"], name="c",
                                  value=helper.make_tensor("v", T.INT64, [1], [1])),
                 helper.make_node("Shape", ["c"], ["y"], name="shape")]
        return _model(nodes, [X], [_ints("s", [n, n])], outputs=("y", "g"),
                      extra_opsets=[helper.make_opsetid("com.microsoft", 1)])

    import_onnx(model(2))   # (the modules it loads, once)
    tracemalloc.start()
    try:
        g = import_onnx(model(2000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert g.tensor("c").size == 2000 * 2000 * 8 and g.tensor("y").size == 16
    assert peak < 8 << 20, peak


# --- hunt: hostile files through ``memplan import`` ----------------------------------------------------------------

def test_an_op_type_that_is_no_utf8_is_one_error_line_not_a_traceback(tmp_path, capsys):
    """A byte flipped in an op type (``Reshape`` -> ``b'Resha\\xb1e'``): protobuf hands the name back as bytes, and
    a check reading op types before the names were checked passed them to onnx (a raw TypeError out of the CLI)."""
    from memplan.cli import main

    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")]
    m = _model(nodes, [X], [_ints("s", [3, 2])])
    data = m.SerializeToString()
    assert data.count(b"Reshape") == 1
    path = tmp_path / "flipped.onnx"
    path.write_bytes(data.replace(b"Reshape", b"Resha\xb1e"))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("memplan: error:") and "op_type b'Resha\\xb1e' is not valid UTF-8" in err[0]
    with pytest.raises(GraphError, match="not valid UTF-8"):
        import_onnx(str(path))
