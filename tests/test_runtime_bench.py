"""CPU tests of the benchmark's own code (``runtime.bench``, ``runtime.torch_peer``): no GPU needed.

- ``summary_rows`` / ``summary`` / ``table`` on synthetic results: the ratios they compute, the best
  multi-stream graph (prefetch and PDL variants excluded), a config without batch 1, without PyTorch,
  and with a failed torch.compile;
- ``runtime.bench.main`` end to end on the fake driver (``tests/fake_cuda.py``) for the tiny config, the
  PyTorch peer replaced by canned results: the roofline is the better of the two read bandwidths, every
  roofline fraction uses it, and the JSON carries the bandwidths and the summary;
- ``runtime.tools.attn_bench`` end to end on the fake driver: every attention kernel timed, the registry's
  choice reported;
- the peer's step on CPU for the tiny config: one layer function serves every layer (dynamo compiles two
  graphs, layer and head, for any depth), the ``torch.compile(backend="eager")`` step equals the eager
  step bit for bit, repeated steps give the same logits (the KV-cache writes are idempotent), and the
  SDPA and hand-written attention agree.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace

import pytest

from runtime import bench
from runtime.models import llama as L


def _modes(single: float, **multi: float) -> dict:
    out = {"1 stream graph": single, "1 stream eager": single * 3, **multi}
    return {lab: {"ms_per_step": ms, "tokens_per_s": 1.0, "roofline_fraction": 0.5 / ms, "arena_bytes": 100}
            for lab, ms in out.items()}


def _torch(graph=None, compile=None) -> dict:
    t = {"peak_activation_bytes": 7, "eager": {"ms_per_step": 9.0, "tokens_per_s": 1.0, "roofline_fraction": 0.1}}
    if graph is not None:
        t["graph"] = {"ms_per_step": graph, "tokens_per_s": 1.0, "roofline_fraction": 0.2}
    if isinstance(compile, dict):
        t["compile"] = compile
    elif compile is not None:
        t["compile"] = {"ms_per_step": compile, "tokens_per_s": 1.0, "roofline_fraction": 0.3}
    return t


def _results() -> list[dict]:
    return [
        {"config": "1b", "batch": 1, "fuse": "runtime", "torch": _torch(graph=3.0, compile=2.5),
         "modes": _modes(2.0, **{"multi_hand graph": 1.6, "multi_opt graph": 1.8,
                                 "multi_hand graph+prefetch": 1.0, "multi_hand eager": 0.5})},
        {"config": "1b", "batch": 4, "fuse": "runtime", "torch": _torch(graph=4.0, compile=3.6),
         "modes": _modes(2.5, **{"multi_hand graph": 2.2, "multi_opt graph": 2.0})},
        # a second fusion mode of the same config and batch: table rows, no summary row
        {"config": "1b", "batch": 4, "fuse": "norms", "modes": _modes(0.1, **{"multi_hand graph": 0.1})},
        # no batch 1 of this config, torch.compile failed
        {"config": "8b", "batch": 16, "fuse": "runtime", "torch": _torch(graph=8.0, compile={"error": "boom"}),
         "modes": _modes(6.0, **{"multi_hand graph": 5.0})},
        # no PyTorch peer, no multi-stream graph
        {"config": "tiny", "batch": 1, "fuse": "runtime", "modes": _modes(1.0)},
    ]


def test_summary_rows_compute_the_ratios():
    rows = {(r["config"], r["batch"]): r for r in bench.summary_rows(_results())}
    assert list(rows) == [("1b", 1), ("1b", 4), ("8b", 16), ("tiny", 1)]
    r = rows[("1b", 1)]
    assert r["best multi-stream mode"] == "multi_hand graph"   # the +prefetch and eager modes are not graphs
    assert r["best multi-stream graph ms"] == 1.6 and r["1 stream graph ms"] == 2.0
    assert r["multi-stream speedup"] == pytest.approx(1.25)
    assert r["roofline fraction (multi)"] == pytest.approx(0.5 / 1.6)
    assert r["step vs batch-1 step"] == pytest.approx(1.0)
    assert r["PyTorch eager graph ms"] == 3.0 and r["torch.compile graph ms"] == 2.5
    assert r["memplan multi vs torch.compile"] == pytest.approx(2.5 / 1.6)
    r = rows[("1b", 4)]   # the first fusion mode's result, not the norms one
    assert r["best multi-stream mode"] == "multi_opt graph" and r["best multi-stream graph ms"] == 2.0
    assert r["multi-stream speedup"] == pytest.approx(1.25)
    assert r["step vs batch-1 step"] == pytest.approx(2.0 / 1.6)
    assert r["memplan multi vs torch.compile"] == pytest.approx(3.6 / 2.0)
    r = rows[("8b", 16)]
    assert r["step vs batch-1 step"] is None
    assert r["torch.compile graph ms"] == "error" and r["memplan multi vs torch.compile"] is None
    assert r["PyTorch eager graph ms"] == 8.0
    r = rows[("tiny", 1)]
    assert r["best multi-stream graph ms"] is None and r["multi-stream speedup"] is None
    assert r["PyTorch eager graph ms"] is None and r["torch.compile graph ms"] is None


def test_summary_and_table_markdown():
    md = bench.summary(_results()).splitlines()
    assert md[0] == "| " + " | ".join(bench.SUMMARY_COLUMNS) + " |"
    assert len(md) == 2 + 4 and all(line.count("|") == len(bench.SUMMARY_COLUMNS) + 1 for line in md)
    assert md[2] == "| 1b | 1 | 2.000 | 1.600 | 1.250x | 31.2% | 1.000x | 3.000 | 2.500 | 1.562x |"
    assert md[4] == "| 8b | 16 | 6.000 | 5.000 | 1.200x | 10.0% | - | 8.000 | error | - |"
    assert md[5] == "| tiny | 1 | 1.000 | - | - | - | - | - | - | - |"
    tab = bench.table(_results()).splitlines()
    compile_rows = [r for r in tab if "| PyTorch compile graph |" in r]
    assert compile_rows[0] == "| 1b | 1 | - | PyTorch compile graph | 2.500 | 1 | 30.0% | peak act. 7 | 0.800x |"
    assert compile_rows[-1] == "| 8b | 16 | - | PyTorch compile graph | failed | - | - | - | - |"
    assert len(compile_rows) == 3
    # "vs 1-stream graph" of the norms result is relative to the first (runtime) result's 1-stream graph
    assert "| 1b | 4 | norms | 1 stream graph | 0.100 | 1 | 500.0% | 100 | 25.000x |" in tab
    assert sum("| PyTorch graph |" in r for r in tab) == 3 and sum("| PyTorch eager |" in r for r in tab) == 3


def test_main_on_a_fake_driver(monkeypatch, tmp_path):
    """The whole benchmark loop for the tiny config on the fake driver (every event pair reads 1 ms), the
    PyTorch peer canned: the roofline is the faster read, and all fractions use it."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    import pycuda.driver as cuda  # the fake

    monkeypatch.setattr(cuda.Device, "name", lambda self: "fake GPU", raising=False)
    monkeypatch.setattr(bench, "READ_BYTES", 1 << 16)
    monkeypatch.setattr(bench, "COPY_BYTES", 1 << 12)
    torch_read = 2 * (1 << 16) / 1e-3   # twice what l2_prefetch reads in the fake's 1 ms
    monkeypatch.setattr(bench, "torch_read_bandwidth", lambda log=print: torch_read)
    calls = []

    def peer(name, batch, *, steps, rounds, log=print, compile=True):
        calls.append((name, batch, compile))
        return _torch(graph=0.25, compile={"error": "x"} if batch == 2 else 0.2)

    monkeypatch.setattr(bench, "run_torch_peer", peer)
    out = tmp_path / "b.json"
    assert bench.main(["--configs", "tiny", "--batches", "1,2", "--fuse", "runtime,norms", "--rounds", "1",
                       "--steps", "3", "--timed-ms", "1", "--no-torch-compile", "--out", str(out)]) == 0
    assert calls == [("tiny", 1, False), ("tiny", 2, False)]   # the first fusion mode only
    j = json.loads(out.read_text())
    assert j["read_bandwidth_bytes_per_s"] == pytest.approx((1 << 16) / 1e-3)
    assert j["torch_read_bandwidth_bytes_per_s"] == torch_read
    assert j["roofline_bandwidth_bytes_per_s"] == j["bandwidth_bytes_per_s"] == torch_read
    assert j["copy_bandwidth_bytes_per_s"] == pytest.approx(2 * (1 << 12) / 1e-3)
    assert j["summary_markdown"] == bench.summary(j["results"])
    # tiny: no batch-1 targets, no batch 16 or 64; torch.compile failed at batch 2, so "every batch" is unknown
    assert j["goals"] == bench.goals(j["results"], torch_read, torch_read) == [
        {"goal": "faster than torch.compile in a CUDA graph at every batch (worst ratio) >", "config": "tiny",
         "value": pytest.approx(0.2 / j["results"][0]["modes"]["multi_hand graph"]["ms_per_step"]), "target": 1.0,
         "met": None}]
    assert [(r["config"], r["batch"], r["fuse"]) for r in j["results"]] == [
        ("tiny", 1, "runtime"), ("tiny", 1, "norms"), ("tiny", 2, "runtime"), ("tiny", 2, "norms")]
    for r in j["results"]:
        assert all(r["same_logits_as_serial"].values()) and r["logits_finite"]
        assert r["timed_steps"] == {"graph": 3, "eager": 2}   # 2 x 0.5 ms fill --timed-ms 1: eager cut to 2
        for v in r["modes"].values():
            # (rel: the JSON's ms/step and fractions are rounded to 4 decimals)
            assert v["roofline_fraction"] == pytest.approx(r["weight_bytes"] / torch_read / (v["ms_per_step"] / 1e3),
                                                           rel=1e-3)
    t = j["results"][0]["torch"]
    assert t["graph"]["roofline_fraction"] == pytest.approx(j["results"][0]["weight_bytes"] / torch_read / 0.25e-3,
                                                            abs=1e-4)
    assert "error" in j["results"][2]["torch"]["compile"] and "torch" not in j["results"][1]


