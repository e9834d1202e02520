"""Hostile input, round 20: readers that leave (a closed pipe on stdout or stderr), options checked only after
the work they configure, and commands that wrote part of their outputs or ran with nothing to do.

Each test names the input, what memplan did with it, and what it must do now (the CLI contract of
tests/cli_contract.py: one ``memplan: error:`` line and exit 2, or the whole job done).
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys

import cli_forks
import handgraphs as H
import pytest
from cli_contract import assert_bad_input, exit_code, leftovers
from cli_contract import run_memplan as run

import memplan
from memplan.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))



def closed_pipe() -> int:
    """The write end of a pipe whose reader has gone (``| head -c1`` after its byte): writes fail with EPIPE."""
    r, w = os.pipe()
    os.close(r)
    return w


def memplan_cli(argv, **streams) -> subprocess.CompletedProcess:
    """``python -m memplan argv`` with real streams (a closed pipe is an OS-level EPIPE) and its own exit status:
    forked from one interpreter that imported memplan once (``cli_forks``), not a fresh Python per command."""
    return cli_forks.memplan_cli([str(a) for a in argv], timeout=120, **streams)


# --- a reader that leaves ------------------------------------------------------------------------------

class _Gone:
    """A stdout whose reader has gone: every write and flush raises BrokenPipeError."""

    encoding = "utf-8"
    errors = "strict"

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_example_finishes_when_its_reader_leaves(tmp_path, monkeypatch, capsys):
    """``memplan example -o DIR | head -c1``: the broken pipe of the first path printed stopped the command,
    which wrote 1 of its 9 graphs and exited 0. The report is dropped; every graph is written."""
    monkeypatch.setattr(sys, "stdout", _Gone())
    assert main(["example", "-o", str(tmp_path / "ex")]) == 0
    assert sys.stdout.__class__ is _Gone  # restored after the command
    assert sorted(os.listdir(tmp_path / "ex")) == sorted(f"{s}.json" for s in memplan.examples.bundled())


def test_bench_json_is_written_when_the_table_reader_leaves(tmp_path):
    """``memplan bench devices --json F | head -1``: the table's broken pipe ended the run before ``--json``
    was written, and the exit code was 0: a lost file."""
    out = tmp_path / "rows.json"
    w = closed_pipe()
    try:
        r = memplan_cli(["bench", "devices", "--models", "tiny", "--devices", "2", "--json", out], stdout=w,
                        stderr=subprocess.PIPE, text=True)
    finally:
        os.close(w)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads(out.read_text())[0]["devices"] == 2


def test_errors_and_progress_on_a_stderr_nobody_reads(tmp_path):
    """stderr to a closed pipe (``2>&1 | head -c1``): an error's own line raised BrokenPipeError, so the exit
    code was 1 (a traceback nobody saw) instead of 2; with ``--progress`` the first progress line aborted the
    plan, which was never written, and the exit code was 0."""
    g = tmp_path / "g.json"
    memplan.save_graph(H.qkv(), str(g))
    out = tmp_path / "p.json"
    w = closed_pipe()
    try:
        bad = memplan_cli(["plan", tmp_path / "missing.json", "-o", out], stdout=subprocess.PIPE, stderr=w)
        usage = memplan_cli(["plan", g], stdout=subprocess.PIPE, stderr=w)
        good = memplan_cli(["plan", g, "-o", out, "--progress", "--streams", "auto",
                           "--solver", "search"], stdout=subprocess.PIPE, stderr=w)
    finally:
        os.close(w)
    assert (bad.returncode, usage.returncode) == (2, 2)
    assert good.returncode == 0
    assert memplan.load_plan(str(out)).streams >= 1
    assert not leftovers(tmp_path)


def test_a_document_on_stdout_nobody_reads_is_still_an_error(tmp_path):
    """The control: ``plan -o -`` whose reader left lost the plan itself, which stays an error (exit 2)."""
    g = tmp_path / "g.json"
    memplan.save_graph(H.qkv(), str(g))
    w = closed_pipe()
    try:
        r = memplan_cli(["plan", g, "-o", "-"], stdout=w, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(w)
    assert_bad_input(r.returncode, r.stderr, "stdout", "Broken pipe")


# --- options checked before the work -------------------------------------------------------------------

@pytest.mark.parametrize("value,words", [
    ("0", ["--alignment", "power of two"]),
    ("3", ["--alignment", "power of two"]),
    ("-256", ["--alignment", "power of two"]),
    (str(2 ** 62), ["--alignment", "absurd"]),
    ("1.5", ["--alignment", "not an integer"]),
])
def test_import_alignment_is_checked_before_the_import(tmp_path, capsys, value, words):
    """``memplan import M --alignment 3`` imported the whole model, then failed naming the model file
    ("M: alignment 3 is not a positive power of two"), not the option. Refused up front, naming it (the model
    need not even exist)."""
    out = tmp_path / "g.json"
    code, _, err = run(capsys, ["import", tmp_path / "nowhere.onnx", "-o", out, "--alignment", value])
    assert_bad_input(code, err, *words)
    assert "nowhere" not in err and not out.exists()


@pytest.mark.parametrize("which", ["onnx", "torch"])
def test_importers_check_alignment_first(tmp_path, which):
    """The library's importers checked ``alignment`` only in the finished graph, after reading, inferring or
    exporting the whole model."""
    from memplan.importers import from_torch, import_onnx

    with pytest.raises(memplan.GraphError, match="alignment 3 is not a positive power of two"):
        if which == "onnx":
            import_onnx(str(tmp_path / "nowhere.onnx"), alignment=3)
        else:
            from_torch(object(), alignment=3)


# --- commands that ran with nothing to do or wrote part of their outputs ---------------------------------

@pytest.mark.parametrize("only", ["", ",", " , "])
def test_bench_planners_only_naming_nothing(capsys, only):
    """``memplan bench planners --only ''`` filtered nothing and ran every problem of every corpus (minutes
    of CP-SAT) instead of none."""
    code, _, err = run(capsys, ["bench", "planners", "--only", only])
    assert_bad_input(code, err, "--only", "no values")


@pytest.mark.parametrize("argv", [["--nodes"], ["--nodes", "--mode", "natural", "--wide", "5"]])
def test_bench_scale_with_nothing_to_measure(capsys, argv):
    """``memplan bench scale --nodes`` (every size list empty, or ``--mode natural`` with no ``--nodes``)
    printed a header, an empty table and exited 0."""
    code, out, err = run(capsys, ["bench", "scale", *argv])
    assert_bad_input(code, err, "nothing to measure")
    assert out == ""


def test_example_to_stdout(tmp_path, capsys, monkeypatch):
    """``memplan example -o -`` made a directory named '-' (every other ``-o -`` is stdout)."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, ["example", "-o", "-"])
    assert_bad_input(code, err, "-o -", "directory")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("blocker", ["directory", "read-only"])
