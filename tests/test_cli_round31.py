"""The command line, round 31: hostile stdout, files and option values.

Each test names the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import errno
import io
import sys

from cli_contract import assert_bad_input, run_memplan

from memplan import examples
from memplan.io import save_graph


def _graph(tmp_path):
    g = tmp_path / "g.json"
    save_graph(examples.qkv_attention(), str(g))
    return g


def _stdout(monkeypatch, stream) -> None:
    """Run the next command with ``sys.stdout`` as ``stream`` (None: started with ``>&-``)."""
    monkeypatch.setattr(sys, "stdout", stream)


# ---- 1. a document for stdout, where stdout cannot take it --------------------------------------------------

def test_plan_to_a_closed_stdout_is_refused_before_planning_and_writes_no_graph_out(tmp_path, capsys, monkeypatch):
    """``plan G -o - --devices 2 --graph-out S >&-``: the graph was planned, ``S`` written, and only then the
    plan refused ("cannot write to stdout: it is closed"), exit 2 with half the result on disk. A closed stdout
    is known before any work: refused first, as a missing directory for ``-o`` is, naming the option."""
    g, split = _graph(tmp_path), tmp_path / "split.json"
    with monkeypatch.context() as m:
        _stdout(m, None)
        code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "--devices", "2", "--graph-out", split, "-q"])
    assert_bad_input(code, err, "-o -", "stdout", "closed")
    assert not split.exists()


def test_bench_json_to_a_closed_stdout_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    """``bench ... --json - >&-``: the suite ran to its end (hours for some) and the JSON was then refused; the
    ``--json`` path is checked before the run for every other trouble ("checked before a run that may take
    hours"), and now for this one too, naming ``--json``."""
    ran = []
    from memplan.benchmarks import devices

    monkeypatch.setattr(devices, "run", lambda args: ran.append(args) or [])
    with monkeypatch.context() as m:
        _stdout(m, None)
        code, _, err = run_memplan(capsys, ["bench", "devices", "--models", "tiny", "--devices", "2", "--json", "-"])
    assert_bad_input(code, err, "--json -", "stdout", "closed")
    assert ran == []


def test_a_closed_in_process_stdout_is_refused_before_planning(tmp_path, capsys, monkeypatch):
    """The same for a stream closed in the process (``contextlib.redirect_stdout`` to a closed StringIO)."""
    g, split = _graph(tmp_path), tmp_path / "split.json"
    buf = io.StringIO()
    buf.close()
    with monkeypatch.context() as m:
        _stdout(m, buf)
        code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "--devices", "2", "--graph-out", split, "-q"])
    assert_bad_input(code, err, "-o -", "stdout", "closed")
    assert not split.exists()


class _FullStdout(io.TextIOWrapper):
    """A stdout whose writes fail as ``>/dev/full``'s do: ENOSPC, known only when written."""

    def __init__(self) -> None:
        super().__init__(_FullBuffer(), encoding="utf-8")


class _FullBuffer(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_plan_to_a_full_stdout_writes_no_graph_out(tmp_path, capsys, monkeypatch):
    """``plan G -o - --devices 2 --graph-out S >/dev/full``: ``S`` was written first, then the plan failed on
    stdout, exit 2 with the split graph on disk and no plan for it. A write to stdout cannot be checked before it
    is made (a file's can, and is): the stdout document is now written first, so its failure leaves no file."""
    g, split = _graph(tmp_path), tmp_path / "split.json"
    with monkeypatch.context() as m:
        _stdout(m, _FullStdout())
        code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "--devices", "2", "--graph-out", split, "-q"])
    assert_bad_input(code, err, "stdout", "No space left")
    assert not split.exists()


# ---- 2. two outputs that are one file ---------------------------------------------------------------------

def test_example_into_a_directory_where_one_example_links_to_another_is_refused(tmp_path, capsys):
    """``example -o D`` where ``D/qkv.json`` is a symlink to ``chain.json`` (or a hard link of it): chain.json was
    written, then qkv's graph written through the link over it, exit 0 with both paths listed and chain.json
    holding graph 'qkv'. Two outputs naming one file are refused before either is written, as ``plan -o P
    --graph-out P`` is."""
    import os

    for link in (os.symlink, os.link):
        d = tmp_path / link.__name__
        d.mkdir()
        (d / "chain.json").write_text("mine\n")
        link(d / "chain.json", d / "qkv.json")
        code, out, err = run_memplan(capsys, ["example", "-o", d])
        assert_bad_input(code, err, "chain.json", "qkv.json", "same file")
        assert out == "" and (d / "chain.json").read_text() == "mine\n"
        assert sorted(os.listdir(d)) == ["chain.json", "qkv.json"]


