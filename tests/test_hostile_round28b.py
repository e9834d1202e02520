"""Hostile round 28b: the secondary surfaces (draw, trace, simulate) on what earlier rounds did not try."""

from __future__ import annotations

import itertools

import pytest
from needs import need

import memplan
from memplan import CostModel, GraphBuilder


def _two_stage(big: int = 8192, small: int = 256, y: int = 4096) -> memplan.Graph:
    """A chain of four ``big`` tensors then two ``small`` ones, and an input ``y`` that only the last node reads:
    split over two devices, ``y`` lands on device 1 at the offsets device 0's chain uses in its own arena."""
    b = GraphBuilder("two-stage", alignment=256)
    b.input("x", big)
    b.input("y", y)
    prev = "x"
    for i, size in enumerate([big] * 4 + [small] * 2):
        b.node(f"n{i}", "X", [prev], b.intermediate(f"a{i}", size))
        prev = f"a{i}"
    b.node("last", "ADD", [prev, "y"], b.output("out", small))
    return b.build()


def test_pdf_memory_map_is_byte_identical_whenever_it_is_drawn(monkeypatch):
    """The PDF carried its ``CreationDate``: the same plan drawn a second later gave other bytes (PNG and SVG
    were already deterministic). matplotlib reads the date from ``SOURCE_DATE_EPOCH`` when it is set."""
    need("matplotlib")
    from memplan.viz.memmap import render_memory_map

    g = _two_stage(1024, 256, 256)
    p = memplan.plan(g)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    first = render_memory_map(g, p, "pdf")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")
    assert render_memory_map(g, p, "pdf") == first


def test_cost_model_class_instead_of_an_instance_is_named():
    """``cost_model=CostModel`` (the class) has ``event_us`` and ``node_us`` too, so it passed the check, and the
    first ``node_us(graph, n)`` was a raw TypeError ("missing 1 required positional argument: 'n'")."""
    g = _two_stage(1024, 256, 256)
    p = memplan.plan(g, streams=2)
    with pytest.raises(memplan.ScheduleError, match=r"not the class CostModel \(give CostModel\(\.\.\.\)\)"):
        memplan.simulate(g, p, CostModel)
    with pytest.raises(memplan.ScheduleError, match="not the class CostModel"):
        memplan.plan(g, streams=2, cost_model=CostModel)

    class Static:   # a class whose node_us needs no instance is a model as it is
        event_us = 1.0

        @staticmethod
        def node_us(graph, n):
            return 3.0

    assert memplan.simulate(g, p, Static).makespan_us == 3.0 * len(g.nodes)


def test_trace_counts_live_bytes_per_device():
    """A split plan's devices each have their own arena: the one "arena live bytes" counter summed all of them,
    20,480 B live over a plan whose largest arena is 16,384 B (the counter of a safe plan never passes its
    arena). Now one counter per device, each within its device's arena; one device keeps its one counter."""
    from memplan.viz.trace import trace_events

    split, p = memplan.plan_devices(_two_stage(), 2)
    counters = [e for e in trace_events(split.graph, p)["traceEvents"] if e["ph"] == "C"]
    by_name: dict[str, int] = {}
    for e in counters:
        by_name[e["name"]] = max(by_name.get(e["name"], 0), e["args"]["live"])
    assert by_name == {f"arena live bytes (device {d})": a for d, a in enumerate(p.device_arena_bytes)}
    assert max(by_name.values()) <= p.arena_bytes

    g = _two_stage()
    one = [e for e in trace_events(g, memplan.plan(g))["traceEvents"] if e["ph"] == "C"]
    assert {e["name"] for e in one} == {"arena live bytes"}


def _boxes(fig) -> list[tuple[float, float, float, float]]:
    from matplotlib.collections import PolyCollection

    (coll,) = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    out = []
    for path in coll.get_paths():
        xs, ys = path.vertices[:, 0], path.vertices[:, 1]
        out.append((xs.min(), xs.max(), ys.min(), ys.max()))
    return out


