"""Round 64 hostile inputs (CLI): a hypothesis fuzz of the less-travelled commands, ``csv``, ``trace``,
``simulate``, ``show`` (with and without ``--graph``) and ``example``, on hostile files and option values.

Each example writes one hostile input (a minimalloc CSV of hostile fields and bytes; a graph or plan JSON with one
value replaced by a hostile one, a key duplicated, a deep nesting, a byte-order mark, UTF-16 or bytes that are no
UTF-8), adds hostile option values, runs the command in-process and holds it to the CLI's contract: exit 0 or 2; on
2 exactly one ``memplan: error:`` line and no traceback; the inputs unchanged; no output written by a failed run and
no temporary file left; a ``csv`` output that is a packing of its input, a ``trace`` output that is JSON. Bounded:
a fixed number of examples of small inputs (a few seconds in CI)."""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest
from cli_contract import exit_code, leftovers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memplan
from memplan import examples
from memplan.cli import main as memplan_main

HOSTILE_VALUES = [None, True, False, 0, -1, 1.5, 2 ** 63, 2 ** 63 - 1, 2 ** 64, -2 ** 63 - 1, 10 ** 30, 1e308, "",
                  "x", "\u00e9\u0301", "\ud800", "a\x00b", "\x1b[31m", [], {}, [[]], {"": None}, [1, 2], "NaN",
                  256, 3]
HOSTILE_FIELDS = ["0", "1", "-1", "4", "", " 4", "4 ", "1e3", "nan", "inf", "0x10", "1_000", "\u0664", "true",
                  "9223372036854775807", "9223372036854775808", "99999999999999999999999999", "4.0", "\"4\"",
                  "a,b", "\"a\nb\"", "\x1b[31m", "\u5f20", "-0", "+4", "00004"]
OPTION_VALUES = ["0", "1", "-1", "2", "nan", "inf", "-inf", "1e400", "1e-400", "2**63", "9223372036854775808",
                 "", " ", "x", "1K", "1.5", "1e308", "\u0664", "--", "-q"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("h64cli")
    g = examples.qkv_attention()
    p = memplan.plan(g, streams=2)
    (d / "g.json").write_text(json.dumps(g.to_dict()))
    (d / "p.json").write_text(p.to_json())
    return d


def _paths(doc, path=()):
    """Every (path, value) in a JSON document, containers included."""
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, path + (i,))


def _replace(doc, path, value):
    if not path:
        return value
    head, *rest = path
    new = dict(doc) if isinstance(doc, dict) else list(doc)
    new[head] = _replace(doc[head], tuple(rest), value)
    return new


