"""Round 76 (io76): the secondary commands (``show``, ``simulate``, ``trace``, ``draw``) on plans edited by hand.

Each test fails without its fix; all run in-process (``memplan.cli.main`` with capsys) on the bundled Q/K/V graph.
"""

from __future__ import annotations

import json

import pytest

import memplan
from memplan import examples
from memplan.cli import main


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


@pytest.mark.parametrize("argv,advice", [
    (["simulate", "{g}", "{p}"], "pass --event-us US"),
    (["trace", "{g}", "{p}", "-o", "{o}.json"], "trace simulates a plan at the latency it records"),
    (["draw", "{g}", "{p}", "-o", "{o}.svg", "--time"], "without --time"),
])
def test_a_recorded_latency_that_is_none_is_refused_naming_the_file_with_advice_that_fits(qkv, tmp_path, capsys, argv,
                                                                                          advice):
    """A plan whose ``solver.schedule.event_us`` was edited to -1: ``trace`` and ``draw --time`` refused it advising
    "CLI --event-us", an option neither has (``memplan trace ... --event-us 2`` is an unrecognized argument), and all
    three named no file. Now one line naming the plan file, with a way round the command has."""
    if argv[0] == "draw":
        pytest.importorskip("matplotlib")
    _g, gp, _pp, doc = qkv
    bad = _edited(tmp_path, doc, lambda d: d["solver"]["schedule"].__setitem__("event_us", -1))
    out = tmp_path / "out"
    code = main([a.format(g=gp, p=bad, o=out) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"memplan: error: {bad}: plan field solver.schedule.event_us -1 is not"), err[0]
    assert advice in err[0] and "CLI --event-us" not in err[0], err[0]
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


def test_show_quotes_ids_that_begin_or_end_in_white_space(tmp_path, capsys):
    """Ids ``x``, ``x `` and ``x\\xa0`` are three tensors (and ``n``, ``n `` two nodes), but ``show``'s tables pad their
    columns with spaces, so the largest-tensors table had three rows reading ``x`` and the stream table named both
    nodes ``n``; an id with white space at an end is now quoted as ``repr`` writes it (``verify`` names them so)."""
    b = memplan.GraphBuilder("ws")
    b.input("x", 4096)
    b.node("n", "A", ["x"], b.intermediate("x ", 4096))
    b.node("n ", "A", ["x "], b.output("x\xa0", 4096))
    g = b.build()
    plan = memplan.plan_from_dict({**json.loads(memplan.plan(g).to_json()), "streams": 2,
                                   "order": [{"node": "n", "stream": 0}, {"node": "n ", "stream": 1}],
                                   "events": [{"after": "n", "before": "n "}]})
    memplan.verify(g, plan)
    path = tmp_path / "p.json"
    plan.save(str(path))
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    rows = out.split("largest tensors")[1].splitlines()[2:]
    assert [r.split()[0] for r in rows] == ["x", "'x", "'x\\xa0'"], rows
    assert "'n ' .. 'n '" in out, out


def test_a_csv_id_longer_than_csv_s_field_limit_is_read_and_written_back(tmp_path, capsys):
    """A valid minimalloc CSV whose id is 140,000 characters (ids may be any length, as a graph's) was refused as
    "field larger than field limit (131072)", ``csv``'s default limit in Python's words; it is solved, its solution
    reads back, and ``csv``'s limit is as it was. A quote left open in a large file is still named as one."""
    import csv

    limit = csv.field_size_limit()
    long_id = "b" * 140_000
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(f"id,lower,upper,size\n{long_id},0,2,4\nc,1,3,4\n")
    assert main(["csv", str(src), "-o", str(out), "-q"]) == 0, capsys.readouterr().err
    table = memplan.io.minimalloc.read_csv(str(out))
    assert table.ids == (long_id, "c") and table.header[-1] == "offset"
    assert csv.field_size_limit() == limit
    src.write_text(f"id,lower,upper,size\n\"{long_id},0,2,4\nc,1,3,4\n")
    assert main(["csv", str(src), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line 2:" in err[0] and "a quote left open?" in err[0], err
