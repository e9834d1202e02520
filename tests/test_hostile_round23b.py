"""Hostile input, round 23b: the library API from Python.

A warm start that claims a bound, bad arguments to the show/viz helpers, cost hooks that raise, the ONNX
importer's library wording, and more devices than a graph has nodes. Each test names the input, what
memplan did with it, and what it does now.
"""

from __future__ import annotations

import pytest

import memplan

#: greedy and size both pack these six buffers in 288 bytes; the optimum (and the interval bound) is 272
_SIX = dict(sizes=[112, 48, 112, 80, 80, 48], lower=[4, 1, 5, 1, 2, 3], upper=[7, 4, 8, 2, 5, 6])


@pytest.mark.parametrize("solver", ["search", "cpsat", "auto"])
def test_a_warm_starts_claimed_bound_is_never_trusted(solver):
    """``SolveOptions(warm_start=s)`` with ``s.info["bound"]`` far above the optimum: search and cpsat took the
    claim as proven, stopped at once and called greedy's 288-byte packing OPTIMAL (cpsat reported a bound of
    10**9, above its own arena). The status and bound now rest on what the library proved: the 272 packing."""
    if solver == "cpsat":
        from needs import need

        need("ortools")
    from memplan import BufferProblem, Solution
    from memplan.solvers import SolveOptions, Status, solve
    from memplan.solvers.greedy import solve as greedy

    p = BufferProblem(**_SIX)
    g = greedy(p, SolveOptions())
    assert g.arena == 288 and p.lower_bound == 272
    lie = Solution(g.offsets, g.arena, "mine", Status.OPTIMAL, 10 ** 9, {"bound": 10 ** 9, "gap": 0.0})
    sol = solve(p, solver, SolveOptions(time_limit=1, warm_start=lie))
    assert sol.lower_bound <= 272 and sol.info["bound"] <= 272
    assert sol.status != Status.OPTIMAL or sol.arena == 272
    assert sol.arena == 272   # (the exact solvers find it well within their budget)


def _diamond_plan():
    from memplan.examples import diamond

    g = diamond()
    return g, memplan.plan(g)


@pytest.mark.parametrize("top", [None, "3", 2.5, -1, True, [1]])
def test_describe_names_a_bad_top(top):
    """``memplan.show.describe(plan, top=None)`` (or "3", 2.5) was a TypeError from a comparison deep inside;
    ``top=-1`` listed nothing, silently. Now a MemplanError naming ``top``."""
    from memplan.show import describe

    _, p = _diamond_plan()
    with pytest.raises(memplan.MemplanError, match="describe: top must be an integer >= 0"):
        describe(p, top=top)
    assert "largest tensors" in describe(p, top=2) and "largest tensors" not in describe(p, top=0)


def test_show_and_viz_helpers_name_what_is_not_a_graph_or_plan():
    """``describe(graph)``, ``describe(None)``, ``check_pairing(g, None)``, ``render_memory_map(plan, graph)``:
    AttributeErrors ('Graph' object has no attribute 'order'); now memplan's errors naming the function."""
    from memplan.show import describe, human
    from memplan.viz import check_pairing, root_spans

    g, p = _diamond_plan()
    for bad in (None, g, p.to_dict()):
        with pytest.raises(memplan.PlanFormatError, match="describe needs a memplan Plan"):
            describe(bad)
        with pytest.raises(memplan.PlanFormatError, match="check_pairing needs a memplan Plan"):
            check_pairing(g, bad)
    with pytest.raises(memplan.GraphError, match="check_pairing needs a memplan Graph"):
        check_pairing(p, g)
    with pytest.raises(memplan.MemplanError, match="root_spans: x0 gives no position for node 'a'"):
        root_spans(g, p, {}, {}, 0.0, 1.0)
    for bad in (None, "5", float("nan"), True):
        with pytest.raises(memplan.MemplanError, match="human: n must be a number of bytes"):
            human(bad)
    with pytest.raises(memplan.MemplanError, match="too large"):
        human(10 ** 400)   # OverflowError before
    assert human(3072) == "3.00 KiB"


@pytest.mark.parametrize("kw, match", [
    (dict(size=(0, 0)), "size must be"),          # numpy LinAlgError
    (dict(size=(1e9, 5)), "size must be"),        # a pybind11 TypeError from Agg
    (dict(size=None), "size must be"),
    (dict(size=(float("nan"), 3)), "size must be"),
    (dict(time="no"), "time must be True or False"),   # drew the simulated timeline
    (dict(title=5), "title must be a string or None"),
    (dict(sizes=(3, 3)), "unknown option 'sizes' .*did you mean 'size'"),   # Python's TypeError
])
def test_memory_map_options_are_named(kw, match):
    from memplan.viz.memmap import render_memory_map

    g, p = _diamond_plan()
    with pytest.raises(memplan.MemplanError, match=match):
        render_memory_map(g, p, "svg", **kw)


