"""ONNX importer, round 46: models onnxruntime refuses to load or run are refused, naming what it refuses, and sizes
are what onnxruntime writes.

A model-local function's body written for another opset of the default ONNX domain than the model's: onnxruntime
binds the body's ops to the *model's* opset (and infers their shapes there), while onnx's inliner converted the body
to the model's opset, so memplan planned models onnxruntime refuses ("Unrecognized attribute: axes for operator
Squeeze", "Neither 'split' input nor 'num_outputs' attribute has been given").

A PRelu whose slope broadcasts its input to a larger shape was planned at the input's shape (ONNX's inference),
while onnxruntime broadcasts both ways and writes the larger output: an overrun.

Shapes, attributes and known values onnxruntime's kernels refuse and ONNX's inference does not check (DepthToSpace
and SpaceToDepth of dimensions no multiple of the block, edge/reflect/wrap Pads, Gather & co. by indices outside the
data, Gemm biases, InstanceNormalization, LayerNormalization and GroupNormalization operands, convolution biases,
linear/cubic Resizes, Q/DQ scales and zero points, Clip bounds, ReverseSequence lengths...) were planned; each is now
refused naming the node, and each rule is checked here against onnxruntime itself.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import ort_refuses as _ort_refuses  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _calls(body, fn_opset: int, model_opset: int, x_shape, fn_inputs=("a",), call_inputs=("x",), inits=(),
           out_type=T.FLOAT, called: bool = True):
    fn = helper.make_function("loc", "F", list(fn_inputs), ["b"], body, [helper.make_opsetid("", fn_opset)])
    node = (helper.make_node("F", list(call_inputs), ["y"], domain="loc", name="call") if called
            else helper.make_node("Relu", ["x"], ["y"], name="call"))
    g = helper.make_graph([node], "g", [V("x", T.FLOAT, x_shape)], [V("y", out_type, None)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", model_opset), helper.make_opsetid("loc", 1)],
                             functions=[fn], ir_version=8)


AXES = numpy_helper.from_array(np.array([0], np.int64), "ax")


@pytest.mark.parametrize("body, fn_opset, model_opset, fn_inputs, inits, op, out_type", [
    ([helper.make_node("Unsqueeze", ["a"], ["b"], axes=[0])], 11, 13, ("a",), (), "Unsqueeze", T.FLOAT),
    ([helper.make_node("Relu", ["a"], ["t"]), helper.make_node("Squeeze", ["t"], ["b"], axes=[0])], 11, 17, ("a",),
     (), "Squeeze", T.FLOAT),
    ([helper.make_node("ReduceSum", ["a"], ["b"], axes=[1])], 11, 18, ("a",), (), "ReduceSum", T.FLOAT),
    ([helper.make_node("Shape", ["a"], ["b"], start=1)], 15, 13, ("a",), (), "Shape", T.INT64),
    ([helper.make_node("Unsqueeze", ["a", "ax"], ["b"])], 13, 11, ("a", "ax"), (AXES,), "Unsqueeze", T.FLOAT),
])
def test_a_body_op_the_models_opset_refuses_is_refused_naming_the_function_and_node(
        body, fn_opset, model_opset, fn_inputs, inits, op, out_type):
    m = _calls(body, fn_opset, model_opset, [1, 2, 3], fn_inputs=fn_inputs,
               call_inputs=("x", "ax")[:len(fn_inputs)], inits=inits, out_type=out_type)
    assert _ort_refuses(m)
    with pytest.raises(GraphError, match=rf"local function loc:F \(called by node 'call'\) imports the default ONNX "
                                         rf"domain at opset {fn_opset} and the model at opset {model_opset}: its node "
                                         rf"#\d \({op}\) runs as {op} of opset {model_opset}"):
        import_onnx(m)


def test_a_body_the_models_opset_infers_otherwise_is_refused():
    """Split-13 of no ``split`` (equal parts) in an opset-18 model: Split-18 needs ``num_outputs``; onnxruntime
    refuses it in shape inference, where the converted body was planned."""
    m = _calls([helper.make_node("Split", ["a"], ["b", "c"], axis=2)], 13, 18, [1, 2, 4])
    assert _ort_refuses(m, {"x": np.ones((1, 2, 4), np.float32)})
    with pytest.raises(GraphError, match=r"Neither 'split' input nor 'num_outputs'"):
        import_onnx(m)


def test_a_body_resize_of_opset_10_runs_as_the_models_resize():
    """Resize-10 ``(X, scales)`` in an opset-18 model reads ``scales`` as Resize-18's ``roi``: onnxruntime refuses
    it (no scales, no sizes); the converted body was planned as a 2x upsample (memplan said "inlining failed")."""
    s = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    m = _calls([helper.make_node("Resize", ["a", "s"], ["b"])], 10, 18, [1, 1, 2, 3], fn_inputs=("a", "s"),
               call_inputs=("x", "s"), inits=(s,))
    assert _ort_refuses(m, {"x": np.ones((1, 1, 2, 3), np.float32)})
    with pytest.raises(GraphError, match=r"Either `sizes` or `scales` must be provided"):
        import_onnx(m)


def test_a_body_valid_at_both_opsets_is_planned_as_onnxruntime_runs_it():
    m = _calls([helper.make_node("Relu", ["a"], ["t"]), helper.make_node("Squeeze", ["t"], ["b"])], 6, 18, [1, 2, 3])
    assert not _ort_refuses(m, {"x": np.ones((1, 2, 3), np.float32)})
    g = import_onnx(m)
    assert g.tensor("y").size == 2 * 3 * 4
    memplan.verify(g, memplan.plan(g))


def test_a_function_nothing_calls_is_not_judged():
    """onnxruntime loads a model with an uncalled function whose body its opset refuses; so does memplan."""
    m = _calls([helper.make_node("Unsqueeze", ["a"], ["b"], axes=[0])], 11, 13, [1, 2, 3], called=False)
    assert not _ort_refuses(m, {"x": np.ones((1, 2, 3), np.float32)})
    assert import_onnx(m).tensor("y").size == 2 * 3 * 4


def _one(node, x_shape, inits=(), opset: int = 18, x_dims=None):
    g = helper.make_graph([node], "g", [V("x", T.FLOAT, x_dims or list(x_shape))], [V("y", T.FLOAT, None)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


@pytest.mark.parametrize("op, shape, refused", [
    ("DepthToSpace", (1, 6, 2, 2), True), ("DepthToSpace", (1, 8, 3, 3), False), ("DepthToSpace", (1, 0, 2, 2), False),
    ("SpaceToDepth", (1, 1, 3, 2), True), ("SpaceToDepth", (1, 1, 2, 3), True), ("SpaceToDepth", (1, 2, 4, 6), False),
    ("SpaceToDepth", (1, 1, 0, 2), False),
])
def test_a_block_rearrangement_onnxruntime_refuses_is_refused(op, shape, refused):
    """ONNX's inference rounds DepthToSpace's channels (and SpaceToDepth's height and width) down: a DepthToSpace of
    [1, 6, 2, 2] by 2 was planned [1, 1, 4, 4], while onnxruntime refuses to run it."""
    m = _one(helper.make_node(op, ["x"], ["y"], name="blk", blocksize=2), shape)
    assert _ort_refuses(m, {"x": np.ones(shape, np.float32)}) == refused
    if refused:
        with pytest.raises(GraphError, match=rf"node 'blk' \({op}\): its input 'x' \({re.escape(str(list(shape)))}\) has .* blocksize 2"):
            import_onnx(m)
    else:
        out = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"x": np.ones(shape, np.float32)})[0]
        assert import_onnx(m).tensor("y").size == out.nbytes


def test_a_block_rearrangement_of_a_symbolic_input_is_checked_at_the_given_dim():
    m = _one(helper.make_node("DepthToSpace", ["x"], ["y"], name="blk", blocksize=2), None, x_dims=[1, "c", 2, 2])
    assert import_onnx(m, dims={"c": 8}).tensor("y").size == 8 * 4 * 4
    with pytest.raises(GraphError, match=r"node 'blk' \(DepthToSpace\): its input 'x' \(\[1, 6, 2, 2\]\) has 6 channels"):
        import_onnx(m, dims={"c": 6})


def _pad(mode: str, shape, pads, opset: int = 19, axes=None):
    inits = [numpy_helper.from_array(np.array(pads, np.int64), "p")]
    ins = ["x", "p"]
    if axes is not None:
        inits.append(numpy_helper.from_array(np.array(axes, np.int64), "ax"))
        ins += ["", "ax"]
    if opset < 11:
        return _one(helper.make_node("Pad", ["x"], ["y"], name="pad", mode=mode, pads=pads), shape, opset=opset)
    return _one(helper.make_node("Pad", ins, ["y"], name="pad", mode=mode), shape, inits, opset=opset)


@pytest.mark.parametrize("mode, shape, pads, opset, axes, says", [
    ("reflect", (2, 3), [0, 5, 0, 5], 19, None, r"reflects 5 elements on axis 1 .* which has 3"),
    ("reflect", (2, 3), [0, 0, 0, 3], 13, None, r"reflects 3 elements on axis 1"),
    ("reflect", (2, 3), [3, 0], 18, [-1], r"reflects 3 elements on axis 1"),
    ("reflect", (2, 3), [0, 3, 0, 0], 10, None, r"reflects 3 elements on axis 1"),
    ("reflect", (2, 3), [0, 1, 0, -2], 19, None, r"reflects 1 elements on axis 1 .* which has 1"),
    ("edge", (2, 0), [0, 1, 0, 0], 19, None, r"pads axis 1 of its input 'x' \(\[2, 0\]\), of 0 elements"),
    ("reflect", (0, 2), [1, 0, 0, 0], 13, None, r"pads axis 0"),
    ("wrap", (2, 0), [0, 0, 0, 0], 19, None, r"is empty, which the 'wrap' mode cannot pad"),
    ("edge", (2, 3), [0, -2, 0, -1], 19, None, r"crop axis 1 .* to nothing"),
    ("wrap", (2, 3), [0, -3, 0, 2], 19, None, r"crop axis 1"),
])
def test_a_pad_onnxruntime_refuses_for_its_shape_is_refused(mode, shape, pads, opset, axes, says):
    """ONNX's inference sizes a Pad by ``dim + before + after`` in every mode; onnxruntime's kernel refuses a
    reflection longer than the axis, an edge or reflection of an empty axis, a wrap of an empty input, and an axis
    cropped to nothing in any mode but ``constant``."""
    m = _pad(mode, shape, pads, opset, axes)
    assert _ort_refuses(m, {"x": np.ones(shape, np.float32)})
    with pytest.raises(GraphError, match=r"node 'pad' \(Pad\): .*" + says + r".*onnxruntime refuses to run it"):
        import_onnx(m)


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap", "constant"])
@pytest.mark.parametrize("d", [0, 1, 2, 3])
def test_pads_of_every_small_axis_are_refused_exactly_where_onnxruntime_refuses(mode, d):
    """Against onnxruntime itself: every pad of -2..4 on each side of an axis of 0..3 elements."""
    for before in range(-2, 5):
        for after in range(-2, 5):
            if d + before + after < 0:
                continue
            m = _pad(mode, (2, d), [0, before, 0, after])
            refused = _ort_refuses(m, {"x": np.ones((2, d), np.float32)})
            try:
                size = import_onnx(m).tensor("y").size
            except GraphError:
                size = None
            assert (size is None) == refused, (mode, d, before, after, refused)
            if size is not None:
                assert size == 2 * (d + before + after) * 4


def _prelu(x_dims, slope_shape, declared=None):
    s = numpy_helper.from_array(np.full(slope_shape, 0.5, np.float32), "s")
    nodes = [helper.make_node("PRelu", ["x", "s"], ["p"], name="prelu"), helper.make_node("Relu", ["p"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, x_dims)], [V("y", T.FLOAT, declared)], [s])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


@pytest.mark.parametrize("x, slope", [((2, 1), (3,)), ((3,), (2, 3)), ((1, 1, 4), (2, 3, 1)), ((), (2,))])
def test_a_prelu_whose_slope_grows_its_input_is_planned_as_onnxruntime_writes_it(x, slope):
    """ONNX sizes PRelu's output as X; onnxruntime broadcasts X and the slope both ways, so a PRelu of X [2, 1] by a
    slope of [3] was planned 8 bytes and written 24 (and the Relu after it, too)."""
    m = _prelu(list(x), slope)
    outs = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": np.ones(x, np.float32)})
    g = import_onnx(m)
    wide = np.broadcast_shapes(x, slope)
    assert g.tensor("p").size == g.tensor("y").size == outs[0].nbytes == int(np.prod(wide)) * 4
    memplan.verify(g, memplan.plan(g))


def test_a_prelu_of_a_symbolic_input_is_broadcast_at_the_given_dim():
    m = _prelu(["n", 1], (3,))
    assert import_onnx(m, dims={"n": 2}).tensor("y").size == 2 * 3 * 4


def test_a_prelu_whose_slope_does_not_broadcast_is_refused():
    m = _prelu([2, 3], (2,))
    assert _ort_refuses(m, {"x": np.ones((2, 3), np.float32)})
    with pytest.raises(GraphError, match=r"node 'prelu' \(PRelu\): its input 'x' \(\[2, 3\]\) and slope 's' \(\[2\]\) "
                                         r"do not broadcast"):
        import_onnx(m)


def _indexed(op: str, x_shape, idx, **attrs):
    inits = [numpy_helper.from_array(np.array(idx, np.int64), "i")]
    ins = ["x", "i"]
    if op.startswith("Scatter"):
        upd = {"ScatterND": (len(idx),) + tuple(x_shape[len(idx[0]):])}.get(op, np.shape(idx))
        inits.append(numpy_helper.from_array(np.ones(upd, np.float32), "u"))
        ins.append("u")
    return _one(helper.make_node(op, ins, ["y"], name="ix", **attrs), x_shape, inits)


@pytest.mark.parametrize("op, shape, idx, attrs, bad", [
    ("Gather", (2, 3), [3], {"axis": 1}, 3), ("Gather", (2, 3), [[-4]], {"axis": 1}, -4),
    ("Gather", (2, 3), [-3], {"axis": 1}, None), ("Gather", (2, 3), [2], {}, 2),
    ("GatherElements", (2, 3), [[3], [0]], {"axis": 1}, 3), ("GatherElements", (2, 3), [[-3], [2]], {"axis": 1}, None),
    ("ScatterElements", (2, 3), [[-4]], {"axis": 1}, -4), ("ScatterElements", (2, 3), [[2]], {"axis": 1}, None),
    ("GatherND", (2, 3), [[1, 3]], {}, 3), ("GatherND", (2, 3), [[-3]], {}, -3), ("GatherND", (2, 3), [[1, -3]], {}, None),
    ("GatherND", (2, 3, 4), [[3], [0]], {"batch_dims": 1}, 3), ("GatherND", (2, 3, 4), [[2], [-3]], {"batch_dims": 1}, None),
    ("ScatterND", (2, 3), [[2]], {}, 2), ("ScatterND", (2, 3), [[-2]], {}, None),
])
def test_known_indices_outside_the_data_are_refused_as_onnxruntime_refuses_them(op, shape, idx, attrs, bad):
    """ONNX's inference sizes Gather & co. by shapes alone; onnxruntime refuses to run one whose indices leave the
    data ("indices element out of data bounds", "invalid index found"), so memplan planned a model that never runs."""
    m = _indexed(op, shape, idx, **attrs)
    assert _ort_refuses(m, {"x": np.ones(shape, np.float32)}) == (bad is not None)
    if bad is None:
        import_onnx(m)
        return
    with pytest.raises(GraphError, match=rf"node 'ix' \({op}\): its indices 'i' hold {bad}, outside dimension \d of "
                                         r"its data 'x'.*onnxruntime refuses to run it"):
        import_onnx(m)


def test_indices_a_caller_may_override_are_not_judged_by_their_default():
    """An initializer that is also a graph input (IR 4 and later) is only a default: another value may be fed."""
    m = _indexed("Gather", (2, 3), [3], axis=1)
    m.graph.input.append(V("i", T.INT64, [1]))
    assert import_onnx(m).tensor("y").size == 2 * 1 * 4


def test_a_prelu_of_opset_6_is_refused_as_onnxruntime_has_no_kernel_for_it():
    """PRelu-1 and -6 take a slope per channel (``[3]`` for ``[2, 3, 4]``, onnx's own test_PReLU_1d_multiparam), but
    onnxruntime has no CPU kernel before PRelu-7 and refuses the model ("Could not find an implementation for
    PRelu(6)"): refused (round 52), where it was planned sized as X."""
    s = numpy_helper.from_array(np.ones(3, np.float32), "s")
    g = helper.make_graph([helper.make_node("PRelu", ["x", "s"], ["y"], name="prelu")], "g", [V("x", T.FLOAT, [2, 3, 4])],
                          [V("y", T.FLOAT, None)], [s])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 6)], ir_version=3)
    with pytest.raises(GraphError, match=r"node 'prelu' \(PRelu\) is PRelu-6 .*its first is PRelu-7"):
        import_onnx(m)


