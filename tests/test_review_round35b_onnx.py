"""Review of round 35's ONNX external-data checks: a location written Windows-style (``weights\\w.bin``, a model
saved on Windows), which the importer reads with ``\\`` as ``/``, is the same file to every check.

``_location_problem`` stat'ed the location joined as written while ``_outside_folder`` had checked it with ``\\``
read as ``/``: the data file found by the one was no file to the other, and ``os.path.samefile`` raised a bare
FileNotFoundError (the CLI said "cannot write to stdout"). The CLI's check that no output replaces the model's data
file compared the location as written, so ``-o weights/w.bin`` was not seen as the model's own file."""

from __future__ import annotations

import numpy as np
from needs import need

onnx = need("onnx")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from memplan.cli import main  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _saved(tmp_path, location: str, folder_of_data: str = "weights") -> str:
    """``y = MatMul(x[2, 3], W[3, 4])`` in ``tmp_path/m.onnx``, ``W``'s bytes in ``tmp_path/weights/w.bin`` and its
    location written as ``location``."""
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    (tmp_path / folder_of_data).mkdir()
    (tmp_path / folder_of_data / "w.bin").write_bytes(data.tobytes())
    w = numpy_helper.from_array(data, "W")
    w.ClearField("raw_data")
    w.data_location = T.EXTERNAL
    w.external_data.add(key="location", value=location)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], "g",
                          [V("x", T.FLOAT, [2, 3])], [V("y", T.FLOAT, None)], [w])
    path = str(tmp_path / "m.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def test_a_windows_style_location_in_a_subfolder_imports(tmp_path):
    g = import_onnx(_saved(tmp_path, "weights\\w.bin"))   # FileNotFoundError before
    w = g.tensors[g.tensor_index["W"]]
    assert w.kind == "weight" and w.size == 48


def test_a_windows_style_location_with_spaces_and_unicode_imports(tmp_path):
    g = import_onnx(_saved(tmp_path, "wé ights\\w.bin", folder_of_data="wé ights"))
    assert g.tensors[g.tensor_index["W"]].size == 48


def test_the_cli_imports_it_too(tmp_path):
    assert main(["import", _saved(tmp_path, "weights\\w.bin"), "-o", str(tmp_path / "g.json"), "-q"]) == 0


def test_an_output_onto_the_windows_style_data_file_is_refused_and_the_file_kept(tmp_path, capsys):
    path = _saved(tmp_path, "weights\\w.bin")
    data = tmp_path / "weights" / "w.bin"
    before = data.read_bytes()
    assert main(["import", path, "-o", str(data), "-q"]) == 2
    assert data.read_bytes() == before
    assert "external data" in capsys.readouterr().err
