"""Renderers, round 32: ``memplan draw`` (PNG/SVG/PDF), ``memplan trace`` (Chrome/Perfetto JSON) and ``show``
under hostile names, degenerate plans, a hostile matplotlib environment and a missing matplotlib.

Each test names the input, what the renderer did with it, and what it does now; the ones that only pin
behaviour that already held (hostile names stay inside their context, matplotlib absent) say so.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from needs import need

import memplan
from memplan import GraphBuilder, examples
from memplan.cli import main
from memplan.show import describe

ROOT = Path(__file__).resolve().parents[1]

#: names that break out of some output format: HTML/SVG markup and comments, JS string literals
#: (U+2028/U+2029), JSON escapes, control characters, prototype keys, DOT syntax, case and normalisation twins
HOSTILE = ["</script><script>alert(1)</script>", "<img src=x onerror=alert(1)>", '"q"', "'s'", "a&b", "a\\b",
           "l\u2028s\u2029p", "nul\x00x", "nl\nx", "__proto__", "a -> b; {}[]", "--", "a--b-->", "<!--", "]]>",
           "Ab", "aB", "\u00e9", "e\u0301", "\ud800", "\x1b[31mred", "$x$", "x" * 3000]


def hostile_graph() -> memplan.Graph:
    """A chain whose graph name, node ids, ops and tensor ids are the ``HOSTILE`` names."""
    b = GraphBuilder("<title>&\"g--\u2028</svg>")
    prev = b.input(HOSTILE[0], 1024)
    for i, name in enumerate(HOSTILE[1:]):
        out = b.output(name, 1024) if i == len(HOSTILE) - 2 else b.intermediate(name, 1024)
        b.node("n:" + name, "OP" + name[:8], [prev], out, cost=1.0)
        prev = out
    return b.build()


def test_hostile_names_stay_inside_every_rendered_format():
    """(Held already; pinned here.) Every picture and trace of a graph of hostile names parses as what it is, and
    no name reaches SVG markup unescaped: ids are text in the picture, JSON strings in the trace."""
    need("matplotlib")
    from memplan.viz.memmap import render_memory_map
    from memplan.viz.trace import trace_json

    g = hostile_graph()
    p = memplan.plan(g)
    text = trace_json(g, p)
    doc = json.loads(text)
    assert text.isascii()   # U+2028/U+2029, NUL and lone surrogates are \\u escapes, never raw
    assert {e["name"] for e in doc["traceEvents"] if e["ph"] == "X"} == {n.id for n in g.nodes}
    for fmt in ("svg", "png", "pdf"):
        data = render_memory_map(g, p, fmt, title="</text>--<!-- \u2028 & \"")
        assert data
        if fmt == "svg":
            root = ET.fromstring(data)
            assert not [el for el in root.iter() if el.tag.rsplit("}", 1)[-1] in ("script", "img", "foreignObject")]
            for raw in (b"<script", b"<img", b"</svg><", b"\x00", b"\x1b"):
                assert raw not in data, raw
    shown = describe(p, top=len(HOSTILE))
    assert all(c.isprintable() or c in "\n " for c in shown)


def _drawn(g, p, fmt: str = "svg") -> bytes:
    from memplan.viz.memmap import render_memory_map

    return render_memory_map(g, p, fmt)


@functools.cache
def _qkv_under_defaults() -> tuple:
    """The bundled qkv graph, its 3-stream plan and its SVG and PNG under matplotlib's defaults: the picture every
    setting below must leave alone, drawn once for all of them (a setting that leaked past its test would make
    the next test's picture differ from this one)."""
    g = examples.bundled()["qkv"]
    p = memplan.plan(g, streams=3)
    return g, p, {fmt: _drawn(g, p, fmt) for fmt in ("svg", "png")}


@pytest.mark.parametrize("rc", [{"text.usetex": True}, {"svg.fonttype": "none"}, {"lines.linewidth": 7.0},
                                {"font.size": 3.0}, {"savefig.dpi": 300}])
def test_a_users_matplotlibrc_does_not_change_the_picture(monkeypatch, rc):
    """A matplotlibrc (or ``MATPLOTLIBRC``, or rcParams set by the calling program) with ``text.usetex: True`` made
    ``memplan draw`` a ``RuntimeError`` traceback ("latex could not be found"), and with LaTeX installed handed every
    tensor id to TeX (``parse_math=False`` does not hold under usetex: an id ``\\input{/etc/passwd}`` was TeX run
    on the user's machine); ``svg.fonttype: none`` and any other setting gave other bytes for the same plan. The
    picture is now drawn under matplotlib's defaults whatever the settings around it (``savefig.dpi: 300``
    drew 9 times the pixels ``size`` allows: ``MAX_AREA`` assumes 100 dots an inch)."""
    matplotlib = need("matplotlib")
    g, p, want = _qkv_under_defaults()
    for key, value in rc.items():
        monkeypatch.setitem(matplotlib.rcParams, key, value)
    assert {fmt: _drawn(g, p, fmt) for fmt in ("svg", "png")} == want
    for key, value in rc.items():
        assert matplotlib.rcParams[key] == value   # the caller's settings are theirs again after the draw


def test_the_users_fonts_are_kept(monkeypatch):
    """The one choice a matplotlibrc keeps (``FONT_KEYS``): which fonts draw the text, so that a font for the
    script of the ids makes them readable. Held before; pinned so that the defaults above do not take it."""
    matplotlib = need("matplotlib")
    g = examples.chain(3)
    p = memplan.plan(g)
    default = _drawn(g, p)
    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["monospace"])
    assert _drawn(g, p) != default
    assert _drawn(g, p) == _drawn(g, p)