def _ones(name, shape):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


@pytest.mark.parametrize("a, b, c, trans, ok", [
    ((2, 3), (3, 4), (4,), (0, 0), True), ((2, 3), (3, 4), (2, 1), (0, 0), True), ((3, 2), (4, 3), (2, 4), (1, 1), True),
    ((3, 2), (3, 4), (2,), (1, 0), False), ((2, 3), (3, 4), (4, 1), (0, 0), False), ((2, 3), (3, 4), (1, 1, 4), (0, 0), False),
])
def test_a_gemm_bias_onnxruntime_cannot_broadcast_is_refused(a, b, c, trans, ok):
    node = helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="gemm", transA=trans[0], transB=trans[1])
    m = _one(node, a, [_ones("w", b), _ones("c", c)])
    assert _ort_refuses(m, {"x": np.ones(a, np.float32)}) != ok
    if ok:
        assert import_onnx(m).tensor("y").size > 0
    else:
        with pytest.raises(GraphError, match=rf"node 'gemm' \(Gemm\): its bias 'c' \({re.escape(str(list(c)))}\) does "
                                             r"not broadcast to its product's shape"):
            import_onnx(m)


@pytest.mark.parametrize("x, scale, bias, says", [
    ((1, 3, 4), (3,), (3,), None), ((1, 3, 4), (2,), (3,), "its scale 's'"), ((1, 3, 4), (3,), (1, 3), "its B 'b'"),
    ((1, 3, 4), (1,), (1,), "its scale 's'"), ((2, 3), (3,), (3,), "fewer than 3 dimensions"),
])
def test_an_instance_norm_of_mismatched_operands_is_refused(x, scale, bias, says):
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], name="inorm")
    m = _one(node, x, [_ones("s", scale), _ones("b", bias)])
    assert _ort_refuses(m, {"x": np.ones(x, np.float32)}) == (says is not None)
    if says is None:
        assert import_onnx(m).tensor("y").size == int(np.prod(x)) * 4
    else:
        with pytest.raises(GraphError, match=rf"node 'inorm' \(InstanceNormalization\): .*{says}.*onnxruntime refuses"):
            import_onnx(m)


