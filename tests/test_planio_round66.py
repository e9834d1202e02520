"""Round 66 (planio): plan files, ``verify`` and the CLI against hostile inputs.

- A node of a multi-device plan on a device out of range (7 of 2, -1) is rule 1's finding alone: it was also read
  as on device 0, so every tensor of its own device it touched drew a false rule-4 finding ("node 'l1.norm' on
  device 0 accesses 'l1.xn' on device 1"), which the oracle (tests/oracle65.py) does not make.
- The command's process ends with its own status, after every ``atexit`` callback, also where one was registered
  before memplan was imported (a wrapper script's, a sitecustomize's): ``_interrupt._end_at_exit`` was then not
  registered at all, and a Ctrl-C in Python's teardown killed the process (status -2).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from cli_contract import assert_bad_input, run_memplan
from oracle65 import findings

from memplan import plan_devices
from memplan.examples import LLAMA_TINY, llama
from memplan.verify import check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def two_devices():
    return plan_devices(llama(LLAMA_TINY), 2)


@pytest.mark.parametrize("device", [7, 2, -1, -(2**62)])
def test_a_node_on_a_device_out_of_range_is_rule_1_alone(two_devices, device):
    """Each node of device 1 moved in turn to ``device``: one finding, rule 1, naming the node and the device; no
    rule-4 finding of a node on device 0 (it was one per tensor the node touches). The oracle's rules agree."""
    split, p = two_devices
    graph_doc = split.graph.to_dict()
    for k, d in enumerate(p.node_devices):
        if d != 1:
            continue
        nid = p.order[k][0]
        bad = dataclasses.replace(p, node_devices=p.node_devices[:k] + (device,) + p.node_devices[k + 1:])
        found = check(split.graph, bad)
        assert found == [(1, f"node {nid!r} runs on device {device}, outside 0..1")], found
        assert {r for r, _ in findings(graph_doc, bad.to_dict())} == {1}


def test_cli_names_the_node_of_an_out_of_range_device_in_one_line(tmp_path, capsys, two_devices):
    """``memplan verify`` of the file: exit 2, one line naming the node and its device, no word of device 0."""
    split, p = two_devices
    doc = p.to_dict()
    k = p.node_devices.index(1)
    doc["order"][k]["device"] = 7
    (tmp_path / "g.json").write_text(json.dumps(split.graph.to_dict()))
    (tmp_path / "p.json").write_text(json.dumps(doc))
    code, _out, err = run_memplan(capsys, ["verify", tmp_path / "g.json", tmp_path / "p.json"])
    assert_bad_input(code, err, f"node {p.order[k][0]!r} runs on device 7, outside 0..1")
    assert "device 0" not in err and "rule 4" not in err, err


# ---- the command's end with atexit callbacks of the program's own ---------------------------------------------------

#: a ``sitecustomize`` whose object's ``__del__`` raises a real SIGINT as Python tears its modules down, after every
#: ``atexit`` callback, where Python has put SIGINT's default action back (test_hostile_round65's)
_LATE_SIGINT = """
import builtins, signal
class _Late:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)
builtins._memplan_round66_late = _Late()
"""

#: a wrapper script named ``memplan`` (the command's process) that registers an atexit handler of its own, before or
#: after importing memplan, then runs the CLI's ``main`` and exits with its code plus ``SHIFT`` (a wrapper may map it)
_WRAPPER = """
import atexit, os, sys
def _mine():
    print("user handler ran", flush=True)
if os.environ["WHEN"] == "before":
    atexit.register(_mine)
from memplan.cli import main
if os.environ["WHEN"] == "after":
    atexit.register(_mine)
sys.exit(main() + int(os.environ["SHIFT"]))
"""


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(("argv", "code"), [(["--version"], 0), (["show", "missing.json"], 2)])
def test_a_programs_own_atexit_handler_runs_and_the_command_ends_with_its_status(tmp_path, when, argv, code):
    """A Ctrl-C in Python's final teardown of a command process whose program registered an atexit handler: the
    handler runs once and the process ends with the program's status. Registered before memplan was imported, the
    process was killed by SIGINT (-2): memplan's end was registered only where no callback existed (ending there
    at once would have skipped the program's handler, which Python calls after it)."""
    (tmp_path / "sitecustomize.py").write_text(_LATE_SIGINT)
    (tmp_path / "memplan").write_text(_WRAPPER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]), WHEN=when)
    env.pop("PYTHONSTARTUP", None)
    for shift in (0, 3) if when == "before" and code else (0,):   # (``--version`` ends in argparse's SystemExit)
        r = subprocess.run([sys.executable, str(tmp_path / "memplan"), *argv], env=dict(env, SHIFT=str(shift)),
                           cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
        assert r.returncode == code + shift, (r.returncode, r.stdout, r.stderr)
        assert r.stdout.count("user handler ran") == 1, r.stdout
        assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == (code != 0), r.stderr


def test_the_stand_in_stream_passes_everything_through(monkeypatch):
    """``_LastFlush``: writes, attributes and flushes reach the stream; only a flush once Python is finalizing makes
    SIGINT ignored (before that ``_interrupted`` keeps it: a Ctrl-C in a later callback is the line and 130)."""
    import io
    import signal

    from memplan import _interrupt

    raw = io.StringIO()
    s = _interrupt._LastFlush(raw)
    s.write("x")
    s.flush()
    assert raw.getvalue() == "x" and s.closed is False
    seen = []
    monkeypatch.setattr(signal, "signal", lambda *a: seen.append(a))
    s.flush()
    assert seen == []
    monkeypatch.setattr(sys, "is_finalizing", lambda: True)
    s.flush()
    assert seen == [(signal.SIGINT, signal.SIG_IGN)]