# ---- 3. library entry points: text read_csv refuses, parse_csv took --------------------------------------

def test_parse_csv_refuses_what_read_csv_refuses_so_every_table_can_be_written(tmp_path):
    """``parse_csv`` took a NUL or a lone surrogate (``"\\ud800"``: valid in a str, no UTF-8 has it) that
    ``read_csv`` refuses in a file: ``write_csv`` then raised a raw UnicodeEncodeError (the surrogate), or wrote a
    solution file that ``read_csv`` refused ("holds a NUL byte"). Both are an InputFormatError naming the line."""
    import pytest

    from memplan.errors import InputFormatError, MemplanError
    from memplan.io.minimalloc import CsvTable, parse_csv, write_csv

    for bad, line in (("id,lower,upper,size\na\x00b,0,2,1\n", 2), ("id,lower,upper,size\nx,0,2,1\n\ud800,0,2,1\n", 3),
                      ("\ud800,lower,upper,size,id\nx,0,2,1,a\n", 1)):
        with pytest.raises(InputFormatError, match=f"t.csv: line {line}: "):
            parse_csv(bad, "t.csv")
    # a table built in code with such an id: the writer names the file, never a UnicodeEncodeError
    good = parse_csv("id,lower,upper,size\nx,0,2,1\n", "t.csv")
    table = CsvTable(path="t.csv", header=good.header, rows=(("\ud800", "0", "2", "1"),), ids=("\ud800",),
                     lower=good.lower, upper=good.upper, sizes=good.sizes)
    out = tmp_path / "o.csv"
    with pytest.raises(MemplanError, match="o.csv"):
        write_csv(str(out), table, [0])
    assert not out.exists() and not list(tmp_path.iterdir())


def test_an_empty_path_is_named_as_one_by_the_loaders_and_writers(tmp_path, monkeypatch):
    """``load_graph("")``, ``load_plan("")``, ``read_csv("")`` said ": no such file" and ``save_graph(g, "")``
    "cannot write : No such file or directory": a message that begins with nothing and names no file. The
    command line refuses an empty path in its parser ("empty path"); the library now says so too."""
    import pytest

    from memplan import examples, load_plan
    from memplan.errors import MemplanError
    from memplan.io import load_graph, save_graph
    from memplan.io.minimalloc import read_csv

    monkeypatch.chdir(tmp_path)
    for load in (load_graph, load_plan, read_csv):
        with pytest.raises(MemplanError, match="empty path"):
            load("")
    with pytest.raises(MemplanError, match="empty path"):
        save_graph(examples.chain(), "")
    assert not list(tmp_path.iterdir())


def test_a_csv_error_names_the_line_its_row_starts_on(tmp_path, capsys):
    """A stray quote on line 6 of a 1001-line CSV (``"b4,0,2,1``) opens a field that runs to the end of the file:
    the error said "line 1001: 1 fields, expected 4", the last line, which holds nothing wrong; a quote opened in
    the last column named line 11 for buffer 'b4' of line 6. A row's errors name the line it starts on, and a row
    that runs over several lines says so (a quote left open)."""
    rows = ["id,lower,upper,size"] + [f"b{i},0,2,1" for i in range(1000)]
    for bad, words in (('"b4,0,2,1', ["line 6:", "1 field,", "line 1001", "quote"]),
                       ('b4,0,2,"1', ["line 6,", "'size'", "buffer 'b4'", "quote"])):
        f = tmp_path / "in.csv"
        f.write_text("\n".join(rows[:5] + [bad] + rows[6:]) + "\n")
        code, _, err = run_memplan(capsys, ["csv", f, "-o", tmp_path / "o.csv", "-q"])
        assert_bad_input(code, err, *words)
        assert not (tmp_path / "o.csv").exists()
    # a quoted id over two lines is legal; a later duplicate names both rows by their first lines
    f.write_text('id,lower,upper,size\n"a\nb",0,2,1\nc,0,2,1\n"a\nb",0,2,1\n')
    code, _, err = run_memplan(capsys, ["csv", f, "-o", tmp_path / "o.csv", "-q"])
    assert_bad_input(code, err, "line 5,", "already defined on line 2")


# ---- 4. an output path through a symlink and '..' ---------------------------------------------------------

