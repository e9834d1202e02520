"""Round 47: hostile plan files through the ``memplan`` CLI: a repeated key names the entry it sits in."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from memplan.cli import main


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command run in process in ``cwd`` (``cli.main``, what ``python -m memplan`` runs), as a CompletedProcess:
    each subprocess spent a second or more of CI starting Python and importing memplan again for the same line and
    exit status (tests/test_cli.py keeps the real entry point's tests)."""
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["memplan", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path, dict]:
    g = {"format": "memplan.graph/1", "name": "two", "tensors": [
        {"id": "x", "size": 256, "kind": "input"}, {"id": "y", "size": 256, "kind": "intermediate"},
        {"id": "z", "size": 256, "kind": "output"}],
        "nodes": [{"id": "a", "op": "A", "inputs": ["x"], "outputs": ["y"]},
                  {"id": "b", "op": "B", "inputs": ["y"], "outputs": ["z"]}]}
    gp = tmp_path / "g.json"
    gp.write_text(json.dumps(g))
    r = _cli("plan", "g.json", "-o", "p.json", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return gp, tmp_path / "p.json", json.loads((tmp_path / "p.json").read_text())


def _one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("cmd", ["verify", "simulate"])
def test_repeated_stream_in_order_entry_names_the_node(files, cmd: str) -> None:
    gp, pp, plan = files
    entry = json.dumps(plan["order"][1])
    text = json.dumps(plan).replace(entry, entry[:-1] + ', "stream": 0}', 1)
    bad = pp.parent / "dup_order.json"
    bad.write_text(text)
    line = _one_error_line(_cli(cmd, "g.json", "dup_order.json", cwd=pp.parent))
    assert "'stream' appears twice" in line and "order entry 'b'" in line, line


def test_repeated_key_in_event_names_the_event(files) -> None:
    gp, pp, plan = files
    plan["events"] = [{"after": "a", "before": "b"}]
    text = json.dumps(plan).replace('"before": "b"}', '"before": "b", "after": "a"}', 1)
    bad = pp.parent / "dup_event.json"
    bad.write_text(text)
    line = _one_error_line(_cli("show", "dup_event.json", cwd=pp.parent))
    assert "'after' appears twice" in line and "event 'a'->'b'" in line, line
