"""The ``*_scatter`` ops (``slice_scatter``, ``select_scatter``, ``diagonal_scatter``, ``as_strided_scatter``)
in the ATen executor: bitwise eager's result, copying only the input's own elements.

Why: torch's functional kernels clone the input's whole *storage* before scattering; every arena view's
storage is the arena, so their ``out=`` forms copied the whole arena per call. The exact lowering copies
the input's elements into the result and ``src`` into the result's window; a wrong span (an offset off,
a window mapped onto the wrong bytes, a temporary too small) shows here as a wrong value, a byte written
outside the result, or a poisoned (NaN) element.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from needs import need
from plan_mutators import plan_with_roots_apart

torch = need("torch")

from torch import nn  # noqa: E402

import memplan  # noqa: E402
from runtime.aten import compile  # noqa: E402
from runtime.aten.bench_scatter import build_module, copy_bytes  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.exact import Scratch, exact_lowering  # noqa: E402

A = torch.ops.aten
N = 400  # elements of the shared buffer standing for the arena


def _cases():
    """(op, named args but ``self``/``src``, src shape) per op, for a (6, 8) input."""
    return [
        ("slice_scatter", {"dim": 1, "start": 2, "end": 7, "step": 2}, (6, 3)),
        ("slice_scatter", {"dim": 0, "start": 1}, (5, 8)),
        ("select_scatter", {"dim": 0, "index": 4}, (8,)),
        ("select_scatter", {"dim": 1, "index": -1}, (6,)),
        ("diagonal_scatter", {"offset": 1, "dim1": 0, "dim2": 1}, (6,)),
        ("diagonal_scatter", {"offset": -2, "dim1": 1, "dim2": 0}, (6,)),
        # windows in storage coordinates: inside the input's bytes, reaching before it, and after it
        ("as_strided_scatter", {"size": [2, 3], "stride": [8, 2], "storage_offset": 3}, (2, 3)),
        ("as_strided_scatter", {"size": [3, 2], "stride": [10, 1], "storage_offset": 0}, (3, 2)),
        ("as_strided_scatter", {"size": [4], "stride": [3], "storage_offset": 55}, (4,)),
        ("as_strided_scatter", {"size": [3], "stride": [4], "storage_offset": 74}, (3,)),
        # an interleaved window (positions 21 23 25 24 26 28: distinct, not apart dimension by dimension) and
        # zero-size windows, one far outside the input's bytes
        ("as_strided_scatter", {"size": [2, 3], "stride": [3, 2], "storage_offset": 21}, (2, 3)),
        ("as_strided_scatter", {"size": [0, 3], "stride": [1, 1], "storage_offset": 300}, (0, 3)),
        ("slice_scatter", {"dim": 1, "start": 3, "end": 3}, (6, 0)),
    ]


def _inputs(buf, layout: str):
    """The (6, 8) input at storage offset 20 of ``buf``: contiguous, a transposed copy, a strided slice, or
    interleaved (its elements distinct, its rows overlapping in extent)."""
    if layout == "contiguous":
        return buf.as_strided((6, 8), (8, 1), 20)
    if layout == "transposed":
        return buf.as_strided((6, 8), (1, 6), 20)
    if layout == "interleaved":   # rows 16 apart, elements 3 apart: each row reaches into the next one's
        return buf.as_strided((6, 8), (16, 3), 20)
    return buf.as_strided((6, 8), (10, 1), 20)   # rows 10 apart: two elements of gap after each row


def _placements(x, src):
    """Where the result goes in the buffer: apart, over the input exactly, partly over it, over ``src``."""
    yield "apart", 250, tuple(x.stride())
    yield "input", x.storage_offset(), tuple(x.stride())
    yield "partly", x.storage_offset() + 5, (8, 1)
    yield "src", src.storage_offset(), (8, 1)


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "interleaved"])
def test_the_lowering_equals_eager_and_writes_only_its_result(layout):
    """Every op, input layout and result placement in one shared buffer (the arena): the result equals
    eager's, with the input its own tensor in a storage of its own (``as_strided_scatter``: a storage like
    the buffer, as the input's root is in eager), and no byte outside the result changes."""
    g = torch.Generator().manual_seed(0)
    kinds = set()
    for op, kw, src_shape in _cases():
        for where in ("apart", "input", "partly", "src"):
            buf = torch.randn(N, generator=g)
            x = _inputs(buf, layout)
            src = buf.as_strided(src_shape, torch.empty(src_shape).stride(), 150)
            off, stride = next((o, s) for w, o, s in _placements(x, src) if w == where)
            out = buf.as_strided((6, 8), stride, off)
            # eager: the input in a storage of its own (a copy of the whole buffer: the input's root)
            root = buf.clone()
            ref = getattr(A, op)(root.as_strided(x.shape, x.stride(), x.storage_offset()), src.clone(), **kw)
            before = buf.clone()
            got = exact_lowering(torch, op, {"self": x, "src": src, **kw}, [out], "cpu", Scratch(torch, "cpu"))
            assert got is not None, (op, kw, where)
            kind, run, _ = got
            kinds.add(kind)
            run()
            assert torch.equal(out, ref), (op, kw, where)
            idx = torch.arange(N).as_strided(out.shape, out.stride(), out.storage_offset()).flatten()
            mask = torch.ones(N, dtype=torch.bool)
            mask[idx] = False
            assert torch.equal(buf[mask], before[mask]), f"{op} {kw} ({where}) wrote outside its result"
    assert kinds == {"exact", "copy"}