def _dotdot_through_link(tmp_path, real_parent):
    """``LINK/../out.json`` where ``LINK`` -> ``real_parent/sub``: the kernel puts it in ``real_parent``, and
    ``os.path.abspath`` (lexically) in ``tmp_path``."""
    import os

    (real_parent / "sub").mkdir(parents=True, exist_ok=True)
    link = tmp_path / "link"
    os.symlink(real_parent / "sub", link)
    return os.path.join(str(link), "..", "out.json")


def test_a_temporary_file_is_made_where_the_kernel_puts_the_output(tmp_path, capsys, monkeypatch):
    """``-o LINK/../out.json`` with ``LINK`` a symlink to a directory elsewhere: the output is ``LINK``'s target's
    parent's ``out.json`` (as a shell's ``> LINK/../out.json`` has it), but the temporary file (and the check's probe)
    was made in the directory ``abspath`` gives, lexically: beside ``LINK``. On another file system the rename
    failed ("Invalid cross-device link") after the plan was made; on the same one a read-only target directory passed
    the check. Both are now made in the output's own directory."""
    import tempfile

    made = []
    real_mkstemp = tempfile.mkstemp

    def spy(*a, **k):
        made.append(k.get("dir"))
        return real_mkstemp(*a, **k)

    g, real = _graph(tmp_path), tmp_path / "elsewhere"
    out = _dotdot_through_link(tmp_path, real)
    monkeypatch.setattr(tempfile, "mkstemp", spy)
    code, _, err = run_memplan(capsys, ["plan", g, "-o", out, "-q"])
    assert (code, err) == (0, "")
    assert (real / "out.json").is_file() and not (tmp_path / "out.json").exists()
    assert made and {d for d in made} == {str(real)}, made


def test_an_output_through_a_link_to_another_file_system_is_written(tmp_path, capsys):
    """The case above across file systems (a link into /dev/shm): refused with "Invalid cross-device link"."""
    import os
    import shutil
    import tempfile as tf

    import pytest

    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another file system than the test's directory")
    real = tf.mkdtemp(dir="/dev/shm")
    try:
        g = _graph(tmp_path)
        out = _dotdot_through_link(tmp_path, __import__("pathlib").Path(real))
        code, _, err = run_memplan(capsys, ["plan", g, "-o", out, "-q"])
        assert (code, err) == (0, "")
        assert os.path.isfile(os.path.join(real, "out.json"))
    finally:
        shutil.rmtree(real)


# ---- 5. an error line as long as the input -----------------------------------------------------------------

def _chain_text() -> str:
    from memplan.planfile import json_text

    return json_text(examples.chain().to_dict())


def test_read_json_quotes_a_long_number_or_key_cut_short(tmp_path):
    """A number past a double's range written with 100,000 digits, or a repeated key of 100,000 characters: the
    GraphError quoted it whole (a 100 KB message; a 1 GiB file could make it a 1 GB one). Quoted cut short, as
    every other value in these messages is, with the key path and the file still named."""
    import pytest

    from memplan.errors import GraphError
    from memplan.io import load_graph

    text = _chain_text()
    long_key = "k" * 100_000
    for bad, words in ((text.replace('"alignment": 256', '"alignment": 1' + "0" * 100_000 + ".0", 1),
                        ["['alignment']", "beyond the range of a double"]),
                       (text.replace('"alignment": 256', f'"{long_key}": 1, "{long_key}": 2, "alignment": 256', 1),
                        ["appears twice"])):
        f = tmp_path / "g.json"
        f.write_text(bad)
        with pytest.raises(GraphError) as info:
            load_graph(str(f))
        msg = str(info.value)
        assert len(msg) < 500 and msg.startswith(str(f)), msg[:300]
        for w in words:
            assert w in msg, msg


def test_a_cli_error_line_is_bounded_whatever_the_input_names(tmp_path, capsys):
    """A node id of 100,000 characters in a graph error ("node 'ooo...': cost -1 is not ..."): the one error
    line was 100 KB. The line keeps its start (the file, the element) and its end (what is wrong), and says how
    many characters were cut from the middle."""
    text = _chain_text()
    long_id = "o" * 100_000
    f = tmp_path / "g.json"
    f.write_text(text.replace('"op0"', f'"{long_id}"').replace('"cost": 10.0', '"cost": -1', 1))
    code, _, err = run_memplan(capsys, ["plan", f, "-o", tmp_path / "p.json", "-q"])
    assert_bad_input(code, err, str(f), "cost -1", "characters cut")
    assert len(err) < 3000


# ---- 6. bench planners: a capacity in a problem's file name -------------------------------------------------