# -- the PyTorch peer's step, on the CPU --------------------------------------------------------------


def _peer_step(torch, batch, **kw):
    from runtime import torch_peer as P

    cfg = L.config("tiny", batch=batch)
    layers, top = P.build(cfg, device="cpu")
    inputs = L.make_inputs(cfg, seed=1)
    return cfg, P.make_step(cfg, layers, top, inputs, device="cpu", **kw)


@pytest.mark.parametrize("batch", [1, 3])
def test_peer_step_runs_on_cpu_and_compiles_once_for_all_layers(torch, batch):
    cfg, (step, x) = _peer_step(torch, batch)
    with torch.no_grad():
        y = step(x)
        assert y.shape == (batch, cfg.vocab) and y.dtype == torch.float16
        assert bool(torch.isfinite(y).all())
        assert torch.equal(step(x), y)   # the step rewrites its KV-cache rows with the same values
    graphs = []

    def backend(gm, example_inputs):   # dynamo's "eager" backend, counting the graphs it is given
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    compiled = functools.partial(torch.compile, backend=backend, fullgraph=True, dynamic=False)
    _, (stepc, xc) = _peer_step(torch, batch, compile=compiled)
    with torch.no_grad():
        yc = stepc(xc)
        yc2 = stepc(xc)
    assert len(graphs) == 2   # the layer function (every layer) and the head: no per-layer recompile
    assert torch.equal(yc, y) and torch.equal(yc2, y)


