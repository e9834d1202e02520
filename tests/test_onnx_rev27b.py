"""Review of round 27b's onnxruntime ops: ops whose onnxruntime shape inference sizes them smaller than its kernels
write them (GatherBlockQuantized's packed bytes and ``gather_axis``, UnfoldTensor's negative ``dim``). Every size
asserted is what onnxruntime 1.32's InferenceSession (CPU) writes for the same model."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
MS = "com.microsoft"


def _model(node, ins, inits=()):
    g = helper.make_graph([node], "g", ins, [V("y", T.FLOAT, None)], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)],
                             ir_version=8)


def _written(m, feeds):
    """The bytes of ``y`` as onnxruntime writes it."""
    ort = need("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    s = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return s.run(["y"], feeds)[0].nbytes


def _gbq(data, idx_shape, gather_axis, quantize_axis, bits=4):
    node = helper.make_node("GatherBlockQuantized", ["data", "idx", "scales"], ["y"], domain=MS,
                            gather_axis=gather_axis, quantize_axis=quantize_axis, block_size=16, bits=bits)
    blocks = list(np.asarray(data.dims))
    qax = quantize_axis % len(blocks)
    blocks[qax] = max(1, blocks[qax] * (8 // bits if data.data_type == T.UINT8 else 1) // 16)
    return _model(node, [V("idx", T.INT64, idx_shape)],
                  [data, numpy_helper.from_array(np.ones(blocks, np.float32), "scales")])


def _packed(shape):
    return numpy_helper.from_array(np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8), "data")


def _int4(shape):
    return helper.make_tensor("data", T.INT4, shape, [1] * int(np.prod(shape)))


@pytest.mark.parametrize(("data", "idx", "gax", "qax", "bits", "planned"), [
    (_packed((10, 16)), [2, 3], 0, 1, 4, 768),   # 4 bits a byte: [2, 3, 32] float; was planned 384, [2, 3, 16]
    (_packed((10, 8)), [2], 0, -1, 2, 256),      # 2 bits: [2, 32]
    (_packed((10, 32)), [2, 3], 0, 1, 8, 768),
    (_int4((32, 10)), [4], 1, 0, 4, 512),        # gather_axis 1: [32, 4]; was planned along axis 0, 160
])
def test_gather_block_quantized_is_sized_as_onnxruntime_writes_it(data, idx, gax, qax, bits, planned):
    m = _gbq(data, idx, gax, qax, bits)
    g = import_onnx(m)
    assert g.tensor("y").size == planned == _written(m, {"idx": np.ones(idx, np.int64)})


def test_gather_block_quantized_of_packed_bytes_along_another_axis_is_refused_not_guessed():
    m = _gbq(_packed((3, 10, 16)), [2], 1, 2)   # onnxruntime: "gather_axis must be 0, for uint8 data"
    with pytest.raises(GraphError, match=r"value 'y' has no shape: com.microsoft:GatherBlockQuantized is "
                                         "onnxruntime's op, which neither"):
        import_onnx(m)


@pytest.mark.parametrize(("attrs", "planned"), [
    ({"dim": -3, "size": 2}, 320),   # [2, 5, 4, 2]; was planned [3, 5, 1, 2], 192
    ({"dim": -2, "size": 2}, 384),   # [3, 4, 4, 2]; was planned 480
    ({"size": 2}, 360),              # dim -1 by default: [3, 5, 3, 2]; was refused as unsized
    ({"dim": 1, "size": 3, "step": 2}, 288),
    ({"dim": -1, "size": 4}, 240),
])
def test_unfold_tensor_is_sized_as_onnxruntime_writes_it(attrs, planned):
    m = _model(helper.make_node("UnfoldTensor", ["x"], ["y"], domain=MS, **attrs), [V("x", T.FLOAT, [3, 5, 4])])
    g = import_onnx(m)
    assert g.tensor("y").size == planned == _written(m, {"x": np.ones((3, 5, 4), np.float32)})


def test_unfold_tensor_onnxruntime_refuses_is_refused():
    m = _model(helper.make_node("UnfoldTensor", ["x"], ["y"], domain=MS, dim=-2, size=6), [V("x", T.FLOAT, [3, 5, 4])])
    with pytest.raises(GraphError, match=r"value 'y' has no shape: com.microsoft:UnfoldTensor"):
        import_onnx(m)


def test_a_declaration_other_than_onnxruntime_writes_is_planned_at_what_it_writes():
    """A value of onnxruntime's op declared larger or smaller than its kernel writes: onnxruntime runs the model, its
    kernel writing its own size (round 50b; it was refused): planned at that size, as for a standard op."""
    node = helper.make_node("Gelu", ["x"], ["y"], name="gelu", domain=MS)
    m = _model(node, [V("x", T.FLOAT, [2, 3])])
    for declared in ([2, 6], [2, 2]):
        del m.graph.value_info[:]
        m.graph.value_info.append(V("y", T.FLOAT, declared))
        assert import_onnx(m).tensor("y").size == 24 == _written(m, {"x": np.ones((2, 3), np.float32)})


def test_an_onnxruntime_op_after_a_shape_only_memplans_folding_finds_is_sized():
    """Gelu of a Reshape whose target is Sqrt of the input's shape: onnx's inference and onnxruntime's leave it
    unknown, memplan's folding finds [2, 2, 64]; onnxruntime's inference is run again after the fold (it was run
    once, before, and the Gelu refused as unsized)."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], end=2), helper.make_node("Cast", ["s"], ["sf"], to=T.FLOAT),
             helper.make_node("Sqrt", ["sf"], ["sq"]), helper.make_node("Cast", ["sq"], ["si"], to=T.INT64),
             helper.make_node("Concat", ["si", "c"], ["tgt"], axis=0), helper.make_node("Reshape", ["x", "tgt"], ["r"]),
             helper.make_node("Gelu", ["r"], ["y"], domain=MS)]
    g = helper.make_graph(nodes, "g", [V("x", T.FLOAT, [4, 4, 16])], [V("y", T.FLOAT, None)],
                          initializer=[numpy_helper.from_array(np.array([64], np.int64), "c")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)], ir_version=8)
    assert import_onnx(m).tensor("y").size == 1024 == _written(m, {"x": np.ones((4, 4, 16), np.float32)})
