"""Round 73 (cli73): hostile files and arguments given to the ``memplan`` command, each a defect found by probing.

- A picture or a tar archive given where graph or plan JSON or a minimalloc CSV is read (``memplan show plan.png``
  after ``memplan draw ... -o plan.png``, a graph sent as ``graph.tar``) was "holds a NUL byte ...: binary data, or
  UTF-16/UTF-32 text without a byte-order mark (save it as UTF-8)", and a PDF "not UTF-8 text: byte 0xe2 ... (Latin-1
  or Windows-1252 text? save it as UTF-8)": advice that leads nowhere, where a zip archive is named as one. Each is
  now named for what it is (``files.text_trouble``).
"""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest
from cli_contract import run_memplan

GRAPH = {"format": "memplan.graph/1", "name": "g", "tensors": [
    {"id": "x", "size": 256, "kind": "input"}, {"id": "y", "size": 256, "kind": "output"}],
    "nodes": [{"id": "a", "op": "X", "inputs": ["x"], "outputs": ["y"]}]}

#: a picture's first bytes as ``memplan draw`` (matplotlib) writes them, then enough to be a file of its kind
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x02\x80\x00\x00\x01\xe0\x08\x06\x00\x00\x00"
#: a PDF's header and its binary-marker comment: non-UTF-8 bytes long before its first NUL
PDF = b"%PDF-1.4\n%\xac\xdc \xab\xba\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def _tar_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _one_error(capsys, argv: list[str]) -> str:
    code, out, err = run_memplan(capsys, argv)
    assert code == 2, (argv, code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("memplan: error: "), err
    return lines[0]


@pytest.mark.parametrize(("name", "data", "kind"), [("plan.png", PNG, "a PNG image"), ("plan.pdf", PDF, "a PDF document"),
                                                    ("plan.jpg", JPEG, "a JPEG image")], ids=["png", "pdf", "jpeg"])
def test_a_picture_given_for_json_or_csv_is_named_a_picture(tmp_path, capsys, name, data, kind):
    path = tmp_path / name
    path.write_bytes(data)
    out = str(tmp_path / "out.json")
    for argv in (["show", str(path)], ["plan", str(path), "-o", out], ["csv", str(path), "-o", str(tmp_path / "o.csv")]):
        line = _one_error(capsys, argv)
        assert f"{path}: {kind}, not text" in line and "'memplan draw'" in line, line
        assert "UTF-8" not in line and "NUL" not in line, line   # (no advice to save a picture as UTF-8)
    assert sorted(os.listdir(tmp_path)) == [name]   # nothing written


def test_a_tar_archive_given_for_json_or_csv_is_named_an_archive(tmp_path, capsys):
    graph = tmp_path / "g.tar"
    graph.write_bytes(_tar_of("g.json", json.dumps(GRAPH).encode()))
    problem = tmp_path / "p.tar"
    problem.write_bytes(_tar_of("p.csv", b"id,lower,upper,size\na,0,2,4\n"))
    for argv, path in ((["plan", str(graph), "-o", str(tmp_path / "out.json")], graph), (["show", str(graph)], graph),
                       (["csv", str(problem), "-o", str(tmp_path / "o.csv")], problem)):
        line = _one_error(capsys, argv)
        assert line.endswith(f"{path}: a tar archive, not text (extract the file from it first)"), line
    assert sorted(os.listdir(tmp_path)) == ["g.tar", "p.tar"]


def test_text_that_merely_starts_like_a_mark_is_still_read_as_text(tmp_path, capsys):
    """Negative control: the marks are binary (or, for a PDF, a header no JSON or CSV starts with); a graph whose name
    holds 'ustar' or '%PDF-' is a graph, and a CSV is judged by its columns."""
    doc = dict(GRAPH, name="ustar %PDF- GIF89a")
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc))
    code, _, err = run_memplan(capsys, ["plan", str(path), "-o", str(tmp_path / "p.json"), "-q"])
    assert code == 0, err
    csv = tmp_path / "c.csv"
    csv.write_text("%PDF,lower,upper,size\na,0,2,4\n")
    line = _one_error(capsys, ["csv", str(csv), "-o", str(tmp_path / "o.csv")])
    assert "missing column 'id'" in line, line


