"""What a CUDA graph can capture: program constants left on the CPU, and naming the node that broke a capture.

- A plain tensor attribute is no buffer, so ``module.cuda()`` leaves it on the CPU (VideoMAE's sinusoid
  table), and eager copies it host to device every call, which a CUDA graph cannot capture. A copy-family
  op (``type_as``, ``to``, ``clone``...) reading such a *constant*, or a view of one, takes it moved to the
  device once at lowering; parameters, buffers, user inputs, intermediates and constants the program writes
  never do. The decision is tested here on the CPU (a ``meta`` result stands for another device), the
  captured run on the GPU (marker ``gpu``).
- An op can invalidate a capture without raising (it ignores the error CUDA gave it); the next node that
  checks then fails with "a previous error during capture". The issuer asks the capture status after every
  launch while capturing, so the error names the node that broke it.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten import executor as executor_mod  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.lower import Target, _constant_on_device, constant_source, fixed_constants  # noqa: E402


class AttributeTable(nn.Module):
    """A float64 table held as a plain attribute (a lifted CONSTANT_TENSOR), read through ``detach`` +
    ``type_as`` (as VideoMAE reads its position table) and ``.to(x)``; a parameter and a buffer read
    through copies too (they must stay where they are), and an intermediate cloned."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.table = torch.randn(4, 8, dtype=torch.float64, generator=g)
        self.w = nn.Parameter(torch.randn(4, 8, dtype=torch.float64, generator=g))
        self.register_buffer("b", torch.randn(4, 8, dtype=torch.float64, generator=g))

    def forward(self, x):
        y = x * 2
        return (x + self.table.detach().type_as(x) + self.table.to(x) + self.w.type_as(x) + self.b.to(x)
                + y.clone())


class WrittenTable(nn.Module):
    """A plain tensor attribute the program writes in place: its value changes every call."""

    def __init__(self):
        super().__init__()
        self.count = torch.zeros(4, 8, dtype=torch.float64)

    def forward(self, x):
        self.count.add_(1)
        return x + self.count.type_as(x)


def _copy_nodes(program):
    """{copy-family FX node name: FX node}, in program order."""
    from runtime.aten.exact import COPIES
    from runtime.aten.lower import _base

    return {n.name: n for n in program.exported.graph.nodes
            if n.op == "call_function" and _base(n.target) in COPIES}


def test_only_constants_no_node_writes_are_moved_once_to_the_results_device():
    """The lifted constant qualifies, through its ``detach`` view too; the parameter, the buffer, the user
    input and the intermediate do not. A result on another device (``meta`` here, CUDA on the GPU) makes a
    qualifying source one device copy, made once per source; other sources are left to the per-call path."""
    m = AttributeTable().eval()
    x = torch.randn(4, 8)
    c = compile(m, (x,), streams=1, poison=True)
    prog = c.program
    assert fixed_constants(torch, prog) == {"c_table"}
    nodes = _copy_nodes(prog)
    ctx = Target("cpu", frozenset())
    sources = {name: constant_source(torch, prog, n, prog.env[name], ctx) for name, n in nodes.items()}
    constant_reads = {k for k, v in sources.items() if v is not None}
    assert len(nodes) == 5 and len(constant_reads) == 2, sources   # table.detach().type_as, table.to
    assert sorted(sources[k] for k in constant_reads) == ["c_table", "detach"]

    views = c.executor.layout.views
    for _ in range(2):   # the second time takes the first one's copy
        for name, n in nodes.items():
            env = prog.env[name]
            src = views[env[n.args[0].name]]
            out = torch.empty(tuple(views[name].shape), dtype=views[name].dtype, device="meta")
            args, _kw = _constant_on_device(torch, prog, n, env, (src, *n.args[1:]), {}, out, ctx)
            if name in constant_reads:
                assert args[0].device.type == "meta" and tuple(args[0].shape) == tuple(src.shape)
                assert args[0].dtype == out.dtype == torch.float32 != src.dtype   # cast on the host, as eager
                assert args[0] is ctx.moved[(sources[name], out.device, out.dtype)][1]
            else:
                assert args[0] is src   # a parameter, a buffer, an intermediate: read where it is, every call
    assert len(ctx.moved) == 2
    # on the same device nothing moves: the CPU run is eager's, bit for bit, call after call
    assert all(torch.equal(c(x), m(x)) for _ in range(2))


def test_a_constant_the_program_writes_is_not_moved():
    """Moved once, a constant written in place would be read stale: it never qualifies (and eager's
    result changes every call, which the executor follows)."""
    m = WrittenTable()
    x = torch.randn(4, 8)
    c = compile(m, (x,), streams=1, poison=True)
    assert fixed_constants(torch, c.program) == frozenset()
    ctx = Target("cpu", frozenset())
    assert all(constant_source(torch, c.program, n, c.program.env[name], ctx) is None
               for name, n in _copy_nodes(c.program).items())
    ref = WrittenTable()
    ref.count.copy_(m.count)   # torch.export itself ran the add_ once on the module's own tensor
    for _ in range(2):
        assert torch.equal(c(x), ref(x))


