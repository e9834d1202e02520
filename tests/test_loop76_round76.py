"""Round 76, loop76: three ONNX importer gaps.

1. A ``Loop`` that runs no iteration (trip count 0, or a condition false before the first) but has scan outputs was
   refused; onnxruntime returns each scan output empty, of shape [0, *the body's element shape]: planned so where the
   body declares that shape, refused naming the output where it does not.
2. An external data location holding a NUL was refused "onnxruntime refuses to load such a model"; onnxruntime
   reads the name up to the NUL: still refused, the message now says what onnxruntime does.
"""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

need("onnx")
ort = need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _zero_loop(trip: int, cond: bool | None = None, declare=(2, 3), dtype=T.FLOAT):
    """x -> Loop(trip, cond) whose body doubles its loop-carried value and scans it cast to ``dtype``, the body
    declaring the scanned value's shape ``declare`` (None: no type)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["v", "v"], ["v_out"]), helper.make_node("Cast", ["v_out"], ["s"], to=dtype)], "body",
        [V("i", T.INT64, []), V("c", T.BOOL, []), V("v", T.FLOAT, [2, 3])],
        [V("c", T.BOOL, []), V("v_out", T.FLOAT, [2, 3]),
         V("s", dtype, list(declare)) if declare is not None else helper.ValueInfoProto(name="s")])
    inits = [nh.from_array(np.array(trip, np.int64), "M")]
    ins = ["M", ""]
    if cond is not None:
        inits.append(nh.from_array(np.array(cond), "C"))
        ins[1] = "C"
    g = helper.make_graph([helper.make_node("Loop", [*ins, "x"], ["vf", "ss"], name="loop0", body=body)], "g",
                          [V("x", T.FLOAT, [2, 3])], [helper.ValueInfoProto(name="vf"),
                                                      helper.ValueInfoProto(name="ss")], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


def _ort(model) -> list:
    so = ort.SessionOptions()
    so.log_severity_level = 4
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": np.ones((2, 3), np.float32)})


@pytest.mark.parametrize("trip,cond,dtype", [(0, None, T.FLOAT), (0, True, T.INT8), (5, False, T.FLOAT16)])
def test_loop_of_no_iteration_plans_its_scan_outputs_empty_as_onnxruntime_runs_it(trip, cond, dtype):
    model = _zero_loop(trip, cond, dtype=dtype)
    g = import_onnx(model)
    by_id = {t.id: t for t in g.tensors}
    for name, value in zip(["vf", "ss"], _ort(model)):
        assert tuple(by_id[name].attrs["shape"]) == value.shape, name
        assert by_id[name].size == value.nbytes, name
    assert by_id["ss"].attrs["shape"] == [0, 2, 3]
    memplan.verify(g, memplan.plan(g))


@pytest.mark.parametrize("declare", [None, ("n", 3)])
def test_loop_of_no_iteration_refuses_a_scan_output_of_undeclared_shape_naming_it(declare):
    with pytest.raises(GraphError, match=r"'loop0' \(Loop\): it runs no iteration .* scan output #0 'ss' \(body "
                                         r"output 's'\)"):
        import_onnx(_zero_loop(0, declare=declare))


# -- 2. an external data location holding a NUL ---------------------------------------------------------------------

def test_a_nul_in_an_external_data_location_is_refused_saying_what_onnxruntime_does(tmp_path):
    """onnxruntime cuts the name at the NUL and runs the model on ``w.bin``: the refusal said onnxruntime refuses."""
    from test_onnx_round35_external import _saved

    path = _saved(tmp_path, "w.bin\0.txt")
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert s.run(None, {"x": np.ones((2, 3), np.float32)})[0].tolist() == [[12.0, 15.0, 18.0, 21.0]] * 2
    with pytest.raises(GraphError, match=r"initializer 'W': its external data is not read: .* holds a NUL character; "
                                         r"onnxruntime cuts the name there and reads 'w\.bin'\)$") as err:
        import_onnx(path)
    assert "onnxruntime refuses" not in str(err.value)