#: the first lines of the SVG ``memplan draw`` (matplotlib) writes
SVG = ('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"\n'
       '  "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg xmlns="http://www.w3.org/2000/svg" version="1.1">\n'
       '</svg>\n')
#: a repository's web page of a graph file, saved in place of the raw file
HTML = '<!DOCTYPE html>\n<html lang="en" data-color-mode="auto">\n<head><title>g.json at main</title></head>\n</html>\n'


def test_memplans_own_trace_given_for_a_graph_or_plan_is_named_a_trace(tmp_path, capsys):
    """``memplan verify G trace.json`` (the plan's trace given for the plan) was "no 'format' field (expected
    'memplan.plan/1')" alone, where a graph given for a plan is named as one."""
    graph, plan, trace = (str(tmp_path / n) for n in ("g.json", "p.json", "t.json"))
    with open(graph, "w") as f:
        json.dump(GRAPH, f)
    assert run_memplan(capsys, ["plan", graph, "-o", plan, "-q"])[0] == 0
    assert run_memplan(capsys, ["trace", graph, plan, "-o", trace, "-q"])[0] == 0
    for argv, expected in ((["verify", graph, trace], "plan"), (["show", trace], "plan"),
                           (["plan", trace, "-o", str(tmp_path / "x.json")], "graph")):
        line = _one_error(capsys, argv)
        assert line.endswith(f"{trace}: no 'format' field (expected 'memplan.{expected}/1') (this is a Chrome/Perfetto "
                             f"trace, such as 'memplan trace' writes, where a {expected} is expected: a trace is for "
                             "ui.perfetto.dev, and no memplan command reads one)"), line
    # negative control: a document with no format and no trace events says what it said
    other = tmp_path / "o.json"
    other.write_text('{"traceEvent": []}')
    line = _one_error(capsys, ["show", str(other)])
    assert line.endswith("no 'format' field (expected 'memplan.plan/1')"), line


@pytest.mark.parametrize(("text", "kind"), [(SVG, "an SVG picture (such as 'memplan draw' writes)"),
                                            (HTML, "an HTML page (a web page saved in place of the file it shows? "
                                                   "download the raw file)"),
                                            ('<?xml version="1.0"?>\n<graph/>\n', "XML")], ids=["svg", "html", "xml"])
def test_markup_given_for_json_or_csv_is_named(tmp_path, capsys, text, kind):
    """``memplan show plan.svg`` (the picture ``draw`` wrote) and a graph saved from its web page were "not valid JSON
    (Expecting value at line 1 column 1)" alone (in ``csv``: "missing column 'id'")."""
    path = tmp_path / "in.json"
    path.write_text(text)
    line = _one_error(capsys, ["show", str(path)])
    assert line.endswith(f"not valid JSON (Expecting value at line 1 column 1); this is {kind}, not JSON"), line
    line = _one_error(capsys, ["plan", str(path), "-o", str(tmp_path / "p.json")])
    assert line.endswith(f"; this is {kind}, not JSON"), line
    line = _one_error(capsys, ["csv", str(path), "-o", str(tmp_path / "o.csv")])
    assert f"missing column 'id' (the header must name id,lower,upper,size); this is {kind}, not CSV" in line, line
    assert sorted(os.listdir(tmp_path)) == ["in.json"]


def test_a_csv_header_that_starts_with_a_bracket_is_no_markup(tmp_path, capsys):
    """Negative control: only an XML declaration, an SVG or HTML start is markup; a header '<id>,...' is a CSV's."""
    path = tmp_path / "c.csv"
    path.write_text("<id>,lower,upper,size\na,0,2,4\n")
    line = _one_error(capsys, ["csv", str(path), "-o", str(tmp_path / "o.csv")])
    assert line.endswith("missing column 'id' (the header must name id,lower,upper,size)"), line


class _BrokenPath:
    """An ``os.PathLike`` whose ``__fspath__`` returns neither str nor bytes (a caller's bug: ``os.fspath`` raises)."""

    def __fspath__(self):
        return 5


