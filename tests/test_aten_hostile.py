"""Hostile inputs for the ATen executor on the CPU (CI): models and calls that used to give wrong results
silently, lose a mutation eager makes, or fail with a raw torch error. Each compiles on 1 and 3 streams
with the arena poisoned and must equal eager bitwise, or be refused naming what it refuses."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from aten_models import WritesItsInputs  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402


def _same(out, ref) -> None:
    outs, refs = (out, ref) if isinstance(ref, (tuple, list)) else ((out,), (ref,))
    assert len(outs) == len(refs)
    for a, b in zip(outs, refs):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b), f"max diff {(a - b).abs().max()}"


class ConjViews(nn.Module):
    """Lazy conjugate and negative views (``_conj``, ``_neg_view`` through ``.imag``): the same bytes read
    transformed, a bit on the tensor that a plain strided view of the arena does not carry; and a
    ``resolve_conj`` that materializes one (a new tensor, though its schema says it may alias)."""

    def forward(self, x):
        y = x * 2
        return x * x.conj() + 1, y.conj() @ x.t(), x.conj().imag * 1, torch.view_as_real(y.conj().resolve_conj())


@pytest.mark.parametrize("streams", [1, 3])
def test_conjugate_and_negative_views_keep_their_bit(streams):
    """Was silently wrong: the arena's view of ``x.conj()`` was ``x`` (same address, shape, strides), so
    ``x * x.conj()`` computed ``x * x``, and ``resolve_conj`` was planned as a view of its input."""
    m = ConjViews()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, dtype=torch.complex64, generator=g)
    c = compile(m, (x,), streams=streams, poison=True)
    for _ in range(2):
        x = torch.randn(4, 5, dtype=torch.complex64, generator=g)
        _same(c(x), m(x))


class LinearOnAView(nn.Module):
    """``nn.Linear`` on a transposed (non-contiguous) 3-D input, with and without bias: eager's ``linear``
    runs ``matmul(input, weight.t())``, which folds to one ``mm`` because the weight requires grad;
    ``linear.out`` runs ``bmm`` there."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 4)
        self.b = nn.Linear(5, 3, bias=False)

    def forward(self, x):  # x: (5, 3, 5)
        return self.a(x.transpose(0, 1)), self.b(x.transpose(0, 1))


@pytest.mark.parametrize("streams", [1, 3])
def test_linear_on_a_non_contiguous_input_runs_what_eager_runs(streams):
    """Was ~1e-7 off eager (the docs promise bitwise on the CPU): linear.out's bmm against eager's mm."""
    torch.manual_seed(0)
    m = LinearOnAView().eval()
    g = torch.Generator().manual_seed(1)
    c = compile(m, (torch.randn(5, 3, 5, generator=g),), streams=streams, poison=True)
    for _ in range(2):
        x = torch.randn(5, 3, 5, generator=g)
        with torch.no_grad():
            _same(c(x), m(x))


class TwoRandomBranches(nn.Module):
    """Random ops on independent branches: a long chain before ``rand_like``, a short one with dropout and
    ``randn_like`` (train-mode dropout). A multi-stream schedule put the short branch's ops first."""

    def forward(self, x, y):
        a = x
        for _ in range(6):
            a = (a @ a).tanh()
        b = torch.rand_like(a) * a
        c = nn.functional.dropout(y, 0.3, training=True)
        for _ in range(6):
            c = (c @ c).tanh()
        return b, torch.randn_like(c) + c


@pytest.mark.parametrize("streams", [1, 2, 3])
def test_random_ops_draw_in_program_order_on_every_plan(streams):
    """Was silently different from eager under the same seed on 2-3 streams (the schedule issued dropout
    before rand_like): random ops now keep their program order in every schedule."""
    m = TwoRandomBranches()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(64, 64, generator=g) / 8, torch.randn(16, 16, generator=g) / 4
    c = compile(m, (x, y), streams=streams, poison=True)
    order = [n for n, _s in c.plan.order if n in ("rand_like", "dropout", "randn_like")]
    assert order == ["rand_like", "dropout", "randn_like"]
    for seed in (5, 6):
        torch.manual_seed(seed)
        out = c(x, y)
        torch.manual_seed(seed)
        _same(out, m(x, y))


