"""Review of round 29's ONNX import of unread external data: a Constant whose data is not there becomes a typed
unknown value for shape inference (``_as_unknown_value``) under a name of its own."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_patch import patch_importer  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import fold, import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _saved(tmp_path, model, inline: tuple[str, ...] = ()) -> str:
    """``model`` saved with every tensor's data in ``w.bin`` but those named ``inline``, and ``w.bin`` deleted."""
    path = str(tmp_path / "m.onnx")
    keep = {t.name: onnx.TensorProto.FromString(t.SerializeToString()) for t in model.graph.initializer if t.name in inline}
    onnx.save_model(model, path, save_as_external_data=True, location="w.bin", size_threshold=0,
                    convert_attribute=True)
    m = onnx.load(path, load_external_data=False)
    for t in m.graph.initializer:
        if t.name in keep:
            t.CopyFrom(keep[t.name])
    onnx.save_model(m, path)
    (tmp_path / "w.bin").unlink()
    return path


def test_an_unread_constant_is_not_given_the_data_of_a_tensor_named_like_its_stand_in(tmp_path):
    """The stand-in input for an unread Constant ``shp`` was named ``shp::unread`` clear of the names the nodes use
    only: an initializer of that name (read by no node) then gave it its data, [2, 3], and the Expand to the
    unread [4, 3] was planned at 24 bytes where it writes 48 (silently, not refused naming ``shp``)."""
    shp = numpy_helper.from_array(np.array([4, 3], np.float64), "shp")
    # (through a Cast: onnxruntime cannot load an Expand whose shape itself is external data)
    nodes = [helper.make_node("Constant", [], ["shp"], name="c", value=shp),
             helper.make_node("Cast", ["shp"], ["shpi"], name="cast", to=T.INT64),
             helper.make_node("Expand", ["X", "shpi"], ["E"], name="ex"), helper.make_node("Relu", ["E"], ["Y"], name="r")]
    decoy = numpy_helper.from_array(np.array([2, 3], np.int64), "shp::unread")
    g = helper.make_graph(nodes, "g", [V("X", T.FLOAT, [1, 3])], [V("Y", T.FLOAT, None)], [decoy])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(GraphError, match=r"value 'E' .*its size follows values held in external data: the 'value' "
                                         r"tensor of node 'c', not read"):
        import_onnx(_saved(tmp_path, model, inline=("shp::unread",)))


def _chain_of_unread_constants(n: int):
    """``a{i} = a{i-1} + c{i}`` for ``n`` Constants ``c{i}`` of shape [1, 3]."""
    nodes, prev = [], "X"
    for i in range(n):
        value = numpy_helper.from_array(np.full((1, 3), i, np.float32), f"v{i}")
        nodes += [helper.make_node("Constant", [], [f"c{i}"], name=f"c{i}", value=value),
                  helper.make_node("Add", [prev, f"c{i}"], [f"a{i}"], name=f"add{i}")]
        prev = f"a{i}"
    g = helper.make_graph(nodes, "g", [V("X", T.FLOAT, [1, 3])], [V(prev, T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_the_value_names_are_gathered_once_however_many_constants_are_unread(tmp_path, monkeypatch):
    """Each unread Constant gathered every value name of the graph again to name its stand-in: quadratic, 4,000
    of them (a model saved with its attributes external, its data file missing) took 78 s to import, 1 s before
    round 29. The names are gathered once per import."""
    calls = []
    real = fold._value_names
    patch_importer(monkeypatch, "_value_names", lambda g: calls.append(1) or real(g))
    graph = import_onnx(_saved(tmp_path, _chain_of_unread_constants(20)))
    assert {t.id: t.size for t in graph.tensors}["a19"] == 12
    assert len(calls) == 1


def test_a_model_proto_without_its_data_is_told_how_to_give_it(tmp_path):
    """Round 29 refuses a size that follows an unread small tensor: a ModelProto loaded without its external data
    (``onnx.load(path, load_external_data=False)``, as one does for a large model; the dynamo exporter puts even
    its Reshape shapes there) imported before, sized by the model's declarations, and is now refused. The message
    said only that the folder is unknown; it says what to pass instead."""
    model = _chain_of_unread_constants(0)
    shp = numpy_helper.from_array(np.array([4, 3], np.float64), "shp")
    model.graph.node.extend([helper.make_node("Cast", ["shp"], ["shpi"], name="cast", to=T.INT64),
                             helper.make_node("Expand", ["X", "shpi"], ["E"], name="ex")])
    model.graph.initializer.append(shp)
    model.graph.output[0].CopyFrom(V("E", T.FLOAT, [4, 3]))
    path = str(tmp_path / "m.onnx")
    onnx.save_model(model, path, save_as_external_data=True, location="w.bin", size_threshold=0)
    assert {t.id: t.size for t in import_onnx(path).tensors}["E"] == 48
    with pytest.raises(GraphError, match=r"initializer 'shp', not read \(the model was passed as a ModelProto, so its "
                                         r"folder is unknown: pass the model's path, "
                                         r"external_data_dir=its folder, or a ModelProto loaded with its "
                                         r"external data\)"):
        import_onnx(onnx.load(path, load_external_data=False))
    assert {t.id: t.size for t in import_onnx(onnx.load(path)).tensors}["E"] == 48
