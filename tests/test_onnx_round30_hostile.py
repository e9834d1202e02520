"""ONNX importer, round 30: hostile files. An empty name in the place of a required input or output is refused
naming the node (it was planned: a model onnxruntime and onnx's checker refuse); the other shapes of hostile
file the round tried keep planning what onnxruntime writes, or stay refused by name (one line, exit 2)."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")
need("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_oracle import feeds_for, ort_sizes  # noqa: E402

from memplan.cli import main  # noqa: E402
from memplan.errors import GraphError, InputFormatError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info
X = V("X", T.FLOAT, [2, 3])


def _model(nodes, outputs, inits=(), opset=17, inputs=(X,)):
    g = helper.make_graph(nodes, "g", list(inputs), outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _k(name, value):
    return numpy_helper.from_array(np.array(value, np.int64), name)


REQUIRED_EMPTY = {
    "input": (_model([helper.make_node("Add", ["X", ""], ["Y"], name="a")], [V("Y", T.FLOAT, [2, 3])]),
              r"node 'a' \(Add\): input #1 is empty, but input 'B' of Add-14 is required"),
    "only output": (_model([helper.make_node("Relu", ["X"], [""], name="r"), helper.make_node("Neg", ["X"], ["Y"])],
                           [V("Y", T.FLOAT, [2, 3])]),
                    r"node 'r' \(Relu\): output #0 is empty, but output 'Y' of Relu-14 is required"),
    "first output": (_model([helper.make_node("TopK", ["X", "k"], ["", "I"], name="t", axis=1)],
                            [V("I", T.INT64, [2, 2])], [_k("k", [2])]),
                     r"node 't' \(TopK\): output #0 is empty, but output 'Values' of TopK-11 is required"),
}


@pytest.mark.parametrize("case", sorted(REQUIRED_EMPTY))
def test_an_empty_name_for_a_required_value_is_refused_naming_the_node(case, tmp_path):
    # was: imported and planned (a node reading X alone; a node writing nothing)
    model, match = REQUIRED_EMPTY[case]
    assert ort_sizes(model, feeds_for(model)) is None   # (onnxruntime refuses the model)
    with pytest.raises(GraphError, match=match):
        import_onnx(model)
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    assert not (tmp_path / "g.json").exists()


OPTIONAL_EMPTY = {
    "Clip without min": _model([helper.make_node("Clip", ["X", "", "mx"], ["Y"], name="c")], [V("Y", T.FLOAT, [2, 3])],
                               [numpy_helper.from_array(np.array(1.0, np.float32), "mx")]),
    "Dropout without mask": _model([helper.make_node("Dropout", ["X"], ["Y", ""], name="d")], [V("Y", T.FLOAT, [2, 3])]),
    "LayerNormalization without mean": _model(
        [helper.make_node("LayerNormalization", ["X", "sc"], ["Y", "", "isd"], name="ln")],
        [V("Y", T.FLOAT, [2, 3]), V("isd", T.FLOAT, None)], [numpy_helper.from_array(np.ones(3, np.float32), "sc")]),
    "Split, one output unnamed": _model([helper.make_node("Split", ["X"], ["p", "q"], name="s", axis=1, num_outputs=2)],
                                        [V("p", T.FLOAT, None), V("q", T.FLOAT, None)], opset=18,
                                        inputs=[V("X", T.FLOAT, [2, 4])]),
}


@pytest.mark.parametrize("case", sorted(OPTIONAL_EMPTY))
def test_an_empty_name_for_an_optional_value_plans_what_onnxruntime_writes(case):
    model = OPTIONAL_EMPTY[case]
    real = ort_sizes(model, feeds_for(model), strict=True)
    planned = {t.id: t.size for t in import_onnx(model).tensors}
    assert real and all(planned[v] == b for v, b in real.items())


def _chain(n: int):
    nodes = [helper.make_node("Relu", ["X" if i == 0 else f"a{i - 1}"], [f"a{i}"], name=f"n{i}") for i in range(n)]
    return _model(nodes, [V(f"a{n - 1}", T.FLOAT, [2, 3])])


def test_a_ten_thousand_node_chain_imports_without_recursion():
    graph = import_onnx(_chain(10_000))
    assert len(graph.nodes) == 10_000 and {t.size for t in graph.tensors} == {24}


HOSTILE = {
    "a cycle": (_model([helper.make_node("Relu", ["b"], ["a"], name="na"), helper.make_node("Relu", ["a"], ["b"], name="nb"),
                        helper.make_node("Relu", ["b"], ["Y"], name="ny")], [V("Y", T.FLOAT, [2, 3])]),
                r"node 'na' \(Relu\) reads 'b' before its producer 'nb' runs \(a cycle"),
    "one output twice": (_model([helper.make_node("Split", ["X"], ["p", "p"], name="sp", axis=1, num_outputs=2)],
                                [V("p", T.FLOAT, None)], opset=18, inputs=[V("X", T.FLOAT, [2, 4])]),
                         r"value 'p' is produced twice \(by nodes 'sp' and 'sp'\)"),
    "a node writing a graph input": (_model([helper.make_node("Relu", ["X"], ["X"], name="r")], [V("X", T.FLOAT, [2, 3])]),
                                     r"node 'r' writes graph input 'X'"),
    "a dimension of 2**62": (_model([helper.make_node("Relu", ["X"], ["Y"], name="r")], [V("Y", T.FLOAT, None)],
                                    inputs=[V("X", T.FLOAT, [2**62, 2])]), r"tensor 'X': size \d+ is absurd"),
    "a string value": (_model([helper.make_node("Cast", ["X"], ["s"], to=T.STRING, name="c"),
                               helper.make_node("Cast", ["s"], ["Y"], to=T.FLOAT, name="c2")], [V("Y", T.FLOAT, [2, 3])]),
                       r"node 'c' \(Cast\): value 's' has dtype string, which has no fixed byte size"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_structures_stay_refused_by_name(case):
    model, match = HOSTILE[case]
    with pytest.raises(GraphError, match=match):
        import_onnx(model)


def test_a_truncated_file_is_one_line_and_exit_2(tmp_path, capsys):
    data = _chain(3).SerializeToString()
    path = tmp_path / "t.onnx"
    path.write_bytes(data[:-5])
    with pytest.raises(InputFormatError, match=r"not a readable ONNX model"):
        import_onnx(str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json"), "-q"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
