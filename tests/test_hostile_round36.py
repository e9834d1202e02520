"""Round 36 (hostile): outputs that are this process's own streams, and other findings of the round."""

from __future__ import annotations

import os
import subprocess

import pytest
from cli_forks import memplan_cli

import memplan
from memplan.errors import MemplanError
from memplan.examples import diamond

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _memplan(argv, cwd, **kw):
    """``python -m memplan argv`` as its own process, its streams as given (forked from one interpreter that imported
    memplan once: ``cli_forks``)."""
    return memplan_cli(argv, cwd=cwd, **kw)


@pytest.mark.parametrize("dev, stream", [("/dev/stdout", "stdout"), ("/proc/self/fd/2", "stderr")])
def test_an_output_that_is_the_redirected_stream_keeps_its_file(tmp_path, dev, stream):
    """``memplan plan g.json -o /dev/stdout >> log.txt``: the path resolves to ``log.txt`` and the atomic write
    renamed the plan over it: the log's earlier lines were gone (and with ``-o /dev/stderr 2>> log.txt`` too)."""
    if not os.path.exists(dev):
        pytest.skip(f"no {dev} here")
    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    log = tmp_path / "log.txt"
    log.write_text("earlier line\n")
    with open(log, "ab") as f:
        r = _memplan(["plan", "g.json", "-o", dev, "-q"], tmp_path, **{stream: f},
                     **({"stderr": subprocess.PIPE} if stream == "stdout" else {"stdout": subprocess.PIPE}))
    assert log.read_text().startswith("earlier line\n")
    assert r.returncode == 2
    if stream == "stdout":
        err = r.stderr.decode()
        assert err.count("\n") == 1 and "standard output" in err and "'-' writes to stdout" in err


def test_saving_over_the_file_the_process_reads_as_stdin_is_refused(tmp_path):
    """The library's ``save_graph(g, "/dev/stdin")`` with stdin a file replaced that file (as above)."""
    path = tmp_path / "in.json"
    path.write_text("keep\n")
    saved = os.dup(0)
    try:
        with open(path, "rb") as f:
            os.dup2(f.fileno(), 0)
        with pytest.raises(MemplanError, match="standard input") as caught:
            memplan.save_graph(diamond(), "/proc/self/fd/0")
        # (nothing was written to stdin: the message says what the rename would do, not that output is lost)
        assert "the file being read" in str(caught.value) and "is lost" not in str(caught.value)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    assert path.read_text() == "keep\n"


@pytest.mark.parametrize("option, unit", [("--wide", "outputs"), ("--io", "triples"), ("--inplace", "in-place pairs")])
def test_bench_scale_names_the_unit_a_count_is_given_in(capsys, option, unit):
    """``bench scale --wide 20000000`` counts one node's outputs and ``--inplace`` in-place pairs, but their cap said
    "20000000 is more than 10000000 nodes", a unit the count is not given in (round 35 mended only the families of
    several nodes a unit)."""
    from memplan.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "scale", option, "20000000"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"20000000 is more than 10000000 {unit}" in err and err.count("\n") == 1


def _split_plan_doc() -> dict:
    from memplan.examples import moe

    return memplan.plan_devices(moe(), 2)[1].to_dict()


@pytest.mark.parametrize("field, typo, doc", [
    ("events", "evnets", lambda: memplan.plan(diamond()).to_dict()),
    ("lower_bound_bytes", "lower_bound", lambda: memplan.plan(diamond()).to_dict()),
    ("device_arena_bytes", "device_arena_byte", _split_plan_doc),
    ("devices", "devcies", _split_plan_doc),
])
def test_a_plan_field_spelt_wrong_is_named_in_the_refusal(field, typo, doc):
    """A plan edited by hand with ``"evnets"`` for ``"events"`` was refused as "field 'events' is missing or not a
    list", with no word of the key that was there (a graph document names its misspelt fields); ``"devcies"`` in a
    split plan read "give 'devices' for a split plan" beside the very key that was meant to."""
    from memplan.planfile import plan_from_dict

    d = doc()
    d[typo] = d.pop(field)
    with pytest.raises(memplan.PlanFormatError, match=f"the document has '{typo}' \\(did you mean '{field}'\\?\\)"):
        plan_from_dict(d, source="hand.json")


