"""The command line, round 31: an ONNX model named through a symlink and '..' (needs onnx)."""

from __future__ import annotations

import os

from cli_contract import run_memplan
from needs import need

onnx = need("onnx")
from test_importers_onnx import reshape_model  # noqa: E402


def test_import_reads_small_external_data_from_the_folder_the_kernel_finds_the_model_in(tmp_path, capsys):
    """``import LINK/../r.onnx`` (``LINK`` a symlink to ``D/sub``): the model is ``D/r.onnx``, and its small
    external data (``w.bin``, holding a Reshape's shape) lies beside it, where onnx's own loader looks. The
    importer looked in the folder ``os.path.abspath`` gives, lexically (beside ``LINK``), so the shape was "not
    read" and the import refused, or, with another ``w.bin`` there, read from the wrong file."""
    real = tmp_path / "elsewhere"
    (real / "sub").mkdir(parents=True)
    model = reshape_model()   # (its shape through a Cast: onnxruntime cannot load a Reshape shape held outside)
    shape = next(t for t in model.graph.initializer if t.name == "shape")
    shape.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(shape).astype("float64"), "shape"))
    model.graph.node.insert(0, onnx.helper.make_node("Cast", ["shape"], ["shapei"], name="cast", to=onnx.TensorProto.INT64))
    model.graph.node[2].input[1] = "shapei"
    onnx.save(model, str(real / "r.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="w.bin", size_threshold=0)
    os.symlink(real / "sub", tmp_path / "link")
    model = os.path.join(str(tmp_path / "link"), "..", "r.onnx")
    code, _, err = run_memplan(capsys, ["import", model, "-o", tmp_path / "g.json", "-q"])
    assert (code, err) == (0, ""), err
    assert (tmp_path / "g.json").is_file()
