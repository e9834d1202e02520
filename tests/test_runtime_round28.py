"""The GPU runtime's CPU-side surface, round 28 (CPU only, no pycuda): edited plans whose tensors leave their
arena, launches that touch bytes outside their node's planned tensors, a planted hazard that only another issue
order shows, the reference forward of an odd head size, the launch diff of chunked launches, and a property test
of multi-stream against serial plans over random small Llama-like configs."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memplan
from memplan.errors import ExecutorError, PlanFormatError, UnsafePlan
from runtime import step as step_mod
from runtime.binding import bind
from runtime.emulate import emulate
from runtime.models import llama as L
from runtime.step import plan_step, program_at
from runtime.tools.compare_launches import compare_plans


def _fake_alloc():
    nxt = iter(range(1 << 44, 1 << 62, 1 << 36))
    return lambda n, label: next(nxt)


@pytest.fixture(scope="module")
def tiny4():
    cfg = L.config("tiny", batch=4)
    g = L.build_graph(cfg)
    return cfg, g, plan_step(g, L.multi_stream_schedule(g), batch=4), L.make_weights(g, cfg, 1), L.make_inputs(cfg, 2)


# --- plans whose tensors leave the arena -----------------------------------------------------------------------

def _moved(plan, tid: str, offset: int):
    return replace(plan, tensors=tuple((t, offset if t == tid else o, s) for t, o, s in plan.tensors))


EDITS = {
    "arena halved": lambda p: replace(p, arena_bytes=p.arena_bytes // 2),
    "arena of 1 byte": lambda p: replace(p, arena_bytes=1),
    "a tensor past the end": lambda p: _moved(p, "l0.gate", p.arena_bytes - 256),
    "a negative offset": lambda p: _moved(p, "l0.gate", -256),
}
#: what the verifier names for each edit (the tensor placed wrong, the rule it breaks)
SAID = {
    "arena halved": r"rule 4: tensor '[^']+' \[\d+, \d+\) ends past arena_bytes \d+",
    "arena of 1 byte": r"rule 4: tensor '[^']+' \[\d+, \d+\) ends past arena_bytes 1(;|$)",
    "a tensor past the end": r"rule 4: tensor 'l0\.gate' offset \d+ is not a non-negative multiple of alignment 256",
    "a negative offset": r"rule 4: tensor 'l0\.gate' offset -256 is not a non-negative multiple of alignment 256",
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_tensor_outside_the_arena_is_refused_by_name_before_any_launch(monkeypatch, tiny4, edit):
    """An edited plan (``arena_bytes`` cut, an offset past the end or below 0) ran unverified, as the negative
    controls run plans: ``program_at`` built launches pointing past the arena, the emulator died in a raw
    IndexError naming an address, and an ``Executor(check_plan=False)`` launched kernels that wrote past its
    arena on the GPU. Now ``bind`` (which all of them go through) refuses it, naming the tensor."""
    import fake_cuda

    cfg, g, plan, w, inp = tiny4
    bad = EDITS[edit](plan)
    with pytest.raises(UnsafePlan, match=SAID[edit]):
        memplan.verify(g, bad)
    drv = fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    calls = (lambda: bind(g, bad), lambda: program_at(g, bad, _fake_alloc()), lambda: emulate(g, bad, w, inp),
             lambda: Executor(g, bad, weights=w, inputs=inp, check_plan=False).run())
    for call in calls:
        with pytest.raises(PlanFormatError, match=r"puts tensor '[^']+' at \[-?\d+, \d+\), outside the arena of \d+ bytes"):
            call()
    assert not [op for op in drv.trace if op[0] in ("launch", "launch_pdl")]


def test_a_device_arena_too_small_for_its_tensors_is_refused():
    """The same for one device of a split plan (``device_arena_bytes``)."""
    g = L.build_graph(L.config("tiny", batch=2))
    split, multi = memplan.plan_devices(g, 2)
    bad = replace(multi, device_arena_bytes=(multi.device_arena_bytes[0], 256))
    with pytest.raises(PlanFormatError, match="outside device 1's arena of 256 bytes"):
        bind(split.graph, bad)
    bind(split.graph, multi)


def _on_device(plan, key: str, name: str, device: int):
    names = [e[0] for e in (plan.order if key == "node_devices" else plan.tensors)]
    per = list(getattr(plan, key))
    per[names.index(name)] = device
    return replace(plan, **{key: tuple(per)})


@pytest.mark.parametrize("key,name,device", [("node_devices", "l1.mm_q", 7), ("node_devices", "l1.mm_q", -1),
                                             ("tensor_devices", "l1.q", 2), ("tensor_devices", "l1.q", -1)])
def test_a_node_or_tensor_on_a_device_the_plan_lacks_is_refused(key, name, device):
    """A split plan edited to put a node on device 7 (or -1) of 2 was a KeyError from the emulator; a tensor on
    device 2 an IndexError, and on -1 the last device's arena (Python's negative index), computed silently."""
    cfg = L.config("tiny", batch=2)
    g = L.build_graph(cfg)
    split, multi = memplan.plan_devices(g, 2)
    bad = _on_device(multi, key, name, device)
    what = "node" if key == "node_devices" else "tensor"
    for call in (lambda: bind(split.graph, bad),
                 lambda: emulate(split.graph, bad, L.make_weights(g, cfg, 1), L.make_inputs(cfg, 2))):
        with pytest.raises(PlanFormatError, match=rf"puts {what} '{name}' on device {device}, outside 0..1"):
            call()
    with pytest.raises(PlanFormatError, match="spans 2 devices but lists 1 device_arena_bytes"):
        bind(split.graph, replace(multi, device_arena_bytes=multi.device_arena_bytes[:1]))
    with pytest.raises(PlanFormatError, match="spans 2 devices but gives"):
        bind(split.graph, replace(multi, tensor_devices=multi.tensor_devices[:-1]))


@pytest.mark.parametrize("stream", [-1, 1 << 20, 3, 500])
def test_a_node_on_a_negative_or_absurd_stream_is_refused(monkeypatch, tiny4, stream):
    """Unverified, a node on stream -1 ran on the executor's last stream (Python's negative index: another
    stream's program order than the plan's), and one on stream 2**20 had the executor create a million streams."""
    import fake_cuda

    fake_cuda.install(monkeypatch)
    from runtime.executor import Executor

    cfg, g, plan, w, inp = tiny4
    bad = replace(plan, order=tuple((n, stream if n == "l1.mm_k" else s) for n, s in plan.order))
    for call in (lambda: Executor(g, bad, weights=w, inputs=inp, check_plan=False), lambda: emulate(g, bad, w, inp)):
        with pytest.raises(PlanFormatError, match=rf"runs node 'l1.mm_k' on stream {stream}, outside "
                                                  rf"0..{plan.streams - 1} \(the plan declares {plan.streams} streams"):
            call()


@pytest.mark.parametrize("kw,words", [(dict(poison="no"), "poison 'no': expected True or False"),
                                      (dict(check="yes"), "check 'yes': expected True or False"),
                                      (dict(gemv_norm_min="x"), "gemv_norm_min 'x': expected an integer"),
                                      (dict(gemv_norm_min=None), "gemv_norm_min None: expected an integer"),
                                      (dict(seed=1.5), "seed 1.5: expected an integer or None"),
                                      (dict(seed=[1]), r"seed \[1\]: expected an integer or None")])
def test_emulate_names_an_option_of_the_wrong_kind(tiny4, kw, words):
    """As the executors check theirs: ``poison="no"`` poisoned and ``check="yes"`` verified (truthy), a string
    or None ``gemv_norm_min`` was a TypeError from the registry's comparison, a float seed ran some order."""
    cfg, g, plan, w, inp = tiny4
    with pytest.raises(ValueError, match=words):
        emulate(g, plan, w, inp, **kw)


