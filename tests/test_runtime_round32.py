"""The GPU runtime's CPU-side surface, round 32 (CPU only; pycuda is the fake driver of ``tests/fake_cuda.py``):
the tools' refusals that came after GPU work had started (or never came), checked on the fake driver, whose
trace shows whether anything reached the "GPU"."""

from __future__ import annotations

import os
import re

import pytest
from cli_contract import assert_tool_refused, run_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


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


JITTERS = [({"max_cycles": 1.5}, "max_cycles 1.5"), ({"max_cycles": "100"}, "max_cycles '100'"),
           ({"max_cycles": 1 << 63}, "max_cycles 9223372036854775808"), ({"max_cycles": True}, "max_cycles True"),
           ({"prob": "0.5"}, "prob '0.5'"), ({"prob": float("nan")}, "prob nan"), ({"seed": 1.5}, "seed 1.5"),
           ({"only": None}, "only None"), ({"only": (1,)}, "only (1,)")]


@pytest.mark.parametrize("kw,words", JITTERS, ids=[str(k) for k, _ in JITTERS])
def test_a_jitter_that_cannot_run_is_refused_when_made_not_mid_step(monkeypatch, kw, words):
    """``Jitter(max_cycles=1.5)`` (or "100": ``int()`` took both) was accepted and failed in ``randrange`` in the
    middle of the step's issue, after its input copies and forks (in a capture: a broken one); 2**63 cycles failed
    the spin kernel's long long at its launch; a string prob was a TypeError, ``only=None`` one at the issue. Now a
    ValueError naming the field when the Jitter is made, and a step given one issues nothing."""
    from runtime.executor import Jitter

    with pytest.raises(ValueError, match=re.escape(f"Jitter {words}")):
        Jitter(**kw)


def test_jitters_that_run_still_run(monkeypatch):
    """The bounds are inclusive, a list of node ids is taken as a tuple is, a numpy integer seed as the int it
    equals (``random.Random`` refused it: a TypeError mid-issue), and the step's bits are the plain ones."""
    import fake_cuda
    import numpy as np

    import memplan
    from runtime.executor import Executor, Jitter
    from runtime.models import llama as L

    drv = fake_cuda.install(monkeypatch)
    cfg = L.config("tiny", batch=1, layers=1)
    g = L.build_graph(cfg)
    ex = Executor(g, memplan.plan(g), inputs=L.make_inputs(cfg), random_weights_seed=1)
    ex.run()
    plain = ex.read("logits")
    for j in (Jitter(seed=np.int64(3), prob=1, max_cycles=(1 << 63) - 1), Jitter(prob=1.0, max_cycles=1),
              Jitter(prob=1.0, only=[g.nodes[0].id])):
        ex.run(jitter=j)
        assert np.array_equal(ex.read("logits"), plain)
    assert sum("spin" in op for op in drv.trace) == 2 * len(g.nodes) + 1   # prob 1: every node, then the one named


def test_compare_launches_fails_when_the_emulated_outputs_differ(monkeypatch, capsys):
    """``--emulate`` printed ``"bitwise_equal": false`` and the tool still exited 0 whenever the launch diff was
    empty: its exit status read the launches only. Here the emulation is made to disagree (the split plan's
    outputs shifted); exit 1. Unchanged, the same run agrees and exits 0."""
    import json

    from runtime.tools import compare_launches

    argv = ["--config", "tiny", "--batches", "1", "--fuse", "norms", "--devices", "2", "--emulate"]
    assert compare_launches.main(argv) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["same_launches"] and all(o["bitwise_equal"] for o in row["emulated"].values())

    from runtime import emulate as emulate_mod

    real = emulate_mod.emulate

    def shifted(graph, plan, *args, **kw):
        outs, mem, addr = real(graph, plan, *args, **kw)
        return ({t: v + 1 for t, v in outs.items()} if plan.devices > 1 else outs), mem, addr

    monkeypatch.setattr(emulate_mod, "emulate", shifted)
    assert compare_launches.main(argv) == 1
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["same_launches"] and not row["emulated"]["logits"]["bitwise_equal"]