class _Boom(Exception):
    pass


class _RaisingLatency:
    """A cost model whose ``event_us`` is a property that raises (a measured table that failed to load)."""

    def __init__(self, exc: Exception):
        self.exc = exc

    def node_us(self, graph, n):
        return 1.0

    @property
    def event_us(self):
        raise self.exc


class _BadFloat:
    def __float__(self):
        raise _Boom("no float")


class _BadFloatModel:
    event_us = 2.0

    def node_us(self, graph, n):
        return _BadFloat()


def _entry_points():
    from memplan.examples import diamond

    g = diamond()
    p = memplan.plan(g)
    return [lambda m: memplan.plan(g, streams=2, cost_model=m), lambda m: memplan.simulate(g, p, m),
            lambda m: memplan.plan(g, devices=2, cost_model=m), lambda m: memplan.graph_optimize(g, 2, cost_model=m)]


@pytest.mark.parametrize("exc", [_Boom("no latency"), AttributeError("table not loaded")])
def test_an_event_us_property_that_raises_is_named_in_a_note(exc):
    """A cost model's ``event_us`` property that raised came out bare from the protocol's ``isinstance`` (no note:
    nothing named the hook, unlike ``node_us``); one raising AttributeError made the model "have no event_us"
    (a ScheduleError hiding the caller's own error). Both propagate as themselves with a note naming the hook."""
    for call in _entry_points():
        with pytest.raises(type(exc)) as info:
            call(_RaisingLatency(exc))
        assert info.value is exc
        assert any("_RaisingLatency.event_us" in n for n in getattr(exc, "__notes__", ()))
        exc.__notes__ = []


def test_a_run_time_whose_float_raises_is_named_as_node_us():
    """``node_us`` returning an object whose ``__float__`` raises: that error came out bare (only TypeError,
    ValueError and OverflowError were taken as "not a run time"); now it carries node_us's note."""
    for call in _entry_points():
        with pytest.raises(_Boom) as info:
            call(_BadFloatModel())
        assert any("_BadFloatModel.node_us costing node 'a'" in n for n in info.value.__notes__)


