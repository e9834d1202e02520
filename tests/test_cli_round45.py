"""Round 45 (CLI): standard input that is the file stderr appends to, paths with a newline in error lines, and
hostile invocations of the subcommands.

The CLI runs as a subprocess (its stdin, stdout and stderr are real files here, which the checks look at). Each test
names the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import memplan
from memplan import examples

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def memplan_cli(argv, *, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                cwd=None):
    """``python -m memplan argv`` as a subprocess: the CompletedProcess (bytes)."""
    return subprocess.run([sys.executable, "-m", "memplan", *map(str, argv)], stdin=stdin, stdout=stdout,
                          stderr=stderr, env=ENV, timeout=timeout, cwd=cwd)


def one_error(text: bytes, *words: str) -> str:
    """``text`` is exactly one ``memplan: error:`` line holding every word, and no traceback; the line."""
    lines = text.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memplan: error: "), text
    for w in words:
        assert w in lines[0], (w, text)
    return lines[0]


@pytest.fixture
def graph_file(tmp_path):
    """The bundled diamond as a graph file."""
    gp = tmp_path / "g.json"
    memplan.save_graph(examples.diamond(), str(gp))
    return str(gp)


# ---- standard input read from the file stderr appends to ---------------------------------------------------------


@pytest.mark.parametrize("argv", [["plan", "-", "-o", "{out}"], ["plan", "-", "-o", "{out}", "--bogus"],
                                  ["show", "-"], ["verify", "-", "{g}"], ["csv", "-", "-o", "{out}"]])
@pytest.mark.parametrize("spelling", ["same", "symlink", "hardlink"])
def test_stdin_that_is_the_stderr_file_is_refused_and_left_whole(graph_file, tmp_path, argv, spelling):
    """``memplan plan - -o P < G 2>> G``: the input '-' (standard input) is refused, and that refusal's error line
    was appended to G, the graph the user meant (exit 2, G one line longer). Refused with G left whole, also where
    stderr's path is a symlink or a hard link to G; no output written."""
    before = open(graph_file, "rb").read()
    err_path = graph_file
    if spelling == "symlink":
        err_path = str(tmp_path / "link.json")
        os.symlink(graph_file, err_path)
    elif spelling == "hardlink":
        err_path = str(tmp_path / "hard.json")
        os.link(graph_file, err_path)
    out = tmp_path / "new.json"
    args = [a.format(out=out, g=graph_file) for a in argv]
    with open(graph_file, "rb") as inp, open(err_path, "ab") as err:
        proc = memplan_cli(args, stdin=inp, stderr=err)
    assert proc.returncode == 2
    assert open(graph_file, "rb").read() == before
    assert not out.exists()
    if "--bogus" not in argv:
        one_error(proc.stdout, "standard input", "redirect stderr elsewhere")


def test_stdin_from_another_file_still_says_why_on_stderr(graph_file, tmp_path):
    """The control: ``plan - -o P < G 2> E`` (E another file) is the usual refusal of '-', on stderr."""
    with open(graph_file, "rb") as inp, open(tmp_path / "e.txt", "wb") as err:
        proc = memplan_cli(["plan", "-", "-o", tmp_path / "p.json"], stdin=inp, stderr=err)
    assert proc.returncode == 2 and not proc.stdout
    one_error((tmp_path / "e.txt").read_bytes(), "not from standard input")