def test_a_missing_integer_field_reads_an_int():
    """(grammar: "is missing or not a int")"""
    from memplan.planfile import plan_from_dict

    d = memplan.plan(diamond()).to_dict()
    del d["arena_bytes"]
    with pytest.raises(memplan.PlanFormatError, match="field 'arena_bytes' is missing$"):
        plan_from_dict(d, source="hand.json")


def _diamond_doc_with(old: str, new: str, part: str | None = None) -> dict:
    """diamond's plan document (or graph document, ``part="graph"``) with the id ``old`` spelt ``new``."""
    import json

    doc = memplan.plan(diamond()).to_dict() if part != "graph" else diamond().to_dict()
    return json.loads(json.dumps(doc).replace(f'"{old}"', json.dumps(new)))


@pytest.mark.parametrize("lookalike", ["\u0445", "\uff58", "x\u200b"], ids=["cyrillic", "fullwidth", "zero-width"])
def test_a_plan_id_that_looks_like_the_graphs_says_so(lookalike):
    """A plan naming tensor 'х' (Cyrillic, pasted from another document) against the graph's Latin 'x': "plan places
    tensor 'х', which graph 'diamond' does not have" named, to the eye, a tensor the graph plainly has (round 35 told
    apart only the same letters in two Unicode normalization forms)."""
    plan = memplan.plan_from_dict(_diamond_doc_with("x", lookalike))
    with pytest.raises(memplan.UnsafePlan) as e:
        memplan.verify(diamond(), plan)
    assert f"{ascii(lookalike)} looks like the graph's 'x'" in str(e.value)


def test_a_graph_reading_a_lookalike_id_says_so_both_ways():
    """A node reading the Cyrillic 'х' of a graph whose tensor is the Latin 'x' (and the other way round)."""
    doc = _diamond_doc_with("x", "x", "graph")
    doc["nodes"][0]["inputs"] = ["\u0445"]
    with pytest.raises(memplan.GraphError, match=r"'\\u0445' looks like the graph's 'x'"):
        memplan.graph_from_dict(doc)
    doc = _diamond_doc_with("x", "\u0445", "graph")
    doc["nodes"][0]["inputs"] = ["x"]
    with pytest.raises(memplan.GraphError, match=r"'x' looks like the graph's '\\u0445'"):
        memplan.graph_from_dict(doc)
    doc["nodes"][0]["inputs"] = ["q"]   # (another id: no note)
    with pytest.raises(memplan.GraphError) as e:
        memplan.graph_from_dict(doc)
    assert "looks like" not in str(e.value)


@pytest.mark.parametrize("load, error", [(memplan.load_plan, memplan.PlanFormatError),
                                         (memplan.load_graph, memplan.GraphError)])
def test_reading_through_a_file_as_a_directory_says_so(tmp_path, monkeypatch, load, error):
    """``load_plan("plan.json/")`` said "plan.json/: Not a directory" (the OS's words, naming no file: as if a
    directory were wanted), where a write to that path says a file path may not end with a slash."""
    monkeypatch.chdir(tmp_path)
    memplan.save_plan(memplan.plan(diamond()), "plan.json")
    with pytest.raises(error, match=r"^plan.json/: a file path may not end with a slash \(plan.json is a file\)$"):
        load("plan.json/")
    with pytest.raises(error, match=r"^plan.json/x.json: plan.json is not a directory$"):
        load("plan.json/x.json")


def _two_buffers():
    import numpy as np

    from memplan.problem import BufferProblem

    return BufferProblem(sizes=np.array([16, 16]), lower=np.array([0, 0]), upper=np.array([1, 1]), alignment=16)


