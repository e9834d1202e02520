"""ONNX importer, round 56: GatherPacked's table rows are held to ``K`` (a table of narrower rows was planned);
MatMulFpQ4, QMoE and AttnLSTM, refused by name before (``ORT_UNSIZED``), are sized by rules of memplan's, checked
here against the bytes onnxruntime 1.32's CPU kernels write (``tests/onnx_oracle.py``); inputs the kernels refuse
are refused naming the node. The sweep of every rule against onnxruntime is ``tests/onnx_sweep_round56.py``."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import feeds_for, ort_refuses, ort_sizes, size_mismatches  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
MS = "com.microsoft"
F = T.FLOAT


def _model(op: str, inputs: list, outputs: int | tuple = 1, inits: dict | None = None, **attrs):
    """One ``op`` node ``n`` of domain com.microsoft on graph inputs ``inputs`` ((name, type, shape); an empty name
    an omitted optional input) and initializers ``inits`` (name -> array, in the order given after the inputs), its
    outputs ``y<k>`` the graph's outputs (``outputs``: how many, or a tuple of which are asked for)."""
    asked = outputs if isinstance(outputs, tuple) else (True,) * outputs
    outs = [f"y{k}" if on else "" for k, on in enumerate(asked)]
    names = [i[0] for i in inputs] + list(inits or {})
    node = helper.make_node(op, names, outs, domain=MS, name="n", **attrs)
    g = helper.make_graph([node], "g", [V(n, t, s) for n, t, s in inputs if n],
                          [helper.ValueInfoProto(name=o) for o in outs if o],
                          initializer=[numpy_helper.from_array(a, k) for k, a in (inits or {}).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(MS, 1)], ir_version=10)


def _check_against_ort(model, feeds: dict | None = None) -> None:
    """memplan's sizes of every output equal what onnxruntime's CPU kernel writes."""
    real = ort_sizes(model, feeds if feeds is not None else feeds_for(model), strict=True)
    compared, bad = size_mismatches(import_onnx(model), real)
    assert compared == len([o for o in model.graph.node[0].output if o]) and not bad, bad


def _refused(model, match: str, feeds: dict | None = None) -> None:
    """onnxruntime refuses ``model`` (fed ``feeds``) and memplan refuses it naming node 'n' and ``match``."""
    assert ort_refuses(model, feeds if feeds is not None else feeds_for(model))
    op = model.graph.node[0].op_type
    with pytest.raises(GraphError, match=rf"node 'n' \(com.microsoft:{op}\): .*{match}"):
        import_onnx(model)


# --- GatherPacked: the table's row width is K's -------------------------------------------------------------------

def _packed(row: int, ptype: int, k: int, idx=(2, 3)):
    model = _model("GatherPacked", [("d", T.UINT8, [10, row]), ("i", T.INT64, list(idx))], packed_type=ptype, K=k,
                   output_dtype=1)
    feeds = feeds_for(model)
    feeds["i"] = np.zeros_like(feeds["i"])
    return model, feeds


@pytest.mark.parametrize("row, ptype, k", [
    (144, 2, 256), (36, 2, 64), (4, 0, 1), (176, 13, 256), (72, 42, 256), (18, 42, 64), (136, 23, 256),
    (544, 8, 512), (164, 22, 512), (1024, 30, 512),
])
def test_gather_packed_of_the_row_width_k_takes_is_sized_as_onnxruntime_writes_it(row, ptype, k):
    _check_against_ort(*_packed(row, ptype, k))


@pytest.mark.parametrize("row, ptype, k, why", [
    (72, 2, 256, "rows of 72 bytes, but K=256 values of packed_type 2 .* take 144"),   # half a Q4_0 row
    (145, 2, 256, "rows of 145 bytes"),
    (1000, 0, 256, "rows of 1000 bytes, but K=256 .* take 1024"),
    (18, 2, 16, "K=16 is no whole number of packed_type 2's blocks of 32 values"),
    (176, 13, 128, "K=128 is no whole number of packed_type 13's blocks of 256"),
])
def test_gather_packed_whose_rows_do_not_fit_k_is_refused_naming_the_node(row, ptype, k, why):
    """Before: planned ``[2, 3, 256]`` float (6144 bytes) from a Q4_0 table of 72-byte rows, half of what ``K`` 256
    takes; onnxruntime refuses the model."""
    model, feeds = _packed(row, ptype, k)
    _refused(model, "cannot size its output 'y0' from these inputs \\(.*" + why, feeds)
