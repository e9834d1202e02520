"""Round 50: the ``memplan`` command against hostile environments and inputs.

Each test runs the command as a user would (a subprocess where the process's own streams or signals matter, else
``main`` in-process); every output goes into a fresh ``mkdtemp`` folder (``tmp_path``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import memplan
from memplan.examples import qkv_attention

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _memplan(*argv, env=None) -> subprocess.CompletedProcess:
    """``python -m memplan argv`` in a subprocess, its output as bytes."""
    full = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {}))
    return subprocess.run([sys.executable, "-m", "memplan", *map(str, argv)], capture_output=True, env=full,
                          timeout=120)


@pytest.fixture()
def planned(tmp_path):
    """A Q/K/V graph and its 3-stream plan in ``tmp_path``: (graph path, plan path)."""
    g, p = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(qkv_attention(), str(g))
    memplan.plan(qkv_attention(), streams=3).save(str(p))
    return g, p


# ---- streams whose encoding writes a byte-order mark -------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="memplan writes its own bytes to stdout on POSIX only")
@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_a_report_under_an_encoding_with_a_mark_has_no_mark_inside(planned, encoding):
    """``PYTHONIOENCODING=utf-16 memplan show P``: each line memplan printed was encoded on its own, so each began
    with a byte-order mark of its own, and the report decoded with a U+FEFF at the start of every line after the
    first (and the error line of a refused input likewise, its newline a second mark). The report is now the one
    Python's own text layer writes: the same text as under UTF-8, no mark inside it."""
    g, p = planned
    plain = _memplan("show", p, env={"PYTHONIOENCODING": "utf-8"})
    assert plain.returncode == 0, plain.stderr
    marked = _memplan("show", p, env={"PYTHONIOENCODING": encoding})
    assert marked.returncode == 0, marked.stderr
    text = marked.stdout.decode(encoding)   # (a mark at the very start is the codec's, read away here)
    assert "\ufeff" not in text
    assert text == plain.stdout.decode("utf-8")

    bad = _memplan("verify", g, g, env={"PYTHONIOENCODING": encoding})   # (a graph given for the plan)
    assert bad.returncode == 2
    err = bad.stderr.decode(encoding)
    assert "\ufeff" not in err and err.count("\n") == 1 and err.startswith("memplan: error: "), err


# ---- Ctrl-C before the command runs ------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["build_parser", "_stderr_into_input"])
def test_a_ctrl_c_while_the_arguments_are_read_is_one_line(planned, monkeypatch, where):
    """A Ctrl-C while ``main`` built its parser (importing the subcommands' modules) or read the arguments came
    before ``_main``'s handler: a KeyboardInterrupt traceback. Now "interrupted", one line, exit 130, as later."""
    from cli_contract import run_captured

    from memplan import cli

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, where, ctrl_c)
    g, p = planned
    code, out, err = run_captured("plan", g, "-o", p.parent / "q.json")
    assert code == 130 and out == "" and err == "memplan: error: interrupted\n", err
    assert not (p.parent / "q.json").exists()


@pytest.fixture()
def python_sigint(monkeypatch):
    """Python's own SIGINT handler for the test (a runner's worker may ignore SIGINT), put back after."""
    import signal

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@pytest.mark.skipif(__import__("threading").current_thread() is not __import__("threading").main_thread(),
                    reason="Python runs signal handlers in the main thread")
def test_a_ctrl_c_at_any_line_of_example_making_its_directories_leaves_none(tmp_path, monkeypatch, python_sigint):
    """``memplan example -o a/b/ex`` makes ``a``, ``a/b`` and ``a/b/ex`` and takes them away when it fails; but a
    Ctrl-C while it made them (between two ``mkdir`` calls, or between one and noting it) left those made so far
    behind, empty: the list of what it made was returned only at the end. Now each is noted as it is made, and a
    Ctrl-C at any line of the command (a real SIGINT, ``sys.settrace``) leaves the tree as it was, or the examples
    whole."""
    import shutil
    import signal

    from cli_contract import run_captured

    from memplan import cli, files

    def one_example(directory: str) -> None:   # (the directories are what is tested: one small file)
        files.atomic_write_text(os.path.join(directory, "x.json"), "{}\n")

    monkeypatch.setattr(cli, "_write_examples", one_example)
    watched = {"cmd_example", "_make_directory", "_remove_directories"}

    def once(k: int):
        base = tmp_path / f"run{k}"
        base.mkdir()
        seen = [0]

        def trace(frame, event, arg):
            if frame.f_code.co_filename not in (cli.__file__, files.__file__):
                return None
            if event == "line" and frame.f_code.co_name in watched:
                seen[0] += 1
                if seen[0] == k:
                    signal.raise_signal(signal.SIGINT)
            return trace

        outer = sys.gettrace()
        sys.settrace(trace)
        try:
            code, _out, err = run_captured("example", "-o", base / "a" / "b" / "ex")
        finally:
            sys.settrace(outer)
        tree = sorted(os.path.relpath(os.path.join(r, x), base) for r, ds, fs in os.walk(base) for x in ds + fs)
        shutil.rmtree(base)
        return seen[0], code, err, tree

    lines = once(0)[0]
    assert lines > 10
    for k in range(1, lines + 1):
        _, code, err, tree = once(k)
        whole = ["a", os.path.join("a", "b"), os.path.join("a", "b", "ex"), os.path.join("a", "b", "ex", "x.json")]
        # (130 with the examples: the Ctrl-C came once they were written, at the command's last line)
        assert (code, tree) in ((0, whole), (130, whole), (130, [])), (k, code, err, tree)
