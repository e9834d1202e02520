"""ATen executor on a CUDA GPU (marker ``gpu(backend="torch")``; skipped without torch's CUDA).

- several streams give the same bits as one stream (deterministic cuDNN; cuBLAS keeps a workspace per
  handle and stream), both close to eager, both as one captured CUDA graph;
- 30 runs with random ``torch.cuda._sleep`` delays on random nodes (so on random streams), a
  NaN-poisoned arena, fresh inputs each run: always the one-stream result, bit for bit;
- negative controls: a plan missing one required event, and offsets planned for the serial order run
  on the multi-stream schedule, are rejected by ``memplan.verify`` AND visibly corrupt the output when a
  delay opens the race they leave;
- concurrent GEMMs on four streams (eager and captured) give the serial bits.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from needs import need
from plan_mutators import plan_with_roots_apart
from reference import happens_before

pytestmark = pytest.mark.gpu(backend="torch")

DELAY_RUNS = 30


@pytest.fixture(scope="module")
def torch():
    torch = need("torch")
    need("transformers")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def _model(torch, name):
    from aten_models import CNN, MLP, tiny_lm

    torch.manual_seed(0)
    g = torch.Generator(device="cuda").manual_seed(1)
    if name == "mlp":
        return MLP().eval().cuda(), lambda: (torch.randn(16, 32, device="cuda", generator=g),)
    if name == "cnn":
        return CNN().eval().cuda(), lambda: (torch.randn(4, 3, 64, 64, device="cuda", generator=g),)
    if name.endswith("_bf16"):  # bf16 experts export as torch._grouped_mm, which a CUDA graph can capture
        m = tiny_lm(name.removesuffix("_bf16")).to(torch.bfloat16).cuda()
    else:  # (f32 experts export transformers' grouped_mm fallback, which syncs with the host)
        m = tiny_lm(name).cuda()
    return m, lambda: (torch.randint(0, 128, (2, 16), device="cuda", generator=g),)


def _pair(torch, name, **kw):
    from runtime.aten import compile

    module, inputs = _model(torch, name)
    x = inputs()
    one = compile(module, x, streams=1, poison=True, **kw)
    multi = compile(module, x, streams="auto", poison=True, program=one.program, **kw)
    if multi.plan.streams == 1:
        multi = compile(module, x, streams=3, poison=True, program=one.program, **kw)
    return module, inputs, one, multi


def _close(torch, out, ref):
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["mlp", "cnn", "llama", "qwen2_moe_bf16"])
def test_multistream_equals_one_stream_bitwise_in_cuda_graphs(torch, name):
    module, inputs, one, multi = _pair(torch, name, cuda_graph=True)
    assert name == "mlp" or (multi.plan.streams > 1 and multi.plan.events)  # an MLP is one chain
    for _ in range(3):
        x = inputs()
        with torch.no_grad():
            ref = module(*x)
        a, b = one(*x), multi(*x)
        assert torch.equal(a, b), f"{name}: 1 stream vs {multi.plan.streams}: {(a - b).abs().max()}"
        assert not torch.isnan(b).any()
        _close(torch, b, ref)


@pytest.mark.parametrize("name", ["cnn", "qwen2_moe"])
def test_random_delays_on_random_streams_never_change_a_bit(torch, name):
    module, inputs, one, multi = _pair(torch, name, cuda_graph=False)
    rng = random.Random(7)
    nodes = [n for n, _s in multi.plan.order]
    for run in range(DELAY_RUNS):
        x = inputs()
        ref = one(*x)
        delays = {n: rng.randrange(10_000, 400_000) for n in rng.sample(nodes, max(1, len(nodes) // 8))}
        out = multi(*x, delays=delays)
        torch.cuda.synchronize()
        assert torch.equal(out, ref), f"{name} run {run}: a delay changed the output"


def test_captured_graph_replays_equal_eager_issue(torch):
    from runtime.aten import compile

    module, inputs, _one, multi = _pair(torch, "cnn", cuda_graph=False)
    captured = compile(module, inputs(), plan=multi.plan, program=multi.program, cuda_graph=True, poison=True)
    for _ in range(3):
        x = inputs()
        assert torch.equal(captured(*x), multi(*x))


def test_missing_event_is_rejected_and_corrupts_the_output(torch):
    import memplan
    from runtime.aten import compile

    module, inputs, one, multi = _pair(torch, "cnn", cuda_graph=False)
    p = multi.plan
    x = inputs()
    ref = one(*x)
    caught = []
    for k, (after, _before) in enumerate(p.events):
        dropped = replace(p, events=p.events[:k] + p.events[k + 1:])
        try:
            memplan.verify(multi.graph, dropped)
            continue  # a redundant event
        except memplan.UnsafePlan as exc:
            if not any(rule == 2 for rule, _m in exc.violations):
                continue
        bad = compile(module, x, plan=dropped, verify=False, program=multi.program, cuda_graph=False, poison=True)
        out = bad(*x, delays={after: 2_000_000})  # ~1 ms before the producer: its reader runs first
        torch.cuda.synchronize()
        caught.append(not torch.equal(out, ref))
        if len(caught) == 3:
            break
    assert caught, "no event whose removal breaks a read"
    assert all(caught), f"a missing event went unnoticed on the GPU: {caught}"


def test_serial_offsets_on_the_multistream_schedule_are_rejected_and_corrupt(torch):
    import memplan
    from runtime.aten import compile

    module, inputs, one, multi = _pair(torch, "cnn", cuda_graph=False)
    s, m, g = one.plan, multi.plan, multi.graph
    bad_plan = replace(m, arena_bytes=s.arena_bytes, tensors=s.tensors)
    with pytest.raises(memplan.UnsafePlan, match=r"rule 3: tensors '[^']+' and '[^']+' overlap in the arena"):
        memplan.verify(g, bad_plan)
    bad = compile(module, inputs(), plan=bad_plan, verify=False, program=multi.program, cuda_graph=False,
                  poison=True)
    races = _races(g, s, m)
    assert races, "the serial offsets leave no race on this schedule"
    corrupted = 0
    for _run, r in zip(range(8), races):
        x = inputs()
        ref = one(*x)
        out = bad(*x, delays={r: 2_000_000})  # the reader waits: the other stream overwrites its input
        torch.cuda.synchronize()
        corrupted += not torch.equal(out, ref)
    assert corrupted, f"none of {min(8, len(races))} opened races corrupted the output"


def _races(g, s, m) -> list[str]:
    """Readers r of a root A that ``m`` leaves unordered with the producer of a root B which the serial
    plan ``s`` put over A's bytes after r: delaying r lets B overwrite A before r reads it."""
    hb = happens_before(list(m.order), list(m.events))
    offs, size = s.offsets(), {t: n for t, _o, n in s.tensors}
    readers: dict[str, list[str]] = {}
    producer: dict[str, str] = {}
    for node in g.nodes:
        for t in node.inputs:
            readers.setdefault(g.tensors[g.root[g.tensor_index[t]]].id, []).append(node.id)
        for t in node.outputs:
            if g.is_root(g.tensor_index[t]):
                producer[t] = node.id
    serial_pos = {n: i for i, (n, _s) in enumerate(s.order)}
    races = []
    for a, rs in readers.items():
        for b, p in producer.items():
            if a == b or offs.get(a) is None or offs.get(b) is None:
                continue
            if not (offs[a] < offs[b] + size[b] and offs[b] < offs[a] + size[a]):
                continue
            for r in rs:
                if r != p and serial_pos[r] < serial_pos[p] and not hb(r, p) and not hb(p, r):
                    races.append(r)
    races = sorted(set(races), key=lambda n: serial_pos[n])
    return races


