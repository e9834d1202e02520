"""Round 42 (hostile, CLI): commands run in a current directory that was removed.

Each test names the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import os
import sys

import pytest
from cli_contract import assert_bad_input, run_memplan

import memplan
from memplan.errors import MemplanError

# ---- 1. a removed current directory: a relative path cannot be resolved --------------------------------------


@pytest.fixture
def removed_cwd(tmp_path, monkeypatch):
    """The process's current directory removed under it (``cd d; rmdir ../d``), as a shell left in a directory
    another process deleted; the test's own files lie in ``tmp_path`` (absolute paths)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    return tmp_path


@pytest.mark.parametrize("argv, words", [
    (["plan", "{g}", "-o", "p.json"], ["-o p.json", "current directory no longer exists"]),
    (["trace", "{g}", "{p}", "-o", "t.json"], ["-o t.json", "current directory no longer exists"]),
    (["csv", "{csv}", "-o", "o.csv"], ["-o o.csv", "current directory no longer exists"]),
    (["plan", "g.json", "-o", "{out}"], ["g.json", "current directory no longer exists"]),
    (["example", "-o", "ex"], ["example -o ex", "current directory no longer exists"]),
])
def test_a_relative_path_in_a_removed_directory_is_named(removed_cwd, diamond_files, capsys, argv, words):
    """``memplan plan /abs/g.json -o p.json`` in a removed directory: "cannot write to stdout: No such file or
    directory" (``os.path.realpath`` asks for the current directory, and the CLI's one OSError handler is stdout's),
    though stdout was fine and the output was a file; an input ``g.json`` went the same way when an output was
    absolute. Now one line naming the path and why, exit 2."""
    g, p = diamond_files
    csv = removed_cwd / "c.csv"
    csv.write_text("id,lower,upper,size\na,0,2,10\n")
    given = [a.format(g=g, p=p, csv=csv, out=removed_cwd / "out.json") for a in argv]
    code, _, err = run_memplan(capsys, given)
    assert_bad_input(code, err, *words)
    assert "stdout" not in err
    assert not (removed_cwd / "out.json").exists()


def test_absolute_paths_in_a_removed_directory_still_work(removed_cwd, diamond_files, capsys):
    """No current directory is needed for absolute paths: the command runs as before."""
    g, _ = diamond_files
    out = removed_cwd / "q.json"
    code, _, err = run_memplan(capsys, ["plan", g, "-o", out, "-q"])
    assert code == 0, err
    assert memplan.load_plan(str(out)).graph == "diamond"


def test_library_save_in_a_removed_directory_is_a_memplan_error(removed_cwd):
    """``Plan.save("p.json")`` (and ``save_graph``) in a removed directory raised a raw FileNotFoundError naming no
    file; now a MemplanError naming the path."""
    from memplan.examples import diamond

    g = diamond()
    p = memplan.plan(g)
    with pytest.raises(MemplanError, match=r"cannot write p\.json: the current directory no longer exists"):
        p.save("p.json")
    with pytest.raises(MemplanError, match=r"cannot write g\.json: the current directory no longer exists"):
        memplan.save_graph(g, "g.json")
    assert os.listdir(removed_cwd) == []


# ---- 2. a document on stdout whose binary layer takes part of it ---------------------------------------------


class _RawStdout:
    """stdout as ``python -u`` (or PYTHONUNBUFFERED) makes it: text written through to a raw binary layer, whose
    ``write`` takes at most ``chunk`` bytes a call and returns the count, as a pipe's write cut short by a signal
    does; ``then`` is raised by the write after the first (a reader that left: BrokenPipeError), None: none."""

    def __init__(self, chunk: int, then: BaseException | None = None) -> None:
        self.buffer = self
        self.got = bytearray()
        self.chunk, self.then, self.calls = chunk, then, 0
        self.encoding, self.errors = "utf-8", "strict"

    def write(self, data):
        self.calls += 1
        if self.then is not None and self.calls > 1:
            raise self.then
        if isinstance(data, str):
            data = data.encode()
        taken = bytes(data[: self.chunk])
        self.got += taken
        return len(taken)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError("no file descriptor")


@pytest.fixture
def llama_tiny(tmp_path):
    """The bundled llama-tiny graph file and the plan JSON ``memplan plan`` writes for it (8 KB)."""
    from memplan.examples import bundled

    g = tmp_path / "g.json"
    memplan.save_graph(bundled()["llama-tiny"], str(g))
    ref = tmp_path / "ref.json"
    memplan.plan(memplan.load_graph(str(g))).save(str(ref))
    return g, ref.read_bytes()


def test_a_partial_write_to_stdout_is_written_on(llama_tiny, monkeypatch, capsys):
    """``plan G -o -`` under PYTHONUNBUFFERED, whose stdout's raw write took 1,000 bytes: the one ``write`` call's
    count was dropped, so the document was cut to its first 1,000 bytes and the command exited 0. Now the rest is
    written on: the whole plan, byte for byte as ``-o FILE`` writes it."""
    g, ref = llama_tiny
    raw = _RawStdout(1000)
    monkeypatch.setattr("sys.stdout", raw)
    code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "-q"])
    assert code == 0, err
    assert bytes(raw.got) == ref
    assert raw.calls > len(ref) // 1000


def test_a_reader_that_leaves_mid_document_is_an_error(llama_tiny, monkeypatch, capsys):
    """The reader read part of the document and left (``| head -c 10``): under PYTHONUNBUFFERED the first write
    took what the pipe held and the command exited 0, with no word that the plan was cut short; buffered, the same
    run exits 2 ("Broken pipe"). Now both exit 2, one line."""
    g, _ = llama_tiny
    monkeypatch.setattr("sys.stdout", _RawStdout(4096, BrokenPipeError(32, "Broken pipe")))
    code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "-q"])
    assert_bad_input(code, err, "stdout", "Broken pipe")


