"""Round 50: graph/plan file IO against hostile timing and hostile files.

A signal that comes while an output is written must leave the output whole (the old file or the new one) and no
``.memplan-*.tmp`` beside it, and must not change how later writes of the same process behave. Here a hang-up
(SIGHUP: the terminal or the ssh session closed) is sent during a write, and a real Ctrl-C (SIGINT, taken by
Python between two lines) is raised at each line ``memplan.files`` runs for a write (``sys.settrace``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

import pytest
from sigint_lines import interrupted_at

import memplan
from memplan import files
from memplan.examples import qkv_attention

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_main_thread = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                  reason="Python runs signal handlers in the main thread")


@pytest.fixture()
def python_sigint(monkeypatch):
    """Python's own SIGINT handler for the test (a runner's worker may ignore SIGINT), put back after; ``fsync`` a
    no-op (hundreds of writes, each interrupted at another line: the disk's flush is not what is tested)."""
    monkeypatch.setattr(files.os, "fsync", lambda fd: None)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


# ---- a hang-up during a write ---------------------------------------------------------------------------------

_SIGNAL_DURING_WRITE = """
import os, signal, sys
sys.path.insert(0, {root!r})
import memplan.files
real = os.fsync
def fsync(fd):  # the signal arrives while the output is being written
    os.kill(os.getpid(), signal.{sig})
    return real(fd)
memplan.files.os.fsync = fsync
from memplan.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
@pytest.mark.parametrize("sig", ["SIGHUP", "SIGQUIT"])
def test_a_hangup_during_a_write_leaves_no_temporary_file(tmp_path, sig):
    """``memplan plan G -o P`` in a terminal that closed (SIGHUP: an ssh session dropped) or quit with Ctrl-\\
    (SIGQUIT) while it wrote P: the default ended the process where it stood, and ``.memplan-*.tmp`` stayed beside
    P (SIGTERM alone was held back). Now each is held as SIGTERM is: the process still dies of it, right after the
    rename, leaving exactly the complete new output."""
    g = tmp_path / "g.json"
    memplan.save_graph(qkv_attention(), str(g))
    out = tmp_path / "out"
    out.mkdir()
    (out / "p.json").write_text("old")
    r = subprocess.run([sys.executable, "-c", _SIGNAL_DURING_WRITE.format(root=ROOT, sig=sig), "plan", str(g),
                        "-o", str(out / "p.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode == -getattr(signal, sig), r.stderr
    assert os.listdir(out) == ["p.json"]
    assert memplan.load_plan(str(out / "p.json")).arena_bytes > 0


def test_a_hangup_the_parent_ignores_stays_ignored(tmp_path):
    """``nohup memplan plan ...``: SIGHUP ignored by the parent stays ignored through a write (the command finishes
    and exits 0), and the disposition is the same after."""
    script = (f"import signal, sys, os\nsys.path.insert(0, {ROOT!r})\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
              "import memplan.files\nreal = os.fsync\n"
              "def fsync(fd):\n    os.kill(os.getpid(), signal.SIGHUP)\n    return real(fd)\n"
              "memplan.files.os.fsync = fsync\nfrom memplan.cli import main\ncode = main(sys.argv[1:])\n"
              "assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN\nsys.exit(code)\n")
    g = tmp_path / "g.json"
    memplan.save_graph(qkv_attention(), str(g))
    r = subprocess.run([sys.executable, "-c", script, "plan", str(g), "-o", str(tmp_path / "p.json"), "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert memplan.load_plan(str(tmp_path / "p.json")).arena_bytes > 0


# ---- a Ctrl-C at each line of a write -------------------------------------------------------------------------

def _handlers() -> tuple:
    return tuple(signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)))


def _each_line(write, names: tuple[str, ...]):
    """A Ctrl-C at each line ``write(folder)`` runs in ``memplan.files``, over files ``names`` that exist in a fresh
    folder each time: yields (k, the files' texts, the ``.memplan-*`` files left, interrupted)."""
    def once(k: int):
        folder = tempfile.mkdtemp(prefix="memplan-io50-")
        try:
            for name in names:
                with open(os.path.join(folder, name), "w") as f:
                    f.write("OLD")
            lines, interrupted = interrupted_at(lambda: write(folder), k, files.__file__)
            texts = tuple(open(os.path.join(folder, n)).read() for n in names)
            left = [f for f in os.listdir(folder) if f.startswith(".memplan-")]
            return lines, texts, left, interrupted
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    once(0)   # (warm: what the first write caches is not looked up again)
    lines = once(0)[0]
    assert lines > 20
    for k in range(1, lines + 1):
        yield (k, *once(k)[1:])


def _staged_pair(folder: str) -> None:
    with files.staged():
        files.atomic_write_text(os.path.join(folder, "a.json"), "NEW-a")
        files.atomic_write_text(os.path.join(folder, "b.json"), "NEW-b")


@_main_thread
def test_a_ctrl_c_at_any_line_of_a_staged_pair_of_writes_loses_nothing(python_sigint):
    """``plan -o P --graph-out G`` writes both in a ``staged`` block. A Ctrl-C at the line that resets the block's
    stage (or between its set and its ``try``) left the stage in place for good: every later write of the process
    (``Plan.save`` in a notebook) was only appended to the dead stage, never renamed, and returned as if written (the
    file kept its old bytes, a ``.memplan-*.tmp`` beside it); one right after ``mkstemp`` or inside ``_discard`` left
    a temporary file behind. Now Ctrl-C is deferred through the bookkeeping (taken at once in the writes themselves):
    both files are the old ones or both the new ones, no temporary file stays, and the next write writes."""
    before = _handlers()
    for k, texts, left, interrupted in _each_line(_staged_pair, ("a.json", "b.json")):
        assert texts in (("OLD", "OLD"), ("NEW-a", "NEW-b")), (k, texts)
        assert left == [], (k, left)
        assert interrupted or texts == ("NEW-a", "NEW-b"), k
        assert files._STAGE.get() is None, k
        assert _handlers() == before, k
        folder = tempfile.mkdtemp(prefix="memplan-io50-")
        try:
            files.atomic_write_text(os.path.join(folder, "next.json"), "next")   # the write after is a write
            assert open(os.path.join(folder, "next.json")).read() == "next", k
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@_main_thread
def test_a_ctrl_c_at_any_line_of_one_write_leaves_the_old_or_the_new_file(python_sigint):
    """``Plan.save``, ``save_graph``: a Ctrl-C right after ``mkstemp`` made its file (before the ``try`` that removes
    it) left ``.memplan-*.tmp`` beside the output. Now the output is the old file or the whole new one, and nothing
    else is left; a Ctrl-C that came before the rename still leaves the old file (KeyboardInterrupt)."""
    before = _handlers()

    def write(folder: str) -> None:
        files.atomic_write_text(os.path.join(folder, "p.json"), "NEW")

    for k, texts, left, interrupted in _each_line(write, ("p.json",)):
        assert texts in (("OLD",), ("NEW",)) and left == [], (k, texts, left)
        assert interrupted or texts == ("NEW",), k
        assert _handlers() == before, k


@_main_thread
def test_a_ctrl_c_at_any_line_of_the_writable_probe_leaves_no_probe(python_sigint):
    """``check_writable`` (every command's outputs, before the work) creates and removes a probe file; a Ctrl-C right
    after ``mkstemp`` left ``.memplan-*`` in the output's folder."""
    def probe(folder: str) -> None:
        files.check_writable(os.path.join(folder, "p.json"), "-o")

    for k, _texts, left, _interrupted in _each_line(probe, ("p.json",)):
        assert left == [], (k, left)
