"""Hostile input, round 23: the library API from Python.

Stream caps beyond what a schedule may hold, a user's progress callback that raises, and hostile graph and
plan documents. Each test names the input, what memplan did with it, and what it does now.
"""

from __future__ import annotations

import pytest

import memplan
from memplan import GraphBuilder
from memplan.optimize import optimize


def _wide(n: int) -> memplan.Graph:
    """``n`` independent nodes reading one input: as many streams as nodes could run at once."""
    b = GraphBuilder(f"wide{n}")
    b.input("x", 256)
    for i in range(n):
        b.node(f"n{i}", "UNARY", ["x"], b.output(f"y{i}", 256), cost=10.0)
    return b.build()


@pytest.mark.parametrize("bad", [1025, 10 ** 9, 2 ** 63, 2 ** 100, 0, -1, 2.0, True, "4", None])
def test_graph_optimize_max_streams_is_bounded_like_plan_streams(bad):
    """``graph_optimize(g, 2000)`` on a graph of 1100 parallel nodes returned a Schedule on 1100 streams,
    stream ids a Schedule may not hold (0..1023): ``plan(g, schedule=...)`` then refused "node 'n1024':
    stream 1024", a node the caller never chose. ``max_streams`` is now 1..1024, as ``plan(streams=)``."""
    g = _wide(3)
    with pytest.raises(memplan.ScheduleError, match=r"max_streams must be an integer in 1\.\.1024"):
        memplan.graph_optimize(g, bad)
    with pytest.raises(memplan.ScheduleError, match="max_streams"):
        optimize(g, bad)


def test_the_largest_stream_cap_gives_a_schedule_plan_accepts():
    from memplan.schedule import check_schedule

    g = _wide(1030)
    sched = memplan.graph_optimize(g, 1024)
    assert sched.num_streams == 1024
    check_schedule(g, sched)   # what plan(g, schedule=sched) checks first


def test_llama_config_layers_are_bounded():
    """``examples.llama(LlamaConfig(layers=10**9))`` built ~23 nodes per layer until memory ran out (the CLI's
    ``--layers`` stopped at 1024, the library did not): now a GraphError naming the field, on construction."""
    from memplan import argtypes, examples

    for bad in (1025, 10 ** 9, 2 ** 63):
        with pytest.raises(memplan.GraphError, match=r"LlamaConfig\.layers must be at most 1024"):
            examples.LlamaConfig(layers=bad)
    assert examples.LlamaConfig(layers=1024).layers == 1024
    assert argtypes.MAX_LAYERS == examples.MAX_LAYERS


class _Boom(Exception):
    """What a user's callback raises: its own type, which memplan must neither swallow nor wrap."""


def _raising(*args):
    raise _Boom("the caller's own failure")


@pytest.mark.parametrize("solver,caller", [("search", "search solver"), ("cpsat", "cpsat solver")])
def test_a_progress_callback_that_raises_propagates_with_a_note(solver, caller):
    """A ``progress`` that raised came out bare from deep inside the solver (CP-SAT's solution callback, the
    search's round loop), its traceback through their internals and nothing saying it was the progress
    callback. Now the same exception propagates, noted (as a cost model's ``node_us`` error is)."""
    from memplan.benchmarks.scale import random_dag

    g = random_dag(100, seed=1)   # serially, the default's plan (where a named solver starts) ends above the bound
    with pytest.raises(_Boom, match="the caller's own failure") as info:
        memplan.plan(g, solver=solver, time_limit=2, progress=_raising)
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1 and "progress callback _raising" in notes[0] and caller in notes[0], notes


def test_an_import_progress_that_raises_propagates_with_a_note():
    from needs import need

    onnx = need("onnx")
    from onnx import TensorProto, helper

    from memplan.importers.onnx import import_onnx

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "m", [x], [y])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert onnx is not None
    with pytest.raises(_Boom) as info:
        import_onnx(model, progress=_raising)
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1 and "progress callback _raising" in notes[0] and "import_onnx" in notes[0], notes


@pytest.mark.parametrize("kw,words", [
    (dict(ladder_rungs=10 ** 9), "ladder_rungs must be an integer in 0..1024"),   # a billion tries per round
    (dict(ladder_rungs=1.5), "ladder_rungs"),                  # range(1.5): a TypeError deep in the search
    (dict(restart_nodes=0), "restart_nodes"), (dict(nodes_per_second=-1), "nodes_per_second"),
    (dict(nodes_per_second=10 ** 30), "nodes_per_second"),
    (dict(preorders=("WAQ",)), "'WAQ' is not a preorder"),     # 'Q' was skipped: index order, silently
    (dict(preorders=("WW",)), "'WW' is not a preorder"),
    (dict(preorders=()), "preorders must be a tuple of 1..16"),  # searched nothing until the wall clock
    (dict(preorders="WAT"), "preorders must be a tuple"),        # three one-letter preorders
    (dict(preorders=("WAT", "WAT")), "twice"),
    (dict(restart_jitter=float("nan")), "restart_jitter"), (dict(restarts="no"), "restarts must be True or False"),
])
def test_search_params_refuse_values_the_search_would_misuse(kw, words):
    from memplan.solvers import SearchParams

    with pytest.raises(memplan.SolverError, match=words):
        SearchParams(**kw)


def test_search_params_keep_valid_values():
    from memplan.solvers import SearchParams

    p = SearchParams(preorders=["TAW", "Z"], ladder_rungs=0, restart_jitter=0)
    assert p.preorders == ("TAW", "Z") and p.ladder_rungs == 0
    with pytest.raises(memplan.OptionError, match="'ladder_rung'.*'ladder_rungs'"):
        SearchParams(ladder_rung=3)