def test_inputs_eager_clones_otherwise_take_the_generic_path():
    """An expanded input (internal overlap: eager clones it contiguously, which moves
    ``as_strided_scatter``'s storage offsets) and a ``src`` of the wrong shape (eager's error) are left to
    eager's kernel."""
    x = torch.randn(1, 8).expand(6, 8)
    out = torch.empty(6, 8)
    assert exact_lowering(torch, "as_strided_scatter", {"self": x, "src": torch.randn(2), "size": [2],
                                                        "stride": [1], "storage_offset": 0}, [out], "cpu") is None
    assert exact_lowering(torch, "slice_scatter", {"self": torch.randn(6, 8), "src": torch.randn(6, 4), "dim": 1,
                                                   "start": 0, "end": 3}, [out], "cpu") is None


class Scatters(nn.Module):
    """Scatters into intermediates: a view with a storage offset, a transposed (non-contiguous) view, a
    window reaching outside its input's bytes; ``src`` a view of the input; results written in place
    afterwards (``add_``) while the inputs are still read."""

    def forward(self, x):
        a = x * 2
        v = (a + 1)[1:, 2:]                                   # storage offset, rows with gaps
        s1 = torch.slice_scatter(v, x[1:, :3] * 3, 1, 0, 6, 2)
        s1.add_(1)                                            # the scatter's result, written in place
        t = (x - 1).t()                                       # transposed
        s2 = torch.select_scatter(t, t[2] * 2, 0, 5)           # src: a row of the input itself
        s3 = torch.diagonal_scatter(v, x[0, :4], -1)
        w = x * 4
        s4 = torch.as_strided_scatter(w[2:], x[:3, :3] + 1, (3, 3), (8, 1), 3)   # window starts before w[2:]
        s5 = torch.as_strided_scatter(w, x[:2, :2], (2, 2), (9, 2), 20)
        s5.mul_(3)
        return s1, s2, s3, s4, s5, v * 1, t + 0, w.sum()


class DiesAtTheScatter(nn.Module):
    """Each scatter's input and ``src`` are read by it alone: a plan may put the result over either."""

    def forward(self, x):
        a = x * 2
        s = x[:, :3] + 1
        y = torch.slice_scatter(a, s, 1, 2, 5)
        b = x - 1
        z = torch.select_scatter(b, x[0] * 5, 0, 3)
        c = x * 3
        d = torch.as_strided_scatter(c, x[1, :4] - 2, (4,), (2,), 5)
        return y * 1, z * 1, d * 1


def _same(out, ref) -> None:
    for a, b in zip(out, ref):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b), f"max diff {(a - b).abs().max()}"


def _check(c, m, shape=(6, 8)) -> None:
    for seed in (1, 2):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
        _same(c(x), m(x))


