"""Round 49 (aten49): the ATen executor and the torch importer against eager on the CPU, and across threads.

Bugs fixed (each test failed before):
- the importer listed a program's effect ops (``torch._assert_async``, a custom check returning nothing) in torch's
  process-wide ``torch.fx.node._side_effectful_functions`` for a decomposition and removed them after: a second
  thread's decomposition of a program with the same op found it listed by the first, and lost it when the first
  finished, so its check was dropped and its import refused. Now counted under a lock (``_listed_as_effects``);
- a custom op implemented in Python that returns nothing (a check, a logger) under ``cuda_graph=True`` on CUDA ran in
  the first call's warm-ups and capture only, never in the replays; now refused at the build naming the node.
- an export held ``sys.stderr`` by swapping in a buffer and putting back what it found, and torch's fake-tensor
  logger was switched off the same way: two overlapping in two threads left ``sys.stderr`` a dead buffer and the
  logger off for good (``memplan.importers.quiet``: counted under a lock, text held per thread).
- two ``.pt2`` loads in two threads: the second's guards against code in the archive (the refusing ``pickle``
  stand-in, ``torch.load`` forced weights-only) were gone once the first ended, and were left in place for good
  after the second; now one load at a time (``_LOADS``).
- two compiles in two threads: torch's export is not thread-safe (both failed inside torch), and its switching
  cuDNN / NNPACK / oneDNN off around a trace made the other refuse its ``forward``; now one export at a time
  (``EXPORT_LOCK``, held by ``load_program`` around its snapshots too).
- another thread drawing from torch's generator during an export (building a model) had the compile refused as a
  ``forward`` that reseeds and its draws rewound; now only this thread's state-changing seeding calls, or moves no
  draw makes, count (``memplan.importers.rng``);
- a call while another thread exported went through torch's ``disable`` wrapper, which then annotated it through the
  FX tracer's global metadata (a raw ``KeyError: 'custom'`` now and then); now only where Dynamo works in this thread.
- ``torch.manual_seed`` inside ``torch.random.fork_rng()`` in ``forward`` left the state as it was and compiled; refused.
- draws inside ``torch.random.fork_rng()`` in ``forward`` (the same numbers at every eager call) compiled drawing on
  from the caller's generator; refused naming the line and node.
"""

from __future__ import annotations

import queue
import threading

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from memplan.errors import GraphError  # noqa: E402


class _Asserts(nn.Module):
    def forward(self, x):
        torch._assert_async((x > 0).all())
        return x * 2


