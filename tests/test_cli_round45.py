"""Round 45 (CLI): standard input that is the file stderr appends to, paths with a newline in error lines, and
hostile invocations of the subcommands.

The CLI runs as its own process (``cli_forks``: forked, its stdin, stdout and stderr are real files here, which the checks look at). Each test
names the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from cli_forks import memplan_cli  # (forked from one interpreter: real streams and status, one import)

import memplan
from memplan import examples


def one_error(text: bytes, *words: str) -> str:
    """``text`` is exactly one ``memplan: error:`` line holding every word, and no traceback; the line."""
    lines = text.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memplan: error: "), text
    for w in words:
        assert w in lines[0], (w, text)
    return lines[0]


@pytest.fixture
def graph_file(tmp_path):
    """The bundled diamond as a graph file."""
    gp = tmp_path / "g.json"
    memplan.save_graph(examples.diamond(), str(gp))
    return str(gp)


# ---- standard input read from the file stderr appends to ---------------------------------------------------------


@pytest.mark.parametrize("argv", [["plan", "-", "-o", "{out}"], ["plan", "-", "-o", "{out}", "--bogus"],
                                  ["show", "-"], ["verify", "-", "{g}"], ["csv", "-", "-o", "{out}"]])
@pytest.mark.parametrize("spelling", ["same", "symlink", "hardlink"])
def test_stdin_that_is_the_stderr_file_is_refused_and_left_whole(graph_file, tmp_path, argv, spelling):
    """``memplan plan - -o P < G 2>> G``: the input '-' (standard input) is refused, and that refusal's error line
    was appended to G, the graph the user meant (exit 2, G one line longer). Refused with G left whole, also where
    stderr's path is a symlink or a hard link to G; no output written."""
    before = open(graph_file, "rb").read()
    err_path = graph_file
    if spelling == "symlink":
        err_path = str(tmp_path / "link.json")
        os.symlink(graph_file, err_path)
    elif spelling == "hardlink":
        err_path = str(tmp_path / "hard.json")
        os.link(graph_file, err_path)
    out = tmp_path / "new.json"
    args = [a.format(out=out, g=graph_file) for a in argv]
    with open(graph_file, "rb") as inp, open(err_path, "ab") as err:
        proc = memplan_cli(args, stdin=inp, stderr=err)
    assert proc.returncode == 2
    assert open(graph_file, "rb").read() == before
    assert not out.exists()
    if "--bogus" not in argv:
        one_error(proc.stdout, "standard input", "redirect stderr elsewhere")


def test_stdin_from_another_file_still_says_why_on_stderr(graph_file, tmp_path):
    """The control: ``plan - -o P < G 2> E`` (E another file) is the usual refusal of '-', on stderr."""
    with open(graph_file, "rb") as inp, open(tmp_path / "e.txt", "wb") as err:
        proc = memplan_cli(["plan", "-", "-o", tmp_path / "p.json"], stdin=inp, stderr=err)
    assert proc.returncode == 2 and not proc.stdout
    one_error((tmp_path / "e.txt").read_bytes(), "not from standard input")


# ---- messages ------------------------------------------------------------------------------------------------------


def _doc(**change):
    doc = {"format": "memplan.graph/1", "name": "g",
           "tensors": [{"id": "x", "size": 16, "kind": "input"}, {"id": "y", "size": 16, "kind": "output"}],
           "nodes": [{"id": "a", "op": "UNARY", "inputs": ["x"], "outputs": ["y"]}]}
    for where, value in change.items():
        part, field = where.split("__")
        doc[part][0][field] = value
    return doc


@pytest.mark.parametrize("change, words", [
    ({"nodes__id": ""}, ["node #0", "field 'id'", "empty string"]),
    ({"tensors__id": ""}, ["tensor #0", "field 'id'", "empty string"]),
    ({"tensors__size": True}, ["tensor 'x': size True (a bool) is not an integer", "field 'size'"]),
    ({"tensors__size": False}, ["tensor 'x'", "field 'size'", "False (a bool)"]),
])
def test_empty_ids_and_bool_sizes_are_named(change, words):
    """An empty node or tensor id was "node #0 has no string id" (it is a string: the empty one), and ``"size": true``
    "size True is not an integer" (to Python a bool is one); each now names the element, the field and why."""
    with pytest.raises(memplan.GraphError) as info:
        memplan.graph_from_dict(_doc(**change))
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_a_memory_map_of_one_tensor_says_tensor():
    """The memory map's title said "1 arena tensors"."""
    from needs import need

    need("matplotlib")
    from memplan.viz.memmap import memory_map_figure

    b = memplan.GraphBuilder("one")
    b.node("a", "FILL", [], b.output("y", 16))
    g = b.build()
    title = memory_map_figure(g, memplan.plan(g)).axes[0].get_title()
    assert "1 arena tensor," in title, title