def test_a_pathlike_that_names_no_path_is_a_memplan_error(tmp_path):
    """``load_graph``, ``load_plan``, ``read_csv``, ``parse_csv``, ``save_graph``, ``save_plan`` and ``import_onnx`` given an
    ``os.PathLike`` whose ``__fspath__`` returns an int raised os.fspath's bare TypeError ("expected
    _BrokenPath.__fspath__() to return str or bytes, not int"), past the readers' and writers' path checks, which name a
    bool, an int or a PathLike of bytes. Now each is the reader's or writer's error naming the object."""
    import memplan
    from memplan.errors import GraphError, InputFormatError, MemplanError, OptionError, PlanFormatError
    from memplan.io.minimalloc import parse_csv, read_csv

    graph_path = tmp_path / "g.json"
    graph_path.write_text(json.dumps(GRAPH))
    graph = memplan.load_graph(str(graph_path))
    plan = memplan.plan(graph)
    bad = _BrokenPath()
    for call, error in ((lambda: memplan.load_graph(bad), GraphError), (lambda: memplan.load_plan(bad), PlanFormatError),
                        (lambda: read_csv(bad), InputFormatError), (lambda: parse_csv("id,lower,upper,size\n", bad),
                                                                    InputFormatError),
                        (lambda: memplan.save_graph(graph, bad), MemplanError), (lambda: memplan.save_plan(plan, bad),
                                                                                 MemplanError),
                        (lambda: plan.save(bad), MemplanError)):
        with pytest.raises(error, match="_BrokenPath"):
            call()
    pytest.importorskip("onnx")
    from memplan.importers.onnx import import_onnx

    with pytest.raises(InputFormatError, match="_BrokenPath"):
        import_onnx(bad)
    with pytest.raises(OptionError, match="is no path"):
        import_onnx(str(graph_path), outputs={"-o": bad})
    assert sorted(os.listdir(tmp_path)) == ["g.json"]
    # a PathLike of a str is still a path (the control)
    assert memplan.load_graph(graph_path) == graph


def test_example_names_a_link_loop_or_a_file_in_the_way(tmp_path, capsys):
    """``memplan example -o a`` with ``a -> b -> a`` said "a is a dangling symbolic link (to 'b', which does not exist)"
    though ``b`` is there (a loop, not a dangling link); ``-o out.json/`` and ``-o g.json/ex`` beside a file said the
    OS's "File exists" / "Not a directory", naming no file, where ``-o out.json`` names it."""
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    (tmp_path / "g.json").write_text(json.dumps(GRAPH))
    os.symlink("nothere", tmp_path / "dangling")
    before = sorted(os.listdir(tmp_path))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for out, expected in (("a", "a is a loop of symbolic links (a -> 'b' -> ... never reaches a file)"),
                              ("a/ex", "a is a loop of symbolic links (a -> 'b' -> ... never reaches a file)"),
                              ("g.json/", "g.json is a file, not a directory (the examples are several files and need "
                                          "a directory)"),
                              ("g.json/ex", "g.json is a file, not a directory (the examples are several files and "
                                            "need a directory)"),
                              ("g.json/ex/deeper", "g.json is a file, not a directory"),
                              # the control: a dangling link is still named as one
                              ("dangling", "dangling is a dangling symbolic link (to 'nothere', which does not exist)")):
            line = _one_error(capsys, ["example", "-o", out])
            assert line.startswith(f"memplan: error: cannot create directory {out}: {expected}"), line
    finally:
        os.chdir(cwd)
    assert sorted(os.listdir(tmp_path)) == before   # nothing made, nothing removed