class SharedStorageTables(nn.Module):
    """Plain attributes over memory something else writes: ``b`` a view of ``a`` (two lifted constants, one
    storage) that the program writes in place, and ``t`` a ``detach`` of a parameter (which a user updates)."""

    def __init__(self):
        super().__init__()
        self.a = torch.zeros(4, 8, dtype=torch.float64)
        self.b = self.a[:2]
        self.w = nn.Parameter(torch.randn(4, 8, dtype=torch.float64))
        self.t = self.w.detach()

    def forward(self, x):
        self.b.add_(1)
        return x + self.a.type_as(x) + self.t.type_as(x)


def test_a_constant_over_memory_something_writes_is_not_moved():
    """Was moved once (stale on CUDA from the second call on): ``a`` and ``b`` are two constants of one
    storage, and only ``b`` was seen written; ``t`` shares the parameter's storage, and the analysis saw
    only graph identities. Whether a write reaches a constant is a question of storage."""
    m = SharedStorageTables()
    x = torch.randn(4, 8)
    c = compile(m, (x,), streams=1, poison=True)
    assert {s.arg.name for s in c.program.exported.graph_signature.input_specs
            if s.kind.name == "CONSTANT_TENSOR"} == {"c_a", "c_b", "c_t"}
    assert fixed_constants(torch, c.program) == frozenset()
    ctx = Target("cpu", frozenset())
    views = c.executor.layout.views
    for name, n in _copy_nodes(c.program).items():
        env = c.program.env[name]
        src = views[env[n.args[0].name]]
        out = torch.empty(tuple(views[name].shape), dtype=views[name].dtype, device="meta")
        assert _constant_on_device(torch, c.program, n, env, (src, *n.args[1:]), {}, out, ctx)[0][0] is src
    ref = SharedStorageTables()
    ref.a.copy_(m.a)
    ref.w.data.copy_(m.w.data)
    for _ in range(2):
        assert torch.equal(c(x), ref(x))
    with torch.no_grad():
        m.w.add_(1)
        ref.w.add_(1)
    assert torch.equal(c(x), ref(x))


def _issuer(runs: dict, device: str = "cpu"):
    from memplan.graph import GraphBuilder
    from memplan.planfile import Plan
    from runtime.aten.lower import Launch
    from runtime.aten.streams import Issuer
    from runtime.binding import bind

    b = GraphBuilder("chain")
    b.input("x", 256)
    prev, tensors, order = "x", [("x", 0, 256)], []
    for k, name in enumerate(runs):
        out = b.output(f"t{k}", 256) if k == len(runs) - 1 else b.intermediate(f"t{k}", 256)
        b.node(name, "UNARY", [prev], out)
        tensors.append((out, 256 * (k + 1) % 512, 256))
        order.append((name, 0))
        prev = out
    g = b.build()
    plan = Plan("chain", 512, 512, 512, 1, tuple(order), (), tuple(tensors))
    launches = {name: Launch(name, f"aten.{name}", "copy", run, 0) for name, run in runs.items()}
    return Issuer(bind(g, plan).steps, launches, 1, device, 0)


def test_the_node_that_invalidated_a_capture_is_named_not_the_next_one():
    """tv_ops on the H200: a node invalidated the capture without raising, and ``ps_roi_align``, the next
    to check CUDA's errors, was named. Emulated: ``breaks`` invalidates the capture silently, ``next``
    fails as CUDA then makes it fail. With the capture status known, ``breaks`` is named; without it (no
    binding answers) the old blame is the best there is (so the status is what names it)."""
    state = {"invalid": False, "asked": 0}

    def breaks():   # what CUDA forbids only while a stream captures
        state["invalid"] = issuer.capturing

    def fails():
        if state["invalid"]:
            raise RuntimeError("CUDA error: operation failed due to a previous error during capture\nmore")

    def status():
        state["asked"] += 1
        return 2 if state["invalid"] else 1

    issuer = _issuer({"fine": lambda: None, "breaks": breaks, "next": fails})
    issuer.capture_status = status
    issuer.issue()   # not capturing: the status is never asked (the eager path pays nothing)
    assert state["asked"] == 0
    issuer.capturing = True
    with pytest.raises(AtenExecutorError, match=r"node 'breaks' \(aten\.breaks\): cannot be captured into a "
                                                r"CUDA graph \(it invalidated the capture.*cuda_graph=False"):
        issuer.issue()
    assert state["asked"] == 4   # before and after 'fine' and 'breaks'
    # invalidated between launches (the executor's own event work): the node about to run is named, as such
    state["invalid"] = True
    with pytest.raises(AtenExecutorError, match=r"node 'fine' .*invalidated before this node ran"):
        issuer.issue()
    issuer.capture_status = lambda: None
    state["invalid"] = False
    with pytest.raises(AtenExecutorError, match=r"node 'next' .*a previous error during capture"):
        issuer.issue()


