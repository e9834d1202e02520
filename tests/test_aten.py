"""ATen executor on the CPU (runs in CI): arena mechanics, exactness, negative controls, errors.

Every model runs with the arena poisoned (0xFF bytes: NaN) before each call, so a node reading memory
no node wrote shows in the output. CPU kernels here are the ones eager runs, so outputs must be
bitwise equal to eager. Multi-stream plans run on the CPU in issue order (which happens-before respects),
so their offsets are exercised here too.
"""

from __future__ import annotations

import copy
import functools
import re
import sys
from dataclasses import replace

import pytest
from needs import need
from plan_mutators import plan_with_roots_apart

torch = need("torch")
need("transformers")

from aten_models import (  # noqa: E402
    CNN,
    MLP,
    BatchStrideConv,
    ChannelsLastGroupNorm,
    ComplexRotary,
    DetachInPlace,
    InPlaceApart,
    MetadataInPlace,
    ParamMatmul,
    PyramidPool,
    ScalarConstants,
    SizeOneStrides,
    StridesChain,
    StridesChainInPlace,
    StridesChainMetadata,
    TensorConstants,
    TransposedBatchNorm,
    VideoPool,
    tiny_lm,
)

import memplan  # noqa: E402
from memplan.planfile import Plan  # noqa: E402
from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

MODELS = {
    "mlp": (lambda: MLP().eval(), lambda g: (torch.randn(4, 32, generator=g),)),
    "cnn": (lambda: CNN().eval(), lambda g: (torch.randn(2, 3, 32, 32, generator=g),)),
    "llama": (lambda: tiny_lm("llama"), lambda g: (torch.randint(0, 128, (1, 8), generator=g),)),
    "qwen2_moe": (lambda: tiny_lm("qwen2_moe"), lambda g: (torch.randint(0, 128, (1, 8), generator=g),)),
    "mixtral": (lambda: tiny_lm("mixtral"), lambda g: (torch.randint(0, 128, (1, 8), generator=g),)),
    "param_matmul": (lambda: ParamMatmul().eval(), lambda g: (torch.randn(1, 8, 16, generator=g),)),
    "size_one_strides": (lambda: SizeOneStrides().eval(), lambda g: (torch.randn(1, 64, 16, generator=g),)),
    "strides_chain": (lambda: StridesChain().eval(), lambda g: (torch.randn(1, 16, 32, generator=g),)),
    "strides_chain_inplace": (lambda: StridesChainInPlace().eval(), lambda g: (torch.randn(1, 16, 32, generator=g),)),
    "strides_chain_metadata": (lambda: StridesChainMetadata().eval(), lambda g: (torch.randn(1, 16, 32, generator=g),)),
    "video_pool": (lambda: VideoPool().eval(), lambda g: (torch.randn(1, 3, 8, 4, 4, generator=g),)),
    "channels_last_group_norm": (lambda: ChannelsLastGroupNorm().eval(), lambda g: (
        torch.randn(2, 8, 12, 12, generator=g).contiguous(memory_format=torch.channels_last),)),
    "transposed_batch_norm": (lambda: TransposedBatchNorm().eval(), lambda g: (torch.randn(2, 301, 16, generator=g),)),
    "complex_rotary": (lambda: ComplexRotary().eval(), lambda g: (torch.randn(1, 6, 32, generator=g),)),
    "pyramid_pool": (lambda: PyramidPool().eval(), lambda g: (torch.randn(1, 5, 5, 8, generator=g),)),
    "batch_stride_conv": (lambda: BatchStrideConv().eval(), lambda g: (torch.randn(1, 36, 8, generator=g),)),
    # half-precision batch norm: the CPU kernel keeps its saved statistics in f16, the meta kernel in f32
    "scalar_consts": (lambda: ScalarConstants(), lambda g: (torch.randn(4, 6, generator=g),)),
    "cnn_f16": (lambda: CNN().eval().half(), lambda g: (torch.randn(2, 3, 32, 32, generator=g).half(),)),
}


def _model(name, seed):
    """(module, inputs(g), g) of MODELS[name], weights from seed 0, inputs from a generator seeded ``seed``."""
    make, inputs = MODELS[name]
    torch.manual_seed(0)
    return make(), inputs, torch.Generator().manual_seed(seed)


def _eager(module, inputs):
    with torch.no_grad():
        return module(*inputs)


@functools.cache
def _serial(name):
    """(module, ``compile(module, example, streams=1, poison=True)``) of MODELS[name] at its seed-1 example, made
    once per file: the bitwise test, the overlapped-offset test and the copies test read the same export of the tiny
    llama (~2.5 s of CPU each). Its calls load fresh inputs into a freshly poisoned arena, so a test after another
    sees nothing of it (the bitwise test's point: nothing stale survives between calls)."""
    module, inputs, g = _model(name, 1)
    return module, compile(module, inputs(g), streams=1, poison=True)