def test_example_checks_every_output_before_the_first(tmp_path, capsys, blocker):
    """``memplan example -o DIR`` where ``DIR/qkv.json`` cannot be written (a directory, a read-only file):
    it wrote ``chain.json`` and ``diamond.json`` first, then failed: half a set."""
    d = tmp_path / "ex"
    d.mkdir()
    if blocker == "directory":
        (d / "qkv.json").mkdir()
    else:
        (d / "qkv.json").write_text("keep")
        (d / "qkv.json").chmod(0o444)
    code, _, err = run(capsys, ["example", "-o", d])
    assert_bad_input(code, err, "qkv.json")
    assert os.listdir(d) == ["qkv.json"] and not leftovers(d)


def test_json_with_a_byte_order_mark_is_named(tmp_path, capsys):
    """A graph or plan saved with a byte-order mark was refused in Python's words ("Unexpected UTF-8 BOM
    (decode using utf-8-sig)"); it is named as the CSV reader names it."""
    g = tmp_path / "g.json"
    g.write_bytes(b"\xef\xbb\xbf" + json.dumps(H.qkv().to_dict()).encode())
    code, _, err = run(capsys, ["plan", g, "-o", tmp_path / "p.json"])
    assert_bad_input(code, err, "g.json", "byte-order mark")
    assert "utf-8-sig" not in err and not (tmp_path / "p.json").exists()


def test_pt2_import_errors_name_the_file(tmp_path, capsys):
    """``memplan import prog.pt2`` of a program memplan cannot plan (an output that is the user's input,
    dynamic shapes) said "output 'x' is the user input 'x' itself..." without the file, where every ONNX
    import error starts with the model's path."""
    from needs import need

    torch = need("torch")

    class Same(torch.nn.Module):
        def forward(self, x):
            return x

    path = tmp_path / "same.pt2"
    torch.export.save(torch.export.export(Same(), (torch.zeros(2),)), str(path))
    out = tmp_path / "g.json"
    code, _, err = run(capsys, ["import", path, "-o", out, "-q"])
    assert_bad_input(code, err, f"{path}: ", "'x'")
    assert not out.exists()


