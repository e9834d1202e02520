"""ONNX importer, round 63b: MeanVarianceNormalization of a type other than float32, planned exactly where
onnxruntime runs it. ONNX infers the op through its function body, whose Add of a float32 epsilon fails on float16
at every opset, so memplan refused float16 everywhere; onnxruntime 1.32 runs it at opsets 11, 12, 14-17 and 19 on
(it casts float16 to its float32 kernel), and refuses it where it expands the function body instead (9, 10, 13, 18:
the opsets where the body's ops are unchanged). Where onnxruntime is installed each model is shown loaded (and run)
or refused by it too; the rest of each test runs with onnx alone."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

from memplan.cli import main  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402
from memplan.importers.onnx.function_body import expanded_body  # noqa: E402

MVN = "MeanVarianceNormalization"
RUNS_F16 = (11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 23)   # read off onnxruntime 1.32 (the module docstring)
EXPANDS = (9, 10, 13, 18)
SHAPE = [2, 3, 4, 5]


def _mvn(elem: int, opset: int, shape=SHAPE, axes=None, name: str = "n0", then_add: bool = False):
    kw = {} if axes is None else {"axes": axes}
    nodes = [helper.make_node(MVN, ["x"], ["m" if then_add else "y"], name=name, **kw)]
    if then_add:
        nodes.append(helper.make_node("Add", ["m", "x"], ["y"], name="add"))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", elem, shape)],
                          [helper.make_tensor_value_info("y", elem, shape)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _ort(model, run: bool = True) -> bool:
    """Whether onnxruntime loads ``model`` (and, where ``run``, runs it on random input of its declared shape)."""
    ort = need("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    try:
        s = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - any refusal is the answer
        return False
    if run:
        x = model.graph.input[0].type.tensor_type
        s.run(None, {"x": np.random.rand(*[d.dim_value for d in x.shape.dim]).astype(
            helper.tensor_dtype_to_np_dtype(x.elem_type))})
    return True


def _bytes(graph, name: str) -> int:
    return next(t.size for t in graph.tensors if t.id == name)


@pytest.mark.parametrize("opset", RUNS_F16)
def test_float16_planned_at_its_input_size_where_onnxruntime_runs_it(opset):
    """Refused before ("ONNX shape inference failed ... (op_type:Add): B has inconsistent type tensor(float)")."""
    model = _mvn(T.FLOAT16, opset, then_add=True)
    g = import_onnx(model)
    assert _bytes(g, "m") == 2 * 3 * 4 * 5 * 2 == _bytes(g, "x")
    assert _ort(model)


@pytest.mark.parametrize("opset", EXPANDS)
def test_float16_refused_by_the_function_body_rule_where_onnxruntime_expands_it(opset):
    """Refused before too, but by ONNX's message naming an inner op of the body ("(op_type:Add)"), not the node."""
    with pytest.raises(GraphError) as e:
        import_onnx(_mvn(T.FLOAT16, opset, name="norm"))
    msg = str(e.value)
    assert "node 'norm' (MeanVarianceNormalization)" in msg and "tensor(float16)" in msg
    assert "function body" in msg and f"opset {opset}" in msg and "Type Error" in msg
    assert not _ort(_mvn(T.FLOAT16, opset), run=False)


@pytest.mark.parametrize("opset", [11, 14, 19])
def test_double_named_where_onnxruntime_has_no_kernel(opset):
    """Refused before by ONNX's inference message (an inner Pow or Add), now by the kernel rule, naming the node."""
    with pytest.raises(GraphError, match=r"node 'n0' \(MeanVarianceNormalization\): its input 'x' is tensor\(double\)"
                                         r".*kernel takes tensor\(float\).*NOT_IMPLEMENTED"):
        import_onnx(_mvn(T.DOUBLE, opset))
    assert not _ort(_mvn(T.DOUBLE, opset), run=False)


def test_the_expanded_opsets_are_computed_from_the_schemas():
    """Failed before: no such rule (the module did not exist). The opsets where onnxruntime expands MVN's body."""
    assert [o for o in range(9, 24) if expanded_body(MVN, o) is not None] == list(EXPANDS)