@pytest.mark.parametrize("name", list(MODELS))
def test_outputs_equal_eager_bitwise_with_poisoned_arena(name):
    inputs, g = MODELS[name][1], torch.Generator().manual_seed(1)
    example = inputs(g)   # (as ``_serial`` drew it: ``g`` goes on from there)
    module, serial = _serial(name)
    multi = compile(module, example, streams=3, poison=True, program=serial.program)
    assert serial.plan.streams == 1 and not serial.plan.events
    assert serial.arena_bytes == serial.plan.arena_bytes > 0
    for c in (serial, multi):
        memplan.verify(c.graph, c.plan)
        for _ in range(2):  # fresh inputs each call: nothing stale survives between calls
            x = inputs(g)
            ref = _eager(module, x)
            out = c(*x)
            assert out.dtype == ref.dtype and out.shape == ref.shape
            assert torch.equal(out, ref), f"{name}: max diff {(out - ref).abs().max()}"
    s = serial.stats
    assert sum(s.kinds.values()) == len(serial.graph.nodes) and s.views == s.kinds.get("view", 0)
    assert s.copies_per_call >= len(s.copy_nodes)


def test_a_failed_layout_probe_logs_nothing(capfd):
    """Learning torch's layout of a complex view on fake tensors fails (the plan's layout stays, and the output
    is bitwise eager's): torch's fake mode logged a traceback at error level for each such node on stderr."""
    torch.manual_seed(0)
    m, x = ComplexRotary().eval(), torch.randn(1, 6, 32)
    c = compile(m, (x,), streams=1, poison=True)
    assert torch.equal(c(x), _eager(m, (x,)))
    err = capfd.readouterr().err
    assert "failed while attempting to run meta" not in err and "Traceback" not in err, err[:400]


def test_the_layout_probe_never_runs_a_custom_op():
    """The build-time layout probe runs an op once more on zero stand-ins; a ``torch.library`` op may have
    effects beyond its result (here: a log of its calls), so only ATen's own ops are probed."""
    calls = []

    @torch.library.custom_op("memplan_test::noted", mutates_args=())
    def noted(x: torch.Tensor) -> torch.Tensor:
        calls.append(float(x.abs().sum()))
        return x.contiguous() * 1.0

    @noted.register_fake
    def _(x):
        return torch.empty_like(x)   # keeps x's (transposed) order: a suspect for the probe

    class Noted(torch.nn.Module):
        def forward(self, x):
            return noted(x.transpose(1, 2)) + 1

    x = torch.randn(2, 3, 4)
    c = compile(Noted(), (x,), streams=1)
    assert calls == []
    assert torch.equal(c(x), x.transpose(1, 2) + 1) and len(calls) == 1


def test_copies_are_few_and_named():
    """Ops without an out= form are the only copies: attention and the MoE custom op, per layer."""
    c = _serial("llama")[1]   # (tiny_lm("llama") at a (1, 8) token batch, as this test compiled it itself)
    # one scaled_dot_product_attention per layer; transformers versions that run the rotary embedding
    # under an autocast or no-grad region export it as a higher-order op (wrap_with_*), copied too
    assert 2 <= c.stats.copies_per_call <= 4
    assert all("scaled_dot_product_attention" in n or "wrap_with" in n for n in c.stats.copy_nodes), c.stats.copy_nodes
    cnn = _serial("cnn")[1]   # (CNN() at a (2, 3, 32, 32) batch, 1 stream: the bitwise test's export)
    # on the CPU only the convolutions copy (no CPU convolution has an out= form); CUDA lowers them to cuDNN
    assert {n.split(" ")[1] for n in cnn.stats.copy_nodes} == {"(aten.conv2d.default)"}
    assert cnn.stats.kinds["exact"] > 0 and cnn.stats.kinds.get("view", 0) >= 1
    # max-pool indices and batch-norm statistics nobody reads are planned arena tensors: no scratch
    assert cnn.stats.scratch_bytes == 0


def _side_tensors(graph):
    """(node, side tensor id) for every side result the importer gave a node."""
    return [(n, t) for n in graph.nodes for t in n.outputs if "." in t and t.rsplit(".", 1)[1] in
            ("indices", "save_mean", "save_invstd")]