@pytest.mark.parametrize("op, w, b, attrs, says", [
    ("Conv", (2, 1, 3, 3), (3,), {}, r"its bias 'b' \(\[3\]\) is not 1-D of its 2 output channels"),
    ("Conv", (2, 1, 3, 3), (1, 2), {}, r"its bias 'b' \(\[1, 2\]\) is not 1-D"),
    ("ConvTranspose", (1, 2, 3, 3), (1,), {}, r"its bias 'b' \(\[1\]\) is not 1-D of its 2 output channels"),
    ("ConvTranspose", (2, 2, 3, 3), None, {}, r"its input 'x' \(\[1, 1, 4, 4\]\) has 1 channels, not its weight"),
    ("ConvTranspose", (1, 2, 3, 3), None, {"kernel_shape": [2, 2]}, r"its kernel_shape \[2, 2\] is not its weight's"),
    ("Conv", (2, 1, 3, 3), (2,), {}, None), ("ConvTranspose", (1, 2, 3, 3), (2,), {}, None),
    ("ConvTranspose", (2, 1, 3, 3), (2,), {"group": 2}, "x2"),
])
def test_a_convolution_of_mismatched_operands_is_refused(op, w, b, attrs, says):
    """ONNX's inference sizes a Conv or ConvTranspose by its weight and attributes; onnxruntime also checks the
    bias, the input's channels and ``kernel_shape`` against the weight, and refuses to run what disagrees."""
    x = (1, 2, 4, 4) if says == "x2" else (1, 1, 4, 4)
    inits = [_ones("w", w)] + ([_ones("b", b)] if b else [])
    m = _one(helper.make_node(op, ["x", "w"] + (["b"] if b else []), ["y"], name="conv", **attrs), x, inits)
    refused = says not in (None, "x2")
    assert _ort_refuses(m, {"x": np.ones(x, np.float32)}) == refused
    if refused:
        with pytest.raises(GraphError, match=rf"node 'conv' \({op}\): {says}.*onnxruntime refuses to run it"):
            import_onnx(m)
    else:
        import_onnx(m)