@pytest.mark.parametrize("argv,words", [
    (["--dims", "128", "--batches", "2147483648"], ["--batches 2147483648", "does not fit the kernel's 32-bit int"]),
    (["--dims", "64", "--batches", "64", "--ctx", "2147483600"], ["--ctx 2147483600", "32-bit int"]),
], ids=["batch", "ctx"])
def test_attn_bench_refuses_launches_past_the_kernels_limits_before_building_the_library(monkeypatch, tmp_path, capsys,
                                                                                        argv, words):
    """Only the registry's rule was asked before the run (does some kernel take the shape?), not whether the
    launches fit: a batch or ctx whose arguments pass a 32-bit int went on to build the kernel library and then
    failed allocating host arrays of terabytes (a MemoryError, "out of memory" from the entry point). Now each
    launch the table would time is checked first (``launch_problem``): one line naming the options, exit 2."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert_tool_refused(*run_tool(capsys, "runtime.tools.attn_bench", argv), *words)
    assert drv.trace == [] and os.listdir(tmp_path) == []


def test_a_step_with_an_input_never_given_is_refused_naming_it(monkeypatch):
    """``Executor(g, plan, inputs={"inp": x})`` (``pos``, ``kv_idx`` and ``mask`` forgotten) ran: each step copied
    the never-written staging copies into the arena, so the step computed on whatever the device memory held (on
    a GPU a freed allocation's old bytes; the fake driver's zeros: token 0's row, an all-zero mask), silently.
    Now ``run``, ``capture`` and ``time_steps`` refuse naming the first missing input, issue nothing, and run once
    ``set_inputs`` has given the rest."""
    import fake_cuda
    import numpy as np

    import memplan
    from runtime.executor import Executor
    from runtime.models import llama as L

    drv = fake_cuda.install(monkeypatch)
    cfg = L.config("tiny", batch=2, layers=1)
    g = L.build_graph(cfg)
    inp = L.make_inputs(cfg, seed=1)
    ex = Executor(g, memplan.plan(g), inputs={"inp": inp["inp"]}, random_weights_seed=1)
    issued = len(drv.trace)
    for call in (ex.run, ex.capture, lambda: ex.time_steps("eager", steps=1, repeats=1, warmup=0),
                 lambda: ex.time_steps("graph", steps=1, repeats=1, warmup=0)):
        with pytest.raises(ValueError, match="input 'kv_idx' of graph .* was never given .*3 missing"):
            call()
    assert len(drv.trace) == issued
    ex.set_inputs({k: inp[k] for k in ("pos", "kv_idx", "mask")})
    ex.run()
    full = Executor(g, memplan.plan(g), inputs=inp, random_weights_seed=1)
    full.run()
    assert np.array_equal(ex.read("logits"), full.read("logits"))


def test_emulate_refuses_an_input_not_given():
    """The emulator, as the executors: a missing input ran on the arena's NaN poison, or with ``poison=False`` on
    zeros (finite logits, silently wrong)."""
    import numpy as np

    import memplan
    from runtime.emulate import emulate
    from runtime.models import llama as L

    cfg = L.config("tiny", batch=1, layers=1)
    g = L.build_graph(cfg)
    w, inp = L.make_weights(g, cfg, seed=1), L.make_inputs(cfg, seed=1)
    plan = memplan.plan(g)
    with pytest.raises(ValueError, match="emulate: input 'mask' of graph .* not given"):
        emulate(g, plan, w, {k: v for k, v in inp.items() if k != "mask"}, poison=False)
    assert np.isfinite(emulate(g, plan, w, inp, poison=False)[0]["logits"]).all()


def test_bench_refuses_a_pdl_ab_without_pdl(monkeypatch, tmp_path, capsys):
    """``--pdl-ab --no-pdl`` ran the whole benchmark without the A/B it asked for (no ``+nopdl`` mode, nothing
    said): one line naming both, exit 2, before anything runs."""
    import fake_cuda

    drv = fake_cuda.install(monkeypatch)
    monkeypatch.chdir(tmp_path)
    code, err = run_tool(capsys, "runtime.bench", ["--configs", "tiny", "--batches", "1", "--pdl-ab", "--no-pdl"])
    assert_tool_refused(code, err, "--pdl-ab with --no-pdl")
    assert drv.trace == [] and os.listdir(tmp_path) == []


def _folded(graph, n: int = 3):
    """``memplan.plan_devices(graph, n)`` with the last device's work moved onto device 0 (its arena after device
    0's): a safe plan over n - 1 devices whose stages go device 0 -> 1 -> 0, so no order of per-device CUDA graphs
    exists. Returns (split, plan)."""
    from dataclasses import replace

    import memplan

    split, multi = memplan.plan_devices(graph, n)
    shift = -(-multi.device_arena_bytes[0] // multi.alignment) * multi.alignment
    tensors = tuple((t, None if o is None else o + (shift if d == n - 1 else 0), s)
                    for (t, o, s), d in zip(multi.tensors, multi.tensor_devices))
    arenas = (shift + multi.device_arena_bytes[n - 1], *multi.device_arena_bytes[1:n - 1])
    fold = {d: 0 if d == n - 1 else d for d in range(n)}
    return split, replace(multi, devices=n - 1, node_devices=tuple(fold[d] for d in multi.node_devices),
                          tensor_devices=tuple(fold[d] for d in multi.tensor_devices), tensors=tensors,
                          device_arena_bytes=arenas, arena_bytes=max(arenas))


def test_a_plan_whose_devices_wait_on_each_other_runs_eagerly_and_only_capture_refuses_it(monkeypatch):
    """A verified split plan whose devices wait on each other (0 -> 1 -> 0) was refused when the executor was made,
    after every allocation and kernel library, though only per-device CUDA graphs cannot order it: eager steps run
    the plan's events exactly. Now it runs eagerly (the one-GPU bits) and ``capture`` refuses it, capturing nothing."""
    import fake_cuda
    import numpy as np

    import memplan
    from runtime.emulate import emulate
    from runtime.models import llama as L
    from runtime.multi_gpu import MultiGpuExecutor

    cfg = L.config("tiny", batch=1)
    g = L.build_graph(cfg)
    split, plan = _folded(g)
    memplan.verify(split.graph, plan)
    w, inp = L.make_weights(g, cfg, seed=1), L.make_inputs(cfg, seed=1)
    drv = fake_cuda.install(monkeypatch, devices=2)
    ex = MultiGpuExecutor(split.graph, plan, inputs=inp, weights=w)
    ex.run()
    assert np.array_equal(ex.read("logits"), emulate(g, memplan.plan(g), w, inp)[0]["logits"])
    with pytest.raises(ValueError, match=r"devices \[0, 1\] wait on each other: per-device CUDA graphs"):
        ex.capture()
    assert not ex.captured and not [op for op in drv.trace if op[1] == "begin_capture"]
    assert ex.time_steps("eager", steps=1, repeats=1, warmup=0)
    ex.free()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.sampled_from([8, 16, 32, 64]), kv=st.sampled_from([1, 2]), grp=st.sampled_from([1, 2, 4]),
       batch=st.sampled_from([1, 2, 3, 8, 17]), ctx=st.sampled_from([0, 3, 40]), ffn=st.sampled_from([8, 24]),
       fuse=st.sampled_from(["norms", "runtime"]), multi=st.booleans(), wgmma=st.booleans(), seed=st.integers(0, 99))