@pytest.mark.parametrize("kw,words", [
    (dict(search={"ladder_rungs": 3}), "search must be a memplan SearchParams, not dict"),   # AttributeError
    (dict(objective="max"), "objective must be one of minimize, fit"),     # was a silent minimise
    (dict(warm_start=[0, 0]), "warm_start must be a memplan Solution"),  # AttributeError in the solver
])
def test_solve_options_refuse_mistyped_fields(kw, words):
    from memplan.solvers import SolveOptions

    with pytest.raises(memplan.SolverError, match=words):
        SolveOptions(**kw)


def test_solve_options_take_an_objective_by_name():
    from memplan.solvers import Objective, SolveOptions

    assert SolveOptions(objective="fit").objective is Objective.FIT


def test_a_warm_start_that_is_no_packing_is_named():
    """A caller's warm start whose buffers overlap (arena below every real packing) became the plan to beat,
    was returned, and the final check blamed "a solver bug" under the caller's own solver name."""
    import numpy as np

    from memplan import BufferProblem, Solution
    from memplan.solvers import SolveOptions, solve

    p = BufferProblem(sizes=[16, 16], lower=[0, 0], upper=[2, 2], names=("a", "b"))
    lie = Solution(np.array([0, 0]), 16, "mine")
    for solver in ("search", "cpsat"):
        with pytest.raises(memplan.SolverError, match="warm_start is no packing of this problem.*'a' and 'b'"):
            solve(p, solver, SolveOptions(time_limit=1, warm_start=lie))


def _symbolic_onnx():
    from needs import need

    need("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "m", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_import_onnx_takes_numpy_integers_and_names_unknown_options():
    """``import_onnx(m, batch=np.int64(3))`` and ``dims={"N": np.int64(3)}`` were refused ("is not a
    non-negative integer"), where every other entry point takes a numpy integer as the int it equals; a
    misspelt ``import_onnx(m, bach=3)`` was Python's bare TypeError, not an OptionError naming ``batch``."""
    import numpy as np

    from memplan.importers import import_onnx

    m = _symbolic_onnx()
    for kw in (dict(batch=np.int64(3)), dict(dims={"N": np.int64(3)}), dict(batch=3)):
        g = import_onnx(m, **kw)
        assert g.tensor("x").size == 48 and type(g.tensor("x").size) is int
    with pytest.raises(memplan.OptionError, match="'bach'.*did you mean 'batch'"):
        import_onnx(m, bach=3)


@pytest.mark.parametrize("bad", ["no", 0, None, 1.0])
def test_save_plan_timings_must_be_a_bool(tmp_path, bad):
    """``save_plan(p, path, timings="no")`` wrote the solver's seconds (any non-empty text is true), breaking
    the byte-identical output the caller asked to keep; ``None`` and 0 dropped them. Nothing is written now."""
    import handgraphs as H

    p = memplan.plan(H.diamond())
    path = tmp_path / "p.json"
    with pytest.raises(memplan.PlanFormatError, match="timings must be True or False"):
        memplan.save_plan(p, str(path), timings=bad)
    assert not path.exists()
    memplan.save_plan(p, str(path), timings=False)
    assert "seconds" not in path.read_text()


def test_from_torch_names_an_unknown_option():
    """``memplan.from_torch(m, x, alignmnet=64)`` was Python's TypeError ("unexpected keyword argument"),
    checked only after torch was imported; now an OptionError naming the nearest option, before anything."""
    with pytest.raises(memplan.OptionError, match="from_torch.*'alignmnet'.*did you mean 'alignment'"):
        memplan.from_torch(object(), (), alignmnet=64)


@pytest.mark.parametrize("kind", ["SolverError", "BudgetError"])
def test_auto_does_not_swallow_a_progress_callbacks_memplan_error(kind, monkeypatch):
    """``auto`` gives up on an exact solver that raises a SolverError or BudgetError: a progress callback that
    raised one (its own nested planning failing) was swallowed, and its message written into the returned
    plan's solver block as ``search_error`` / ``cpsat_error``. Now it propagates as itself."""
    from memplan.generators import fanout_join
    from memplan.solvers import auto

    monkeypatch.setattr(auto, "POLISH_BUFFERS", 0)   # (the default's small search proves this graph: no exact solver)
    monkeypatch.setattr(auto, "POLISH_WIDE_BUFFERS", 0)   # (round 59: its gap-gated tier too)
    g, _ = fanout_join(30, seed=1)
    err = getattr(memplan, kind)("the caller's own failure")

    def progress(msg: str) -> None:
        raise err

    with pytest.raises(getattr(memplan, kind)) as info:
        memplan.plan(g, solver="auto", time_limit=2, progress=progress)
    assert info.value is err and "progress callback" in info.value.__notes__[0]


def test_solve_table_passes_a_progress_callbacks_error_on_as_itself(tmp_path):
    """``io.minimalloc.solve_table`` renamed every SolverError by the CSV file, rebuilding it: a progress
    callback's own error lost its identity (and any subclass its type)."""
    from problems import random_intervals

    from memplan.io.minimalloc import read_csv, solve_table
    from memplan.solvers import SolveOptions

    class Mine(memplan.SolverError):
        def __init__(self) -> None:
            super().__init__("mine")

    p = random_intervals()   # a search that reports progress before it ends
    lines = ["id,lower,upper,size"] + [f"b{i},{lo},{hi},{size}" for i, (lo, hi, size)
                                       in enumerate(zip(p.lower.tolist(), p.upper.tolist(), p.sizes.tolist()))]
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n")
    table = read_csv(str(path))
    err = Mine()

    def progress(msg: str) -> None:
        raise err

    with pytest.raises(Mine) as info:
        solve_table(table, None, solver="search", options=SolveOptions(time_limit=2, progress=progress))
    assert info.value is err
