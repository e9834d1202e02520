"""ONNX importer, round 30: a ModelProto loaded without its external data reads its small shape tensors from the
folder the caller names (``external_data_dir``); the data-dependent values are found in one walk of the graph;
onnxruntime's contrib ops that no shape inference sizes are sized by memplan's rule (checked against what
onnxruntime's CPU kernels write, ``tests/onnx_oracle.py``) or refused naming the node and the op."""

from __future__ import annotations

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx_patch import patch_importer  # noqa: E402

import memplan.importers.onnx.infer as onnx_importer  # noqa: E402
from memplan.errors import GraphError, MemplanError, OptionError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _sizes(graph) -> dict[str, int]:
    return {t.id: t.size for t in graph.tensors}


def _expand_saved(tmp_path, declared=(4, 3)) -> str:
    """``E = Expand(X[1, 3], shp = [4, 3])`` (``E`` declared ``declared``) saved with every tensor in ``w.bin``."""
    shp = numpy_helper.from_array(np.array([4, 3], np.float64), "shp")
    # (through a Cast: onnxruntime cannot load an Expand whose shape itself is external data)
    g = helper.make_graph([helper.make_node("Cast", ["shp"], ["shpi"], name="cast", to=T.INT64),
                           helper.make_node("Expand", ["X", "shpi"], ["E"], name="ex")], "g", [V("X", T.FLOAT, [1, 3])],
                          [V("E", T.FLOAT, list(declared))], [shp])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = str(tmp_path / "m.onnx")
    onnx.save_model(model, path, save_as_external_data=True, location="w.bin", size_threshold=0)
    return path


# -- 1a: a ModelProto without its external data, its folder given ------------------------------------------------

def test_a_model_proto_without_its_data_reads_it_from_the_folder_given(tmp_path):
    # was: refused ("the model was passed as a ModelProto, so its folder is unknown"), with no way to name it
    path = _expand_saved(tmp_path)
    proto = onnx.load(path, load_external_data=False)
    assert _sizes(import_onnx(proto, external_data_dir=tmp_path))["E"] == 48
    assert _sizes(import_onnx(proto, external_data_dir=str(tmp_path)))["E"] == 48


def test_a_wrong_declaration_is_caught_once_the_folder_is_given(tmp_path):
    """The data read from the folder is checked as for a path: a declaration of half the size is not planned. (It
    was refused, ONNX's strict inference finding it contradicted; from round 49 the size the data gives is planned,
    as onnxruntime merges the declaration leniently and its Expand writes 48 bytes.)"""
    proto = onnx.load(_expand_saved(tmp_path, declared=(2, 3)), load_external_data=False)
    assert _sizes(import_onnx(proto, external_data_dir=tmp_path))["E"] == 48


def test_without_the_folder_the_refusal_names_the_option(tmp_path):
    proto = onnx.load(_expand_saved(tmp_path), load_external_data=False)
    with pytest.raises(GraphError, match=r"initializer 'shp', not read .*external_data_dir=its folder"):
        import_onnx(proto)


def test_a_folder_without_the_data_file_is_refused_naming_the_tensor(tmp_path):
    proto = onnx.load(_expand_saved(tmp_path), load_external_data=False)
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(GraphError, match=r"initializer 'shp', not read \(its data file 'w.bin' is not a file in the "
                                         r"model's folder\)"):
        import_onnx(proto, external_data_dir=other)


@pytest.mark.parametrize("folder, match", [("missing", r"external_data_dir '.*missing' is not a folder"),
                                           (3, r"external_data_dir 3 is not a folder's path"),
                                           ("", r"external_data_dir '' is not a folder's path")])
def test_a_folder_that_is_not_one_is_refused_naming_the_option(tmp_path, folder, match):
    proto = onnx.load(_expand_saved(tmp_path), load_external_data=False)
    folder = str(tmp_path / folder) if folder == "missing" else folder
    with pytest.raises(OptionError, match=match):
        import_onnx(proto, external_data_dir=folder)


def test_a_folder_with_a_path_is_refused(tmp_path):
    with pytest.raises(OptionError, match=r"external_data_dir is for a ModelProto"):
        import_onnx(_expand_saved(tmp_path), external_data_dir=tmp_path)


def test_an_output_over_the_data_file_of_the_folder_given_is_refused(tmp_path):
    """As for a model given by path: the caller's output must not replace the model's weights file."""
    proto = onnx.load(_expand_saved(tmp_path), load_external_data=False)
    with pytest.raises(MemplanError, match=r"refusing to overwrite an input"):
        import_onnx(proto, external_data_dir=tmp_path, outputs={"-o": str(tmp_path / "w.bin")})
    assert (tmp_path / "w.bin").stat().st_size > 0


# -- 1b: data-dependent values found in one walk -------------------------------------------------------------------

def _reshapes(n: int):
    """``n`` Reshapes of ``X [4, 3]`` in a chain, each to a small shape initializer."""
    nodes, inits, prev = [], [], "X"
    for i in range(n):
        nodes.append(helper.make_node("Reshape", [prev, f"s{i}"], [f"a{i}"], name=f"r{i}"))
        inits.append(numpy_helper.from_array(np.array([3, 4] if i % 2 == 0 else [4, 3], np.int64), f"s{i}"))
        prev = f"a{i}"
    nodes.append(helper.make_node("Relu", [prev], ["Y"], name="relu"))
    g = helper.make_graph(nodes, "g", [V("X", T.FLOAT, [4, 3])], [V("Y", T.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("unread", [False, True])
def test_the_data_dependent_values_are_found_in_one_walk(tmp_path, monkeypatch, unread):
    """Found three times per import where small tensors were unread (twice otherwise), each a walk of every node."""
    calls = []
    real = onnx_importer._data_dependent_outputs
    patch_importer(monkeypatch, "_data_dependent_outputs", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = _reshapes(6)
    if unread:
        path = str(tmp_path / "m.onnx")
        onnx.save_model(model, path, save_as_external_data=True, location="w.bin", size_threshold=0)
        with pytest.raises(GraphError, match=r"node 'r0' \(Reshape\) reads initializer 's0' .* external file 'w.bin'"):
            import_onnx(onnx.load(path, load_external_data=False))
    else:
        assert _sizes(import_onnx(model))["Y"] == 48
    assert len(calls) == 1


def test_the_one_walk_tells_the_values_only_unread_data_sizes():
    g = _reshapes(2).graph
    g.node.insert(0, helper.make_node("NonZero", ["X"], ["nz"], name="nz"))
    g.node.insert(1, helper.make_node("Relu", ["nz"], ["nzr"], name="nzr"))
    found = onnx_importer._data_dependent_outputs(g, 17, {"s1"})
    assert found.sized == {"nz", "nzr", "a1", "Y"}
    assert found.by_unread == {"a1", "Y"}
    assert onnx_importer._data_dependent_outputs(g, 17).by_unread == frozenset()