def test_concurrent_gemms_on_streams_do_not_share_a_cublas_workspace(torch):
    """torch gives every (cuBLAS handle, stream) pair its own workspace (CublasHandlePool.cpp keys them
    by both); if two streams shared one, split-K GEMMs running at once would corrupt each other."""
    assert hasattr(torch._C, "_cuda_clearCublasWorkspaces")
    gen = torch.Generator(device="cuda").manual_seed(3)
    streams = [torch.cuda.Stream() for _ in range(4)]
    shapes = [(64, 64, 65536), (128, 96, 32768), (32, 256, 49152), (256, 32, 16384)]  # split-K shapes
    for dtype in (torch.float32, torch.bfloat16):
        work = [(torch.randn(m, k, device="cuda", dtype=dtype, generator=gen),
                 torch.randn(k, n, device="cuda", dtype=dtype, generator=gen)) for m, n, k in shapes * 4]
        ref = [a @ b for a, b in work]
        outs = [torch.empty_like(r) for r in ref]

        for _ in range(3):
            for o in outs:
                o.fill_(float("nan"))
            _issue_gemms(torch, streams, work, outs, True)
            torch.cuda.synchronize()
            assert all(torch.equal(o, r) for o, r in zip(outs, ref)), f"{dtype}: concurrent GEMMs differ"
        _issue_gemms(torch, streams, work, outs, False)  # warm every stream's handle and workspace before capture
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            _issue_gemms(torch, streams, work, outs, False)
        for o in outs:
            o.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert all(torch.equal(o, r) for o, r in zip(outs, ref)), f"{dtype}: captured concurrent GEMMs differ"