@pytest.mark.parametrize("streams", [1, 3])
def test_scatters_into_views_equal_eager_bitwise(streams):
    """Poisoned arena, 1 and 3 streams, the planner's plan and one with every root apart (stale values
    stay where a wrong span would read them): bitwise eager. No scatter runs torch's out= form, which
    cloned the arena."""
    m = Scatters()
    c = compile(m, (torch.randn(6, 8),), streams=streams, poison=True)
    _check(c, m)
    apart = compile(m, (torch.randn(6, 8),), plan=plan_with_roots_apart(c.graph, c.plan), program=c.program)
    memplan.verify(apart.graph, apart.plan)
    _check(apart, m)
    kinds = {ln.op.split(".")[1]: ln.kind for ln in c.executor.launches.values() if "scatter" in ln.op}
    assert set(kinds) == {"slice_scatter", "select_scatter", "diagonal_scatter", "as_strided_scatter"}
    assert set(kinds.values()) <= {"exact", "copy"}


def _move_root_onto(graph, plan, root: str, onto: str, shift: int = 0):
    """``plan`` with root ``root`` (and its views) moved to where root ``onto`` starts, plus ``shift`` bytes."""
    offs = dict(plan.offsets())
    delta = offs[onto] + shift - offs[root]
    tensors = []
    for tid, off, size in plan.tensors:
        if off is not None and graph.tensors[graph.root[graph.tensor_index[tid]]].id == root:
            off += delta
        tensors.append((tid, off, size))
    arena = max([o + s for _t, o, s in tensors if o is not None] + [plan.arena_bytes])
    return replace(plan, arena_bytes=arena, tensors=tuple(tensors))


@pytest.mark.parametrize("streams", [1, 3])
@pytest.mark.parametrize("onto,shift", [("self", 0), ("self", 12), ("src", 0)])
def test_a_result_planned_over_its_input_or_src_equals_eager(streams, onto, shift):
    """The plan puts each scatter's result exactly over its input, 12 bytes into it, or over ``src`` (both
    read by the scatter alone; the verifier refuses it: no ``inplace``). The result must still be eager's:
    the input's elements and ``src`` are read before the result's bytes are written."""
    m = DiesAtTheScatter()
    c = compile(m, (torch.randn(6, 8),), streams=streams)
    g, plan = c.graph, plan_with_roots_apart(c.graph, c.plan)
    for n in g.nodes:
        if "scatter" not in n.op:
            continue
        k = 0 if onto == "self" else 1
        src_root = g.tensors[g.root[g.tensor_index[n.inputs[k]]]].id
        plan = _move_root_onto(g, plan, n.outputs[0], src_root, shift)
    moved = compile(m, (torch.randn(6, 8),), plan=plan, verify=False, program=c.program, poison=True)
    _check(moved, m)


def _equals_eager_on_fresh_inputs(m, streams: int):
    """``m`` compiled (poisoned arena) on ``streams`` streams, checked bitwise against eager on two fresh
    64x64 inputs."""
    c = compile(m, (torch.randn(64, 64),), streams=streams, poison=True)
    for seed in (1, 2):
        xs = torch.randn(64, 64, generator=torch.Generator().manual_seed(seed))
        _same(c(xs), m(xs))
    return c


def _scatter_runs(c) -> list:
    """The run of each scatter launch of compiled program ``c``."""
    return [ln.run for ln in c.executor.launches.values() if "scatter" in ln.op]


def _each_scatter_copies_at_most(c, n: int, limit: int) -> None:
    """``c`` has ``n`` scatter launches, and none copies more than ``limit`` bytes (cloning the arena,
    4 MiB+ beside the tests' live intermediate, would)."""
    runs = _scatter_runs(c)
    assert len(runs) == n
    for run in runs:
        assert copy_bytes(torch, run) <= limit


def test_a_scatter_copies_its_input_not_the_arena():
    """The benchmark's model (a 4 MiB live intermediate, scatters on 64x64 ones): torch's profiler counts
    the bytes every ``copy_`` kernel of the scatter launches writes; cloning the arena was 4 MiB+ each."""
    m = build_module(torch, 1, 1 << 20)
    x = torch.randn(64, 64)
    c = compile(m, (x,), streams=1)
    assert c.arena_bytes >= 4 << 20
    _same(c(x), m(x))
    _each_scatter_copies_at_most(c, 4, 3 * 64 * 64 * 4)


