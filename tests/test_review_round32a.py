"""Review of round 32's viz and bench changes: memory maps drawn from several threads, a matplotlibrc naming a
font the machine lacks, and the bench's second eager-graph reading failing.

Each test names the input, what happened, and what happens now.
"""

from __future__ import annotations

import logging
import threading
import uuid

from needs import need

import memplan
from memplan import examples


def test_memory_maps_drawn_from_two_threads_leave_the_callers_settings(monkeypatch):
    """Two threads drawing at once (a server rendering plans): each entered ``_drawing_style`` saving the
    rcParams it found, so the one that left last put back the other's matplotlib defaults for good
    (``lines.linewidth`` 7.0 set by the program came back 1.5, ``svg.hashsalt`` stayed 'memplan') and pictures
    were drawn under half-restored settings (other bytes). The two are forced into that order here: the first
    leaves while the second is inside. Now draws take turns, and the settings and bytes are the caller's and
    the single-threaded ones."""
    matplotlib = need("matplotlib")
    from memplan.viz import memmap

    g = examples.bundled()["qkv"]
    p = memplan.plan(g, streams=3)
    monkeypatch.setitem(matplotlib.rcParams, "lines.linewidth", 7.0)
    want = memmap.render_memory_map(g, p, "svg")

    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()
    figure = memmap._figure

    def interleaved(*args, **kw):
        if threading.current_thread().name == "first":
            first_in.set()
            second_in.wait(0.5)      # (with the fix the second waits for the first: no meeting)
        else:
            second_in.set()
            first_done.wait(10)      # leave only after the first thread has left its drawing
        return figure(*args, **kw)

    monkeypatch.setattr(memmap, "_figure", interleaved)
    out: dict[str, bytes] = {}
    errors: list[BaseException] = []

    def draw(name: str) -> None:
        try:
            fig = memmap.memory_map_figure(g, p)
            if name == "first":
                first_done.set()
            out[name] = fig is not None and memmap.render_memory_map(g, p, "svg")
        except BaseException as exc:   # (surfaced below)
            errors.append(exc)
            first_done.set()

    first = threading.Thread(target=draw, args=("first",), name="first")
    first.start()
    first_in.wait(10)
    second = threading.Thread(target=draw, args=("second",), name="second")
    second.start()
    first.join(60)
    second.join(60)
    assert not errors, errors
    assert matplotlib.rcParams["lines.linewidth"] == 7.0
    assert matplotlib.rcParams["svg.hashsalt"] is None
    assert out == {"first": want, "second": want}


def test_a_missing_font_is_said_once(monkeypatch, caplog):
    """A matplotlibrc whose ``font.family`` names a font this machine lacks (the fonts are the one setting a
    memory map keeps): ``memplan draw -q`` printed "findfont: Font family 'X' not found." for every text laid
    out, hundreds of lines on stderr for one picture. Now once in the process, and the picture is drawn in
    matplotlib's fallback font."""
    matplotlib = need("matplotlib")
    from memplan.viz.memmap import render_memory_map

    font = f"NoSuchFont{uuid.uuid4().hex}"   # (matplotlib caches lookups: a name no earlier test asked for)
    monkeypatch.setitem(matplotlib.rcParams, "font.family", [font])
    g = examples.bundled()["qkv"]
    p = memplan.plan(g, streams=3)
    with caplog.at_level(logging.WARNING, logger="matplotlib.font_manager"):
        for fmt in ("png", "svg"):
            assert render_memory_map(g, p, fmt)
    said = [r for r in caplog.records if font in r.getMessage()]
    assert len(said) == 1, len(said)


