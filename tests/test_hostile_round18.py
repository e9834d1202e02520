"""Hostile input, round 18: cases the earlier rounds (tests/test_hostile*.py) did not cover.

Each test names the input, what memplan did with it, and what it must do: a ``memplan.errors`` exception
(in the CLI one ``memplan: error:`` line and exit 2) naming the offending value, or the exact answer.
"""

from __future__ import annotations

import os

import pytest
from cli_contract import assert_bad_input, leftovers
from cli_contract import run_memplan as run
from test_hostile_api import no_hang

import memplan

# --- byte counts past 2**53 ----------------------------------------------------------------------------

@pytest.mark.parametrize("text,want", [
    ("9007199254740993", 2 ** 53 + 1),            # float() made it 2**53
    ("9223372036854775295", 2 ** 63 - 513),      # float() made it 2**63 - 1024
    ("9007199254740993B", 2 ** 53 + 1),
    ("8796093022208001K", 8796093022208001 << 10),
    ("1.5M", 3 << 19),
    ("64K", 1 << 16),
    ("0.5K", 512),                               # ("0.5" alone is no whole byte: refused since round 49)
])
def test_byte_counts_are_read_exactly(text, want):
    """``--memory-budget``, ``--device-capacity`` and ``csv --capacity`` went through ``float``: an integer
    above 2**53 lost its last bits (9007199254740993 was read as 9007199254740992)."""
    from memplan.argtypes import size

    assert size(text) == want


def test_csv_capacity_past_2_53_that_fits_exactly(tmp_path, capsys):
    """A buffer of 2**53 + 1 bytes and ``--capacity 9007199254740993``: refused with "no packing within
    capacity 9007199254740992 found (none exists)", a capacity the user never gave and a wrong answer."""
    c = tmp_path / "i.csv"
    c.write_text(f"id,lower,upper,size\na,0,1,{2 ** 53 + 1}\n")
    out = tmp_path / "o.csv"
    code, _, err = run(capsys, ["csv", c, "-o", out, "-q", "--capacity", str(2 ** 53 + 1)])
    assert code == 0, err
    assert out.read_text().splitlines()[1] == f"a,0,1,{2 ** 53 + 1},0"
    code, _, err = run(capsys, ["csv", c, "-o", tmp_path / "p.csv", "-q", "--capacity", str(2 ** 53)])
    assert_bad_input(code, err, str(2 ** 53), "capacity")
    assert not (tmp_path / "p.csv").exists() and not leftovers(tmp_path)


def test_memory_budget_past_2_53_is_the_one_given(tmp_path, capsys):
    """32 inputs of 2**48 bytes read by one node: an arena of 2**53 + 256 bytes. ``--memory-budget`` one
    byte short of it was read as 2**53 + 256, and the plan that exceeds the budget given was written."""
    g = tmp_path / "g.json"
    b = memplan.GraphBuilder("big")
    ins = [b.input(f"x{i}", 1 << 48) for i in range(32)]
    b.node("n", "CONCAT", ins, b.output("y", 256))
    memplan.save_graph(b.build(), str(g))
    arena = memplan.plan(memplan.load_graph(str(g))).arena_bytes
    assert arena == 2 ** 53 + 256
    out = tmp_path / "p.json"
    code, _, err = run(capsys, ["plan", g, "-o", out, "-q", "--memory-budget", str(arena - 1)])
    assert_bad_input(code, err, f"memory budget of {arena - 1} B")
    assert not out.exists()
    code, _, err = run(capsys, ["plan", g, "-o", out, "-q", "--memory-budget", str(arena)])
    assert code == 0, err


# --- library options past int64 ---------------------------------------------------------------------

@pytest.mark.parametrize("option,value,error", [
    ("memory_budget", 2 ** 63, memplan.BudgetError),
    ("memory_budget", 2 ** 64, memplan.BudgetError),
    ("max_events", 2 ** 63, memplan.ScheduleError),
    ("max_events", 10 ** 30, memplan.ScheduleError),
])
def test_plan_options_past_2_63_are_refused(tmp_path, option, value, error):
    """``plan(memory_budget=2**64)`` (or ``max_events``) planned, and the plan's solver block carried the
    value: a plan file with an integer outside the int64 range every plan integer keeps to (docs/format.md
    "Limits"), which the CLI's own options refuse. The library refuses it too, naming the option."""
    import handgraphs as H

    with pytest.raises(error, match=option):
        memplan.plan(H.qkv(), streams="auto", **{option: value})
    ok = memplan.plan(H.qkv(), streams="auto", **{option: 2 ** 63 - 1})
    assert ok.solver["schedule"][option] == 2 ** 63 - 1