@pytest.mark.parametrize("streams", [1, 3])
def test_pool_indices_and_bn_statistics_are_planned_arena_tensors(streams):
    """max_pool2d runs max_pool2d_with_indices and eval batch_norm runs native_batch_norm: the indices
    (int64, laid out like the output) and saved statistics they write are graph tensors no node reads.
    The plan gives them arena bytes for the one node that writes them, the exact lowerings write into
    those planned views, and nothing is allocated outside the arena."""
    m, serial = _serial("cnn")   # (CNN() at a (2, 3, 32, 32) batch, poisoned: 3 streams plan its export again)
    c = serial if streams == 1 else compile(m, (torch.randn(2, 3, 32, 32),), streams=streams, poison=True,
                                            program=serial.program)
    g, prog, ex = c.graph, c.program, c.executor
    side = _side_tensors(g)
    pools = [n for n in g.nodes if n.op == "max_pool2d"]
    bns = [n for n in g.nodes if n.op == "batch_norm"]
    assert len(pools) == 3 and len(bns) == 12 and len(side) == len(pools) + 2 * len(bns)
    readers = {t for n in g.nodes for t in n.inputs}
    offsets = c.plan.offsets()
    for node, tid in side:
        t = g.tensor(tid)
        assert tid not in readers and t.kind == "intermediate" and t.view_of is None
        assert prog.side[node.id][tid.rsplit(".", 1)[1]] == tid
        assert offsets[tid] is not None and offsets[tid] + t.size <= c.arena_bytes
    for node in pools:
        out, (idx,) = node.outputs[0], node.outputs[1:]
        ti, to = g.tensor(idx), g.tensor(out)
        assert ti.attrs == {"shape": to.attrs["shape"], "dtype": "int64"} and ti.size == to.size * 2
    for node in bns:
        channels = g.tensor(node.outputs[0]).attrs["shape"][1]
        for tid in node.outputs[1:]:
            assert g.tensor(tid).attrs == {"shape": [channels], "dtype": "float32"}
    # the lowerings write the planned views (the layout's, at the planned offsets)
    base = ex.layout.arena.data_ptr()
    for node in pools + bns:
        launch = ex.launches[node.id]
        assert launch.kind == "exact" and launch.scratch_bytes == 0
        kw = launch.run.keywords
        got = {"indices": kw.get("indices"), "save_mean": kw.get("save_mean"), "save_invstd": kw.get("save_invstd")}
        for role, tid in prog.side[node.id].items():
            assert got[role] is ex.layout.views[tid] and got[role].data_ptr() == base + offsets[tid]
    assert c.stats.scratch_bytes == ex.scratch.nbytes == 0
    # the bytes are reused right away: another tensor produced later lands on some indices' bytes
    pos = {nid: i for i, (nid, _s) in enumerate(c.plan.order)}
    spans = {tid: (off, off + size) for tid, off, size in c.plan.tensors if off is not None}
    producer = {t: n.id for n in g.nodes for t in n.outputs}
    reused = [(idx, t) for node in pools for idx in node.outputs[1:] for t, (a, b) in spans.items()
              if t in producer and pos[producer[t]] > pos[node.id] and a < spans[idx][1] and spans[idx][0] < b]
    assert reused
    for _ in range(2):
        x = torch.randn(2, 3, 32, 32)
        assert torch.equal(c(x), _eager(m, (x,)))


def test_side_results_without_planned_tensors_fall_back_to_scratch():
    """A program whose graph has no tensors for the side results still runs: the indices go to one
    shared scratch buffer per stream, the statistics to per-launch buffers, all reported."""
    import dataclasses

    m, c = _serial("cnn")   # (CNN() at a (2, 3, 32, 32) batch, 1 stream, poisoned)
    x = torch.randn(2, 3, 32, 32)
    bare = dataclasses.replace(c.program, side={})
    fb = compile(m, (x,), plan=c.plan, program=bare, poison=True)
    g = c.graph
    pools = [g.tensor(t).size for n in g.nodes if n.op == "max_pool2d" for t in n.outputs[1:]]
    stats = sum(g.tensor(t).size for n in g.nodes if n.op == "batch_norm" for t in n.outputs[1:])
    assert fb.stats.scratch_bytes == max(pools) + stats
    assert torch.equal(fb(x), _eager(m, (x,)))


def _conflicting_roots(graph: memplan.Graph, plan: Plan) -> tuple[str, str]:
    """(A, B): B is produced while A is still to be read later, in the serial order of ``plan``."""
    order = [n for n, _s in plan.order]
    pos = {n: i for i, n in enumerate(order)}
    last_read: dict[str, int] = {}
    produced: dict[str, int] = {}
    for nid in order:
        node = graph.node(nid)
        for t in node.inputs:
            r = graph.tensors[graph.root[graph.tensor_index[t]]].id
            last_read[r] = max(last_read.get(r, -1), pos[nid])
        for t in node.outputs:
            ti = graph.tensor_index[t]
            if graph.is_root(ti):
                produced.setdefault(t, pos[nid])
    inplace = {(o, i) for n in graph.nodes for o, i in n.inplace}
    for b, pb in sorted(produced.items(), key=lambda kv: kv[1]):
        for a, pa in produced.items():
            if a != b and pa < pb < last_read.get(a, -1) and (b, a) not in inplace \
                    and graph.tensor(a).size >= graph.tensor(b).size > 0:
                return a, b
    raise AssertionError("no conflicting pair")


