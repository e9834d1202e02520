"""A model given where graph or plan JSON is read is named as a model, with the command that reads it.

Why: ``memplan plan model.onnx`` said "not valid JSON (Expecting value at line 1 column 1)" and ``memplan plan
model.pt2`` "a zip archive, not text (extract the file from it first)", advice that leads nowhere; the command that
reads either is ``memplan import``. Each case below failed before (the old messages are the negative controls'),
and the JSON cases show the hint is given only to files that fail as JSON at their first byte.
"""

from __future__ import annotations

import json
import zipfile

import pytest

import memplan
from memplan.cli import main
from memplan.errors import GraphError, PlanFormatError

# an ONNX ModelProto's first bytes: field 1 (ir_version, varint 8), then field 7 (graph) and more; what onnx.save
# writes for a one-Relu model starts the same way (b"\x08\x0e:3\n...")
ONNX_BYTES = b"\x08\x08:\x0c\n\x01x\x12\x01y\x1a\x04Relu" + b"\x00" * 4


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _zip(path, names):
    with zipfile.ZipFile(path, "w") as z:
        for n in names:
            z.writestr(n, "0")
    return path


def test_an_onnx_model_given_to_plan_is_named_with_the_import_command(tmp_path, capsys):
    m = tmp_path / "model.onnx"
    m.write_bytes(ONNX_BYTES)
    code, out, err = _cli(capsys, "plan", str(m), "-o", str(tmp_path / "p.json"))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "an ONNX model" in err and f"memplan import {m} -o graph.json" in err
    assert not (tmp_path / "p.json").exists()


def test_an_onnx_model_without_its_suffix_is_told_to_take_one(tmp_path):
    m = tmp_path / "blob"
    m.write_bytes(ONNX_BYTES)
    with pytest.raises(GraphError, match=r"an ONNX model \(protobuf\), by its first byte.*named \*\.onnx"):
        memplan.load_graph(str(m))


def test_a_torch_export_archive_by_suffix_or_by_its_directory(tmp_path):
    pt2 = _zip(tmp_path / "m.pt2", ["m/models/model.json"])
    with pytest.raises(GraphError, match=r"a torch\.export archive, not JSON: 'memplan import .*m\.pt2 -o graph"):
        memplan.load_graph(str(pt2))
    # no suffix: the zip's directory names the archive (its entries after megabytes of weights, past the head)
    bare = _zip(tmp_path / "bare", ["m/data/weights/w.pt", *[f"m/data/{i}" for i in range(50)], "m/archive_format"])
    with pytest.raises(GraphError, match=r"a torch\.export archive"):
        memplan.load_graph(str(bare))


def test_a_plain_zip_keeps_the_zip_message(tmp_path):
    z = _zip(tmp_path / "a.zip", ["x.json"])
    with pytest.raises(GraphError, match=r"a zip archive, not text \(extract the file from it first\)"):
        memplan.load_graph(str(z))


def test_a_plan_path_that_is_a_model_is_named_so_too(tmp_path, diamond_files):
    g, _ = diamond_files
    m = tmp_path / "plan.onnx"
    m.write_bytes(ONNX_BYTES)
    with pytest.raises(PlanFormatError, match="an ONNX model"):
        memplan.load_plan(str(m))