# --- launches past their node's tensors ------------------------------------------------------------------------

def test_the_emulator_refuses_a_launch_past_its_nodes_tensors(monkeypatch, tiny4):
    """The emulator checked an access only against its allocation (the whole arena): a launch rule that gave an
    element-wise kernel a few elements too many overwrote the tensor planned next to its output, and the step
    still gave the right logits where that neighbour was dead. Now every step's launches may touch only its
    node's (a fused group's: its members') planned tensors, scratch and counters; the error names the node, the
    kernel and the neighbour."""
    cfg, g, plan, w, inp = tiny4
    good = emulate(g, plan, w, inp)[0]["logits"]
    real = step_mod.plan_launches

    def one_too_many(graph, addr, **kw):   # the swiglu kernel of layer 1 told of 64 more elements
        per_node, fused = real(graph, addr, **kw)
        ni = graph.node_index["l1.glu"]
        per_node[ni] = [replace(ln, args=(*ln.args[:3], ln.args[3] + 64)) if ln.kernel.startswith("swiglu") else ln
                        for ln in per_node[ni]]
        return per_node, fused

    monkeypatch.setattr(step_mod, "plan_launches", one_too_many)
    assert any(ln.kernel.startswith("swiglu") for ln in program_at(g, plan, _fake_alloc())[0].launches["l1.glu"])
    with pytest.raises(ValueError, match=r"node 'l1.glu': swiglu_f32\S* grid=.*outside the planned bytes of the "
                                         r"tensors it may touch \(it starts in .*\)"):
        emulate(g, plan, w, inp)
    monkeypatch.setattr(step_mod, "plan_launches", real)
    assert np.array_equal(emulate(g, plan, w, inp)[0]["logits"], good)