class RandomInsideCond(nn.Module):
    """A random op inside ``torch.cond``'s branch (one higher-order node) and ``rand_like`` at the end of a
    long chain: critical-path-first schedules on 2-3 streams issued the cond first."""

    def forward(self, x, y):
        a = x
        for _ in range(6):
            a = (a @ a).tanh()
        b = torch.rand_like(a) * a

        def drop(c):
            return nn.functional.dropout(c, 0.5, training=True) * 2

        def keep(c):
            return c - 1

        c = torch.cond(y.sum() > -1e9, drop, keep, (y,))
        for _ in range(8):
            c = (c @ c).tanh()
        return b, c


@pytest.mark.parametrize("streams", [1, 2, 3])
def test_random_ops_inside_cond_draw_in_program_order(streams):
    """Was silently different from eager on 2-3 streams: only top-level random ops were ordered, so the
    cond holding a dropout ran before ``rand_like``."""
    m = RandomInsideCond()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(64, 64, generator=g) / 8, torch.randn(16, 16, generator=g) / 4
    c = compile(m, (x, y), streams=streams, poison=True)
    assert [n for n, _s in c.plan.order if n in ("rand_like", "cond")] == ["rand_like", "cond"]
    torch.manual_seed(5)
    out = c(x, y)
    torch.manual_seed(5)
    _same(out, m(x, y))


@pytest.mark.parametrize("streams", [1, 3])
def test_inputs_the_program_writes_are_written_back_to_the_caller(streams):
    """Was silently lost: the write landed in the arena copy only, so the caller's tensors kept their old
    values where eager changes them (and a slot reused after the write left nothing to copy back)."""
    m = WritesItsInputs()
    g = torch.Generator().manual_seed(3)

    def inputs():
        return [torch.randn(4, 5, generator=g), torch.randn(3, 5, generator=g), torch.randn(5, generator=g),
                torch.randn(5, generator=g)]

    c = compile(m, tuple(inputs()), streams=streams, poison=True)
    assert c.stats.input_writebacks == 3
    for _ in range(2):
        mine = inputs()
        theirs = [t.clone() for t in mine]
        _same(c(*mine), m(*theirs))
        for a, b in zip(mine, theirs):
            assert torch.equal(a, b)


def test_an_input_written_in_place_may_not_share_memory_with_another():
    """Eager's write through one argument shows in the other; the arena holds two copies: refused."""
    from runtime.aten.errors import AtenExecutorError

    class M(nn.Module):
        def forward(self, x, y):
            x.mul_(2)
            return y + 1

    a, b = torch.randn(4), torch.randn(4)
    c = compile(M(), (a, b), streams=1)
    t = torch.randn(4)
    with pytest.raises(AtenExecutorError, match="inputs 'x' and 'y' share memory"):
        c(t, t)
    with pytest.raises(AtenExecutorError, match="share memory"):
        c(t, t[:])
    _same(c(a, b), b + 1)


def test_inputs_on_another_device_or_layout_are_named_at_the_call():
    """A meta input was torch's NotImplementedError from ``copy_``, a sparse one its RuntimeError; an input
    on another device than the program's was copied over silently (eager would refuse it)."""
    from runtime.aten.errors import AtenExecutorError

    m = nn.Linear(4, 3).eval()
    x = torch.randn(2, 4)
    c = compile(m, (x,), streams=1)
    with pytest.raises(AtenExecutorError, match="input 'input' is a strided tensor on meta, the program runs"):
        c(x.to("meta"))
    with pytest.raises(AtenExecutorError, match="input 'input' is a sparse_coo tensor on cpu"):
        c(x.to_sparse())
    with torch.no_grad():
        _same(c(x), m(x))


class ForeachInPlace(nn.Module):
    """Ops that write their list arguments and return nothing (``_foreach_add_``): one on an intermediate and
    a user input, one on the intermediate alone."""

    def forward(self, x, y):
        h = x * 3
        torch._foreach_add_([h, y], 1.0)
        torch._foreach_mul_([h], 2.0)
        return h * 2, y + 0


@pytest.mark.parametrize("streams", [1, 3])
def test_ops_that_write_their_arguments_and_return_nothing_are_run(streams):
    """Were dropped by the torch importer (no tensor result: "no memory"), so the outputs missed their writes
    and the caller's input kept its old values, silently."""
    g = torch.Generator().manual_seed(9)

    def inputs():
        return [torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)]

    c = compile(ForeachInPlace(), tuple(inputs()), streams=streams, poison=True)
    assert "_foreach_add_" in {n.op.split(".")[0] for n in c.program.graph.nodes}
    assert c.stats.input_writebacks == 1
    for _ in range(2):
        mine = inputs()
        theirs = [t.clone() for t in mine]
        _same(c(*mine), ForeachInPlace()(*theirs))
        assert all(torch.equal(a, b) for a, b in zip(mine, theirs))


