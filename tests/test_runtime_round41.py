"""Round 41 (runtime): options and arrays both runtimes took that disagreed with what they run.

- ``runtime.aten.compile(m, x, streams=1, plan=p)`` with ``p`` on 2 streams ran ``p``'s streams where the caller asked
  for one, and a ``memory_budget`` below the given plan's arena (or a ``solver`` / ``time_limit``, which choose a plan
  compile does not make) was ignored, silently. Now refused before the export, naming the option and the plan's
  value; ``streams`` is a cap as for ``memplan.plan``: a plan on at most that many streams (or "auto") is taken.
  ``plan="p.json"`` names ``memplan.load_plan``.
- The pycuda executor (and the emulator, and ``write_weight``) checked a weight or input array by byte count and
  dtype only: a transposed weight (``(64, 32)`` where the graph says ``(32, 64)``, same bytes) ran as the other
  matrix; a wrong dtype was refused without saying either shape; an object array's pointers were copied. Now each
  is refused naming the tensor and the given and the graph's dtype and shape.
- Hostile inputs checked clean (refused naming them already): streams 0, -1, "x", 1.5, True; plans of another graph,
  with an overlapping or misaligned hand-edited offset, with no order entries, with arena size 0; call inputs of
  another shape, dtype or device; unknown keywords; calls after ``.half()`` / ``.to()``.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from needs import need

import memplan
from memplan.errors import BudgetError, ExecutorError, MemplanError
from runtime.emulate import emulate
from runtime.models import llama as L

torch = need("torch")

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class _Branches(torch.nn.Module):
    """Two independent linears joined: ``streams="auto"`` / ``3`` plans them on 2 streams."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = (torch.nn.Linear(8, 8) for _ in range(3))

    def forward(self, x):
        return self.c(torch.relu(self.a(x)) + torch.relu(self.b(x)))


@pytest.fixture(scope="module")
def branches():
    torch.manual_seed(0)
    m = _Branches().eval()
    x = torch.randn(4, 8)
    c = compile(m, (x,), streams=3, cuda_graph=False)
    assert len({s for _n, s in c.plan.order}) == 2   # (the premise: a plan on two streams)
    return m, x, c


# -- 1. ATen compile: planning options that disagree with a given plan -----------------------------------------

def test_streams_one_with_a_two_stream_plan_is_refused_naming_both(branches):
    """Failed before: compiled, and ran the plan's two streams."""
    m, x, c = branches
    with pytest.raises(AtenExecutorError, match=r"streams=1 asks for at most 1 stream, but the given plan "
                                                r"\(of graph '_Branches'\) runs its nodes on 2 streams"):
        compile(m, (x,), streams=1, plan=c.plan, program=c.program, cuda_graph=False)
    with pytest.raises(AtenExecutorError, match=r"streams=None asks for at most 1 stream"):
        compile(m, (x,), streams=None, plan=c.plan, program=c.program, cuda_graph=False)


@pytest.mark.parametrize("streams", ["auto", 2, 3, 1024])
def test_streams_that_allow_the_plan_are_taken(branches, streams):
    """``streams`` is a cap, as for ``memplan.plan``: the plan ``streams=3`` made (2 streams) is taken with 2, 3 or
    "auto", and runs as planned."""
    m, x, c = branches
    again = compile(m, (x,), streams=streams, plan=c.plan, program=c.program, cuda_graph=False)
    assert again.plan is c.plan
    torch.testing.assert_close(again(x), m(x))


def test_a_serial_plan_is_taken_with_any_stream_cap(branches):
    m, x, c = branches
    serial = memplan.plan(c.graph)
    for streams in (1, 3, "auto", None):
        assert compile(m, (x,), streams=streams, plan=serial, program=c.program, cuda_graph=False).plan is serial


def test_a_memory_budget_below_the_given_plans_arena_is_refused(branches):
    """Failed before: the budget was ignored with a plan given."""
    m, x, c = branches
    with pytest.raises(BudgetError, match=rf"memory_budget=100 bytes, but the given plan \(of graph '_Branches'\) "
                                          rf"needs an arena of {c.plan.arena_bytes}"):
        compile(m, (x,), memory_budget=100, plan=c.plan, program=c.program, cuda_graph=False)
    ok = compile(m, (x,), memory_budget=c.plan.arena_bytes, plan=c.plan, program=c.program, cuda_graph=False)
    assert ok.plan is c.plan


@pytest.mark.parametrize("option,value", [("solver", "cpsat"), ("time_limit", 5.0)])
def test_a_solver_or_time_limit_with_a_given_plan_is_refused(branches, option, value):
    """Failed before: ignored (compile plans nothing with a plan given)."""
    m, x, c = branches
    with pytest.raises(AtenExecutorError, match=rf"{option}={value!r} chooses how compile plans, but a plan is given"):
        compile(m, (x,), plan=c.plan, program=c.program, cuda_graph=False, **{option: value})