def _pending(fd: int) -> int:
    """How many bytes pipe ``fd`` holds (FIONREAD)."""
    import array
    import fcntl
    import termios

    n = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, n)
    return n[0]


@pytest.mark.skipif(not hasattr(os, "pipe") or sys.platform != "linux", reason="F_SETPIPE_SZ is Linux's")
@pytest.mark.parametrize("buffered", [False, True])
def test_a_non_blocking_stdout_gets_the_whole_document(llama_tiny, monkeypatch, capsys, buffered):
    """stdout a pipe in non-blocking mode (O_NONBLOCK, set by another program sharing it) that holds 4 KB, its reader
    a moment late: ``plan G -o -`` under PYTHONUNBUFFERED wrote the first 4,096 bytes of an 8 KB plan and exited 0
    (the raw write's None, "would block", was taken for done); buffered it was "cannot write to stdout: write could
    not complete without blocking" and, at exit, a traceback of the bytes still held (exit 120). Now the command
    waits for the reader, as a blocking write does: the whole plan, exit 0."""
    import fcntl
    import io
    import select
    import threading
    import time

    g, ref = llama_tiny
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, 1031, 4096)   # F_SETPIPE_SZ: the pipe holds 4 KB (one page)
        fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
        raw = io.FileIO(w, "w", closefd=False)
        layer = io.BufferedWriter(raw) if buffered else raw
        monkeypatch.setattr("sys.stdout", io.TextIOWrapper(layer, encoding="utf-8", write_through=True))
        got = bytearray()

        def read() -> None:   # once the pipe is full and the writer has found it so
            deadline = time.monotonic() + 5
            while _pending(r) < 4096 and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(0.05)
            while len(got) < len(ref) and select.select([r], [], [], 2)[0]:
                chunk = os.read(r, 65536)
                if not chunk:
                    return
                got.extend(chunk)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "-q"])
        reader.join(10)
    finally:
        os.close(w)
        os.close(r)
    assert code == 0, err
    assert bytes(got) == ref


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_buffered_stdout_leaves_nothing_to_fail_at_exit(diamond_files, monkeypatch, capsys):
    """``plan G -o - > /dev/full`` without PYTHONUNBUFFERED: the error line, then Python's own flush at exit failed
    again on the bytes stdout's buffer had taken ("Exception ignored ... OSError: [Errno 28]"), exit 120 instead of
    2. The document now goes to the file under the (emptied) buffer: one line, exit 2, nothing left to flush."""
    import io

    g, _ = diamond_files   # (a plan of 1 KB: the buffer takes it whole)
    with open("/dev/full", "wb", buffering=0) as full:
        stdout = io.TextIOWrapper(io.BufferedWriter(full), encoding="utf-8")
        monkeypatch.setattr("sys.stdout", stdout)
        code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "-q"])
        assert_bad_input(code, err, "stdout", "No space left")
        stdout.flush()   # (Python's at exit: it raised OSError)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["--help"], ["plan", "--help"]])
def test_help_to_a_full_buffered_stdout_is_one_line_and_exit_2(monkeypatch, capsys, argv):
    """``memplan --help > /dev/full`` without PYTHONUNBUFFERED: the error line and SystemExit(2), then Python's own
    flush at exit failed again on the help still in stdout's buffer ("Exception ignored ... OSError", exit 120). The
    stream is now pointed at /dev/null once its failure is said, as ``main``'s own stdout failures are."""
    import io

    full = os.open("/dev/full", os.O_WRONLY)
    try:
        stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(full, "w", closefd=False)), encoding="utf-8")
        monkeypatch.setattr("sys.stdout", stdout)
        code, _, err = run_memplan(capsys, argv)
        assert_bad_input(code, err, "stdout", "No space left")
        stdout.flush()   # (Python's at exit: it raised OSError)
    finally:
        os.close(full)


@pytest.mark.skipif(sys.platform != "linux", reason="F_SETPIPE_SZ is Linux's")
def test_a_report_to_a_non_blocking_unbuffered_stdout_is_whole(tmp_path, monkeypatch, capsys):
    """``memplan show PLAN --top 100`` under PYTHONUNBUFFERED to a stdout in non-blocking mode holding 4 KB, its reader
    a moment late: print's one raw write took the first 4 KB and the rest was dropped, exit 0 (a 130 KB report
    arrived as 4,097 bytes). The report is now written whole, as ``show`` prints it to a file."""
    import fcntl
    import io
    import select
    import threading
    import time

    from memplan.examples import bundled

    plan_file = tmp_path / "p.json"
    memplan.plan(bundled()["llama-1b-decode"], solver="greedy").save(str(plan_file))
    code, want, _ = run_memplan(capsys, ["show", plan_file, "--top", "100"])
    assert code == 0 and len(want.encode()) > 4096
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, 1031, 4096)   # F_SETPIPE_SZ
        fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
        raw = io.FileIO(w, "w", closefd=False)
        monkeypatch.setattr("sys.stdout", io.TextIOWrapper(raw, encoding="utf-8", write_through=True))
        got = bytearray()

        def read() -> None:   # once the pipe is full and the writer has found it so
            deadline = time.monotonic() + 5
            while _pending(r) < 4096 and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(0.05)
            while len(got) < len(want.encode()) and select.select([r], [], [], 1)[0]:
                got.extend(os.read(r, 65536))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        code, _, err = run_memplan(capsys, ["show", plan_file, "--top", "100"])
        reader.join(10)
    finally:
        os.close(w)
        os.close(r)
    assert code == 0, err
    assert got.decode() == want
