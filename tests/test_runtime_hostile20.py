"""Hostile input to the runtimes' Python APIs and tool command lines, round 20 (CPU only): calls from
several threads, inputs sharing memory with weights the program writes, a reused ``program=`` of another
module, mistyped ``delays``, arguments of the wrong kind to the pycuda executor (on the fake driver), and
tool ``--out`` paths that cannot be written. Each used to give a wrong result silently, a raw traceback,
or a lost run; each is now refused up front naming the argument."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from needs import need

import memplan
from runtime.models import llama as L

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def test_calls_from_several_threads_run_one_at_a_time():
    """Was silently wrong (~130 of 200 results): concurrent calls shared the one arena."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64)).eval()
    c = compile(m, (torch.randn(32, 64),), streams=1)
    wrong: list[int] = []

    def worker(seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        for _ in range(40):
            x = torch.randn(32, 64, generator=g)
            out = c(x)
            with torch.no_grad():
                if not torch.equal(out, m(x)):
                    wrong.append(seed)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not wrong


_CALLBACK: dict = {}


@torch.library.custom_op("memplan_test::call_back", mutates_args=())
def _call_back(x: torch.Tensor) -> torch.Tensor:
    c = _CALLBACK.get("c")
    return c(x) if c is not None else x * 2


@_call_back.register_fake
def _(x):
    return torch.empty_like(x)


class CallsBack(nn.Module):
    def forward(self, x):
        return torch.ops.memplan_test.call_back(x + 1) - 1


def test_a_call_from_inside_its_own_call_is_refused_not_a_deadlock():
    """Was a hang: an op of the program (a custom op) calling the compiled program itself waited forever on
    the lock its own call held. Now an AtenExecutorError; the program stays usable."""
    c = compile(CallsBack(), (torch.randn(3),), streams=1)
    _CALLBACK["c"] = c
    results: list = []

    def call() -> None:
        try:
            results.append(c(torch.ones(3)))
        except AtenExecutorError as exc:
            results.append(exc)

    try:
        t = threading.Thread(target=call, daemon=True)   # daemon: on the old code it never ends
        t.start()
        t.join(20)
        assert not t.is_alive(), "the nested call deadlocked"
    finally:
        _CALLBACK.clear()
    assert isinstance(results[0], AtenExecutorError) and "from inside its own call" in str(results[0])
    assert torch.equal(c(torch.ones(3)), torch.full((3,), 3.0))


def test_a_call_inside_the_callers_own_capture_neither_waits_on_nor_records_the_call_event(monkeypatch):
    """H200: a program compiled with ``cuda_graph=False`` and called inside the user's ``torch.cuda.graph``
    (after a warm-up call) failed with "operation failed due to a previous error during capture": its
    caller stream waited on the event the previous call recorded outside the capture, which invalidates it
    (and an event recorded inside a capture cannot be waited on outside it). Emulated on the CPU: a
    stand-in event and caller stream, the capture status of the caller's stream given."""
    import runtime.aten.executor as E

    m = nn.Sequential(nn.Linear(4, 4)).eval()
    c = compile(m, (torch.randn(2, 4),), streams=1)
    log: list[str] = []

    class Event:
        def record(self, stream) -> None:
            log.append("record")

    class Stream:
        cuda_stream = 7

        def wait_event(self, event) -> None:
            log.append("wait")

    capturing = {"now": False}
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    monkeypatch.setattr(E, "caller_capturing", lambda torch, device: capturing["now"], raising=False)
    monkeypatch.setattr(c.executor, "_ordered", True)   # (the CUDA path; round 75: the arena's ``CallOrder``)
    monkeypatch.setattr(c.executor.order, "event", Event())
    x = torch.randn(2, 4)
    c(x)
    assert log == ["wait", "record"]   # an ordinary call: after the previous one, on the device too
    capturing["now"] = True
    log.clear()
    with torch.no_grad():
        assert torch.equal(c(x), m(x))
    assert log == []


class WritesInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3))

    def forward(self, x):
        x.mul_(2)
        return x + self.w


class WritesBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("count", torch.zeros(3))

    def forward(self, x):
        self.count.add_(1)
        return x * 2


def test_inputs_sharing_memory_with_a_written_weight_are_refused():
    """Was silently wrong: the arena holds copies, so eager's write through one (the input written, or the
    buffer written) did not show in the other: ``WritesInput()(m.w)`` gave 3w where eager gives 4w."""
    m = WritesInput()
    c = compile(m, (torch.randn(3),), streams=1)
    with torch.no_grad():
        with pytest.raises(AtenExecutorError, match="input 'x' shares memory with weight 'p_w'"):
            c(m.w)
        with pytest.raises(AtenExecutorError, match="shares memory with weight"):
            c(m.w[:])
    b = WritesBuffer()
    cb = compile(b, (torch.randn(3),), streams=1)
    with pytest.raises(AtenExecutorError, match="input 'x' shares memory with weight 'b_count'"):
        cb(b.count)
    assert torch.equal(b.count, torch.zeros(3))   # refused before it ran
    x = torch.randn(3)
    assert torch.equal(cb(x), x * 2) and torch.equal(b.count, torch.ones(3))


def test_a_written_input_whose_elements_share_memory_is_refused_before_it_runs():
    """Was refused only at the write-back, after the program had run and written its buffer."""

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("n", torch.zeros(()))

        def forward(self, x):
            self.n.add_(1)
            x.add_(1)
            return x * 2

    m = M()
    c = compile(m, (torch.randn(2, 3),), streams=1)
    with pytest.raises(AtenExecutorError, match="input 'x' is written in place .* share memory"):
        c(torch.zeros(3).expand(2, 3))
    assert m.n.item() == 0


def test_delays_and_call_structure_are_named():
    """``delays=5`` and a typo'd node were ignored; a call of the wrong structure printed pytree specs over
    several lines."""
    m = nn.Linear(4, 3).eval()
    x = torch.randn(2, 4)
    c = compile(m, (x,), streams=1)
    for bad, words in ((5, "delays must be a mapping"), ({"nope": 1}, "delays: node 'nope' is not a node"),
                       ({"linear": -1}, "delays: node 'linear': -1"), ({"linear": True}, "delays: node 'linear'")):
        with pytest.raises(AtenExecutorError, match=words):
            c(x, delays=bad)
    for args, kwargs, shown in (((x, x), {}, r"\(\*, \*\)"), (([x],), {}, r"\(\[\*\]\)"), ((), {"zz": x}, r"\(zz=\*\)")):
        with pytest.raises(AtenExecutorError, match=rf"call arguments {shown} do not match the export's \(\*\)") as e:
            c(*args, **kwargs)
        assert "\n" not in str(e.value)
    assert c(x, delays={"linear": 0}).shape == (2, 3)


def test_a_reused_program_must_be_the_modules_export_for_these_inputs():
    """``program=`` of another module ran that module's weights; example inputs of other shapes compiled a
    program every call then refused."""
    x = torch.randn(2, 4)
    a, b = nn.Linear(4, 3).eval(), nn.Sequential(nn.Linear(4, 3)).eval()
    ca = compile(a, (x,), streams=1)
    with pytest.raises(AtenExecutorError, match="program is not an export of this Sequential"):
        compile(b, (x,), program=ca.program)
    with pytest.raises(AtenExecutorError, match=r"example input 'input' is \(5, 4\)"):
        compile(a, (torch.randn(5, 4),), program=ca.program)
    with torch.no_grad():
        assert torch.equal(compile(a, (x,), program=ca.program)(x), a(x))


