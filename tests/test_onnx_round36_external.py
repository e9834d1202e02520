"""ONNX importer, round 36: external data locations resolved as paths, and the reasons they are refused typed.

A location that passes through a subfolder and back (``sub/../w.bin``, which onnxruntime 1.32 reads) was refused as
"outside the model's folder": ``..`` anywhere in it was an escape. It is now normalized first, then checked to stay
inside the folder, and the file the kernel opens (through its links) must be inside it too. Every escape stays
refused, and names a Windows model means stay refused here too: a drive (``C:w.bin``, ``C:\\w.bin``), a share
(``\\\\host\\x``), and a name too long for the file system (it was taken for a missing file and planned).
The checks branched on their own message text; they now return a ``DataProblem`` of a ``Reason``."""

from __future__ import annotations

import os

import numpy as np
import pytest
from needs import need

onnx = need("onnx")

from test_onnx_round35_external import _reshape_saved, _saved  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import files as onnx_importer  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402


def _mkdir(name: str):
    return lambda folder: (folder / name).mkdir()


INSIDE = {   # case -> (location, setup): a path that stays inside the model's folder once normalized
    "through a subfolder and back": ("sub/../w.bin", _mkdir("sub")),
    "the same, written on Windows": ("sub\\..\\w.bin", _mkdir("sub")),
    "down two folders and up two": ("a/b/../../w.bin", lambda f: (f / "a" / "b").mkdir(parents=True)),
    "a dot folder": ("./sub/./../w.bin", _mkdir("sub")),
}


@pytest.mark.parametrize("case", sorted(INSIDE))
def test_a_location_that_stays_inside_once_normalized_imports(tmp_path, case):
    location, setup = INSIDE[case]
    g = import_onnx(_saved(tmp_path, location, setup))   # GraphError "is outside the model's folder" before
    assert (g.tensor("W").kind, g.tensor("W").size, g.tensor("y").size) == ("weight", 48, 32)


def test_onnxruntime_reads_it_too(tmp_path):
    ort = need("onnxruntime")
    s = ort.InferenceSession(_saved(tmp_path, "sub/../w.bin", _mkdir("sub")), providers=["CPUExecutionProvider"])
    y = s.run(None, {"x": np.ones((2, 3), np.float32)})[0]
    assert y.tolist() == [[12.0, 15.0, 18.0, 21.0]] * 2


def test_a_small_tensor_there_is_read_and_sizes_the_graph(tmp_path):
    """A Reshape's shape at ``sub/../s.bin``: refused as outside the folder, so the shape was unknown."""
    g = import_onnx(_reshape_saved(tmp_path, "sub/../s.bin", _mkdir("sub")))
    assert g.tensor("y").attrs["shape"] == [3, 2]


def _linked_out(folder):
    os.symlink(str(folder.parent), folder / "l")


def _drive_file(folder):
    (folder / "C:w.bin").write_bytes(np.arange(12, dtype=np.float32).tobytes())