def test_emulated_step_with_arbitrary_cache_rows_positions_and_mask_matches_the_reference(d, kv, grp, batch, ctx, ffn,
                                                                                          fuse, multi, wgmma, seed):
    """Inputs as a user hands them, not as ``make_inputs`` makes them: each token writes a random distinct cache row
    (not ctx + b), at a random position, under a random finite mask with holes (-inf) that keeps the token's own
    row. The emulated step (one or three streams, a random host order its events allow) gives the float64
    reference's logits and KV caches (every row, the written ones included)."""
    import numpy as np

    from runtime.emulate import emulate
    from runtime.models import llama as L
    from runtime.step import plan_step

    cfg = L.config("tiny", batch=batch, hidden=kv * grp * d, heads=kv * grp, kv_heads=kv, ffn=ffn, vocab=33, layers=1,
                   ctx=ctx)
    g = L.build_graph(cfg, fuse=fuse)
    w, inp = L.make_weights(g, cfg, seed=seed), L.make_inputs(cfg, seed=seed)
    rng = np.random.default_rng(seed)
    n_kv = L.dims(cfg)["n_kv"]
    inp["kv_idx"] = rng.permutation(n_kv)[:batch].astype(np.int32)
    inp["pos"] = rng.integers(0, 4096, batch).astype(np.int32)
    mask = np.where(rng.random((batch, n_kv)) < 0.3, -np.inf, rng.standard_normal((batch, n_kv))).astype(np.float32)
    mask[np.arange(batch), inp["kv_idx"]] = 0.0
    inp["mask"] = mask
    plan = plan_step(g, L.multi_stream_schedule(g) if multi else None, batch=batch)
    out, mem, addr = emulate(g, plan, w, inp, wgmma=wgmma, seed=seed)
    ref, caches = L.reference_forward(cfg, w, inp)
    assert L.rel_err(out["logits"], ref) < (1e-4 if batch == 1 else 5e-3)
    for name, want in caches.items():
        got = mem.view(addr[name], want.size, np.float16).reshape(want.shape).astype(np.float64)
        np.testing.assert_allclose(got, want.astype(np.float64), rtol=2e-3, atol=2e-3, err_msg=name)


