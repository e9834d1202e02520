"""Round 76 (dynamo76): patterns torch's dynamo ONNX exporter (``torch.onnx.export(..., dynamo=True)``) writes that
TorchScript exports never did, each built by hand with ``onnx.helper`` so the tests run without onnxscript.

Why: the dynamo exporter is torch's default since 2.9, and a valid model it writes must be planned (at no fewer bytes
than onnxruntime allocates), never refused."""

from __future__ import annotations

import pytest
from needs import need

need("onnx")
import onnx  # noqa: E402
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


def _derived(expr: str, rows):
    """``torch.onnx.export(..., dynamo=True, dynamic_shapes={"x": {0: batch}, "y": {0: <expr of batch>}})``: graph
    input ``y``'s dimension is named by the expression (``2*batch``, ``batch + 1``), its output's as torch derives it;
    ``rows(b)``: ``y``'s rows at ``batch = b``."""
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Concat", ["x", "y"], ["c"], name="cat", axis=0),
             helper.make_node("Relu", ["c"], ["r"], name="relu")]
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, ["batch", 8]), vi("y", TensorProto.FLOAT, [expr, 8])],
                          [vi("r", TensorProto.FLOAT, [None, 8])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


@pytest.mark.parametrize("expr, rows", [("2*batch", lambda b: 2 * b), ("batch + 1", lambda b: b + 1),
                                        ("(batch - 1)//2 + 3", lambda b: (b - 1) // 2 + 3)])
@pytest.mark.parametrize("how", ["dims", "batch"])
def test_a_derived_dim_of_an_input_is_fixed_from_its_names(expr, rows, how):
    """Fixing ``batch`` fixes ``2*batch`` at 6: ``dims={"batch": 3}`` refused ("pass --dim 2*batch=VALUE"), and
    ``batch=3`` planned ``y`` at 3 rows where the exported program (and onnxruntime fed as it guards) takes 6."""
    g = import_onnx(_derived(expr, rows), **({"dims": {"batch": 3}} if how == "dims" else {"batch": 3}))
    sizes = {t.id: t.size for t in g.tensors}
    assert sizes["y"] == rows(3) * 8 * 4
    assert sizes["r"] == (3 + rows(3)) * 8 * 4


def test_a_derived_dim_fixed_explicitly_keeps_the_callers_value():
    g = import_onnx(_derived("2*batch", None), dims={"batch": 3, "2*batch": 5})
    assert {t.id: t.size for t in g.tensors}["y"] == 5 * 8 * 4


def test_a_derived_dim_left_unfixed_still_names_itself():
    with pytest.raises(GraphError, match=r"graph input 'y' dimension 0 is symbolic \('2\*seq'\) and not fixed"):
        import_onnx(_derived("2*seq", None), dims={"batch": 3})


def test_a_derived_dim_that_computes_negative_is_refused_by_name():
    with pytest.raises(GraphError, match=r"graph input 'y' dimension 0 \('batch - 5'\) is -2"):
        import_onnx(_derived("batch - 5", None), dims={"batch": 3})


def test_cli_import_of_a_derived_dim(tmp_path, capsys):
    import onnx

    from memplan.cli import main

    src = tmp_path / "m.onnx"
    onnx.save(_derived("batch + 1", None), str(src))
    assert main(["import", str(src), "-o", str(tmp_path / "g.json"), "--dim", "batch=3", "-q"]) == 0
    import json

    tensors = {t["id"]: t for t in json.loads((tmp_path / "g.json").read_text())["tensors"]}
    assert tensors["y"]["size"] == 4 * 8 * 4


@pytest.mark.parametrize("expr", ["+".join(["batch"] * 100_000), "-" * 100_000 + "batch", "(" * 300 + "batch" + ")" * 300])
def test_a_hostile_dim_expression_is_a_plain_name(expr):
    """Python's parser raised RecursionError / MemoryError on these: now read as a name, left unfixed and named."""
    with pytest.raises(GraphError, match=r"graph input 'y' dimension 0 is symbolic .* and not fixed"):
        import_onnx(_derived(expr, None), dims={"batch": 3})


def _attention(q, k, v, **attrs):
    vi = helper.make_tensor_value_info
    n = helper.make_node("Attention", ["q", "k", "v"], ["y"], name="att", **attrs)
    g = helper.make_graph([n], "g", [vi("q", TensorProto.FLOAT, q), vi("k", TensorProto.FLOAT, k),
                                     vi("v", TensorProto.FLOAT, v)], [onnx.ValueInfoProto(name="y")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)], ir_version=10)


@pytest.mark.parametrize("shapes, attrs, message", [
    (([1, 4, 3, 8], [1, 3, 5, 8], [1, 3, 5, 8]), {}, r"its Q 'q' \(\[1, 4, 3, 8\]\) has 4 heads, not a multiple of the 3"),
    (([1, 4, 3, 8], [1, 2, 5, 8], [1, 4, 5, 8]), {}, r"its K 'k' \(\[1, 2, 5, 8\]\) has 2 heads and its V 'v'"),
    (([1, 3, 30], [1, 5, 32], [1, 5, 32]), {"q_num_heads": 4, "kv_num_heads": 4},
     r"its Q 'q' \(\[1, 3, 30\]\) has a hidden size of 30, not a multiple of its q_num_heads 4"),
    (([1, 3, 32], [1, 5, 32], [1, 5, 22]), {"q_num_heads": 4, "kv_num_heads": 4},
     r"its V 'v' \(\[1, 5, 22\]\) has a hidden size of 22, not a multiple of its kv_num_heads 4"),
    (([1, 3, 32], [1, 5, 24], [1, 5, 24]), {"q_num_heads": 4, "kv_num_heads": 3},
     r"its q_num_heads 4 is not a multiple of its kv_num_heads 3"),
])
def test_attention_heads_onnxruntime_refuses_are_refused_by_name(shapes, attrs, message):
    """Planned from Q (and V) alone before; onnxruntime 1.32 refuses each as it runs (kernel and function body)."""
    with pytest.raises(GraphError, match=r"node 'att' \(Attention\): " + message):
        import_onnx(_attention(*shapes, **attrs))


def test_attention_heads_that_divide_are_planned():
    g = import_onnx(_attention([1, 3, 32], [1, 5, 16], [1, 5, 20], q_num_heads=4, kv_num_heads=2))
    assert {t.id: t.size for t in g.tensors}["y"] == 1 * 3 * 40 * 4   # 4 heads of V's head size 10


def _rms(x, scale, axis):
    vi = helper.make_tensor_value_info
    n = helper.make_node("RMSNormalization", ["x", "s"], ["y"], name="rms", axis=axis)
    g = helper.make_graph([n], "g", [vi("x", TensorProto.FLOAT, x), vi("s", TensorProto.FLOAT, scale)],
                          [onnx.ValueInfoProto(name="y")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)], ir_version=10)


@pytest.mark.parametrize("scale, axis, message", [
    ([4], 3, r"its axis 3 is outside its input 'x''s 3 dimensions"),
    ([3], -1, r"its scale 's' \(\[3\]\) does not broadcast to its input 'x' \(\[2, 3, 4\]\)"),
    ([2, 4], 1, r"its scale 's' \(\[2, 4\]\) does not broadcast"),
    ([5, 4], -1, r"its scale 's' \(\[5, 4\]\) does not broadcast"),
])
def test_rms_normalization_onnxruntime_refuses_is_refused_by_name(scale, axis, message):
    """Planned as X's size before; onnxruntime 1.32 refuses each as it runs (the LayerNormalization kernel's checks)."""
    with pytest.raises(GraphError, match=r"node 'rms' \(RMSNormalization\): " + message):
        import_onnx(_rms([2, 3, 4], scale, axis))


@pytest.mark.parametrize("scale, axis", [([4], 1), ([1], -1), ([3, 4], -1), ([2, 3, 4], 1)])
def test_rms_normalization_scales_onnxruntime_runs_are_planned(scale, axis):
    assert {t.id: t.size for t in import_onnx(_rms([2, 3, 4], scale, axis)).tensors}["y"] == 96


def test_a_name_only_inside_a_derived_dim_can_be_fixed():
    """``{0: 2 * batch}`` alone names the input ``2*batch``: ``dims={"batch": 3}`` was refused ("the model has no
    symbolic dimension 'batch'")."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Relu", ["y"], ["r"], name="relu")], "g",
                          [vi("y", TensorProto.FLOAT, ["2*batch", 8])], [vi("r", TensorProto.FLOAT, ["2*batch", 8])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    assert {t.id: t.size for t in import_onnx(m, dims={"batch": 3}).tensors}["r"] == 6 * 8 * 4
    with pytest.raises(GraphError, match=r"the model has no symbolic dimension 'seq'"):
        import_onnx(m, dims={"seq": 3})
