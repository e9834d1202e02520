"""Hostile input, round 22: the ``memplan`` command line's option values and ``memplan import``'s files.

List options that ran a case twice for a repeated value, options given twice of which one was dropped,
numbers that Python's ``int()``/``float()`` read but no user means ('1_0', '١٢', ' 5', 'nan'), ONNX models
of an IR version the installed onnx does not read, and model files whose format was taken from the end
of their name only. Each test names the input, what memplan did, and what it must do now (the CLI
contract of tests/cli_contract.py: one ``memplan: error:`` line and exit 2, or the whole job done).
"""

from __future__ import annotations

import argparse
import os
import zipfile

import handgraphs as H
import pytest
from cli_contract import assert_bad_input, exit_code, leftovers
from cli_contract import run_memplan as run
from needs import need

import memplan
from memplan import argtypes
from memplan.cli import main

# --- 1. list options are sets; an option is given once ----------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["planners", "--corpus", "examples", "--solvers", "greedy,greedy"], ["--solvers", "repeated", "'greedy'"]),
    (["planners", "--corpus", "examples,examples"], ["--corpus", "repeated", "'examples'"]),
    (["planners", "--corpus", "random", "--sizes", "50,050"], ["--sizes", "repeated", "'050'", "'50'"]),
    (["planners", "--corpus", "examples", "--only", "qkv,qkv"], ["--only", "repeated", "'qkv'"]),
    (["scale", "--nodes", "100", "100", "--mode", "serial"], ["--nodes", "repeated", "100"]),
    (["scale", "--nodes", "--wide", "10", "10"], ["--wide", "repeated", "10"]),
    (["scale", "--nodes", "--inplace", "10", "--inplace-shape", "one", "one"], ["--inplace-shape", "repeated", "one"]),
    (["scale", "--nodes", "100", "--mode", "serial", "serial"], ["--mode", "repeated", "serial"]),
    (["devices", "--models", "tiny", "tiny"], ["--models", "repeated", "tiny"]),
    (["devices", "--models", "tiny", "--devices", "2", "2"], ["--devices", "repeated", "2"]),
    # list syntax: values as written between the commas (' 60' was stripped; a stray comma was skipped)
    (["planners", "--corpus", "random", "--sizes", "50, 60"], ["--sizes", "' 60'", "spaces"]),
    (["planners", "--corpus", "random", "--sizes", "50,,60"], ["--sizes", "empty value"]),
])
def test_a_repeated_list_value_is_refused_naming_the_option(capsys, argv, words):
    """``bench planners --solvers greedy,greedy`` (and a size, model, device count or mode given twice) ran
    the same case twice, a table with duplicate rows; now one line naming the option and the value."""
    code, out, err = run(capsys, ["bench", *argv])
    assert_bad_input(code, err, *words)
    assert out == ""   # refused before the suite printed its table head


@pytest.mark.parametrize("extra, words", [
    (["-o", "{b}"], ["-o/--output", "given twice", "{b}"]),      # wrote b.json only, exit 0
    (["--seed", "1", "--seed", "2"], ["--seed", "given twice"]),  # planned with seed 2
    (["--streams", "2", "--streams", "auto"], ["--streams", "given twice"]),
])
def test_an_option_given_twice_is_refused(tmp_path, capsys, graph_file, extra, words):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    extra = [x.replace("{b}", str(b)) for x in extra]
    code, _, err = run(capsys, ["plan", graph_file, "-o", a, *extra])
    assert_bad_input(code, err, *(w.replace("{b}", str(b)) for w in words))
    assert not a.exists() and not b.exists()


def test_repeatable_and_flag_options_still_repeat(tmp_path, capsys):
    """``--dim`` is repeatable by design (an equal repeat is harmless) and flags may be given twice."""
    parser = argtypes.CommandParser(prog="t")
    parser.add_argument("--dim", action="append", default=[])
    parser.add_argument("-q", action="store_true")
    parser.add_argument("--n", type=argtypes.count, nargs="+")
    args = parser.parse_args(["--dim", "a=1", "--dim", "a=1", "-q", "-q", "--n", "1", "2"])
    assert args.dim == ["a=1", "a=1"] and args.q and args.n == [1, 2]


# --- 2. numbers are plain ASCII decimal ---------------------------------------------------------------