@pytest.mark.parametrize("dup", [False, True])
def test_csv_header_of_many_columns_is_linear(tmp_path, capsys, dup):
    """A minimalloc CSV whose header has 100,000 extra columns (1 MB, far below the 1 GiB input limit): the
    duplicate-column check called ``header.index`` per column, quadratic, and ``memplan csv`` ran for
    minutes. Extra columns are kept; a repeated one is named."""
    from test_hostile_api import no_hang

    extra = [f"c{i}" for i in range(100_000)] + (["c5"] if dup else [])
    c = tmp_path / "i.csv"
    c.write_text(",".join(["id", "lower", "upper", "size", *extra]) + "\n"
                 + ",".join(["a", "0", "1", "8", *("x" * len(extra))]) + "\n")
    out = tmp_path / "o.csv"
    with no_hang(10):
        code, _, err = run(capsys, ["csv", c, "-o", out, "-q"])
    if dup:
        assert_bad_input(code, err, "i.csv", "'c5' appears twice")
    else:
        assert code == 0, err
        assert out.read_text().splitlines()[1].endswith(",x,0")


@pytest.mark.parametrize("how", ["refused", "real"])
def test_plan_with_one_unwritable_output_writes_neither(tmp_path, capsys, monkeypatch, how):
    """``memplan plan G -o DIR/p.json --graph-out g.json`` where DIR exists but takes no new file (read-only,
    sysfs, a read-only mount; root passes every permission bit): the check saw only that DIR exists, so
    the graph was written and then the plan failed: exit 2 with half the result on disk. ``real``: a
    directory the system refuses, a read-only one for a user, sysfs for root (permission bits do not stop
    root there)."""
    g = tmp_path / "g.json"
    memplan.save_graph(H.qkv(), str(g))
    ro = tmp_path / "ro"
    ro.mkdir()
    if how == "real":
        if os.geteuid() == 0:
            ro = pathlib.Path("/sys")
        else:
            ro.chmod(0o555)
    else:
        from memplan import files

        real = files.tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if os.path.samefile(dir, ro):
                raise PermissionError(13, "Permission denied")
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    split = tmp_path / "split.json"
    for argv in (["-o", ro / "p.json", "--graph-out", split], ["-o", tmp_path / "p.json", "--graph-out", ro / "s.json"]):
        code, _, err = run(capsys, ["plan", g, *argv, "-q"])
        # (root and /sys: since round 49 a directory without write bits is refused before any write is tried)
        why = "read-only" if how == "real" and os.geteuid() == 0 else "Permission denied"
        assert_bad_input(code, err, str(ro), "cannot write", why)
        assert sorted(os.listdir(tmp_path)) == ["g.json", "ro"]
        assert not (ro / "p.json").exists() and not (ro / "s.json").exists()