def _minimalloc_dir(tmp_path, name):
    d = tmp_path / "mm"
    d.mkdir()
    (d / name).write_text("id,lower,upper,size\na,0,2,10\nb,1,3,20\n")
    return d


def test_bench_reads_a_capacity_in_a_file_name_only_as_ascii_digits(tmp_path, capsys):
    """``A.².csv`` in ``--minimalloc DIR``: ``str.isdigit`` took '²' for a capacity and ``int`` refused it, a raw
    ValueError traceback, exit 1; ``A.١٠.csv`` ran with capacity 10. A capacity is ASCII digits, as every
    number memplan reads: these names have none, and the problem is minimised."""
    for k, name in enumerate(("A.\u00b2.csv", "A.\u0661\u0660.csv")):
        (tmp_path / str(k)).mkdir()
        d = _minimalloc_dir(tmp_path / str(k), name)
        code, out, err = run_memplan(capsys, ["bench", "planners", "--corpus", "minimalloc", "--minimalloc", d,
                                              "--solvers", "greedy", "--json", "-"])
        assert code == 0 and "Traceback" not in err, err
        (row,) = __import__("json").loads(out)
        assert row["problem"] == "A" and row.get("capacity") is None and row["arena"] == 30, row


def test_bench_refuses_a_capacity_past_2_63_in_a_file_name_naming_the_file(tmp_path, capsys):
    """``A.99999999999999999999999.csv``: "buffer problem: capacity ... is not a byte count", naming no file, after
    the table's head was printed. Refused before any solve, naming the file."""
    d = _minimalloc_dir(tmp_path, "A.99999999999999999999999.csv")
    code, out, err = run_memplan(capsys, ["bench", "planners", "--corpus", "minimalloc", "--minimalloc", d,
                                          "--solvers", "greedy"])
    assert_bad_input(code, err, "A.99999999999999999999999.csv", "capacity")
    assert out == ""


def test_an_output_in_a_loop_of_symlinks_is_named_as_one(tmp_path, capsys):
    """``-o LOOP/x.json`` with ``LOOP`` a symlink to itself: "LOOP is not a directory", where a link is there."""
    import os

    os.symlink(tmp_path / "loop", tmp_path / "loop")
    code, _, err = run_memplan(capsys, ["plan", _graph(tmp_path), "-o", tmp_path / "loop" / "x.json", "-q"])
    assert_bad_input(code, err, "-o", "loop of symbolic links")


# ---- 7. '-' where stdout is redirected to a file the command names too -------------------------------------

def test_stdout_redirected_to_another_output_or_an_input_is_refused(tmp_path, capsys, monkeypatch):
    """``plan G -o - --devices 2 --graph-out S > S``: the plan went to stdout (the file ``S``), then the split
    graph was renamed over ``S``: exit 0 and the plan lost. ``plan G -o - >> G``: the plan was appended to the
    input graph. A '-' output is the file stdout is redirected to, compared with the other outputs and the inputs
    as every output path is, before any work."""
    g, split = _graph(tmp_path), tmp_path / "split.json"
    split.write_text("")
    before = g.read_text()
    for argv, redirect, words in ((["plan", g, "-o", "-", "--devices", "2", "--graph-out", split, "-q"], split,
                                   ["-o -", "--graph-out", "same file"]),
                                  (["plan", g, "-o", "-", "-q"], g, ["-o -", "input graph", "stdout"])):
        with open(redirect, "a") as out, monkeypatch.context() as m:
            _stdout(m, out)
            code, _, err = run_memplan(capsys, argv)
        assert_bad_input(code, err, *words)
    assert split.read_text() == "" and g.read_text() == before


def test_an_empty_json_input_is_named_empty_and_a_shell_emptied_one_says_so(tmp_path, capsys, monkeypatch):
    """An empty graph or plan file was "not valid JSON (Expecting value at line 1 column 1)"; the CSV and ONNX
    readers say "empty file". ``memplan show P > P`` (the shell empties ``P`` before memplan runs) now also says
    that stdout is redirected to it."""
    p = tmp_path / "p.json"
    p.write_text(" \n")
    code, _, err = run_memplan(capsys, ["show", p])
    assert_bad_input(code, err, str(p), "empty file")
    p.write_text("")
    with open(p, "a") as out, monkeypatch.context() as m:
        _stdout(m, out)
        code, _, err = run_memplan(capsys, ["show", p])
    assert_bad_input(code, err, str(p), "empty file", "stdout is redirected to it")