# --- a planted hazard ------------------------------------------------------------------------------------------

def test_a_planted_overlap_is_caught_by_the_verifier_and_by_other_issue_orders():
    """A verified 3-stream plan with one offset corrupted: ``l0.qr`` (ROPE of Q, stream 0) moved onto ``l0.xa``
    (the normed input that K's and V's products read on streams 1 and 2). In the plan's issue order every reader
    of ``l0.xa`` runs before the ROPE, so the emulation in that order gives the good plan's bits: only the
    verifier, or an issue order the events allow (``emulate(seed=...)``), sees the race. Both must."""
    cfg = L.config("tiny", batch=4, layers=1)
    g = L.build_graph(cfg, "norms")
    plan = plan_step(g, L.multi_stream_schedule(g), batch=4)
    w, inp = L.make_weights(g, cfg, 1), L.make_inputs(cfg, 2)
    good = emulate(g, plan, w, inp)[0]["logits"]
    bad = _moved(plan, "l0.qr", plan.offsets()["l0.xa"])
    with pytest.raises(UnsafePlan, match=r"l0\.(qr|xa).*l0\.(qr|xa)"):
        memplan.verify(g, bad)
    assert np.array_equal(emulate(g, bad, w, inp)[0]["logits"], good)        # invisible in the plan's order
    differ = [s for s in range(8) if not np.array_equal(emulate(g, bad, w, inp, seed=s)[0]["logits"], good)]
    assert differ, "no issue order the events allow showed the race"
    for s in range(4):   # the good plan gives the same bits in every such order
        assert np.array_equal(emulate(g, plan, w, inp, seed=s)[0]["logits"], good)


# --- the reference of a shape the kernels refuse ---------------------------------------------------------------

@pytest.mark.parametrize("hidden,heads,kv", [(12, 4, 2), (8, 8, 8)])
def test_reference_forward_of_an_odd_head_size_is_refused_by_name(hidden, heads, kv):
    """Head size 3 or 1: the registry refuses the ROPE by node, but the reference forward died in a numpy
    broadcast error ("could not broadcast input array from shape (1,4,2) into shape (1,4,1)")."""
    cfg = L.config("tiny", batch=1, layers=1, hidden=hidden, heads=heads, kv_heads=kv, ffn=8, vocab=5)
    g = L.build_graph(cfg)
    with pytest.raises(ValueError, match=rf"odd head size {hidden // heads} \(hidden {hidden} / heads {heads}\)"):
        L.reference_forward(cfg, L.make_weights(g, cfg), L.make_inputs(cfg))