def test_peer_step_eager_compile_backend_and_hand_attention(torch):
    from runtime import torch_peer as P

    _, (step, x) = _peer_step(torch, 2)
    torch._dynamo.reset()
    _, (stepc, _) = _peer_step(torch, 2, compile=functools.partial(torch.compile, backend="eager", fullgraph=True))
    _, (steph, _) = _peer_step(torch, 2, use_sdpa=False)
    with torch.no_grad():
        y, yc, yh = step(x), stepc(x), steph(x)
    assert torch.equal(yc, y)
    assert P.rel_l2(yh, y) < 1e-2
    assert P.LAYER_TENSORS == tuple(P.build(L.config("tiny"), device="cpu")[0][0])


def test_attn_bench_on_a_fake_driver(monkeypatch, tmp_path):
    """``runtime.tools.attn_bench`` end to end on the fake driver (small cache): a row per (d, batch) with
    a time for every attention kernel that takes the shape and the registry's choice among them
    (attn_fused_f16 at batch 1, an attn_mma split from batch 2)."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.kernels import ATTN_MMA
    from runtime.kernels.ops import ATTN_MMA_SPEC, ATTN_MMA_W8
    from runtime.tools import attn_bench

    out = tmp_path / "attn.json"
    assert attn_bench.main(["--dims", "64", "--batches", "1,4", "--ctx", "24", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["d"], r["B"]) for r in rows] == [(64, 1), (64, 4)]
    for r in rows:
        assert all(r[name] > 0 for name in ATTN_MMA.values()) and r["attn_fused_f16"] > 0
    d64 = {name for (_, d), name in ATTN_MMA_SPEC.items() if d == 64}   # beside the generic kernels
    d64w8 = {name for (_, d), name in ATTN_MMA_W8.items() if d == 64}
    assert rows[0]["registry"] == "attn_fused_d64_f16" and rows[1]["registry"] in d64w8
    assert all(r[name] > 0 for r in rows for name in d64 | d64w8)
    assert "attn_batch_f16" in rows[1] and "attn_batch_f16" not in rows[0]


@pytest.mark.parametrize("args", [["--dims", "24"], ["--dims", "0"], ["--dims", "264"], ["--batches", "x"],
                                  ["--ctx", "-3"], ["--dims", "128", "--batches", "0"]])
def test_attn_bench_refuses_shapes_no_kernel_takes(monkeypatch, tmp_path, capsys, args):
    """A head size, batch or context no attention kernel takes is one line and exit 2, before the library
    compiles and before any file is written (d 24 at batch 1 would have launched attn_fused_f16, which
    needs d / 8 a power of two, and trapped or computed garbage)."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.tools import attn_bench

    out = tmp_path / "attn.json"
    assert attn_bench.main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("attn_bench: error:"), err
    assert not out.exists()