def test_a_plan_path_is_refused_naming_load_plan(branches, tmp_path):
    m, x, _c = branches
    for path in (str(tmp_path / "missing.json"), tmp_path / "missing.json"):
        with pytest.raises(AtenExecutorError, match=r"plan must be a memplan Plan, not \w+ \(load a plan file with "
                                                    r"memplan.load_plan\(path\)\)"):
            compile(m, (x,), plan=path, cuda_graph=False)


@pytest.mark.parametrize("streams", [0, -1, "x", 1.5, True, "AUTO", 10**6])
def test_bad_stream_counts_are_refused_with_a_plan_too(branches, streams):
    m, x, c = branches
    for plan in (None, c.plan):
        with pytest.raises(MemplanError, match="streams must be an integer in 1..1024 or 'auto'"):
            compile(m, (x,), streams=streams, plan=plan, program=c.program, cuda_graph=False)


def test_hand_edited_plans_are_refused_naming_the_tensor(branches, tmp_path):
    """Checked clean: an offset over a tensor live beside it (verify's rule 3), one off the alignment (rule 4), one
    past the arena unverified (the binding), a plan of another graph (verified or not)."""
    m, x, c = branches
    f = tmp_path / "p.json"
    memplan.save_plan(c.plan, f)
    doc = json.loads(f.read_text())
    entry = {t["id"]: t for t in doc["tensors"]}
    for off, verify, words in ((entry["relu"]["offset"], True, "tensors 'relu' and 'relu_1' overlap"),
                               (entry["relu"]["offset"] + 4, True, "tensor 'relu_1' offset"),
                               (10**9, False, "puts tensor 'relu_1' at")):
        entry["relu_1"]["offset"] = off
        f.write_text(json.dumps(doc))
        with pytest.raises(MemplanError, match=words):
            compile(m, (x,), plan=memplan.load_plan(f), verify=verify, program=c.program, cuda_graph=False)
    other = compile(torch.nn.Linear(8, 8), (x,), cuda_graph=False).plan
    for verify in (True, False):   # (verified, it failed before with "order is missing node 'relu' and 4 more")
        with pytest.raises(MemplanError, match="plan was made for graph 'Linear', not '_Branches' \\(wrong graph"):
            compile(m, (x,), plan=other, verify=verify, program=c.program, cuda_graph=False)


def test_calls_unlike_compiles_are_refused_naming_the_input(branches):
    """Checked clean: another shape, dtype or device, unknown keywords, another nesting, and calls after the
    module's weights were moved (``.half()``, ``.to(float64)``), which name the attribute."""
    m, x, c = branches
    for bad, words in ((torch.randn(5, 8), r"input 'x' is \(5, 8\)"), (x.double(), "torch.float64"),
                       (x.to("meta"), "on meta")):
        with pytest.raises(AtenExecutorError, match=words):
            c(bad)
    with pytest.raises(AtenExecutorError, match="bogus"):
        c(x, bogus=1)
    with pytest.raises(AtenExecutorError, match="do not match the export's"):
        c([x])
    xt = torch.randn(8, 4).t()   # (a non-contiguous input: taken, the right values)
    torch.testing.assert_close(c(xt), m(xt))
    try:
        for move in (lambda: m.half(), lambda: m.to(torch.float64)):
            move()
            with pytest.raises(AtenExecutorError, match=r"attribute _Branches\.\w+\.\w+ is .* now"):
                c(x)
    finally:
        m.float()
    torch.testing.assert_close(c(x), m(x))


# -- 2. the pycuda executor and the emulator: arrays of another shape or dtype -----------------------------------

@pytest.fixture(scope="module")
def tiny():
    cfg = L.config("tiny")
    g = L.build_graph(cfg, "norms")
    return g, memplan.plan(g), L.make_weights(g, cfg, seed=5), L.make_inputs(cfg, seed=6)


def _run_everywhere(monkeypatch, g, plan, weights, inputs, match):
    """The refusal ``match`` from the emulator, the pycuda executor's build and its ``write_weight``/``set_inputs``."""
    import fake_cuda

    with pytest.raises(ExecutorError, match=match):
        emulate(g, plan, weights, inputs)
    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    with pytest.raises(ExecutorError, match=match):
        Executor(g, plan, weights=weights, inputs=inputs)


