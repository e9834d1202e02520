"""Round 67 (planio): the GC pause with threads, int subclasses as sizes, and the CLI's options against hostile values.

- ``_gc.paused`` turned the process-wide collector off and on: a ``gc.disable()`` of another thread during a paused
  read was undone at its end (a CUDA graph capture's ``runtime.cuda_util._gc_held`` begun during a load then ran
  with the collector on), and two threads' pauses overlapping lost the later one's. It now holds the first
  generation's threshold at 0, shared by every running pause, and leaves the on/off switch to the program.
"""

from __future__ import annotations

import gc
import json
import os
import threading

import pytest

import memplan
from memplan import _gc, examples


@pytest.fixture
def gc_state():
    """The collector on with its thresholds as found, and put back after the test whatever it did."""
    was, thresholds = gc.isenabled(), gc.get_threshold()
    gc.enable()
    yield thresholds
    gc.set_threshold(*thresholds)
    (gc.enable if was else gc.disable)()


def _in_thread(fn, *args) -> threading.Thread:
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def _collections_during(fn) -> int:
    """How many automatic collections started while ``fn`` ran, in this thread (``gc.callbacks``)."""
    me = threading.get_ident()
    runs = []

    def seen(phase, info):
        if phase == "start" and threading.get_ident() == me:
            runs.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        fn()
    finally:
        gc.callbacks.remove(seen)
    return len(runs)


def _churn() -> None:
    """Enough container allocations (kept alive) to set off several automatic gen-0 collections."""
    keep = [[i] for i in range(20_000)]
    assert len(keep) == 20_000


def test_another_threads_gc_disable_during_a_pause_stands(gc_state):
    """Thread B turns the collector off while thread A is inside a paused call: after A's call it is still off
    (it was turned back on: the old pause's ``gc.enable()`` at its end)."""
    inside, done = threading.Event(), threading.Event()

    @_gc.paused
    def read():
        inside.set()
        assert done.wait(30)

    t = _in_thread(read)
    assert inside.wait(30)
    gc.disable()   # (thread B: this one)
    done.set()
    t.join(30)
    assert not gc.isenabled()
    gc.enable()
    assert gc.get_threshold() == gc_state


def test_a_capture_hold_begun_during_a_load_keeps_the_collector_off(gc_state):
    """``runtime.cuda_util._gc_held`` (a CUDA graph capture) begun in one thread while a load runs paused in another:
    the capture ran with the collector on once the load ended (the pause's ``gc.enable()``; the hold had found it
    off, so it did not turn it off itself)."""
    from runtime.cuda_util import _gc_held

    inside, done = threading.Event(), threading.Event()

    @_gc.paused
    def load():
        inside.set()
        assert done.wait(30)

    t = _in_thread(load)
    assert inside.wait(30)
    with _gc_held():
        done.set()
        t.join(30)
        assert not gc.isenabled()   # the capture's hold stands
    assert gc.isenabled() and gc.get_threshold() == gc_state


def test_overlapping_pauses_of_two_threads_share_one(gc_state):
    """A and B paused at once; A ends first: B's call still runs with no automatic collection (the old pause found
    the collector off in B and left it, and A's end turned it on under B), and after B the thresholds are back."""
    a_in, a_out, b_in, b_go = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    counted = []

    @_gc.paused
    def a():
        a_in.set()
        assert b_in.wait(30)

    @_gc.paused
    def b():
        b_in.set()
        assert b_go.wait(30)
        counted.append(_collections_during(_churn))

    ta = _in_thread(a)
    assert a_in.wait(30)
    tb = _in_thread(b)
    ta.join(30)
    a_out.set()
    b_go.set()
    tb.join(30)
    assert counted == [0], counted
    assert gc.isenabled() and gc.get_threshold() == gc_state
    assert _collections_during(_churn) > 0   # (the count can fail: outside a pause the churn sets some off)


def test_a_threshold_set_during_a_pause_stands_and_errors_restore(gc_state):
    """Another ``gc.set_threshold`` during the pause is the program's and stays; a pause ended by an exception puts the
    thresholds back; nested pauses end at the outermost; a threshold already 0 (collection off) is left 0."""
    @_gc.paused
    def sets():
        gc.set_threshold(5000, 20, 20)

    sets()
    assert gc.get_threshold() == (5000, 20, 20)
    gc.set_threshold(*gc_state)

    @_gc.paused
    def fails():
        assert gc.get_threshold()[0] == 0
        raise ValueError("x")

    with pytest.raises(ValueError):
        fails()
    assert gc.get_threshold() == gc_state

    @_gc.paused
    def outer():
        fails_inner()
        assert gc.get_threshold()[0] == 0   # still paused after the inner one ended

    @_gc.paused
    def fails_inner():
        pass

    outer()
    assert gc.get_threshold() == gc_state
    gc.set_threshold(0, 10, 10)
    sets_nothing = _gc.paused(lambda: None)
    sets_nothing()
    assert gc.get_threshold() == (0, 10, 10)