def test_attn_bench_times_only_the_kernels_that_take_a_shape(monkeypatch, tmp_path):
    """Head size 96 (d / 8 = 12) at 2 tokens, or a 20000-row cache: attn_mma's kernels take them, attn_fused
    (power-of-two d / 8, at most 16384 rows) does not, so the table leaves it out rather than launch it past
    its shared memory; d 256 takes attn_fused at batch 1 only (on the fake driver, a small cache)."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.tools import attn_bench

    assert attn_bench.kernels_taking(96, 100) == (False, False, True)
    assert attn_bench.kernels_taking(128, 20000) == (False, True, True)
    assert attn_bench.kernels_taking(256, 100) == (True, False, False)
    for args, has, lacks in ((["--dims", "96", "--batches", "2"], "attn_mma_f16", "attn_fused_f16"),
                             (["--dims", "256", "--batches", "1"], "attn_fused_f16", "attn_mma_f16")):
        out = tmp_path / "attn.json"
        assert attn_bench.main([*args, "--ctx", "24", "--out", str(out)]) == 0
        row = json.loads(out.read_text())[0]
        assert has in row and lacks not in row, sorted(row)


def test_rule_ab_on_a_fake_driver(monkeypatch, tmp_path):
    """``runtime.tools.rule_ab`` end to end on the fake driver: a row per (config, batch, variant) with
    every graph mode's time, the best multi-stream one, the ratio to the first variant, every run bitwise
    equal to its serial plan; the registry constants each variant set are back afterwards; the JSON is
    written."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.kernels import ops
    from runtime.tools import rule_ab

    monkeypatch.setattr(bench, "READ_BYTES", 1 << 16)
    before = (ops.WG_FILL_MIN_ROWS, ops.WG_BLOCKS_PER_SM)
    out = tmp_path / "ab.json"
    assert rule_ab.main(["--configs", "tiny", "--batches", "2", "--rounds", "2", "--steps", "3", "--out", str(out),
                         "--variant", "base:", "--variant", "low:WG_FILL_MIN_ROWS=9,WG_BLOCKS_PER_SM=0.2"]) == 0
    assert (ops.WG_FILL_MIN_ROWS, ops.WG_BLOCKS_PER_SM) == before
    rows = json.loads(out.read_text())["rows"]
    assert [(r["config"], r["batch"], r["variant"]) for r in rows] == [("tiny", 2, "base"), ("tiny", 2, "low")]
    assert rows[1]["consts"] == {"WG_FILL_MIN_ROWS": 9, "WG_BLOCKS_PER_SM": 0.2} and rows[0]["vs_first"] == 1.0
    for r in rows:
        assert r["bitwise"] and "1 stream graph" in r["modes"] and r["multi_ms"] > 0
        assert r["multi_ms"] == min(v for k, v in r["modes"].items() if not k.startswith("1 stream"))