class StorageOffsets(nn.Module):
    """``as_strided`` with a storage offset on intermediates: the offset counts from the start of the
    tensor's storage, eager's own, here the arena."""

    def forward(self, x):
        y = x * 2
        a = y.as_strided((2, 2), (4, 2), 1) + 0
        b = torch.ops.aten.as_strided_copy(y, (3,), (2,), 2)
        c = (x + 1)[2:].as_strided((2,), (3,), 3) * 1      # of a slice: still from its storage's start
        w = x - 1
        w.as_strided_((2, 3), (1, 2), 1)
        d = torch.as_strided_scatter(y, x[:2], (2,), (3,), 1)
        return a, b, c, w * 1, d


@pytest.mark.parametrize("streams", [1, 3])
def test_as_strided_storage_offsets_count_from_the_tensors_own_storage(streams):
    """The arena view of ``y`` starts at its planned offset: ``as_strided(.., 1)`` named arena element 1 (a
    view refused as 256 bytes off); ``as_strided_copy`` read another tensor's bytes and ``as_strided_scatter``
    scattered nothing, silently."""
    c = compile(StorageOffsets(), (torch.arange(8.0),), streams=streams, poison=True)
    for seed in (1, 2):
        x = torch.randn(8, generator=torch.Generator().manual_seed(seed))
        _same(c(x), StorageOffsets()(x))


class NoFeatures(nn.Module):
    """A linear layer over zero input features (a bias alone) and a product with K = 0."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(0, 6)

    def forward(self, x):
        return self.lin(x[:, :0]), x[:, :0] @ torch.ones(0, 5), torch.cat([x, x[:0]])


@pytest.mark.parametrize("streams", [1, 3])
def test_zero_size_dimensions_run_as_eager(streams):
    """``linear`` folded its input with ``view(-1, 0)``, ambiguous for 0 elements: a false refusal."""
    m, x = NoFeatures(), torch.randn(3, 4)
    c = compile(m, (x,), streams=streams, poison=True)
    with torch.no_grad():
        _same(c(x), m(x))


class QR(nn.Module):
    def forward(self, x, t):
        q, r = torch.linalg.qr(x @ x.mT + x)
        q2, r2 = torch.linalg.qr(t)                    # tall: Q does not fit the m x n workspace
        return q, r, q2, r2


@pytest.mark.parametrize("streams", [1, 3])
def test_results_an_out_kernel_must_not_see_in_one_storage_run_apart(streams):
    """``linalg_qr.out`` asks whether Q and R are the same tensor by their storage: in the arena they are, so R
    came back as its poisoned bytes made upper-triangular (NaN), and a tall input failed torch's internal assert."""
    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(4, 4, generator=g), torch.randn(5, 3, generator=g)
    c = compile(QR(), (x, t), streams=streams, poison=True)
    assert c.executor.launches["linalg_qr"].kind == "copy"
    _same(c(x, t), QR()(x, t))


class AdoptedSliceStorageOffsets(nn.Module):
    """``as_strided`` of a channel slice of a result torch lays out channels-last (CPU ``roll`` keeps the
    input's format, its fake kernel returns it contiguous): the slice's storage offset is 2 for torch and
    2*H*W for the export, and the offset must count from the root's start, not from the slice's."""

    def forward(self, x):
        z = torch.roll(x, 1, 2)[:, 2:]
        return z.as_strided((4,), (1,), 5) * 1, torch.ops.aten.as_strided_copy(z, (3,), (2,), 7)