class IndexFamily(nn.Module):
    """``index_put_``/``scatter_``/``index_copy_``/``masked_scatter_``/``index_add_`` and their functional
    forms beside a 4 MiB live intermediate."""

    def __init__(self):
        super().__init__()
        self.register_buffer("big", torch.randn(1 << 20, generator=torch.Generator().manual_seed(0)))

    def forward(self, x, i):
        keep = self.big * 2
        a = (x * 2)[1:]
        a.index_put_((i,), x[0] * 3)
        b = x + 1
        b.scatter_(0, i.view(-1, 1).expand(-1, 64), x[:2])
        c = x - 1
        c.index_copy_(0, i, x[:2] * 2)
        d = x * 5
        d.masked_scatter_(x > 0, x.flatten())
        e = torch.index_put(x * 7, (i,), x[1])
        f = torch.scatter(x * 9, 0, i.view(-1, 1).expand(-1, 64), x[:2])
        g = torch.ops.aten._unsafe_index_put(x * 3, (i,), x[2])
        h = x * 2
        h.index_add_(0, i, x[:2])
        return a * 1, b * 1, c * 1, d * 1, e, f, g, h * 1, keep[:2]


def test_index_put_and_scatter_families_copy_their_tensor_not_the_arena():
    """Their functional kernels clone ``self`` alone (not its storage): in place, placed apart (the roots
    apart plan runs most of them functionally), or functional, each launch copies at most twice its
    64x64 tensor (clone + result copy), never the 4 MiB arena; and equals eager bitwise."""
    m, x, i = IndexFamily(), torch.randn(64, 64), torch.tensor([3, 7])
    c = compile(m, (x, i), streams=1)
    apart = compile(m, (x, i), plan=plan_with_roots_apart(c.graph, c.plan), program=c.program, poison=True)
    for p in (c, apart):
        assert p.arena_bytes >= 4 << 20
        _same(p(x, i), m(x.clone(), i))
        runs = [ln.run for ln in p.executor.launches.values()
                if ln.run is not None and any(k in ln.op for k in ("index", "scatter"))]
        assert len(runs) == 8
        for run in runs:
            assert copy_bytes(torch, run) <= 2 * 64 * 64 * 4


@pytest.mark.parametrize("view", ["conj", "neg"])
def test_a_result_over_a_conjugate_view_of_its_input_resolves_the_view(view):
    """The plan puts the result on the very bytes of its input, but the input is a conjugate (negative)
    view of them: its elements are not those bytes, so the result is not "there already" (``src`` alone
    was copied, and the result kept the unconjugated bytes)."""
    g = torch.Generator().manual_seed(5)
    for op, kw, src_shape in [("select_scatter", {"dim": 0, "index": 2}, (8,)),
                              ("diagonal_scatter", {"offset": 1}, (6,))]:
        buf = torch.randn(N, dtype=torch.complex64, generator=g)
        raw = buf.as_strided((6, 8), (8, 1), 20)
        x = raw.conj() if view == "conj" else torch._neg_view(raw)
        src = buf.as_strided(src_shape, (1,), 150)
        ref = getattr(A, op)(x.clone(), src.clone(), **kw)
        got = exact_lowering(torch, op, {"self": x, "src": src, **kw}, [raw], "cpu", Scratch(torch, "cpu"))
        assert got is not None
        got[1]()
        assert torch.equal(raw, ref), (op, view)


class MathBitViews(nn.Module):
    """``as_strided_scatter``/``as_strided_copy`` of conjugate and negative views at a storage offset: eager
    resolves such a view into a new tensor before these kernels run, so the window's offset counts from
    that tensor's start, not from the view's storage (shifted to the arena, it took other elements or fell
    outside); beside a ``slice_scatter`` of one."""

    def forward(self, x):
        c = torch.complex(x, x * 2)[1:]
        src = torch.complex(x[0, :3], x[1, :3])
        return tuple(torch.view_as_real(t * 1) for t in (
            torch.as_strided_scatter(c.conj(), src, (3,), (7,), 3),
            torch.as_strided_scatter(torch._neg_view(c), src, (3,), (7,), 3),
            torch.as_strided_copy(c.conj(), (3,), (7,), 10),
            torch.slice_scatter(c.conj(), torch.complex(x[:5, :3], x[1:, :3]), 1, 2, 5)))


