"""Round 40 (hostile, CLI): a report with nowhere to go, example's files over a user's own, and output paths that
are the input under another name.

Each test names the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cli_contract import assert_bad_input, leftovers, run_memplan

from memplan.examples import bundled

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- 1. stdout closed: a report that is the command's product is refused, not lost ----------------------------

REPORTS = {
    "show": ["show", "{p}"],
    "simulate": ["simulate", "{g}", "{p}"],
    "verify": ["verify", "{g}", "{p}"],
    "example": ["example", "-o", "{ex}"],
}


def _argv(tmp_path, diamond_files, argv):
    g, p = diamond_files
    return [a.format(g=g, p=p, ex=tmp_path / "ex") for a in argv]


@pytest.mark.parametrize("command", sorted(REPORTS))
def test_a_report_for_a_closed_stdout_is_refused(tmp_path, diamond_files, capsys, monkeypatch, command):
    """``memplan show p.json >&-`` (and simulate, verify, example): exit 0 with the report lost, where ``plan -o -``
    says "cannot write to stdout: it is closed". Now one line naming the command, exit 2, before any work (example
    writes no file)."""
    monkeypatch.setattr(sys, "stdout", None)
    code, _, err = run_memplan(capsys, _argv(tmp_path, diamond_files, REPORTS[command]))
    assert_bad_input(code, err, command, "stdout", "closed")
    assert not (tmp_path / "ex").exists()


def test_bench_tables_for_a_closed_stdout_are_refused_before_the_run(capsys, monkeypatch, tmp_path):
    """``memplan bench devices >&-``: the suite ran (hours for some) for a table nobody could read, exit 0. With
    ``--json FILE`` the results go to the file: that still runs."""
    from memplan.benchmarks import devices

    ran = []
    monkeypatch.setattr(devices, "run", lambda args: ran.append(args) or [])
    monkeypatch.setattr(sys, "stdout", None)
    code, _, err = run_memplan(capsys, ["bench", "devices", "--models", "tiny", "--devices", "2"])
    assert_bad_input(code, err, "bench", "stdout", "closed", "--json")
    assert ran == []
    out = tmp_path / "b.json"
    code, _, err = run_memplan(capsys, ["bench", "devices", "--models", "tiny", "--devices", "2", "--json", out])
    assert code == 0 and ran and out.read_text() == "[]\n", err


def test_a_closed_stdout_in_a_real_process(tmp_path, diamond_files):
    """The same started by a shell with ``>&-`` (file descriptor 1 closed: Python's ``sys.stdout`` is None)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for command in ("show", "simulate"):
        argv = _argv(tmp_path, diamond_files, REPORTS[command])
        r = subprocess.run(["sh", "-c", '"$0" -m memplan "$@" >&-', sys.executable, *argv], env=env, timeout=120,
                           stderr=subprocess.PIPE, text=True)
        assert r.returncode == 2, (command, r.stderr)
        assert r.stderr.count("\n") == 1 and "stdout" in r.stderr and "closed" in r.stderr, r.stderr


def test_files_written_with_a_closed_stdout_still_are(tmp_path, diamond_files, capsys, monkeypatch):
    """Commands whose product is a file print nothing on stdout: ``plan -o P >&-`` still plans."""
    g, _ = diamond_files
    monkeypatch.setattr(sys, "stdout", None)
    code, _, err = run_memplan(capsys, ["plan", g, "-o", tmp_path / "o.json"])
    assert code == 0 and (tmp_path / "o.json").exists(), err


# ---- 2. example -o DIR over a user's own files -----------------------------------------------------------------

def test_example_does_not_overwrite_an_edited_graph(tmp_path, capsys):
    """``memplan example -o DIR`` where ``DIR/chain.json`` is the user's edited graph: written over, exit 0, the
    edit lost. Now refused naming the file, nothing written; files that are already the bundled example's bytes (a
    second run into the same directory) are no obstacle."""
    d = tmp_path / "ex"
    code, _, err = run_memplan(capsys, ["example", "-o", d])
    assert code == 0, err
    names = sorted(os.listdir(d))
    code, out, err = run_memplan(capsys, ["example", "-o", d])   # (again: the same bytes, nothing lost)
    assert code == 0 and len(out.splitlines()) == len(bundled()), err
    mine = d / "chain.json"
    mine.write_text(mine.read_text().replace("\"size\": 1024", "\"size\": 2048", 1))
    edited = mine.read_bytes()
    assert b"\"size\": 2048" in edited
    os.unlink(d / "qkv.json")
    code, out, err = run_memplan(capsys, ["example", "-o", d])
    assert_bad_input(code, err, "chain.json", "already there", "not overwritten")
    assert out == "" and mine.read_bytes() == edited
    assert sorted(os.listdir(d)) == [n for n in names if n != "qkv.json"] and not leftovers(d)


def test_example_names_every_file_it_would_overwrite(tmp_path, capsys):
    d = tmp_path / "ex"
    d.mkdir()
    for stem in ("qkv", "moe"):
        (d / f"{stem}.json").write_text("mine\n")
    code, _, err = run_memplan(capsys, ["example", "-o", d])
    assert_bad_input(code, err, "moe.json", "qkv.json")
    assert sorted(os.listdir(d)) == ["moe.json", "qkv.json"]
    assert all((d / n).read_text() == "mine\n" for n in os.listdir(d))


@pytest.mark.parametrize("where", ["new", "nested", "existing"])
def test_a_failed_example_leaves_no_directory_it_made(tmp_path, monkeypatch, capsys, where):
    """``example -o ex`` on a disk that fills up: no example was written, but the (empty) directories the run had
    made stayed (``a/b/ex`` all three). They are taken away; a directory that was there before stays."""
    import errno

    from memplan import files

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    d = {"new": tmp_path / "ex", "nested": tmp_path / "a" / "b" / "ex", "existing": tmp_path / "ex"}[where]
    if where == "existing":
        d.mkdir()
    code, out, err = run_memplan(capsys, ["example", "-o", d])
    assert_bad_input(code, err, "No space left on device")
    assert out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == (["ex"] if where == "existing" else [])


# ---- 3. the fuzzer's new classes: outputs that alias inputs, a closed stdout (tests/fuzz_cli.py) ----------------

@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from corrupt import make_inputs

    return make_inputs(str(tmp_path_factory.mktemp("round40")))


def test_outputs_that_alias_inputs_and_a_closed_stdout_keep_the_cli_contract(inputs):
    """Seeds 0..59: every command, its output pointed at an input under another name (or ``example -o`` into the
    inputs' directory, whose ``qkv.json`` it wrote over), half of them with stdout closed: no input changed, no report
    lost. On the tree before round 40, seed 4010 of ``fuzz_cli --aliases 0.5 --closed-stdout 0.3`` found 16 lost
    files and 16 lost reports in 300 runs."""
    import random

    from corrupt import aliased, commands, run_case

    seen = set()
    for seed in range(60):
        rnd = random.Random(seed)
        target = rnd.choice(sorted(n for n in inputs.files if not n.endswith(".csv")))
        argv = rnd.choice(commands(inputs, target))
        how, argv = aliased(argv, inputs, rnd)
        seen.add(how.split(" ")[0] if how.startswith("example") else how.split(" ")[1])
        code, problem = run_case(inputs, target, inputs.files[target], argv, timeout=60, closed_stdout=seed % 2 == 1)
        assert problem is None, f"seed {seed}: {how}: memplan {' '.join(argv)}: {problem}"
    assert {"example", "symlink", "hardlink", "dot", "updown", "directory"} <= seen, seen
    assert not [f for f in os.listdir(inputs.directory) if f.startswith("alias-")]


def test_a_lost_report_is_reported(inputs, monkeypatch):
    """The check bites: with the closed-stdout refusal taken out, ``show`` exiting 0 is a finding."""
    from corrupt import run_case

    from memplan import cli

    monkeypatch.setattr(cli, "_check_report_stdout", lambda *a, **k: None)
    code, problem = run_case(inputs, "qkv.plan.json", inputs.files["qkv.plan.json"],
                             ["show", inputs.path("qkv.plan.json")], closed_stdout=True)
    assert code == 0 and problem.startswith("lost report: ")
