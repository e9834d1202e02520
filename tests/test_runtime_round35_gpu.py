"""Round 35 (runtime review), what only a GPU shows (marker ``gpu``: conftest.py skips these without pycuda
or a CUDA device; CI has neither). The CPU side, with the same plans, is tests/test_runtime_round35.py.

- a plan aligned above cudaMalloc's 256 bytes (``plan --alignment 4096``, 2 MiB) runs with every arena tensor
  on its alignment in real device addresses, and computes the 256-aligned plan's bits, eager and captured;
- a plan with a stream-id gap (streams 0, 2, 5 of 6 declared) and one declaring 64 streams of which 3 are
  used: the dense plan's bits under jitter with the arena poisoned, and as a captured CUDA graph;
- a kernel whose in-place output the plan puts over another view of its partner's root (the two halves of one
  tensor under ``MUL``; an f16 weight view under a ``MUL_MAT``, where memplan's own plan puts it) reads copies:
  numpy's bits in every run (the emulator, reading every input before writing, cannot show the race);
- two GPUs: per-device CUDA graphs of a split plan whose unread input shares bytes with a COPY's
  destination keep what the COPY wrote (the graph of the receiving device copied the input over it).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_runtime_round35 import (
    _eager_and_captured,
    _gapped,
    _halves,
    _node_reads,
    _norms,
    _placed,
    _product_over_its_weight,
    _with_unread_input_over,
)

import memplan

pytestmark = pytest.mark.gpu

JITTER_REPS = 12


def _arena_roots_aligned(ex, alignment: int) -> list[str]:
    """Arena roots of ``ex`` whose device address is off ``alignment``."""
    g = ex.graph
    return [t.id for t in g.tensors
            if t.view_of is None and ex.binding.places[t.id].in_arena and ex.addr_of[t.id] % alignment]


def _one_gpu_logits(g, w, inp) -> np.ndarray:
    """The logits of memplan's one-stream plan of ``g`` on one GPU, eager."""
    from runtime.executor import Executor

    one = Executor(g, memplan.plan(g), weights=w, inputs=inp)
    try:
        return _logits(one, "eager")
    finally:
        one.free()


def _logits(ex, mode: str, **kw) -> np.ndarray:
    if mode == "graph":
        ex.capture()
        ex.replay(2)
    else:
        ex.run(**kw)
    return ex.read("logits")


@pytest.mark.parametrize("alignment", [4096, 1 << 21])
@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_a_plan_aligned_above_256_runs_on_aligned_device_addresses(alignment, mode):
    from runtime.executor import Executor
    from runtime.models import llama as L

    g, w, inp = _norms()
    sched = L.multi_stream_schedule(g)
    base = Executor(g, memplan.plan(g, sched), weights=w, inputs=inp)
    want = _logits(base, mode)
    base.free()
    ex = Executor(g, memplan.plan(g, sched, alignment=alignment), weights=w, inputs=inp)
    try:
        assert all(a % alignment == 0 for a in ex.mem.arenas)
        assert _arena_roots_aligned(ex, alignment) == []
        assert np.array_equal(_logits(ex, mode), want)
    finally:
        ex.free()


def _gapped_norms(ids: dict) -> tuple:
    """The fused tiny Llama (``_norms``): ``(g, w, inp, cfg, dense, p)``, ``dense`` its multi-stream plan and ``p``
    that plan with its stream ids renamed by ``ids`` (``"declared"``: a ``streams`` count above the ids used)."""
    from dataclasses import replace

    from runtime.models import llama as L

    g, w, inp = _norms()
    cfg = L.config("tiny", batch=1)
    dense = memplan.plan(g, L.multi_stream_schedule(g))
    ids = dict(ids)
    declared = ids.pop("declared", None)
    p = _gapped(dense, ids)
    if declared is not None:
        p = replace(p, streams=declared)
    return g, w, inp, cfg, dense, p


@pytest.mark.parametrize("ids", [{0: 0, 1: 5, 2: 2}, {0: 0, 1: 1, 2: 2, "declared": 64}],
                         ids=["gap-0-2-5", "64-declared"])
def test_a_plan_with_unused_stream_ids_gives_the_dense_bits_under_jitter_and_as_a_graph(ids):
    from runtime.executor import Executor, Jitter, Poison
    from runtime.models import llama as L

    g, w, inp, cfg, dense, p = _gapped_norms(ids)
    memplan.verify(g, p)
    one = Executor(g, dense, weights=w, inputs=inp)
    want = _logits(one, "eager")
    one.free()
    ex = Executor(g, p, weights=w, inputs=inp)
    poison = Poison(ranges=L.kv_poison_ranges(g, cfg))
    try:
        for rep in range(JITTER_REPS):
            out = _logits(ex, "eager", poison=poison, jitter=Jitter(seed=rep))
            assert np.array_equal(out, want), f"jitter rep {rep}"
        ex.capture(poison=poison)
        for _ in range(3):
            ex.replay(1)
            assert np.array_equal(ex.read("logits"), want)
    finally:
        ex.free()