@pytest.mark.parametrize("streams", [1, 3])
def test_as_strided_ops_on_conjugate_views_take_eagers_window(streams):
    m = MathBitViews()
    c = compile(m, (torch.randn(6, 8),), streams=streams, poison=True)
    _check(c, m)
    _check(compile(m, (torch.randn(6, 8),), plan=plan_with_roots_apart(c.graph, c.plan), program=c.program), m)


class ParamScatter(nn.Module):
    """``as_strided_scatter`` of a parameter's transpose (eager asserts against a non-contiguous input that
    requires grad, under no_grad too) and of a contiguous slice of it (eager computes)."""

    def __init__(self, transposed: bool):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 8, generator=torch.Generator().manual_seed(0)))
        self.transposed = transposed

    def forward(self, x):
        w = self.w.t() if self.transposed else self.w[1:]
        return torch.as_strided_scatter(w, x[:3] + 1, (3,), (2,), 9) * 1


def test_as_strided_scatter_of_a_parameter_view_refuses_what_eager_refuses():
    """Eager's error for the transposed parameter, named by node (the lowering computed a result); the
    contiguous slice still equals eager."""
    x = torch.randn(6)
    m = ParamScatter(True)
    with pytest.raises(RuntimeError, match="contiguous inputs"), torch.no_grad():
        m(x)
    c = compile(m, (x,))
    with pytest.raises(AtenExecutorError, match="as_strided_scatter.*contiguous inputs"):
        c(x)
    m = ParamScatter(False)
    with torch.no_grad():
        _same([compile(m, (x,))(x)], [m(x)])


class ScattersOverScatters(nn.Module):
    """Scatters whose inputs have one layout twice (torch's fake-tensor cache rebuilt the second's result at
    storage offset 0, in a storage of its elements alone), then ``as_strided_scatter`` windows over their
    results counted in the storage eager gives them: their input's, the window starting before them."""

    def forward(self, x):
        outs = []
        for k, f in enumerate((2, 3)):
            a = x * f
            y = torch.as_strided_scatter(a[1:], x[k, :3] + 1, (3,), (2,), 9)
            z = torch.select_scatter(a[2:, 1:], x[k, :7] + 2, 0, 1)
            outs += [torch.as_strided_scatter(y, x[2, :2] + 5, (2,), (3,), 4) * 1,
                     torch.as_strided_scatter(z, x[3, :2] + 6, (2,), (3,), 1) * 1]
        return tuple(outs)


@pytest.mark.parametrize("streams", [1, 3])
def test_scatters_over_scatter_results_with_one_layout_twice_equal_eager(streams):
    """Each scatter result's storage offset in the graph is eager's, however many with its layout were
    traced before (in this export or an earlier one): both copies of each get the same spec, and the
    windows over them take eager's elements, bitwise."""
    m = ScattersOverScatters()
    c = compile(m, (torch.randn(6, 8),), streams=streams)
    offsets = [c.program.specs[n.outputs[0]].byte_offset for n in c.graph.nodes if "scatter" in n.op]
    assert offsets[:4] == offsets[4:] and all(offsets), offsets
    _check(c, m)


class ExpandedScatter(nn.Module):
    """``as_strided_scatter`` of expanded inputs (a row broadcast down, a column across), its result then
    read by an elementwise op, views (a row, a transpose), an in-place write through a view and a second
    ``as_strided_scatter`` over it."""

    def forward(self, x):
        row = torch.relu(x[:1]).expand(4, 8)        # strides (0, 1)
        col = torch.relu(x[:, :1]).expand(6, 5)     # strides (8, 0)
        r = torch.as_strided_scatter(row, x[1, :6].reshape(2, 3) + 1, (2, 3), (3, 1), 1)
        c = torch.as_strided_scatter(col, x[2, :6].reshape(3, 2) - 1, (3, 2), (1, 6), 2)
        r[2:].mul_(3)
        again = torch.as_strided_scatter(r, x[3, :4] * 2, (4,), (9,), 3)
        return r * 1, r[1] + 1, c.t().cumsum(1), c * 2, again + 1


