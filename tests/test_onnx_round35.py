"""ONNX importer, round 35: real exports of small torch modules, checked against onnxruntime.

A module that returns a constant (a registered buffer, ``torch.tensor(x.shape)`` of a static shape, an ``arange``
of a static length) exports it as a graph output that is an initializer (``dynamo=True``) or a ``Constant``'s
value (``dynamo=False``); both were refused ("graph output 'pe' is an initializer: no node produces it
(unsupported)"), though onnxruntime runs the model. Such an output is now the weight it is: it lives outside
the arena for the whole run, as ``from_torch`` plans a returned buffer. An initializer the caller may override
(a graph input too, IR 4 and later) returned as it is stays refused, as a graph input returned is."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _returns_a_constant(how: str, ir_version: int = 8):
    """``y = Relu(x)`` and the constant ``pe`` ([4, 6] float), returned as an initializer or a Constant's value."""
    pe = numpy_helper.from_array(np.arange(24, dtype=np.float32).reshape(4, 6), "pe")
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    inits, inputs = [], [V("x", T.FLOAT, [2, 3])]
    if how == "Constant":
        nodes.append(helper.make_node("Constant", [], ["pe"], name="const", value=pe))
    else:
        inits.append(pe)
    if how == "overridable initializer":
        inputs.append(V("pe", T.FLOAT, [4, 6]))
    g = helper.make_graph(nodes, "g", inputs, [V("y", T.FLOAT, [2, 3]), V("pe", T.FLOAT, [4, 6])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=ir_version)


@pytest.mark.parametrize("how", ["initializer", "Constant"])
def test_a_constant_graph_output_is_planned_as_a_weight(how):
    g = import_onnx(_returns_a_constant(how))
    pe = g.tensor("pe")
    assert (pe.kind, pe.size, pe.attrs["shape"]) == ("weight", 96, [4, 6])
    assert g.tensor("y").kind == "output"
    p = memplan.plan(g)
    memplan.verify(g, p)
    assert p.offsets()["pe"] is None


def test_an_overridable_initializer_returned_is_refused_naming_it_and_the_option():
    with pytest.raises(GraphError, match=r"graph output 'pe' is an initializer the caller may override.*"
                                         r"constant_initializers=True"):
        import_onnx(_returns_a_constant("overridable initializer"))
    g = import_onnx(_returns_a_constant("overridable initializer"), constant_initializers=True)
    assert g.tensor("pe").kind == "weight"
    # IR 3 lists every initializer as a graph input: a constant, as before
    assert import_onnx(_returns_a_constant("overridable initializer", ir_version=3)).tensor("pe").kind == "weight"


@pytest.mark.parametrize("how", ["initializer", "Constant"])
def test_onnxruntime_returns_the_constant_at_its_size(how):
    need("onnxruntime")
    from onnx_oracle import ort_sizes, size_mismatches

    m = _returns_a_constant(how)
    real = ort_sizes(m, {"x": np.ones((2, 3), np.float32)}, strict=True)
    assert real["pe"] == 96
    compared, bad = size_mismatches(import_onnx(m), real)
    assert compared == 2 and not bad


@pytest.mark.parametrize("module", ["buffer", "shape"])
def test_a_torchscript_export_returning_a_constant_imports(tmp_path, module):
    """``torch.onnx.export(dynamo=False)`` of a module returning its buffer or its input's static shape."""
    torch = need("torch")
    need("onnxruntime")
    from onnx_oracle import feeds_for, ort_sizes, size_mismatches

    class Returns(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("pe", torch.randn(4, 6))

        def forward(self, x):
            return x.relu(), (self.pe * 2 if module == "buffer" else torch.tensor(x.shape))

    path = str(tmp_path / "m.onnx")
    torch.onnx.export(Returns().eval(), (torch.randn(2, 3),), path, dynamo=False, opset_version=17)
    m = onnx.load(path)
    assert not any(o.name in {n.output[0] for n in m.graph.node if n.op_type != "Constant"} for o in m.graph.output[1:])
    g = import_onnx(path)
    memplan.verify(g, memplan.plan(g))
    compared, bad = size_mismatches(g, ort_sizes(m, feeds_for(m), strict=True))
    assert compared >= 2 and not bad


def test_onnxruntimes_blocked_layout_op_is_refused_saying_which_model_to_plan():
    """A model onnxruntime saved at ORT_ENABLE_ALL (torchvision's resnet18, mobilenet_v3_small, vit, swin, convnext,
    exported either way) holds ``com.microsoft.nchwc`` ops whose channels are padded to the saving CPU's block size:
    the refusal said only that the op "is not an op onnx defines", with nothing to do about it."""
    nodes = [helper.make_node("ReorderInput", ["x"], ["xc"], name="reorder", domain="com.microsoft.nchwc"),
             helper.make_node("Relu", ["xc"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [1, 3, 8, 8])], [V("y", T.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft.nchwc", 1)],
                          ir_version=8)
    with pytest.raises(GraphError, match=r"node 'reorder' \(ReorderInput\): value 'xc' .*com\.microsoft\.nchwc:"
                                         r"ReorderInput is onnxruntime's blocked-layout op .*ORT_ENABLE_ALL.*"
                                         r"plan the model saved at ORT_ENABLE_EXTENDED"):
        import_onnx(m)


def _two_sizes_meet(folded: bool):
    """``a' [N, 4] + b [M, 4]``: ``a'`` is ``a`` itself, or ``a`` reshaped to ``[N / 1, 4]``, a shape only the
    importer's folding follows (ONNX's data propagation stops at the Div), so the sizes meet after the fold."""
    nodes, first, inits = [], "a", []
    if folded:
        inits = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in (("i0", [0]), ("i1", [1]), ("c4", [4]))]
        nodes = [helper.make_node("Shape", ["a"], ["sa"]), helper.make_node("Gather", ["sa", "i0"], ["n"]),
                 helper.make_node("Div", ["n", "i1"], ["d"]), helper.make_node("Concat", ["d", "c4"], ["shp"], axis=0),
                 helper.make_node("Reshape", ["a", "shp"], ["r"])]
        first = "r"
    nodes.append(helper.make_node("Add", [first, "b"], ["y"], name="add"))
    g = helper.make_graph(nodes, "g", [V("a", T.FLOAT, ["N", 4]), V("b", T.FLOAT, ["M", 4])], [V("y", T.FLOAT, None)],
                          inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("folded", [False, True])
def test_dimensions_fixed_apart_that_a_node_needs_alike_are_named(folded):
    """torch.onnx.export(dynamo=False) of a BERT with dynamic axes names the ids' ``[d0_0, d0_1]`` and the mask's
    ``[d1_0, d1_1]`` apart: ``--dim d0_1=5 --dim d1_1=7`` was refused with onnx's "Incompatible dimensions" for an
    Add deep inside, naming neither the dimensions fixed nor what to do."""
    m = _two_sizes_meet(folded)
    with pytest.raises(GraphError, match=r"node name: add\): .*Incompatible dimensions; the dimensions fixed "
                                         r"\(M=3, N=2\) may give one size of the model two values.*same value"):
        import_onnx(m, dims={"N": 2, "M": 3})
    assert import_onnx(m, dims={"N": 3, "M": 3}).tensor("y").size == 48