# --- view_offset on a tensor that is no view ------------------------------------------------------------

def _qkv_doc():
    import handgraphs as H

    return H.qkv().to_dict()


@pytest.mark.parametrize("value,words", [
    ("x", ["'q'", "view_offset", "'x'"]),
    (-1, ["'q'", "view_offset", "-1"]),
    (1.5, ["'q'", "view_offset", "1.5"]),
    (True, ["'q'", "view_offset", "True"]),
    (2 ** 70, ["'q'", "view_offset"]),
    (512, ["'q'", "view_offset", "512", "view_of"]),
])
def test_view_offset_without_view_of(tmp_path, capsys, value, words):
    """A tensor with a ``view_offset`` but no ``view_of`` (a dropped or misspelt ``view_of``) was planned as a
    root of its own, silently, whatever the offset held: a string, -1, 2**70 (docs/format.md "Limits":
    ``view_offset`` is an integer in 0 .. 2**48), or an offset into a parent it does not name."""
    import json

    doc = _qkv_doc()
    next(t for t in doc["tensors"] if t["id"] == "q")["view_offset"] = value
    g = tmp_path / "g.json"
    g.write_text(json.dumps(doc))
    out = tmp_path / "p.json"
    code, _, err = run(capsys, ["plan", g, "-o", out])
    assert_bad_input(code, err, "g.json", *words)
    assert not out.exists() and not leftovers(tmp_path)
    with pytest.raises(memplan.GraphError, match="view_offset"):
        memplan.graph_from_dict(doc)
    b = memplan.GraphBuilder("g")
    b.tensor("x", 256, "input", view_offset=value)
    b.node("n", "OP", ["x"], b.output("y", 256))
    with pytest.raises(memplan.GraphError, match="'x'.*view_offset"):
        b.build()


@pytest.mark.parametrize("value", [0, None])
def test_view_offset_zero_or_null_on_a_root_is_no_offset(tmp_path, value):
    """A writer that emits ``"view_offset": 0`` (or null) beside no ``view_of`` for every tensor says nothing
    wrong: such graphs still load, and mean the same as without the field."""
    doc = _qkv_doc()
    for t in doc["tensors"]:
        t["view_offset"] = value
    g = memplan.graph_from_dict(doc)
    assert g == memplan.graph_from_dict(_qkv_doc())


# --- inputs whose read blocks ------------------------------------------------------------------------------

def test_a_regular_file_whose_read_would_block(tmp_path, capsys, monkeypatch):
    """``/proc/kmsg`` is a "regular" file of size 0 whose read waits for the next kernel message: ``memplan
    plan /proc/kmsg`` (or ``show``, ``csv``) hung. Inputs are opened without blocking, where such a read
    returns no data at all (``None``): one line naming the file. Simulated (reading the real /proc/kmsg as
    root would take the waiting kernel messages away from the system log)."""
    import io

    import memplan.files as files

    class WouldBlock(io.RawIOBase):
        def readable(self):
            return True

        def read(self, n=-1):
            return None

    src = tmp_path / "kmsg"
    src.write_text("")
    real_open = open
    monkeypatch.setattr(files, "open", lambda path, *a, **k: WouldBlock() if str(path) == str(src)
                        else real_open(path, *a, **k), raising=False)
    out = tmp_path / "o.json"
    for argv in (["plan", src, "-o", out], ["show", src], ["csv", src, "-o", out]):
        with no_hang(20):
            code, _, err = run(capsys, argv)
        assert_bad_input(code, err, str(src))
        assert "would wait" in err and not out.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_an_input_swapped_for_a_fifo_after_its_check(tmp_path, monkeypatch):
    """``read_input`` checks the path is a regular file, then opens it: a file replaced by a FIFO in between
    blocked that open forever (no writer). The open does not block; the empty read is an error naming it."""
    import memplan.files as files

    fifo = tmp_path / "g.json"
    os.mkfifo(fifo)
    monkeypatch.setattr(files, "check_readable", lambda path, error, limit=files.MAX_FILE_BYTES: 0)
    with no_hang(20), pytest.raises(memplan.GraphError, match="g.json"):
        memplan.load_graph(str(fifo))


