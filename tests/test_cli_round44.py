"""Round 44 (CLI): stderr redirected into an input, ``show``'s columns with wide characters, message grammar, and
hostile arguments to every subcommand.

The CLI runs as its own process (its stdout and stderr are real files here, which the checks look at). Each test names
the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import os
import subprocess
import sys

import cli_forks
import pytest

import memplan
from memplan import examples

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def memplan_cli(argv, *, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120):
    """``python -m memplan argv`` as its own process (forked from one interpreter that imported memplan once:
    ``cli_forks``; real stdin, stdout, stderr and exit status): the CompletedProcess (bytes)."""
    return cli_forks.memplan_cli(argv, stdout=stdout, stderr=stderr, timeout=timeout)


def one_error(text: bytes, *words: str) -> None:
    """``text`` is exactly one ``memplan: error:`` line holding every word, and no traceback."""
    lines = text.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memplan: error: "), text
    for w in words:
        assert w in lines[0], (w, text)


@pytest.fixture
def diamond_files(tmp_path):
    """(graph path, plan path) of the bundled diamond, planned on two streams."""
    g = examples.diamond()
    gp, pp = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(g, str(gp))
    memplan.plan(g, streams=2).save(str(pp))
    return str(gp), str(pp)


# ---- stderr redirected into an input ---------------------------------------------------------------------------


def test_plan_with_stderr_appended_to_its_graph_is_refused(diamond_files, tmp_path):
    """``memplan plan G -o P 2>> G`` wrote P and appended its summary line to G (the graph no longer parsed, exit 0);
    it is refused before any work, exit 2, G unchanged and P not written, the one error line on stdout (a pipe)."""
    gp, _ = diamond_files
    before = open(gp, "rb").read()
    out = tmp_path / "new.json"
    with open(gp, "ab") as err:
        proc = memplan_cli(["plan", gp, "-o", out], stderr=err)
    assert proc.returncode == 2
    one_error(proc.stdout, "stderr is redirected to the input graph", gp, "redirect stderr elsewhere")
    assert open(gp, "rb").read() == before
    assert not out.exists()


def test_plan_with_stderr_truncating_its_graph_writes_nothing_into_it(diamond_files, tmp_path):
    """``plan G -o P 2> G``: the shell empties G, and the reader's "empty file" error was written into it; now the
    refusal says the shell emptied it, and G stays empty (nothing of memplan's in it)."""
    gp, _ = diamond_files
    with open(gp, "wb") as err:
        proc = memplan_cli(["plan", gp, "-o", tmp_path / "new.json"], stderr=err)
    assert proc.returncode == 2
    one_error(proc.stdout, "which is empty: the shell made or emptied it", "'2>' truncates")
    assert os.path.getsize(gp) == 0


@pytest.mark.parametrize("command", ["show", "trace"])
def test_report_commands_with_stderr_into_their_plan_are_refused(diamond_files, tmp_path, command):
    """``show P >> OUT 2>> P`` (and trace; verify and simulate alike): stderr into the plan read. Refused, exit 2, P unchanged;
    stdout is a regular file here (an output), so the error line is written nowhere rather than into it."""
    gp, pp = diamond_files
    before = open(pp, "rb").read()
    argv = {"show": [pp], "verify": [gp, pp], "simulate": [gp, pp], "trace": [gp, pp, "-o", tmp_path / "t.json"]}
    with open(pp, "ab") as err, open(tmp_path / "out.txt", "wb") as out:
        proc = memplan_cli([command, *argv[command]], stdout=out, stderr=err)
    assert proc.returncode == 2
    assert open(pp, "rb").read() == before
    assert os.path.getsize(tmp_path / "out.txt") == 0
    assert not (tmp_path / "t.json").exists()


def test_show_with_both_streams_into_its_plan_keeps_it_whole(diamond_files):
    """``show P >> P 2>&1``: stdout was refused, but the refusal went to stderr, also P: one error line appended to
    the plan. Now P is unchanged (exit 2)."""
    _, pp = diamond_files
    before = open(pp, "rb").read()
    with open(pp, "ab") as both:
        proc = memplan_cli(["show", pp], stdout=both, stderr=both)
    assert proc.returncode == 2
    assert open(pp, "rb").read() == before


@pytest.mark.parametrize("mistake", [["--bogus"], ["--streams=0"]])
def test_a_usage_mistake_with_stderr_into_the_graph_keeps_it_whole(diamond_files, tmp_path, mistake):
    """``plan G -o P --bogus 2>> G``: argparse's error line was appended to G before the command knew its inputs.
    Now the line goes to stdout (a pipe here), G unchanged, exit 2."""
    gp, _ = diamond_files
    before = open(gp, "rb").read()
    with open(gp, "ab") as err:
        proc = memplan_cli(["plan", gp, "-o", tmp_path / "new.json", *mistake], stderr=err)
    assert proc.returncode == 2
    one_error(proc.stdout, "see 'memplan plan --help'")
    assert open(gp, "rb").read() == before


def test_stderr_into_another_file_still_gets_the_summary(diamond_files, tmp_path):
    """The refusal is for inputs only: ``plan G -o P 2>> LOG`` writes P and its summary into LOG, as before."""
    gp, _ = diamond_files
    log = tmp_path / "log.txt"
    with open(log, "ab") as err:
        proc = memplan_cli(["plan", gp, "-o", tmp_path / "new.json"], stderr=err)
    assert proc.returncode == 0
    assert b"arena" in log.read_bytes() and (tmp_path / "new.json").exists()


# ---- show's columns ----------------------------------------------------------------------------------------------

#: ids whose characters take other than one terminal cell each: CJK and emoji two, a combining accent none; and an
#: escape, printed as the four characters ``\x1b``
WIDE_IDS = ("张量张量张量张量张量张量张量张量张量张量", "张量😀", "😀😀 emoji", "é-combining", "cafe\u0301", "\x1b[31mred", "plain")


def _cells(text: str) -> int:
    """Terminal cells of ``text``, counted independently of memplan (wide/fullwidth 2, combining 0)."""
    import unicodedata

    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _offset_columns_line_up(stdout: bytes, encoding: str = "utf-8") -> None:
    """Each row of ``show``'s largest-tensors table ends its offset in the terminal column its heading does."""
    lines = stdout.decode(encoding).splitlines()
    head = next(k for k, line in enumerate(lines) if line.lstrip().startswith("tensor "))
    heading = lines[head]
    end = _cells(heading[:heading.index("offset") + len("offset")])
    rows = lines[head + 1:head + 1 + len(WIDE_IDS)]
    assert len(rows) == len(WIDE_IDS)
    for row in rows:
        offset_end = len(row.rstrip()) - len(row.rstrip().split()[-1])   # (the size column's start, then back)
        if _cells(row[:offset_end].rstrip().rsplit(" ", 1)[0].strip()) > 64:
            continue   # (an id past 64 cells: its row alone, by design)
        assert _cells(row[:offset_end].rstrip()) == end, (row, heading)


@pytest.fixture
def wide_plan(tmp_path):
    """The path of a plan whose tensor ids are ``WIDE_IDS``, the longest 40 cells wide."""
    tensors = [{"id": t, "size": 1024 * (k + 1), "kind": "intermediate"} for k, t in enumerate(WIDE_IDS)]
    nodes = [{"id": f"n{k}", "op": "X", "inputs": [] if k == 0 else [WIDE_IDS[k - 1]], "outputs": [t]}
             for k, t in enumerate(WIDE_IDS)]
    g = memplan.graph_from_dict({"format": "memplan.graph/1", "name": "wide", "alignment": 256, "tensors": tensors,
                                 "nodes": nodes})
    pp = tmp_path / "p.json"
    memplan.plan(g).save(str(pp))
    return pp


def test_show_lines_up_ids_on_an_ascii_stdout(wide_plan):
    """On a stdout that cannot write them (``PYTHONIOENCODING=ascii``, a Latin-1 locale) ``show`` escaped the CJK and
    emoji of ids after padding them, so ``张量`` (4 cells) became ``\u5f20\u91cf`` (12) and its row stood right of
    the others; they are escaped before the columns are measured, and every row lines up."""
    proc = subprocess.run([sys.executable, "-m", "memplan", "show", str(wide_plan)], capture_output=True, timeout=120,
                          env={**ENV, "PYTHONIOENCODING": "ascii"}, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert b"\\u5f20" in proc.stdout
    _offset_columns_line_up(proc.stdout, "ascii")


def test_show_lines_up_ids_of_wide_characters(wide_plan):
    """``show`` of a plan whose tensor ids hold CJK or emoji padded each id by its count of characters, so those rows
    took up to twice the cells and their offsets and sizes stood right of the heading's; now each row's offset ends
    in the same terminal column as the heading's ``offset``."""
    proc = memplan_cli(["show", wide_plan])
    assert proc.returncode == 0, proc.stderr
    _offset_columns_line_up(proc.stdout)


# ---- message grammar ---------------------------------------------------------------------------------------------


def test_csv_row_of_one_cell_says_one_field(tmp_path):
    """``memplan csv`` of a row holding one cell said "line 2: 1 fields, expected 4"; now "1 field"."""
    path = tmp_path / "c.csv"
    path.write_text("id,lower,upper,size\na\n")
    proc = memplan_cli(["csv", path, "-o", tmp_path / "o.csv"])
    assert proc.returncode == 2
    one_error(proc.stderr, "line 2: 1 field, expected 4")
    assert not (tmp_path / "o.csv").exists()


def test_write_csv_of_one_row_says_one_integer(tmp_path):
    """``write_csv`` of a one-row table given two offsets said "offsets must be 1 integers"; now "1 integer"."""
    from memplan.errors import SolverError
    from memplan.io.minimalloc import parse_csv, write_csv

    table = parse_csv("id,lower,upper,size\na,0,1,4\n", "c.csv")
    with pytest.raises(SolverError, match="offsets must be 1 integer, one per row"):
        write_csv(str(tmp_path / "o.csv"), table, [0, 8])


def test_a_split_plan_with_one_arena_says_one_byte_count():
    """A two-device Plan built in code with one arena size said "'device_arena_bytes' lists 1 byte counts for 2
    devices"; now "1 byte count"."""
    import dataclasses

    from memplan.errors import PlanFormatError

    split = memplan.plan_devices(examples.llama(examples.LLAMA_TINY), 2)[1]
    with pytest.raises(PlanFormatError, match="'device_arena_bytes' lists 1 byte count for 2 devices"):
        dataclasses.replace(split, device_arena_bytes=split.device_arena_bytes[:1]).to_dict()


# ---- text inputs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command, name, data, where", [
    ("plan", "g.json", b'{"format": "memplan.graph/1",\n "name": "caf\xe9"}', "byte 0xe9 at line 2, byte 14"),
    ("csv", "c.csv", b"id,lower,upper,size\nab\xe9,0,2,4\n", "byte 0xe9 at line 2, byte 3"),
])
def test_a_latin1_input_names_where_it_is_not_utf8(tmp_path, command, name, data, where):
    """A graph or CSV saved as Latin-1 (one ``é``, byte 0xe9) was refused as "not UTF-8 text" alone, leaving the user
    to search the file; the error now names the byte, its line and its place in the line."""
    path = tmp_path / name
    path.write_bytes(data)
    proc = memplan_cli([command, path, "-o", tmp_path / "out"])
    assert proc.returncode == 2
    one_error(proc.stderr, "not UTF-8 text", where, "save it as UTF-8")
    assert not (tmp_path / "out").exists()