@pytest.mark.parametrize("outcome", ["timeout", "not json", "no output", "a list", "no bandwidth"])
def test_a_peer_that_times_out_or_prints_no_result_is_reported_not_a_traceback(monkeypatch, outcome):
    """The PyTorch peer's read bandwidth (``torch_read_bandwidth``, asked once per benchmark after the kernels
    compiled) did not catch its 300 s timeout, and both it and ``run_torch_peer`` read the last line of the peer's
    output as JSON unguarded: a timeout, a stray last line or an empty output ended the benchmark in a traceback.
    Now the bandwidth is None and the peer's result an ``{"error": ...}``, as for a peer that exits non-zero."""
    import subprocess

    from runtime import bench

    def run(cmd, **kw):
        if outcome == "timeout":
            raise subprocess.TimeoutExpired(cmd, kw["timeout"])
        stdout = {"not json": '{"eager": 1}\nwarning: something\n', "no output": "", "a list": "[1, 2]\n",
                  "no bandwidth": '{"read_bandwidth_bytes_per_s": "fast"}\n'}[outcome]
        return subprocess.CompletedProcess(cmd, 0, stdout, "")

    monkeypatch.setattr(bench.subprocess, "run", run)
    logged = []
    assert bench.torch_read_bandwidth(log=logged.append) is None
    peer = bench.run_torch_peer("tiny", 1, steps=1, rounds=1, log=logged.append)
    assert outcome == "no bandwidth" or set(peer) == {"error"}
    assert len(logged) == 1 + (outcome != "no bandwidth"), logged


def test_a_peer_result_is_read_as_before(monkeypatch):
    import subprocess

    from runtime import bench

    monkeypatch.setattr(bench.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 0, 'compiling...\n{"read_bandwidth_bytes_per_s": 4.2e12, "eager": {"ms_per_step": 1.0}}\n', ""))
    assert bench.torch_read_bandwidth() == 4.2e12
    assert bench.run_torch_peer("tiny", 1, steps=1, rounds=1)["eager"] == {"ms_per_step": 1.0}


def _binary(op: str, x_shape, b_shape, *, norm: str | None = None):
    """A graph computing ``op(x, b)`` (x an input of ``x_shape``, b of ``b_shape``: an input, or with ``norm``
    a f32 weight after a RMS_NORM ("norm") or an ADD + RMS_NORM ("add_norm") of x, the three or two nodes in one
    fusion group)."""
    import math

    import memplan

    b = memplan.GraphBuilder("bcast")
    f32 = lambda shape: dict(shape=list(shape), dtype="f32")   # noqa: E731
    nx, nb = 4 * math.prod(x_shape), 4 * math.prod(b_shape)
    b.input("x", nx, **f32(x_shape))
    group = {"group": "g"} if norm else {}
    src = "x"
    if norm == "add_norm":
        b.input("r", nx, **f32(x_shape))
        b.node("add", "ADD", ["x", "r"], b.intermediate("h", nx, **f32(x_shape)), **group)
        src = "h"
    if norm:
        b.node("norm", "RMS_NORM", [src], b.intermediate("xn", nx, **f32(x_shape)), **group)
        src = "xn"
        b.weight("w", nb, **f32(b_shape))
    else:
        b.input("w", nb, **f32(b_shape))
    b.node("n", op, [src, "w"], b.output("y", nx, **f32(x_shape)), **group)
    if norm == "add_norm":   # h is read after the group (as a residual is)
        b.node("keep", "CONT", ["h"], b.output("h2", nx, **f32(x_shape)))
    return b.build()