@pytest.mark.parametrize("node, x, says", [
    (helper.make_node("LpNormalization", ["x"], ["y"], name="n", axis=2), (2, 3), r"its axis 2 is outside"),
    (helper.make_node("LpNormalization", ["x"], ["y"], name="n", axis=-2), (2, 3), None),
    (helper.make_node("CumSum", ["x", "a"], ["y"], name="n"), (2, 3), r"its axis -3 is outside"),
    (helper.make_node("LRN", ["x"], ["y"], name="n", size=2), (1, 3, 4, 4), r"its size 2 is not an odd positive count"),
    (helper.make_node("LRN", ["x"], ["y"], name="n", size=3), (1, 3, 4, 4), None),
    (helper.make_node("ArgMax", ["x"], ["y"], name="n", axis=1), (2, 0), r"it reduces axis 1 of its input 'x' \(\[2, 0\]\)"),
    (helper.make_node("ArgMin", ["x"], ["y"], name="n", axis=0), (0, 0), None),
    (helper.make_node("ArgMax", ["x"], ["y"], name="n", axis=1), (0, 2), None),
])
def test_attributes_onnxruntime_refuses_for_the_input_are_refused(node, x, says):
    inits = [numpy_helper.from_array(np.array(-3, np.int64), "a")] if node.op_type == "CumSum" else []
    m = _one(node, x, inits)
    if node.op_type.startswith("Arg"):
        m.graph.output[0].type.tensor_type.elem_type = T.INT64
    assert _ort_refuses(m, {"x": np.ones(x, np.float32)}) == (says is not None)
    if says is None:
        import_onnx(m)
    else:
        with pytest.raises(GraphError, match=rf"node 'n' \({node.op_type}\): .*{says}.*onnxruntime refuses to run it"):
            import_onnx(m)


