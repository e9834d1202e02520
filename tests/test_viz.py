"""Pictures of plans: Perfetto trace structure, memory-map spans and files, CLI ``draw``/``trace``."""

from __future__ import annotations

import json

import pytest
from handgraphs import two_stream_plan
from needs import need

import memplan
from memplan import examples
from memplan.cli import main
from memplan.errors import PlanFormatError
from memplan.viz import root_spans
from memplan.viz.trace import trace_events


@pytest.fixture(params=["fanout15", "moe", "views", "llama-tiny-auto"])
def planned(request):
    if request.param == "llama-tiny-auto":  # graph_optimize's own stream assignment
        g = examples.llama(examples.LLAMA_TINY)
        p = memplan.plan(g, streams="auto")
        assert p.streams > 1
        return g, p
    g = {"fanout15": examples.fanout_join15, "moe": examples.moe, "views": examples.views_inplace}[request.param]()
    return g, two_stream_plan(g)


def test_trace_structure(planned):
    g, p = planned
    doc = trace_events(g, p)
    json.dumps(doc)  # JSON-ready
    ev = doc["traceEvents"]
    slices = [e for e in ev if e["ph"] == "X"]
    assert sorted(e["name"] for e in slices) == sorted(n.id for n in g.nodes)
    stream_of = p.stream_of()
    for e in slices:
        assert {"ts", "dur", "pid", "tid", "args"} <= e.keys()
        assert e["dur"] >= 0 and e["ts"] >= 0 and e["tid"] == stream_of[e["name"]]
        assert e["args"]["op"] == g.node(e["name"]).op
        assert e["args"]["bytes"] == sum(g.tensor(t).size for t in g.node(e["name"]).outputs)
        assert e["args"]["writes"] == {t: p.offsets()[t] for t in g.node(e["name"]).outputs}
    by_name = {e["name"]: e for e in slices}
    # each stream's slices follow issue order without overlapping
    for s in set(stream_of.values()):
        mine = [by_name[n] for n, st in p.order if st == s]
        for a, b in zip(mine, mine[1:]):
            assert a["ts"] + a["dur"] <= b["ts"] + 1e-9
    # flows: one s/f pair per plan event, same id, f binds to the enclosing slice, arrow goes forward
    starts = {e["id"]: e for e in ev if e["ph"] == "s"}
    ends = {e["id"]: e for e in ev if e["ph"] == "f"}
    assert len(starts) == len(ends) == len(p.events) > 0
    assert starts.keys() == ends.keys()
    for k, (a, b) in enumerate(p.events, start=1):
        s_ev, f_ev = starts[k], ends[k]
        assert f_ev["bp"] == "e"
        assert (s_ev["tid"], f_ev["tid"]) == (stream_of[a], stream_of[b])
        sa, sb = by_name[a], by_name[b]
        assert sa["ts"] <= s_ev["ts"] <= sa["ts"] + sa["dur"]
        assert f_ev["ts"] == sb["ts"]
        assert sb["ts"] >= sa["ts"] + sa["dur"] - 1e-9  # the waiting node starts after the recorded one ends
    # counter: live bytes never negative, never above the arena for a safe plan, back to outputs at the end
    counters = [e for e in ev if e["ph"] == "C"]
    assert counters and all(e["args"]["live"] >= 0 for e in counters)
    assert max(e["args"]["live"] for e in counters) <= p.arena_bytes
    assert counters[-1]["args"]["live"] == 0
    names = {(e["tid"], e["args"]["name"]) for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {(s, f"stream {s}") for s in set(stream_of.values())}
    assert {e["pid"] for e in ev} == {1}


def test_trace_times_respect_streams_and_events():
    g = examples.fanout_join15()
    p = two_stream_plan(g)
    tm = memplan.simulate(g, p)
    # cost-weighted: the join waits for the slowest branch (b3 costs 40)
    assert tm.start_us["j"] >= tm.end_us["b3"]
    assert tm.makespan_us == max(tm.end_us.values())
    assert tm.makespan_us < sum(n.cost for n in g.nodes)  # two streams overlap work
    assert trace_events(g, p)["otherData"]["makespan_us"] == round(tm.makespan_us, 3)


def test_root_spans_issue_order_and_inplace():
    g = examples.views_inplace()
    p = memplan.plan(g)
    pos = {nid: float(i) for i, (nid, _) in enumerate(p.order)}
    spans = {s.tensor: s for s in root_spans(g, p, pos, {k: v + 1 for k, v in pos.items()}, 0.0, len(pos))}
    assert set(spans) == {"x", "m", "sc", "ac", "y"}  # roots in the arena only, no views
    assert spans["x"].x0 == 0.0 and spans["y"].x1 == len(pos)
    assert (spans["m"].x0, spans["m"].x1) == (pos["mm"], pos["cont"] + 1)  # read through views by cont
    if p.offsets()["sc"] == p.offsets()["ac"]:  # done in place: sc is free as act starts
        assert spans["sc"].x1 == pos["act"]


def test_wrong_graph_for_plan():
    p = memplan.plan(examples.diamond())
    with pytest.raises(PlanFormatError, match="plan names node"):
        trace_events(examples.chain(), p)


def test_memory_map_png_and_svg(tmp_path):
    need("matplotlib")
    from memplan.viz.memmap import render_memory_map, save_memory_map

    g = examples.moe()
    p = two_stream_plan(g)
    png = tmp_path / "m.png"
    save_memory_map(g, p, str(png))
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert render_memory_map(g, p, "png") == data  # deterministic
    svg = render_memory_map(g, p, "svg", time=True)
    assert svg.startswith(b"<?xml") and b"lower bound" in svg
    assert render_memory_map(g, p, "svg", time=True) == svg


def test_memory_map_large_graph_draws():
    need("matplotlib")
    from memplan.viz.memmap import EDGE_LIMIT, memory_map_figure

    g = examples.llama(examples.LlamaConfig(layers=24, hidden=256, heads=4, kv_heads=2, ffn=512, vocab=500, ctx=16))
    p = memplan.plan(g)
    fig = memory_map_figure(g, p)
    coll = fig.axes[0].collections[0]
    n_roots = sum(1 for i, t in enumerate(g.tensors) if g.is_root(i) and t.kind != "weight" and t.size)
    assert len(coll.get_paths()) == n_roots > 0
    assert (n_roots > EDGE_LIMIT) == (float(coll.get_linewidths()[0]) == 0.0)


def test_cli_draw_and_trace(tmp_path, capsys):
    gpath, ppath = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(examples.fanout_join15(), str(gpath))
    assert main(["plan", str(gpath), "-o", str(ppath), "-q"]) == 0
    assert main(["trace", str(gpath), str(ppath), "-o", str(tmp_path / "t.json"), "-q"]) == 0
    doc = json.loads((tmp_path / "t.json").read_text())
    assert {e["ph"] for e in doc["traceEvents"]} >= {"X", "C", "M"}
    need("matplotlib")
    assert main(["draw", str(gpath), str(ppath), "-o", str(tmp_path / "m.png"), "-q"]) == 0
    assert (tmp_path / "m.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["draw", str(gpath), str(ppath), "-o", str(tmp_path / "m.gif")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memplan: error:") and "m.gif" in err and not (tmp_path / "m.gif").exists()
    memplan.save_graph(examples.chain(), str(tmp_path / "other.json"))
    assert main(["trace", str(tmp_path / "other.json"), str(ppath), "-o", str(tmp_path / "t2.json")]) == 2
    assert "wrong graph" in capsys.readouterr().err


def test_cli_draw_refuses_stdout_and_a_bad_name_before_loading(tmp_path, capsys):
    """``draw -o -`` is one line saying a picture needs a file name (not "unknown picture format ''"),
    and a name with no picture format is refused before the graph and plan are read and verified."""
    from cli_contract import assert_bad_input

    gpath, ppath = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(examples.fanout_join15(), str(gpath))
    assert main(["plan", str(gpath), "-o", str(ppath), "-q"]) == 0
    capsys.readouterr()
    code = main(["draw", str(gpath), str(ppath), "-o", "-"])
    out, err = capsys.readouterr()
    assert_bad_input(code, err, "stdout", ".png")
    assert out == ""
    code = main(["draw", str(gpath), str(tmp_path / "missing.json"), "-o", str(tmp_path / "m.gif")])
    assert_bad_input(code, capsys.readouterr().err, "m.gif", "'gif'")


def tutorial_blocks() -> tuple[list[str], list[str]]:
    """docs/tutorial.md's Python blocks and its `memplan ...` commands, in order."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "tutorial.md").read_text()
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, re.S)
    python = [body for lang, body in blocks if lang == "python"]
    commands = [line.split("#")[0].strip() for lang, body in blocks if lang == "sh" for line in body.splitlines()]
    return python, [c for c in commands if c.startswith("memplan ")]


def test_tutorial_runs(tmp_path, monkeypatch, capsys):
    """docs/tutorial.md: its ONNX and API Python blocks and every `memplan ...` command run as written."""
    need("onnx")
    need("matplotlib")
    import pathlib
    import re
    import shlex

    python, commands = tutorial_blocks()
    assert len(python) >= 2 and len(commands) >= 8
    monkeypatch.chdir(tmp_path)
    exec(compile(python[0], "make_model.py", "exec"), {})
    for cmd in commands:
        assert main(shlex.split(cmd)[1:]) == 0, cmd
    out = capsys.readouterr().out
    assert re.search(r"streams +[2-9]", out) and "plan.json: safe" in out
    text = (pathlib.Path(__file__).parent.parent / "docs" / "tutorial.md").read_text()
    shown = [ln for ln in re.search(r"```\n(graph +encoder\n.*?)```", text, re.S).group(1).splitlines() if ln != "..."]
    assert len(shown) >= 8 and set(shown) <= set(out.splitlines()), "tutorial's `memplan show` output is stale"
    quoted = re.search(r"^    (memplan: error: encoder\.onnx: .*)$", text, re.M).group(1)
    assert main(["import", "encoder.onnx", "-o", "unbatched.json"]) == 2
    assert capsys.readouterr().err.strip() == quoted and not (tmp_path / "unbatched.json").exists()
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert any(e["ph"] == "s" for e in trace["traceEvents"])
    assert (tmp_path / "memmap-time.png").stat().st_size > 5000
    exec(compile(python[1], "api.py", "exec"), {})


def test_tutorial_torch_block_runs(torch):
    """docs/tutorial.md: the PyTorch block (the third Python block) runs as written and plans its model."""
    python, _ = tutorial_blocks()
    assert len(python) == 3 and "import torch" in python[2]
    scope: dict = {}
    exec(compile(python[2], "torch.py", "exec"), scope)
    graph, plan = scope["graph"], scope["plan"]
    memplan.verify(graph, plan)
    assert graph.nodes and plan.lower_bound_bytes <= plan.arena_bytes


def test_show_prints_a_stream_table():
    from memplan.show import describe

    g = examples.fanout_join15()
    p = two_stream_plan(g)
    text = describe(p)
    table = text.split("per stream:\n")[1].splitlines()
    assert table[0].split()[:4] == ["stream", "nodes", "records", "waits"]
    rows = {int(r.split()[0]): [int(x) for x in r.split()[1:4]] for r in table[1:3]}
    stream_of = p.stream_of()
    for s, (nodes, rec, wait) in rows.items():
        assert nodes == sum(1 for v in stream_of.values() if v == s)
        assert rec == sum(1 for a, _ in p.events if stream_of[a] == s)
        assert wait == sum(1 for _, b in p.events if stream_of[b] == s)
    assert "per stream:\n" not in describe(memplan.plan(g))  # serial plans keep the short summary


def test_pictures_are_ordinary_files(tmp_path):
    import os
    import stat

    from memplan.viz import atomic_write_bytes

    p = tmp_path / "a.png"
    atomic_write_bytes(str(p), b"x")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644 and p.read_bytes() == b"x"
    os.chmod(p, 0o600)
    atomic_write_bytes(str(p), b"y")  # replacing keeps the file's mode
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600 and p.read_bytes() == b"y"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