def test_weights_and_inputs_of_another_config_are_named():
    """``make_weights`` of a graph whose KV cache has fewer rows than the config's ctx, and ``reference_forward``
    of another batch's inputs, were numpy broadcast and reshape errors."""
    c1 = L.config("tiny", batch=1)
    g1 = L.build_graph(c1)
    with pytest.raises(ValueError, match=r"cache 'l0.k_cache' .* has 9 rows, fewer than config .*ctx 20"):
        L.make_weights(g1, L.config("tiny", batch=1, ctx=20))
    with pytest.raises(ValueError, match=r"input 'inp' has shape \(1, 64\), config .* at batch 2 needs \(2, 64\)"):
        L.reference_forward(L.config("tiny", batch=2), L.make_weights(g1, c1), L.make_inputs(c1))


# --- compare_launches over chunked launches --------------------------------------------------------------------

def test_compare_launches_names_pointers_inside_a_tensor_by_tensor_not_arena_offset():
    """A SET_ROWS of 70,000 rows runs as two launches, the second pointing 65,535 rows into src and idx. Its
    operands were named by arena offset (``arena0+...``), so two plans that place src elsewhere listed the same
    launches as different (the tool's ``--batches 100000`` on the tiny config: exit 1, "l1.set_v" differs)."""
    rows, cols = 70_000, 4
    b = memplan.GraphBuilder("set_rows")
    b.input("pad", 256, shape=[64], dtype="f32")
    b.input("src", rows * cols * 4, shape=[rows, cols], dtype="f32")
    b.input("idx", rows * 4, shape=[rows], dtype="i32")
    b.node("n", "SET_ROWS", ["src", "idx"], b.output("dst", rows * cols * 2, shape=[rows, cols], dtype="f16"))
    b.node("p", "ADD", ["pad", "pad"], b.output("pout", 256, shape=[64], dtype="f32"))
    g = b.build()
    p = memplan.plan(g)
    offs = p.offsets()
    end = -(-p.arena_bytes // 256) * 256
    moved = replace(p, arena_bytes=end + g.tensor("src").size,
                    tensors=tuple((t, end if t == "src" else o, s) for t, o, s in p.tensors))
    memplan.verify(g, moved)
    assert moved.offsets()["src"] != offs["src"]
    c = compare_plans(g, p, g, moved)
    assert c.same, c.differing
    second = [r for r in c.a.rows if r.node == "n"][1]
    assert [n for n, _ in second.reads] == [f"src+{65535 * cols * 4}", f"idx+{65535 * 4}"]


# --- property: multi-stream plans against the serial plan --------------------------------------------------------

@st.composite
def _configs(draw):
    d = draw(st.sampled_from([8, 16, 24, 64]))
    kv = draw(st.sampled_from([1, 2]))
    heads = kv * draw(st.sampled_from([1, 2, 3]))
    cfg = L.config("tiny", batch=draw(st.sampled_from([1, 2, 3, 5, 16, 17, 33, 64, 65])), layers=1, hidden=heads * d,
                   heads=heads, kv_heads=kv, ffn=draw(st.sampled_from([3, 20, 72])),
                   vocab=draw(st.sampled_from([1, 7, 96])), ctx=draw(st.sampled_from([0, 1, 5])))
    return cfg, draw(st.sampled_from(L.FUSE_MODES)), draw(st.booleans()), draw(st.sampled_from([1, 132]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_configs(), order_seed=st.integers(0, 1000))
def test_multi_stream_plans_compute_the_serial_plans_bits(case, order_seed):
    """Random small Llama-like configs (head sizes 8-64, grouped or not, one to 65 tokens, a vocabulary of 1,
    an empty cache) in both fusion modes, on the device the registry sizes launches for (1 SM or 132, wgmma or
    not): the serial plan, the multi-stream plan (``plan_step``) and the multi-stream plan with
    ``fused_groups``, all verified, emulated in a random issue order their events allow, give bit for bit the
    serial plan's logits. The emulation refuses every launch outside CUDA's limits or its kernel's
    preconditions (``launch_problem``) and every access outside its node's planned tensors."""
    cfg, fuse, wgmma, sms = case
    g = L.build_graph(cfg, fuse)
    w, inp = L.make_weights(g, cfg, 1), L.make_inputs(cfg, 2)
    multi = L.multi_stream_schedule(g)
    plans = {"serial": plan_step(g, batch=cfg.batch), "multi": plan_step(g, multi, batch=cfg.batch),
             "multi_fused": memplan.plan(g, multi, fused_groups=True)}
    out = {}
    for name, p in plans.items():
        out[name] = emulate(g, p, w, inp, check=True, seed=None if name == "serial" else order_seed,
                            wgmma=wgmma, num_sms=sms)[0]["logits"]
    assert plans["multi"].streams > 1
    for name in plans:
        assert np.array_equal(out[name], out["serial"]), name
    assert L.rel_err(out["serial"], L.reference_forward(cfg, w, inp)[0]) < 5e-3


# --- the multi-GPU executor's arguments --------------------------------------------------------------------------

def test_multi_gpu_executor_names_a_bad_first_device_or_plan(monkeypatch):
    """``first_device=-1`` reached ``cuda.Device(-1)`` (pycuda's "invalid device ordinal" on a GPU), '0' was a
    TypeError, 1.5 read as "plan needs 2 GPUs, 2 visible"; a plan dict an AttributeError on ``plan.devices``."""
    import fake_cuda

    fake_cuda.install(monkeypatch, devices=2)
    from runtime.multi_gpu import MultiGpuExecutor

    g = L.build_graph(L.config("tiny", batch=2))
    split, multi = memplan.plan_devices(g, 2)
    for bad in (-1, "0", 1.5, True):
        with pytest.raises(ValueError, match=rf"first_device {bad!r}: expected a GPU index >= 0"):
            MultiGpuExecutor(split.graph, multi, first_device=bad)
    with pytest.raises(ValueError, match="plan dict: expected a memplan Plan"):
        MultiGpuExecutor(split.graph, {})
    with pytest.raises(ExecutorError, match=r"needs 2 GPUs from first_device 1 \(GPUs 1..2\), 2 visible"):
        MultiGpuExecutor(split.graph, multi, first_device=1)
    MultiGpuExecutor(split.graph, multi, first_device=0).free()


# --- rule_ab variants that the kernels cannot run ----------------------------------------------------------------

@pytest.mark.parametrize("variant,says", [
    ("a:ATTN_CLUSTER=1", "ATTN_CLUSTER sizes compiled kernels or is a CUDA limit"),
    ("a:ATTN_MMA_ROWS=1", "ATTN_MMA_ROWS sizes compiled kernels"),
    ("a:GRID_YZ_MAX=1000000000", "GRID_YZ_MAX sizes compiled kernels or is a CUDA limit"),
    ("a:TC_STEP_CARVEOUT=150", "config 8b at batch 8: node 'l0.norm_w' gets a launch of rms_norm4_f32 .*carveout 150% "
                               "is past CUDA's 0..100"),
    # (round 76: ROPE_BASE is no rule, refused as such; the registry's own failure: ``test_rule_ab_check_variants_...``)
    ("a:ROPE_BASE=0", "ROPE_BASE is the ROPE base .* not a rule")])
def test_rule_ab_refuses_a_variant_whose_launches_the_kernels_cannot_run(capsys, variant, says):
    """A constant compiled into llama.cu (ATTN_CLUSTER is AF_CL: at 1, attn_fused got an eighth of its blocks and
    computed part of its output) or one of CUDA's limits (raised, it let past-limit launches through) is refused
    like WG_STAGES; a value the registry cannot build the step with, or one that makes it build a launch CUDA
    refuses, is found on the CPU before the kernels compile (it was a traceback, or CUDA's invalid value, on
    the GPU). Exit 2, one line naming the variant."""
    from runtime.tools import rule_ab

    assert rule_ab.main(["--configs", "8b", "--batches", "8", "--variant", "base:", "--variant", variant]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("rule_ab: error: --variant a:"), err
    assert re.search(says, err), err