def _resize(x, mode: str, scales=None, sizes=None, **attrs):
    if sizes is not None:
        inits, ins = [numpy_helper.from_array(np.array(sizes, np.int64), "sz")], ["x", "", "", "sz"]
    else:
        inits, ins = [numpy_helper.from_array(np.array(scales, np.float32), "sc")], ["x", "", "sc"]
    return _one(helper.make_node("Resize", ins, ["y"], name="rs", mode=mode, **attrs), x, inits, opset=19)


@pytest.mark.parametrize("x, mode, scales, sizes, attrs, refused", [
    ((1, 2, 6, 8), "linear", None, [1, 2, 2, 7], {"keep_aspect_ratio_policy": "not_larger"}, True),
    ((2, 2, 4, 4), "linear", [2, 1, 1, 1], None, {}, True),
    ((2, 2, 4, 4), "cubic", [1, 1, 2, 2], None, {}, False),
    ((1, 4, 4, 3), "cubic", [1, 0.5, 0.5, 1], None, {}, True),
    ((1, 4, 4, 3), "cubic", [1, 0.5, 0.5, 1], None, {"antialias": 1}, False),
    ((1, 4, 4, 3), "linear", [1, 0.5, 0.5, 1], None, {}, False),
    ((3,), "linear", [2], None, {}, True),
    ((2, 3, 4), "cubic", [1, 1, 2], None, {}, True),
    ((2, 3, 4, 4, 4), "linear", None, [2, 3, 8, 8, 8], {}, False),
    ((2, 3, 4, 4, 4), "linear", [1, 1, 2], None, {"axes": [0, 1, 2]}, False),
    ((2, 3, 4, 4, 4), "linear", [2, 1, 1], None, {"axes": [1, 2, 0]}, True),
    ((2, 2, 4, 4), "nearest", [2, 2, 2, 2], None, {}, False),
])
def test_a_resize_mode_onnxruntime_does_not_interpolate_at_its_scales_is_refused(x, mode, scales, sizes, attrs, refused):
    """onnxruntime interpolates ``linear`` and ``cubic`` only over certain dimensions (the outermost scales 1); ONNX's
    inference sizes any, and memplan planned what onnxruntime refuses to run (checked against 1,400 random Resizes)."""
    m = _resize(x, mode, scales, sizes, **attrs)
    assert _ort_refuses(m, {"x": np.ones(x, np.float32)}) == refused
    if refused:
        with pytest.raises(GraphError, match=rf"node 'rs' \(Resize\): its {mode} mode over a {len(x)}-D input 'x'.*"
                                             r"onnxruntime refuses to run it"):
            import_onnx(m)
    else:
        out = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"x": np.ones(x, np.float32)})[0]
        assert import_onnx(m).tensor("y").size == out.nbytes