def test_a_transposed_weight_of_the_right_bytes_is_refused_naming_both_shapes(monkeypatch, tiny):
    """Failed before: ``l0.wk`` given as ``(64, 32)`` (the graph's ``(32, 64)`` transposed, same bytes and dtype)
    ran as the other matrix."""
    g, plan, w, inp = tiny
    bad = {**w, "l0.wk": np.ascontiguousarray(w["l0.wk"].T)}
    match = (r"weight 'l0.wk': shape \(64, 32\) given, the graph says \(32, 64\) \(given: float16 \(64, 32\); "
             r"the graph's: float16 \(32, 64\)\)")
    _run_everywhere(monkeypatch, g, plan, bad, inp, match)
    from runtime.executor import Executor

    ex = Executor(g, plan, weights=w, inputs=inp)
    with pytest.raises(ExecutorError, match=match):
        ex.write_weight("l0.wk", bad["l0.wk"])


def test_a_weight_of_another_dtype_and_shape_names_both(monkeypatch, tiny):
    """``l0.wq`` is float16 (64, 64): a float32 (32, 64) of the same bytes was refused naming the dtypes only."""
    g, plan, w, inp = tiny
    bad = {**w, "l0.wq": np.zeros((32, 64), np.float32)}
    match = (r"weight 'l0.wq': float32 given, the graph says float16 \(given: float32 \(32, 64\); the graph's: "
             r"float16 \(64, 64\)\)")
    _run_everywhere(monkeypatch, g, plan, bad, inp, match)


def test_an_input_of_another_shape_is_refused(monkeypatch, tiny):
    """Failed before: ``inp`` (1, 64) float32 given as (64, 1) was taken (the same bytes). Flat, it is taken: the
    elements in order, as hand-written callers pass them."""
    g, plan, w, inp = tiny
    assert g.tensor("inp").attrs["shape"] == [1, 64]
    bad = {**inp, "inp": inp["inp"].reshape(64, 1)}
    _run_everywhere(monkeypatch, g, plan, w, bad, r"input 'inp': shape \(64, 1\) given, the graph says \(1, 64\)")
    flat, _mem, _addr = emulate(g, plan, w, {**inp, "inp": inp["inp"].reshape(-1)})
    ref, _mem, _addr = emulate(g, plan, w, inp)
    assert all(np.array_equal(flat[k], ref[k]) for k in ref)


def test_an_object_array_is_refused(tiny):
    """Failed before: an object array of the right byte count (``inp``'s 256 bytes: 32 pointers) passed the checks of
    a graph without a dtype attr, and failed in numpy's view of it as bytes (the emulator). ``inp`` is float32 in the
    llama graph, so the dtype alone refused it there."""
    g, plan, w, inp = tiny
    doc = g.to_dict()
    for t in doc["tensors"]:
        if t["id"] == "inp":
            t["attrs"] = {k: v for k, v in t["attrs"].items() if k != "dtype"}
    bare = memplan.graph_from_dict(doc)
    objects = np.array([object() for _ in range(bare.tensor("inp").size // 8)], dtype=object)
    with pytest.raises(ExecutorError, match=r"input 'inp': object given \(Python objects"):
        emulate(bare, memplan.plan(bare), w, {**inp, "inp": objects})


def test_the_right_arrays_still_run_bitwise_as_before(monkeypatch, tiny):
    """The emulator and the fake-driver executor agree on the right arrays."""
    import fake_cuda

    g, plan, w, inp = tiny
    ref, _mem, _addr = emulate(g, plan, w, inp)
    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    ex = Executor(g, plan, weights=w, inputs=inp)
    ex.run()
    ex.synchronize()
    for tid in ref:
        np.testing.assert_array_equal(ex.read(tid, np.float32).reshape(-1), np.asarray(ref[tid]).reshape(-1))


def test_pycuda_plans_of_another_graph_no_nodes_or_a_zero_arena_are_refused(monkeypatch, tiny):
    """Checked clean: the batch-4 graph's plan (same ops, other sizes), a plan with no order entries and one with
    ``arena_bytes`` 0, checked and unchecked, before any device work."""
    import fake_cuda

    g, plan, w, inp = tiny
    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    g4 = L.build_graph(L.config("tiny", batch=4), "norms")
    for bad, words in ((memplan.plan(g4), "tensor 'inp' has size 1024 in the plan but 256 in the graph"),
                       (replace(plan, order=(), events=()), "49 (graph )?nodes: 'l0.norm'"),
                       (replace(plan, arena_bytes=0), "tensor 'inp' .*arena")):
        for check in (True, False):
            with pytest.raises(MemplanError, match=words):
                Executor(g, bad, weights=w, inputs=inp, check_plan=check)
    assert not [t for t in drv.trace if t[1] in ("launch", "htod")]