@pytest.mark.parametrize("streams", [1, 3])
def test_as_strided_of_a_view_over_an_adopted_layout_counts_from_the_root(streams):
    """The storage offset was moved by the slice's storage offset less the export's: on torch's layout those
    differ, and both results read other elements than eager's, silently."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 8, 4, 4, generator=g).contiguous(memory_format=torch.channels_last)
    m = AdoptedSliceStorageOffsets()
    c = compile(m, (x,), streams=streams, poison=True)
    for _ in range(2):
        x = torch.randn(2, 8, 4, 4, generator=g).contiguous(memory_format=torch.channels_last)
        _same(c(x), m(x))


class TrainBatchNormChannelsLast(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(4)
        self.inorm = nn.InstanceNorm2d(4, track_running_stats=True)

    def forward(self, x):
        return self.bn(x) * 1, self.inorm(x) * 1


@pytest.mark.parametrize("streams", [1, 3])
def test_the_layout_probe_never_moves_a_modules_buffers(streams):
    """Train-mode ``batch_norm``/``instance_norm`` update their running statistics though their schemas
    declare no write; the layout probe (a channels-last input) ran them on the module's own buffers at
    build time: one update more than eager's, before and after every call."""
    import copy

    g = torch.Generator().manual_seed(5)
    torch.manual_seed(0)
    m = TrainBatchNormChannelsLast().train()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-1, 1)
        m.inorm.running_var.uniform_(0.5, 2)
    ref = copy.deepcopy(m)
    x = torch.randn(2, 4, 5, 5, generator=g).contiguous(memory_format=torch.channels_last)
    c = compile(m, (x,), streams=streams, poison=True)
    for name, b in ref.named_buffers():
        assert torch.equal(dict(m.named_buffers())[name], b), name
    for _ in range(2):
        x = torch.randn(2, 4, 5, 5, generator=g).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            _same(c(x), ref(x))
        for name, b in ref.named_buffers():
            assert torch.equal(dict(m.named_buffers())[name], b), name


class AssertsOnAnItem(nn.Module):
    """XLM's and FlauBERT's ``assert lengths.max().item() <= slen``: export keeps ``item`` -> ``le`` ->
    ``_assert_scalar``, a data-dependent scalar no size or tensor depends on (``torch._check`` exports the same)."""

    def forward(self, x, ids):
        n = (ids != 0).sum(1).max().item()
        torch._check(n <= ids.shape[1])   # (a plain assert here: pytest rewrites it, export then refuses it)
        return x * 2 + ids


class ScalesByAnItem(nn.Module):
    def forward(self, x, ids):
        return x * (ids != 0).sum(1).max().item()


@pytest.mark.parametrize("streams", [1, 3])
def test_a_data_dependent_scalar_only_asserted_on_runs(streams):
    """Such a program was refused whole ("a non-tensor value (SymInt) that 'le' uses"), as if a size
    depended on it; one whose tensors use the scalar still is, naming the node."""
    m, x, ids = AssertsOnAnItem(), torch.randn(2, 6), torch.randint(0, 3, (2, 6))
    c = compile(m, (x, ids), streams=streams, poison=True)
    _same(c(x, ids), m(x, ids))
    with pytest.raises(Exception, match=r"node 'item' .*non-tensor value \(SymInt\) that 'mul' uses"):
        compile(ScalesByAnItem(), (x, ids), streams=streams)