def _issue_gemms(torch, streams, work, outs, delay: bool) -> None:
    cur = torch.cuda.current_stream()
    for s in streams:
        s.wait_stream(cur)
    for i, ((a, b), o) in enumerate(zip(work, outs)):
        with torch.cuda.stream(streams[i % len(streams)]):
            if delay:
                torch.cuda._sleep(1000 * (i % 3))
            torch.mm(a, b, out=o)
    for s in streams:
        cur.wait_stream(s)


def _torch_values(torch, program, inputs) -> dict:
    """Every FX value of the exported program as torch computes it (cloned when computed)."""
    vals: dict = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            r = super().run_node(n)
            if isinstance(r, torch.Tensor):
                vals[n.name] = r.detach().clone()
            return r
    user = iter(inputs)
    args = [program.weights[s.arg.name] if s.arg.name in program.weights else next(user)
            for s in program.exported.graph_signature.input_specs]
    with torch.no_grad():
        Recorder(program.exported.graph_module).run(*args)
    return vals


@pytest.mark.parametrize("name", ["mlp", "cnn", "llama"])
@pytest.mark.parametrize("captured", [False, True])
def test_every_node_equals_torch_eager_and_captured(torch, name, captured):
    """With no memory reuse, every node's result stays in the arena: compare each with torch's value for
    the same exported program (eager issue and one captured CUDA graph, several streams)."""
    import json
    import os

    from runtime.aten import compile

    module, inputs, one, multi = _pair(torch, name, cuda_graph=False)
    plan = plan_with_roots_apart(multi.graph, multi.plan)
    c = compile(module, inputs(), plan=plan, program=multi.program, cuda_graph=captured, poison=True)
    x = inputs()
    x_before = [t.clone() for t in x]
    with torch.no_grad():
        ref = module(*x)
    out = c(*x)
    torch.cuda.synchronize()
    inputs_intact = all(torch.equal(a, b) for a, b in zip(x, x_before))
    slot_ok = all(torch.equal(c.executor.layout.views[tid], x[i]) for i, (_p, tid) in enumerate(c.program.user_inputs))
    vals = _torch_values(torch, multi.program, x)
    views, g = c.executor.layout.views, c.graph
    bad = []
    for node in g.nodes:
        v = vals.get(node.id)
        if v is None or not node.outputs or tuple(views[node.outputs[0]].shape) != tuple(v.shape):
            continue
        got = views[node.outputs[0]]
        if not torch.equal(got, v):
            diff = (got.float() - v.float()).abs().max().item()
            bad.append((node.id, node.op, c.executor.launches[node.id].kind, diff))
    diag = os.environ.get("ATEN_DIAG_DIR")
    if diag:
        tag = os.environ.get("ATEN_DIAG_TAG", "")
        with open(os.path.join(diag, f"nodes_{name}_{'graph' if captured else 'eager'}{tag}.json"), "w") as f:
            json.dump({"bad_nodes": bad, "checked": len(g.nodes), "inputs_intact": inputs_intact,
                       "input_slots_hold_inputs": slot_ok,
                       "out_vs_module": float((out.float() - ref.float()).abs().max())}, f, indent=0)
    worst = [b for b in bad if not b[3] <= 1e-4]
    assert not worst, f"{len(worst)} nodes differ from torch, first: {worst[:5]}"


