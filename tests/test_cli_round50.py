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