def test_json_named_onnx_is_judged_as_json(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_text('{"a": 1')
    with pytest.raises(GraphError, match=r"not valid JSON \(Expecting") as e:
        memplan.load_graph(str(broken))
    assert "ONNX" not in str(e.value)
    good = tmp_path / "graph.onnx"
    memplan.save_graph(memplan.examples.diamond(), str(good))
    assert memplan.load_graph(str(good)).name == memplan.examples.diamond().name


def test_the_import_command_the_hint_names_reads_the_model(tmp_path, capsys):
    """The hint's command works: ``memplan import`` of a real ONNX model writes graph JSON (onnx installed)."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [2])],
                              [helper.make_tensor_value_info("y", 1, [2])])
    m = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph), str(m))
    code, _, err = _cli(capsys, "plan", str(m), "-o", str(tmp_path / "p.json"))
    assert code == 2 and "memplan import" in err
    code, _, err = _cli(capsys, "import", str(m), "-o", str(tmp_path / "g.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "g.json").read_text())["format"].startswith("memplan.graph")


# --- review63: the hint's claim and its cost -------------------------------------------------------------------


def test_a_torch_save_checkpoint_named_pt_is_not_called_a_torch_export_archive(tmp_path):
    """``.pt`` is torch.save's checkpoint suffix as often as an export's: a zip of that name is called a torch.export
    archive only where its directory holds ``archive_format`` (a checkpoint's does not: ``memplan import`` refuses it,
    so the hint led to a refusal). Failed before: the suffix alone made the claim."""
    ckpt = _zip(tmp_path / "ckpt.pt", ["ckpt/data.pkl", "ckpt/byteorder", "ckpt/data/0", "ckpt/version"])
    with pytest.raises(GraphError, match=r"a zip archive, not text") as e:
        memplan.load_graph(str(ckpt))
    assert "torch.export" not in str(e.value)
    export = _zip(tmp_path / "m.ep", ["m/models/model.json", "m/archive_format"])
    with pytest.raises(GraphError, match=r"a torch\.export archive"):
        memplan.load_graph(str(export))


def test_a_huge_zip_directory_is_not_listed(tmp_path, monkeypatch):
    """A zip whose central directory is over ``MAX_ZIP_DIRECTORY`` is not listed to look for ``archive_format`` (a
    1 GiB input may hold 13 million entries: 300,000 took 7 s and 200 MB to list, for a hint): it keeps the zip
    message. Failed before: the directory was read whatever its size (here the bound is lowered, not the file
    grown; the listing is made to fail loudly)."""
    import memplan.io as mio

    z = _zip(tmp_path / "many", [f"m/data/{i}" for i in range(200)] + ["m/archive_format"])
    monkeypatch.setattr(mio, "MAX_ZIP_DIRECTORY", 1000, raising=False)
    monkeypatch.setattr(zipfile.ZipFile, "namelist", lambda self: pytest.fail("the huge directory was listed"))
    with pytest.raises(GraphError, match=r"a zip archive, not text"):
        memplan.load_graph(str(z))


def test_a_fifo_in_the_zips_place_is_no_hang(tmp_path):
    """The zip is opened again to list its directory: a FIFO there (a path swapped after the checks) is not waited
    on. Failed before: ``zipfile.ZipFile(path)`` opened it blocking, waiting for a writer for good."""
    import os
    import threading

    from memplan.io import _model_kind

    fifo = tmp_path / "swapped"
    os.mkfifo(fifo)
    got: list = []
    t = threading.Thread(target=lambda: got.append(_model_kind(str(fifo), b"PK\x03\x04")), daemon=True)
    t.start()
    t.join(60)
    if t.is_alive():   # (release the reader, then fail)
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(5)
        pytest.fail("_model_kind waited on a FIFO")
    assert got == [None]


def test_an_archive_with_a_zip64_end_record_is_still_read_by_its_directory(tmp_path):
    """torch.export.save ends its archives with a zip64 end record (the plain one's sizes then 0xFFFF...): the bound on
    the directory reads its size from there, as zipfile does, and the archive is still named by its directory."""
    import struct

    plain = _zip(tmp_path / "plain", ["m/models/model.json", "m/archive_format"]).read_bytes()
    end = len(plain) - 22
    _, _, _, _, n, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", plain[end:])
    rec = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, cd_size, cd_offset)
    loc = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    z64 = tmp_path / "exported"
    z64.write_bytes(plain[:end] + rec + loc + eocd)
    assert zipfile.ZipFile(z64).namelist() == ["m/models/model.json", "m/archive_format"]
    with pytest.raises(GraphError, match=r"a torch\.export archive"):
        memplan.load_graph(str(z64))


@pytest.mark.parametrize("bad,said", [(b"\xff", r"not UTF-8 text: byte 0xff"), (b"\x00", r"NUL")])
def test_json_named_onnx_with_a_bad_byte_past_its_start_is_judged_as_text(tmp_path, bad, said):
    """A JSON file named ``.onnx`` whose trouble is past its first byte (a Latin-1 byte, a NUL) is told what is wrong
    with its text, not called an ONNX model: a protobuf never starts as JSON does (``{``, ``[`` or white space are no
    ModelProto field's tag). Failed before: the suffix alone made the claim there, and the byte's place was lost."""
    g = tmp_path / "graph.onnx"
    g.write_bytes(b'{"format": "memplan.graph/1", "name": "a' + bad + b'"}')
    with pytest.raises(GraphError, match=said) as e:
        memplan.load_graph(str(g))
    assert "ONNX" not in str(e.value)
    spaced = tmp_path / "spaced.onnx"
    spaced.write_bytes(b"\n  " + g.read_bytes())
    with pytest.raises(GraphError, match=said):
        memplan.load_graph(str(spaced))


def test_the_hint_quotes_a_path_with_spaces_so_it_pastes(tmp_path, capsys):
    import shlex

    d = tmp_path / "my models"
    d.mkdir()
    m = d / "it's.onnx"
    m.write_bytes(ONNX_BYTES)
    code, _, err = _cli(capsys, "plan", str(m), "-o", str(tmp_path / "p.json"))
    assert code == 2
    assert shlex.quote(str(m)) in err, err
    cmd = err[err.index("memplan import "):err.index(" -o graph.json") + len(" -o graph.json")]
    assert shlex.split(cmd) == ["memplan", "import", str(m), "-o", "graph.json"], cmd
