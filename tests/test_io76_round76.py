"""Round 76 (io76): the secondary commands (``show``, ``simulate``, ``trace``, ``draw``) on plans edited by hand.

Each test fails without its fix; all run in-process (``memplan.cli.main`` with capsys) on the bundled Q/K/V graph.
"""

from __future__ import annotations

import json

import pytest

import memplan
from memplan import examples


@pytest.fixture
def qkv(tmp_path):
    """The Q/K/V example on three streams: its graph file, its plan file and its plan document."""
    g = examples.qkv_attention()
    gp, pp = tmp_path / "qkv.json", tmp_path / "plan.json"
    memplan.save_graph(g, str(gp))
    plan = memplan.plan(g, streams=3)
    plan.save(str(pp))
    return g, str(gp), str(pp), json.loads(pp.read_text())


def _edited(tmp_path, doc: dict, edit) -> str:
    """``doc`` edited by ``edit`` and written to a file of its own."""
    doc = json.loads(json.dumps(doc))
    edit(doc)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_draw_title_counts_an_event_listed_twice_once(qkv, tmp_path):
    """An event listed twice restates one happens-before edge (docs/format.md): ``show``, ``simulate`` and the trace
    count it once, but the memory map's default title counted entries ("5 event(s)" for 4 events)."""
    pytest.importorskip("matplotlib")
    from memplan.viz.memmap import memory_map_figure

    g, _gp, _pp, doc = qkv
    events = len(doc["events"])
    dup = memplan.planfile.plan_from_dict({**doc, "events": doc["events"] + doc["events"][:1]})
    memplan.verify(g, dup)   # (still safe: the repeated entry orders nothing more)
    title = memory_map_figure(g, dup).axes[0].get_title()
    assert f"{events} event(s)" in title, title