@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("streams", [1, 3])
def test_a_cpu_constant_read_by_copies_is_captured_and_equals_eager_on_cuda(streams):
    """VideoMAE on the H200: ``type_as`` of the CPU sinusoid table refused the CUDA graph. The model on
    CUDA keeps its plain attribute on the CPU; captured (poisoned arena, fresh inputs, two calls) its
    output is eager's, bit for bit."""
    torch.backends.cuda.matmul.allow_tf32 = False
    m = AttributeTable().eval().cuda()
    assert m.table.device.type == "cpu" and m.w.device.type == "cuda"
    g = torch.Generator(device="cuda").manual_seed(5)
    x = torch.randn(4, 8, device="cuda", generator=g)
    c = compile(m, (x,), streams=streams, cuda_graph=True, poison=True)
    for _ in range(2):
        x = torch.randn(4, 8, device="cuda", generator=g)
        with torch.no_grad():
            want = m(x)
        got = c(x)
        torch.cuda.synchronize()
        assert torch.equal(got, want)
    assert c.executor._captured
    # the user changes the CPU table in place: eager copies the new values, and so do the replays
    m.table.mul_(-3.0)
    with torch.no_grad():
        want = m(x)
    got = c(x)
    torch.cuda.synchronize()
    assert torch.equal(got, want)


def test_a_moved_constant_changed_in_place_is_copied_again_before_the_next_call():
    """A constant moved to the device once (``_constant_on_device``) follows in-place changes of its CPU
    tensor: its version counter moved, so the next call copies it again (cast on the host, as the first
    copy and eager's); an unchanged one is not copied again. On the CPU nothing is moved, so the entry is
    planted here (a float64 source, a float32 "device" copy)."""
    c = compile(AttributeTable().eval(), (torch.randn(4, 8),), streams=1)
    ex = c.executor
    assert ex._moved == []   # one device: nothing moved
    src = torch.randn(4, 8, dtype=torch.float64)
    dst = src.to(torch.float32)
    ex._moved = [[src.detach(), dst, src._version]]
    before = dst.data_ptr()
    dst.fill_(7.0)   # a stale marker: no copy when the source did not change
    ex._refresh_moved()
    assert torch.all(dst == 7.0)
    src.mul_(2.0)    # through the base: the detached view shares its version counter
    ex._refresh_moved()
    assert torch.equal(dst, src.to(torch.float32)) and dst.data_ptr() == before   # in place: graphs keep reading it
    dst.fill_(7.0)
    ex._refresh_moved()   # copied once per change
    assert torch.all(dst == 7.0)
    # an inference tensor keeps no version counter (asking raises): never copied again, no error
    with torch.inference_mode():
        frozen = torch.randn(4, 8, dtype=torch.float64)
    ex._moved = [[frozen, dst, executor_mod._version(frozen)]]
    ex._refresh_moved()
    assert torch.all(dst == 7.0)


@pytest.mark.gpu(backend="torch")
def test_a_capture_that_failed_leaves_the_callers_random_ops_working():
    """A program that cannot be captured (here a step that synchronizes the device while its stream captures)
    is refused naming its node, and the caller's CUDA state is as before: torch's ``capture_end`` raised before
    ending the default generator's capture, and every later ``torch.randn`` on the device failed ("Offset
    increment outside graph capture encountered unexpectedly": the CUDA fuzzer's later examples, all of them)."""
    import torch

    from runtime.aten.streams import CAPTURE_NONE, stream_capture_status

    good = _issuer({"a": lambda: None}, "cuda")
    bad = _issuer({"a": lambda: None, "syncs": lambda: torch.cuda.synchronize()}, "cuda")
    before = torch.randn(4, device="cuda")   # the generator is in use before the capture (as in any program)
    with pytest.raises(AtenExecutorError, match=r"node 'syncs' \(aten\.syncs\): cannot be captured"):
        bad.capture()
    assert torch.cuda.current_stream() == torch.cuda.default_stream()
    assert stream_capture_status(torch, torch.device("cuda")) in (None, CAPTURE_NONE)
    after = torch.randn(4, device="cuda")   # raised before the fix
    assert after.isfinite().all() and not torch.equal(before, after)
    good.capture()   # and a later capture still works
    good.replay()
    torch.cuda.synchronize()