@pytest.mark.gpu(devices=2)
def test_per_device_graphs_keep_a_received_copy_where_an_unread_input_lies():
    from runtime.multi_gpu import MultiGpuExecutor

    g, w, inp = _norms()
    want = _one_gpu_logits(g, w, inp)
    split, p = memplan.plan_devices(g, 2)
    g2, p2 = _with_unread_input_over(split.graph, p, "l0.out@dev1")
    memplan.verify(g2, p2)
    _eager_and_captured(MultiGpuExecutor(g2, p2, inputs={**inp, "unused": np.full(64, 7.0, np.float32)}, weights=w),
                        want, replays=3)


@pytest.mark.gpu(devices=2)
def test_a_split_plan_aligned_to_4096_runs_on_aligned_addresses_on_both_gpus():
    from dataclasses import replace

    from runtime.multi_gpu import MultiGpuExecutor

    g, w, inp = _norms()
    want = _one_gpu_logits(g, w, inp)
    split, p = memplan.plan_devices(replace(g, alignment=4096), 2)
    assert p.alignment == 4096
    ex = MultiGpuExecutor(split.graph, p, inputs=inp, weights=w)
    assert all(a % 4096 == 0 for a in ex.mem.arenas)
    assert _arena_roots_aligned(ex, 4096) == []
    _eager_and_captured(ex, want)


RACE_REPS = 5


def _halves_case():
    """(graph, plan, inputs, numpy's y) of the halves race: 4M elements a half, y 16 KiB into a."""
    n = 1 << 22
    g = _halves(n, alignment=256)
    own = memplan.plan(g)
    p = _placed(g, {"y": own.offsets()["X"] + (1 << 14)}, own.arena_bytes)
    memplan.verify(g, p)
    x0 = np.random.default_rng(1).standard_normal(2 * n).astype(np.float32)
    return g, p, {"x0": x0}, x0[:n] * x0[n:]