@pytest.mark.parametrize("call, words", [
    (lambda g: memplan.plan(g, None, "auto", 5), ["plan()", "at most 3", "graph, schedule, solver", "not 4", "5",
                                                  "by keyword", "time_limit"]),
    (lambda g: memplan.plan_graph(g, None, "auto", 5), ["plan_graph()", "at most 3", "5", "streams"]),
    (lambda g: memplan.graph_optimize(g, 2, None), ["graph_optimize()", "at most 2", "None", "max_events"]),
    (lambda g: memplan.verify(g, memplan.plan(g), True), ["verify()", "at most 2", "True", "fused_groups"]),
])
def test_an_option_given_by_position_is_named(call, words):
    """``memplan.plan(g, None, "auto", 5)`` was Python's "plan() takes from 1 to 3 positional arguments but 4 were
    given"; now an OptionError (still a TypeError) naming the positional parameters, the value given too many and the
    keyword options. The documented positional use (``plan(graph, schedule, solver)``) is unchanged."""
    g = examples.diamond()
    with pytest.raises(memplan.errors.OptionError) as info:
        call(g)
    assert isinstance(info.value, TypeError)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    assert memplan.plan(g, None, "greedy").arena_bytes == memplan.plan(g, solver="greedy").arena_bytes


def test_plans_public_signature_is_kept():
    import inspect

    assert str(inspect.signature(memplan.plan)).startswith("(graph: 'Graph', schedule: 'Schedule | None' = None, "
                                                           "solver: 'str' = 'auto', **options")


def test_a_path_with_a_newline_is_escaped_in_the_error_line(graph_file, tmp_path):
    """``plan G -o $'x\\ny/p.json'`` said "-o x / y/p.json: ... no directory .../x / y": the newline shown as " / ",
    which reads as another path; it is now escaped as ``\\n`` (as the summary line already did), in the one line."""
    line = one_error(memplan_cli(["plan", graph_file, "-o", tmp_path / "x\ny" / "p.json"]).stderr)
    assert "x\\ny" in line and " / " not in line, line
    line = one_error(memplan_cli(["plan", tmp_path / "no\nsuch.json", "-o", tmp_path / "p.json"]).stderr)
    assert "no\\nsuch.json: no such file" in line, line


def test_verify_escapes_a_plan_path_with_a_newline(graph_file, tmp_path):
    """``verify G $'p\\nq.json'`` printed "p" and "q.json: safe" on two lines."""
    pp = tmp_path / "p\nq.json"
    memplan.plan(memplan.load_graph(graph_file)).save(str(pp))
    proc = memplan_cli(["verify", graph_file, pp])
    assert proc.returncode == 0 and proc.stdout.decode().splitlines() == [f"{tmp_path}/p\\nq.json: safe"]


# ---- a document on stdout, stderr into the same file or pipe ----------------------------------------------------


@pytest.mark.parametrize("argv", [["plan", "{g}", "-o", "-", "--seed", "3"], ["plan", "{g}", "-o", "-", "--progress"],
                                  ["trace", "{g}", "{p}", "-o", "-"],
                                  ["plan", "{g}", "-o", "{tmp}/p2.json", "--graph-out", "-"]])
@pytest.mark.parametrize("into", ["file", "pipe"])
def test_a_document_on_stdout_is_not_followed_by_stderr_lines_merged_into_it(graph_file, tmp_path, argv, into):
    """``memplan plan G -o - > P 2>&1`` (or ``2>&1 | jq``) wrote the plan and then its summary line (and the warning of
    an option without effect) after it into P: P was no JSON, exit 0. The document now stands alone there."""
    pp = tmp_path / "p.json"
    memplan.plan(memplan.load_graph(graph_file)).save(str(pp))
    args = [a.format(g=graph_file, p=pp, tmp=tmp_path) for a in argv]
    if into == "file":
        with open(tmp_path / "out.json", "wb") as out:
            proc = memplan_cli(args, stdout=out, stderr=subprocess.STDOUT)
        text = (tmp_path / "out.json").read_bytes()
    else:
        proc = memplan_cli(args, stderr=subprocess.STDOUT)
        text = proc.stdout
    assert proc.returncode == 0, text
    import json

    json.loads(text)   # (raised "Extra data" before)


def test_the_summary_still_goes_to_a_separate_stderr_and_errors_to_a_merged_one(graph_file, tmp_path):
    """The controls: stderr elsewhere still gets the summary line; merged, a failing command still says why."""
    proc = memplan_cli(["plan", graph_file, "-o", "-"])
    assert proc.returncode == 0 and proc.stderr.decode().startswith("-: arena ")
    proc = memplan_cli(["plan", tmp_path / "nope.json", "-o", "-"], stderr=subprocess.STDOUT)
    assert proc.returncode == 2
    one_error(proc.stdout, "nope.json: no such file")