@pytest.mark.parametrize("option, value", [
    ("--seed", "1_0"), ("--seed", "١٢"), ("--seed", " 5"), ("--seed", "5\n"), ("--seed", "+5"),
    ("--workers", "٢"), ("--streams", "1_0"), ("--streams", " auto"), ("--streams", "0x10"),
    ("--max-events", "1_000"), ("--devices", "２"),
    ("--time-limit", "1_0"), ("--time-limit", "١"), ("--time-limit", " 5"), ("--time-limit", "nan"),
    ("--event-us", "infinity"), ("--event-us", "1_0"),
    ("--memory-budget", "1_0K"), ("--memory-budget", "١٢"), ("--memory-budget", " 12 "), ("--memory-budget", "nanK"),
    ("--device-capacity", "٨G"),
])
def test_plan_numbers_are_ascii_decimal(tmp_path, capsys, graph_file, option, value):
    """int()/float() read '1_0' as 10, '١٢' (Arabic-Indic digits) as 12 and ' 5' as 5: a pasted or
    mistyped value was planned with a number the user never wrote. Refused naming the option."""
    out = tmp_path / "p.json"
    code, _, err = run(capsys, ["plan", graph_file, "-o", out, option, value])
    assert_bad_input(code, err, f"argument {option}")
    assert not out.exists()


@pytest.mark.parametrize("argv, option", [
    (["show", "{plan}", "--top", "٣"], "--top"),                       # printed 3 tensors
    (["csv", "{csv}", "-o", "{out}", "--capacity", "1_0"], "--capacity"),
    (["bench", "schedule", "--quick", "--budget", "1_0"], "--budget"),  # a 10x budget
    (["bench", "planners", "--sizes", "5_0"], "--sizes"),
    (["bench", "scale", "--nodes", "١٠٠"], "--nodes"),
    (["import", "{model}", "-o", "{out}", "--batch", "١"], "--batch"),
    (["import", "{model}", "-o", "{out}", "--alignment", "2_56"], "--alignment"),
    (["import", "{model}", "-o", "{out}", "--dim", "seq=١"], "--dim"),
    (["import", "{model}", "-o", "{out}", "--dim", "seq=1_0"], "--dim"),
])
def test_other_commands_numbers_are_ascii_decimal(tmp_path, capsys, argv, option):
    plan = tmp_path / "p.json"
    memplan.plan(H.qkv()).save(str(plan))
    csv = tmp_path / "t.csv"
    csv.write_text("id,lower,upper,size\n0,0,2,4\n")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x07")   # (refused on the option before the model is read)
    out = tmp_path / "out"
    argv = [str(a).format(plan=plan, csv=csv, out=out, model=model) for a in argv]
    code, _, err = run(capsys, argv)
    assert_bad_input(code, err, option)
    assert not out.exists()