def _cli(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memplan", *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_a_broken_matplotlib_environment_is_one_line(tmp_path):
    """``MPLBACKEND=nonsense memplan draw G P -o m.png``: ``import matplotlib`` raises a ValueError, which was a
    traceback (exit 1); now one line naming matplotlib and MPLBACKEND, exit 2, and no picture."""
    need("matplotlib")
    g, p, out = tmp_path / "g.json", tmp_path / "p.json", tmp_path / "m.png"
    memplan.save_graph(examples.chain(3), str(g))
    memplan.plan(examples.chain(3)).save(str(p))
    r = _cli(["draw", str(g), str(p), "-o", str(out)], MPLBACKEND="nonsense")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "matplotlib" in r.stderr and "MPLBACKEND" in r.stderr
    assert not out.exists()


def test_a_long_title_is_clipped_to_what_a_picture_shows():
    """``--title`` (or ``title=``) of 50,000 characters took 14 s to lay out, and a few MB from code minutes, for
    text past the picture's edge; titles are now clipped to ``TITLE_CHARS`` with an ellipsis, as the graph's name
    in the default title and the box labels were. (The SVG carries each text drawn as a comment.)"""
    need("matplotlib")
    from memplan.viz.memmap import TITLE_CHARS, memory_map_figure, render_memory_map

    g = examples.chain(3)
    p = memplan.plan(g)
    title = "W" * (TITLE_CHARS * 3)
    svg = render_memory_map(g, p, "svg", title=title)
    assert b"W" * (TITLE_CHARS - 1) + "\u2026".encode() in svg and b"W" * TITLE_CHARS not in svg
    assert memory_map_figure(g, p, title="short").axes[0].get_title() == "short"


class _NoMatplotlib:
    """A meta-path finder that makes ``import matplotlib`` fail as it does where the ``plot`` extra is absent."""

    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def test_without_matplotlib_draw_names_the_extra_and_the_rest_works(tmp_path, capsys, monkeypatch):
    """(Held already; pinned here: nothing tested it.) Without matplotlib, ``draw`` is one line naming the
    ``plot`` extra, exit 2, no file; ``trace``, ``show`` and ``draw --help`` work without it."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoMatplotlib(), *sys.meta_path])
    g, p = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(examples.bundled()["qkv"], str(g))
    memplan.plan(examples.bundled()["qkv"], streams=3).save(str(p))
    out = tmp_path / "m.png"
    assert main(["draw", str(g), str(p), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "memplan[plot]" in err and "matplotlib" in err, err
    assert not out.exists() and not [f for f in os.listdir(tmp_path) if f.startswith(".memplan-")]
    assert main(["trace", str(g), str(p), "-o", str(tmp_path / "t.json"), "-q"]) == 0
    json.loads((tmp_path / "t.json").read_text())
    assert main(["show", str(p)]) == 0 and "arena" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["draw", "--help"])
    assert exc.value.code == 0
    assert "matplotlib" not in sys.modules


def _zero_cost_chain() -> memplan.Graph:
    b = GraphBuilder("free")
    prev = b.input("x", 1024)
    for i in range(4):
        out = b.output("y", 1024) if i == 3 else b.intermediate(f"t{i}", 1024)
        b.node(f"n{i}", "OP", [prev], out, cost=0.0)
        prev = out
    return b.build()


def test_draw_time_of_a_plan_that_takes_no_time(tmp_path, capsys):
    """``memplan draw G P -o m.png --time`` of a graph whose nodes all cost 0 us (one stream, no events: the
    simulated makespan is 0) drew the axes and no box at all, every tensor 0 us wide, as if the arena were empty,
    and exited 0. It is now one line saying why and to draw without ``--time`` (which still draws every box)."""
    need("matplotlib")
    from memplan.viz.memmap import memory_map_figure

    g = _zero_cost_chain()
    gp, pp, out = tmp_path / "g.json", tmp_path / "p.json", tmp_path / "m.png"
    memplan.save_graph(g, str(gp))
    memplan.plan(g).save(str(pp))
    assert main(["draw", str(gp), str(pp), "-o", str(out), "--time"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--time" in err and "0 us" in err, err
    assert not out.exists()
    assert main(["draw", str(gp), str(pp), "-o", str(out), "-q"]) == 0 and out.stat().st_size > 0
    boxes = memory_map_figure(g, memplan.load_plan(str(pp))).axes[0].collections[0].get_paths()
    assert len(boxes) == 5 and all(b.get_extents().width > 0 for b in boxes)
    empty = GraphBuilder("nothing").build()   # no tensor to draw: time=True draws the empty axes, as before
    memory_map_figure(empty, memplan.plan(empty), time=True)


def test_a_vector_picture_of_many_tensors_stays_small():
    """A memory map of tens of thousands of tensors as SVG or PDF drew every box as a vector path, ~190 bytes a box:
    a 50,000-tensor graph gave a 9.5 MB SVG in 6 s, a million tensors would be ~190 MB. Past ``RASTER_LIMIT``
    boxes (each a pixel or less by then) the boxes are one embedded image; the SVG still parses, and the axes,
    lines and title stay text and vectors. Fewer boxes are vectors as before."""
    need("matplotlib")
    from memplan.viz import memmap
    from memplan.viz.memmap import render_memory_map

    g = examples.chain(10_500, 256)
    p = memplan.plan(g)
    svg = render_memory_map(g, p, "svg")
    root = ET.fromstring(svg)
    assert len(svg) < 500_000, len(svg)
    assert [el for el in root.iter() if el.tag.endswith("}image")]
    assert b"chain10500: arena" in svg   # the title, as text (a comment beside its glyphs)
    assert len(render_memory_map(g, p, "pdf")) < 500_000
    small = examples.chain(50, 256)
    assert not [el for el in ET.fromstring(render_memory_map(small, memplan.plan(small), "svg")).iter()
                if el.tag.endswith("}image")]
    assert 50 < memmap.RASTER_LIMIT < 10_500


def test_an_empty_title_draws_no_title(tmp_path):
    """``--title ''`` (``title=""``) drew the default title (the code read an empty title as none given); it now
    draws none, as asked. Without ``--title`` the default title is drawn as before."""
    need("matplotlib")
    from memplan.viz.memmap import memory_map_figure

    g = examples.chain(3)
    p = memplan.plan(g)
    assert memory_map_figure(g, p, title="").axes[0].get_title() == ""
    assert memory_map_figure(g, p).axes[0].get_title().startswith("chain3: arena")


def test_the_legend_says_when_streams_are_left_out():
    """A plan of more than 10 streams: the legend listed streams 0..9 and stopped without a word, while the
    colours of the boxes repeated every 10 streams; it now ends with how many streams it leaves out and that the
    colours repeat."""
    need("matplotlib")
    from memplan.generators import fanout_join
    from memplan.viz.memmap import memory_map_figure

    g, schedule = fanout_join(200, streams=16, max_width=16)
    p = memplan.plan(g, schedule=schedule)
    streams = len({s for _, s in p.order})
    assert streams > 10
    labels = [t.get_text() for t in memory_map_figure(g, p).axes[0].get_legend().get_texts()]
    assert labels[:10] == [f"stream {s}" for s in range(10)]
    assert f"+{streams - 10} more streams (colours repeat every 10)" in labels


def test_legend_note_of_one_stream_left_out_is_singular():
    need("matplotlib")
    from memplan.generators import fanout_join
    from memplan.viz.memmap import memory_map_figure

    g, schedule = fanout_join(50, streams=11, max_width=11)
    p = memplan.plan(g, schedule=schedule)
    assert len({s for _, s in p.order}) == 11
    labels = [t.get_text() for t in memory_map_figure(g, p).axes[0].get_legend().get_texts()]
    assert "+1 more stream (colours repeat every 10)" in labels


def test_without_matplotlib_draw_says_so_before_reading_the_graph(tmp_path, capsys, monkeypatch):
    """``memplan draw`` without matplotlib loaded and verified the graph and plan first (minutes for a large graph)
    and named the missing extra only then; a broken graph file was reported instead. The missing matplotlib is
    now the first thing said, with the output's own checks, before any input is read."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoMatplotlib(), *sys.meta_path])
    g, p = tmp_path / "g.json", tmp_path / "p.json"
    g.write_text("{ not json")
    p.write_text("{ not json")
    assert main(["draw", str(g), str(p), "-o", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "memplan[plot]" in err, err


def _degenerate() -> dict[str, tuple[memplan.Graph, memplan.Plan]]:
    """Plans at the edges: no nodes, zero-byte tensors, one tensor, offsets at 2**62, many streams, many devices."""
    from memplan.generators import fanout_join

    out = {}
    g = GraphBuilder("empty").build()
    out["empty"] = (g, memplan.plan(g))
    b = GraphBuilder("zero")
    b.input("x", 0)
    b.node("n", "OP", ["x"], b.output("y", 0))
    g = b.build()
    out["zero bytes"] = (g, memplan.plan(g))
    b = GraphBuilder("one")
    b.input("x", 16)
    g = b.build()
    out["one tensor"] = (g, memplan.plan(g))
    g = examples.chain(4, 1024)
    doc = memplan.plan(g).to_dict()
    for t in doc["tensors"]:
        t["offset"] = None if t["offset"] is None else t["offset"] + 2**62
    doc["arena_bytes"] += 2**62
    out["2**62"] = (g, memplan.plan_from_dict(doc))
    g, schedule = fanout_join(300, streams=64, max_width=64)
    out["many streams"] = (g, memplan.plan(g, schedule=schedule))
    split = memplan.plan_graph(examples.chain(40, 1024), devices=24)
    out["24 devices"] = (split.graph, split.plan)
    out["views"] = (examples.views_inplace(), memplan.plan(examples.views_inplace(), streams=2))
    return out


def test_degenerate_plans_render_well_formed():
    """(Held already; pinned here.) Each plan at the edges is safe, and its trace and SVG memory map parse; the
    trace's live bytes stay within the arena of their device, and rendering twice gives the same bytes."""
    need("matplotlib")
    from memplan.viz.memmap import render_memory_map
    from memplan.viz.trace import trace_json

    for what, (g, p) in _degenerate().items():
        memplan.verify(g, p)
        text = trace_json(g, p)
        assert text == trace_json(g, p), what
        arenas = list(p.device_arena_bytes) if p.devices > 1 else [p.arena_bytes]
        live = [e["args"]["live"] for e in json.loads(text)["traceEvents"] if e["ph"] == "C"]
        assert all(0 <= v <= max(arenas) for v in live), what
        svg = render_memory_map(g, p, "svg")
        assert svg == render_memory_map(g, p, "svg"), what
        ET.fromstring(svg)
        assert describe(p)