def test_a_csv_with_blank_lines_before_its_header_is_read(tmp_path):
    """Blank lines between rows were skipped, but one before the header made the blank line the header: the file was
    refused as "line 1: missing column 'id'" with the header on line 3. The header is now the first row that is not
    blank, and the table is solved; an error in a later row still names its own line."""
    path = tmp_path / "c.csv"
    path.write_text("\n  ,  \nid,lower,upper,size\na,0,2,4\nb,1,3,8\n")
    proc = memplan_cli(["csv", path, "-o", tmp_path / "o.csv", "-q"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.csv").read_text().splitlines()[0] == "id,lower,upper,size,offset"
    path.write_text("\nid,lower,upper,size\na,0,2,4\nb,1\n")
    proc = memplan_cli(["csv", path, "-o", tmp_path / "o2.csv"])
    assert proc.returncode == 2
    one_error(proc.stderr, "line 4: 2 fields, expected 4")


@pytest.mark.parametrize("header, name", [("id;lower;upper;size", "semicolons"), ("id\tlower\tupper\tsize", "tabs")])
def test_a_csv_separated_by_other_characters_says_so(tmp_path, header, name):
    """``id;lower;upper;size`` (a spreadsheet's export where the decimal mark is a comma) or a tab-separated file was
    "missing column 'id'" alone, its header right there; the error now says what separates them."""
    path = tmp_path / "c.csv"
    path.write_text(header + "\n" + header.replace("id", "a").replace("lower", "0").replace("upper", "2")
                    .replace("size", "4") + "\n")
    proc = memplan_cli(["csv", path, "-o", tmp_path / "o.csv"])
    assert proc.returncode == 2
    one_error(proc.stderr, "missing column 'id'", f"separates them by {name}", "by commas")


@pytest.mark.parametrize("text, words", [
    ('"streams": 2.0', "field 'streams' is 2.0, not an integer"),
    ('"streams": true', "field 'streams' is true, not an integer"),
    ('"streams": null', "field 'streams' is null, not an integer"),
])
def test_a_plan_field_of_another_type_says_what_it_is(diamond_files, tmp_path, text, words):
    """``show`` of a plan whose ``streams`` is 2.0 (or true, null) said "field 'streams' is missing or not an int"
    of a field that was there; it now names the value, as JSON spells it, and what it should be."""
    _, pp = diamond_files
    doc = open(pp).read()
    assert '"streams": 2' in doc
    bad = tmp_path / "bad.json"
    bad.write_text(doc.replace('"streams": 2', text, 1))
    proc = memplan_cli(["show", bad])
    assert proc.returncode == 2
    one_error(proc.stderr, words)