@pytest.mark.parametrize("op", ["QuantizeLinear", "DequantizeLinear"])
@pytest.mark.parametrize("x, axis, block, scale, zero, refused", [
    ((2, 4), 1, 0, (4,), (4,), False), ((2, 4), 1, 0, (3,), None, True), ((2, 4), 1, 0, (4,), (), True),
    ((2, 4), 1, 0, (1,), (), False), ((2, 4), 1, 0, (), (1,), False), ((2, 4), 1, 0, (), (2,), True),
    ((2, 4), 1, 0, (1, 4), None, True), ((2, 4), -1, 2, (2, 2), (2, 2), False), ((2, 4), 1, 2, (2, 2), (), True),
    ((2, 5), 1, 2, (2, 3), None, False), ((2, 4), 1, 2, (2, 3), None, True), ((2, 4), 0, 2, (1,), None, True),
])
def test_quantization_parameters_that_do_not_fit_the_input_are_refused(op, x, axis, block, scale, zero, refused):
    """ONNX's inference sizes Q/DQ by the input alone; onnxruntime refuses a scale or zero point that is neither one
    value, nor 1-D along ``axis``, nor (blocked) the input's shape divided along ``axis`` (720 shapes compared)."""
    attrs = {"axis": axis, **({"block_size": block} if block else {})}
    inits = [numpy_helper.from_array(np.ones(scale, np.float32), "s")]
    ins = ["x", "s"]
    if zero is not None:
        inits.append(numpy_helper.from_array(np.zeros(zero, np.int8), "z"))
        ins.append("z")
    xin, out = (T.FLOAT, T.INT8 if zero is not None else T.UINT8) if op == "QuantizeLinear" else (T.INT8, T.FLOAT)
    g = helper.make_graph([helper.make_node(op, ins, ["y"], name="q", **attrs)], "g", [V("x", xin, list(x))],
                          [V("y", out, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    feed = np.ones(x, np.float32 if op == "QuantizeLinear" else np.int8)
    assert _ort_refuses(m, {"x": feed}) == refused
    if refused:
        with pytest.raises(GraphError, match=rf"node 'q' \({op}\): its (scale 's'|zero point 'z') is .*onnxruntime "
                                             "refuses to run it"):
            import_onnx(m)
    else:
        assert import_onnx(m).tensor("y").size == int(np.prod(x)) * (4 if out == T.FLOAT else 1)


@pytest.mark.parametrize("x, scale, bias, says", [
    ((2, 3, 4), (4,), None, None), ((2, 3, 4), (2, 3, 4), None, None), ((2, 3, 4), (3, 1), (2, 1, 1), None),
    ((2, 3, 4), (5,), None, "scale 's' \\(\\[5\\]\\)"), ((2, 3, 4), (2, 4), None, "scale 's' \\(\\[2, 4\\]\\)"),
    ((1, 3, 4), (4,), (2, 1, 1), "bias 'b' \\(\\[2, 1, 1\\]\\)"), ((4,), (2, 4), None, "scale 's'"),
    ((2, 1, 4), (3, 4), None, "scale 's'"),
])
def test_a_layer_norm_whose_scale_or_bias_does_not_broadcast_to_its_input_is_refused(x, scale, bias, says):
    """onnxruntime takes LayerNormalization's Scale and B broadcast one way to X (checked over 400 random shapes);
    ONNX's inference checks neither, and memplan planned what onnxruntime refuses to run."""
    inits = [_ones("s", scale)] + ([_ones("b", bias)] if bias else [])
    node = helper.make_node("LayerNormalization", ["x", "s"] + (["b"] if bias else []), ["y"], name="ln", axis=-1)
    m = _one(node, x, inits)
    assert _ort_refuses(m, {"x": np.ones(x, np.float32)}) == (says is not None)
    if says is None:
        assert import_onnx(m).tensor("y").size == int(np.prod(x)) * 4
    else:
        with pytest.raises(GraphError, match=rf"node 'ln' \(LayerNormalization\): its {says}.* does not broadcast to its "
                                             r"input 'x'.*onnxruntime refuses to run it"):
            import_onnx(m)


@pytest.mark.parametrize("opset, channels, groups, scale, says", [
    (18, 4, 2, (2,), None), (18, 4, 2, (1,), None), (18, 4, 2, (4,), "its scale 's' \\(\\[4\\]\\) holds neither one value per group"),
    (21, 4, 2, (4,), None), (21, 4, 2, (2, 2), None), (21, 4, 2, (), None),
    (21, 4, 2, (2,), "its scale 's' \\(\\[2\\]\\) holds neither one value per channel"),
    (21, 3, 2, (3,), "its num_groups 2 does not divide the 3 channels"), (18, 4, 0, (4,), "its num_groups 0 does not divide"),
])
def test_group_normalization_is_sized_and_refused_as_onnxruntime_runs_it(opset, channels, groups, scale, says):
    """GroupNormalization-18 (deprecated by onnx, which its checker refuses) is run by onnxruntime: it was refused
    as "deprecated ... (onnxruntime refuses the model)". Groups that do not divide the channels, and a scale or bias of
    neither one value per group (-18) or channel (-21) nor one for all, were planned; onnxruntime refuses them."""
    x = (2, channels, 3)
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], name="gn", num_groups=groups)
    m = _one(node, x, [_ones("s", scale), _ones("b", scale)], opset=opset)
    assert _ort_refuses(m, {"x": np.ones(x, np.float32)}) == (says is not None)
    if says is None:
        g = import_onnx(m)
        assert g.tensor("y").size == int(np.prod(x)) * 4
        memplan.verify(g, memplan.plan(g))
    else:
        with pytest.raises(GraphError, match=rf"node 'gn' \(GroupNormalization\): {says}.*onnxruntime refuses to run it"):
            import_onnx(m)


def _ints(name, shape):
    return numpy_helper.from_array(np.zeros(shape, np.int64), name)


@pytest.mark.parametrize("node, x, inits, says", [
    (helper.make_node("Clip", ["x", "lo"], ["y"], name="n"), (2, 3), [_ones("lo", (3,))], r"its min 'lo' \(\[3\]\) is neither"),
    (helper.make_node("Clip", ["x", "lo"], ["y"], name="n"), (2, 3), [_ones("lo", (1,))], None),
    (helper.make_node("Mod", ["x", "x"], ["y"], name="n"), (2, 3), [], r"remainder of floating values without fmod=1"),
    (helper.make_node("Mod", ["x", "x"], ["y"], name="n", fmod=1), (2, 3), [], None),
    (helper.make_node("GatherElements", ["x", "i"], ["y"], name="n", axis=1), (2, 3), [_ints("i", (2,))], r"differ in rank"),
    (helper.make_node("GatherElements", ["x", "i"], ["y"], name="n", axis=1), (2, 3), [_ints("i", (3, 3))],
     r"exceed its data 'x' \(\[2, 3\]\) in a dimension other than axis 1"),
    (helper.make_node("GatherElements", ["x", "i"], ["y"], name="n", axis=1), (2, 3), [_ints("i", (2, 5))], None),
    (helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], name="n", axis=1), (2, 3),
     [_ints("i", (2, 1)), _ones("u", (2, 2))], r"its updates 'u' \(\[2, 2\]\) are not its indices' shape \[2, 1\]"),
    (helper.make_node("ScatterND", ["x", "i", "u"], ["y"], name="n"), (4, 3), [_ints("i", (2, 1)), _ones("u", (2, 4))],
     r"its updates 'u' \(\[2, 4\]\) are not \[2, 3\]"),
    (helper.make_node("ScatterND", ["x", "i", "u"], ["y"], name="n"), (4, 3), [_ints("i", (2, 1)), _ones("u", (2, 3))], None),
])
def test_element_operands_onnxruntime_refuses_are_refused(node, x, inits, says):
    """Clip bounds, GatherElements/ScatterElements/ScatterND indices and updates, a floating Mod: ONNX's inference
    sizes them by the data alone; onnxruntime refuses these shapes (checked over 600 random ones)."""
    m = _one(node, x, inits)
    assert _ort_refuses(m, {"x": np.ones(x, np.float32)}) == (says is not None)
    if says is None:
        import_onnx(m)
    else:
        with pytest.raises(GraphError, match=rf"node 'n' \({node.op_type}\): .*{says}.*onnxruntime refuses to run it"):
            import_onnx(m)


