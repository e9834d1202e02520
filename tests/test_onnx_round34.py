"""ONNX importer, round 34: model-local functions, contradicted declarations, overridable initializers.

A function named like an op the runtime has (onnx's ``Relu``, onnxruntime's ``com.microsoft:FastGelu``) was inlined
and sized as the function, where onnxruntime runs its own op; functions calling each other twice over, 24 deep (a
1 KB file), inlined to 16 million nodes: the import ran for hours instead of saying so; and a declared shape that
shape inference contradicts was refused naming neither the value nor its node; an overridable initializer
declared with an open shape sized what follows by its default's dims. Sizes are what onnxruntime 1.32's
CPU provider writes (``tests/onnx_oracle.py``) where the test says so."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_patch import patch_importer  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _model(nodes, functions, domains=(), opset=17):
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3])], [V("y", T.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains],
                          functions=functions)
    m.ir_version = 10
    return m


def _doubling(name: str, domain: str, opset: int = 17):
    """``name`` in ``domain``: a function returning its input concatenated with itself (twice the bytes)."""
    return helper.make_function(domain, name, ["a"], ["b"], [helper.make_node("Concat", ["a", "a"], ["b"], axis=0)],
                                [helper.make_opsetid("", opset)])


def _shadowing_relu():
    return _model([helper.make_node("Relu", ["x"], ["y"])], [_doubling("Relu", "")])


SHADOWING = {
    "onnx's Relu": _shadowing_relu,
    "onnx's Relu spelt ai.onnx": lambda: _model([helper.make_node("Relu", ["x"], ["y"], domain="ai.onnx")],
                                               [_doubling("Relu", "ai.onnx")]),
    "onnxruntime's FastGelu": lambda: _model([helper.make_node("FastGelu", ["x"], ["y"], domain="com.microsoft")],
                                             [_doubling("FastGelu", "com.microsoft")], ("com.microsoft",)),
    "Relu called from another function": lambda: _model(
        [helper.make_node("G", ["x"], ["y"], domain="loc")],
        [_doubling("Relu", ""), helper.make_function("loc", "G", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                                                     [helper.make_opsetid("", 17)])], ("loc",)),
}


@pytest.mark.parametrize("case", sorted(SHADOWING))
def test_a_local_function_named_like_a_runtime_op_is_refused_naming_the_call(case):
    # was: 'y' planned at the function's 48 bytes; onnxruntime runs its op and writes 24
    with pytest.raises(GraphError, match=r"calls .*(Relu|FastGelu), which is both a local function of the model and "
                                         r"an op the runtime has: onnxruntime runs its op"):
        import_onnx(SHADOWING[case]())


def test_onnxruntime_runs_its_own_op_not_the_function():
    """Why the refusal: the function's sizes are not what onnxruntime writes."""
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    real = ort_sizes(_shadowing_relu(), {"x": np.ones((2, 3), np.float32)}, strict=True)
    assert real["y"] == 24   # (the function would write 48)


def test_a_function_named_like_an_op_its_opset_predates_is_inlined():
    # Gelu is an onnx op from opset 20 only: at 17 the model's function "Gelu" is the only Gelu there is
    graph = import_onnx(_model([helper.make_node("Gelu", ["x"], ["y"])], [_doubling("Gelu", "")]))
    assert {t.id: t.size for t in graph.tensors}["y"] == 48
    with pytest.raises(GraphError, match="both a local function"):
        import_onnx(_model([helper.make_node("Gelu", ["x"], ["y"])], [_doubling("Gelu", "", 20)], opset=20))


def _doubling_chain(depth: int):
    """Functions F0 (a Relu) .. F{depth}, each calling the one below twice: F{depth} inlines to 2**depth nodes."""
    imports = [helper.make_opsetid("", 17), helper.make_opsetid("loc", 1)]
    fs = [helper.make_function("loc", "F0", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])], imports)]
    for i in range(1, depth + 1):
        fs.append(helper.make_function("loc", f"F{i}", ["a"], ["b"],
                                       [helper.make_node(f"F{i - 1}", ["a"], ["t"], domain="loc"),
                                        helper.make_node(f"F{i - 1}", ["t"], ["b"], domain="loc")], imports))
    return _model([helper.make_node(f"F{depth}", ["x"], ["y"], domain="loc", name="top")], fs, ("loc",))


def test_functions_inlining_to_millions_of_nodes_are_refused_before_inlining(monkeypatch):
    # was: the 24-deep chain (a 1 KB file) inlined to 16777216 nodes, for hours; the refusal needs no inlining
    def no_inlining(*args, **kwargs):
        raise AssertionError("the inliner ran")

    from onnx import inliner  # (a submodule: an attribute of onnx only once imported)

    monkeypatch.setattr(inliner, "inline_local_functions", no_inlining)
    # nor the walk naming each inlined node's origin (2**24 calls: 228 s of CI's 1,000 before it came after the check)
    import memplan.importers.onnx.importer as importer

    def no_origins(*args, **kwargs):
        raise AssertionError("the origins walk ran")

    monkeypatch.setattr(importer, "_inlined_origins", no_origins)
    with pytest.raises(GraphError, match=r"node 'top' calls local function loc:F24, whose body inlines to 16777216 "
                                         r"nodes .* over the importer's limit of 1048576"):
        import_onnx(_doubling_chain(24))