def test_a_paused_load_runs_no_collection_and_leaves_the_switch_alone(gc_state, tmp_path):
    """``load_graph`` through the pause: no automatic collection, the on/off switch never touched (a program that had
    the collector off keeps it off; on stays on)."""
    from memplan.io import load_graph

    (tmp_path / "g.json").write_text(json.dumps(examples.chain(5000).to_dict()))
    for on in (True, False):
        (gc.enable if on else gc.disable)()
        assert _collections_during(lambda: load_graph(str(tmp_path / "g.json"))) == 0
        assert gc.isenabled() is on and gc.get_threshold() == gc_state


# ---- int subclasses as sizes ---------------------------------------------------------------------------------------

class _Liar(int):
    """An int subclass whose arithmetic, comparisons and conversions lie: only its value (what ``json`` writes, and
    what ``operator.index`` of an int subclass returns) is the number."""

    def __add__(self, other):
        return 0

    __radd__ = __sub__ = __rsub__ = __add__

    def __mul__(self, other):
        return 1

    __rmul__ = __floordiv__ = __rfloordiv__ = __mod__ = __mul__

    def __lt__(self, other):
        return True

    __le__ = __lt__

    def __gt__(self, other):
        return False

    __ge__ = __gt__

    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0

    def __index__(self):
        return 7

    def __int__(self):
        return 9

    def __neg__(self):
        return _Liar(0)


def test_int_subclass_sizes_are_their_values_everywhere():
    """CONTRACT.md: a size is a whole number of bytes. An int subclass given for sizes, offsets, the alignment and
    option values (a builder, ``graph_from_dict``, ``plan()``'s options): the plan is byte for byte the one of the
    plain values, and every integer it holds is a plain int (its arithmetic never reached the planner)."""
    g = examples.qkv_attention()
    doc = g.to_dict()
    liar = json.loads(json.dumps(doc))
    liar["alignment"] = _Liar(doc.get("alignment", 256))
    for t in liar["tensors"]:
        t["size"] = _Liar(t["size"])
        if "view_offset" in t:
            t["view_offset"] = _Liar(t["view_offset"])
    for n in liar["nodes"]:
        if isinstance(n.get("cost"), int):
            n["cost"] = _Liar(n["cost"])
    lg = memplan.graph_from_dict(liar)
    assert all(type(t.size) is int and type(t.view_offset) is int for t in lg.tensors)
    assert type(lg.alignment) is int
    want = memplan.plan(g, streams=2, memory_budget=10 ** 9, max_events=8).to_json()
    got = memplan.plan(lg, streams=_Liar(2), memory_budget=_Liar(10 ** 9), max_events=_Liar(8)).to_json()
    assert got == want
    p = memplan.plan(lg)
    assert all(type(o) in (int, type(None)) and type(s) is int for _, o, s in p.tensors)


# ---- every CLI option with hostile values: a bounded hypothesis over argv ----------------------------------------

#: hostile option values: NaN and infinities, negative, huge, bools, empty and blank strings, other digits, units
_VALUES = ["0", "1", "2", "-1", "-0", "+3", "nan", "NaN", "inf", "-inf", "1e400", "1e-400", "1e308", "1.5", "2**63",
           "9223372036854775807", "9223372036854775808", "99999999999999999999999999", "", " ", "true", "False",
           "None", "0x10", "1_000", "\u0664", "4G", "64M", "1K", "1,2", ",", "auto", "-q", "--", "x", "\x00",
           "\u00e9\u0301", "1e3", "0.0001"]
#: paths an output option may be given: the inputs themselves (by name, by another spelling, by a link), a directory,
#: a device, a missing directory, stdout, the empty string, and a fresh file
_OUTS = ["out.json", "out.json", "g.json", "./g.json", "p.json", "link.json", "hard.json", "d", "d/", "/dev/full",
         "/dev/null", "nodir/x.json", "-", "", "out.png", "out.svg"]