def _onnx_model(leading, path=None):
    """x[leading, 4] -> Relu -> y: a symbolic leading dimension ("N") or a fixed one (2)."""
    from needs import need

    onnx = need("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [leading, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [leading, 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "m", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    if path is not None:
        onnx.save(m, str(path))
    return m


@pytest.mark.parametrize("leading, kw, python_words", [
    ("N", {}, "pass dims={'N': VALUE} or batch=N"),
    ("N", dict(dims={"M": 3}), "dims['M']: the model has no symbolic dimension 'M'"),
    ("N", dict(batch=2, dims={"N": 1}), "fixed twice: batch=2 and dims={'N': 1}"),
    (2, dict(batch=8), "batch=8: graph input 'x' has a fixed leading dimension 2"),
    ("N", dict(dims={1: 3}), "dims: key 1 is not a dimension name"),   # taken as the name "1" before
    ("N", dict(dims={"N": -1}), "dims['N']: value -1 is not a non-negative integer"),
])
def test_import_onnx_names_its_python_arguments_not_the_cli_options(leading, kw, python_words):
    """``import_onnx(m)`` on a symbolic model said "pass --dim N=VALUE or --batch N": options of ``memplan
    import``, which a Python caller does not have. The library now names ``dims=``/``batch=``; the classes are
    unchanged (GraphError)."""
    from memplan.importers import import_onnx

    with pytest.raises(memplan.GraphError) as err:
        import_onnx(_onnx_model(leading), **kw)
    assert python_words in str(err.value) and "--" not in str(err.value)


@pytest.mark.parametrize("leading, argv, cli_words", [
    ("N", [], "pass --dim N=VALUE or --batch N"),
    ("N", ["--dim", "M=3"], "--dim M: the model has no symbolic dimension 'M'"),
    ("N", ["--batch", "2", "--dim", "N=1"], "fixed twice: --batch 2 and --dim N=1"),
    (2, ["--batch", "8"], "--batch 8: graph input 'x' has a fixed leading dimension 2"),
])
def test_memplan_import_keeps_naming_its_options(tmp_path, capsys, leading, argv, cli_words):
    from memplan.cli import main

    model = tmp_path / "m.onnx"
    _onnx_model(leading, model)
    assert main(["import", str(model), "-o", str(tmp_path / "g.json"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and cli_words in err and "dims=" not in err


def test_more_devices_than_a_graph_has_stages_are_refused():
    """``plan(llama_tiny, devices=1024)`` (49 nodes) returned a "safe" plan with 988 empty devices (0-byte
    arenas, no stream). More devices than the graph can be cut into is now a ScheduleError naming ``devices``
    and the most it can use, from every entry point; that many is planned with no device empty."""
    from memplan.devices import split_devices
    from memplan.examples import LLAMA_TINY, chain, llama

    g = llama(LLAMA_TINY)
    for call in (lambda n: memplan.plan(g, devices=n), lambda n: memplan.plan_devices(g, n),
                 lambda n: split_devices(g, n)):
        for n in (37, 1024):
            with pytest.raises(memplan.ScheduleError, match=rf"devices={n} is more than graph .*ask for at most 36"):
                call(n)
    p = memplan.plan(g, devices=36)
    assert p.devices == 36 and all(a > 0 for a in p.device_arena_bytes)
    assert sorted(set(p.node_devices)) == list(range(36))
    with pytest.raises(memplan.ScheduleError, match="devices=5 is more than graph 'chain4' can use: it has 4 nodes"):
        memplan.plan(chain(), devices=5)


def test_memplan_plan_refuses_more_devices_than_stages(tmp_path, capsys):
    from memplan.cli import main
    from memplan.examples import LLAMA_TINY, llama

    graph = tmp_path / "g.json"
    memplan.save_graph(llama(LLAMA_TINY), str(graph))
    out, split = tmp_path / "p.json", tmp_path / "s.json"
    assert main(["plan", str(graph), "-o", str(out), "--graph-out", str(split), "--devices", "1024"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--devices 1024" in err and "at most 36" in err
    assert not out.exists() and not split.exists()


def _table():
    from memplan.io.minimalloc import parse_csv

    return parse_csv("id,lower,upper,size\na,0,1,8\nb,0,1,8\nc,1,2,8\n")


@pytest.mark.parametrize("offsets, match", [
    ([0], "offsets must be 3 integers, one per row"),            # wrote a one-row table, silently
    ([0, 8, 0, 16], "offsets must be 3 integers, one per row"),  # the extra offset was dropped, silently
    ([0, 0, 0], "offsets overlap buffers 'a' and 'b'"),          # written as a solution
    ([0, 8, -1], "buffer 'c': offset -1 is not in 0..2\\*\\*63-1"),
    ([0.0, 8.0, 0.0], "offsets must be 3 integers"),
    (None, "offsets must be 3 integers"),                        # TypeError: 'NoneType' object is not iterable
])
def test_format_csv_writes_only_a_packing_of_the_table(offsets, match, tmp_path):
    """``io.minimalloc.format_csv``/``write_csv`` with offsets that are no packing of the table: too few rows
    were written (zip), too many dropped, an overlap written as a solution. Now a SolverError, nothing written."""
    from memplan.io.minimalloc import format_csv, write_csv

    with pytest.raises(memplan.SolverError, match=match):
        format_csv(_table(), offsets)
    with pytest.raises(memplan.SolverError, match=match):
        write_csv(str(tmp_path / "out.csv"), _table(), offsets)
    assert not (tmp_path / "out.csv").exists()
    assert format_csv(_table(), [0, 8, 0]).splitlines()[1:] == ["a,0,1,8,0", "b,0,1,8,8", "c,1,2,8,0"]


def test_csv_readers_name_what_is_not_text_or_a_path(tmp_path):
    """``parse_csv(None)``/``parse_csv(b"...")``: AttributeError/TypeError; ``read_csv(pathlib.Path(...))``: a
    TypeError from the path checks ('PosixPath' is not iterable); ``format_csv(None, ...)``: AttributeError."""
    import pathlib

    from memplan.io.minimalloc import format_csv, parse_csv, read_csv

    for bad in (None, b"id,lower,upper,size\n"):
        with pytest.raises(memplan.InputFormatError, match="parse_csv needs the CSV as text"):
            parse_csv(bad)
    with pytest.raises(memplan.InputFormatError, match="format_csv needs a CsvTable"):
        format_csv(None, [0])
    f = tmp_path / "t.csv"
    f.write_text("id,lower,upper,size\na,0,1,8\n")
    assert read_csv(pathlib.Path(f)).ids == ("a",) and read_csv(pathlib.Path(f)).path == str(f)
    with pytest.raises(memplan.InputFormatError, match="expected a file path"):
        read_csv(5)