def test_a_chain_under_the_limit_still_inlines_every_node(monkeypatch):
    patch_importer(monkeypatch, "MAX_INLINED_NODES", 64)
    assert len(import_onnx(_doubling_chain(6)).nodes) == 64
    with pytest.raises(GraphError, match="inlines to 128 nodes"):
        import_onnx(_doubling_chain(7))


def test_a_call_cycle_is_still_refused_by_the_inliner_and_counting_it_ends():
    imports = [helper.make_opsetid("", 17), helper.make_opsetid("loc", 1)]
    f = helper.make_function("loc", "F", ["a"], ["b"], [helper.make_node("G", ["a"], ["b"], domain="loc")], imports)
    g = helper.make_function("loc", "G", ["a"], ["b"], [helper.make_node("F", ["a"], ["b"], domain="loc")], imports)
    with pytest.raises(GraphError, match="recursive"):
        import_onnx(_model([helper.make_node("F", ["x"], ["y"], domain="loc")], [f, g], ("loc",)))


# -- a declaration shape inference contradicts is named, with the node that makes it --------------------------

def _relu_chain(**declared):
    """``x[2, 3] -> Relu 'y' -> Relu 'z'`` (unnamed nodes), with ``declared`` as value_info (``y``) or output (``z``)."""
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["y"], ["z"])]
    vi = [V("y", *declared["y"])] if "y" in declared else []
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3])], [V("z", *declared.get("z", (T.FLOAT, None)))],
                          value_info=vi)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


@pytest.mark.parametrize(("declared", "message"), [
    # (a contradicted shape of the right element type, y [5, 5] or z [7], is planned at the size the node makes
    # from round 49, as onnxruntime runs it: tests/test_onnx_round49.py)
    ({"y": (T.DOUBLE, [2, 3])}, r"value 'y', which node 'Relu_0' \(Relu\) makes, is declared double \[2, 3\]"),
    ({"z": (T.INT64, [7])}, r"value 'z', which node 'Relu_1' \(Relu\) makes, is declared int64 \[7\]"),
])
def test_a_contradicted_declaration_is_named_with_its_node(declared, message):
    # was: "ONNX shape inference failed: ... (op_type:Relu): ... differ in dimension 0: (2) vs (5)": neither the value
    # nor the node named (onnx names a node only by a name it has)
    with pytest.raises(GraphError, match=message):
        import_onnx(_relu_chain(**declared))


def test_a_fixed_dimension_a_declaration_contradicts_is_named():
    x = V("x", T.FLOAT, ["batch", 3])
    g = helper.make_graph([helper.make_node("Concat", ["x", "x"], ["y"], axis=0)], "g", [x], [V("y", T.FLOAT, ["batch", 3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    with pytest.raises(GraphError, match=r"value 'y', which node 'Concat_0' \(Concat\) makes, is declared float "
                                         r"\[4, 3\], but the node's inputs make it float \[8, 3\]"):
        import_onnx(model, dims={"batch": 4})


# -- an overridable initializer whose declaration leaves its shape open --------------------------------------

def _matmul_by_overridable(declared, ir_version: int = 10):
    """``z = Relu(MatMul(x[2, 3], w))``, ``w`` an initializer [3, 4] also listed as a graph input declared
    ``declared`` (None: no shape)."""
    w = onnx.numpy_helper.from_array(np.ones((3, 4), np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [2, 3]), V("w", T.FLOAT, declared)], [V("z", T.FLOAT, None)], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=ir_version)


@pytest.mark.parametrize("declared", [["a", "b"], [3, "b"], [None, None], None])
def test_an_overridable_initializer_declared_with_an_open_shape_is_refused_naming_it(declared):
    # was: planned 'y' and 'z' at the default's 32 bytes; fed a [3, 10] 'w', onnxruntime writes 80
    with pytest.raises(GraphError, match=r"graph input 'w' is declared with (shape \[.*\]|no shape), which a value "
                                         r"fed in place of its initializer \(dims \[3, 4\], only a default .*"
                                         r"constant_initializers=True"):
        import_onnx(_matmul_by_overridable(declared))


def test_onnxruntime_sizes_by_the_value_fed_in_place_of_the_initializer():
    """Why the refusal: the default's sizes hold only while nobody feeds ``w``."""
    need("onnxruntime")
    from onnx_oracle import ort_sizes

    x = np.ones((2, 3), np.float32)
    model = _matmul_by_overridable(["a", "b"])
    assert ort_sizes(model, {"x": x}, strict=True)["y"] == 32
    assert ort_sizes(model, {"x": x, "w": np.ones((3, 10), np.float32)}, strict=True)["y"] == 80


def test_a_static_declaration_a_constant_or_ir_3_still_plans_the_initializers_sizes():
    for model, options in ((_matmul_by_overridable([3, 4]), {}),
                           (_matmul_by_overridable(["a", "b"]), {"constant_initializers": True}),
                           (_matmul_by_overridable(["a", "b"], ir_version=3), {})):
        assert {t.id: t.size for t in import_onnx(model, **options).tensors}["y"] == 32
