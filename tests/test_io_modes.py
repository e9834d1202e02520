"""Atomic writes give files the mode a plain open() would, not mkstemp's private 0600."""

import os
import stat

from memplan.io import atomic_write_text


def test_new_file_gets_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        p = tmp_path / "out.json"
        atomic_write_text(str(p), "{}\n")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_replaced_file_keeps_its_mode(tmp_path):
    p = tmp_path / "out.json"
    p.write_text("old")
    p.chmod(0o640)
    atomic_write_text(str(p), "new")
    assert p.read_text() == "new"
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert [f.name for f in tmp_path.iterdir()] == ["out.json"]  # no temporary left behind