def test_an_input_that_is_a_dangling_link_is_named_one(tmp_path, capsys):
    """``memplan plan LINK`` (``show``, ``verify``, ``csv``, ``import``) of a symbolic link to nothing said "LINK: no such
    file", which ``ls`` contradicts; ``example -o LINK`` already named such a link with its target."""
    link = tmp_path / "g.json"
    os.symlink("moved-away.json", link)
    for argv in (["plan", str(link), "-o", str(tmp_path / "p.json")], ["show", str(link)],
                 ["csv", str(link), "-o", str(tmp_path / "o.csv")], ["import", str(link), "-o", str(tmp_path / "o.json")]):
        line = _one_error(capsys, argv)
        assert line.endswith(f"{link}: a dangling symbolic link (to 'moved-away.json', which does not exist)"), line
    chain = tmp_path / "p.json"   # a link to a link to nothing: the first hop is there, as a link
    os.symlink("g.json", chain)
    line = _one_error(capsys, ["show", str(chain)])
    assert line.endswith(f"{chain}: a dangling symbolic link (to 'g.json', itself a link to nothing)"), line
    line = _one_error(capsys, ["show", str(tmp_path / "none.json")])   # the control: no link, no such file
    assert line.endswith("none.json: no such file"), line
    assert sorted(os.listdir(tmp_path)) == ["g.json", "p.json"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["--streams", "99999999999999999999"], "argument --streams: 99999999999999999999 is more than 1024 streams"),
    (["--devices", "9" * 44, "--graph-out", "s.json"], "argument --devices: 999999999999...(44 digits) is more than 1024 "
                                                        "devices"),
    (["--streams", "1025"], "argument --streams: 1025 is more than 1024 streams"),   # (as before)
    (["--streams", "-5"], "argument --streams: negative count: '-5'"),               # (as before)
    (["--streams", "0"], "argument --streams: must be at least 1, not 0"),           # (as before)
], ids=["streams-2**66", "devices-44-digits", "streams-1025", "streams-negative", "streams-0"])
def test_a_count_past_2_63_is_named_past_the_options_own_limit(tmp_path, capsys, argv, expected):
    """``plan --streams 99999999999999999999`` said "count '99999999999999999999' is not below 2**63": true, but a bound
    of no meaning for an option whose limit is 1024, which a count of 1025 is named against."""
    line = _one_error(capsys, ["plan", str(tmp_path / "g.json"), "-o", str(tmp_path / "p.json"), *argv])
    assert line.startswith(f"memplan: error: {expected} (see 'memplan plan --help')"), line


def test_main_in_process_takes_path_objects_and_names_what_is_no_argument(tmp_path, capsys):
    """``memplan.cli.main`` called by a program (a wrapper script, a notebook): ``main(["plan", Path("g.json"), "-o",
    out])`` raised argparse's raw TypeError ("'PosixPath' object is not subscriptable"), so did ``--streams`` given the
    int 2, and ``main("plan g.json -o p.json")`` (one string) was "invalid choice: 'p'", each letter an argument. A path
    object is now its text (as ``subprocess`` takes one); anything else is one error line naming it, exit 2."""
    import pathlib

    from memplan.cli import main

    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(GRAPH))
    out = tmp_path / "p.json"
    assert main(["plan", graph, "-o", out, "-q"]) == 0   # (pathlib.Path items)
    assert json.loads(out.read_text())["format"] == "memplan.plan/1"
    assert main(("show", pathlib.PurePosixPath(out), "--top", "1")) == 0   # (a tuple, a PurePath)
    capsys.readouterr()
    for argv, expected in (
            (f"plan {graph} -o {out}", "main(argv): argv is one str ("),
            (["plan", str(graph), "-o", str(tmp_path / "q.json"), "--streams", 2], "main(argv): argument 6 is int 2, not a "
                                                                                 "string"),
            (["plan", str(graph).encode(), "-o", str(tmp_path / "q.json")], "main(argv): argument 2 is bytes b'"),
            (["plan", _BrokenPath(), "-o", str(tmp_path / "q.json")], "main(argv): argument 2 is _BrokenPath "),
            (5, "main(argv): argv must be a list of arguments (strings), not int")):
        assert main(argv) == 2, argv   # type: ignore[arg-type]
        _, err = capsys.readouterr()
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"memplan: error: {expected}"), err
    assert sorted(os.listdir(tmp_path)) == ["g.json", "p.json"]


def test_import_of_a_model_named_dot_onnx_alone(tmp_path, capsys):
    """``memplan import .onnx`` (a model file named ``.onnx`` and nothing more) was refused as having "no extension",
    with the advice to "rename an ONNX model to end in .onnx", which it does: ``splitext`` reads ``.onnx`` as a stem."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / ".onnx"
    onnx.save(model, str(path))
    out = tmp_path / "g.json"
    code, _, err = run_memplan(capsys, ["import", str(path), "-o", str(out), "-q"])
    assert code == 0, err
    assert json.loads(out.read_text())["nodes"][0]["op"] == "Relu"
    other = tmp_path / ".onnx2"   # the control: a name that is no extension is still refused
    other.write_bytes(path.read_bytes())
    line = _one_error(capsys, ["import", str(other), "-o", str(tmp_path / "h.json")])
    assert "unknown model format (no extension and not a zip archive)" in line, line