def test_bench_json_on_stdout_with_stderr_merged_is_json_alone(graph_file, tmp_path):
    """``bench planners --json - 2>&1``: its tables (on stderr with ``--json -``) went into the JSON."""
    proc = memplan_cli(["bench", "planners", "--graph", graph_file, "--solvers", "greedy", "--json", "-"],
                       stderr=subprocess.STDOUT)
    assert proc.returncode == 0
    import json

    assert json.loads(proc.stdout)[0]["problem"] == "g"


def test_import_with_stderr_appended_to_the_models_external_data_is_refused(tmp_path):
    """``memplan import m.onnx -o g.json 2>> weights.bin`` (the file holding the model's external data) appended the
    summary line to the model's weights, where ``2>> m.onnx`` is refused; it is refused too now, the file left whole
    and nothing written. stderr into another file still gets the summary."""
    from needs import need

    need("onnx")
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 64])
    w = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    m = helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w]))
    onnx.save(m, str(tmp_path / "m.onnx"), save_as_external_data=True, location="weights.bin", size_threshold=0)
    data = tmp_path / "weights.bin"
    before = data.read_bytes()
    with open(data, "ab") as err:
        proc = memplan_cli(["import", tmp_path / "m.onnx", "-o", tmp_path / "g.json"], stderr=err)
    assert proc.returncode == 2 and data.read_bytes() == before and not (tmp_path / "g.json").exists()
    one_error(proc.stdout, "stderr is redirected to the file holding the external data", "'w'")
    with open(tmp_path / "log.txt", "ab") as err:
        proc = memplan_cli(["import", tmp_path / "m.onnx", "-o", tmp_path / "g.json"], stderr=err)
    assert proc.returncode == 0 and (tmp_path / "log.txt").read_text().startswith(f"{tmp_path}/g.json: 1 node")


@pytest.mark.parametrize("argv, words", [
    (["plan", "{g}", "--ouptut", "{tmp}/p.json"], ["required: -o/--output", "unrecognized option '--ouptut'",
                                                   "did you mean --output?"]),
    (["plan", "{g}", "--output_file", "{tmp}/p.json"], ["unrecognized option '--output_file'", "--output?"]),
    (["--bogus"], ["required: COMMAND", "unrecognized option '--bogus'"]),
    (["plan", "--bogus"], ["required: graph, -o/--output", "unrecognized option '--bogus'"]),
])
def test_a_missing_argument_error_names_the_unrecognized_option_too(graph_file, tmp_path, argv, words):
    """``memplan plan G --ouptut P`` was "the following arguments are required: -o/--output" alone: argparse
    reports what is missing before what it did not recognise, so the typo went unnamed. The line now names it and
    the nearest known option."""
    proc = memplan_cli([a.format(g=graph_file, tmp=tmp_path) for a in argv])
    assert proc.returncode == 2 and not (tmp_path / "p.json").exists()
    one_error(proc.stderr, *words)


def test_a_missing_argument_alone_is_said_as_before(graph_file):
    """The control: nothing unrecognized, no hint (a value starting with '-' after '--' is no option)."""
    line = one_error(memplan_cli(["plan", "--", graph_file]).stderr, "required: -o/--output")
    assert "unrecognized" not in line


def test_example_lists_each_path_on_one_line_when_the_directory_has_a_newline(tmp_path):
    """``memplan example -o $'e\\nx'`` listed each written path on two lines ("e" and "x/chain.json"): a script
    reading the list line by line got paths that name nothing. Each path is one line now, its newline escaped."""
    proc = memplan_cli(["example", "-o", "e\nx"], cwd=tmp_path)
    assert proc.returncode == 0
    lines = proc.stdout.decode().splitlines()
    assert lines and all(line.startswith("e\\nx/") and line.endswith(".json") for line in lines), lines
    assert len(lines) == len(os.listdir(tmp_path / "e\nx"))


@pytest.mark.parametrize("text, hint", [('id,lower,upper,size\n"a,0,3,4\n', True),
                                        ('id,lower,upper,size\n"a,b",0,3\n', False),
                                        ("id,lower,upper,size\na,0,3\n", False)])
def test_a_quote_left_open_on_the_last_line_of_a_csv_is_named(tmp_path, text, hint):
    """``"a,0,3,4`` on the last line of a minimalloc CSV was "line 2: 1 field, expected 4" alone (a quote left open on
    an earlier line already said so): the open quote took the rest of the line as one field. A short row whose last
    field is whole (a quoted id holding a comma, or a field left out) gets no such hint."""
    (tmp_path / "c.csv").write_text(text)
    proc = memplan_cli(["csv", tmp_path / "c.csv", "-o", tmp_path / "o.csv"])
    assert proc.returncode == 2 and not (tmp_path / "o.csv").exists()
    line = one_error(proc.stderr, "line 2:", "expected 4")
    assert ("a quote left open?" in line) == hint, line