def _move_root(graph: memplan.Graph, plan: Plan, b: str, new_off: int) -> Plan:
    offs = dict(plan.offsets())
    delta = new_off - offs[b]
    tensors = []
    for tid, off, size in plan.tensors:
        if graph.tensors[graph.root[graph.tensor_index[tid]]].id == b:
            off = off + delta
        tensors.append((tid, off, size))
    arena = max([o + s for _t, o, s in tensors if o is not None] + [plan.arena_bytes])
    return replace(plan, arena_bytes=arena, tensors=tuple(tensors))


@pytest.mark.parametrize("name", ["cnn", "llama"])
def test_overlapped_offset_is_rejected_and_corrupts_the_output(name):
    x = MODELS[name][1](torch.Generator().manual_seed(2))
    module, good = _serial(name)   # (exported at seed 1's example: the same shapes, the same program)
    a, b = _conflicting_roots(good.graph, good.plan)
    bad_plan = _move_root(good.graph, good.plan, b, good.plan.offsets()[a])
    said = rf"rule 3: tensors '({re.escape(a)}|{re.escape(b)})' and '({re.escape(a)}|{re.escape(b)})' overlap"
    with pytest.raises(memplan.UnsafePlan, match=said):
        memplan.verify(good.graph, bad_plan)
    bad = compile(module, x, plan=bad_plan, verify=False, poison=True, program=good.program)
    ref = _eager(module, x)
    assert torch.equal(good(*x), ref)
    assert not torch.equal(bad(*x), ref), f"overlapping {b!r} onto live {a!r} went unnoticed"


def test_return_views_are_arena_memory_until_the_next_call():
    torch.manual_seed(0)
    m = MLP().eval()
    x = torch.randn(4, 32)
    c = compile(m, (x,), streams=1, return_views=True)
    out = c(x)
    base = c.executor.layout.arena.data_ptr()
    assert base <= out.data_ptr() < base + c.executor.layout.arena.numel()
    assert torch.equal(out, _eager(m, (x,)))
    assert c.stats.output_copies == 0


def test_static_kv_cache_decode_steps_match_the_exported_program():
    """A decode step exported with transformers' static cache: the cache is the program's own state,
    written in place (index_copy_) every call. Three steps must match torch running the same exported
    program bitwise (and eager within 1e-5: the export's attention-mask path is not eager's)."""
    import transformers as tf
    from transformers.integrations.executorch import TorchExportableModuleWithStaticCache

    torch.manual_seed(0)   # (tiny_lm("llama")'s model at one layer: a layer's cache is written as each layer's is)
    lm = tf.LlamaForCausalLM(tf.LlamaConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                                            num_key_value_heads=2, vocab_size=128, max_position_embeddings=128,
                                            intermediate_size=128)).eval()
    lm.generation_config.use_cache = True
    lm.generation_config.cache_implementation = "static"
    wrapper = TorchExportableModuleWithStaticCache(lm, batch_size=1, max_cache_len=16, device="cpu")
    twin, eager = copy.deepcopy(wrapper), copy.deepcopy(wrapper)
    kw = {"input_ids": torch.tensor([[3]]), "cache_position": torch.tensor([0])}
    reference = torch.export.export(twin, (), kwargs=kw, strict=False).module()
    c = compile(wrapper, (), kwargs=kw, streams=2, poison=True)
    for step, tok in enumerate([3, 17, 42]):
        kw = {"input_ids": torch.tensor([[tok]]), "cache_position": torch.tensor([step])}
        with torch.no_grad():
            ref, eager_out = reference(**kw), eager(**kw)
        out = c(**kw)
        assert torch.equal(out, ref), f"step {step}"
        torch.testing.assert_close(out, eager_out, rtol=0, atol=1e-5)


def test_bad_input_and_bad_plan_are_clear_errors():
    torch.manual_seed(0)
    m = MLP().eval()
    x = torch.randn(4, 32)
    c = compile(m, (x,), streams=1)
    with pytest.raises(AtenExecutorError, match="input 'x' is \\(3, 32\\)"):
        c(torch.randn(3, 32))
    # a view the plan places elsewhere than torch lays it out: named, before anything runs
    g, p = c.graph, c.plan
    view = next(t for t in g.tensors if t.view_of is not None and g.in_arena(g.tensor_index[t.id]))
    tensors = tuple((tid, off + 256 if tid == view.id else off, s) for tid, off, s in p.tensors)
    moved = replace(p, arena_bytes=p.arena_bytes + 512, tensors=tensors)
    with pytest.raises(AtenExecutorError, match=f"tensor {view.id!r} spans bytes"):
        compile(m, (x,), plan=moved, verify=False, program=c.program)