@pytest.mark.parametrize("time", [False, True])
def test_memory_map_of_a_split_plan_overlaps_no_boxes(time):
    """Each device's offsets count from 0 in its own arena: drawn on one axis, device 1's input ``y`` sat on
    device 0's ``x``, ``a1`` and ``a3`` at the same offsets, a picture of an overlap the verified plan does not
    have. Each device now has a band of its own; no two boxes of a safe plan overlap."""
    need("matplotlib")
    from memplan.viz import root_spans
    from memplan.viz.memmap import memory_map_figure

    split, p = memplan.plan_devices(_two_stage(), 2)
    pos = {nid: float(k) for k, (nid, _) in enumerate(p.order)}
    spans = root_spans(split.graph, p, pos, {k: v + 1 for k, v in pos.items()}, 0.0, float(len(p.order)))
    assert {s.tensor: s.device for s in spans}["y"] == 1 and {s.device for s in spans} == {0, 1}
    boxes = _boxes(memory_map_figure(split.graph, p, time=time))
    assert len(boxes) == len(spans)
    eps = 1e-9
    for (ax0, ax1, ay0, ay1), (bx0, bx1, by0, by1) in itertools.combinations(boxes, 2):
        overlap = ax0 < bx1 - eps and bx0 < ax1 - eps and ay0 < by1 - eps and by0 < ay1 - eps
        assert not overlap, ((ax0, ax1, ay0, ay1), (bx0, bx1, by0, by1))


@pytest.mark.parametrize("device", [5, -1])
def test_pictures_of_a_plan_putting_a_tensor_on_no_device_name_it(device):
    """An unverified split plan (``plan_from_dict``) with a tensor on device 5 of 2 has no band to draw it in
    (an IndexError), and device -1 (Python's last band) would be drawn on the wrong device: both are named."""
    from memplan.viz.trace import trace_events

    split, p = memplan.plan_devices(_two_stage(), 2)
    doc = p.to_dict()
    doc["tensors"][0]["device"] = device
    bad = memplan.plan_from_dict(doc)
    with pytest.raises(memplan.PlanFormatError, match=rf"tensor {p.tensors[0][0]!r} on device {device}, not one"):
        trace_events(split.graph, bad)
    need("matplotlib")
    from memplan.viz.memmap import render_memory_map

    with pytest.raises(memplan.PlanFormatError, match=f"on device {device}"):
        render_memory_map(split.graph, bad, "svg")


def _csv_dir(tmp_path, files: dict[str, str]) -> str:
    d = tmp_path / "mm"
    d.mkdir()
    for name, text in files.items():
        (d / name).write_text(text)
    return str(d)


GOOD_CSV = "id,lower,upper,size\na,0,2,8\nb,1,3,8\n"


def test_bench_planners_reads_every_csv_before_the_first_solve(tmp_path, capsys):
    """A malformed CSV was an error only when its turn came: after the table had begun and every problem
    before it had been solved (at 60 s an exact solve, hours into a run). Now nothing runs."""
    from cli_contract import assert_bad_input

    from memplan.cli import main

    d = _csv_dir(tmp_path, {"A.csv": GOOD_CSV, "B.csv": "id,lower,upper\n"})
    code = main(["bench", "planners", "--minimalloc", d, "--corpus", "minimalloc", "--solvers", "greedy"])
    out, err = capsys.readouterr()
    assert_bad_input(code, err, "B.csv", "missing column 'size'")
    assert out == ""
    # --only leaves the malformed one out: it is not read
    assert main(["bench", "planners", "--minimalloc", d, "--corpus", "minimalloc", "--solvers", "greedy",
                 "--only", "A"]) == 0
    assert [ln.split()[:2] for ln in capsys.readouterr().out.splitlines()[2:]] == [["minimalloc", "A"]]


