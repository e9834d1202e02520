"""Review of round 32's runtime changes: the ADD/MUL broadcast refusal (``ops.broadcast_problem``) and the
refusal of a step whose inputs were not all given (executors and emulator).

Each test names the input, what happened, and what happens now.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_runtime_round32 import _binary_emulated as _run

import memplan


def _ggml_repeat(xs: list[int], bs: list[int]) -> list[int] | None:
    """b's shape as ggml's repeat reads it over x (leading 1s to x's rank), or None where it is no repeat
    (a dimension of b that does not divide x's)."""
    extra = len(bs) - len(xs)
    if extra > 0:
        if any(d != 1 for d in bs[:extra]):
            return None
        bs = bs[extra:]
    shape = [1] * (len(xs) - len(bs)) + list(bs)
    return shape if all(a % c == 0 for a, c in zip(xs, shape)) else None


@pytest.mark.parametrize("op,xs,bs,norm", [("MUL", [2, 4], [1], None), ("ADD", [2, 4], [1, 1], None),
                                           ("ADD", [3], [1], None), ("MUL", [4, 8], [1], "norm"),
                                           ("MUL", [4, 8], [1, 1], "add_norm")])
def test_a_scalar_operand_is_broadcast_not_refused(op, xs, bs, norm):
    """``MUL(x [2, 4], b [1])`` (every element times one scalar: numpy's, ggml's and the kernels' broadcast
    alike, and computed right before round 32) was refused by the new broadcast check: b's shape stripped of its
    leading 1s is empty, which the check read as no trailing dimensions of x ("... other than the kernels repeat
    it"); the fused norm groups fell back to that refusal too. Now it runs and equals numpy's broadcast."""
    got, want = _run(op, xs, bs, norm)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@st.composite
def _repeat_shapes(draw):
    """x's shape and a b that repeats over it by ggml's rule: a suffix of x's dimensions, each replaced by one of
    its divisors (1 and itself included), with leading 1s now and then; or b of x's element count reshaped."""
    xs = draw(st.lists(st.sampled_from([1, 2, 3, 4, 6]), min_size=1, max_size=3))
    if draw(st.integers(0, 9)) == 0:
        return xs, draw(st.sampled_from([[math.prod(xs)], [1, math.prod(xs)], xs[::-1]]))
    k = draw(st.integers(1, len(xs)))
    bs = [draw(st.sampled_from([d for d in range(1, a + 1) if a % d == 0])) for a in xs[len(xs) - k:]]
    return xs, [1] * draw(st.integers(0, 2)) + bs


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=_repeat_shapes(), op=st.sampled_from(["ADD", "MUL"]), norm=st.sampled_from([None, None, "norm", "add_norm"]),
       seed=st.integers(0, 9))
def test_every_ggml_repeat_runs_as_numpy_broadcasts_it_or_is_refused(shapes, op, norm, seed):
    """Over random shapes b repeats over x (ggml's rule: each dimension divides), the kernels' flat repeat either
    gives numpy's tiled broadcast, and then the step runs and equals it, or it does not, and then the step is
    refused naming the node: never a refusal of what the kernels compute right, never silently other values."""
    from runtime.kernels import KernelError

    xs, bs = shapes
    shape = _ggml_repeat(xs, bs)
    if shape is None:   # as many elements, otherwise split: elementwise
        flat_is_tile = True
    else:
        ref = np.arange(math.prod(shape)).reshape(shape)
        flat_is_tile = np.array_equal(np.tile(ref, [a // c for a, c in zip(xs, shape)]).ravel(),
                                      np.tile(ref.ravel(), math.prod(xs) // ref.size))
    event("runs" if flat_is_tile else "refused")
    if flat_is_tile:
        got, want = _run(op, xs, bs, norm, seed)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        with pytest.raises(KernelError, match="node 'n': 'w' of shape .* broadcasts over"):
            _run(op, xs, bs, norm, seed)


def _with_spare_input(view: bool = False):
    """``y = x * w`` plus an input ``spare`` that no node reads (``view``: read through a view ``sv`` of it,
    by a second node)."""
    b = memplan.GraphBuilder("spare")
    f32 = dict(shape=[2, 4], dtype="f32")
    b.input("x", 32, **f32)
    b.input("w", 32, **f32)
    b.input("spare", 32, **f32)
    b.node("n", "MUL", ["x", "w"], b.output("y", 32, **f32))
    if view:
        b.view("sv", "spare", 16, 16, kind="input", shape=[4], dtype="f32")
        b.node("m", "SILU", ["sv"], b.output("z", 16, shape=[4], dtype="f32"))
    return b.build()


def test_an_input_no_node_reads_need_not_be_given():
    """``emulate`` (and the executors, below) of a graph with an input no node reads (an unused graph input, as
    exported models have) without that input: refused since round 32 ("input 'spare' ... not given"), though
    nothing reads its bytes. Now it runs, with the outputs it gives when ``spare`` is given; an input read
    (through a view) is still refused."""
    from runtime.emulate import emulate

    g = _with_spare_input()
    rng = np.random.default_rng(1)
    given_ = {k: rng.standard_normal(8).astype(np.float32) for k in ("x", "w", "spare")}
    full = emulate(g, memplan.plan(g), {}, given_)[0]["y"]
    some = emulate(g, memplan.plan(g), {}, {k: given_[k] for k in ("x", "w")})[0]["y"]
    assert np.array_equal(full, some)
    gv = _with_spare_input(view=True)
    with pytest.raises(ValueError, match="emulate: input 'spare' of graph 'spare' not given"):
        emulate(gv, memplan.plan(gv), {}, {k: given_[k] for k in ("x", "w")})


def test_an_executor_steps_without_an_input_no_node_reads(monkeypatch):
    """``Executor(g, plan, inputs={x, w})`` with ``spare`` unread: ``run`` refused ("input 'spare' ... was never
    given"), as ``capture`` and ``time_steps``. Now they run and give the outputs of the executor given every
    input; one whose unread-looking input is read through a view is still refused, issuing nothing."""
    import fake_cuda

    from runtime.executor import Executor

    drv = fake_cuda.install(monkeypatch)
    g = _with_spare_input()
    rng = np.random.default_rng(2)
    given_ = {k: rng.standard_normal(8).astype(np.float32) for k in ("x", "w", "spare")}
    ex = Executor(g, memplan.plan(g), inputs={k: given_[k] for k in ("x", "w")})
    ex.run()
    ex.capture()
    assert ex.time_steps("eager", steps=1, repeats=1, warmup=0)
    full = Executor(g, memplan.plan(g), inputs=given_)
    full.run()
    assert np.array_equal(ex.read("y"), full.read("y"))
    gv = _with_spare_input(view=True)
    exv = Executor(gv, memplan.plan(gv), inputs={k: given_[k] for k in ("x", "w")})
    issued = len(drv.trace)
    with pytest.raises(ValueError, match="input 'spare' of graph 'spare' was never given"):
        exv.run()
    assert len(drv.trace) == issued
    for e in (ex, full, exv):
        e.free()


class _Marked(dict):
    """A program's launches whose every look-up (one per issued step, in ``CudaCore._issue_steps``) leaves a
    ``("node", id)`` mark in the fake driver's trace, between the step's waits and its launches."""

    def __init__(self, launches, trace):
        super().__init__(launches)
        self.trace = trace

    def __getitem__(self, nid):
        self.trace.append((None, "node", nid))
        return super().__getitem__(nid)


def _happens_before(trace, stream_of_node) -> dict[str, set[str]]:
    """Per node (its last issue in ``trace``): the nodes whose work is finished before its work starts, by CUDA's
    stream semantics: each stream in order, and a wait on an event orders the stream after the work before the
    event's latest record (host order) - not by the host order of the trace."""
    clock: dict[int, set[str]] = {}
    recorded: dict[int, set[str]] = {}
    before: dict[str, set[str]] = {}
    for op in trace:
        kind = op[1]
        if kind == "node":
            s = stream_of_node[op[2]]
            before[op[2]] = set(clock.get(s, ()))
            clock.setdefault(s, set()).add(op[2])
        elif kind == "record":
            recorded[op[2]] = set(clock.get(op[3], ()))
        elif kind == "wait":
            clock.setdefault(op[2], set()).update(recorded.get(op[3], ()))
    return before


@pytest.mark.parametrize("how", ["cycle", "split3", "split2x2"])
def test_every_plan_event_is_honoured_by_the_eager_multi_gpu_issue(monkeypatch, how):
    """The eager multi-GPU step of a split plan, including one whose devices wait on each other (0 -> 1 -> 0, which
    round 32 runs eagerly instead of refusing): by the streams and events the fake driver saw issued (not by host
    order, which the fake runs everything in), every event of the plan orders its ``after`` node's work before its
    ``before`` node's, and so does every stream's order, in two successive steps. No bug found: this pins it."""
    import fake_cuda
    from test_runtime_round32 import _folded

    from runtime.models import llama as L
    from runtime.multi_gpu import MultiGpuExecutor

    cfg = L.config("tiny", batch=2)
    g = L.build_graph(cfg)
    split, plan = (_folded(g) if how == "cycle" else
                   memplan.plan_devices(g, 3 if how == "split3" else 2, streams=2 if how == "split2x2" else None))
    memplan.verify(split.graph, plan)
    drv = fake_cuda.install(monkeypatch, devices=3)
    ex = MultiGpuExecutor(split.graph, plan, inputs=L.make_inputs(cfg, seed=1), random_weights_seed=1)
    assert (ex._stages is None) == (how == "cycle")
    fin = ex.program.finished_by
    stream_of_node = {s.node: ex.streams[s.stream].handle for s in ex.program.steps}
    ex.program = dataclasses.replace(ex.program, launches=_Marked(ex.program.launches, drv.trace))
    for _ in range(2):
        start = len(drv.trace)
        ex.run()
        hb = _happens_before(drv.trace[start:], stream_of_node)
        assert set(hb) == {s.node for s in ex.program.steps}
        for a, b in plan.events:
            assert fin[a] in hb[fin[b]], (a, b)
        last: dict[int, str] = {}
        for nid, s in plan.order:
            if s in last:
                assert fin[last[s]] in hb[fin[nid]] or fin[last[s]] == fin[nid], (last[s], nid)
            last[s] = nid
    cross = sum(plan.node_devices[split.graph.node_index[a]] != plan.node_devices[split.graph.node_index[b]]
                for a, b in plan.events)
    assert cross, "the plan should have cross-device events to check"
    ex.free()