_TERM_DURING_WRITE = """
import os, signal, sys
sys.path.insert(0, {root!r})
import memplan.files
real = os.fsync
def fsync(fd):  # SIGTERM arrives while the output is being written
    os.kill(os.getpid(), signal.SIGTERM)
    return real(fd)
memplan.files.os.fsync = fsync
from memplan.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path):
    """``timeout`` or ``kill`` (SIGTERM) while ``memplan plan`` wrote its output: Python's default ended the
    process where it stood, and ``.memplan-*.tmp`` stayed beside the output. SIGTERM is now held back while
    the temporary file exists: the process still dies of it (its default, -15), right after the rename, and
    leaves exactly the complete new output."""
    g = tmp_path / "g.json"
    memplan.save_graph(H.qkv(), str(g))
    out = tmp_path / "out"
    out.mkdir()
    (out / "p.json").write_text("old")
    r = subprocess.run([sys.executable, "-c", _TERM_DURING_WRITE.format(root=ROOT), "plan", g, "-o", out / "p.json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGTERM, r.stderr
    assert os.listdir(out) == ["p.json"]
    assert memplan.load_plan(str(out / "p.json")).arena_bytes > 0


def test_no_sigterm_handler_while_a_command_plans(tmp_path, monkeypatch, capsys):
    """A Python SIGTERM handler runs only between bytecodes: installed over a whole command, it kept
    ``timeout``/``kill`` waiting for a CP-SAT solve to return (10-13 s of a 25 s limit, where the default
    ends the process at once). While the plan is made, SIGTERM is the process's own disposition, not blocked."""
    g = tmp_path / "g.json"
    memplan.save_graph(H.qkv(), str(g))
    seen = []
    real = memplan.plan_graph

    def spy(*args, **kwargs):
        seen.append((signal.getsignal(signal.SIGTERM), signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        return real(*args, **kwargs)

    monkeypatch.setattr(memplan, "plan_graph", spy)   # what the CLI calls (``from . import plan_graph``)
    before = signal.getsignal(signal.SIGTERM)
    code, _out, err = run(capsys, ["plan", g, "-o", tmp_path / "p.json", "-q"])
    assert code == 0, err
    assert seen and all(h == before and not blocked for h, blocked in seen), seen


@pytest.mark.parametrize("cmd", ["verify", "simulate"])
@pytest.mark.parametrize("bad", ["overlap", "other_graph"])
def test_an_unsafe_plan_names_the_plan_file(tmp_path, capsys, cmd, bad):
    """Was ``memplan: error: unsafe plan: ...`` with no file: a script checking many plans could not tell
    which one. Now the refused plan's path leads the line (type and findings unchanged)."""
    ex = tmp_path / "ex"
    assert exit_code(main, ["example", "-o", ex]) == 0
    p = tmp_path / "plan.json"
    assert exit_code(main, ["plan", ex / "qkv.json", "-o", p, "-q"]) == 0
    doc = json.loads(p.read_text())
    if bad == "overlap":   # two intermediates with overlapping lives moved onto one offset
        placed = [t for t in doc["tensors"] if t["offset"] is not None]
        for t in placed:
            t["offset"] = 0
        graph = ex / "qkv.json"
    else:
        graph = ex / "moe.json"
    p.write_text(json.dumps(doc))
    capsys.readouterr()
    code, _out, err = run(capsys, [cmd, graph, p])
    assert_bad_input(code, err, f"{p}: unsafe plan: rule ")


def test_bench_schedule_refuses_a_budget_below_the_serial_arena(capsys):
    """Was planned for every graph and then refused as 'over the memory budget of 0 B', naming no option: a
    budget factor below 1 fits no schedule. Now argparse refuses ``--budget`` before any work."""
    for text in ("0", "0.5", "0.999"):
        code, _out, err = run(capsys, ["bench", "schedule", "--budget", text])
        assert_bad_input(code, err, "--budget", "serial arena")
    code, _out, err = run(capsys, ["bench", "schedule", "--budget", "1", "--help"])
    assert code == 0


# --- SIGTERM taken over only where it would end the process (review of round 20) ---------------------------

def _plan_with_sigterm_during_write(tmp_path, monkeypatch, capsys) -> tuple[int, str]:
    """``memplan plan`` in this process with SIGTERM sent to it while its output is written."""
    import signal

    g = tmp_path / "g.json"
    memplan.save_graph(H.qkv(), str(g))
    real = os.fsync

    def fsync(fd):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    code, _, err = run(capsys, ["plan", g, "-o", tmp_path / "p.json", "-q"])
    monkeypatch.setattr(os, "fsync", real)
    return code, err


@pytest.mark.parametrize("disposition", ["ignored", "caller's handler"])
def test_sigterm_the_process_does_not_die_of_is_left_alone(tmp_path, monkeypatch, capsys, disposition):
    """``main`` installed its SIGTERM handler over any disposition: a SIGTERM the parent had made ignored
    (``trap '' TERM``, ``nohup``-like wrappers: inherited across exec) ended the command with exit 143, and
    a program calling ``main`` with its own handler had its signal swallowed into a return value (its
    handler never ran). Both are left in charge; the command finishes."""
    import signal

    seen: list[int] = []
    mine = signal.SIG_IGN if disposition == "ignored" else (lambda signum, frame: seen.append(signum))
    old = signal.signal(signal.SIGTERM, mine)
    try:
        code, err = _plan_with_sigterm_during_write(tmp_path, monkeypatch, capsys)
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, old)
    assert (code, err) == (0, "")
    assert memplan.load_plan(str(tmp_path / "p.json")).arena_bytes > 0 and not leftovers(tmp_path)
    assert seen == ([] if disposition == "ignored" else [signal.SIGTERM])


class _Interrupted(BaseException):
    """An exception nothing on the way catches (as KeyboardInterrupt)."""


def test_the_output_directory_probe_is_removed_when_interrupted(tmp_path, monkeypatch):
    """``check_writable`` creates and removes a probe file in the output's directory; an exception between the
    two (Ctrl-C) left ``.memplan-*.tmp`` there."""
    from memplan import files

    real_mkstemp, real_close = files.tempfile.mkstemp, os.close
    probes: list[int] = []

    def mkstemp(*args, **kwargs):
        fd, path = real_mkstemp(*args, **kwargs)
        probes.append(fd)
        return fd, path

    def close(fd):
        real_close(fd)
        if fd in probes:
            raise _Interrupted()

    monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "close", close)
    with pytest.raises(_Interrupted):
        files.check_writable(str(tmp_path / "p.json"), "-o")
    monkeypatch.setattr(os, "close", real_close)
    assert probes and os.listdir(tmp_path) == []