def test_two_threads_decomposing_keep_each_others_effect_ops_listed():
    """Thread A lists ``_assert_async`` and decomposes; B enters its decomposition (finding it listed), A finishes,
    then B's decomposition runs: before, A's exit had removed the op and B's lost its check (a GraphError)."""
    from memplan.importers.torch import trace as imp

    op = torch.ops.aten._assert_async.default
    listed = torch.fx.node._side_effectful_functions
    assert op not in listed
    ep = torch.export.export(_Asserts(), (torch.ones(3),))
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def decompose_a():
        a_in.set()
        b_in.wait(1.0)   # (B waits for the export lock: it lists the op, then A's decomposition ends first)
        return ep.run_decompositions({})

    def decompose_b():
        b_in.set()
        assert a_done.wait(10)
        results["b listed"] = op in listed
        return ep.run_decompositions({})

    def run(name, decompose, first=None):
        if first is not None:
            assert first.wait(10)
        try:
            results[name] = imp._decomposed(torch, ep, decompose)
        except (GraphError, AssertionError) as exc:
            results[name] = exc
        if name == "a":
            a_done.set()

    threads = [threading.Thread(target=run, args=("a", decompose_a)),
               threading.Thread(target=run, args=("b", decompose_b, a_in))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results["b listed"] is True
    for name in "ab":
        out = results[name]
        assert not isinstance(out, Exception), out
        assert any(n.target is op for n in out.graph.nodes)
    assert op not in listed   # put back after the last one


_LOGGED: list[float] = []


@torch.library.custom_op("aten49_test::log_sum", mutates_args=())
def _log_sum(x: torch.Tensor) -> None:
    _LOGGED.append(float(x.sum()))


@_log_sum.register_fake
def _(x):
    return None


@torch.library.custom_op("aten49_test::twice", mutates_args=())
def _twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@_twice.register_fake
def _(x):
    return torch.empty_like(x)


_LIB = torch.library.Library("aten49_lib", "DEF")
_LIB.define("check(Tensor x) -> ()")
_LIB.impl("check", lambda x: None, "CompositeExplicitAutograd")
_LIB.impl("check", lambda x: None, "Meta")


class _Logs(nn.Module):
    def forward(self, x):
        y = torch.ops.aten49_test.twice(x) + 1
        torch.ops.aten49_test.log_sum(y)
        torch.ops.aten49_lib.check(y)
        torch._assert_async((y > 0).all())
        return y * 3


def test_python_effect_ops_are_refused_under_cuda_graphs_and_run_every_call_without():
    """A custom op returning nothing runs for its Python alone: a CUDA graph's replays would skip it (before, it ran at
    the first call's warm-ups and capture only). Refused at the build naming the node; without the graph (and on the
    CPU, where no graph is captured) it runs at every call as eager's. ATen's ``_assert_async`` (a device kernel) and
    a custom op returning a result are no such node."""
    from runtime.aten import compile
    from runtime.aten.capturable import python_effect_nodes
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.executor import Executor

    m = _Logs()
    step = compile(m, (torch.rand(3),), poison=True)   # (cuda_graph=True on the CPU: no graph)
    found = python_effect_nodes(torch, step.program)
    assert [op for _n, op in found] == ["aten49_test.log_sum.default", "aten49_lib.check.default"]
    _LOGGED.clear()
    for _ in range(3):
        x = torch.rand(3)
        assert torch.equal(step(x), m(x))
    assert len(_LOGGED) == 6
    with pytest.raises(AtenExecutorError, match=r"node '.*log_sum.*' \(aten49_test\.log_sum\.default\).*1 more such "
                                                r"node.*cuda_graph=False"):
        Executor(step.program, step.plan, "cuda", cuda_graph=True)


class _Asserts2(nn.Module):
    def forward(self, x):
        y = torch.ops.aten49_test.twice(x)
        torch._assert_async((y > 0).all())
        return y


def test_device_checks_and_custom_ops_with_results_stay_capturable():
    from runtime.aten import compile
    from runtime.aten.capturable import python_effect_nodes

    step = compile(_Asserts2(), (torch.rand(3) + 1,), cuda_graph=False)
    assert python_effect_nodes(torch, step.program) == []


@pytest.mark.gpu(backend="torch")
def test_python_effect_ops_on_cuda_refused_with_a_graph_and_run_every_call_without():
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    m = _Logs().cuda()
    x = torch.rand(3, device="cuda")
    with pytest.raises(AtenExecutorError, match="log_sum.*cuda_graph=False"):
        compile(m, (x,))
    step = compile(m, (x,), cuda_graph=False, streams=3)
    _LOGGED.clear()
    for _ in range(3):
        assert torch.equal(step(x), m(x))
    assert len(_LOGGED) == 6


def _overlapping(block_a, block_b, inside_a=None, inside_b=None, before_b=None) -> None:
    """Thread A enters ``block_a()``, then B enters ``block_b()``; A leaves, then B: two blocks overlapping."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def a():
        try:
            with block_a():
                if inside_a:
                    inside_a()
                a_in.set()
                assert b_in.wait(10)
        except BaseException as exc:
            errors.append(exc)
        finally:
            a_in.set()
            a_out.set()

    def b():
        try:
            assert a_in.wait(10)
            if before_b:
                before_b()
            with block_b():
                b_in.set()
                assert a_out.wait(10)
                if inside_b:
                    inside_b()
        except BaseException as exc:
            errors.append(exc)
        finally:
            b_in.set()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


def test_exports_in_two_threads_leave_stderr_as_it_was_and_pass_their_text_on(monkeypatch):
    """Before: A's block swapped in its buffer, B's saved that as the stream to put back, so after both
    ``sys.stderr`` was A's dead buffer (every later warning or traceback of the process lost), and B's own text went
    there; a third thread's text written meanwhile was held in A's buffer."""
    import io
    import sys

    from memplan.importers.torch import translate as imp

    real = io.StringIO()
    monkeypatch.setattr(sys, "stderr", real)
    _overlapping(lambda: imp._partial_graph_dropped(torch), lambda: imp._partial_graph_dropped(torch),
                 inside_a=lambda: print("from a", file=sys.stderr),
                 inside_b=lambda: print("from b", file=sys.stderr),
                 before_b=lambda: print("outside", file=sys.stderr))
    assert sys.stderr is real
    text = real.getvalue()
    assert "from a" in text and "from b" in text
    assert text.index("outside") < text.index("from a")   # not held in A's buffer


def test_a_logger_silenced_in_two_overlapping_threads_is_back_on_after_both():
    import logging

    from memplan.importers.quiet import logger_off

    name = "aten49.test.quiet"
    log = logging.getLogger(name)
    assert not log.disabled
    _overlapping(lambda: logger_off(name), lambda: logger_off(name),
                 inside_b=lambda: log.disabled or (_ for _ in ()).throw(AssertionError("on inside B's block")))
    assert not log.disabled


class _Tiny(nn.Module):
    def forward(self, x):
        return x * 2


def test_pt2_loads_in_two_threads_stay_guarded_and_leave_torch_as_it_was(tmp_path, monkeypatch):
    """Thread A's ``.pt2`` load is inside torch's reader when B's starts; A ends, then B reads. Before, B's guards
    (the refusing ``pickle`` stand-in, ``torch.load`` forced weights-only) were gone once A put back what it had found,
    so B read its archive unguarded, and B then put A's stand-ins back for good. Now one load at a time."""
    import os
    import pickle

    from torch.export.pt2_archive import _package

    from memplan.importers.torch import load_exported

    had_pickle = hasattr(_package, "pickle")
    path = str(tmp_path / "tiny.pt2")
    torch.export.save(torch.export.export(_Tiny(), (torch.ones(2),)), path)
    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)
    real_load = torch.export.load
    names: dict[int, str] = {}
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def load(f, *args, **kwargs):
        if names[threading.get_ident()] == "a":
            a_in.set()
            b_in.wait(1.5)   # (B, blocked until A is done, never comes)
        else:
            b_in.set()
            assert a_out.wait(10)
            seen["guarded"] = (type(getattr(_package, "pickle", None)).__name__,
                               os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD"))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch.export, "load", load)
    results: dict[str, object] = {}

    def run(name):
        names[threading.get_ident()] = name
        if name == "b":
            assert a_in.wait(10)
        try:
            results[name] = load_exported(path)
        except Exception as exc:
            results[name] = exc
        if name == "a":
            a_out.set()

    threads = [threading.Thread(target=run, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # (torch 2.11's archive reader has no ``pickle`` to swap: it unpickles no opaque object constant at all)
    stand_in = "_RefusingPickle" if had_pickle else "NoneType"
    assert seen["guarded"] == (stand_in, "1")
    assert all(not isinstance(results[n], Exception) for n in "ab"), results
    assert getattr(_package, "pickle", pickle) is pickle
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ


_MEET: dict[str, threading.Event] = {}


class _WaitsInExport(nn.Module):
    """A ``forward`` that, while exported, waits (at most a moment) for the other thread's export to begin."""

    def __init__(self, me: str, other: str) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.me, self.other = me, other

    def forward(self, x):
        _MEET[self.me].set()
        _MEET[self.other].wait(1.0)
        return torch.relu(self.lin(x)) * 2


def test_two_threads_compiling_at_once_both_compile_and_run_as_eager():
    """Two compiles whose exports would overlap. Before: torch's export is not thread-safe ("ProxyTorchDispatchMode
    slot already occupied", "Trying to pop empty mode stack"), and its switching cuDNN / NNPACK / oneDNN off around
    its trace made the other compile refuse its ``forward`` as one that "changes cuDNN ... and leaves it so". Now one
    export at a time (``EXPORT_LOCK``), and both compile."""
    from runtime.aten import compile

    _MEET.clear()
    _MEET.update(a=threading.Event(), b=threading.Event())
    mods = {"a": _WaitsInExport("a", "b").eval(), "b": _WaitsInExport("b", "a").eval()}
    results: dict[str, object] = {}

    def run(name):
        x = torch.randn(3, 4)
        try:
            step = compile(mods[name], (x,), cuda_graph=False)
            results[name] = torch.equal(step(x), mods[name](x))
        except Exception as exc:
            results[name] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {"a": True, "b": True}


def test_a_call_while_another_thread_exports_goes_through_no_export_annotation(monkeypatch):
    """Another thread exporting makes ``torch.compiler.is_exporting()`` True for the whole process, and torch's
    ``disable`` wrapper, which every call went through, then annotated the call through the FX tracer's global
    ``current_meta`` that the export uses too: now and then a raw ``KeyError: 'custom'`` from torch (seen with a
    thread calling a compiled module while three compiled). Now a call goes through the wrapper only where Dynamo is at
    work in its own thread."""
    import torch.fx.traceback as fx_traceback

    from runtime.aten import compile

    m = _Tiny()
    step = compile(m, (torch.ones(3),), cuda_graph=False)

    def annotate(*args, **kwargs):
        raise AssertionError("annotated as if exported")

    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)   # (set by any thread's export too)
    monkeypatch.setattr(fx_traceback, "annotate", annotate)
    x = torch.randn(3)
    assert torch.equal(step(x), m(x))


def test_torch_compile_of_code_calling_the_module_still_breaks_its_graph_there():
    from runtime.aten import compile

    m = _Tiny()
    step = compile(m, (torch.ones(3),), cuda_graph=False)
    x = torch.randn(3)
    got = torch.compile(lambda t: step(t.relu() + 1) * 2, backend="eager")(x)
    assert torch.equal(got, m(x.relu() + 1) * 2)


class _DrawsElsewhere(nn.Module):
    """While exported, has another thread draw from torch's generator (a model built there, its weights drawn)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        t = threading.Thread(target=lambda: _DRAWN.put(torch.rand(4)))
        t.start()
        t.join()
        return self.lin(x) + 1


_DRAWN: queue.Queue = queue.Queue()   # (an object: compile puts back the plain containers forward changes)


class _SetsState(nn.Module):
    def __init__(self, state) -> None:
        super().__init__()
        self.state = state

    def forward(self, x):
        torch.set_rng_state(self.state)
        return x + torch.rand(3)


class _SameSeed(nn.Module):
    def forward(self, x):
        _manual_seed(7)   # (an alias bound at import: no patched attribute sees it)
        return x + torch.rand(3)


_manual_seed = torch.random.manual_seed


def test_another_threads_draws_during_an_export_are_no_reseeding_and_are_kept():
    """Before: any move of the generator across the export counted as ``forward`` reseeding it: a thread drawing
    meanwhile had the compile refused ("forward sets torch's random state itself") and its draws rewound (the same
    numbers drawn again next). Now told apart: its draws stand, and the compile goes on."""
    from runtime.aten import compile

    m = _DrawsElsewhere().eval()
    torch.manual_seed(11)
    step = compile(m, (torch.ones(2, 4),), cuda_graph=False)
    after = torch.rand(4)
    drawn = [_DRAWN.get_nowait() for _ in range(_DRAWN.qsize())]
    assert drawn and not any(torch.equal(after, d) for d in drawn)   # (not rewound: no number drawn twice)
    x = torch.randn(2, 4)
    assert torch.equal(step(x), m(x))


@pytest.mark.parametrize("make", [lambda: _SetsState(torch.get_rng_state()), lambda: _SameSeed()],
                         ids=["set_rng_state", "manual_seed_of_its_seed"])
def test_a_forward_setting_the_state_is_still_refused_and_the_state_put_back(make):
    from runtime.aten import compile

    torch.manual_seed(7)
    m = make()
    torch.rand(5)   # (moved on from the state ``_SetsState`` holds and from seed 7's fresh state)
    state = torch.get_rng_state()
    with pytest.raises(GraphError, match="sets torch's random state itself"):
        compile(m, (torch.zeros(3),), cuda_graph=False)
    assert torch.equal(torch.get_rng_state(), state)


class _SeedsInFork(nn.Module):
    def forward(self, x):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return x + torch.rand(3)


def test_a_seed_inside_fork_rng_is_refused_too():
    """Eager draws seed 0's numbers at every call (the fork puts the caller's state back after); the program would
    draw from the caller's generator. Before, the state was back as it was after the export and nothing was caught."""
    from runtime.aten import compile

    torch.manual_seed(3)
    state = torch.get_rng_state()
    with pytest.raises(GraphError, match="sets torch's random state itself"):
        compile(_SeedsInFork(), (torch.zeros(3),), cuda_graph=False)
    assert torch.equal(torch.get_rng_state(), state)


class _DrawsInFork(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def forward(self, x):
        with torch.random.fork_rng(enabled=self.how != "disabled"):
            if self.how == "nothing":
                return x * 2
            if self.how == "dropout":
                return torch.nn.functional.dropout(x, 0.5, training=True)
            return x + torch.randn_like(x)


@pytest.mark.parametrize("how", ["randn", "dropout"])
def test_draws_inside_fork_rng_are_refused(how):
    """Eager puts the generator back after the block, so its draws are the same numbers at every call; the program
    drew on from the caller's generator (other numbers from the second call on, silently)."""
    from runtime.aten import compile

    m = _DrawsInFork(how)
    x = torch.ones(4)
    assert torch.equal(m(x), m(x))   # (eager: the same numbers every call)
    with pytest.raises(GraphError, match="fork_rng"):
        compile(m, (x,), cuda_graph=False)


@pytest.mark.parametrize("how", ["nothing", "disabled"])
def test_a_fork_rng_without_draws_or_disabled_still_compiles(how):
    from runtime.aten import compile

    m = _DrawsInFork(how)
    x = torch.ones(4)
    torch.manual_seed(0)
    step = compile(m, (x,), cuda_graph=False)
    torch.manual_seed(1)
    got = step(x)
    torch.manual_seed(1)
    assert torch.equal(got, m(x))
