"""Round 35 (hostile): the library's own writes and messages, where the CLI's checks do not run first."""

from __future__ import annotations

import os

import pytest

import memplan
from memplan.errors import MemplanError
from memplan.examples import diamond


@pytest.mark.parametrize("name", ["out/", ".", "out/.", "link", "link/"])
def test_saving_over_a_directory_says_it_is_one(tmp_path, monkeypatch, name):
    """``save_plan(plan, "out/")`` of a directory said "cannot write out/: Not a directory" (the rename's error), and
    ``save_plan(plan, ".")`` "Device or resource busy"; the CLI's own check says "is a directory"."""
    monkeypatch.chdir(tmp_path)
    os.mkdir("out")
    os.symlink("out", "link")
    g = diamond()
    p = memplan.plan(g)
    for save in (lambda path: memplan.save_plan(p, path), lambda path: memplan.save_graph(g, path)):
        with pytest.raises(MemplanError, match=r"^cannot write .*: is a directory$"):
            save(name)
    assert sorted(os.listdir(".")) == ["link", "out"] and os.listdir("out") == []


@pytest.mark.parametrize("name", ["new/", "plan.json/"])
def test_saving_to_a_path_ending_in_a_slash_says_so(tmp_path, monkeypatch, name):
    """``plan.json/`` beside a file ``plan.json`` said "Not a directory", ``new/`` "No such file or directory"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.json").write_text("{}")
    with pytest.raises(MemplanError, match="a file path may not end with a slash"):
        memplan.save_plan(memplan.plan(diamond()), name)
    assert sorted(os.listdir(".")) == ["plan.json"] and (tmp_path / "plan.json").read_text() == "{}"