def test_view_torch_lays_out_differently_is_an_error_naming_node_and_op():
    import dataclasses

    torch.manual_seed(0)
    m = MLP().eval()
    x = torch.randn(4, 32)
    c = compile(m, (x,), streams=1)
    prog = c.program
    node = next(n for n in prog.graph.nodes if n.op.startswith("transpose"))
    out = node.outputs[0]
    spec = prog.specs[out]
    contiguous = tuple(int(torch.empty(spec.shape, device="meta").stride()[i]) for i in range(len(spec.shape)))
    assert contiguous != spec.stride  # the same bytes, another layout than torch's transpose gives
    specs = dict(prog.specs)
    specs[out] = dataclasses.replace(spec, stride=contiguous)
    bad = dataclasses.replace(prog, specs=specs)
    with pytest.raises(AtenExecutorError, match=f"node {node.id!r} \\(aten\\.[a-z_]+"):
        compile(m, (x,), plan=c.plan, program=bad)


def test_inputs_are_loaded_before_every_warmup_and_the_first_replay():
    """The plan reuses an input's bytes once it is read (here the MLP's layer norm lands on x), so a call
    leaves no input behind: running the step twice without loading the inputs again computes on garbage.
    The CUDA-graph path (emulated here: capture records nothing, replay issues the step) must load the
    inputs before each warm-up call and before the first replay."""
    torch.manual_seed(0)
    m = MLP().eval()
    x = torch.randn(4, 32)
    c = compile(m, (x,), streams=1)
    ex = c.executor
    ref = _eager(m, (x,))
    x_slot = c.plan.offsets()["x"]
    assert any(o == x_slot and t != "x" for t, o, _s in c.plan.tensors if o is not None), "x's bytes are reused"
    ex.load_inputs([x])
    ex.issuer.issue()
    assert torch.equal(ex.collect(), ref)
    ex.issuer.issue()  # the input slot now holds a later tensor's bytes
    assert not torch.equal(ex.collect(), ref)
    captured = []
    ex.issuer.capture = lambda: captured.append(True)
    ex.issuer.replay = ex.issuer.issue
    ex.cuda_graph = True
    for _ in range(2):
        assert torch.equal(c(x), ref)
    assert captured == [True]


def test_a_failing_op_is_named_and_capture_failures_say_why():
    """An op that raises (on the GPU: one that syncs with the host inside a CUDA-graph capture, as
    transformers' f32 grouped-mm fallback does) surfaces as an AtenExecutorError naming node and op."""
    from memplan.graph import GraphBuilder
    from memplan.planfile import Plan
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.lower import Launch
    from runtime.aten.streams import Issuer
    from runtime.binding import bind

    b = GraphBuilder("one")
    b.input("x", 256)
    b.node("sync", "UNARY", ["x"], b.output("y", 256))
    g = b.build()
    plan = Plan("one", 256, 512, 512, 1, (("sync", 0),), (), (("x", 0, 256), ("y", 256, 256)))

    def run():
        raise RuntimeError("Cannot copy between CPU and CUDA tensors during CUDA graph capture\nmore")

    issuer = Issuer(bind(g, plan).steps, {"sync": Launch("sync", "aten.nonzero", "copy", run, 0)}, 1, "cpu", 0)
    with pytest.raises(AtenExecutorError, match=r"node 'sync' \(aten.nonzero\): failed: Cannot copy") as info:
        issuer.issue()
    assert info.value.node == "sync" and "\n" not in str(info.value)
    issuer.capturing = True
    with pytest.raises(AtenExecutorError, match="cannot be captured into a CUDA graph.*cuda_graph=False"):
        issuer._run(0, run)


@pytest.mark.parametrize("streams", [1, 3])
def test_detach_in_place_changes_no_data_and_runs_on_arena_views(streams):
    """torch refuses ``detach_`` on a view, and every arena tensor is one: the executor runs nothing
    for it (or moves the data, where the plan placed the result apart), and the weights keep autograd."""
    torch.manual_seed(0)
    m = DetachInPlace().eval()
    x = torch.randn(8, 8)
    c = compile(m, (x,), streams=streams, poison=True)
    (node,) = [n for n in c.graph.nodes if n.op.startswith("detach_")]
    assert c.executor.launches[node.id].kind in ("noop", "copy")
    for _ in range(2):
        x = torch.randn(8, 8)
        assert torch.equal(c(x), _eager(m, (x,)))
    assert m.lin.weight.requires_grad