@pytest.mark.parametrize("pool", [False, True])
def test_graphs_destroyed_elsewhere_leave_our_captured_gemms_their_workspaces(torch, pool, monkeypatch):
    """pytorch #193402: a destroyed CUDAGraph frees the cuBLAS workspaces of its capture stream, and
    torch's stream pool hands the same streams out round-robin. Destroy a graph captured on every pool
    stream, hand the freed memory to fresh tensors, replay our captured split-K GEMMs (on several
    streams): the output and those tensors must be untouched (our streams are private)."""
    from torch import nn

    from runtime.aten import compile

    class TwoSplitK(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(16384, 64, bias=False)
            self.b = nn.Linear(16384, 64, bias=False)

        def forward(self, x):
            return self.a(x) * self.b(x)

    if pool:  # the control: torch's pool streams, as a naive executor would use; recorded, not asserted
        import runtime.aten.streams as streams_mod

        monkeypatch.setattr(streams_mod, "private_stream", lambda torch, device: torch.cuda.Stream(device=device))
    torch.manual_seed(0)
    module = TwoSplitK().cuda().eval()
    x = torch.randn(8, 16384, device="cuda")
    # the two GEMMs on two streams, given explicitly: the scheduler may rightly keep two small GEMMs on one
    import memplan
    from runtime.aten.program import load_program

    program = load_program(module, (x,))
    g = program.graph
    stream_of = {n.id: int(n.id == "linear_1") for n in g.nodes}
    two = memplan.plan(g, memplan.schedule_with_events(g, [n.id for n in g.nodes], stream_of))
    c = compile(module, (x,), plan=two, program=program, poison=True)
    assert c.plan.streams == 2
    ref = c(x)
    a = torch.randn(64, 16384, device="cuda")
    for _ in range(64):  # every pool stream, twice round
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            a @ a.t()
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, stream=s):
            a @ a.t()
        del g
    torch.cuda.synchronize()
    fill = [torch.full((1 << 20,), 7.0, device="cuda") for _ in range(96)]
    same = []
    for _ in range(3):
        out = c(x)
        torch.cuda.synchronize()
        same.append(bool(torch.equal(out, ref)))
    intact = all(bool((f == 7.0).all()) for f in fill)
    import json
    import os

    if os.environ.get("ATEN_DIAG_DIR"):
        with open(os.path.join(os.environ["ATEN_DIAG_DIR"], f"workspace_{'pool' if pool else 'private'}.json"),
                  "w") as f:
            json.dump({"outputs_equal": same, "fill_intact": intact}, f)
    if not pool:
        assert all(same) and intact, f"outputs equal {same}, other tensors intact {intact}"


@pytest.mark.parametrize("name", ["detach", "metadata", "echo", "scalar_consts"])
def test_metadata_ops_and_returned_inputs_on_cuda(torch, name):
    """The lowerings session 13 added on a CPU, on CUDA: ``detach_`` and in-place metadata ops run as their
    view op (nothing, or a counted move), a returned input is the caller's tensor; 0-dim constants made in
    forward (CPU tensors on a CUDA model) are copied into the arena from a device copy. 1 and 3 streams, eager
    issue and CUDA graph, arena poisoned, fresh inputs: bitwise equal to CUDA eager."""
    from aten_models import DetachInPlace, MetadataInPlace, ScalarConstants

    from runtime.aten import compile

    class Echo(torch.nn.Module):
        def forward(self, x, y):
            return y, x * 2, (x, y + 1)

    def leaves(o):
        return [t for x in (o if isinstance(o, (tuple, list)) else (o,))
                for t in (leaves(x) if isinstance(x, (tuple, list)) else [x])]

    torch.manual_seed(0)
    g = torch.Generator(device="cuda").manual_seed(2)
    module, inputs = {
        "detach": (DetachInPlace().eval().cuda(), lambda: (torch.randn(8, 8, device="cuda", generator=g),)),
        "metadata": (MetadataInPlace().cuda(), lambda: (torch.randn(4, 6, device="cuda", generator=g),)),
        "scalar_consts": (ScalarConstants(), lambda: (torch.randn(4, 6, device="cuda", generator=g),)),
        "echo": (Echo(), lambda: (torch.randn(4, 8, device="cuda", generator=g), torch.randn(16, device="cuda", generator=g))),
    }[name]
    for streams in (1, 3):
        for graph in (False, True):
            c = compile(module, inputs(), streams=streams, cuda_graph=graph, poison=True)
            for _ in range(3):
                x = inputs()
                with torch.no_grad():
                    want = leaves(module(*x))
                got = leaves(c(*x))
                assert len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want)), \
                    f"{name}: streams {streams}, graph {graph}"


_HOST_SYNC: dict = {}