def test_bench_second_eager_graph_reading_that_fails_is_recorded():
    """``runtime.aten.bench``: torch's eager graph is timed again after the memplan modes; a replay failing
    there (a CUDA error left by a mode, out of memory) was raised out of ``bench_model``, and the model's
    record, every memplan mode measured before it included, became one ``error`` line. Now it is
    ``eager_graph_after_error`` beside the rest, as a failing first reading is, and the table shows '–'."""
    from runtime.aten import bench

    class Broken:
        def replay(self):
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore")

    rec = {"model": "m", "eager_graph_ms": 1.8, "memplan_1": {"ms": 2.0, "arena_bytes": 1 << 20}}
    said: list[str] = []
    bench._time_graph(None, "cpu", Broken(), rec, "m", said.append, after=True)
    assert rec["eager_graph_after_error"] == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert "eager_graph_after_ms" not in rec and said and "m: eager graph (after memplan) failed" in said[0]
    bench._derive(rec)
    assert rec["memplan_1"]["speedup_vs_eager_graph"] == 0.9
    assert "speedup_vs_eager_graph_after" not in rec["memplan_1"]
    assert "| 1.800 / – |" in bench.table([rec])

    class Works:
        def replay(self):
            return None

    bench._time_graph(None, "cpu", Works(), rec, "m", said.append, after=True)
    assert rec["eager_graph_after_ms"] > 0


def test_bench_table_says_what_was_not_measured():
    """``runtime.aten.bench``'s table: sizes no run measured were printed as 0.0 MiB, so the CPU smoke run
    (``--device cpu --quick``: torch's peak is a CUDA statistic, None) said torch's peak was 0.0 MiB, and a
    model that failed (``{"model", "error"}``) or a mode that failed said its arenas were 0.0 MiB; they are
    '–' as every other cell not measured is. A measured size is printed as before."""
    from runtime.aten import bench

    cpu = {"model": "cpu", "eager_ms": 180.0, "torch_peak_activation_bytes": None,
           "memplan_1": {"ms": 330.0, "arena_bytes": 90112, "streams": 1, "copies_per_call": 13},
           "memplan_auto": {"error": "RuntimeError: x"}, "memplan_budget": {"ms": 331.0, "arena_bytes": 0}}
    failed = {"model": "broken", "error": "RuntimeError: y"}
    gpu = {"model": "gpu", "torch_peak_activation_bytes": 3 << 20, "memplan_1": {"ms": 1.0, "arena_bytes": 1 << 21}}
    header, _, *rows = bench.table([cpu, failed, gpu]).splitlines()
    cols = [c.strip() for c in header.strip("|").split("|")]
    by = {r[0]: dict(zip(cols, r)) for r in ([c.strip() for c in row.strip("|").split("|")] for row in rows)}
    arenas, peak = "arena 1s / auto / budget MiB", "torch peak MiB"
    assert (by["cpu"][arenas], by["cpu"][peak]) == ("0.1 / – / 0.0", "–")   # (a real 0-byte arena is 0.0)
    assert (by["broken"][arenas], by["broken"][peak]) == ("– / – / –", "–")
    assert (by["gpu"][arenas], by["gpu"][peak]) == ("2.0 / – / –", "3.0")


def test_bench_budget_mode_without_a_one_stream_arena_is_an_error(monkeypatch):
    """``runtime.aten.bench``: the budget mode plans ``streams="auto"`` with ``memory_budget`` = the 1-stream
    arena; where the 1-stream mode failed, that arena was None, and ``memory_budget=None`` is no budget: the
    "budget" row was a second auto run under the budget's name. Now that mode is an error saying why (and the
    table shows '–' for it)."""
    torch = need("torch")
    import runtime.aten
    import runtime.aten.program
    from runtime.aten import bench
    from runtime.aten.bench_models import BenchModel

    module = torch.nn.Linear(4, 4).eval()
    monkeypatch.setattr(bench, "build", lambda *a, **k: BenchModel("tiny", module, (torch.randn(2, 4),)))

    class Program:
        graph = type("G", (), {"nodes": [1, 2]})()

    monkeypatch.setattr(runtime.aten.program, "load_program", lambda *a, **k: Program())
    calls: list[dict] = []

    def compile_fails_for_one_stream(*args, **kw):
        calls.append(kw)
        raise RuntimeError(f"no plan for streams={kw['streams']}")

    monkeypatch.setattr(runtime.aten, "compile", compile_fails_for_one_stream)
    rec = bench.bench_model(torch, "tiny", "cpu", True, False, lambda msg: None)
    assert rec["memplan_1"] == {"error": "RuntimeError: no plan for streams=1"}
    assert [c.get("memory_budget", "unset") for c in calls] == ["unset", "unset"]   # no budget-less "budget" run
    assert "memplan_1 failed" in rec["memplan_budget"]["error"]
