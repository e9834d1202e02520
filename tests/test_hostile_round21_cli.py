"""Hostile input, round 21: the ``memplan`` command line and the ONNX importer.

An import that overwrote the model's own weights file, sizes planned from a model's declared example where
they follow the values of a graph input, stderr and ``--help`` writes whose failure was hidden, warnings on
a quiet stderr, and outputs refused for the wrong reason (or after another output had been written).
Each test names the input, what memplan did with it, and what it must do now (the CLI contract of
tests/cli_contract.py: one ``memplan: error:`` line and exit 2, or the whole job done).
"""

from __future__ import annotations

import errno
import json
import os
import warnings

import pytest
from cli_contract import assert_bad_input, exit_code, leftovers
from cli_contract import run_memplan as run
from needs import need

import memplan
from memplan.cli import main

# --- ONNX: the model's own files and sizes that follow input values -------------------------------------

def _external_model(folder):
    """A model whose weights live in ``weights.bin`` beside it (as exporters write models over 2 GB)."""
    onnx = need("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 64))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 64))], initializer=[w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    path = folder / "m.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    return path, folder / "weights.bin"


@pytest.mark.parametrize("spelling", ["plain", "dotted", "link"])
def test_import_never_replaces_the_models_external_data(tmp_path, capsys, monkeypatch, spelling):
    """``memplan import m.onnx -o weights.bin`` replaced the model's 16 KiB of weights by the graph JSON and
    exited 0: only the .onnx file counted as an input. Every external data file is one now."""
    model, weights = _external_model(tmp_path)
    before = weights.read_bytes()
    monkeypatch.chdir(tmp_path)
    out = {"plain": "weights.bin", "dotted": "./sub/../weights.bin", "link": "w.link"}[spelling]
    (tmp_path / "sub").mkdir()
    os.symlink("weights.bin", tmp_path / "w.link")
    code, _, err = run(capsys, ["import", "m.onnx", "-o", out])
    assert_bad_input(code, err, f"-o {out}", "external data", "'w'")
    assert weights.read_bytes() == before
    assert not leftovers(tmp_path)
    assert exit_code(main, ["import", "m.onnx", "-o", "g.json", "-q"]) == 0   # the control: another name


def test_import_onnx_outputs_are_checked_against_the_models_files(tmp_path):
    """The library call the CLI makes: ``outputs=`` naming a weights file is refused before the import."""
    from memplan.importers.onnx import external_data_files, import_onnx

    model, weights = _external_model(tmp_path)
    onnx = need("onnx")
    assert external_data_files(onnx.load(str(model), load_external_data=False), str(tmp_path)) == \
        {str(weights): "w"}
    with pytest.raises(memplan.MemplanError, match="external data"):
        import_onnx(str(model), outputs={"out": str(weights)})
    assert import_onnx(str(model), outputs={"out": str(tmp_path / "g.json")}).tensors


def _one_node(op, inputs, outputs, opset, inits=()):
    onnx = need("onnx")
    from onnx import helper

    g = helper.make_graph([helper.make_node(op, [i[0] if isinstance(i, tuple) else i for i in inputs],
                                            [o[0] for o in outputs])], "g",
                          [onnx.helper.make_tensor_value_info(*i) for i in inputs if isinstance(i, tuple)],
                          [onnx.helper.make_tensor_value_info(*o) for o in outputs], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _sized_by_input_cases():
    from onnx import TensorProto as T

    F, I64 = T.FLOAT, T.INT64
    return {
        "BlackmanWindow": ([("n", I64, ())], [("y", F, (10,))], 17),
        "HannWindow": ([("n", I64, ())], [("y", F, (10,))], 17),
        "HammingWindow": ([("n", I64, ())], [("y", F, (10,))], 17),
        "AffineGrid": ([("theta", F, (1, 2, 3)), ("size", I64, (4,))], [("y", F, (1, 4, 4, 2))], 20),
        "STFT": ([("sig", F, (1, 128, 1)), ("step", I64, ()), "", ("len", I64, ())], [("y", F, (1, 15, 9, 2))], 17),
        "MelWeightMatrix": ([("a", I64, ()), ("b", I64, ()), ("c", I64, ()), ("d", F, ()), ("e", F, ())],
                            [("y", F, (9, 8))], 17),
        "DFT": ([("sig", F, (1, 8, 4, 1)), ("length", I64, ())], [("y", F, (1, 8, 4, 2))], 20),
        "ImageDecoder": ([("data", T.UINT8, (100,))], [("y", T.UINT8, (4, 4, 3))], 20),
        "Resize": ([("x", F, (1, 1, 2, 2)), ("scales", F, (4,))], [("y", F, (1, 1, 4, 4))], 10),
    }


@pytest.mark.parametrize("op", ["BlackmanWindow", "HannWindow", "HammingWindow", "AffineGrid", "STFT",
                                "MelWeightMatrix", "DFT", "ImageDecoder", "Resize"])
def test_a_size_that_follows_an_input_value_is_never_planned(op):
    """A window of the length a graph input holds, STFT frames of its step, AffineGrid's size, DFT's length, MelWeightMatrix's bins, a decoded image, Resize-10's scales: the model's declared output
    size (its example's: 1,080 B for STFT) was planned, and a longer result at run time overran its slot.
    They join the ops whose sizes follow input values (round 20: Range, Expand, Reshape...)."""
    need("onnx")
    from memplan.importers.onnx import import_onnx

    inputs, outputs, opset = _sized_by_input_cases()[op]
    with pytest.raises(memplan.GraphError, match="run time"):
        import_onnx(_one_node(op, inputs, outputs, opset))


def test_sizes_from_constants_and_inputs_that_size_nothing_are_still_planned():
    """The controls: a window of a constant length folds and is planned (10 floats); Resize-13 reads a roi
    from a graph input (the roi moves no size) and scales from a constant: planned as before."""
    need("onnx")
    import numpy as np
    from onnx import TensorProto as T
    from onnx import numpy_helper

    from memplan.importers.onnx import import_onnx

    n = numpy_helper.from_array(np.array(10, np.int64), "n")
    g = import_onnx(_one_node("BlackmanWindow", ["n"], [("y", T.FLOAT, None)], 17, [n]))
    assert {t.id: t.size for t in g.tensors}["y"] == 40
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    g = import_onnx(_one_node("Resize", [("x", T.FLOAT, (1, 1, 2, 2)), ("roi", T.FLOAT, (8,)), "s"],
                              [("y", T.FLOAT, (1, 1, 4, 4))], 13, [scales]))
    assert {t.id: t.size for t in g.tensors}["y"] == 64


# --- options named as given -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["N=-1", f"N={2 ** 63}"])
def test_a_dim_out_of_range_is_named_by_the_option(tmp_path, capsys, value):
    """``--dim N=-1`` was refused as "m.onnx: dimension 'N': ...", blaming the model for the option."""
    onnx = need("onnx")
    from test_importers_onnx import symbolic_model

    m = tmp_path / "m.onnx"
    onnx.save(symbolic_model(), str(m))
    code, _, err = run(capsys, ["import", m, "-o", tmp_path / "g.json", "--dim", value, "--dim", "seq=4"])
    assert_bad_input(code, err, f"--dim '{value}'", "0..2**63-1")
    assert "m.onnx" not in err


@pytest.mark.parametrize("value", ["K", "B", " ", "GiB"])
def test_a_byte_count_is_quoted_as_given(graph_file, tmp_path, capsys, value):
    """``--memory-budget K`` said "not a byte count: ''": the suffix stripped, the value quoted was none."""
    code, _, err = run(capsys, ["plan", graph_file, "-o", tmp_path / "p.json", "--memory-budget", value])
    assert_bad_input(code, err, "--memory-budget", f"not a byte count: {value!r}")


def test_minus_zero_microseconds_are_zero(graph_file, tmp_path, capsys):
    """``simulate --event-us -0`` printed "at -0 us"."""
    p = tmp_path / "p.json"
    assert exit_code(main, ["plan", graph_file, "-o", p, "-q"]) == 0
    code, out, _ = run(capsys, ["simulate", graph_file, p, "--event-us", "-0"])
    assert code == 0 and " at 0 us" in out and "-0" not in out


@pytest.mark.parametrize("argv", [["plan", "-", "-o", "OUT"], ["show", "-"], ["verify", "-", "GRAPH"],
                                  ["csv", "-", "-o", "OUT"]])
def test_dash_as_an_input_says_stdin_is_not_read(graph_file, tmp_path, capsys, monkeypatch, argv):
    """``memplan plan - -o p.json`` said "-: no such file", as if a file '-' were missing."""
    monkeypatch.chdir(tmp_path)
    argv = [{"OUT": tmp_path / "out", "GRAPH": graph_file}.get(a, a) for a in argv]
    code, _, err = run(capsys, argv)
    assert_bad_input(code, err, "-: ", "standard input")


# --- outputs refused for the right reason, before any is written ----------------------------------------

def test_an_output_name_too_long_is_refused_before_any_output(graph_file, tmp_path, capsys):
    """``plan G -o <300 characters>.json --graph-out g2.json`` wrote g2.json and then failed on -o ("File name
    too long", not naming the option): half the result. The directory probe now has the output's length."""
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    long, fits = tmp_path / ("a" * (name_max - 4) + "x.json"), tmp_path / ("b" * (name_max - 5) + ".json")
    second = tmp_path / "g2.json"
    code, _, err = run(capsys, ["plan", graph_file, "-o", long, "--graph-out", second])
    assert_bad_input(code, err, "-o ", "File name too long")
    assert not second.exists() and not leftovers(tmp_path)
    assert exit_code(main, ["plan", graph_file, "-o", fits, "-q"]) == 0   # the longest name that fits
    assert json.loads(fits.read_text())["format"] == "memplan.plan/1"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
def test_an_output_linking_to_what_no_path_names(graph_file, tmp_path, capsys):
    """``-o /dev/stdout`` on a pipe: the link reads back as /proc/PID/fd/pipe:[N], and the refusal said "No
    such file or directory (in /proc/PID/fd)". A pipe is not a regular file; a deleted file has no path."""
    r, w = os.pipe()
    deleted = tmp_path / "deleted"
    fd = os.open(deleted, os.O_WRONLY | os.O_CREAT)
    os.unlink(deleted)
    try:
        os.symlink(f"/proc/self/fd/{w}", tmp_path / "pipe.json")
        os.symlink(f"/proc/self/fd/{fd}", tmp_path / "gone.json")
        code, _, err = run(capsys, ["plan", graph_file, "-o", tmp_path / "pipe.json"])
        assert_bad_input(code, err, "-o ", "not a regular file")
        code, _, err = run(capsys, ["plan", graph_file, "-o", tmp_path / "gone.json"])
        assert_bad_input(code, err, "-o ", "no path names")
    finally:
        for f in (r, w, fd):
            os.close(f)
    assert not leftovers(tmp_path) and not deleted.exists()


# --- stdout and stderr that take nothing ---------------------------------------------------------------

class _Full:
    """A stream on a full disk (``> /dev/full``): every write and flush raises ENOSPC."""

    encoding = "utf-8"
    errors = "strict"

    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    def isatty(self):
        return False


@pytest.mark.parametrize("argv", [["--help"], ["plan", "--help"], ["bench", "planners", "--help"]])
def test_help_that_cannot_be_written_is_an_error(capsys, monkeypatch, argv):
    """``memplan --help > /dev/full`` exited 0 with nothing written: argparse drops its write errors."""
    monkeypatch.setattr("sys.stdout", _Full())
    code = exit_code(main, argv)
    err = capsys.readouterr().err
    assert_bad_input(code, err, "cannot write to stdout", "No space left")


def test_a_stderr_that_takes_nothing(graph_file, tmp_path, monkeypatch):
    """``memplan plan G -o p.json 2>/dev/full``: the plan was written, then the summary line's ENOSPC and the
    error line about it both failed: a hidden traceback and exit 1. The work's exit code stands now: 0 for
    the plan, 2 for bad input and for a usage mistake."""
    monkeypatch.setattr("sys.stderr", _Full())
    p = tmp_path / "p.json"
    assert exit_code(main, ["plan", graph_file, "-o", p, "--progress", "--solver", "search"]) == 0
    assert memplan.load_plan(str(p)).arena_bytes > 0
    assert exit_code(main, ["plan", tmp_path / "missing.json", "-o", tmp_path / "q.json"]) == 2
    assert exit_code(main, ["plan", graph_file, "-o", tmp_path / "q.json", "--bogus"]) == 2
    assert exit_code(main, []) == 2
    assert not (tmp_path / "q.json").exists()


# --- pictures: no warnings on a quiet stderr -----------------------------------------------------------

def test_draw_of_glyphs_the_font_lacks_is_quiet(tmp_path, capsys):
    """Ids in a script the font lacks (Tangut here; CJK on DejaVu Sans): ``draw -q`` printed matplotlib's
    "Glyph N missing from font(s)" warnings, two lines each with a source line, once per glyph and pass."""
    need("matplotlib")
    from memplan.graph import GraphBuilder

    b = GraphBuilder("\U00017000")
    x = b.input("x\U00017001", 1 << 20)
    h = b.node("n1", "RELU", [x], b.intermediate("h\U00017002", 1 << 20))
    b.node("n2", "RELU", [h], b.output("y\U00017003", 1 << 20))
    g, p, pic = tmp_path / "g.json", tmp_path / "p.json", tmp_path / "m.svg"
    memplan.save_graph(b.build(), str(g))
    assert exit_code(main, ["plan", g, "-o", p, "-q"]) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = run(capsys, ["draw", g, p, "-o", pic, "-q", "--title", "\U00017004"])
    assert code == 0 and err == "" and pic.stat().st_size > 0
    assert not [w for w in caught if "Glyph" in str(w.message)]