REFUSED = {   # case -> (location, setup, what the message says, onnxruntime refuses it too)
    "up and out": ("../outside.bin", None, "is outside the model's folder", True),
    "down, then out": ("sub/../../outside.bin", _mkdir("sub"), "is outside the model's folder", True),
    "written on Windows": ("sub\\..\\..\\outside.bin", _mkdir("sub"), "is outside the model's folder", True),
    "back in by the folder's name": ("../model/w.bin", None, "leaves the model's folder through its parent", False),
    "a link out, then up": ("l/../outside.bin", _linked_out, "symbolic link out of the model's folder", True),
    "through a link out and back": ("l/model/../outside.bin", _linked_out, "symbolic link out of", True),
    "an absolute path": ("/etc/hostname", None, "is not a relative path", True),
    "a Windows share": ("\\\\host\\share\\w.bin", None, "is not a relative path", True),
    "a Windows root": ("\\w.bin", None, "is not a relative path", True),
    "a drive-relative name": ("C:w.bin", _drive_file, r"names a drive \(C:\)", False),
    "a drive's root": ("C:\\w.bin", None, r"names a drive \(C:\)", False),
    "a NUL byte": ("w.bin\0.txt", None, "holds a NUL character", False),   # (round 76: onnxruntime reads w.bin)
    "a name too long": ("a" * 300, None, "a name of 300 bytes, longer than the 255", True),
    "a path too long": ("/".join(["d" * 200] * 30), None, "longer than the 4096 a path may have", True),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_every_escape_stays_one_error_naming_the_tensor_and_the_file(tmp_path, case):
    location, setup, says, ort_refuses = REFUSED[case]
    with pytest.raises(GraphError, match=rf"initializer 'W': its external data is not read: .*{says}") as err:
        import_onnx(_saved(tmp_path, location, setup))
    assert repr(location) in str(err.value)
    assert ("onnxruntime refuses" in str(err.value)) == ort_refuses


@pytest.mark.parametrize("case", sorted(c for c in REFUSED if REFUSED[c][3] and "\0" not in REFUSED[c][0]))
def test_onnxruntime_refuses_the_ones_said_so(tmp_path, case):
    ort = need("onnxruntime")
    from onnx_oracle import ORT_ERRORS

    location, setup, _, _ = REFUSED[case]
    with pytest.raises(ORT_ERRORS):   # any of onnxruntime's own refusals ("escapes", "does not exist"...)
        ort.InferenceSession(_saved(tmp_path, location, setup), providers=["CPUExecutionProvider"])


def test_a_small_tensor_behind_an_escape_is_not_read(tmp_path):
    """The shape file outside the folder holds a valid shape: reading it would size the graph from it."""
    (tmp_path / "s.bin").write_bytes(np.array([3, 2], np.int64).tobytes())
    with pytest.raises(GraphError, match=r"'sub/\.\./\.\./s\.bin' is outside the model's folder"):
        import_onnx(_reshape_saved(tmp_path, "sub/../../s.bin", _mkdir("sub")))


def _in(tmp_path, name: str):
    (tmp_path / name).mkdir()
    return tmp_path / name


def test_a_reason_is_branched_on_not_its_words(tmp_path, monkeypatch):
    """Rewording every reason changes no decision: a missing file still imports, the model file itself is still
    refused without citing onnxruntime (the checks matched ``why.endswith(...)`` on these words before)."""
    for r in onnx_importer.Reason:
        monkeypatch.setattr(r, "_value_", (f"reworded {r.name}: {{location!r}}", r.value[1]))
    assert import_onnx(_saved(_in(tmp_path, "a"), "gone.bin")).tensor("W").size == 48
    with pytest.raises(GraphError, match=r"reworded MODEL_FILE: 'm\.onnx'$"):
        import_onnx(_saved(_in(tmp_path, "b"), "m.onnx"))
    with pytest.raises(GraphError, match=r"reworded NOT_A_FILE: 'sub'; onnxruntime refuses"):
        import_onnx(_saved(_in(tmp_path, "c"), "sub", _mkdir("sub")))


def test_the_problem_is_a_typed_value():
    p = onnx_importer.DataProblem(onnx_importer.Reason.NO_BYTE_COUNT, "w.bin", "offset", "abc")
    assert str(p) == "its offset 'abc' in 'w.bin' is no byte count" and p.reason.onnxruntime_refuses
    assert not onnx_importer.Reason.MODEL_FILE.onnxruntime_refuses


def test_the_cli_imports_it_and_keeps_its_data_file_from_an_output(tmp_path, capsys):
    from memplan.cli import main

    path = _saved(tmp_path, "sub/../w.bin", _mkdir("sub"))
    data = tmp_path / "model" / "w.bin"
    before = data.read_bytes()
    assert main(["import", path, "-o", str(tmp_path / "g.json"), "-q"]) == 0
    assert main(["import", path, "-o", str(data)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "external data" in err and "refusing to overwrite" in err, err
    assert data.read_bytes() == before