@st.composite
def hostile_json(draw, text: str) -> bytes:
    """``text`` (a JSON document) with one hostile edit, as bytes."""
    doc = json.loads(text)
    kind = draw(st.sampled_from(["value", "value", "value", "drop", "dup", "deep", "bom", "utf16", "latin1", "cut"]))
    if kind in ("value", "drop"):
        paths = [p for p, _ in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        if kind == "drop" and len(path) == 1:   # a top-level key dropped (deeper: a value edit instead)
            return json.dumps({k: v for k, v in doc.items() if k != path[0]}).encode()
        value = draw(st.sampled_from(HOSTILE_VALUES))
        return json.dumps(_replace(doc, path, value)).encode("utf-8", "surrogatepass")
    if kind == "dup":   # a key given twice at the top: the second with a hostile value
        key = draw(st.sampled_from(sorted(doc)))
        value = json.dumps(draw(st.sampled_from(HOSTILE_VALUES))).encode("utf-8", "surrogatepass")
        return json.dumps(doc).encode()[:-1] + b', "' + key.encode() + b'": ' + value + b"}"
    if kind == "deep":
        depth = draw(st.integers(60, 3000))
        path = draw(st.sampled_from([p for p, _ in _paths(doc) if p]))
        return json.dumps(_replace(doc, path, "@")).replace('"@"', "[" * depth + "]" * depth).encode()
    data = json.dumps(doc, ensure_ascii=False).encode()
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    if kind == "utf16":
        return json.dumps(doc).encode("utf-16")
    if kind == "latin1":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + b"\xe9\xff" + data[at:]
    return data[:draw(st.integers(0, len(data) - 1))]


@st.composite
def hostile_csv(draw) -> bytes:
    header = draw(st.sampled_from(["id,lower,upper,size"] * 8 + ["id,lower,upper,size,offset", "size,upper,lower,id",
                                   "id,lower,upper,size,note", "id,lower,upper", "ID,lower,upper,size",
                                   "id;lower;upper;size", "id,lower,upper,size,size"]))
    rows = []
    for i in range(draw(st.integers(0, 6))):
        lo = draw(st.integers(0, 4))   # (short spans over a few steps: most buffers overlap another)
        end = lo + draw(st.sampled_from([1, 2, 3, 4, 5, 1, 2, 3, 0, -1]))
        row = [str(i), str(lo), str(end), str(draw(st.sampled_from([1, 8, 16, 64, 100, 0, 2 ** 40])))]
        if not draw(st.integers(0, 3)):   # one cell hostile, or a cell too many or too few
            at = draw(st.integers(0, 4))
            row[at:at + draw(st.integers(0, 1))] = [draw(st.sampled_from(HOSTILE_FIELDS))] * draw(st.integers(0, 2))
        rows.append(",".join(row))
    text = "\n".join([header, *rows]) + draw(st.sampled_from(["\n", "", "\r\n", "\n\n"]))
    data = text.encode("utf-8", "surrogatepass")
    prefix = draw(st.sampled_from([b""] * 12 + [b"\xef\xbb\xbf", b"\xff\xfe", b"\x00"]))
    return prefix + data


def _command(draw, d: str) -> tuple[list[str], str, str | None]:
    """(argv, the input file the hostile bytes go to, the output path or None)."""
    cmd = draw(st.sampled_from(["csv", "csv", "trace", "simulate", "show", "show-graph", "example"]))
    g, p, out = os.path.join(d, "g.json"), os.path.join(d, "p.json"), os.path.join(d, "out")
    opts: list[str] = []
    if cmd == "csv":
        argv, target, output = ["csv", os.path.join(d, "in.csv"), "-o", out + ".csv", "-q"], "in.csv", out + ".csv"
        if not draw(st.integers(0, 3)):
            opts = [draw(st.sampled_from(["--capacity", "--time-limit", "--seed", "--workers"])),
                    draw(st.sampled_from(OPTION_VALUES + ["100", "64K"]))]
        opts += draw(st.sampled_from([[], ["--solver", "greedy"], ["--solver", "size"], ["--minimize"]]))
        return argv + opts, target, output
    target = draw(st.sampled_from(["g.json", "p.json"]))
    if cmd == "trace":
        return ["trace", g, p, "-o", out + ".trace.json", "-q"], target, out + ".trace.json"
    if cmd == "simulate":
        if draw(st.booleans()):
            opts = ["--event-us", draw(st.sampled_from(OPTION_VALUES))]
        return ["simulate", g, p, *opts], target, None
    if cmd == "show":
        if draw(st.booleans()):
            opts = ["--top", draw(st.sampled_from(OPTION_VALUES))]
        return ["show", p, *opts], "p.json", None
    if cmd == "show-graph":
        return ["show", p, "--graph", g], target, None
    name = draw(st.sampled_from(["ex", "g.json", "p.json", "", "-", "ex/../ex", "g.json/x"]))
    return ["example", "-o", os.path.join(d, name) if name not in ("", "-") else name], "g.json", None


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_inputs_keep_the_cli_contract(files, data):
    d = str(files)
    argv, target, output = _command(data.draw, d)
    if target == "in.csv":
        hostile = data.draw(hostile_csv())
    else:
        hostile = data.draw(hostile_json((files / target).read_text()))
    originals = {n: (files / n).read_bytes() for n in ("g.json", "p.json")}
    with open(os.path.join(d, target), "wb") as f:
        f.write(hostile)
    if output and os.path.exists(output):
        os.unlink(output)
    before = {n: (files / n).read_bytes() for n in os.listdir(d) if (files / n).is_file()}
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = exit_code(memplan_main, argv)
        after = {n: (files / n).read_bytes() for n in before}
    finally:
        for n, b in originals.items():
            (files / n).write_bytes(b)
    text = err.getvalue()
    assert "Traceback" not in text, (argv, hostile[:200], text)
    assert code in (0, 2), (argv, hostile[:200], code, text)
    lines = text.splitlines()
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("memplan: error: "), (argv, hostile[:200], text)
        assert not (output and os.path.exists(output)), (argv, "a failed run wrote its output")
    assert after == before, (argv, "an input changed")
    assert not leftovers(d), (argv, leftovers(d))
    if code == 0 and argv[0] == "csv":
        _assert_packing(os.path.join(d, "in.csv"), output, hostile)
    if code == 0 and argv[0] == "trace":
        with open(output, encoding="utf-8") as f:
            assert "traceEvents" in json.load(f)


def _assert_packing(path: str, output: str, hostile: bytes) -> None:
    """The ``csv`` output is the input's rows with offsets that never overlap two buffers live at one time."""
    from memplan.io.minimalloc import parse_csv

    table = parse_csv(hostile.decode("utf-8"), path)
    with open(output, encoding="utf-8") as f:
        import csv

        rows = list(csv.reader(f))
    assert rows[0][-1] == "offset" and len(rows) == len(table.ids) + 1
    offs = [int(r[-1]) for r in rows[1:]]
    sizes, lo, hi = table.sizes.tolist(), table.lower.tolist(), table.upper.tolist()
    for i in range(len(offs)):
        assert offs[i] >= 0
        for j in range(i):
            live = lo[i] < hi[j] and lo[j] < hi[i]
            apart = offs[i] + sizes[i] <= offs[j] or offs[j] + sizes[j] <= offs[i] or not sizes[i] or not sizes[j]
            assert not live or apart, (table.ids[i], table.ids[j], offs)


def test_show_spells_a_hand_edited_solver_block_as_the_file_does(tmp_path):
    """``show`` printed the free-form solver block in Python's words (``event None us``, ``xTrue``,
    ``scheduler {'a': None}``) and a ``makespan_us`` list of 200,000 numbers as one line of 1.5 MB; now the file's
    spelling (null, true, JSON), each value cut at ``show.MAX_VALUE_CHARS`` characters saying how long it was."""
    from memplan import show

    g = examples.qkv_attention()
    doc = memplan.plan(g, streams=2).to_dict()
    block = doc["solver"]["schedule"]
    block.update(makespan_us=list(range(200_000)), event_us=None, speedup=True, method={"a": None})
    doc["solver"].update(note=None, tried={"greedy": None, "x": False})
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = exit_code(memplan_main, ["show", str(path)])
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "event null us" in text and "xtrue;" in text and 'scheduler    {"a": null}' in text
    assert "note=null" in text and "  tried: greedy=null, x=false" in text
    assert "None" not in text and "True" not in text and "False" not in text
    assert max(map(len, text.splitlines())) < show.MAX_VALUE_CHARS + 200
    assert "(1488890 characters)" in text


def test_show_of_the_librarys_own_plans_reads_as_before():
    """The library's plans hold strings and numbers (and ``interrupted: true``): shown as before."""
    from memplan import show

    g = examples.qkv_attention()
    p = memplan.plan(g, streams=2)
    text = show.describe(p)
    assert "makespan     72.0 us simulated (serial 92.0 us, x1.2778; event 2.0 us)" in text
    assert "solver       name=greedy, status=OPTIMAL, gap=0.0, bound=10240" in text
