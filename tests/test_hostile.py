"""Hostile input (issue 15): nothing may crash, hang, lie or overwrite.

Every case of the issue runs through ``memplan.cli.main`` in-process and must give exit code 2, exactly
one line ``memplan: error: ...`` on stderr naming the problem, no output file (nor a temporary one), and
the input files' bytes unchanged. A handful run as real subprocesses too, for the exit code and the
one-line contract of the installed entry point. docs/format.md "Limits" lists the caps tested here.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import handgraphs as H
import pytest
from cli_contract import assert_bad_input, exit_code, leftovers
from cli_forks import memplan_cli
from needs import need

import memplan
from memplan.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def snapshot(*paths):
    return {str(p): open(p, "rb").read() for p in paths}


def refused(capsys, tmp_path, argv, *words, outputs=(), inputs=()):
    """Run ``memplan argv`` in-process; assert the hostile-input contract; return the error line."""
    before = snapshot(*inputs)
    existed = {str(o): os.path.exists(o) for o in outputs}
    code = exit_code(main, argv)
    out, err = capsys.readouterr()
    assert_bad_input(code, err, *words)
    for o in outputs:
        if not existed[str(o)]:
            assert not os.path.exists(o), o
    assert snapshot(*inputs) == before
    assert not leftovers(tmp_path)
    return err.splitlines()[0]


@pytest.fixture
def files(tmp_path):
    """qkv: its graph, a safe 3-stream plan, the plan with its events removed (unsafe), a chain graph."""
    g = tmp_path / "g.json"
    memplan.save_graph(H.qkv(), str(g))
    p = tmp_path / "p.json"
    graph = H.qkv()
    memplan.plan(graph, H.streams(graph, H.QKV_STREAMS)).save(str(p))
    doc = json.loads(p.read_text())
    assert doc["events"], "the fixture needs a multi-stream plan"
    unsafe = tmp_path / "unsafe.json"
    unsafe.write_text(json.dumps(dict(doc, events=[])))
    other = tmp_path / "other.json"
    memplan.save_graph(H.chain(), str(other))
    return g, p, unsafe, other, doc


def graph_doc():
    return H.qkv().to_dict()


def write(path, text):
    path.write_text(text if isinstance(text, str) else json.dumps(text))
    return path


# --- tracebacks --------------------------------------------------------------------------------------

def test_json_nested_100000_deep(tmp_path, capsys, files):
    g, p, *_ = files
    deep = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    out = tmp_path / "o.json"
    refused(capsys, tmp_path, ["plan", deep, "-o", out], "deep.json", "nested", outputs=[out], inputs=[deep])
    refused(capsys, tmp_path, ["verify", g, deep], "deep.json", "nested", inputs=[deep, g])
    # nesting inside a free-form field (attrs) is capped as well
    doc = graph_doc()
    nest: list = []
    for _ in range(100):
        nest = [nest]
    doc["tensors"][0]["attrs"] = {"x": nest}
    attrs = write(tmp_path / "attrs.json", doc)
    refused(capsys, tmp_path, ["plan", attrs, "-o", out], "attrs.json", "64", outputs=[out], inputs=[attrs])


def test_json_depth_ignores_brackets_in_strings():
    from memplan.io import json_depth

    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth(b'{"a": "\\"[[[[", "b": "\\\\", "c": [[]]}') == 3
    assert json_depth(b"[" * 70 + b"]" * 70) == 70
    assert json_depth(b'"]]]]]"' + b"[" * 5) == 5


def test_size_with_5000_digits(tmp_path, capsys):
    text = json.dumps(graph_doc()).replace('"size": 4096', '"size": ' + "9" * 5000, 1)
    g = write(tmp_path / "g.json", text)
    out = tmp_path / "o.json"
    refused(capsys, tmp_path, ["plan", g, "-o", out], "g.json", "digits", outputs=[out], inputs=[g])


@pytest.mark.parametrize("target,old,new,words", [
    ("graph", '"size": 4096,', '"size": 4096, "size": 0,', ["'size'", "'x'"]),
    ("graph", '"name": "qkv"', '"name": "qkv", "name": "other"', ["'name'"]),
    ("graph", '"tensors":', '"tensors": [], "tensors":', ["'tensors'"]),
    ("plan", '"offset": 0,', '"offset": 0, "offset": 8192,', ["'offset'", "'x'"]),
])
def test_duplicate_json_keys(tmp_path, capsys, files, target, old, new, words):
    """JSON leaves a repeated key undefined (Python keeps the last, other readers the first): a graph
    or plan whose meaning depends on the reader is refused, naming the key and its tensor or node."""
    g, p, *_ = files
    src = g if target == "graph" else p
    text = json.dumps(json.loads(src.read_text()))
    assert old in text
    bad = write(tmp_path / "dup.json", text.replace(old, new, 1))
    out = tmp_path / "o.json"
    argv = ["plan", bad, "-o", out] if target == "graph" else ["verify", g, bad]
    refused(capsys, tmp_path, argv, "dup.json", "twice", *words, outputs=[out], inputs=[bad, g])


@pytest.mark.parametrize("field,value,words", [
    ("view_of", ["a"], ["'q'", "view_of"]),
    ("view_of", {"a": 1}, ["'q'", "view_of"]),
    ("inplace", {"q": ["xn"]}, ["'mm_q'", "inplace"]),
    ("inplace", {"q": {"xn": 1}}, ["'mm_q'", "inplace"]),
])
def test_unhashable_view_of_and_inplace(tmp_path, capsys, field, value, words):
    doc = graph_doc()
    if field == "view_of":
        next(t for t in doc["tensors"] if t["id"] == "q")["view_of"] = value
    else:
        next(n for n in doc["nodes"] if n["id"] == "mm_q")["inplace"] = value
    g = write(tmp_path / "g.json", doc)
    out = tmp_path / "o.json"
    refused(capsys, tmp_path, ["plan", g, "-o", out], "g.json", *words, outputs=[out], inputs=[g])


@pytest.mark.parametrize("value", [0, False, [], ""])
@pytest.mark.parametrize("where,eid,field", [("tensors", "q", "attrs"), ("nodes", "mm_q", "attrs"),
                                             ("nodes", "mm_q", "inplace")])
def test_wrong_typed_empty_attrs_and_inplace(tmp_path, capsys, where, eid, field, value):
    doc = graph_doc()
    next(e for e in doc[where] if e["id"] == eid)[field] = value
    g = write(tmp_path / "g.json", doc)
    out = tmp_path / "o.json"
    refused(capsys, tmp_path, ["plan", g, "-o", out], "g.json", f"'{eid}'", field, outputs=[out], inputs=[g])


@pytest.mark.parametrize("cost", ["1" + "0" * 400, "1e400", "1e16"])
def test_absurd_cost_with_streams_auto(tmp_path, capsys, cost):
    doc = graph_doc()
    next(n for n in doc["nodes"] if n["id"] == "mm_q")["cost"] = 12345
    g = write(tmp_path / "g.json", json.dumps(doc).replace("12345", cost))
    out = tmp_path / "o.json"
    refused(capsys, tmp_path, ["plan", g, "-o", out, "--streams", "auto"], "'mm_q'", "cost", outputs=[out],
            inputs=[g])


def test_cost_model_survives_absurd_shapes():
    b = memplan.GraphBuilder("shapes")
    b.input("x", 64, shape=[10 ** 400])
    b.node("mm", "MUL_MAT", ["x"], b.output("y", 64, shape=[10 ** 200, 10 ** 200]))
    g = b.build()
    c = memplan.CostModel().node_us(g, 0)
    assert 0 <= c <= 1e15


@pytest.mark.parametrize("shape", [{"k": 16}, {"-1": 16}, [[]], [{"a": 1}]])
def test_cost_model_survives_shapes_that_are_objects(tmp_path, capsys, shape):
    """``attrs`` are free-form: a MUL_MAT operand whose ``shape`` is an object (or holds one) is not a
    shape, so the roofline ignores it, as it does a string; it raised KeyError -1 from ``plan``."""
    def graph(**attrs):
        b = memplan.GraphBuilder("shapes")
        b.input("x", 64, **attrs)
        b.node("mm", "MUL_MAT", ["x"], b.output("y", 64, shape=[4, 4]))
        return b.build()

    assert memplan.CostModel().node_us(graph(shape=shape), 0) == memplan.CostModel().node_us(graph(), 0)
    path = write(tmp_path / "g.json", graph(shape=shape).to_dict())
    for extra in ([], ["--streams", "auto"]):
        assert main(["plan", str(path), "-o", str(tmp_path / "o.json"), "-q", *extra]) == 0


@pytest.mark.parametrize("argv,option", [
    (["plan", "{g}", "-o", "{o}", "--memory-budget", "inf", "--streams", "auto"], "--memory-budget"),
    (["plan", "{g}", "-o", "{o}", "--device-capacity", "inf"], "--device-capacity"),
    (["plan", "{g}", "-o", "{o}", "--memory-budget", "nan"], "--memory-budget"),
    (["plan", "{g}", "-o", "{o}", "--memory-budget", "1e30"], "--memory-budget"),
    (["csv", "{c}", "-o", "{o}", "--capacity", "inf"], "--capacity"),
])
def test_infinite_byte_options(tmp_path, capsys, files, argv, option):
    g = files[0]
    c = write(tmp_path / "i.csv", "id,lower,upper,size\na,0,2,8\nb,1,3,8\n")
    out = tmp_path / "o.out"
    argv = [a.format(g=g, o=out, c=c) for a in argv]
    refused(capsys, tmp_path, argv, option, outputs=[out], inputs=[g, c])


@pytest.mark.parametrize("row,column", [
    (f"a,0,1,{2 ** 64}", "'size'"),
    (f"a,0,{2 ** 64},8", "'upper'"),
    (f"a,{2 ** 63},{2 ** 63 + 1},8", "'lower'"),
    (f"a,0,1,{2 ** 62}\nb,0,1,{2 ** 62}", "add up"),
])
def test_csv_values_past_2_63(tmp_path, capsys, row, column):
    c = write(tmp_path / "i.csv", "id,lower,upper,size\n" + row + "\n")
    out = tmp_path / "o.csv"
    refused(capsys, tmp_path, ["csv", c, "-o", out], "i.csv", column, outputs=[out], inputs=[c])


@pytest.mark.parametrize("cell,column", [("1_000", "size"), ("\u0663", "size"), ("\uff19", "upper"),
                                         ("1e3", "size"), ("0x10", "lower")])
def test_csv_integers_are_plain_decimal(tmp_path, capsys, cell, column):
    """Python's ``int`` reads "1_000" as 1000 and Arabic-Indic or full-width digits as numbers; a C reader
    (minimalloc's) stops at the underscore or reads nothing. Only ASCII decimal integers are accepted,
    so every tool sees the same problem."""
    cells = {"lower": "0", "upper": "9", "size": "8"}
    cells[column] = cell
    c = write(tmp_path / "i.csv", "id,lower,upper,size\na," + ",".join(cells.values()) + "\n")
    out = tmp_path / "o.csv"
    refused(capsys, tmp_path, ["csv", c, "-o", out], "i.csv", f"'{column}'", "not an integer", outputs=[out],
            inputs=[c])


def test_csv_plus_sign_and_leading_zeros_are_integers(tmp_path):
    c = write(tmp_path / "i.csv", "id,lower,upper,size\na,+0,007, 8 \n")
    assert main(["csv", str(c), "-o", str(tmp_path / "o.csv"), "-q"]) == 0


def test_csv_with_a_byte_order_mark(tmp_path, capsys):
    """A spreadsheet's UTF-8 CSV starts with a byte-order mark: the header's first name was then
    "\ufeffid" and the error said the visible 'id' column was missing. It names the mark (refused, as JSON
    with one is: minimalloc's own reader does not skip it either)."""
    c = tmp_path / "i.csv"
    c.write_bytes(b"\xef\xbb\xbfid,lower,upper,size\na,0,2,8\n")
    out = tmp_path / "o.csv"
    refused(capsys, tmp_path, ["csv", c, "-o", out], "i.csv", "byte-order mark", outputs=[out], inputs=[c])


def test_search_refuses_problems_too_dense_for_it(tmp_path, capsys):
    """The search keeps Python lists per conflicting pair (about 150 bytes each): 8000 buffers live at
    once took 5 GB, 30000 were killed by the kernel for memory. Past ``MAX_PAIRS`` overlapping pairs it
    is a SolverError naming the count (``memplan csv`` runs the search by default); ``auto`` with a time
    limit skips it and keeps its heuristics' packing."""
    from memplan.solvers.search import MAX_PAIRS

    n = 3300  # 3300 * 3299 / 2 > 5M pairs
    assert n * (n - 1) // 2 > MAX_PAIRS
    c = write(tmp_path / "dense.csv", "id,lower,upper,size\n" + "".join(f"b{i},0,1,{8 + i % 5}\n" for i in range(n)))
    out = tmp_path / "o.csv"
    refused(capsys, tmp_path, ["csv", c, "-o", out], "dense.csv", "search", "pairs", outputs=[out], inputs=[c])
    assert main(["csv", str(c), "-o", str(out), "--solver", "auto", "--time-limit", "1", "-q"]) == 0


def test_onnx_batch_out_of_range_and_empty_onnx(tmp_path, capsys):
    need("onnx")
    import onnx
    from test_importers_onnx import symbolic_model

    m = tmp_path / "m.onnx"
    onnx.save(symbolic_model(), str(m))
    out = tmp_path / "g.json"
    refused(capsys, tmp_path, ["import", m, "-o", out, "--batch", "1e30"], "--batch", outputs=[out], inputs=[m])
    refused(capsys, tmp_path, ["import", m, "-o", out, "--batch", str(10 ** 30)], "--batch", outputs=[out],
            inputs=[m])
    refused(capsys, tmp_path, ["import", m, "-o", out, "--batch", "4", "--dim", f"seq={10 ** 30}"], "seq",
            outputs=[out], inputs=[m])
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    refused(capsys, tmp_path, ["import", empty, "-o", out], "empty.onnx", "empty", outputs=[out], inputs=[empty])
    refused(capsys, tmp_path, ["import", m, "-o", m], "refusing", inputs=[m])


@pytest.mark.parametrize("argv,words", [
    (["mlp", "--batch", "-1"], ["--batch"]),                      # RuntimeError traceback from torch.randn
    (["mlp", "--batch", str(10 ** 11)], ["--batch"]),              # RuntimeError: can't allocate 409600000000000 B
    (["mlp", "--batch", "0"], ["--batch"]),
    (["mlp", "--device", "tpu"], ["--device", "'tpu'"]),            # silently no measurement
    (["mlp", "--device", "cuda:x"], ["--device", "'cuda:x'"]),
    (["bogus"], ["model", "'bogus'"]),
])
def test_torch_compare_options(capsys, argv, words):
    """``python -m memplan.importers.torch_compare``: a bad option is one line naming it and exit 2, checked
    before any model is built (were tracebacks from torch, a silent row without measurement, or argparse's
    several usage lines)."""
    need("torch")
    from memplan.importers.torch_compare import main

    code = exit_code(main, argv)
    out, err = capsys.readouterr()
    assert_bad_input(code, err, *words)
    assert out == ""


def test_torch_compare_cuda_asked_for_but_absent(capsys, monkeypatch):
    """``--device cuda`` without CUDA printed a row whose torch fields were all null, as if measured."""
    torch = need("torch")
    from memplan.importers.torch_compare import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["mlp", "--batch", "1", "--device", "cuda"]) == 2
    out, err = capsys.readouterr()
    assert_bad_input(2, err, "--device", "cuda", "not available")
    assert out == ""


def test_draw_plan_with_offsets_past_its_arena(tmp_path, capsys, files):
    need("matplotlib")
    g, _, _, _, doc = files
    for t in doc["tensors"]:
        if t["offset"] is not None:
            t["offset"] += 1 << 40
    bad = write(tmp_path / "far.json", doc)
    out = tmp_path / "m.png"
    refused(capsys, tmp_path, ["draw", g, bad, "-o", out], "unsafe plan", "rule 4", outputs=[out], inputs=[g, bad])


def test_draw_text_is_never_mathtext(tmp_path, capsys, files):
    """matplotlib reads ``$...$`` in a text as TeX math: a ``--title`` of ``$\\foo$`` was a traceback, and a
    safe plan whose graph name or tensor ids hold dollar signs was refused ("matplotlib cannot draw").
    Titles and labels are drawn as the plain text they are."""
    need("matplotlib")
    g, p, *_ = files
    out = tmp_path / "m.png"
    for title in ("$\\foo$", "$x^$", "cost in $"):
        assert main(["draw", str(g), str(p), "-o", str(out), "-q", "--title", title]) == 0
        assert out.stat().st_size > 0
    doc = json.loads(g.read_text().replace('"xn"', '"$\\\\alpha_{bad$"').replace('"qkv"', '"$x^$"'))
    odd = write(tmp_path / "odd.json", doc)
    plan = tmp_path / "odd.plan.json"
    memplan.plan(memplan.load_graph(str(odd))).save(str(plan))
    for name in ("m.png", "m.svg", "m.pdf"):
        assert main(["draw", str(odd), str(plan), "-o", str(tmp_path / name), "-q"]) == 0, capsys.readouterr().err


def test_draw_text_with_unprintable_characters(tmp_path, capsys, files):
    """A lone surrogate is valid JSON (``"\\ud800"``) and what a non-UTF-8 byte of ``argv`` becomes
    (``--title $'\\xff'``): FreeType refused it, a ``TypeError`` traceback from ``draw`` naming a tensor
    or a graph so; control characters drew as missing glyphs, with a matplotlib warning each. Titles and
    labels show them escaped (``\\ud800``, ``\\x00``), as ``ascii`` writes them."""
    need("matplotlib")
    import warnings

    from memplan.viz.memmap import memory_map_figure

    g, p, *_ = files
    out = tmp_path / "m.png"
    for title in ("a\udcffb", "bell\x07", "\u202e\ud800"):
        assert main(["draw", str(g), str(p), "-o", str(out), "-q", "--title", title]) == 0, capsys.readouterr().err
    doc = json.loads(g.read_text().replace('"xn"', '"x\\ud800\\u0000n"').replace('"qkv"', '"q\\udcffk\\tv"'))
    odd = write(tmp_path / "odd.json", doc)
    plan = tmp_path / "odd.plan.json"
    memplan.plan(memplan.load_graph(str(odd))).save(str(plan))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a warning: none may be left
        for name in ("m.png", "m.svg", "m.pdf"):
            assert main(["draw", str(odd), str(plan), "-o", str(tmp_path / name), "-q"]) == 0, capsys.readouterr().err
    fig = memory_map_figure(memplan.load_graph(str(odd)), memplan.load_plan(str(plan)))
    texts = [t.get_text() for t in fig.axes[0].texts] + [fig.axes[0].get_title()]
    assert "x\\ud800\\x00n" in texts and any(t.startswith("q\\udcffk\\tv:") for t in texts), texts


# --- hangs -------------------------------------------------------------------------------------------

def test_sizes_summing_past_2_63_are_a_graph_error(tmp_path, capsys):
    n = (1 << 15) + 1  # tensors of 2**48 bytes each: the sum passes 2**63
    doc = {"format": "memplan.graph/1", "name": "huge",
           "tensors": [{"id": f"y{i}", "size": 1 << 48, "kind": "weight"} for i in range(n)], "nodes": []}
    g = write(tmp_path / "g.json", doc)
    out = tmp_path / "o.json"
    refused(capsys, tmp_path, ["plan", g, "-o", out], "g.json", "2**63", outputs=[out], inputs=[g])
    with pytest.raises(memplan.GraphError, match="add up"):
        memplan.graph_from_dict(doc)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_as_graph(tmp_path, capsys):
    out = tmp_path / "o.json"
    refused(capsys, tmp_path, ["plan", "/dev/zero", "-o", out], "/dev/zero", "regular file", outputs=[out])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_fifo_as_plan_is_refused_without_opening_it(tmp_path, capsys, files):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    refused(capsys, tmp_path, ["verify", files[0], fifo], "fifo.json", "regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_output_that_is_not_a_regular_file_is_never_replaced(tmp_path, capsys, files):
    """An output path naming a FIFO, a device or a link to one (``-o /dev/null``, ``-o /dev/stdout``) was
    replaced by a regular file: the atomic rename swapped the node itself, so run as root memplan put a
    plan where the system's /dev/null had been (and as anyone else failed with "Permission denied" from
    /dev). It is refused, one line naming it; the node stays what it was."""
    from memplan.files import atomic_write_text

    g = files[0]
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    link = tmp_path / "link.json"
    os.symlink(fifo, link)
    specials = [fifo, link]
    if os.geteuid() == 0 and hasattr(os, "mknod"):  # a character device like /dev/null, where we may make one
        dev = tmp_path / "null.json"
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        specials.append(dev)
    for out in specials:
        kind = stat.S_IFMT(os.lstat(out).st_mode)
        for argv in (["plan", g, "-o", out], ["plan", g, "-o", tmp_path / "p.json", "--graph-out", out],
                     ["trace", g, files[1], "-o", out]):
            refused(capsys, tmp_path, argv, str(out), "not a regular file", inputs=[g], outputs=[tmp_path / "p.json"])
            assert stat.S_IFMT(os.lstat(out).st_mode) == kind
        with pytest.raises(memplan.MemplanError, match="not a regular file"):
            atomic_write_text(str(out), "{}\n")
        assert stat.S_IFMT(os.lstat(out).st_mode) == kind


def test_file_size_cap(tmp_path):
    from memplan.files import MAX_FILE_BYTES, check_readable

    g = tmp_path / "g.json"
    memplan.save_graph(H.chain(), str(g))
    assert check_readable(str(g), memplan.GraphError) == g.stat().st_size <= MAX_FILE_BYTES
    with pytest.raises(memplan.GraphError, match="g.json: .* over the 10-byte limit"):
        check_readable(str(g), memplan.GraphError, 10)


# --- accepted nonsense -------------------------------------------------------------------------------

def test_simulate_plan_of_another_graph(tmp_path, capsys, files):
    g, p, _, other, _ = files
    line = refused(capsys, tmp_path, ["simulate", other, p], "wrong graph", inputs=[other, p])
    assert "'qkv'" in line and "'chain4'" in line
    with pytest.raises(memplan.errors.PlanMismatch, match="plan was made for graph 'qkv', not 'chain4'"):
        memplan.simulate(memplan.load_graph(str(other)), memplan.load_plan(str(p)))


def test_same_nodes_other_sizes_or_name_is_another_graph(tmp_path, capsys, files):
    g, p, *_ = files
    doc = graph_doc()
    next(t for t in doc["tensors"] if t["id"] == "k")["size"] = 2048
    resized = write(tmp_path / "resized.json", doc)
    refused(capsys, tmp_path, ["verify", resized, p], "'k'", "2048", inputs=[resized, p])
    renamed = write(tmp_path / "renamed.json", dict(graph_doc(), name="qkv2"))
    refused(capsys, tmp_path, ["simulate", renamed, p], "'qkv2'", "wrong graph", inputs=[renamed, p])


def test_plans_with_stream_id_10_12(tmp_path, capsys, files):
    g, p, _, _, doc = files
    many = write(tmp_path / "many.json", dict(doc, streams=10 ** 12 + 1))
    refused(capsys, tmp_path, ["simulate", g, many], "many.json", "'streams'", inputs=[many])
    far = json.loads(json.dumps(doc))
    far["order"][0]["stream"] = 10 ** 12
    far = write(tmp_path / "far.json", far)
    refused(capsys, tmp_path, ["simulate", g, far], "unsafe plan", "rule 1", inputs=[far])


@pytest.mark.parametrize("option,value", [
    ("--time-limit", "nan"), ("--time-limit", "-1"), ("--time-limit", "inf"), ("--time-limit", "0"),
    ("--workers", "0"), ("--workers", "-2"), ("--workers", "100000"),
    ("--streams", "1000000000"), ("--streams", "0"), ("--devices", "100000"), ("--seed", str(10 ** 20)),
    ("--max-events", str(10 ** 30)), ("--event-us", "nan"), ("--event-us", "1e300"),
])
def test_nonsense_options(tmp_path, capsys, files, option, value):
    g = files[0]
    out = tmp_path / "o.json"
    refused(capsys, tmp_path, ["plan", g, "-o", out, option, value], option, "--help", outputs=[out], inputs=[g])


def test_streams_above_the_node_count_are_capped(tmp_path, files):
    out = tmp_path / "o.json"
    assert main(["plan", str(files[0]), "-o", str(out), "-q", "--streams", "1024"]) == 0
    assert json.loads(out.read_text())["streams"] <= len(H.qkv().nodes)


# --- the user's input destroyed ----------------------------------------------------------------------

def test_plan_output_is_the_graph(tmp_path, capsys, files, monkeypatch):
    g = files[0]
    refused(capsys, tmp_path, ["plan", g, "-o", g], "-o", "refusing", inputs=[g])
    refused(capsys, tmp_path, ["plan", g, "-o", tmp_path / "p2.json", "--graph-out", g], "--graph-out",
            outputs=[tmp_path / "p2.json"], inputs=[g])
    monkeypatch.chdir(tmp_path)  # the same file by another spelling
    refused(capsys, tmp_path, ["plan", g, "-o", "./sub/../g.json"], "refusing", inputs=[g])


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no links")
def test_output_is_the_input_through_links(tmp_path, capsys, files):
    g = files[0]
    sym = tmp_path / "sym.json"
    os.symlink(g, sym)
    refused(capsys, tmp_path, ["plan", g, "-o", sym], "refusing", inputs=[g])
    hard = tmp_path / "hard.json"
    os.link(g, hard)
    refused(capsys, tmp_path, ["plan", g, "-o", hard], "refusing", inputs=[g, hard])
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path, tmp_path / "d" / "up")
    refused(capsys, tmp_path, ["plan", g, "-o", tmp_path / "d" / "up" / "g.json"], "refusing", inputs=[g])


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no links")
def test_output_through_a_link_rewrites_its_target(tmp_path, capsys, files):
    """``-o LINK`` (and ``--graph-out``, and the library's writer) where LINK is a symlink to a regular file:
    the atomic rename replaced the link itself by a plain file, leaving its target as it was. As a shell
    redirection does, the target is rewritten (atomically, in its own directory, keeping its mode) and the
    link stays a link; a dangling link gets its target created."""
    from memplan.files import atomic_write_text

    g = files[0]
    (tmp_path / "out").mkdir()
    target, gtarget = tmp_path / "out" / "plan.json", tmp_path / "out" / "split.json"
    target.write_text("OLD")
    os.chmod(target, 0o640)
    link, glink = tmp_path / "plan.json", tmp_path / "split.json"
    os.symlink(target, link)                               # absolute
    os.symlink(os.path.join("out", "split.json"), glink)   # relative, dangling until written
    assert main(["plan", str(g), "-o", str(link), "--graph-out", str(glink), "-q"]) == 0
    assert os.readlink(link) == str(target) and os.readlink(glink) == os.path.join("out", "split.json")
    assert memplan.load_plan(str(target)).graph == memplan.load_graph(str(gtarget)).name == "qkv"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    chained = tmp_path / "chained.json"                    # a link to a link
    os.symlink(link, chained)
    atomic_write_text(str(chained), "{}\n")
    assert os.path.islink(chained) and os.path.islink(link) and target.read_text() == "{}\n"
    assert not leftovers(tmp_path) and not leftovers(tmp_path / "out")
    loop = tmp_path / "loop.json"
    os.symlink(loop, loop)
    with pytest.raises(memplan.MemplanError, match="loop.json"):
        atomic_write_text(str(loop), "{}\n")
    assert os.path.islink(loop) and not leftovers(tmp_path)


def test_read_only_output_is_refused(tmp_path, capsys, files):
    """An existing output file without write permission (``chmod a-w``) was silently replaced: the atomic
    rename needs only the directory's permission. It is refused, one line naming it, before any work and with
    nothing written, as ``cp`` or a shell redirection refuses it. Decided by the mode bits too, so it holds
    when run as root (for whom every file is writable)."""
    from memplan.files import atomic_write_text, check_writable

    g = files[0]
    ro = tmp_path / "ro.json"
    ro.write_text("OLD")
    os.chmod(ro, 0o444)
    link = tmp_path / "ro-link.json"
    os.symlink(ro, link)
    split, plan = tmp_path / "split.json", tmp_path / "p.json"
    for out in (ro, link):
        for argv in (["plan", g, "-o", out], ["plan", g, "-o", out, "--graph-out", split],
                     ["plan", g, "-o", plan, "--graph-out", out], ["trace", g, files[1], "-o", out]):
            refused(capsys, tmp_path, argv, str(out), "read-only", inputs=[g, ro], outputs=[split, plan])
        with pytest.raises(memplan.MemplanError, match="read-only"):
            atomic_write_text(str(out), "{}\n")
        with pytest.raises(memplan.MemplanError, match="read-only"):
            check_writable(str(out), "--json")
        assert ro.read_text() == "OLD" and stat.S_IMODE(os.stat(ro).st_mode) == 0o444
    os.chmod(ro, 0o644)                                    # writable again: written
    assert main(["plan", str(g), "-o", str(ro), "-q"]) == 0 and memplan.load_plan(str(ro))


#: what a hostile graph may put in its ids and name: ANSI clear-screen, an OSC window title, a carriage
#: return, NUL, DEL, a C1 CSI, a right-to-left override, a lone surrogate
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\r\x00\x7f\x9b\u202e\ud800"


def test_text_output_escapes_unprintable_ids_and_names(tmp_path, capsys):
    """``show``, ``verify``, ``simulate``, ``trace`` and error lines print ids and names from the input: a
    control character or an ANSI escape in a hostile graph reached the terminal raw. They are escaped as
    ``ascii`` writes them (``\\x1b``), as ``draw`` does; printable text, ``é`` or CJK included, is unchanged."""
    b = memplan.GraphBuilder("g" + HOSTILE)
    b.input("x" + HOSTILE, 1024)
    b.node("a" + HOSTILE, "UNARY", ["x" + HOSTILE], b.intermediate("été中文", 4096))
    b.node("l", "UNARY", ["été中文"], b.intermediate("tl", 1024))
    b.node("r" + HOSTILE, "UNARY", ["été中文"], b.intermediate("tr", 1024))
    b.node("j" + HOSTILE, "ADD", ["tl", "tr"], b.output("y" + HOSTILE, 1024))
    graph = b.build()
    g, p = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(graph, str(g))
    streams = {n.id: 1 if n.id.startswith("r") else 0 for n in graph.nodes}
    plan = memplan.plan(graph, memplan.schedule_with_events(graph, [n.id for n in graph.nodes], streams))
    plan.save(str(p))
    unsafe = tmp_path / "unsafe.json"
    unsafe.write_text(json.dumps(dict(plan.to_dict(), events=[])))
    escaped = ascii(HOSTILE)[1:-1]
    for argv, ok in ((["show", p], True), (["verify", g, p], True), (["simulate", g, p], True),
                     (["trace", g, p, "-o", tmp_path / "t.json"], True), (["verify", g, unsafe], False),
                     (["verify", tmp_path / ("no" + HOSTILE[:5]), p], False)):
        assert main([str(a) for a in argv]) == (0 if ok else 2), argv
        out, err = capsys.readouterr()
        for text in (out, err):
            bad = {c for c in text if not c.isprintable() and c != "\n"}
            assert not bad, (argv, bad, text)
    main(["show", str(p)])
    out = capsys.readouterr().out
    assert "g" + escaped in out and "été中文" in out and "a" + escaped in out and "j" + escaped in out
    assert json.loads((tmp_path / "t.json").read_text())   # JSON outputs hold the ids as JSON escapes them


def test_csv_output_is_the_input(tmp_path, capsys):
    c = write(tmp_path / "i.csv", "id,lower,upper,size\na,0,2,8\n")
    refused(capsys, tmp_path, ["csv", c, "-o", c], "i.csv", "refusing", inputs=[c])


def test_trace_and_draw_output_is_an_input(tmp_path, capsys, files):
    g, p, *_ = files
    refused(capsys, tmp_path, ["trace", g, p, "-o", p], "refusing", inputs=[g, p])
    refused(capsys, tmp_path, ["draw", g, p, "-o", g], "refusing", inputs=[g, p])


@pytest.mark.parametrize("argv,option", [
    (["plan", "{g}", "-o", "{o}", "--graph-out", ""], "--graph-out"),   # silently wrote no graph
    (["plan", "{g}", "-o", ""], "-o"),                                 # "cannot write : No such file"
    (["plan", "", "-o", "{o}"], "graph"),                              # ": no such file"
    (["verify", "{g}", ""], "plan"),
    (["show", ""], "plan"),
    (["simulate", "", "{p}"], "graph"),
    (["trace", "{g}", "{p}", "-o", ""], "-o"),
    (["draw", "{g}", "{p}", "-o", ""], "-o"),
    (["csv", "{c}", "-o", ""], "-o"),
    (["csv", "", "-o", "{o}"], "input"),
    (["import", "", "-o", "{o}"], "model"),
    (["import", "m.onnx", "-o", ""], "-o"),
    (["example", "-o", ""], "-o"),
    (["bench", "schedule", "--quick", "--layers", "1", "--json", ""], "--json"),
])
def test_empty_paths_are_usage_errors(tmp_path, capsys, files, argv, option):
    """An empty path is no file: a usage line naming the argument, never a silently skipped output."""
    g, p, *_ = files
    c = write(tmp_path / "i.csv", "id,lower,upper,size\na,0,2,8\n")
    out = tmp_path / "o.json"
    argv = [a.format(g=g, p=p, o=out, c=c) for a in argv]
    refused(capsys, tmp_path, argv, option, "empty", "--help", outputs=[out], inputs=[g, p, c])


def test_output_and_graph_out_the_same_file(tmp_path, capsys, files):
    g = files[0]
    x = tmp_path / "x.json"
    refused(capsys, tmp_path, ["plan", g, "-o", x, "--graph-out", x], "--graph-out", "same file", outputs=[x],
            inputs=[g])
    refused(capsys, tmp_path, ["plan", g, "-o", x, "--devices", "2", "--graph-out", x], "same file", outputs=[x],
            inputs=[g])


# --- usage errors: one line and a pointer to --help ----------------------------------------------------

@pytest.mark.parametrize("argv,words", [
    ([], ["required", "'memplan --help'"]),
    (["plan"], ["required", "'memplan plan --help'"]),
    (["bogus"], ["invalid choice", "--help"]),
    (["plan", "g.json", "-o", "p", "--solver", "nope"], ["--solver", "'memplan plan --help'"]),
    (["verify", "g.json"], ["required", "verify"]),
    (["show", "p.json", "--top", "-1"], ["--top"]),
    (["plan", "g.json", "-o", "p", "--bogus"], ["unrecognized", "--bogus", "--help"]),
])
def test_usage_errors_are_one_line(tmp_path, capsys, argv, words):
    refused(capsys, tmp_path, argv, *words)


def test_broken_bench_suite_is_an_error_naming_it(tmp_path, capsys, monkeypatch):
    from memplan import benchmarks

    monkeypatch.setitem(benchmarks.SUITES, "broken", "no_such_suite_module")
    refused(capsys, tmp_path, ["bench", "broken"], "'broken'", "no_such_suite_module")


def test_bench_suite_missing_a_dependency_names_it(tmp_path, capsys, monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, package=None):
        if name == ".benchmarks.scale":
            raise ImportError("No module named 'psutil_like'", name="psutil_like")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    refused(capsys, tmp_path, ["bench", "scale", "--anything"], "'scale'", "psutil_like")


@pytest.mark.parametrize("argv,option", [
    (["planners", "--sizes", "abc"], "--sizes"),                 # ValueError traceback
    (["planners", "--sizes", "500,-5"], "--sizes"),              # a graph of -5 nodes, silently
    (["planners", "--sizes", "0"], "--sizes"),
    (["planners", "--sizes", str(10 ** 30)], "--sizes"),         # a graph of 10**30 nodes: a hang
    (["planners", "--layers", "-1"], "--layers"),                # a Llama of -1 layers, silently
    (["planners", "--layers", str(10 ** 30)], "--layers"),
    (["planners", "--time-limit", "nan"], "--time-limit"),
    (["planners", "--time-limit", "0"], "--time-limit"),
    (["planners", "--streams", "0"], "--streams"),
    (["schedule", "--budget", "nan"], "--budget"),               # ValueError traceback
    (["schedule", "--budget", "inf"], "--budget"),               # OverflowError traceback
    (["schedule", "--budget", "-1"], "--budget"),
    (["schedule", "--streams", "abc"], "--streams"),             # ValueError traceback
    (["schedule", "--layers", "0"], "--layers"),
    (["schedule", "--event-us", "nan"], "--event-us"),
    (["scale", "--nodes", "-5"], "--nodes"),                     # a graph of -5 nodes, silently
    (["scale", "--wide", "0"], "--wide"),
    (["scale", "--chain", "-5"], "--chain"),                     # a chain of -5 view ops, silently
    (["scale", "--nodes", str(10 ** 30)], "--nodes"),
    (["scale", "--chains", "0"], "--chains"),
    (["scale", "--inplace", "0"], "--inplace"),
    (["scale", "--streams", "1025"], "--streams"),
    (["devices", "--streams", "abc"], "--streams"),              # ValueError traceback
    (["devices", "--devices", "0"], "--devices"),
])
def test_bench_option_values(tmp_path, capsys, argv, option):
    """Every number a bench suite takes is checked when it is parsed: one usage line naming the option,
    before any graph is built or table printed (they were ``type=int``/``float`` or raw text)."""
    small = {"planners": ["--corpus", "random,llama", "--solvers", "greedy", "--layers", "1", "--sizes", "50"],
             "schedule": ["--quick", "--layers", "1"], "scale": ["--nodes", "--mode", "serial"],
             "devices": ["--models", "tiny"]}[argv[0]]  # were the value taken, the run would be short
    out = tmp_path / "rows.json"
    line = refused(capsys, tmp_path, ["bench", argv[0], *small, *argv[1:], "--json", out], option, "--help",
                   outputs=[out])
    assert "memplan bench " + argv[0] in line


@pytest.mark.parametrize("argv,words", [
    (["planners", "--solvers", "greedy,grredy"], ["--solvers", "'grredy'"]),   # a table of SolverError rows
    (["planners", "--solvers", ","], ["--solvers"]),                          # an empty table
    (["planners", "--corpus", "randm"], ["--corpus", "'randm'"]),             # an empty table
    (["schedule", "--solver", "grredy"], ["--solver", "'grredy'"]),
    (["scale", "--solver", "grredy"], ["--solver", "'grredy'"]),              # CalledProcessError traceback
    (["devices", "--solver", "grredy"], ["--solver", "'grredy'"]),
])
def test_bench_misspelt_names(tmp_path, capsys, argv, words):
    """A solver or corpus name a suite does not know is a usage error naming it, before anything runs."""
    small = {"planners": ["--corpus", "random", "--sizes", "50", "--solvers", "greedy"],
             "schedule": ["--quick", "--layers", "1"], "scale": ["--nodes", "50", "--mode", "serial"],
             "devices": ["--models", "tiny", "--devices", "2"]}[argv[0]]
    out = tmp_path / "rows.json"
    refused(capsys, tmp_path, ["bench", argv[0], *small, *argv[1:], "--json", out], *words, "--help",
            outputs=[out])


@pytest.mark.parametrize("where", ["missing", "file", "empty"])
def test_bench_minimalloc_directory_that_is_not_one(tmp_path, capsys, where):
    """``--minimalloc DIR`` naming nothing was a FileNotFoundError traceback (a file: NotADirectoryError),
    and a directory without CSV problems gave an empty table; each is one line naming the option."""
    d = tmp_path / "mm"
    if where == "file":
        d.write_text("id,lower,upper,size\n")
    elif where == "empty":
        (d / "challenging").mkdir(parents=True)
    refused(capsys, tmp_path, ["bench", "planners", "--corpus", "minimalloc", "--solvers", "greedy",
                               "--minimalloc", d], "--minimalloc", "mm")


@pytest.mark.parametrize("returncode,stderr,words", [
    (1, "Traceback (most recent call last):\n  ...\nMemoryError\n", ["MemoryError"]),
    (-9, "", ["signal 9"]),
])
def test_bench_scale_case_that_fails(tmp_path, capsys, monkeypatch, returncode, stderr, words):
    """Each scale case runs in a child process; one that fails (out of memory, killed) was a
    CalledProcessError traceback, and is one line naming the case and how it ended."""
    import subprocess as sp

    from memplan.benchmarks import scale

    def child(cmd, **kw):
        return sp.CompletedProcess(cmd, returncode, "", stderr)

    monkeypatch.setattr(scale.subprocess, "run", child)
    out = tmp_path / "rows.json"
    refused(capsys, tmp_path, ["bench", "scale", "--nodes", "50", "--mode", "serial", "--json", out],
            "fanout", "50", "serial", *words, outputs=[out])


def test_bench_json_is_not_written_over_a_minimalloc_problem(tmp_path, capsys, minimalloc_dir):
    """``bench planners --json`` naming one of the CSV problems it reads overwrote that input with the
    results table; it is refused before anything runs, like every other output that names an input."""
    import shutil

    mm = tmp_path / "mm"
    shutil.copytree(minimalloc_dir, mm)
    (problem,) = (mm / "challenging").glob("A.*.csv")
    refused(capsys, tmp_path, ["bench", "planners", "--minimalloc", mm, "--corpus", "minimalloc", "--only", "A",
                               "--solvers", "greedy", "--json", problem], "--json", "refusing", inputs=[problem])


@pytest.mark.parametrize("where", ["missing/rows.json", "."])
def test_bench_json_that_cannot_be_written_is_refused_before_the_run(tmp_path, capsys, monkeypatch, where):
    """``--json`` in a missing directory, or naming a directory, failed only after the whole benchmark had
    run (hours for the default planners corpus); it is refused before anything runs."""
    from memplan.benchmarks import schedule

    def never(args):
        raise AssertionError("the benchmark ran")

    monkeypatch.setattr(schedule, "run", never)
    out = tmp_path / where
    refused(capsys, tmp_path, ["bench", "schedule", "--json", out], "--json", "cannot write")


def test_out_of_memory_is_one_line(tmp_path, capsys, files, monkeypatch):
    """A plan too large for the machine (``--streams 1024`` on a 100k-branch graph holds several
    nodes x streams tables) ends in numpy's MemoryError: one line naming the graph, exit 2, no output."""
    g = files[0]
    planmod = sys.modules["memplan.plan"]  # (memplan.plan is also the function)

    def huge(*a, **kw):
        raise MemoryError("Unable to allocate 24.4 GiB for an array with shape (100001, 32768)")

    monkeypatch.setattr(planmod, "compute_lifetimes", huge)
    out = tmp_path / "o.json"
    refused(capsys, tmp_path, ["plan", g, "-o", out, "--streams", "3"], "out of memory", "g.json", outputs=[out],
            inputs=[g])


def test_command_table_is_static():
    import memplan.cli as cli

    assert isinstance(cli.COMMANDS, tuple) and not hasattr(cli, "EXTRA_COMMANDS")
    names = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert names >= {"plan", "verify", "show", "example", "bench", "import", "draw", "trace", "simulate", "csv"}


# --- pictures and simulations of unsafe or foreign plans ----------------------------------------------

@pytest.mark.parametrize("command", ["simulate", "trace", "draw"])
def test_unsafe_plan_is_not_simulated_or_drawn(tmp_path, capsys, files, command):
    if command == "draw":
        need("matplotlib")
    g, p, unsafe, other, _ = files
    out = tmp_path / ("m.png" if command == "draw" else "t.json")
    extra = [] if command == "simulate" else ["-o", out]
    refused(capsys, tmp_path, [command, g, unsafe, *extra], "unsafe plan", "rule 2", outputs=[out],
            inputs=[g, unsafe])
    refused(capsys, tmp_path, [command, other, p, *extra], "wrong graph", outputs=[out], inputs=[other, p])


def test_check_plan_for_is_the_one_pairing_check(files):
    from memplan.planfile import check_plan_for, plan_mismatches

    g, p, *_ = files
    graph, plan = memplan.load_graph(str(g)), memplan.load_plan(str(p))
    assert plan_mismatches(graph, plan) == []
    check_plan_for(graph, plan)
    with pytest.raises(memplan.PlanFormatError, match="wrong graph"):
        check_plan_for(H.chain(), plan)
    with pytest.raises(memplan.UnsafePlan, match="rule 1"):
        check_plan_for(H.chain(), plan)


# --- one write path ----------------------------------------------------------------------------------

def test_plan_save_and_save_plan_are_one_path(tmp_path):
    import memplan.planfile as planfile

    p = memplan.plan(H.qkv())
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    p.save(str(a))
    memplan.save_plan(p, str(b))
    assert a.read_bytes() == b.read_bytes() == p.to_json().encode()
    assert "memplan.io" not in open(planfile.__file__).read()  # no import circle planfile <-> io


# --- the real entry point: exit code 2 and one line ---------------------------------------------------

def test_subprocess_hostile_inputs(tmp_path, files):
    g, p, _, other, _ = files
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    before = snapshot(g, p)
    for argv in (["plan", "deep.json", "-o", "o.json"],
                 ["plan", "/dev/zero" if os.path.exists("/dev/zero") else "nope.json", "-o", "o.json"],
                 ["plan", "g.json", "-o", "g.json"],
                 ["simulate", "other.json", "p.json"],
                 ["plan"]):
        # (its own process, forked from one interpreter that imported memplan once: ``cli_forks``)
        r = memplan_cli(argv, cwd=tmp_path, text=True)
        assert r.returncode == 2, (argv, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("memplan: error: "), (argv, r.stderr)
        assert not (tmp_path / "o.json").exists()
    assert snapshot(g, p) == before


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_stdout_that_cannot_be_written(tmp_path, files):
    """stdout on a full disk (/dev/full): one error line and exit 2, not an OSError traceback (nor Python's
    "Exception ignored" when it flushes stdout again at exit)."""
    g, p, *_ = files
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for argv in (["show", str(p)], ["verify", str(g), str(p)], ["example", "-o", str(tmp_path / "ex")],
                 ["simulate", str(g), str(p)]):
        with open("/dev/full", "w") as full:
            r = subprocess.run([sys.executable, "-m", "memplan", *argv], stdout=full, stderr=subprocess.PIPE,
                               text=True, timeout=120, env=env)
        assert r.returncode == 2, (argv, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("memplan: error: "), (argv, r.stderr)
        assert "stdout" in r.stderr and "No space left" in r.stderr, r.stderr


def test_closed_stdout_or_stderr(tmp_path, files):
    """Started with stdout or stderr closed (``>&-``, ``2>&-``), memplan runs as with them on /dev/null: it
    exited 1 (stderr closed: ``None.isatty()`` for the progress check). A command whose product is its report on
    stdout (show, verify) refuses a closed stdout with exit 2 (round 40: it was exit 0 with the report lost)."""
    g, p, *_ = files
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for argv in (["plan", str(g), "-o", str(tmp_path / "o.json")], ["show", str(p)], ["verify", str(g), str(p)]):
        for close in (">&-", "2>&-"):
            r = subprocess.run(["sh", "-c", f'"$0" -m memplan "$@" {close}', sys.executable, *argv], env=env,
                               timeout=120)
            assert r.returncode == (2 if close == ">&-" and argv[0] != "plan" else 0), (argv, close)



def test_text_output_keeps_spaces_of_other_scripts(tmp_path, capsys):
    """``printable`` escaped every character ``str.isprintable`` refuses, and that is every space but ASCII's:
    a name written with CJK's ideographic space (U+3000) or a no-break space showed as ``\\u3000``/``\\xa0``
    in ``memplan show``, though neither is a control character. Spaces print as they are; controls, bidi
    overrides and surrogates stay escaped."""
    from memplan.show import printable

    name = "モデル\u3000一\u00a0x\u202fy"
    assert printable(name) == name
    assert printable("a\u202eb\x1bc\u2028d\ud800") == "a\\u202eb\\x1bc\\u2028d\\ud800"
    b = memplan.GraphBuilder(name)
    b.input("x\u3000in", 1024)
    b.node("n", "UNARY", ["x\u3000in"], b.output("y", 1024))
    p = tmp_path / "p.json"
    memplan.plan(b.build()).save(str(p))
    assert main(["show", str(p)]) == 0
    out = capsys.readouterr().out
    assert name in out and "x\u3000in" in out, out


# --- plan-file fields: types and limits, named with the file --------------------------------------------

def _plan_doc():
    return memplan.plan(H.qkv()).to_dict()


@pytest.mark.parametrize("key,value", [("alignment", 256.0), ("arena_bytes", "10240"), ("streams", None),
                                       ("lower_bound_bytes", [0])])
def test_plan_file_field_of_the_wrong_type_is_a_format_error(key, value):
    """A plan file whose alignment is 256.0 (or a count is a string, null, a list) is a PlanFormatError naming it."""
    from memplan.planfile import plan_from_dict

    doc = _plan_doc()
    doc[key] = value
    with pytest.raises(memplan.PlanFormatError, match=f"odd.json: field '{key}' is .*, not an? "):
        plan_from_dict(doc, source="odd.json")


def test_plan_file_counts_stop_below_2_to_the_63():
    """A plan file with arena_bytes 2**63 is refused; 2**63 - 1 loads."""
    from memplan.planfile import plan_from_dict

    doc = _plan_doc()
    doc["arena_bytes"] = 2 ** 63 - 1
    assert plan_from_dict(doc).arena_bytes == 2 ** 63 - 1
    doc["arena_bytes"] = 2 ** 63
    with pytest.raises(memplan.PlanFormatError, match="'arena_bytes' is 9223372036854775808, outside 0..9223372036854775807"):
        plan_from_dict(doc)


@pytest.mark.parametrize("offset", [1.5, "0", True])
def test_plan_file_bad_offset_is_named_with_the_file_and_entry(offset):
    """A non-integer tensor offset is refused naming the file, the tensors entry and the tensor."""
    from memplan.planfile import plan_from_dict

    doc = _plan_doc()
    doc["tensors"][2]["offset"] = offset
    tid = doc["tensors"][2]["id"]
    with pytest.raises(memplan.PlanFormatError, match=rf"^odd.json: tensors\[2\] \('{tid}'\): 'offset' is not an integer"):
        plan_from_dict(doc, source="odd.json")


def test_plan_file_entry_integers_are_the_int64_range():
    """An offset or stream of -2**63 loads (verify judges it); 2**63 is refused naming the file and entry."""
    from memplan.planfile import plan_from_dict

    for key, field in (("tensors", "offset"), ("order", "stream")):
        doc = _plan_doc()
        doc[key][1][field] = -2 ** 63
        assert plan_from_dict(doc, source="odd.json")
        doc[key][1][field] = 2 ** 63
        with pytest.raises(memplan.PlanFormatError, match=rf"^odd.json: {key}\[1\] .*'{field}' is not an integer"):
            plan_from_dict(doc, source="odd.json")


def test_multi_device_plan_file_limits():
    """devices runs 1..1024 and device fields are int64: 1024 devices and -2**63 load, 1025 and 2**63 do not."""
    from memplan.examples import LLAMA_TINY, llama
    from memplan.planfile import plan_from_dict

    _, p = memplan.plan_devices(llama(LLAMA_TINY), 2)
    doc = p.to_dict()
    wide = dict(doc, devices=1024, device_arena_bytes=[0] * 1024)
    assert plan_from_dict(wide).devices == 1024
    with pytest.raises(memplan.PlanFormatError, match="'devices' is not an integer in 1..1024"):
        plan_from_dict(dict(doc, devices=1025, device_arena_bytes=[0] * 1025))
    for where in ("arena", "order", "tensor"):
        for value, ok in ((-2 ** 63, True), (2 ** 63, False)):
            d = json.loads(json.dumps(doc))
            if where == "arena":
                d["device_arena_bytes"][0] = value
            else:
                d["order" if where == "order" else "tensors"][0]["device"] = value
            if ok:
                assert plan_from_dict(d)
            else:
                with pytest.raises(memplan.PlanFormatError, match="is not an integer within"):
                    plan_from_dict(d)


@pytest.mark.parametrize("key,value,limits", [("alignment", 0, "1..9223372036854775807"), ("streams", 0, "1..1024"),
                                              ("streams", 1025, "1..1024"), ("lower_bound_bytes", -1, "0..")])
def test_plan_file_counts_out_of_range(key, value, limits):
    """A plan file with alignment 0, streams 0 or 1025, or a negative lower bound is refused naming the range."""
    from memplan.planfile import plan_from_dict

    doc = _plan_doc()
    doc[key] = value
    with pytest.raises(memplan.PlanFormatError, match=f"field '{key}' is {value}, outside {limits}"):
        plan_from_dict(doc)


def test_plan_mismatches_name_the_first_wrong_thing_once_and_stop_at_the_limit():
    """plan_mismatches: one finding for a single missing node or for bad events (either end), at most limit."""
    import dataclasses

    from memplan.planfile import plan_mismatches

    g = H.qkv()
    p = memplan.plan(g)
    assert plan_mismatches(g, dataclasses.replace(p, order=p.order[1:])) == [
        (1, "plan has no entry for graph node 'norm'")]   # (a plan of this graph: no "wrong graph?", round 52b)
    for events in ((("norm", "nope"), ("x", "y")), (("nope", "norm"),)):
        a, b = events[0]
        assert plan_mismatches(g, dataclasses.replace(p, events=events)) == [
            (1, f"event {a!r}->{b!r} names a node the graph does not have (wrong graph?)")]
    nodes = dataclasses.replace(p, order=p.order + tuple((f"u{i}", 0) for i in range(5)))
    assert [m for _, m in plan_mismatches(g, nodes, limit=3)] == [
        f"plan names node 'u{i}', which graph 'qkv' does not have (wrong graph?)" for i in range(3)]
    tensors = dataclasses.replace(p, tensors=p.tensors + tuple((f"t{i}", 0, 1) for i in range(5)))
    assert [m for _, m in plan_mismatches(g, tensors, limit=3)] == [
        f"plan places tensor 't{i}', which graph 'qkv' does not have (wrong graph?)" for i in range(3)]


@pytest.mark.parametrize("devices", ["2", 2.0, True, 0, None])
def test_plan_file_devices_that_is_not_a_device_count(devices):
    """A plan file's devices must be an integer in 1..1024: "2", 2.0, true, 0 and null are refused."""
    from memplan.planfile import plan_from_dict

    doc = dict(_plan_doc(), devices=devices)
    with pytest.raises(memplan.PlanFormatError, match="'devices' is not an integer in 1..1024"):
        plan_from_dict(doc)


def test_plan_with_too_few_device_entries_writes_minus_one():
    """A Plan built in code with a device list shorter than order/tensors writes -1 for the rest (verify rejects it)."""
    import dataclasses

    from memplan.examples import LLAMA_TINY, llama

    _, p = memplan.plan_devices(llama(LLAMA_TINY), 2)
    doc = dataclasses.replace(p, node_devices=p.node_devices[:-1], tensor_devices=p.tensor_devices[:-1]).to_dict()
    assert doc["order"][-1]["device"] == -1 and doc["tensors"][-1]["device"] == -1
    assert [e["device"] for e in doc["order"][:-1]] == list(p.node_devices[:-1])


@pytest.mark.parametrize("change", [
    lambda d: d.update(device_arena_bytes=d["device_arena_bytes"][:1]),
    lambda d: d.update(device_arena_bytes=None),
    lambda d: d["order"][0].update(device="1"),
    lambda d: d["tensors"][0].update(device=1.0),
    lambda d: d["tensors"][0].update(device=True),
    lambda d: d.update(device_arena_bytes=[True, 0]),
])
def test_multi_device_plan_file_with_malformed_device_fields(change):
    """device_arena_bytes must list one integer per device, and each device field be an integer (no str, float, bool)."""
    from memplan.examples import LLAMA_TINY, llama
    from memplan.planfile import plan_from_dict

    _, p = memplan.plan_devices(llama(LLAMA_TINY), 2)
    doc = json.loads(json.dumps(p.to_dict()))
    change(doc)
    with pytest.raises(memplan.PlanFormatError, match="device"):
        plan_from_dict(doc)