def test_cli_refusal_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "mvn13.onnx"
    onnx.save(_mvn(T.FLOAT16, 13), str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "node 'n0' (MeanVarianceNormalization)" in err
    ok = tmp_path / "mvn14.onnx"
    onnx.save(_mvn(T.FLOAT16, 14), str(ok))
    assert main(["import", str(ok), "-o", str(tmp_path / "g14.json"), "-q"]) == 0


@settings(max_examples=60, deadline=None)
@given(opset=st.integers(9, 23), elem=st.sampled_from([T.FLOAT, T.FLOAT16, T.DOUBLE, T.BFLOAT16]),
       rank=st.integers(1, 4), axes=st.one_of(st.none(), st.lists(st.integers(-4, 3), min_size=1, max_size=3,
                                                                     unique=True)))
def test_memplan_plans_exactly_what_onnxruntime_loads(opset, elem, rank, axes):
    """Each MVN of a floating type, opset, rank and axes: memplan plans it (at its input's size) iff onnxruntime
    loads it (failed before: every float16 one was refused)."""
    ort = need("onnxruntime")
    shape = [2, 3, 4, 5][:rank]
    model = _mvn(elem, opset, shape=shape, axes=axes)
    try:
        g = import_onnx(model)
        planned = True
    except GraphError:
        planned = False
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    try:
        s = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        loads = True
        if elem != T.BFLOAT16:   # (no axis in range is refused by its kernel at run time: memplan refuses it)
            x = np.random.rand(*shape).astype(helper.tensor_dtype_to_np_dtype(elem))
            try:
                out = s.run(None, {"x": x})[0]
                assert not planned or out.nbytes == _bytes(g, "y")
            except Exception as exc:  # noqa: BLE001 - the run's refusal
                assert "No valid axes" in str(exc)
                loads = False
    except Exception:  # noqa: BLE001 - any refusal is the answer
        loads = False
    assert planned == loads, (opset, elem, shape, axes, planned, loads)


# --- a refusal for sizes that depend on run-time values names the graph inputs they depend on ---------------------

def _resize_by_input_scales():
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="nearest")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", T.FLOAT, [1, 1, 2, 2]),
                                        helper.make_tensor_value_info("scales", T.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=8)


def _reshape_by_computed_shape():
    """Reshape of ``x`` to ``Concat(k * 2, [-1])``: its size depends on what ``k`` holds (``x``'s values do not
    matter, nor does ``w``, read by an Add whose values reach no shape)."""
    nodes = [helper.make_node("Add", ["x", "w"], ["xw"], name="add"),
             helper.make_node("Mul", ["k", "two"], ["k2"], name="mul"),
             helper.make_node("Concat", ["k2", "minus1"], ["shape"], name="cat", axis=0),
             helper.make_node("Reshape", ["xw", "shape"], ["y"], name="rs")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [4, 6]),
                                       helper.make_tensor_value_info("w", T.FLOAT, [4, 6]),
                                       helper.make_tensor_value_info("k", T.INT64, [1])],
                          [helper.make_tensor_value_info("y", T.FLOAT, None)],
                          [onnx.numpy_helper.from_array(np.array([2], np.int64), "two"),
                           onnx.numpy_helper.from_array(np.array([-1], np.int64), "minus1")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("make, node, inputs, not_named", [
    (_resize_by_input_scales, "node 'up' (Resize)", "graph input 'scales' holds", "'x'"),
    (_reshape_by_computed_shape, "node 'rs' (Reshape)", "graph input 'k' holds", "'w'"),
])
def test_value_dependent_refusal_names_the_node_and_the_inputs(make, node, inputs, not_named):
    """Failed before: the message said the size depends on "what the graph inputs hold" without naming any."""
    model = make()
    with pytest.raises(GraphError) as e:
        import_onnx(model)
    msg = str(e.value)
    assert node in msg and "depends on values computed at run time" in msg and inputs in msg
    assert f"graph input {not_named}" not in msg and f"graph inputs {not_named}" not in msg
    assert _ort(model, run=False)   # (onnxruntime loads it: the size is known only once the input arrives)



# --- a string or container graph input: why no plan can size it, and the node that reads it ------------------------

def _string_input():
    node = helper.make_node("StringNormalizer", ["x"], ["y"], name="norm", case_change_action="NONE")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", T.STRING, [3])],
                          [helper.make_tensor_value_info("y", T.STRING, [3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _sequence_input():
    node = helper.make_node("SequenceLength", ["s"], ["n"], name="len")
    g = helper.make_graph([node], "g", [helper.make_tensor_sequence_value_info("s", T.FLOAT, [2])],
                          [helper.make_tensor_value_info("n", T.INT64, [])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("make, says", [
    (_string_input, r"graph input 'x' has dtype string, which has no fixed byte size \(its bytes depend on the "
                    r"strings it holds, known only at run time.*\), read by node 'norm' \(StringNormalizer\)"),
    (_sequence_input, r"graph input 's' has type seq\(tensor\(float\)\), not a tensor \(.*how many tensors a "
                      r"sequence holds is known only at run time\), read by node 'len' \(SequenceLength\)"),
])
def test_unsized_input_says_why_and_names_its_reader(make, says):
    """Failed before: "(unsupported)" / "(only tensors are supported)", naming no node."""
    model = make()
    with pytest.raises(GraphError, match=says):
        import_onnx(model)
    assert _ort(model, run=False)