@pytest.mark.parametrize("lens, batch_axis, says", [
    ([3, 3], 1, None), ([0, 1], 1, None), ([4, 1], 1, r"hold 4, outside 0\.\.3"), ([-1, 1], 1, r"hold -1, outside 0\.\.3"),
    ([1, 1, 1], 1, r"is \[3\], not \[2\], the batch length"), ([1, 2, 2], 0, None), ([1, 3, 1], 0, r"hold 3, outside 0\.\.2"),
])
def test_a_reverse_sequence_of_lengths_onnxruntime_refuses_is_refused(lens, batch_axis, says):
    x = (3, 2, 4)
    node = helper.make_node("ReverseSequence", ["x", "l"], ["y"], name="rev", batch_axis=batch_axis,
                            time_axis=1 - batch_axis)
    m = _one(node, x, [numpy_helper.from_array(np.array(lens, np.int64), "l")])
    assert _ort_refuses(m, {"x": np.ones(x, np.float32)}) == (says is not None)
    if says is None:
        assert import_onnx(m).tensor("y").size == 3 * 2 * 4 * 4
    else:
        with pytest.raises(GraphError, match=rf"node 'rev' \(ReverseSequence\): its sequence_lens 'l' {says}.*onnxruntime "
                                             "refuses to run it"):
            import_onnx(m)