def test_pycuda_executor_names_arguments_of_the_wrong_kind(monkeypatch):
    """Were AttributeErrors/TypeErrors from deep inside: a plan dict or path, inputs as a list, prefetch None,
    weights_from not an executor, set_inputs(None), run(jitter="x"/poison=True), time_steps(steps=2.5);
    set_inputs with a bad input after a good one loaded the good one."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=0), L.make_inputs(cfg, seed=1)
    plan = memplan.plan(g)
    for kw, words in ((dict(plan={}), "plan dict: expected a memplan Plan"),
                      (dict(plan="p.json"), "plan str: expected a memplan Plan"),
                      (dict(graph=None), "graph NoneType"), (dict(inputs=[1]), "inputs list: expected a mapping"),
                      (dict(weights=[1]), "weights list: expected a mapping"),
                      (dict(prefetch=None), "prefetch None: expected an iterable"),
                      (dict(weights_from="x"), "weights_from str")):
        args = {**dict(graph=g, plan=plan, weights=w, inputs=inp), **kw}
        if "weights_from" in kw:
            del args["weights"]
        with pytest.raises(ValueError, match=words):
            Executor(args.pop("graph"), args.pop("plan"), **args)
    ex = Executor(g, plan, weights=w, inputs=inp)
    for call, words in ((lambda: ex.set_inputs(None), "set_inputs NoneType"),
                        (lambda: ex.run(jitter="x"), "jitter 'x'"), (lambda: ex.run(poison=True), "poison True"),
                        (lambda: ex.time_steps("eager", steps=2.5), "time_steps steps=2.5")):
        with pytest.raises(ValueError, match=words):
            call()
    first, second = sorted(inp)[:2]
    ex.run()   # (an arena tensor reads only after a step: round 43)
    before = ex.read("logits").copy()
    with pytest.raises(ValueError, match=f"input {second!r}"):
        ex.set_inputs({first: np.zeros_like(inp[first]) + 1, second: np.zeros(1, np.float64)})
    ex.run()   # (``first`` was not half-loaded: the step computes what it did)
    assert np.array_equal(ex.read("logits"), before)
    ex.free()


TOOLS_WITH_OUT = ["runtime.bench", "runtime.bench_multi_gpu", "runtime.tools.attn_bench", "runtime.tools.attn_tune",
                  "runtime.tools.bound", "runtime.tools.gemm_bench", "runtime.tools.profile", "runtime.tools.rule_ab"]


@pytest.mark.parametrize("tool", TOOLS_WITH_OUT)
def test_tools_refuse_an_out_they_cannot_write_before_running(tool, tmp_path, capsys):
    """Before: the run went on (minutes on a GPU) and its results were lost at the write; several tools
    also wrote ``--out`` in place (a half-written file on a crash)."""
    import importlib

    main = importlib.import_module(tool).main
    for out, words in ((tmp_path / "no" / "x.json", "no directory"), (tmp_path, "is a directory")):
        assert main(["--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--out" in err and words in err and "Traceback" not in err, err


def test_aten_tools_refuse_absurd_options_in_one_line(tmp_path, capsys):
    """sweep: ``--budget -1`` printed argparse's usage lines, ``--only ,`` ran no model and reported success,
    ``--out`` into a missing directory was found after every model had run; aten.bench: an unknown model was
    a traceback per name and exit 0, ``--stop-after nan`` ran everything, ``--out`` as sweep."""
    from runtime.aten.bench import main as bench
    from runtime.aten.sweep import main as sweep

    missing = str(tmp_path / "no" / "x.json")
    for argv, words in ((["--budget", "-1"], "--budget"), (["--bogus"], "unrecognized")):
        with pytest.raises(SystemExit) as exit_:
            sweep(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and words in err, err
    for argv, words in ((["--only", ","], "no model names"), (["--only", "llama", "--out", missing], "no directory")):
        assert sweep(["--device", "cpu", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    for argv, words in ((["--models", "nope"], "unknown model 'nope'"), (["--compile", "x"], "--compile 'x'"),
                        (["--stop-after", "nan"], "--stop-after"), (["--out", missing], "no directory")):
        assert bench(["--device", "cpu", "--quick", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "no").exists()
