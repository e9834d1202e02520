"""Round 60: the file entry points (``load_graph``, ``save_graph``, ``load_plan``, ``save_plan``, ``load_safe_pair``)
refuse a call's mistakes as every other public entry point does: an ``OptionError`` naming the argument. Before,
``memplan.save_plan(plan)`` was Python's own "missing 1 required positional argument" and a misspelt keyword
"got an unexpected keyword argument", no memplan error (round 60's review)."""

from __future__ import annotations

import pytest

import memplan
from memplan.errors import OptionError
from memplan.examples import bundled


def _pair():
    g = next(iter(bundled().values()))
    return g, memplan.plan(g)


@pytest.mark.parametrize("call, names", [
    (lambda g, p, d: memplan.save_plan(p), "'path'"),
    (lambda g, p, d: memplan.save_plan(path=str(d / "p.json")), "'plan'"),
    (lambda g, p, d: memplan.save_graph(g, str(d / "g.json"), path=str(d / "h.json")), "'path' twice"),
    (lambda g, p, d: memplan.load_graph(), "'path'"),
    (lambda g, p, d: memplan.load_plan(pth=str(d / "p.json")), "'pth'"),
    (lambda g, p, d: memplan.save_plan(p, str(d / "p.json"), timing=True), "'timing'"),
])
def test_file_entry_points_name_a_wrong_call(tmp_path, call, names):
    g, p = _pair()
    with pytest.raises(OptionError, match=names):
        call(g, p, tmp_path)
    assert list(tmp_path.iterdir()) == []          # nothing written on a refused call


def test_file_entry_points_still_round_trip(tmp_path):
    g, p = _pair()
    memplan.save_graph(g, str(tmp_path / "g.json"))
    memplan.save_plan(p, path=str(tmp_path / "p.json"))
    assert memplan.load_plan(str(tmp_path / "p.json")).to_json() == p.to_json()
    assert memplan.load_graph(path=str(tmp_path / "g.json")).name == g.name