@pytest.mark.parametrize("equation, shapes, says", [
    ("ij,jk->ik", [(2, 3), (4, 5)], r"its label 'j' has length 3 in 'x' and 4 in 'w'"),
    ("ij,jk->ik", [(2, 3), (1, 5)], None), ("ii->i", [(2, 1)], r"its label 'i' appears twice in the term of 'x'"),
    ("ii->i", [(2, 2)], None), ("bij,bjk->bik", [(1, 3, 4), (5, 4, 6)], None),
])
def test_an_einsum_whose_labels_disagree_in_length_is_refused(equation, shapes, says):
    """ONNX's Einsum inference takes each label's first length; onnxruntime refuses lengths that do not broadcast
    (checked over 500 random equations and shapes)."""
    ins = ["x", "w"][:len(shapes)]
    g = helper.make_graph([helper.make_node("Einsum", ins, ["y"], name="es", equation=equation)], "g",
                          [V(v, T.FLOAT, list(s)) for v, s in zip(ins, shapes)], [V("y", T.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 12)], ir_version=8)
    feeds = {v: np.ones(s, np.float32) for v, s in zip(ins, shapes)}
    assert _ort_refuses(m, feeds) == (says is not None)
    if says is None:
        out = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        assert import_onnx(m).tensor("y").size == out.nbytes
    else:
        with pytest.raises(GraphError, match=rf"node 'es' \(Einsum\): {says}.*onnxruntime refuses to run it"):
            import_onnx(m)


@pytest.mark.parametrize("op, opset, mode, scales, refused", [
    ("Resize", 18, "bilinear", [1, 1, 2, 2], True), ("Resize", 18, "cubic", [1, 1, 2, 2], False),
    ("Upsample", 9, "bilinear", [1, 1, 2, 2], True), ("Upsample", 9, "linear", [2, 1, 2, 2], True),
    ("Upsample", 9, "linear", [1, 1, 2, 2], False), ("Upsample", 7, "linear", [1, 2, 2, 2], True),
    ("Upsample", 7, "nearest", [2, 2, 2, 2], False), ("Upsample", 7, "bilinear", [1, 1, 2, 2], True),
])
def test_a_resize_or_upsample_of_a_mode_onnxruntime_refuses_is_refused(op, opset, mode, scales, refused):
    """A mode the op does not have (``bilinear``), and an Upsample (which shares Resize's kernel) interpolating
    ``linear`` over its batch or channels: ONNX's inference sizes them, onnxruntime refuses to run them."""
    x = (1, 1, 2, 2)
    if op == "Upsample" and opset < 9:
        node = helper.make_node(op, ["x"], ["y"], name="up", mode=mode, scales=[float(v) for v in scales])
        inits = []
    else:
        ins = ["x", "", "s"] if op == "Resize" else ["x", "s"]
        node = helper.make_node(op, ins, ["y"], name="up", mode=mode)
        inits = [numpy_helper.from_array(np.array(scales, np.float32), "s")]
    m = _one(node, x, inits, opset=opset)
    assert _ort_refuses(m, {"x": np.ones(x, np.float32)}) == refused
    if refused:
        with pytest.raises(GraphError, match=rf"node 'up' \({op}\): its (mode '{mode}' is none of|{mode} mode over).*"
                                             "onnxruntime refuses to run it"):
            import_onnx(m)
    else:
        assert import_onnx(m).tensor("y").size == int(np.prod(np.multiply(x, scales))) * 4
