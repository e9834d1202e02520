"""Round 43 (runtime): counts given to ``Executor.replay`` and ``Executor.time_steps`` (on the fake driver).

``replay(10**12)``, ``replay(np.int64(10**12))`` or ``time_steps(steps=10**12)`` were accepted and held the host in a
launch loop for days; each count is now an integer in ``[lo, runtime.cuda_core.MAX_LAUNCH_COUNT]``, refused by name
before any launch otherwise, and numpy integers are taken as Python ints.
"""

from __future__ import annotations

import numpy as np
import pytest

import memplan
from memplan.errors import ExecutorError
from runtime.models import llama as L


@pytest.fixture
def ex(monkeypatch):
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    e = Executor(g, memplan.plan(g), weights=L.make_weights(g, cfg, seed=0), inputs=L.make_inputs(cfg, seed=1))
    yield e
    e.free()


def _no_launch(monkeypatch):
    """Make any launch fail loudly: a refused count must be refused before the first one."""
    import runtime.cuda_core as cc

    def boom(*_a, **_k):
        raise AssertionError("launched")
    monkeypatch.setattr(cc, "launch_graph", boom)
    return cc


@pytest.mark.parametrize("n", [10**12, np.int64(10**12), np.uint64(2**63), -1, np.int32(-3), 1.0, np.float64(2), True,
                               "3", None])
def test_replay_refuses_a_nonsense_count_by_name_before_launching(ex, monkeypatch, n):
    """Failed before for the huge counts: accepted, then 10**12 launches."""
    ex.capture()
    _no_launch(monkeypatch)
    with pytest.raises(ExecutorError, match=r"replay n="):
        ex.replay(n)


@pytest.mark.parametrize("kw,name", [(dict(steps=10**12), "steps"), (dict(repeats=np.int64(10**10)), "repeats"),
                                     (dict(warmup=10**10), "warmup"), (dict(steps=0), "steps"),
                                     (dict(repeats=2.0), "repeats"), (dict(warmup=-1), "warmup"),
                                     (dict(steps=100_000, repeats=100_000), "steps in all")])
def test_time_steps_refuses_a_nonsense_count_by_name(ex, monkeypatch, kw, name):
    """Failed before for the huge counts: accepted, then a launch loop of days."""
    _no_launch(monkeypatch)
    with pytest.raises(ExecutorError, match=name):
        ex.time_steps("graph", **kw)


def test_valid_counts_still_run(ex):
    ex.capture()
    for n in (0, 1, np.int64(2), np.uint8(1)):
        ex.replay(n)
    out = ex.time_steps("eager", steps=np.int32(1), repeats=1, warmup=np.int64(0))
    assert len(out) == 1