def test_well_formed_numbers_still_parse():
    """The spellings the docs give keep working."""
    assert argtypes.size("64KiB") == argtypes.size("64K") == argtypes.size("64kb") == 65536
    assert argtypes.size("1.5M") == 3 << 19 and argtypes.size("1e3") == 1000 and argtypes.size("512B") == 512
    assert argtypes.size(str(2 ** 53 + 1)) == 2 ** 53 + 1   # exact, not through a float
    assert argtypes.seconds(".5") == 0.5 and argtypes.seconds("1E3") == 1000.0
    assert argtypes.microseconds("-0") == 0.0 and argtypes.streams("AUTO") == "auto"
    assert argtypes.count("007") == 7 and argtypes.seed("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="negative count"):
        argtypes.count("-1")
    with pytest.raises(argparse.ArgumentTypeError, match="too many"):   # int() refuses past 4300 digits
        argtypes.count("1" * 5000)
    from memplan.importers.onnx import parse_dims
    assert parse_dims(["b = 2", "c=0"]) == {"b": 2, "c": 0}


# --- 3. the ONNX IR version ---------------------------------------------------------------------------

def _model(ir_version: int | None = None):
    onnx = need("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 64))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 64))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    if ir_version is not None:
        m.ir_version = ir_version
    return onnx, m


@pytest.mark.parametrize("version", [0, "newest+1", 99])
def test_an_onnx_ir_version_onnx_does_not_read_is_refused(tmp_path, capsys, version):
    """A model stamped with IR version 99 (or one past the installed onnx's, or 0: the field missing)
    imported and planned, shape inference reading it as today's IR; now one line naming the version."""
    onnx = need("onnx")
    v = onnx.IR_VERSION + 1 if version == "newest+1" else version
    onnx, m = _model(v)
    path, out = tmp_path / "m.onnx", tmp_path / "g.json"
    onnx.save(m, str(path))
    code, _, err = run(capsys, ["import", path, "-o", out])
    assert_bad_input(code, err, str(path), f"ir_version {v}" if v == 0 else f"IR version {v}")
    assert not out.exists() and not leftovers(tmp_path)
    from memplan.errors import GraphError
    from memplan.importers.onnx import import_onnx

    with pytest.raises(GraphError, match=f"IR version|ir_version {v}"):   # a ModelProto given in code too
        import_onnx(m)
    m.ir_version = onnx.IR_VERSION   # the control
    assert len(import_onnx(m).nodes) == 1


# --- 4. which importer reads a model file ---------------------------------------------------------------

def test_import_reads_an_onnx_extension_in_any_case(tmp_path, capsys):
    onnx, m = _model()
    path = tmp_path / "M.ONNX"
    onnx.save(m, str(path))
    assert exit_code(main, ["import", path, "-o", tmp_path / "g.json", "-q"]) == 0
    assert memplan.load_graph(str(tmp_path / "g.json")).name == "M"


@pytest.mark.parametrize("name", ["model", "model.bin", "model.json", "model.onnx.gz"])
def test_an_unknown_extension_is_refused_naming_the_ones_understood(tmp_path, capsys, name):
    """A file not named .onnx (nor a zip archive) was parsed as an ONNX protobuf on a guess: a model saved
    without an extension imported, a graph JSON given by mistake was 'not a readable ONNX model
    (DecodeError ...)'. An ONNX protobuf carries no mark to sniff: the error says which names are read."""
    onnx, m = _model()
    path = tmp_path / name
    onnx.save(m, str(path)) if not name.endswith(".json") else memplan.save_graph(H.qkv(), str(path))
    code, _, err = run(capsys, ["import", path, "-o", tmp_path / "g.json"])
    assert_bad_input(code, err, str(path), "unknown model format", ".onnx", ".pt2")
    assert not (tmp_path / "g.json").exists()


def test_a_zip_archive_that_is_not_a_program_says_why_torch_read_it(tmp_path, capsys):
    """A zipped ONNX model named .onnx: torch.export's loader reads zip archives, and its error alone
    ('not a torch.export program') left the user wondering why torch was asked at all."""
    need("torch")
    path = tmp_path / "m.onnx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m.onnx", b"\x08\x07")
    code, _, err = run(capsys, ["import", path, "-o", tmp_path / "g.json"])
    assert_bad_input(code, err, str(path), "not a torch.export program", "zip archive", "*.onnx")


def test_a_torch_export_program_is_recognised_by_its_content(tmp_path, capfd):
    """A .pt2 program saved as .PT2 or without an extension was handed to the ONNX importer
    ('DecodeError'); torch's loader also logs a warning for a path not ending in .pt2. Now a zip archive is
    a program whatever its name, and the import is quiet."""
    torch = need("torch")

    class Relu(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x) + 1

    saved = tmp_path / "saved.pt2"
    torch.export.save(torch.export.export(Relu(), (torch.ones(4, 8),)), str(saved))
    for name in ("p.PT2", "program"):
        os.link(saved, tmp_path / name)
    capfd.readouterr()
    for name in ("p.PT2", "program"):
        out = tmp_path / f"{name}.json"
        assert exit_code(main, ["import", tmp_path / name, "-o", out, "-q"]) == 0
        assert capfd.readouterr().err == ""
        assert len(memplan.load_graph(str(out)).nodes) >= 2


# --- 5. '--' ends the options ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["plan", "{g}", "-o", "{p}", "--"], ["plan", "-o", "{p}", "--", "{g}"],
                                  ["--", "plan", "{g}", "-o", "{p}"]])
def test_a_double_dash_that_ends_the_options_is_accepted(tmp_path, capsys, graph_file, argv):
    """``memplan plan G -o P --`` was refused as "unrecognized arguments: --", ``memplan -- plan G -o P`` as
    "invalid choice: '--'": Python 3.11's subcommands hand on the '--' (as an extra argument, or as the
    subcommand's name)."""
    p = tmp_path / "p.json"
    argv = [a.format(g=graph_file, p=p) for a in argv]
    assert exit_code(main, argv) == 0, capsys.readouterr().err
    memplan.verify(memplan.load_graph(str(graph_file)), memplan.load_plan(str(p)))


@pytest.mark.parametrize("tail, word", [(["--", "extra"], "extra"), (["--", "--"], "--")])
def test_arguments_after_a_double_dash_are_still_checked(tmp_path, capsys, graph_file, tail, word):
    p = tmp_path / "p.json"
    code, _, err = run(capsys, ["plan", graph_file, "-o", p, *tail])
    assert_bad_input(code, err, f"unrecognized arguments: {word}")
    assert not p.exists()
    code, _, err = run(capsys, ["--", "--", "plan", graph_file, "-o", p])   # the second '--' is no command
    assert_bad_input(code, err, "invalid choice: '--'")