@pytest.mark.parametrize("streams", [1, 3])
def test_tensor_constants_made_in_forward_are_copies_not_views(streams):
    """``lift_fresh_copy`` copies a lifted constant (its fake tensor shares the constant's storage, its
    real result does not): a new arena tensor the executor fills, not a view of the constant."""
    m = TensorConstants()
    x = torch.randn(4, 8)
    c = compile(m, (x,), streams=streams, poison=True)
    lifts = [n for n in c.graph.nodes if n.op.startswith("lift_fresh_copy")]
    assert lifts and all(c.graph.tensor(n.outputs[0]).view_of is None for n in lifts)
    for _ in range(2):
        x = torch.randn(4, 8)
        assert torch.equal(c(x), _eager(m, (x,)))


@pytest.mark.parametrize("streams", [1, 3])
def test_in_place_metadata_ops_leave_the_arena_views_as_planned(streams):
    """``unsqueeze_``/``transpose_``/``t_`` change metadata only: the result is the view op's, nothing runs
    where the plan put it there, and the arena's own view objects keep their planned shape and strides
    (run in place they were rewritten; ``transpose_`` after ``unsqueeze_`` was refused)."""
    m = MetadataInPlace()
    x = torch.randn(4, 6)
    c = compile(m, (x,), streams=streams, poison=True)
    ops = {n.op.split(".")[0]: c.executor.launches[n.id].kind for n in c.graph.nodes}
    assert {ops["unsqueeze_"], ops["transpose_"], ops["t_"]} <= {"noop", "copy"}
    for _ in range(3):
        x = torch.randn(4, 6)
        for a, b in zip(c(x), _eager(m, (x,))):
            assert torch.equal(a, b)
    for tid, view in c.executor.layout.views.items():
        spec = c.program.specs[tid]
        assert (tuple(view.shape), tuple(view.stride())) == (spec.shape, spec.stride), tid


def test_an_input_returned_as_it_is_is_the_callers_tensor():
    """``return x, ...``: no node produces ``x`` (from_torch refuses it), so the executor returns the
    caller's tensor itself, as eager does (round 42: a copy before, without ``return_views``), whatever the plan put
    on the input's slot after its last reader."""

    class Echo(torch.nn.Module):
        def forward(self, x, y):
            return y, x * 2, (x, y + 1)

    m = Echo()
    x, y = torch.randn(4, 8), torch.randn(16)
    for streams in (1, 3):
        c = compile(m, (x, y), streams=streams, poison=True)
        for _ in range(2):
            x, y = torch.randn(4, 8), torch.randn(16)
            out, ref = c(x, y), _eager(m, (x, y))
            assert torch.equal(out[0], ref[0]) and torch.equal(out[2][0], ref[2][0])
            assert torch.equal(out[1], ref[1]) and torch.equal(out[2][1], ref[2][1])
            assert out[0] is y and out[2][0] is x
    views = compile(m, (x, y), streams=1, return_views=True)
    assert views(x, y)[0] is y


def test_non_tensor_inputs_must_be_the_exported_values():
    """Export specializes an int/float/None input to its example value: another value is an error naming
    the argument (it ran the exported value's program and returned its result)."""

    class Scale(torch.nn.Module):
        def forward(self, x, n: int, bias=None):
            return x * n if bias is None else x * n + bias

    m = Scale()
    x = torch.randn(5)
    c = compile(m, (x, 2, None), streams=1, poison=True)
    assert torch.equal(c(x, 2, None), _eager(m, (x, 2, None)))
    with pytest.raises(AtenExecutorError, match="argument 'n' \\(argument leaf 1\\) is 3, the program was exported with 2"):
        c(x, 3, None)
    with pytest.raises(AtenExecutorError, match="argument 'bias'"):
        c(x, 2, torch.ones(5))


