"""The GPU runtime's CPU-side surface, round 32 (CPU only; pycuda is the fake driver of ``tests/fake_cuda.py``):
the tools' refusals that came after GPU work had started (or never came), checked on the fake driver, whose
trace shows whether anything reached the "GPU"."""

from __future__ import annotations

import os

import pytest
from cli_contract import assert_tool_refused, run_tool


def test_bench_multi_gpu_refuses_a_split_the_graph_cannot_take_before_any_gpu_work(monkeypatch, tmp_path, capsys):
    """``--devices 20`` for the tiny config (whose graph cuts into at most 16 stages) on a machine with the GPUs:
    the split was planned inside the timing loop, after the driver was initialised, so memplan's refusal was a
    ScheduleError traceback (exit 1). Now every split is planned with the other option checks: one line, exit 2,
    naming --devices and the config, nothing issued and no file written."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch, devices=32)
    monkeypatch.chdir(tmp_path)
    code, err = run_tool(capsys, "runtime.bench_multi_gpu", ["--configs", "tiny", "--batches", "1", "--devices", "20",
                                                             "--steps", "1", "--rounds", "1"])
    assert_tool_refused(code, err, "--devices 20", "config tiny at batch 1", "ask for at most 16")
    assert drv.trace == []
    assert os.listdir(tmp_path) == []


def test_bench_multi_gpu_still_runs_a_split_it_can_take(monkeypatch, tmp_path, capsys):
    """The splits planned up front are the ones timed (the fake driver: every split step bitwise the one-GPU step)."""
    import json

    import fake_cuda

    fake_cuda.install(monkeypatch, devices=4)
    monkeypatch.chdir(tmp_path)
    from runtime import bench_multi_gpu

    assert bench_multi_gpu.main(["--configs", "tiny", "--batches", "1,3", "--devices", "4", "--steps", "1",
                                 "--rounds", "1", "--out", "m.json"]) == 0
    rows = json.loads((tmp_path / "m.json").read_text())
    assert [(r["batch"], r["devices"], len(r["device_arena_bytes"])) for r in rows] == [(1, 4, 4), (3, 4, 4)]
    assert all(r["same_logits_eager"] and r["same_logits_graph"] for r in rows)


@pytest.fixture
def pdl_check_on_tiny(monkeypatch, tmp_path):
    """``runtime.tools.pdl_check`` on the fake driver, its 8B layers swapped for the tiny config's (the emulator
    would multiply the 8B's matrices in numpy)."""
    import fake_cuda

    from runtime.models import llama as L

    fake_cuda.install(monkeypatch)
    monkeypatch.chdir(tmp_path)
    config = L.config
    monkeypatch.setattr(L, "config", lambda name, **kw: config("tiny", **kw))
    from runtime.tools import pdl_check

    return pdl_check


def test_pdl_check_passes_when_every_replay_gives_the_plain_bits(pdl_check_on_tiny, capsys):
    assert pdl_check_on_tiny.main(["--batches", "1,2", "--replays", "2", "--layers", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count(": 0/2 replays differ") == 8, out   # 2 batches x 2 policies x 2 plans


def test_pdl_check_fails_when_a_replay_differs(pdl_check_on_tiny, monkeypatch, capsys):
    """A PDL race (here: the PDL executors' logits read back perturbed) was printed as "2/2 replays differ" and the
    tool still exited 0, so a script or CI job running the check could not see it. Now exit status 1."""
    import numpy as np

    from runtime.executor import Executor

    read = Executor.read

    def perturbed(self, tid, dtype=None):
        out = read(self, tid, dtype)
        return out + np.float32(1) if self.pdl_always else out   # the "always" policy's executors only

    monkeypatch.setattr(Executor, "read", perturbed)
    assert pdl_check_on_tiny.main(["--batches", "1", "--replays", "2", "--layers", "1"]) == 1
    out = capsys.readouterr().out
    assert out.count(": 2/2 replays differ") == 2 and out.count(": 0/2 replays differ") == 2, out
