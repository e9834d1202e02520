"""Round 76, loop76: three ONNX importer gaps.

1. A ``Loop`` that runs no iteration (trip count 0, or a condition false before the first) but has scan outputs was
   refused; onnxruntime returns each scan output empty, of shape [0, *the body's element shape]: planned so where the
   body declares that shape, refused naming the output where it does not.
2. An external data location holding a NUL was refused "onnxruntime refuses to load such a model"; onnxruntime
   reads the name up to the NUL: still refused, the message now says what onnxruntime does.
3. ``--dim 'b= 3'`` was taken as ``b=3`` though every number an option takes is plain digits: spaces around the
   ``=`` are ``--dim``'s own syntax (tested since round 22: ``b = 2``), now documented so; the value stays digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
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
def test_loop_of_no_iteration_plans_its_scan_outputs_empty_as_onnxruntime_runs_it(trip, cond, dtype, monkeypatch):
    # (the expansion run too, every size held against onnxruntime's)
    from test_onnx_round64 import _planned_as_onnxruntime_runs

    model = _zero_loop(trip, cond, dtype=dtype)
    g = _planned_as_onnxruntime_runs(model, monkeypatch, feeds={"x": np.ones((2, 3), np.float32)})
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


# -- 3. a --dim value with spaces -------------------------------------------------------------------------------------

def _symbolic(tmp_path) -> str:
    m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [V("x", T.FLOAT, ["b", 4])],
                                            [V("y", T.FLOAT, ["b", 4])]), opset_imports=[helper.make_opsetid("", 17)])
    path = str(tmp_path / "m.onnx")
    onnx.save(m, path)
    return path


@pytest.mark.parametrize("spelled", ["b= 3", "b = 3", " b=3 "])
def test_spaces_around_a_dims_equals_sign_are_its_documented_syntax(tmp_path, capsys, spelled):
    """``--dim 'b= 3'`` is ``b=3``: spaces around NAME and VALUE are the option's syntax (docs/importers.md,
    docs/format.md, the option's help), the VALUE's own digits plain ASCII as every number an option takes."""
    from memplan.cli import main

    path = _symbolic(tmp_path)
    outs = []
    for i, d in enumerate(["b=3", spelled]):
        assert main(["import", path, "-o", str(tmp_path / f"g{i}.json"), "--dim", d, "-q"]) == 0
        outs.append((tmp_path / f"g{i}.json").read_bytes())
    assert outs[0] == outs[1]
    docs = (Path(__file__).resolve().parent.parent / "docs" / "importers.md").read_text(encoding="utf-8")
    assert "`--dim 'b= 3'` are `b=3`" in docs


@pytest.mark.parametrize("spelled", ["b=\t3", "b=+3", "b=3 4", "b=1_0", "b=3\n"])
def test_a_dim_value_that_is_no_plain_digits_is_one_line_naming_the_option(tmp_path, capsys, spelled):
    from memplan.cli import main

    code = main(["import", _symbolic(tmp_path), "-o", str(tmp_path / "g.json"), "--dim", spelled, "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"--dim {spelled!r}: value" in err
    assert not (tmp_path / "g.json").exists()