def _weight_case():
    """(graph, plan, inputs, numpy's y in f64) of the product over its own f16 weight view: W [4096, 4096] and b."""
    N = K = 4096
    g = _product_over_its_weight(N, K)
    p = memplan.plan(g)
    words = (2 * N * K + 4 * K) // 4
    x0 = (np.random.default_rng(2).standard_normal(words) * 1e-2).astype(np.float32)
    x0[: N * K // 2] = np.random.default_rng(3).uniform(-1, 1, N * K).astype(np.float16).view(np.float32)
    W = x0[: N * K // 2].view(np.float16).reshape(N, K).astype(np.float64)
    return g, p, {"x0": x0}, W @ x0[N * K // 2:].astype(np.float64)


def _without_staging(monkeypatch) -> None:
    """The bug the staging copies fix, planted: no input an in-place output overlaps is copied first, so each
    kernel reads the bytes it (or another block of it) is writing."""
    from runtime.kernels import registry

    monkeypatch.setattr(registry, "_stage_shifted_inplace", lambda graph, addr, node, lns, scratch: lns)
    monkeypatch.setattr(registry, "_stage_product_input", lambda graph, addr, ni, scratch, num_sms, wgmma:
                        registry.node_launches(graph, addr, ni, num_sms, wgmma))


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_an_output_shifted_over_the_other_half_of_its_partners_root_computes_numpys_bits(mode):
    """4M elements a half, y 16 KiB into a: block k writes where later blocks still read a."""
    from runtime.executor import Executor

    g, p, inputs, want = _halves_case()
    ex = Executor(g, p, inputs=inputs)
    try:
        if mode == "graph":
            ex.capture()
        for rep in range(RACE_REPS):
            ex.replay(1) if mode == "graph" else ex.run()
            assert np.array_equal(ex.read("y"), want), f"run {rep}"
    finally:
        ex.free()


@pytest.mark.parametrize("pdl_policy", ["off", "chain"])
def test_a_product_written_over_its_own_f16_weight_view_computes_the_product(pdl_policy):
    """W [4096, 4096] f16 and the row b in one tensor; memplan's plan puts y (16 KiB) over W's first two rows,
    which the GEMV blocks of rows 0 and 1 read while the others write y. "chain": the GEMV follows the copy
    kernel of W on its stream as a programmatic dependent launch, and must not read the copy before it ran."""
    from runtime.executor import Executor

    g, p, inputs, want = _weight_case()
    ex = Executor(g, p, inputs=inputs, pdl_policy=pdl_policy)
    try:
        for rep in range(RACE_REPS):
            ex.run()
            got = ex.read("y").reshape(-1)
            bad = np.flatnonzero(~np.isclose(got, want, rtol=1e-3, atol=1e-3))
            assert bad.size == 0, f"run {rep}: rows {bad[:8]} differ"
    finally:
        ex.free()


# --- negative controls: the same runs with the bug planted must be seen by the same checks --------------------------

@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_negative_control_the_halves_without_their_staging_copy_are_caught(mode, monkeypatch):
    """The halves run above with no staging copy (``_without_staging``): the MUL reads a where its own blocks
    write y, and the check above (numpy's bits) sees other bits in some run, with jitter in the eager runs. Were it
    never seen, the test above would pass with the copy gone."""
    from runtime.executor import Executor, Jitter

    _without_staging(monkeypatch)
    g, p, inputs, want = _halves_case()
    reads, addr = _node_reads(g, p, "n")
    assert addr["a"] in reads, "the plant took no effect: the MUL still reads a copy"
    ex = Executor(g, p, inputs=inputs)
    try:
        if mode == "graph":
            ex.capture()
        wrong = 0
        for rep in range(RACE_REPS):
            ex.replay(1) if mode == "graph" else ex.run(jitter=Jitter(seed=rep, prob=1.0))
            wrong += not np.array_equal(ex.read("y"), want)
        assert wrong > 0, f"the MUL reading what it writes went unnoticed in {RACE_REPS} {mode} runs"
    finally:
        ex.free()


@pytest.mark.parametrize("pdl_policy", ["off", "chain"])
def test_negative_control_a_product_over_its_weight_without_its_staging_copy_is_caught(pdl_policy, monkeypatch):
    """The product run above with no staging copy: y (at b's address) is written row by row while later blocks
    still read b, and the check above (rows off numpy's product) sees it in some run, with jitter."""
    from runtime.executor import Executor, Jitter

    _without_staging(monkeypatch)
    g, p, inputs, want = _weight_case()
    reads, addr = _node_reads(g, p, "n")
    assert addr["b"] in reads, "the plant took no effect: the product still reads a copy"
    ex = Executor(g, p, inputs=inputs, pdl_policy=pdl_policy)
    try:
        wrong = 0
        for rep in range(RACE_REPS):
            ex.run(jitter=Jitter(seed=rep, prob=1.0))
            got = ex.read("y").reshape(-1)
            wrong += bool(np.flatnonzero(~np.isclose(got, want, rtol=1e-3, atol=1e-3)).size)
        assert wrong > 0, f"the product reading the b it overwrites went unnoticed in {RACE_REPS} runs"
    finally:
        ex.free()


@pytest.mark.parametrize("ids", [{0: 0, 1: 5, 2: 2}, {0: 0, 1: 1, 2: 2, "declared": 64}],
                         ids=["gap-0-2-5", "64-declared"])
def test_negative_control_a_gapped_plan_without_its_k_cache_event_is_caught(ids):
    """The unused-stream-ids run above with the event K's cache write -> KQ removed: verify names it, and the
    jitter check above (the dense plan's bits, KV rows poisoned) sees other bits in some run: random jitter, then
    runs that delay K's branch only (in the fused graph random spins rarely make it late)."""
    from plan_mutators import plan_without_event

    from runtime.executor import Executor, Jitter, Poison
    from runtime.models import llama as L

    g, w, inp, cfg, dense, p = _gapped_norms(ids)
    ev = next(e for e in p.events if e[1] == "l0.kq")
    broken = plan_without_event(p, ev)
    with pytest.raises(memplan.UnsafePlan, match=rf"rule 2: node 'l0\.kq' reads '[^']+' but its writer "
                                                 rf"'{re.escape(ev[0])}' does not happen-before"):
        memplan.verify(g, broken)
    one = Executor(g, dense, weights=w, inputs=inp)
    want = _logits(one, "eager")
    one.free()
    ex = Executor(g, broken, weights=w, inputs=inp, check_plan=False)
    poison = Poison(ranges=L.kv_poison_ranges(g, cfg))
    jitters = [Jitter(seed=rep) for rep in range(JITTER_REPS)]
    jitters += [Jitter(seed=2000 + rep, prob=1.0, only=("l0.mm_k", "l0.rope_k", "l0.set_k")) for rep in range(10)]
    try:
        wrong = sum(not np.array_equal(_logits(ex, "eager", poison=poison, jitter=j), want) for j in jitters)
        assert wrong > 0, f"removing event {ev} went unnoticed in {len(jitters)} jittered runs"
    finally:
        ex.free()
