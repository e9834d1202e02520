"""Hostile arguments to the pycuda executor (on the fake driver), the emulator and compare_launches: each is
refused up front with an error naming the argument, never run as a silent no-op, a raw traceback from deep
inside or an out-of-bounds copy on the device."""

from __future__ import annotations

import numpy as np
import pytest

import memplan
from runtime.emulate import emulate
from runtime.models import llama as L
from runtime.tools import compare_launches


@pytest.fixture
def tiny():
    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    return cfg, g, L.make_weights(g, cfg, seed=0), L.make_inputs(cfg, seed=1)


def test_executor_refuses_hostile_arguments(monkeypatch, tiny):
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor, Jitter, Poison

    cfg, g, w, inp = tiny
    plan = memplan.plan(g)
    with pytest.raises(ValueError, match="weights 'bogus'"):
        Executor(g, plan, weights={**w, "bogus": np.zeros(4, np.float32)})
    ex = Executor(g, plan, weights=w, inputs=inp)
    with pytest.raises(ValueError, match="input 'pos': float32 given"):   # same bytes, wrong bits
        ex.set_inputs({"pos": inp["pos"].astype(np.float32)})
    for bad in (dict(prob=2.0), dict(prob=-0.1), dict(max_cycles=0), dict(only="l0.kq")):
        with pytest.raises(ValueError, match="Jitter"):
            Jitter(**bad)
    with pytest.raises(memplan.GraphError, match="nonode"):
        ex.run(jitter=Jitter(only=("nonode",)))
    kc = L.kv_poison_ranges(g, cfg)[0]
    with pytest.raises(ValueError, match="poison range of"):
        ex.run(poison=Poison(ranges=(type(kc)(kc.tensor, 1 << 30, 16),)))
    with pytest.raises(ValueError, match="poison range of 'inp'"):
        ex.run(poison=Poison(ranges=(type(kc)("inp", 0, 16),)))
    for kw in (dict(steps=0), dict(repeats=0), dict(warmup=-1)):
        with pytest.raises(ValueError, match="time_steps"):
            ex.time_steps("eager", **kw)
    with pytest.raises(ValueError, match="mode 'bogus'"):
        ex.time_steps("bogus", steps=1, repeats=1)
    with pytest.raises(ValueError, match="'l0.attn_norm': 1024 bytes"):
        ex.write_weight("l0.attn_norm", np.zeros(256, np.float32))
    with pytest.raises(ValueError, match="write_weight 'inp'"):
        ex.write_weight("inp", inp["inp"])
    ex.capture()
    with pytest.raises(ValueError, match="replay n=-1"):
        ex.replay(-1)
    ex.run()
    ex.free()
    ex.free()
    for use in (ex.run, ex.capture, lambda: ex.replay(1), lambda: ex.read("logits"), lambda: ex.set_inputs(inp)):
        with pytest.raises(RuntimeError, match="freed"):
            use()


def test_emulate_refuses_unknown_or_missized_inputs(tiny):
    _cfg, g, w, inp = tiny
    plan = memplan.plan(g)
    with pytest.raises(ValueError, match="input 'inp': 512 bytes"):   # would overwrite its arena neighbours
        emulate(g, plan, w, {**inp, "inp": np.zeros((1, 128), np.float32)})
    with pytest.raises(ValueError, match="'l0.attn_norm': not an input"):
        emulate(g, plan, w, {**inp, "l0.attn_norm": np.zeros(64, np.float32)})


@pytest.mark.parametrize("argv", [["--batches", "0"], ["--batches", "x"], ["--config", "nope"], ["--devices", "0"],
                                  ["--layers", "-1"], ["--fuse", "bogus"], ["--streams", "0"]])
def test_compare_launches_bad_options_are_one_line_and_exit_2(argv, capsys):
    assert compare_launches.main(["--config", "tiny", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("compare_launches: error: ") and err.count("\n") == 1, err


def test_executor_refuses_weights_from_another_graph_and_mistyped_flags(monkeypatch, tiny):
    """``weights_from`` shares the other executor's weight and cache pointers as they are: one of another graph
    (the same model at another batch: its caches have other row counts) would be read and written out of
    bounds, a root it lacks left uninitialised; ``check_plan="no"`` was truthy; ``replay(1.5)`` a TypeError."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    cfg, g, w, inp = tiny
    base = Executor(g, memplan.plan(g), weights=w, inputs=inp)
    cfg2 = L.config("tiny", batch=2)
    g2 = L.build_graph(cfg2)
    with pytest.raises(ValueError, match=r"weights_from: weight 'l0\.k_cache' is \d+ bytes on device 0 there"):
        Executor(g2, memplan.plan(g2), inputs=L.make_inputs(cfg2, seed=1), weights_from=base)
    small = L.config("tiny", batch=1, layers=1)
    g1 = L.build_graph(small)
    other = Executor(g1, memplan.plan(g1), weights=L.make_weights(g1, small, seed=0))
    with pytest.raises(ValueError, match=r"weights_from: it has no weight 'l1\."):
        Executor(g, memplan.plan(g), inputs=inp, weights_from=other)
    Executor(g, memplan.plan(g), inputs=inp, weights_from=base).free()   # the same graph: shared
    for flag in ("no", 0, None):
        with pytest.raises(ValueError, match="check_plan"):
            Executor(g, memplan.plan(g), weights=w, inputs=inp, check_plan=flag)
    base.capture()
    for n in (1.5, "2", True):
        with pytest.raises(ValueError, match="replay n="):
            base.replay(n)
    base.free()
    other.free()


@pytest.mark.parametrize("arg", ["graph", "plan", "weights", "inputs"])
def test_emulate_names_an_argument_of_the_wrong_kind(tiny, arg):
    _cfg, g, w, inp = tiny
    args = dict(graph=g, plan=memplan.plan(g), weights=w, inputs=inp)
    args[arg] = None
    with pytest.raises(ValueError, match=f"emulate: {arg} must be"):
        emulate(**args)
