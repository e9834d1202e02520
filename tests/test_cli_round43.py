"""Round 43 (CLI): ``memplan --version``, a repeated ``--dim``, ``show``'s table, a one-device plan's round trip, and
hostile arguments to every subcommand.

Each test names the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys

import cli_forks
import pytest
from cli_contract import assert_bad_input, run_memplan

import memplan
from memplan import examples

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def diamond_plan(tmp_path):
    """(graph path, plan path) of the bundled diamond, planned on two streams."""
    g = examples.diamond()
    gp, pp = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(g, str(gp))
    memplan.plan(g, streams=2).save(str(pp))
    return str(gp), str(pp)


# ---- known items ----------------------------------------------------------------------------------------------


def test_version_prints_the_version(capsys):
    """``memplan --version`` was "the following arguments are required: COMMAND", exit 2; it prints the version."""
    code, out, err = run_memplan(capsys, ["--version"])
    assert (code, out, err) == (0, f"memplan {memplan.__version__}\n", "")


@pytest.mark.parametrize("dims", [["b=4", "b=4"], ["b=4", " b = 5"]])
def test_a_repeated_dim_is_one_line_before_the_model_is_read(tmp_path, capsys, dims):
    """``import M --dim b=4 --dim b=4`` was accepted (an equal repeat), where every other repeated option or list
    value is refused, and a differing repeat was named only after the model was found and read. Both are now one line
    naming the dimension, exit 2, before the model is looked at (here it does not even exist)."""
    argv = ["import", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "g.json")]
    for d in dims:
        argv += ["--dim", d]
    code, _, err = run_memplan(capsys, argv)
    assert_bad_input(code, err, "--dim", "'b' is already 4")
    assert not os.path.exists(tmp_path / "g.json")


def test_show_of_an_empty_graphs_plan_says_there_are_no_nodes(tmp_path, capsys):
    """``show`` of the plan of a graph without nodes printed "streams 1  (nodes per stream: )"; now "(no nodes)"."""
    g = memplan.graph_from_dict({"format": "memplan.graph/1", "name": "empty", "alignment": 256, "tensors": [],
                                 "nodes": []})
    path = tmp_path / "p.json"
    memplan.plan(g).save(str(path))
    code, out, err = run_memplan(capsys, ["show", str(path)])
    assert code == 0, err
    assert "streams      1  (no nodes)" in out.splitlines()
    assert "nodes per stream: )" not in out


def test_show_keeps_its_columns_aligned_for_offsets_past_14_digits():
    """A plan with offsets and sizes near 2**61 (19 digits) printed them past the 14-character columns, each row as
    long as its numbers, and the table no longer lined up under its heading. Columns grow to the widest entry; a plan
    of everyday sizes prints as before."""
    from memplan.show import describe

    big = 1 << 61
    p = memplan.Plan(graph="g", alignment=256, arena_bytes=2 * big + 256, lower_bound_bytes=256, streams=1,
                     order=(("n", 0),), events=(), tensors=(("a", 0, big), ("b", big, big), ("c", 2 * big, 256)))
    lines = describe(p).splitlines()
    head = lines.index(next(line for line in lines if line.startswith("largest tensors")))
    table = lines[head + 1:]
    assert len({len(line) for line in table}) == 1, table
    for line in table:   # each number ends where its heading does
        assert line.rstrip() == line
    heading = table[0]
    for row in table[1:]:
        assert row[heading.index("offset") + len("offset") - 1] != " "
    small = describe(memplan.plan(examples.diamond())).splitlines()
    assert "  tensor                                   offset           size" in small


def test_a_long_id_keeps_shows_columns_aligned():
    """An id past 32 characters (or one escaped for the terminal: ``\\x1b`` counts 4) pushed its row's numbers right."""
    from memplan.show import describe

    p = memplan.Plan(graph="g", alignment=256, arena_bytes=512, lower_bound_bytes=512, streams=1, order=(("n", 0),),
                     events=(), tensors=(("t" * 40, 0, 256), ("\x1b[31m", 256, 256), ("s", 0, 256)))
    lines = describe(p).splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("largest tensors"))) + 1:]
    assert len({len(line) for line in table}) == 1, table


