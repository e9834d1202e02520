"""Round 38 (hostile, CLI): ``memplan draw`` where matplotlib cannot make its config directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import memplan
from memplan.examples import diamond

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _memplan(argv, cwd, **env):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **env)
    return subprocess.run([sys.executable, "-m", "memplan", *argv], cwd=cwd, env=env, timeout=120,
                          capture_output=True, text=True)


@pytest.fixture
def no_config_dir(tmp_path):
    """An MPLCONFIGDIR matplotlib cannot make (under a file: even root cannot), as with ``HOME`` read-only or the
    ``nobody`` user's ``/nonexistent``."""
    pytest.importorskip("matplotlib")
    (tmp_path / "file").write_text("")
    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    memplan.save_plan(memplan.plan(diamond()), str(tmp_path / "p.json"))
    return str(tmp_path / "file" / "mpl")


def test_a_failing_draw_is_one_line_where_matplotlib_has_no_config_dir(tmp_path, no_config_dir):
    """matplotlib logged "mkdir -p failed ..." and "Matplotlib created a temporary cache directory ..." on stderr
    as it was imported, before the graph was read: an error in the graph was the third line of stderr."""
    (tmp_path / "bad.json").write_text('{"format": "memplan.graph/1", "name": "bad"}')
    r = _memplan(["draw", "bad.json", "p.json", "-o", "d.png"], tmp_path, MPLCONFIGDIR=no_config_dir)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("memplan: error: bad.json: ")
    assert not (tmp_path / "d.png").exists()


def test_a_quiet_draw_is_quiet_where_matplotlib_has_no_config_dir(tmp_path, no_config_dir):
    r = _memplan(["draw", "g.json", "p.json", "-o", "d.png", "-q"], tmp_path, MPLCONFIGDIR=no_config_dir)
    assert r.returncode == 0 and r.stderr == "" and (tmp_path / "d.png").stat().st_size > 0


def test_a_draw_says_matplotlibs_notes_as_warning_lines_after_its_summary(tmp_path, no_config_dir):
    r = _memplan(["draw", "g.json", "p.json", "-o", "d.png"], tmp_path, MPLCONFIGDIR=no_config_dir)
    lines = r.stderr.splitlines()
    assert r.returncode == 0 and lines[0] == "d.png: memory map of 5 tensors"
    assert lines[1:] and all(line.startswith("memplan: warning: matplotlib: ") for line in lines[1:])
    assert any("temporary cache directory" in line for line in lines[1:])