@pytest.mark.parametrize("streams", [1, 3])
def test_as_strided_scatter_of_an_expanded_input_gets_eagers_dense_result(streams):
    """Eager's kernel clones an expanded input into a dense tensor of its own before scattering; torch's fake
    kernel kept the input's expanded strides and few bytes, so the graph gave the result a slot of the
    input's size and the executor refused it at the call (torch: "more than one element of the written-to
    tensor refers to a single memory location") where eager computes. Now the result has a dense slot of its
    full size, the views of it torch's layout of it: bitwise eager, also with every root apart."""
    m = ExpandedScatter()
    c = compile(m, (torch.randn(6, 8),), streams=streams, poison=True)
    for node, shape in (("as_strided_scatter", (4, 8)), ("as_strided_scatter_1", (6, 5))):
        t = c.graph.tensor(c.graph.node(node).outputs[0])
        assert t.view_of is None and t.size >= 4 * shape[0] * shape[1], t
    _check(c, m)
    apart = compile(m, (torch.randn(6, 8),), plan=plan_with_roots_apart(c.graph, c.plan), program=c.program,
                    poison=True)
    memplan.verify(apart.graph, apart.plan)
    _check(apart, m)


class OddWindows(nn.Module):
    """Scatters eager runs but the exact lowering used to leave to eager's kernel (which cloned the whole
    arena): an interleaved window, a zero-size window far outside its input, and an interleaved input
    (rows 100 apart, elements 3 apart: distinct elements, no dimension stepping past the other), beside a
    4 MiB live intermediate."""

    def __init__(self):
        super().__init__()
        self.register_buffer("big", torch.randn(1 << 20, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):  # x: (64, 64)
        keep = self.big * 2
        y = x * 2
        a = torch.as_strided_scatter(y, x[:2, :3] + 1, (2, 3), (3, 2), 5)
        b = torch.as_strided_scatter(y + 1, x[:0, :3], (0, 3), (1, 1), 100_000)
        v = (x - 1).as_strided((16, 64), (100, 3), 7)
        c = torch.slice_scatter(v, x[:16, :8] * 3, 1, 0, 8)
        return a * 1, b * 1, c * 1, keep[:4]


@pytest.mark.parametrize("streams", [1, 3])
def test_interleaved_and_zero_size_windows_copy_their_input_not_the_arena(streams):
    """Each of these scatters cloned the whole arena per call (4 MiB+: interleaved layouts failed the
    lowering's dimension-by-dimension test of distinct elements, a zero-size window was refused outright);
    now each copies its input's elements and ``src``, bitwise eager."""
    m = OddWindows()
    c = _equals_eager_on_fresh_inputs(m, streams)
    assert c.arena_bytes >= 4 << 20
    _each_scatter_copies_at_most(c, 3, 3 * 64 * 64 * 4)


class ZeroSizeExpandedWindow(nn.Module):
    """A zero-size ``as_strided_scatter`` window with a zero stride (``(0, 3)`` strides ``(1, 0)``), which
    eager takes (no element, none shared), beside a 4 MiB live intermediate."""

    def __init__(self):
        super().__init__()
        self.register_buffer("big", torch.randn(1 << 20, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):  # x: (64, 64)
        keep = self.big * 2
        b = torch.as_strided_scatter(x + 1, x[:0, :3], (0, 3), (1, 0), 7)
        return b * 1, keep[:4]


def test_a_zero_size_window_with_a_zero_stride_copies_its_input_not_the_arena():
    """The element-listing test took a zero-size layout with a zero stride for overlapping, so eager's
    kernel ran and cloned the whole arena (4 MiB+) per call for a scatter of nothing."""
    m = ZeroSizeExpandedWindow()
    c = _equals_eager_on_fresh_inputs(m, 1)
    _each_scatter_copies_at_most(c, 1, 2 * 64 * 64 * 4)


def test_layouts_past_the_listing_cap_run_eagers_kernel_and_equal_eager(monkeypatch):
    """Past ``_LIST_AT_MOST`` elements an interleaved layout is not listed: eager's kernel runs (the whole
    arena cloned, but eager's result), here with the cap at 4 elements."""
    from runtime.aten import exact

    monkeypatch.setattr(exact, "_LIST_AT_MOST", 4)
    m = OddWindows()
    c = _equals_eager_on_fresh_inputs(m, 1)
    runs = _scatter_runs(c)
    assert sum(copy_bytes(torch, run) > 4 << 20 for run in runs) == 2   # the two interleaved ones
