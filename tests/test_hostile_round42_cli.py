"""Round 42 (hostile, CLI): commands run in a current directory that was removed.

Each test names the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import os

import pytest
from cli_contract import assert_bad_input, run_memplan

import memplan
from memplan.errors import MemplanError

# ---- 1. a removed current directory: a relative path cannot be resolved --------------------------------------


@pytest.fixture
def removed_cwd(tmp_path, monkeypatch):
    """The process's current directory removed under it (``cd d; rmdir ../d``), as a shell left in a directory
    another process deleted; the test's own files lie in ``tmp_path`` (absolute paths)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    return tmp_path


@pytest.mark.parametrize("argv, words", [
    (["plan", "{g}", "-o", "p.json"], ["-o p.json", "current directory no longer exists"]),
    (["trace", "{g}", "{p}", "-o", "t.json"], ["-o t.json", "current directory no longer exists"]),
    (["csv", "{csv}", "-o", "o.csv"], ["-o o.csv", "current directory no longer exists"]),
    (["plan", "g.json", "-o", "{out}"], ["g.json", "current directory no longer exists"]),
    (["example", "-o", "ex"], ["example -o ex", "current directory no longer exists"]),
])
def test_a_relative_path_in_a_removed_directory_is_named(removed_cwd, diamond_files, capsys, argv, words):
    """``memplan plan /abs/g.json -o p.json`` in a removed directory: "cannot write to stdout: No such file or
    directory" (``os.path.realpath`` asks for the current directory, and the CLI's one OSError handler is stdout's),
    though stdout was fine and the output was a file; an input ``g.json`` went the same way when an output was
    absolute. Now one line naming the path and why, exit 2."""
    g, p = diamond_files
    csv = removed_cwd / "c.csv"
    csv.write_text("id,lower,upper,size\na,0,2,10\n")
    given = [a.format(g=g, p=p, csv=csv, out=removed_cwd / "out.json") for a in argv]
    code, _, err = run_memplan(capsys, given)
    assert_bad_input(code, err, *words)
    assert "stdout" not in err
    assert not (removed_cwd / "out.json").exists()


def test_absolute_paths_in_a_removed_directory_still_work(removed_cwd, diamond_files, capsys):
    """No current directory is needed for absolute paths: the command runs as before."""
    g, _ = diamond_files
    out = removed_cwd / "q.json"
    code, _, err = run_memplan(capsys, ["plan", g, "-o", out, "-q"])
    assert code == 0, err
    assert memplan.load_plan(str(out)).graph == "diamond"


def test_library_save_in_a_removed_directory_is_a_memplan_error(removed_cwd):
    """``Plan.save("p.json")`` (and ``save_graph``) in a removed directory raised a raw FileNotFoundError naming no
    file; now a MemplanError naming the path."""
    from memplan.examples import diamond

    g = diamond()
    p = memplan.plan(g)
    with pytest.raises(MemplanError, match=r"cannot write p\.json: the current directory no longer exists"):
        p.save("p.json")
    with pytest.raises(MemplanError, match=r"cannot write g\.json: the current directory no longer exists"):
        memplan.save_graph(g, "g.json")
    assert os.listdir(removed_cwd) == []