@pytest.mark.parametrize("kw,err,match", [
    (dict(streams=True), memplan.ScheduleError, "streams must be an integer"),
    (dict(device="xpu"), AtenExecutorError, "device 'xpu': the executor runs on 'cpu' or 'cuda'"),
    (dict(device="garbage"), AtenExecutorError, "device 'garbage' is not a torch device"),
    (dict(device="cuda:64"), AtenExecutorError, "device 'cuda:64': torch sees"),
    (dict(kwargs=5), AtenExecutorError, "kwargs must be a mapping"),
    (dict(verify=None), AtenExecutorError, "verify must be True or False, not None"),
    (dict(cuda_graph="yes"), AtenExecutorError, "cuda_graph must be True or False"),
    (dict(return_views=1), AtenExecutorError, "return_views must be True or False"),
    (dict(poison="no"), AtenExecutorError, "poison must be True or False"),
    (dict(plan="garbage"), AtenExecutorError, "plan must be a memplan Plan, not str"),
    (dict(program="garbage"), AtenExecutorError, "program must be a Program"),
])
def test_compile_options_are_checked_before_the_export(monkeypatch, kw, err, match):
    """Bad options are named before the export runs (seconds to minutes on a real model): ``streams=True``
    ran the serial plan, ``device="cuda"`` on a machine without one was torch's driver message, ``"xpu"`` an
    AssertionError, a non-mapping ``kwargs`` an export error about ``_IntWrapper``."""
    C = sys.modules["runtime.aten.compile"]   # (the package's ``compile`` is the function)

    def no_export(*a, **k):
        raise AssertionError("exported before the options were checked")

    monkeypatch.setattr(C, "load_program", no_export)
    with pytest.raises(err, match=match):
        compile(torch.nn.Linear(4, 3).eval(), (torch.randn(2, 4),), **kw)


def test_a_view_torch_cannot_make_in_its_layout_falls_back_to_the_plans_layouts():
    """Taking torch's layout for results over tensors export lays out otherwise (DPT) left this model's
    NHWC flatten, a view on the plan's layout and a copy on torch's, with no planned place: compile failed
    where it had run. Lowering falls back to the plan's layouts: it runs, close to eager, 1 and 3 streams."""
    from aten_models import StridesChainFlat

    torch.manual_seed(0)
    m = StridesChainFlat().eval()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 16, 32, generator=g)
    for streams in (1, 3):
        c = compile(m, (x,), streams=streams, poison=True)
        for _ in range(2):
            x = torch.randn(1, 16, 32, generator=g)
            torch.testing.assert_close(c(x), _eager(m, (x,)), rtol=1e-5, atol=1e-6)