@pytest.mark.parametrize("offsets, arena, said", [
    ([0.0, 16.9], 32, "not integers"),          # was taken as [0, 16]
    (["0", "16"], 32, "not integers"),          # was read as the numbers the strings spell
    ([[0], [16]], 32, "shape (2, 1)"),          # was "returned 2 offsets for 2 buffers (a solver bug)"
    ([0, 16], "32", "arena is '32'"),           # was "reported arena 32, but its offsets span 32 (a solver bug)"
    ([True, False], 32, "not integers"),
], ids=["float", "strings", "column", "arena-string", "bools"])
@pytest.mark.parametrize("solver", ["search", "cpsat"])
def test_a_warm_start_of_no_integers_is_refused_as_the_callers(solver, offsets, arena, said):
    """A named exact solver's warm start (the caller's) is checked like any solver's output, which reads offsets as
    int64: a float offset was truncated into a plan, and a column or a string arena was blamed on a solver."""
    import numpy as np

    from memplan.problem import Solution
    from memplan.solvers import SolveOptions, solve

    ws = Solution(np.array(offsets), arena, "mine")
    with pytest.raises(memplan.SolverError) as e:
        solve(_two_buffers(), solver, SolveOptions(warm_start=ws, time_limit=0.1))
    assert str(e.value).startswith("warm_start is no packing of this problem: its ") and said in str(e.value)
    assert "solver bug" not in str(e.value)


def test_a_warm_start_of_plain_and_numpy_integers_is_taken():
    import numpy as np

    from memplan.problem import Solution
    from memplan.solvers import SolveOptions, solve

    for ws in (Solution([0, np.int64(16)], np.int32(32), "mine"), Solution(np.array([0, 16]), 32, "mine")):
        assert solve(_two_buffers(), "search", SolveOptions(warm_start=ws, time_limit=0.1)).arena == 32


def _disk_full_after(monkeypatch, writes: int) -> None:
    """The file system fills up after ``writes`` successful atomic writes: the next fsync fails with ENOSPC."""
    import errno

    from memplan import files

    done = []
    real = files.os.fsync

    def fsync(fd):
        if len(done) >= writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done.append(fd)
        return real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)


def test_a_disk_full_on_the_second_output_leaves_the_first_as_it_was(tmp_path, monkeypatch, capsys):
    """``plan -o P --graph-out G`` writes the split graph, then the plan: a disk that filled up between them failed
    the plan's write after the graph's had replaced G (the failed run left a new split graph beside the old plan)."""
    from memplan.cli import main
    from memplan.examples import moe

    monkeypatch.chdir(tmp_path)
    memplan.save_graph(moe(), "m.json")
    (tmp_path / "g.json").write_text("old graph\n")
    (tmp_path / "p.json").write_text("old plan\n")
    _disk_full_after(monkeypatch, 1)
    assert main(["plan", "m.json", "-o", "p.json", "--devices", "2", "--graph-out", "g.json", "-q"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert (tmp_path / "g.json").read_text() == "old graph\n" and (tmp_path / "p.json").read_text() == "old plan\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "m.json", "p.json"]   # no temporary left


def test_a_disk_full_midway_through_the_examples_writes_none(tmp_path, monkeypatch, capsys):
    """``example -o DIR`` checked every file writable first ("a failure leaves no half set"), but a disk that filled
    up midway left the first few examples written by a run that failed."""
    from memplan.cli import main

    _disk_full_after(monkeypatch, 3)
    assert main(["example", "-o", str(tmp_path / "ex")]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not (tmp_path / "ex").exists()   # (round 40: nor the directory the failed run made)


def test_a_warm_start_that_overlaps_is_not_called_a_solver_bug():
    """The caller's own packing that overlaps two buffers (one of another problem of as many buffers) was refused as
    "warm_start is no packing of this problem: solver 'mine' overlapped conflicting buffers 'b0' and 'b1' (a solver
    bug)": no solver made it."""
    import numpy as np

    from memplan.problem import Solution
    from memplan.solvers import SolveOptions, solve

    ws = Solution(np.array([0, 0]), 16, "mine")
    with pytest.raises(memplan.SolverError, match="^warm_start is no packing of this problem: .*overlapped") as e:
        solve(_two_buffers(), "search", SolveOptions(warm_start=ws, time_limit=0.1))
    assert "solver bug" not in str(e.value)


@pytest.mark.parametrize("option", ["--io", "--wide", "--inplace", "--moe-blocks"])
def test_bench_scale_a_family_given_no_sizes_runs_no_default_graphs(option):
    """``bench scale --io`` (no sizes) ran the default fan-out/join graphs of 10,000 to a million nodes, as if no
    family were named, where ``bench scale --nodes`` (no sizes) is "nothing to measure"."""
    from memplan.benchmarks.scale import _nodes
    from memplan.cli import build_parser

    args = build_parser().parse_args(["bench", "scale", option])
    assert _nodes(args) == []