def test_a_one_device_plan_with_restated_device_fields_round_trips_equal(tmp_path):
    """A one-device Plan built in code whose device fields restate its one device (every entry on device 0, one
    arena of ``arena_bytes``) was saved without them (a one-device file holds none) and read back with none, so the
    plan compared unequal to its own file, and hashed otherwise (so did ``plan_devices(g, 1)``'s plan). Such fields
    now compare as what the file holds, none, as ``load_plan`` reads them: equal, same hash, same bytes; the plan
    keeps them."""
    p = memplan.plan(examples.diamond(), streams=2)
    q = dataclasses.replace(p, node_devices=(0,) * len(p.order), tensor_devices=(0,) * len(p.tensors),
                            device_arena_bytes=(p.arena_bytes,))
    path = str(tmp_path / "q.json")
    q.save(path)
    back = memplan.load_plan(path)
    assert back == q and hash(back) == hash(q)
    assert q == p and q.to_json() == p.to_json()
    # one field at a time, and numpy zeros
    np = pytest.importorskip("numpy")
    for fields in ({"node_devices": tuple(np.int64(0) for _ in p.order)}, {"tensor_devices": (0,) * len(p.tensors)},
                   {"device_arena_bytes": (np.int32(p.arena_bytes),)}):
        assert dataclasses.replace(p, **fields) == p, fields
    assert q.node_devices == (0,) * len(p.order)   # (kept: compared as none)
    from memplan.plan import plan_devices

    g = examples.diamond()
    _split, one = plan_devices(g, 1, solver="greedy")
    assert one.device_arena_bytes == (one.arena_bytes,)
    one.save(path)
    back = memplan.load_plan(path)
    assert back == one and hash(back) == hash(one)
    # contradicting fields stay, for check_plan_fields to refuse (round 42), and are unequal
    assert dataclasses.replace(p, tensor_devices=(1,) * len(p.tensors)) != p
    with pytest.raises(memplan.PlanFormatError, match="device 1"):
        dataclasses.replace(p, node_devices=(0,) * (len(p.order) - 1) + (1,)).to_json()


# ---- bench's tables to a non-blocking stdout (known item 1, fixed in round 42's review: checked end to end) ----


@pytest.mark.skipif(sys.platform != "linux", reason="F_SETPIPE_SZ is Linux's")
@pytest.mark.parametrize("json_out", [False, True])
def test_bench_tables_reach_a_non_blocking_unbuffered_pipe_whole(json_out):
    """``PYTHONUNBUFFERED=1 memplan bench planners ...`` into a 4 KB pipe in non-blocking mode whose reader comes late:
    every row of the table arrives (and with ``--json -`` the JSON on stdout parses and the table on stderr is whole),
    exit 0. Run as a real process: the standard streams are Python's own there."""
    import fcntl
    import json
    import select
    import time

    argv = [sys.executable, "-m", "memplan", "bench", "planners", "--corpus", "examples", "--solvers", "ggml,size,greedy"]
    argv += ["--json", "-"] if json_out else []
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    pipes = [os.pipe(), os.pipe()]
    for _, w in pipes:
        fcntl.fcntl(w, 1031, 4096)   # F_SETPIPE_SZ: one page
        fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
    proc = subprocess.Popen(argv, stdout=pipes[0][1], stderr=pipes[1][1], env=env)
    for _, w in pipes:
        os.close(w)
    got = {pipes[0][0]: bytearray(), pipes[1][0]: bytearray()}
    try:
        deadline = time.monotonic() + 10   # the pipes fill while nobody reads
        while _pending(pipes[1 if json_out else 0][0]) < 4096 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        open_fds = set(got)
        while open_fds:
            ready, _, _ = select.select(list(open_fds), [], [], 60)
            assert ready, "no output for 60 s"
            for fd in ready:
                chunk = os.read(fd, 65536)
                if chunk:
                    got[fd].extend(chunk)
                else:
                    open_fds.discard(fd)
        assert proc.wait(60) == 0, bytes(got[pipes[1][0]])
    finally:
        if proc.poll() is None:
            proc.kill()
        for r, _ in pipes:
            os.close(r)
    out, err = bytes(got[pipes[0][0]]).decode(), bytes(got[pipes[1][0]]).decode()
    table = err if json_out else out
    ref = _bench_table(tuple(argv[3:-2] if json_out else argv[3:]))
    assert _untimed(table) == _untimed(ref) and len(table.encode()) > 4096
    if json_out:
        assert len(json.loads(out)) == len(_untimed(ref)) - 2   # (a row each, under the heading and its rule)