def test_the_model_sweep_runs_on_the_cpu_and_refuses_bad_options(tmp_path, capsys):
    """``python -m runtime.aten.sweep`` (docs/aten.md's model sweep): a tiny Llama on the CPU, 1 and 3 streams,
    bitwise to eager, results written as JSON; an unknown model, a device the executor cannot use and a
    budget that is no number of seconds are one line and exit 2."""
    import json

    from runtime.aten.sweep import CASES
    from runtime.aten.sweep import main as sweep

    names = [c.name for c in CASES]  # a repeated name would shadow a case in --only and the JSON results
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)
    out = tmp_path / "sweep.json"
    assert sweep(["--device", "cpu", "--only", "llama", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["counts"] == {"bitwise": 2} and {r["mode"] for r in doc["results"]} == {"s1", "s3"}
    assert sweep(["--device", "cpu", "--only", "nosuchmodel"]) == 2
    assert sweep(["--device", "xpu"]) == 2
    assert "--device" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        sweep(["--budget", "nan"])
    assert exit_.value.code == 2


@pytest.mark.parametrize("streams", [1, 3])
def test_an_in_place_result_placed_apart_takes_its_inputs_real_layout(streams):
    """Swin2SR (3e-8): a convolution's result took the CPU kernel's contiguous layout (the fake one is
    channels-last); ``leaky_relu_`` over it, placed apart, ran as ``leaky_relu`` out into a view in the fake
    order, where eager's result is the input itself; the next convolution then ran channels-last."""
    torch.manual_seed(0)
    m, x = InPlaceApart().eval(), torch.randn(1, 36, 8)
    c = compile(m, (x,), streams=streams)
    apart = compile(m, (x,), plan=plan_with_roots_apart(c.graph, c.plan), program=c.program, poison=True)
    memplan.verify(apart.graph, apart.plan)
    assert apart.executor.launches["leaky_relu_"].kind == "out"
    for seed in (1, 2):
        x = torch.randn(1, 36, 8, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(apart(x), _eager(m, (x,)))


class MemoryFormatCopy(torch.nn.Module):
    """An intermediate copied into a memory format (``contiguous``/``clone``/``to`` with ``memory_format``),
    then read by a convolution, a view or an in-place op (``then``)."""

    def __init__(self, how: str, fmt, then: str, dims: int = 2):
        super().__init__()
        self.how, self.fmt, self.then = how, fmt, then
        self.conv = (torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d)(4, 4, 3, padding=1)

    def forward(self, x):
        h = torch.relu(x)
        if self.how == "contiguous":
            y = h.contiguous(memory_format=self.fmt)
        elif self.how == "clone":
            y = h.clone(memory_format=self.fmt)
        else:
            y = h.to(memory_format=self.fmt)
        if self.then == "conv":
            return self.conv(y)
        if self.then == "view":   # a view of the copy in its own order (channels-last: N, H, W, C)
            return y.permute(0, *range(2, y.dim()), 1).flatten(1, -2) * 2
        return self.conv(y.mul_(2).relu_())   # in place, then a convolution


CL, CL3, PRESERVE = torch.channels_last, torch.channels_last_3d, torch.preserve_format
MEMORY_FORMAT_CASES = [  # (how, format, then, dims, channels-last input)
    ("contiguous", CL, "conv", 2, False), ("contiguous", CL, "view", 2, False), ("contiguous", CL, "inplace", 2, False),
    ("contiguous", CL3, "conv", 3, False), ("contiguous", CL3, "view", 3, False), ("contiguous", CL3, "inplace", 3, False),
    ("contiguous", CL, "conv", 2, True),    # already channels-last: torch returns the input itself
    ("clone", CL, "conv", 2, False), ("to", CL3, "inplace", 3, False),
    ("clone", PRESERVE, "conv", 2, True), ("clone", PRESERVE, "view", 2, True), ("clone", PRESERVE, "inplace", 2, True),
]


@pytest.mark.parametrize("how,fmt,then,dims,cl_in", MEMORY_FORMAT_CASES)
def test_copies_into_a_memory_format_equal_eager_bitwise(how, fmt, then, dims, cl_in):
    """``torch.relu(x).contiguous(memory_format=torch.channels_last)`` was refused in every model ("torch's
    view is ... the plan's is ..."): the importer asked whether the input was contiguous in the default
    format, not in the one asked for, so it took the copy for a view of its input. 1 and 3 streams, a
    poisoned arena: bitwise eager, in eager's layout."""
    torch.manual_seed(0)
    m = MemoryFormatCopy(how, fmt, then, dims).eval()
    shape = (2, 4, 5, 6) if dims == 2 else (2, 4, 3, 5, 6)

    def inputs(seed):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
        return (x.contiguous(memory_format=CL if dims == 2 else CL3),) if cl_in else (x,)

    serial = compile(m, inputs(0), streams=1, poison=True)
    multi = compile(m, inputs(0), streams=3, poison=True, program=serial.program)
    node = next((n for n in serial.graph.nodes if n.op.split(".")[0] == how), None)
    if not (how == "contiguous" and cl_in):   # a copy: a tensor of its own (export drops the other case)
        assert node is not None and serial.graph.tensor(node.outputs[0]).view_of is None
    for c in (serial, multi):
        for seed in (1, 2):
            x = inputs(seed)
            ref, out = _eager(m, x), c(*x)
            assert torch.equal(out, ref), f"max diff {(out - ref).abs().max()}"
            if then == "view":
                assert out.stride() == ref.stride()


class OneChannelTo(torch.nn.Module):
    """``to(memory_format=...)`` of a one-channel, one-pixel intermediate: its contiguous and channels-last
    strides are one, and torch's ``to`` still copies it (its input's suggested format is the default)."""

    def __init__(self, fmt):
        super().__init__()
        self.fmt = fmt
        self.conv = (torch.nn.Conv2d if fmt == CL else torch.nn.Conv3d)(1, 4, 1)

    def forward(self, x):
        y = torch.relu(x).to(memory_format=self.fmt)
        return self.conv(y), y.mul_(2) + 1


@pytest.mark.parametrize("fmt", [CL, CL3], ids=["channels_last", "channels_last_3d"])
@pytest.mark.parametrize("saved", [False, True], ids=["in_memory", "loaded"])
def test_to_a_memory_format_its_input_has_strides_for_is_a_copy(fmt, saved):
    """Was refused at compile ("torch's view is (2, 1, 1, 1) strides (1, 1, 1, 1) at A, the plan's ... at
    B"): the importer took ``to(memory_format=...)`` for a view wherever its input had the result's strides,
    and a (N, 1, 1, 1) tensor has them in both formats; torch's ``to`` aliases only where the input's
    suggested format is the one asked for. A plan could have put the in-place write to the copy over
    its input. Now a copy, bitwise eager, in memory and loaded from a .pt2."""
    import io

    torch.manual_seed(0)
    m = OneChannelTo(fmt).eval()
    shape = (2, 1, 1, 1) if fmt == CL else (2, 1, 1, 1, 1)
    x = torch.randn(*shape)
    program = torch.export.export(m, (x,))
    if saved:
        buf = io.BytesIO()
        torch.export.save(program, buf)
        buf.seek(0)
        program = torch.export.load(buf)
    c = compile(program, (x,), streams=1, poison=True)
    assert c.graph.tensor("to").view_of is None
    for seed in (1, 2):
        xs = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
        out, ref = c(xs), _eager(m, (xs,))
        assert all(torch.equal(o, r) and o.stride() == r.stride() for o, r in zip(out, ref))