@pytest.mark.parametrize("variant,says", [
    ("nocolon", "expected NAME:CONST=VALUE"), (":WG_WAVE=1", "expected NAME:CONST=VALUE"),
    ("a:NOT_A_CONST=1", "'NOT_A_CONST' is not a numeric constant"), ("a:WG_WAVE", "'WG_WAVE' is not a numeric"),
    ("a:TC_BUILDS=1", "'TC_BUILDS' is not a numeric"), ("a:WG_STAGES=5", "WG_STAGES sizes compiled kernels"),
    ("a:WG_MIN_ROWS=x", "WG_MIN_ROWS='x' is not an integer"), ("a:WG_WAVE=0.5.1", "is not a number"), ("a:_wg_split=1", "'_wg_split' is not a numeric")])
def test_rule_ab_refuses_a_bad_variant(capsys, variant, says):
    """A malformed variant, an unknown or non-numeric name, a constant that sizes kernels, or a value of
    the wrong type: exit 2 with one line naming it, before any device work."""
    from runtime.tools import rule_ab

    assert rule_ab.main(["--variant", variant]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and says in err, err


def test_bound_on_a_fake_driver(monkeypatch, tmp_path):
    """``runtime.tools.bound`` end to end on the fake driver (tiny config): every variant of both plans timed,
    the executor's launches put back afterwards; and the swaps themselves: ``weight_stream`` reads exactly
    each batch-1 product's weight bytes (both matrices of the SwiGLU pass), waits first unless ``early``,
    and ``gemv_only`` keeps the products and nothing else."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.kernels import Launch
    from runtime.tools import bound

    out = tmp_path / "bound.json"
    assert bound.main(["--configs", "tiny", "--rounds", "1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res[0]["config"] == "tiny" and set(res[0]["ms"]) == {
        f"{p}:{v}" for p in ("serial", "multi") for v in bound.variants(4)} | {"serial:no_side"}
    # no_side drops what the hand-made multi-stream plan runs beside stream 0: K's and V's branches
    from runtime.models import llama as L
    from runtime.step import plan_step

    g = L.build_graph(L.config("tiny", batch=1), "runtime")
    side = bound.side_nodes(plan_step(g, L.multi_stream_schedule(g, "hand"), batch=1))
    assert side == {f"l{i}.{s}" for i in range(2) for s in ("mm_k", "rope_k", "set_k", "mm_v", "set_v")}
    g1 = Launch("gemv_f16_f32", (8, 1, 1), (256, 1, 1), (100, 200, 300, 64, 512, 8))
    sw = Launch("gemv_swiglu_f16_f32", (8, 1, 1), (256, 1, 1), (100, 400, 200, 300, 64, 512, 8))
    norm = Launch("add_rms_norm4_f32", (1, 1, 1), (128, 1, 1), (1, 2, 3, 4, 5, 64, 64, 1e-5))
    v = bound.variants(4)
    assert v["gemv_only"]((g1, norm, sw)) == (g1, sw)
    (s1,) = v["stream"]((g1, norm))
    assert s1.kernel == "weight_stream" and s1.args == (100, 64 * 512 * 2 // 16, 100, 0, 0, 0) and s1.grid[0] == 32
    (s2,) = v["stream_early"]((sw,))
    assert s2.args == (100, 64 * 512 * 2 // 16, 400, 64 * 512 * 2 // 16, 0, 1)
    assert [ln.kernel for ln in v["full_stream"]((g1, norm))] == ["weight_stream", "add_rms_norm4_f32"]
    # the "no_*" variants drop one family of latency-bound kernels and keep everything else
    attn = Launch("attn_fused_d64_f16", (8, 1, 1), (256, 1, 1), ())
    rope = Launch("rope_set_rows_f16", (1, 1, 1), (256, 1, 1), ())
    step = (g1, norm, attn, rope, sw)
    assert v["no_norm"](step) == (g1, attn, rope, sw)
    assert v["no_attn"](step) == (g1, norm, rope, sw)
    assert v["no_rope_set"](step) == (g1, norm, attn, sw)
    # above one row the tensor-core products are swapped the same way (plain and SwiGLU, every build)
    tc = Launch("gemm_tc4_f16_f32", (64, 1, 1), (128, 1, 1), (100, 200, 300, 16, 4096, 1024))
    tcs = Launch("gemm_tcm_swiglu_f16_f32", (64, 1, 1), (256, 1, 1), (100, 400, 200, 300, 16, 2048, 512))
    wg = Launch("gemm_tc2g_f16_f32", (64, 1, 1), (256, 1, 1), (100, 200, 300, 64, 1024, 512))
    assert v["stream"]((replace(tc, carveout=40),))[0].carveout == 40
    assert [s.args for s in v["stream"]((tc, norm, tcs, wg))] == [
        (100, 4096 * 1024 // 8, 100, 0, 0, 0), (100, 2048 * 512 // 8, 400, 2048 * 512 // 8, 0, 0),
        (100, 1024 * 512 // 8, 100, 0, 0, 0)]
    assert bound.main(["--configs", "tiny", "--batches", "1,16", "--rounds", "1", "--out", str(out)]) == 0
    assert [(r["config"], r["batch"]) for r in json.loads(out.read_text())] == [("tiny", 1), ("tiny", 16)]


@pytest.mark.parametrize("tool,argv,says", [
    ("runtime.bench", ["--configs", "zz"], "unknown config 'zz'"),
    ("runtime.bench", ["--batches", "1,0"], "0 is not at least 1"),
    ("runtime.bench", ["--fuse", "foo"], "unknown mode 'foo'"),
    ("runtime.bench", ["--rounds", "0"], "--rounds 0"),
    ("runtime.bench", ["--timed-ms", "nan"], "--timed-ms nan"),
    ("runtime.bench_multi_gpu", ["--devices", "0"], "--devices 0"),
    ("runtime.tools.bound", ["--batches", "1,x"], "'x' is not an integer"),
    ("runtime.tools.gemm_bench", ["--rows", "65"], "65 is not 1..64"),
    ("runtime.tools.gemm_bench", ["--configs", "tiny"], "unknown config 'tiny'"),
    ("runtime.tools.profile", ["--batch", "0"], "--batch 0"),
    ("runtime.tools.pdl_check", ["--replays", "0"], "--replays 0"),
    ("runtime.tools.bound", [], "needs pycuda"),
    ("runtime.bench", [], "needs pycuda"),
])
def test_gpu_tools_refuse_bad_options_and_a_missing_gpu_stack_in_one_line(monkeypatch, capsys, tool, argv, says):
    """Every option is checked, and pycuda looked for, before a kernel library is built: one line on stderr
    and exit status 2, never a traceback (pycuda made unimportable here, as on a machine without it)."""
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    assert importlib.import_module(tool).main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and says in err and "error:" in err, err


def _goal_results(b1: float, b16: float, b64: float, *, arena16: int = 100, compile64: float = 2.0) -> list[dict]:
    def res(batch, single, multi, compile, arena=100):
        modes = _modes(single, **{"multi_hand graph": multi})
        modes["multi_hand graph"]["arena_bytes"] = arena
        return {"config": "1b", "batch": batch, "fuse": "runtime", "torch": _torch(graph=9.0, compile=compile),
                "modes": modes}
    return [res(1, b1 * 1.2, b1, 1.5), res(16, b16 * 1.2, b16, 1.6, arena16),
            res(64, b64 * 1.2, b64, compile64)]


def test_goals_are_read_off_the_run():
    """Each of issue 14's goals on synthetic runs that meet and miss it by a hair (so a wrong comparison or
    ratio fails), the arena condition of the multi-stream goal, and the roofline read at PyTorch's slower
    read (a longer roofline step: a larger fraction)."""
    def by_goal(rows):
        return {(g["goal"].split(" >=")[0].split(" <=")[0].split(" (")[0], g["config"]): g for g in rows}

    met = by_goal(bench.goals(_goal_results(1.0, 1.149, 1.499), 2.0, 1.0))
    # roofline fraction of the multi graph at batch 1: 0.5 / 1.0 (``_modes``); at half the bandwidth twice that
    assert met[("batch-1 roofline fraction", "1b")]["value"] == 0.5 and not met[("batch-1 roofline fraction", "1b")]["met"]
    assert met[("batch-1 roofline fraction at PyTorch's read", "1b")]["value"] == 1.0
    assert met[("batch-1 roofline fraction at PyTorch's read", "1b")]["met"]
    assert met[("batch-1 multi-stream over one stream", "1b")]["value"] == pytest.approx(1.2)
    assert met[("batch-1 multi-stream over one stream", "1b")]["met"]
    assert met[("batch-16 step over the batch-1 step", "1b")]["met"] and met[("batch-64 step over the batch-1 step", "1b")]["met"]
    assert met[("faster than torch.compile in a CUDA graph at every batch", "1b")]["met"]
    missed = by_goal(bench.goals(_goal_results(1.0, 1.151, 1.501, compile64=1.5)))
    for goal in ("batch-16 step over the batch-1 step", "batch-64 step over the batch-1 step",
                 "faster than torch.compile in a CUDA graph at every batch"):
        assert missed[(goal, "1b")]["met"] is False, goal
    assert ("batch-1 roofline fraction at PyTorch's read", "1b") not in missed   # no PyTorch read given
    assert missed[("faster than torch.compile in a CUDA graph at every batch", "1b")]["value"] == pytest.approx(1.5 / 1.501)
    # the multi-stream goal's arena condition: batch 1's plans must have the same arena
    bigger = _goal_results(1.0, 1.1, 1.4)
    bigger[0]["modes"]["multi_hand graph"]["arena_bytes"] = 101
    assert by_goal(bench.goals(bigger))[("batch-1 multi-stream over one stream", "1b")]["met"] is False
    # a config the issue sets no batch-1 targets for gets only the ratio goals; a missing batch 1: not measured
    tiny = [dict(r, config="tiny") for r in _goal_results(1.0, 1.1, 1.4)[1:]]
    rows = bench.goals(tiny)
    assert {g["goal"].split(" ")[0] for g in rows} == {"batch-16", "batch-64", "faster"}
    assert [g["met"] for g in rows if g["goal"].startswith("batch-")] == [None, None]
    md = bench.goals_markdown(bench.goals(_goal_results(1.0, 1.149, 1.499), 2.0, 1.0)).splitlines()
    assert md[2] == "| batch-1 roofline fraction (multi-stream) >= | 1b | 50.0% | 70% | no |"
    assert "| batch-16 step over the batch-1 step <= | 1b | 1.149x | 1.15x | yes |" in md


@pytest.mark.parametrize("batch", [1, 4])
def test_profile_on_a_fake_driver_reads_the_weights_each_product_streams(monkeypatch, tmp_path, batch):
    """``runtime.tools.profile`` end to end on the fake driver (every event pair reads 1 ms) for the tiny
    config: a product's bandwidth is the bytes of the weight matrices it is given over its time. Before, it
    was the first input of the node its launch hangs on, an activation for a fused group (the 1B gate/up
    pass was reported at 26 GB/s, its 67 MB in 20 us); the JSON is written atomically."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.tools import profile

    out = tmp_path / "p.json"
    assert profile.main(["--configs", "tiny", "--batch", str(batch), "--out", str(out)]) == 0
    (res,) = json.loads(out.read_text())
    g = L.build_graph(L.config("tiny", batch=batch))
    weight = {t.id: t.size for t in g.tensors if t.kind == "weight"}

    def gbps(node: str) -> list[float]:
        return [r["GBps"] * 1e3 * r["us"] for r in res["rows"]
                if r["example_node"] == node and "GBps" in r and not r["kernel"].endswith("_v")]

    # the gate/up pass hangs on its group's last node (l0.glu, whose first input is an activation): at one
    # row one SwiGLU GEMV streams both matrices; the tiny config's 4-row pass is two GEMMs then a SwiGLU
    # kernel, each GEMM one matrix (GB/s is rounded to 0.1, the fake's launches take 20 us: bytes to 1000)
    gate_up = weight["l0.w_gate"] + weight["l0.w_up"]
    expect = [gate_up] if batch == 1 else [weight["l0.w_gate"], weight["l0.w_up"]]
    assert gbps("l0.glu") == pytest.approx(expect, abs=1001)
    assert gbps("l0.mm_q") == pytest.approx([weight["l0.wq"]], abs=1001)
    assert all("GBps" not in r for r in res["rows"] if not r["kernel"].startswith(("gemv", "gemm")))