@functools.cache
def _bench_table(argv: tuple[str, ...]) -> str:
    """The table ``memplan argv`` writes to a pipe read at once, its reference: the same command for both parameters
    of the test above, run once, forked from ``cli_forks``' interpreter (a real pipe as stdout; buffering, which
    ``PYTHONUNBUFFERED`` sets at start-up, changes nothing for a pipe read at once)."""
    return cli_forks.memplan_cli(list(argv), text=True).stdout


def _untimed(table: str) -> list[str]:
    """``bench planners``'s table without its two time columns (the last two), which vary run to run."""
    return [line.rsplit(None, 2)[0] if line.startswith("examples ") else line for line in table.splitlines()]


def _pending(fd: int) -> int:
    """Bytes waiting in pipe ``fd`` (FIONREAD)."""
    import array
    import fcntl
    import termios

    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


# ---- hunt ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["plan", "{f}", "-o", "{o}"], ["show", "{f}"]])
def test_a_raw_control_character_in_a_json_string_is_named(tmp_path, capsys, command):
    """A graph or plan file with a raw control character inside a string (a tab, an ESC pasted into a name) was "not
    valid JSON (Invalid control character at at line 3 column 18)": "at" twice (CPython's text ends in "at"), and
    no word of which character. It names the character, escaped, and how JSON writes it."""
    f = tmp_path / "bad.json"
    f.write_text('{"format": "memplan.graph/1",\n "name": "a\tb"}')
    argv = [a.format(f=f, o=tmp_path / "o.json") for a in command]
    code, _, err = run_memplan(capsys, argv)
    assert_bad_input(code, err, "invalid control character '\\t' in a string at line 2 column 12", "\\u0009")
    assert "at at" not in err


@pytest.mark.parametrize("argv, victim", [
    (["show", "{p}"], "{p}"),
    (["verify", "{g}", "{p}"], "{g}"),
    (["verify", "{g}", "{p}"], "{p}"),
    (["simulate", "{g}", "{p}"], "{p}"),
    (["bench", "planners", "--graph", "{g}", "--solvers", "greedy"], "{g}"),
    (["bench", "planners", "--graph", "{g}", "--solvers", "greedy", "--json", "{o}"], "{g}"),
])
def test_a_report_is_not_appended_to_an_input_stdout_is_redirected_to(diamond_plan, tmp_path, capsys, monkeypatch,
                                                                        argv, victim):
    """``memplan show P >> P`` (and ``verify G P >> G``, ``simulate``, ``bench``'s tables, with or without ``--json
    FILE``) printed the report into the input, exit 0: the plan file no longer parsed. A document for ``-o -`` was
    already refused there; a report now is too, one line naming the input, exit 2, the file unchanged."""
    g, p = diamond_plan
    names = {"g": g, "p": p, "o": str(tmp_path / "o.json")}
    victim = victim.format(**names)
    before = open(victim, "rb").read()
    with open(victim, "a") as out:
        monkeypatch.setattr(sys, "stdout", out)
        code, _, err = run_memplan(capsys, [a.format(**names) for a in argv])
    assert_bad_input(code, err, "stdout is redirected to the", victim, "refusing to write over an input")
    assert open(victim, "rb").read() == before
    assert not os.path.exists(names["o"])


def test_a_csv_given_for_json_and_json_given_for_a_csv_say_which_command_reads_them(diamond_plan, tmp_path, capsys):
    """``memplan plan problem.csv`` was "not valid JSON (Expecting value at line 1 column 1)" and ``memplan csv
    graph.json`` "missing column 'id'", naming neither what the file is nor which command reads it (a graph and a plan
    given for each other are named so). Each now says so, on the same one line."""
    g, p = diamond_plan
    c = tmp_path / "c.csv"
    c.write_text("id,lower,upper,size\n1,0,3,4\n")
    for argv in (["plan", str(c), "-o", str(tmp_path / "o.json")], ["show", str(c)]):
        code, _, err = run_memplan(capsys, argv)
        assert_bad_input(code, err, "not valid JSON", "minimalloc CSV problem", "'memplan csv'")
    for f in (g, p):
        code, _, err = run_memplan(capsys, ["csv", f, "-o", str(tmp_path / "o.csv")])
        assert_bad_input(code, err, "missing column 'id'", "this is JSON, not CSV", "'memplan plan'")
    bad = tmp_path / "bad.json"   # (no hint where the file is neither)
    bad.write_text("hello")
    code, _, err = run_memplan(capsys, ["show", str(bad)])
    assert_bad_input(code, err, "not valid JSON")
    assert "CSV" not in err