def _host_sync_model(torch):
    """Two branches, one through a custom op that reads a device value on the host (``.item()``), as
    transformers' grouped-mm fallback did before ``runtime.aten.capturable`` lowered it: it runs eagerly but
    cannot be captured. The op is registered once per process."""
    from torch import nn

    if "op" not in _HOST_SYNC:
        # the schema given: under ``from __future__ import annotations`` torch would read the annotation
        # 'torch.Tensor' in this module, where ``torch`` is the fixture
        @torch.library.custom_op("memplan_tests::scale_by_host_sum", mutates_args=(), schema="(Tensor x) -> Tensor")
        def scale_by_host_sum(x):
            return x * float(x.sum().item())

        @scale_by_host_sum.register_fake
        def _(x):
            return torch.empty_like(x)
        _HOST_SYNC["op"] = torch.ops.memplan_tests.scale_by_host_sum

    op = _HOST_SYNC["op"]

    class HostSync(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(16, 16), nn.Linear(16, 16)

        def forward(self, x):
            return op(self.a(x).tanh() * 1e-3) + self.b(x).relu()

    torch.manual_seed(0)
    g = torch.Generator(device="cuda").manual_seed(2)
    return HostSync().eval().cuda(), lambda: (torch.randn(8, 16, device="cuda", generator=g),)


def test_a_model_that_syncs_with_the_host_is_named_when_captured_and_the_context_survives(torch):
    """An op that synchronizes with the host runs eagerly but cannot be captured. On 3 streams the capture
    used to end with the side streams unjoined, so torch raised "capturing stream has unjoined work" in place
    of the node's error and left its capture stream current. Now: an ``AtenExecutorError`` naming the node and
    ``cuda_graph=False``, the caller's stream current again, and the same model then runs uncaptured, close
    to eager."""
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    module, inputs = _host_sync_model(torch)
    x = inputs()
    stream = torch.cuda.current_stream()
    c = compile(module, x, streams=3, cuda_graph=True, poison=True)
    assert c.plan.streams > 1
    with pytest.raises(AtenExecutorError, match=r"node 'scale_by_host_sum'.*cuda_graph=False"):
        c(*x)
    assert torch.cuda.current_stream() == stream
    eager = compile(module, x, streams=3, cuda_graph=False, poison=True, program=c.program)
    with torch.no_grad():
        want = module(*x)
    got = eager(*x)
    torch.cuda.synchronize()
    _close(torch, got, want)


def test_inputs_the_program_writes_reach_the_caller_on_cuda(torch):
    """Session 18's write-back of user inputs the program mutates (``add_``, an item assignment, ``copy_``), on
    CUDA: 1 and 3 streams, eager issue and CUDA graph, arena poisoned, fresh inputs each call: outputs and
    the caller's tensors afterwards bitwise equal to CUDA eager (the copy back must wait for every stream)."""
    from aten_models import WritesItsInputs

    from runtime.aten import compile

    g = torch.Generator(device="cuda").manual_seed(4)

    def inputs():
        return [torch.randn(64, 256, device="cuda", generator=g), torch.randn(48, 256, device="cuda", generator=g),
                torch.randn(256, device="cuda", generator=g), torch.randn(256, device="cuda", generator=g)]

    module = WritesItsInputs()
    for streams in (1, 3):
        for graph in (False, True):
            c = compile(module, tuple(inputs()), streams=streams, cuda_graph=graph, poison=True)
            assert c.stats.input_writebacks == 3
            for _ in range(3):
                mine = inputs()
                theirs = [t.clone() for t in mine]
                got = c(*mine)
                with torch.no_grad():
                    want = module(*theirs)
                assert all(torch.equal(a, b) for a, b in zip(got, want)), f"streams {streams}, graph {graph}"
                assert all(torch.equal(a, b) for a, b in zip(mine, theirs)), f"streams {streams}, graph {graph}"


def test_calls_on_two_caller_streams_do_not_overlap_on_the_device(torch):
    """The per-program lock orders only the host's issue: a call on caller stream s2 copied its inputs into
    the arena while the previous call, issued on s1 and delayed on the device, still read them (its output
    was the second call's). Each call now waits on the device for the one before, whatever its stream."""
    from runtime.aten import compile

    module, inputs = _model(torch, "mlp")
    x1, x2 = inputs(), inputs()
    c = compile(module, x1, streams=1, cuda_graph=False)
    ref1, ref2 = c(*x1), c(*x2)
    first = c.plan.order[0][0]
    torch.cuda.synchronize()
    s1, s2 = torch.cuda.Stream(), torch.cuda.Stream()
    with torch.cuda.stream(s1):
        out1 = c(*x1, delays={first: 50_000_000})   # tens of ms before its first kernel
    with torch.cuda.stream(s2):
        out2 = c(*x2)
    torch.cuda.synchronize()
    assert torch.equal(out2, ref2)
    assert torch.equal(out1, ref1), "the second call's inputs reached the first call's kernels"