# --- plan(check=...) -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, 0, 1, "no", "False"])
def test_check_that_is_not_a_bool_is_refused(value):
    """``check=None`` or ``0`` skipped the final verification by accident (falsy); ``"False"`` ran it."""
    from memplan.examples import qkv_attention

    g = qkv_attention()
    with pytest.raises(memplan.MemplanError, match=r"check must be True or False"):
        memplan.plan(g, check=value)
    assert memplan.plan(g, check=False).arena_bytes == memplan.plan(g).arena_bytes


# --- outputs refused before the work ------------------------------------------------------------------

@pytest.mark.parametrize("out", ["nodir/g.json", "g.json/"])
def test_an_unwritable_output_is_refused_before_the_work(tmp_path, capsys, monkeypatch, out):
    """``import``/``csv`` into a missing directory, or a path with a trailing slash, failed only after the
    import or the solve (wasted, however long); every command now checks its outputs first."""
    import memplan.importers.onnx as onnx_importer
    import memplan.io.minimalloc as mm

    def never(*_a, **_k):
        raise AssertionError("the work ran before the output was checked")

    monkeypatch.setattr(onnx_importer, "import_spelled", never)   # (what `memplan import` calls)
    monkeypatch.setattr(mm, "read_csv", never)
    model, table = tmp_path / "m.onnx", tmp_path / "t.csv"
    model.write_bytes(b"x")
    table.write_text("id,lower,upper,size\nb0,0,1,8\n")
    for argv in (["import", model, "-o", tmp_path / out], ["csv", table, "-o", tmp_path / out]):
        code, _, err = run(capsys, [str(a) for a in argv[:-1]] + [str(argv[-1]) + ("/" if out.endswith("/") else "")])
        assert_bad_input(code, err, "cannot write")
        assert not leftovers(tmp_path)


def test_a_csv_with_old_mac_line_ends_is_read(tmp_path, capsys):
    """CR-only line ends (old Mac tools) failed with Python's "open the file in universal-newline mode?";
    they are line ends, as CRLF and LF are, and a quoted field keeps its own."""
    for name, text in (("cr.csv", "id,lower,upper,size\rb0,0,1,8\rb1,0,1,8\r"),
                       ("crlf.csv", 'id,lower,upper,size\r\nb0,0,1,8\r\n"b\r\n1",0,1,8\r\n')):
        src, out = tmp_path / name, tmp_path / f"o-{name}"
        src.write_bytes(text.encode())
        code, _, err = run(capsys, ["csv", src, "-o", out])
        assert code == 0, err
        assert out.read_text().splitlines()[1:3] == ["b0,0,1,8,0", "b1,0,1,8,8"] if name == "cr.csv" else \
            out.read_bytes().endswith(b'"b\r\n1",0,1,8,8\n')


def test_a_capacity_nothing_fits_is_named_by_the_csv(tmp_path, capsys):
    """The error began with the solver's name ("search: no packing within capacity 8 ..."), the one CSV
    error not naming its file."""
    src = tmp_path / "t.csv"
    src.write_text("id,lower,upper,size\nb0,0,1,8\nb1,0,1,8\n")
    code, _, err = run(capsys, ["csv", src, "-o", tmp_path / "o.csv", "--capacity", "8"])
    assert_bad_input(code, err, str(src))
    assert "capacity 8" in err


# --- Llama configs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value,words", [
    ("heads", 0, "heads must be an integer >= 1"), ("kv_heads", 0, "kv_heads must be an integer >= 1"),
    ("ffn", 0, "ffn must be an integer >= 1"), ("ctx", -1, "ctx must be an integer >= 0"),
    ("hidden", -8, "hidden must be an integer >= 1"), ("hidden", 64.5, "hidden must be an integer"),
    ("layers", "2", "layers must be an integer"), ("hidden", True, "hidden must be an integer"),
    ("batch", 0, "batch must be an integer >= 1"), ("kv_heads", 3, "4 heads do not group over 3 KV heads"),
    ("hidden", 66, "hidden 66 is not a multiple of heads 4"),
    ("name", 5, "name must be a string")])
def test_a_llama_config_no_llama_has_is_refused_by_field(field, value, words):
    """``LlamaConfig`` took anything: heads=0 or ffn=0 divided by zero deep in the builder, ctx=-1 failed in
    numpy, a hidden size that is no multiple of the heads built attention views short of the projections."""
    from dataclasses import replace

    from memplan.examples import LLAMA_TINY, llama

    with pytest.raises(memplan.GraphError, match=words):
        llama(replace(LLAMA_TINY, **{field: value}))