class UpdatesItsState(nn.Module):
    """Buffers and an input updated in place: a counter, a running mean (train-mode batch norm), a window
    written through an index, and the caller's tensor."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(6)
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self.register_buffer("window", torch.zeros(6))

    def forward(self, x, acc):
        self.calls += 1
        self.window[1:3] = x[0, :2]
        acc.add_(x.sum(0))
        return self.bn(x) * self.calls + self.window


def test_a_functionalized_programs_state_updates_reach_its_buffers_and_inputs(streams=3):
    """``run_decompositions()`` functionalizes: ``buf.add_(1)`` becomes an output the caller must copy into the
    buffer (``BUFFER_MUTATION``, ``USER_INPUT_MUTATION``). Such programs were refused ("export without
    functionalization"), so no decomposed program with state ran; now each update is copied into place after
    the call, and three calls equal eager's outputs, buffers and inputs."""
    m, ref = UpdatesItsState().train(), UpdatesItsState().train()
    ref.load_state_dict(m.state_dict())
    x, acc = torch.randn(4, 6), torch.randn(6)
    ep = torch.export.export(m, (x, acc.clone())).run_decompositions()
    c = compile(ep, (x, acc.clone()), streams=streams, poison=True)
    assert (c.stats.buffer_writebacks, c.stats.input_writebacks) == (5, 1)
    a, b = acc.clone(), acc.clone()
    for _ in range(3):
        x = torch.randn(4, 6)
        with torch.no_grad():
            _same(c(x, a), ref(x, b))
        assert torch.equal(a, b)
        for name, t in ref.state_dict().items():
            assert torch.equal(ep.state_dict[name], t), name


class BufferTakesTheInputsOldValue(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("buf", torch.zeros(6))

    def forward(self, x, acc):
        self.buf.copy_(acc)   # functionalized: the buffer's new value is the placeholder acc (its old value)
        acc.add_(1)
        return x + self.buf


class BufferTakesAnotherBuffersOldValue(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.arange(12.).view(2, 6))   # registered first: its update is first
        self.register_buffer("a", torch.zeros(6))

    def forward(self, x):
        self.a.copy_(self.b[1])   # a's new value is a view of b's old value
        self.b.add_(1)
        return x + self.a


@pytest.mark.parametrize("module", [BufferTakesTheInputsOldValue, BufferTakesAnotherBuffersOldValue])
def test_a_state_update_whose_source_another_update_overwrites(module):
    """A functionalized update whose new value is the old value of state another update writes (the caller's
    input, another buffer): the updates were copied one after another, so the buffer took the other's *new*
    value (``buf`` = ``acc + 1``, ``a`` = ``b[1] + 1``). The sources are read before any copy now."""
    m, ref = module(), module()
    x = torch.randn(6)
    ins = (x, torch.randn(6)) if module is BufferTakesTheInputsOldValue else (x,)
    ep = torch.export.export(m, tuple(t.clone() for t in ins)).run_decompositions()
    c = compile(ep, tuple(t.clone() for t in ins), streams=1, poison=True)
    mine, theirs = [t.clone() for t in ins], [t.clone() for t in ins]
    for _ in range(2):
        mine[0], theirs[0] = (x := torch.randn(6)), x.clone()
        with torch.no_grad():
            _same(c(*mine), ref(*theirs))
        assert all(torch.equal(a, b) for a, b in zip(mine, theirs))
        for name, t in ref.state_dict().items():
            assert torch.equal(ep.state_dict[name], t), name


class StepsItsParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(16))
        self.lin = nn.Linear(16, 16)

    def forward(self, x):
        with torch.no_grad():
            self.w.mul_(0.5).add_(x[0])   # the new value: no later node reads it
        for _ in range(3):
            x = self.lin(x).tanh()         # later intermediates that may take its bytes
        return x


@pytest.mark.parametrize("streams", [1, 3])
def test_a_functionalized_parameter_update_reaches_the_parameter(streams):
    """A parameter written in place under no_grad is a ``PARAMETER_MUTATION`` output once functionalized: it was
    skipped as "not a user output" (the parameter never changed, and the importer planned its new value as an
    intermediate no one reads). Now it is a planned output copied into the parameter after each call."""
    m, ref = StepsItsParameter(), StepsItsParameter()
    ref.load_state_dict(m.state_dict())
    ep = torch.export.export(m, (torch.randn(1, 16),)).run_decompositions()
    c = compile(ep, (torch.randn(1, 16),), streams=streams, poison=True)
    assert c.stats.buffer_writebacks == 1
    g, (_kind, _name, _into, (_where, tid)) = c.program.graph, c.program.mutations[0]
    assert g.tensors[g.root[g.tensor_index[tid]]].kind == "output"   # lives to the end of the call
    for _ in range(3):   # (1, 16): the later intermediates are the new value's size, so could take its bytes
        x = torch.randn(1, 16)
        with torch.no_grad():
            _same(c(x), ref(x))
        assert torch.equal(ep.state_dict["w"], ref.w)


class CountsAndProjects(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.register_buffer("calls", torch.zeros(6))

    def forward(self, x):
        self.calls.add_(1)
        return self.lin(x).relu() + self.calls


def test_an_exported_program_with_dynamic_shapes_takes_the_example_inputs_sizes():
    """A program exported with ``torch.export.Dim`` was refused whatever inputs came with it ("symbolic size
    s77 ... export with concrete example inputs": they were). Given example inputs it is specialized to their
    sizes (its module exported again: the same ops, the same weight and buffer tensors), and each size
    runs as the dynamic program does; without inputs, or outside the Dim's range, it is a GraphError."""
    import copy

    from memplan import from_torch
    from memplan.errors import GraphError

    ep = torch.export.export(CountsAndProjects(), (torch.randn(4, 6),),
                             dynamic_shapes={"x": {0: torch.export.Dim("batch", max=64)}})
    ref = copy.deepcopy(ep).module()
    for batch in (3, 5):
        x = torch.randn(batch, 6)
        c = compile(ep, (x,), streams=3, poison=True)
        with torch.no_grad():
            _same(c(x), ref(x))
        assert torch.equal(ep.state_dict["calls"], ref.calls)
    with pytest.raises(GraphError, match=r"node 'x' \(x\): symbolic size s\d+ .*give an ExportedProgram with dynamic "
                                         r"shapes example inputs"):
        from_torch(ep)
    with pytest.raises(GraphError, match=r"input 'x' dimension 0 is 100, outside the exported program's range "
                                         r"\[\d+, 64\]"):
        from_torch(ep, (torch.randn(100, 6),))