def test_devices_on_a_graph_without_nodes_says_no_device_runs_anything(tmp_path, capsys):
    """``plan G --devices 2`` on a graph of weights alone (no nodes) said "1 device(s) would run nothing; ask for at
    most 1", as if one of the two would run something; it says the graph has no nodes to split."""
    g = tmp_path / "g.json"
    g.write_text('{"format": "memplan.graph/1", "name": "w", "tensors": [{"id": "w", "size": 4, "kind": "weight"}], '
                 '"nodes": []}')
    code, _, err = run_memplan(capsys, ["plan", g, "-o", tmp_path / "p.json", "--devices", "2",
                                        "--graph-out", tmp_path / "s.json"])
    assert_bad_input(code, err, "--devices 2", "has no nodes", "no device would run anything")


def test_summary_lines_count_one_thing_in_the_singular(tmp_path, capsys):
    """``trace`` of a one-node plan said "trace of 1 nodes", ``csv`` of one buffer "1 buffers" (and ``import`` "1
    nodes", ``draw`` "memory map of 1 tensors"); a count of one is singular now, others as before."""
    g = tmp_path / "g.json"
    g.write_text('{"format": "memplan.graph/1", "name": "one", "tensors": [{"id": "a", "size": 4, "kind": "input"}, '
                 '{"id": "b", "size": 4, "kind": "output"}], "nodes": [{"id": "n", "op": "X", "inputs": ["a"], '
                 '"outputs": ["b"]}]}')
    p = tmp_path / "p.json"
    assert run_memplan(capsys, ["plan", g, "-o", p, "-q"])[0] == 0
    code, _, err = run_memplan(capsys, ["trace", g, p, "-o", tmp_path / "t.json"])
    assert code == 0 and ": trace of 1 node on 1 stream(s);" in err, err
    c = tmp_path / "c.csv"
    c.write_text("id,lower,upper,size\n1,0,3,4\n")
    code, _, err = run_memplan(capsys, ["csv", c, "-o", tmp_path / "o.csv"])
    assert code == 0 and ": 1 buffer, arena 4," in err, err
    from memplan.argtypes import counted

    assert [counted(n, "tensor") for n in (0, 1, 2)] == ["0 tensors", "1 tensor", "2 tensors"]


@pytest.mark.parametrize("argv, words", [
    (["plan", "{g}", "-o", "-/x.json"], ["-o/--output: expected one argument", "'-/x.json'", "--output=-/x.json"]),
    (["plan", "{g}", "-o", "x.json", "--time-limit", "-inf"], ["--time-limit: expected one argument", "--time-limit=-inf"]),
])
def test_an_option_value_that_starts_with_a_dash_is_named(diamond_plan, tmp_path, capsys, monkeypatch, argv, words):
    """``plan G -o -/x.json`` was "argument -o/--output: expected one argument", as if no value had been given:
    argparse reads a token that starts with '-' as an option. The line names the token and how to give it."""
    monkeypatch.chdir(tmp_path)
    g, _ = diamond_plan
    code, _, err = run_memplan(capsys, [a.format(g=g) for a in argv])
    assert_bad_input(code, err, *words)


def test_an_option_value_left_out_before_another_option_gets_no_dash_hint(diamond_plan, capsys):
    """``plan G -o -q``: ``-q`` is an option of the command, so the value was left out: argparse's line alone."""
    g, _ = diamond_plan
    code, _, err = run_memplan(capsys, ["plan", g, "-o", "-q"])
    assert_bad_input(code, err, "expected one argument")
    assert "read as an option" not in err


def test_shows_per_stream_table_stays_aligned_past_a_million_waits():
    """The per-stream table's counts had fixed widths (waits 6): a stream waiting on a million events pushed its
    row out of line. Each count column is as wide as its widest count; everyday plans print as before."""
    from memplan.show import describe

    p = memplan.Plan(graph="g", alignment=256, arena_bytes=0, lower_bound_bytes=0, streams=2,
                     order=(("a", 0), ("b", 1)), events=(("a", "b"),) * 1_000_000, tensors=())
    lines = describe(p).splitlines()
    table = lines[lines.index("per stream:") + 1:]
    assert len(table) == 3 and len({len(line) - len(line.split("  ")[-1]) for line in table}) == 1, table
    assert "1000000" in table[2]
    small = describe(memplan.plan(examples.diamond(), streams=2)).splitlines()
    assert "  stream   nodes  records  waits  first .. last" in small