#: options of each command: name -> values (None: a flag)
_PLAN_OPTS = {"--solver": ["greedy", "size", "auto", "search", "ggml", "cpsat", "GREEDY", ""], "--time-limit": _VALUES,
              "--seed": _VALUES, "--workers": _VALUES, "--timings": None, "--progress": None,
              "--streams": _VALUES, "--memory-budget": _VALUES, "--max-events": _VALUES, "--fused-groups": None,
              "--event-us": _VALUES, "--devices": _VALUES, "--device-capacity": _VALUES, "--graph-out": _OUTS,
              "--alignment": _VALUES + ["256", "512", "128", "4096", "3"]}
_BENCH_OPTS = {"--solvers": ["greedy", "greedy,greedy", "", ",", "nope", "greedy,size"], "--time-limit": _VALUES,
               "--only": ["", ",", "g", "g.json", "x,x"], "--layers": _VALUES, "--streams": _VALUES,
               "--sizes": _VALUES, "--json": _OUTS, "--corpus": ["", ",", "nope", "examples,examples"]}


def _argv(draw) -> tuple[list[str], list[str]]:
    """(argv, the output paths it names)."""
    from hypothesis import strategies as st

    cmd = draw(st.sampled_from(["plan", "plan", "plan", "verify", "show", "simulate", "trace", "draw", "bench"]))
    outs: list[str] = []
    if cmd == "plan":
        out = draw(st.sampled_from(_OUTS))
        graph = draw(st.sampled_from(["g.json", "g.json", "link.json", "hard.json", "p.json", "d"]))
        argv, outs = ["plan", graph, "-o", out, "-q"], [out]
        names = draw(st.lists(st.sampled_from(sorted(_PLAN_OPTS)), max_size=3))
        if "--solver" not in names:
            argv += ["--solver", "greedy"]   # (auto's search and cpsat are bounded, but slow on a shared machine)
        if "--time-limit" not in names:
            argv += ["--time-limit", "2"]
        for name in names:
            values = _PLAN_OPTS[name]
            argv += [name] if values is None else [name, draw(st.sampled_from(values))]
            if name == "--graph-out":
                outs.append(argv[-1])
        return argv, outs
    if cmd == "verify":
        return ["verify", "g.json", draw(st.sampled_from(["p.json", "g.json", "link.json"]))] + \
            draw(st.sampled_from([[], ["--fused-groups"]])), outs
    if cmd == "show":
        argv = ["show", draw(st.sampled_from(["p.json", "g.json"]))]
        if draw(st.booleans()):
            argv += ["--top", draw(st.sampled_from(_VALUES))]
        if draw(st.booleans()):
            argv += ["--graph", draw(st.sampled_from(["g.json", "p.json", "link.json", "d", ""]))]
        return argv, outs
    if cmd == "simulate":
        return ["simulate", "g.json", "p.json", "--event-us", draw(st.sampled_from(_VALUES))], outs
    if cmd in ("trace", "draw"):
        out = draw(st.sampled_from(_OUTS))
        argv = [cmd, "g.json", "p.json", "-o", out, "-q"]
        if cmd == "draw" and draw(st.booleans()):
            argv += ["--title", draw(st.sampled_from(["", "\x00", "a\nb", "$x$", "\\", "{}"]))]
        return argv, [out]
    argv = ["bench", "planners", "--graph", draw(st.sampled_from(["g.json", "g.json", "link.json", "d", "p.json"])),
            "--solvers", "greedy"]
    for name in draw(st.lists(st.sampled_from(sorted(_BENCH_OPTS)), max_size=2, unique=True)):
        if name == "--corpus" or name == "--sizes":   # (hostile spellings only: a real corpus runs for minutes)
            argv += [name, draw(st.sampled_from(["", ",", "nope", "examples,examples"]))]
            continue
        argv += [name, draw(st.sampled_from(_BENCH_OPTS[name]))]
        if name == "--json":
            outs.append(argv[-1])
    return argv, outs