@pytest.mark.parametrize("op,xs,bs,norm", [("MUL", [2, 4], [2, 1], None), ("ADD", [4, 8], [4, 1], None),
                                           ("MUL", [2, 4], [2, 2], None), ("MUL", [2, 2, 4], [2, 1, 4], None),
                                           ("MUL", [4, 8], [4, 1], "norm"), ("MUL", [4, 8], [4, 1], "add_norm")])
def test_a_broadcast_the_kernels_would_compute_otherwise_is_refused(op, xs, bs, norm):
    """``MUL(x [2, 4], b [2, 1])`` (each row scaled by its own element, as numpy and ggml broadcast) ran as the
    kernels broadcast, a flat repeat of b's elements (row 0 times b0, b1, b0, b1): other values than the graph
    means, silently; the fused norm groups (RMS_NORM, MUL by a [4, 1] weight; ADD, RMS_NORM, MUL) did the same.
    Now a KernelError naming the node and both shapes, from the registry (so the emulator and the executors)."""
    import numpy as np

    import memplan
    from runtime.emulate import emulate
    from runtime.kernels import KernelError

    g = _binary(op, xs, bs, norm=norm)
    inputs = {t.id: np.ones(t.size // 4, np.float32) for t in g.tensors if t.kind == "input"}
    weights = {"w": np.ones(int(np.prod(bs)), np.float32)} if norm else {}
    if not norm:
        inputs["w"] = np.ones(int(np.prod(bs)), np.float32)
    with pytest.raises(KernelError, match=re.escape(f"node 'n': 'w' of shape {bs} broadcasts over")):
        emulate(g, memplan.plan(g), weights, inputs)


def _binary_emulated(op: str, xs: list[int], bs: list[int], norm: str | None, seed: int = 0):
    """The emulated ``op(x, b)`` of ``_binary`` (random inputs and weight) and numpy's ggml-style reference: b
    tiled along every dimension (leading 1s added, those past x's rank dropped), or reshaped to x where it has
    as many elements."""
    import math

    import numpy as np

    import memplan
    from runtime.emulate import emulate

    g = _binary(op, xs, bs, norm=norm)
    rng = np.random.default_rng(seed)
    inputs = {t.id: rng.standard_normal(t.size // 4).astype(np.float32) for t in g.tensors if t.kind == "input"}
    wv = rng.standard_normal(math.prod(bs)).astype(np.float32)
    weights = {"w": wv} if norm else {}
    if not norm:
        inputs["w"] = wv
    x = inputs["x"].reshape(xs).astype(np.float64)
    if norm == "add_norm":
        x = x + inputs["r"].reshape(xs)
    if norm:
        x = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5)
    if math.prod(bs) == math.prod(xs):
        full = wv.reshape(xs).astype(np.float64)
    else:
        shape = ([1] * (len(xs) - len(bs)) + list(bs))[-len(xs):]
        full = np.tile(wv.reshape(shape), [a // c for a, c in zip(xs, shape)])
    want = x * full if op == "MUL" else x + full
    return emulate(g, memplan.plan(g), weights, inputs)[0]["y"].reshape(xs), want


@pytest.mark.parametrize("xs,bs,norm", [([2, 4], [4], None), ([2, 4], [1, 4], None), ([2, 4], [2], None),
                                        ([6, 4], [3, 4], None), ([2, 4], [4, 2], None), ([4, 8], [8], "norm"),
                                        ([4, 8], [1, 8], "add_norm"), ([4, 8], [4], "add_norm")])
def test_broadcasts_the_kernels_compute_as_ggml_repeats_still_run(xs, bs, norm):
    """b's shape the trailing dimensions of x's, the first one dividing (ggml's repeat, what the kernels compute),
    or as many elements as x: the emulated step equals numpy's ggml-style repeat of b."""
    import numpy as np

    got, want = _binary_emulated("MUL", xs, bs, norm)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
