"""``memplan trace -o t.png`` wrote a trace's JSON into a file named a PNG without a word (found by a new user who
meant ``draw``): a picture suffix is refused in one line, before anything is read; other names still write."""

from __future__ import annotations

import json

import pytest

import memplan
from memplan import examples
from memplan.cli import main


@pytest.fixture
def pair(tmp_path):
    g = examples.diamond()
    gp, pp = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(g, str(gp))
    memplan.plan(g).save(str(pp))
    return str(gp), str(pp)


@pytest.mark.parametrize("name", ["t.png", "t.SVG", "t.pdf", "t.jpeg"])
def test_a_picture_name_is_refused(pair, tmp_path, capsys, name):
    out = tmp_path / name
    assert main(["trace", *pair, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a trace is JSON" in err[0] and "memplan draw" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("name", ["t.json", "t.trace", "trace"])
def test_other_names_still_get_the_trace(pair, tmp_path, name):
    out = tmp_path / name
    assert main(["trace", *pair, "-o", str(out), "-q"]) == 0
    assert "traceEvents" in json.loads(out.read_text())
