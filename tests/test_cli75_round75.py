"""Round 75 (cli75): the ``memplan`` command and its files as scripts and CI pipelines use them (CPU, in-process).

Each test names what the command did with an input or option nobody had shown it, and what holds now.
"""

from __future__ import annotations

import os
import time

import pytest

from memplan.cli import main


def test_bench_devices_refuses_ggml_before_planning(monkeypatch, capsys):
    """``memplan bench devices --solver ggml`` (a choice its ``--help`` lists) printed the table's header, then failed
    at the first split (the default ``--devices 2 4``: ggml plans one serial stream, every split has several), and
    with ``--devices 1 2`` after planning the one-device rows; one line before any plan now, as bench schedule."""
    from memplan.benchmarks import devices

    def no_graphs(name):
        raise AssertionError("a graph was built before the refusal")

    monkeypatch.setattr(devices, "model_graph", no_graphs)
    for argv in (["--solver", "ggml"], ["--devices", "1", "2", "--solver", "ggml"]):
        assert main(["bench", "devices", "--models", "tiny", *argv]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1
        assert err.startswith("memplan: error: --solver ggml plans one serial stream, and a split over 2 devices")


def test_bench_devices_takes_ggml_on_one_device(capsys):
    """``--devices 1`` alone splits nothing: ggml plans it (the refusal is for splits only)."""
    assert main(["bench", "devices", "--models", "tiny", "--devices", "1", "--solver", "ggml"]) == 0
    out, err = capsys.readouterr()
    assert "llama-tiny-decode" in out and err == ""


def _no_such_pid() -> int:
    """A process id no process has: the kernel's ``pid_max`` (ids run below it)."""
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except OSError:
        pytest.skip("no /proc/sys/kernel/pid_max")


def test_bench_graph_salvaged_from_a_killed_write_is_not_removed(tmp_path, monkeypatch, capsys):
    """A graph a SIGKILLed ``plan --graph-out`` / ``import`` left as ``.memplan-PID-XXXXXXXX.tmp``, given to ``bench
    planners --graph`` with ``--json`` into the same folder: the results' write removed that very input as a stale
    leftover where reading it left its read time old (a ``noatime`` mount; here the read is made to leave it old),
    as the positional inputs of every other command never are (``files.inputs_kept``)."""
    import memplan
    import memplan.io
    from memplan import examples, files

    leftover = tmp_path / f".memplan-{_no_such_pid()}-abcd1234.tmp"
    memplan.save_graph(examples.diamond(), str(leftover))
    real_load = memplan.io.load_graph

    def load_on_noatime(path):   # (the read leaves the file's times as they were: written and read hours ago)
        graph = real_load(path)
        then = time.time() - 2 * files.STALE_TEMPORARY_SECONDS
        os.utime(path, (then, then))
        return graph

    monkeypatch.setattr(memplan.io, "load_graph", load_on_noatime)
    load_on_noatime(str(leftover))
    assert main(["bench", "planners", "--graph", str(leftover), "--solvers", "greedy",
                 "--json", str(tmp_path / "results.json")]) == 0, capsys.readouterr().err
    assert leftover.exists() and (tmp_path / "results.json").exists()
