"""Round 37 (hostile): outputs through a file descriptor of the process, ``ReuseIndex.table`` of no collection,
and other findings of the round."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from cli_forks import memplan_cli

import memplan
import memplan.examples
from memplan.errors import MemplanError, ScheduleError
from memplan.examples import diamond

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _memplan(argv, cwd, **kw):
    """``python -m memplan argv`` in a fresh subprocess: for a descriptor it inherits (``pass_fds``); other runs are
    ``cli_forks.memplan_cli``'s (forked from one interpreter that imported memplan once)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "memplan", *argv], cwd=cwd, env=env, timeout=120, **kw)


def _fd_dirs() -> list[str]:
    return [d for d in ("/dev/fd", "/proc/self/fd") if os.path.isdir(d)]


@pytest.mark.parametrize("through", ["/dev/fd", "/proc/self/fd", "link"])
def test_an_output_through_an_open_descriptor_keeps_its_file(tmp_path, through):
    """``memplan plan g.json -o /dev/fd/3 3>>log.txt``: round 36 refused the standard streams only, so the plan
    was renamed over ``log.txt`` and its earlier lines were lost (exit 0)."""
    if not _fd_dirs():
        pytest.skip("no /dev/fd here")
    if through != "link" and not os.path.isdir(through):
        pytest.skip(f"no {through} here")
    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    log = tmp_path / "log.txt"
    log.write_text("earlier line\n")
    with open(log, "ab") as f:
        fd = f.fileno()   # (the child gets it under the same number: ``pass_fds``)
        out = f"{_fd_dirs()[0] if through == 'link' else through}/{fd}"
        if through == "link":
            os.symlink(out, tmp_path / "out.json")
            out = "out.json"
        r = _memplan(["plan", "g.json", "-o", out, "-q"], tmp_path, pass_fds=(fd,), capture_output=True)
    assert log.read_text() == "earlier line\n"
    assert r.returncode == 2
    err = r.stderr.decode()
    assert err.count("\n") == 1 and f"file descriptor {fd}" in err and "Traceback" not in err


def test_saving_through_a_descriptor_the_program_holds_open_is_refused(tmp_path):
    """The library's ``save_plan(p, f"/proc/self/fd/{f.fileno()}")`` with ``f`` a log opened to append."""
    if not _fd_dirs():
        pytest.skip("no /dev/fd here")
    log = tmp_path / "log.txt"
    with open(log, "a") as f:
        f.write("kept\n")
        f.flush()
        with pytest.raises(MemplanError, match=f"file descriptor {f.fileno()}, open on a regular file"):
            memplan.save_plan(memplan.plan(diamond()), f"{_fd_dirs()[0]}/{f.fileno()}")
    assert log.read_text() == "kept\n"


def test_an_output_through_a_closed_descriptor_says_it_is_not_open(tmp_path):
    """``-o /dev/fd/9`` with no descriptor 9 said "No such file or directory (in /proc/PID/fd)"."""
    if not _fd_dirs():
        pytest.skip("no /dev/fd here")
    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    r = memplan_cli(["plan", "g.json", "-o", f"{_fd_dirs()[0]}/97", "-q"], cwd=tmp_path)
    assert r.returncode == 2
    assert "file descriptor 97 is not open in this process" in r.stderr.decode()


def test_a_plain_output_file_is_still_written(tmp_path):
    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    r = memplan_cli(["plan", "g.json", "-o", "p.json", "-q"], cwd=tmp_path)
    assert r.returncode == 0 and memplan.load_plan(str(tmp_path / "p.json")).graph == "diamond"


@pytest.mark.parametrize("tensors", [5, 3.5, b"x", bytearray(b"x"), object()])
def test_reuse_table_of_no_collection_of_ids_names_it(tensors):
    """``index.table(5)`` raised a raw TypeError ("'int' object is not iterable"); ``table(b"x")`` answered
    "graph 'diamond' has no tensor 120" (the byte's value)."""
    g = diamond()
    p = memplan.plan(g, streams=2)
    with pytest.raises(ScheduleError, match=f"tensors is a collection of tensor ids.*not {type(tensors).__name__}"):
        memplan.ReuseIndex(g, p).table(tensors)
    with pytest.raises(ScheduleError, match="reuse_table: tensors is a collection"):
        memplan.reuse_table(g, p, tensors)


def test_reuse_table_takes_any_iterable_of_ids():
    g = diamond()
    p = memplan.plan(g, streams=2)
    index = memplan.ReuseIndex(g, p)
    assert list(index.table(iter(["x"]))) == ["x"] and list(index.table({"x"})) == ["x"]
    assert index.table(("x",)) == {"x": index.after("x")}


def _three_buffers():
    from memplan.problem import BufferProblem

    return BufferProblem(sizes=np.array([16, 16, 8]), lower=np.array([0, 0, 0]), upper=np.array([3, 3, 1]),
                         alignment=8)


@pytest.mark.parametrize("offsets", [{0: 0, 1: 16, 2: 32}, {0, 16, 32}, "0,16,32", b"\x00\x10\x20"])
@pytest.mark.parametrize("solver", ["search", "cpsat"])
def test_a_warm_start_of_offsets_in_no_sequence_names_what_it_is(offsets, solver):
    """Offsets given as a dict (by buffer index), a set, a string or bytes were refused as "its offsets have shape
    (): one integer a buffer is needed", naming a shape the caller never gave."""
    from memplan.problem import Solution
    from memplan.solvers import SolveOptions, solve

    warm = Solution(offsets, 40, "mine")
    with pytest.raises(memplan.SolverError, match=f"its offsets are {type(offsets).__name__} .*not a sequence") as e:
        solve(_three_buffers(), solver, SolveOptions(warm_start=warm, time_limit=0.5))
    assert "shape ()" not in str(e.value)


def _schedule_of(g):
    from memplan.schedule import serial_schedule

    return serial_schedule(g)


@pytest.mark.parametrize("given, said, unsaid", [
    ({"memory_budget": 5, "device_capacity": 10**9}, "drop the memory_budget (the device_capacity given", "use device"),
    ({"memory_budget": 5}, "drop the memory_budget (use device_capacity", "given"),
    ({"schedule": _schedule_of, "device_capacity": 10**9}, "drop the schedule", "device_capacity"),
])
def test_the_split_names_the_option_it_takes_no_and_what_to_do(given, said, unsaid):
    """``plan(g, devices=2, memory_budget=B, device_capacity=C)`` said "(use device_capacity)" to a caller who had,
    and so did a given schedule alone, which no capacity replaces."""
    g = memplan.examples.moe()
    kw = {k: v(g) if callable(v) else v for k, v in given.items()}
    with pytest.raises(memplan.ScheduleError, match=said.replace("(", "\\(")) as e:
        memplan.plan(g, devices=2, **kw)
    assert unsaid not in str(e.value).split(": ", 1)[1]


@pytest.mark.parametrize("capacity, said", [(["--device-capacity", "3M"], "drop --memory-budget (the --device-capacity"),
                                            ([], "give --device-capacity BYTES instead")])
def test_the_cli_split_with_a_budget_says_what_to_do(tmp_path, capacity, said):
    memplan.save_graph(memplan.examples.moe(), str(tmp_path / "g.json"))
    r = memplan_cli(["plan", "g.json", "-o", "p.json", "--devices", "2", "--graph-out", "s.json", "--memory-budget", "1M",
                     *capacity], cwd=tmp_path)
    assert r.returncode == 2 and said in r.stderr.decode() and r.stderr.decode().count("\n") == 1