def test_hostile_option_values_and_paths_keep_the_cli_contract(tmp_path, monkeypatch):
    """Every option of ``plan``, ``verify``, ``show``, ``simulate``, ``trace``, ``draw`` and ``bench planners`` with
    hostile values and output paths (an input, a link to it, a directory, /dev/full, a missing directory, '-', ''):
    exit 0 or exit 2 with one ``memplan: error:`` line, never a traceback; the inputs byte for byte unchanged, no
    temporary file left; an output written only by a run that exits 0, and then a plan ``verify`` calls safe."""
    import contextlib
    import io

    from cli_contract import exit_code, leftovers
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from memplan.cli import main

    g = examples.qkv_attention()
    (tmp_path / "g.json").write_text(json.dumps(g.to_dict()))
    (tmp_path / "p.json").write_text(memplan.plan(g, streams=2).to_json())
    (tmp_path / "d").mkdir()
    os.symlink("g.json", tmp_path / "link.json")
    os.link(tmp_path / "g.json", tmp_path / "hard.json")
    inputs = {n: (tmp_path / n).read_bytes() for n in ("g.json", "p.json")}
    monkeypatch.chdir(tmp_path)

    @settings(max_examples=int(os.environ.get("MEMPLAN_ARGV67_EXAMPLES", "200")), deadline=None,
              derandomize=not os.environ.get("MEMPLAN_ARGV67_RANDOM"), suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        argv, outs = _argv(data.draw)
        for n, b in inputs.items():   # (``plan --graph-out p.json`` may replace p.json: it is no input of ``plan``)
            (tmp_path / n).write_bytes(b)
        if not os.path.samefile("hard.json", "g.json"):   # (an output there is a new file, not one through the link)
            os.unlink("hard.json")
            os.link("g.json", "hard.json")
        read = {"g.json" if a in ("link.json", "./g.json", "hard.json") else a for a in argv[1:] if a not in outs} \
            & set(inputs)
        fresh = [o for o in outs if o.startswith("out.")]
        for o in fresh:
            if os.path.exists(o):
                os.unlink(o)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = exit_code(main, argv)
        text = err.getvalue()
        assert "Traceback" not in text and "Traceback" not in out.getvalue(), (argv, text[-2000:])
        assert code in (0, 2), (argv, code, text[-2000:])
        if code == 2:
            lines = text.splitlines()
            assert len(lines) == 1 and lines[0].startswith("memplan: error: "), (argv, text[-2000:])
            assert not any(os.path.exists(o) for o in fresh), (argv, "a failed run wrote an output")
        assert all((tmp_path / n).read_bytes() == inputs[n] for n in read), (argv, "an input changed")
        assert os.path.islink("link.json") and os.path.isdir("d") and os.listdir("d") == [], argv
        assert not leftovers(tmp_path) and not leftovers(tmp_path / "d"), argv
        if code == 0 and argv[0] == "plan" and argv[3] == "out.json" and "--devices" not in argv:
            assert exit_code(main, ["verify", argv[1], "out.json"]) == 0, argv

    run()


class _Quotient(float):
    """A float whose own reflected division lies (taken before ``float``'s: the class is a subclass of float)."""

    def __rtruediv__(self, other):
        return 0.0


def test_cost_model_rates_of_a_float_subclass_are_their_values():
    """``CostModel(flop_per_us=..., hbm_bytes_per_us=...)`` of a float subclass: ``node_us`` divided by it in Python,
    so the class's ``__rtruediv__`` made every estimate the floor (2.0 us for a 290 us matmul) and the schedule of
    ``plan(streams="auto")`` another one, while the model's repr showed the right numbers. Now the values, as plain
    floats: the same run times and the same plan bytes as the plain model's."""
    from memplan.examples import LLAMA_TINY, llama

    doc = llama(LLAMA_TINY).to_dict()
    for n in doc["nodes"]:
        n.pop("cost", None)
    g = memplan.graph_from_dict(doc)
    real = memplan.CostModel(flop_per_us=400.0, hbm_bytes_per_us=30.0, floor_us=2.0, event_us=2.0)
    liar = memplan.CostModel(flop_per_us=_Quotient(400.0), hbm_bytes_per_us=_Quotient(30.0), floor_us=_Quotient(2.0),
                             event_us=_Quotient(2.0))
    assert [liar.node_us(g, i) for i in range(len(g.nodes))] == [real.node_us(g, i) for i in range(len(g.nodes))]
    assert max(real.node_us(g, i) for i in range(len(g.nodes))) > 100   # (the roofline, not the floor, decides)
    assert {type(getattr(liar, k)) for k in ("flop_per_us", "hbm_bytes_per_us", "floor_us", "event_us")} == {float}
    assert memplan.plan(g, streams="auto", cost_model=liar).to_json() == \
        memplan.plan(g, streams="auto", cost_model=real).to_json()
    assert repr(memplan.CostModel(event_us=2)) == "CostModel(event_us=2, hbm_bytes_per_us=3000000.0, " \
        "flop_per_us=400000000.0, floor_us=2.0, use_graph_costs=True)"   # (plain values keep their type)