def test_bench_planners_prints_a_problem_name_as_printable_text(tmp_path, capsys):
    """A problem's name is its CSV's file name: an ANSI escape in it ("x\\x1b[2J": clear the screen) was printed
    to the terminal as it was. The JSON keeps the name as it is."""
    import json

    from memplan.cli import main

    d = _csv_dir(tmp_path, {"x\x1b[2Jevil.csv": GOOD_CSV})
    out_json = tmp_path / "rows.json"
    assert main(["bench", "planners", "--minimalloc", d, "--corpus", "minimalloc", "--solvers", "greedy",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "x\\x1b[2Jevil" in out
    assert [r["problem"] for r in json.loads(out_json.read_text())] == ["x\x1b[2Jevil"]


@pytest.mark.parametrize(("kw", "match"), [
    ({"options": {}}, "options must be a memplan SolveOptions, not dict"),
    ({"minimize": "no"}, "minimize must be True, False or None"),
    ({"minimize": 1}, "minimize must be True, False or None"),
])
def test_solve_table_names_a_bad_option(kw, match):
    """``options={}`` was a raw TypeError from ``dataclasses.replace``; ``minimize="no"`` (truthy) minimised."""
    from memplan.io.minimalloc import parse_csv, solve_table

    table = parse_csv(GOOD_CSV)
    with pytest.raises(memplan.SolverError, match=match):
        solve_table(table, 100, **kw)


def test_solve_table_options_none_is_the_default_and_a_non_table_is_named():
    from memplan.io.minimalloc import parse_csv, solve_table

    assert solve_table(parse_csv(GOOD_CSV), options=None).arena == 16
    with pytest.raises(memplan.SolverError, match="solve_table needs a CsvTable .* not str"):
        solve_table("id,lower,upper,size\n")


def test_memory_map_labels_long_ids_and_names_by_their_start():
    """matplotlib lays out every character of a label, clipped or not: twelve boxes named by 50 KB ids took 48 s
    to draw (and made a 46 MB SVG), 200 (``LABEL_LIMIT``) would take minutes. A box's label is its id's first
    ``LABEL_CHARS`` characters, the default title's graph name its first ``NAME_CHARS``."""
    need("matplotlib")
    from memplan.viz.memmap import LABEL_CHARS, NAME_CHARS, memory_map_figure

    b = GraphBuilder("G" * 3000, alignment=256)
    prev = b.input("x", 256)
    ids = [f"{i}" + "W" * 2000 for i in range(3)]
    for i, t in enumerate(ids):
        b.node(f"n{i}", "X", [prev], b.output(t, 4096) if i == 2 else b.intermediate(t, 4096))
        prev = t
    g = b.build()
    ax = memory_map_figure(g, memplan.plan(g)).axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert sorted(labels) == sorted(t[:LABEL_CHARS - 1] + "\u2026" for t in ids)
    assert ax.get_title().startswith("G" * (NAME_CHARS - 1) + "\u2026: arena ")


@pytest.mark.parametrize(("build", "match"), [
    (lambda E: E.chain(2.5), r"chain: n must be an integer >= 1, not 2.5"),
    (lambda E: E.chain(0), r"chain: n must be an integer >= 1, not 0"),   # no node writes its output y
    (lambda E: E.chain(None), r"chain: n must be"),
    (lambda E: E.moe(0), r"moe: experts must be an integer >= 1, not 0"),   # an IndexError
    (lambda E: E.moe(-3), r"moe: experts must be"),
    (lambda E: E.views_inplace(None), r"views_inplace: size must be an integer >= 0, not None"),
    (lambda E: E.qkv_attention(None, 5), r"qkv_attention: hidden must be"),
    (lambda E: E.llama(None), r"llama: cfg must be a LlamaConfig, not NoneType"),   # an AttributeError
    (lambda E: E.llama(E.LLAMA_TINY, fuse="all"), r"llama: fuse='all', expected 'norms' or 'runtime'"),
    (lambda E: E.llama(E.LLAMA_TINY, fuse=None), r"llama: fuse=None"),
    (lambda E: E.llama(E.LLAMA_TINY, f16_acts="yes"), r"llama: f16_acts='yes', expected True or False"),
    (lambda E: E.llama(E.LLAMA_TINY, fuse_norms="no"), r"llama: fuse_norms='no', expected True or False"),  # fused
])
def test_example_builders_name_a_bad_argument(build, match):
    """The example builders' arguments are a caller's: each bad one is a GraphError (a ValueError too, as the
    llama options' plain ValueErrors were) naming it, not a raw TypeError, IndexError or AttributeError, nor a
    graph of another shape."""
    from memplan import examples

    with pytest.raises(memplan.GraphError, match=match):
        build(examples)
    assert examples.chain(1).nodes[0].outputs == ("y",) and len(examples.moe(1).nodes) == 4


def test_in_place_output_over_part_of_its_input_is_drawn_and_counted_once():
    """The contract lets a node's in-place output take any of its input's bytes, not only its offset: with the
    output (512 B at 0) over the input (256 B at 256), the input's box ran on through the node that overwrites
    it, over the output's, and the trace counted both: 768 B live in a safe plan's arena of 512 B."""
    from memplan.viz import root_spans
    from memplan.viz.trace import trace_events

    b = GraphBuilder("inplace-shift", alignment=1)
    b.input("in0", 256)
    b.input("in1", 256)
    b.node("n0", "RESHAPE", ["in0"], b.view("v0", "in0", 256), cost=1.0)
    b.node("n1", "OP", ["in1"], b.output("t", 512), cost=1.0, inplace={"t": "in1"})
    g = b.build()
    p = memplan.plan_from_dict({
        "format": "memplan.plan/1", "graph": g.name, "alignment": 1, "arena_bytes": 512, "lower_bound_bytes": 512,
        "streams": 1, "order": [{"node": "n0", "stream": 0}, {"node": "n1", "stream": 0}], "events": [],
        "tensors": [{"id": "in0", "offset": 0, "size": 256}, {"id": "in1", "offset": 256, "size": 256},
                    {"id": "v0", "offset": 0, "size": 256}, {"id": "t", "offset": 0, "size": 512}]})
    memplan.verify(g, p)
    spans = {s.tensor: s for s in root_spans(g, p, {"n0": 0.0, "n1": 1.0}, {"n0": 1.0, "n1": 2.0}, 0.0, 2.0)}
    assert spans["in1"].x1 == 1.0 and spans["t"].x0 == 1.0   # in1 is free once n1 starts
    live = [e["args"]["live"] for e in trace_events(g, p)["traceEvents"] if e["ph"] == "C"]
    assert max(live) == 512


def test_trace_slices_on_one_stream_never_overlap():
    """Each slice's start and length were rounded to the nanosecond apart, so a node's end could lie 1 ns past
    the next node's start on its stream (costs of 0.6 ns: the second slice ended at 0.002 us, the third began at
    0.001): slices that do not nest, which trace viewers refuse or draw one inside the other."""
    from decimal import Decimal

    from memplan.viz.trace import trace_events

    b = GraphBuilder("ns")
    prev = b.input("x", 256)
    for i in range(6):
        b.node(f"n{i}", "X", [prev], b.output(f"t{i}", 256) if i == 5 else b.intermediate(f"t{i}", 256), cost=0.0006)
        prev = f"t{i}"
    g = b.build()
    slices = sorted((Decimal(repr(e["ts"])), Decimal(repr(e["ts"])) + Decimal(repr(e["dur"])))
                    for e in trace_events(g, memplan.plan(g))["traceEvents"] if e["ph"] == "X")
    assert len(slices) == 6
    for (_, end), (start, _) in itertools.pairwise(slices):
        assert end <= start


def test_memory_map_of_many_devices_labels_a_few_bands():
    """Each band's two tick labels and three lines, for 300 devices, made a black smear of overlapping labels
    and a grey picture; past ``BAND_LINES`` devices every few bands' start is labelled and no band lines drawn."""
    need("matplotlib")
    from memplan.viz.memmap import BAND_LINES, memory_map_figure

    b = GraphBuilder("long-chain", alignment=256)
    prev = b.input("x", 256)
    for i in range(40):
        b.node(f"n{i}", "X", [prev], b.output(f"t{i}", 256) if i == 39 else b.intermediate(f"t{i}", 256), cost=1.0)
        prev = f"t{i}"
    split, p = memplan.plan_devices(b.build(), 20)
    ax = memory_map_figure(split.graph, p).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert 1 < len(labels) <= BAND_LINES and labels[0] == "dev 0"
    assert not ax.get_lines()   # (axhline: a Line2D each)
